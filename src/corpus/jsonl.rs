//! JSON lines: one object per line, `{"text": ..., "label": ...}` or other field names.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{join_text, strip_bom, utf8_line_error, BadRow, Sink};
use crate::error::{Error, Location, Result};

/// Reads a JSONL corpus. Blank lines are skipped; a UTF-8 byte-order mark and CRLF line ends are
/// accepted. Every other problem is a bad row naming the line and field.
pub(super) fn read(path: &Path, sink: &mut Sink) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let shared: Arc<Path> = Arc::from(path);
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let at = || Location::new(path, line_no);
        let bytes = if line_no == 1 {
            strip_bom(&buf)
        } else {
            buf.as_slice()
        };
        let line = sink.decode(bytes, |e| utf8_line_error(path, line_no, e))?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                sink.bad(at(), BadRow::NotJson, "expected a JSON object")?;
                continue;
            }
            Err(e) => {
                sink.bad(at(), BadRow::NotJson, format!("not valid JSON: {e}"))?;
                continue;
            }
        };
        if let Some((text, label)) = row(&object, &at, sink)? {
            sink.push(&shared, line_no, text, label);
        }
    }
    Ok(())
}

/// The text and label of one object, or `None` when it is a bad row that was skipped.
fn row(
    object: &Map<String, Value>,
    at: &dyn Fn() -> Location,
    sink: &mut Sink,
) -> Result<Option<(String, String)>> {
    let options = sink.options();
    let label_field = options.label_field.as_str();
    let label = match object.get(label_field) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Null) | None => {
            sink.bad(at().field(label_field), BadRow::MissingLabel, "missing")?;
            return Ok(None);
        }
        Some(_) => {
            let message = "expected a string or a number";
            sink.bad(at().field(label_field), BadRow::WrongType, message)?;
            return Ok(None);
        }
    };
    if label.is_empty() {
        sink.bad(at().field(label_field), BadRow::EmptyLabel, "empty label")?;
        return Ok(None);
    }

    let mut parts = Vec::with_capacity(options.text_fields.len());
    for field in &options.text_fields {
        match object.get(field) {
            Some(Value::String(s)) => parts.push(s.as_str()),
            Some(Value::Null) | None => {
                sink.bad(at().field(field), BadRow::MissingText, "missing")?;
                return Ok(None);
            }
            Some(_) => {
                sink.bad(at().field(field), BadRow::WrongType, "expected a string")?;
                return Ok(None);
            }
        }
    }
    let text = join_text(parts);
    if text.trim().is_empty() {
        let field = options.text_fields.join("+");
        sink.bad(at().field(&field), BadRow::EmptyText, "empty text")?;
        return Ok(None);
    }
    Ok(Some((text, label)))
}
