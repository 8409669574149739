//! Reading labeled corpora into [`Example`]s, the label set, and validation splits.
//!
//! Readers know nothing of models: they turn files into `Example { text, label }` and report bad
//! rows with file, line and field. Each format lives in its own submodule behind [`Format`];
//! what they all share (decoding, bad rows, the [`ReadReport`]) lives here.

mod csv;
mod dir;
mod fasttext;
mod jsonl;
mod label_map;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::rng::SplitMix64;

pub use label_map::LabelMap;

/// One labeled document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The article text.
    pub text: String,
    /// Its label (the first, for an example of several labels).
    pub label: String,
    /// Its other labels, for multi-label data ([`ReadOptions::multi_label`]); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_labels: Vec<String>,
}

impl Example {
    /// An example from a text and a label.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Example {
            text: text.into(),
            label: label.into(),
            more_labels: Vec::new(),
        }
    }

    /// An example of several labels (at least one; the first becomes [`Example::label`]).
    pub fn with_labels(text: impl Into<String>, labels: Vec<String>) -> Self {
        let mut labels = labels.into_iter();
        Example {
            text: text.into(),
            label: labels.next().unwrap_or_default(),
            more_labels: labels.collect(),
        }
    }

    /// All its labels, the first first.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.label.as_str()).chain(self.more_labels.iter().map(|l| l.as_str()))
    }
}

/// The file formats khabar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the path: a directory is folder-per-class; `.jsonl`, `.ndjson` and `.json`
    /// are JSON lines, `.csv` is CSV, `.tsv` and `.tab` are TSV, `.txt`, `.ft` and `.fasttext`
    /// are fastText.
    #[default]
    Auto,
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values, RFC 4180 quoting; with or without a header row.
    Csv,
    /// Tab-separated values, quoted like CSV; with or without a header row.
    Tsv,
    /// fastText's format: `__label__sports The text ...`, one example per line.
    Fasttext,
    /// Folder per class: `DIR/<label>/*.txt`, one document per file.
    Dir,
}

/// The format names `--format` accepts, for messages.
const FORMAT_NAMES: &str = "auto, jsonl, csv, tsv, fasttext or dir";

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "tsv" => Ok(Format::Tsv),
            "fasttext" | "ft" => Ok(Format::Fasttext),
            "dir" | "folder" => Ok(Format::Dir),
            other => Err(Error::Usage(format!(
                "unknown format '{other}' (expected {FORMAT_NAMES})"
            ))),
        }
    }
}

/// How to read a corpus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The file format.
    pub format: Format,
    /// The fields whose text is classified; several are joined with a newline (title + body).
    /// For CSV and TSV, a field is a header name or a 1-based column number.
    pub text_fields: Vec<String>,
    /// The field that holds the label (a header name or column number for CSV and TSV).
    pub label_field: String,
    /// CSV/TSV: the first row is data, not a header (fields must be column numbers).
    pub no_header: bool,
    /// Replace invalid UTF-8 with U+FFFD (and count the documents affected) instead of failing.
    pub lossy: bool,
    /// Skip bad rows (empty text, empty or missing label, ...) and count them per reason instead
    /// of failing on the first.
    pub skip_bad: bool,
    /// Renames, merges or drops labels as they are read (see [`LabelMap`]).
    pub label_map: Option<LabelMap>,
    /// Read every label of an example: all the `__label__` words of a fastText line, a JSON
    /// array of labels, or a label field split on `label_separator`. Without it, a fastText
    /// line with several labels is read with its first, and a JSON array is a bad row.
    pub multi_label: bool,
    /// With `multi_label`: the separator of several labels in one label field (CSV, TSV, or
    /// a JSON string), such as `;` or `|`.
    pub label_separator: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: Format::Auto,
            text_fields: vec!["text".into()],
            label_field: "label".into(),
            no_header: false,
            lossy: false,
            skip_bad: false,
            label_map: None,
            multi_label: false,
            label_separator: None,
        }
    }
}

