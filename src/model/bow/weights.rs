//! How a text's counted features become weights: sublinear TF-IDF, L2-normalized, or the
//! mean (see [`Weighting`]).

use super::config::Weighting;

/// A document as a sparse, weighted set of distinct table rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SparseDoc {
    pub rows: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Weighs distinct rows with their counts into `doc` (in the same order).
pub(super) fn weigh_counts(
    counts: &[(u32, u32)],
    idf: &[f32],
    weighting: Weighting,
    doc: &mut SparseDoc,
) {
    let total = counts.iter().map(|&(_, n)| n as u64).sum::<u64>() as f32;
    doc.rows.clear();
    doc.weights.clear();
    for &(r, n) in counts.iter() {
        doc.rows.push(r);
        doc.weights.push(match weighting {
            Weighting::Tfidf if n == 1 => idf[r as usize],
            Weighting::Tfidf => sublinear_tf(n) * idf[r as usize],
            Weighting::Mean => n as f32 / total,
        });
    }
    if weighting == Weighting::Tfidf {
        let norm = doc.weights.iter().map(|w| w * w).sum::<f32>().sqrt();
        if norm > 0.0 {
            let inv = 1.0 / norm;
            doc.weights.iter_mut().for_each(|w| *w *= inv);
        }
    }
}

/// `1 + ln(n)`, the weight of a feature counted `n` times in a text, from a table for the
/// counts that long articles repeat most (cheaper than the logarithm).
#[inline]
pub(super) fn sublinear_tf(n: u32) -> f32 {
    static TABLE: std::sync::LazyLock<[f32; 64]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|i| 1.0 + (i.max(1) as f32).ln()));
    match TABLE.get(n as usize) {
        Some(&w) => w,
        None => 1.0 + (n as f32).ln(),
    }
}

/// How a counted row's weight is found: see [`Weighting`].
#[derive(Clone, Copy)]
pub(super) struct RowWeight {
    pub(super) weighting: Weighting,
    /// The text's number of features, counted with repeats.
    pub(super) total: f32,
}

impl RowWeight {
    /// The weight of a row counted `n` times, with IDF `idf`.
    #[inline(always)]
    pub(super) fn of(self, n: u32, idf: f32) -> f32 {
        match self.weighting {
            Weighting::Tfidf if n == 1 => idf,
            Weighting::Tfidf => sublinear_tf(n) * idf,
            Weighting::Mean => n as f32 / self.total,
        }
    }
}
