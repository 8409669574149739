//! The network's layers, from the position embeddings to the head.

use candle_core::Tensor;

use super::params::{Init, Source};
use super::TransformerConfig;
use crate::model::ops;
use crate::rng::SplitMix64;

type CResult<T> = candle_core::Result<T>;
type StrResult<T> = std::result::Result<T, String>;

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
        ops::linear(x, &self.w, &self.b)
    }
}

/// Layer normalization over the last dimension (khabar's op, with its own backward).
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
pub(super) struct Dropout {
    pub(super) p: f32,
    pub(super) rng: SplitMix64,
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
        let scores = ops::matmul(&q, &k.t()?)?; // [b, h, l, l]

        // Not softmax_last_dim: it records no gradient. Padded keys get probability 0.
        let p = ops::attention_softmax(&scores, lens, 1.0 / (dh as f64).sqrt())?;
        let ctx = ops::matmul(&p, &v)?.transpose(1, 2)?.reshape((b * l, d))?;
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
pub(super) struct Net {
    position: Tensor,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

/// Name of the token-embedding table in the bundle.
pub(super) const WORD: &str = "embeddings.word.weight";
/// Standard deviation of the initial embeddings (BERT's).
pub(super) const EMBED_STD: f32 = 0.02;

impl Net {
    pub(super) fn new(
        src: &mut dyn Source,
        c: &TransformerConfig,
        classes: usize,
    ) -> StrResult<Net> {
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
    pub(super) fn forward(
        &self,
        x: Tensor,
        lens: &[usize],
        drop: &mut Option<Dropout>,
    ) -> CResult<Tensor> {
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
