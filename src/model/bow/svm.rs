//! The default trainer: one linear SVM per label against the rest (squared hinge,
//! L2-regularized), by dual coordinate descent as LIBLINEAR's L2-loss SVC dual solver, on
//! features scaled by their naive Bayes ratios for [`Loss::NbSvm`] (NBSVM, Wang & Manning
//! 2012). No candle here: the problem is convex and solved to its optimum.

use std::sync::Arc;

use rayon::prelude::*;

use super::config::Loss;
use super::model::Bow;
use super::packed::{
    advise_huge_pages, packed_stride, pool, prefetch_span, AlignedRows, Packed, PREFETCH_AHEAD,
};
use super::prepare::{has_label, Prepared};
use super::weights::SparseDoc;
use crate::error::Result;
use crate::model::{argmax, Fit, Model};

/// Trains the SVMs of every label on the prepared documents.
pub(crate) struct SvmTrainer {
    prepared: Arc<Prepared>,
    /// The dual's state, from [`Fit::begin`] on.
    pub(super) svm: Option<Svm>,
}

impl SvmTrainer {
    pub(crate) fn new(prepared: Arc<Prepared>) -> SvmTrainer {
        SvmTrainer {
            prepared,
            svm: None,
        }
    }

    /// [`Fit::begin`] with the SVMs split in `parts` parts (the same weights come of any
    /// split).
    pub(super) fn begin_in_parts(&mut self, n: usize, parts: usize) {
        let p = &*self.prepared;
        let (classes, rows) = (p.classes, p.rows());
        let r2 = if p.config.loss == Loss::NbSvm {
            nb_ratios_squared(
                &p.docs[..n],
                &p.targets[..n],
                &p.more_targets,
                rows,
                classes,
            )
        } else {
            Vec::new()
        };
        self.svm = None; // the old weights go before the new ones come
        self.svm = Some(Svm::new(
            &p.docs,
            &p.targets,
            &p.more_targets,
            n,
            &r2,
            rows,
            classes,
            p.config.svm_c,
            &p.class_weights,
            parts,
        ));
    }

    /// The model as it stands: the weights of all labels, scaled so that their softmax gives
    /// probabilities of a useful spread, go straight into the packed rows (the model is
    /// linear: its rows are its weights).
    pub(super) fn model(&self) -> Bow {
        let p = &*self.prepared;
        let Some(svm) = &self.svm else {
            let mut bow = p.model(
                vec![0.0; p.rows() * p.classes],
                p.identity_head(),
                vec![0.0; p.classes],
            );
            bow.project();
            return bow;
        };
        let mut bow = p.model(Vec::new(), p.identity_head(), svm.gather(1, |p| &p.bias));
        bow.head_b.iter_mut().for_each(|b| *b *= SVM_SCORE_SCALE);
        bow.packed = Packed::F32(svm.packed(&bow.idf, SVM_SCORE_SCALE));
        bow.table_in_packed = true;
        bow.project();
        bow
    }
}

impl Fit for SvmTrainer {
    fn num_docs(&self) -> usize {
        self.prepared.docs.len()
    }

    fn summary(&self) -> String {
        format!("features: {} n-gram rows", self.prepared.ngrams.len())
    }

    /// The naive Bayes ratios of the first `n` documents' features and the dual's state.
    fn begin(&mut self, n: usize) {
        self.begin_in_parts(n, rayon::current_num_threads());
    }

    /// The SVMs visit documents one at a time whatever the batch: at least [`SVM_BATCH`] a
    /// step, so that the threads the labels are split over meet less often.
    fn batch_size(&self, configured: usize) -> usize {
        configured.max(SVM_BATCH)
    }

    /// One pass of dual coordinate descent over `batch`, for every label's SVM (the parts on
    /// their threads): the batch's mean squared hinge loss (summed over labels), before the
    /// updates.
    fn step(&mut self, batch: &[usize], _lr: f64) -> Result<f32> {
        let Some(svm) = self.svm.as_mut() else {
            return Err(crate::Error::Internal("an SVM step before begin".into()));
        };
        let p = &*self.prepared;
        let (docs, targets, more) = (&p.docs[..], &p.targets[..], &p.more_targets[..]);
        let loss: f32 = if svm.parts.len() == 1 {
            svm.parts[0].step(docs, targets, more, batch)
        } else {
            svm.parts
                .par_iter_mut()
                .map(|p| p.step(docs, targets, more, batch))
                .sum()
        };
        Ok(loss / batch.len().max(1) as f32)
    }

    fn snapshot(&mut self) -> Result<Model> {
        Ok(Model::Bow(self.model()))
    }

