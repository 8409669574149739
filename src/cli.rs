//! The `khabar` command line: clap definitions and the glue for each subcommand. Errors are
//! mapped to exit codes in one place ([`main`]): 0 success, 2 bad usage or bad input, 1 other.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::corpus::{Corpus, Format, LabelMap, ReadOptions};
use crate::error::{Error, Location, Result};
use crate::model::{
    ArchConfig, BowConfig, CompactOptions, Loss, Model, SparseOptimizer, TransformerConfig,
    Weighting,
};
use crate::text::TokenizerOptions;
use crate::{Classifier, TrainConfig, TrainProgress, Trainer};

#[derive(Parser, Debug)]
#[command(
    name = "khabar",
    version,
    about = "Classify news articles into topics: train, predict, evaluate",
    long_about = "Classify news articles into topics (Hindi, English and more).\n\n\
                  Train a model on your labeled articles with `khabar train`, classify new ones \
                  with `khabar predict`, measure a model with `khabar eval`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a classifier on labeled articles and save it as a model bundle directory.
    Train(Box<TrainArgs>),
    /// Classify articles (arguments, a file, or stdin: one article per line).
    Predict(PredictArgs),
    /// Measure a model on labeled articles: accuracy, macro-F1, per-class scores, confusion.
    Eval(EvalArgs),
    /// Describe a model bundle: labels, architecture, sizes, training metadata.
    Info(InfoArgs),
    /// Shrink a model: fold the head into the table, half precision, fewer n-gram rows.
    Compact(CompactArgs),
}

#[derive(Args, Debug)]
struct DataArgs {
    /// Input format: auto, jsonl, csv, tsv, fasttext or dir. auto decides per input: a folder
    /// is folder-per-class (DIR/<label>/*.txt); .jsonl, .ndjson, .json are JSON lines; .csv is
    /// CSV; .tsv, .tab are TSV; .txt, .ft, .fasttext are fastText (__label__X text).
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    format: Format,
    /// Field holding the text: a name, or for CSV/TSV a header name or 1-based column number;
    /// repeat to join several fields (title + body).
    #[arg(long = "text-field", value_name = "NAME", default_value = "text")]
    text_fields: Vec<String>,
    /// Field holding the label: a name, or for CSV/TSV a header name or column number.
    #[arg(long, value_name = "NAME", default_value = "label")]
    label_field: String,
    /// CSV/TSV: the first row is data, not a header (name fields by column number). Without
    /// it, the first row is a header when it holds the named fields.
    #[arg(long)]
    no_header: bool,
    /// Replace invalid UTF-8 with U+FFFD instead of failing (and count the documents affected).
    #[arg(long)]
    lossy: bool,
    /// Skip bad rows (empty text, empty or missing label, wrong number of columns, ...) instead
    /// of failing on the first, and report how many per reason.
    #[arg(long)]
    skip_bad: bool,
    /// Rename, merge or drop labels as the data is read: a JSON object {"from": "to"}, where
    /// null drops that label's examples and labels not named stay as they are. Give eval the
    /// same map as train.
    #[arg(long, value_name = "FILE")]
    label_map: Option<PathBuf>,
}

impl DataArgs {
    fn read_options(&self) -> Result<ReadOptions> {
        Ok(ReadOptions {
            format: self.format,
            text_fields: self.text_fields.clone(),
            label_field: self.label_field.clone(),
            no_header: self.no_header,
            lossy: self.lossy,
            skip_bad: self.skip_bad,
            label_map: self.label_map.as_ref().map(LabelMap::load).transpose()?,
        })
    }
}

