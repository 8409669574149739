//! The model architectures. Models know nothing of files: they turn text (through the
//! tokenizer) into logits, and hand their weights to the bundle as named tensors.

pub mod bow;
mod ops;
pub mod transformer;

use std::collections::HashMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::rng::SplitMix64;
use crate::text::Tokenizer;
pub use bow::{Bow, BowConfig, CompactOptions, Loss, SparseOptimizer, Weighting};
pub use transformer::{Transformer, TransformerConfig};

/// An architecture and its hyperparameters, as recorded in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArchConfig {
    /// The fastText-style bag of subwords and n-grams.
    Bow(BowConfig),
    /// The small transformer encoder.
    Transformer(TransformerConfig),
}

impl ArchConfig {
    /// The architecture's name, as given to `--arch`.
    pub fn name(&self) -> &'static str {
        match self {
            ArchConfig::Bow(_) => "bow",
            ArchConfig::Transformer(_) => "transformer",
        }
    }
}

/// A trained model of any architecture.
#[derive(Debug, Clone)]
pub enum Model {
    /// A bag-of-n-grams model.
    Bow(Bow),
    /// A transformer encoder.
    Transformer(Transformer),
}

/// Per-thread buffers reused across predictions.
#[derive(Default)]
pub(crate) struct Workspace {
    bow: bow::Scratch,
    transformer: transformer::Scratch,
}

impl Model {
    /// The architecture and hyperparameters.
    pub fn config(&self) -> ArchConfig {
        match self {
            Model::Bow(m) => ArchConfig::Bow(m.config.clone()),
            Model::Transformer(m) => ArchConfig::Transformer(m.config.clone()),
        }
    }

    /// Number of trained weights.
    pub fn num_parameters(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_parameters(),
            Model::Transformer(m) => m.num_parameters(),
        }
    }

    /// Number of labels the model predicts.
    pub fn num_classes(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_classes(),
            Model::Transformer(m) => m.num_classes(),
        }
    }

    /// Logits of `text`, one per class, written to `out`.
    pub(crate) fn logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        match self {
            Model::Bow(m) => {
                m.logits_of(tokenizer, text, &mut ws.bow, out);
                Ok(())
            }
            Model::Transformer(m) => m.logits_into(tokenizer, text, &mut ws.transformer, out),
        }
    }

    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        match self {
            Model::Bow(m) => m.tensors(),
            Model::Transformer(m) => m.tensors(),
        }
    }

    pub(crate) fn from_tensors(
        config: ArchConfig,
        tokenizer: &Tokenizer,
        classes: usize,
        tensors: HashMap<String, Tensor>,
    ) -> std::result::Result<Model, String> {
        match config {
            ArchConfig::Bow(c) => {
                Bow::from_tensors(c, tokenizer.vocab_size(), classes, tensors).map(Model::Bow)
            }
            ArchConfig::Transformer(c) => {
                Transformer::from_tensors(c, tokenizer.vocab_size(), classes, &tensors)
                    .map(Model::Transformer)
            }
        }
    }
}

/// Makes candle run single-threaded inside khabar's own parallel tasks, once per process.
///
/// The transformer parallelizes over documents (prediction) and micro-batches (training) on
/// rayon's global pool. Inside those tasks candle's own threading only costs: its elementwise
/// ops on large tensors go to a thread pool whose threads spin while they wait and which
/// serializes concurrent callers (two thirds of a training step on a busy 2-core machine), and
/// its matrix products split small matrices over threads that are already busy (prediction
/// ran slower on two threads than on one). Without `RAYON_NUM_THREADS`, candle also reads
/// /proc/cpuinfo on every matrix product: bow's training step, whose products are tiny (batch
/// × labels), spent a tenth of its time on l3cube_en there. So: rayon's global pool is sized first (from
/// `RAYON_NUM_THREADS` or the core count, as usual), then `CANDLE_NUM_THREADS` is set to 1 unless
/// the user set it, and `RAYON_NUM_THREADS` to 1, which from then on only candle's matrix
/// products read.
pub(crate) fn prepare_runtime() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rayon::current_num_threads();
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
        std::env::set_var("RAYON_NUM_THREADS", "1");
    });
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

impl Fit for bow::BowTrainer {
    fn num_docs(&self) -> usize {
        bow::BowTrainer::num_docs(self)
    }

    fn summary(&self) -> String {
        format!("features: {} n-gram rows", self.num_ngrams())
    }

    fn begin(&mut self, n: usize) {
        bow::BowTrainer::begin(self, n)
    }

    fn batch_size(&self, configured: usize) -> usize {
        bow::BowTrainer::batch_size(self, configured)
    }

    fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        bow::BowTrainer::step(self, batch, lr)
    }

    fn snapshot(&mut self) -> Result<Model> {
        bow::BowTrainer::snapshot(self).map(Model::Bow)
    }

    fn restart(&mut self) -> Result<()> {
        bow::BowTrainer::restart(self)
    }

    fn predict_docs(&self, docs: std::ops::Range<usize>) -> Option<Result<Vec<usize>>> {
        Some(bow::BowTrainer::predict_docs(self, docs))
    }

    fn fork(&self) -> Result<Option<Box<dyn Fit + Send>>> {
        Ok(Some(Box::new(bow::BowTrainer::fork(self)?)))
    }

    fn end_epoch(&mut self) -> Option<f32> {
        self.take_violation()
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
