//! Text into the encoder's pieces: the XLM-R SentencePiece (Unigram) tokenizer of
//! `tokenizer.json`, through the `tokenizers` crate.

use tokenizers::{ModelWrapper, Tokenizer};

use crate::error::{Error, Result};

/// The shortest input: `<s>`, one piece, `</s>`.
pub(super) const MIN_TOKENS: usize = 3;

/// Bytes of text read per piece wanted, before more is read (see [`Pieces::ids`]).
const BYTES_PER_PIECE: usize = 32;

/// The tokenizer and its special tokens.
pub(super) struct Pieces {
    tokenizer: Tokenizer,
    bos: u32,
    eos: u32,
    prefix: String,
}

impl std::fmt::Debug for Pieces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pieces")
            .field("vocab", &self.tokenizer.get_vocab_size(true))
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Pieces {
    /// The tokenizer of `json`, which must be a Unigram model of `vocab` pieces (special tokens
    /// included) with `<s>` and `</s>`; `prefix` goes before every text.
    pub(super) fn from_json(json: &[u8], vocab: usize, prefix: &str) -> Result<Pieces, String> {
        let mut tokenizer = Tokenizer::from_bytes(json).map_err(|e| e.to_string())?;
        if !matches!(tokenizer.get_model(), ModelWrapper::Unigram(_)) {
            return Err("not a Unigram (SentencePiece) tokenizer".into());
        }
        let n = tokenizer.get_vocab_size(true);
        if n != vocab {
            return Err(format!(
                "{n} pieces, but config.json says vocab_size {vocab}"
            ));
        }
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| format!("no {t} token"))
        };
        let (bos, eos) = (id("<s>")?, id("</s>")?);
        // The ids are cut and framed here, whatever the file says.
        tokenizer.with_truncation(None).map_err(|e| e.to_string())?;
        tokenizer.with_padding(None);
        Ok(Pieces {
            tokenizer,
            bos,
            eos,
            prefix: prefix.to_string(),
        })
    }

    /// The piece of id `id`.
    #[cfg(test)]
    pub(super) fn piece(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The id of piece `piece`.
    #[cfg(test)]
    pub(super) fn id(&self, piece: &str) -> Option<u32> {
        self.tokenizer.token_to_id(piece)
    }

    /// The ids the model reads for `text`: `<s>`, the pieces of prefix + `text` (at most
    /// `max_tokens - 2`: the first ones), `</s>`. `max_tokens` must be at least
    /// [`MIN_TOKENS`].
    ///
    /// A long text is not tokenized whole: the pieces of a text cut at a whitespace are those
    /// of its uncut words, so the first `max_tokens * 32` bytes (cut at the next whitespace)
    /// are tokenized, and more only if they give too few pieces.
    pub(super) fn ids(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        let want = max_tokens - 2;
        let mut limit = want.saturating_mul(BYTES_PER_PIECE);
        loop {
            let (part, cut) = cut_at_whitespace(text, limit);
            let input = format!("{}{part}", self.prefix);
            let enc = self
                .tokenizer
                .encode_fast(input.as_str(), false)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            let content = enc.get_ids();
            if content.len() >= want || !cut {
                let mut ids = Vec::with_capacity(want.min(content.len()) + 2);
                ids.push(self.bos);
                ids.extend_from_slice(&content[..want.min(content.len())]);
                ids.push(self.eos);
                return Ok(ids);
            }
            limit = limit.saturating_mul(2);
        }
    }
}

/// `text` up to the first whitespace at or after byte `limit` (the whole text if there is
/// none), and whether anything was cut off.
fn cut_at_whitespace(text: &str, limit: usize) -> (&str, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    match text
        .char_indices()
        .find(|&(i, c)| i >= limit && c.is_whitespace())
    {
        Some((i, _)) => (&text[..i], true),
        None => (text, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_at_whitespace_after_the_limit() {
        assert_eq!(cut_at_whitespace("short", 10), ("short", false));
        assert_eq!(cut_at_whitespace("one two three", 2), ("one", true));
        assert_eq!(cut_at_whitespace("one two three", 3), ("one", true));
        assert_eq!(cut_at_whitespace("one two three", 4), ("one two", true));
        assert_eq!(cut_at_whitespace("नमस्ते दुनिया", 4), ("नमस्ते", true));
        assert_eq!(
            cut_at_whitespace("nowhitespace", 3),
            ("nowhitespace", false)
        );
    }
}
