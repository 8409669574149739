//! Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix; with the model's
//! probabilities, also top-k accuracy, calibration (how often a stated confidence is right) and
//! coverage at a confidence threshold.

use serde::{Deserialize, Serialize};

/// Bins of confidence in the calibration that reports show.
pub const CALIBRATION_BINS: usize = 10;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Of the examples predicted as this class, the share that are.
    pub precision: f64,
    /// Of the examples of this class, the share predicted as such.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of examples whose true label is this class.
    pub support: usize,
}

/// An evaluation: `confusion[true][predicted]` counts over `labels`, and, when built from the
/// model's probabilities, what each example scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The labels, indexing both axes of the confusion matrix.
    pub labels: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Each example's outcome, in input order (empty when built from label pairs alone).
    #[serde(skip)]
    pub scored: Vec<Scored>,
}

/// One evaluated example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The true label's index.
    pub truth: usize,
    /// The predicted label's index.
    pub predicted: usize,
    /// The probability the model gave its prediction.
    pub confidence: f32,
    /// Where the true label came in the model's ranking (1: first); 0 for a label the model
    /// does not know.
    pub rank: usize,
}

/// Calibration: the examples in bins of confidence, and how far confidence is from accuracy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// The bins, `[lo, hi)` of confidence (the last one closed), with their examples.
    pub bins: Vec<ConfidenceBin>,
    /// Expected calibration error: the mean over examples of |accuracy - confidence| of their
    /// bin (0 is perfect).
    pub ece: f64,
}

/// The examples whose confidence falls in `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfidenceBin {
    /// Lower bound of the bin's confidence.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Examples in the bin.
    pub count: usize,
    /// Their mean confidence.
    pub confidence: f64,
    /// The share of them predicted right.
    pub accuracy: f64,
}

/// What a confidence threshold leaves: the examples whose prediction is at least that
/// confident, and how accurate those are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coverage {
    /// The threshold.
    pub threshold: f64,
    /// The share of examples at or above it.
    pub coverage: f64,
    /// Accuracy on those examples (0 when there are none).
    pub accuracy: f64,
}

impl Evaluation {
    /// Builds the confusion matrix from pairs of (true, predicted) label indices.
    pub fn from_pairs(
        labels: Vec<String>,
        pairs: impl IntoIterator<Item = (usize, usize)>,
    ) -> Self {
        let n = labels.len();
        let mut confusion = vec![vec![0; n]; n];
        for (t, p) in pairs {
            confusion[t][p] += 1;
        }
        Evaluation {
            labels,
            confusion,
            scored: Vec::new(),
        }
    }

    /// An evaluation from each example's outcome: the confusion matrix and everything the
    /// probabilities tell besides (top-k accuracy, calibration, coverage).
    pub fn from_scored(labels: Vec<String>, scored: Vec<Scored>) -> Self {
        let mut e = Evaluation::from_pairs(labels, scored.iter().map(|s| (s.truth, s.predicted)));
        e.scored = scored;
        e
    }

    /// Share of examples whose true label is among the model's `k` most probable; `None`
    /// without the examples' outcomes.
    pub fn top_k_accuracy(&self, k: usize) -> Option<f64> {
        if self.scored.is_empty() {
            return None;
        }
        let hits = self
            .scored
            .iter()
            .filter(|s| s.rank >= 1 && s.rank <= k)
            .count();
        Some(hits as f64 / self.scored.len() as f64)
    }

