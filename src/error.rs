//! One error type for the whole crate. The library never panics on bad input: every failure a
//! user can cause comes back as an [`Error`] whose message names the file, line and field where
//! that applies.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in an input file something went wrong: `file:line` plus, optionally, the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number; 0 when the problem concerns the whole file.
    pub line: usize,
    /// The field, when one field is at fault.
    pub field: Option<String>,
}

impl Location {
    /// A location at `line` of `path` (0: the whole file).
    pub fn new(path: &Path, line: usize) -> Self {
        Location {
            path: path.to_path_buf(),
            line,
            field: None,
        }
    }

    /// The same location, naming a field.
    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field '{field}'")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in khabar.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },

    /// A row of an input corpus is malformed (bad JSON, missing or empty field, ...).
    #[error("{at}: {message}")]
    Input {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },

    /// Options or arguments that cannot work together, or data that cannot train a model
    /// (for example a corpus with a single label).
    #[error("{0}")]
    Usage(String),

    /// A hyperparameter or setting out of its range, or settings that cannot work together.
    /// `field` is the name of the setting in its configuration type (and in `config.json`);
    /// the command line names the matching option instead.
    #[error("{field} {reason}")]
    Config {
        /// The setting at fault, as named in its configuration type (`ngram_order`).
        field: &'static str,
        /// What is wrong, phrased to follow the setting's name ("must be between 1 and 6").
        reason: String,
    },

    /// Something that should not happen did: a bug in khabar, not something the user can fix.
    #[error("internal error: {0}; please report this as a bug")]
    Internal(String),

    /// A model bundle is missing, damaged or of an unsupported version.
    #[error("model bundle {}: {message}", path.display())]
    Bundle {
        /// The bundle directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The subword tokenizer failed to train, load or encode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A tensor operation failed inside candle.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),

    /// Training was interrupted (Ctrl-C); nothing was saved.
    #[error("interrupted; no model was written")]
    Interrupted,
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn input(at: Location, message: impl Into<String>) -> Self {
        Error::Input {
            at,
            message: message.into(),
        }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn bundle(path: &Path, message: impl Into<String>) -> Self {
        Error::Bundle {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// The process exit code the CLI uses for this error: 2 for bad usage, settings or input (the
    /// user can fix it), 130 for an interruption, 1 for everything else (I/O, internal errors).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Usage(_) | Error::Config { .. } | Error::Bundle { .. } => {
                2
            }
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 2,
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}

/// `Result` with khabar's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
