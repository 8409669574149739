//! The softmax trainer: a large-margin softmax cross-entropy, learned by gradient steps. The
//! loss of a model with an embedding width (`dim` > 0, whose head is trained too) and of
//! [`Loss::Softmax`](super::Loss::Softmax) on a linear model.
//!
//! The table stays out of candle's autograd: the rows a batch touches are gathered and pooled
//! here, candle runs the head, the loss and backward from the pooled vectors, and the table
//! gets sparse updates on just those rows, so a step costs what the batch touches, not the
//! size of the table. A linear model (identity head) needs no candle at all: its loss and
//! gradient are written out.

use std::sync::Arc;

use candle_core::{Device, Tensor, Var};

use super::config::SparseOptimizer;
use super::model::{dot, Bow};
use super::packed::{advise_huge_pages, pool};
use super::prepare::Prepared;
use crate::error::{Error, Result};
use crate::model::adam::AdamStep;
use crate::model::{argmax, ops, Fit, Model};
use crate::rng::SplitMix64;

/// Trains a `bow` model with the softmax loss on the prepared documents.
pub(crate) struct SoftmaxTrainer {
    prepared: Arc<Prepared>,
    /// The model being trained: its table and head.
    pub(super) bow: Bow,
    /// Optimizer state of the table: Adam's two moments, or Adagrad's sums of squares in `v`
    /// (one per row for [`SparseOptimizer::AdagradRow`]).
    m: Vec<f32>,
    pub(super) v: Vec<f32>,
    /// Adam's moments of the head's weights and biases (a model with an embedding width).
    head_m: Vec<f32>,
    head_v: Vec<f32>,
    step: u64,
    /// Per-row slot in the batch gradient buffer (u32::MAX: untouched).
    slot: Vec<u32>,
    /// Seed of the initial weights.
    seed: u64,
}

/// What [`SoftmaxTrainer::forward`] builds: the batch's pooled vectors and the head as candle
/// variables, and the mean loss.
pub(super) struct Forward {
    pub(super) h: Var,
    pub(super) w: Var,
    pub(super) b: Var,
    pub(super) loss: Tensor,
}

/// What [`SoftmaxTrainer::backward`] computes.
pub(super) struct Backward {
    loss: f32,
    /// Gradients of the head's weights and biases, when it is trained.
    pub(super) head: Option<(Vec<f32>, Vec<f32>)>,
    /// The table rows the batch touched, and their gradients (`touched.len() x dim`).
    pub(super) touched: Vec<u32>,
    pub(super) grad_rows: Vec<f32>,
}

impl SoftmaxTrainer {
    /// A trainer at the initial weights of `seed`.
    pub(crate) fn new(prepared: Arc<Prepared>, seed: u64) -> SoftmaxTrainer {
        let rows = prepared.rows();
        let bow = prepared.model(Vec::new(), Vec::new(), Vec::new());
        let mut t = SoftmaxTrainer {
            prepared,
            bow,
            m: Vec::new(),
            v: Vec::new(),
            head_m: Vec::new(),
            head_v: Vec::new(),
            step: 0,
            slot: vec![u32::MAX; rows],
            seed,
        };
        t.reset();
        t
    }

    /// The head is trained (a model with an embedding width).
    fn trains_head(&self) -> bool {
        !self.prepared.linear
    }

    /// Sets the weights and the optimizer state to their initial values for the seed.
    fn reset(&mut self) {
        let p = &*self.prepared;
        let (rows, dim, classes) = (p.rows(), p.config.dim, p.classes);
        let linear = p.linear;
        let mut rng = SplitMix64::new(self.seed);
        let scale = 1.0 / (dim as f32).sqrt();
        // A linear model starts from zero (nothing to break symmetry between); a factored one
        // from small random values.
        self.bow.table = if linear {
            let mut t = vec![0.0; rows * dim];
            advise_huge_pages(&mut t);
            t
        } else {
            (0..rows * dim)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
                .collect()
        };
        self.bow.head_w = if linear {
            p.identity_head() // dim == classes
        } else {
            (0..classes * dim)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
                .collect()
        };
        self.bow.head_b = vec![0.0; classes];
        let head_len = if linear { 0 } else { classes * dim + classes };
        self.head_m = vec![0.0; head_len];
        self.head_v = vec![0.0; head_len];
        self.m = match p.config.optimizer {
            SparseOptimizer::Adam => vec![0.0; rows * dim],
            _ => Vec::new(),
        };
        self.v = match p.config.optimizer {
            SparseOptimizer::Sgd => Vec::new(),
            SparseOptimizer::AdagradRow => vec![0.0; rows],
            SparseOptimizer::Adam | SparseOptimizer::Adagrad => vec![0.0; rows * dim],
        };
        self.step = 0;
    }

