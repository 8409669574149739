//! Reading labeled corpora into [`Example`]s, the label set, and validation splits.
//!
//! Readers know nothing of models: they turn files into `Example { text, label }` and report bad
//! rows with file, line and field. Each format lives in its own submodule behind [`Format`].

mod jsonl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// One labeled document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The article text.
    pub text: String,
    /// Its label.
    pub label: String,
}

impl Example {
    /// An example from a text and a label.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Self {
        Example {
            text: text.into(),
            label: label.into(),
        }
    }
}

/// The file formats khabar reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide from the file name: `.jsonl`, `.ndjson` and `.json` are JSON lines.
    #[default]
    Auto,
    /// One JSON object per line.
    Jsonl,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Format::Auto),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            other => Err(Error::Usage(format!(
                "unknown format '{other}' (expected auto or jsonl)"
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
    pub text_fields: Vec<String>,
    /// The field that holds the label.
    pub label_field: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: Format::Auto,
            text_fields: vec!["text".into()],
            label_field: "label".into(),
        }
    }
}

impl ReadOptions {
    fn resolve_format(&self, path: &Path) -> Result<Format> {
        if self.format != Format::Auto {
            return Ok(self.format);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("jsonl") | Some("ndjson") | Some("json") => Ok(Format::Jsonl),
            _ => Err(Error::Usage(format!(
                "{}: cannot tell the format from the file name; pass --format jsonl",
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
}

impl Corpus {
    /// A corpus from examples held in memory.
    pub fn from_examples(examples: Vec<Example>) -> Self {
        Corpus {
            examples,
            sources: Vec::new(),
        }
    }

    /// Reads one file.
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Corpus> {
        Self::read_all(&[path.as_ref().to_path_buf()], options)
    }

    /// Reads several files into one corpus, in the order given.
    pub fn read_all(paths: &[PathBuf], options: &ReadOptions) -> Result<Corpus> {
        let mut corpus = Corpus::default();
        for path in paths {
            let examples = match options.resolve_format(path)? {
                Format::Jsonl => jsonl::read(path, options)?,
                Format::Auto => unreachable!("resolved above"),
            };
            if examples.is_empty() {
                return Err(Error::input(
                    crate::error::Location::new(path, 0),
                    "no examples in this file",
                ));
            }
            corpus.examples.extend(examples);
            corpus.sources.push(path.clone());
        }
        Ok(corpus)
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
            *counts.entry(e.label.as_str()).or_insert(0) += 1;
        }
        counts
    }

    /// Splits off a stratified validation set: about `fraction` of each label's examples (at
    /// least one from each label that has two or more), chosen by `seed`. Returns
    /// `(train, valid)`, each in the original order.
    pub fn stratified_split(&self, fraction: f64, seed: u64) -> (Corpus, Corpus) {
        let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.examples.iter().enumerate() {
            by_label.entry(e.label.as_str()).or_default().push(i);
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
        for (i, e) in self.examples.iter().enumerate() {
            if in_valid[i] {
                valid.push(e.clone());
            } else {
                train.push(e.clone());
            }
        }
        (
            Corpus {
                examples: train,
                sources: self.sources.clone(),
            },
            Corpus {
                examples: valid,
                sources: self.sources.clone(),
            },
        )
    }
}
