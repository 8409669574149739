//! The vocabulary pieces a sample of text uses, for pruning the encoder's vocabulary
//! (`models/encoder/README.md`).
//!
//! ```text
//! cargo run --release --example encoder_pieces -- FULL_TOKENIZER_JSON CORPUS.jsonl... > PIECES
//! ```
//!
//! Tokenizes the `text` field of every line of every JSON-lines file with the encoder's full
//! (unpruned) `tokenizer.json` and writes the ids of the pieces seen, as ascending ranges
//! `first-last` (or a single id) one per line, after `#` comment lines. Only these ids are
//! derived from the corpora; no text is written.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};

use rayon::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((tokenizer, files)) = args.split_first() else {
        return Err("usage: encoder_pieces FULL_TOKENIZER_JSON CORPUS.jsonl...".into());
    };
    let tok = tokenizers::Tokenizer::from_file(tokenizer).map_err(|e| e.to_string())?;
    let mut seen = vec![false; tok.get_vocab_size(true)];
    let (mut texts, mut tokens) = (0usize, 0usize);
    for file in files {
        let reader = std::io::BufReader::new(std::fs::File::open(file)?);
        let lines: Vec<String> = reader.lines().collect::<Result<_, _>>()?;
        let ids: Vec<Vec<u32>> = lines
            .par_iter()
            .filter_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                let text = v.get("text")?.as_str()?;
                let enc = tok.encode(format!("query: {text}"), false).ok()?;
                Some(enc.get_ids().to_vec())
            })
            .collect();
        texts += ids.len();
        for doc in &ids {
            tokens += doc.len();
            for &id in doc {
                seen[id as usize] = true;
            }
        }
        eprintln!("{file}: {} texts", ids.len());
    }
    let kept: BTreeSet<usize> = (0..seen.len()).filter(|&i| seen[i]).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "# Pieces of the encoder's vocabulary seen when tokenizing \"query: \" + text of {texts} \
         texts ({tokens} tokens) from {} files: {} ids of {}.",
        files.len(),
        kept.len(),
        seen.len()
    )?;
    writeln!(
        out,
        "# Written by examples/encoder_pieces.rs; ranges first-last, ascending."
    )?;
    let ids: Vec<usize> = kept.into_iter().collect();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        if i == j {
            writeln!(out, "{}", ids[i])?;
        } else {
            writeln!(out, "{}-{}", ids[i], ids[j])?;
        }
        i = j + 1;
    }
    Ok(())
}