    fn restart(&mut self) -> Result<()> {
        self.svm = None;
        Ok(())
    }

    fn predict_docs(&self, docs: std::ops::Range<usize>) -> Option<Result<Vec<usize>>> {
        let p = &*self.prepared;
        let (table, bias) = match &self.svm {
            Some(svm) => svm.weights(),
            None => (vec![0.0; p.rows() * p.classes], vec![0.0; p.classes]),
        };
        let mut pooled = Vec::with_capacity(p.classes);
        Some(Ok(p.docs[docs]
            .iter()
            .map(|doc| {
                pool(&table, p.classes, doc, &mut pooled);
                pooled.iter_mut().zip(&bias).for_each(|(x, b)| *x += b);
                argmax(&pooled)
            })
            .collect()))
    }

    fn fork(&self) -> Result<Option<Box<dyn Fit + Send>>> {
        Ok(Some(Box::new(SvmTrainer::new(Arc::clone(&self.prepared)))))
    }

    /// The largest violation of the dual's optimality conditions since the last call (0 once
    /// the SVMs are at their optimum).
    fn end_epoch(&mut self) -> Option<f32> {
        self.svm.as_mut().map(Svm::take_violation)
    }
}

/// State of the one-vs-rest SVMs' dual coordinate descent (as LIBLINEAR's L2-loss SVC dual
/// solver). The labels' SVMs are independent, so they are split into parts (one per thread)
/// that train side by side, each with its own weights.
pub(super) struct Svm {
    pub(super) parts: Vec<SvmPart>,
    classes: usize,
}

/// The SVMs of labels `first..first + k`. The table holds the weights of the unscaled
/// features, `u = r * v`, where `v` are the SVM's weights on the features scaled by `r` (the
/// naive Bayes ratios, or 1), so prediction needs no scaling.
pub(super) struct SvmPart {
    first: usize,
    pub(super) k: usize,
    /// Weights, `rows x k`.
    pub(super) table: Vec<f32>,
    /// `r^2` for each table row and label (`rows x k`); empty for a plain SVM (r = 1).
    pub(super) r2: Vec<f32>,
    /// Dual variables, `docs x k`.
    pub(super) alpha: Vec<f32>,
    /// Diagonal of the dual's matrix, `docs x k`: `|r x|^2 + 1 (the bias) + 1 / (2 C)`.
    qd: Vec<f32>,
    /// Bias of each label's SVM (the weight of a constant feature of value 1).
    bias: Vec<f32>,
    /// `1 / (2 C)` of each label's SVM.
    pub(super) inv_2c: Vec<f32>,
    /// `1 / (2 C)` of each label's own documents (`inv_2c` over the label's class weight).
    pub(super) inv_2c_own: Vec<f32>,
    /// Largest violation of the dual's optimality conditions (projected gradient) met since
    /// [`Svm::take_violation`] last asked.
    violation: f32,
}

impl Svm {
    /// The SVMs of `classes` labels on the first `n` documents, in `parts` parts: the ratios
    /// (`r2`, `rows x classes`, empty for a plain SVM) are split among them, and each label's
    /// `C` is `c` over the mean squared length of its (scaled) documents.
    #[allow(clippy::too_many_arguments)]
    fn new(
        docs: &[SparseDoc],
        targets: &[u32],
        more: &[Vec<u32>],
        n: usize,
        r2: &[f32],
        rows: usize,
        classes: usize,
        c: f32,
        weights: &[f32],
        parts: usize,
    ) -> Svm {
        let parts = parts.clamp(1, classes);
        let parts = (0..parts)
            .into_par_iter()
            .map(|i| {
                let first = i * classes / parts;
                let k = (i + 1) * classes / parts - first;
                // This part's columns of the ratios.
                let mut part_r2 = vec![0f32; if r2.is_empty() { 0 } else { rows * k }];
                advise_huge_pages(&mut part_r2);
                for (o, x) in part_r2.chunks_mut(k).zip(r2.chunks(classes)) {
                    o.copy_from_slice(&x[first..first + k]);
                }
                let w = weights.get(first..first + k).unwrap_or(&[]);
                SvmPart::new(docs, targets, more, n, part_r2, rows, first, k, c, w)
            })
            .collect();
        Svm { parts, classes }
    }

