//! Why a classifier chose a label: [`Classifier::explain`] gives the features of a text that
//! raised the label's score most and those that lowered it most, each with its exact share of
//! the label's logit; [`Classifier::top_features`] the vocabulary pieces that weigh most for a
//! label, whatever the text.
//!
//! The models whose scores are sums can be explained: `bow` (a feature's share, as the model
//! weighs and normalizes it), `encoder` (the sentence vector's share, one term) and `hybrid`
//! (its bow part's features, weighted as the hybrid weighs that part, and the encoder's share).
//! The transformer's scores are not sums of parts, and it is not explained.

use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::error::{Error, Result};
use crate::model::bow::{Term, TermKind};
use crate::model::{argmax, Model, Workspace};
use crate::text::UNK;

/// What a feature of an explanation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeatureKind {
    /// A word: a vocabulary piece that is the whole word, or (for a word the vocabulary
    /// splits) the whole-word feature.
    #[serde(rename = "word")]
    Word,
    /// A WordPiece piece that is part of a word ("##" marks one that continues it), or
    /// `[UNK]`, which stands for every word the vocabulary cannot spell.
    #[serde(rename = "subword")]
    Subword,
    /// Consecutive words (punctuation left out), joined by spaces.
    #[serde(rename = "word n-gram")]
    WordNgram,
    /// Characters of a word, with `<` and `>` marking its start and end.
    #[serde(rename = "char n-gram")]
    CharNgram,
    /// The pretrained encoder's sentence vector of the whole text.
    #[serde(rename = "encoder")]
    Encoder,
}

impl FeatureKind {
    /// Its name, as written in JSON and by `khabar predict --explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Word => "word",
            FeatureKind::Subword => "subword",
            FeatureKind::WordNgram => "word n-gram",
            FeatureKind::CharNgram => "char n-gram",
            FeatureKind::Encoder => "encoder",
        }
    }
}

impl std::fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A feature and its share of a label's logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The feature as the text it came from (normalized: NFKC, lowercase): the word, the
    /// words, the characters, or the piece as the vocabulary spells it. For the encoder's
    /// share, "sentence vector".
    pub feature: String,
    /// What the feature is.
    pub kind: FeatureKind,
    /// Its share of the logit: positive raised the label's score, negative lowered it.
    pub weight: f32,
}

impl std::fmt::Display for Contribution {
    /// `word "budget"`, `char n-gram "<बज"`, `encoder (sentence vector)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FeatureKind::Encoder => write!(f, "encoder ({})", self.feature),
            kind => write!(f, "{kind} \"{}\"", self.feature),
        }
    }
}

/// Why a text got its label: the label's logit taken apart. `bias` plus the weights of
/// `raised` and `lowered` plus `other` is `logit`, up to rounding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub score: f32,
    /// Its logit (the score before the softmax), as prediction computes it.
    pub logit: f32,
    /// The part of the logit that is the same for every text.
    pub bias: f32,
    /// The features that raised the logit most, largest first.
    pub raised: Vec<Contribution>,
    /// The features that lowered it most, most negative first.
    pub lowered: Vec<Contribution>,
    /// The sum of the shares of the features not listed.
    pub other: f32,
}

/// A label's strongest vocabulary pieces in a `bow` model (or a hybrid's bow part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopFeatures {
    /// The label.
    pub label: String,
    /// The pieces that raise its score most, largest first: each with what it adds to the
    /// label's logit where it occurs once, before the text's features are normalized together
    /// (so comparable with each other, not with the weights of an [`Explanation`]).
    pub raised: Vec<Contribution>,
    /// The pieces that lower it most, most negative first.
    pub lowered: Vec<Contribution>,
    /// Rows of hashed features (whole words the vocabulary splits, word and character
    /// n-grams), which the model keeps by hash, not by text, and which are not listed.
    pub hashed_rows: usize,
}

/// A feature's share of a logit, in double precision until it is listed.
struct Share {
    kind: FeatureKind,
    feature: String,
    weight: f64,
}

/// A bow term's share, scaled by `scale` (a hybrid's weight of its bow part).
fn share(t: Term, scale: f64) -> Share {
    Share {
        kind: match t.kind {
            TermKind::Word => FeatureKind::Word,
            TermKind::Subword => FeatureKind::Subword,
            TermKind::WordNgram => FeatureKind::WordNgram,
            TermKind::CharNgram => FeatureKind::CharNgram,
        },
        feature: t.text,
        weight: t.weight * scale,
    }
}

