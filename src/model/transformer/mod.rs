//! The `transformer` model: a small encoder trained from scratch, which reads word order.
//!
//! A document becomes its WordPiece ids (the same tokenizer as `bow`). Token embeddings plus
//! learned position embeddings go through `layers` pre-LN blocks (multi-head self-attention with
//! a padding mask, then a GELU feed-forward layer, each with a residual connection and dropout),
//! a final layer norm, mean pooling over the real (unpadded) tokens, and a linear head.
//!
//! Long documents: the model reads `max_len` tokens at a time. At prediction a document is cut
//! into windows of `max_len` tokens that start every `stride` tokens (the last window is the
//! first that reaches the end), and the logits of its windows are averaged. Training reads the
//! first window of each document.
//!
//! Token embeddings are initialized from N(0, 0.02), weight matrices uniformly in
//! ±1/sqrt(fan-in), layer norms to the identity.
//!
//! Training (`TransformerTrainer`):
//! - The token-embedding table stays out of candle's autograd: for each micro-batch the
//!   distinct rows it uses are copied into a small candle variable, the network indexes that,
//!   and the rows' gradients get sparse ("lazy") AdamW updates. A step costs what the batch
//!   touches, not the size of the vocabulary.
//! - Everything else is ordinary candle variables with AdamW (decoupled weight decay on the
//!   weight matrices and embeddings, not on biases and norms), the gradient clipped by its
//!   global norm.
//! - Layer norm, the attention softmax, GELU and the bias add are custom ops with hand-written
//!   backward passes (`model/ops.rs`), checked against candle's tensor-op versions: candle's
//!   own fast layer norm and `softmax_last_dim` record no gradient, and the tensor-op
//!   compositions cost most of a step.
//! - A batch is split into micro-batches of `MICRO_BATCH` (8) documents that run forward and
//!   backward in parallel on all cores; their gradients are summed in a fixed order, so the
//!   thread count does not change the model. Dropout masks come from the seeded generator.

mod config;
mod model;
mod net;
mod params;
mod trainer;

#[cfg(test)]
mod tests;

pub use config::TransformerConfig;
pub(crate) use model::Scratch;
pub use model::Transformer;
pub(crate) use trainer::TransformerTrainer;
