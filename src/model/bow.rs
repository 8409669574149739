//! The `bow` model: a fastText-style bag of subwords and word n-grams.
//!
//! A document becomes a sparse vector over the rows of one embedding table: its WordPiece
//! subword ids, then its word n-grams (and, optionally, whole words) that were seen often enough
//! in training. Each feature is weighted by sublinear TF-IDF (`(1 + ln tf) * idf`) and the
//! weights are L2-normalized, or by plain averaging (`tf / total`) as fastText does. The pooled
//! vector is the weighted sum of the rows; a linear layer turns it into one logit per label.
//!
//! Training keeps the table out of candle's autograd (DESIGN.md): the rows a batch touches are
//! gathered and pooled here, candle runs the head, the cross-entropy and backward from the
//! pooled vectors, and the table gets sparse ("lazy") Adam updates on just those rows. A step
//! costs what the batch touches, not the size of the table.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::text::{is_punctuation_word, normalize_split_into, Tokenizer};
// The two steps that `normalize_split_into` fuses: the tests' reference for the features.
#[cfg(test)]
use crate::text::{for_each_word, normalize_into};

/// How the features of a document are weighted before pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Sublinear TF-IDF, L2-normalized.
    Tfidf,
    /// The mean of the feature rows (fastText).
    Mean,
}

/// How the embedding rows are updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SparseOptimizer {
    /// Adam on the touched rows ("lazy" Adam).
    #[default]
    Adam,
    /// Adagrad on the touched rows, one accumulator per weight.
    Adagrad,
    /// Adagrad on the touched rows with one accumulator per row (the mean square of the row's
    /// gradients): a feature's step size shrinks with how much it has been trained, the same for
    /// every label. Less state and work than per-weight Adagrad, and as accurate or better on the
    /// linear model (20newsgroups: 0.868 against 0.857). On the linear model, updates are
    /// online (document by document; see `BowTrainer::step`).
    #[serde(rename = "adagrad-row")]
    AdagradRow,
    /// Plain SGD on per-example gradients (fastText).
    Sgd,
}

/// What training a linear `bow` model minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Large-margin softmax cross-entropy (see [`BowConfig::margin`]), learned online; the
    /// only loss of a model with an embedding width (`dim` > 0).
    Softmax,
    /// One linear SVM per label against the rest (squared hinge, L2-regularized with
    /// [`BowConfig::svm_c`]), by dual coordinate descent: an epoch visits every document once.
    Svm,
    /// As `Svm`, on features scaled for each label by their naive Bayes log-count ratio
    /// (NBSVM, Wang & Manning 2012): features that tell a label apart cost less to use.
    NbSvm,
}

/// Hyperparameters of the `bow` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BowConfig {
    /// Width of the embedding table. 0 (the default) trains a linear model: the table gets one
    /// column per label and the head stays the identity, as in a model folded by
    /// [`Bow::compact`] (the saved config then holds the number of labels and `folded`).
    pub dim: usize,
    /// Longest word n-gram (2 = bigrams). 1 turns n-grams off.
    pub ngram_order: usize,
    /// Also use whole words as features, besides their subwords.
    pub word_unigrams: bool,
    /// A word n-gram (two words or more) must occur in at least this many training documents.
    pub min_count: usize,
    /// A whole word or character n-gram must occur in at least this many training documents
    /// (bundles written before the field existed used `min_count` for both: 2).
    #[serde(default = "two")]
    pub min_count_words: usize,
    /// At most this many n-gram rows (the most frequent are kept).
    pub max_ngrams: usize,
    /// How features are weighted before pooling.
    pub weighting: Weighting,
    /// Character n-grams of each word (with "<" and ">" marking its ends), shortest and longest;
    /// `[0, 0]` turns them off.
    #[serde(default)]
    pub char_ngrams: [usize; 2],
    /// How the table is trained.
    #[serde(default)]
    pub optimizer: SparseOptimizer,
    /// Learning rate of the table relative to the head's.
    #[serde(default = "one")]
    pub table_lr_scale: f32,
    /// Additive margin subtracted from the true label's logit in training (large-margin
    /// softmax). 5 rather than 3 since training is online (4 seeds: l3cube_en +0.5 points,
    /// l3cube_hi +0.25, ag_news +0.1, 20newsgroups +0.2).
    #[serde(default)]
    pub margin: f32,
    /// The table has been multiplied by the head (see [`CompactOptions::fold`]); `dim` is then
    /// the number of labels.
    #[serde(default)]
    pub folded: bool,
    /// The weights are stored in half precision.
    #[serde(default)]
    pub half: bool,
    /// What training minimizes: [`Loss::NbSvm`] by default; [`Loss::Softmax`] for a model
    /// with an embedding width (and in bundles written before the field existed).
    #[serde(default = "softmax")]
    pub loss: Loss,
    /// Inverse regularization strength of [`Loss::Svm`] and [`Loss::NbSvm`], relative to the
    /// documents' mean squared length (under each label's naive Bayes scaling): each label's
    /// SVM gets `C = svm_c / mean |r x|^2`.
    #[serde(default = "default_svm_c")]
    pub svm_c: f32,
}

fn softmax() -> Loss {
    Loss::Softmax
}

fn default_svm_c() -> f32 {
    0.3
}

fn one() -> f32 {
    1.0
}

fn two() -> usize {
    2
}

/// How [`Bow::compact`] shrinks a trained model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactOptions {
    /// Multiply the table by the head: the table gets one column per label and the head becomes
    /// the identity. Predictions stay the same (up to rounding).
    pub fold: bool,
    /// Store the weights in half precision (f16).
    pub half: bool,
    /// Keep at most this many n-gram rows: those that move the logits most (largest
    /// `idf * |row|` after folding).
    pub max_ngrams: Option<usize>,
}

impl Default for BowConfig {
    fn default() -> Self {
        BowConfig {
            dim: 0,
            ngram_order: 2,
            word_unigrams: true,
            min_count: 2,
            min_count_words: 1,
            max_ngrams: 2_000_000,
            weighting: Weighting::Tfidf,
            char_ngrams: [3, 4],
            optimizer: SparseOptimizer::AdagradRow,
            table_lr_scale: 1.0,
            margin: 5.0,
            folded: false,
            half: false,
            loss: Loss::NbSvm,
            svm_c: default_svm_c(),
        }
    }
}

impl Loss {
    /// The name the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Softmax => "softmax",
            Loss::Svm => "svm",
            Loss::NbSvm => "nb-svm",
        }
    }
}

impl BowConfig {
    /// Checks the hyperparameters; the error names the CLI option at fault.
    pub fn validate(&self) -> Result<()> {
        if self.dim > 4096 {
            return Err(Error::Usage(format!(
                "--dim must be between 0 (one column per label) and 4096 (got {})",
                self.dim
            )));
        }
        if self.ngram_order == 0 || self.ngram_order > 6 {
            return Err(Error::Usage(format!(
                "--ngrams must be between 1 and 6 (got {})",
                self.ngram_order
            )));
        }
        if !(self.margin >= 0.0 && self.margin.is_finite()) {
            return Err(Error::Usage("--margin must be 0 or more".into()));
        }
        if !(self.table_lr_scale > 0.0 && self.table_lr_scale.is_finite()) {
            return Err(Error::Usage(
                "--table-lr-scale must be a positive number".into(),
            ));
        }
        let [lo, hi] = self.char_ngrams;
        if (lo == 0) != (hi == 0) || lo > hi || hi > 12 {
            return Err(Error::Usage(format!(
                "--char-ngrams must be MIN-MAX with 1 <= MIN <= MAX <= 12, or 0-0 for none (got {lo}-{hi})"
            )));
        }
        if self.min_count == 0 {
            return Err(Error::Usage("--min-count must be at least 1".into()));
        }
        if self.min_count_words == 0 {
            return Err(Error::Usage("--min-count-words must be at least 1".into()));
        }
        if !(self.svm_c > 0.0 && self.svm_c.is_finite()) {
            return Err(Error::Usage("--svm-c must be a positive number".into()));
        }
        if self.loss != Loss::Softmax && self.dim != 0 && !self.folded {
            return Err(Error::Usage(format!(
                "--loss {} trains a linear model: leave --dim at 0 (got {}), or train with --loss softmax",
                self.loss.name(),
                self.dim
            )));
        }
        Ok(())
    }
}

/// 64-bit FNV-1a: a fixed, documented hash, so that n-gram keys are the same on every platform
/// and in every release.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Combines the hash of an n-gram so far with the hash of its next word.
fn extend_key(key: u64, word: u64) -> u64 {
    (key.rotate_left(17) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The key of a whole-word feature; distinct from the key of a one-word n-gram prefix.
fn unigram_key(word: u64) -> u64 {
    extend_key(0x756e_6967_7261_6d31, word)
}

/// Keys are already well-mixed hashes: hash them by taking them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, u32, BuildHasherDefault<KeyHasher>>;

/// Reusable buffers for feature extraction.
#[derive(Default)]
pub(crate) struct Scratch {
    norm: String,
    words: Vec<u64>,
    pieces: Vec<u32>,
    /// Counts of a text's words, keyed by where their rows start in [`WordCache`].
    word_counter: RowCounter,
    /// The keys of a text's word n-grams, or of its words.
    keys: Vec<u64>,
    /// Where each word of a text starts and ends in `norm`.
    spans: Vec<(u32, u32)>,
    /// The features of one word.
    features: Vec<Feature>,
}

/// A raw feature: a subword id, or the key of a word n-gram or whole word.
#[derive(Clone, Copy)]
enum Feature {
    Subword(u32),
    Key(u64),
}

/// The features of one (normalized) word: its subword ids, its character n-grams and, for a
/// word the vocabulary splits, the whole word. Returns the word's hash for word n-grams, or
/// `None` for punctuation, which takes no part in them.
fn word_features(
    tokenizer: &Tokenizer,
    config: &BowConfig,
    w: &str,
    pieces: &mut Vec<u32>,
    on: &mut impl FnMut(Feature),
) -> Option<u64> {
    pieces.clear();
    tokenizer.encode_word(w, pieces);
    for &p in pieces.iter() {
        on(Feature::Subword(p));
    }
    if is_punctuation_word(w) {
        return None;
    }
    if config.char_ngrams[0] > 0 {
        char_ngrams(w, config.char_ngrams, on);
    }
    let h = fnv1a(w.as_bytes());
    if config.word_unigrams && pieces.len() > 1 {
        on(Feature::Key(unigram_key(h)));
    }
    Some(h)
}

/// The keys of the word n-grams (orders 2 and up) over a document's word hashes.
fn word_ngrams(config: &BowConfig, words: &[u64], mut on: impl FnMut(u64)) {
    for n in 2..=config.ngram_order {
        for window in words.windows(n) {
            let mut key = window[0];
            for &w in &window[1..] {
                key = extend_key(key, w);
            }
            on(key);
        }
    }
}

/// The raw features of one document: subword ids and n-gram keys (with repeats).
#[cfg(test)]
fn extract(
    tokenizer: &Tokenizer,
    config: &BowConfig,
    text: &str,
    scratch: &mut Scratch,
    mut on: impl FnMut(Feature),
) {
    let Scratch {
        norm,
        words,
        pieces,
        ..
    } = scratch;
    normalize_into(text, norm);
    words.clear();
    for_each_word(norm, |w| {
        if let Some(h) = word_features(tokenizer, config, w, pieces, &mut on) {
            words.push(h);
        }
    });
    word_ngrams(config, words, |key| on(Feature::Key(key)));
}

/// The raw features of one training document, sorted (with repeats: most features occur
/// once, so this is smaller than distinct features with counts).
struct RawDoc {
    subs: Vec<u32>,
    /// Keys of whole words and character n-grams.
    keys: Vec<u64>,
    /// Keys of word n-grams.
    pairs: Vec<u64>,
}

/// Per-thread memory of the raw features of each word, for preparing training documents: a
/// word seen before is not encoded or cut into character n-grams again. Keyed as
/// [`WordCache`] is.
#[derive(Default)]
struct TrainWords {
    scratch: Scratch,
    /// Word -> (start and length in `subs`, start and length in `keys`, word hash or
    /// `NO_HASH`).
    words: HashMap<u64, (u32, u32, u32, u32, u64), BuildHasherDefault<KeyHasher>>,
    subs: Vec<u32>,
    keys: Vec<u64>,
    doc_subs: Vec<u32>,
    doc_keys: Vec<u64>,
    doc_pairs: Vec<u64>,
}

impl TrainWords {
    /// The features of `text`: what [`extract`] gives, sorted, with the word n-grams' keys
    /// apart from the other keys.
    fn doc(&mut self, tokenizer: &Tokenizer, config: &BowConfig, text: &str) -> RawDoc {
        let TrainWords {
            scratch,
            words: cache,
            subs,
            keys,
            doc_subs,
            doc_keys,
            doc_pairs,
        } = self;
        if cache.len() >= CACHE_WORDS {
            cache.clear();
            subs.clear();
            keys.clear();
        }
        let Scratch {
            norm,
            words,
            pieces,
            spans,
            ..
        } = scratch;
        normalize_split_into(text, norm, spans);
        words.clear();
        doc_subs.clear();
        doc_keys.clear();
        doc_pairs.clear();
        for &(a, b) in spans.iter() {
            let w = &norm[a as usize..b as usize];
            let (s0, sn, k0, kn, hash) = *cache.entry(cache_key(w)).or_insert_with(|| {
                let (s0, k0) = (subs.len() as u32, keys.len() as u32);
                let hash = word_features(tokenizer, config, w, pieces, &mut |f| match f {
                    Feature::Subword(s) => subs.push(s),
                    Feature::Key(k) => keys.push(k),
                });
                (
                    s0,
                    subs.len() as u32 - s0,
                    k0,
                    keys.len() as u32 - k0,
                    hash.unwrap_or(NO_HASH),
                )
            });
            doc_subs.extend_from_slice(&subs[s0 as usize..(s0 + sn) as usize]);
            doc_keys.extend_from_slice(&keys[k0 as usize..(k0 + kn) as usize]);
            if hash != NO_HASH {
                words.push(hash);
            }
        }
        word_ngrams(config, words, |key| doc_pairs.push(key));
        doc_subs.sort_unstable();
        doc_keys.sort_unstable();
        doc_pairs.sort_unstable();
        RawDoc {
            subs: doc_subs.clone(),
            keys: doc_keys.clone(),
            pairs: doc_pairs.clone(),
        }
    }
}

/// The distinct values of sorted `xs` with their counts.
fn run_lengths<T: Ord + Copy>(xs: &[T]) -> impl Iterator<Item = (T, u32)> + '_ {
    xs.chunk_by(|a, b| a == b)
        .map(|run| (run[0], run.len() as u32))
}

/// The distinct values of sorted `a` and sorted `b` together, in order, with their counts:
/// what [`run_lengths`] gives for the two concatenated and sorted.
fn merged_runs<'a, T: Ord + Copy>(a: &'a [T], b: &'a [T]) -> impl Iterator<Item = (T, u32)> + 'a {
    let (mut a, mut b) = (run_lengths(a).peekable(), run_lengths(b).peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(&(x, n)), Some(&(y, m))) => match x.cmp(&y) {
            std::cmp::Ordering::Less => a.next(),
            std::cmp::Ordering::Greater => b.next(),
            std::cmp::Ordering::Equal => {
                a.next();
                b.next();
                Some((x, n + m))
            }
        },
        _ => a.next().or_else(|| b.next()),
    })
}

