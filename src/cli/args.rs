//! The command line's arguments: clap definitions of every subcommand and its options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use khabar::{
    BowConfig, Error, Format, LabelMap, ReadOptions, Result, TrainConfig, TransformerConfig,
};

#[derive(Parser, Debug)]
#[command(
    name = "khabar",
    version,
    about = "Classify news articles into topics: train, predict, evaluate",
    long_about = "Classify news articles into topics (Hindi, English and more).\n\n\
                  Train a model on your labeled articles with `khabar train`, classify new ones \
                  with `khabar predict`, measure a model with `khabar eval`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// Serve a model over HTTP: POST /v1/classify, GET /health, /v1/info, /metrics and
    /// /openapi.json (stops on SIGTERM or Ctrl-C once the requests in flight are answered).
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
}

#[cfg(feature = "serve")]
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on (port 0: any free port; the one chosen is printed).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Threads that classify (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Requests classified at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker; more are answered 503 (overloaded).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub queue: usize,
    /// Largest request body, in bytes; larger is answered 413.
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// Most articles in one request; more is answered 413.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_batch: usize,
    /// Seconds a request may take, reading its body and waiting for a worker included; longer
    /// is answered 503 (timeout). A connection that sends no whole request head within this
    /// time (of opening, or of its last answer) is closed.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

#[derive(Args, Debug)]
pub struct DataArgs {
    /// Input format: auto, jsonl, csv, tsv, fasttext or dir. auto decides per input: a folder
    /// is folder-per-class (DIR/<label>/*.txt); .jsonl, .ndjson, .json are JSON lines; .csv is
    /// CSV; .tsv, .tab are TSV; .txt, .ft, .fasttext are fastText (__label__X text).
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    pub format: Format,
    /// Field holding the text: a name, or for CSV/TSV a header name or 1-based column number;
    /// repeat to join several fields (title + body).
    #[arg(long = "text-field", value_name = "NAME", default_value = "text")]
    pub text_fields: Vec<String>,
    /// Field holding the label: a name, or for CSV/TSV a header name or column number.
    #[arg(long, value_name = "NAME", default_value = "label")]
    pub label_field: String,
    /// CSV/TSV: the first row is data, not a header (name fields by column number). Without
    /// it, the first row is a header when it holds the named fields.
    #[arg(long)]
    pub no_header: bool,
    /// Replace invalid UTF-8 with U+FFFD instead of failing (and count the documents affected).
    #[arg(long)]
    pub lossy: bool,
    /// Skip bad rows (empty text, empty or missing label, wrong number of columns, ...) instead
    /// of failing on the first, and report how many per reason.
    #[arg(long)]
    pub skip_bad: bool,
    /// Rename, merge or drop labels as the data is read: a JSON object {"from": "to"}, where
    /// null drops that label's examples and labels not named stay as they are. A model records
    /// the map it was trained with, and eval applies it unless given another.
    #[arg(long, value_name = "FILE")]
    pub label_map: Option<PathBuf>,
    /// Multi-label data: the separator of several labels in one label field (CSV, TSV, or a
    /// JSON string), such as ';' or '|'. JSON arrays of labels and fastText lines with
    /// several __label__ words need none.
    #[arg(long, value_name = "SEP")]
    pub label_separator: Option<String>,
}

impl DataArgs {
    pub fn read_options(&self) -> Result<ReadOptions> {
        Ok(ReadOptions {
            format: self.format,
            text_fields: self.text_fields.clone(),
            label_field: self.label_field.clone(),
            no_header: self.no_header,
            lossy: self.lossy,
            skip_bad: self.skip_bad,
            label_map: self.label_map.as_ref().map(LabelMap::load).transpose()?,
            multi_label: false,
            label_separator: self.label_separator.clone(),
        })
    }
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
pub enum Arch {
    Bow,
    Transformer,
    /// The pretrained multilingual encoder's sentence vector and a linear layer.
    Encoder,
    /// bow and the pretrained encoder together.
    Hybrid,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    #[value(name = "adagrad-row")]
    AdagradRow,
    Adagrad,
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LossArg {
    Softmax,
    Svm,
    #[value(name = "nb-svm")]
    NbSvm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightingArg {
    Tfidf,
    Mean,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: a file, or a folder per class (repeat for several; formats may differ).
    #[arg(help_heading = "Data", long, required = true, value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Validation data for choosing the best epoch (bow --loss softmax, transformer; the SVMs
    /// of the default bow train to their optimum and hold out nothing). Without it, those hold
    /// out a stratified --valid-fraction of the training data.
    #[arg(help_heading = "Data", long, value_name = "PATH")]
    pub valid: Option<PathBuf>,
    /// Where to save the model bundle (a directory; an existing bundle there is replaced
    /// only once the new one is complete).
    #[arg(help_heading = "Output", long, value_name = "DIR")]
    pub out: PathBuf,
    /// Model architecture.
    #[arg(help_heading = "Training", long, value_enum, default_value = "bow")]
    pub arch: Arch,
    /// Train a multi-label model (bow, the SVMs): articles may have several labels (fastText
    /// lines with several __label__ words, a JSON array, or a field split on
    /// --label-separator), one SVM per label against the rest, each label's threshold chosen
    /// for its F1 on held-out folds (--calibration-folds); predict answers every label over
    /// its threshold.
    #[arg(help_heading = "Training", long)]
    pub multi_label: bool,
    #[command(flatten, next_help_heading = "Data")]
    pub data_args: DataArgs,
    /// Share of each label held out for validation when --valid is not given, by bow --loss
    /// softmax and the transformer (0 trains on everything and keeps the last epoch).
    #[arg(help_heading = "Data", long, default_value_t = TrainConfig::default().valid_fraction)]
    pub valid_fraction: f64,
    /// Keep the model trained on the data without the validation cut, instead of training again
    /// on all of it for the best number of epochs (bow; the transformer never trains again).
    #[arg(long, help_heading = "Training")]
    pub no_refit: bool,
    /// Most epochs; the best by validation macro-F1 is kept, or, for the SVMs (bow, --loss
    /// svm or nb-svm), the last, once at the optimum [default: 20 for the SVMs, 10 for bow
    /// --loss softmax, 6 for transformer].
    #[arg(long, help_heading = "Training")]
    pub epochs: Option<usize>,
    /// Stop after this many epochs without improvement.
    #[arg(help_heading = "Training", long, default_value_t = TrainConfig::default().patience)]
    pub patience: usize,
    /// Peak learning rate; decays linearly to zero over --epochs, after the transformer's
    /// --warmup [default: 0.15 for bow --loss softmax, 0.01 for bow with --dim N, 0.001 for
    /// transformer; the SVMs of the default bow have none].
    #[arg(long, help_heading = "Training")]
    pub lr: Option<f64>,
    /// Examples per optimizer step [default: 64 for bow, 32 for transformer].
    #[arg(long, help_heading = "Training")]
    pub batch_size: Option<usize>,
    /// Random seed: the same data, seed and threads give the same model.
    #[arg(help_heading = "Training", long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, help_heading = "Training")]
    pub threads: Option<usize>,
    /// Largest subword vocabulary [default: 10000 for bow, 8000 for transformer].
    #[arg(long, help_heading = "Training")]
    pub vocab_size: Option<usize>,
    /// Embedding width (bow); 0 trains a linear model, one column per label.
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().dim)]
    pub dim: usize,
    /// Longest word n-gram (bow; 1 turns n-grams off).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().ngram_order)]
    pub ngrams: usize,
    /// Character n-grams of each word, MIN-MAX characters (bow; 0-0 for none).
    #[arg(help_heading = "bow (the default --arch)", long, default_value = "3-4", value_parser = parse_range)]
    pub char_ngrams: [usize; 2],
    /// Minimum number of training documents for a word n-gram to get a row (bow).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().min_count)]
    pub min_count: usize,
    /// Minimum number of training documents for a whole word or character n-gram to get a row
    /// (bow).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().min_count_words)]
    pub min_count_words: usize,
    /// Most n-gram rows (bow).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().max_ngrams)]
    pub max_ngrams: usize,
    /// Fraction of the n-gram rows kept when the model is compacted after training, those that
    /// move the scores most (bow; 1 keeps them all).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = TrainConfig::default().keep_ngrams)]
    pub keep_ngrams: f64,
    /// Feature weighting before pooling (bow).
    #[arg(
        help_heading = "bow (the default --arch)",
        long,
        value_enum,
        default_value = "tfidf"
    )]
    pub weighting: WeightingArg,
    /// Do not add whole words as features beside their subwords (bow).
    #[arg(long, help_heading = "bow (the default --arch)")]
    pub no_word_unigrams: bool,
    /// How the table's rows are trained (bow): Adagrad with one step size per row (adagrad-row)
    /// or per weight (adagrad), Adam, or plain SGD.
    #[arg(
        help_heading = "bow (the default --arch)",
        long,
        value_enum,
        default_value = "adagrad-row"
    )]
    pub table_optimizer: OptimizerArg,
    /// Learning rate of the embedding rows relative to --lr (bow).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().table_lr_scale)]
    pub table_lr_scale: f32,
    /// Margin by which training pushes the true label's logit ahead (bow, --loss softmax).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().margin)]
    pub margin: f32,
    /// What training minimizes (bow): one linear SVM per label on features scaled by their
    /// naive Bayes log-count ratios (nb-svm), or on the features as they are (svm), solved to
    /// the optimum by dual coordinate descent on all the data (an epoch is one pass; no
    /// learning rate, no validation cut); or softmax cross-entropy with a margin, learned
    /// online at --lr, the epoch count chosen on validation [default: nb-svm; softmax with
    /// --dim N, the only loss of a model with an embedding width].
    #[arg(help_heading = "bow (the default --arch)", long, value_enum)]
    pub loss: Option<LossArg>,
    /// Inverse regularization strength of the SVMs (bow, --loss svm or nb-svm), relative to
    /// the documents' mean squared length under each label's scaling. A hybrid's bow part,
    /// when this is not given, takes 0.3, 1 or 3: the smallest whose cross-validated accuracy
    /// is within a tenth of a point of the best.
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = BowConfig::default().svm_c)]
    pub svm_c: f32,
    /// Weights of the labels' documents, for corpora where some labels are rare (bow, the
    /// SVMs): balanced (a label's documents weigh n / (labels x its count)), none, or a JSON
    /// file of weights by label, {"Health": 4.0} (labels not named weigh 1).
    #[arg(
        help_heading = "bow (the default --arch)",
        long,
        value_name = "balanced|none|FILE"
    )]
    pub class_weight: Option<String>,
    /// Folds of the cross-validation that calibrates the probabilities (bow): the model trains
    /// again on each cut of the data without one fold, and the top probability is mapped so
    /// that, on those held-out scores, a stated 0.9 is right 9 times in 10. Training takes
    /// about twice as long with 2 folds; 0 leaves the probabilities uncalibrated (the
    /// hybrid fits its own weights on cross-validated log-loss instead). With --multi-label,
    /// the folds whose held-out scores choose each label's threshold (0: every threshold 0.5).
    #[arg(help_heading = "bow (the default --arch)", long, default_value_t = TrainConfig::default().calibration_folds)]
    pub calibration_folds: usize,
    /// Encoder blocks (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().layers)]
    pub layers: usize,
    /// Width of the token vectors (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().d_model)]
    pub d_model: usize,
    /// Attention heads; --d-model must be a multiple (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().heads)]
    pub heads: usize,
    /// Width of the feed-forward layers (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().ff)]
    pub ff: usize,
    /// Tokens read at once; longer articles are read in windows whose logits are averaged
    /// (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().max_len)]
    pub max_len: usize,
    /// Tokens between the starts of consecutive windows, at most --max-len [default: half of
    /// --max-len] (transformer).
    #[arg(long, help_heading = "transformer (--arch transformer)")]
    pub stride: Option<usize>,
    /// Dropout rate in training (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().dropout)]
    pub dropout: f32,
    /// Share of the steps over which the learning rate warms up (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().warmup)]
    pub warmup: f32,
    /// AdamW weight decay (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().weight_decay)]
    pub weight_decay: f32,
    /// Largest global gradient norm; larger gradients are scaled down, 0 for none
    /// (transformer).
    #[arg(help_heading = "transformer (--arch transformer)", long, default_value_t = TransformerConfig::default().clip_norm)]
    pub clip_norm: f32,
    /// The most pieces the encoder reads of each text (`<s>` and `</s>` included; 3 to 512):
    /// longer texts are cut. Headlines and paragraphs fit in the default.
    #[arg(help_heading = "encoder (--arch encoder, hybrid)", long, value_name = "N", default_value_t = khabar::model::hybrid::DEFAULT_MAX_TOKENS)]
    pub max_tokens: usize,
    /// The share (0 to 1) of the training articles on which the n-grams alone and the whole
    /// model differ (cross-validated) that the default mode must still send to the encoder
    /// (hybrid): higher is closer to --accurate and slower, 0 the fastest default mode that
    /// loses at most a tenth of a point there (on the whole, and on texts of up to 30 words
    /// alone, which get a threshold of their own).
    #[arg(help_heading = "encoder (--arch encoder, hybrid)", long, value_name = "SHARE", default_value_t = khabar::model::hybrid::DEFAULT_CASCADE_KEEP)]
    pub cascade_keep: f64,
    /// The pretrained encoder's directory (default: the one built into khabar). A model
    /// trained with another encoder needs it again to predict (--encoder there too).
    #[arg(
        help_heading = "encoder (--arch encoder, hybrid)",
        long,
        value_name = "DIR"
    )]
    pub encoder: Option<PathBuf>,
    /// Where the encoder's vectors of training texts are kept, so that training again on the
    /// same texts does not encode them again (default: $KHABAR_CACHE_DIR, else
    /// $XDG_CACHE_HOME/khabar, else ~/.cache/khabar). Delete it to clear the cache.
    #[arg(
        help_heading = "encoder (--arch encoder, hybrid)",
        long,
        value_name = "DIR"
    )]
    pub cache_dir: Option<PathBuf>,
    /// Encode every text, using no cache and writing none.
    #[arg(help_heading = "encoder (--arch encoder, hybrid)", long)]
    pub no_cache: bool,
    /// Cross-validate by source: each --data file is held out whole (files grouped into up to
    /// five folds), so that the hybrid's weights, its bow part's C, the encoder layer's penalty
    /// and the unsure threshold are chosen on sources the fold's models never saw, as news
    /// from a new source will be (the cascade's threshold is still fitted on stratified folds).
    /// Needs two --data files or more.
    #[arg(help_heading = "encoder (--arch encoder, hybrid)", long)]
    pub cv_by_source: bool,
    /// Keep every copy of a text given more than once in one fold of the cross-validation,
    /// so that no fold is scored by a model that trained on the same text (the built-in
    /// model's recipe). By default each copy is dealt on its own, as a random test split
    /// deals them: a corpus whose texts repeat (one headline filed under several topics, a
    /// story sent twice) is cross-validated the way its test texts will relate to it.
    #[arg(help_heading = "encoder (--arch encoder, hybrid)", long)]
    pub cv_copies_together: bool,
    /// Save the model as trained: every n-gram row (no --keep-ngrams), single precision, and
    /// an embedding table apart from its head, instead of the table folded into the head in
    /// half precision (same predictions up to rounding, several times smaller).
    #[arg(long, help_heading = "Output")]
    pub no_compact: bool,
    /// No progress output.
    #[arg(help_heading = "Output", long, short)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Jsonl,
}

