//! The trained model (inference side): a document's ids, its windows and their logits, and the
//! model's named tensors.

use std::collections::{HashMap, HashSet};

use candle_core::{Device, Tensor};

use super::net::{Net, WORD};
use super::params::{Init, Loaded, Source};
use super::TransformerConfig;
use crate::error::Result;
use crate::model::Checked;
use crate::text::{for_each_word, normalize_into, Tokenizer};

/// The start of every window of a document of `n` tokens: `0, stride, 2 * stride, ...`, up to
/// the first window that reaches the end (a document of at most `max_len` tokens is one
/// window).
pub(super) fn window_starts(
    n: usize,
    max_len: usize,
    stride: usize,
) -> impl Iterator<Item = usize> {
    let count = if n <= max_len {
        1
    } else {
        (n - max_len).div_ceil(stride) + 1
    };
    (0..count).map(move |k| k * stride)
}

/// Reusable buffers for tokenization.
#[derive(Default)]
pub(crate) struct Scratch {
    norm: String,
    pub(super) ids: Vec<u32>,
}

/// The subword ids of `text` into `scratch.ids`; an empty text is one `[UNK]`, so that every
/// document has a token to pool.
pub(super) fn encode_into(tokenizer: &Tokenizer, text: &str, scratch: &mut Scratch) {
    let Scratch { norm, ids } = scratch;
    normalize_into(text, norm);
    ids.clear();
    for_each_word(norm, |w| tokenizer.encode_word(w, ids));
    if ids.is_empty() {
        ids.push(tokenizer.unk_id());
    }
}

/// Documents run through the network at once at prediction (windows of one document).
const WINDOW_BATCH: usize = 16;

/// A trained `transformer` model (inference side). Its tensors are plain CPU tensors, which are
/// `Send + Sync`: one model serves many threads.
#[derive(Debug, Clone)]
pub struct Transformer {
    pub(crate) config: TransformerConfig,
    word: Tensor,
    net: Net,
    classes: usize,
    /// Every tensor by its bundle name (shares storage with `word` and `net`).
    named: Vec<(String, Tensor)>,
}

impl Transformer {
    /// Number of labels.
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// Number of parameters.
    pub fn num_parameters(&self) -> usize {
        self.named.iter().map(|(_, t)| t.elem_count()).sum()
    }

    /// Logits of `text`, the mean over its windows, written to `out`.
    pub(crate) fn logits_into(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        scratch: &mut Scratch,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        encode_into(tokenizer, text, scratch);
        self.logits_of_ids(&scratch.ids, out)
    }

    /// Logits of a document given as subword ids (at least one), the mean over its windows.
    pub(super) fn logits_of_ids(&self, ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
        let c = &self.config;
        let n = ids.len();
        out.clear();
        out.resize(self.classes, 0.0);
        let starts: Vec<usize> = window_starts(n, c.max_len, c.stride).collect();
        let mut flat = Vec::new();
        for chunk in starts.chunks(WINDOW_BATCH) {
            let lens: Vec<usize> = chunk.iter().map(|&s| (n - s).min(c.max_len)).collect();
            let width = lens.iter().copied().max().unwrap_or(1);
            flat.clear();
            for (&s, &len) in chunk.iter().zip(&lens) {
                flat.extend_from_slice(&ids[s..s + len]);
                // Padding: any valid row; it is masked out.
                flat.resize(flat.len() + width - len, 0);
            }
            let idx = Tensor::from_slice(&flat, flat.len(), &Device::Cpu)?;
            let x = self
                .word
                .index_select(&idx, 0)?
                .reshape((chunk.len(), width, c.d_model))?;
            let logits = self.net.forward(x, &lens, &mut None)?;
            for row in logits.to_vec2::<f32>()? {
                for (o, v) in out.iter_mut().zip(row) {
                    *o += v;
                }
            }
        }
        let inv = 1.0 / starts.len() as f32;
        out.iter_mut().for_each(|o| *o *= inv);
        Ok(())
    }

    /// Named tensors for the bundle's `model.safetensors`.
    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(self.named.clone())
    }

    /// Rebuilds the model from named tensors, checking every name, type and shape.
    pub(crate) fn from_tensors(
        config: Checked<TransformerConfig>,
        vocab: usize,
        classes: usize,
        tensors: &HashMap<String, Tensor>,
    ) -> std::result::Result<Transformer, String> {
        let config = config.into_inner();
        let mut src = Loaded {
            tensors,
            used: Vec::new(),
        };
        let word = src.get(WORD, &[vocab, config.d_model], Init::Zeros, true)?;
        let net = Net::new(&mut src, &config, classes)?;
        let used: HashSet<&String> = src.used.iter().collect();
        let mut extra: Vec<&String> = tensors.keys().filter(|k| !used.contains(k)).collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(format!(
                "unexpected tensor(s) {extra:?} for a {}-layer transformer",
                config.layers
            ));
        }
        let named = src
            .used
            .iter()
            .map(|name| (name.clone(), tensors[name].clone()))
            .collect();
        Ok(Transformer {
            config,
            word,
            net,
            classes,
            named,
        })
    }
}
