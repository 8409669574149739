//! The training loop: label set, validation cut, tokenizer, epochs with a learning-rate
//! schedule, model selection by validation macro-F1, early stopping, progress reported to a
//! [`TrainProgress`]. The architectures that read the pretrained encoder train in `encoded`.

mod config;
mod encoded;
mod heldout;

pub use config::{Copies, TrainConfig};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::bundle::{BundleConfig, Normalization, TrainingInfo, FORMAT_VERSION};
use crate::classifier::Classifier;
use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::metrics::Evaluation;
use crate::model::transformer::TransformerTrainer;
use crate::model::{argmax, bow, ArchConfig, CompactOptions, Fit, Mode, Model, Workspace};
use crate::progress::TrainProgress;
use crate::rng::SplitMix64;
use crate::text::Tokenizer;
use crate::threads;

/// Training that solves for an optimum (the SVMs) ends once an epoch finds the weights within
/// this of it: no optimality condition violated by more (LIBLINEAR's default for its dual
/// solvers is 0.1).
const OPTIMUM_TOLERANCE: f32 = 0.1;

/// Below this many training examples, training a transformer says that bow will likely do
/// better: a transformer learns every word's meaning from its own corpus.
const SMALL_FOR_TRANSFORMER: usize = 5_000;

/// What [`Trainer::epochs`] needs besides the model: validation texts with their label
/// indices, and what scoring them takes.
#[derive(Clone, Copy)]
struct EpochContext<'a> {
    tokenizer: &'a Tokenizer,
    labels: &'a [String],
    valid: &'a [(&'a str, usize)],
    /// The validation examples are also the trainer's prepared documents from this index on
    /// (the cut at the end of the corpus), so they can be scored without their text.
    valid_docs: Option<usize>,
    /// Keep a copy of the chosen epoch's model (not needed when only the epoch count is).
    keep_model: bool,
}

/// Where [`Trainer::run`] finds its validation data.
enum Valid<'a> {
    None,
    /// A separate corpus, and how to name it.
    Corpus(&'a Corpus, String),
    /// The examples after the training part of the corpus, and how to name them.
    Tail(String),
}

/// The epoch [`Trainer::epochs`] kept.
struct Chosen {
    f1: f64,
    accuracy: f64,
    epoch: usize,
    /// Epochs run in all (early stopping may end before the last).
    epochs_run: usize,
    /// The model after that epoch, when [`EpochContext::keep_model`] asked for it.
    model: Option<Model>,
}

/// What the validation run says of each epoch to the run on all the data beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The best epoch so far: keep the model after this epoch.
    Keep,
    /// Not better; go on.
    Next,
    /// Not better, and early stopping ends the training here.
    Stop,
}

/// The epochs of one training run over the first `n` documents: the shuffled order, the step
/// count and the learning-rate schedule (linear decay to zero over all `epochs` of the
/// configuration, whatever number runs).
struct Pass {
    n: usize,
    batch_size: usize,
    peak_lr: f64,
    total_steps: f64,
    warmup_steps: f64,
    rng: SplitMix64,
    order: Vec<usize>,
    step: usize,
    cancel: Option<Arc<AtomicBool>>,
}

impl Pass {
    fn new(cfg: &TrainConfig, trainer: &mut dyn Fit, n: usize) -> Pass {
        debug_assert!(n <= trainer.num_docs());
        trainer.begin(n);
        let batch_size = trainer.batch_size(cfg.batch_size);
        let total_steps = (n.div_ceil(batch_size) * cfg.epochs) as f64;
        Pass {
            n,
            batch_size,
            peak_lr: cfg.learning_rate,
            total_steps,
            warmup_steps: (trainer.warmup() * total_steps).round(),
            rng: SplitMix64::new(cfg.seed.wrapping_add(1)),
            order: (0..n).collect(),
            step: 0,
            cancel: cfg.cancel.clone(),
        }
    }

    fn steps_per_epoch(&self) -> usize {
        self.n.div_ceil(self.batch_size)
    }

