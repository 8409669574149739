//! Held-out scores of the training data and what is fitted on them: the folds of a
//! cross-validation, the logits of a model trained without a fold, the calibration of a `bow`
//! model's probabilities, and the probability under which a model's answers turn mostly
//! wrong (`predict --unsure`).

use std::collections::HashMap;
use std::time::Instant;

use rayon::prelude::*;

use super::{labels_and_targets, Trainer};
use crate::classifier::Classifier;
use crate::corpus::{Corpus, Example};
use crate::error::Result;
use crate::metrics::{Evaluation, MultiEvaluation, Scored};
use crate::model::multilabel::{best_threshold, sigmoid_in_place};
use crate::model::{
    argmax, softmax_in_place, ArchConfig, Calibrator, Mode, Model, MultiLabel, Workspace,
};
use crate::rng::SplitMix64;

use super::config::Copies;

/// The fold (below `folds`) of each document: each label's documents shuffled with `seed`
/// and dealt round the folds, each label starting where the last one stopped, so that the
/// folds' sizes differ by at most one. With `copies` [`Copies::Together`], a text given more
/// than once (a corpus repeated to weigh more, or the same article in two files) goes with its
/// first occurrence, so that no fold is scored by a model that trained on the same text; with
/// [`Copies::Apart`] every copy is dealt on its own, as a random test split deals them.
pub(super) fn stratified_folds(
    texts: &[&str],
    targets: &[u32],
    classes: usize,
    folds: usize,
    seed: u64,
    copies: Copies,
) -> Vec<usize> {
    // Together: each text's first copy, which the others follow.
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, (&text, &t)) in texts.iter().zip(targets).enumerate() {
        let dealt = match copies {
            Copies::Apart => true,
            Copies::Together => match first.entry(text) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                    true
                }
                std::collections::hash_map::Entry::Occupied(_) => false,
            },
        };
        if dealt {
            by_label[t as usize].push(i);
        }
    }
    let mut rng = SplitMix64::new(seed ^ 0xf01d_5eed);
    let mut fold = vec![0; targets.len()];
    let mut next = 0;
    for docs in &mut by_label {
        rng.shuffle(docs);
        for &i in docs.iter() {
            fold[i] = next % folds;
            next += 1;
        }
    }
    if copies == Copies::Together {
        for (i, text) in texts.iter().enumerate() {
            fold[i] = fold[first[text]];
        }
    }
    fold
}

/// Folds that hold out whole sources: the examples of each source (`source_of[i]`, below
/// `sources`) go to one fold, the sources taken largest first, each to the fold with the fewest
/// examples so far; a text given more than once goes with its first copy. `folds` folds at
/// most, as many as there are sources with examples when they are fewer. Returns each
/// example's fold, each source's fold and number of examples, and the number of folds.
pub(super) fn source_folds(
    texts: &[&str],
    source_of: &[u32],
    sources: usize,
    folds: usize,
) -> (Vec<usize>, Vec<usize>, Vec<usize>, usize) {
    let mut size = vec![0usize; sources];
    for &s in source_of {
        size[s as usize] += 1;
    }
    let k = folds.min(size.iter().filter(|&&n| n > 0).count()).max(1);
    let mut order: Vec<usize> = (0..sources).collect();
    // Largest first; equal sizes in file order.
    order.sort_by(|&a, &b| size[b].cmp(&size[a]).then(a.cmp(&b)));
    let mut filled = vec![0usize; k];
    let mut fold_of_source = vec![0usize; sources];
    for s in order {
        let f = (0..k).min_by_key(|&f| (filled[f], f)).expect("k >= 1");
        fold_of_source[s] = f;
        filled[f] += size[s];
    }
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(texts.len());
    let fold = texts
        .iter()
        .zip(source_of)
        .map(|(&text, &s)| *first.entry(text).or_insert(fold_of_source[s as usize]))
        .collect();
    (fold, fold_of_source, size, k)
}

