//! Text normalization and the subword tokenizer.
//!
//! Normalization is NFKC followed by per-character lowercasing. Nothing else: accents and
//! combining marks are kept, because in Devanagari the vowel signs (matras) and the virama are
//! combining marks and stripping them destroys the words ("पोस्ट" would become "पसट").
//!
//! Words are split on whitespace, and every punctuation character (ASCII punctuation and the
//! Unicode P* categories, which include the danda "।" and double danda "॥") becomes a word of its
//! own: the same rule as the `tokenizers` crate's `BertPreTokenizer`.
//!
//! The subword vocabulary is a WordPiece vocabulary trained on the training texts with the
//! `tokenizers` crate and saved in the bundle as `tokenizer.json`, loadable by any Hugging Face
//! tokenizers binding. For speed, khabar encodes with its own implementation of the same
//! normalizer, pre-tokenizer and greedy longest-match WordPiece; a test checks that it yields
//! exactly the ids that the `tokenizers` crate yields from the same `tokenizer.json`.

use std::sync::LazyLock;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::{Lowercase, Sequence as NormalizerSequence, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{Model, NormalizerWrapper, Tokenizer as HfTokenizer};
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

use crate::error::{Error, Result};

/// The token that stands for a word the vocabulary cannot spell.
pub const UNK: &str = "[UNK]";
const CONTINUATION: &str = "##";
const MAX_WORD_CHARS: usize = 100;

/// NFKC + lowercase, appended to `out` (which is cleared first).
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        // NFKC leaves ASCII unchanged.
        out.push_str(text);
        out.make_ascii_lowercase();
        return;
    }
    out.reserve(text.len());
    // Most text is already in NFKC (Devanagari and Latin letters, for a start): the quick check
    // is cheaper than composing it again.
    if push_lowercase_if_nfkc(text, out, &mut ()) {
        return;
    }
    // NFKC works on each stretch between ASCII spaces by itself (a space neither decomposes
    // nor composes with a neighbour, and stops the reordering of combining marks), so only the
    // words that need it pay for it: in a Hindi headline, the one with a nukta letter.
    for (i, chunk) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !push_lowercase_if_nfkc(chunk, out, &mut ()) {
            chunk.nfkc().for_each(|(c, _)| push_lowercase(c, out));
        }
    }
}

/// A property of the characters of the Basic Multilingual Plane, kept as bits: Unicode tables
/// are a search per character, a fifth of the prediction time on Hindi. Each block of 256
/// characters is computed on its first use.
struct BmpBits([std::sync::OnceLock<[u64; 4]>; 256]);

impl BmpBits {
    const fn new() -> Self {
        BmpBits([const { std::sync::OnceLock::new() }; 256])
    }

    /// `property(c)`, for `c` below U+10000.
    fn get(&self, c: char, property: fn(char) -> bool) -> bool {
        let cp = c as u32;
        debug_assert!(cp < 0x1_0000);
        let bits = self.0[(cp >> 8) as usize].get_or_init(|| {
            let mut bits = [0u64; 4];
            for i in 0..256u32 {
                if char::from_u32((cp & !0xff) | i).is_some_and(property) {
                    bits[(i >> 6) as usize] |= 1 << (i & 63);
                }
            }
            bits
        });
        let i = cp & 0xff;
        bits[(i >> 6) as usize] >> (i & 63) & 1 == 1
    }
}

static NFKC_YES: BmpBits = BmpBits::new();
static NONSTARTER: BmpBits = BmpBits::new();
static CHANGES_CASE: BmpBits = BmpBits::new();
static PUNCTUATION: BmpBits = BmpBits::new();
static PLAIN: BmpBits = BmpBits::new();
static WORD_CHAR: BmpBits = BmpBits::new();
static PLAIN_WORD: BmpBits = BmpBits::new();

/// [`is_plain`] and part of a word ([`char_class`]).
fn is_plain_word(c: char) -> bool {
    is_plain(c) && char_class(c) == CharClass::Word
}

/// Whether the non-ASCII `c` (below U+10000) is what most characters of Hindi or accented
/// Latin text are: allowed in NFKC as it is, a starter (no combining class) and unchanged by
/// lowercasing. One lookup then answers for the three.
fn is_plain(c: char) -> bool {
    nfkc_yes(c) && !is_nonstarter(c) && c.to_lowercase().eq([c])
}

fn library_nfkc_quick(text: &str) -> bool {
    unicode_normalization_alignments::is_nfkc_quick(text.chars())
        == unicode_normalization_alignments::IsNormalized::Yes
}

/// Whether `c` is allowed in NFKC as it is (quick check "yes").
fn nfkc_yes(c: char) -> bool {
    use unicode_normalization_alignments::{is_nfkc_quick, IsNormalized};
    is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
}

