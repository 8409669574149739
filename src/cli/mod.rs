//! The `khabar` command line: the glue between clap's arguments and the library, one file per
//! subcommand. Errors are mapped to exit codes in one place ([`main`]): 0 success, 2 bad usage
//! or bad input, 1 other.

use std::path::{Path, PathBuf};

use khabar::model::{Mode, Model};
use khabar::{Classifier, Corpus, Error, ReadOptions, Result};

use args::{Cli, Command};

mod args;
mod compact;
mod eval;
mod info;
mod predict;
mod progress;
#[cfg(feature = "serve")]
mod serve;
mod train;

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    // Output piped into a reader that stops early (`khabar info | head`) makes `println!`
    // panic: that ends the command quietly, as a closed pipe does for `predict`.
    static CLOSED_STDOUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            CLOSED_STDOUT.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
        eprintln!("error: internal error ({msg}); please report this as a bug");
    }));
    let parsed = <Cli as clap::CommandFactory>::command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli, &matches))) {
        Ok(Ok(())) => 0,
        Ok(Err(Error::Io { source, .. })) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Ok(Err(e)) => {
            eprintln!("error: {}", message(&e));
            e.exit_code()
        }
        Err(_) if CLOSED_STDOUT.load(std::sync::atomic::Ordering::SeqCst) => 0,
        Err(_) => 1,
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<()> {
    let (_, sub) = matches.subcommand().expect("clap requires a subcommand");
    match cli.command {
        Command::Train(a) => train::train(*a, sub),
        Command::Predict(a) => predict::predict(a, sub),
        Command::Eval(a) => eval::eval(a),
        Command::Info(a) => info::info(a),
        Command::Compact(a) => compact::compact(a),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::serve(a),
    }
}

/// The settings that the library names in its errors ([`Error::Config`]) whose option is not
/// the setting's name with dashes.
const OPTION_NAMES: [(&str, &str); 2] = [("ngram_order", "ngrams"), ("learning_rate", "lr")];

/// The settings a [`Error::Config`] reason may name besides its own field.
const SETTINGS: [&str; 6] = ["dim", "loss", "heads", "d_model", "max_len", "stride"];

/// The command-line option of a library setting: `ngram_order` is `--ngrams`.
fn option(field: &str) -> String {
    let name = OPTION_NAMES
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, o)| o.to_string())
        .unwrap_or_else(|| field.replace('_', "-"));
    format!("--{name}")
}

/// The error as the command line says it: settings named by their options.
fn message(e: &Error) -> String {
    match e {
        Error::Config { field, reason } => {
            let reason = reason
                .split(' ')
                .map(|word| {
                    if SETTINGS.contains(&word) {
                        option(word)
                    } else {
                        word.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            format!("{} {reason}", option(field))
        }
        e => e.to_string(),
    }
}

/// Whether the user gave option `id` (a clap argument id: the field's name) on the command
/// line, rather than leaving its default.
pub fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}

/// `--threads`, checked: the library's own pools take it as given.
pub fn check_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    Ok(())
}

/// The model in `--model DIR`, or the built-in one, on `--threads` threads.
pub fn load_model(
    model: &Option<PathBuf>,
    encoder: &Option<PathBuf>,
    threads: Option<usize>,
) -> Result<Classifier> {
    check_threads(threads)?;
    let clf = match (model, encoder) {
        (Some(dir), Some(enc)) => Classifier::load_with_encoder(
            dir,
            std::sync::Arc::new(khabar::model::Encoder::load(enc)?),
        ),
        (Some(dir), None) => Classifier::load(dir),
        (None, Some(_)) => Err(Error::Usage(
            "--encoder applies to a model trained with that encoder: give its --model".into(),
        )),
        (None, None) => Classifier::default_model(),
    }?;
    Ok(clf.with_threads(threads))
}

/// The model of `--model`, `--encoder`, `--fast`/`--accurate`, on `--threads` threads.
pub fn load_chosen(m: &args::ModelArgs, threads: Option<usize>) -> Result<Classifier> {
    with_mode(
        load_model(&m.bundle.model, &m.bundle.encoder, threads)?,
        m.mode,
    )
}

/// Where the encoder's vectors live under a `--cache-dir` (train, predict and eval share it).
pub fn encodings_dir(cache_dir: &std::path::Path) -> std::path::PathBuf {
    cache_dir.join("encodings")
}

/// `clf` answering as `--fast` or `--accurate` say; refused for a model that is not a hybrid
/// (only a hybrid has two parts to choose from).
pub fn with_mode(clf: Classifier, mode: args::ModeArgs) -> Result<Classifier> {
    let chosen = match (mode.fast, mode.accurate) {
        (true, _) => Mode::Fast,
        (_, true) => Mode::Accurate,
        _ => return Ok(clf),
    };
    if !matches!(clf.model(), Model::Hybrid(_)) {
        let flag = if mode.fast { "--fast" } else { "--accurate" };
        return Err(Error::Usage(format!(
            "{flag} applies to hybrid models (n-grams and the encoder), as the built-in model \
             is; this model is {}",
            clf.config().architecture.name()
        )));
    }
    Ok(clf.with_mode(chosen))
}

/// The model's own threshold of unsure answers (`--unsure`), or why there is none.
pub fn own_threshold(clf: &Classifier) -> Result<f32> {
    clf.config().unsure_below.ok_or_else(|| {
        Error::Usage(
            "--unsure uses the threshold a model records at training, and this model has none \
             (bow models trained with calibrated probabilities, the default, and encoder and \
             hybrid models have one): give --threshold P"
                .into(),
        )
    })
}

/// The directory of khabar's caches: $KHABAR_CACHE_DIR, else $XDG_CACHE_HOME/khabar, else
/// ~/.cache/khabar (`None` when none of them is set).
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("KHABAR_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("khabar")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("khabar")))
}

/// Reads labeled data and prints on stderr what reading noticed (skipped rows, ...).
pub fn read_corpus(paths: &[PathBuf], options: &ReadOptions) -> Result<Corpus> {
    read_corpus_with(paths, options, true)
}

/// [`read_corpus`]; `unused_map_entries`: whether to warn of label-map entries no example has
/// (not for a model's own map, made for all its training corpora, applied to one test set).
pub fn read_corpus_with(
    paths: &[PathBuf],
    options: &ReadOptions,
    unused_map_entries: bool,
) -> Result<Corpus> {
    let mut corpus = Corpus::read_all(paths, options)?;
    if !unused_map_entries {
        corpus.report.unused_map_entries.clear();
    }
    for note in &corpus.report.notes {
        eprintln!("note: {note}");
    }
    for warning in corpus.report.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(corpus)
}

/// [`khabar::bundle::check_out_dir`], its error naming the option.
pub fn check_out_dir(out: &Path) -> Result<()> {
    khabar::bundle::check_out_dir(out).map_err(|e| match e {
        Error::Usage(message) => Error::Usage(format!("--out {message}")),
        e => e,
    })
}

/// Bytes of a bundle's three files on disk.
pub fn bundle_bytes(dir: &Path) -> u64 {
    [
        khabar::bundle::CONFIG_FILE,
        khabar::bundle::TOKENIZER_FILE,
        khabar::bundle::WEIGHTS_FILE,
    ]
    .iter()
    .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
    .map(|m| m.len())
    .sum()
}

/// An I/O error on `path` (reading the input, writing the output).
pub fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