/// The encoder's share.
fn encoder_share(weight: f64) -> Share {
    Share {
        kind: FeatureKind::Encoder,
        feature: "sentence vector".into(),
        weight,
    }
}

/// The refusal of a model that cannot be explained.
fn not_explained() -> Error {
    Error::Usage(
        "explanations cover bow, hybrid and encoder models; this model is a transformer, whose \
         scores are not a sum of its features' shares"
            .into(),
    )
}

/// The `n` largest positive terms (largest first), the `n` most negative (most negative
/// first), and the sum of the others. Ties go to the feature that comes first in the text.
fn split_terms(terms: Vec<Share>, n: usize) -> (Vec<Contribution>, Vec<Contribution>, f32) {
    let mut order: Vec<usize> = (0..terms.len()).collect();
    order.sort_by(|&a, &b| terms[b].weight.total_cmp(&terms[a].weight).then(a.cmp(&b)));
    let raised: Vec<usize> = order
        .iter()
        .copied()
        .take_while(|&i| terms[i].weight > 0.0)
        .take(n)
        .collect();
    let lowered: Vec<usize> = order
        .iter()
        .rev()
        .copied()
        .take_while(|&i| terms[i].weight < 0.0)
        .take(n)
        .collect();
    let mut listed = vec![false; terms.len()];
    raised
        .iter()
        .chain(&lowered)
        .for_each(|&i| listed[i] = true);
    let other: f64 = terms
        .iter()
        .zip(&listed)
        .filter(|(_, &l)| !l)
        .map(|(t, _)| t.weight)
        .sum();
    let contribution = |i: &usize| Contribution {
        feature: terms[*i].feature.clone(),
        kind: terms[*i].kind,
        weight: terms[*i].weight as f32,
    };
    (
        raised.iter().map(contribution).collect(),
        lowered.iter().map(contribution).collect(),
        other as f32,
    )
}

impl Classifier {
    /// Why `text` gets its most probable label: the `n` features that raised the label's
    /// logit most and the `n` that lowered it most, each with its share of the logit, the
    /// bias, and the sum of the shares not listed. Features are named by the text they came
    /// from (words, word n-grams, characters, vocabulary pieces), never by hash or id; a
    /// feature met several times is one entry, with its whole share. A `hybrid` model's
    /// features are its bow part's, weighted as the hybrid weighs that part, and one more
    /// term is the encoder's share; an `encoder` model's one term is the encoder's. The bias is
    /// what does not depend on the text: the model's bias for the label (a hybrid's: both
    /// parts' biases, weighted), so the encoder's share is its layer's weights times the
    /// sentence vector. A hybrid that answers with its bow part alone (in its mode, see
    /// [`Classifier::with_mode`]) is explained by that part's features, scaled as the part is
    /// alone, with no encoder term.
    ///
    /// A `transformer` model cannot be explained: [`Error::Usage`].
    pub fn explain(&self, text: &str, n: usize) -> Result<Explanation> {
        self.explain_batch(&[text], n).map(|mut v| v.remove(0))
    }

