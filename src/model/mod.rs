//! The model architectures. Models know nothing of files: they turn text (through the
//! tokenizer) into logits, and hand their weights to the bundle as named tensors.

pub(crate) mod adam;
pub mod bow;
mod calibrator;
mod dense;
pub mod encoder;
pub mod hybrid;
pub mod multilabel;
mod ops;
pub mod transformer;

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::text::Tokenizer;
pub use bow::{Bow, BowConfig, ClassWeight, CompactOptions, Loss, SparseOptimizer, Weighting};
pub use calibrator::Calibrator;
pub use dense::DenseHead;
pub use encoder::{Encoder, EncoderId};
pub use hybrid::{Cascade, EncoderArchConfig, EncoderModel, Hybrid, HybridConfig, Mode};
pub use multilabel::MultiLabel;
pub use transformer::{Transformer, TransformerConfig};

/// An architecture and its hyperparameters, as recorded in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArchConfig {
    /// The fastText-style bag of subwords and n-grams.
    Bow(BowConfig),
    /// The small transformer encoder.
    Transformer(TransformerConfig),
    /// The pretrained encoder's sentence vector and a linear layer.
    Encoder(EncoderArchConfig),
    /// bow and the pretrained encoder's layer, their logits weighted and added.
    Hybrid(HybridConfig),
}

impl ArchConfig {
    /// The architecture's name, as given to `--arch`.
    pub fn name(&self) -> &'static str {
        match self {
            ArchConfig::Bow(_) => "bow",
            ArchConfig::Transformer(_) => "transformer",
            ArchConfig::Encoder(_) => "encoder",
            ArchConfig::Hybrid(_) => "hybrid",
        }
    }

    /// Whether the architecture reads the pretrained encoder (`encoder`, `hybrid`).
    pub fn uses_encoder(&self) -> bool {
        matches!(self, ArchConfig::Encoder(_) | ArchConfig::Hybrid(_))
    }
}

/// Settings that passed their checks. Only the settings' own `check` makes one, so code that
/// takes a `Checked` value (the trainers, the bundle loader) checks nothing again.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T>(T);

impl<T> Checked<T> {
    /// The settings.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Checked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl ArchConfig {
    /// Checks the architecture's hyperparameters once; see [`BowConfig::check`] and
    /// [`TransformerConfig::check`].
    pub fn check(self) -> Result<Checked<ArchConfig>> {
        Ok(Checked(match self {
            ArchConfig::Bow(c) => ArchConfig::Bow(c.check()?.into_inner()),
            ArchConfig::Transformer(c) => ArchConfig::Transformer(c.check()?.into_inner()),
            ArchConfig::Encoder(c) => ArchConfig::Encoder(c.check()?.into_inner()),
            ArchConfig::Hybrid(c) => ArchConfig::Hybrid(c.check()?.into_inner()),
        }))
    }
}

/// The index of the largest value (the first of equal ones): the predicted class of logits.
pub(crate) fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// Logits into probabilities, in place.
pub(crate) fn softmax_in_place(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in xs.iter_mut() {
        *x /= sum;
    }
}

/// A trained model of any architecture.
// One per classifier, never in a collection: boxing the larger variants would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Model {
    /// A bag-of-n-grams model.
    Bow(Bow),
    /// A transformer encoder.
    Transformer(Transformer),
    /// The pretrained encoder's vector and a linear layer.
    Encoder(EncoderModel),
    /// bow and the pretrained encoder's layer.
    Hybrid(Hybrid),
}

/// Per-thread buffers reused across predictions.
#[derive(Default)]
pub(crate) struct Workspace {
    pub(crate) bow: bow::Scratch,
    transformer: transformer::Scratch,
    encoder_logits: Vec<f32>,
}