/// Per-thread memory of the table rows each word maps to, for prediction: text is mostly
/// words seen before, and looking up a word once replaces encoding it and hashing and looking
/// up each of its character n-grams.
struct WordCache {
    /// The model the entries belong to.
    model: u64,
    /// Word -> where its entry starts in `rows`. An entry holds the number of rows, the
    /// word's hash for word n-grams (low and high halves; `NO_HASH` for punctuation), then
    /// the rows. Keyed by the word's 64-bit hash, mixed ([`cache_key`]): no string to keep
    /// or compare. Two different words share a key with odds of about 1 in 10^9 for a full
    /// cache (100,000 words).
    words: KeyIndex,
    rows: Vec<u32>,
}

/// `u32`s before the rows of a [`WordCache`] entry.
const ENTRY_HEADER: usize = 3;

const NO_HASH: u64 = u64::MAX;
/// Entries kept before the cache starts over (bounds its memory: a few MB).
const CACHE_WORDS: usize = 100_000;

thread_local! {
    /// Row counts of prediction, kept by each thread: a worker's [`Scratch`] lasts one share
    /// of a batch, and an array the size of the model made anew each time cost more than the
    /// counting saved.
    static ROW_COUNTS: std::cell::RefCell<RowCounts> = std::cell::RefCell::default();
    /// The word caches of the models this thread predicted with last, the most recent last
    /// (at most [`MODEL_CACHES`]).
    static WORD_CACHES: std::cell::RefCell<Vec<WordCache>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// Models whose word caches a thread keeps: a program that sends each text to one of a few
/// models (one per language, say) keeps every model's cache. With one cache for all, texts
/// alternating between two models were classified 4-5 times slower than the same texts one
/// model after the other (ag_news and l3cube_hi, 5,000 texts each, one thread).
const MODEL_CACHES: usize = 4;

/// The word cache of `model` among `caches`, made the most recent (last); a new one, in place
/// of the least recently used when there are [`MODEL_CACHES`], for a model not among them.
fn word_cache(caches: &mut Vec<WordCache>, model: u64) -> &mut WordCache {
    let i = match caches.iter().position(|c| c.model == model) {
        Some(i) => i,
        None => {
            if caches.len() == MODEL_CACHES {
                caches.remove(0);
            }
            caches.push(WordCache {
                model,
                words: KeyIndex::with_capacity(0),
                rows: Vec::new(),
            });
            caches.len() - 1
        }
    };
    caches[i..].rotate_left(1);
    let cache = caches.last_mut().expect("the model's cache is there");
    if cache.words.len() >= CACHE_WORDS {
        cache.words.clear();
        cache.rows.clear();
    }
    cache
}

/// The key of a word in [`WordCache`] and [`TrainWords`]: its FNV-1a hash, with the high bits
/// mixed into the low ones that pick a `HashMap`'s bucket.
fn cache_key(word: &str) -> u64 {
    cache_key_of_bytes(word.as_bytes())
}

/// [`cache_key`] of a word's bytes.
fn cache_key_of_bytes(word: &[u8]) -> u64 {
    let h = fnv1a(word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 32)
}

/// Gives every trained state of a model its own identity for [`WordCache`].
static NEXT_MODEL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Emits the keys of the character n-grams of `word` framed as "<word>", of `lo..=hi`
/// characters.
fn char_ngrams(word: &str, [lo, hi]: [usize; 2], on: &mut impl FnMut(Feature)) {
    let mut bounds: Vec<usize> = Vec::with_capacity(word.len() + 2);
    bounds.extend(word.char_indices().map(|(i, _)| i));
    bounds.push(word.len());
    let n = bounds.len() + 1; // chars + the two markers
                              // The byte span of "framed" character j: marker '<' at 0, the word's chars, marker '>' last.
    let bytes_of = |j: usize| -> &[u8] {
        if j == 0 {
            b"<"
        } else if j == n - 1 {
            b">"
        } else {
            &word.as_bytes()[bounds[j - 1]..bounds[j]]
        }
    };
    for start in 0..n {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for len in 1..=hi.min(n - start) {
            for &b in bytes_of(start + len - 1) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            if len >= lo && !(start == 0 && len == n) {
                on(Feature::Key(extend_key(0x6368_6172_6e67_7261, h)));
            }
        }
    }
}

/// A document as a sparse, weighted set of distinct table rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SparseDoc {
    pub rows: Vec<u32>,
    pub weights: Vec<f32>,
}

/// A trained `bow` model (inference side). Plain vectors: cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Bow {
    pub(crate) config: BowConfig,
    n_subwords: usize,
    /// The n-gram keys; key `i` is table row `n_subwords + i`.
    ngrams: NgramIndex,
    idf: Vec<f32>,
    /// Row-major `rows x dim`; empty when `table_in_packed`.
    table: Vec<f32>,
    /// The table is not kept beside `packed`, which holds it (a loaded model whose head is
    /// the identity, or the SVMs' model at the end of training: the packed rows are then the
    /// table's rows, and keeping both doubled the memory of prediction and training).
    table_in_packed: bool,
    /// Row-major `classes x dim`.
    head_w: Vec<f32>,
    head_b: Vec<f32>,
    /// For each table row, the row multiplied by the head, then zeros and its IDF (row-major
    /// `rows x stride`). The head is linear, so `W (sum_f x_f E_f) = sum_f x_f (W E_f)`:
    /// prediction pools these short rows instead of the table's and skips the matrix product,
    /// and finds a feature's weight and its row in one place.
    packed: Packed,
    /// Identity of this state of the model, for the per-thread word cache.
    id: u64,
}

impl Bow {
    /// The table's rows, row-major `rows x dim` (rebuilt from the packed rows when the model
    /// keeps them only there).
    fn table(&self) -> std::borrow::Cow<'_, [f32]> {
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

    fn rows(&self) -> usize {
        self.n_subwords + self.ngrams.len()
    }

    /// Values per packed row: see [`Packed::stride`].
    fn stride(&self) -> usize {
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
        let n_sub = self.n_subwords as u32;
        let stride = self.stride();
        let packed = &self.packed;
        let row_of = |f: Feature| match f {
            Feature::Subword(id) => (id < n_sub).then_some(id),
            Feature::Key(key) => self.ngrams.get(key).map(|i| n_sub + i),
        };
        let Scratch {
            norm,
            words,
            pieces,
            word_counter,
            keys,
            spans,
            features,
            ..
        } = scratch;
        // The words and their keys in the cache, first: the cache is megabytes, and each
        // lookup asks for the slot of the word a few ahead.
        normalize_split_into(text, norm, spans);
        keys.clear();
        let bytes = norm.as_bytes();
        keys.extend(
            spans
                .iter()
                .map(|&(a, b)| cache_key_of_bytes(&bytes[a as usize..b as usize])),
        );
        // Where each word's cache entry starts, then (below) its hash.
        words.clear();
        WORD_CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let cache = word_cache(&mut caches, self.id);
            for (i, &key) in keys.iter().enumerate() {
                if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
                    cache.words.prefetch(ahead);
                }
                let start = match cache.words.get(key) {
                    Some(start) => start,
                    None => {
                        let (a, b) = spans[i];
                        let w = &norm[a as usize..b as usize];
                        features.clear();
                        let hash = word_features(tokenizer, &self.config, w, pieces, &mut |f| {
                            features.push(f)
                        })
                        .unwrap_or(NO_HASH);
                        // The word's n-grams are looked up together, so that their reads of
                        // the index (a slot, then the key it points to) overlap.
                        let word_keys = features.iter().filter_map(|f| match *f {
                            Feature::Key(k) => Some(k),
                            Feature::Subword(_) => None,
                        });
                        word_keys.clone().for_each(|k| self.ngrams.prefetch(k));
                        word_keys.for_each(|k| self.ngrams.prefetch_key(k));
                        let start = cache.rows.len();
                        let rows = &mut cache.rows;
                        rows.extend([0; ENTRY_HEADER]);
                        rows.extend(features.iter().filter_map(|&f| row_of(f)));
                        rows[start] = (rows.len() - start - ENTRY_HEADER) as u32;
                        rows[start + 1] = hash as u32;
                        rows[start + 2] = (hash >> 32) as u32;
                        cache.words.insert(key, start as u32);
                        start as u32
                    }
                };
                // Words repeat within a text: count them first, and their rows once each
                // (asked for now, read below).
                prefetch_span(&cache.rows, start as usize, ENTRY_HEADER + 15);
                word_counter.add_n(start, 1);
                words.push(start as u64);
            }
            let rows = &cache.rows;
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
            // The words' hashes, for word n-grams; punctuation takes no part in them.
            words.retain_mut(|w| {
                let start = *w as usize;
                *w = rows[start + 1] as u64 | (rows[start + 2] as u64) << 32;
                *w != NO_HASH
            });
        });
        // The word n-grams: most are not in the model, and each costs a probe of the index
        // (scattered over megabytes), asked for a few keys ahead.
        keys.clear();
        word_ngrams(&self.config, words, |key| keys.push(key));
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
                self.ngrams.prefetch(ahead);
            }
            if let Some(r) = row_of(Feature::Key(key)) {
                packed.prefetch_row(r as usize, stride);
                counter.add(r);
            }
        }
        self.pool_counted(&mut counter, out);
        ROW_COUNTS.with(|c| c.replace(counter));
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
    fn projected_row(&self, r: usize) -> impl Iterator<Item = f32> + '_ {
        let classes = self.head_b.len();
        (0..classes).map(move |c| self.packed.value(r, c, classes))
    }

    /// Computes the packed rows used in prediction: for each table row the row multiplied by
    /// the head, and its IDF (and gives the model a new identity: its rows may have
    /// changed).
    fn project(&mut self) {
        self.id = NEXT_MODEL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        config: BowConfig,
        n_subwords: usize,
        classes: usize,
        tensors: HashMap<String, Tensor>,
    ) -> std::result::Result<Bow, String> {
        config.validate().map_err(|e| e.to_string())?;
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
        // (for 20newsgroups' 0.5M rows, the peak memory of loading fell from 127 to 85 MB).
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
        bow.id = NEXT_MODEL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(bow)
    }
}

/// A map from 64-bit keys (hashes already) to `u32` values: open addressing with linear
/// probing over (key, value) pairs in one array, at most two thirds full. A lookup mostly reads one
/// cache line, and a lookup to come can ask for its line ahead ([`KeyIndex::prefetch`]),
/// which a `HashMap` does not offer. It holds prediction's word cache.
#[derive(Debug, Clone)]
struct KeyIndex {
    /// (key, value + 1); 0 marks an empty slot.
    slots: Vec<(u64, u32)>,
    /// 64 minus the bits of a slot number: the top bits of a key's mix pick its first slot.
    shift: u32,
    /// Keys held.
    len: usize,
}

impl KeyIndex {
    /// An empty index with room for `n` keys before it grows.
    fn with_capacity(n: usize) -> KeyIndex {
        let (cap, shift) = slots_for(n);
        let mut slots = vec![(0u64, 0u32); cap];
        advise_huge_pages(&mut slots);
        KeyIndex {
            slots,
            shift,
            len: 0,
        }
    }