/// Whether `c` is a combining mark (canonical combining class above 0). The class is not
/// public in the normalization crate; its quick check reveals it: after U+0345 (class 240, the
/// largest), a mark of a lower class is out of order.
fn is_nonstarter(c: char) -> bool {
    use unicode_normalization_alignments::{is_nfkc_quick, IsNormalized};
    const YPOGEGRAMMENI: char = '\u{0345}';
    c == YPOGEGRAMMENI
        || (is_nfkc_quick(std::iter::once(c)) != IsNormalized::No
            && is_nfkc_quick([YPOGEGRAMMENI, c].into_iter()) == IsNormalized::No)
}

/// Whether lowercasing leaves the non-ASCII character `c` as it is (from [`BmpBits`]; outside
/// the Basic Multilingual Plane, taken as changed, which the slow path handles right).
fn lowercase_keeps(c: char) -> bool {
    (c as u32) < 0x1_0000 && !CHANGES_CASE.get(c, |c| !c.to_lowercase().eq([c]))
}

/// Appends the lowercase of `c`.
fn push_lowercase(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else if lowercase_keeps(c) {
        out.push(c);
    } else {
        out.extend(c.to_lowercase());
    }
}

/// [`normalize_into`] and [`for_each_word`] on its result in one: `out` gets the normalized
/// text and `spans` the byte range in it of each word, in order. Text that is in NFKC already
/// (most of it) is split as it is lowercased, with each character decoded once.
pub fn normalize_split_into(text: &str, out: &mut String, spans: &mut Vec<(u32, u32)>) {
    spans.clear();
    if text.is_ascii() {
        normalize_into(text, out);
        let base = out.as_ptr() as usize;
        for_each_word(out, |w| {
            let at = w.as_ptr() as usize - base;
            spans.push((at as u32, (at + w.len()) as u32));
        });
        return;
    }
    // As normalize_into does it, telling `words` each character written.
    out.clear();
    out.reserve(text.len());
    let mut words = WordSpans { spans, word: None };
    if push_lowercase_if_nfkc(text, out, &mut words) {
        return;
    }
    for (i, chunk) in text.split(' ').enumerate() {
        if i > 0 {
            words.push(CharClass::Space, out.len(), 1);
            out.push(' ');
        }
        if !push_lowercase_if_nfkc(chunk, out, &mut words) {
            let at = out.len();
            chunk.nfkc().for_each(|(c, _)| push_lowercase(c, out));
            for (j, c) in out[at..].char_indices() {
                words.push(char_class(c), at + j, c.len_utf8());
            }
        }
    }
    words.finish(out.len());
}

/// What [`push_lowercase_if_nfkc`] tells about each character it writes.
trait CharSink {
    /// Whether the sink wants the characters (the classes are not looked up otherwise).
    const WANTS: bool;
    /// A character of class `class` written at `at..at + len` of the output.
    fn push(&mut self, class: CharClass, at: usize, len: usize);
    /// The output ends at `end` (for now: more may follow after a space).
    fn finish(&mut self, end: usize);
    /// What to [`CharSink::rewind`] to, taken where the output ends after a space or nothing.
    fn mark(&self) -> usize;
    /// Forgets the characters pushed since `mark` (that output is being thrown away).
    fn rewind(&mut self, mark: usize);
}

impl CharSink for () {
    const WANTS: bool = false;
    fn push(&mut self, _: CharClass, _: usize, _: usize) {}
    fn finish(&mut self, _: usize) {}
    fn mark(&self) -> usize {
        0
    }
    fn rewind(&mut self, _: usize) {}
}

/// Splits written text into words as [`for_each_word`] does.
struct WordSpans<'a> {
    spans: &'a mut Vec<(u32, u32)>,
    /// Where the word being read started.
    word: Option<usize>,
}

impl CharSink for WordSpans<'_> {
    const WANTS: bool = true;
    #[inline(always)]
    fn push(&mut self, class: CharClass, at: usize, len: usize) {
        match class {
            CharClass::Word => {
                if self.word.is_none() {
                    self.word = Some(at);
                }
            }
            CharClass::Space | CharClass::Punct => {
                if let Some(s) = self.word.take() {
                    self.spans.push((s as u32, at as u32));
                }
                if class == CharClass::Punct {
                    self.spans.push((at as u32, (at + len) as u32));
                }
            }
        }
    }
    fn finish(&mut self, end: usize) {
        if let Some(s) = self.word.take() {
            self.spans.push((s as u32, end as u32));
        }
    }
    fn mark(&self) -> usize {
        self.spans.len()
    }
    fn rewind(&mut self, mark: usize) {
        self.spans.truncate(mark);
        self.word = None;
    }
}

