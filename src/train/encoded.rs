//! Training the architectures that read the pretrained encoder: `encoder` (its vector and a
//! linear layer) and `hybrid` (bow plus that layer, their logits weighted and added).
//!
//! 1. Every training text is encoded once (vectors found in the encoding cache are reused,
//!    new ones are stored there chunk by chunk, so an interrupted run loses little).
//! 2. The training data is cut into [`FOLDS`] stratified folds (a repeated text's copies dealt
//!    as [`TrainConfig::cv_copies`](super::TrainConfig::cv_copies) says), or, with
//!    [`TrainConfig::cv_by_source`](super::TrainConfig::cv_by_source), into folds that each
//!    hold out whole source files. For each fold, the encoder layer (at each
//!    candidate penalty, [`PENALTIES`]) and, for a hybrid, a bow model train on the other
//!    folds and score the fold: every document gets scores from models that never saw it.
//! 3. Those scores choose the layer's penalty (the lowest log-loss), fit the hybrid's two
//!    weights ([`fit_scales`]) and its cascade ([`fit_cascade`]). With folds by source, the
//!    cascade is fitted on stratified folds all the same (the chosen bow part and layer
//!    trained again on those): it is there for speed on text like the training data.
//! 4. The layer and the bow part train again on all the data; the weights stay.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use super::heldout::{held_out_logits, source_folds, stratified_folds, unsure_below};
use super::{labels_and_targets, rfc3339_now, source_names, Copies, Trainer};
use crate::bundle::TrainingInfo;
use crate::classifier::Classifier;
use crate::corpus::{Corpus, Example};
use crate::error::{Error, Result};
use crate::metrics::Evaluation;
use crate::model::encoder::EncodingCache;
use crate::model::hybrid::{
    calibrated_top, fit_cascade, fit_scales, top_probability, Cascade, SHORT_WORDS,
};
use crate::model::{
    argmax, softmax_in_place, ArchConfig, BowConfig, DenseHead, Encoder, EncoderArchConfig,
    EncoderModel, Hybrid, Loss, Model, Workspace,
};
use crate::text::{Tokenizer, TokenizerOptions};

/// The `--cascade-keep` settings whose cascades training reports beside the one it keeps.
const OTHER_KEEPS: [f64; 6] = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95];

/// Folds of the cross-validation that scores every training document.
const FOLDS: usize = 5;
/// The encoder layer's candidate L2 penalties (on standardized vectors, per document).
const PENALTIES: [f64; 4] = [1e-4, 1e-3, 1e-2, 1e-1];
/// How much less accurate (cross-validated) than the best candidate a more regularized bow part
/// of a hybrid may be and still be kept: a tenth of a point.
const C_TOLERANCE: f64 = 0.001;
/// Texts encoded between two writes to the cache.
const CACHE_CHUNK: usize = 1024;

/// The `svm_c` of a bow part's trainer.
fn svm_c_of(trainer: &Trainer) -> f32 {
    match &trainer.config.arch {
        ArchConfig::Bow(c) => c.svm_c,
        _ => f32::NAN,
    }
}

/// A candidate bow part of a hybrid, scored by the cross-validation.
struct Candidate<'a> {
    trainer: &'a Trainer,
    /// Its held-out logits of each document.
    bow: &'a [Vec<f32>],
    /// The weights fitted for it and the encoder layer.
    scales: [f32; 2],
    /// The held-out logits of the hybrid it makes.
    combined: Vec<Vec<f32>>,
    /// The accuracy of those.
    accuracy: f64,
}

/// `a · bow + b · head`, document by document: a hybrid's logits from its parts'.
fn combine_with(bow: &[Vec<f32>], head: &[Vec<f32>], [a, b]: [f32; 2]) -> Vec<Vec<f32>> {
    bow.iter()
        .zip(head)
        .map(|(zb, ze)| zb.iter().zip(ze).map(|(p, q)| a * p + b * q).collect())
        .collect()
}

/// Length bands (in words, first and last) of [`by_length`]'s report: a headline or a sentence
/// (the cascade's short texts, [`SHORT_WORDS`]), a paragraph or a short article, a long article.
const LENGTH_BANDS: [(usize, usize); 3] = [
    (0, SHORT_WORDS as usize),
    (SHORT_WORDS as usize + 1, 150),
    (151, usize::MAX),
];