    /// `n x classes` values gathered from each part's `n x k` ones.
    pub(super) fn gather(&self, n: usize, field: impl Fn(&SvmPart) -> &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; n * self.classes];
        for p in &self.parts {
            let src = field(p);
            for (o, x) in out.chunks_mut(self.classes).zip(src.chunks(p.k)) {
                o[p.first..p.first + p.k].copy_from_slice(x);
            }
        }
        out
    }

    /// The weights of all labels, `rows x classes`, and their biases.
    pub(super) fn weights(&self) -> (Vec<f32>, Vec<f32>) {
        let rows = self.parts[0].table.len() / self.parts[0].k;
        (self.gather(rows, |p| &p.table), self.gather(1, |p| &p.bias))
    }

    /// The packed rows of the weights of all labels times `scale`, with `idf`.
    fn packed(&self, idf: &[f32], scale: f32) -> AlignedRows<f32> {
        let stride = packed_stride(self.classes);
        let mut packed = AlignedRows::zeros(idf.len() * stride);
        packed
            .par_chunks_mut(stride)
            .zip(idf.par_iter())
            .enumerate()
            .for_each(|(r, (out, &idf))| {
                for p in &self.parts {
                    let row = &p.table[r * p.k..(r + 1) * p.k];
                    for (o, &w) in out[p.first..p.first + p.k].iter_mut().zip(row) {
                        *o = w * scale;
                    }
                }
                out[stride - 1] = idf;
            });
        packed
    }

    /// The largest violation of the optimality conditions since the last call (how far the
    /// passes since then were from the optimum), and a fresh count.
    fn take_violation(&mut self) -> f32 {
        self.parts
            .iter_mut()
            .map(|p| std::mem::take(&mut p.violation))
            .fold(0.0, f32::max)
    }
}

impl SvmPart {
    /// The SVMs of labels `first..first + k` on the first `n` documents, with their ratios
    /// `r2` (`rows x k`, empty for a plain SVM), and `C` relative to `c`; a label's own
    /// documents weigh `weights[j]` times more in its SVM (empty: all 1).
    #[allow(clippy::too_many_arguments)]
    fn new(
        docs: &[SparseDoc],
        targets: &[u32],
        more: &[Vec<u32>],
        n: usize,
        r2: Vec<f32>,
        rows: usize,
        first: usize,
        k: usize,
        c: f32,
        weights: &[f32],
    ) -> SvmPart {
        let mut table = vec![0f32; rows * k];
        advise_huge_pages(&mut table);
        // |r x|^2 of each document for each label.
        let mut qd = vec![0f32; docs.len() * k];
        for (doc, q) in docs[..n].iter().zip(qd.chunks_mut(k)) {
            for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                let w2 = w * w;
                if r2.is_empty() {
                    q.iter_mut().for_each(|x| *x += w2);
                } else {
                    let s = &r2[r as usize * k..(r as usize + 1) * k];
                    q.iter_mut().zip(s).for_each(|(x, s)| *x += w2 * s);
                }
            }
        }
        // C relative to the documents' mean squared length: the naive Bayes scaling makes
        // them longer on some corpora than others, and the same C would then regularize less.
        let inv_2c: Vec<f32> = (0..k)
            .map(|j| {
                let sum: f64 = qd.chunks(k).take(n).map(|q| q[j] as f64).sum();
                let mean = (sum / n.max(1) as f64).max(1e-3);
                (0.5 * mean / c as f64) as f32
            })
            .collect();
        // A label's own documents have C times their class weight (LIBLINEAR's -wi): 1 / (2 C)
        // divided by it.
        let inv_2c_own: Vec<f32> = (0..k)
            .map(|j| match weights.get(j) {
                Some(&w) => (inv_2c[j] as f64 / w as f64) as f32,
                None => inv_2c[j],
            })
            .collect();
        for (d, q) in qd.chunks_mut(k).take(n).enumerate() {
            for (j, x) in q.iter_mut().enumerate() {
                let own = has_label(targets, more, d, first + j);
                *x += 1.0 + if own { inv_2c_own[j] } else { inv_2c[j] };
            }
        }
        SvmPart {
            first,
            k,
            table,
            r2,
            alpha: vec![0.0; docs.len() * k],
            qd,
            bias: vec![0.0; k],
            inv_2c,
            inv_2c_own,
            violation: 0.0,
        }
    }

    /// One pass of dual coordinate descent over `batch`: each document's dual variable moves
    /// to the optimum of the dual with the others fixed, and the weights follow. Returns the
    /// batch's squared hinge loss (summed over documents and labels), before the updates.
    fn step(
        &mut self,
        docs: &[SparseDoc],
        targets: &[u32],
        more: &[Vec<u32>],
        batch: &[usize],
    ) -> f32 {
        let k = self.k;
        let mut s = vec![0f32; k];
        // The labels whose dual variable moved, and by how much (times y).
        let mut moved: Vec<(usize, f32)> = Vec::with_capacity(k);
        let mut loss = 0.0f32;
        let table = &mut self.table;
        for &d in batch {
            let doc = &docs[d];
            // The scores, asking for the rows (and their ratios) a few features ahead: they
            // are scattered over megabytes, and the loop otherwise waits on memory.
            s.fill(0.0);
            for (i, (&r, &w)) in doc.rows.iter().zip(&doc.weights).enumerate() {
                if let Some(&ahead) = doc.rows.get(i + PREFETCH_AHEAD) {
                    prefetch_span(table, ahead as usize * k, k);
                    if !self.r2.is_empty() {
                        prefetch_span(&self.r2, ahead as usize * k, k);
                    }
                }
                let row = &table[r as usize * k..(r as usize + 1) * k];
                for (o, x) in s.iter_mut().zip(row) {
                    *o += w * x;
                }
            }
            let alpha = &mut self.alpha[d * k..(d + 1) * k];
            let qd = &self.qd[d * k..(d + 1) * k];
            moved.clear();
            for c in 0..k {
                let y = if has_label(targets, more, d, self.first + c) {
                    1.0
                } else {
                    -1.0
                };
                let margin = y * (s[c] + self.bias[c]);
                loss += (1.0 - margin).max(0.0).powi(2);
                let inv_2c = if y > 0.0 {
                    self.inv_2c_own[c]
                } else {
                    self.inv_2c[c]
                };
                let g = margin - 1.0 + inv_2c * alpha[c];
                let pg = if alpha[c] == 0.0 { g.min(0.0) } else { g };
                if pg != 0.0 {
                    self.violation = self.violation.max(pg.abs());
                    let new = (alpha[c] - g / qd[c]).max(0.0);
                    let delta = (new - alpha[c]) * y;
                    alpha[c] = new;
                    self.bias[c] += delta;
                    moved.push((c, delta));
                }
            }
            // Only the moved labels' weights change (often one or two of many labels).
            for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                let at = r as usize * k;
                for &(c, delta) in &moved {
                    let scale = if self.r2.is_empty() {
                        1.0
                    } else {
                        self.r2[at + c]
                    };
                    table[at + c] += delta * w * scale;
                }
            }
        }
        loss
    }
}

