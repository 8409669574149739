//! The encoder directory's `config.json`: what the model is, and the checksums of its files.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The directory's configuration file.
pub(super) const CONFIG_FILE: &str = "config.json";
/// The weights: Q4_0 blocks (U8) for the word table and the linear layers, f32 for the rest.
pub(super) const WEIGHTS_FILE: &str = "encoder.safetensors";
/// The tokenizer (`tokenizers`' JSON, an XLM-R Unigram model).
pub(super) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The value of `format` in an encoder's `config.json`.
const FORMAT: &str = "khabar-encoder";
/// The newest `format_version` this build reads.
const FORMAT_VERSION: u32 = 1;

/// The contents of `config.json`, as `models/encoder/convert.py` writes it. Fields this build
/// does not use (the sources, the pruning) are informational and ignored.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct EncoderConfig {
    pub format: String,
    pub format_version: u32,
    /// The model's name (`multilingual-e5-small`).
    pub name: String,
    /// Width of the hidden states (384).
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    /// Width of the feed-forward layer (1,536).
    pub intermediate: usize,
    /// Rows of the position table: the longest input, `<s>` and `</s>` included.
    pub max_positions: usize,
    /// Rows of the token-type table (only row 0 is used).
    pub type_vocab: usize,
    pub layer_norm_eps: f64,
    /// Pieces of the tokenizer and rows of the word table.
    pub vocab_size: usize,
    /// Put before every text ("query: ").
    pub prefix: String,
    /// How token states become one vector: "mean" over the real tokens.
    pub pooling: String,
    /// SHA-256 (hex) of the files, by name.
    pub files: BTreeMap<String, String>,
}

/// The block size of Q4_0: rows of the quantized matrices hold whole blocks.
const Q4_BLOCK: usize = 32;

impl EncoderConfig {
    /// Checks the settings once; the error names the field and says what is wrong.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        let bad = |field, reason: String| Err((field, reason));
        if self.format != FORMAT {
            return bad("format", format!("is '{}', not '{FORMAT}'", self.format));
        }
        if self.format_version > FORMAT_VERSION {
            return bad(
                "format_version",
                format!(
                    "is {}, newer than this khabar reads ({FORMAT_VERSION}); upgrade khabar",
                    self.format_version
                ),
            );
        }
        if self.pooling != "mean" {
            return bad(
                "pooling",
                format!("is '{}'; only 'mean' is known", self.pooling),
            );
        }
        if self.hidden == 0 || self.hidden % Q4_BLOCK != 0 {
            return bad(
                "hidden",
                format!("must be a positive multiple of {Q4_BLOCK}"),
            );
        }
        if self.heads == 0 || self.hidden % self.heads != 0 {
            return bad("heads", format!("must divide hidden ({})", self.hidden));
        }
        if self.intermediate == 0 || self.intermediate % Q4_BLOCK != 0 {
            return bad(
                "intermediate",
                format!("must be a positive multiple of {Q4_BLOCK}"),
            );
        }
        if self.layers == 0 {
            return bad("layers", "must be at least 1".into());
        }
        if self.max_positions < 3 {
            return bad("max_positions", "must be at least 3".into());
        }
        if self.type_vocab == 0 {
            return bad("type_vocab", "must be at least 1".into());
        }
        if self.vocab_size == 0 {
            return bad("vocab_size", "must be at least 1".into());
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad("layer_norm_eps", "must be a positive number".into());
        }
        Ok(())
    }
}
