//! The model's hyperparameters and their validation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Checked;

/// Hyperparameters of the `transformer` model, and the training settings that belong to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Number of encoder blocks.
    pub layers: usize,
    /// Width of the token vectors.
    pub d_model: usize,
    /// Attention heads per block (`d_model` must be a multiple).
    pub heads: usize,
    /// Width of the feed-forward layer.
    pub ff: usize,
    /// Most tokens the model reads at once (one window).
    pub max_len: usize,
    /// Tokens between the starts of consecutive windows of a long document (at most
    /// `max_len`).
    pub stride: usize,
    /// Dropout rate in training (embeddings and the output of every sublayer).
    pub dropout: f32,
    /// Share of the training steps over which the learning rate warms up linearly from zero;
    /// it then decays linearly to zero.
    pub warmup: f32,
    /// AdamW's decoupled weight decay (weight matrices and embeddings only).
    pub weight_decay: f32,
    /// The gradient is scaled down when its global L2 norm exceeds this (0: no clipping).
    pub clip_norm: f32,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            layers: 2,
            d_model: 128,
            heads: 4,
            ff: 256,
            max_len: 128,
            stride: 64,
            dropout: 0.1,
            warmup: 0.1,
            weight_decay: 0.01,
            clip_norm: 1.0,
        }
    }
}

impl TransformerConfig {
    /// Checks the hyperparameters once; the error names the field at fault
    /// ([`Error::Config`]). The trainer and the bundle loader take the checked settings.
    pub fn check(self) -> Result<Checked<TransformerConfig>> {
        let range = |name: &'static str, v: usize, lo: usize, hi: usize| {
            if v < lo || v > hi {
                Err(Error::config(
                    name,
                    format!("must be between {lo} and {hi} (got {v})"),
                ))
            } else {
                Ok(())
            }
        };
        range("layers", self.layers, 1, 48)?;
        range("d_model", self.d_model, 2, 4096)?;
        range("heads", self.heads, 1, 64)?;
        range("ff", self.ff, 1, 16384)?;
        range("max_len", self.max_len, 1, 8192)?;
        range("stride", self.stride, 1, self.max_len)?;
        if self.d_model % self.heads != 0 {
            return Err(Error::config(
                "d_model",
                format!(
                    "({}) must be a multiple of heads ({})",
                    self.d_model, self.heads
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", "must be at least 0 and below 1"));
        }
        if !(0.0..1.0).contains(&self.warmup) {
            return Err(Error::config("warmup", "must be at least 0 and below 1"));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::config("weight_decay", "must be 0 or more"));
        }
        if !(self.clip_norm >= 0.0 && self.clip_norm.is_finite()) {
            return Err(Error::config("clip_norm", "must be 0 or more"));
        }
        Ok(Checked(self))
    }
}