    /// The mean loss of `batch` and the candle variables it was computed from, so that
    /// backward yields their gradients.
    pub(super) fn forward(&self, batch: &[usize]) -> Result<Forward> {
        let p = &*self.prepared;
        let (dim, classes) = (p.config.dim, p.classes);
        let b = batch.len();
        let dev = Device::Cpu;
        // Through the table by hand: gather and pool the rows of each document.
        let mut pooled = vec![0f32; b * dim];
        let mut tmp = Vec::with_capacity(dim);
        for (i, &d) in batch.iter().enumerate() {
            pool(&self.bow.table, dim, &p.docs[d], &mut tmp);
            pooled[i * dim..(i + 1) * dim].copy_from_slice(&tmp);
        }
        let targets: Vec<u32> = batch.iter().map(|&d| p.targets[d]).collect();

        // Head and loss in candle. The true label's logit is lowered by the margin (large-margin
        // softmax): the loss keeps pushing until the right label leads by that much.
        let h = Var::from_vec(pooled, (b, dim), &dev)?;
        let w = Var::from_slice(&self.bow.head_w, (classes, dim), &dev)?;
        let bias = Var::from_slice(&self.bow.head_b, classes, &dev)?;
        let mut logits =
            ops::matmul(h.as_tensor(), &w.as_tensor().t()?)?.broadcast_add(bias.as_tensor())?;
        let margin = p.config.margin;
        if margin > 0.0 {
            let mut shift = vec![0f32; b * classes];
            for (i, &t) in targets.iter().enumerate() {
                shift[i * classes + t as usize] = margin;
            }
            logits = (logits - Tensor::from_vec(shift, (b, classes), &dev)?)?;
        }
        let target_t = Tensor::from_vec(targets, b, &dev)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &target_t)?;
        Ok(Forward {
            h,
            w,
            b: bias,
            loss,
        })
    }

    /// For a linear model (identity head, zero bias, so the pooled vector is the logits): the
    /// mean large-margin softmax cross-entropy of `batch`, as [`SoftmaxTrainer::forward`]
    /// computes it, and its gradient with respect to each document's pooled vector, written out
    /// instead of built as a candle graph (a step's products are tiny; the graph costs more).
    pub(super) fn linear_loss(&self, batch: &[usize]) -> (f32, Vec<f32>) {
        let p = &*self.prepared;
        let classes = p.config.dim;
        let scale = 1.0 / batch.len() as f32;
        let mut grad = vec![0f32; batch.len() * classes];
        let mut z = Vec::with_capacity(classes);
        let mut loss = 0.0f32;
        for (g, &d) in grad.chunks_exact_mut(classes).zip(batch) {
            pool(&self.bow.table, classes, &p.docs[d], &mut z);
            loss += margin_softmax_loss(&mut z, p.targets[d] as usize, p.config.margin, g);
            g.iter_mut().for_each(|gk| *gk *= scale);
        }
        (loss * scale, grad)
    }

    /// Linear model, row-wise Adagrad: each document of `batch` in turn is scored and its
    /// gradient applied at once to the rows it has (the loss of
    /// [`SoftmaxTrainer::linear_loss`], the update of [`SoftmaxTrainer::batch_step`] for a
    /// batch of one). The mean loss.
    fn online_step(&mut self, batch: &[usize], lr: f64) -> f32 {
        let p = &*self.prepared;
        let classes = p.config.dim;
        let lr = lr as f32 * p.config.table_lr_scale;
        let mut z = Vec::with_capacity(classes);
        let mut g = vec![0f32; classes];
        let mut loss = 0.0f32;
        for &d in batch {
            let doc = &p.docs[d];
            pool(&self.bow.table, classes, doc, &mut z);
            loss += margin_softmax_loss(&mut z, p.targets[d] as usize, p.config.margin, &mut g);
            let g_norm2 = g.iter().map(|x| x * x).sum::<f32>() / classes as f32;
            for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                let v = &mut self.v[r as usize];
                *v += w * w * g_norm2;
                let step = lr * w / (v.sqrt() + 1e-6);
                let row = &mut self.bow.table[r as usize * classes..(r as usize + 1) * classes];
                for (x, gk) in row.iter_mut().zip(&g) {
                    *x -= step * gk;
                }
            }
        }
        self.step += 1;
        loss / batch.len() as f32
    }

    /// Loss and gradients of `batch`: candle's for the head, and for the table the pooled
    /// gradient scattered to the rows the batch touched.
    pub(super) fn backward(&mut self, batch: &[usize]) -> Result<Backward> {
        let dim = self.prepared.config.dim;
        let (loss, head, grad_h) = if self.trains_head() {
            let f = self.forward(batch)?;
            let grads = f.loss.backward()?;
            let grad = |v: &Var| -> Result<Vec<f32>> {
                let g = grads.get(v.as_tensor()).ok_or_else(|| {
                    Error::Internal("backward gave no gradient for a variable of the head".into())
                })?;
                Ok(g.flatten_all()?.to_vec1()?)
            };
            let head = (grad(&f.w)?, grad(&f.b)?);
            (f.loss.to_scalar::<f32>()?, Some(head), grad(&f.h)?)
        } else {
            let (loss, grad_h) = self.linear_loss(batch);
            (loss, None, grad_h)
        };
        let docs = &self.prepared.docs;
        let mut touched: Vec<u32> = Vec::new();
        let mut grad_rows: Vec<f32> = Vec::new();
        for (i, &d) in batch.iter().enumerate() {
            let g = &grad_h[i * dim..(i + 1) * dim];
            let doc = &docs[d];
            for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                let mut s = self.slot[r as usize];
                if s == u32::MAX {
                    s = touched.len() as u32;
                    self.slot[r as usize] = s;
                    touched.push(r);
                    grad_rows.resize(grad_rows.len() + dim, 0.0);
                }
                let acc = &mut grad_rows[s as usize * dim..(s as usize + 1) * dim];
                for (a, x) in acc.iter_mut().zip(g) {
                    *a += w * x;
                }
            }
        }
        for &r in &touched {
            self.slot[r as usize] = u32::MAX;
        }
        Ok(Backward {
            loss,
            head,
            touched,
            grad_rows,
        })
    }

    /// Whether [`Fit::step`] learns online: the linear model with row-wise Adagrad (the
    /// default optimizer) applies each document's gradient as soon as it is computed, as
    /// fastText does, instead of summing it over the batch first; the batch then only sets how
    /// often the learning rate moves. As accurate, and faster: the rows a document touches are
    /// updated while they are still in cache.
    pub(super) fn online(&self) -> bool {
        !self.trains_head() && self.prepared.config.optimizer == SparseOptimizer::AdagradRow
    }

    /// One step on the gradient summed over `batch`.
    pub(super) fn batch_step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        let dim = self.prepared.config.dim;
        let b = batch.len();
        let Backward {
            loss,
            head,
            touched,
            grad_rows,
        } = self.backward(batch)?;
        self.step += 1;
        if let Some((gw, gb)) = head {
            let adam = AdamStep::new(self.step, lr as f32);
            let n = gw.len();
            let (mw, mb) = self.head_m.split_at_mut(n);
            let (vw, vb) = self.head_v.split_at_mut(n);
            adam.apply(&mut self.bow.head_w, &gw, mw, vw);
            adam.apply(&mut self.bow.head_b, &gb, mb, vb);
        }

        // Update just those rows.
        let config = &self.prepared.config;
        let lr = lr as f32 * config.table_lr_scale;
        let adam = AdamStep::new(self.step, lr);
        // The loss is a batch mean; Adagrad and SGD take per-example gradients, as fastText.
        let per_example = b as f32;
        for (s, &r) in touched.iter().enumerate() {
            let g = &grad_rows[s * dim..(s + 1) * dim];
            let base = r as usize * dim;
            let row = &mut self.bow.table[base..base + dim];
            match config.optimizer {
                SparseOptimizer::Adam => adam.apply(
                    row,
                    g,
                    &mut self.m[base..base + dim],
                    &mut self.v[base..base + dim],
                ),
                SparseOptimizer::AdagradRow => {
                    let g2 = g.iter().map(|x| x * x).sum::<f32>() * per_example * per_example;
                    let v = &mut self.v[r as usize];
                    *v += g2 / dim as f32;
                    let step = lr * per_example / (v.sqrt() + 1e-6);
                    for (w, x) in row.iter_mut().zip(g) {
                        *w -= step * x;
                    }
                }
                SparseOptimizer::Adagrad => {
                    let v = &mut self.v[base..base + dim];
                    for k in 0..dim {
                        let gk = g[k] * per_example;
                        v[k] += gk * gk;
                        row[k] -= lr * gk / (v[k].sqrt() + 1e-6);
                    }
                }
                SparseOptimizer::Sgd => {
                    for k in 0..dim {
                        row[k] -= lr * per_example * g[k];
                    }
                }
            }
        }
        Ok(loss)
    }

    /// A copy of the model as it stands now.
    pub(super) fn model(&mut self) -> Bow {
        self.bow.project();
        self.bow.clone()
    }
}

