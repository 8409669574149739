//! The `bow` model's hyperparameters and their one check.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Checked;

/// How the features of a document are weighted before pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Sublinear TF-IDF, L2-normalized.
    Tfidf,
    /// The mean of the feature rows (fastText).
    Mean,
}

/// How the embedding rows are updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SparseOptimizer {
    /// Adam on the touched rows ("lazy" Adam).
    #[default]
    Adam,
    /// Adagrad on the touched rows, one accumulator per weight.
    Adagrad,
    /// Adagrad on the touched rows with one accumulator per row (the mean square of the row's
    /// gradients): a feature's step size shrinks with how much it has been trained, the same for
    /// every label. Less state and work than per-weight Adagrad. On the linear model, updates are
    /// online (document by document; see `SoftmaxTrainer::step`).
    #[serde(rename = "adagrad-row")]
    AdagradRow,
    /// Plain SGD on per-example gradients (fastText).
    Sgd,
}

/// What training a linear `bow` model minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// Large-margin softmax cross-entropy (see [`BowConfig::margin`]), learned online; the
    /// only loss of a model with an embedding width (`dim` > 0).
    Softmax,
    /// One linear SVM per label against the rest (squared hinge, L2-regularized with
    /// [`BowConfig::svm_c`]), by dual coordinate descent: an epoch visits every document once.
    Svm,
    /// As `Svm`, on features scaled for each label by their naive Bayes log-count ratio
    /// (NBSVM, Wang & Manning 2012): features that tell a label apart cost less to use.
    NbSvm,
}

/// Hyperparameters of the `bow` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BowConfig {
    /// Width of the embedding table. 0 (the default) trains a linear model: the table gets one
    /// column per label and the head stays the identity, as in a model folded by
    /// [`Bow::compact`](super::Bow::compact) (the saved config then holds the number of labels and `folded`).
    pub dim: usize,
    /// Longest word n-gram (2 = bigrams). 1 turns n-grams off.
    pub ngram_order: usize,
    /// Also use whole words as features, besides their subwords.
    pub word_unigrams: bool,
    /// A word n-gram (two words or more) must occur in at least this many training documents.
    pub min_count: usize,
    /// A whole word or character n-gram must occur in at least this many training documents
    /// (bundles written before the field existed used `min_count` for both: 2).
    #[serde(default = "two")]
    pub min_count_words: usize,
    /// At most this many n-gram rows (the most frequent are kept).
    pub max_ngrams: usize,
    /// How features are weighted before pooling.
    pub weighting: Weighting,
    /// Character n-grams of each word (with "<" and ">" marking its ends), shortest and longest;
    /// `[0, 0]` turns them off.
    #[serde(default)]
    pub char_ngrams: [usize; 2],
    /// How the table is trained.
    #[serde(default)]
    pub optimizer: SparseOptimizer,
    /// Learning rate of the table relative to the head's.
    #[serde(default = "one")]
    pub table_lr_scale: f32,
    /// Additive margin subtracted from the true label's logit in training (large-margin
    /// softmax).
    #[serde(default)]
    pub margin: f32,
    /// The table has been multiplied by the head (see [`CompactOptions::fold`]); `dim` is then
    /// the number of labels.
    #[serde(default)]
    pub folded: bool,
    /// The weights are stored in half precision.
    #[serde(default)]
    pub half: bool,
    /// What training minimizes: [`Loss::NbSvm`] by default; [`Loss::Softmax`] for a model
    /// with an embedding width (and in bundles written before the field existed).
    #[serde(default = "softmax")]
    pub loss: Loss,
    /// Inverse regularization strength of [`Loss::Svm`] and [`Loss::NbSvm`], relative to the
    /// documents' mean squared length (under each label's naive Bayes scaling): each label's
    /// SVM gets `C = svm_c / mean |r x|^2`.
    #[serde(default = "default_svm_c")]
    pub svm_c: f32,
    /// How much each label's documents weigh in training, for corpora where some labels are
    /// rare ([`Loss::Svm`] and [`Loss::NbSvm`]): each label's SVM gives its own documents `C`
    /// times the label's weight.
    #[serde(default, skip_serializing_if = "ClassWeight::is_none")]
    pub class_weight: ClassWeight,
}

/// Weights of the labels' documents in training (see [`BowConfig::class_weight`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every document weighs the same.
    #[default]
    None,
    /// A label's documents weigh `n / (labels * n_label)`: rare labels as much as common ones
    /// in all.
    Balanced,
    /// These weights, by label (labels not named weigh 1).
    Given(std::collections::BTreeMap<String, f32>),
}

impl ClassWeight {
    /// Whether every document weighs the same.
    pub fn is_none(&self) -> bool {
        matches!(self, ClassWeight::None)
    }