impl Model {
    /// The architecture and hyperparameters.
    pub fn config(&self) -> ArchConfig {
        match self {
            Model::Bow(m) => ArchConfig::Bow(m.config.clone()),
            Model::Transformer(m) => ArchConfig::Transformer(m.config.clone()),
            Model::Encoder(m) => ArchConfig::Encoder(m.config.clone()),
            Model::Hybrid(m) => ArchConfig::Hybrid(m.config.clone()),
        }
    }

    /// The pretrained encoder the model reads, and how many pieces of each text (`encoder`
    /// and `hybrid` models).
    pub fn encoder(&self) -> Option<(&Arc<Encoder>, usize)> {
        match self {
            Model::Encoder(m) => Some((&m.encoder, m.config.max_tokens)),
            Model::Hybrid(m) => Some((&m.encoder, m.config.max_tokens)),
            Model::Bow(_) | Model::Transformer(_) => None,
        }
    }

    /// Number of trained weights.
    pub fn num_parameters(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_parameters(),
            Model::Transformer(m) => m.num_parameters(),
            Model::Encoder(m) => m.num_parameters(),
            Model::Hybrid(m) => m.num_parameters(),
        }
    }

    /// Number of labels the model predicts.
    pub fn num_classes(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_classes(),
            Model::Transformer(m) => m.num_classes(),
            Model::Encoder(m) => m.head.classes(),
            Model::Hybrid(m) => m.bow.num_classes(),
        }
    }

    /// Logits of `text`, one per class, written to `out`. A model that reads the encoder
    /// encodes the text first, on the calling thread, when `mode` needs it (see [`Mode`]; other
    /// models ignore it); see [`Model::logits_with`] for texts whose vectors were computed
    /// together.
    pub(crate) fn logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        mode: Mode,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        if let Model::Hybrid(m) = self {
            m.fast_logits_into(tokenizer, text, &mut ws.bow, out);
            if !m.needs_encoder(mode, text, out) {
                return Ok(());
            }
        }
        let vector = match self.encoder() {
            Some((encoder, max_tokens)) => encoder
                .embed_on(&[text], max_tokens, Some(1), &|_| Ok(()), &|_| Ok(()))?
                .pop(),
            None => None,
        };
        self.logits_with(tokenizer, text, vector.as_deref(), ws, out)
    }

    /// Logits of `text` whose encoder vector (for a model that reads one) is `vector`. A
    /// hybrid given no vector answers with its bow part alone, calibrated
    /// ([`Mode::Fast`]).
    pub(crate) fn logits_with(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        vector: Option<&[f32]>,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let needed = || Error::Internal("an encoder model was given no vector".into());
        match self {
            Model::Bow(m) => {
                m.logits_of(tokenizer, text, &mut ws.bow, out);
                Ok(())
            }
            Model::Transformer(m) => m.logits_into(tokenizer, text, &mut ws.transformer, out),
            Model::Encoder(m) => {
                m.head.logits_into(vector.ok_or_else(needed)?, out);
                Ok(())
            }
            Model::Hybrid(m) => {
                match vector {
                    Some(v) => {
                        m.logits_into(tokenizer, text, v, &mut ws.bow, &mut ws.encoder_logits, out)
                    }
                    None => m.fast_logits_into(tokenizer, text, &mut ws.bow, out),
                }
                Ok(())
            }
        }
    }

    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        match self {
            Model::Bow(m) => m.tensors(),
            Model::Transformer(m) => m.tensors(),
            Model::Encoder(m) => m.tensors(),
            Model::Hybrid(m) => m.tensors(),
        }
    }

    /// The model of architecture `config` (checked) from the bundle's tensors; the error says
    /// what is wrong with the tensors. `encoder` is the encoder the bundle names, for the
    /// architectures that read one.
    pub(crate) fn from_tensors(
        config: Checked<ArchConfig>,
        tokenizer: &Tokenizer,
        classes: usize,
        tensors: HashMap<String, Tensor>,
        encoder: Option<Arc<Encoder>>,
    ) -> std::result::Result<Model, String> {
        let encoder = || encoder.ok_or_else(|| "no encoder was given for this model".to_string());
        match config.into_inner() {
            ArchConfig::Encoder(c) => {
                EncoderModel::from_tensors(Checked(c), classes, &tensors, encoder()?)
                    .map(Model::Encoder)
            }
            ArchConfig::Hybrid(c) => Hybrid::from_tensors(
                Checked(c),
                tokenizer.vocab_size(),
                classes,
                tensors,
                encoder()?,
            )
            .map(Model::Hybrid),
            ArchConfig::Bow(c) => {
                Bow::from_tensors(Checked(c), tokenizer.vocab_size(), classes, tensors)
                    .map(Model::Bow)
            }
            ArchConfig::Transformer(c) => {
                Transformer::from_tensors(Checked(c), tokenizer.vocab_size(), classes, &tensors)
                    .map(Model::Transformer)
            }
        }
    }
}

