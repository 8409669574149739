//! JSON lines: one object per line, `{"text": ..., "label": ...}` or other field names.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{for_each_line, join_text, BadRow, Sink};
use crate::error::{Location, Result};

/// Reads a JSONL corpus. Blank lines are skipped; a UTF-8 byte-order mark and CRLF line ends are
/// accepted. Every other problem is a bad row naming the line and field.
pub(super) fn read(path: &Path, sink: &mut Sink) -> Result<()> {
    let shared: Arc<Path> = Arc::from(path);
    for_each_line(path, sink, |sink, line_no, line| {
        let at = || Location::new(path, line_no);
        let object = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return sink.bad(at(), BadRow::NotJson, "expected a JSON object"),
            Err(e) => return sink.bad(at(), BadRow::NotJson, format!("not valid JSON: {e}")),
        };
        if let Some((text, labels)) = row(&object, &at, sink)? {
            sink.push_labels(&shared, line_no, text, labels);
        }
        Ok(())
    })
}

/// The text and labels of one object, or `None` when it is a bad row that was skipped.
fn row(
    object: &Map<String, Value>,
    at: &dyn Fn() -> Location,
    sink: &mut Sink,
) -> Result<Option<(String, Vec<String>)>> {
    let options = sink.options();
    let label_field = options.label_field.as_str();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let labels = match object.get(label_field) {
        Some(Value::String(s)) => sink.split_labels(s),
        Some(Value::Number(n)) => vec![n.to_string()],
        Some(Value::Bool(b)) => vec![b.to_string()],
        Some(Value::Array(items)) if options.multi_label => {
            match items.iter().map(scalar).collect::<Option<Vec<String>>>() {
                Some(labels) => labels.into_iter().filter(|l| !l.is_empty()).collect(),
                None => {
                    let message = "expected an array of strings or numbers";
                    sink.bad(at().field(label_field), BadRow::WrongType, message)?;
                    return Ok(None);
                }
            }
        }
        Some(Value::Array(_)) => {
            let message = "an array of labels: read several labels per example with --multi-label";
            sink.bad(at().field(label_field), BadRow::WrongType, message)?;
            return Ok(None);
        }
        Some(Value::Null) | None => {
            let hint = field_hint(object, Role::Label);
            sink.bad_with_hint(
                at().field(label_field),
                BadRow::MissingLabel,
                "missing",
                Some(hint),
            )?;
            return Ok(None);
        }
        Some(_) => {
            let message = if options.multi_label {
                "expected a string, a number or an array of them"
            } else {
                "expected a string or a number"
            };
            sink.bad(at().field(label_field), BadRow::WrongType, message)?;
            return Ok(None);
        }
    };
    if labels.is_empty() {
        sink.bad(at().field(label_field), BadRow::EmptyLabel, "empty label")?;
        return Ok(None);
    }

    let mut parts = Vec::with_capacity(options.text_fields.len());
    for field in &options.text_fields {
        match object.get(field) {
            Some(Value::String(s)) => parts.push(s.as_str()),
            Some(Value::Null) | None => {
                let hint = field_hint(object, Role::Text);
                sink.bad_with_hint(
                    at().field(field),
                    BadRow::MissingText,
                    "missing",
                    Some(hint),
                )?;
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
    Ok(Some((text, labels)))
}

/// What a field holds: the label or the text.
#[derive(Clone, Copy)]
enum Role {
    Label,
    Text,
}

/// Names that usually hold a label, or a text, most likely first.
const LABEL_NAMES: [&str; 10] = [
    "label", "labels", "category", "topic", "class", "section", "tag", "target", "genre", "y",
];
const TEXT_NAMES: [&str; 11] = [
    "text",
    "body",
    "content",
    "article",
    "story",
    "document",
    "description",
    "summary",
    "headline",
    "title",
    "sentence",
];

/// What to do about a row without the field for its label or text: the keys the row has, and
/// the option that names one of them (the likeliest, when a key has a usual name).
fn field_hint(object: &Map<String, Value>, role: Role) -> String {
    let fits = |v: &Value| match role {
        Role::Label => matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)),
        Role::Text => matches!(v, Value::String(_)),
    };
    let (option, names) = match role {
        Role::Label => ("--label-field", &LABEL_NAMES[..]),
        Role::Text => ("--text-field", &TEXT_NAMES[..]),
    };
    let mut keys: Vec<&str> = object.keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    let shown = match keys.len() {
        0 => "the row has no keys".to_string(),
        n if n <= 12 => format!("the row's keys are {}", keys.join(", ")),
        n => format!("the row has {n} keys: {}, ...", keys[..12].join(", ")),
    };
    let likely = names.iter().find_map(|name| {
        object
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && fits(v))
            .map(|(k, _)| k.as_str())
    });
    match likely {
        Some(k) => format!("{shown}: to read '{k}', pass {option} {k}"),
        None => format!("{shown}: name the field with {option} NAME"),
    }
}
