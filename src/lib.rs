//! # khabar
//!
//! A news-topic classifier: train a model on your own labeled articles, classify new ones, and
//! measure a model. Hindi and English are first-class; any language that Unicode spells works.
//!
//! The pipeline runs one way:
//!
//! ```text
//! corpus files ─► Example{text, label} ─► NFKC + lowercase ─► WordPiece subwords (trained)
//!   ─► subword ids + word n-grams ─► bag-of-n-grams model (candle) ─► softmax ─► labels
//!   ─► subword ids in windows ─────► transformer encoder (candle) ─┤
//!   "query: " + XLM-R pieces ─► pretrained encoder ─► vector ─► linear layer ─┘ (+ bow: hybrid)
//! ```
//!
//! Four architectures: `bow` (the default; [`BowConfig`]), fast and strong on small corpora;
//! `transformer` ([`TransformerConfig`]), a small encoder trained from scratch that reads word
//! order; and two that read the pretrained multilingual encoder built into the library
//! ([`Encoder`]): `encoder` ([`EncoderArchConfig`]: its sentence vector and a linear layer) and
//! `hybrid` ([`HybridConfig`]: bow and that layer, weighted on cross-validated scores), which
//! know words and languages their training corpus never showed them, at about a hundredth of
//! bow's speed. [`TrainConfig::for_arch`] gives each one's default schedule. By default `bow` trains
//! one linear SVM per label on naive-Bayes-scaled features ([`Loss::NbSvm`]) to their optimum;
//! [`Loss::Softmax`] learns a softmax online instead (and is the loss of a model with an
//! embedding width).
//!
//! Train, save, load and predict:
//!
//! ```
//! use khabar::{Classifier, Corpus, Example, TrainConfig, Trainer};
//!
//! # fn main() -> khabar::Result<()> {
//! let mut examples = Vec::new();
//! for i in 0..20 {
//!     examples.push(Example::new(format!("the striker scored a goal in match {i}"), "sports"));
//!     examples.push(Example::new(format!("shares and markets rose in trading {i}"), "business"));
//! }
//! let corpus = Corpus::from_examples(examples);
//! let config = TrainConfig { valid_fraction: 0.0, ..TrainConfig::default() };
//! let clf = Trainer::new(config).train(&corpus)?;
//!
//! let dir = tempfile::tempdir().unwrap();
//! clf.save(dir.path().join("model"))?;
//! let clf = Classifier::load(dir.path().join("model"))?;
//!
//! let p = clf.predict("a late goal won the match")?;
//! assert_eq!(p.label, "sports");
//! let ps = clf.predict_batch(&["markets fell in trading", "the striker was injured"])?;
//! assert_eq!(ps[0].label, "business");
//! # Ok(())
//! # }
//! ```
//!
//! A [`Classifier`] is `Send + Sync`: load it once and share it between threads.
//! [`Classifier::evaluate`] measures one on a labeled corpus (accuracy, macro-F1, per-class
//! scores, confusion matrix), as `khabar eval` does. Training is silent unless
//! [`TrainConfig::progress`] holds a [`TrainProgress`], which hears of its lines, epochs and
//! steps (the `khabar` command line draws them as a progress bar); [`TrainConfig::cancel`]
//! stops it.
//!
//! ## Features
//!
//! The default feature `cli` builds the `khabar` command line, and with it clap, indicatif and
//! ctrlc, which the library does not use; the default feature `serve` builds [`serve`], the
//! HTTP server that `khabar serve` runs (axum, tokio, utoipa). A program that uses only the
//! library leaves them out:
//!
//! ```toml
//! [dependencies]
//! khabar = { version = "0.1", default-features = false }
//! ```

#![warn(missing_docs)]

pub mod bundle;
mod classifier;
pub mod corpus;
mod error;
mod explain;
pub mod metrics;
pub mod model;
mod progress;
mod rng;
#[cfg(feature = "serve")]
pub mod serve;
pub mod text;
mod threads;
mod train;

pub use bundle::BundleConfig;
pub use classifier::{Classifier, LabelScore, Prediction};
pub use corpus::{BadRow, Corpus, Example, Format, LabelMap, ReadOptions, ReadReport};
pub use error::{Error, Location, Result};
pub use explain::{Contribution, Explanation, FeatureKind, TopFeatures};
pub use metrics::{Calibration, ConfidenceBin, Coverage, Evaluation, MultiEvaluation, Scored};
pub use model::{
    ArchConfig, BowConfig, CompactOptions, Encoder, EncoderArchConfig, EncoderId, HybridConfig,
    Loss, TransformerConfig, Weighting,
};
pub use progress::TrainProgress;
pub use text::TokenizerOptions;
pub use train::{Copies, TrainConfig, Trainer};
