//! Folder per class: `DIR/<label>/*.txt`, one document per file, the folder name as its label.
//!
//! Files directly in DIR (a README) are not documents. Inside a class folder, files that do not
//! end in `.txt` and subfolders are ignored, and a note says how many. Folders and files are
//! read in name order, so a corpus reads the same on every machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{strip_bom, utf8_error, BadRow, Sink};
use crate::error::{Error, Location, Result};

/// Reads a folder-per-class corpus.
pub(super) fn read(dir: &Path, sink: &mut Sink) -> Result<()> {
    let classes: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if classes.is_empty() {
        return Err(Error::input(
            Location::new(dir, 0),
            "no class folders here (a folder-per-class corpus is DIR/<label>/*.txt)",
        ));
    }
    let mut ignored: Vec<PathBuf> = Vec::new();
    for class in classes {
        let name = class.file_name().unwrap_or_default();
        let Some(label) = name.to_str().map(|s| s.trim().to_string()) else {
            return Err(Error::input(
                Location::new(&class, 0),
                "the folder name (the label) is not UTF-8",
            ));
        };
        for file in sorted_entries(&class)? {
            let is_txt = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
            if !is_txt || file.is_dir() {
                ignored.push(file);
                continue;
            }
            let raw = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
            let bytes = strip_bom(&raw);
            let text = sink.decode(bytes, |e| utf8_error(&file, bytes, e))?;
            if text.trim().is_empty() {
                sink.bad(Location::new(&file, 0), BadRow::EmptyText, "empty text")?;
                continue;
            }
            let text = text.into_owned();
            sink.push(&Arc::from(file.as_path()), 0, text, label.clone());
        }
    }
    if let Some(first) = ignored.first() {
        sink.report.notes.push(format!(
            "{}: ignored {} entries in class folders that are not .txt files (the first: {})",
            dir.display(),
            ignored.len(),
            first.display()
        ));
    }
    Ok(())
}

/// The entries of a folder, without hidden ones (names starting with '.'), in name order.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}
