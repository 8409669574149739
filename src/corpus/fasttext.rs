//! fastText's format: one example per line, `__label__sports __label__cricket The text ...`.
//!
//! The labels are the `__label__` words at the start of the line. A line with several labels
//! is read with all of them for multi-label data ([`ReadOptions::multi_label`]), and otherwise
//! with its first, the report counting such lines.
//!
//! [`ReadOptions::multi_label`]: super::ReadOptions::multi_label

use std::path::Path;
use std::sync::Arc;

use super::{for_each_line, BadRow, Sink};
use crate::error::{Location, Result};

/// The prefix that marks a label.
const PREFIX: &str = "__label__";

/// Reads a fastText corpus. Blank lines are skipped; a byte-order mark and CRLF are accepted.
pub(super) fn read(path: &Path, sink: &mut Sink) -> Result<()> {
    let shared: Arc<Path> = Arc::from(path);
    for_each_line(path, sink, |sink, line_no, line| {
        let at = || Location::new(path, line_no);
        let (labels, text) = split_labels(line);
        if labels.is_empty() {
            let message = "no __label__ at the start of the line";
            return sink.bad(at(), BadRow::MissingLabel, message);
        }
        if labels.iter().any(|l| l.is_empty()) {
            let message = "empty label (__label__ with no name)";
            return sink.bad(at(), BadRow::EmptyLabel, message);
        }
        if text.is_empty() {
            return sink.bad(at(), BadRow::EmptyText, "empty text");
        }
        let labels: Vec<String> = if sink.options().multi_label {
            labels.iter().map(|l| l.to_string()).collect()
        } else {
            if labels.len() > 1 {
                sink.report.multi_label_lines += 1;
            }
            vec![labels[0].to_string()]
        };
        sink.push_labels(&shared, line_no, text.to_string(), labels);
        Ok(())
    })
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
