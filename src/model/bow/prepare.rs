//! The training documents as the model sees them, prepared once and shared by the trainers:
//! which n-grams get rows, their IDF, and each document as weighted rows.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::config::{BowConfig, Loss};
use super::features::{Extractor, Feature, WordCache, WordEntries};
use super::index::NgramIndex;
use super::model::{identity, Bow};
use super::packed::{release_freed_memory, Packed};
use super::weights::{weigh_counts, SparseDoc};
use crate::model::Checked;
use crate::text::Tokenizer;

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

/// The training documents, featurized, with their labels: what both trainers train on.
pub(crate) struct Prepared {
    /// The settings, with a linear model's `dim` set to the number of labels (`folded`).
    pub(super) config: BowConfig,
    /// The model's features and no weights: n-gram rows and IDF.
    pub(super) n_subwords: usize,
    pub(super) ngrams: NgramIndex,
    pub(super) idf: Vec<f32>,
    pub(super) docs: Vec<SparseDoc>,
    pub(super) targets: Vec<u32>,
    /// Each document's other labels, for multi-label training (the SVMs); empty otherwise.
    pub(super) more_targets: Vec<Vec<u32>>,
    pub(super) classes: usize,
    /// A linear model (`dim` 0 asked): one column per label and the identity for a head, which
    /// is not trained.
    pub(super) linear: bool,
    /// Each label's weight in the SVMs ([`BowConfig::class_weight`]); empty: all 1.
    pub(super) class_weights: Vec<f32>,
}

