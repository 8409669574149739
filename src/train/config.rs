//! The settings of a training run ([`TrainConfig`]), their defaults per architecture, and
//! their one check.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{ArchConfig, BowConfig, Encoder, HybridConfig, Loss, TransformerConfig};
use crate::progress::TrainProgress;
use crate::text::TokenizerOptions;

/// Everything that shapes a training run. `Default` gives the `bow` model with settings that work
/// from a few thousand to tens of thousands of documents without tuning;
/// [`TrainConfig::for_arch`] gives the defaults of another architecture.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The model architecture and its hyperparameters.
    pub arch: ArchConfig,
    /// Subword vocabulary options.
    pub tokenizer: TokenizerOptions,
    /// Most epochs to run; the best epoch by validation macro-F1 is kept, or, for a model that
    /// trains to an optimum ([`TrainConfig::trains_to_optimum`]), the last, once there.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation macro-F1.
    pub patience: usize,
    /// Peak learning rate; decays linearly to zero over `epochs` (after the transformer's
    /// warmup).
    pub learning_rate: f64,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Seed of every random choice: the same data, seed and threads give the same model.
    pub seed: u64,
    /// Share of each label held out for validation when no validation set is given.
    pub valid_fraction: f64,
    /// With an automatic validation cut: once the best epoch is known, train again on all the
    /// training data for that many epochs (the cut's examples are then not wasted).
    pub refit: bool,
    /// Shrink a `bow` model once trained, as `khabar train` does (unless `--no-compact`): the
    /// head folded into the table, half precision, and `keep_ngrams` of the n-gram rows kept
    /// (see [`Classifier::compact`](crate::Classifier::compact)). The model then predicts the
    /// same up to rounding, from a smaller file. No effect on a transformer.
    pub compact: bool,
    /// The share of the n-gram rows `compact` keeps, those that move the scores most (1 keeps
    /// all). Above 0 and at most 1.
    pub keep_ngrams: f64,
    /// Threads of training, in a pool of khabar's own (`None`: one per core). The same data,
    /// seed and threads give the same model.
    pub threads: Option<usize>,
    /// Where training reports what it is doing (the lines `khabar train` prints, epochs and
    /// steps for a progress bar); `None` trains silently.
    pub progress: Option<Arc<dyn TrainProgress>>,
    /// The command that asked for this training, recorded in the bundle for `khabar info`
    /// (`khabar train` gives its own command line).
    pub command: Option<String>,
    /// When set (for example by a Ctrl-C handler), training stops at the next step and returns
    /// [`Error::Interrupted`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// The pretrained encoder of the `encoder` and `hybrid` architectures (`None`: the
    /// built-in one, [`Encoder::builtin`]).
    pub encoder: Option<Arc<Encoder>>,
    /// Folds of the cross-validation that calibrates a `bow` model's probabilities: the model
    /// trains again on each cut of the data without one fold and scores that fold, and a
    /// monotone map of the top probability is fitted on those held-out scores (see
    /// [`Calibrator`](crate::model::Calibrator)), so that a stated 0.9 is right about 9 times
    /// in 10. Training takes about `folds` times as long. 0 (or 1)
    /// leaves the probabilities uncalibrated. The other architectures do not use it (the
    /// encoder and hybrid models choose their weights on cross-validated log-loss).
    pub calibration_folds: usize,
    /// Train a multi-label model (`bow` with the SVM losses): one SVM per label against the
    /// rest, an example counting for each of its labels ([`Example::more_labels`]), and each
    /// label's threshold chosen on `calibration_folds`-fold held-out scores for that label's F1
    /// (0.5, the SVMs' own boundary, without folds). The model then answers every label over
    /// its threshold ([`Prediction::labels`](crate::Prediction::labels)).
    ///
    /// [`Example::more_labels`]: crate::Example::more_labels
    pub multi_label: bool,
    /// Where the encoder's vectors of training texts are kept between runs (see
    /// [`EncodingCache`](crate::model::encoder::EncodingCache)): training again on the same
    /// texts encodes none of them again. `None`: no cache.
    pub encoding_cache: Option<PathBuf>,
    /// The candidate `svm_c` of a `hybrid`'s bow part (with an SVM loss): each is scored by the
    /// same cross-validation that fits the hybrid's weights, and the smallest whose combined
    /// held-out accuracy is within a tenth of a point of the best is kept. A less regularized
    /// bow part can suit the sum, the encoder carrying the smooth, general part. Empty: the bow
    /// part's own `svm_c`, as `khabar train --svm-c` asks. Default: 0.3 (bow's own default), 1
    /// and 3. The other architectures do not use it.
    pub hybrid_svm_c: Vec<f32>,
    /// Cross-validate the `encoder` and `hybrid` architectures by source: the examples of each
    /// file in [`Corpus::sources`](crate::Corpus::sources) are held out together (the files
    /// grouped into up to five folds of about equal size), so that every choice made on the
    /// held-out scores (the encoder layer's penalty, the hybrid's weights and bow part, the
    /// unsure threshold) is made on sources the scoring models never saw. A hybrid's cascade is
    /// still fitted on stratified folds (its parts trained once more on those): it is there
    /// for speed on text like the training data. Needs a corpus read from two files or more.
    /// Off: folds stratified by label.
    pub cv_by_source: bool,
    /// How the `encoder` and `hybrid` architectures' stratified folds deal a text that the
    /// training data gives more than once. [`Copies::Apart`] (the default): each copy on its
    /// own, as a random test split deals them, so that the choices made on the held-out scores
    /// fit a corpus whose texts repeat (l3cube_en files one headline under several topics,
    /// and its test split repeats 1,641 training headlines: the hybrid scored 0.7077 with its
    /// copies kept together, 0.7219 with them apart, bow 0.7131). [`Copies::Together`]: each
    /// copy in its first one's fold, so that no model is scored on a text it trained on (the
    /// built-in model's recipe, which holds the same article in more than one corpus).
    pub cv_copies: Copies,
}

