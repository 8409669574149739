//! `khabar predict`: articles from the arguments, a file or stdin, classified in batches and
//! written as text or JSON lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use khabar::model::MultiLabel;
use khabar::{Error, Explanation, Location, Result};

use super::args::{OutputFormat, PredictArgs};
use super::{encodings_dir, given, io_error, load_chosen, own_threshold};

/// Whether a file's name says it holds JSON lines (as `train`'s automatic format decides).
fn is_json_lines(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["jsonl", "ndjson", "json"]
            .iter()
            .any(|j| e.eq_ignore_ascii_case(j))
    })
}

pub fn predict(a: PredictArgs, matches: &clap::ArgMatches) -> Result<()> {
    // --text-field names a field of JSON lines: on stdin it says the input is JSON lines; for
    // articles given as arguments or a plain text file it would be ignored, so it is refused.
    let field_given = given(matches, "text_field");
    if field_given && !a.texts.is_empty() {
        return Err(Error::Usage(
            "--text-field names a field of JSON lines input; articles given as arguments are \
             plain text"
                .into(),
        ));
    }
    if let Some(p) = a.input.as_ref().filter(|p| p.as_os_str() != "-") {
        if field_given && !is_json_lines(p) {
            return Err(Error::Usage(format!(
                "--text-field names a field of JSON lines input; {} is read as plain text, one \
                 article per line (JSON lines files end in .jsonl, .ndjson or .json)",
                p.display()
            )));
        }
    }
    if a.id_field.is_some() && !a.texts.is_empty() {
        return Err(Error::Usage(
            "--id-field names a field of JSON lines input; articles given as arguments are \
             plain text"
                .into(),
        ));
    }
    if a.top_k == 0 {
        return Err(Error::Usage("--top-k must be at least 1".into()));
    }
    if let Some(p) = a.threshold {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--threshold must be a probability between 0 and 1 (got {p})"
            )));
        }
    }
    if !a.texts.is_empty() && a.input.is_some() {
        return Err(Error::Usage(
            "give articles either as arguments or with --input, not both".into(),
        ));
    }
    let load_start = std::time::Instant::now();
    let clf = load_chosen(&a.model, a.threads)?
        .with_encoding_cache(a.cache_dir.as_deref().map(encodings_dir));
    if clf.is_multi_label() && (a.threshold.is_some() || a.unsure) {
        return Err(Error::Usage(
            "--threshold and --unsure apply to single-label models; a multi-label model answers \
             every label over its own threshold, chosen at training"
                .into(),
        ));
    }
    let unsure = Unsure {
        below: if a.unsure {
            Some(own_threshold(&clf)?)
        } else {
            a.threshold
        },
        label: a.unsure_label.as_str(),
        multi: clf.config().multi_label.as_ref(),
    };
    if a.explain.is_some() {
        // A model that cannot be explained is refused before any input is read.
        clf.explain_batch::<&str>(&[], 0)?;
    }
    // The probabilities of a batch of articles, and their explanations when asked for (the
    // encoder reading each article once).
    let classify = |texts: &[String]| -> Result<(Vec<Vec<f32>>, Vec<Explanation>)> {
        match a.explain {
            Some(n) => clf.probabilities_and_explanations(texts, n),
            None => Ok((clf.probabilities_batch(texts)?, Vec::new())),
        }
    };
    let loaded = std::time::Instant::now();
    if a.verbose {
        eprintln!(
            "model loaded in {:.3} s",
            (loaded - load_start).as_secs_f64()
        );
    }
    let mut count = 0usize;
    let report = |count: usize| {
        if a.verbose {
            let secs = loaded.elapsed().as_secs_f64();
            eprintln!(
                "classified {count} articles in {secs:.3} s ({:.0} articles/s, {} threads)",
                count as f64 / secs.max(1e-9),
                clf.threads()
            );
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stdout_path = Path::new("<stdout>");
    let labels = clf.labels();
    let mut top = Vec::with_capacity(a.top_k);
    let mut emit = |probs: &[Vec<f32>], explained: &[Explanation]| -> Result<()> {
        for (i, p) in probs.iter().enumerate() {
            top_k(p, a.top_k, &mut top);
            let why = explained.get(i);
            write_prediction(&mut out, labels, p, &top, a.output, None, unsure, why)
                .map_err(|e| io_error(stdout_path, e))?;
        }
        out.flush().map_err(|e| io_error(stdout_path, e))
    };
    if !a.texts.is_empty() {
        let (probs, explained) = classify(&a.texts)?;
        emit(&probs, &explained)?;
        report(a.texts.len());
        return Ok(());
    }
    let (path, reader): (PathBuf, Box<dyn Read>) = match &a.input {
        Some(p) if p.as_os_str() != "-" => {
            let f = std::fs::File::open(p).map_err(|e| io_error(p, e))?;
            (p.clone(), Box::new(f))
        }
        _ => (PathBuf::from("<stdin>"), Box::new(std::io::stdin())),
    };
    // On stdin, naming a field (--text-field, --id-field) says the input is JSON lines.
    let jsonl = match &a.input {
        Some(p) if p.as_os_str() != "-" => is_json_lines(p),
        _ => field_given || a.id_field.is_some(),
    };
    if a.id_field.is_some() && !jsonl {
        return Err(Error::Usage(format!(
            "--id-field names a field of JSON lines input; {} is read as plain text",
            path.display()
        )));
    }
    let streaming = !matches!(&a.input, Some(p) if p.as_os_str() != "-");
    let mut lines = LineReader {
        reader: BufReader::with_capacity(1 << 16, reader),
        streaming,
        path,
        jsonl,
        field: a.text_field.clone(),
        id_field: a.id_field.clone(),
        line: 0,
        buf: Vec::new(),
        lossy: a.lossy,
        repaired: 0,
    };
    // The articles of one batch (their buffers reused from one batch to the next), and every
    // line of the batch in order, bad ones included.
    let mut texts = vec![String::new(); CHUNK];
    let mut batch: Vec<Line> = Vec::with_capacity(CHUNK);
    let (mut bad, mut end) = (0usize, false);
    while !end {
        batch.clear();
        let mut n = 0;
        // A batch ends when it is full, or when stdin's next line has not arrived yet: input
        // that comes slowly (a co-process feeding stdin) is answered line by line.
        while n < CHUNK {
            match lines.next_into(&mut texts[n])? {
                None => {
                    end = true;
                    break;
                }
                Some(line) => {
                    n += usize::from(line.error.is_none());
                    batch.push(line);
                }
            }
            if !lines.has_more_now() {
                break;
            }
        }
        let (probs, explained) = classify(&texts[..n])?;
        let mut next = probs.iter();
        let mut next_why = explained.iter();
        for line in batch.drain(..) {
            let Some(error) = line.error else {
                let p = next.next().expect("a result for each article");
                top_k(p, a.top_k, &mut top);
                write_prediction(
                    &mut out,
                    labels,
                    p,
                    &top,
                    a.output,
                    line.id.as_ref(),
                    unsure,
                    next_why.next(),
                )
                .map_err(|e| io_error(stdout_path, e))?;
                count += 1;
                continue;
            };
            bad += 1;
            let at = Location::new(&lines.path, line.number);
            let at = match &error.field {
                Some(f) => at.field(f),
                None => at,
            };
            if a.skip_bad {
                if bad <= 10 {
                    eprintln!("skipped {at}: {}", error.message);
                }
            } else if a.output == OutputFormat::Jsonl {
                let mut v = serde_json::json!({
                    "line": line.number,
                    "error": format!("{at}: {}", error.message),
                });
                if let Some(id) = line.id {
                    v["id"] = id;
                }
                writeln!(out, "{v}").map_err(|e| io_error(stdout_path, e))?;
            } else {
                // Everything before the bad line has been written.
                out.flush().map_err(|e| io_error(stdout_path, e))?;
                return Err(input_error(
                    at,
                    format!(
                        "{} (--skip-bad skips such lines; --output jsonl writes an error \
                         object for each)",
                        error.message
                    ),
                ));
            }
        }
        out.flush().map_err(|e| io_error(stdout_path, e))?;
    }
    if lines.repaired > 0 {
        eprintln!(
            "note: {} line(s) held invalid UTF-8, replaced with U+FFFD (--lossy)",
            lines.repaired
        );
    }
    if bad > 0 {
        let what = if a.skip_bad {
            "skipped"
        } else {
            "answered with an error object"
        };
        eprintln!("warning: {bad} line(s) could not be classified and were {what}");
    }
    report(count);
    Ok(())
}

/// Articles classified per batch when input comes fast: large enough to use every core, small
/// enough to keep memory flat.
const CHUNK: usize = 1024;

/// One line of the input: an article (its text is in the batch's buffers) or a line that
/// cannot be classified.
struct Line {
    /// 1-based line number.
    number: usize,
    /// The `--id-field` value, when the line has one.
    id: Option<serde_json::Value>,
    error: Option<LineError>,
}

/// What is wrong with a line.
struct LineError {
    field: Option<String>,
    message: String,
}

/// Reads articles one per line (plain text, or a JSON object with a text field).
struct LineReader {
    reader: BufReader<Box<dyn Read>>,
    /// stdin, where the next line may be a while coming (a file's never is).
    streaming: bool,
    path: PathBuf,
    jsonl: bool,
    field: String,
    id_field: Option<String>,
    line: usize,
    buf: Vec<u8>,
    /// Replace invalid UTF-8 instead of failing; lines so repaired.
    lossy: bool,
    repaired: usize,
}

impl LineReader {
    /// Whether reading the next line will not wait for input to arrive: a file's next line,
    /// or stdin's when it is already read and waiting.
    fn has_more_now(&self) -> bool {
        !self.streaming || !self.reader.buffer().is_empty()
    }

    /// Reads the next line: its article's text goes to `out`. `None` at the end of the input.
    fn next_into(&mut self, out: &mut String) -> Result<Option<Line>> {
        out.clear();
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| io_error(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let mut line = Line {
            number: self.line,
            id: None,
            error: None,
        };
        let mut bytes = self.buf.as_slice();
        if self.line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let fail = |field: Option<&str>, message: String| LineError {
            field: field.map(String::from),
            message,
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) if self.lossy => {
                self.repaired += 1;
                String::from_utf8_lossy(bytes)
            }
            Err(e) => {
                // Not a line-level fault the reader can step over: the input is not text.
                return Err(input_error(
                    Location::new(&self.path, self.line),
                    format!(
                        "invalid UTF-8 at byte {} of the line (--lossy replaces it)",
                        e.valid_up_to()
                    ),
                ));
            }
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if !self.jsonl {
            out.push_str(text);
            return Ok(Some(line));
        }
        if text.trim().is_empty() {
            line.error = Some(fail(None, "blank line: expected a JSON object".into()));
            return Ok(Some(line));
        }
        let object = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(o)) => o,
            Ok(_) => {
                line.error = Some(fail(None, "expected a JSON object".into()));
                return Ok(Some(line));
            }
            Err(e) => {
                line.error = Some(fail(None, format!("not valid JSON: {e}")));
                return Ok(Some(line));
            }
        };
        if let Some(id_field) = &self.id_field {
            line.id = object.get(id_field).cloned();
        }
        match object.get(&self.field) {
            Some(serde_json::Value::String(s)) => out.push_str(s),
            Some(_) => line.error = Some(fail(Some(&self.field), "expected a string".into())),
            None => {
                let mut keys: Vec<&str> = object.keys().map(|k| k.as_str()).collect();
                keys.sort_unstable();
                line.error = Some(fail(
                    Some(&self.field),
                    format!(
                        "missing; the line's keys are {}: name the text's field with \
                         --text-field NAME",
                        keys.join(", ")
                    ),
                ));
            }
        }
        Ok(Some(line))
    }
}