impl ReadOptions {
    fn validate(&self) -> Result<()> {
        if self.text_fields.is_empty() {
            return Err(Error::Usage("give at least one --text-field".into()));
        }
        if self.text_fields.iter().any(|f| f.trim().is_empty())
            || self.label_field.trim().is_empty()
        {
            return Err(Error::Usage(
                "--text-field and --label-field must not be empty".into(),
            ));
        }
        match &self.label_separator {
            Some(_) if !self.multi_label => {
                return Err(Error::Usage(
                    "--label-separator splits the labels of multi-label data: give it with \
                     --multi-label"
                        .into(),
                ))
            }
            Some(sep) if sep.is_empty() => {
                return Err(Error::Usage("--label-separator must not be empty".into()))
            }
            _ => {}
        }
        Ok(())
    }

    fn resolve_format(&self, path: &Path) -> Result<Format> {
        let is_dir = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .is_dir();
        match (self.format, is_dir) {
            (Format::Auto | Format::Dir, true) => return Ok(Format::Dir),
            (_, true) => {
                return Err(Error::Usage(format!(
                    "{} is a folder: read it with --format dir (or auto)",
                    path.display()
                )))
            }
            (Format::Dir, false) => {
                return Err(Error::Usage(format!(
                    "{}: --format dir reads a folder per class, and this is a file",
                    path.display()
                )))
            }
            (Format::Auto, false) => {}
            (format, false) => return Ok(format),
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("jsonl") | Some("ndjson") | Some("json") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            Some("tsv") | Some("tab") => Ok(Format::Tsv),
            Some("txt") | Some("ft") | Some("fasttext") => Ok(Format::Fasttext),
            _ => Err(Error::Usage(format!(
                "{}: cannot tell the format from the file name; pass --format ({FORMAT_NAMES})",
                path.display()
            ))),
        }
    }
}

/// A labeled corpus, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    /// The examples.
    pub examples: Vec<Example>,
    /// The files it was read from.
    pub sources: Vec<PathBuf>,
    /// For each example, the position in [`Corpus::sources`] of the file it was read from
    /// (empty for a corpus built in memory).
    pub source_of: Vec<u32>,
    /// What reading noticed: skipped bad rows, lossy decoding, conflicting duplicates, ...
    /// (empty for a corpus built in memory or split off another).
    pub report: ReadReport,
    /// The label map the labels went through as the corpus was read, if any: a model trained
    /// on the corpus records it, and evaluation applies it to gold labels.
    pub label_map: Option<LabelMap>,
}

impl Corpus {
    /// A corpus from examples held in memory.
    pub fn from_examples(examples: Vec<Example>) -> Self {
        Corpus {
            examples,
            ..Corpus::default()
        }
    }

    /// Reads one file.
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Corpus> {
        Self::read_all(&[path.as_ref().to_path_buf()], options)
    }

