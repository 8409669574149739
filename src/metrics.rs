//! Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

use serde::{Deserialize, Serialize};

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

/// An evaluation: `confusion[true][predicted]` counts over `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The labels, indexing both axes of the confusion matrix.
    pub labels: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
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
        Evaluation { labels, confusion }
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
        let per_class: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .zip(self.per_class())
            .map(|(l, m)| (l.clone(), serde_json::to_value(m).expect("plain numbers")))
            .collect();
        serde_json::json!({
            "n": self.n(),
            "accuracy": self.accuracy(),
            "macro_f1": self.macro_f1(),
            "labels": self.labels,
            "per_class": per_class,
            "confusion": self.confusion,
        })
    }

    /// A readable report: totals, a per-class table and the confusion matrix.
    pub fn report(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let width = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let _ = writeln!(
            s,
            "examples: {}   accuracy: {:.4}   macro-F1: {:.4}\n",
            self.n(),
            self.accuracy(),
            self.macro_f1()
        );
        let _ = writeln!(s, "{:<width$}  precision  recall     f1  support", "label");
        for (l, m) in self.labels.iter().zip(self.per_class()) {
            let _ = writeln!(
                s,
                "{:<width$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                l, m.precision, m.recall, m.f1, m.support
            );
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

#[cfg(test)]
mod tests {
    use super::*;

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