    /// Calibration over `bins` equal bins of confidence; `None` without the examples' outcomes.
    pub fn calibration(&self, bins: usize) -> Option<Calibration> {
        if self.scored.is_empty() || bins == 0 {
            return None;
        }
        let mut sums = vec![(0usize, 0f64, 0usize); bins];
        for s in &self.scored {
            let b = ((s.confidence as f64 * bins as f64) as usize).min(bins - 1);
            sums[b].0 += 1;
            sums[b].1 += s.confidence as f64;
            sums[b].2 += usize::from(s.truth == s.predicted);
        }
        let n = self.scored.len() as f64;
        let mut ece = 0.0;
        let bins: Vec<ConfidenceBin> = sums
            .iter()
            .enumerate()
            .map(|(i, &(count, conf, right))| {
                let (confidence, accuracy) = if count > 0 {
                    (conf / count as f64, right as f64 / count as f64)
                } else {
                    (0.0, 0.0)
                };
                ece += count as f64 / n * (accuracy - confidence).abs();
                ConfidenceBin {
                    lo: i as f64 / sums.len() as f64,
                    hi: (i + 1) as f64 / sums.len() as f64,
                    count,
                    confidence,
                    accuracy,
                }
            })
            .collect();
        Some(Calibration { bins, ece })
    }

    /// Coverage and accuracy of the predictions at least `threshold` confident; `None` without
    /// the examples' outcomes.
    pub fn at_threshold(&self, threshold: f64) -> Option<Coverage> {
        if self.scored.is_empty() {
            return None;
        }
        let covered: Vec<&Scored> = self
            .scored
            .iter()
            .filter(|s| s.confidence as f64 >= threshold)
            .collect();
        let right = covered.iter().filter(|s| s.truth == s.predicted).count();
        Some(Coverage {
            threshold,
            coverage: covered.len() as f64 / self.scored.len() as f64,
            accuracy: if covered.is_empty() {
                0.0
            } else {
                right as f64 / covered.len() as f64
            },
        })
    }

    /// Number of examples.
    pub fn n(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }

    /// Share of examples predicted correctly.
    pub fn accuracy(&self) -> f64 {
        let n = self.n();
        if n == 0 {
            return 0.0;
        }
        let correct: usize = (0..self.labels.len()).map(|i| self.confusion[i][i]).sum();
        correct as f64 / n as f64
    }

    /// Metrics for each label, in label order.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        let k = self.labels.len();
        (0..k)
            .map(|c| {
                let tp = self.confusion[c][c] as f64;
                let support: usize = self.confusion[c].iter().sum();
                let predicted: usize = (0..k).map(|t| self.confusion[t][c]).sum();
                let precision = if predicted > 0 {
                    tp / predicted as f64
                } else {
                    0.0
                };
                let recall = if support > 0 {
                    tp / support as f64
                } else {
                    0.0
                };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }

    /// Unweighted mean of the F1 of the classes that occur (as truth or as prediction).
    pub fn macro_f1(&self) -> f64 {
        let k = self.labels.len();
        let per = self.per_class();
        let present: Vec<f64> = (0..k)
            .filter(|&c| per[c].support > 0 || (0..k).any(|t| self.confusion[t][c] > 0))
            .map(|c| per[c].f1)
            .collect();
        if present.is_empty() {
            0.0
        } else {
            present.iter().sum::<f64>() / present.len() as f64
        }
    }

    /// The machine-readable report of `khabar eval --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let per_class = by_label(&self.labels, &self.per_class());
        let mut v = serde_json::json!({
            "n": self.n(),
            "accuracy": self.accuracy(),
            "macro_f1": self.macro_f1(),
            "labels": self.labels,
            "per_class": per_class,
            "confusion": self.confusion,
        });
        if let Some(c) = self.calibration(CALIBRATION_BINS) {
            let top: serde_json::Map<String, serde_json::Value> = (1..=self.labels.len().min(5))
                .filter_map(|k| Some((k.to_string(), self.top_k_accuracy(k)?.into())))
                .collect();
            v["top_k_accuracy"] = top.into();
            v["expected_calibration_error"] = c.ece.into();
            v["reliability"] = serde_json::to_value(&c.bins).expect("plain numbers");
        }
        v
    }