/// When `text` is surely in NFKC already, appends its lowercase (as [`push_lowercase`] does,
/// character by character), tells `sink` the class of each character written, and returns
/// true; otherwise leaves `out` and `sink` as they were and returns false (with a sink that
/// wants the characters, also for text beyond the Basic Multilingual Plane). The test is the
/// Unicode quick check (every character allowed as it is, combining marks in canonical order),
/// answered from [`BmpBits`] instead of two table lookups per character, in the same pass as
/// the lowercasing.
fn push_lowercase_if_nfkc<S: CharSink>(text: &str, out: &mut String, sink: &mut S) -> bool {
    let ascii = &*ASCII_CLASS;
    let mark = out.len();
    let sink_mark = sink.mark();
    let mut start = 0;
    let mut last_nonstarter = false;
    for (i, c) in text.char_indices() {
        if S::WANTS && !c.is_ascii() && (c as u32) < 0x1_0000 && PLAIN_WORD.get(c, is_plain_word) {
            // Most letters and marks of Hindi: one lookup for the two questions.
            last_nonstarter = false;
            sink.push(CharClass::Word, out.len() + (i - start), c.len_utf8());
            continue;
        }
        let unchanged = if c.is_ascii() {
            last_nonstarter = false;
            !c.is_ascii_uppercase()
        } else if (c as u32) < 0x1_0000 && PLAIN.get(c, is_plain) {
            last_nonstarter = false;
            true
        } else {
            let nonstarter = (c as u32) < 0x1_0000 && NONSTARTER.get(c, is_nonstarter);
            if c as u32 >= 0x1_0000 || (nonstarter && last_nonstarter) {
                // Beyond the cached plane, or combining marks whose order needs their classes.
                out.truncate(mark);
                if !S::WANTS && library_nfkc_quick(text) {
                    // Rare (text beyond the cached plane): character by character.
                    text.chars().for_each(|c| push_lowercase(c, out));
                    return true;
                }
                sink.rewind(sink_mark);
                return false;
            }
            if !NFKC_YES.get(c, nfkc_yes) {
                out.truncate(mark);
                sink.rewind(sink_mark);
                return false;
            }
            last_nonstarter = nonstarter;
            lowercase_keeps(c)
        };
        if unchanged {
            if S::WANTS {
                let class = if c.is_ascii() {
                    ascii[c as usize]
                } else {
                    char_class(c)
                };
                sink.push(class, out.len() + (i - start), c.len_utf8());
            }
        } else {
            out.push_str(&text[start..i]);
            let at = out.len();
            push_lowercase(c, out);
            start = i + c.len_utf8();
            if S::WANTS {
                for (j, c) in out[at..].char_indices() {
                    sink.push(char_class(c), at + j, c.len_utf8());
                }
            }
        }
    }
    out.push_str(&text[start..]);
    sink.finish(out.len());
    true
}

/// NFKC + lowercase.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation()
    } else if (c as u32) < 0x1_0000 {
        PUNCTUATION.get(c, |c| c.is_punctuation())
    } else {
        c.is_punctuation()
    }
}

/// What a character is to [`for_each_word`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    /// Part of a word.
    Word,
    /// Whitespace: ends a word.
    Space,
    /// Punctuation: ends a word and is a word of its own.
    Punct,
}

/// The class of `c` (from cached bits below U+10000).
fn char_class(c: char) -> CharClass {
    let in_word = |c: char| !c.is_whitespace() && !is_punctuation(c);
    let word = if (c as u32) < 0x1_0000 {
        WORD_CHAR.get(c, in_word)
    } else {
        in_word(c)
    };
    if word {
        CharClass::Word
    } else if c.is_whitespace() {
        CharClass::Space
    } else {
        CharClass::Punct
    }
}

/// [`char_class`] of every ASCII character (most of the text in many corpora), for a lookup
/// instead of decoding and testing each character.
static ASCII_CLASS: LazyLock<[CharClass; 128]> =
    LazyLock::new(|| std::array::from_fn(|b| char_class(b as u8 as char)));

/// Splits already normalized text into words: on whitespace, with each punctuation character a
/// word of its own. Calls `f` with each word, in order.
pub fn for_each_word<'a>(normalized: &'a str, mut f: impl FnMut(&'a str)) {
    let ascii = &*ASCII_CLASS;
    let bytes = normalized.as_bytes();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let (class, len) = match bytes[i] {
            b if b < 0x80 => (ascii[b as usize], 1),
            _ => {
                // i is a character boundary: every step is a whole character.
                let c = normalized[i..].chars().next().unwrap_or_default();
                (char_class(c), c.len_utf8())
            }
        };
        match class {
            CharClass::Word => {
                if start.is_none() {
                    start = Some(i);
                }
            }
            CharClass::Space | CharClass::Punct => {
                if let Some(s) = start.take() {
                    f(&normalized[s..i]);
                }
                if class == CharClass::Punct {
                    f(&normalized[i..i + len]);
                }
            }
        }
        i += len;
    }
    if let Some(s) = start {
        f(&normalized[s..]);
    }
}

