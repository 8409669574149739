//! The `bow` model: a fastText-style bag of subwords and word n-grams.
//!
//! A document becomes a sparse vector over the rows of one table: its WordPiece subword ids,
//! then its word n-grams, whole words and character n-grams that were seen often enough in
//! training (`features`). Each feature is weighted by sublinear TF-IDF (`(1 + ln tf) * idf`),
//! L2-normalized, or by plain averaging as fastText does (`weights`). A linear layer turns the
//! pooled vector into one logit per label; prediction pools rows already multiplied by it
//! (`packed`).
//!
//! Training prepares the documents once (`prepare`); then one of two trainers learns the
//! weights: one SVM per label, solved to its optimum (`svm`, the default), or a softmax
//! learned by gradient steps (`softmax`).
//!
//! The data flows one way: `config` → `features` → `prepare` → `svm` / `softmax` → `model`
//! (which `packed`, `index`, `counts` and `weights` serve) → `explain` (each feature's share of
//! a logit, named by the text it came from).

mod config;
mod counts;
mod explain;
mod features;
mod index;
mod model;
mod packed;
mod prepare;
mod softmax;
mod svm;
#[cfg(test)]
mod svm_tests;
#[cfg(test)]
mod tests;
mod weights;

use std::sync::Arc;

pub use config::{BowConfig, ClassWeight, CompactOptions, Loss, SparseOptimizer, Weighting};
pub(crate) use explain::{Term, TermKind};
pub use model::Bow;
pub(crate) use model::Scratch;

use crate::error::Result;
use crate::model::{Checked, Fit};
use crate::text::Tokenizer;

/// The trainer for `config`: the documents featurized once, then the SVMs or the softmax
/// trainer on them. `more_targets`: each document's other labels, for multi-label training
/// (the SVMs only; empty for single-label data).
pub(crate) fn trainer(
    config: Checked<BowConfig>,
    tokenizer: &Tokenizer,
    texts: &[&str],
    targets: Vec<u32>,
    more_targets: Vec<Vec<u32>>,
    labels: &[String],
    seed: u64,
) -> Result<Box<dyn Fit>> {
    let mut counts = vec![0usize; labels.len()];
    for &t in targets.iter().chain(more_targets.iter().flatten()) {
        counts[t as usize] += 1;
    }
    let class_weights = config.class_weight.resolve(labels, &counts)?;
    let mut prepared = prepare::Prepared::new(config, tokenizer, texts, targets, labels.len());
    if !more_targets.is_empty() && !prepared.trains_svms() {
        return Err(crate::Error::config(
            "loss",
            "a multi-label model trains one SVM per label: use --loss nb-svm or svm",
        ));
    }
    prepared.more_targets = more_targets;
    prepared.class_weights = class_weights;
    let prepared = Arc::new(prepared);
    Ok(if prepared.trains_svms() {
        Box::new(svm::SvmTrainer::new(prepared))
    } else {
        Box::new(softmax::SoftmaxTrainer::new(prepared, seed))
    })
}