/// A malformed line of the input, at `at`.
fn input_error(at: Location, message: impl Into<String>) -> Error {
    Error::Input {
        at,
        message: message.into(),
    }
}

/// Writes a probability with four decimals, as `{:.4}` does, without the general float
/// formatter (a tenth of the prediction time on short texts). `x * 10000` is exact in f64, and
/// ties (such as 0.03125) go to the even neighbour, as `{:.4}` rounds.
fn write_score(out: &mut impl Write, x: f32) -> std::io::Result<()> {
    if !(x.is_sign_positive() && x <= 1.0) {
        return write!(out, "{x:.4}");
    }
    let v = (x as f64 * 10_000.0).round_ties_even() as u32;
    // "d.dddd" (v is at most 10,000), without the formatting machinery.
    let digit = |d: u32| b'0' + (d % 10) as u8;
    out.write_all(&[
        digit(v / 10_000),
        b'.',
        digit(v / 1_000),
        digit(v / 100),
        digit(v / 10),
        digit(v),
    ])
}

/// The indices of the `k` most probable labels, best first (ties: the earlier label), as
/// [`khabar::Prediction::top`] orders them.
fn top_k(probs: &[f32], k: usize, out: &mut Vec<usize>) {
    out.clear();
    for _ in 0..k.min(probs.len()) {
        let mut best: Option<usize> = None;
        for (i, &p) in probs.iter().enumerate() {
            if out.contains(&i) {
                continue;
            }
            if best.is_none_or(|b| p.total_cmp(&probs[b]).is_gt()) {
                best = Some(i);
            }
        }
        out.extend(best);
    }
}

