//! The model architectures. Models know nothing of files: they turn text (through the
//! tokenizer) into logits, and hand their weights to the bundle as named tensors.

pub mod bow;

use std::collections::HashMap;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::text::Tokenizer;
pub use bow::{Bow, BowConfig, CompactOptions, SparseOptimizer, Weighting};

/// An architecture and its hyperparameters, as recorded in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ArchConfig {
    /// The fastText-style bag of subwords and n-grams.
    Bow(BowConfig),
}

impl ArchConfig {
    /// The architecture's name, as given to `--arch`.
    pub fn name(&self) -> &'static str {
        match self {
            ArchConfig::Bow(_) => "bow",
        }
    }
}

/// A trained model of any architecture.
#[derive(Debug, Clone)]
pub enum Model {
    /// A bag-of-n-grams model.
    Bow(Bow),
}

/// Per-thread buffers reused across predictions.
#[derive(Default)]
pub(crate) struct Workspace {
    bow: bow::Scratch,
}

impl Model {
    /// The architecture and hyperparameters.
    pub fn config(&self) -> ArchConfig {
        match self {
            Model::Bow(m) => ArchConfig::Bow(m.config.clone()),
        }
    }

    /// Number of trained weights.
    pub fn num_parameters(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_parameters(),
        }
    }

    /// Number of labels the model predicts.
    pub fn num_classes(&self) -> usize {
        match self {
            Model::Bow(m) => m.num_classes(),
        }
    }

    /// Logits of `text`, one per class, written to `out`.
    pub(crate) fn logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        ws: &mut Workspace,
        out: &mut Vec<f32>,
    ) {
        match self {
            Model::Bow(m) => m.logits_of(tokenizer, text, &mut ws.bow, out),
        }
    }

    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        match self {
            Model::Bow(m) => m.tensors(),
        }
    }

    pub(crate) fn from_tensors(
        config: ArchConfig,
        tokenizer: &Tokenizer,
        classes: usize,
        tensors: &HashMap<String, Tensor>,
    ) -> std::result::Result<Model, String> {
        match config {
            ArchConfig::Bow(c) => {
                Bow::from_tensors(c, tokenizer.vocab_size(), classes, tensors).map(Model::Bow)
            }
        }
    }
}