/// A band's name in the report: "up to 30 words", "31-150", "over 150".
fn band_name((lo, hi): (usize, usize)) -> String {
    match (lo, hi) {
        (0, hi) => format!("up to {hi} words"),
        (lo, usize::MAX) => format!("over {}", lo - 1),
        (lo, hi) => format!("{lo}-{hi}"),
    }
}

/// For each length band of the training texts: how many, the held-out accuracy of the bow part
/// alone, of both parts and of the cascade, and the share the cascade leaves to the bow part:
/// where the encoder earns its cost, and where the cascade gives it the documents.
fn by_length(
    texts: &[&str],
    targets: &[u32],
    bow: &[Vec<f32>],
    both: &[Vec<f32>],
    cascade: crate::model::hybrid::Cascade,
) -> String {
    let mut parts = Vec::new();
    for (lo, hi) in LENGTH_BANDS {
        let (mut n, mut alone_right, mut both_right, mut cascade_right, mut alone) =
            (0usize, 0usize, 0usize, 0usize, 0usize);
        for (((text, &y), zb), zc) in texts.iter().zip(targets).zip(bow).zip(both) {
            let words = text.split_whitespace().count();
            if words < lo || words > hi {
                continue;
            }
            n += 1;
            let y = y as usize;
            let bow_says = argmax(zb) == y;
            let both_say = argmax(zc) == y;
            alone_right += usize::from(bow_says);
            both_right += usize::from(both_say);
            if calibrated_top(cascade.scale, zb) >= cascade.threshold(text) {
                alone += 1;
                cascade_right += usize::from(bow_says);
            } else {
                cascade_right += usize::from(both_say);
            }
        }
        if n == 0 {
            continue;
        }
        let share = |k: usize| k as f64 / n as f64;
        parts.push(format!(
            "{}: {n} documents, bow {:.4}, both {:.4}, cascade {:.4} ({:.1}% alone)",
            band_name((lo, hi)),
            share(alone_right),
            share(both_right),
            share(cascade_right),
            100.0 * share(alone)
        ));
    }
    parts.join("; ")
}

/// A cascade's thresholds as the training log shows them: "0.550 (texts of up to 30 words:
/// 0.558)".
fn thresholds(c: &Cascade) -> String {
    format!(
        "{:.3} (texts of up to {} words: {:.3})",
        c.confident, c.short_words, c.short_confident
    )
}

/// The vectors of the training texts with the scores of the cross-validation.
struct CrossScores {
    /// The encoder layer's held-out logits of each document, at the chosen penalty.
    head: Vec<Vec<f32>>,
    /// The chosen penalty.
    penalty: f64,
    /// The bow models' held-out logits of each document, one set per candidate bow part
    /// (hybrid only; empty for the encoder model).
    bow: Vec<Vec<Vec<f32>>>,
}