/// Which model bundle to load, and the encoder it needs (`predict`, `eval`, `serve`, `info`).
#[derive(Args, Debug, Clone)]
pub struct BundleArgs {
    /// Model bundle directory (default: the built-in news model).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The pretrained encoder's directory, for a model trained with an encoder other than the
    /// built-in one (--arch encoder or hybrid with --encoder DIR).
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
}

/// The model that `predict`, `eval` and `serve` run, and how a hybrid answers.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub mode: ModeArgs,
}

/// How a hybrid model (the built-in one is) answers: `predict`, `eval` and `serve`.
#[derive(Args, Debug, Clone, Copy)]
pub struct ModeArgs {
    /// Hybrid models: answer with the n-gram part alone, never running the encoder (many times
    /// faster, less accurate on articles unlike the training data).
    #[arg(long, conflicts_with = "accurate")]
    pub fast: bool,
    /// Hybrid models: run the encoder on every article. By default the encoder runs only where
    /// the n-gram part alone is not sure enough (a threshold chosen at training).
    #[arg(long)]
    pub accurate: bool,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many labels to show per article, most probable first.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// text: label<TAB>score pairs per line; jsonl: one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
    /// Read articles from FILE ('-' for stdin): one per line, or JSON lines with a text field
    /// when FILE ends in .jsonl, .ndjson or .json.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// JSON field holding the text, for JSON lines input; given with stdin, it says that stdin
    /// holds JSON lines.
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub text_field: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Answer --unsure-label instead of the best label when its probability is below P
    /// (`eval --threshold P` says how many articles that leaves, and how accurately).
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,
    /// Answer --unsure-label below the model's own threshold: the probability under which its
    /// answers were more often wrong than right at training (calibrated bow models, the
    /// default, and encoder and hybrid models, the built-in one included; `khabar info` shows
    /// it).
    #[arg(long, conflicts_with = "threshold")]
    pub unsure: bool,
    /// The answer below --threshold (or --unsure).
    #[arg(long, value_name = "NAME", default_value = "unsure")]
    pub unsure_label: String,
    /// Replace invalid UTF-8 in the input with U+FFFD instead of failing (and count the lines
    /// affected).
    #[arg(long)]
    pub lossy: bool,
    /// JSON lines input: copy this field of each line (an id) into its output line (jsonl: an
    /// "id" member; text: the first column). Given with stdin, it says that stdin holds JSON
    /// lines.
    #[arg(long, value_name = "NAME")]
    pub id_field: Option<String>,
    /// Report lines that cannot be classified (not JSON, no text field, ...) on stderr and give
    /// them no output line, instead of stopping at the first (text output) or writing an error
    /// object for each (jsonl output).
    #[arg(long)]
    pub skip_bad: bool,
    /// Also say why each article got its label: the N features that raised the label's score
    /// most and the N that lowered it most, each with its share of the label's logit, and the
    /// bias (bow, hybrid and encoder models; N is 5 when not given: write the articles after
    /// N, or after --).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "5")]
    pub explain: Option<usize>,
    /// Keep the encoder's vectors of the articles in DIR (the cache of `train --cache-dir`):
    /// articles read before, at training or by an earlier `predict` or `eval` with this model or
    /// another that reads the same encoder, are not encoded again (hybrid and encoder models;
    /// default: no cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Report model load time and throughput on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Articles to classify (none: read stdin).
    #[arg(value_name = "TEXT")]
    pub texts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Labeled data: a file, or a folder per class (repeat for several; formats may differ).
    #[arg(long, required = true, value_name = "PATH")]
    pub data: Vec<PathBuf>,
    #[command(flatten)]
    pub data_args: DataArgs,
    /// Print one JSON object instead of the readable report.
    #[arg(long)]
    pub json: bool,
    /// Also report the share of articles whose prediction is at least this probable
    /// (coverage), and the accuracy on those (what `predict --threshold P` leaves).
    #[arg(long, value_name = "P")]
    pub threshold: Option<f64>,
    /// --threshold at the model's own threshold (see `predict --unsure`).
    #[arg(long, conflicts_with = "threshold")]
    pub unsure: bool,
    /// Write the misclassified articles to FILE as JSON lines: text, gold label, predicted
    /// label and its probability.
    #[arg(long, value_name = "FILE")]
    pub errors: Option<PathBuf>,
    /// Keep the encoder's vectors of the articles in DIR (the cache of `train --cache-dir`),
    /// so that evaluating again on the same data, with this model or another that reads the
    /// same encoder, encodes none of them again (hybrid and encoder models; default: no cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The model bundle to shrink (bow, or a hybrid: its bow part).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The pretrained encoder's directory, for a hybrid trained with an encoder other than the
    /// built-in one.
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// Where to write the smaller bundle.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Multiply the table by the linear head (same predictions; the table gets one column per
    /// label).
    #[arg(long)]
    pub fold: bool,
    /// Store the weights in half precision.
    #[arg(long)]
    pub half: bool,
    /// Keep only this many n-gram rows, those that move the scores most.
    #[arg(long, value_name = "N")]
    pub max_ngrams: Option<usize>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List LABEL's strongest features instead: the words and word pieces of the vocabulary
    /// that raise its score most and those that lower it most, N of each (default 20), in a
    /// bow model or a hybrid's bow part. Hashed features (word and character n-grams, whole
    /// words the vocabulary splits) have no text in the model and are not listed: `predict
    /// --explain` names them in the articles it explains.
    #[arg(long, value_names = ["LABEL", "N"], num_args = 1..=2)]
    pub top_features: Option<Vec<String>>,
}