/// Reads labeled data and prints on stderr what reading noticed (skipped rows, ...).
fn read_corpus(paths: &[PathBuf], options: &ReadOptions) -> Result<Corpus> {
    let corpus = Corpus::read_all(paths, options)?;
    for note in &corpus.report.notes {
        eprintln!("note: {note}");
    }
    for warning in corpus.report.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(corpus)
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_range(s: &str) -> std::result::Result<[usize; 2], String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("expected MIN-MAX, such as 2-5 (got '{s}')"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("expected MIN-MAX, such as 2-5 (got '{s}')"))
    };
    Ok([parse(a)?, parse(b)?])
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Arch {
    Bow,
    Transformer,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OptimizerArg {
    #[value(name = "adagrad-row")]
    AdagradRow,
    Adagrad,
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LossArg {
    Softmax,
    Svm,
    #[value(name = "nb-svm")]
    NbSvm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WeightingArg {
    Tfidf,
    Mean,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Training data: a file, or a folder per class (repeat for several; formats may differ).
    #[arg(long, required = true, value_name = "PATH")]
    data: Vec<PathBuf>,
    /// Validation data for choosing the best epoch; without it, a stratified
    /// --valid-fraction of the training data is held out.
    #[arg(long, value_name = "PATH")]
    valid: Option<PathBuf>,
    /// Where to save the model bundle (a directory; an existing bundle there is replaced
    /// only once the new one is complete).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Model architecture.
    #[arg(long, value_enum, default_value = "bow")]
    arch: Arch,
    #[command(flatten)]
    data_args: DataArgs,
    /// Share of each label held out for validation when --valid is not given (0 trains on
    /// everything and keeps the last epoch).
    #[arg(long, default_value_t = TrainConfig::default().valid_fraction)]
    valid_fraction: f64,
    /// Keep the model trained on the data without the validation cut, instead of training again
    /// on all of it for the best number of epochs (bow; the transformer never trains again).
    #[arg(long)]
    no_refit: bool,
    /// Most epochs; the best by validation macro-F1 is kept, or, for the SVMs (bow, --loss
    /// svm or nb-svm), the last, once at the optimum [default: 20 for the SVMs, 10 for bow
    /// --loss softmax, 6 for transformer].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without improvement.
    #[arg(long, default_value_t = TrainConfig::default().patience)]
    patience: usize,
    /// Peak learning rate; decays linearly to zero over --epochs, after the transformer's
    /// --warmup [default: 0.15 for bow, 0.01 for bow with --dim N, 0.001 for transformer].
    #[arg(long)]
    lr: Option<f64>,
    /// Examples per optimizer step [default: 64 for bow, 32 for transformer].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Random seed: the same data, seed and threads give the same model.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Largest subword vocabulary [default: 10000 for bow, 8000 for transformer].
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Embedding width (bow); 0 trains a linear model, one column per label.
    #[arg(long, default_value_t = BowConfig::default().dim)]
    dim: usize,
    /// Longest word n-gram (bow; 1 turns n-grams off).
    #[arg(long, default_value_t = BowConfig::default().ngram_order)]
    ngrams: usize,
    /// Character n-grams of each word, MIN-MAX characters (bow; 0-0 for none).
    #[arg(long, default_value = "3-4", value_parser = parse_range)]
    char_ngrams: [usize; 2],
    /// Minimum number of training documents for a word n-gram to get a row (bow).
    #[arg(long, default_value_t = BowConfig::default().min_count)]
    min_count: usize,
    /// Minimum number of training documents for a whole word or character n-gram to get a row
    /// (bow).
    #[arg(long, default_value_t = BowConfig::default().min_count_words)]
    min_count_words: usize,
    /// Most n-gram rows (bow).
    #[arg(long, default_value_t = BowConfig::default().max_ngrams)]
    max_ngrams: usize,
    /// Fraction of the n-gram rows kept when the model is compacted after training, those that
    /// move the scores most (bow; 1 keeps them all).
    #[arg(long, default_value_t = TrainConfig::default().keep_ngrams)]
    keep_ngrams: f64,
    /// Feature weighting before pooling (bow).
    #[arg(long, value_enum, default_value = "tfidf")]
    weighting: WeightingArg,
    /// Do not add whole words as features beside their subwords (bow).
    #[arg(long)]
    no_word_unigrams: bool,
    /// How the table's rows are trained (bow): Adagrad with one step size per row (adagrad-row)
    /// or per weight (adagrad), Adam, or plain SGD.
    #[arg(long, value_enum, default_value = "adagrad-row")]
    table_optimizer: OptimizerArg,
    /// Learning rate of the embedding rows relative to --lr (bow).
    #[arg(long, default_value_t = BowConfig::default().table_lr_scale)]
    table_lr_scale: f32,
    /// Margin by which training pushes the true label's logit ahead (bow, --loss softmax).
    #[arg(long, default_value_t = BowConfig::default().margin)]
    margin: f32,
    /// What training minimizes (bow): one linear SVM per label on features scaled by their
    /// naive Bayes log-count ratios (nb-svm), or on the features as they are (svm), solved to
    /// the optimum by dual coordinate descent on all the data (an epoch is one pass; no
    /// learning rate, no validation cut); or softmax cross-entropy with a margin, learned
    /// online at --lr, the epoch count chosen on validation [default: nb-svm; softmax with
    /// --dim N, the only loss of a model with an embedding width].
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Inverse regularization strength of the SVMs (bow, --loss svm or nb-svm), relative to
    /// the documents' mean squared length under each label's scaling.
    #[arg(long, default_value_t = BowConfig::default().svm_c)]
    svm_c: f32,
    /// Encoder blocks (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().layers)]
    layers: usize,
    /// Width of the token vectors (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().d_model)]
    d_model: usize,
    /// Attention heads; --d-model must be a multiple (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().heads)]
    heads: usize,
    /// Width of the feed-forward layers (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().ff)]
    ff: usize,
    /// Tokens read at once; longer articles are read in windows whose logits are averaged
    /// (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().max_len)]
    max_len: usize,
    /// Tokens between the starts of consecutive windows, at most --max-len [default: half of
    /// --max-len] (transformer).
    #[arg(long)]
    stride: Option<usize>,
    /// Dropout rate in training (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().dropout)]
    dropout: f32,
    /// Share of the steps over which the learning rate warms up (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().warmup)]
    warmup: f32,
    /// AdamW weight decay (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().weight_decay)]
    weight_decay: f32,
    /// Largest global gradient norm; larger gradients are scaled down, 0 for none
    /// (transformer).
    #[arg(long, default_value_t = TransformerConfig::default().clip_norm)]
    clip_norm: f32,
    /// Save the model as trained: every n-gram row (no --keep-ngrams), single precision, and
    /// an embedding table apart from its head, instead of the table folded into the head in
    /// half precision (same predictions up to rounding, several times smaller).
    #[arg(long)]
    no_compact: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Jsonl,
}

#[derive(Args, Debug)]
struct PredictArgs {
    /// Model bundle directory (default: the built-in news model).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// How many labels to show per article, most probable first.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// text: label<TAB>score pairs per line; jsonl: one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Read articles from FILE ('-' for stdin): one per line, or JSONL with a text field when
    /// FILE ends in .jsonl.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// JSON field holding the text, for JSONL input.
    #[arg(long, value_name = "NAME", default_value = "text")]
    text_field: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace invalid UTF-8 in the input with U+FFFD instead of failing (and count the lines
    /// affected).
    #[arg(long)]
    lossy: bool,
    /// Report model load time and throughput on stderr.
    #[arg(long, short)]
    verbose: bool,
    /// Articles to classify (none: read stdin).
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// Model bundle directory (default: the built-in news model).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Labeled data: a file, or a folder per class (repeat for several; formats may differ).
    #[arg(long, required = true, value_name = "PATH")]
    data: Vec<PathBuf>,
    #[command(flatten)]
    data_args: DataArgs,
    /// Print one JSON object instead of the readable report.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct CompactArgs {
    /// The model bundle to shrink.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Where to write the smaller bundle.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Multiply the table by the linear head (same predictions; the table gets one column per
    /// label).
    #[arg(long)]
    fold: bool,
    /// Store the weights in half precision.
    #[arg(long)]
    half: bool,
    /// Keep only this many n-gram rows, those that move the scores most.
    #[arg(long, value_name = "N")]
    max_ngrams: Option<usize>,
}

#[derive(Args, Debug)]
struct InfoArgs {
    /// Model bundle directory (default: the built-in news model).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => 0,
        Ok(Err(Error::Io { source, .. })) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
        Err(_) if CLOSED_STDOUT.load(std::sync::atomic::Ordering::SeqCst) => 0,
        Err(_) => 1,
    }
}

/// The transformer allocates and frees many tensors of a few hundred kilobytes per step. glibc
/// serves those with mmap and gives them back with munmap each time, so every step pays page
/// faults for fresh zeroed pages (a quarter of its time, measured); keeping them in the heap
/// avoids it.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is called before training starts
    // any thread of its own.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train(*a),
        Command::Predict(a) => predict(a),
        Command::Eval(a) => eval(a),
        Command::Info(a) => info(a),
        Command::Compact(a) => compact(a),
    }
}

/// Sizes the worker pool: rayon for khabar's own parallel work, and candle's matmul threads
/// (which follow RAYON_NUM_THREADS).
fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::Usage("--threads must be at least 1".into()));
        }
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Usage(format!("cannot start {n} threads: {e}")))?;
    }
    Ok(())
}