    /// Runs epoch number `epoch`, telling `progress` of each step; the mean loss, or `None`
    /// when `abandon` (asked before each step) said the epoch is not needed.
    fn epoch(
        &mut self,
        trainer: &mut dyn Fit,
        epoch: usize,
        progress: Option<&dyn TrainProgress>,
        abandon: &mut dyn FnMut() -> bool,
    ) -> Result<Option<f64>> {
        self.rng.shuffle(&mut self.order);
        let mut loss_sum = 0.0f64;
        for batch in trainer.batches(&self.order, self.batch_size, &mut self.rng) {
            check_cancel(&self.cancel)?;
            if abandon() {
                return Ok(None);
            }
            let lr = schedule(
                self.peak_lr,
                self.step as f64,
                self.total_steps,
                self.warmup_steps,
            );
            let loss = trainer.step(&batch, lr)?;
            if !loss.is_finite() {
                return Err(Error::Usage(format!(
                    "training diverged at epoch {epoch} (loss {loss}); try a lower learning rate"
                )));
            }
            loss_sum += loss as f64 * batch.len() as f64;
            self.step += 1;
            if let Some(p) = progress {
                p.step_done();
            }
        }
        Ok(Some(loss_sum / self.n as f64))
    }
}

fn check_cancel(cancel: &Option<Arc<AtomicBool>>) -> Result<()> {
    match cancel {
        Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Interrupted),
        _ => Ok(()),
    }
}

/// Trains classifiers.
#[derive(Debug, Clone, Default)]
pub struct Trainer {
    config: TrainConfig,
}

