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
//! - The token-embedding table stays out of candle's autograd (DESIGN.md): for each micro-batch
//!   the distinct rows it uses are copied into a small candle variable, the network indexes that,
//!   and the rows' gradients get sparse ("lazy") AdamW updates. A step costs what the batch
//!   touches, not the size of the vocabulary.
//! - Everything else is ordinary candle variables with AdamW (decoupled weight decay on the
//!   weight matrices and embeddings, not on biases and norms), the gradient clipped by its
//!   global norm.
//! - Layer norm, the attention softmax, GELU and the bias add are custom ops with hand-written
//!   backward passes (`ops.rs`), checked against candle's tensor-op versions: candle's own fast
//!   layer norm and `softmax_last_dim` record no gradient, and the tensor-op compositions cost
//!   most of a step.
//! - A batch is split into micro-batches of `MICRO_BATCH` (8) documents that run forward and
//!   backward in parallel on all cores; their gradients are summed in a fixed order, so the
//!   thread count does not change the model. Dropout masks come from the seeded generator.

use std::collections::{HashMap, HashSet};

use candle_core::{DType, Device, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ops;
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::text::{for_each_word, normalize_into, Tokenizer};

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
    /// Checks the hyperparameters; the error names the CLI option at fault.
    pub fn validate(&self) -> Result<()> {
        let range = |name: &str, v: usize, lo: usize, hi: usize| {
            if v < lo || v > hi {
                Err(Error::Usage(format!(
                    "--{name} must be between {lo} and {hi} (got {v})"
                )))
            } else {
                Ok(())
            }
        };
        range("layers", self.layers, 1, 48)?;
        range("d-model", self.d_model, 2, 4096)?;
        range("heads", self.heads, 1, 64)?;
        range("ff", self.ff, 1, 16384)?;
        range("max-len", self.max_len, 1, 8192)?;
        range("stride", self.stride, 1, self.max_len)?;
        if self.d_model % self.heads != 0 {
            return Err(Error::Usage(format!(
                "--d-model ({}) must be a multiple of --heads ({})",
                self.d_model, self.heads
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Usage(
                "--dropout must be at least 0 and below 1".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.warmup) {
            return Err(Error::Usage(
                "--warmup must be at least 0 and below 1".into(),
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::Usage("--weight-decay must be 0 or more".into()));
        }
        if !(self.clip_norm >= 0.0 && self.clip_norm.is_finite()) {
            return Err(Error::Usage("--clip-norm must be 0 or more".into()));
        }
        Ok(())
    }
}

/// The start of every window of a document of `n` tokens: `0, stride, 2 * stride, ...`, up to
/// the first window that reaches the end (a document of at most `max_len` tokens is one
/// window).
pub(crate) fn window_starts(
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
    ids: Vec<u32>,
}

/// The subword ids of `text` into `scratch.ids`; an empty text is one `[UNK]`, so that every
/// document has a token to pool.
fn encode_into(tokenizer: &Tokenizer, text: &str, scratch: &mut Scratch) {
    let Scratch { norm, ids } = scratch;
    normalize_into(text, norm);
    ids.clear();
    for_each_word(norm, |w| tokenizer.encode_word(w, ids));
    if ids.is_empty() {
        ids.push(tokenizer.unk_id());
    }
}

/// How a fresh parameter is initialized.
#[derive(Clone, Copy)]
enum Init {
    /// Normal with this standard deviation.
    Normal(f32),
    /// Uniform in `[-bound, bound]`.
    Uniform(f32),
    Ones,
    Zeros,
}

/// Where the network's tensors come from: fresh variables (training) or a bundle (loading).
trait Source {
    /// The tensor called `name`, of shape `shape`. `decay`: whether weight decay applies.
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> std::result::Result<Tensor, String>;
}

/// A trainable dense parameter and its AdamW state.
struct Param {
    name: String,
    var: Var,
    decay: bool,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Fresh, randomly initialized variables.
struct Fresh {
    rng: SplitMix64,
    dtype: DType,
    params: Vec<Param>,
}

fn init_values(rng: &mut SplitMix64, n: usize, init: Init) -> Vec<f32> {
    match init {
        Init::Normal(std) => (0..n).map(|_| rng.next_normal() * std).collect(),
        Init::Uniform(b) => (0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * b).collect(),
        Init::Ones => vec![1.0; n],
        Init::Zeros => vec![0.0; n],
    }
}

impl Source for Fresh {
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> std::result::Result<Tensor, String> {
        let n: usize = shape.iter().product();
        let values = init_values(&mut self.rng, n, init);
        let var = Tensor::from_vec(values, shape, &Device::Cpu)
            .and_then(|t| t.to_dtype(self.dtype))
            .and_then(|t| Var::from_tensor(&t))
            .map_err(|e| e.to_string())?;
        let t = var.as_tensor().clone();
        self.params.push(Param {
            name: name.to_string(),
            var,
            decay,
            m: vec![0.0; n],
            v: vec![0.0; n],
        });
        Ok(t)
    }
}

/// Tensors read from a bundle, checked for name, type, shape and finiteness.
struct Loaded<'a> {
    tensors: &'a HashMap<String, Tensor>,
    /// The names read, in order.
    used: Vec<String>,
}

impl Source for Loaded<'_> {
    fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        _init: Init,
        _decay: bool,
    ) -> std::result::Result<Tensor, String> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| format!("tensor '{name}' is missing"))?;
        if t.dtype() != DType::F32 {
            return Err(format!(
                "tensor '{name}' has type {:?}, expected F32",
                t.dtype()
            ));
        }
        if t.dims() != shape {
            return Err(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                t.dims()
            ));
        }
        let finite = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| e.to_string())?
            .iter()
            .all(|x| x.is_finite());
        if !finite {
            return Err(format!("tensor '{name}' holds NaN or infinite values"));
        }
        self.used.push(name.to_string());
        Ok(t.clone())
    }
}