impl Prepared {
    /// Builds the feature index (n-grams, IDF) from the training texts, and the documents.
    pub(crate) fn new(
        config: Checked<BowConfig>,
        tokenizer: &Tokenizer,
        texts: &[&str],
        targets: Vec<u32>,
        classes: usize,
    ) -> Prepared {
        let config = config.into_inner();
        let n_subwords = tokenizer.vocab_size();
        // Pass 1: the raw features of every document, in parallel.
        let raw: Vec<RawDoc> = texts
            .par_iter()
            .map_init(DocFeatures::default, |words, text| {
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
            .map(|doc| doc.rows(n_subwords, &ngrams))
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
        let mut config = config;
        let linear = config.dim == 0;
        if linear {
            config.dim = classes;
            config.folded = true;
        }
        Prepared {
            config,
            n_subwords,
            ngrams,
            idf,
            docs,
            targets,
            more_targets: Vec::new(),
            classes,
            linear,
            class_weights: Vec::new(),
        }
    }

    /// Table rows: subwords, then n-grams.
    pub(super) fn rows(&self) -> usize {
        self.n_subwords + self.ngrams.len()
    }

    /// Whether the SVMs train this model (an SVM loss on a linear model); otherwise the
    /// softmax trainer does.
    pub(crate) fn trains_svms(&self) -> bool {
        self.config.loss != Loss::Softmax && self.linear
    }

    /// The model with these features, the given weights (`dim` columns, row-major) and head.
    pub(super) fn model(&self, table: Vec<f32>, head_w: Vec<f32>, head_b: Vec<f32>) -> Bow {
        Bow {
            config: self.config.clone(),
            n_subwords: self.n_subwords,
            ngrams: self.ngrams.clone(),
            idf: self.idf.clone(),
            table,
            table_in_packed: false,
            head_w,
            head_b,
            packed: Packed::default(),
            id: 0,
        }
    }

    /// The head of a linear model: the identity.
    pub(super) fn identity_head(&self) -> Vec<f32> {
        identity(self.classes)
    }
}

fn merge_counts(mut big: KeyMap, small: KeyMap) -> KeyMap {
    for (k, n) in small {
        *big.entry(k).or_insert(0) += n;
    }
    big
}

/// The raw features of one training document, sorted (with repeats: most features occur
/// once, so this is smaller than distinct features with counts).
pub(super) struct RawDoc {
    pub(super) subs: Vec<u32>,
    /// Keys of whole words and character n-grams.
    pub(super) keys: Vec<u64>,
    /// Keys of word n-grams.
    pub(super) pairs: Vec<u64>,
}

impl RawDoc {
    /// The document's distinct rows with their counts, in row order (subwords, then n-grams
    /// in key order), given the rows the n-grams got.
    pub(super) fn rows(self, n_subwords: usize, ngrams: &NgramIndex) -> Vec<(u32, u32)> {
        let RawDoc { subs, keys, pairs } = self;
        let mut r: Vec<(u32, u32)> = run_lengths(&subs)
            .filter(|&(s, _)| (s as usize) < n_subwords)
            .collect();
        // The keys in order (rows are given in key order), both kinds together.
        r.extend(
            merged_runs(&keys, &pairs)
                .filter_map(|(k, n)| ngrams.get(k).map(|i| (n_subwords as u32 + i, n))),
        );
        r
    }
}

/// A word cache entry of training: the word's raw features, `[n_subs | n_keys << 32, hash,
/// subword ids..., keys...]` (the rows they map to are not known yet).
impl WordEntries for WordCache<u64> {
    #[inline]
    fn find(&self, key: u64) -> Option<u32> {
        self.index.get(key)
    }

    #[inline(always)]
    fn prefetch(&self, key: u64) {
        self.index.prefetch(key);
    }

    fn insert(&mut self, key: u64, features: &[Feature], hash: u64) -> u32 {
        let start = self.data.len();
        self.data.extend([0, hash]);
        let mut n_subs = 0u64;
        for f in features {
            if let Feature::Subword(s) = *f {
                self.data.push(s as u64);
                n_subs += 1;
            }
        }
        for f in features {
            if let Feature::Key(k) = *f {
                self.data.push(k);
            }
        }
        let n_keys = (self.data.len() - start - 2) as u64 - n_subs;
        self.data[start] = n_subs | n_keys << 32;
        self.index.insert(key, start as u32);
        start as u32
    }

    #[inline]
    fn hash(&self, start: u32) -> u64 {
        self.data[start as usize + 1]
    }
}

/// Per-thread state of pass 1: the extractor, the word cache and the document's buffers.
#[derive(Default)]
pub(super) struct DocFeatures {
    extractor: Extractor,
    pub(super) cache: WordCache<u64>,
    subs: Vec<u32>,
    keys: Vec<u64>,
    pairs: Vec<u64>,
}

impl DocFeatures {
    /// The raw features of `text`, sorted, with the word n-grams' keys apart from the other
    /// keys.
    pub(super) fn doc(&mut self, tokenizer: &Tokenizer, config: &BowConfig, text: &str) -> RawDoc {
        let DocFeatures {
            extractor,
            cache,
            subs,
            keys,
            pairs,
        } = self;
        cache.start_text();
        subs.clear();
        keys.clear();
        pairs.clear();
        extractor.words(tokenizer, config, text, cache, |cache, start| {
            let entry = &cache.data[start as usize..];
            let (n_subs, n_keys) = ((entry[0] as u32) as usize, (entry[0] >> 32) as usize);
            subs.extend(entry[2..2 + n_subs].iter().map(|&s| s as u32));
            keys.extend_from_slice(&entry[2 + n_subs..2 + n_subs + n_keys]);
        });
        extractor.ngrams(config, cache, |key| pairs.push(key));
        subs.sort_unstable();
        keys.sort_unstable();
        pairs.sort_unstable();
        RawDoc {
            subs: subs.clone(),
            keys: keys.clone(),
            pairs: pairs.clone(),
        }
    }
}

/// The distinct values of sorted `xs` with their counts.
pub(super) fn run_lengths<T: Ord + Copy>(xs: &[T]) -> impl Iterator<Item = (T, u32)> + '_ {
    xs.chunk_by(|a, b| a == b)
        .map(|run| (run[0], run.len() as u32))
}

/// The distinct values of sorted `a` and sorted `b` together, in order, with their counts:
/// what [`run_lengths`] gives for the two concatenated and sorted.
pub(super) fn merged_runs<'a, T: Ord + Copy>(
    a: &'a [T],
    b: &'a [T],
) -> impl Iterator<Item = (T, u32)> + 'a {
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

/// Whether document `d` has label `c`: its target, or one of its other labels (`more`, empty
/// for single-label documents).
#[inline]
pub(super) fn has_label(targets: &[u32], more: &[Vec<u32>], d: usize, c: usize) -> bool {
    targets[d] as usize == c || more.get(d).is_some_and(|m| m.contains(&(c as u32)))
}