    /// A readable report: totals, a per-class table and the confusion matrix.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "examples: {}   accuracy: {:.4}   macro-F1: {:.4}\n",
            self.n(),
            self.accuracy(),
            self.macro_f1()
        );
        write_table(&mut s, &self.labels, &self.per_class());
        if let Some(c) = self.calibration(CALIBRATION_BINS) {
            let tops: Vec<String> = (2..=self.labels.len().min(5))
                .filter_map(|k| Some(format!("top-{k} {:.4}", self.top_k_accuracy(k)?)))
                .collect();
            if !tops.is_empty() {
                let _ = writeln!(s, "\ntop-k accuracy: {}", tops.join(", "));
            }
            let _ = writeln!(
                s,
                "\ncalibration: expected calibration error {:.4} (0 is perfect: a stated 0.9 is \
                 right 9 times in 10)",
                c.ece
            );
            let _ = writeln!(s, "confidence     count  mean confidence  accuracy");
            for b in c.bins.iter().filter(|b| b.count > 0) {
                let _ = writeln!(
                    s,
                    "{:.1}-{:.1}  {:>10}  {:>15.4}  {:>8.4}",
                    b.lo, b.hi, b.count, b.confidence, b.accuracy
                );
            }
        }
        let _ = writeln!(
            s,
            "\nconfusion matrix (rows: true label, columns: predicted)"
        );
        // Row names "[i] label", and columns wide enough for the counts and the "[j]" headers,
        // so that every header sits right above its column (with 10 labels or more too).
        let names: Vec<String> = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| format!("[{i}] {l}"))
            .collect();
        let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let col = self
            .confusion
            .iter()
            .flatten()
            .map(|m| m.to_string().len())
            .chain(std::iter::once(
                format!("[{}]", self.labels.len().saturating_sub(1)).len(),
            ))
            .max()
            .unwrap_or(3);
        let _ = write!(s, "{:<name_width$}", "");
        for i in 0..self.labels.len() {
            let _ = write!(s, " {:>col$}", format!("[{i}]"));
        }
        let _ = writeln!(s);
        for (name, row) in names.iter().zip(&self.confusion) {
            let pad = name_width - name.chars().count();
            let _ = write!(s, "{name}{:pad$}", "");
            for &c in row {
                let _ = write!(s, " {c:>col$}");
            }
            let _ = writeln!(s);
        }
        s
    }
}

/// A multi-label evaluation: each article's true labels against the labels the model answered
/// (every label over its threshold), and its labels ranked by score.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiEvaluation {
    /// The labels; the indices below point into them.
    pub labels: Vec<String>,
    /// Each article's true labels.
    pub gold: Vec<Vec<usize>>,
    /// Each article's answered labels.
    pub answered: Vec<Vec<usize>>,
    /// Each article's labels by score, best first (the first few).
    pub ranked: Vec<Vec<usize>>,
}

/// The `k` of the precision at k that reports show.
pub const PRECISION_AT: [usize; 3] = [1, 3, 5];

impl MultiEvaluation {
    /// Number of articles.
    pub fn n(&self) -> usize {
        self.gold.len()
    }

    /// True positives, answered and true label counts of each label.
    fn counts(&self) -> Vec<(usize, usize, usize)> {
        let mut c = vec![(0, 0, 0); self.labels.len()];
        for (gold, answered) in self.gold.iter().zip(&self.answered) {
            for &l in answered {
                c[l].1 += 1;
                if gold.contains(&l) {
                    c[l].0 += 1;
                }
            }
            for &l in gold {
                c[l].2 += 1;
            }
        }
        c
    }

    /// Each label's precision, recall, F1 (0 where undefined) and support.
    pub fn per_label(&self) -> Vec<ClassMetrics> {
        self.counts()
            .into_iter()
            .map(|(tp, answered, support)| scores(tp, answered, support))
            .collect()
    }

    /// Precision, recall and F1 over all (article, label) decisions.
    pub fn micro(&self) -> ClassMetrics {
        let (tp, answered, support) = self
            .counts()
            .into_iter()
            .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
        scores(tp, answered, support)
    }