impl Trainer {
    /// Trains an `encoder` or `hybrid` model on `corpus`; `valid` (a corpus and its name),
    /// when given, is scored at the end and recorded.
    pub(super) fn train_encoded(
        &self,
        corpus: &Corpus,
        valid: Option<(&Corpus, String)>,
    ) -> Result<Classifier> {
        let cfg = &self.config;
        let started = Instant::now();
        let started_at = rfc3339_now();
        let (max_tokens, bow_config, cascade_keep) = match &cfg.arch {
            ArchConfig::Encoder(c) => (c.max_tokens, None, 0.0),
            ArchConfig::Hybrid(c) => (c.max_tokens, Some(c.bow.clone()), c.cascade_keep),
            _ => {
                return Err(Error::Internal(
                    "train_encoded on another architecture".into(),
                ))
            }
        };
        let (labels, targets) = labels_and_targets(corpus)?;
        if corpus.len() < 2 * FOLDS {
            return Err(Error::Usage(format!(
                "the training data has {} examples; the {} architecture needs at least {} \
                 (it scores the data by {FOLDS}-fold cross-validation)",
                corpus.len(),
                cfg.arch.name(),
                2 * FOLDS
            )));
        }
        let texts: Vec<&str> = corpus.examples.iter().map(|e| e.text.as_str()).collect();

        let encoder = match &cfg.encoder {
            Some(e) => Arc::clone(e),
            None => Encoder::builtin()?,
        };
        self.say(&format!(
            "training {} on {} examples, {} labels: encoder {} on {}, reading up to {max_tokens} pieces of each text",
            cfg.arch.name(),
            corpus.len(),
            labels.len(),
            encoder.id(),
            encoder.device()
        ));
        // The folds first: a corpus that cannot be cut as asked is refused before encoding.
        let (folds, k, cv_name) = self.folds(corpus, &texts, &targets, labels.len())?;
        let vectors = self.encode(&encoder, &texts, max_tokens)?;
        self.check_cancel()?;

        let bow_trainers: Vec<Trainer> = bow_config
            .map(|c| self.bow_candidates(c))
            .unwrap_or_default()
            .into_iter()
            .map(|c| self.bow_part(c))
            .collect();
        let cross = self.cross_scores(
            corpus,
            &vectors,
            &targets,
            &labels,
            (&folds, k),
            (&PENALTIES, &bow_trainers),
        )?;
        let score = |logits: &[Vec<f32>]| {
            Evaluation::from_pairs(
                labels.clone(),
                targets
                    .iter()
                    .map(|&t| t as usize)
                    .zip(logits.iter().map(|z| argmax(z))),
            )
        };
        let combine = |bow: &[Vec<f32>], scales: [f32; 2]| combine_with(bow, &cross.head, scales);
        // Each candidate bow part with its weights, scored as the hybrid it makes. The most
        // regularized (the smallest C) whose accuracy is within C_TOLERANCE of the best is kept:
        // a less regularized part must earn its place.
        let mut candidates = Vec::new();
        for (trainer, bow) in bow_trainers.iter().zip(&cross.bow) {
            let scales = fit_scales(bow, &cross.head, &targets);
            let combined = combine(bow, scales);
            let accuracy = score(&combined).accuracy();
            candidates.push(Candidate {
                trainer,
                bow,
                scales,
                combined,
                accuracy,
            });
        }
        if candidates.len() > 1 {
            let tried: Vec<String> = candidates
                .iter()
                .map(|c| format!("C {} {:.4}", svm_c_of(c.trainer), c.accuracy))
                .collect();
            self.say(&format!(
                "{cv_name} of the hybrid by its bow part's C: {}",
                tried.join(", ")
            ));
        }
        let top = candidates
            .iter()
            .map(|c| c.accuracy)
            .fold(f64::NEG_INFINITY, f64::max);
        let chosen = candidates
            .iter()
            .position(|c| c.accuracy >= top - C_TOLERANCE)
            .map(|i| candidates.swap_remove(i));
        // The cross-validated scores of the model as it will be: the held-out logits combined.
        let combined: Vec<Vec<f32>> = match &chosen {
            Some(c) => c.combined.clone(),
            None => cross.head.clone(),
        };
        let cv = score(&combined);
        let mut line = format!(
            "{cv_name}: encoder layer accuracy {:.4} (penalty {:e})",
            score(&cross.head).accuracy(),
            cross.penalty
        );
        if let Some(c) = &chosen {
            let [a, b] = c.scales;
            line += &format!(
                ", bow {:.4} (C {}), hybrid {:.4} (weights: bow {a:.3}, encoder {b:.3})",
                score(c.bow).accuracy(),
                svm_c_of(c.trainer),
                cv.accuracy()
            );
        }
        self.say(&line);
        // The bow part alone: its calibration, and how sure it must be to answer alone. Fitted
        // on stratified folds even when the weights were fitted by source: the cascade is there
        // for speed on text like the training data, where the n-grams know the words; on folds
        // by source (languages and sources no other file has) the n-grams look unsure of
        // everything, and the default mode would send most documents to the encoder.
        let mut cascade = None;
        if let Some(chosen) = &chosen {
            // With folds by source: the chosen parts' held-out scores on stratified folds.
            let stratified = if cfg.cv_by_source {
                let (c, alone, _) =
                    fit_cascade(chosen.bow, &combined, &targets, &texts, cascade_keep);
                self.say(&format!(
                    "cascade on the folds by source: from a probability of {}, {:.1}% of the \
                     documents alone; fitted instead on {FOLDS}-fold stratified \
                     cross-validation (the bow part and the layer trained {FOLDS} times more)",
                    thresholds(&c),
                    100.0 * alone
                ));
                self.say(&format!(
                    "  by length ({cv_name}): {}",
                    by_length(&texts, &targets, chosen.bow, &combined, c)
                ));
                let folds = stratified_folds(
                    &texts,
                    &targets,
                    labels.len(),
                    FOLDS,
                    cfg.seed,
                    cfg.cv_copies,
                );
                let again = self.cross_scores(
                    corpus,
                    &vectors,
                    &targets,
                    &labels,
                    (&folds, FOLDS),
                    (&[cross.penalty], std::slice::from_ref(chosen.trainer)),
                )?;
                let bow = again.bow.into_iter().next().unwrap_or_default();
                let both = combine_with(&bow, &again.head, chosen.scales);
                Some((bow, both))
            } else {
                None
            };
            let (bow, both, folds_name) = match &stratified {
                Some((bow, both)) => (
                    bow.as_slice(),
                    both.as_slice(),
                    format!("{FOLDS}-fold cross-validation"),
                ),
                None => (chosen.bow, combined.as_slice(), cv_name.clone()),
            };
            let (c, alone, right) = fit_cascade(bow, both, &targets, &texts, cascade_keep);
            self.say(&format!(
                "cascade (--cascade-keep {cascade_keep}): the bow part answers alone from a \
                 probability of {} on {:.1}% of the documents, {folds_name} accuracy \
                 {right:.4} (both parts: {:.4})",
                thresholds(&c),
                100.0 * alone,
                score(both).accuracy()
            ));
            // What other settings would give, so that one training shows the choice.
            let others: Vec<String> = OTHER_KEEPS
                .iter()
                .filter(|&&k| k != cascade_keep)
                .map(|&k| {
                    let (c, alone, right) = fit_cascade(bow, both, &targets, &texts, k);
                    format!(
                        "{k}: from {:.3} ({:.3} short), {:.1}% alone, {right:.4}",
                        c.confident,
                        c.short_confident,
                        100.0 * alone
                    )
                })
                .collect();
            self.say(&format!("  other --cascade-keep: {}", others.join("; ")));
            self.say(&format!(
                "  by length ({folds_name}): {}",
                by_length(&texts, &targets, bow, both, c)
            ));
            if alone >= 0.999 {
                self.say(
                    "note: by default the bow part will answer every document alone: on these \
                     folds it is as accurate alone as with the encoder (--cascade-keep 0.5 or \
                     more leaves the encoder the documents where the two ways differ, if any; \
                     --accurate runs both parts on every document)",
                );
            }
            cascade = Some(c);
        }
        self.check_cancel()?;

        // The final model, on all the data.
        let refs: Vec<&[f32]> = vectors.iter().map(|v| v.as_slice()).collect();
        let head = DenseHead::fit(&refs, &targets, labels.len(), cross.penalty);
        let (tokenizer, model) = match chosen.map(|c| (c.trainer, c.scales)) {
            Some((trainer, scales)) => {
                self.say(&format!(
                    "training the bow part on all {} examples",
                    corpus.len()
                ));
                let bow_clf = trainer.train_as_trained(corpus)?;
                let Model::Bow(bow) = bow_clf.model else {
                    return Err(Error::Internal("the bow part trained another model".into()));
                };
                let model = Hybrid::new(
                    max_tokens,
                    cascade_keep,
                    bow,
                    head,
                    scales,
                    cascade,
                    Arc::clone(&encoder),
                );
                (bow_clf.tokenizer, Model::Hybrid(model))
            }
            None => {
                // The encoder model reads no subwords; the bundle keeps a small tokenizer so
                // that it has the same files as any other.
                let tokenizer = Tokenizer::train(
                    &texts,
                    &TokenizerOptions {
                        vocab_size: 100,
                        ..TokenizerOptions::default()
                    },
                )?;
                let config = EncoderArchConfig { max_tokens }.check()?;
                let model = EncoderModel::new(config, head, Arc::clone(&encoder));
                (tokenizer, Model::Encoder(model))
            }
        };

        // A validation corpus, when given, is scored with the model as trained.
        let (valid_description, valid_examples, valid_accuracy, valid_f1) = match valid {
            Some((v, description)) => {
                let (accuracy, f1) = self.score_valid(&model, &tokenizer, &labels, v)?;
                self.say(&format!(
                    "validation ({description}): accuracy {accuracy:.4}, macro-F1 {f1:.4}"
                ));
                (description, v.len(), accuracy, f1)
            }
            None => (
                format!("{cv_name} of the training data"),
                corpus.len(),
                cv.accuracy(),
                cv.macro_f1(),
            ),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.say(&format!("done in {seconds:.1} s"));
        let info = TrainingInfo {
            data: source_names(corpus),
            valid: valid_description,
            train_examples: corpus.len(),
            valid_examples,
            seed: cfg.seed,
            threads: rayon::current_num_threads(),
            epochs: 0,
            best_epoch: 0,
            learning_rate: 0.0,
            batch_size: 0,
            vocab_size: tokenizer.vocab_size(),
            started_at,
            seconds,
            valid_accuracy,
            valid_macro_f1: valid_f1,
            refit: false,
            label_counts: corpus
                .label_counts()
                .into_iter()
                .map(|(l, n)| (l.to_string(), n))
                .collect(),
            command: cfg.command.clone(),
        };
        let mut clf = self.classifier(corpus, labels, tokenizer, model, info);
        clf.config.unsure_below = unsure_below(
            combined
                .iter()
                .zip(&targets)
                .map(|(z, &y)| (top_probability(z), argmax(z) == y as usize))
                .collect(),
        );
        Ok(clf)
    }

    /// The candidate settings of a hybrid's bow part: one per [`TrainConfig::hybrid_svm_c`]
    /// for the SVM losses, the smallest C first (the given `svm_c` alone when that list is
    /// empty), else `bow` as it is.
    ///
    /// [`TrainConfig::hybrid_svm_c`]: super::TrainConfig::hybrid_svm_c
    fn bow_candidates(&self, bow: BowConfig) -> Vec<BowConfig> {
        let mut choices = self.config.hybrid_svm_c.clone();
        if bow.loss == Loss::Softmax || choices.is_empty() {
            return vec![bow];
        }
        // The most regularized first.
        choices.sort_by(f32::total_cmp);
        choices.dedup();
        choices
            .iter()
            .map(|&svm_c| BowConfig {
                svm_c,
                ..bow.clone()
            })
            .collect()
    }

    /// The trainer of a hybrid's bow part: this training's settings, silent (its folds would
    /// fill the log), uncompacted (the whole hybrid is compacted at the end).
    fn bow_part(&self, bow: BowConfig) -> Trainer {
        Trainer::new(super::TrainConfig {
            arch: ArchConfig::Bow(bow),
            progress: None,
            compact: false,
            calibration_folds: 0,
            encoder: None,
            encoding_cache: None,
            ..self.config.clone()
        })
    }

    /// The vectors of `texts`: from the cache where it has them, the others encoded (and
    /// stored), with progress reported.
    fn encode(
        &self,
        encoder: &Encoder,
        texts: &[&str],
        max_tokens: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let cfg = &self.config;
        let cache = match &cfg.encoding_cache {
            Some(root) => Some(EncodingCache::for_encoder(root, encoder, max_tokens)?),
            None => None,
        };
        let mut vectors: Vec<Option<Vec<f32>>> = match &cache {
            Some(c) => {
                let lookup = c.get_many(texts)?;
                let found = lookup.vectors.iter().filter(|v| v.is_some()).count();
                let mut line = format!(
                    "encoding cache {}: {found} of {} texts found",
                    c.dir().display(),
                    texts.len()
                );
                if lookup.corrupt > 0 {
                    line += &format!(
                        " ({} damaged entries dropped; those texts are encoded again)",
                        lookup.corrupt
                    );
                }
                self.say(&line);
                lookup.vectors
            }
            None => vec![None; texts.len()],
        };
        let mut missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
        if !missing.is_empty() {
            let lengths = encoder.count_tokens(texts, max_tokens)?;
            let total: usize = missing.iter().map(|&i| lengths[i]).sum();
            // Longest first, so that each chunk's batches hold texts of similar length.
            missing.sort_by_key(|&i| (std::cmp::Reverse(lengths[i]), i));
            let progress = cfg.progress.as_deref();
            if let Some(p) = progress {
                p.encoding_started(missing.len(), total);
            }
            let started = Instant::now();
            let done_tokens = AtomicUsize::new(0);
            for chunk in missing.chunks(CACHE_CHUNK) {
                let chunk_texts: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
                let encoded = encoder.embed_on(
                    &chunk_texts,
                    max_tokens,
                    cfg.threads,
                    &|_| Ok(()),
                    &|tokens| {
                        done_tokens.fetch_add(tokens, Ordering::Relaxed);
                        if let Some(p) = progress {
                            p.encoded(tokens);
                        }
                        self.check_cancel()
                    },
                )?;
                if let Some(c) = &cache {
                    let entries: Vec<(&str, &[f32])> = chunk_texts
                        .iter()
                        .copied()
                        .zip(encoded.iter().map(Vec::as_slice))
                        .collect();
                    c.put_many(&entries)?;
                }
                for (&i, v) in chunk.iter().zip(encoded) {
                    vectors[i] = Some(v);
                }
            }
            if let Some(p) = progress {
                p.encoding_finished();
            }
            let seconds = started.elapsed().as_secs_f64();
            self.say(&format!(
                "encoded {} texts ({} pieces) in {seconds:.1} s, {:.0} pieces/s",
                missing.len(),
                done_tokens.load(Ordering::Relaxed),
                done_tokens.load(Ordering::Relaxed) as f64 / seconds.max(1e-9)
            ));
        }
        vectors
            .into_iter()
            .map(|v| v.ok_or_else(|| Error::Internal("a text was left unencoded".into())))
            .collect()
    }

    /// Each example's fold of the cross-validation, the number of folds and its name for the
    /// log: [`FOLDS`] folds stratified by label, or whole sources held out
    /// ([`TrainConfig::cv_by_source`](super::TrainConfig::cv_by_source)).
    fn folds(
        &self,
        corpus: &Corpus,
        texts: &[&str],
        targets: &[u32],
        classes: usize,
    ) -> Result<(Vec<usize>, usize, String)> {
        let cfg = &self.config;
        if !cfg.cv_by_source {
            let folds = stratified_folds(texts, targets, classes, FOLDS, cfg.seed, cfg.cv_copies);
            // The model's record says how a repeated text was dealt when that is not the default.
            let name = match cfg.cv_copies {
                Copies::Apart => format!("{FOLDS}-fold cross-validation"),
                Copies::Together => {
                    format!("{FOLDS}-fold cross-validation (a repeated text's copies in one fold)")
                }
            };
            return Ok((folds, FOLDS, name));
        }
        let sources = corpus.sources.len();
        if corpus.source_of.len() != corpus.len() {
            return Err(Error::Usage(
                "cross-validation by source needs each example's file: a corpus read from two \
                 files or more (Corpus::read_all), not one built in memory"
                    .into(),
            ));
        }
        if sources < 2 {
            return Err(Error::Usage(format!(
                "cross-validation by source needs training data read from two files or more \
                 (--data given {sources} time{})",
                if sources == 1 { "" } else { "s" }
            )));
        }
        let (folds, of_source, size, k) = source_folds(texts, &corpus.source_of, sources, FOLDS);
        if k < 2 {
            return Err(Error::Usage(
                "cross-validation by source needs examples from two files or more; \
                 only one --data file has any"
                    .into(),
            ));
        }
        for f in 0..k {
            // The files with examples (a label map may have dropped all of one).
            let names: Vec<String> = (0..sources)
                .filter(|&s| of_source[s] == f && size[s] > 0)
                .map(|s| corpus.sources[s].display().to_string())
                .collect();
            let n = folds.iter().filter(|&&g| g == f).count();
            self.say(&format!(
                "fold {} of {k} holds out {n} examples: {}",
                f + 1,
                names.join(", ")
            ));
        }
        Ok((folds, k, format!("{k}-fold cross-validation by source")))
    }

    /// Held-out scores of every document: the encoder layer at each of `penalties` (the best
    /// kept) and, for a hybrid, each candidate `bow` part. `folds`: each document's fold, and
    /// their number.
    fn cross_scores(
        &self,
        corpus: &Corpus,
        vectors: &[Vec<f32>],
        targets: &[u32],
        labels: &[String],
        (folds, k): (&[usize], usize),
        (penalties, bow): (&[f64], &[Trainer]),
    ) -> Result<CrossScores> {
        let n = vectors.len();
        let classes = labels.len();
        let mut head_scores: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); n]; penalties.len()];
        let mut bow_scores: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); n]; bow.len()];
        for fold in 0..k {
            self.check_cancel()?;
            let (inside, outside): (Vec<usize>, Vec<usize>) =
                (0..n).partition(|&i| folds[i] != fold);
            let xs: Vec<&[f32]> = inside.iter().map(|&i| vectors[i].as_slice()).collect();
            let ys: Vec<u32> = inside.iter().map(|&i| targets[i]).collect();
            for (p, &penalty) in penalties.iter().enumerate() {
                let head = DenseHead::fit(&xs, &ys, classes, penalty);
                for &i in &outside {
                    head.logits_into(&vectors[i], &mut head_scores[p][i]);
                }
            }
            if !bow.is_empty() {
                let part = Corpus::from_examples(
                    inside
                        .iter()
                        .map(|&i| corpus.examples[i].clone())
                        .collect::<Vec<Example>>(),
                );
                for (trainer, scores) in bow.iter().zip(bow_scores.iter_mut()) {
                    self.check_cancel()?;
                    let clf = trainer.train_as_trained(&part)?;
                    let held = held_out_logits(&clf, corpus, &outside, labels)?;
                    for (&i, z) in outside.iter().zip(held) {
                        scores[i] = z;
                    }
                }
            }
        }
        // The penalty whose held-out log-loss is lowest.
        let log_loss = |scores: &[Vec<f32>]| -> f64 {
            let mut p = Vec::new();
            scores
                .iter()
                .zip(targets)
                .map(|(z, &y)| {
                    p.clone_from(z);
                    softmax_in_place(&mut p);
                    -(p[y as usize].max(1e-12) as f64).ln()
                })
                .sum::<f64>()
                / n as f64
        };
        let best = (0..penalties.len())
            .min_by(|&a, &b| log_loss(&head_scores[a]).total_cmp(&log_loss(&head_scores[b])))
            .expect("there are penalties");
        Ok(CrossScores {
            head: head_scores.swap_remove(best),
            penalty: penalties[best],
            bow: bow_scores,
        })
    }

    /// Accuracy and macro-F1 of `model` on the validation corpus `valid` (its examples whose
    /// labels the model knows; vectors through the cache).
    fn score_valid(
        &self,
        model: &Model,
        tokenizer: &Tokenizer,
        labels: &[String],
        valid: &Corpus,
    ) -> Result<(f64, f64)> {
        let (encoder, max_tokens) = model
            .encoder()
            .ok_or_else(|| Error::Internal("score_valid on a model without encoder".into()))?;
        let known: Vec<(&str, usize)> = valid
            .examples
            .iter()
            .filter_map(|e| {
                labels
                    .iter()
                    .position(|l| *l == e.label)
                    .map(|i| (e.text.as_str(), i))
            })
            .collect();
        let texts: Vec<&str> = known.iter().map(|&(t, _)| t).collect();
        let vectors = self.encode(encoder, &texts, max_tokens)?;
        let predicted: Vec<usize> = known
            .par_iter()
            .zip(&vectors)
            .map_init(
                || (Workspace::default(), Vec::new()),
                |(ws, out), (&(text, _), v)| -> Result<usize> {
                    model.logits_with(tokenizer, text, Some(v), ws, out)?;
                    Ok(argmax(out))
                },
            )
            .collect::<Result<_>>()?;
        let eval = Evaluation::from_pairs(
            labels.to_vec(),
            known.iter().map(|&(_, t)| t).zip(predicted),
        );
        Ok((eval.accuracy(), eval.macro_f1()))
    }
}
