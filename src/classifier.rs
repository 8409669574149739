//! [`Classifier`]: a loaded model that classifies text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bundle::{self, BundleConfig, Parts};
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::metrics::{Evaluation, MultiEvaluation, Scored, PRECISION_AT};
use crate::model::encoder::EncodingCache;
use crate::model::multilabel::sigmoid_in_place;
use crate::model::{argmax, softmax_in_place, CompactOptions, Encoder, Mode, Model, Workspace};
use crate::text::Tokenizer;
use crate::threads;

/// A label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    /// The label.
    pub label: String,
    /// Its probability.
    pub score: f32,
}

/// The result of classifying one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub score: f32,
    /// Every label with its probability, most probable first.
    pub top: Vec<LabelScore>,
    /// A multi-label model's answer: every label whose score reaches its threshold, best first
    /// (possibly none: then `label` is the best one, under its threshold); `None` for a
    /// single-label model.
    pub labels: Option<Vec<LabelScore>>,
}

/// A trained classifier: tokenizer, model and labels. `Send + Sync`: load it once and share it
/// between threads.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub(crate) config: BundleConfig,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) model: Model,
    /// Threads of the batch calls (`None`: one per core).
    pub(crate) threads: Option<usize>,
    /// How a hybrid model answers.
    pub(crate) mode: Mode,
    /// Where the batch calls keep the encoder's vectors of the texts they read (`None`: they
    /// keep none).
    pub(crate) encoding_cache: Option<PathBuf>,
}

impl Classifier {
    pub(crate) fn from_parts(parts: Parts) -> Self {
        Classifier {
            config: parts.config,
            tokenizer: parts.tokenizer,
            model: parts.model,
            threads: None,
            mode: Mode::default(),
            encoding_cache: None,
        }
    }