    /// Reads several files into one corpus, in the order given. Each file's format is
    /// `options.format`, or decided from its name when that is [`Format::Auto`].
    pub fn read_all(paths: &[PathBuf], options: &ReadOptions) -> Result<Corpus> {
        options.validate()?;
        let mut sink = Sink::new(options);
        for path in paths {
            sink.start_file();
            match options.resolve_format(path)? {
                Format::Jsonl => jsonl::read(path, &mut sink)?,
                Format::Csv => csv::read(path, b',', &mut sink)?,
                Format::Tsv => csv::read(path, b'\t', &mut sink)?,
                Format::Fasttext => fasttext::read(path, &mut sink)?,
                Format::Dir => dir::read(path, &mut sink)?,
                Format::Auto => unreachable!("resolved above"),
            }
            if sink.rows_in_file == 0 {
                let message = match (sink.skipped_in_file, &sink.hint_in_file) {
                    (0, _) => "no examples in this file".to_string(),
                    (n, None) => format!("no examples in this file ({n} bad rows skipped)"),
                    (n, Some(hint)) => {
                        format!("no examples in this file ({n} bad rows skipped); {hint}")
                    }
                };
                return Err(Error::input(Location::new(path, 0), message));
            }
        }
        let (examples, source_of, report) = sink.finish();
        if examples.is_empty() {
            return Err(Error::Usage(format!(
                "no examples left: the label map dropped all {} of them",
                report.dropped_by_label_map
            )));
        }
        Ok(Corpus {
            examples,
            sources: paths.to_vec(),
            source_of,
            report,
            label_map: options.label_map.clone(),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Number of examples per label, in label order.
    pub fn label_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.examples {
            for label in e.labels() {
                *counts.entry(label).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Splits off a stratified validation set: about `fraction` of each label's examples (at
    /// least one from each label that has two or more), chosen by `seed`; the copies of a text
    /// given more than once go with its first. Returns `(train, valid)`, each in the original
    /// order.
    pub fn stratified_split(&self, fraction: f64, seed: u64) -> (Corpus, Corpus) {
        // A text given more than once goes where its first copy goes, so that no validation
        // article is also a training one.
        let mut first: std::collections::HashMap<&str, usize> = Default::default();
        let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.examples.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(v) = first.entry(e.text.as_str()) {
                v.insert(i);
                by_label.entry(e.label.as_str()).or_default().push(i);
            }
        }
        let mut rng = SplitMix64::new(seed ^ 0x5eed_0000_0000_0001);
        let mut in_valid = vec![false; self.examples.len()];
        for indices in by_label.values_mut() {
            rng.shuffle(indices);
            let n = indices.len();
            let mut k = (n as f64 * fraction).round() as usize;
            if n >= 2 {
                k = k.clamp(1, n - 1);
            } else {
                k = 0;
            }
            for &i in &indices[..k] {
                in_valid[i] = true;
            }
        }
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        let (mut train_from, mut valid_from) = (Vec::new(), Vec::new());
        for (i, e) in self.examples.iter().enumerate() {
            let (to, from) = if in_valid[first[e.text.as_str()]] {
                (&mut valid, &mut valid_from)
            } else {
                (&mut train, &mut train_from)
            };
            to.push(e.clone());
            if let Some(&s) = self.source_of.get(i) {
                from.push(s);
            }
        }
        (
            Corpus {
                examples: train,
                sources: self.sources.clone(),
                source_of: train_from,
                report: ReadReport::default(),
                label_map: self.label_map.clone(),
            },
            Corpus {
                examples: valid,
                sources: self.sources.clone(),
                source_of: valid_from,
                report: ReadReport::default(),
                label_map: self.label_map.clone(),
            },
        )
    }
}

/// Why a row was not turned into an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadRow {
    /// The text is empty or only whitespace.
    EmptyText,
    /// A text field is absent (or JSON null).
    MissingText,
    /// The label is empty or only whitespace.
    EmptyLabel,
    /// The label field is absent (or JSON null); a fastText line without `__label__`.
    MissingLabel,
    /// A CSV/TSV row with more or fewer columns than the others.
    WrongColumns,
    /// A JSON lines row that is not a JSON object.
    NotJson,
    /// A JSON field of the wrong type (an array where a string belongs, ...).
    WrongType,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadRow::EmptyText => "empty text",
            BadRow::MissingText => "missing text",
            BadRow::EmptyLabel => "empty label",
            BadRow::MissingLabel => "missing label",
            BadRow::WrongColumns => "wrong number of columns",
            BadRow::NotJson => "not a JSON object",
            BadRow::WrongType => "wrong field type",
        })
    }
}

/// Bad rows of one kind that were skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// How many.
    pub count: usize,
    /// Where the first one was.
    pub first: Location,
}

/// A text that appears more than once with different labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The text.
    pub text: String,
    /// Each label it carries, with where it first carries it.
    pub labels: Vec<(String, Location)>,
}