/// How cross-validation deals the copies of a text given more than once
/// ([`TrainConfig::cv_copies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Copies {
    /// Each copy dealt on its own, as a random test split deals them.
    #[default]
    Apart,
    /// Every copy in the fold of the first one.
    Together,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: ArchConfig::Bow(BowConfig::default()),
            tokenizer: TokenizerOptions::default(),
            // The default loss's SVMs stop at their optimum: this is only a limit.
            epochs: 20,
            patience: 3,
            learning_rate: BOW_LINEAR_LR,
            batch_size: 64,
            seed: 42,
            valid_fraction: 0.1,
            refit: true,
            compact: true,
            keep_ngrams: KEEP_NGRAMS,
            threads: None,
            progress: None,
            command: None,
            cancel: None,
            encoder: None,
            encoding_cache: None,
            calibration_folds: CALIBRATION_FOLDS,
            multi_label: false,
            hybrid_svm_c: HYBRID_SVM_C.to_vec(),
            cv_by_source: false,
            cv_copies: Copies::Apart,
        }
    }
}

impl TrainConfig {
    /// The default settings for `arch`: the schedule (epochs, learning rate, batch size) and
    /// vocabulary that suit it.
    pub fn for_arch(arch: ArchConfig) -> TrainConfig {
        match arch {
            ArchConfig::Bow(ref c) => TrainConfig {
                learning_rate: if c.dim == 0 {
                    BOW_LINEAR_LR
                } else {
                    BOW_FACTORED_LR
                },
                // The SVMs stop at their optimum (6 to 9 passes on the bench corpora).
                epochs: if c.loss == Loss::Softmax { 10 } else { 20 },
                arch,
                ..TrainConfig::default()
            },
            // The hybrid's schedule and vocabulary are its bow part's.
            ArchConfig::Hybrid(ref c) => TrainConfig {
                arch: arch.clone(),
                calibration_folds: 0,
                ..Self::for_arch(ArchConfig::Bow(c.bow.clone()))
            },
            // The encoder's layer trains to its optimum: no schedule.
            ArchConfig::Encoder(_) => TrainConfig {
                arch,
                calibration_folds: 0,
                ..TrainConfig::default()
            },
            ArchConfig::Transformer(_) => TrainConfig {
                arch,
                tokenizer: TokenizerOptions {
                    vocab_size: TRANSFORMER_VOCAB,
                    ..TokenizerOptions::default()
                },
                epochs: 6,
                patience: 3,
                learning_rate: 1e-3,
                batch_size: 32,
                // A second run would double the transformer's long training; so would the
                // folds of a calibration, many times over.
                refit: false,
                calibration_folds: 0,
                ..TrainConfig::default()
            },
        }
    }