/// The model in `--model DIR`, or the built-in one.
fn load_model(model: &Option<PathBuf>) -> Result<Classifier> {
    match model {
        Some(dir) => Classifier::load(dir),
        None => Classifier::default_model(),
    }
}

fn train(a: TrainArgs) -> Result<()> {
    if matches!(a.arch, Arch::Transformer) {
        tune_allocator();
    }
    set_threads(a.threads)?;
    let arch = match a.arch {
        Arch::Bow => ArchConfig::Bow(BowConfig {
            dim: a.dim,
            ngram_order: a.ngrams,
            word_unigrams: !a.no_word_unigrams,
            min_count: a.min_count,
            min_count_words: a.min_count_words,
            max_ngrams: a.max_ngrams,
            weighting: match a.weighting {
                WeightingArg::Tfidf => Weighting::Tfidf,
                WeightingArg::Mean => Weighting::Mean,
            },
            char_ngrams: a.char_ngrams,
            optimizer: match a.table_optimizer {
                OptimizerArg::AdagradRow => SparseOptimizer::AdagradRow,
                OptimizerArg::Adagrad => SparseOptimizer::Adagrad,
                OptimizerArg::Adam => SparseOptimizer::Adam,
                OptimizerArg::Sgd => SparseOptimizer::Sgd,
            },
            table_lr_scale: a.table_lr_scale,
            margin: a.margin,
            loss: match a.loss {
                None if a.dim > 0 => Loss::Softmax,
                None => BowConfig::default().loss,
                Some(LossArg::Softmax) => Loss::Softmax,
                Some(LossArg::Svm) => Loss::Svm,
                Some(LossArg::NbSvm) => Loss::NbSvm,
            },
            svm_c: a.svm_c,
            ..BowConfig::default()
        }),
        Arch::Transformer => ArchConfig::Transformer(TransformerConfig {
            layers: a.layers,
            d_model: a.d_model,
            heads: a.heads,
            ff: a.ff,
            max_len: a.max_len,
            stride: a.stride.unwrap_or((a.max_len / 2).max(1)),
            dropout: a.dropout,
            warmup: a.warmup,
            weight_decay: a.weight_decay,
            clip_norm: a.clip_norm,
        }),
    };
    let defaults = TrainConfig::for_arch(arch);
    let config = TrainConfig {
        tokenizer: TokenizerOptions {
            vocab_size: a.vocab_size.unwrap_or(defaults.tokenizer.vocab_size),
            ..defaults.tokenizer.clone()
        },
        epochs: a.epochs.unwrap_or(defaults.epochs),
        patience: a.patience,
        learning_rate: a.lr.unwrap_or(defaults.learning_rate),
        batch_size: a.batch_size.unwrap_or(defaults.batch_size),
        seed: a.seed,
        valid_fraction: a.valid_fraction,
        refit: defaults.refit && !a.no_refit,
        compact: !a.no_compact,
        keep_ngrams: a.keep_ngrams,
        progress: (!a.quiet).then(|| Arc::new(Bar::default()) as Arc<dyn TrainProgress>),
        cancel: Some(cancel_on_ctrl_c()),
        ..defaults
    };
    // Bad settings fail before the data is read.
    config.validate()?;
    if config.trains_to_optimum() {
        for (given, option) in [
            (a.lr.is_some(), "--lr"),
            (a.batch_size.is_some(), "--batch-size"),
        ] {
            if given {
                eprintln!("note: {option} has no effect on the SVMs (--loss svm or nb-svm)");
            }
        }
    }
    let trainer = Trainer::new(config);
    let options = a.data_args.read_options()?;
    // Check the destination before spending time on training.
    check_out_dir(&a.out)?;
    let corpus = read_corpus(&a.data, &options)?;
    let clf = match &a.valid {
        Some(v) => {
            let valid = read_corpus(std::slice::from_ref(v), &options)?;
            trainer.train_with_valid(&corpus, &valid)?
        }
        None => trainer.train(&corpus)?,
    };
    // A Ctrl-C that came after the last step (while the model was compacted) still keeps the
    // old one.
    if config_cancelled(&trainer) {
        return Err(Error::Interrupted);
    }
    clf.save(&a.out)?;
    if !a.quiet {
        eprintln!("saved the model to {}", a.out.display());
    }
    Ok(())
}

