//! JSON lines: one object per line, `{"text": ..., "label": ...}` or other field names.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::{Example, ReadOptions};
use crate::error::{Error, Location, Result};

/// Reads a JSONL corpus. Blank lines are skipped; a UTF-8 byte-order mark and CRLF line ends are
/// accepted. Every other problem is an error naming the line and field.
pub(super) fn read(path: &Path, options: &ReadOptions) -> Result<Vec<Example>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut examples = Vec::new();
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
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let line = std::str::from_utf8(bytes).map_err(|e| {
            Error::input(
                at(),
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to()),
            )
        })?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| Error::input(at(), format!("not valid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| Error::input(at(), "expected a JSON object"))?;

        let mut text = String::new();
        for field in &options.text_fields {
            let part = match object.get(field) {
                Some(Value::String(s)) => s.as_str(),
                Some(Value::Null) | None => {
                    return Err(Error::input(at().field(field), "missing"));
                }
                Some(_) => {
                    return Err(Error::input(at().field(field), "expected a string"));
                }
            };
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(part);
        }
        if text.trim().is_empty() {
            let field = options.text_fields.join("+");
            return Err(Error::input(at().field(&field), "empty text"));
        }

        let label_field = options.label_field.as_str();
        let label = match object.get(label_field) {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Null) | None => {
                return Err(Error::input(at().field(label_field), "missing"));
            }
            Some(_) => {
                return Err(Error::input(
                    at().field(label_field),
                    "expected a string or a number",
                ));
            }
        };
        if label.is_empty() {
            return Err(Error::input(at().field(label_field), "empty label"));
        }
        examples.push(Example { text, label });
    }
    Ok(examples)
}