    /// The built-in model: news topics in English and Hindi (international, politics, business,
    /// sports, science-technology, entertainment, health, education, automobile, crime,
    /// lifestyle), embedded in the library from `models/news`. See that directory's README for
    /// its data and scores.
    pub fn default_model() -> Result<Classifier> {
        const CONFIG: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/news/config.json"
        ));
        const TOKENIZER: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/news/tokenizer.json"
        ));
        const WEIGHTS: &[u8] = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/news/model.safetensors"
        ));
        bundle::from_bytes(
            Path::new("<built-in model>"),
            CONFIG,
            TOKENIZER,
            WEIGHTS.into(),
            None,
        )
        .map(Self::from_parts)
    }

    /// Bytes the built-in model adds to the binary.
    pub fn default_model_size() -> usize {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/news/config.json"
        ))
        .len()
            + include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/models/news/tokenizer.json"
            ))
            .len()
            + include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/models/news/model.safetensors"
            ))
            .len()
    }

    /// Loads a model bundle directory (as written by [`Classifier::save`] or `khabar train`).
    /// A model that reads the pretrained encoder (`encoder`, `hybrid`) gets the built-in one;
    /// see [`Classifier::load_with_encoder`] for another.
    pub fn load(dir: impl AsRef<Path>) -> Result<Classifier> {
        bundle::load(dir.as_ref(), None).map(Self::from_parts)
    }

    /// Loads a model bundle directory whose model reads `encoder` (one loaded with
    /// [`Encoder::load`]): the bundle must name that encoder's identity, else
    /// [`Error::Bundle`](crate::Error::Bundle) says which it needs. Other models ignore it.
    pub fn load_with_encoder(dir: impl AsRef<Path>, encoder: Arc<Encoder>) -> Result<Classifier> {
        bundle::load(dir.as_ref(), Some(encoder)).map(Self::from_parts)
    }

    /// Saves the model as a bundle directory. The save is atomic: an existing bundle at `dir`
    /// stays intact until the new one is complete.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        bundle::save(dir.as_ref(), &self.config, &self.tokenizer, &self.model)
    }

    /// The same classifier, running its batch calls ([`Classifier::predict_batch`] and the
    /// like) on `threads` threads of its own (`None`, the default: one per core). The threads
    /// are khabar's own pool: rayon's global pool and the host program's pools are not used.
    pub fn with_threads(mut self, threads: Option<usize>) -> Classifier {
        self.threads = threads;
        self
    }

    /// The same classifier, answering in `mode` (a `hybrid` model: its bow part alone, the
    /// cascade, or both parts always; see [`Mode`]). Other models answer the same in every mode.
    pub fn with_mode(mut self, mode: Mode) -> Classifier {
        self.mode = mode;
        self
    }

    /// How a hybrid model answers (by default [`Mode::Cascade`]).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The number of threads the batch calls run on.
    pub fn threads(&self) -> usize {
        threads::count(self.threads)
    }

    /// The labels, in the order of the model's outputs.
    pub fn labels(&self) -> &[String] {
        &self.config.labels
    }

    /// The bundle's configuration: architecture, labels, training metadata.
    pub fn config(&self) -> &BundleConfig {
        &self.config
    }

    /// The subword tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// A smaller classifier that predicts (nearly) the same; see [`CompactOptions`]. Applies to
    /// `bow` models and the bow part of `hybrid` ones; the others come back unchanged.
    pub fn compact(&self, options: CompactOptions) -> Classifier {
        let model = match &self.model {
            Model::Bow(b) => Model::Bow(b.compact(options)),
            Model::Hybrid(h) => Model::Hybrid(h.compact(options)),
            // Nothing to fold; these are small already.
            m @ (Model::Transformer(_) | Model::Encoder(_)) => m.clone(),
        };
        let mut config = self.config.clone();
        config.architecture = model.config();
        Classifier {
            config,
            tokenizer: self.tokenizer.clone(),
            model,
            threads: self.threads,
            mode: self.mode,
            encoding_cache: self.encoding_cache.clone(),
        }
    }

    /// Class probabilities of one text, in label order.
    pub fn probabilities(&self, text: &str) -> Result<Vec<f32>> {
        let mut ws = Workspace::default();
        let mut out = Vec::new();
        self.probabilities_into(text, &mut ws, &mut out)?;
        Ok(out)
    }

    fn probabilities_into(&self, text: &str, ws: &mut Workspace, out: &mut Vec<f32>) -> Result<()> {
        self.model
            .logits_into(&self.tokenizer, text, self.mode, ws, out)?;
        self.logits_to_probabilities(out);
        Ok(())
    }

    /// [`Classifier::probabilities_into`] with the text's encoder vector computed already.
    fn probabilities_with(
        &self,
        text: &str,
        vector: Option<&[f32]>,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        self.model
            .logits_with(&self.tokenizer, text, vector, ws, out)?;
        self.logits_to_probabilities(out);
        Ok(())
    }

    /// The model's logits into the probabilities shown: their softmax, calibrated when the
    /// bundle has a [`Calibrator`](crate::model::Calibrator); for a multi-label model, each
    /// label's own score, the sigmoid of its logit.
    pub(crate) fn logits_to_probabilities(&self, logits: &mut [f32]) {
        if self.config.multi_label.is_some() {
            sigmoid_in_place(logits);
            return;
        }
        softmax_in_place(logits);
        if let Some(c) = &self.config.calibrator {
            c.apply(logits);
        }
    }

    /// Whether the model is multi-label (`khabar train --multi-label`): its scores are each
    /// label's own, and [`Prediction::labels`] holds every label over its threshold.
    pub fn is_multi_label(&self) -> bool {
        self.config.multi_label.is_some()
    }

    pub(crate) fn to_prediction(&self, probs: &[f32]) -> Prediction {
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let top: Vec<LabelScore> = order
            .iter()
            .map(|&i| LabelScore {
                label: self.config.labels[i].clone(),
                score: probs[i],
            })
            .collect();
        let labels = self.config.multi_label.as_ref().map(|m| {
            m.chosen(probs)
                .into_iter()
                .map(|i| LabelScore {
                    label: self.config.labels[i].clone(),
                    score: probs[i],
                })
                .collect()
        });
        Prediction {
            label: top[0].label.clone(),
            score: top[0].score,
            top,
            labels,
        }
    }

    /// Classifies one text. Any text is accepted, including an empty one (which gets the
    /// model's prior).
    pub fn predict(&self, text: &str) -> Result<Prediction> {
        Ok(self.to_prediction(&self.probabilities(text)?))
    }

    /// Classifies many texts in parallel (see [`Classifier::with_threads`]); results come back
    /// in input order.
    pub fn predict_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Prediction>> {
        self.map_batch(texts, |ws, logits, text, vector| {
            self.probabilities_with(text, vector, ws, logits)?;
            Ok(self.to_prediction(logits))
        })
    }

    /// Class probabilities (in label order) of many texts, in parallel, in input order: what
    /// [`Classifier::predict_batch`] computes, without building a [`Prediction`] for each.
    pub fn probabilities_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.map_batch(texts, |ws, probs, text, vector| {
            self.probabilities_with(text, vector, ws, probs)?;
            Ok(probs.clone())
        })
    }

    /// The same classifier, keeping the encoder's vectors of the texts its batch calls read
    /// (`probabilities_batch`, `predict_batch`, `evaluate`, ...) in the encoding cache under
    /// `root` (see [`EncodingCache`]; `khabar train --cache-dir DIR` keeps its vectors under
    /// `DIR/encodings`): texts read before are not encoded again, which makes a second
    /// evaluation on the same test set, or one of another model with the same encoder and
    /// `max_tokens`, fast. `None` (the default) keeps nothing. No effect on models without the
    /// encoder.
    pub fn with_encoding_cache(mut self, root: Option<PathBuf>) -> Classifier {
        self.encoding_cache = root;
        self
    }

    /// The index of the most probable label of each text, in parallel, in input order.
    pub fn predict_indices<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<usize>> {
        self.map_batch(texts, |ws, logits, text, vector| {
            self.model
                .logits_with(&self.tokenizer, text, vector, ws, logits)?;
            Ok(argmax(logits))
        })
    }

    /// `f` of each text, on this classifier's threads, in input order. A model that reads the
    /// encoder gets the vectors of the texts that need one first, encoded together (texts of
    /// similar length batched): every text for an `encoder` model; for a `hybrid`, those its
    /// mode sends to the encoder (the others get no vector, and the hybrid answers them with
    /// its bow part alone).
    pub(crate) fn map_batch<S, T>(
        &self,
        texts: &[S],
        f: impl Fn(&mut Workspace, &mut Vec<f32>, &str, Option<&[f32]>) -> Result<T> + Sync,
    ) -> Result<Vec<T>>
    where
        S: AsRef<str> + Sync,
        T: Send,
    {
        let vectors: Option<Vec<Option<Vec<f32>>>> = match self.model.encoder() {
            Some((encoder, max_tokens)) => {
                let needed: Vec<usize> = match &self.model {
                    Model::Hybrid(h) if self.mode != Mode::Accurate => {
                        let need = self.parallel(texts, |ws, logits, _, text| {
                            h.fast_logits_into(&self.tokenizer, text, &mut ws.bow, logits);
                            Ok(h.needs_encoder(self.mode, text, logits))
                        })?;
                        (0..texts.len()).filter(|&i| need[i]).collect()
                    }
                    _ => (0..texts.len()).collect(),
                };
                let chosen: Vec<&str> = needed.iter().map(|&i| texts[i].as_ref()).collect();
                let encoded = self.embed(encoder, max_tokens, &chosen)?;
                let mut all = vec![None; texts.len()];
                for (i, v) in needed.into_iter().zip(encoded) {
                    all[i] = Some(v);
                }
                Some(all)
            }
            None => None,
        };
        let vector = |i: usize| vectors.as_ref().and_then(|v| v[i].as_deref());
        self.parallel(texts, |ws, logits, i, text| f(ws, logits, text, vector(i)))
    }

    /// The encoder's vectors of `texts`: from the encoding cache where it has them (when this
    /// classifier keeps one), the others encoded (and stored there).
    fn embed(&self, encoder: &Encoder, max_tokens: usize, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let run = |texts: &[&str]| {
            encoder.embed_on(texts, max_tokens, self.threads, &|_| Ok(()), &|_| Ok(()))
        };
        let Some(root) = &self.encoding_cache else {
            return run(texts);
        };
        let cache = EncodingCache::for_encoder(root, encoder, max_tokens)?;
        let mut vectors = cache.get_many(texts)?.vectors;
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
        if !missing.is_empty() {
            let chosen: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            let encoded = run(&chosen)?;
            let entries: Vec<(&str, &[f32])> = chosen
                .iter()
                .copied()
                .zip(encoded.iter().map(Vec::as_slice))
                .collect();
            cache.put_many(&entries)?;
            for (i, v) in missing.into_iter().zip(encoded) {
                vectors[i] = Some(v);
            }
        }
        vectors
            .into_iter()
            .map(|v| v.ok_or_else(|| Error::Internal("a text was left unencoded".into())))
            .collect()
    }

    /// `f` of each text (with its index), on this classifier's threads, in input order; each
    /// thread reuses its workspace and logits buffer from one text to the next.
    fn parallel<S, T>(
        &self,
        texts: &[S],
        f: impl Fn(&mut Workspace, &mut Vec<f32>, usize, &str) -> Result<T> + Sync,
    ) -> Result<Vec<T>>
    where
        S: AsRef<str> + Sync,
        T: Send,
    {
        threads::install(self.threads, || {
            texts
                .par_iter()
                .enumerate()
                .with_min_len(self.min_len())
                .map_init(
                    || (Workspace::default(), Vec::new()),
                    |(ws, logits), (i, t)| f(ws, logits, i, t.as_ref()),
                )
                .collect()
        })?
    }

    /// Texts per parallel task: bow classifies a short text in microseconds (as do the
    /// encoder models once the vectors are there), the transformer in about a millisecond.
    fn min_len(&self) -> usize {
        match self.model {
            Model::Bow(_) | Model::Encoder(_) | Model::Hybrid(_) => 64,
            Model::Transformer(_) => 4,
        }
    }

    /// Measures the classifier on a labeled corpus (in parallel, see
    /// [`Classifier::with_threads`]): accuracy, macro-F1,
    /// per-class scores and the confusion matrix, as `khabar eval` reports them. The
    /// evaluation's labels are the model's, in order, followed by the labels of the corpus that
    /// the model does not know, sorted: those can never be predicted, so their examples count
    /// as errors.
    pub fn evaluate(&self, corpus: &Corpus) -> Result<Evaluation> {
        check_not_empty(corpus)?;
        let labels = self.labels_with(corpus);
        let index = |l: &str| labels.iter().position(|m| m == l).expect("added above");
        let texts: Vec<&str> = corpus.examples.iter().map(|e| e.text.as_str()).collect();
        let probs = self.probabilities_batch(&texts)?;
        let scored = corpus
            .examples
            .iter()
            .zip(&probs)
            .map(|(e, p)| {
                let truth = index(&e.label);
                let predicted = argmax(p);
                // The true label's place in the ranking (ties: the earlier label first, as
                // `Prediction::top` orders them); 0 for a label the model does not know.
                let rank = p.get(truth).map_or(0, |&pt| {
                    1 + p
                        .iter()
                        .enumerate()
                        .filter(|&(i, &q)| q > pt || (q == pt && i < truth))
                        .count()
                });
                Scored {
                    truth,
                    predicted,
                    confidence: p[predicted],
                    rank,
                }
            })
            .collect();
        Ok(Evaluation::from_scored(labels, scored))
    }

    /// The model's labels, in order, then the labels of `corpus` that it does not know, sorted.
    fn labels_with(&self, corpus: &Corpus) -> Vec<String> {
        let mut labels: Vec<String> = self.labels().to_vec();
        let mut extra: Vec<String> = corpus
            .label_counts()
            .keys()
            .filter(|l| !labels.iter().any(|m| m == *l))
            .map(|l| l.to_string())
            .collect();
        extra.sort();
        labels.extend(extra);
        labels
    }

    /// Measures a multi-label model on a corpus read with
    /// [`ReadOptions::multi_label`](crate::ReadOptions::multi_label): each article's labels
    /// against the labels the model answers (every one over its threshold), as `khabar eval`
    /// reports them. The labels are the model's, then the corpus's it does not know, sorted
    /// (never answered, so their articles count as misses). A single-label model is refused.
    pub fn evaluate_multi(&self, corpus: &Corpus) -> Result<MultiEvaluation> {
        check_not_empty(corpus)?;
        let Some(multi) = &self.config.multi_label else {
            return Err(crate::Error::Usage(
                "evaluate_multi measures a multi-label model (trained with --multi-label); \
                 this one is single-label: use evaluate"
                    .into(),
            ));
        };
        let labels = self.labels_with(corpus);
        let index = |l: &str| labels.iter().position(|m| m == l).expect("added above");
        let texts: Vec<&str> = corpus.examples.iter().map(|e| e.text.as_str()).collect();
        let scores = self.probabilities_batch(&texts)?;
        let deepest = PRECISION_AT.iter().copied().max().unwrap_or(1);
        let ranked = scores
            .iter()
            .map(|p| {
                let mut order: Vec<usize> = (0..p.len()).collect();
                order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
                order.truncate(deepest);
                order
            })
            .collect();
        Ok(MultiEvaluation {
            gold: corpus
                .examples
                .iter()
                .map(|e| e.labels().map(index).collect())
                .collect(),
            answered: scores.iter().map(|p| multi.chosen(p)).collect(),
            ranked,
            labels,
        })
    }
}

/// An evaluation needs articles: an empty corpus would give accuracy 0 of nothing.
fn check_not_empty(corpus: &Corpus) -> Result<()> {
    if corpus.is_empty() {
        return Err(crate::Error::Usage(
            "the corpus to evaluate on has no articles".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn classifier_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Classifier>();
    }
}