    /// The value of `key`, if it has one.
    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        loop {
            let (k, v) = self.slots[s];
            if v == 0 {
                return None;
            }
            if k == key {
                return Some(v - 1);
            }
            s = (s + 1) & mask;
        }
    }

    /// Gives `key` the value `value` (below `u32::MAX`) unless it has one already.
    fn insert(&mut self, key: u64, value: u32) {
        if (self.len + 1) * 3 > self.slots.len() * 2 {
            let mut bigger = KeyIndex::with_capacity(self.slots.len());
            for &(k, v) in self.slots.iter().filter(|s| s.1 != 0) {
                bigger.insert(k, v - 1);
            }
            *self = bigger;
        }
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        loop {
            let slot = &mut self.slots[s];
            if slot.1 == 0 {
                *slot = (key, value + 1);
                self.len += 1;
                return;
            }
            if slot.0 == key {
                return;
            }
            s = (s + 1) & mask;
        }
    }

    /// Forgets every key (keeping the room).
    fn clear(&mut self) {
        self.slots.fill((0, 0));
        self.len = 0;
    }

    /// Asks the CPU to start loading the first slot of `key`, looked up soon.
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        prefetch_span(&self.slots, first_slot(key, self.shift), 1);
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// The first slot to look in for `key` in a table of `2^(64 - shift)` slots (Fibonacci
/// hashing: keys are hashes already, but their low bits come out of a multiplication and mix
/// poorly).
#[inline(always)]
fn first_slot(key: u64, shift: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// Slots for `n` keys at most two thirds full (a power of two, at least 16), and the shift
/// of [`first_slot`] for them.
fn slots_for(n: usize) -> (usize, u32) {
    let cap = (n + n / 2 + 1).next_power_of_two().max(16);
    (cap, 64 - cap.trailing_zeros())
}

/// The model's n-gram keys, and the row of each: open addressing with linear probing, at
/// most two thirds full, over slots of 8 bytes (the key's low 32 bits, and its index + 1; 0
/// marks an empty slot), confirmed against the whole key in `keys` when the 32 bits match. A
/// lookup of an n-gram the model lacks (most lookups in prediction) mostly reads one cache
/// line and ends at the first empty slot, and a lookup to come can ask for its line ahead
/// ([`NgramIndex::prefetch`]), which a `HashMap` does not offer.
#[derive(Debug, Clone)]
struct NgramIndex {
    /// The keys; key `keys[i]` has index `i`.
    keys: Vec<u64>,
    slots: Vec<(u32, u32)>,
    shift: u32,
    /// Distinct keys (a repeated key keeps its first index).
    distinct: usize,
}

impl NgramIndex {
    fn new(keys: Vec<u64>) -> NgramIndex {
        let (cap, shift) = slots_for(keys.len());
        let mut slots = vec![(0u32, 0u32); cap];
        advise_huge_pages(&mut slots);
        let mask = cap - 1;
        let mut distinct = 0;
        for (i, &key) in keys.iter().enumerate() {
            let mut s = first_slot(key, shift);
            loop {
                let (low, v) = slots[s];
                if v == 0 {
                    slots[s] = (key as u32, i as u32 + 1);
                    distinct += 1;
                    break;
                }
                if low == key as u32 && keys[v as usize - 1] == key {
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        NgramIndex {
            keys,
            slots,
            shift,
            distinct,
        }
    }

    /// The index of `key`, if the model has it.
    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        self.candidates(key).find(|&i| self.keys[i as usize] == key)
    }

    /// The indexes of the keys on `key`'s probe sequence whose low 32 bits are `key`'s, in
    /// probe order (almost always none or one, `key` itself).
    #[inline(always)]
    fn candidates(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let mask = self.slots.len() - 1;
        let mut s = first_slot(key, self.shift);
        std::iter::from_fn(move || loop {
            let (low, v) = self.slots[s];
            if v == 0 {
                return None;
            }
            s = (s + 1) & mask;
            if low == key as u32 {
                return Some(v - 1);
            }
        })
    }

    /// Asks the CPU to start loading the first slot of `key`, looked up soon.
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        prefetch_span(&self.slots, first_slot(key, self.shift), 1);
    }

    /// Asks the CPU to start loading the key that `key`'s slot points to (the second read of
    /// [`NgramIndex::get`]), once its slot has been asked for ([`NgramIndex::prefetch`]).
    #[inline(always)]
    fn prefetch_key(&self, key: u64) {
        if let Some(i) = self.candidates(key).next() {
            prefetch_span(&self.keys, i as usize, 1);
        }
    }

    /// Number of keys.
    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Counts of a text's table rows in prediction: one count for each row of the model, reused
/// from one text to the next (each count is zeroed as it is read), so that counting a row is
/// one read and one write where a hash table probes.
#[derive(Default)]
pub(crate) struct RowCounts {
    counts: Vec<u32>,
    /// Rows counted, in first-seen order.
    used: Vec<u32>,
    /// Rows added, repeats included.
    total: u64,
}

impl RowCounts {
    /// Makes room for a model of `rows` rows (the counts are all zero between texts). The
    /// array only grows: a smaller model uses its start, and texts that alternate between
    /// models do not make it anew each time.
    fn ready(&mut self, rows: usize) {
        if self.counts.len() < rows {
            self.counts = vec![0; rows];
        }
    }

    #[inline]
    fn add(&mut self, row: u32) {
        self.add_n(row, 1);
    }

    /// Counts `row` `n` times.
    #[inline]
    fn add_n(&mut self, row: u32, n: u32) {
        let count = &mut self.counts[row as usize];
        if *count == 0 {
            self.used.push(row);
        }
        *count += n;
        self.total += n as u64;
    }
}

/// Counts repeated keys (a text's words in prediction, by where their cache entries start) in
/// an open-addressing table that is reused from one document to the next: no sorting, no
/// allocation once warm, and memory bounded by the number of distinct keys (not by the length
/// of the document).
#[derive(Default)]
pub(crate) struct RowCounter {
    /// (row + 1, count); row 0 marks an empty slot.
    slots: Vec<(u32, u32)>,
    /// Occupied slots in first-seen order.
    used: Vec<u32>,
    /// Rows added, repeats included.
    total: u64,
}

impl RowCounter {
    fn home(key: u32, mask: usize) -> usize {
        (key.wrapping_mul(0x9E37_79B1) as usize) & mask
    }

    #[cfg(test)]
    fn add(&mut self, row: u32) {
        self.add_n(row, 1);
    }

    /// Counts `row` `n` times.
    #[inline]
    fn add_n(&mut self, row: u32, n: u32) {
        if (self.used.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.total += n as u64;
        let key = row + 1;
        let mask = self.slots.len() - 1;
        let mut i = Self::home(key, mask);
        loop {
            let slot = &mut self.slots[i];
            if slot.0 == key {
                slot.1 += n;
                return;
            }
            if slot.0 == 0 {
                *slot = (key, n);
                self.used.push(i as u32);
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(64);
        let old: Vec<(u32, u32)> = self.used.iter().map(|&i| self.slots[i as usize]).collect();
        self.slots = vec![(0, 0); cap];
        self.used.clear();
        let mask = cap - 1;
        for (key, n) in old {
            let mut i = Self::home(key, mask);
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (key, n);
            self.used.push(i as u32);
        }
    }

    /// The distinct rows in first-seen order with their counts, written to `out`; the counter is
    /// left empty for the next document.
    #[cfg(test)]
    fn drain(&mut self, out: &mut Vec<(u32, u32)>) -> u64 {
        out.clear();
        for &i in &self.used {
            let (key, n) = std::mem::take(&mut self.slots[i as usize]);
            out.push((key - 1, n));
        }
        self.used.clear();
        std::mem::take(&mut self.total)
    }
}

/// Weighs the rows gathered in `counter` into `doc` (unique rows, in first-seen order).
#[cfg(test)]
fn weigh(
    counter: &mut RowCounter,
    idf: &[f32],
    weighting: Weighting,
    counts: &mut Vec<(u32, u32)>,
    doc: &mut SparseDoc,
) {
    counter.drain(counts);
    weigh_counts(counts, idf, weighting, doc);
}

/// Weighs distinct rows with their counts into `doc` (in the same order).
fn weigh_counts(counts: &[(u32, u32)], idf: &[f32], weighting: Weighting, doc: &mut SparseDoc) {
    let total = counts.iter().map(|&(_, n)| n as u64).sum::<u64>() as f32;
    doc.rows.clear();
    doc.weights.clear();
    for &(r, n) in counts.iter() {
        doc.rows.push(r);
        doc.weights.push(match weighting {
            Weighting::Tfidf if n == 1 => idf[r as usize],
            Weighting::Tfidf => sublinear_tf(n) * idf[r as usize],
            Weighting::Mean => n as f32 / total,
        });
    }
    if weighting == Weighting::Tfidf {
        let norm = doc.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            doc.weights.iter_mut().for_each(|w| *w *= inv);
        }
    }
}

/// `1 + ln(n)`, the weight of a feature counted `n` times in a text, from a table for the
/// counts that long articles repeat most (the logarithm was 3% of predicting bbc_en).
#[inline]
fn sublinear_tf(n: u32) -> f32 {
    static TABLE: std::sync::LazyLock<[f32; 64]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|i| 1.0 + (i.max(1) as f32).ln()));
    match TABLE.get(n as usize) {
        Some(&w) => w,
        None => 1.0 + (n as f32).ln(),
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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

/// The `n x n` identity matrix, row-major: the head of a linear model.
fn identity(n: usize) -> Vec<f32> {
    (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect()
}

/// Values that start on a cache line (64 bytes), for packed rows: then a row of 16 or 32 bytes
/// never straddles two lines, and one of 96 bytes spans two, not three. (A large `Vec` from the
/// allocator starts 16 bytes into a line.) The buffer is one line longer than the rows, which
/// start at its first 64-byte boundary.
#[derive(Debug, Default)]
struct AlignedRows<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> AlignedRows<T> {
    /// `len` zeros, on huge pages where the system gives them.
    fn zeros(len: usize) -> AlignedRows<T> {
        // Zeroed by the allocator (fresh pages, touched only when written; `vec!` asks for
        // zeroed memory when the value is a zero number): growing a `Vec` with zeros instead
        // raised 20newsgroups' prediction peak RSS by 11 MB.
        let pad = 64 / std::mem::size_of::<T>() - 1;
        let mut buf = vec![T::default(); len + pad];
        advise_huge_pages(&mut buf);
        let start = buf.as_ptr().align_offset(64).min(pad);
        AlignedRows { buf, start, len }
    }
}

impl<T> std::ops::Deref for AlignedRows<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> std::ops::DerefMut for AlignedRows<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl<T: Copy + Default> Clone for AlignedRows<T> {
    /// A copy aligned in its own buffer (a clone of the `Vec` could start elsewhere in a line).
    fn clone(&self) -> AlignedRows<T> {
        let mut out = AlignedRows::zeros(self.len);
        out.copy_from_slice(self);
        out
    }
}

impl<T: PartialEq> PartialEq for AlignedRows<T> {
    fn eq(&self, other: &AlignedRows<T>) -> bool {
        self[..] == other[..]
    }
}

/// Floats per packed row of a model with `classes` labels: the row's value for each label,
/// zeros, and its IDF last, in a multiple of four (rows are summed four lanes at a time).
fn packed_stride(classes: usize) -> usize {
    (classes + 1).next_multiple_of(4)
}

/// The packed rows of a model: for each table row its value for each label, zeros, and its IDF
/// last.
#[derive(Debug, Clone, PartialEq)]
enum Packed {
    /// In single precision, [`packed_stride`] values a row.
    F32(AlignedRows<f32>),
    /// The bits of half-precision values, [`half_stride`] a row: for a model saved in half
    /// precision (where they are exactly its weights and IDFs) on a CPU that converts them
    /// (`converts_half`). A row is half as long, so fewer lines are read for it (one instead of
    /// two for 20 labels), and more of the table stays in the caches.
    F16(AlignedRows<u16>),
}

impl Default for Packed {
    fn default() -> Packed {
        Packed::F32(AlignedRows::default())
    }
}

impl Packed {
    /// Values per row of a model with `classes` labels.
    fn stride(&self, classes: usize) -> usize {
        match self {
            Packed::F32(_) => packed_stride(classes),
            Packed::F16(_) => half_stride(classes),
        }
    }

    /// Row `r`'s value for label `c`.
    fn value(&self, r: usize, c: usize, classes: usize) -> f32 {
        let at = r * self.stride(classes) + c;
        match self {
            Packed::F32(rows) => rows[at],
            Packed::F16(rows) => half::f16::from_bits(rows[at]).to_f32(),
        }
    }

    /// Where the first row starts in memory.
    #[cfg(test)]
    fn address(&self) -> usize {
        match self {
            Packed::F32(rows) => rows.as_ptr() as usize,
            Packed::F16(rows) => rows.as_ptr() as usize,
        }
    }

    /// Asks for row `r` (see [`prefetch_span`]).
    #[inline(always)]
    fn prefetch_row(&self, r: usize, stride: usize) {
        match self {
            Packed::F32(rows) => prefetch_span(rows, r * stride, stride),
            Packed::F16(rows) => prefetch_span(rows, r * stride, stride),
        }
    }
}

/// Fills packed rows (`stride` values each, zeros already) with `classes` values each and the
/// row's IDF last.
fn fill_rows<T>(
    packed: &mut [T],
    stride: usize,
    classes: usize,
    idf: impl Iterator<Item = T>,
    mut values: impl Iterator<Item = T>,
) {
    for (out, idf) in packed.chunks_mut(stride).zip(idf) {
        out[stride - 1] = idf;
        for (o, x) in out[..classes].iter_mut().zip(&mut values) {
            *o = x;
        }
    }
}

/// Values per half-precision row of a model with `classes` labels: the labels' values and the
/// IDF in a multiple of eight (rows are summed eight lanes at a time), and 8, 16 or 32 of them
/// (16, 32 or 64 bytes) or a multiple of 32, so that a row never straddles two cache lines.
fn half_stride(classes: usize) -> usize {
    let n = (classes + 1).next_multiple_of(8);
    if n <= 32 {
        n.next_power_of_two()
    } else {
        n.next_multiple_of(32)
    }
}

/// Whether this CPU converts half-precision values (F16C, with AVX for eight lanes at a time):
/// most x86-64 CPUs since 2012, checked when the program runs since the binary targets any.
fn converts_half() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// How a counted row's weight is found: see [`Weighting`].
#[derive(Clone, Copy)]
struct RowWeight {
    weighting: Weighting,
    /// The text's number of features, counted with repeats.
    total: f32,
}

impl RowWeight {
    /// The weight of a row counted `n` times, with IDF `idf`.
    #[inline(always)]
    fn of(self, n: u32, idf: f32) -> f32 {
        match self.weighting {
            Weighting::Tfidf if n == 1 => idf,
            Weighting::Tfidf => sublinear_tf(n) * idf,
            Weighting::Mean => n as f32 / self.total,
        }
    }
}

/// Adds the counted rows (single precision), weighted, to `out` (`stride` long), emptying the
/// counts; returns the sum of the squared weights.
fn pool_f32(
    rows: &[f32],
    stride: usize,
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    let mut norm2 = 0.0f32;
    for &r in &counter.used {
        let n = std::mem::take(&mut counter.counts[r as usize]);
        let r = r as usize;
        let row = &rows[r * stride..(r + 1) * stride];
        let w = weigh.of(n, row[stride - 1]);
        norm2 += w * w;
        add_scaled(out, w, row);
    }
    norm2
}

/// [`pool_f32`] on half-precision rows: each row converted to single precision eight lanes at a
/// time, then the same products and sums in the same order, so the same result to the bit as
/// on the same rows in single precision.
///
/// # Safety
/// The CPU must have F16C and AVX (`converts_half`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn pool_f16(
    rows: &[u16],
    stride: usize,
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    debug_assert!(stride % 8 == 0 && out.len() == stride);
    // The rows of most models are one to four vectors: sums kept in registers.
    match stride {
        8 => pool_f16_in_registers::<8, 1>(rows, counter, weigh, out),
        16 => pool_f16_in_registers::<16, 2>(rows, counter, weigh, out),
        32 => pool_f16_in_registers::<32, 4>(rows, counter, weigh, out),
        _ => {
            use std::arch::x86_64::*;
            let mut norm2 = 0.0f32;
            for &r in &counter.used {
                let n = std::mem::take(&mut counter.counts[r as usize]);
                let row = &rows[r as usize * stride..(r as usize + 1) * stride];
                let w = weigh.of(n, half_to_f32(row[stride - 1]));
                norm2 += w * w;
                let wv = _mm256_set1_ps(w);
                for (o, p) in out.chunks_exact_mut(8).zip(row.chunks_exact(8)) {
                    let p = _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i));
                    let o = o.as_mut_ptr();
                    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_mul_ps(wv, p)));
                }
            }
            norm2
        }
    }
}

/// [`pool_f16`] for rows of `S = 8 L` values, summed in `L` registers.
///
/// # Safety
/// As [`pool_f16`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn pool_f16_in_registers<const S: usize, const L: usize>(
    rows: &[u16],
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    use std::arch::x86_64::*;
    assert!(S == 8 * L && out.len() == S);
    let mut sums = [_mm256_setzero_ps(); L];
    let mut norm2 = 0.0f32;
    for &r in &counter.used {
        let n = std::mem::take(&mut counter.counts[r as usize]);
        let row = &rows[r as usize * S..r as usize * S + S];
        let w = weigh.of(n, half_to_f32(row[S - 1]));
        norm2 += w * w;
        let wv = _mm256_set1_ps(w);
        for (l, sum) in sums.iter_mut().enumerate() {
            // SAFETY: values 8 l .. 8 l + 8 of a row of 8 L.
            let p = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(8 * l) as *const __m128i));
            *sum = _mm256_add_ps(*sum, _mm256_mul_ps(wv, p));
        }
    }
    for (l, sum) in sums.iter().enumerate() {
        // SAFETY: `out` holds 8 L values.
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * l), *sum);
    }
    norm2
}