    /// The mean F1 of the labels that some article has or that the model answered (a label of
    /// neither is left out: its F1 is undefined).
    pub fn macro_f1(&self) -> f64 {
        let (sum, n) = self
            .counts()
            .into_iter()
            .filter(|&(_, answered, support)| answered + support > 0)
            .map(|(tp, answered, support)| scores(tp, answered, support).f1)
            .fold((0.0, 0usize), |(s, n), f| (s + f, n + 1));
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// The share of articles whose answered labels are exactly their true labels.
    pub fn subset_accuracy(&self) -> f64 {
        let same =
            |a: &Vec<usize>, b: &Vec<usize>| a.len() == b.len() && a.iter().all(|l| b.contains(l));
        let right = self
            .gold
            .iter()
            .zip(&self.answered)
            .filter(|(g, a)| same(g, a))
            .count();
        right as f64 / self.n().max(1) as f64
    }

    /// The share of (article, label) decisions that are wrong: labels answered but not true,
    /// and true but not answered, over articles times labels.
    pub fn hamming_loss(&self) -> f64 {
        let wrong: usize = self
            .gold
            .iter()
            .zip(&self.answered)
            .map(|(g, a)| {
                a.iter().filter(|l| !g.contains(l)).count()
                    + g.iter().filter(|l| !a.contains(l)).count()
            })
            .sum();
        wrong as f64 / (self.n() * self.labels.len()).max(1) as f64
    }

    /// Precision at `k`: of each article's `k` best-scored labels, the share that are true,
    /// averaged over articles.
    pub fn precision_at(&self, k: usize) -> f64 {
        let sum: f64 = self
            .gold
            .iter()
            .zip(&self.ranked)
            .map(|(g, r)| r.iter().take(k).filter(|l| g.contains(l)).count() as f64 / k as f64)
            .sum();
        sum / self.n().max(1) as f64
    }

    /// Recall at `k`: of each article's true labels, the share among its `k` best-scored
    /// labels, averaged over articles.
    pub fn recall_at(&self, k: usize) -> f64 {
        let sum: f64 = self
            .gold
            .iter()
            .zip(&self.ranked)
            .map(|(g, r)| {
                r.iter().take(k).filter(|l| g.contains(l)).count() as f64 / g.len().max(1) as f64
            })
            .sum();
        sum / self.n().max(1) as f64
    }

    /// Everything as one JSON object (`khabar eval --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let micro = self.micro();
        let per_label = by_label(&self.labels, &self.per_label());
        let at = |f: &dyn Fn(usize) -> f64| -> serde_json::Map<String, serde_json::Value> {
            PRECISION_AT
                .iter()
                .map(|&k| (k.to_string(), f(k).into()))
                .collect()
        };
        serde_json::json!({
            "n": self.n(),
            "multi_label": true,
            "micro_precision": micro.precision,
            "micro_recall": micro.recall,
            "micro_f1": micro.f1,
            "macro_f1": self.macro_f1(),
            "subset_accuracy": self.subset_accuracy(),
            "hamming_loss": self.hamming_loss(),
            "precision_at": at(&|k| self.precision_at(k)),
            "recall_at": at(&|k| self.recall_at(k)),
            "labels": self.labels,
            "per_label": per_label,
        })
    }

    /// A readable report: totals, then each label's precision, recall, F1 and support.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let micro = self.micro();
        let _ = writeln!(
            s,
            "articles: {}   micro-F1: {:.4} (precision {:.4}, recall {:.4})   macro-F1: {:.4}",
            self.n(),
            micro.f1,
            micro.precision,
            micro.recall,
            self.macro_f1()
        );
        let _ = writeln!(
            s,
            "subset accuracy: {:.4}   Hamming loss: {:.5}",
            self.subset_accuracy(),
            self.hamming_loss()
        );
        let at: Vec<String> = PRECISION_AT
            .iter()
            .map(|&k| {
                format!(
                    "P@{k} {:.4} R@{k} {:.4}",
                    self.precision_at(k),
                    self.recall_at(k)
                )
            })
            .collect();
        let _ = writeln!(s, "{}\n", at.join(", "));
        write_table(&mut s, &self.labels, &self.per_label());
        s
    }
}

