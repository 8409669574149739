//! fastText's format: one example per line, `__label__sports __label__cricket The text ...`.
//!
//! The labels are the `__label__` words at the start of the line. Until khabar has multi-label
//! models, a line with several labels is read with its first, and the report counts such lines.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use super::{strip_bom, utf8_line_error, BadRow, Sink};
use crate::error::{Error, Location, Result};

/// The prefix that marks a label.
const PREFIX: &str = "__label__";

/// Reads a fastText corpus. Blank lines are skipped; a byte-order mark and CRLF are accepted.
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
        if line.trim().is_empty() {
            continue;
        }
        let (labels, text) = split_labels(&line);
        let Some(&label) = labels.first() else {
            sink.bad(
                at(),
                BadRow::MissingLabel,
                "no __label__ at the start of the line",
            )?;
            continue;
        };
        if label.is_empty() {
            sink.bad(
                at(),
                BadRow::EmptyLabel,
                "empty label (__label__ with no name)",
            )?;
            continue;
        }
        if text.is_empty() {
            sink.bad(at(), BadRow::EmptyText, "empty text")?;
            continue;
        }
        if labels.len() > 1 {
            sink.report.multi_label_lines += 1;
        }
        let (text, label) = (text.to_string(), label.to_string());
        sink.push(&shared, line_no, text, label);
    }
    Ok(())
}

/// The leading `__label__` words of a line (without the prefix), and the text after them,
/// trimmed.
fn split_labels(line: &str) -> (Vec<&str>, &str) {
    let mut labels = Vec::new();
    let mut rest = line.trim();
    while let Some(after) = rest.strip_prefix(PREFIX) {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        labels.push(&after[..end]);
        rest = after[end..].trim_start();
    }
    (labels, rest)
}

#[cfg(test)]
mod tests {
    use super::split_labels;

    #[test]
    fn labels_are_the_leading_prefixed_words() {
        assert_eq!(
            split_labels("__label__a __label__b  some __label__c text\r\n"),
            (vec!["a", "b"], "some __label__c text")
        );
        assert_eq!(split_labels("__label__a"), (vec!["a"], ""));
        assert_eq!(split_labels("__label__ x"), (vec![""], "x"));
        assert_eq!(split_labels("no label"), (vec![], "no label"));
    }
}
