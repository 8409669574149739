//! The WordPiece tokenizer: built and saved as the `tokenizers` crate's `tokenizer.json`, and
//! encoded with khabar's own implementation of the same pipeline.

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::{Lowercase, Sequence as NormalizerSequence, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{Model, NormalizerWrapper, Tokenizer as HfTokenizer};

use super::normalize::{for_each_word, normalize};
use super::vocab::learn_vocab;
use crate::error::{Error, Result};

/// The token that stands for a word the vocabulary cannot spell.
pub const UNK: &str = "[UNK]";
/// The prefix that marks a piece continuing a word.
pub(super) const CONTINUATION: &str = "##";
/// Longer words are one [`UNK`].
const MAX_WORD_CHARS: usize = 100;

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
    /// Each id's piece ("##" before a continuation), made the first time one is asked for
    /// (explanations): loading does not pay for it.
    pieces: std::sync::OnceLock<Vec<Box<str>>>,
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
            pieces: std::sync::OnceLock::new(),
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

    /// The piece of vocabulary id `id`, as `tokenizer.json` spells it (a continuation with its
    /// "##"), or `None` for an id the vocabulary does not hold.
    pub fn piece(&self, id: u32) -> Option<&str> {
        let pieces = self.pieces.get_or_init(|| {
            let mut pieces: Vec<Box<str>> = vec![Box::from(""); self.vocab_size];
            for (p, &id) in &self.initial {
                pieces[id as usize] = p.as_str().into();
            }
            for (p, &id) in &self.continuation {
                pieces[id as usize] = format!("{CONTINUATION}{p}").into();
            }
            pieces
        });
        pieces
            .get(id as usize)
            .map(|p| &**p)
            .filter(|p| !p.is_empty())
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
mod tests;