/// How the answer is decided: the answer when the best label is not probable enough
/// (`--threshold`), or a multi-label model's thresholds.
#[derive(Clone, Copy)]
struct Unsure<'a> {
    below: Option<f32>,
    label: &'a str,
    multi: Option<&'a MultiLabel>,
}

/// One line of `predict` output: the labels of `top` with their probabilities; below the
/// threshold, the first label is the unsure answer (with the best label's probability). With
/// an explanation (of the best label), in text an indented line for each feature listed and
/// one for the sum; in JSON an "explain" member.
#[allow(clippy::too_many_arguments)]
fn write_prediction(
    out: &mut impl Write,
    labels: &[String],
    probs: &[f32],
    top: &[usize],
    format: OutputFormat,
    id: Option<&serde_json::Value>,
    unsure: Unsure,
    why: Option<&Explanation>,
) -> std::io::Result<()> {
    if let Some(m) = unsure.multi {
        return write_labels(out, labels, probs, top, format, id, m, why);
    }
    let best = probs[top[0]];
    let unsure = unsure
        .below
        .is_some_and(|p| best < p)
        .then_some(unsure.label);
    let label_of = |n: usize, i: usize| match unsure {
        Some(u) if n == 0 => u,
        _ => labels[i].as_str(),
    };
    match format {
        OutputFormat::Text => {
            write_id(out, id)?;
            let pairs = top
                .iter()
                .enumerate()
                .map(|(n, &i)| (label_of(n, i), probs[i]));
            write_pairs(out, pairs)?;
            match why {
                Some(e) => write_explanation(out, e),
                None => Ok(()),
            }
        }
        OutputFormat::Jsonl => {
            let mut v = serde_json::json!({
                "label": label_of(0, top[0]),
                "score": best,
                "top": top
                    .iter()
                    .map(|&i| serde_json::json!({"label": labels[i], "score": probs[i]}))
                    .collect::<Vec<_>>(),
            });
            if let Some(id) = id {
                v["id"] = id.clone();
            }
            if let Some(e) = why {
                v["explain"] = serde_json::to_value(e).expect("plain values");
            }
            writeln!(out, "{v}")
        }
    }
}

