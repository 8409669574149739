//! `khabar train`: the options made into a [`TrainConfig`], the data read, the model trained
//! and saved; progress on stderr, and Ctrl-C stops training without writing anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::ArgMatches;

use khabar::model::{ClassWeight, Encoder, EncoderArchConfig, HybridConfig, SparseOptimizer};
use khabar::{
    ArchConfig, BowConfig, Error, Loss, Result, TokenizerOptions, TrainConfig, TrainProgress,
    Trainer, TransformerConfig, Weighting,
};

use super::args::{Arch, LossArg, OptimizerArg, TrainArgs, WeightingArg};
use super::progress::Bar;
use super::{check_out_dir, check_threads, default_cache_dir, encodings_dir, given, read_corpus};

/// Options of bow alone, and of the transformer alone: given for the other architecture, they
/// would be ignored, so they are refused.
const BOW_OPTIONS: [&str; 16] = [
    "dim",
    "ngrams",
    "char_ngrams",
    "min_count",
    "min_count_words",
    "max_ngrams",
    "keep_ngrams",
    "weighting",
    "no_word_unigrams",
    "table_optimizer",
    "table_lr_scale",
    "margin",
    "loss",
    "svm_c",
    "class_weight",
    "no_compact",
];
const TRANSFORMER_OPTIONS: [&str; 10] = [
    "layers",
    "d_model",
    "heads",
    "ff",
    "max_len",
    "stride",
    "dropout",
    "warmup",
    "weight_decay",
    "clip_norm",
];
/// Options of the architectures that read the pretrained encoder.
const ENCODER_OPTIONS: [&str; 6] = [
    "max_tokens",
    "encoder",
    "cache_dir",
    "no_cache",
    "cv_by_source",
    "cv_copies_together",
];
/// Options of the training schedule, which the encoder model's layer (trained to its optimum)
/// does not use.
const SCHEDULE_OPTIONS: [&str; 5] = ["epochs", "patience", "lr", "batch_size", "no_refit"];
/// Options of bow's softmax loss, which the SVMs do not use.
const SOFTMAX_OPTIONS: [&str; 3] = ["margin", "table_optimizer", "table_lr_scale"];

/// The option of a clap argument id.
fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// Refuses options that do not apply to what is trained, or that conflict, instead of
/// ignoring them.
fn refuse_inapplicable(a: &TrainArgs, m: &ArgMatches) -> Result<()> {
    let refuse = |message: String| Err(Error::Usage(message));
    let arch = match a.arch {
        Arch::Bow => "bow",
        Arch::Transformer => "--arch transformer",
        Arch::Encoder => "--arch encoder",
        Arch::Hybrid => "--arch hybrid",
    };
    let uses_bow = matches!(a.arch, Arch::Bow | Arch::Hybrid);
    if !uses_bow {
        if let Some(id) = BOW_OPTIONS.iter().find(|id| given(m, id)) {
            return refuse(format!(
                "{} applies to bow and hybrid; {arch} does not use it",
                flag(id)
            ));
        }
    }
    if !matches!(a.arch, Arch::Transformer) {
        if let Some(id) = TRANSFORMER_OPTIONS.iter().find(|id| given(m, id)) {
            return refuse(format!(
                "{} applies to --arch transformer; {arch} does not use it",
                flag(id)
            ));
        }
    }
    if !matches!(a.arch, Arch::Encoder | Arch::Hybrid) {
        if let Some(id) = ENCODER_OPTIONS.iter().find(|id| given(m, id)) {
            return refuse(format!(
                "{} applies to --arch encoder and hybrid; {arch} does not use it",
                flag(id)
            ));
        }
    }
    if !matches!(a.arch, Arch::Hybrid) && given(m, "cascade_keep") {
        return refuse(format!(
            "--cascade-keep applies to --arch hybrid (its cascade); {arch} has none"
        ));
    }
    if given(m, "cache_dir") && given(m, "no_cache") {
        return refuse("give --cache-dir DIR or --no-cache, not both".into());
    }
    match a.arch {
        Arch::Transformer if given(m, "no_refit") => {
            return refuse("--no-refit applies to bow; the transformer never trains again".into());
        }
        Arch::Encoder => {
            if let Some(id) = SCHEDULE_OPTIONS.iter().find(|id| given(m, id)) {
                return refuse(format!(
                    "{} does not apply to --arch encoder: its linear layer trains to its optimum",
                    flag(id)
                ));
            }
            if given(m, "valid_fraction") {
                return refuse(
                    "--valid-fraction does not apply to --arch encoder: it chooses its settings \
                     by cross-validation on all the training data"
                        .into(),
                );
            }
        }
        Arch::Bow | Arch::Hybrid => {
            let svm = matches!(a.loss, Some(LossArg::Svm | LossArg::NbSvm))
                || (a.loss.is_none() && a.dim == 0);
            if svm {
                if let Some(id) = SOFTMAX_OPTIONS.iter().find(|id| given(m, id)) {
                    return refuse(format!(
                        "{} applies to bow --loss softmax; the SVMs (--loss svm, nb-svm, the \
                         default) do not use it",
                        flag(id)
                    ));
                }
            }
        }
        Arch::Transformer => {}
    }
    if !matches!(a.arch, Arch::Bow) && given(m, "calibration_folds") {
        let instead = match a.arch {
            Arch::Transformer => "it would train again once per fold",
            _ => "it fits its weights on cross-validated log-loss instead",
        };
        return refuse(format!(
            "--calibration-folds applies to bow; {arch} does not use it ({instead})"
        ));
    }
    if a.multi_label && !matches!(a.arch, Arch::Bow) {
        return refuse(format!(
            "--multi-label applies to bow (one SVM per label); {arch} does not train one"
        ));
    }
    if a.multi_label && a.valid.is_some() {
        return refuse(
            "--valid does not apply to --multi-label: the model trains to its optimum and \
             chooses its thresholds on folds of the training data; measure it with eval"
                .into(),
        );
    }
    if a.data_args.label_separator.is_some() && !a.multi_label {
        return refuse(
            "--label-separator splits the labels of multi-label data: give it with --multi-label"
                .into(),
        );
    }
    if a.valid.is_some() && given(m, "valid_fraction") {
        return refuse(
            "give --valid FILE or --valid-fraction, not both: --valid replaces the cut".into(),
        );
    }
    Ok(())
}

