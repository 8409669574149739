//! [`TrainProgress`]: how a training run tells a program what it is doing, with no terminal
//! code in the library (the `khabar` command line draws it as a progress bar on stderr).

use std::fmt;

/// Receives what a training run reports as it goes, to show it (a progress bar, a log) or
/// record it. Put one in [`TrainConfig::progress`](crate::TrainConfig::progress); without one,
/// training is silent.
///
/// Training calls it from the thread that runs the epochs, in this order: [`message`]s about
/// the data, the tokenizer and the features; then for each run of epochs [`run_started`], and
/// for each epoch [`epoch_started`], one [`step_done`] per optimizer step and
/// [`epoch_finished`], then [`run_finished`]; then more [`message`]s (the result). A training
/// that chooses its epoch count on a validation cut and then trains again on all the data may
/// hold two runs, one after the other. When training fails or is cancelled in the middle of a
/// run, [`run_finished`] is not called. The `encoder` and `hybrid` architectures first encode
/// the texts ([`encoding_started`](TrainProgress::encoding_started), then
/// [`encoded`](TrainProgress::encoded) as batches finish).
///
/// Every method does nothing by default: implement those you need.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use khabar::{Corpus, Example, TrainConfig, TrainProgress, Trainer};
///
/// /// Keeps the lines a `khabar train` would print.
/// #[derive(Default)]
/// struct Log(Mutex<Vec<String>>);
///
/// impl TrainProgress for Log {
///     fn message(&self, line: &str) {
///         self.0.lock().unwrap().push(line.to_string());
///     }
///     fn epoch_finished(&self, _epoch: usize, summary: &str) {
///         self.0.lock().unwrap().push(summary.to_string());
///     }
/// }
///
/// # fn main() -> khabar::Result<()> {
/// let mut examples = Vec::new();
/// for i in 0..20 {
///     examples.push(Example::new(format!("the striker scored a goal in match {i}"), "sports"));
///     examples.push(Example::new(format!("shares and markets rose in trading {i}"), "business"));
/// }
/// let log = Arc::new(Log::default());
/// let config = TrainConfig { progress: Some(log.clone()), ..TrainConfig::default() };
/// Trainer::new(config).train(&Corpus::from_examples(examples))?;
/// let lines = log.0.lock().unwrap();
/// assert!(lines.iter().any(|l| l.starts_with("epoch 1/")));
/// assert!(lines.iter().any(|l| l.starts_with("done in")));
/// # Ok(())
/// # }
/// ```
///
/// [`message`]: TrainProgress::message
/// [`run_started`]: TrainProgress::run_started
/// [`epoch_started`]: TrainProgress::epoch_started
/// [`step_done`]: TrainProgress::step_done
/// [`epoch_finished`]: TrainProgress::epoch_finished
/// [`run_finished`]: TrainProgress::run_finished
pub trait TrainProgress: Send + Sync {
    /// A line about the training, as `khabar train` prints it: what is trained on what data,
    /// the tokenizer, a warning, why training stops early, the result.
    fn message(&self, line: &str) {
        let _ = line;
    }

    /// A run of epochs starts: at most `epochs` epochs of `steps_per_epoch` optimizer steps
    /// each (early stopping, or reaching the optimum, may end it sooner).
    fn run_started(&self, epochs: usize, steps_per_epoch: usize) {
        let _ = (epochs, steps_per_epoch);
    }

    /// Epoch number `epoch` (counting from 1) of at most `epochs` starts.
    fn epoch_started(&self, epoch: usize, epochs: usize) {
        let _ = (epoch, epochs);
    }

    /// An optimizer step is done.
    fn step_done(&self) {}

    /// Epoch number `epoch` is done; `summary` is its line: loss, distance from the optimum,
    /// validation scores (for example `epoch 2/10: loss 0.3120, validation accuracy 0.8800,
    /// macro-F1 0.8750 (best so far)`).
    fn epoch_finished(&self, epoch: usize, summary: &str) {
        let _ = (epoch, summary);
    }

    /// The run of epochs has ended, all of them run or stopped early.
    fn run_finished(&self) {}

    /// The pretrained encoder (`encoder` and `hybrid` architectures) starts encoding `texts`
    /// texts, `tokens` pieces in all (those found in the encoding cache are not counted).
    fn encoding_started(&self, texts: usize, tokens: usize) {
        let _ = (texts, tokens);
    }

    /// The encoder has encoded `tokens` more pieces (called from the encoding threads).
    fn encoded(&self, tokens: usize) {
        let _ = tokens;
    }

    /// The encoding that [`encoding_started`](TrainProgress::encoding_started) announced is
    /// done.
    fn encoding_finished(&self) {}
}

/// So that [`TrainConfig`](crate::TrainConfig), which holds one, is `Debug`.
impl fmt::Debug for dyn TrainProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrainProgress")
    }
}