/// The logits, at the positions of `labels`, that `clf` (trained without the documents
/// `held`) gives each of those documents of `corpus`. The fold's model may lack a rare label:
/// a label it lacks gets the document's lowest logit.
pub(super) fn held_out_logits(
    clf: &Classifier,
    corpus: &Corpus,
    held: &[usize],
    labels: &[String],
) -> Result<Vec<Vec<f32>>> {
    let position: Vec<usize> = clf
        .labels()
        .iter()
        .map(|l| labels.iter().position(|m| m == l).expect("a corpus label"))
        .collect();
    held.par_iter()
        .map_init(
            || (Workspace::default(), Vec::new()),
            |(ws, out), &i| -> Result<Vec<f32>> {
                clf.model.logits_into(
                    &clf.tokenizer,
                    &corpus.examples[i].text,
                    Mode::Accurate,
                    ws,
                    out,
                )?;
                let low = out.iter().copied().fold(f32::INFINITY, f32::min);
                let mut z = vec![low; labels.len()];
                for (&pos, &v) in position.iter().zip(out.iter()) {
                    z[pos] = v;
                }
                Ok(z)
            },
        )
        .collect()
}

/// The probability under which answers are right less than half the time, from held-out
/// documents (each one's top probability and whether its answer was right): the highest top
/// probability such that, of the documents less sure than it, at most half are right (`None`
/// when even the least sure one is right).
pub(super) fn unsure_below(mut docs: Vec<(f32, bool)>) -> Option<f32> {
    docs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut right, mut below) = (0usize, None);
    for k in 1..docs.len() {
        right += docs[k - 1].1 as usize;
        // The documents less sure than the k-th: the first k (ties kept together).
        if docs[k].0 > docs[k - 1].0 && 2 * right <= k {
            below = Some(docs[k].0);
        }
    }
    below
}

/// The expected calibration error (10 bins) of held-out documents' top probabilities.
fn calibration_error(docs: &[(f32, bool)]) -> f64 {
    let scored = docs
        .iter()
        .map(|&(confidence, right)| Scored {
            truth: 0,
            predicted: usize::from(!right),
            confidence,
            rank: 1,
        })
        .collect();
    Evaluation::from_scored(vec!["a".into(), "b".into()], scored)
        .calibration(10)
        .map_or(0.0, |c| c.ece)
}

impl Trainer {
    /// The folds of this training's calibration of a `bow` model on `n` examples: `None` when
    /// it is off (fewer than 2 folds), for the other architectures, or with fewer than 2
    /// examples per fold.
    pub(super) fn calibration_folds(&self, n: usize) -> Option<usize> {
        let k = self.config.calibration_folds;
        (k >= 2 && matches!(self.config.arch, ArchConfig::Bow(_)) && n >= 2 * k).then_some(k)
    }

    /// Calibrates the probabilities of `clf` on held-out logits `z` of its training documents
    /// (labels `targets`), scored by models trained without their fold, `folds` in all: a
    /// [`Calibrator`] fitted on them, and the unsure threshold on the calibrated ones; the
    /// time since `started` is added to the training's.
    fn fit_calibration(
        &self,
        clf: &mut Classifier,
        z: &[Vec<f32>],
        targets: &[u32],
        folds: usize,
        started: Instant,
    ) {
        let classes = clf.labels().len();
        let docs: Vec<(f32, bool)> = z
            .iter()
            .zip(targets)
            .map(|(z, &t)| {
                let mut p = z.clone();
                softmax_in_place(&mut p);
                let top = argmax(&p);
                (p[top], top == t as usize)
            })
            .collect();
        let Some(calibrator) = Calibrator::fit(&docs, classes, folds) else {
            return;
        };
        let floor = 1.0 / classes as f32;
        let calibrated: Vec<(f32, bool)> = docs
            .iter()
            .map(|&(p, right)| (calibrator.map(p).max(floor), right))
            .collect();
        let right = docs.iter().filter(|d| d.1).count() as f64 / docs.len() as f64;
        self.say(&format!(
            "calibrated in {:.1} s: {folds}-fold held-out accuracy {right:.4}, expected \
             calibration error {:.4} as trained ({} knots fitted)",
            started.elapsed().as_secs_f64(),
            calibration_error(&docs),
            calibrator.knots.len()
        ));
        clf.config.unsure_below = unsure_below(calibrated);
        clf.config.calibrator = Some(calibrator);
        if let Some(info) = clf.config.training.as_mut() {
            info.seconds += started.elapsed().as_secs_f64();
        }
    }

