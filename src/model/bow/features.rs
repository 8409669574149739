//! What a text is to the `bow` model: its features. This is the one feature extractor, for
//! training and prediction alike: NFKC + lowercase and word splitting, then for each word its
//! subword ids, character n-grams and (for a word the vocabulary splits) the whole word, then
//! the word n-grams over the words' hashes.
//!
//! Words repeat, across texts even more than within one, so each word's features are worked out
//! once per thread and kept in a [`WordCache`]. What an entry holds is the caller's choice
//! ([`WordEntries`]): training keeps the raw features (which n-grams get rows is not known
//! yet), prediction the table rows they map to.

use super::config::BowConfig;
use super::index::KeyIndex;
use super::packed::PREFETCH_AHEAD;
use crate::text::{is_punctuation_word, normalize_split_into, Tokenizer};

/// A raw feature: a subword id, or the key of a word n-gram, whole word or character n-gram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Feature {
    Subword(u32),
    Key(u64),
}

/// The hash of a word that takes no part in word n-grams (punctuation).
pub(super) const NO_HASH: u64 = u64::MAX;

/// Entries a [`WordCache`] keeps before it starts over (bounds its memory: a few MB).
const CACHE_WORDS: usize = 100_000;

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

/// The key of a word in a [`WordCache`]: its FNV-1a hash, with the high bits mixed into the
/// low ones.
fn cache_key(word: &[u8]) -> u64 {
    let h = fnv1a(word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 32)
}

/// Where in its word a feature comes from (what an explanation shows of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// One of the word's WordPiece pieces.
    Piece,
    /// Characters of the word framed as "<word>": `len` of them from the `start`th ('<' is 0).
    Chars { start: usize, len: usize },
    /// The whole word.
    Word,
}

/// The features of one (normalized) word: its subword ids, its character n-grams and, for a
/// word the vocabulary splits, the whole word, each with where in the word it comes from.
/// Returns the word's hash for word n-grams, or `None` for punctuation, which takes no part in
/// them.
fn word_features(
    tokenizer: &Tokenizer,
    config: &BowConfig,
    w: &str,
    pieces: &mut Vec<u32>,
    on: &mut impl FnMut(Feature, Origin),
) -> Option<u64> {
    pieces.clear();
    tokenizer.encode_word(w, pieces);
    for &p in pieces.iter() {
        on(Feature::Subword(p), Origin::Piece);
    }
    if is_punctuation_word(w) {
        return None;
    }
    if config.char_ngrams[0] > 0 {
        char_ngrams(w, config.char_ngrams, on);
    }
    let h = fnv1a(w.as_bytes());
    if config.word_unigrams && pieces.len() > 1 {
        on(Feature::Key(unigram_key(h)), Origin::Word);
    }
    Some(h)
}

/// Emits the keys of the character n-grams of `word` framed as "<word>", of `lo..=hi`
/// characters.
fn char_ngrams(word: &str, [lo, hi]: [usize; 2], on: &mut impl FnMut(Feature, Origin)) {
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
                on(
                    Feature::Key(extend_key(0x6368_6172_6e67_7261, h)),
                    Origin::Chars { start, len },
                );
            }
        }
    }
}

/// The characters `start..start + len` of `word` framed as "<word>" (the text of a character
/// n-gram).
pub(super) fn framed_chars(word: &str, start: usize, len: usize) -> String {
    std::iter::once('<')
        .chain(word.chars())
        .chain(std::iter::once('>'))
        .skip(start)
        .take(len)
        .collect()
}

/// The keys of the word n-grams (orders 2 and up) over a text's word hashes, each with the
/// index of its first word and its number of words.
fn word_ngrams(config: &BowConfig, words: &[u64], mut on: impl FnMut(u64, usize, usize)) {
    for n in 2..=config.ngram_order {
        for (start, window) in words.windows(n).enumerate() {
            let mut key = window[0];
            for &w in &window[1..] {
                key = extend_key(key, w);
            }
            on(key, start, n);
        }
    }
}

/// A feature of a text as an explanation names it: what in the text it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source<'a> {
    /// A WordPiece piece of `word` (the tokenizer spells it: the whole word, or a part).
    Piece { word: &'a str },
    /// Characters of `word` framed as "<word>" (see [`framed_chars`]).
    Chars {
        word: &'a str,
        start: usize,
        len: usize,
    },
    /// A whole word, a feature of its own beside its pieces.
    Word(&'a str),
    /// Consecutive words (punctuation left out) of a word n-gram.
    Words(&'a [&'a str]),
}

