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

use std::collections::HashMap;

use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::{Lowercase, Sequence as NormalizerSequence, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Model, NormalizerWrapper, Tokenizer as HfTokenizer, Trainer};
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
    for (c, _) in text.nfkc() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// NFKC + lowercase.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    normalize_into(text, &mut out);
    out
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation())
}

/// Splits already normalized text into words: on whitespace, with each punctuation character a
/// word of its own. Calls `f` with each word, in order.
pub fn for_each_word<'a>(normalized: &'a str, mut f: impl FnMut(&'a str)) {
    let mut start: Option<usize> = None;
    for (i, c) in normalized.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                f(&normalized[s..i]);
            }
        } else if is_punctuation(c) {
            if let Some(s) = start.take() {
                f(&normalized[s..i]);
            }
            f(&normalized[i..i + c.len_utf8()]);
        } else if start.is_none() {
            start = Some(i);
        }
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
            vocab_size: 30_000,
            min_frequency: 2,
        }
    }
}

/// A trained WordPiece tokenizer: the `tokenizer.json` text plus a fast encoder built from it.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    json: String,
    /// Word-initial pieces.
    initial: HashMap<String, u32>,
    /// Continuation pieces, stored without their "##" prefix.
    continuation: HashMap<String, u32>,
    unk: u32,
    vocab_size: usize,
}

impl Tokenizer {
    /// Trains a WordPiece vocabulary on `texts` with the `tokenizers` crate.
    pub fn train<S: AsRef<str> + Send>(
        texts: impl Iterator<Item = S> + Send,
        options: &TokenizerOptions,
    ) -> Result<Tokenizer> {
        let model = WordPiece::builder()
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
        let mut trainer = WordPieceTrainer::builder()
            .vocab_size(options.vocab_size.max(2))
            .min_frequency(options.min_frequency)
            .special_tokens(vec![AddedToken::from(UNK, true)])
            .continuing_subword_prefix(CONTINUATION.to_string())
            .show_progress(false)
            .build();
        // Feed the trainer the words we split ourselves: the same words that the tokenizer's own
        // normalizer and pre-tokenizer give, without their per-character offset bookkeeping.
        trainer
            .feed(texts, |text| {
                let norm = normalize(text);
                let mut words = Vec::new();
                for_each_word(&norm, |w| words.push(w.to_string()));
                Ok(words)
            })
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut wordpiece = match tokenizer.get_model() {
            tokenizers::ModelWrapper::WordPiece(wp) => wp.clone(),
            _ => unreachable!("built as WordPiece above"),
        };
        trainer
            .train(&mut wordpiece)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        tokenizer.with_model(wordpiece);
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
        let mut initial = HashMap::new();
        let mut continuation = HashMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_keeps_devanagari_marks() {
        assert_eq!(normalize("पोस्ट"), "पोस्ट");
        assert_eq!(normalize("Ｈｅｌｌｏ WORLD"), "hello world");
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
}
