//! The encoder's load time, memory and speed (`models/encoder/README.md`).
//!
//! ```text
//! cargo run --release --example encoder_speed -- [ENCODER_DIR] [DATA_DIR] [TOKENS]
//! ```
//!
//! Defaults: `models/encoder`, `../shared/data`, 8,000. Loads the encoder, then embeds the first
//! test texts of ag_news cut at 64 pieces and of bbc_en cut at 256 pieces (as many texts as make
//! TOKENS real tokens, `<s>` and `</s>` included, padding not), on 1 and on 2 threads, and prints
//! real tokens per second (tokenization included), the best of two rounds.
//! Memory: the process's resident size after loading and its peak, from `/proc/self/status`.
//! The load average before and after is printed too: on a shared machine, other work slows it.

use std::path::PathBuf;
use std::time::Instant;

use khabar::model::encoder::Encoder;

fn status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// The first texts of `file` whose ids, cut at `max_tokens`, add up to `tokens` (or more).
fn texts(e: &Encoder, file: &PathBuf, max_tokens: usize, tokens: usize) -> (Vec<String>, usize) {
    let all = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (mut out, mut n) = (Vec::new(), 0);
    for line in all.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let text = v["text"].as_str().expect("a text field").to_string();
        n += e.token_ids(&text, max_tokens).expect("tokenizes").len();
        out.push(text);
        if n >= tokens {
            break;
        }
    }
    (out, n)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().map_or("models/encoder", String::as_str);
    let data = PathBuf::from(args.get(1).map_or("../shared/data", String::as_str));
    let tokens: usize = args.get(2).map_or(8000, |s| s.parse().expect("TOKENS"));

    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load().trim());
    let t = Instant::now();
    let mut encoder = Encoder::load(dir).expect("the encoder loads");
    println!(
        "load: {:.2} s; weights in memory {:.0} MB; resident after load {}",
        t.elapsed().as_secs_f64(),
        encoder.weights_size() as f64 / 1e6,
        status("VmRSS:")
    );
    let cases = [
        (data.join("ag_news/test.jsonl"), 64),
        (data.join("bbc_en/test.jsonl"), 256),
    ];
    for (file, max_tokens) in cases {
        let (texts, n) = texts(&encoder, &file, max_tokens, tokens);
        for threads in [1, 2] {
            encoder = encoder.with_threads(Some(threads));
            let mut best = f64::INFINITY;
            for _ in 0..2 {
                let t = Instant::now();
                encoder.embed(&texts, max_tokens).expect("embeds");
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{max_tokens} pieces, {threads} thread(s): {} texts, {n} tokens, {:.0} tokens/s",
                texts.len(),
                n as f64 / best
            );
        }
    }
    println!("peak resident: {}", status("VmHWM:"));
    println!("load average after: {}", load().trim());
}