/// Whether a word (as produced by [`for_each_word`]) is a single punctuation character.
pub fn is_punctuation_word(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if is_punctuation(c))
}

/// Options for training the subword vocabulary.
#[derive(Debug, Clone)]
pub struct TokenizerOptions {
    /// Largest vocabulary size (the trainer stops earlier on small corpora).
    pub vocab_size: usize,
    /// A subword must be seen at least this often to enter the vocabulary.
    pub min_frequency: u64,
}

impl Default for TokenizerOptions {
    fn default() -> Self {
        TokenizerOptions {
            vocab_size: 10_000,
            min_frequency: 2,
        }
    }
}

/// A trained WordPiece tokenizer: the `tokenizer.json` text plus a fast encoder built from it.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    json: String,
    /// Word-initial pieces.
    initial: ahash::AHashMap<String, u32>,
    /// Continuation pieces, stored without their "##" prefix.
    continuation: ahash::AHashMap<String, u32>,
    unk: u32,
    vocab_size: usize,
}

impl Tokenizer {
    /// Learns a WordPiece vocabulary from `texts` and builds the tokenizer with the `tokenizers`
    /// crate (NFKC + Lowercase normalizer, BERT pre-tokenizer, WordPiece model).
    ///
    /// The vocabulary is learned the way the crate's `WordPieceTrainer` learns it (BPE merges
    /// over word counts, continuation pieces marked "##", merges stop at `vocab_size` or when the
    /// best pair is rarer than `min_frequency`), but here, because that trainer breaks ties
    /// between equally frequent pairs by hash-map order, which is random in every process: the
    /// same corpus gave two different vocabularies. Here ties are broken by the pieces' text, so
    /// the same corpus always gives the same `tokenizer.json`.
    pub fn train<S: AsRef<str> + Sync>(
        texts: &[S],
        options: &TokenizerOptions,
    ) -> Result<Tokenizer> {
        let vocab = learn_vocab(texts, options);
        let model = WordPiece::builder()
            .vocab(vocab.into_iter().collect::<ahash::AHashMap<String, u32>>())
            .unk_token(UNK.to_string())
            .continuing_subword_prefix(CONTINUATION.to_string())
            .max_input_chars_per_word(MAX_WORD_CHARS)
            .build()
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut tokenizer = HfTokenizer::new(model);
        tokenizer
            .with_normalizer(Some(NormalizerWrapper::Sequence(NormalizerSequence::new(
                vec![NFKC.into(), Lowercase.into()],
            ))))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        let json = tokenizer
            .to_string(true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Tokenizer::from_json(&json)
    }

    /// Loads a tokenizer from the text of a `tokenizer.json`. Only the pipeline khabar trains
    /// (NFKC + lowercase, BERT pre-tokenizer, WordPiece with "##" continuations) is accepted,
    /// because the fast encoder implements exactly that pipeline.
    pub fn from_json(json: &str) -> Result<Tokenizer> {
        let hf: HfTokenizer = json
            .parse()
            .map_err(|e: tokenizers::Error| Error::Tokenizer(format!("does not parse: {e}")))?;
        let norm_ok = match hf.get_normalizer() {
            Some(NormalizerWrapper::Sequence(seq)) => {
                let v = serde_json::to_value(seq).unwrap_or_default();
                v["normalizers"]
                    .as_array()
                    .map(|a| a.len() == 2 && a[0]["type"] == "NFKC" && a[1]["type"] == "Lowercase")
                    .unwrap_or(false)
            }
            _ => false,
        };
        let pre_ok = matches!(
            hf.get_pre_tokenizer(),
            Some(tokenizers::PreTokenizerWrapper::BertPreTokenizer(_))
        );
        if !norm_ok || !pre_ok {
            return Err(Error::Tokenizer(
                "unsupported pipeline: khabar expects the NFKC + Lowercase normalizer and the BERT \
                 pre-tokenizer that it trains"
                    .into(),
            ));
        }
        let wp = match hf.get_model() {
            tokenizers::ModelWrapper::WordPiece(wp) => wp,
            _ => {
                return Err(Error::Tokenizer(
                    "unsupported model: khabar expects a WordPiece model".into(),
                ))
            }
        };
        if wp.continuing_subword_prefix != CONTINUATION
            || wp.max_input_chars_per_word != MAX_WORD_CHARS
        {
            return Err(Error::Tokenizer(format!(
                "unsupported WordPiece settings: khabar expects the prefix '{CONTINUATION}' and at \
                 most {MAX_WORD_CHARS} characters a word"
            )));
        }
        let vocab = wp.get_vocab();
        let unk = *vocab
            .get(&wp.unk_token)
            .ok_or_else(|| Error::Tokenizer(format!("the vocabulary lacks '{}'", wp.unk_token)))?;
        let mut initial = ahash::AHashMap::new();
        let mut continuation = ahash::AHashMap::new();
        for (piece, &id) in &vocab {
            match piece.strip_prefix(CONTINUATION) {
                Some(rest) if !rest.is_empty() => {
                    continuation.insert(rest.to_string(), id);
                }
                _ => {
                    initial.insert(piece.clone(), id);
                }
            }
        }
        let vocab_size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        Ok(Tokenizer {
            json: json.to_string(),
            initial,
            continuation,
            unk,
            vocab_size,
        })
    }

    /// The `tokenizer.json` text.
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// Number of ids (largest id + 1).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of the unknown-word token.
    pub fn unk_id(&self) -> u32 {
        self.unk
    }

    /// Appends the WordPiece ids of one (normalized) word to `out`: greedy longest match first;
    /// a word that cannot be spelled, or that is over 100 characters long, is one [UNK].
    pub fn encode_word(&self, word: &str, out: &mut Vec<u32>) {
        let mark = out.len();
        if word.chars().nth(MAX_WORD_CHARS).is_some() {
            out.push(self.unk);
            return;
        }
        let mut start = 0;
        while start < word.len() {
            let table = if start == 0 {
                &self.initial
            } else {
                &self.continuation
            };
            let mut end = word.len();
            let mut found = None;
            while end > start {
                if let Some(&id) = table.get(&word[start..end]) {
                    found = Some(id);
                    break;
                }
                // step back one character
                end -= word[start..end]
                    .chars()
                    .next_back()
                    .map_or(1, |c| c.len_utf8());
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }

    /// Normalizes and encodes a whole text into subword ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let norm = normalize(text);
        let mut ids = Vec::new();
        for_each_word(&norm, |w| self.encode_word(w, &mut ids));
        ids
    }
}

/// Counts the words of `texts` (normalized, pre-tokenized), in parallel.
fn count_words<S: AsRef<str> + Sync>(texts: &[S]) -> ahash::AHashMap<String, u64> {
    use rayon::prelude::*;
    texts
        .par_iter()
        .fold(
            || (ahash::AHashMap::<String, u64>::new(), String::new()),
            |(mut counts, mut norm), text| {
                normalize_into(text.as_ref(), &mut norm);
                for_each_word(&norm, |w| match counts.get_mut(w) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(w.to_string(), 1);
                    }
                });
                (counts, norm)
            },
        )
        .map(|(counts, _)| counts)
        .reduce(ahash::AHashMap::new, |mut a, b| {
            let (mut big, small) = if a.len() >= b.len() {
                (a, b)
            } else {
                (b, std::mem::take(&mut a))
            };
            for (w, n) in small {
                *big.entry(w).or_insert(0) += n;
            }
            big
        })
}

