//! Training: micro-batches run forward and backward in parallel, their gradients summed, then
//! AdamW (sparse on the token-embedding table).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rayon::prelude::*;

use super::model::{encode_into, Scratch};
use super::net::{Dropout, Net, EMBED_STD, WORD};
use super::params::{init_values, Fresh, Init, Param};
use super::{Transformer, TransformerConfig};
use crate::error::{Error, Result};
use crate::model::adam::AdamStep;
use crate::model::Checked;
use crate::rng::SplitMix64;
use crate::text::Tokenizer;

/// Documents per micro-batch: the unit of parallel work in a training step. Fixed (not derived
/// from the thread count) so that every thread count gives the same model.
const MICRO_BATCH: usize = 8;
/// Batches of similar length are cut from groups of this many batches.
const BUCKET_BATCHES: usize = 50;

/// Training-time state of a `transformer` model.
pub(crate) struct TransformerTrainer {
    pub(super) config: TransformerConfig,
    dtype: DType,
    classes: usize,
    pub(super) vocab: usize,
    /// The first window of every training document.
    pub(super) docs: Vec<Vec<u32>>,
    targets: Vec<u32>,
    /// The token-embedding table (row-major `vocab x d_model`), kept out of autograd, and its
    /// AdamW moments.
    pub(super) table: Vec<f32>,
    table_m: Vec<f32>,
    table_v: Vec<f32>,
    /// Per-row slot in the batch gradient buffer (u32::MAX: untouched).
    slot: Vec<u32>,
    pub(super) params: Vec<Param>,
    net: Net,
    step: u64,
    seed: u64,
}

/// The loss and gradients of one micro-batch.
pub(super) struct Grads {
    /// The micro-batch's share of the batch's mean loss.
    pub(super) loss: f64,
    /// Gradient of every dense parameter (in `params` order), flattened.
    pub(super) dense: Vec<Vec<f32>>,
    /// The table rows used (sorted) and their gradients (`rows.len() x d_model`).
    pub(super) rows: Vec<u32>,
    pub(super) row_grads: Vec<f32>,
}

impl TransformerTrainer {
    /// Tokenizes the training texts and initializes the weights from `seed`.
    pub fn new(
        config: Checked<TransformerConfig>,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
        seed: u64,
    ) -> Result<TransformerTrainer> {
        let config = config.into_inner();
        Self::with_dtype(config, tokenizer, texts, targets, classes, seed, DType::F32)
    }

    /// As [`TransformerTrainer::new`], computing in `dtype` (F64 for gradient checks).
    pub(super) fn with_dtype(
        config: TransformerConfig,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
        seed: u64,
        dtype: DType,
    ) -> Result<TransformerTrainer> {
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
    pub(super) fn forward(
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
    pub(super) fn loss(&self, docs: &[usize], seed: u64) -> Result<(Tensor, Var, Vec<u32>)> {
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
    pub(super) fn backward(&self, docs: &[usize], weight: f64, seed: u64) -> Result<Grads> {
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
        let adam = AdamStep::new(self.step, lr as f32).with_scale(scale);
        let decayed = adam.with_decay(self.config.weight_decay);
        for (p, g) in self.params.iter_mut().zip(&dense) {
            let t = p.var.as_tensor();
            let mut w: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let rule = if p.decay { decayed } else { adam };
            rule.apply(&mut w, g, &mut p.m, &mut p.v);
            let shape = t.shape().clone();
            p.var
                .set(&Tensor::from_vec(w, shape, &Device::Cpu)?.to_dtype(self.dtype)?)?;
        }
        for (s, &r) in touched.iter().enumerate() {
            let range = r as usize * d..(r as usize + 1) * d;
            decayed.apply(
                &mut self.table[range.clone()],
                &row_grads[s * d..(s + 1) * d],
                &mut self.table_m[range.clone()],
                &mut self.table_v[range],
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
        Transformer::from_tensors(Checked(self.config.clone()), self.vocab, self.classes, &map)
            .map_err(|e| Error::Usage(format!("internal: {e}")))
    }
}