/// What reading a corpus noticed beside the examples. The CLI prints it on stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Bad rows skipped with [`ReadOptions::skip_bad`], per reason.
    pub skipped: BTreeMap<BadRow, Skipped>,
    /// fastText lines with more than one label (each was read with its first).
    pub multi_label_lines: usize,
    /// Examples dropped because the label map sends their label to null.
    pub dropped_by_label_map: usize,
    /// Labels the label map names that no example carried (a typo?).
    pub unused_map_entries: Vec<String>,
    /// Documents whose invalid UTF-8 was replaced with U+FFFD ([`ReadOptions::lossy`]).
    pub lossy_documents: usize,
    /// Texts that appear more than once with different labels (exact duplicates).
    pub conflicting_texts: usize,
    /// The first few of them.
    pub conflicts: Vec<Conflict>,
    /// Decisions the reader made that the user may want to know about (a guessed header row,
    /// ...), one line each.
    pub notes: Vec<String>,
}

/// How many conflicting duplicates a report keeps as examples.
const CONFLICT_EXAMPLES: usize = 3;

impl ReadReport {
    /// Number of bad rows skipped, all reasons together.
    pub fn skipped_rows(&self) -> usize {
        self.skipped.values().map(|s| s.count).sum()
    }

    /// Things the user should know about the data, one message each (some span several
    /// lines); empty when there is nothing to say.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.skipped.is_empty() {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(why, s)| format!("{} {why} (first at {})", s.count, s.first))
                .collect();
            out.push(format!(
                "skipped {} bad rows: {}",
                self.skipped_rows(),
                reasons.join(", ")
            ));
        }
        if self.lossy_documents > 0 {
            out.push(format!(
                "replaced invalid UTF-8 with U+FFFD in {} document(s)",
                self.lossy_documents
            ));
        }
        if !self.unused_map_entries.is_empty() {
            out.push(format!(
                "the label map names label(s) that no example has: {}",
                self.unused_map_entries.join(", ")
            ));
        }
        if self.multi_label_lines > 0 {
            out.push(format!(
                "{} line(s) have more than one label; each was read with its first \
                 (--multi-label reads them all and trains a multi-label model)",
                self.multi_label_lines
            ));
        }
        if self.conflicting_texts > 0 {
            let mut message = format!(
                "{} text(s) appear more than once with different labels, for example:",
                self.conflicting_texts
            );
            for c in &self.conflicts {
                let labels: Vec<String> = c
                    .labels
                    .iter()
                    .map(|(label, at)| format!("{label} ({at})"))
                    .collect();
                message.push_str(&format!("\n  {}: {}", snippet(&c.text), labels.join(", ")));
            }
            out.push(message);
        }
        out
    }
}

/// The start of a text on one line, for messages.
fn snippet(text: &str) -> String {
    const MAX: usize = 60;
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX) {
        Some((i, _)) => format!("\"{}…\"", &flat[..i]),
        None => format!("\"{flat}\""),
    }
}

/// Where an example came from, for messages about it.
struct Origin {
    file: Arc<Path>,
    line: usize,
    /// The file's position among those read.
    source: u32,
}

/// What the readers write into: examples with their origins, bad rows (an error, or counted
/// and skipped), lossy decoding. Every format goes through it, so every format treats bad input
/// the same way.
pub(crate) struct Sink<'a> {
    options: &'a ReadOptions,
    examples: Vec<Example>,
    origins: Vec<Origin>,
    report: ReadReport,
    /// Whether the row being read had bytes replaced by lossy decoding.
    row_lossy: bool,
    rows_in_file: usize,
    skipped_in_file: usize,
    /// How many files were started: the current one's position is one less.
    files: u32,
    /// The fix suggested by the first skipped row of the file that had one (a field to name).
    hint_in_file: Option<String>,
    /// The labels the label map matched.
    mapped: std::collections::BTreeSet<String>,
}

impl<'a> Sink<'a> {
    fn new(options: &'a ReadOptions) -> Self {
        Sink {
            options,
            examples: Vec::new(),
            origins: Vec::new(),
            report: ReadReport::default(),
            row_lossy: false,
            rows_in_file: 0,
            skipped_in_file: 0,
            files: 0,
            hint_in_file: None,
            mapped: Default::default(),
        }
    }

    fn start_file(&mut self) {
        self.files += 1;
        self.rows_in_file = 0;
        self.skipped_in_file = 0;
        self.hint_in_file = None;
    }