/// What the training loop (`train.rs`) needs of an architecture's training state.
pub(crate) trait Fit {
    /// Number of training documents.
    fn num_docs(&self) -> usize;

    /// One line describing the prepared model (features, parameters).
    fn summary(&self) -> String;

    /// Share of the steps over which the learning rate warms up (then it decays linearly).
    fn warmup(&self) -> f64 {
        0.0
    }

    /// The number of documents per step, given the configured one.
    fn batch_size(&self, configured: usize) -> usize {
        configured
    }

    /// The batches of one epoch, from the documents in shuffled `order`.
    fn batches(
        &self,
        order: &[usize],
        batch_size: usize,
        _rng: &mut SplitMix64,
    ) -> Vec<Vec<usize>> {
        order.chunks(batch_size).map(|b| b.to_vec()).collect()
    }

    /// Prepares a run that trains on the first `n` documents (called before its first epoch).
    fn begin(&mut self, _n: usize) {}

    /// One optimizer step on `batch` at learning rate `lr`; the batch's mean loss.
    fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32>;

    /// A copy of the model as it stands now.
    fn snapshot(&mut self) -> Result<Model>;

    /// Back to the initial weights of the same seed, keeping the prepared documents.
    fn restart(&mut self) -> Result<()>;

    /// The predicted class of each prepared document in `docs` (indices into the documents
    /// the trainer was built with), when the architecture can score them without their text.
    fn predict_docs(&self, _docs: std::ops::Range<usize>) -> Option<Result<Vec<usize>>> {
        None
    }

    /// A second trainer at the initial weights, sharing the prepared documents, that can run
    /// on another thread; `None` when the architecture has none to offer.
    fn fork(&self) -> Result<Option<Box<dyn Fit + Send>>> {
        Ok(None)
    }

    /// For a trainer that solves a convex problem to its optimum (the SVMs), called after each
    /// epoch: how far that epoch found the weights from the optimum (the largest violation of
    /// its optimality conditions). `None` for one whose epoch count is chosen on validation.
    fn end_epoch(&mut self) -> Option<f32> {
        None
    }
}

impl Fit for transformer::TransformerTrainer {
    fn num_docs(&self) -> usize {
        transformer::TransformerTrainer::num_docs(self)
    }

    fn summary(&self) -> String {
        format!("model: {} parameters", self.num_parameters())
    }

    fn warmup(&self) -> f64 {
        self.config().warmup as f64
    }

    fn batches(&self, order: &[usize], batch_size: usize, rng: &mut SplitMix64) -> Vec<Vec<usize>> {
        transformer::TransformerTrainer::batches(self, order, batch_size, rng)
    }

    fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        transformer::TransformerTrainer::step(self, batch, lr)
    }

    fn snapshot(&mut self) -> Result<Model> {
        transformer::TransformerTrainer::snapshot(self).map(Model::Transformer)
    }

    fn restart(&mut self) -> Result<()> {
        transformer::TransformerTrainer::restart(self)
    }
}
