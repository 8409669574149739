//! The trained `bow` model, inference side: a text's features pooled through packed rows into
//! logits, compaction, and the model's tensors for the bundle.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::config::{BowConfig, CompactOptions, Weighting};
use super::counts::{RowCounter, RowCounts};
use super::features::{Extractor, Feature, WordCache, WordEntries};
use super::index::NgramIndex;
#[cfg(target_arch = "x86_64")]
use super::packed::pool_f16;
use super::packed::{
    converts_half, fill_rows, half_stride, packed_stride, pool_f32, prefetch_span, AlignedRows,
    Packed, PREFETCH_AHEAD,
};
use super::weights::RowWeight;
use crate::error::Result;
use crate::model::Checked;
use crate::text::Tokenizer;

/// Reusable buffers of prediction, one per thread.
#[derive(Default)]
pub(crate) struct Scratch {
    extractor: Extractor,
    /// Counts of a text's words, keyed by where their entries start in the word cache.
    word_counter: RowCounter,
    /// The keys of a text's word n-grams.
    keys: Vec<u64>,
}

/// A word cache entry of prediction: the number of rows, the word's hash for word n-grams (low
/// and high halves; `NO_HASH` for punctuation), then the rows the word's features map to.
const ENTRY_HEADER: usize = 3;

/// The word cache of one model, for prediction.
struct ModelWords {
    /// The model the entries belong to.
    model: u64,
    words: WordCache<u32>,
}

thread_local! {
    /// Row counts of prediction, kept by each thread: a worker's [`Scratch`] lasts one share
    /// of a batch, and an array the size of the model made anew each time cost more than the
    /// counting saved.
    static ROW_COUNTS: std::cell::RefCell<RowCounts> = std::cell::RefCell::default();
    /// The word caches of the models this thread predicted with last, the most recent last
    /// (at most [`MODEL_CACHES`]).
    static WORD_CACHES: std::cell::RefCell<Vec<ModelWords>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// Models whose word caches a thread keeps: a program that sends each text to one of a few
/// models (one per language, say) keeps every model's cache instead of emptying one cache at
/// each change of model.
const MODEL_CACHES: usize = 4;

/// The word cache of `model` among `caches`, made the most recent (last), and ready for a text;
/// a new one, in place of the least recently used when there are [`MODEL_CACHES`], for a model
/// not among them.
fn word_cache(caches: &mut Vec<ModelWords>, model: u64) -> &mut WordCache<u32> {
    let i = match caches.iter().position(|c| c.model == model) {
        Some(i) => i,
        None => {
            if caches.len() == MODEL_CACHES {
                caches.remove(0);
            }
            caches.push(ModelWords {
                model,
                words: WordCache::default(),
            });
            caches.len() - 1
        }
    };
    caches[i..].rotate_left(1);
    let cache = &mut caches.last_mut().expect("the model's cache is there").words;
    cache.start_text();
    cache
}

/// A model's word cache seen through the model: an entry holds the rows of the word's features.
struct RowEntries<'a> {
    cache: &'a mut WordCache<u32>,
    bow: &'a Bow,
}

impl WordEntries for RowEntries<'_> {
    #[inline]
    fn find(&self, key: u64) -> Option<u32> {
        self.cache.index.get(key)
    }

    #[inline(always)]
    fn prefetch(&self, key: u64) {
        self.cache.index.prefetch(key);
    }

    fn insert(&mut self, key: u64, features: &[Feature], hash: u64) -> u32 {
        // The word's n-grams are looked up together, so that their reads of the index (a
        // slot, then the key it points to) overlap.
        let ngrams = &self.bow.ngrams;
        let word_keys = features.iter().filter_map(|f| match *f {
            Feature::Key(k) => Some(k),
            Feature::Subword(_) => None,
        });
        word_keys.clone().for_each(|k| ngrams.prefetch(k));
        word_keys.for_each(|k| ngrams.prefetch_key(k));
        let rows = &mut self.cache.data;
        let start = rows.len();
        rows.extend([0; ENTRY_HEADER]);
        rows.extend(features.iter().filter_map(|&f| self.bow.row_of(f)));
        rows[start] = (rows.len() - start - ENTRY_HEADER) as u32;
        rows[start + 1] = hash as u32;
        rows[start + 2] = (hash >> 32) as u32;
        self.cache.index.insert(key, start as u32);
        start as u32
    }

    #[inline]
    fn hash(&self, start: u32) -> u64 {
        let rows = &self.cache.data;
        let start = start as usize;
        rows[start + 1] as u64 | (rows[start + 2] as u64) << 32
    }
}