/// One line of a multi-label model's `predict` output: every label over its threshold with its
/// score (text: `label<TAB>score` pairs; none over: the best label in parentheses, `(earn)`,
/// with its score); in JSON, "labels" (those over), "label" and "score" (the best),
/// "below_threshold", and the `--top-k` labels in "top".
#[allow(clippy::too_many_arguments)]
fn write_labels(
    out: &mut impl Write,
    labels: &[String],
    scores: &[f32],
    top: &[usize],
    format: OutputFormat,
    id: Option<&serde_json::Value>,
    multi: &MultiLabel,
    why: Option<&Explanation>,
) -> std::io::Result<()> {
    let chosen = multi.chosen(scores);
    let best = top[0];
    match format {
        OutputFormat::Text => {
            write_id(out, id)?;
            if chosen.is_empty() {
                let flagged = format!("({})", labels[best]);
                write_pairs(out, std::iter::once((flagged.as_str(), scores[best])))?;
            } else {
                write_pairs(out, chosen.iter().map(|&i| (labels[i].as_str(), scores[i])))?;
            }
            match why {
                Some(e) => write_explanation(out, e),
                None => Ok(()),
            }
        }
        OutputFormat::Jsonl => {
            let pair = |i: usize| serde_json::json!({"label": labels[i], "score": scores[i]});
            let mut v = serde_json::json!({
                "labels": chosen.iter().map(|&i| pair(i)).collect::<Vec<_>>(),
                "label": labels[best],
                "score": scores[best],
                "below_threshold": chosen.is_empty(),
                "top": top.iter().map(|&i| pair(i)).collect::<Vec<_>>(),
            });
            if let Some(id) = id {
                v["id"] = id.clone();
            }
            if let Some(e) = why {
                v["explain"] = serde_json::to_value(e).expect("plain values");
            }
            writeln!(out, "{v}")
        }
    }
}