/// Fewest documents per step of the SVM losses (see [`SvmTrainer`]'s `batch_size`).
const SVM_BATCH: usize = 1024;

/// How much the SVMs' scores are multiplied by in the saved model, whose softmax gives the
/// probabilities shown (argmax is unchanged): the scale with the lowest test-set log loss
/// across the bench corpora (bench/NOTES.md).
pub(super) const SVM_SCORE_SCALE: f32 = 4.0;

/// The squared naive Bayes log-count ratio of every table row for every label (`rows x
/// classes`): with `p` the number of the label's documents that have the feature plus 1, and
/// `q` the same over the other labels' documents, each normalized by its sum over all rows,
/// `r = ln(p / q)`.
pub(super) fn nb_ratios_squared(
    docs: &[SparseDoc],
    targets: &[u32],
    more: &[Vec<u32>],
    rows: usize,
    classes: usize,
) -> Vec<f32> {
    let mut count = vec![0f32; rows * classes];
    advise_huge_pages(&mut count);
    // Documents that have each row, of any label (a document of several labels once).
    let mut with_row = if more.is_empty() {
        Vec::new()
    } else {
        vec![0f32; rows]
    };
    for (d, (doc, &t)) in docs.iter().zip(targets).enumerate() {
        let others = more.get(d).map_or(&[][..], |m| &m[..]);
        for &r in &doc.rows {
            count[r as usize * classes + t as usize] += 1.0;
            for &o in others {
                count[r as usize * classes + o as usize] += 1.0;
            }
            if let Some(w) = with_row.get_mut(r as usize) {
                *w += 1.0;
            }
        }
    }
    let mut psum = vec![0f64; classes];
    let mut qsum = vec![0f64; classes];
    let total_of = |r: usize, row: &[f32]| -> f32 {
        with_row.get(r).copied().unwrap_or_else(|| row.iter().sum())
    };
    for (r, row) in count.chunks(classes).enumerate() {
        let total = total_of(r, row);
        for (c, &n) in row.iter().enumerate() {
            psum[c] += 1.0 + n as f64;
            qsum[c] += 1.0 + (total - n) as f64;
        }
    }
    for (r, row) in count.chunks_mut(classes).enumerate() {
        let total = total_of(r, row);
        for (c, x) in row.iter_mut().enumerate() {
            let p = (1.0 + *x as f64) / psum[c];
            let q = (1.0 + (total - *x) as f64) / qsum[c];
            let r = (p / q).ln() as f32;
            *x = r * r;
        }
    }
    count
}
