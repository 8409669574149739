//! Training's progress drawn on stderr with indicatif: the library's [`TrainProgress`] events
//! as lines and a bar.

use std::sync::{Mutex, MutexGuard};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use khabar::TrainProgress;

/// Training's progress on stderr: its lines, a bar over the steps of each run of epochs, and
/// one over the pieces the encoder reads.
#[derive(Default)]
pub struct Bar {
    /// The bar of the run of epochs under way.
    bar: Mutex<Option<ProgressBar>>,
}

impl Bar {
    fn bar(&self) -> MutexGuard<'_, Option<ProgressBar>> {
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
        let bar = ProgressBar::with_draw_target(
            Some((steps_per_epoch * epochs) as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template(
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

    fn encoding_started(&self, texts: usize, tokens: usize) {
        let bar = ProgressBar::with_draw_target(Some(tokens as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {human_pos}/{human_len} pieces, {per_sec}, {elapsed} elapsed, eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("encoding {texts} texts"));
        *self.bar() = Some(bar);
    }

    fn encoded(&self, tokens: usize) {
        if let Some(bar) = &*self.bar() {
            bar.inc(tokens as u64);
        }
    }

    fn encoding_finished(&self) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
    }
}
