//! Multi-label decisions: a model of one SVM per label against the rest scores each label on
//! its own (the sigmoid of its logit), and answers every label whose score reaches that
//! label's threshold, chosen on held-out scores for the label's F1.

use serde::{Deserialize, Serialize};

/// A multi-label model's thresholds, as recorded in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabel {
    /// Each label's threshold on its score, in label order.
    pub thresholds: Vec<f32>,
    /// Folds of the cross-validation whose held-out scores chose them (0: none; every
    /// threshold is then 0.5, the SVMs' own boundary).
    pub folds: usize,
}

impl MultiLabel {
    /// Checks thresholds read from a bundle of `labels` labels.
    pub(crate) fn check(&self, labels: usize) -> std::result::Result<(), String> {
        if self.thresholds.len() != labels {
            return Err(format!(
                "{} thresholds for {labels} labels",
                self.thresholds.len()
            ));
        }
        if self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return Err("a threshold outside 0..1".into());
        }
        Ok(())
    }

    /// The labels (indices) whose scores reach their thresholds, best score first.
    pub fn chosen(&self, scores: &[f32]) -> Vec<usize> {
        let mut over: Vec<usize> = (0..scores.len())
            .filter(|&i| scores[i] >= self.thresholds[i])
            .collect();
        over.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        over
    }
}

/// Logits into independent per-label scores, in place: the sigmoid of each.
pub(crate) fn sigmoid_in_place(xs: &mut [f32]) {
    for x in xs.iter_mut() {
        *x = 1.0 / (1.0 + (-*x).exp());
    }
}

/// A label whose best held-out F1 is under this keeps the SVM's own boundary (0.5): its
/// held-out evidence is too thin to move it (Yang's SCut.FBR, 2001). Without it, a label of
/// one or two training articles, which the fold models never saw, gets a threshold near 0 and
/// is answered for hundreds of articles: on Reuters-21578, micro-F1 0.20 instead of 0.88
/// (bench/NOTES.md, twelfth round).
const MIN_F1: f64 = 0.2;

/// The threshold on one label's held-out scores (`scores[i]`, with `gold[i]` whether the
/// document has the label) that gives the best F1: the midpoint between the lowest score
/// answered and the highest one not answered at the best cut (ties: the higher cut). 0.5 when
/// the label has no document among them, or when its best F1 is under [`MIN_F1`].
pub(crate) fn best_threshold(scores: &[f32], gold: &[bool]) -> f32 {
    let positives = gold.iter().filter(|&&g| g).count();
    if positives == 0 {
        return 0.5;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut best, mut best_at) = (0usize, -1.0f64, 0usize);
    for (k, &i) in order.iter().enumerate() {
        tp += gold[i] as usize;
        // Answering the first k + 1 documents (a cut only between different scores).
        if order.get(k + 1).is_some_and(|&j| scores[j] == scores[i]) {
            continue;
        }
        let f1 = 2.0 * tp as f64 / ((k + 1) as f64 + positives as f64);
        if f1 > best {
            best = f1;
            best_at = k;
        }
    }
    if best < MIN_F1 {
        return 0.5;
    }
    let low = scores[order[best_at]];
    let next = order.get(best_at + 1).map_or(0.0, |&j| scores[j]);
    (0.5 * (low + next)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_gives_the_best_f1_on_held_out_scores() {
        // Scores of six documents; the label's documents are the 1st, 2nd and 4th best.
        let scores = [0.9, 0.8, 0.6, 0.55, 0.3, 0.2];
        let gold = [true, true, false, true, false, false];
        // Cuts: 1 doc F1 0.5, 2 docs 0.8, 3 docs 0.667, 4 docs 0.857, 5 docs 0.75.
        let t = best_threshold(&scores, &gold);
        assert!((t - 0.425).abs() < 1e-6, "{t}");
        // No document of the label: the SVMs' own boundary.
        assert_eq!(best_threshold(&scores, &[false; 6]), 0.5);
        // Ties are cut together: two documents of score 0.7, one of them the label's.
        let t = best_threshold(&[0.7, 0.7, 0.1], &[true, false, false]);
        assert!((t - 0.4).abs() < 1e-6, "{t}");
        // A label whose best F1 is under 0.2 keeps the SVMs' boundary: its one document is
        // the lowest of twelve (F1 2/13 at best).
        let mut scores = vec![0.9f32; 11];
        scores.push(0.01);
        let mut gold = vec![false; 11];
        gold.push(true);
        assert_eq!(best_threshold(&scores, &gold), 0.5);
    }

    #[test]
    fn chosen_labels_reach_their_thresholds_best_first() {
        let m = MultiLabel {
            thresholds: vec![0.5, 0.2, 0.9],
            folds: 2,
        };
        assert_eq!(m.chosen(&[0.6, 0.7, 0.8]), vec![1, 0]);
        assert_eq!(m.chosen(&[0.1, 0.1, 0.1]), Vec::<usize>::new());
        assert!(m.check(3).is_ok());
        assert!(m.check(2).is_err());
        let bad = MultiLabel {
            thresholds: vec![1.5, 0.1],
            folds: 2,
        };
        assert!(bad.check(2).is_err());
    }
}