    /// Calibrates the probabilities of `clf`, a `bow` model trained on `corpus`: the model
    /// trains again from the text (tokenizer, features and all, so that nothing of a fold
    /// reaches the model that scores it) on each cut of the data without one fold, and scores
    /// that fold. Nothing is done for a model calibrated already, for other architectures, or
    /// with fewer than 2 folds; with fewer than 2 examples per fold, a warning says so.
    pub(super) fn calibrate(&self, clf: &mut Classifier, corpus: &Corpus) -> Result<()> {
        if clf.config.calibrator.is_some() || !matches!(clf.model(), Model::Bow(_)) {
            return Ok(());
        }
        let Some(k) = self.calibration_folds(corpus.len()) else {
            if self.config.calibration_folds >= 2 {
                self.say(&format!(
                    "warning: {} examples are too few to calibrate the probabilities on {} \
                     folds; they are left as the model's scores give them",
                    corpus.len(),
                    self.config.calibration_folds
                ));
            }
            return Ok(());
        };
        let started = Instant::now();
        let (labels, targets) = labels_and_targets(corpus)?;
        let z = self.held_out_by_retraining(corpus, &labels, &targets, k)?;
        self.fit_calibration(clf, &z, &targets, k, started);
        Ok(())
    }

    /// The held-out logits of every example of `corpus` (labels `labels`, first labels
    /// `targets`), at the positions of `labels`: the model trains again from the text (tokenizer,
    /// features and all, so that nothing of a fold reaches the model that scores it) on each
    /// cut of the data without one of `k` folds, and scores that fold.
    fn held_out_by_retraining(
        &self,
        corpus: &Corpus,
        labels: &[String],
        targets: &[u32],
        k: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<&str> = corpus.examples.iter().map(|e| e.text.as_str()).collect();
        let fold = stratified_folds(
            &texts,
            targets,
            labels.len(),
            k,
            self.config.seed,
            Copies::Together,
        );
        let trainer = Trainer::new(super::TrainConfig {
            progress: None,
            calibration_folds: 0,
            ..self.config.clone()
        });
        let mut z = vec![Vec::new(); corpus.len()];
        for f in 0..k {
            self.check_cancel()?;
            self.say(&format!(
                "{}: training without fold {} of {k}",
                if self.config.multi_label {
                    "choosing the thresholds"
                } else {
                    "calibrating the probabilities"
                },
                f + 1
            ));
            let (inside, held): (Vec<usize>, Vec<usize>) =
                (0..corpus.len()).partition(|&i| fold[i] != f);
            let part = Corpus::from_examples(
                inside
                    .iter()
                    .map(|&i| corpus.examples[i].clone())
                    .collect::<Vec<Example>>(),
            );
            let fold_clf = trainer.compact(trainer.train_as_trained(&part)?);
            for (logits, &i) in held_out_logits(&fold_clf, corpus, &held, labels)?
                .into_iter()
                .zip(&held)
            {
                z[i] = logits;
            }
        }
        Ok(z)
    }