/// Learns a WordPiece vocabulary (piece -> id) by BPE merges. Deterministic: pieces get ids in
/// a fixed order ([UNK], then the alphabet sorted, then merges in order) and ties between
/// equally frequent pairs go to the pair whose pieces sort first.
fn learn_vocab<S: AsRef<str> + Sync>(
    texts: &[S],
    options: &TokenizerOptions,
) -> Vec<(String, u32)> {
    // Hash maps iterate in a random order: every result taken from one is sorted first, so the
    // vocabulary does not depend on it.
    use ahash::{AHashMap, AHashSet};
    use std::collections::BinaryHeap;

    let mut counted: Vec<(String, u64)> = count_words(texts).into_iter().collect();
    counted.sort_unstable();

    // Symbols: the first character of a word as itself, later ones with the "##" prefix.
    let mut symbols: Vec<String> = vec![UNK.to_string()];
    let mut alphabet: Vec<String> = counted
        .iter()
        .flat_map(|(w, _)| {
            w.chars().enumerate().map(|(i, c)| {
                if i == 0 {
                    c.to_string()
                } else {
                    format!("{CONTINUATION}{c}")
                }
            })
        })
        .collect::<AHashSet<_>>()
        .into_iter()
        .collect();
    alphabet.sort_unstable();
    symbols.extend(alphabet);
    let mut ids: AHashMap<String, u32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect();

    let mut words: Vec<Vec<u32>> = counted
        .iter()
        .map(|(w, _)| {
            w.chars()
                .enumerate()
                .map(|(i, c)| {
                    let s = if i == 0 {
                        c.to_string()
                    } else {
                        format!("{CONTINUATION}{c}")
                    };
                    ids[&s]
                })
                .collect()
        })
        .collect();
    let counts: Vec<u64> = counted.iter().map(|(_, n)| *n).collect();
    drop(counted);

    // Pair statistics: weighted count, and the words the pair occurs in (a list that may hold
    // a word twice, or a word that no longer has the pair: merging checks).
    let mut pair_count: AHashMap<(u32, u32), i64> = AHashMap::new();
    let mut pair_words: AHashMap<(u32, u32), Vec<u32>> = AHashMap::new();
    for (wi, w) in words.iter().enumerate() {
        for p in w.windows(2) {
            let pair = (p[0], p[1]);
            *pair_count.entry(pair).or_insert(0) += counts[wi] as i64;
            let list = pair_words.entry(pair).or_default();
            if list.last() != Some(&(wi as u32)) {
                list.push(wi as u32);
            }
        }
    }
    // Max-heap on (count, then the smaller pair of ids: ids are given in a fixed order).
    use std::cmp::Reverse;
    let mut heap: BinaryHeap<(i64, Reverse<(u32, u32)>)> = pair_count
        .iter()
        .map(|(&pair, &count)| (count, Reverse(pair)))
        .collect();

    let min_frequency = options.min_frequency.max(1) as i64;
    while symbols.len() < options.vocab_size {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        let current = pair_count.get(&pair).copied().unwrap_or(0);
        if current != count {
            if current > 0 {
                heap.push((current, Reverse(pair)));
            }
            continue;
        }
        if current < min_frequency {
            break;
        }
        let (left, right) = (&symbols[pair.0 as usize], &symbols[pair.1 as usize]);
        let merged = format!(
            "{left}{}",
            right.strip_prefix(CONTINUATION).unwrap_or(right)
        );
        let new_id = match ids.get(&merged) {
            Some(&id) => id,
            None => {
                let id = symbols.len() as u32;
                ids.insert(merged.clone(), id);
                symbols.push(merged);
                id
            }
        };
        let (a, b) = pair;
        let mut touched: Vec<u32> = pair_words.remove(&pair).unwrap_or_default();
        touched.sort_unstable();
        touched.dedup();
        pair_count.remove(&pair);
        let mut changed: AHashSet<(u32, u32)> = AHashSet::new();
        for wi in touched {
            let wi = wi as usize;
            let w = &mut words[wi];
            if !w.windows(2).any(|p| p[0] == a && p[1] == b) {
                continue;
            }
            let c = counts[wi] as i64;
            let mut i = 0;
            let mut merged_word = Vec::with_capacity(w.len());
            while i < w.len() {
                if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
                    merged_word.push(new_id);
                    i += 2;
                } else {
                    merged_word.push(w[i]);
                    i += 1;
                }
            }
            // Remove the old pairs of this word, add the new ones.
            for p in w.windows(2) {
                let old = (p[0], p[1]);
                if old == pair {
                    continue;
                }
                if let Some(n) = pair_count.get_mut(&old) {
                    *n -= c;
                }
                changed.insert(old);
            }
            for p in merged_word.windows(2) {
                let new = (p[0], p[1]);
                *pair_count.entry(new).or_insert(0) += c;
                let list = pair_words.entry(new).or_default();
                if list.last() != Some(&(wi as u32)) {
                    list.push(wi as u32);
                }
                changed.insert(new);
            }
            *w = merged_word;
        }
        // Only pairs with the new piece can have gained: the others only lost, and their
        // older, larger heap entries are corrected when they come up (lazy deletion picks
        // the same pairs either way).
        let mut changed: Vec<(u32, u32)> = changed.into_iter().collect();
        changed.sort_unstable();
        for p in changed {
            match pair_count.get(&p).copied() {
                Some(n) if n > 0 => {
                    if p.0 == new_id || p.1 == new_id {
                        heap.push((n, Reverse(p)));
                    }
                }
                _ => {
                    pair_count.remove(&p);
                    pair_words.remove(&p);
                }
            }
        }
    }
    symbols
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i as u32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast paths of normalization (quick check, cached case bits) give what NFKC then
    /// lowercase give, character by character and on mixed text.
    #[test]
    fn normalization_matches_nfkc_then_lowercase() {
        let slow = |t: &str| -> String { t.nfkc().flat_map(|(c, _)| c.to_lowercase()).collect() };
        for cp in 0x80..=0x10_ffffu32 {
            if let Some(c) = char::from_u32(cp) {
                let t = format!("a{c}b");
                assert_eq!(normalize(&t), slow(&t), "U+{cp:04X}");
                // Beside spaces, where the text is normalized a stretch at a time.
                let t = format!("\u{0958} {c} b{c} \u{0301}{c}");
                assert_eq!(normalize(&t), slow(&t), "U+{cp:04X} by spaces");
            }
        }
        for t in sample_texts() {
            assert_eq!(normalize(&t), slow(&t));
        }
        // The quick check agrees with the library's on every pair of characters in the blocks
        // of Latin, Greek, combining marks and Devanagari.
        let blocks: Vec<char> = (0x80..0x500u32)
            .chain(0x900..0x980)
            .chain(0x1DC0..0x1E00)
            .chain(0x20D0..0x2100)
            .filter_map(char::from_u32)
            .collect();
        for &a in &blocks {
            for &b in blocks.iter().step_by(3) {
                let t: String = [a, b].into_iter().collect();
                let mut out = String::from("x");
                let quick = push_lowercase_if_nfkc(&t, &mut out, &mut ());
                assert_eq!(quick, library_nfkc_quick(&t), "{t:?}");
                if !quick {
                    assert_eq!(out, "x", "{t:?}: left as it was");
                }
            }
        }
        // Nukta forms are composition exclusions: NFKC decomposes them.
        assert_eq!(normalize("\u{0958}"), "\u{0915}\u{093C}");
        assert_eq!(normalize("ÉCOLE ǅ ß İ"), slow("ÉCOLE ǅ ß İ"));
    }

    /// The cached punctuation test agrees with the Unicode tables for every character beyond
    /// ASCII.
    #[test]
    fn punctuation_bits_match_the_unicode_tables() {
        for cp in 0..=0x10_ffffu32 {
            if let Some(c) = char::from_u32(cp) {
                // ASCII symbols ($, +, <, ...) count as punctuation, as in BERT.
                let expected = c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation());
                assert_eq!(is_punctuation(c), expected, "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn normalization_keeps_devanagari_marks() {
        assert_eq!(normalize("पोस्ट"), "पोस्ट");
        assert_eq!(normalize("Ｈｅｌｌｏ WORLD"), "hello world");
    }

    fn sample_texts() -> Vec<String> {
        let base = [
            "India and Pakistan held talks in Geneva on Monday; the U.N. welcomed it.",
            "भारत और पाकिस्तान के विदेश मंत्रियों ने युद्धविराम पर बातचीत की। फिर, \"हाँ\"!",
            "क्रिकेट: भारत ने ऑस्ट्रेलिया को 5 विकेट से हराया॥ कोहली ने शतक जड़ा",
            "Ｆｕｌｌｗｉｄｔｈ ＴＥＸＴ, ligatures ﬁ ﬂ, café naïve ÉCOLE Straße ΣΟΦΙΑ",
            "Shares of Acme Corp. rose 3.5% to $42 &lt;b&gt;record&lt;/b&gt; — analysts",
            "emoji 🚀🔥 and CJK 北京 東京 mixed with tabs\tand\r\nnewlines",
            "zero\u{200d}width joiner and non\u{200c}joiner in क्‍ष and र्‍य",
        ];
        let mut texts: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        // Repeat them so that the trainer keeps pieces above its minimum frequency.
        for i in 0..5 {
            for b in base {
                texts.push(format!("{b} {i}"));
            }
        }
        texts.push("x".repeat(150));
        texts
    }

    #[test]
    fn fast_encoder_matches_the_tokenizers_crate() {
        let texts = sample_texts();
        let options = TokenizerOptions {
            vocab_size: 300,
            min_frequency: 2,
        };
        let tok = Tokenizer::train(&texts, &options).unwrap();
        let hf: HfTokenizer = tok.to_json().parse().unwrap();
        let mut probes = texts.clone();
        probes.push("unseen words: zebra quixotic ज्ञानपीठ".into());
        probes.push(String::new());
        probes.push("   ".into());
        for text in &probes {
            let want = hf.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            assert_eq!(tok.encode(text), want, "text: {text:?}");
        }
    }

    #[test]
    fn training_is_deterministic() {
        let texts = sample_texts();
        let options = TokenizerOptions {
            vocab_size: 200,
            min_frequency: 1,
        };
        let a = Tokenizer::train(&texts, &options).unwrap();
        let b = Tokenizer::train(&texts, &options).unwrap();
        assert_eq!(a.to_json(), b.to_json());
        assert!(
            a.vocab_size() > 50 && a.vocab_size() <= 200,
            "{}",
            a.vocab_size()
        );
    }

    #[test]
    fn rejects_foreign_pipelines() {
        let texts = sample_texts();
        let tok = Tokenizer::train(&texts, &TokenizerOptions::default()).unwrap();
        let changed = tok.to_json().replace("\"Lowercase\"", "\"NFD\"");
        assert!(matches!(
            Tokenizer::from_json(&changed),
            Err(Error::Tokenizer(_))
        ));
        assert!(Tokenizer::from_json("{not json").is_err());
    }

    #[test]
    fn words_split_on_punctuation_and_danda() {
        let mut words = Vec::new();
        for_each_word("भारत ने कहा। फिर, \"हाँ\"!", |w| words.push(w));
        assert_eq!(
            words,
            vec!["भारत", "ने", "कहा", "।", "फिर", ",", "\"", "हाँ", "\"", "!"]
        );
    }

    /// Normalizing and splitting in one pass gives what the two steps give, on texts that take
    /// each of its paths: ASCII, NFKC already, a word that needs NFKC among words that do not
    /// (and changes length), combining marks out of order, characters beyond U+FFFF, and every
    /// character below U+10000 beside a Hindi word.
    #[test]
    fn normalizing_and_splitting_together_is_the_same_as_one_after_the_other() {
        fn check(text: &str) {
            let want_norm = normalize(text);
            let mut want = Vec::new();
            for_each_word(&want_norm, |w| want.push(w.to_string()));
            let (mut norm, mut spans) = (String::from("stale"), vec![(7, 9)]);
            normalize_split_into(text, &mut norm, &mut spans);
            assert_eq!(norm, want_norm, "{text:?}");
            let got: Vec<String> = spans
                .iter()
                .map(|&(a, b)| norm[a as usize..b as usize].to_string())
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
        let pool = [
            "The",
            "MARKETS",
            "भारत",
            "ने",
            "कहा।",
            "फ़िल्म",
            "\u{95b}ोर",
            "Straße",
            "İstanbul",
            "ＡＢＣ",
            "ﬁne",
            "x\u{301}\u{327}",
            "a\u{327}\u{301}",
            "क\u{94d}\u{93c}",
            "😀",
            "\u{1d400}",
            ",",
            "!",
            "—",
            "\u{a0}",
            "\u{2003}",
            "\t",
            "  ",
            "।",
            "Ⅻ",
            "ǅ",
            "Ｘ！Ｙ",
            "¼",
            "ｶﾞ",
            "फ़िल्म,Ｘ\u{2003}y",
        ];
        let mut rng = crate::rng::SplitMix64::new(3);
        for _ in 0..3_000 {
            let n = rng.next_u64() % 8;
            let text: Vec<&str> = (0..n)
                .map(|_| pool[(rng.next_u64() % pool.len() as u64) as usize])
                .collect();
            check(&text.join(" "));
            check(&text.concat());
        }
        for c in (0x80..0x1_0000u32).filter_map(char::from_u32) {
            check(&format!("भारत{c}ने {c}x"));
        }
    }

    /// The splitter (a table for ASCII) splits as testing each character would: every ASCII
    /// character, and mixes with other scripts and spaces.
    #[test]
    fn words_split_as_their_characters_say() {
        fn reference(text: &str) -> Vec<&str> {
            let mut out = Vec::new();
            let mut start: Option<usize> = None;
            for (i, c) in text.char_indices() {
                if c.is_whitespace() || is_punctuation(c) {
                    if let Some(s) = start.take() {
                        out.push(&text[s..i]);
                    }
                    if !c.is_whitespace() {
                        out.push(&text[i..i + c.len_utf8()]);
                    }
                } else if start.is_none() {
                    start = Some(i);
                }
            }
            if let Some(s) = start {
                out.push(&text[s..]);
            }
            out
        }
        let ascii: String = (0u8..128).map(|b| b as char).collect();
        let mut texts = vec![
            ascii.clone(),
            format!("ab{ascii}cd e"),
            "भारत ने\u{a0}कहा।फिर, \u{2003}\"हाँ\"!x\u{85}y — z…".to_string(),
            "   ".to_string(),
            String::new(),
        ];
        for b in 0u8..128 {
            texts.push(format!("w{}w {}", b as char, b as char));
        }
        // Every character beyond ASCII (classified from cached bits below U+10000).
        for c in (0x80..=0x10_ffffu32).filter_map(char::from_u32) {
            let text = format!("w{c}w {c}");
            let mut got = Vec::new();
            for_each_word(&text, |w| got.push(w));
            assert_eq!(got, reference(&text), "U+{:04X}", c as u32);
        }
        for text in &texts {
            let mut got = Vec::new();
            for_each_word(text, |w| got.push(w));
            assert_eq!(got, reference(text), "{text:?}");
        }
    }
}