impl Fit for SoftmaxTrainer {
    fn num_docs(&self) -> usize {
        self.prepared.docs.len()
    }

    fn summary(&self) -> String {
        format!("features: {} n-gram rows", self.prepared.ngrams.len())
    }

    /// One optimizer step on the documents `batch` (indices into the training set) at learning
    /// rate `lr`: the mean loss of the batch.
    fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        if self.online() {
            Ok(self.online_step(batch, lr))
        } else {
            self.batch_step(batch, lr)
        }
    }

    fn snapshot(&mut self) -> Result<Model> {
        Ok(Model::Bow(self.model()))
    }

    fn restart(&mut self) -> Result<()> {
        self.reset();
        Ok(())
    }

    /// The predicted class of each prepared document in `docs`, from the weights as they
    /// stand: what the model would predict for their texts.
    fn predict_docs(&self, docs: std::ops::Range<usize>) -> Option<Result<Vec<usize>>> {
        let p = &*self.prepared;
        let dim = p.config.dim;
        let (head_w, head_b) = (&self.bow.head_w, &self.bow.head_b);
        let (mut pooled, mut logits) = (Vec::with_capacity(dim), Vec::with_capacity(p.classes));
        Some(Ok(p.docs[docs]
            .iter()
            .map(|doc| {
                pool(&self.bow.table, dim, doc, &mut pooled);
                logits.clear();
                logits.extend(
                    head_w
                        .chunks(dim)
                        .zip(head_b)
                        .map(|(w, b)| dot(w, &pooled) + b),
                );
                argmax(&logits)
            })
            .collect()))
    }

    /// A second trainer at the initial weights of the same seed that shares the prepared
    /// documents (a second model can train on them alongside, on another thread).
    fn fork(&self) -> Result<Option<Box<dyn Fit + Send>>> {
        Ok(Some(Box::new(self.fork_trainer())))
    }
}

impl SoftmaxTrainer {
    /// See [`Fit::fork`].
    pub(super) fn fork_trainer(&self) -> SoftmaxTrainer {
        SoftmaxTrainer::new(Arc::clone(&self.prepared), self.seed)
    }
}

/// The large-margin softmax cross-entropy of logits `z` for true class `t`
/// (`-log softmax(z - margin e_t)[t]`), with its gradient with respect to `z` written to `g`.
/// `z` is left with the margin subtracted.
fn margin_softmax_loss(z: &mut [f32], t: usize, margin: f32, g: &mut [f32]) -> f32 {
    z[t] -= margin;
    let max = z.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0.0f32;
    for (gk, &zk) in g.iter_mut().zip(z.iter()) {
        *gk = (zk - max).exp();
        sum += *gk;
    }
    for gk in g.iter_mut() {
        *gk /= sum;
    }
    g[t] -= 1.0;
    sum.ln() - (z[t] - max)
}