    /// The model trains to an optimum (`bow` with an SVM loss): its epochs run until they reach
    /// it, with no epoch count to choose, so no examples need to be held out to choose one.
    pub fn trains_to_optimum(&self) -> bool {
        match &self.arch {
            ArchConfig::Bow(c) | ArchConfig::Hybrid(HybridConfig { bow: c, .. }) => {
                c.loss != Loss::Softmax
            }
            ArchConfig::Encoder(_) => true,
            ArchConfig::Transformer(_) => false,
        }
    }

    /// The transformer's default settings.
    pub fn transformer() -> TrainConfig {
        Self::for_arch(ArchConfig::Transformer(TransformerConfig::default()))
    }

    /// Checks the settings (ranges, sizes), as training does first: an error names the setting
    /// at fault ([`Error::Config`]).
    pub fn validate(&self) -> Result<()> {
        self.arch.clone().check()?;
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::config("learning_rate", "must be a positive number"));
        }
        if !(0.0..0.9).contains(&self.valid_fraction) {
            return Err(Error::config(
                "valid_fraction",
                "must be at least 0 and below 0.9",
            ));
        }
        if self.tokenizer.vocab_size < 100 {
            return Err(Error::config("vocab_size", "must be at least 100"));
        }
        if self.multi_label
            && !(matches!(self.arch, ArchConfig::Bow(_)) && self.trains_to_optimum())
        {
            return Err(Error::config(
                "multi_label",
                "applies to bow with the SVM losses (--loss nb-svm, the default, or svm): one SVM \
                 per label",
            ));
        }
        if self.calibration_folds == 1 {
            return Err(Error::config(
                "calibration_folds",
                "must be 0 (no calibration) or at least 2: one fold leaves nothing to train on",
            ));
        }
        if let Some(c) = self
            .hybrid_svm_c
            .iter()
            .find(|c| !(**c > 0.0 && c.is_finite()))
        {
            return Err(Error::config(
                "hybrid_svm_c",
                format!("every candidate must be a positive number (got {c})"),
            ));
        }
        if self.threads == Some(0) {
            return Err(Error::config("threads", "must be at least 1"));
        }
        if !(self.keep_ngrams > 0.0 && self.keep_ngrams <= 1.0) {
            return Err(Error::config(
                "keep_ngrams",
                format!(
                    "must be a fraction above 0 and at most 1 (got {})",
                    self.keep_ngrams
                ),
            ));
        }
        Ok(())
    }
}

/// Default share of the n-gram rows kept when a model is compacted after training
/// (`--keep-ngrams`). The rows a trained model's n-grams get are ranked by how much they move
/// the scores; dropping the lowest quarter costs no accuracy on the bench corpora and shrinks
/// the model files by about a quarter (bench/NOTES.md, seventh round).
const KEEP_NGRAMS: f64 = 0.75;
/// Folds of the default `bow` model's calibration ([`TrainConfig::calibration_folds`]): 2
/// bring the calibration error on the test splits of ag_news, l3cube_hi and bbc_en well
/// under 0.03, as 3 and 5 do, for the least training time (bench/NOTES.md, twelfth round).
const CALIBRATION_FOLDS: usize = 2;
/// The candidate C of a hybrid's bow part ([`TrainConfig::hybrid_svm_c`]): bow's default and
/// two less regularized.
const HYBRID_SVM_C: [f32; 3] = [0.3, 1.0, 3.0];
/// Default peak learning rate of the linear `bow` model (`dim` 0).
const BOW_LINEAR_LR: f64 = 0.15;
/// Default peak learning rate of a `bow` model with an embedding width (`--dim N`): its head
/// multiplies the table's steps, so it needs a smaller one.
const BOW_FACTORED_LR: f64 = 0.01;
/// Default vocabulary size of the transformer: smaller than bow's, because every row of its
/// embedding table must be learned from context.
const TRANSFORMER_VOCAB: usize = 8_000;