/// A new identity for a trained state of a model, for the word caches.
fn new_model_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The `n x n` identity matrix, row-major: the head of a linear model.
pub(super) fn identity(n: usize) -> Vec<f32> {
    (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect()
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A trained `bow` model (inference side). Plain vectors: cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Bow {
    pub(crate) config: BowConfig,
    pub(super) n_subwords: usize,
    /// The n-gram keys; key `i` is table row `n_subwords + i`.
    pub(super) ngrams: NgramIndex,
    pub(super) idf: Vec<f32>,
    /// Row-major `rows x dim`; empty when `table_in_packed`.
    pub(super) table: Vec<f32>,
    /// The table is not kept beside `packed`, which holds it (a loaded model whose head is
    /// the identity, or the SVMs' model at the end of training: the packed rows are then the
    /// table's rows: keeping both would double the memory of prediction and training).
    pub(super) table_in_packed: bool,
    /// Row-major `classes x dim`.
    pub(super) head_w: Vec<f32>,
    pub(super) head_b: Vec<f32>,
    /// For each table row, the row multiplied by the head, then zeros and its IDF (row-major
    /// `rows x stride`). The head is linear, so `W (sum_f x_f E_f) = sum_f x_f (W E_f)`:
    /// prediction pools these short rows instead of the table's and skips the matrix product,
    /// and finds a feature's weight and its row in one place.
    pub(super) packed: Packed,
    /// Identity of this state of the model, for the per-thread word cache.
    pub(super) id: u64,
}

impl Bow {
    /// The table's rows, row-major `rows x dim` (rebuilt from the packed rows when the model
    /// keeps them only there).
    pub(super) fn table(&self) -> std::borrow::Cow<'_, [f32]> {
        if self.table_in_packed {
            let classes = self.head_b.len();
            std::borrow::Cow::Owned(
                (0..self.rows())
                    .flat_map(|r| (0..classes).map(move |c| self.packed.value(r, c, classes)))
                    .collect(),
            )
        } else {
            std::borrow::Cow::Borrowed(&self.table)
        }
    }

    pub(super) fn rows(&self) -> usize {
        self.n_subwords + self.ngrams.len()
    }

    /// Values per packed row: see [`Packed::stride`].
    pub(super) fn stride(&self) -> usize {
        self.packed.stride(self.head_b.len())
    }

    /// Number of labels.
    pub fn num_classes(&self) -> usize {
        self.head_b.len()
    }

    /// Number of parameters (table + head).
    pub fn num_parameters(&self) -> usize {
        self.rows() * self.config.dim + self.head_w.len() + self.head_b.len()
    }

    /// Number of n-gram rows in the table.
    pub fn num_ngrams(&self) -> usize {
        self.ngrams.len()
    }

    /// Logits of one text, written to `out` (one per class).
    pub(crate) fn logits_of(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
        scratch: &mut Scratch,
        out: &mut Vec<f32>,
    ) {
        let mut counter = ROW_COUNTS.with(|c| c.take());
        counter.ready(self.rows());
        let stride = self.stride();
        let packed = &self.packed;
        let Scratch {
            extractor,
            word_counter,
            keys,
        } = scratch;
        WORD_CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let mut entries = RowEntries {
                cache: word_cache(&mut caches, self.id),
                bow: self,
            };
            // Words repeat within a text: count them first, and their rows once each (asked
            // for now, read below).
            extractor.words(tokenizer, &self.config, text, &mut entries, |e, start| {
                prefetch_span(&e.cache.data, start as usize, ENTRY_HEADER + 15);
                word_counter.add_n(start, 1);
            });
            let rows = &entries.cache.data;
            for &slot in &word_counter.used {
                let (key, n) = std::mem::take(&mut word_counter.slots[slot as usize]);
                let start = key as usize - 1; // the row counter's key is start + 1
                let len = rows[start] as usize;
                let at = start + ENTRY_HEADER;
                for &r in &rows[at..at + len] {
                    packed.prefetch_row(r as usize, stride);
                    counter.add_n(r, n);
                }
            }
            word_counter.used.clear();
            word_counter.total = 0;
            keys.clear();
            extractor.ngrams(&self.config, &entries, |key| keys.push(key));
        });
        // The word n-grams: most are not in the model, and each costs a probe of the index
        // (scattered over megabytes), asked for a few keys ahead.
        let n_sub = self.n_subwords as u32;
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
                self.ngrams.prefetch(ahead);
            }
            if let Some(r) = self.ngrams.get(key).map(|i| n_sub + i) {
                packed.prefetch_row(r as usize, stride);
                counter.add(r);
            }
        }
        self.pool_counted(&mut counter, out);
        ROW_COUNTS.with(|c| c.replace(counter));
    }

    /// The table row of a feature, if the model has one.
    pub(super) fn row_of(&self, f: Feature) -> Option<u32> {
        let n_sub = self.n_subwords as u32;
        match f {
            Feature::Subword(id) => (id < n_sub).then_some(id),
            Feature::Key(key) => self.ngrams.get(key).map(|i| n_sub + i),
        }
    }

    /// Weighs the counted rows and pools their projected rows into logits, in one pass: the
    /// same sum as [`weigh`] then [`pool`], with the L2 normalization applied at the end.
    fn pool_counted(&self, counter: &mut RowCounts, out: &mut Vec<f32>) {
        let classes = self.head_b.len();
        let stride = self.stride();
        // Sums whole packed rows, four or eight lanes at a time (the IDF lane's sum is not
        // used).
        out.clear();
        out.resize(stride, 0.0);
        let weigh = RowWeight {
            weighting: self.config.weighting,
            total: counter.total as f32,
        };
        let norm2 = match &self.packed {
            Packed::F32(rows) => pool_f32(rows, stride, counter, weigh, out),
            // SAFETY: rows are kept in half precision only where the CPU converts them
            // (`converts_half`).
            #[cfg(target_arch = "x86_64")]
            Packed::F16(rows) => unsafe { pool_f16(rows, stride, counter, weigh, out) },
            #[cfg(not(target_arch = "x86_64"))]
            Packed::F16(_) => unreachable!("rows are kept in half precision only on x86-64"),
        };
        out.truncate(classes);
        counter.used.clear();
        counter.total = 0;
        let scale = match self.config.weighting {
            Weighting::Tfidf if norm2 > 0.0 => 1.0 / norm2.sqrt(),
            _ => 1.0,
        };
        for (o, b) in out.iter_mut().zip(&self.head_b) {
            *o = *o * scale + b;
        }
    }

    /// The projected row of table row `r` (one value per class).
    pub(super) fn projected_row(&self, r: usize) -> impl Iterator<Item = f32> + '_ {
        let classes = self.head_b.len();
        (0..classes).map(move |c| self.packed.value(r, c, classes))
    }

    /// Computes the packed rows used in prediction: for each table row the row multiplied by
    /// the head, and its IDF (and gives the model a new identity: its rows may have
    /// changed).
    pub(super) fn project(&mut self) {
        self.id = new_model_id();
        if self.table_in_packed {
            return; // already the packed rows, and nothing to compute them from
        }
        let dim = self.config.dim;
        let stride = packed_stride(self.head_b.len());
        // Allocated once at its size: this is the largest buffer of a loaded model.
        drop(std::mem::take(&mut self.packed));
        let mut packed = AlignedRows::zeros(self.rows() * stride);
        packed
            .par_chunks_mut(stride)
            .zip(self.table.par_chunks(dim))
            .zip(self.idf.par_iter())
            .for_each(|((out, row), &idf)| {
                out[stride - 1] = idf;
                for (o, w) in out.iter_mut().zip(self.head_w.chunks(dim)) {
                    *o = dot(w, row);
                }
            });
        self.packed = Packed::F32(packed);
    }

    /// A smaller model that predicts (nearly) the same: see [`CompactOptions`].
    pub fn compact(&self, options: CompactOptions) -> Bow {
        // Not a clone: the packed rows are made again at the end, and copying them would only
        // add to the peak memory of training.
        let mut out = Bow {
            config: self.config.clone(),
            n_subwords: self.n_subwords,
            ngrams: self.ngrams.clone(),
            idf: self.idf.clone(),
            table: self.table().into_owned(),
            table_in_packed: false,
            head_w: self.head_w.clone(),
            head_b: self.head_b.clone(),
            packed: Packed::default(),
            id: 0,
        };
        let classes = self.head_b.len();
        if options.fold && !self.config.folded {
            out.table = (0..self.rows())
                .flat_map(|r| self.projected_row(r))
                .collect();
            out.head_w = identity(classes);
            out.config.dim = classes;
            out.config.folded = true;
        }
        if let Some(max) = options.max_ngrams {
            if max < self.ngrams.len() {
                let score: Vec<f32> = (0..self.ngrams.len())
                    .into_par_iter()
                    .map(|i| {
                        let r = self.n_subwords + i;
                        self.idf[r] * self.projected_row(r).map(|x| x * x).sum::<f32>().sqrt()
                    })
                    .collect();
                // The `max` best, ties to the earlier row: a total order, so the same rows
                // whatever the selection's own order.
                let mut order: Vec<usize> = (0..self.ngrams.len()).collect();
                order.select_nth_unstable_by(max, |&a, &b| {
                    score[b].total_cmp(&score[a]).then(a.cmp(&b))
                });
                let mut keep: Vec<usize> = order[..max].to_vec();
                keep.sort_unstable();
                let dim = out.config.dim;
                let mut rows: Vec<usize> = (0..self.n_subwords).collect();
                rows.extend(keep.iter().map(|&i| self.n_subwords + i));
                out.table = rows
                    .iter()
                    .flat_map(|&r| out.table[r * dim..(r + 1) * dim].iter().copied())
                    .collect();
                out.idf = rows.iter().map(|&r| self.idf[r]).collect();
                out.ngrams = NgramIndex::new(keep.iter().map(|&i| self.ngrams.keys[i]).collect());
                out.config.max_ngrams = max;
            }
        }
        if options.half {
            out.config.half = true;
            let round = |v: &mut Vec<f32>| {
                v.iter_mut()
                    .for_each(|x| *x = half::f16::from_f32(*x).to_f32())
            };
            round(&mut out.table);
            round(&mut out.idf);
            round(&mut out.head_w);
            round(&mut out.head_b);
        }
        out.project();
        out
    }

    /// Named tensors for the bundle's `model.safetensors`.
    pub(crate) fn tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let dev = Device::Cpu;
        let dim = self.config.dim;
        let keys: Vec<i64> = self.ngrams.keys.iter().map(|&k| k as i64).collect();
        let c = self.head_b.len();
        // Converted as they are copied: the table is the largest buffer of training.
        let float = |v: &[f32], shape: &[usize]| -> Result<Tensor> {
            Ok(if self.config.half {
                let v: Vec<half::f16> = v.iter().map(|&x| half::f16::from_f32(x)).collect();
                Tensor::from_vec(v, shape, &dev)?
            } else {
                Tensor::from_slice(v, shape, &dev)?
            })
        };
        Ok(vec![
            (
                "bow.table".into(),
                float(&self.table(), &[self.rows(), dim])?,
            ),
            ("bow.idf".into(), float(&self.idf, &[self.rows()])?),
            (
                "bow.ngram_keys".into(),
                Tensor::from_slice(&keys, keys.len(), &dev)?,
            ),
            (
                "head.weight".into(),
                Tensor::from_slice(&self.head_w, (c, dim), &dev)?,
            ),
            (
                "head.bias".into(),
                Tensor::from_slice(&self.head_b, c, &dev)?,
            ),
        ])
    }

    /// Rebuilds the model from the bundle's tensors, checking every shape.
    pub(crate) fn from_tensors(
        config: Checked<BowConfig>,
        n_subwords: usize,
        classes: usize,
        tensors: HashMap<String, Tensor>,
    ) -> std::result::Result<Bow, String> {
        let config = config.into_inner();
        let dim = config.dim;
        if dim == 0 {
            return Err("architecture.dim is 0; a trained model has at least one column".into());
        }
        let get = |name: &str, dtype: DType| -> std::result::Result<&Tensor, String> {
            let t = tensors
                .get(name)
                .ok_or_else(|| format!("tensor '{name}' is missing"))?;
            let half_ok = dtype == DType::F32 && t.dtype() == DType::F16;
            if t.dtype() != dtype && !half_ok {
                return Err(format!(
                    "tensor '{name}' has type {:?}, expected {:?}",
                    t.dtype(),
                    dtype
                ));
            }
            Ok(t)
        };
        let shape_err = |name: &str, t: &Tensor, want: String| {
            format!("tensor '{name}' has shape {:?}, expected {want}", t.dims())
        };
        let keys_t = get("bow.ngram_keys", DType::I64)?;
        if keys_t.rank() != 1 {
            return Err(shape_err("bow.ngram_keys", keys_t, "one dimension".into()));
        }
        let keys: Vec<u64> = keys_t
            .to_vec1::<i64>()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|k| k as u64)
            .collect();
        let rows = n_subwords + keys.len();
        let table_t = get("bow.table", DType::F32)?;
        if table_t.dims() != [rows, dim] {
            return Err(shape_err("bow.table", table_t, format!("[{rows}, {dim}]")));
        }
        let idf_t = get("bow.idf", DType::F32)?;
        if idf_t.dims() != [rows] {
            return Err(shape_err("bow.idf", idf_t, format!("[{rows}]")));
        }
        let w_t = get("head.weight", DType::F32)?;
        if w_t.dims() != [classes, dim] {
            return Err(shape_err(
                "head.weight",
                w_t,
                format!("[{classes}, {dim}] (labels x dim)"),
            ));
        }
        let b_t = get("head.bias", DType::F32)?;
        if b_t.dims() != [classes] {
            return Err(shape_err("head.bias", b_t, format!("[{classes}] (labels)")));
        }
        let flat = |t: &Tensor| -> std::result::Result<Vec<f32>, String> {
            t.flatten_all()
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| e.to_string())
        };
        let ngrams = NgramIndex::new(keys);
        if ngrams.distinct != ngrams.len() {
            return Err("tensor 'bow.ngram_keys' holds duplicate keys".into());
        }
        let idf_half = idf_t.dtype() == DType::F16;
        let (idf, head_w, head_b) = (flat(idf_t)?, flat(w_t)?, flat(b_t)?);
        let not_finite = || "the weights hold NaN or infinite values".to_string();
        if idf
            .iter()
            .chain(&head_w)
            .chain(&head_b)
            .any(|x| !x.is_finite())
        {
            return Err(not_finite());
        }
        let identity = dim == classes && head_w == identity(classes);
        let table_t = table_t.flatten_all().map_err(|e| e.to_string())?;
        // Everything else is copied out: free the other tensors before the largest buffers.
        drop(tensors);
        let mut bow = Bow {
            config,
            n_subwords,
            ngrams,
            idf,
            table: Vec::new(),
            table_in_packed: false,
            head_w,
            head_b,
            packed: Packed::default(),
            id: 0,
        };
        if !identity {
            bow.table = flat(&table_t)?;
            drop(table_t);
            if bow.table.iter().any(|x| !x.is_finite()) {
                return Err(not_finite());
            }
            bow.project();
            return Ok(bow);
        }
        // With an identity head (a linear or folded model), the packed rows are the table's
        // rows: they are filled from the tensor's values, and no f32 copy of the table is made
        // (a copy would be the largest buffer of loading).
        if table_t.dtype() == DType::F16 {
            let v = table_t.to_vec1::<half::f16>().map_err(|e| e.to_string())?;
            drop(table_t);
            if !v.iter().all(|x| x.is_finite()) {
                return Err(not_finite());
            }
            if idf_half && converts_half() {
                // The values are the saved ones, bit for bit (the IDFs too, saved in half).
                let stride = half_stride(classes);
                let mut packed = AlignedRows::<u16>::zeros(rows * stride);
                let idf = bow.idf.iter().map(|&x| half::f16::from_f32(x).to_bits());
                fill_rows(
                    &mut packed,
                    stride,
                    classes,
                    idf,
                    v.iter().map(|x| x.to_bits()),
                );
                bow.packed = Packed::F16(packed);
            } else {
                let stride = packed_stride(classes);
                let mut packed = AlignedRows::<f32>::zeros(rows * stride);
                let values = v.iter().map(|x| x.to_f32());
                fill_rows(
                    &mut packed,
                    stride,
                    classes,
                    bow.idf.iter().copied(),
                    values,
                );
                bow.packed = Packed::F32(packed);
            }
        } else {
            let v = table_t
                .to_dtype(DType::F32)
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| e.to_string())?;
            drop(table_t);
            if !v.iter().all(|x| x.is_finite()) {
                return Err(not_finite());
            }
            let stride = packed_stride(classes);
            let mut packed = AlignedRows::<f32>::zeros(rows * stride);
            fill_rows(
                &mut packed,
                stride,
                classes,
                bow.idf.iter().copied(),
                v.into_iter(),
            );
            bow.packed = Packed::F32(packed);
        }
        bow.table_in_packed = true;
        bow.id = new_model_id();
        Ok(bow)
    }
}