type CResult<T> = candle_core::Result<T>;

/// `x W^T + b`, with `w` of shape `[out, in]` (as in BERT checkpoints).
#[derive(Debug, Clone)]
struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(src: &mut dyn Source, name: &str, out: usize, inp: usize) -> StrResult<Linear> {
        let bound = 1.0 / (inp as f32).sqrt();
        Ok(Linear {
            w: src.get(
                &format!("{name}.weight"),
                &[out, inp],
                Init::Uniform(bound),
                true,
            )?,
            b: src.get(&format!("{name}.bias"), &[out], Init::Zeros, false)?,
        })
    }

    /// `x`: `[n, in]` -> `[n, out]`.
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        ops::add_bias(&x.matmul(&self.w.t()?)?, &self.b)
    }
}

type StrResult<T> = std::result::Result<T, String>;

/// Layer normalization over the last dimension, from differentiable tensor ops.
#[derive(Debug, Clone)]
struct LayerNorm {
    g: Tensor,
    b: Tensor,
}

const LN_EPS: f64 = 1e-5;

impl LayerNorm {
    fn new(src: &mut dyn Source, name: &str, dim: usize) -> StrResult<LayerNorm> {
        Ok(LayerNorm {
            g: src.get(&format!("{name}.weight"), &[dim], Init::Ones, false)?,
            b: src.get(&format!("{name}.bias"), &[dim], Init::Zeros, false)?,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        // Not candle_nn::LayerNorm::forward: its fast path records no gradient.
        ops::layer_norm(x, &self.g, &self.b, LN_EPS)
    }
}

/// Inverted dropout with masks from the seeded generator (candle's own dropout draws from a
/// generator that cannot be seeded, which would make training unrepeatable).
struct Dropout {
    p: f32,
    rng: SplitMix64,
}

impl Dropout {
    fn apply(drop: &mut Option<Dropout>, x: Tensor) -> CResult<Tensor> {
        let Some(d) = drop else { return Ok(x) };
        if d.p == 0.0 {
            return Ok(x);
        }
        let keep = 1.0 / (1.0 - d.p);
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if d.rng.next_f32() < d.p { 0.0 } else { keep })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// Multi-head self-attention with its (pre-)layer norm.
#[derive(Debug, Clone)]
struct Attention {
    norm: LayerNorm,
    qkv: Linear,
    output: Linear,
    heads: usize,
}

impl Attention {
    fn new(src: &mut dyn Source, name: &str, c: &TransformerConfig) -> StrResult<Attention> {
        let d = c.d_model;
        Ok(Attention {
            norm: LayerNorm::new(src, &format!("{name}.norm"), d)?,
            qkv: Linear::new(src, &format!("{name}.qkv"), 3 * d, d)?,
            output: Linear::new(src, &format!("{name}.output"), d, d)?,
            heads: c.heads,
        })
    }

    /// `x`: `[b * l, d]`, `b` sequences of `l` tokens padded after `lens[i]`.
    fn forward(&self, x: &Tensor, b: usize, l: usize, lens: &[usize]) -> CResult<Tensor> {
        let d = x.dim(1)?;
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = self
            .qkv
            .forward(&self.norm.forward(x)?)?
            .reshape((b, l, 3, h, dh))?
            .permute((2, 0, 3, 1, 4))? // [3, b, h, l, dh]
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?)?; // [b, h, l, l]
                                         // Not softmax_last_dim: it records no gradient. Padded keys get probability 0.
        let p = ops::attention_softmax(&scores, lens, 1.0 / (dh as f64).sqrt())?;
        let ctx = p.matmul(&v)?.transpose(1, 2)?.reshape((b * l, d))?;
        self.output.forward(&ctx)
    }
}

/// The GELU feed-forward layer with its (pre-)layer norm.
#[derive(Debug, Clone)]
struct FeedForward {
    norm: LayerNorm,
    up: Linear,
    down: Linear,
}

impl FeedForward {
    fn new(src: &mut dyn Source, name: &str, c: &TransformerConfig) -> StrResult<FeedForward> {
        Ok(FeedForward {
            norm: LayerNorm::new(src, &format!("{name}.norm"), c.d_model)?,
            up: Linear::new(src, &format!("{name}.up"), c.ff, c.d_model)?,
            down: Linear::new(src, &format!("{name}.down"), c.d_model, c.ff)?,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = ops::gelu(&self.up.forward(&self.norm.forward(x)?)?)?;
        self.down.forward(&h)
    }
}

/// One pre-LN encoder block: `x + attention(ln(x))`, then `x + ffn(ln(x))`.
#[derive(Debug, Clone)]
struct Block {
    attention: Attention,
    ffn: FeedForward,
}

impl Block {
    fn new(src: &mut dyn Source, name: &str, c: &TransformerConfig) -> StrResult<Block> {
        Ok(Block {
            attention: Attention::new(src, &format!("{name}.attention"), c)?,
            ffn: FeedForward::new(src, &format!("{name}.ffn"), c)?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        b: usize,
        l: usize,
        lens: &[usize],
        drop: &mut Option<Dropout>,
    ) -> CResult<Tensor> {
        let a = Dropout::apply(drop, self.attention.forward(x, b, l, lens)?)?;
        let x = (x + a)?;
        let f = Dropout::apply(drop, self.ffn.forward(&x)?)?;
        x + f
    }
}

/// Everything after the token embeddings: positions, blocks, final norm, pooling, head.
#[derive(Debug, Clone)]
struct Net {
    position: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

/// Name of the token-embedding table in the bundle.
const WORD: &str = "embeddings.word.weight";
/// Standard deviation of the initial embeddings (BERT's).
const EMBED_STD: f32 = 0.02;

impl Net {
    fn new(src: &mut dyn Source, c: &TransformerConfig, classes: usize) -> StrResult<Net> {
        let position = src.get(
            "embeddings.position.weight",
            &[c.max_len, c.d_model],
            Init::Normal(EMBED_STD),
            true,
        )?;
        let blocks = (0..c.layers)
            .map(|i| Block::new(src, &format!("encoder.layer.{i}"), c))
            .collect::<StrResult<Vec<_>>>()?;
        Ok(Net {
            position,
            blocks,
            norm: LayerNorm::new(src, "encoder.norm", c.d_model)?,
            head: Linear::new(src, "head", classes, c.d_model)?,
        })
    }

    /// Logits `[b, classes]` of `b` token sequences whose embeddings are `x` (`[b, l, d]`),
    /// padded after `lens[i]` tokens.
    fn forward(&self, x: Tensor, lens: &[usize], drop: &mut Option<Dropout>) -> CResult<Tensor> {
        let (b, l, d) = x.dims3()?;
        let (dev, dtype) = (x.device().clone(), x.dtype());
        let x = x.broadcast_add(&self.position.narrow(0, 0, l)?)?;
        let mut x = Dropout::apply(drop, x)?.reshape((b * l, d))?;
        for block in &self.blocks {
            x = block.forward(&x, b, l, lens, drop)?;
        }
        let mut pool = vec![0f32; b * l];
        for (i, &n) in lens.iter().enumerate() {
            pool[i * l..i * l + n].fill(1.0 / n as f32);
        }
        let x = self.norm.forward(&x)?.reshape((b, l, d))?;
        // Mean over the real tokens: padding has weight 0.
        let pool = Tensor::from_vec(pool, (b, l, 1), &dev)?.to_dtype(dtype)?;
        let pooled = x.broadcast_mul(&pool)?.sum(1)?;
        self.head.forward(&pooled)
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
    pub(crate) fn logits_of_ids(&self, ids: &[u32], out: &mut Vec<f32>) -> Result<()> {
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
        config: TransformerConfig,
        vocab: usize,
        classes: usize,
        tensors: &HashMap<String, Tensor>,
    ) -> std::result::Result<Transformer, String> {
        config.validate().map_err(|e| e.to_string())?;
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

/// Documents per micro-batch: the unit of parallel work in a training step. Fixed (not derived
/// from the thread count) so that every thread count gives the same model.
pub(crate) const MICRO_BATCH: usize = 8;
/// Batches of similar length are cut from groups of this many batches.
const BUCKET_BATCHES: usize = 50;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const ADAM_EPS: f32 = 1e-8;

/// Training-time state of a `transformer` model.
pub(crate) struct TransformerTrainer {
    config: TransformerConfig,
    dtype: DType,
    classes: usize,
    vocab: usize,
    /// The first window of every training document.
    docs: Vec<Vec<u32>>,
    targets: Vec<u32>,
    /// The token-embedding table (row-major `vocab x d_model`), kept out of autograd, and its
    /// AdamW moments.
    table: Vec<f32>,
    table_m: Vec<f32>,
    table_v: Vec<f32>,
    /// Per-row slot in the batch gradient buffer (u32::MAX: untouched).
    slot: Vec<u32>,
    params: Vec<Param>,
    net: Net,
    step: u64,
    seed: u64,
}

/// The loss and gradients of one micro-batch.
struct Grads {
    /// The micro-batch's share of the batch's mean loss.
    loss: f64,
    /// Gradient of every dense parameter (in `params` order), flattened.
    dense: Vec<Vec<f32>>,
    /// The table rows used (sorted) and their gradients (`rows.len() x d_model`).
    rows: Vec<u32>,
    row_grads: Vec<f32>,
}

impl TransformerTrainer {
    /// Tokenizes the training texts and initializes the weights from `seed`.
    pub fn new(
        config: TransformerConfig,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
        seed: u64,
    ) -> Result<TransformerTrainer> {
        Self::with_dtype(config, tokenizer, texts, targets, classes, seed, DType::F32)
    }

    /// As [`TransformerTrainer::new`], computing in `dtype` (F64 for gradient checks).
    fn with_dtype(
        config: TransformerConfig,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
        seed: u64,
        dtype: DType,
    ) -> Result<TransformerTrainer> {
        config.validate()?;
        let max_len = config.max_len;
        let docs: Vec<Vec<u32>> = texts
            .par_iter()
            .map_init(Scratch::default, |s, t| {
                encode_into(tokenizer, t, s);
                s.ids[..s.ids.len().min(max_len)].to_vec()
            })
            .collect();
        let vocab = tokenizer.vocab_size();
        let (table, params, net) = Self::fresh_weights(&config, vocab, classes, seed, dtype)?;
        Ok(TransformerTrainer {
            config,
            dtype,
            classes,
            vocab,
            docs,
            targets,
            table_m: vec![0.0; table.len()],
            table_v: vec![0.0; table.len()],
            table,
            slot: vec![u32::MAX; vocab],
            params,
            net,
            step: 0,
            seed,
        })
    }

    /// The initial weights for `seed`: the embedding table, the dense parameters and the
    /// network that uses them.
    fn fresh_weights(
        config: &TransformerConfig,
        vocab: usize,
        classes: usize,
        seed: u64,
        dtype: DType,
    ) -> Result<(Vec<f32>, Vec<Param>, Net)> {
        let mut rng = SplitMix64::new(seed);
        let table = init_values(&mut rng, vocab * config.d_model, Init::Normal(EMBED_STD));
        let mut fresh = Fresh {
            rng,
            dtype,
            params: Vec::new(),
        };
        let net = Net::new(&mut fresh, config, classes).map_err(Error::Usage)?;
        Ok((table, fresh.params, net))
    }

    /// Sets the weights and the optimizer state to what [`TransformerTrainer::new`] gives,
    /// keeping the encoded documents.
    pub fn restart(&mut self) -> Result<()> {
        let (table, params, net) = Self::fresh_weights(
            &self.config,
            self.vocab,
            self.classes,
            self.seed,
            self.dtype,
        )?;
        self.table_m = vec![0.0; table.len()];
        self.table_v = vec![0.0; table.len()];
        self.table = table;
        self.params = params;
        self.net = net;
        self.step = 0;
        Ok(())
    }

    pub fn num_docs(&self) -> usize {
        self.docs.len()
    }

    pub fn config(&self) -> &TransformerConfig {
        &self.config
    }

    /// Number of trained weights.
    pub fn num_parameters(&self) -> usize {
        self.table.len()
            + self
                .params
                .iter()
                .map(|p| p.var.elem_count())
                .sum::<usize>()
    }

    /// Batches for one epoch from the shuffled `order`: each group of [`BUCKET_BATCHES`] batches
    /// is sorted by length and cut into batches (less padding), and the batches are shuffled.
    pub fn batches(
        &self,
        order: &[usize],
        batch_size: usize,
        rng: &mut SplitMix64,
    ) -> Vec<Vec<usize>> {
        let mut out = Vec::with_capacity(order.len().div_ceil(batch_size));
        for group in order.chunks(batch_size * BUCKET_BATCHES) {
            let mut g = group.to_vec();
            g.sort_by_key(|&d| self.docs[d].len());
            out.extend(g.chunks(batch_size).map(|b| b.to_vec()));
        }
        rng.shuffle(&mut out);
        out
    }

    /// The seed of the dropout masks of micro-batch `i` of step `step`.
    fn dropout_seed(&self, step: u64, i: usize) -> u64 {
        let mut r = SplitMix64::new(self.seed ^ 0x6472_6f70_6f75_7400);
        r.next_u64();
        r.next_u64()
            .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add((i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// Runs the documents `docs` forward: the logits and the candle variable holding the table
    /// rows they use (`rows`, sorted).
    fn forward(
        &self,
        docs: &[usize],
        drop: &mut Option<Dropout>,
    ) -> Result<(Tensor, Var, Vec<u32>)> {
        let d = self.config.d_model;
        let dev = Device::Cpu;
        let mut rows: Vec<u32> = docs
            .iter()
            .flat_map(|&i| self.docs[i].iter().copied())
            .collect();
        rows.sort_unstable();
        rows.dedup();
        let lens: Vec<usize> = docs.iter().map(|&i| self.docs[i].len()).collect();
        let l = lens.iter().copied().max().unwrap_or(1);
        let mut local = Vec::with_capacity(docs.len() * l);
        for &i in docs {
            let doc = &self.docs[i];
            local.extend(
                doc.iter()
                    .map(|id| rows.binary_search(id).expect("row gathered") as u32),
            );
            local.resize(local.len() + l - doc.len(), 0);
        }
        let mut gathered = Vec::with_capacity(rows.len() * d);
        for &r in &rows {
            gathered.extend_from_slice(&self.table[r as usize * d..(r as usize + 1) * d]);
        }
        let emb = Var::from_tensor(
            &Tensor::from_vec(gathered, (rows.len(), d), &dev)?.to_dtype(self.dtype)?,
        )?;
        let idx = Tensor::from_vec(local, docs.len() * l, &dev)?;
        let x = emb.index_select(&idx, 0)?.reshape((docs.len(), l, d))?;
        let logits = self.net.forward(x, &lens, drop)?;
        Ok((logits, emb, rows))
    }

    /// The mean cross-entropy of `docs` (a candle scalar), with dropout masks from `seed`.
    fn loss(&self, docs: &[usize], seed: u64) -> Result<(Tensor, Var, Vec<u32>)> {
        let mut drop = Some(Dropout {
            p: self.config.dropout,
            rng: SplitMix64::new(seed),
        });
        let (logits, emb, rows) = self.forward(docs, &mut drop)?;
        let targets: Vec<u32> = docs.iter().map(|&i| self.targets[i]).collect();
        let targets = Tensor::from_vec(targets, docs.len(), &Device::Cpu)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
        Ok((loss, emb, rows))
    }

    /// Loss and gradients of a micro-batch whose loss counts `weight` in the batch's mean.
    fn backward(&self, docs: &[usize], weight: f64, seed: u64) -> Result<Grads> {
        let (loss, emb, rows) = self.loss(docs, seed)?;
        let loss = (loss * weight)?;
        let grads = loss.backward()?;
        let flat = |t: &Tensor| -> Result<Vec<f32>> {
            Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
        };
        let dense = self
            .params
            .iter()
            .map(|p| match grads.get(p.var.as_tensor()) {
                Some(g) => flat(g),
                None => Ok(vec![0.0; p.var.elem_count()]),
            })
            .collect::<Result<Vec<_>>>()?;
        let row_grads = match grads.get(emb.as_tensor()) {
            Some(g) => flat(g)?,
            None => vec![0.0; emb.elem_count()],
        };
        Ok(Grads {
            loss: loss.to_dtype(DType::F64)?.to_scalar::<f64>()?,
            dense,
            rows,
            row_grads,
        })
    }

    /// One AdamW step on the documents `batch` (indices into the training set) at learning rate
    /// `lr`. Returns the mean loss of the batch.
    pub fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        let d = self.config.d_model;
        let step = self.step;
        let micro: Vec<&[usize]> = batch.chunks(MICRO_BATCH).collect();
        let this = &*self;
        let parts: Vec<Grads> = micro
            .par_iter()
            .enumerate()
            .map(|(i, mb)| {
                this.backward(
                    mb,
                    mb.len() as f64 / batch.len() as f64,
                    this.dropout_seed(step, i),
                )
            })
            .collect::<Result<Vec<_>>>()?;

        // Sum the micro-batches' gradients in order.
        let mut parts = parts.into_iter();
        let first = parts.next().expect("a batch is not empty");
        let mut loss = first.loss;
        let mut dense = first.dense;
        let mut touched: Vec<u32> = Vec::new();
        let mut row_grads: Vec<f32> = Vec::new();
        let mut add_rows = |rows: &[u32], g: &[f32], slot: &mut [u32]| {
            for (k, &r) in rows.iter().enumerate() {
                let mut s = slot[r as usize];
                if s == u32::MAX {
                    s = touched.len() as u32;
                    slot[r as usize] = s;
                    touched.push(r);
                    row_grads.resize(row_grads.len() + d, 0.0);
                }
                let acc = &mut row_grads[s as usize * d..(s as usize + 1) * d];
                for (a, x) in acc.iter_mut().zip(&g[k * d..(k + 1) * d]) {
                    *a += x;
                }
            }
        };
        add_rows(&first.rows, &first.row_grads, &mut self.slot);
        for p in parts {
            loss += p.loss;
            for (acc, g) in dense.iter_mut().zip(&p.dense) {
                for (a, x) in acc.iter_mut().zip(g) {
                    *a += x;
                }
            }
            add_rows(&p.rows, &p.row_grads, &mut self.slot);
        }
        for &r in &touched {
            self.slot[r as usize] = u32::MAX;
        }

        // Clip by the global norm.
        let sq: f64 = dense
            .iter()
            .flatten()
            .chain(&row_grads)
            .map(|&x| x as f64 * x as f64)
            .sum();
        let norm = sq.sqrt();
        let clip = self.config.clip_norm as f64;
        let scale = if clip > 0.0 && norm > clip {
            (clip / norm) as f32
        } else {
            1.0
        };

        // AdamW.
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        let lr = lr as f32;
        let wd = self.config.weight_decay;
        let adam = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay: bool| {
            for k in 0..w.len() {
                let gk = g[k] * scale;
                m[k] = BETA1 * m[k] + (1.0 - BETA1) * gk;
                v[k] = BETA2 * v[k] + (1.0 - BETA2) * gk * gk;
                let mut upd = (m[k] / c1) / ((v[k] / c2).sqrt() + ADAM_EPS);
                if decay {
                    upd += wd * w[k];
                }
                w[k] -= lr * upd;
            }
        };
        for (p, g) in self.params.iter_mut().zip(&dense) {
            let t = p.var.as_tensor();
            let mut w: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            adam(&mut w, g, &mut p.m, &mut p.v, p.decay);
            let shape = t.shape().clone();
            p.var
                .set(&Tensor::from_vec(w, shape, &Device::Cpu)?.to_dtype(self.dtype)?)?;
        }
        for (s, &r) in touched.iter().enumerate() {
            let range = r as usize * d..(r as usize + 1) * d;
            adam(
                &mut self.table[range.clone()],
                &row_grads[s * d..(s + 1) * d],
                &mut self.table_m[range.clone()],
                &mut self.table_v[range],
                true,
            );
        }
        Ok(loss as f32)
    }

    /// A copy of the model as it stands now.
    pub fn snapshot(&self) -> Result<Transformer> {
        let dev = Device::Cpu;
        let mut map: HashMap<String, Tensor> = HashMap::new();
        for p in &self.params {
            // A copy: the variable is updated in place by later steps.
            map.insert(
                p.name.clone(),
                p.var.as_tensor().to_dtype(DType::F32)?.copy()?,
            );
        }
        map.insert(
            WORD.to_string(),
            Tensor::from_slice(&self.table, (self.vocab, self.config.d_model), &dev)?,
        );
        Transformer::from_tensors(self.config.clone(), self.vocab, self.classes, &map)
            .map_err(|e| Error::Usage(format!("internal: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TokenizerOptions;

    const TEXTS: [&str; 6] = [
        "the striker scored a late goal in the final",
        "the keeper saved a penalty kick",
        "shares fell as markets slid",
        "the bank raised interest rates again today",
        "a late goal won the cup",
        "markets rose as shares rallied",
    ];

    fn tokenizer() -> Tokenizer {
        Tokenizer::train(
            &TEXTS,
            &TokenizerOptions {
                vocab_size: 200,
                min_frequency: 1,
            },
        )
        .unwrap()
    }

    fn tiny_config() -> TransformerConfig {
        TransformerConfig {
            layers: 2,
            d_model: 8,
            heads: 2,
            ff: 12,
            max_len: 6,
            stride: 3,
            dropout: 0.1,
            ..TransformerConfig::default()
        }
    }

    fn tiny_trainer(dtype: DType) -> TransformerTrainer {
        TransformerTrainer::with_dtype(
            tiny_config(),
            &tokenizer(),
            &TEXTS,
            vec![0, 0, 1, 1, 0, 1],
            2,
            5,
            dtype,
        )
        .unwrap()
    }

    /// `restart` gives back the initial weights: training from there repeats itself exactly.
    #[test]
    fn restart_repeats_training_exactly() {
        let mut t = tiny_trainer(DType::F32);
        let batch: Vec<usize> = (0..6).collect();
        let first: Vec<f32> = (0..3).map(|_| t.step(&batch, 1e-3).unwrap()).collect();
        t.restart().unwrap();
        let second: Vec<f32> = (0..3).map(|_| t.step(&batch, 1e-3).unwrap()).collect();
        assert_eq!(first, second);
        assert!(first[2] != first[0]);
    }

    #[test]
    fn window_starts_cover_the_document() {
        let w = |n, l, s| window_starts(n, l, s).collect::<Vec<_>>();
        assert_eq!(w(0, 128, 64), vec![0]);
        assert_eq!(w(128, 128, 64), vec![0]);
        assert_eq!(w(129, 128, 64), vec![0, 64]);
        assert_eq!(w(300, 128, 64), vec![0, 64, 128, 192]);
        assert_eq!(w(256, 128, 128), vec![0, 128]);
        for n in 1..200 {
            for (l, s) in [(16, 16), (16, 5), (7, 1)] {
                let starts = w(n, l, s);
                assert_eq!(starts[0], 0);
                assert!(starts.last().unwrap() + l >= n, "n {n} l {l} s {s}");
                if starts.len() > 1 {
                    // The window before the last does not reach the end.
                    assert!(starts[starts.len() - 2] + l < n);
                }
            }
        }
    }

    /// Every parameter (the embedding rows included) gets a finite, non-zero gradient: no
    /// op on the way records no gradient.
    #[test]
    fn every_parameter_gets_a_finite_nonzero_gradient() {
        let t = tiny_trainer(DType::F32);
        // Documents of different lengths, so that padding and masks are exercised.
        let batch: Vec<usize> = (0..6).collect();
        let g = t.backward(&batch, 1.0, 1).unwrap();
        assert!(g.loss.is_finite() && g.loss > 0.0);
        assert_eq!(g.dense.len(), t.params.len());
        // 2 layers x 12 tensors + positions + final norm + head.
        assert_eq!(t.params.len(), 2 * 12 + 1 + 2 + 2);
        for (p, grad) in t.params.iter().zip(&g.dense) {
            assert!(grad.iter().all(|x| x.is_finite()), "{}", p.name);
            let sum: f32 = grad.iter().map(|x| x.abs()).sum();
            assert!(sum > 0.0, "{} gets no gradient", p.name);
        }
        let d = t.config.d_model;
        assert!(g.rows.len() > 10);
        for (k, r) in g.rows.iter().enumerate() {
            let row = &g.row_grads[k * d..(k + 1) * d];
            assert!(row.iter().all(|x| x.is_finite()));
            assert!(
                row.iter().any(|&x| x != 0.0),
                "embedding row {r} gets no gradient"
            );
        }
    }

    /// Backprop agrees with central finite differences of the loss, in F64, for a sample of the
    /// entries of every parameter and of the embedding rows (dropout on: the masks are seeded).
    #[test]
    fn gradients_match_finite_differences() {
        let mut t = tiny_trainer(DType::F64);
        let batch: Vec<usize> = (0..6).collect();
        let seed = 9;
        let g = t.backward(&batch, 1.0, seed).unwrap();
        let loss_of = |t: &TransformerTrainer| -> f64 {
            t.loss(&batch, seed).unwrap().0.to_scalar::<f64>().unwrap()
        };
        let close = |numeric: f64, analytic: f64| {
            (numeric - analytic).abs() <= 1e-7 + 1e-4 * numeric.abs().max(analytic.abs())
        };
        let eps = 1e-5;
        let mut checked = 0;
        for pi in 0..t.params.len() {
            let n = t.params[pi].var.elem_count();
            let shape = t.params[pi].var.shape().clone();
            let orig: Vec<f64> = t.params[pi]
                .var
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            // A few entries of each tensor, spread over it.
            for k in (0..n).step_by((n / 3).max(1)).take(3) {
                let at = |delta: f64| {
                    let mut w = orig.clone();
                    w[k] += delta;
                    let w = Tensor::from_vec(w, shape.clone(), &Device::Cpu).unwrap();
                    t.params[pi].var.set(&w).unwrap();
                    loss_of(&t)
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                let w = Tensor::from_vec(orig.clone(), shape.clone(), &Device::Cpu).unwrap();
                t.params[pi].var.set(&w).unwrap();
                let analytic = g.dense[pi][k] as f64;
                assert!(
                    close(numeric, analytic),
                    "{}[{k}]: numeric {numeric}, backprop {analytic}",
                    t.params[pi].name
                );
                checked += 1;
            }
        }
        // Embedding rows: the table is f32, so use the perturbation actually stored.
        let d = t.config.d_model;
        for (s, &r) in g.rows.iter().enumerate().step_by(4) {
            for k in [0, d / 2, d - 1] {
                let at = r as usize * d + k;
                let orig = t.table[at];
                t.table[at] = orig + 1e-4;
                let up_delta = t.table[at] as f64 - orig as f64;
                let up = loss_of(&t);
                t.table[at] = orig - 1e-4;
                let down_delta = t.table[at] as f64 - orig as f64;
                let down = loss_of(&t);
                t.table[at] = orig;
                let numeric = (up - down) / (up_delta - down_delta);
                let analytic = g.row_grads[s * d + k] as f64;
                assert!(
                    (numeric - analytic).abs() <= 1e-6 + 1e-4 * analytic.abs(),
                    "row {r} dim {k}: numeric {numeric}, backprop {analytic}"
                );
                checked += 1;
            }
        }
        assert!(checked > 80, "{checked}");
    }

    #[test]
    fn steps_reduce_the_loss() {
        let mut t = tiny_trainer(DType::F32);
        let batch: Vec<usize> = (0..6).collect();
        let first = t.step(&batch, 3e-3).unwrap();
        let mut last = first;
        for _ in 0..60 {
            last = t.step(&batch, 3e-3).unwrap();
        }
        assert!(last < first * 0.5, "{first} -> {last}");
    }

    /// The logits of a long document are the mean of the logits of its windows, and training
    /// batches (padded, several documents) give the same logits as one document alone.
    #[test]
    fn long_documents_average_their_windows() {
        let t = tiny_trainer(DType::F32);
        let model = t.snapshot().unwrap();
        let tok = tokenizer();
        let mut s = Scratch::default();
        let text = TEXTS.join(" ");
        encode_into(&tok, &text, &mut s);
        let ids = s.ids.clone();
        let (l, stride) = (model.config.max_len, model.config.stride);
        assert!(ids.len() > 3 * l);
        let mut whole = Vec::new();
        model.logits_of_ids(&ids, &mut whole).unwrap();
        let starts: Vec<usize> = window_starts(ids.len(), l, stride).collect();
        let mut mean = vec![0f32; 2];
        let mut one = Vec::new();
        for &st in &starts {
            model
                .logits_of_ids(&ids[st..(st + l).min(ids.len())], &mut one)
                .unwrap();
            for (m, x) in mean.iter_mut().zip(&one) {
                *m += x / starts.len() as f32;
            }
        }
        for (a, b) in whole.iter().zip(&mean) {
            assert!((a - b).abs() < 1e-5, "{whole:?} vs {mean:?}");
        }
        // The trainer's padded batch forward agrees with the model's per-document forward.
        let batch: Vec<usize> = (0..6).collect();
        let (logits, _, _) = t.forward(&batch, &mut None).unwrap();
        let logits = logits.to_vec2::<f32>().unwrap();
        for (i, row) in logits.iter().enumerate() {
            model.logits_of_ids(&t.docs[i], &mut one).unwrap();
            for (a, b) in row.iter().zip(&one) {
                assert!((a - b).abs() < 1e-5, "doc {i}: {row:?} vs {one:?}");
            }
        }
    }

    #[test]
    fn loading_checks_names_and_shapes() {
        let t = tiny_trainer(DType::F32);
        let model = t.snapshot().unwrap();
        let map: HashMap<String, Tensor> = model.tensors().unwrap().into_iter().collect();
        let c = model.config.clone();
        assert!(Transformer::from_tensors(c.clone(), t.vocab, 2, &map).is_ok());
        let err = Transformer::from_tensors(c.clone(), t.vocab, 3, &map).unwrap_err();
        assert!(err.contains("head.weight"), "{err}");
        let mut fewer = c.clone();
        fewer.layers = 1;
        let err = Transformer::from_tensors(fewer, t.vocab, 2, &map).unwrap_err();
        assert!(err.contains("unexpected"), "{err}");
        let mut missing = map.clone();
        missing.remove("encoder.layer.1.ffn.up.bias");
        let err = Transformer::from_tensors(c.clone(), t.vocab, 2, &missing).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        let mut bad = c;
        bad.heads = 3;
        assert!(Transformer::from_tensors(bad, t.vocab, 2, &map).is_err());
    }
}
