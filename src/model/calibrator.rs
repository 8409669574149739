//! Calibrated probabilities: a monotone map of the top probability, fitted by isotonic
//! regression on held-out scores, so that answers given with probability 0.9 are right about
//! 9 times in 10.
//!
//! The map is applied to a text's probabilities by a temperature of its own: the one that
//! brings the top probability to the map's value. The ranking of the labels is unchanged (the
//! answer is the same), the other labels keep their order, and the probabilities still add
//! up to 1.

use serde::{Deserialize, Serialize};

/// A monotone map of the top probability (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrator {
    /// Folds of the cross-validation whose held-out scores it was fitted on.
    pub folds: usize,
    /// Held-out documents it was fitted on.
    pub documents: usize,
    /// The map's knots, `[top probability, calibrated]`: the first increasing, the second
    /// never decreasing; linear between knots and flat beyond the first and the last.
    pub knots: Vec<[f32; 2]>,
}

impl Calibrator {
    /// Fits the map on held-out documents: each one's top probability and whether its answer
    /// was right, for a model of `classes` labels. Isotonic regression (pool adjacent
    /// violators) of rightness on the top probability; each pooled block becomes a knot at
    /// its mean probability, with its share of right answers shrunk by one pseudo-document
    /// towards that mean (a block of a few documents, all right, does not claim certainty).
    /// `None` without documents.
    pub fn fit(docs: &[(f32, bool)], classes: usize, folds: usize) -> Option<Calibrator> {
        if docs.is_empty() {
            return None;
        }
        let mut sorted: Vec<(f64, f64)> = docs
            .iter()
            .map(|&(p, right)| (p as f64, right as u8 as f64))
            .collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (sum of rightness, documents, sum of probabilities): first one per
        // distinct probability, then adjacent blocks pooled while the earlier one is right as
        // often or more often than the later.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (p, y) in sorted {
            match blocks.last_mut() {
                Some(last) if last.2 / last.1 == p => {
                    last.0 += y;
                    last.1 += 1.0;
                    last.2 += p;
                }
                _ => blocks.push((y, 1.0, p)),
            }
        }
        let mut pooled: Vec<(f64, f64, f64)> = Vec::with_capacity(blocks.len());
        for b in blocks {
            pooled.push(b);
            while pooled.len() > 1 {
                let (b, a) = (pooled[pooled.len() - 1], pooled[pooled.len() - 2]);
                if a.0 / a.1 < b.0 / b.1 {
                    break;
                }
                pooled.pop();
                let last = pooled.last_mut().expect("two blocks");
                last.0 += b.0;
                last.1 += b.1;
                last.2 += b.2;
            }
        }
        let floor = 1.0 / classes.max(1) as f64;
        let mut knots: Vec<[f32; 2]> = Vec::with_capacity(pooled.len());
        let mut high = floor;
        for (right, n, psum) in pooled {
            let p = psum / n;
            let q = ((right + p) / (n + 1.0)).clamp(floor, 1.0).max(high);
            high = q;
            let x = p as f32;
            // Two blocks whose mean probabilities round to one f32 become one knot.
            match knots.last_mut() {
                Some(last) if last[0] >= x => last[1] = q as f32,
                _ => knots.push([x, q as f32]),
            }
        }
        Some(Calibrator {
            folds,
            documents: docs.len(),
            knots,
        })
    }

    /// The calibrated value of top probability `p`.
    pub fn map(&self, p: f32) -> f32 {
        let k = &self.knots;
        let i = k.partition_point(|knot| knot[0] <= p);
        if i == 0 {
            return k[0][1];
        }
        if i == k.len() {
            return k[i - 1][1];
        }
        let ([x0, y0], [x1, y1]) = (k[i - 1], k[i]);
        y0 + (y1 - y0) * ((p - x0) / (x1 - x0))
    }

    /// Calibrates probabilities (adding up to 1) in place: the top one becomes [`map`]'s
    /// value (never below `1 / labels`), through the temperature `t` that gives it, each
    /// probability `p` becoming `p^t` over the sum of them all. Labels of probability 0 stay
    /// at 0; when only the top label has any, nothing changes.
    ///
    /// [`map`]: Calibrator::map
    pub fn apply(&self, probs: &mut [f32]) {
        let k = probs.len();
        if k < 2 {
            return;
        }
        let top = crate::model::argmax(probs);
        let p1 = probs[top] as f64;
        let target = (self.map(probs[top]) as f64).max(1.0 / k as f64);
        if p1.is_nan() || p1 <= 0.0 || (target - p1).abs() < 1e-7 {
            return;
        }
        // The others' log-ratios to the top, d <= 0: the top probability at temperature t is
        // 1 / (1 + S(t)), S(t) = sum of exp(t d). Solve ln S(t) = ln(1 / target - 1).
        let d: Vec<f64> = probs
            .iter()
            .enumerate()
            .filter(|&(i, &p)| i != top && p > 0.0)
            .map(|(_, &p)| (p as f64 / p1).ln())
            .collect();
        if d.is_empty() || d.iter().all(|&x| x == 0.0) {
            return;
        }
        let goal = (1.0 / target - 1.0).max(1e-12).ln();
        let sums = |t: f64| -> (f64, f64) {
            d.iter().fold((0.0, 0.0), |(s, ds), &x| {
                let e = (t * x).exp();
                (s + e, ds + x * e)
            })
        };
        // ln S is convex and decreasing in t: from any start, Newton's first step lands at
        // or below the root, and the steps after climb to it without overshooting.
        let mut t = 1.0f64;
        for _ in 0..100 {
            let (s, ds) = sums(t);
            if s <= 0.0 || ds >= 0.0 {
                break;
            }
            let next = (t - (s.ln() - goal) * s / ds).max(0.0);
            let done = (next - t).abs() <= 1e-9 * (1.0 + t);
            t = next;
            if done {
                break;
            }
        }
        let (s, _) = sums(t);
        let norm = 1.0 + s;
        for (i, p) in probs.iter_mut().enumerate() {
            if i == top {
                *p = (1.0 / norm) as f32;
            } else if *p > 0.0 {
                *p = ((*p as f64 / p1).ln() * t).exp() as f32 / norm as f32;
            }
        }
    }

    /// Checks a map read from a bundle: at least one knot, every value a probability, the
    /// knots' probabilities increasing and their calibrated values never decreasing.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let bad = |why: &str| Err(why.to_string());
        if self.knots.is_empty() {
            return bad("no knots");
        }
        if self
            .knots
            .iter()
            .flatten()
            .any(|v| !(0.0..=1.0).contains(v))
        {
            return bad("a knot outside 0..1");
        }
        if self
            .knots
            .windows(2)
            .any(|w| w[1][0] <= w[0][0] || w[1][1] < w[0][1])
        {
            return bad("knots out of order");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(z: &[f32]) -> Vec<f32> {
        let mut p = z.to_vec();
        crate::model::softmax_in_place(&mut p);
        p
    }

    #[test]
    fn isotonic_fit_follows_the_held_out_accuracy() {
        // Overconfident at the top (0.95: right 3 times in 4), underconfident at the bottom
        // (0.3: right 1 time in 2).
        let mut docs = Vec::new();
        for i in 0..400 {
            docs.push((0.95, i % 4 != 0));
            docs.push((0.3, i % 2 == 0));
        }
        let c = Calibrator::fit(&docs, 4, 3).unwrap();
        assert_eq!(c.knots.len(), 2);
        assert_eq!(c.documents, 800);
        // (300 + 0.95) / 401 and (200 + 0.3) / 401.
        assert!((c.map(0.95) - 0.7505).abs() < 1e-3, "{}", c.map(0.95));
        assert!((c.map(0.3) - 0.4995).abs() < 1e-3, "{}", c.map(0.3));
        // Linear between knots, flat beyond.
        assert!((c.map(0.625) - (0.7505 + 0.4995) / 2.0).abs() < 1e-3);
        assert_eq!(c.map(0.99), c.map(0.95));
        assert_eq!(c.map(0.1), c.map(0.3));
        c.check().unwrap();
    }

    #[test]
    fn violators_are_pooled_and_values_stay_monotone() {
        // Less right at 0.8 than at 0.6: the two pool into one block.
        let mut docs = Vec::new();
        for i in 0..10 {
            docs.push((0.6, i < 9));
            docs.push((0.8, i < 5));
        }
        let c = Calibrator::fit(&docs, 2, 3).unwrap();
        assert_eq!(c.knots.len(), 1);
        assert!((c.knots[0][0] - 0.7).abs() < 1e-6);
        assert!((c.knots[0][1] - (14.0 + 0.7) / 21.0).abs() < 1e-5);
        // Never below 1 / labels.
        let c = Calibrator::fit(&[(0.4, false), (0.9, true)], 3, 3).unwrap();
        assert!(c.map(0.4) >= 1.0 / 3.0 - 1e-6);
        assert!(Calibrator::fit(&[], 3, 3).is_none());
    }

    #[test]
    fn apply_moves_the_top_probability_to_the_map_and_keeps_the_ranking() {
        let c = Calibrator {
            folds: 3,
            documents: 10,
            knots: vec![[0.2, 0.3], [0.9, 0.6], [0.99, 0.95]],
        };
        for z in [
            vec![3.0f32, 1.0, 0.5, -2.0],
            vec![0.1, 0.0, 0.05, 0.02],
            vec![8.0, 0.0, -1.0, -1.0],
        ] {
            let p = softmax(&z);
            let mut q = p.clone();
            c.apply(&mut q);
            let want = c.map(p[0]).max(0.25);
            assert!((q[0] - want).abs() < 1e-4, "{p:?} -> {q:?}, want {want}");
            assert!((q.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            // Same order of the labels.
            for i in 1..4 {
                for j in 1..4 {
                    if p[i] > p[j] {
                        assert!(q[i] >= q[j], "{p:?} -> {q:?}");
                    }
                }
            }
        }
        // Only the top label has probability: unchanged.
        let mut one = vec![1.0, 0.0, 0.0];
        c.apply(&mut one);
        assert_eq!(one, vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn check_refuses_broken_maps() {
        let c = |knots: Vec<[f32; 2]>| Calibrator {
            folds: 3,
            documents: 1,
            knots,
        };
        assert!(c(vec![]).check().is_err());
        assert!(c(vec![[0.5, 1.5]]).check().is_err());
        assert!(c(vec![[0.5, 0.6], [0.4, 0.7]]).check().is_err());
        assert!(c(vec![[0.4, 0.7], [0.5, 0.6]]).check().is_err());
        assert!(c(vec![[0.4, 0.6], [0.5, 0.6]]).check().is_ok());
    }
}