/// Training's progress on stderr: its lines, and a bar over the steps of each run of epochs.
#[derive(Default)]
struct Bar {
    /// The bar of the run of epochs under way.
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Bar {
    fn bar(&self) -> std::sync::MutexGuard<'_, Option<indicatif::ProgressBar>> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TrainProgress for Bar {
    fn message(&self, line: &str) {
        match &*self.bar() {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn run_started(&self, epochs: usize, steps_per_epoch: usize) {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some((steps_per_epoch * epochs) as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, eta {eta}  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        *self.bar() = Some(bar);
    }

    fn epoch_started(&self, epoch: usize, epochs: usize) {
        if let Some(bar) = &*self.bar() {
            bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        }
    }

    fn step_done(&self) {
        if let Some(bar) = &*self.bar() {
            bar.inc(1);
        }
    }

    fn epoch_finished(&self, _epoch: usize, summary: &str) {
        match &*self.bar() {
            Some(bar) => {
                bar.set_message(summary.to_string());
                bar.suspend(|| eprintln!("{summary}"));
            }
            None => eprintln!("{summary}"),
        }
    }

    fn run_finished(&self) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
    }
}

/// A flag that the first Ctrl-C (SIGINT) sets: training stops at its next step and nothing is
/// written, so an existing model stays as it was. A second Ctrl-C exits at once.
fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    // Failing to install the handler (one is already installed) leaves the default behaviour.
    let _ = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping (Ctrl-C again quits at once)");
    });
    flag
}

