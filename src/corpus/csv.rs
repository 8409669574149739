//! CSV and TSV: one row per example, fields by header name or by 1-based column number.
//!
//! Quoted fields may hold delimiters, quotes (doubled) and newlines; rows report the line they
//! start on. Whether the first row is a header is decided from the field options: it is one when
//! the named fields are among its cells (`--text-field title`), never with `no_header`, and,
//! when every field is a column number, when its label cell looks like a column name rather
//! than a class (a word that appears nowhere else in a column whose values repeat).

use std::path::Path;
use std::sync::Arc;

use super::{join_text, strip_bom, utf8_error, BadRow, Sink};
use crate::error::{Error, Location, Result};

/// Reads a CSV (`delimiter` b',') or TSV (b'\t') corpus.
pub(super) fn read(path: &Path, delimiter: u8, sink: &mut Sink) -> Result<()> {
    let options = sink.options();
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = strip_bom(&raw);
    if !options.lossy {
        std::str::from_utf8(bytes).map_err(|e| utf8_error(path, bytes, e))?;
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    // Rows with the line each starts on. csv's own line count misses newlines inside quoted
    // fields, so lines are counted here from the rows' byte offsets.
    let mut records = Vec::new();
    let mut lines = LineCounter::default();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_at(bytes, p.byte()));
            Error::input(Location::new(path, line), e.to_string())
        })?;
        let line = record
            .position()
            .map_or(0, |p| lines.line_at(bytes, p.byte()));
        records.push((line, record));
    }
    let Some((_, first)) = records.first() else {
        return Ok(());
    };
    let first: Vec<String> = first
        .iter()
        .map(|cell| String::from_utf8_lossy(cell).trim().to_string())
        .collect();
    let layout = Layout::decide(path, &first, &records, sink)?;
    let label_name = layout.label.name.as_str();
    let text_name = layout
        .text
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let shared: Arc<Path> = Arc::from(path);
    let skip = usize::from(layout.header);
    for (line, record) in &records[skip..] {
        let line = *line;
        let at = || Location::new(path, line);
        if record.len() != layout.columns {
            let message = format!(
                "expected {} columns, found {}",
                layout.columns,
                record.len()
            );
            sink.bad(at(), BadRow::WrongColumns, message)?;
            continue;
        }
        let invalid = |_| Error::input(at(), "invalid UTF-8");
        let label = sink.decode(&record[layout.label.index], invalid)?;
        let labels = sink.split_labels(&label);
        if labels.is_empty() {
            sink.bad(at().field(label_name), BadRow::EmptyLabel, "empty label")?;
            continue;
        }
        let mut parts = Vec::with_capacity(layout.text.len());
        for column in &layout.text {
            parts.push(sink.decode(&record[column.index], invalid)?);
        }
        let text = join_text(parts.iter().map(|p| p.as_ref()));
        if text.trim().is_empty() {
            sink.bad(at().field(&text_name), BadRow::EmptyText, "empty text")?;
            continue;
        }
        sink.push_labels(&shared, line, text, labels);
    }
    Ok(())
}

/// Line numbers from byte offsets, for offsets that only grow.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: usize,
}