/// Every feature of `text` in the order the extractor finds them (repeats included), each with
/// its [`Source`]: the walk [`Extractor`] makes, without a word cache (for explanations).
pub(super) fn features_with_sources(
    tokenizer: &Tokenizer,
    config: &BowConfig,
    text: &str,
    mut on: impl FnMut(Feature, Source<'_>),
) {
    let (mut norm, mut spans, mut pieces) = (String::new(), Vec::new(), Vec::new());
    normalize_split_into(text, &mut norm, &mut spans);
    let mut words: Vec<&str> = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    for &(a, b) in &spans {
        let w = &norm[a as usize..b as usize];
        let hash = word_features(tokenizer, config, w, &mut pieces, &mut |f, origin| {
            let source = match origin {
                Origin::Piece => Source::Piece { word: w },
                Origin::Chars { start, len } => Source::Chars {
                    word: w,
                    start,
                    len,
                },
                Origin::Word => Source::Word(w),
            };
            on(f, source)
        })
        .unwrap_or(NO_HASH);
        if hash != NO_HASH {
            words.push(w);
            hashes.push(hash);
        }
    }
    word_ngrams(config, &hashes, |key, start, n| {
        on(Feature::Key(key), Source::Words(&words[start..start + n]))
    });
}
/// What a per-thread word cache keeps of each word, made from the word's features the first
/// time it is seen.
pub(super) trait WordEntries {
    /// Where the entry of the word with cache key `key` starts, if the cache has it.
    fn find(&self, key: u64) -> Option<u32>;

    /// Asks the CPU to start loading where `key` would be found (looked up soon).
    fn prefetch(&self, key: u64);

    /// Makes the entry of a word not seen before from its `features` and its `hash` for word
    /// n-grams ([`NO_HASH`] for punctuation); returns where it starts.
    fn insert(&mut self, key: u64, features: &[Feature], hash: u64) -> u32;

    /// The hash of the word whose entry starts at `start`.
    fn hash(&self, start: u32) -> u64;
}

/// Per-thread memory of each word's entry: an index from the word's cache key to where its
/// entry starts in `data`. Keyed by the word's 64-bit hash, mixed: no string to keep or
/// compare; two different words share a key with odds of about 1 in 10^9 for a full cache.
pub(super) struct WordCache<V> {
    pub(super) index: KeyIndex,
    pub(super) data: Vec<V>,
}

impl<V> Default for WordCache<V> {
    fn default() -> Self {
        WordCache {
            index: KeyIndex::with_capacity(0),
            data: Vec::new(),
        }
    }
}

impl<V> WordCache<V> {
    /// Called before each text: a full cache starts over.
    pub(super) fn start_text(&mut self) {
        if self.index.len() >= CACHE_WORDS {
            self.clear();
        }
    }

    /// Forgets every word.
    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.data.clear();
    }
}

/// Reusable buffers of the extractor: one per thread.
#[derive(Default)]
pub(crate) struct Extractor {
    norm: String,
    /// Where each word starts and ends in `norm`.
    spans: Vec<(u32, u32)>,
    /// The cache keys of the text's words.
    keys: Vec<u64>,
    /// Where each word's cache entry starts, then (in [`Extractor::ngrams`]) the words' hashes.
    words: Vec<u64>,
    pieces: Vec<u32>,
    features: Vec<Feature>,
}

impl Extractor {
    /// Splits `text` into words and finds each word's entry in `cache`, making it the first
    /// time the word is seen; `on_word` hears of each word's entry, in text order (repeats
    /// included). Then [`Extractor::ngrams`] gives the text's word n-grams.
    pub(super) fn words<C: WordEntries>(
        &mut self,
        tokenizer: &Tokenizer,
        config: &BowConfig,
        text: &str,
        cache: &mut C,
        mut on_word: impl FnMut(&C, u32),
    ) {
        let Extractor {
            norm,
            spans,
            keys,
            words,
            pieces,
            features,
        } = self;
        normalize_split_into(text, norm, spans);
        let bytes = norm.as_bytes();
        keys.clear();
        keys.extend(
            spans
                .iter()
                .map(|&(a, b)| cache_key(&bytes[a as usize..b as usize])),
        );
        words.clear();
        // The cache is megabytes: each lookup asks for the slot of the word a few ahead.
        for (i, &key) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
                cache.prefetch(ahead);
            }
            let start = match cache.find(key) {
                Some(start) => start,
                None => {
                    let (a, b) = spans[i];
                    let w = &norm[a as usize..b as usize];
                    features.clear();
                    let hash =
                        word_features(tokenizer, config, w, pieces, &mut |f, _| features.push(f))
                            .unwrap_or(NO_HASH);
                    cache.insert(key, features, hash)
                }
            };
            on_word(cache, start);
            words.push(start as u64);
        }
    }

    /// The keys of the word n-grams of the text last given to [`Extractor::words`], whose
    /// entries are in `cache`. Punctuation takes no part in them.
    pub(super) fn ngrams<C: WordEntries>(
        &mut self,
        config: &BowConfig,
        cache: &C,
        on: impl FnMut(u64),
    ) {
        // The hashes are read only now: an entry just asked for is not waited on.
        self.words.retain_mut(|w| {
            *w = cache.hash(*w as u32);
            *w != NO_HASH
        });
        let mut on = on;
        word_ngrams(config, &self.words, |key, _, _| on(key));
    }
}