fn config_cancelled(trainer: &Trainer) -> bool {
    trainer
        .config()
        .cancel
        .as_ref()
        .is_some_and(|f| f.load(Ordering::SeqCst))
}

/// [`crate::bundle::check_out_dir`], its error naming the option.
fn check_out_dir(out: &Path) -> Result<()> {
    crate::bundle::check_out_dir(out).map_err(|e| match e {
        Error::Usage(message) => Error::Usage(format!("--out {message}")),
        e => e,
    })
}

fn predict(a: PredictArgs) -> Result<()> {
    set_threads(a.threads)?;
    if a.top_k == 0 {
        return Err(Error::Usage("--top-k must be at least 1".into()));
    }
    if !a.texts.is_empty() && a.input.is_some() {
        return Err(Error::Usage(
            "give articles either as arguments or with --input, not both".into(),
        ));
    }
    let load_start = std::time::Instant::now();
    let clf = load_model(&a.model)?;
    let loaded = std::time::Instant::now();
    if a.verbose {
        eprintln!(
            "model loaded in {:.3} s",
            (loaded - load_start).as_secs_f64()
        );
    }
    let mut count = 0usize;
    let report = |count: usize| {
        if a.verbose {
            let secs = loaded.elapsed().as_secs_f64();
            eprintln!(
                "classified {count} articles in {secs:.3} s ({:.0} articles/s, {} threads)",
                count as f64 / secs.max(1e-9),
                rayon::current_num_threads()
            );
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stdout_path = Path::new("<stdout>");
    let labels = clf.labels();
    let mut top = Vec::with_capacity(a.top_k);
    let mut emit = |probs: &[Vec<f32>]| -> Result<()> {
        for p in probs {
            top_k(p, a.top_k, &mut top);
            write_prediction(&mut out, labels, p, &top, a.output)
                .map_err(|e| Error::io(stdout_path, e))?;
        }
        out.flush().map_err(|e| Error::io(stdout_path, e))
    };
    if !a.texts.is_empty() {
        emit(&clf.probabilities_batch(&a.texts)?)?;
        report(a.texts.len());
        return Ok(());
    }
    let (path, reader): (PathBuf, Box<dyn BufRead>) = match &a.input {
        Some(p) if p.as_os_str() != "-" => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
            (
                p.clone(),
                Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
            )
        }
        _ => (
            PathBuf::from("<stdin>"),
            Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin())),
        ),
    };
    let jsonl = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
    let mut lines = LineReader::new(reader, path, jsonl, a.text_field.clone(), a.lossy);
    // The texts of one batch; their buffers are reused from one batch to the next.
    let mut chunk = vec![String::new(); CHUNK];
    loop {
        let mut n = 0;
        while n < CHUNK && lines.next_text_into(&mut chunk[n])? {
            n += 1;
        }
        let chunk = &chunk[..n];
        if chunk.is_empty() {
            if lines.repaired > 0 {
                eprintln!(
                    "note: {} line(s) held invalid UTF-8, replaced with U+FFFD (--lossy)",
                    lines.repaired
                );
            }
            report(count);
            return Ok(());
        }
        emit(&clf.probabilities_batch(chunk)?)?;
        count += chunk.len();
    }
}