impl LineCounter {
    /// The 1-based line of the row csv says starts at byte `offset` of `bytes`. csv's offset
    /// can point at the line end before the row (the LF of a CRLF), so line ends are skipped:
    /// blank lines are not rows, and a row never starts with one.
    fn line_at(&mut self, bytes: &[u8], offset: u64) -> usize {
        let mut offset = (offset as usize).clamp(self.offset, bytes.len());
        while offset < bytes.len() && matches!(bytes[offset], b'\r' | b'\n') {
            offset += 1;
        }
        self.newlines += bytes[self.offset..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.offset = offset;
        self.newlines + 1
    }
}

/// A column the options name: its 0-based index, and the name messages use.
struct Column {
    index: usize,
    name: String,
}

/// Where the text and label are, and what a good row looks like.
struct Layout {
    header: bool,
    columns: usize,
    text: Vec<Column>,
    label: Column,
}

/// A field option that is a column number (1-based), if it is one.
fn column_number(field: &str) -> Option<usize> {
    field.trim().parse::<usize>().ok()
}

impl Layout {
    fn decide(
        path: &Path,
        first: &[String],
        records: &[(usize, csv::ByteRecord)],
        sink: &mut Sink,
    ) -> Result<Layout> {
        let options = sink.options();
        let fields: Vec<&str> = options
            .text_fields
            .iter()
            .chain(std::iter::once(&options.label_field))
            .map(|f| f.as_str())
            .collect();
        let at_first_row = || Location::new(path, 1);
        let named: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| column_number(f).is_none())
            .collect();
        let header = if options.no_header {
            if let Some(name) = named.first() {
                return Err(Error::Usage(format!(
                    "{}: with --no-header, name columns by number (1-based), such as \
                     --text-field 2 --label-field 1 (got '{name}')",
                    path.display()
                )));
            }
            false
        } else if !named.is_empty() {
            let missing: Vec<&str> = named
                .iter()
                .copied()
                .filter(|f| !first.iter().any(|cell| cell == f))
                .collect();
            if missing.len() == named.len() {
                return Err(Error::input(
                    at_first_row(),
                    format!(
                        "no header row naming {} (the first row reads: {}); if the file has no \
                         header, pass column numbers: --text-field N --label-field M",
                        quoted(&named),
                        preview(first)
                    ),
                ));
            }
            if !missing.is_empty() {
                return Err(Error::input(
                    at_first_row(),
                    format!(
                        "no column named {} in the header (columns: {})",
                        quoted(&missing),
                        preview(first)
                    ),
                ));
            }
            true
        } else {
            let label = column_number(&options.label_field).unwrap_or(0);
            let guess = looks_like_header(first, records, label.wrapping_sub(1));
            if guess {
                sink.report.notes.push(format!(
                    "{}: took the first row ({}) as a header: its label cell appears nowhere \
                     else; pass --no-header to read it as data",
                    path.display(),
                    preview(first)
                ));
            }
            guess
        };
        let columns = if header {
            first.len()
        } else {
            most_common_length(records)
        };
        let column = |field: &str| -> Result<Column> {
            if header {
                if let Some(index) = first.iter().position(|cell| cell == field) {
                    return Ok(Column {
                        index,
                        name: field.to_string(),
                    });
                }
            }
            match column_number(field) {
                Some(n) if (1..=columns).contains(&n) => Ok(Column {
                    index: n - 1,
                    name: field.trim().to_string(),
                }),
                _ => Err(Error::Usage(format!(
                    "{}: column {field} does not exist: columns are numbered 1 to {columns}",
                    path.display()
                ))),
            }
        };
        Ok(Layout {
            header,
            columns,
            text: options
                .text_fields
                .iter()
                .map(|f| column(f))
                .collect::<Result<_>>()?,
            label: column(&options.label_field)?,
        })
    }
}

/// Whether a first row whose fields are all given by number is a header: its label cell is a
/// word (not a number) that appears in no other row, while the other rows' labels repeat (they
/// are classes, not free text).
fn looks_like_header(first: &[String], records: &[(usize, csv::ByteRecord)], label: usize) -> bool {
    let Some(cell) = first.get(label) else {
        return false;
    };
    if cell.is_empty() || cell.parse::<f64>().is_ok() {
        return false;
    }
    let mut others = ahash::AHashSet::new();
    let mut rows = 0;
    for (_, record) in &records[1..] {
        if let Some(value) = record.get(label) {
            let value = String::from_utf8_lossy(value);
            let value = value.trim();
            if value == cell {
                return false;
            }
            rows += 1;
            others.insert(value.to_string());
        }
    }
    others.len() < rows
}

/// The number of columns most rows have (the first such count, on a tie).
fn most_common_length(records: &[(usize, csv::ByteRecord)]) -> usize {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for (_, record) in records {
        match counts.iter_mut().find(|(len, _)| *len == record.len()) {
            Some((_, n)) => *n += 1,
            None => counts.push((record.len(), 1)),
        }
    }
    let best = counts.iter().map(|&(_, n)| n).max().unwrap_or(0);
    counts
        .iter()
        .find(|&&(_, n)| n == best)
        .map_or(0, |&(len, _)| len)
}

fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    names.join(" and ")
}

/// The cells of a row, shortened, for messages.
fn preview(cells: &[String]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| {
            let short: String = c.chars().take(24).collect();
            if short.len() < c.len() {
                format!("\"{short}…\"")
            } else {
                format!("\"{short}\"")
            }
        })
        .collect();
    cells.join(", ")
}