pub fn train(a: TrainArgs, matches: &ArgMatches) -> Result<()> {
    refuse_inapplicable(&a, matches)?;
    if matches!(a.arch, Arch::Transformer) {
        tune_allocator();
    }
    check_threads(a.threads)?;
    let arch = match a.arch {
        Arch::Bow => ArchConfig::Bow(bow_config(&a)?),
        Arch::Hybrid => ArchConfig::Hybrid(HybridConfig {
            bow: bow_config(&a)?,
            max_tokens: a.max_tokens,
            cascade_keep: a.cascade_keep,
        }),
        Arch::Encoder => ArchConfig::Encoder(EncoderArchConfig {
            max_tokens: a.max_tokens,
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
        multi_label: a.multi_label,
        calibration_folds: match a.arch {
            Arch::Bow => a.calibration_folds,
            _ => 0,
        },
        threads: a.threads,
        command: Some(command_line()),
        progress: (!a.quiet).then(|| Arc::new(Bar::default()) as Arc<dyn TrainProgress>),
        cancel: Some(cancel_on_ctrl_c()),
        encoder: match &a.encoder {
            Some(dir) => Some(Arc::new(Encoder::load(dir)?)),
            None => None,
        },
        // --svm-c given: the hybrid's bow part takes that C, not one of the candidates.
        hybrid_svm_c: if given(matches, "svm_c") {
            Vec::new()
        } else {
            defaults.hybrid_svm_c.clone()
        },
        cv_by_source: a.cv_by_source,
        cv_copies: if a.cv_copies_together {
            khabar::Copies::Together
        } else {
            khabar::Copies::Apart
        },
        encoding_cache: if a.no_cache {
            None
        } else {
            a.cache_dir
                .clone()
                .or_else(default_cache_dir)
                .as_deref()
                .map(encodings_dir)
        },
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
    if matches!(a.arch, Arch::Transformer)
        && !a.quiet
        && std::env::var_os("CANDLE_NUM_THREADS").is_none()
    {
        // candle sizes its elementwise kernels' threads from the environment only, and those
        // threads compete with training's own.
        eprintln!(
            "note: CANDLE_NUM_THREADS is not set: candle's own threads compete with training's; \
             CANDLE_NUM_THREADS=1 trains the same model faster"
        );
    }
    let trainer = Trainer::new(config);
    let mut options = a.data_args.read_options()?;
    options.multi_label = a.multi_label;
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

/// The bow settings of the options (`--arch bow` and the bow part of `--arch hybrid`).
fn bow_config(a: &TrainArgs) -> Result<BowConfig> {
    Ok(BowConfig {
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
        class_weight: class_weight(a.class_weight.as_deref())?,
        ..BowConfig::default()
    })
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

/// The transformer allocates and frees many tensors of a few hundred kilobytes per step. glibc
/// serves those with mmap and gives them back with munmap each time, so every step pays page
/// faults for fresh zeroed pages; keeping them in the heap
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

/// This process's command line, as a shell would take it back (arguments with spaces or quotes
/// quoted), with the program's own path shortened to `khabar`.
fn command_line() -> String {
    let quote = |a: String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c))
        {
            a
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    std::iter::once("khabar".to_string())
        .chain(std::env::args().skip(1).map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--class-weight`: balanced, none, or a JSON file of weights by label.
fn class_weight(arg: Option<&str>) -> Result<ClassWeight> {
    match arg {
        None | Some("none") => Ok(ClassWeight::None),
        Some("balanced") => Ok(ClassWeight::Balanced),
        Some(file) => {
            let path = std::path::Path::new(file);
            let bytes = std::fs::read(path).map_err(|e| super::io_error(path, e))?;
            let map: std::collections::BTreeMap<String, f32> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Input {
                    at: khabar::Location::new(path, e.line()),
                    message: format!(
                        "--class-weight: expected a JSON object of weights by label, such as \
                         {{\"Health\": 4.0}}: {e}"
                    ),
                })?;
            Ok(ClassWeight::Given(map))
        }
    }
}