/// Articles classified per batch when streaming: large enough to use every core, small enough to
/// print results as they come and keep memory flat.
const CHUNK: usize = 1024;

/// Reads articles one per line (plain text, or a JSON object with a text field).
struct LineReader {
    reader: Box<dyn BufRead>,
    path: PathBuf,
    jsonl: bool,
    field: String,
    line: usize,
    buf: Vec<u8>,
    /// Replace invalid UTF-8 instead of failing; lines so repaired.
    lossy: bool,
    repaired: usize,
}

impl LineReader {
    fn new(
        reader: Box<dyn BufRead>,
        path: PathBuf,
        jsonl: bool,
        field: String,
        lossy: bool,
    ) -> Self {
        LineReader {
            reader,
            path,
            jsonl,
            field,
            line: 0,
            buf: Vec::new(),
            lossy,
            repaired: 0,
        }
    }

    /// Reads the next article into `out`; false at the end of the input.
    fn next_text_into(&mut self, out: &mut String) -> Result<bool> {
        out.clear();
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::io(&self.path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            let at = || Location::new(&self.path, self.line);
            let mut bytes = self.buf.as_slice();
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => std::borrow::Cow::Borrowed(t),
                Err(_) if self.lossy => {
                    self.repaired += 1;
                    String::from_utf8_lossy(bytes)
                }
                Err(e) => {
                    return Err(Error::input(
                        at(),
                        format!(
                            "invalid UTF-8 at byte {} of the line (--lossy replaces it)",
                            e.valid_up_to()
                        ),
                    ))
                }
            };
            let text = text.trim_end_matches(['\n', '\r']);
            if !self.jsonl {
                out.push_str(text);
                return Ok(true);
            }
            if text.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| Error::input(at(), format!("not valid JSON: {e}")))?;
            return match v.get(&self.field) {
                Some(serde_json::Value::String(s)) => {
                    out.push_str(s);
                    Ok(true)
                }
                Some(_) => Err(Error::input(at().field(&self.field), "expected a string")),
                None => Err(Error::input(at().field(&self.field), "missing")),
            };
        }
    }
}

