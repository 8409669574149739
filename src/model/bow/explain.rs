//! Why the `bow` model scored a label as it did: each feature of a text with its share of the
//! label's logit, named by the text it came from.
//!
//! A logit is `bias + scale · Σ_r w_r · P[r]`, summed over the table rows `r` the text's features
//! map to: `w_r` the row's weight in the text (sublinear TF-IDF of its count, or its share of
//! the features: see [`RowWeight`]), `P[r]` the row's packed value for the label (the table
//! row times the head) and `scale` the L2 normalization of TF-IDF weights (1 for the mean). A
//! row's term, `scale · w_r · P[r]`, is its exact share: the terms and the bias add up to the
//! logit that prediction computes (up to the rounding of the sum's order).

use std::collections::HashMap;

use super::config::Weighting;
use super::features::{features_with_sources, framed_chars, Feature, Source};
use super::model::Bow;
use super::weights::RowWeight;
use crate::text::{Tokenizer, UNK};

/// What a row of the table stands for in an explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TermKind {
    /// A word: a vocabulary piece that is the whole word, or the whole-word feature of a word
    /// the vocabulary splits.
    Word,
    /// A WordPiece piece that is part of a word (or `[UNK]`).
    Subword,
    /// Consecutive words.
    WordNgram,
    /// Characters of a word.
    CharNgram,
}

/// One row's share of a label's logit, and the text it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Term {
    pub(crate) kind: TermKind,
    /// The words or characters (a piece as the vocabulary spells it, "##" and all).
    pub(crate) text: String,
    pub(crate) weight: f64,
}

/// A row the text's features reach, while they are counted.
struct Seen {
    row: u32,
    count: u32,
    kind: TermKind,
    text: String,
}

impl Bow {
    /// The label's bias and one term per table row that the features of `text` reach (in the
    /// order first reached): `bias + Σ weight` is the label's logit, as
    /// [`Bow::logits_of`] computes it, up to rounding. Features the model has no row for
    /// take no part in the logit and have no term. Several features that reach one row (a
    /// word said twice, two words sharing a piece) are one term, named by the first of them
    /// (or as the whole word, if any of them is).
    pub(crate) fn terms(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        label: usize,
    ) -> (f32, Vec<Term>) {
        let mut at: HashMap<u32, usize> = HashMap::new();
        let mut seen: Vec<Seen> = Vec::new();
        let mut total = 0u64;
        features_with_sources(tokenizer, &self.config, text, |f, source| {
            let Some(row) = self.row_of(f) else { return };
            total += 1;
            let (kind, name) = match (f, source) {
                (Feature::Subword(id), Source::Piece { word }) => {
                    let piece = tokenizer.piece(id).unwrap_or(UNK);
                    let kind = if piece == word {
                        TermKind::Word
                    } else {
                        TermKind::Subword
                    };
                    (kind, Some(piece))
                }
                (_, Source::Chars { .. }) => (TermKind::CharNgram, None),
                (_, Source::Word(_)) => (TermKind::Word, None),
                (_, Source::Words(_)) => (TermKind::WordNgram, None),
                (Feature::Key(_), Source::Piece { .. }) => {
                    unreachable!("a piece is a subword id")
                }
            };
            if let Some(&i) = at.get(&row) {
                let s = &mut seen[i];
                s.count += 1;
                if kind == TermKind::Word && s.kind == TermKind::Subword {
                    s.kind = TermKind::Word;
                }
                return;
            }
            let text = match source {
                Source::Piece { .. } => name.unwrap_or(UNK).to_string(),
                Source::Chars { word, start, len } => framed_chars(word, start, len),
                Source::Word(w) => w.to_string(),
                Source::Words(ws) => ws.join(" "),
            };
            at.insert(row, seen.len());
            seen.push(Seen {
                row,
                count: 1,
                kind,
                text,
            });
        });
        // The weights and the normalization, as `pool_counted` computes them (in f32, from the
        // packed rows' own IDF lane).
        let classes = self.num_classes();
        let idf_lane = self.stride() - 1;
        let weigh = RowWeight {
            weighting: self.config.weighting,
            total: total as f32,
        };
        let weights: Vec<f32> = seen
            .iter()
            .map(|s| {
                let idf = self.packed.value(s.row as usize, idf_lane, classes);
                weigh.of(s.count, idf)
            })
            .collect();
        let norm2: f32 = weights.iter().map(|w| w * w).sum();
        let scale = match self.config.weighting {
            Weighting::Tfidf if norm2 > 0.0 => 1.0 / (norm2 as f64).sqrt(),
            _ => 1.0,
        };
        let terms = seen
            .into_iter()
            .zip(weights)
            .map(|(s, w)| {
                let value = self.packed.value(s.row as usize, label, classes);
                Term {
                    kind: s.kind,
                    text: s.text,
                    weight: scale * w as f64 * value as f64,
                }
            })
            .collect();
        (self.head_b[label], terms)
    }