    /// The options being read with.
    pub(crate) fn options(&self) -> &'a ReadOptions {
        self.options
    }

    /// Decodes bytes of the current row as UTF-8: borrowed when valid; with `lossy`, bad bytes
    /// become U+FFFD and the row counts as lossy; otherwise the error `on_error` makes.
    pub(crate) fn decode<'b>(
        &mut self,
        bytes: &'b [u8],
        on_error: impl FnOnce(std::str::Utf8Error) -> Error,
    ) -> Result<Cow<'b, str>> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Cow::Borrowed(s)),
            Err(_) if self.options.lossy => {
                self.row_lossy = true;
                Ok(String::from_utf8_lossy(bytes))
            }
            Err(e) => Err(on_error(e)),
        }
    }

    /// A bad row: an error naming it, or (with `skip_bad`) counted and skipped.
    pub(crate) fn bad(
        &mut self,
        at: Location,
        why: BadRow,
        message: impl Into<String>,
    ) -> Result<()> {
        self.bad_with_hint(at, why, message, None)
    }

    /// [`Sink::bad`] for a row whose likely fix is not to skip it but something else (`hint`:
    /// another field to name, say): the error suggests that instead of `--skip-bad`, and a file
    /// whose every row is skipped says it too.
    pub(crate) fn bad_with_hint(
        &mut self,
        at: Location,
        why: BadRow,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Result<()> {
        self.row_lossy = false;
        if !self.options.skip_bad {
            let message = message.into();
            return Err(Error::input(
                at,
                match hint {
                    Some(hint) => format!("{message}; {hint}"),
                    None => format!("{message} (--skip-bad skips bad rows)"),
                },
            ));
        }
        if self.hint_in_file.is_none() {
            self.hint_in_file = hint;
        }
        self.skipped_in_file += 1;
        self.report
            .skipped
            .entry(why)
            .or_insert(Skipped {
                count: 0,
                first: at,
            })
            .count += 1;
        Ok(())
    }

    /// A good row: `label` is already trimmed and not empty, `text` not blank. The label map
    /// applies here, so it applies to every format alike.
    pub(crate) fn push(&mut self, file: &Arc<Path>, line: usize, text: String, label: String) {
        self.push_labels(file, line, text, vec![label]);
    }

    /// The labels of one label field: split on the separator of multi-label data when there
    /// is one, each trimmed, the empty ones left out.
    pub(crate) fn split_labels(&self, field: &str) -> Vec<String> {
        match (&self.options.label_separator, self.options.multi_label) {
            (Some(sep), true) => field
                .split(sep.as_str())
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            _ => [field.trim()]
                .into_iter()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    /// An example with its labels (at least one): each goes through the label map; labels
    /// given twice count once; an example whose labels the map all drops is dropped.
    pub(crate) fn push_labels(
        &mut self,
        file: &Arc<Path>,
        line: usize,
        text: String,
        labels: Vec<String>,
    ) {
        self.rows_in_file += 1;
        if std::mem::take(&mut self.row_lossy) {
            self.report.lossy_documents += 1;
        }
        let mut kept: Vec<String> = Vec::with_capacity(labels.len());
        for label in labels {
            let label = match self.options.label_map.as_ref().and_then(|m| m.get(&label)) {
                None => label,
                Some(to) => {
                    if !self.mapped.contains(&label) {
                        self.mapped.insert(label.clone());
                    }
                    match to {
                        Some(to) => to.to_string(),
                        None => continue,
                    }
                }
            };
            if !kept.contains(&label) {
                kept.push(label);
            }
        }
        if kept.is_empty() {
            self.report.dropped_by_label_map += 1;
            return;
        }
        self.examples.push(Example::with_labels(text, kept));
        self.origins.push(Origin {
            file: file.clone(),
            line,
            source: self.files.saturating_sub(1),
        });
    }

    /// The examples, the position of each one's file among those read, and the report.
    fn finish(mut self) -> (Vec<Example>, Vec<u32>, ReadReport) {
        if let Some(map) = &self.options.label_map {
            self.report.unused_map_entries = map
                .sources()
                .filter(|l| !self.mapped.contains(*l))
                .map(|l| l.to_string())
                .collect();
            if self.report.dropped_by_label_map > 0 {
                self.report.notes.push(format!(
                    "the label map dropped {} example(s)",
                    self.report.dropped_by_label_map
                ));
            }
        }
        self.find_conflicts();
        let source_of = self.origins.iter().map(|o| o.source).collect();
        (self.examples, source_of, self.report)
    }

    /// Finds exact-duplicate texts that carry different labels.
    fn find_conflicts(&mut self) {
        let mut first: ahash::AHashMap<&str, usize> = ahash::AHashMap::new();
        // First occurrence -> the later occurrences whose label differs from it.
        let mut conflicts: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.examples.iter().enumerate() {
            let f = *first.entry(e.text.as_str()).or_insert(i);
            if !same_labels(&self.examples[f], e) {
                conflicts.entry(f).or_default().push(i);
            }
        }
        self.report.conflicting_texts = conflicts.len();
        let at = |i: usize| Location::new(&self.origins[i].file, self.origins[i].line);
        // An example of several labels is named by all of them: "grain+wheat".
        let name = |i: usize| self.examples[i].labels().collect::<Vec<_>>().join("+");
        for (&f, later) in conflicts.iter().take(CONFLICT_EXAMPLES) {
            let mut labels = vec![(name(f), at(f))];
            for &i in later {
                let n = name(i);
                if !labels.iter().any(|(l, _)| *l == n) {
                    labels.push((n, at(i)));
                }
            }
            self.report.conflicts.push(Conflict {
                text: self.examples[f].text.clone(),
                labels,
            });
        }
    }
}

/// Whether two examples carry the same labels, in any order.
fn same_labels(a: &Example, b: &Example) -> bool {
    if a.more_labels.is_empty() && b.more_labels.is_empty() {
        return a.label == b.label;
    }
    fn sorted(e: &Example) -> Vec<&str> {
        let mut v: Vec<&str> = e.labels().collect();
        v.sort_unstable();
        v
    }
    sorted(a) == sorted(b)
}

/// Calls `row` with each non-blank line of a line-oriented file: its 1-based number and its
/// text without the line end, after a byte-order mark is dropped and the bytes are decoded as
/// `sink` says (strict or lossy UTF-8).
pub(crate) fn for_each_line(
    path: &Path,
    sink: &mut Sink,
    mut row: impl FnMut(&mut Sink, usize, &str) -> Result<()>,
) -> Result<()> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        let bytes = if line_no == 1 {
            strip_bom(&buf)
        } else {
            buf.as_slice()
        };
        let line = sink.decode(bytes, |e| utf8_line_error(path, line_no, e))?;
        let line = line.trim_end_matches(['\n', '\r']);
        if !line.trim().is_empty() {
            row(sink, line_no, line)?;
        }
    }
}

/// The error for invalid UTF-8 in a whole file: the line and byte offset of the first bad byte.
pub(crate) fn utf8_error(path: &Path, bytes: &[u8], e: std::str::Utf8Error) -> Error {
    let offset = e.valid_up_to();
    let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    Error::input(
        Location::new(path, line),
        format!("invalid UTF-8 at byte {offset} of the file (--lossy replaces bad bytes)"),
    )
}

/// The error for invalid UTF-8 in one line of a line-oriented file.
pub(crate) fn utf8_line_error(path: &Path, line: usize, e: std::str::Utf8Error) -> Error {
    Error::input(
        Location::new(path, line),
        format!(
            "invalid UTF-8 at byte {} of the line (--lossy replaces bad bytes)",
            e.valid_up_to()
        ),
    )
}

/// Strips a UTF-8 byte-order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Joins the parts of a text (title + body) with a newline.
pub(crate) fn join_text<'s>(parts: impl IntoIterator<Item = &'s str>) -> String {
    let mut text = String::new();
    for part in parts {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(part);
    }
    text
}