/// Writes a probability with four decimals, as `{:.4}` does, without the general float
/// formatter (a tenth of the prediction time on short texts). `x * 10000` is exact in f64, and
/// ties (such as 0.03125) go to the even neighbour, as `{:.4}` rounds.
fn write_score(out: &mut impl Write, x: f32) -> std::io::Result<()> {
    if !(x.is_sign_positive() && x <= 1.0) {
        return write!(out, "{x:.4}");
    }
    let v = (x as f64 * 10_000.0).round_ties_even() as u32;
    // "d.dddd" (v is at most 10,000), without the formatting machinery.
    let digit = |d: u32| b'0' + (d % 10) as u8;
    out.write_all(&[
        digit(v / 10_000),
        b'.',
        digit(v / 1_000),
        digit(v / 100),
        digit(v / 10),
        digit(v),
    ])
}

/// The indices of the `k` most probable labels, best first (ties: the earlier label), as
/// [`crate::Prediction::top`] orders them.
fn top_k(probs: &[f32], k: usize, out: &mut Vec<usize>) {
    out.clear();
    for _ in 0..k.min(probs.len()) {
        let mut best: Option<usize> = None;
        for (i, &p) in probs.iter().enumerate() {
            if out.contains(&i) {
                continue;
            }
            if best.is_none_or(|b| p.total_cmp(&probs[b]).is_gt()) {
                best = Some(i);
            }
        }
        out.extend(best);
    }
}

/// One line of `predict` output: the labels of `top` with their probabilities.
fn write_prediction(
    out: &mut impl Write,
    labels: &[String],
    probs: &[f32],
    top: &[usize],
    format: OutputFormat,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Text => {
            for (n, &i) in top.iter().enumerate() {
                if n > 0 {
                    out.write_all(b"\t")?;
                }
                out.write_all(labels[i].as_bytes())?;
                out.write_all(b"\t")?;
                write_score(out, probs[i])?;
            }
            out.write_all(b"\n")
        }
        OutputFormat::Jsonl => {
            let v = serde_json::json!({
                "label": labels[top[0]],
                "score": probs[top[0]],
                "top": top
                    .iter()
                    .map(|&i| serde_json::json!({"label": labels[i], "score": probs[i]}))
                    .collect::<Vec<_>>(),
            });
            writeln!(out, "{v}")
        }
    }
}

