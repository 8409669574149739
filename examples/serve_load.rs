//! A closed-loop load generator for `khabar serve` (bench/serve_load.py runs it): `--clients`
//! threads, each on one keep-alive connection, send `POST /v1/classify` with `--batch`
//! articles taken in turn from `--input` (JSON lines with a "text" field, or plain text lines),
//! and wait for each answer before sending the next. Prints one JSON line: requests,
//! documents, errors (any status but 200, or a broken connection), documents/s and latency
//! percentiles.
//!
//! ```text
//! cargo run --release --example serve_load -- --addr 127.0.0.1:8080 --input test.jsonl \
//!     --clients 8 --seconds 20 [--batch 1] [--warmup 2]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    addr: String,
    input: String,
    clients: usize,
    seconds: f64,
    batch: usize,
    warmup: f64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:8080".into(),
        input: String::new(),
        clients: 1,
        seconds: 10.0,
        batch: 1,
        warmup: 2.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--addr" => o.addr = value,
            "--input" => o.input = value,
            "--clients" => o.clients = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => o.seconds = value.parse().map_err(|e| bad(&e))?,
            "--batch" => o.batch = value.parse().map_err(|e| bad(&e))?,
            "--warmup" => o.warmup = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.input.is_empty() || o.clients == 0 || o.batch == 0 {
        return Err("give --input FILE, and --clients and --batch of at least 1".into());
    }
    Ok(o)
}

/// The articles of `path`: a JSON line's "text", or a plain line.
fn read_texts(path: &str) -> Result<Vec<String>, String> {
    let content = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let texts: Vec<String> = content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) if v["text"].is_string() => v["text"].as_str().unwrap().to_string(),
            _ => l.to_string(),
        })
        .collect();
    if texts.is_empty() {
        return Err(format!("{path}: no articles"));
    }
    Ok(texts)
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    documents: usize,
    errors: usize,
}

/// Sends one request on `stream` and reads its answer; the status.
fn round_trip(stream: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<u16> {
    stream.get_mut().write_all(request)?;
    let mut line = String::new();
    stream.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(status)
}

fn client(o: Arc<Options>, texts: Arc<Vec<String>>, offset: usize, start: Instant) -> Seen {
    let mut seen = Seen::default();
    let warm_until = start + Duration::from_secs_f64(o.warmup);
    let end = warm_until + Duration::from_secs_f64(o.seconds);
    let mut next = offset * 7919 % texts.len();
    let mut stream: Option<BufReader<TcpStream>> = None;
    while Instant::now() < end {
        let batch: Vec<&str> = (0..o.batch)
            .map(|i| texts[(next + i) % texts.len()].as_str())
            .collect();
        next = (next + o.batch) % texts.len();
        let body = serde_json::json!({ "texts": batch }).to_string();
        let request = format!(
            "POST /v1/classify HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            o.addr,
            body.len()
        );
        let sent = Instant::now();
        if stream.is_none() {
            match TcpStream::connect(&o.addr) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(BufReader::new(s));
                }
                Err(_) => {
                    seen.errors += 1;
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let result = round_trip(stream.as_mut().unwrap(), request.as_bytes());
        let counted = sent >= warm_until;
        match result {
            Ok(200) if counted => {
                seen.latencies_us.push(sent.elapsed().as_micros() as u64);
                seen.documents += o.batch;
            }
            Ok(200) => {}
            Ok(_) => seen.errors += usize::from(counted),
            Err(_) => {
                seen.errors += usize::from(counted);
                stream = None;
            }
        }
    }
    seen
}

fn main() {
    let o = match options() {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let texts = match read_texts(&o.input) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..o.clients)
        .map(|i| {
            let (o, texts) = (Arc::clone(&o), Arc::clone(&texts));
            std::thread::spawn(move || client(o, texts, i, start))
        })
        .collect();
    let mut all = Seen::default();
    for h in handles {
        let seen = h.join().expect("client thread");
        all.latencies_us.extend(seen.latencies_us);
        all.documents += seen.documents;
        all.errors += seen.errors;
    }
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i =
            ((all.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, all.latencies_us.len());
        all.latencies_us[i - 1] as f64 / 1000.0
    };
    let line = serde_json::json!({
        "clients": o.clients,
        "batch": o.batch,
        "seconds": o.seconds,
        "requests": all.latencies_us.len(),
        "documents": all.documents,
        "errors": all.errors,
        "docs_per_s": all.documents as f64 / o.seconds,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    });
    println!("{line}");
}