/// Each label's precision, recall, F1 and support as a JSON object keyed by label.
fn by_label(
    labels: &[String],
    metrics: &[ClassMetrics],
) -> serde_json::Map<String, serde_json::Value> {
    labels
        .iter()
        .zip(metrics)
        .map(|(l, m)| (l.clone(), serde_json::to_value(m).expect("plain numbers")))
        .collect()
}

/// The table of each label's precision, recall, F1 and support.
fn write_table(s: &mut String, labels: &[String], metrics: &[ClassMetrics]) {
    use std::fmt::Write;
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(s, "{:<width$}  precision  recall     f1  support", "label");
    for (l, m) in labels.iter().zip(metrics) {
        let _ = writeln!(
            s,
            "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
            l, m.precision, m.recall, m.f1, m.support
        );
    }
}

/// Precision, recall and F1 from true positives, answers and true examples (0 where a ratio
/// is undefined).
fn scores(tp: usize, answered: usize, support: usize) -> ClassMetrics {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(tp, answered), ratio(tp, support));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    ClassMetrics {
        precision,
        recall,
        f1,
        support,
    }
}

#[cfg(test)]
mod tests {
    /// A case counted by hand: three articles, three labels.
    #[test]
    fn multi_label_metrics_of_a_hand_counted_case() {
        let e = super::MultiEvaluation {
            labels: vec!["a".into(), "b".into(), "c".into()],
            gold: vec![vec![0, 1], vec![1], vec![2]],
            answered: vec![vec![0], vec![1, 2], vec![]],
            ranked: vec![vec![0, 2, 1], vec![1, 2, 0], vec![0, 2, 1]],
        };
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        let per = e.per_label();
        close(per[0].f1, 1.0);
        close(per[1].precision, 1.0);
        close(per[1].recall, 0.5);
        close(per[1].f1, 2.0 / 3.0);
        close(per[2].f1, 0.0);
        assert_eq!(per[1].support, 2);
        let micro = e.micro();
        close(micro.precision, 2.0 / 3.0);
        close(micro.recall, 0.5);
        close(micro.f1, 4.0 / 7.0);
        close(e.macro_f1(), (1.0 + 2.0 / 3.0) / 3.0);
        close(e.subset_accuracy(), 0.0);
        close(e.hamming_loss(), 3.0 / 9.0);
        close(e.precision_at(1), 2.0 / 3.0);
        close(e.precision_at(3), 4.0 / 9.0);
        close(e.recall_at(1), 0.5);
        let v = e.to_json();
        close(v["micro_f1"].as_f64().unwrap(), 4.0 / 7.0);
        close(v["precision_at"]["3"].as_f64().unwrap(), 4.0 / 9.0);
        assert!(e.report().contains("micro-F1: 0.5714"), "{}", e.report());
        // One article right in full: subset accuracy counts it.
        let right = super::MultiEvaluation {
            answered: vec![vec![1, 0], vec![1, 2], vec![]],
            ..e
        };
        close(right.subset_accuracy(), 1.0 / 3.0);
    }

    use super::*;

