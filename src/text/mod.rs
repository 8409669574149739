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

mod normalize;
#[cfg(test)]
mod test_texts;
mod tokenizer;
mod vocab;

pub use normalize::{
    for_each_word, is_punctuation_word, normalize, normalize_into, normalize_split_into,
};
pub use tokenizer::{Tokenizer, TokenizerOptions, UNK};