    /// The weight of each of `labels`, given each label's number of training documents; empty
    /// when every document weighs the same. A weight for a label the data does not have is an
    /// error (a misspelled label would otherwise weigh nothing).
    pub(crate) fn resolve(&self, labels: &[String], counts: &[usize]) -> Result<Vec<f32>> {
        match self {
            ClassWeight::None => Ok(Vec::new()),
            ClassWeight::Balanced => {
                let n: usize = counts.iter().sum();
                Ok(counts
                    .iter()
                    .map(|&c| (n as f64 / (labels.len() as f64 * c.max(1) as f64)) as f32)
                    .collect())
            }
            ClassWeight::Given(map) => {
                if let Some(unknown) = map.keys().find(|l| !labels.contains(l)) {
                    return Err(Error::config(
                        "class_weight",
                        format!(
                            "names the label '{unknown}', which the training data does not have \
                             (its labels: {})",
                            labels.join(", ")
                        ),
                    ));
                }
                Ok(labels
                    .iter()
                    .map(|l| map.get(l).copied().unwrap_or(1.0))
                    .collect())
            }
        }
    }
}

fn softmax() -> Loss {
    Loss::Softmax
}

fn default_svm_c() -> f32 {
    0.3
}

fn one() -> f32 {
    1.0
}

fn two() -> usize {
    2
}

/// How [`Bow::compact`](super::Bow::compact) shrinks a trained model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactOptions {
    /// Multiply the table by the head: the table gets one column per label and the head becomes
    /// the identity. Predictions stay the same (up to rounding).
    pub fold: bool,
    /// Store the weights in half precision (f16).
    pub half: bool,
    /// Keep at most this many n-gram rows: those that move the logits most (largest
    /// `idf * |row|` after folding).
    pub max_ngrams: Option<usize>,
}

impl Default for BowConfig {
    fn default() -> Self {
        BowConfig {
            dim: 0,
            ngram_order: 2,
            word_unigrams: true,
            min_count: 2,
            min_count_words: 1,
            max_ngrams: 2_000_000,
            weighting: Weighting::Tfidf,
            char_ngrams: [3, 4],
            optimizer: SparseOptimizer::AdagradRow,
            table_lr_scale: 1.0,
            margin: 5.0,
            folded: false,
            half: false,
            loss: Loss::NbSvm,
            svm_c: default_svm_c(),
            class_weight: ClassWeight::None,
        }
    }
}

impl Loss {
    /// The name the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Softmax => "softmax",
            Loss::Svm => "svm",
            Loss::NbSvm => "nb-svm",
        }
    }
}

impl BowConfig {
    /// Checks the hyperparameters once; the error names the field at fault
    /// ([`Error::Config`]). Trainers and the bundle loader take the checked settings.
    pub fn check(self) -> Result<Checked<BowConfig>> {
        let field = |name, reason: String| Error::config(name, reason);
        if self.dim > 4096 {
            return Err(field(
                "dim",
                format!(
                    "must be between 0 (one column per label) and 4096 (got {})",
                    self.dim
                ),
            ));
        }
        if self.ngram_order == 0 || self.ngram_order > 6 {
            return Err(field(
                "ngram_order",
                format!("must be between 1 and 6 (got {})", self.ngram_order),
            ));
        }
        if !(self.margin >= 0.0 && self.margin.is_finite()) {
            return Err(field("margin", "must be 0 or more".into()));
        }
        if !(self.table_lr_scale > 0.0 && self.table_lr_scale.is_finite()) {
            return Err(field("table_lr_scale", "must be a positive number".into()));
        }
        let [lo, hi] = self.char_ngrams;
        if (lo == 0) != (hi == 0) || lo > hi || hi > 12 {
            return Err(field(
                "char_ngrams",
                format!(
                    "must be MIN-MAX with 1 <= MIN <= MAX <= 12, or 0-0 for none (got {lo}-{hi})"
                ),
            ));
        }
        if self.min_count == 0 {
            return Err(field("min_count", "must be at least 1".into()));
        }
        if self.min_count_words == 0 {
            return Err(field("min_count_words", "must be at least 1".into()));
        }
        if !(self.svm_c > 0.0 && self.svm_c.is_finite()) {
            return Err(field("svm_c", "must be a positive number".into()));
        }
        if let ClassWeight::Given(map) = &self.class_weight {
            if let Some((label, w)) = map.iter().find(|(_, w)| !(**w > 0.0 && w.is_finite())) {
                return Err(field(
                    "class_weight",
                    format!("must be positive numbers (got {w} for '{label}')"),
                ));
            }
        }
        if !self.class_weight.is_none() && self.loss == Loss::Softmax {
            return Err(field(
                "class_weight",
                "applies to the SVM losses (svm, nb-svm); softmax does not use it".into(),
            ));
        }
        if self.loss != Loss::Softmax && self.dim != 0 && !self.folded {
            return Err(field(
                "loss",
                format!(
                    "{} trains a linear model: leave dim at 0 (got {}), or train with loss softmax",
                    self.loss.name(),
                    self.dim
                ),
            ));
        }
        Ok(Checked(self))
    }
}