    /// Top-k accuracy, calibration and coverage of a hand-made set of outcomes.
    #[test]
    fn probabilities_give_top_k_calibration_and_coverage() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let s = |truth, predicted, confidence, rank| Scored {
            truth,
            predicted,
            confidence,
            rank,
        };
        let e = Evaluation::from_scored(
            labels,
            vec![
                s(0, 0, 0.95, 1),
                s(1, 1, 0.92, 1),
                s(2, 0, 0.91, 2),
                s(1, 2, 0.45, 3),
                s(0, 0, 0.40, 1),
            ],
        );
        assert_eq!(e.accuracy(), 0.6);
        assert_eq!(e.top_k_accuracy(1), Some(0.6));
        assert_eq!(e.top_k_accuracy(2), Some(0.8));
        assert_eq!(e.top_k_accuracy(3), Some(1.0));
        let c = e.calibration(10).unwrap();
        // Bin 0.9-1.0: three examples, mean confidence 0.9267, two right; bin 0.4-0.5: two,
        // mean 0.425, one right.
        assert_eq!(c.bins[9].count, 3);
        assert!((c.bins[9].accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.bins[4].count, 2);
        let want = 0.6 * ((0.95f32 + 0.92 + 0.91) as f64 / 3.0 - 2.0 / 3.0).abs()
            + 0.4 * ((0.45f32 + 0.40) as f64 / 2.0 - 0.5).abs();
        assert!((c.ece - want).abs() < 1e-6, "{} vs {want}", c.ece);
        let at = e.at_threshold(0.9).unwrap();
        assert!((at.coverage - 0.6).abs() < 1e-12 && (at.accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(e.at_threshold(0.99).unwrap().coverage, 0.0);
        // Label pairs alone carry no probabilities.
        let pairs = Evaluation::from_pairs(vec!["a".into(), "b".into()], [(0, 0)]);
        assert!(pairs.calibration(10).is_none() && pairs.top_k_accuracy(1).is_none());
    }

    /// Each column header of the confusion matrix ends where the numbers of its column end,
    /// with few labels and with eleven (two-digit indices), ASCII and Devanagari names.
    #[test]
    fn confusion_headers_sit_above_their_columns() {
        for n in [3usize, 11] {
            let labels: Vec<String> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        format!("label{i}")
                    } else {
                        format!("खेल{i}")
                    }
                })
                .collect();
            let pairs = (0..n).flat_map(|t| (0..n).map(move |p| (t, p)));
            let pairs: Vec<(usize, usize)> = pairs.chain((0..1234).map(|_| (0, 1))).collect();
            let e = Evaluation::from_pairs(labels, pairs);
            let report = e.report();
            let lines: Vec<&str> = report
                .lines()
                .skip_while(|l| !l.starts_with("confusion matrix"))
                .skip(1)
                .collect();
            let ends = |line: &str| -> Vec<usize> {
                // Character positions where a run of non-blanks ends.
                let chars: Vec<char> = line.chars().collect();
                (0..chars.len())
                    .filter(|&i| chars[i] != ' ' && chars.get(i + 1).is_none_or(|c| *c == ' '))
                    .collect()
            };
            let header = ends(lines[0]);
            assert_eq!(header.len(), n, "{report}");
            for row in &lines[1..=n] {
                let cells = ends(row);
                assert_eq!(&cells[cells.len() - n..], &header[..], "{report}");
            }
        }
    }

    #[test]
    fn metrics_match_hand_computation() {
        // true a,a,a,b,b,c  predicted a,a,b,b,c,c
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2)];
        let e = Evaluation::from_pairs(labels, pairs);
        assert_eq!(e.n(), 6);
        assert!((e.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        let per = e.per_class();
        assert!((per[0].precision - 1.0).abs() < 1e-12);
        assert!((per[0].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((per[1].precision - 0.5).abs() < 1e-12);
        assert!((per[2].precision - 0.5).abs() < 1e-12);
        assert!((per[2].recall - 1.0).abs() < 1e-12);
        let f1 = [0.8, 0.5, 2.0 / 3.0];
        assert!((e.macro_f1() - f1.iter().sum::<f64>() / 3.0).abs() < 1e-12);
        let j = e.to_json();
        assert_eq!(j["n"], 6);
        assert_eq!(j["per_class"]["b"]["support"], 2);
        assert_eq!(j["confusion"][1][2], 1);
    }
}
