//! Adam with decoupled weight decay (AdamW), the one implementation behind every model's
//! optimizer: dense parameters and the rows of embedding tables ("lazy" Adam: only the rows a
//! step touched are updated) alike. The caller keeps the moments beside the weights.

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

/// The update rule of one optimizer step: its learning rate, bias corrections, weight decay
/// and gradient scale (for clipping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    lr: f32,
    /// `1 - beta1^t` and `1 - beta2^t`.
    c1: f32,
    c2: f32,
    decay: f32,
    scale: f32,
}

impl AdamStep {
    /// Step number `t` (from 1) at learning rate `lr`, without weight decay or scaling.
    pub(crate) fn new(t: u64, lr: f32) -> AdamStep {
        let t = t.min(i32::MAX as u64) as i32;
        AdamStep {
            lr,
            c1: 1.0 - BETA1.powi(t),
            c2: 1.0 - BETA2.powi(t),
            decay: 0.0,
            scale: 1.0,
        }
    }

    /// The same step with decoupled weight decay `decay` (relative to the learning rate).
    pub(crate) fn with_decay(self, decay: f32) -> AdamStep {
        AdamStep { decay, ..self }
    }

    /// The same step with every gradient multiplied by `scale` first.
    pub(crate) fn with_scale(self, scale: f32) -> AdamStep {
        AdamStep { scale, ..self }
    }

    /// Updates the weights `w` from their gradients `g` and moments `m` and `v` (all the same
    /// length).
    #[inline]
    pub(crate) fn apply(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        debug_assert!(w.len() == g.len() && w.len() == m.len() && w.len() == v.len());
        for k in 0..w.len() {
            let gk = g[k] * self.scale;
            m[k] = BETA1 * m[k] + (1.0 - BETA1) * gk;
            v[k] = BETA2 * v[k] + (1.0 - BETA2) * gk * gk;
            let mut upd = (m[k] / self.c1) / ((v[k] / self.c2).sqrt() + EPS);
            if self.decay != 0.0 {
                upd += self.decay * w[k];
            }
            w[k] -= self.lr * upd;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first step of Adam moves each weight by the learning rate against its gradient's
    /// sign (the bias-corrected ratio is +-1), decay pulls towards zero, and the moments are
    /// the gradient's share.
    #[test]
    fn first_step_moves_by_the_learning_rate() {
        let mut w = vec![1.0f32, -2.0, 0.5];
        let g = [0.3f32, -4.0, 0.0];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        AdamStep::new(1, 0.1).apply(&mut w, &g, &mut m, &mut v);
        assert!(
            (w[0] - 0.9).abs() < 1e-5 && (w[1] + 1.9).abs() < 1e-5,
            "{w:?}"
        );
        assert_eq!(w[2], 0.5);
        assert!((m[0] - 0.03).abs() < 1e-7 && (v[1] - 0.016).abs() < 1e-6);
        let mut w2 = vec![1.0f32];
        let (mut m2, mut v2) = (vec![0.0], vec![0.0]);
        AdamStep::new(1, 0.1).with_decay(0.5).with_scale(2.0).apply(
            &mut w2,
            &[0.0],
            &mut m2,
            &mut v2,
        );
        assert!((w2[0] - 0.95).abs() < 1e-6, "{w2:?}");
    }
}
