//! Normalization (NFKC + lowercase) and the split into words, with the character classes they
//! share, cached a block of the Basic Multilingual Plane at a time.

use std::sync::LazyLock;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

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

/// A property of the characters of the Basic Multilingual Plane, kept as bits, because a Unicode
/// table costs a search per character. Each block of 256 characters is computed on its first
/// use.
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

#[cfg(test)]
mod tests;