    /// Chooses the thresholds of `clf`, a multi-label model trained on `corpus`: on held-out
    /// scores (see [`Trainer::held_out_by_retraining`]), each label's threshold is the one of
    /// the best F1 for that label ([`best_threshold`]). With calibration folds off, or too few
    /// examples for them (said so), every threshold is 0.5, the SVMs' own boundary.
    pub(super) fn fit_thresholds(&self, clf: &mut Classifier, corpus: &Corpus) -> Result<()> {
        let started = Instant::now();
        let classes = clf.labels().len();
        let Some(k) = self.calibration_folds(corpus.len()) else {
            if self.config.calibration_folds >= 2 {
                self.say(&format!(
                    "warning: {} examples are too few to choose the thresholds on {} folds; \
                     every label's is 0.5",
                    corpus.len(),
                    self.config.calibration_folds
                ));
            }
            clf.config.multi_label = Some(MultiLabel {
                thresholds: vec![0.5; classes],
                folds: 0,
            });
            return Ok(());
        };
        let (labels, targets) = labels_and_targets(corpus)?;
        let mut z = self.held_out_by_retraining(corpus, &labels, &targets, k)?;
        z.iter_mut().for_each(|v| sigmoid_in_place(v));
        // Each example's labels, as indices into `labels` (sorted).
        let index = |l: &str| labels.binary_search_by(|x| x.as_str().cmp(l)).unwrap_or(0);
        let gold: Vec<Vec<usize>> = corpus
            .examples
            .iter()
            .map(|e| e.labels().map(index).collect())
            .collect();
        let thresholds: Vec<f32> = (0..classes)
            .map(|c| {
                let scores: Vec<f32> = z.iter().map(|v| v[c]).collect();
                let has: Vec<bool> = gold.iter().map(|g| g.contains(&c)).collect();
                best_threshold(&scores, &has)
            })
            .collect();
        let multi = MultiLabel {
            thresholds,
            folds: k,
        };
        let held = MultiEvaluation {
            answered: z.iter().map(|v| multi.chosen(v)).collect(),
            gold,
            ranked: Vec::new(),
            labels,
        };
        self.say(&format!(
            "thresholds chosen in {:.1} s: {k}-fold held-out micro-F1 {:.4} at them",
            started.elapsed().as_secs_f64(),
            held.micro().f1
        ));
        clf.config.multi_label = Some(multi);
        if let Some(info) = clf.config.training.as_mut() {
            info.seconds += started.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsure_threshold_is_where_answers_turn_mostly_wrong() {
        // The less sure a document, the likelier its answer is wrong: the 10 least sure are
        // wrong, then 10 of which half are right, then 20 right.
        let docs: Vec<(f32, bool)> = (0..40)
            .map(|i| (0.5 + i as f32 * 0.01, i >= 20 || (i >= 10 && i % 2 == 0)))
            .collect();
        let t = unsure_below(docs.clone()).unwrap();
        // Below the threshold, at most half are right: the 20 least sure (5 right) and the
        // next 10 (right) make 15 of 30; one more would tip it.
        let below: Vec<&(f32, bool)> = docs.iter().filter(|d| d.0 < t).collect();
        let right_below = below.iter().filter(|d| d.1).count();
        assert_eq!((below.len(), right_below), (30, 15));
        // Answers right everywhere: no threshold.
        let all: Vec<(f32, bool)> = docs.iter().map(|&(p, _)| (p, true)).collect();
        assert_eq!(unsure_below(all), None);
    }

    #[test]
    fn folds_are_stratified_and_even() {
        let targets: Vec<u32> = (0..103)
            .map(|i| if i < 80 { 0 } else { 1 + i % 2 })
            .collect();
        let names: Vec<String> = (0..103).map(|i| format!("text {i}")).collect();
        let texts: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let folds = stratified_folds(&texts, &targets, 3, 5, 1, Copies::Together);
        for f in 0..5 {
            let size = folds.iter().filter(|&&x| x == f).count();
            assert!((20..=21).contains(&size), "fold {f}: {size}");
            let label0 = (0..103)
                .filter(|&i| folds[i] == f && targets[i] == 0)
                .count();
            assert_eq!(label0, 16);
        }
        assert_eq!(
            folds,
            stratified_folds(&texts, &targets, 3, 5, 1, Copies::Together)
        );
        // Three folds: as even.
        let three = stratified_folds(&texts, &targets, 3, 3, 1, Copies::Together);
        for f in 0..3 {
            let size = three.iter().filter(|&&x| x == f).count();
            assert!((34..=35).contains(&size), "fold {f}: {size}");
        }
        // The same texts given three times: every copy in its first one's fold, and the folds
        // as even as before.
        let thrice: Vec<&str> = texts.iter().chain(&texts).chain(&texts).copied().collect();
        let targets3: Vec<u32> = targets
            .iter()
            .chain(&targets)
            .chain(&targets)
            .copied()
            .collect();
        let folds3 = stratified_folds(&thrice, &targets3, 3, 5, 1, Copies::Together);
        assert_eq!(&folds3[..103], &folds[..]);
        assert_eq!(&folds3[103..206], &folds[..]);
        assert_eq!(&folds3[206..], &folds[..]);
        // Without copies, dealing them apart changes nothing; with them, the copies of a text
        // are spread over the folds as a random split would spread them, the folds as even.
        assert_eq!(
            folds,
            stratified_folds(&texts, &targets, 3, 5, 1, Copies::Apart)
        );
        let apart = stratified_folds(&thrice, &targets3, 3, 5, 1, Copies::Apart);
        let split = (0..103)
            .filter(|&i| apart[i] != apart[i + 103] || apart[i] != apart[i + 206])
            .count();
        assert!(
            split > 50,
            "only {split} of 103 texts have copies in two folds"
        );
        for f in 0..5 {
            let size = apart.iter().filter(|&&x| x == f).count();
            assert!((61..=62).contains(&size), "fold {f}: {size}");
            let label0 = (0..309)
                .filter(|&i| apart[i] == f && targets3[i] == 0)
                .count();
            assert_eq!(label0, 48);
        }
    }

    #[test]
    fn source_folds_hold_out_whole_sources_and_balance_them() {
        // Sources of 50, 30, 20, 10, 10, 5 and 0 examples (the last all dropped), in that
        // file order but interleaved.
        let sizes = [50usize, 30, 20, 10, 10, 5, 0];
        let mut source_of: Vec<u32> = Vec::new();
        for round in 0..50 {
            for (s, &n) in sizes.iter().enumerate() {
                if round < n {
                    source_of.push(s as u32);
                }
            }
        }
        let names: Vec<String> = (0..source_of.len()).map(|i| format!("text {i}")).collect();
        let texts: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let (folds, of_source, size_of, k) = source_folds(&texts, &source_of, sizes.len(), 5);
        assert_eq!(size_of, sizes);
        assert_eq!(k, 5);
        for (i, &s) in source_of.iter().enumerate() {
            assert_eq!(folds[i], of_source[s as usize], "example {i}");
        }
        // Largest first, each to the emptiest fold: 50 | 30 | 20 | 10 + 5 | 10.
        assert_eq!(&of_source[..6], &[0, 1, 2, 3, 4, 3]);
        let size = |f: usize| folds.iter().filter(|&&x| x == f).count();
        assert_eq!(
            (0..5).map(size).collect::<Vec<_>>(),
            vec![50, 30, 20, 15, 10]
        );
        // Two sources with examples: two folds. A text in both goes with its first copy.
        let texts2 = ["a", "b", "a", "c"];
        let (folds2, _, _, k2) = source_folds(&texts2, &[0, 0, 1, 1], 2, 5);
        assert_eq!(k2, 2);
        assert_eq!(folds2, vec![0, 0, 0, 1]);
    }

    #[test]
    fn calibration_error_of_held_out_documents() {
        // 0.9 stated, right 9 times in 10: calibrated; right every time: 0.1 off.
        let docs: Vec<(f32, bool)> = (0..100).map(|i| (0.9, i % 10 != 0)).collect();
        assert!(calibration_error(&docs) < 1e-6);
        let docs: Vec<(f32, bool)> = (0..100).map(|_| (0.9, true)).collect();
        assert!((calibration_error(&docs) - 0.1).abs() < 1e-6);
    }
}