impl Trainer {
    /// A trainer with these settings.
    pub fn new(config: TrainConfig) -> Self {
        Trainer { config }
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains on `corpus`, holding out a stratified `valid_fraction` of it to choose the epoch
    /// (then, with `refit`, training again on all of it for that many epochs), and compacts
    /// the model (`compact`).
    pub fn train(&self, corpus: &Corpus) -> Result<Classifier> {
        self.config.validate()?;
        threads::install(self.config.threads, || {
            if self.config.arch.uses_encoder() {
                return Ok(self.compact(self.train_encoded(corpus, None)?));
            }
            let mut clf = self.compact(self.train_as_trained(corpus)?);
            if self.config.multi_label {
                self.fit_thresholds(&mut clf, corpus)?;
            } else {
                self.calibrate(&mut clf, corpus)?;
            }
            Ok(clf)
        })?
    }

    /// [`Trainer::train`] without the compaction.
    fn train_as_trained(&self, corpus: &Corpus) -> Result<Classifier> {
        let to_optimum = self.config.trains_to_optimum() && self.config.refit;
        if self.config.valid_fraction <= 0.0 || to_optimum {
            return self.run(corpus, corpus.len(), Valid::None);
        }
        let (train, valid) = corpus.stratified_split(self.config.valid_fraction, self.config.seed);
        let description = format!(
            "automatic stratified cut of {}% of the training data",
            (self.config.valid_fraction * 100.0).round()
        );
        if !self.config.refit {
            return self.run(&train, train.len(), Valid::Corpus(&valid, description));
        }
        // The training part first, then the cut: one tokenizer and one set of features serve
        // both the run that chooses the epoch and the run on everything.
        let n = train.len();
        let mut all = train;
        all.examples.extend(valid.examples);
        all.sources.clone_from(&corpus.sources);
        self.run(&all, n, Valid::Tail(description))
    }

    /// Trains on `train` and selects the epoch by its macro-F1 on `valid`, then compacts the
    /// model (`compact`).
    pub fn train_with_valid(&self, train: &Corpus, valid: &Corpus) -> Result<Classifier> {
        let description = source_names(valid).join(", ");
        self.config.validate()?;
        threads::install(self.config.threads, || {
            if self.config.arch.uses_encoder() {
                return Ok(self.compact(self.train_encoded(train, Some((valid, description)))?));
            }
            if self.config.multi_label {
                return Err(Error::Usage(
                    "a multi-label model takes no validation data: it trains to its optimum and \
                     chooses its thresholds on folds of the training data; measure it with eval"
                        .into(),
                ));
            }
            let trained = self.run(train, train.len(), Valid::Corpus(valid, description))?;
            let mut clf = self.compact(trained);
            self.calibrate(&mut clf, train)?;
            Ok(clf)
        })?
    }

    /// The trained model compacted as `compact` and `keep_ngrams` say (after training has
    /// freed its documents and weights, so the two do not add up in memory).
    fn compact(&self, clf: Classifier) -> Classifier {
        let bow = match clf.model() {
            Model::Bow(bow) => bow,
            Model::Hybrid(h) => h.bow(),
            Model::Transformer(_) | Model::Encoder(_) => return clf,
        };
        if !self.config.compact {
            return clf;
        }
        let keep = self.config.keep_ngrams;
        let max_ngrams = (keep < 1.0).then(|| {
            let n = bow.num_ngrams();
            let kept = (n as f64 * keep).round() as usize;
            self.say(&format!(
                "kept {kept} of the {n} n-gram rows, those that move the scores most (--keep-ngrams {keep})"
            ));
            kept
        });
        clf.compact(CompactOptions {
            fold: true,
            half: true,
            max_ngrams,
        })
    }

    /// One training: the tokenizer and features are prepared from all of `corpus`; the epochs
    /// run on its first `n_train` examples, and the best epoch by macro-F1 on the validation
    /// data is kept. With [`Valid::Tail`], the rest of the corpus is the validation data, and
    /// once the epoch is chosen, training starts again on the whole corpus for that many
    /// epochs.
    fn run(&self, corpus: &Corpus, n_train: usize, valid: Valid) -> Result<Classifier> {
        let cfg = &self.config;
        cfg.validate()?;
        let started = Instant::now();
        let started_at = rfc3339_now();
        let refit = matches!(valid, Valid::Tail(_));

        let (labels, targets) = labels_and_targets(corpus)?;
        if !cfg.multi_label {
            if let Some(e) = corpus.examples.iter().find(|e| !e.more_labels.is_empty()) {
                return Err(Error::Usage(format!(
                    "the data has examples of several labels (\"{}\": {}): train a multi-label \
                     model (--multi-label), or read only the first label of each",
                    e.text.chars().take(40).collect::<String>(),
                    e.labels().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let label_index = |l: &str| labels.binary_search_by(|x| x.as_str().cmp(l)).ok();
        let (valid_examples, valid_description) = match valid {
            Valid::Corpus(v, d) => (&v.examples[..], d),
            Valid::Tail(d) => (&corpus.examples[n_train..], d),
            Valid::None if cfg.trains_to_optimum() => (
                &[][..],
                "none: the SVMs train to their optimum on all the examples".to_string(),
            ),
            Valid::None => (&[][..], "none".to_string()),
        };
        let mut valid_pairs: Vec<(&str, usize)> = Vec::new();
        let mut unknown = 0;
        for e in valid_examples {
            match label_index(&e.label) {
                Some(i) => valid_pairs.push((e.text.as_str(), i)),
                None => unknown += 1,
            }
        }
        if unknown > 0 {
            self.say(&format!(
                "warning: {unknown} validation example(s) have labels absent from the training data; they are not used"
            ));
        }

        let texts: Vec<&str> = corpus.examples.iter().map(|e| e.text.as_str()).collect();
        self.check_cancel()?;
        let tokenizer = Tokenizer::train(&texts, &cfg.tokenizer)?;
        self.check_cancel()?;
        self.say(&format!(
            "tokenizer: {} subwords learned in {:.1} s",
            tokenizer.vocab_size(),
            started.elapsed().as_secs_f64()
        ));
        if matches!(cfg.arch, ArchConfig::Transformer(_)) && n_train < SMALL_FOR_TRANSFORMER {
            self.say(&format!(
                "warning: {n_train} training examples is few for a transformer trained from \
                 scratch: on sib200_eng_Latn (701) it scored 0.48 where bow scored 0.77; bow is \
                 the better choice below about {SMALL_FOR_TRANSFORMER} examples"
            ));
        }
        let what = match &cfg.arch {
            ArchConfig::Bow(c) => format!("bow (--loss {})", c.loss.name()),
            arch => arch.name().to_string(),
        };
        if valid_pairs.is_empty() && cfg.trains_to_optimum() {
            self.say(&format!(
                "training {what} on all {n_train} examples, {} labels, to the SVMs' optimum (no validation cut)",
                labels.len()
            ));
        } else {
            self.say(&format!(
                "training {what} on {n_train} examples, {} labels; validation: {} examples ({valid_description})",
                labels.len(),
                valid_pairs.len(),
            ));
        }
        let mut trainer: Box<dyn Fit> = match &cfg.arch {
            ArchConfig::Bow(c) => bow::trainer(
                c.clone().check()?,
                &tokenizer,
                &texts,
                targets,
                if cfg.multi_label {
                    more_targets(corpus, &labels)
                } else {
                    Vec::new()
                },
                &labels,
                cfg.seed,
            )?,
            ArchConfig::Transformer(c) => Box::new(TransformerTrainer::new(
                c.clone().check()?,
                &tokenizer,
                &texts,
                targets,
                labels.len(),
                cfg.seed,
            )?),
            ArchConfig::Encoder(_) | ArchConfig::Hybrid(_) => {
                return Err(Error::Internal(
                    "the encoder architectures train in train_encoded".into(),
                ))
            }
        };
        self.say(&format!(
            "{}; ready to train at {:.1} s",
            trainer.summary(),
            started.elapsed().as_secs_f64()
        ));

        let ctx = EpochContext {
            tokenizer: &tokenizer,
            labels: &labels,
            valid: &valid_pairs,
            valid_docs: refit.then_some(n_train),
            keep_model: !refit,
        };
        let (chosen, model) = if refit {
            self.select_and_refit(trainer, n_train, corpus.len(), &ctx)?
        } else {
            let mut chosen = self.epochs(trainer.as_mut(), n_train, &ctx, None, &mut |_| {})?;
            let model = chosen
                .model
                .take()
                .expect("the chosen epoch's model is kept");
            (chosen, model)
        };
        let (f1, acc, best_epoch, epochs_run) =
            (chosen.f1, chosen.accuracy, chosen.epoch, chosen.epochs_run);

        let seconds = started.elapsed().as_secs_f64();
        let info = TrainingInfo {
            data: source_names(corpus),
            valid: valid_description,
            train_examples: if refit { corpus.len() } else { n_train },
            valid_examples: valid_pairs.len(),
            seed: cfg.seed,
            threads: rayon::current_num_threads(),
            epochs: epochs_run,
            best_epoch,
            learning_rate: cfg.learning_rate,
            batch_size: cfg.batch_size,
            vocab_size: tokenizer.vocab_size(),
            started_at,
            seconds,
            valid_accuracy: if acc.is_nan() { 0.0 } else { acc },
            valid_macro_f1: if valid_pairs.is_empty() { 0.0 } else { f1 },
            refit,
            label_counts: {
                let trained_on = if refit { corpus.len() } else { n_train };
                let mut counts = std::collections::BTreeMap::new();
                for label in corpus.examples[..trained_on]
                    .iter()
                    .flat_map(|e| e.labels())
                {
                    *counts.entry(label.to_string()).or_insert(0) += 1;
                }
                counts
            },
            command: cfg.command.clone(),
        };
        if !valid_pairs.is_empty() {
            self.say(&format!(
                "done in {seconds:.1} s: best epoch {best_epoch} of {epochs_run}, validation accuracy {acc:.4}, macro-F1 {f1:.4}{}",
                if refit { ", then trained on everything" } else { "" }
            ));
        } else {
            self.say(&format!("done in {seconds:.1} s: {epochs_run} epochs"));
        }
        Ok(self.classifier(corpus, labels, tokenizer, model, info))
    }

    /// The trained classifier and its bundle configuration: `model` with its `labels` and
    /// `tokenizer`, the training's `info`, the corpus's label map and the encoder the model
    /// reads, if any.
    fn classifier(
        &self,
        corpus: &Corpus,
        labels: Vec<String>,
        tokenizer: Tokenizer,
        model: Model,
        info: TrainingInfo,
    ) -> Classifier {
        Classifier {
            config: BundleConfig {
                format_version: FORMAT_VERSION,
                khabar_version: env!("CARGO_PKG_VERSION").to_string(),
                architecture: model.config(),
                labels,
                normalization: Normalization::default(),
                training: Some(info),
                label_map: corpus.label_map.clone(),
                encoder: model.encoder().map(|(e, _)| e.id()),
                unsure_below: None,
                calibrator: None,
                multi_label: None,
                checksums: Default::default(),
            },
            tokenizer,
            model,
            threads: self.config.threads,
            mode: Mode::default(),
            encoding_cache: None,
        }
    }

    /// Chooses the epoch count on the validation cut at the end of the corpus (its first
    /// `n_train` documents train), and trains on all `n_all` documents for that many epochs.
    /// With two or more threads, the run on all documents goes alongside the validation run
    /// on a second trainer, told after each epoch whether to keep it; otherwise it follows.
    /// Both ways give the same model.
    fn select_and_refit(
        &self,
        mut trainer: Box<dyn Fit>,
        n_train: usize,
        n_all: usize,
        ctx: &EpochContext,
    ) -> Result<(Chosen, Model)> {
        let cfg = &self.config;
        let all = EpochContext {
            valid: &[],
            valid_docs: None,
            keep_model: true,
            ..*ctx
        };
        let fork = if rayon::current_num_threads() >= 2 {
            trainer.fork()?
        } else {
            None
        };
        let Some(beside) = fork else {
            let chosen = self.epochs(trainer.as_mut(), n_train, ctx, None, &mut |_| {})?;
            self.say(&format!(
                "training again on all {n_all} examples for {} epoch(s), the best number on validation",
                chosen.epoch
            ));
            trainer.restart()?;
            let model = self
                .epochs(
                    trainer.as_mut(),
                    n_all,
                    &all,
                    Some(chosen.epoch),
                    &mut |_| {},
                )?
                .model
                .expect("a fixed run keeps its last epoch");
            return Ok((chosen, model));
        };
        self.say(&format!(
            "training on all {n_all} examples alongside, on a second thread, for the epoch count that validation chooses"
        ));
        let (tx, rx) = std::sync::mpsc::channel::<Verdict>();
        let (chosen, kept) = std::thread::scope(|scope| {
            // The worker runs in the same pool as the validation run (a thread of that pool
            // while it trains).
            let worker = scope.spawn(move || -> Result<Option<Model>> {
                threads::install(cfg.threads, move || refit_beside(cfg, beside, n_all, rx))?
            });
            let chosen = self.epochs(trainer.as_mut(), n_train, ctx, None, &mut |v| {
                // The worker only stops listening when it failed; join reports that.
                let _ = tx.send(v);
            });
            drop(tx);
            let kept = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (chosen, kept)
        });
        let chosen = chosen?;
        let model = kept?.expect("the first epoch is always kept");
        self.say(&format!(
            "kept the run on all {n_all} examples after epoch {}",
            chosen.epoch
        ));
        Ok((chosen, model))
    }

    /// Runs the epochs over the first `n` documents of `trainer` (in a shuffled order each
    /// epoch) on the learning-rate schedule of [`Pass`], and returns the epoch with the best
    /// validation macro-F1 (without validation data, the lowest loss), stopping after
    /// `patience` epochs without progress; `verdict` hears of each epoch. With `fixed`, runs
    /// exactly that many epochs and returns the last.
    fn epochs(
        &self,
        trainer: &mut dyn Fit,
        n: usize,
        ctx: &EpochContext,
        fixed: Option<usize>,
        verdict: &mut dyn FnMut(Verdict),
    ) -> Result<Chosen> {
        let cfg = &self.config;
        let mut pass = Pass::new(cfg, trainer, n);
        let last_epoch = fixed.unwrap_or(cfg.epochs).min(cfg.epochs);
        let progress = cfg.progress.as_deref();
        if let Some(p) = progress {
            p.run_started(last_epoch, pass.steps_per_epoch());
        }

        let mut best: Option<Chosen> = None;
        for epoch in 1..=last_epoch {
            if let Some(p) = progress {
                p.epoch_started(epoch, last_epoch);
            }
            let loss = pass
                .epoch(trainer, epoch, progress, &mut || false)?
                .expect("an epoch that is never abandoned completes");
            // A trainer that solves for an optimum keeps its last epoch, and ends once there.
            let violation = trainer.end_epoch();
            let at_optimum = violation.is_some_and(|v| v <= OPTIMUM_TOLERANCE);
            let last = epoch == last_epoch || at_optimum;
            let mut model = None;
            let (f1, acc) = if ctx.valid.is_empty() {
                (-loss, f64::NAN)
            } else {
                let from_docs = ctx
                    .valid_docs
                    .and_then(|start| trainer.predict_docs(start..start + ctx.valid.len()));
                let predicted: Vec<usize> = match from_docs {
                    Some(predicted) => predicted?,
                    None => {
                        let m = model.insert(trainer.snapshot()?);
                        ctx.valid
                            .par_iter()
                            .with_min_len(16)
                            .map_init(
                                || (Workspace::default(), Vec::new()),
                                |(ws, logits), &(text, _)| {
                                    m.logits_into(ctx.tokenizer, text, Mode::Accurate, ws, logits)?;
                                    Ok(argmax(logits))
                                },
                            )
                            .collect::<Result<_>>()?
                    }
                };
                let eval = Evaluation::from_pairs(
                    ctx.labels.to_vec(),
                    ctx.valid.iter().map(|&(_, truth)| truth).zip(predicted),
                );
                (eval.macro_f1(), eval.accuracy())
            };
            // A fixed number of epochs keeps the last.
            let improved =
                fixed.is_some() || violation.is_some() || best.as_ref().is_none_or(|b| f1 > b.f1);
            let mut line = format!("epoch {epoch}/{last_epoch}: loss {loss:.4}");
            if let Some(v) = violation {
                line += &format!(", distance from the optimum {v:.3}");
            }
            if !ctx.valid.is_empty() {
                line += &format!(", validation accuracy {acc:.4}, macro-F1 {f1:.4}");
                if improved && violation.is_none() {
                    line += " (best so far)";
                }
            }
            if let Some(p) = progress {
                p.epoch_finished(epoch, &line);
            }
            let epochs_run = epoch;
            if let Some(b) = best.as_mut() {
                b.epochs_run = epochs_run;
            }
            if improved {
                verdict(Verdict::Keep);
                let wanted = match violation {
                    Some(_) => last,
                    None => fixed.is_none() || epoch == last_epoch,
                };
                let model = if ctx.keep_model && wanted {
                    match model {
                        Some(m) => Some(m),
                        None => Some(trainer.snapshot()?),
                    }
                } else {
                    None
                };
                best = Some(Chosen {
                    f1,
                    accuracy: acc,
                    epoch,
                    epochs_run,
                    model,
                });
                if at_optimum && epoch < last_epoch {
                    self.say(&format!(
                        "at the optimum (within {OPTIMUM_TOLERANCE}): stopping"
                    ));
                    break;
                }
            } else if epoch < last_epoch
                && best
                    .as_ref()
                    .is_some_and(|b| epoch - b.epoch >= cfg.patience)
            {
                verdict(Verdict::Stop);
                self.say(&format!(
                    "no better validation macro-F1 for {} epochs: stopping",
                    cfg.patience
                ));
                break;
            } else {
                verdict(Verdict::Next);
            }
        }
        if let Some(p) = progress {
            p.run_finished();
        }
        Ok(best.expect("at least one epoch ran"))
    }

    fn check_cancel(&self) -> Result<()> {
        check_cancel(&self.config.cancel)
    }

    fn say(&self, line: &str) {
        if let Some(p) = &self.config.progress {
            p.message(line);
        }
    }
}

/// The run on all `n_all` documents beside the validation run of
/// [`Trainer::select_and_refit`]: an epoch at a time, kept or not as each verdict from `rx`
/// says. The model after the chosen epoch.
fn refit_beside(
    cfg: &TrainConfig,
    mut beside: Box<dyn Fit + Send>,
    n_all: usize,
    rx: std::sync::mpsc::Receiver<Verdict>,
) -> Result<Option<Model>> {
    let trainer: &mut dyn Fit = beside.as_mut();
    let mut pass = Pass::new(cfg, trainer, n_all);
    let mut kept = None;
    // Verdicts received for this epoch and later ones: once they hold a stop
    // and no epoch to keep, the rest of this epoch is not needed.
    let mut pending = std::collections::VecDeque::new();
    for epoch in 1..=cfg.epochs {
        let mut abandon = || {
            loop {
                match rx.try_recv() {
                    Ok(v) => pending.push_back(v),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    // The validation run failed: nothing more will be kept.
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        return !pending.contains(&Verdict::Keep)
                    }
                }
            }
            pending.contains(&Verdict::Stop) && !pending.contains(&Verdict::Keep)
        };
        if pass.epoch(trainer, epoch, None, &mut abandon)?.is_none() {
            break;
        }
        // A closed channel: the validation run failed and reports why.
        match pending.pop_front().or_else(|| rx.recv().ok()) {
            Some(Verdict::Keep) => kept = Some(trainer.snapshot()?),
            Some(Verdict::Next) => {}
            Some(Verdict::Stop) | None => break,
        }
    }
    Ok(kept)
}

/// The learning rate at `step` of `total`: a linear warmup from zero over `warmup` steps, then a
/// linear decay to zero.
fn schedule(peak: f64, step: f64, total: f64, warmup: f64) -> f64 {
    if warmup <= 0.0 {
        peak * (1.0 - step / total)
    } else if step < warmup {
        peak * (step + 1.0) / warmup
    } else {
        peak * ((total - step) / (total - warmup)).max(0.0)
    }
}

/// The corpus's labels, sorted (the model's outputs in that order), and each example's index
/// into them; an error when there are fewer than two.
/// Each example's labels after its first, as indices into `labels` (sorted); empty when no
/// example has more than one.
fn more_targets(corpus: &Corpus, labels: &[String]) -> Vec<Vec<u32>> {
    if corpus.examples.iter().all(|e| e.more_labels.is_empty()) {
        return Vec::new();
    }
    let index = |l: &str| labels.binary_search_by(|x| x.as_str().cmp(l)).ok();
    corpus
        .examples
        .iter()
        .map(|e| {
            e.more_labels
                .iter()
                .map(|l| index(l).expect("labels come from this corpus") as u32)
                .collect()
        })
        .collect()
}

fn labels_and_targets(corpus: &Corpus) -> Result<(Vec<String>, Vec<u32>)> {
    // The readers refuse rows without a label; examples made in code may still have one
    // (`Example::new(text, "")`, `Example::with_labels(text, vec![])`).
    if let Some(i) = corpus
        .examples
        .iter()
        .position(|e| e.labels().any(|l| l.trim().is_empty()))
    {
        return Err(Error::Usage(format!(
            "example {} of the training data has an empty label: every example needs a label",
            i + 1
        )));
    }
    let labels: Vec<String> = corpus
        .label_counts()
        .keys()
        .map(|s| s.to_string())
        .collect();
    if labels.len() < 2 {
        return Err(Error::Usage(format!(
            "the training data has {} label(s); a classifier needs at least two",
            labels.len()
        )));
    }
    let index = |l: &str| labels.binary_search_by(|x| x.as_str().cmp(l)).ok();
    let targets = corpus
        .examples
        .iter()
        .map(|e| index(&e.label).expect("labels come from this corpus") as u32)
        .collect();
    Ok((labels, targets))
}

/// The current UTC time as RFC 3339 (seconds precision).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The files a corpus was read from, as written in a model's training record.
fn source_names(corpus: &Corpus) -> Vec<String> {
    corpus
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}