fn eval(a: EvalArgs) -> Result<()> {
    set_threads(a.threads)?;
    let clf = load_model(&a.model)?;
    let corpus = read_corpus(&a.data, &a.data_args.read_options()?)?;
    let eval = clf.evaluate(&corpus)?;
    let unknown: Vec<&String> = eval.labels[clf.labels().len()..].iter().collect();
    if !unknown.is_empty() {
        eprintln!(
            "warning: {} label(s) in the data are unknown to the model and always count as errors: {}",
            unknown.len(),
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if a.json {
        println!("{}", eval.to_json());
    } else {
        print!("{}", eval.report());
    }
    Ok(())
}

fn compact(a: CompactArgs) -> Result<()> {
    let clf = Classifier::load(&a.model)?;
    if !matches!(clf.model(), Model::Bow(_)) {
        return Err(Error::Usage(format!(
            "{}: compact applies to bow models; this one is a {}",
            a.model.display(),
            clf.config().architecture.name()
        )));
    }
    check_out_dir(&a.out)?;
    let small = clf.compact(CompactOptions {
        fold: a.fold,
        half: a.half,
        max_ngrams: a.max_ngrams,
    });
    small.save(&a.out)?;
    eprintln!(
        "{} -> {}: {:.1} MB -> {:.1} MB",
        a.model.display(),
        a.out.display(),
        bundle_bytes(&a.model) as f64 / 1e6,
        bundle_bytes(&a.out) as f64 / 1e6
    );
    Ok(())
}

/// Bytes of a bundle's three files on disk.
fn bundle_bytes(dir: &Path) -> u64 {
    [
        crate::bundle::CONFIG_FILE,
        crate::bundle::TOKENIZER_FILE,
        crate::bundle::WEIGHTS_FILE,
    ]
    .iter()
    .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
    .map(|m| m.len())
    .sum()
}

fn info(a: InfoArgs) -> Result<()> {
    let clf = load_model(&a.model)?;
    let c = clf.config();
    let disk: u64 = match &a.model {
        Some(dir) => bundle_bytes(dir),
        None => Classifier::default_model_size() as u64,
    };
    let ngrams = match clf.model() {
        Model::Bow(b) => b.num_ngrams(),
        Model::Transformer(_) => 0,
    };
    if a.json {
        let v = serde_json::json!({
            "config": c,
            "sizes": {
                "labels": c.labels.len(),
                "vocab_size": clf.tokenizer().vocab_size(),
                "ngram_rows": ngrams,
                "parameters": clf.model().num_parameters(),
                "bytes_on_disk": disk,
            }
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("plain values")
        );
        return Ok(());
    }
    match &a.model {
        Some(dir) => println!("model: {}", dir.display()),
        None => println!("model: the built-in news model (see models/news/README.md)"),
    }
    println!("architecture: {}", c.architecture.name());
    println!(
        "hyperparameters: {}",
        serde_json::to_string(&c.architecture).expect("plain values")
    );
    println!("labels ({}): {}", c.labels.len(), c.labels.join(", "));
    let shape = match clf.model() {
        Model::Bow(b) => {
            let storage = match (b.config.folded, b.config.half) {
                (true, true) => ", linear (one weight per feature and label), half precision",
                (true, false) => ", linear (one weight per feature and label)",
                (false, true) => ", half precision",
                (false, false) => "",
            };
            let trained = match b.config.loss {
                Loss::Softmax => String::new(),
                loss => format!(", trained as --loss {} (C {})", loss.name(), b.config.svm_c),
            };
            format!(
                "{} n-gram rows, dim {}{storage}{trained}",
                ngrams, b.config.dim
            )
        }
        Model::Transformer(t) => {
            let c = &t.config;
            println!(
                "transformer: {} layers, d_model {}, {} heads, ff {}, max_len {}, stride {}, dropout {}",
                c.layers, c.d_model, c.heads, c.ff, c.max_len, c.stride, c.dropout
            );
            println!(
                "  trained with warmup {}, weight decay {}, gradient clipping at norm {}",
                c.warmup, c.weight_decay, c.clip_norm
            );
            format!("d_model {}", c.d_model)
        }
    };
    println!(
        "sizes: {} subwords, {}, {} parameters, {:.1} MB",
        clf.tokenizer().vocab_size(),
        shape,
        clf.model().num_parameters(),
        disk as f64 / 1e6
    );
    println!(
        "bundle: format {}, written by khabar {}",
        c.format_version, c.khabar_version
    );
    if let Some(t) = &c.training {
        println!("trained: {} on {}", t.started_at, t.data.join(", "));
        println!(
            "  {} training examples, {} validation ({}), seed {}, {} threads",
            t.train_examples, t.valid_examples, t.valid, t.seed, t.threads
        );
        if t.valid_examples == 0 {
            println!("  {} epochs, {:.1} s", t.epochs, t.seconds);
        } else {
            println!(
                "  best epoch {} of {}, {:.1} s; validation accuracy {:.4}, macro-F1 {:.4}",
                t.best_epoch, t.epochs, t.seconds, t.valid_accuracy, t.valid_macro_f1
            );
        }
        if t.refit {
            println!(
                "  then trained again on all {} examples (validation cut included) for {} epochs",
                t.train_examples, t.best_epoch
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast score formatter writes what `{:.4}` writes, on a spread of values and at the
    /// rounding boundaries.
    #[test]
    fn scores_are_written_as_format_writes_them() {
        let mut values: Vec<f32> = vec![0.0, 1.0, 0.5, 0.99995, 0.00005, 0.12345, 1e-9, -0.0];
        let mut rng = crate::rng::SplitMix64::new(7);
        values.extend((0..200_000).map(|_| rng.next_f32()));
        values.extend((0..=20_000).map(|i| i as f32 / 20_000.0));
        for x in values {
            let mut out = Vec::new();
            write_score(&mut out, x).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{x:.4}"), "{x:e}");
        }
    }
}