/// The id column of a text output line (`--id-field`), when there is one.
fn write_id(out: &mut impl Write, id: Option<&serde_json::Value>) -> std::io::Result<()> {
    match id {
        Some(serde_json::Value::String(s)) => out.write_all(s.as_bytes())?,
        Some(v) => write!(out, "{v}")?,
        None => return Ok(()),
    }
    out.write_all(b"\t")
}

/// The rest of a text output line: `label<TAB>score` pairs, tab-separated, and the line end.
fn write_pairs<'a>(
    out: &mut impl Write,
    pairs: impl Iterator<Item = (&'a str, f32)>,
) -> std::io::Result<()> {
    for (n, (label, score)) in pairs.enumerate() {
        if n > 0 {
            out.write_all(b"\t")?;
        }
        out.write_all(label.as_bytes())?;
        out.write_all(b"\t")?;
        write_score(out, score)?;
    }
    out.write_all(b"\n")
}

/// An explanation under its prediction line: `  + 0.412  word "budget"` for each feature
/// listed, then how the logit adds up.
fn write_explanation(out: &mut impl Write, e: &Explanation) -> std::io::Result<()> {
    for c in e.raised.iter().chain(&e.lowered) {
        let sign = if c.weight < 0.0 { '-' } else { '+' };
        writeln!(out, "  {sign} {:.3}  {c}", c.weight.abs())?;
    }
    writeln!(
        out,
        "  = {:.3}  logit of {}: bias {:+.3}, other features {:+.3}",
        e.logit, e.label, e.bias, e.other
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast score formatter writes what `{:.4}` writes, on a spread of values and at the
    /// rounding boundaries.
    #[test]
    fn scores_are_written_as_format_writes_them() {
        let mut values: Vec<f32> = vec![0.0, 1.0, 0.5, 0.99995, 0.00005, 0.12345, 1e-9, -0.0];
        // SplitMix64 from seed 7, uniform in [0, 1) with 24 bits (the library's generator).
        let mut state = 7u64;
        let mut next_f32 = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        };
        values.extend((0..200_000).map(|_| next_f32()));
        values.extend((0..=20_000).map(|i| i as f32 / 20_000.0));
        for x in values {
            let mut out = Vec::new();
            write_score(&mut out, x).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{x:.4}"), "{x:e}");
        }
    }
}