    /// Each vocabulary piece's value for label `label` (its table row times the head, times
    /// its IDF under TF-IDF weighting): what the piece adds to the label's score where it occurs
    /// once, before the text's normalization. The rows of hashed features (whole words split
    /// into pieces, word and character n-grams) cannot be named and are not given.
    pub(crate) fn piece_values(&self, label: usize) -> impl Iterator<Item = (u32, f32)> + '_ {
        let classes = self.num_classes();
        let idf_lane = self.stride() - 1;
        (0..self.n_subwords).map(move |r| {
            let value = self.packed.value(r, label, classes);
            let idf = match self.config.weighting {
                Weighting::Tfidf => self.packed.value(r, idf_lane, classes),
                Weighting::Mean => 1.0,
            };
            (r as u32, value * idf)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{BowConfig, CompactOptions, Loss, Weighting};
    use super::super::model::Scratch;
    use super::super::svm::SvmTrainer;
    use super::super::tests::tiny_prepared;
    use super::*;
    use crate::model::{Fit, Model};

    const TEXTS: [&str; 6] = [
        "the striker scored a late goal, and the late goal won!",
        "markets rose as shares rallied; shares fell",
        "",
        "unseen words only",
        "the the the the",
        "भारत ने मैच जीता, the keeper saved it",
    ];

    fn bow_of(t: &mut dyn Fit) -> Bow {
        match t.snapshot().unwrap() {
            Model::Bow(b) => b,
            _ => unreachable!("a bow trainer"),
        }
    }

    /// Models of every kind of table: an SVM's (linear, biased), a softmax with an embedding
    /// width and a head, both folded and in half precision; TF-IDF and the mean.
    fn models() -> Vec<(String, Bow, Tokenizer)> {
        let mut out = Vec::new();
        for weighting in [Weighting::Tfidf, Weighting::Mean] {
            let base = BowConfig {
                min_count: 1,
                min_count_words: 1,
                weighting,
                ..BowConfig::default()
            };
            let (p, tok) = tiny_prepared(base.clone(), &[0, 0, 1, 1, 0, 2], 3);
            let mut svm = SvmTrainer::new(p);
            svm.begin(6);
            for _ in 0..5 {
                svm.step(&[0, 1, 2, 3, 4, 5], 0.0).unwrap();
            }
            let softmax = BowConfig {
                dim: 8,
                loss: Loss::Softmax,
                ..base
            };
            let (p, _) = tiny_prepared(softmax, &[0, 0, 1, 1, 0, 2], 3);
            let mut sm = super::super::softmax::SoftmaxTrainer::new(p, 3);
            for _ in 0..5 {
                sm.step(&[0, 1, 2, 3, 4, 5], 0.05).unwrap();
            }
            for (name, bow) in [("svm", bow_of(&mut svm)), ("softmax", bow_of(&mut sm))] {
                let small = bow.compact(CompactOptions {
                    fold: true,
                    half: true,
                    max_ngrams: None,
                });
                out.push((format!("{name} {weighting:?}"), bow, tok.clone()));
                out.push((format!("{name} {weighting:?} compact"), small, tok.clone()));
            }
        }
        out
    }

    /// For every label, the bias and the terms add up to the logit prediction computes.
    #[test]
    fn terms_add_up_to_the_logits() {
        let mut scratch = Scratch::default();
        let mut logits = Vec::new();
        for (name, bow, tok) in models() {
            for text in TEXTS {
                bow.logits_of(&tok, text, &mut scratch, &mut logits);
                for (label, &logit) in logits.iter().enumerate() {
                    let (bias, terms) = bow.terms(&tok, text, label);
                    let sum = bias as f64 + terms.iter().map(|t| t.weight).sum::<f64>();
                    let size = terms.iter().map(|t| t.weight.abs()).sum::<f64>() + 1.0;
                    assert!(
                        (sum - logit as f64).abs() <= 1e-5 * size,
                        "{name}, {text:?}, label {label}: {sum} vs {logit}"
                    );
                    if text.is_empty() {
                        assert!(terms.is_empty());
                        assert_eq!(bias, logit);
                    }
                }
            }
        }
    }

    /// Terms are named by the text they came from, once per feature: words, pieces, the
    /// characters of char n-grams framed by '<' and '>', and the words of word n-grams.
    #[test]
    fn terms_are_named_by_their_text_once_each() {
        let (_, bow, tok) = models().swap_remove(0);
        let text = TEXTS[0];
        let (_, terms) = bow.terms(&tok, text, 0);
        let named = |kind: TermKind, name: &str| {
            terms
                .iter()
                .filter(|t| t.kind == kind && t.text == name)
                .count()
        };
        assert_eq!(named(TermKind::WordNgram, "late goal"), 1, "{terms:?}");
        assert_eq!(named(TermKind::Word, "goal"), 1, "{terms:?}");
        assert_eq!(named(TermKind::CharNgram, "<go"), 1, "{terms:?}");
        assert_eq!(named(TermKind::CharNgram, "al>"), 1, "{terms:?}");
        let mut seen = std::collections::HashSet::new();
        for t in terms.iter().filter(|t| t.text != UNK) {
            assert!(seen.insert((t.kind, t.text.clone())), "{t:?} twice");
            let plain = t.text.trim_start_matches("##").replace(['<', '>'], "");
            let words = plain.split(' ').all(|w| text.contains(w));
            assert!(words, "{t:?} is not from {text:?}");
        }
        // Hindi: the characters of its words, not hashes.
        let (_, terms) = bow.terms(&tok, TEXTS[5], 0);
        assert!(terms
            .iter()
            .any(|t| t.kind == TermKind::WordNgram && t.text == "keeper saved"));
    }
}