    /// [`Classifier::explain`] of many texts, in parallel (see
    /// [`Classifier::with_threads`]), in input order; the encoder models encode the texts
    /// together.
    pub fn explain_batch<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        n: usize,
    ) -> Result<Vec<Explanation>> {
        self.probabilities_and_explanations(texts, n)
            .map(|(_, why)| why)
    }

    /// [`Classifier::probabilities_batch`] and [`Classifier::explain_batch`] of the same
    /// texts at once: each text's probabilities (in label order) and its explanation, the
    /// encoder reading each text once.
    pub fn probabilities_and_explanations<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        n: usize,
    ) -> Result<(Vec<Vec<f32>>, Vec<Explanation>)> {
        if let Model::Transformer(_) = self.model {
            return Err(not_explained());
        }
        let both = self.map_batch(texts, |ws, _, text, vector| {
            self.explain_with(text, vector, n, ws)
        })?;
        Ok(both.into_iter().unzip())
    }

    /// The text's probabilities and its explanation.
    fn explain_with(
        &self,
        text: &str,
        vector: Option<&[f32]>,
        n: usize,
        ws: &mut Workspace,
    ) -> Result<(Vec<f32>, Explanation)> {
        let mut logits = Vec::new();
        if let Model::Transformer(_) = self.model {
            return Err(not_explained());
        }
        self.model
            .logits_with(&self.tokenizer, text, vector, ws, &mut logits)?;
        let label = argmax(&logits);
        let logit = logits[label];
        let no_vector = || Error::Internal("an encoder model was given no vector".into());
        let (bias, terms) = match &self.model {
            Model::Bow(b) => {
                let (bias, terms) = b.terms(&self.tokenizer, text, label);
                let terms = terms.into_iter().map(|t| share(t, 1.0)).collect();
                (bias as f64, terms)
            }
            Model::Encoder(m) => {
                let mut e = Vec::new();
                m.head.logits_into(vector.ok_or_else(no_vector)?, &mut e);
                let bias = m.head.bias()[label] as f64;
                (bias, vec![encoder_share(e[label] as f64 - bias)])
            }
            // Answered by the bow part alone (the cascade, or the fast mode): its terms, scaled
            // as it is scaled alone.
            Model::Hybrid(h) if vector.is_none() => {
                let scale = h.cascade().map_or(h.scales()[0], |c| c.scale) as f64;
                let (bow_bias, terms) = h.bow().terms(&self.tokenizer, text, label);
                let terms = terms.into_iter().map(|t| share(t, scale)).collect();
                (scale * bow_bias as f64, terms)
            }
            Model::Hybrid(h) => {
                let [s_bow, s_enc] = h.scales().map(|s| s as f64);
                let (bow_bias, terms) = h.bow().terms(&self.tokenizer, text, label);
                let mut terms: Vec<Share> = terms.into_iter().map(|t| share(t, s_bow)).collect();
                let mut e = Vec::new();
                h.head.logits_into(vector.ok_or_else(no_vector)?, &mut e);
                let enc_bias = h.head.bias()[label] as f64;
                terms.push(encoder_share(s_enc * (e[label] as f64 - enc_bias)));
                (s_bow * bow_bias as f64 + s_enc * enc_bias, terms)
            }
            Model::Transformer(_) => return Err(not_explained()),
        };
        let (raised, lowered, other) = split_terms(terms, n);
        self.logits_to_probabilities(&mut logits);
        let explanation = Explanation {
            label: self.config.labels[label].clone(),
            score: logits[label],
            logit,
            bias: bias as f32,
            raised,
            lowered,
            other,
        };
        Ok((logits, explanation))
    }

    /// The vocabulary pieces that raise `label`'s score most (`n` of them) and those that
    /// lower it most, in a `bow` model or a hybrid's bow part (weighted as the hybrid weighs
    /// it). Only the pieces can be named: the model keeps its other features (whole words the
    /// vocabulary splits, word and character n-grams) by hash; [`Classifier::explain`] names
    /// them in the texts it explains. [`Error::Usage`] for a label the model does not know or
    /// a model with no bow part.
    pub fn top_features(&self, label: &str, n: usize) -> Result<TopFeatures> {
        let Some(c) = self.labels().iter().position(|l| l == label) else {
            return Err(Error::Usage(format!(
                "the model has no label '{label}'; its labels are {}",
                self.labels().join(", ")
            )));
        };
        let (bow, scale) = match &self.model {
            Model::Bow(b) => (b, 1.0),
            Model::Hybrid(h) => (h.bow(), h.scales()[0]),
            Model::Encoder(_) | Model::Transformer(_) => {
                return Err(Error::Usage(
                    "top features are those of bow models (and of a hybrid's bow part); this \
                     model has no bow part"
                        .into(),
                ))
            }
        };
        let terms: Vec<Share> = bow
            .piece_values(c)
            .filter_map(|(id, value)| {
                let piece = self.tokenizer.piece(id)?;
                let kind = if piece.starts_with("##") || piece == UNK {
                    FeatureKind::Subword
                } else {
                    FeatureKind::Word
                };
                Some(Share {
                    kind,
                    feature: piece.to_string(),
                    weight: value as f64 * scale as f64,
                })
            })
            .collect();
        let (raised, lowered, _) = split_terms(terms, n);
        Ok(TopFeatures {
            label: label.to_string(),
            raised,
            lowered,
            hashed_rows: bow.num_ngrams(),
        })
    }
}