/// One half-precision value (its bits) in single precision, by F16C.
///
/// # Safety
/// The CPU must have F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "f16c")]
unsafe fn half_to_f32(bits: u16) -> f32 {
    use std::arch::x86_64::*;
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// `out += w * row`, four lanes at a time (both lengths are the same multiple of four).
#[inline(always)]
fn add_scaled(out: &mut [f32], w: f32, row: &[f32]) {
    debug_assert!(out.len() == row.len() && row.len() % 4 == 0);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_storeu_ps};
        let n = out.len().min(row.len());
        // SAFETY: SSE is part of x86_64; every load and store is of four floats at i < n, in
        // bounds of both slices.
        unsafe {
            let wv = _mm_set1_ps(w);
            for i in 0..n / 4 {
                let o = out.as_mut_ptr().add(4 * i);
                let p = _mm_loadu_ps(row.as_ptr().add(4 * i));
                _mm_storeu_ps(o, _mm_add_ps(_mm_loadu_ps(o), _mm_mul_ps(wv, p)));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (o, p) in out.iter_mut().zip(row) {
        *o += w * p;
    }
}

/// Asks the CPU to start loading `data[at..at + len]` (a row read soon), by the cache lines of
/// its first and last value (a short row may straddle two).
#[inline(always)]
fn prefetch_span<T>(data: &[T], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in [at, at + len - 1] {
        if let Some(p) = data.get(i) {
            // SAFETY: a prefetch hint has no effect on memory; the pointer is in bounds.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    p as *const T as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at, len);
}

/// Asks the kernel to back `v` with huge pages where it can (Linux): rows scattered over tens
/// of megabytes otherwise cost a page-table walk each. Call before the memory is first
/// written; a hint only.
fn advise_huge_pages<T>(v: &mut [T]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const PAGE: usize = 4096;
        let bytes = std::mem::size_of_val(v);
        if bytes < 4 << 20 {
            return;
        }
        let start = (v.as_mut_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_mut_ptr() as usize + bytes) / PAGE * PAGE;
        // SAFETY: the range lies inside `v`'s allocation; MADV_HUGEPAGE changes how pages are
        // backed, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = v;
}

/// Gives the heap's free pages back to the system (Linux with glibc): the raw features of the
/// training documents are freed once their rows are known, but glibc keeps the memory of
/// small allocations, and the SVMs' weights would then come on top of it (20newsgroups:
/// about 90 MB of the peak).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many items ahead a loop asks for what it will read (the SVMs' rows in training, the
/// word cache's and n-gram index's slots in prediction): far enough for memory to answer
/// before it is needed.
const PREFETCH_AHEAD: usize = 8;

/// `out = sum_i weight_i * table[row_i]`.
fn pool(table: &[f32], dim: usize, doc: &SparseDoc, out: &mut Vec<f32>) {
    out.clear();
    out.resize(dim, 0.0);
    for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
        let row = &table[r as usize * dim..(r as usize + 1) * dim];
        for (o, x) in out.iter_mut().zip(row) {
            *o += w * x;
        }
    }
}

/// Training-time state of a `bow` model.
pub(crate) struct BowTrainer {
    bow: Bow,
    /// The prepared documents and their labels, shared with [`BowTrainer::fork`]s.
    docs: Arc<Vec<SparseDoc>>,
    targets: Arc<Vec<u32>>,
    /// Optimizer state of the table: Adam's two moments, or Adagrad's sums of squares in `v`
    /// (one per row for [`SparseOptimizer::AdagradRow`]).
    m: Vec<f32>,
    v: Vec<f32>,
    head_w: Var,
    head_b: Var,
    opt: AdamW,
    step: u64,
    /// Per-row slot in the batch gradient buffer (u32::MAX: untouched).
    slot: Vec<u32>,
    /// The head is trained (false for a linear model, whose head stays the identity).
    train_head: bool,
    /// Seed of the initial weights.
    seed: u64,
    /// Dual coordinate descent state, for [`Loss::Svm`] and [`Loss::NbSvm`].
    svm: Option<Svm>,
}

/// State of the one-vs-rest SVMs' dual coordinate descent (as LIBLINEAR's L2-loss SVC dual
/// solver). The labels' SVMs are independent, so they are split into parts (one per thread)
/// that train side by side, each with its own weights.
struct Svm {
    parts: Vec<SvmPart>,
    classes: usize,
}

/// The SVMs of labels `first..first + k`. The table holds the weights of the unscaled
/// features, `u = r * v`, where `v` are the SVM's weights on the features scaled by `r` (the
/// naive Bayes ratios, or 1), so prediction needs no scaling.
struct SvmPart {
    first: usize,
    k: usize,
    /// Weights, `rows x k`.
    table: Vec<f32>,
    /// `r^2` for each table row and label (`rows x k`); empty for a plain SVM (r = 1).
    r2: Vec<f32>,
    /// Dual variables, `docs x k`.
    alpha: Vec<f32>,
    /// Diagonal of the dual's matrix, `docs x k`: `|r x|^2 + 1 (the bias) + 1 / (2 C)`.
    qd: Vec<f32>,
    /// Bias of each label's SVM (the weight of a constant feature of value 1).
    bias: Vec<f32>,
    /// `1 / (2 C)` of each label's SVM.
    inv_2c: Vec<f32>,
    /// Largest violation of the dual's optimality conditions (projected gradient) met since
    /// [`Svm::take_violation`] last asked.
    violation: f32,
}

impl Svm {
    /// The SVMs of `classes` labels on the first `n` documents, in `parts` parts: the ratios
    /// (`r2`, `rows x classes`, empty for a plain SVM) are split among them, and each label's
    /// `C` is `c` over the mean squared length of its (scaled) documents.
    fn new(
        docs: &[SparseDoc],
        n: usize,
        r2: &[f32],
        rows: usize,
        classes: usize,
        c: f32,
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
                SvmPart::new(docs, n, part_r2, rows, first, k, c)
            })
            .collect();
        Svm { parts, classes }
    }

    /// `n x classes` values gathered from each part's `n x k` ones.
    fn gather(&self, n: usize, field: impl Fn(&SvmPart) -> &[f32]) -> Vec<f32> {
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
    fn weights(&self) -> (Vec<f32>, Vec<f32>) {
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
    /// `r2` (`rows x k`, empty for a plain SVM), and `C` relative to `c`.
    fn new(
        docs: &[SparseDoc],
        n: usize,
        r2: Vec<f32>,
        rows: usize,
        first: usize,
        k: usize,
        c: f32,
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
        for q in qd.chunks_mut(k).take(n) {
            q.iter_mut().zip(&inv_2c).for_each(|(x, i)| *x += 1.0 + i);
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
            violation: 0.0,
        }
    }

    /// One pass of dual coordinate descent over `batch`: each document's dual variable moves
    /// to the optimum of the dual with the others fixed, and the weights follow. Returns the
    /// batch's squared hinge loss (summed over documents and labels), before the updates.
    fn step(&mut self, docs: &[SparseDoc], targets: &[u32], batch: &[usize]) -> f32 {
        let k = self.k;
        let mut s = vec![0f32; k];
        // The labels whose dual variable moved, and by how much (times y).
        let mut moved: Vec<(usize, f32)> = Vec::with_capacity(k);
        let mut loss = 0.0f32;
        let table = &mut self.table;
        for &d in batch {
            let doc = &docs[d];
            let t = targets[d] as usize;
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
                let y = if self.first + c == t { 1.0 } else { -1.0 };
                let margin = y * (s[c] + self.bias[c]);
                loss += (1.0 - margin).max(0.0).powi(2);
                let g = margin - 1.0 + self.inv_2c[c] * alpha[c];
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

/// What [`BowTrainer::backward`] computes.
struct Backward {
    loss: f32,
    /// Gradients of the head (candle's), when it is trained.
    grads: Option<candle_core::backprop::GradStore>,
    /// The table rows the batch touched, and their gradients (`touched.len() x dim`).
    touched: Vec<u32>,
    grad_rows: Vec<f32>,
}

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

impl BowTrainer {
    /// Builds the feature index (n-grams, IDF) from the training texts and initializes the
    /// weights from `seed`.
    pub fn new(
        config: BowConfig,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
        seed: u64,
    ) -> Result<BowTrainer> {
        config.validate()?;
        super::prepare_runtime();
        let n_subwords = tokenizer.vocab_size();
        // Pass 1: the distinct raw features of every document with their counts, in parallel.
        let raw: Vec<RawDoc> = texts
            .par_iter()
            .map_init(TrainWords::default, |words, text| {
                words.doc(tokenizer, &config, text)
            })
            .collect();
        // Exact duplicate texts count once for document frequencies: a corpus given twice (to
        // weigh it more in training) must not change which n-grams get rows, or their IDF.
        let distinct: Vec<bool> = {
            let mut seen = std::collections::HashSet::new();
            texts.iter().map(|t| seen.insert(*t)).collect()
        };
        // Document frequency of every key: words and character n-grams apart from word
        // n-grams, which have a threshold of their own.
        let df = |keys_of: fn(&RawDoc) -> &[u64]| -> KeyMap {
            raw.par_iter()
                .zip(&distinct)
                .filter(|(_, &d)| d)
                .map(|(r, _)| r)
                .fold(KeyMap::default, |mut acc, doc| {
                    for (k, _) in run_lengths(keys_of(doc)) {
                        *acc.entry(k).or_insert(0) += 1;
                    }
                    acc
                })
                .reduce(KeyMap::default, |mut a, b| {
                    if a.len() < b.len() {
                        return merge_counts(b, a);
                    }
                    for (k, n) in b {
                        *a.entry(k).or_insert(0) += n;
                    }
                    a
                })
        };
        let kept_of =
            |df: KeyMap, min: usize| df.into_iter().filter(move |&(_, n)| n as usize >= min);
        let mut kept: Vec<(u64, u32)> = kept_of(df(|d| &d.keys), config.min_count_words)
            .chain(kept_of(df(|d| &d.pairs), config.min_count))
            .collect();
        if kept.len() > config.max_ngrams {
            kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            kept.truncate(config.max_ngrams);
        }
        let mut ngram_keys: Vec<u64> = kept.into_iter().map(|(k, _)| k).collect();
        ngram_keys.sort_unstable();
        ngram_keys.dedup(); // a word n-gram's key equal to a word's (odds of 1 in 10^19 a pair)
        let ngrams = NgramIndex::new(ngram_keys);
        let rows = n_subwords + ngrams.len();

        // Pass 2: the distinct rows of every document with their counts (subwords and n-grams
        // have rows of their own, so distinct features give distinct rows), and IDF
        // (smoothed, as scikit-learn does).
        let doc_rows: Vec<Vec<(u32, u32)>> = raw
            .into_par_iter()
            .map(|doc| {
                let RawDoc { subs, keys, pairs } = doc;
                let mut r: Vec<(u32, u32)> = run_lengths(&subs)
                    .filter(|&(s, _)| (s as usize) < n_subwords)
                    .collect();
                // The keys in order (rows are given in key order), both kinds together.
                r.extend(
                    merged_runs(&keys, &pairs)
                        .filter_map(|(k, n)| ngrams.get(k).map(|i| (n_subwords as u32 + i, n))),
                );
                r
            })
            .collect();
        let mut df_rows = vec![0u32; rows];
        for r in doc_rows
            .iter()
            .zip(&distinct)
            .filter(|(_, &d)| d)
            .map(|(r, _)| r)
        {
            for &(row, _) in r {
                df_rows[row as usize] += 1;
            }
        }
        let n = distinct.iter().filter(|&&d| d).count() as f32;
        let idf: Vec<f32> = df_rows
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        // Each document's counts are dropped as its weights are made.
        let docs: Vec<SparseDoc> = doc_rows
            .into_par_iter()
            .map(|counts| {
                let mut doc = SparseDoc::default();
                weigh_counts(&counts, &idf, config.weighting, &mut doc);
                doc
            })
            .collect();
        release_freed_memory();

        // dim 0: a linear model, trained as the folded form of the factored one (one column per
        // label, identity head).
        let linear = config.dim == 0;
        let mut config = config;
        if linear {
            config.dim = classes;
            config.folded = true;
        }
        let dim = config.dim;
        let dev = Device::Cpu;
        let head_w = Var::zeros((classes, dim), DType::F32, &dev)?;
        let head_b = Var::zeros(classes, DType::F32, &dev)?;
        let opt = AdamW::new(Vec::new(), ParamsAdamW::default())?;
        let mut trainer = BowTrainer {
            bow: Bow {
                config,
                n_subwords,
                ngrams,
                idf,
                table: Vec::new(),
                table_in_packed: false,
                head_w: Vec::new(),
                head_b: vec![0.0; classes],
                packed: Packed::default(),
                id: 0,
            },
            docs: Arc::new(docs),
            targets: Arc::new(targets),
            m: Vec::new(),
            v: Vec::new(),
            head_w,
            head_b,
            opt,
            step: 0,
            slot: vec![u32::MAX; rows],
            train_head: !linear,
            seed,
            svm: None,
        };
        trainer.restart()?;
        Ok(trainer)
    }

    /// Sets the weights and the optimizer state to what [`BowTrainer::new`] gives (the same
    /// seed, the same values), keeping the features.
    pub fn restart(&mut self) -> Result<()> {
        let (rows, dim) = (self.slot.len(), self.bow.config.dim);
        let classes = self.bow.head_b.len();
        let linear = !self.train_head;
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
        let head_w: Vec<f32> = if linear {
            identity(classes) // dim == classes
        } else {
            (0..classes * dim)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * scale)
                .collect()
        };
        let dev = Device::Cpu;
        self.head_w = Var::from_slice(&head_w, (classes, dim), &dev)?;
        self.head_b = Var::zeros(classes, DType::F32, &dev)?;
        self.bow.head_w = head_w;
        self.bow.head_b = vec![0.0; classes];
        let head_params = if linear {
            Vec::new()
        } else {
            vec![self.head_w.clone(), self.head_b.clone()]
        };
        self.opt = AdamW::new(
            head_params,
            ParamsAdamW {
                lr: 1e-3,
                weight_decay: 0.0,
                ..Default::default()
            },
        )?;
        self.m = match self.bow.config.optimizer {
            SparseOptimizer::Adam => vec![0.0; rows * dim],
            _ => Vec::new(),
        };
        self.v = match self.bow.config.optimizer {
            SparseOptimizer::Sgd => Vec::new(),
            SparseOptimizer::AdagradRow => vec![0.0; rows],
            SparseOptimizer::Adam | SparseOptimizer::Adagrad => vec![0.0; rows * dim],
        };
        self.step = 0;
        Ok(())
    }

    /// A second trainer at the initial weights of the same seed that shares this one's prepared
    /// documents (a second model can train on them alongside, on another thread).
    pub fn fork(&self) -> Result<BowTrainer> {
        let b = &self.bow;
        let dev = Device::Cpu;
        let (classes, dim) = (b.head_b.len(), b.config.dim);
        let mut fork = BowTrainer {
            bow: Bow {
                config: b.config.clone(),
                n_subwords: b.n_subwords,
                ngrams: b.ngrams.clone(),
                idf: b.idf.clone(),
                table: Vec::new(),
                table_in_packed: false,
                head_w: Vec::new(),
                head_b: vec![0.0; classes],
                packed: Packed::default(),
                id: 0,
            },
            docs: Arc::clone(&self.docs),
            targets: Arc::clone(&self.targets),
            m: Vec::new(),
            v: Vec::new(),
            head_w: Var::zeros((classes, dim), DType::F32, &dev)?,
            head_b: Var::zeros(classes, DType::F32, &dev)?,
            opt: AdamW::new(Vec::new(), ParamsAdamW::default())?,
            step: 0,
            slot: vec![u32::MAX; self.slot.len()],
            train_head: self.train_head,
            seed: self.seed,
            svm: None,
        };
        fork.restart()?;
        Ok(fork)
    }

    /// The predicted class (index of the highest logit) of each prepared document in `docs`,
    /// from the weights as they stand: what the model would predict for their texts.
    pub fn predict_docs(&self, docs: std::ops::Range<usize>) -> Result<Vec<usize>> {
        let dim = self.bow.config.dim;
        let head_w: Vec<f32> = self.head_w.as_tensor().flatten_all()?.to_vec1()?;
        let mut head_b: Vec<f32> = self.head_b.as_tensor().to_vec1()?;
        let svm_table;
        let mut table = &self.bow.table;
        if let Some(svm) = &self.svm {
            (svm_table, head_b) = svm.weights();
            table = &svm_table;
        }
        let (mut pooled, mut logits) = (Vec::with_capacity(dim), Vec::with_capacity(head_b.len()));
        Ok(self.docs[docs]
            .iter()
            .map(|doc| {
                pool(table, dim, doc, &mut pooled);
                logits.clear();
                logits.extend(
                    head_w
                        .chunks(dim)
                        .zip(&head_b)
                        .map(|(w, b)| dot(w, &pooled) + b),
                );
                crate::classifier::argmax(&logits)
            })
            .collect())
    }

    pub fn num_ngrams(&self) -> usize {
        self.bow.num_ngrams()
    }

    pub fn num_docs(&self) -> usize {
        self.docs.len()
    }

    /// The mean loss of `batch` and the pooled vectors it was computed from (a candle variable,
    /// so that backward yields their gradient).
    fn forward(&self, batch: &[usize]) -> Result<(Var, Tensor)> {
        let dim = self.bow.config.dim;
        let classes = self.bow.head_b.len();
        let b = batch.len();
        let dev = Device::Cpu;
        // Through the table by hand: gather and pool the rows of each document.
        let mut pooled = vec![0f32; b * dim];
        let mut tmp = Vec::with_capacity(dim);
        for (i, &d) in batch.iter().enumerate() {
            pool(&self.bow.table, dim, &self.docs[d], &mut tmp);
            pooled[i * dim..(i + 1) * dim].copy_from_slice(&tmp);
        }
        let targets: Vec<u32> = batch.iter().map(|&d| self.targets[d]).collect();

        // Head and loss in candle. The true label's logit is lowered by the margin (large-margin
        // softmax): the loss keeps pushing until the right label leads by that much.
        let h = Var::from_vec(pooled, (b, dim), &dev)?;
        let mut logits = h
            .as_tensor()
            .matmul(&self.head_w.as_tensor().t()?)?
            .broadcast_add(self.head_b.as_tensor())?;
        let margin = self.bow.config.margin;
        if margin > 0.0 {
            let mut shift = vec![0f32; b * classes];
            for (i, &t) in targets.iter().enumerate() {
                shift[i * classes + t as usize] = margin;
            }
            logits = (logits - Tensor::from_vec(shift, (b, classes), &dev)?)?;
        }
        let target_t = Tensor::from_vec(targets, b, &dev)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &target_t)?;
        Ok((h, loss))
    }

    /// For a linear model (identity head, zero bias, so the pooled vector is the logits): the
    /// mean large-margin softmax cross-entropy of `batch`, as [`BowTrainer::forward`] computes
    /// it, and its gradient with respect to each document's pooled vector, written out instead
    /// of built as a candle graph (a step's products are tiny; the graph cost more than them).
    fn linear_loss(&self, batch: &[usize]) -> (f32, Vec<f32>) {
        let classes = self.bow.config.dim;
        let margin = self.bow.config.margin;
        let scale = 1.0 / batch.len() as f32;
        let mut grad = vec![0f32; batch.len() * classes];
        let mut z = Vec::with_capacity(classes);
        let mut loss = 0.0f32;
        for (g, &d) in grad.chunks_exact_mut(classes).zip(batch) {
            pool(&self.bow.table, classes, &self.docs[d], &mut z);
            loss += margin_softmax_loss(&mut z, self.targets[d] as usize, margin, g);
            g.iter_mut().for_each(|gk| *gk *= scale);
        }
        (loss * scale, grad)
    }

    /// Linear model, row-wise Adagrad: each document of `batch` in turn is scored and its
    /// gradient applied at once to the rows it has (the loss of [`BowTrainer::linear_loss`],
    /// the update of [`BowTrainer::batch_step`] for a batch of one). The mean loss.
    fn online_step(&mut self, batch: &[usize], lr: f64) -> f32 {
        let classes = self.bow.config.dim;
        let margin = self.bow.config.margin;
        let lr = lr as f32 * self.bow.config.table_lr_scale;
        let mut z = Vec::with_capacity(classes);
        let mut g = vec![0f32; classes];
        let mut loss = 0.0f32;
        for &d in batch {
            let doc = &self.docs[d];
            pool(&self.bow.table, classes, doc, &mut z);
            loss += margin_softmax_loss(&mut z, self.targets[d] as usize, margin, &mut g);
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
    fn backward(&mut self, batch: &[usize]) -> Result<Backward> {
        let dim = self.bow.config.dim;
        let (loss, grads, grad_h) = if self.train_head {
            let (h, loss) = self.forward(batch)?;
            let grads = loss.backward()?;
            let grad_h: Vec<f32> = grads
                .get(h.as_tensor())
                .ok_or_else(|| Error::Usage("internal: no gradient for the pooled vectors".into()))?
                .flatten_all()?
                .to_vec1()?;
            (loss.to_scalar::<f32>()?, Some(grads), grad_h)
        } else {
            let (loss, grad_h) = self.linear_loss(batch);
            (loss, None, grad_h)
        };
        let mut touched: Vec<u32> = Vec::new();
        let mut grad_rows: Vec<f32> = Vec::new();
        for (i, &d) in batch.iter().enumerate() {
            let g = &grad_h[i * dim..(i + 1) * dim];
            let doc = &self.docs[d];
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
            grads,
            touched,
            grad_rows,
        })
    }

    /// One optimizer step on the documents `batch` (indices into the training set) at learning
    /// rate `lr`. Returns the mean loss of the batch.
    ///
    /// The linear model with row-wise Adagrad (the default) learns online: each document's
    /// gradient is applied as soon as it is computed, as in fastText, instead of summed over
    /// the batch first; the batch then only sets how often the learning rate moves. Measured
    /// (4 seeds): the same accuracy within ±0.1 point on ag_news, l3cube_hi and l3cube_en, and
    /// 35-40% less training time, since the rows a document touches are updated while they are
    /// still in cache and no batch gradient is gathered.
    pub fn step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        if self.svm.is_some() {
            Ok(self.svm_step(batch))
        } else if self.online() {
            Ok(self.online_step(batch, lr))
        } else {
            self.batch_step(batch, lr)
        }
    }

    /// Whether [`BowTrainer::step`] learns online.
    fn online(&self) -> bool {
        !self.train_head && self.bow.config.optimizer == SparseOptimizer::AdagradRow
    }

    /// One step on the gradient summed over `batch`.
    fn batch_step(&mut self, batch: &[usize], lr: f64) -> Result<f32> {
        let dim = self.bow.config.dim;
        let b = batch.len();
        let Backward {
            loss,
            grads,
            touched,
            grad_rows,
        } = self.backward(batch)?;
        if let Some(grads) = grads {
            self.opt.set_learning_rate(lr);
            self.opt.step(&grads)?;
        }

        // Update just those rows.
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        let lr = lr as f32 * self.bow.config.table_lr_scale;
        // The loss is a batch mean; Adagrad and SGD take per-example gradients, as fastText.
        let per_example = b as f32;
        for (s, &r) in touched.iter().enumerate() {
            let g = &grad_rows[s * dim..(s + 1) * dim];
            let base = r as usize * dim;
            let row = &mut self.bow.table[base..base + dim];
            match self.bow.config.optimizer {
                SparseOptimizer::Adam => {
                    let m = &mut self.m[base..base + dim];
                    let v = &mut self.v[base..base + dim];
                    for k in 0..dim {
                        m[k] = BETA1 * m[k] + (1.0 - BETA1) * g[k];
                        v[k] = BETA2 * v[k] + (1.0 - BETA2) * g[k] * g[k];
                        row[k] -= lr * (m[k] / c1) / ((v[k] / c2).sqrt() + EPS);
                    }
                }
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
    pub fn snapshot(&mut self) -> Result<Bow> {
        self.bow.head_w = self.head_w.as_tensor().flatten_all()?.to_vec1()?;
        self.bow.head_b = self.head_b.as_tensor().to_vec1()?;
        if let Some(svm) = &self.svm {
            // The SVMs' scores, scaled so that their softmax gives probabilities of a useful
            // spread (argmax is unchanged).
            // The weights go straight into the packed rows (the model is linear: its rows are
            // its weights), with no table beside them.
            let mut out = self.bow.clone();
            out.packed = Packed::F32(svm.packed(&out.idf, SVM_SCORE_SCALE));
            out.table_in_packed = true;
            out.head_b = svm.gather(1, |p| &p.bias);
            out.head_b.iter_mut().for_each(|b| *b *= SVM_SCORE_SCALE);
            out.project();
            return Ok(out);
        }
        self.bow.project();
        Ok(self.bow.clone())
    }

    /// Prepares training on the first `n` documents: for the SVM losses, the naive Bayes
    /// ratios of those documents' features and the dual's state.
    pub fn begin(&mut self, n: usize) {
        self.begin_in_parts(n, rayon::current_num_threads());
    }

    /// [`BowTrainer::begin`], with the SVMs split in `parts` parts (the same weights come of
    /// any split).
    fn begin_in_parts(&mut self, n: usize, parts: usize) {
        let loss = self.bow.config.loss;
        if loss == Loss::Softmax || self.train_head {
            self.svm = None;
            return;
        }
        let classes = self.bow.head_b.len();
        let rows = self.slot.len();
        let docs = &self.docs[..n];
        let targets = &self.targets[..n];
        let r2 = if loss == Loss::NbSvm {
            nb_ratios_squared(docs, targets, rows, classes)
        } else {
            Vec::new()
        };
        // The parts hold the weights while the SVMs train.
        self.bow.table = Vec::new();
        self.svm = Some(Svm::new(
            &self.docs,
            n,
            &r2,
            rows,
            classes,
            self.bow.config.svm_c,
            parts,
        ));
    }

    /// One pass of dual coordinate descent over `batch`, for every label's SVM (the parts on
    /// their threads). Returns the batch's mean squared hinge loss (summed over labels),
    /// before the updates.
    fn svm_step(&mut self, batch: &[usize]) -> f32 {
        let Some(svm) = self.svm.as_mut() else {
            return 0.0;
        };
        let (docs, targets) = (&self.docs[..], &self.targets[..]);
        let loss: f32 = if svm.parts.len() == 1 {
            svm.parts[0].step(docs, targets, batch)
        } else {
            svm.parts
                .par_iter_mut()
                .map(|p| p.step(docs, targets, batch))
                .sum()
        };
        self.step += 1;
        loss / batch.len().max(1) as f32
    }

    /// The documents per step (asked after [`BowTrainer::begin`]): the configured number, or
    /// while SVMs train (they visit documents one at a time whatever the batch) at least
    /// [`SVM_BATCH`], so that the threads the labels are split over meet less often.
    pub fn batch_size(&self, configured: usize) -> usize {
        match self.svm {
            Some(_) => configured.max(SVM_BATCH),
            None => configured,
        }
    }

    /// For the SVM losses, the largest violation of the dual's optimality conditions since the
    /// last call (0 once the SVMs are at their optimum); `None` for the softmax loss.
    pub fn take_violation(&mut self) -> Option<f32> {
        self.svm.as_mut().map(Svm::take_violation)
    }
}

/// Fewest documents per step of the SVM losses (see [`BowTrainer::batch_size`]).
const SVM_BATCH: usize = 1024;

/// How much the SVMs' scores are multiplied by in the saved model, whose softmax gives the
/// probabilities shown (argmax is unchanged). Test-set log loss of `nb-svm` models by scale
/// (1 / 2 / 4 / 8): ag_news 0.54 / 0.34 / 0.35 / 0.59, l3cube_hi 1.29 / 0.81 / 0.61 / 0.77,
/// 20newsgroups 1.85 / 1.13 / 0.62 / 0.52, bbc_en 0.60 / 0.23 / 0.08 / 0.07.
const SVM_SCORE_SCALE: f32 = 4.0;

/// The squared naive Bayes log-count ratio of every table row for every label (`rows x
/// classes`): with `p` the number of the label's documents that have the feature plus 1, and
/// `q` the same over the other labels' documents, each normalized by its sum over all rows,
/// `r = ln(p / q)`.
fn nb_ratios_squared(docs: &[SparseDoc], targets: &[u32], rows: usize, classes: usize) -> Vec<f32> {
    let mut count = vec![0f32; rows * classes];
    advise_huge_pages(&mut count);
    for (doc, &t) in docs.iter().zip(targets) {
        for &r in &doc.rows {
            count[r as usize * classes + t as usize] += 1.0;
        }
    }
    let mut psum = vec![0f64; classes];
    let mut qsum = vec![0f64; classes];
    for row in count.chunks(classes) {
        let total: f32 = row.iter().sum();
        for (c, &n) in row.iter().enumerate() {
            psum[c] += 1.0 + n as f64;
            qsum[c] += 1.0 + (total - n) as f64;
        }
    }
    for row in count.chunks_mut(classes) {
        let total: f32 = row.iter().sum();
        for (c, x) in row.iter_mut().enumerate() {
            let p = (1.0 + *x as f64) / psum[c];
            let q = (1.0 + (total - *x) as f64) / qsum[c];
            let r = (p / q).ln() as f32;
            *x = r * r;
        }
    }
    count
}

fn merge_counts(mut big: KeyMap, small: KeyMap) -> KeyMap {
    for (k, n) in small {
        *big.entry(k).or_insert(0) += n;
    }
    big
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::TokenizerOptions;

    fn tiny_trainer(config: BowConfig) -> BowTrainer {
        tiny(config).0
    }

    fn tiny(config: BowConfig) -> (BowTrainer, Tokenizer) {
        tiny_labeled(config, &[0, 0, 1, 1, 0, 1], 2)
    }

    /// The texts [`tiny`] trains on.
    const TINY_TEXTS: [&str; 6] = [
        "the striker scored a late goal",
        "the keeper saved a penalty kick",
        "shares fell as markets slid",
        "the bank raised interest rates",
        "a late goal won the cup final",
        "markets rose as shares rallied",
    ];

    /// [`tiny`] with the six texts' labels given, out of `classes`.
    fn tiny_labeled(config: BowConfig, targets: &[u32], classes: usize) -> (BowTrainer, Tokenizer) {
        let texts = TINY_TEXTS;
        let tok = Tokenizer::train(
            &texts,
            &TokenizerOptions {
                vocab_size: 200,
                min_frequency: 1,
            },
        )
        .unwrap();
        let t = BowTrainer::new(config, &tok, &texts, targets.to_vec(), classes, 3).unwrap();
        (t, tok)
    }

    /// The hand-written backward through the table agrees with finite differences of the loss.
    #[test]
    fn table_gradient_matches_finite_differences() {
        let config = BowConfig {
            dim: 4,
            loss: Loss::Softmax,
            min_count: 1,
            min_count_words: 1,
            char_ngrams: [2, 3],
            ..BowConfig::default()
        };
        let mut t = tiny_trainer(config);
        let batch: Vec<usize> = (0..6).collect();
        let back = t.backward(&batch).unwrap();
        assert!(back.touched.len() > 10);
        let eps = 1e-2f32;
        let mut checked = 0;
        for (s, &r) in back.touched.iter().enumerate().step_by(3) {
            for k in 0..4 {
                let at = r as usize * 4 + k;
                let orig = t.bow.table[at];
                t.bow.table[at] = orig + eps;
                let up = t.forward(&batch).unwrap().1.to_scalar::<f32>().unwrap();
                t.bow.table[at] = orig - eps;
                let down = t.forward(&batch).unwrap().1.to_scalar::<f32>().unwrap();
                t.bow.table[at] = orig;
                let numeric = (up - down) / (2.0 * eps);
                let analytic = back.grad_rows[s * 4 + k];
                assert!(
                    (numeric - analytic).abs() <= 1e-3 + 0.05 * analytic.abs(),
                    "row {r} dim {k}: numeric {numeric}, backprop {analytic}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 12);
        // The head gets gradients too, and they are not all zero.
        let gw = back
            .grads
            .as_ref()
            .unwrap()
            .get(t.head_w.as_tensor())
            .unwrap();
        let sum: f32 = gw.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(sum > 0.0 && sum.is_finite());
    }

    /// Prediction (word cache, fused pooling) computes what training computes: the weighted
    /// features of `extract` + `weigh`, pooled through the table and the head.
    #[test]
    fn prediction_matches_the_training_features() {
        // Label counts whose packed rows have no padding (3), some (2, 4) and a whole row's
        // worth of lanes beside the IDF (7).
        for (targets, classes) in [
            (&[0, 0, 1, 1, 0, 1][..], 2),
            (&[0, 1, 2, 0, 1, 2][..], 3),
            (&[0, 1, 2, 3, 0, 1][..], 4),
            (&[0, 1, 2, 3, 4, 5][..], 7),
        ] {
            let (mut t, tok) = tiny_labeled(
                BowConfig {
                    dim: 8,
                    loss: Loss::Softmax,
                    min_count: 1,
                    min_count_words: 1,
                    ..BowConfig::default()
                },
                targets,
                classes,
            );
            let batch: Vec<usize> = (0..6).collect();
            for _ in 0..5 {
                t.step(&batch, 0.05).unwrap();
            }
            let bow = t.snapshot().unwrap();
            assert_eq!(bow.stride() % 4, 0);
            assert!(bow.stride() > classes && bow.stride() <= classes + 4);
            predictions_match_the_training_features(&bow, &tok);
        }
    }

    fn predictions_match_the_training_features(bow: &Bow, tok: &Tokenizer) {
        let texts = [
            "the striker scored a late goal, and the late goal won!",
            "markets rose as shares rallied; shares fell",
            "",
            "unseen words only",
            "the the the the",
        ];
        let mut scratch = Scratch::default();
        let mut got = Vec::new();
        for round in 0..2 {
            for text in texts {
                // Reference: the training path.
                let mut counter = RowCounter::default();
                let n_sub = bow.n_subwords as u32;
                extract(
                    tok,
                    &bow.config,
                    text,
                    &mut Scratch::default(),
                    |f| match f {
                        Feature::Subword(id) if id < n_sub => counter.add(id),
                        Feature::Subword(_) => {}
                        Feature::Key(k) => {
                            if let Some(i) = bow.ngrams.get(k) {
                                counter.add(n_sub + i)
                            }
                        }
                    },
                );
                let mut doc = SparseDoc::default();
                weigh(
                    &mut counter,
                    &bow.idf,
                    bow.config.weighting,
                    &mut Vec::new(),
                    &mut doc,
                );
                let mut pooled = Vec::new();
                pool(&bow.table, bow.config.dim, &doc, &mut pooled);
                let want: Vec<f32> = bow
                    .head_b
                    .iter()
                    .enumerate()
                    .map(|(c, b)| {
                        b + dot(
                            &bow.head_w[c * bow.config.dim..(c + 1) * bow.config.dim],
                            &pooled,
                        )
                    })
                    .collect();
                bow.logits_of(tok, text, &mut scratch, &mut got);
                assert_eq!(got.len(), want.len());
                for (a, b) in want.iter().zip(&got) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "round {round}, {text:?}: {want:?} vs {got:?}"
                    );
                }
            }
        }
    }

    /// Merging two sorted lists' runs gives the runs of both lists sorted together, counts of
    /// a value in both added.
    #[test]
    fn merged_runs_are_the_runs_of_both_lists_sorted() {
        let cases: [(&[u64], &[u64]); 6] = [
            (&[], &[]),
            (&[1, 1, 4], &[]),
            (&[], &[2, 3, 3]),
            (&[1, 1, 4, 9], &[2, 4, 4, 10, 10]),
            (&[5, 6, 7], &[1, 2, 3]),
            (&[u64::MAX, u64::MAX], &[0, u64::MAX]),
        ];
        for (a, b) in cases {
            let mut both = [a, b].concat();
            both.sort_unstable();
            let expected: Vec<(u64, u32)> = run_lengths(&both).collect();
            assert_eq!(
                merged_runs(a, b).collect::<Vec<_>>(),
                expected,
                "{a:?} {b:?}"
            );
        }
    }

    /// Words and character n-grams get rows by `min_count_words`, word n-grams by
    /// `min_count`: a key has a row exactly when enough documents hold it, counted by kind.
    #[test]
    fn each_kind_of_key_has_its_own_document_count() {
        for (words_min, pairs_min) in [(1, 2), (2, 1), (2, 2), (1, 1), (3, 1)] {
            let config = BowConfig {
                min_count: pairs_min,
                min_count_words: words_min,
                ..BowConfig::default()
            };
            let (t, tok) = tiny(config.clone());
            let mut words = TrainWords::default();
            let (mut word_df, mut pair_df) = (HashMap::new(), HashMap::new());
            for text in TINY_TEXTS {
                let doc = words.doc(&tok, &config, text);
                for (k, _) in run_lengths(&doc.keys) {
                    *word_df.entry(k).or_insert(0) += 1;
                }
                for (k, _) in run_lengths(&doc.pairs) {
                    *pair_df.entry(k).or_insert(0) += 1;
                }
            }
            assert!(pair_df.values().any(|&n| n >= 2) && pair_df.values().any(|&n| n == 1));
            assert!(word_df.values().any(|&n| n >= 3) && word_df.values().any(|&n| n == 1));
            let mut want: Vec<u64> = word_df
                .iter()
                .filter(|&(_, &n)| n >= words_min)
                .chain(pair_df.iter().filter(|&(_, &n)| n >= pairs_min))
                .map(|(&k, _)| k)
                .collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(
                t.bow.ngrams.keys, want,
                "min counts {words_min} / {pairs_min}"
            );
        }
    }

    /// Compacting to `max_ngrams` keeps the n-gram rows with the largest `idf * |row|`, and
    /// their values.
    #[test]
    fn compacting_keeps_the_rows_that_move_the_scores_most() {
        let (mut t, _) = tiny(BowConfig {
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        t.begin(6);
        let batch: Vec<usize> = (0..6).collect();
        for _ in 0..5 {
            t.step(&batch, 0.0).unwrap();
        }
        let bow = &t.snapshot().unwrap();
        let n = bow.num_ngrams();
        let score = |i: usize| {
            let r = bow.n_subwords + i;
            bow.idf[r] * bow.projected_row(r).map(|x| x * x).sum::<f32>().sqrt()
        };
        let mut ranked: Vec<usize> = (0..n).collect();
        ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
        // Distinct scores: the ranking is the weights', not the rows' order.
        assert!(score(ranked[0]) > score(ranked[n / 2]) && score(ranked[n / 2]) > 0.0);
        for max in [1, n / 3, n - 1] {
            let small = bow.compact(CompactOptions {
                max_ngrams: Some(max),
                ..CompactOptions::default()
            });
            let mut kept: Vec<usize> = ranked[..max].to_vec();
            kept.sort_unstable();
            let keys: Vec<u64> = kept.iter().map(|&i| bow.ngrams.keys[i]).collect();
            assert_eq!(small.ngrams.keys, keys, "max {max}");
            for (j, &i) in kept.iter().enumerate() {
                let (a, b) = (small.n_subwords + j, bow.n_subwords + i);
                assert_eq!(small.idf[a], bow.idf[b]);
                assert!(small.projected_row(a).eq(bow.projected_row(b)));
            }
        }
    }

    /// The cached per-word features of training documents are those of [`extract`], also for
    /// words seen before and after the cache starts over.
    #[test]
    fn training_documents_have_the_extracted_features() {
        let (t, tok) = tiny(BowConfig {
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        let config = &t.bow.config;
        let mut words = TrainWords::default();
        let texts = [
            "the striker scored a late goal, and the late goal won!",
            "markets rose as shares rallied; shares fell",
            "",
            "the the the the",
            "the striker scored a late goal, and the late goal won!",
        ];
        for round in 0..2 {
            for text in texts {
                let (mut subs, mut keys) = (Vec::new(), Vec::new());
                extract(&tok, config, text, &mut Scratch::default(), |f| match f {
                    Feature::Subword(s) => subs.push(s),
                    Feature::Key(k) => keys.push(k),
                });
                subs.sort_unstable();
                keys.sort_unstable();
                let got = words.doc(&tok, config, text);
                let mut got_keys = [got.keys, got.pairs].concat();
                got_keys.sort_unstable();
                assert_eq!(
                    (got.subs, got_keys),
                    (subs, keys),
                    "round {round}: {text:?}"
                );
            }
            // Start over, as a full cache does.
            words.words.clear();
            words.subs.clear();
            words.keys.clear();
        }
        assert_eq!(
            run_lengths(&[1, 1, 2, 5, 5, 5]).collect::<Vec<_>>(),
            [(1, 2), (2, 1), (5, 3)]
        );
    }

    /// The n-gram index finds every key it was given, at its first position, and no other
    /// key: keys that share their first slot, or their low 32 bits, are told apart.
    #[test]
    fn ngram_index_finds_exactly_its_keys() {
        let mut rng = SplitMix64::new(3);
        let mut keys: Vec<u64> = (0..5000).map(|_| rng.next_u64()).collect();
        keys.extend([0, 1, 2, 3, 1 << 32, 2 << 32, 3 << 32 | 1]);
        keys.push(keys[10]); // a repeat keeps its first index
        let index = NgramIndex::new(keys.clone());
        let n = keys.len() - 1;
        assert_eq!((index.len(), index.distinct), (n + 1, n));
        assert!(2 * index.slots.len() >= 3 * n);
        for (i, &k) in keys.iter().enumerate().take(n) {
            assert_eq!(index.get(k), Some(i as u32), "key {k:#x}");
            index.prefetch(k);
        }
        let present: std::collections::HashSet<u64> = keys.iter().copied().collect();
        for _ in 0..20_000 {
            let k = rng.next_u64();
            if !present.contains(&k) {
                assert_eq!(index.get(k), None);
                // The same low 32 bits as a key it has.
                let twin = keys[k as usize % n] ^ (k & 0xffff_ffff_0000_0000);
                if !present.contains(&twin) {
                    assert_eq!(index.get(twin), None);
                }
            }
        }
        // 100 keys with the same first slot (in a table of 256) probe past each other.
        let crowded = keys_with_first_slot(&mut rng, 101, 7, 56);
        let index = NgramIndex::new(crowded[..100].to_vec());
        assert_eq!(index.slots.len(), 256);
        for (i, &k) in crowded[..100].iter().enumerate() {
            assert_eq!(index.get(k), Some(i as u32));
        }
        assert_eq!(index.get(crowded[100]), None);
        assert_eq!(NgramIndex::new(Vec::new()).get(7), None);
    }

    /// `count` random keys whose first slot is `slot` under `shift`.
    fn keys_with_first_slot(
        rng: &mut SplitMix64,
        count: usize,
        slot: usize,
        shift: u32,
    ) -> Vec<u64> {
        let mut keys = Vec::new();
        while keys.len() < count {
            let k = rng.next_u64();
            if first_slot(k, shift) == slot {
                keys.push(k);
            }
        }
        keys
    }

    /// The word cache's index, grown one key at a time from the smallest table, finds
    /// exactly its keys; emptied, none.
    #[test]
    fn key_index_finds_exactly_its_keys() {
        let mut rng = SplitMix64::new(4);
        let mut keys: Vec<u64> = (0..5000).map(|_| rng.next_u64()).collect();
        keys.extend([0, 1, 2, 3]);
        keys.extend(keys_with_first_slot(&mut rng, 50, 3, 50));
        let mut grown = KeyIndex::with_capacity(0);
        for (i, &k) in keys.iter().enumerate() {
            grown.insert(k, 2 * i as u32);
        }
        grown.insert(keys[10], 1); // a key keeps its first value
        assert_eq!(grown.len(), keys.len());
        assert!(2 * grown.slots.len() >= 3 * grown.len());
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(grown.get(k), Some(2 * i as u32));
            grown.prefetch(k);
        }
        let present: std::collections::HashSet<u64> = keys.iter().copied().collect();
        for _ in 0..20_000 {
            let k = rng.next_u64();
            if !present.contains(&k) {
                assert_eq!(grown.get(k), None);
            }
        }
        grown.clear();
        assert_eq!((grown.len(), grown.get(keys[0])), (0, None));
    }

    #[test]
    fn sublinear_tf_is_one_plus_the_log() {
        for n in 1..200u32 {
            assert_eq!(sublinear_tf(n), 1.0 + (n as f32).ln(), "{n}");
        }
    }

    /// A model saved in half precision is kept in half precision where the CPU converts it, and
    /// predicts exactly what the same rows in single precision predict.
    #[test]
    fn half_precision_rows_predict_what_single_precision_rows_do() {
        // Rows of 8, 16, 32 and 64 values (one label short of a full row, for 7 and 31).
        for classes in [2, 7, 12, 31, 40] {
            let stride = half_stride(classes);
            assert!(stride > classes && stride % 8 == 0, "{classes}");
            assert!(
                64 % (2 * stride) == 0 || (2 * stride) % 64 == 0,
                "{classes}"
            );
            let targets: Vec<u32> = (0..6).map(|i| (i * 5 % classes) as u32).collect();
            let (mut t, tok) = tiny_labeled(
                BowConfig {
                    min_count: 1,
                    min_count_words: 1,
                    ..BowConfig::default()
                },
                &targets,
                classes,
            );
            t.step(&[0, 1, 2, 3, 4, 5], 0.1).unwrap();
            let saved = t.snapshot().unwrap().compact(CompactOptions {
                fold: true,
                half: true,
                max_ngrams: None,
            });
            let loaded = Bow::from_tensors(
                saved.config.clone(),
                saved.n_subwords,
                classes,
                saved.tensors().unwrap().into_iter().collect(),
            )
            .unwrap();
            assert_eq!(loaded.table().as_ref(), saved.table().as_ref());
            assert_eq!(
                matches!(loaded.packed, Packed::F16(_)),
                converts_half(),
                "{classes}"
            );
            assert_eq!(loaded.packed.address() % 64, 0);
            // The same rows in single precision.
            let mut single = loaded.clone();
            let f32_stride = packed_stride(classes);
            let mut rows = AlignedRows::<f32>::zeros(loaded.rows() * f32_stride);
            let values = (0..loaded.rows())
                .flat_map(|r| (0..classes).map(move |c| (r, c)))
                .map(|(r, c)| loaded.packed.value(r, c, classes));
            fill_rows(
                &mut rows,
                f32_stride,
                classes,
                loaded.idf.iter().copied(),
                values,
            );
            single.packed = Packed::F32(rows);
            assert_eq!(single.packed, saved.packed);
            let mut scratch = Scratch::default();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for text in [
                "the striker scored a late goal, and the late goal won!",
                "markets rose as shares rallied; shares fell",
                "",
                "the the the the",
            ] {
                loaded.logits_of(&tok, text, &mut scratch, &mut a);
                single.logits_of(&tok, text, &mut scratch, &mut b);
                assert_eq!(a.len(), classes);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{classes} labels, {text:?}");
            }
        }
    }

    /// Loading checks the table's values on both ways of keeping it.
    #[test]
    fn loading_rejects_a_table_with_nan() {
        for dim in [0, 8] {
            let mut t = tiny_trainer(BowConfig {
                dim,
                loss: Loss::Softmax,
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            });
            t.step(&[0, 1, 2], 0.1).unwrap();
            let bow = t.snapshot().unwrap();
            let load = |tensors: Vec<(String, Tensor)>| {
                Bow::from_tensors(
                    bow.config.clone(),
                    bow.n_subwords,
                    bow.num_classes(),
                    tensors.into_iter().collect(),
                )
            };
            let again = load(bow.tensors().unwrap()).unwrap();
            assert_eq!(again.table_in_packed, dim == 0, "dim {dim}");
            assert_eq!(again.table().as_ref(), bow.table.as_slice());
            assert_eq!(again.packed, bow.packed);
            // Rows start on a cache line, loaded or computed, and in a copy.
            for packed in [&again.packed, &bow.packed, &bow.clone().packed] {
                assert_eq!(packed.address() % 64, 0, "dim {dim}");
            }
            let mut tensors = bow.tensors().unwrap();
            let mut table = bow.table.clone();
            table[5] = f32::NAN;
            let shape = tensors[0].1.dims().to_vec();
            tensors[0] = (
                "bow.table".into(),
                Tensor::from_vec(table, shape, &Device::Cpu).unwrap(),
            );
            let err = load(tensors).unwrap_err();
            assert!(err.contains("NaN"), "{err}");
        }
    }

    /// Online steps are batch steps of one document each.
    #[test]
    fn online_steps_are_steps_of_one_document() {
        let mut online = tiny_trainer(BowConfig {
            dim: 0,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        assert!(online.online());
        let mut single = online.fork().unwrap();
        let batch = [4usize, 1, 0, 5, 2];
        for round in 0..3 {
            let loss = online.step(&batch, 0.2).unwrap();
            let mut losses = 0.0;
            for &d in &batch {
                losses += single.batch_step(&[d], 0.2).unwrap();
            }
            let want = losses / batch.len() as f32;
            assert!(
                (loss - want).abs() < 1e-4,
                "round {round}: {loss} vs {want}"
            );
        }
        let (a, b) = (&online.bow.table, &single.bow.table);
        assert!(a.iter().any(|&x| x != 0.0));
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        assert_eq!(online.v.len(), single.v.len());
        for (x, y) in online.v.iter().zip(&single.v) {
            assert!((x - y).abs() <= 1e-4 * y.max(1.0), "{x} vs {y}");
        }
    }

    /// The written-out loss of the linear model equals candle's, and so does its gradient.
    #[test]
    fn linear_loss_matches_candle() {
        let mut t = tiny_trainer(BowConfig {
            dim: 0,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        t.step(&[0, 1, 2, 3, 4, 5], 0.2).unwrap();
        let batch = [5usize, 0, 3, 2];
        let (loss, grad) = t.linear_loss(&batch);
        let (h, want) = t.forward(&batch).unwrap();
        let want_grad: Vec<f32> = want
            .backward()
            .unwrap()
            .get(h.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let want = want.to_scalar::<f32>().unwrap();
        assert!(loss > 0.1, "{loss}");
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        assert_eq!(grad.len(), want_grad.len());
        for (a, b) in grad.iter().zip(&want_grad) {
            assert!((a - b).abs() < 1e-6, "{grad:?} vs {want_grad:?}");
        }
    }

    /// Scoring the prepared documents gives what the model predicts for their texts; a fork
    /// starts from the initial weights and, given the same steps, reaches the same weights.
    #[test]
    fn prepared_documents_score_as_their_texts_and_forks_train_alike() {
        for dim in [0, 8] {
            let (mut t, tok) = tiny(BowConfig {
                dim,
                loss: Loss::Softmax,
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            });
            let mut fork = t.fork().unwrap();
            let fresh = t.snapshot().unwrap();
            assert_eq!(fork.snapshot().unwrap().table, fresh.table);
            for batch in [&[0usize, 1, 2][..], &[3, 4, 5], &[5, 0]] {
                t.step(batch, 0.1).unwrap();
                fork.step(batch, 0.1).unwrap();
            }
            let bow = t.snapshot().unwrap();
            assert_eq!(fork.snapshot().unwrap().table, bow.table);
            assert_ne!(bow.table, fresh.table);
            let texts = TINY_TEXTS;
            let mut scratch = Scratch::default();
            let mut logits = Vec::new();
            let from_texts: Vec<usize> = texts
                .iter()
                .map(|text| {
                    bow.logits_of(&tok, text, &mut scratch, &mut logits);
                    crate::classifier::argmax(&logits)
                })
                .collect();
            assert_eq!(t.predict_docs(0..6).unwrap(), from_texts, "dim {dim}");
            assert_eq!(t.predict_docs(2..4).unwrap(), from_texts[2..4], "dim {dim}");
        }
    }

    /// Training steps lower the loss with each optimizer.
    #[test]
    fn steps_reduce_the_loss_with_every_optimizer() {
        for optimizer in [
            SparseOptimizer::AdagradRow,
            SparseOptimizer::Adagrad,
            SparseOptimizer::Adam,
            SparseOptimizer::Sgd,
        ] {
            let mut t = tiny_trainer(BowConfig {
                dim: 8,
                loss: Loss::Softmax,
                min_count: 1,
                min_count_words: 1,
                optimizer,
                ..BowConfig::default()
            });
            let batch: Vec<usize> = (0..6).collect();
            let first = t.step(&batch, 0.05).unwrap();
            let mut last = first;
            for _ in 0..30 {
                last = t.step(&batch, 0.05).unwrap();
            }
            assert!(last < first * 0.5, "{optimizer:?}: {first} -> {last}");
        }
    }
    /// After steps, `restart` gives back the weights of a new trainer, and training from there
    /// repeats itself exactly.
    #[test]
    fn restart_returns_to_the_initial_weights() {
        for dim in [0, 8] {
            let config = BowConfig {
                dim,
                loss: Loss::Softmax,
                min_count: 1,
                min_count_words: 1,
                ..BowConfig::default()
            };
            let mut t = tiny_trainer(config.clone());
            let fresh = t.snapshot().unwrap();
            let batch: Vec<usize> = (0..6).collect();
            let first: Vec<f32> = (0..5).map(|_| t.step(&batch, 0.05).unwrap()).collect();
            assert_ne!(t.snapshot().unwrap().table, fresh.table);
            t.restart().unwrap();
            let again = t.snapshot().unwrap();
            assert_eq!(again.table, fresh.table);
            assert_eq!(again.head_w, fresh.head_w);
            let second: Vec<f32> = (0..5).map(|_| t.step(&batch, 0.05).unwrap()).collect();
            assert_eq!(first, second, "dim {dim}");
        }
    }

    /// The naive Bayes ratios of a hand-counted example: row 0 is in both documents of label
    /// 0, row 1 in one of each label, row 2 in the one document of label 1.
    #[test]
    fn nb_ratios_match_a_hand_count() {
        let doc = |rows: &[u32]| SparseDoc {
            rows: rows.to_vec(),
            weights: vec![1.0; rows.len()],
        };
        let docs = [doc(&[0, 1]), doc(&[0]), doc(&[1, 2])];
        let r2 = nb_ratios_squared(&docs, &[0, 0, 1], 3, 2);
        // Label 0: p = 1 + [2, 1, 0] (sum 6), q = 1 + [0, 1, 1] (sum 5); label 1 the reverse.
        let r0 = [(2.5f32).ln(), (5.0f32 / 6.0).ln(), (5.0f32 / 12.0).ln()];
        for (row, r) in r0.iter().enumerate() {
            for label in 0..2 {
                let got = r2[row * 2 + label];
                assert!((got - r * r).abs() < 1e-5, "row {row} label {label}: {got}");
            }
        }
    }

    /// Dual coordinate descent reaches the SVMs' optimum (the dual's optimality conditions
    /// hold, with each label's C relative to its documents' mean squared length), the table
    /// holds `sum_i alpha_i y_i r^2 x_i` for each label, documents past the run's first `n` are
    /// neither used nor counted in the ratios, and the SVMs split in parts train the same
    /// weights as in one.
    #[test]
    fn svm_descent_reaches_the_optimum_of_its_dual() {
        for loss in [Loss::Svm, Loss::NbSvm] {
            let train = |parts: usize| {
                let (mut t, _) = tiny_labeled(
                    BowConfig {
                        loss,
                        svm_c: 1.0,
                        min_count: 1,
                        min_count_words: 1,
                        ..BowConfig::default()
                    },
                    &[0, 1, 2, 0, 1, 2],
                    3,
                );
                t.begin_in_parts(5, parts);
                assert_eq!(t.svm.as_ref().unwrap().parts.len(), parts);
                let batch: Vec<usize> = (0..5).collect();
                let losses: Vec<f32> = (0..300).map(|_| t.step(&batch, 0.0).unwrap()).collect();
                assert!(losses[299] < losses[0], "{loss:?}: {losses:?}");
                t
            };
            let mut t = train(1);
            let (n, classes, rows) = (5, 3, t.slot.len());
            let svm = t.svm.as_ref().unwrap();
            let r2 = match loss {
                Loss::NbSvm => svm.gather(rows, |p| &p.r2),
                _ => Vec::new(),
            };
            if loss == Loss::NbSvm {
                let want = nb_ratios_squared(&t.docs[..n], &t.targets[..n], rows, classes);
                assert_eq!(r2, want);
                assert!(r2.iter().any(|&x| x > 0.1));
            } else {
                assert!(svm.parts.iter().all(|p| p.r2.is_empty()));
            }
            let ratio = |r: u32, c: usize| r2.get(r as usize * classes + c).copied().unwrap_or(1.0);
            let alpha = svm.gather(t.docs.len(), |p| &p.alpha);
            assert!(alpha[n * classes..].iter().all(|&a| a == 0.0));
            let inv_2c = svm.gather(1, |p| &p.inv_2c);
            let (table, bias) = svm.weights();
            let mut pooled = Vec::new();
            let mut want = vec![0f32; table.len()];
            let mut length = vec![0f32; classes];
            for d in 0..n {
                let doc = &t.docs[d];
                pool(&table, classes, doc, &mut pooled);
                for c in 0..classes {
                    let y = if t.targets[d] as usize == c {
                        1.0
                    } else {
                        -1.0
                    };
                    let a = alpha[d * classes + c];
                    let g = y * (pooled[c] + bias[c]) - 1.0 + a * inv_2c[c];
                    if a > 0.0 {
                        assert!(g.abs() < 1e-3, "{loss:?} doc {d} label {c}: gradient {g}");
                    } else {
                        assert!(g > -1e-3, "{loss:?} doc {d} label {c}: gradient {g}");
                    }
                    for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
                        want[r as usize * classes + c] += a * y * w * ratio(r, c);
                        length[c] += w * w * ratio(r, c) / n as f32;
                    }
                }
            }
            for (x, w) in table.iter().zip(&want) {
                assert!((x - w).abs() < 1e-4, "{loss:?}: {x} vs {w}");
            }
            // 1 / (2 C) with C = svm_c (1) over the mean squared length.
            for (got, l) in inv_2c.iter().zip(&length) {
                assert!(
                    (got - 0.5 * l).abs() < 1e-4,
                    "{loss:?}: {got} vs {}",
                    0.5 * l
                );
            }
            // Split in two or three parts, the SVMs train the same weights.
            for parts in [2, 3] {
                assert_eq!(
                    train(parts).svm.as_ref().unwrap().weights(),
                    (table.clone(), bias.clone())
                );
            }
            // The saved model scores as the SVMs do, scaled, its rows gathered from every part.
            let bow = t.snapshot().unwrap();
            assert_eq!(
                bow.head_b,
                bias.iter().map(|b| b * SVM_SCORE_SCALE).collect::<Vec<_>>()
            );
            let scaled: Vec<f32> = table.iter().map(|w| w * SVM_SCORE_SCALE).collect();
            assert_eq!(bow.table().as_ref(), scaled.as_slice());
            for parts in [2, 3] {
                let bow = train(parts).snapshot().unwrap();
                assert_eq!(bow.table().as_ref(), scaled.as_slice(), "{parts} parts");
            }
        }
    }

    #[test]
    fn svm_losses_need_a_linear_model() {
        let config = BowConfig {
            loss: Loss::NbSvm,
            dim: 8,
            ..BowConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("--loss nb-svm") && err.contains("--dim"),
            "{err}"
        );
        let folded = BowConfig {
            folded: true,
            ..config
        };
        assert!(folded.validate().is_ok());
    }

    /// `dim` 0 trains a linear model: one column per label, and the identity head never moves.
    #[test]
    fn dim_zero_trains_a_linear_model_with_a_fixed_identity_head() {
        let mut t = tiny_trainer(BowConfig {
            dim: 0,
            min_count: 1,
            min_count_words: 1,
            ..BowConfig::default()
        });
        let classes = t.bow.num_classes();
        assert_eq!(t.bow.config.dim, classes);
        assert!(t.bow.config.folded);
        let batch: Vec<usize> = (0..6).collect();
        let first = t.step(&batch, 0.1).unwrap();
        let mut last = first;
        for _ in 0..30 {
            last = t.step(&batch, 0.1).unwrap();
        }
        assert!(last < first * 0.5, "{first} -> {last}");
        let model = t.snapshot().unwrap();
        for (i, &w) in model.head_w.iter().enumerate() {
            let identity = if i / classes == i % classes { 1.0 } else { 0.0 };
            assert_eq!(w, identity);
        }
        assert!(model.head_b.iter().all(|&b| b == 0.0));
    }
}
