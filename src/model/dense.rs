//! A linear layer over dense vectors (the encoder's sentence vectors): `logits = W x + b`,
//! trained as multinomial logistic regression with an L2 penalty, to its optimum, by L-BFGS.
//!
//! The vectors are standardized for training (each coordinate centred and scaled to unit
//! variance: the encoder's vectors all point roughly the same way, so their raw coordinates
//! differ by little), and the scaling is folded into `W` and `b` afterwards: the trained layer
//! reads raw vectors. The problem is convex and the sums are taken in a fixed order, whatever
//! the thread count: the same data gives the same layer.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Vectors per parallel task of the loss and its gradient (fixed: it sets the summation order).
const CHUNK: usize = 256;
/// Most L-BFGS iterations; the bench corpora converge in 30 to 150.
const MAX_ITERATIONS: usize = 300;
/// L-BFGS's memory (pairs of steps and gradient changes kept).
const MEMORY: usize = 10;
/// Converged once the largest gradient coordinate is below this.
const GRADIENT_TOLERANCE: f64 = 1e-5;

/// A trained linear layer: `classes` rows of `dim` weights and a bias each.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseHead {
    dim: usize,
    classes: usize,
    /// Row-major, `classes × dim`.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl DenseHead {
    /// Width of the vectors it reads.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of outputs.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of weights.
    pub fn num_parameters(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// The bias of each output.
    pub(crate) fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The logits of vector `x` (of length [`DenseHead::dim`]) into `out`.
    pub(crate) fn logits_into(&self, x: &[f32], out: &mut Vec<f32>) {
        debug_assert_eq!(x.len(), self.dim);
        out.clear();
        out.extend(
            self.weight
                .chunks_exact(self.dim)
                .zip(&self.bias)
                .map(|(w, b)| b + dot(w, x)),
        );
    }

    /// Fits the layer to `xs` (each of length `dim`) and their classes `targets` (below
    /// `classes`), minimizing the mean cross-entropy plus `l2 / 2` times the squared weights
    /// (of the standardized vectors; the bias is not penalized). Runs on the current pool.
    pub(crate) fn fit(xs: &[&[f32]], targets: &[u32], classes: usize, l2: f64) -> DenseHead {
        let dim = xs.first().map_or(0, |x| x.len());
        let n = xs.len().max(1) as f64;
        // Standardization: mean and standard deviation of each coordinate.
        let mut mean = vec![0.0f64; dim];
        for x in xs {
            for (m, &v) in mean.iter_mut().zip(x.iter()) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; dim];
        for x in xs {
            for ((s, &v), m) in var.iter_mut().zip(x.iter()).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let scale: Vec<f64> = var.iter().map(|s| 1.0 / (s / n).sqrt().max(1e-6)).collect();
        let z: Vec<f32> = xs
            .iter()
            .flat_map(|x| {
                x.iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((&v, m), s)| ((v as f64 - m) * s) as f32)
            })
            .collect();
        let problem = Problem {
            z: &z,
            targets,
            dim,
            classes,
            l2,
        };
        let theta = lbfgs(&problem, vec![0.0; classes * (dim + 1)]);
        // Fold the standardization in: w·((x - m) s) + b = (w s)·x + (b - (w s)·m).
        let mut weight = vec![0.0f32; classes * dim];
        let mut bias = vec![0.0f32; classes];
        for c in 0..classes {
            let w = &theta[c * dim..(c + 1) * dim];
            let mut b = theta[classes * dim + c];
            for j in 0..dim {
                let ws = w[j] * scale[j];
                weight[c * dim + j] = ws as f32;
                b -= ws * mean[j];
            }
            bias[c] = b as f32;
        }
        DenseHead {
            dim,
            classes,
            weight,
            bias,
        }
    }

    /// The layer as two named tensors, `{prefix}.weight` and `{prefix}.bias`.
    pub(crate) fn tensors(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let dev = Device::Cpu;
        Ok(vec![
            (
                format!("{prefix}.weight"),
                Tensor::from_slice(&self.weight, (self.classes, self.dim), &dev)?,
            ),
            (
                format!("{prefix}.bias"),
                Tensor::from_slice(&self.bias, self.classes, &dev)?,
            ),
        ])
    }

    /// The layer from the tensors [`DenseHead::tensors`] wrote, checking their shapes.
    pub(crate) fn from_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
        prefix: &str,
        classes: usize,
        dim: usize,
    ) -> std::result::Result<DenseHead, String> {
        let get = |name: String, shape: &[usize]| -> std::result::Result<Vec<f32>, String> {
            let t = tensors
                .get(&name)
                .ok_or_else(|| format!("tensor '{name}' is missing"))?;
            if t.dims() != shape {
                return Err(format!(
                    "tensor '{name}' has shape {:?}, expected {shape:?}",
                    t.dims()
                ));
            }
            let v = t
                .flatten_all()
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("tensor '{name}': {e}"))?;
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("tensor '{name}' holds NaN or infinite values"));
            }
            Ok(v)
        };
        Ok(DenseHead {
            dim,
            classes,
            weight: get(format!("{prefix}.weight"), &[classes, dim])?,
            bias: get(format!("{prefix}.bias"), &[classes])?,
        })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums: the compiler vectorizes this.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The training problem: standardized vectors `z` (row-major, `dim` wide), their classes.
struct Problem<'a> {
    z: &'a [f32],
    targets: &'a [u32],
    dim: usize,
    classes: usize,
    l2: f64,
}

impl Problem<'_> {
    /// The loss at `theta` (weights `classes × dim`, then the biases) and its gradient.
    fn loss_and_gradient(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        let (d, k) = (self.dim, self.classes);
        let n = self.targets.len();
        let w: Vec<f32> = theta[..k * d].iter().map(|&v| v as f32).collect();
        let b = &theta[k * d..];
        let parts: Vec<(f64, Vec<f64>)> = self
            .z
            .par_chunks(CHUNK * d)
            .zip(self.targets.par_chunks(CHUNK))
            .map(|(zs, ys)| {
                let mut grad = vec![0.0f64; k * (d + 1)];
                let mut loss = 0.0f64;
                let mut p = vec![0.0f64; k];
                for (x, &y) in zs.chunks_exact(d).zip(ys) {
                    for c in 0..k {
                        p[c] = dot(&w[c * d..(c + 1) * d], x) as f64 + b[c];
                    }
                    let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = p.iter().map(|v| (v - max).exp()).sum();
                    loss += max + sum.ln() - p[y as usize];
                    for c in 0..k {
                        let g = (p[c] - max).exp() / sum - if c == y as usize { 1.0 } else { 0.0 };
                        if g != 0.0 {
                            let row = &mut grad[c * d..(c + 1) * d];
                            for (r, &v) in row.iter_mut().zip(x) {
                                *r += g * v as f64;
                            }
                            grad[k * d + c] += g;
                        }
                    }
                }
                (loss, grad)
            })
            .collect();
        let mut loss = 0.0;
        let mut grad = vec![0.0f64; k * (d + 1)];
        for (l, g) in parts {
            loss += l;
            grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let inv = 1.0 / n.max(1) as f64;
        loss *= inv;
        grad.iter_mut().for_each(|g| *g *= inv);
        for (g, &t) in grad[..k * d].iter_mut().zip(&theta[..k * d]) {
            *g += self.l2 * t;
        }
        loss += 0.5 * self.l2 * theta[..k * d].iter().map(|t| t * t).sum::<f64>();
        (loss, grad)
    }
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimizes the problem's loss from `theta` by L-BFGS with a backtracking line search.
fn lbfgs(problem: &Problem, mut theta: Vec<f64>) -> Vec<f64> {
    let (mut loss, mut grad) = problem.loss_and_gradient(&theta);
    let mut steps: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    for _ in 0..MAX_ITERATIONS {
        if grad.iter().all(|g| g.abs() < GRADIENT_TOLERANCE) {
            break;
        }
        // The direction: minus the inverse-Hessian estimate times the gradient (two loops).
        let mut q = grad.clone();
        let mut alphas = Vec::with_capacity(steps.len());
        for (s, y, rho) in steps.iter().rev() {
            let a = rho * dot64(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = steps.back() {
            let gamma = dot64(s, y) / dot64(y, y);
            q.iter_mut().for_each(|qi| *qi *= gamma);
        }
        for ((s, y, rho), a) in steps.iter().zip(alphas.iter().rev()) {
            let b = rho * dot64(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot64(&grad, &direction);
        if slope >= 0.0 {
            // Not a descent direction (should not happen on a convex problem): plain gradient.
            steps.clear();
            direction = grad.iter().map(|g| -g).collect();
            slope = -dot64(&grad, &grad);
        }
        // The first step of a fresh start is scaled down: the gradient's size says little.
        let mut t = if steps.is_empty() {
            1.0 / grad.iter().map(|g| g.abs()).fold(0.0, f64::max).max(1.0)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..30 {
            let candidate: Vec<f64> = theta
                .iter()
                .zip(&direction)
                .map(|(x, d)| x + t * d)
                .collect();
            let (l, g) = problem.loss_and_gradient(&candidate);
            if l <= loss + 1e-4 * t * slope {
                accepted = Some((candidate, l, g));
                break;
            }
            t *= 0.5;
        }
        let Some((next, next_loss, next_grad)) = accepted else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = next_grad.iter().zip(&grad).map(|(a, b)| a - b).collect();
        let sy = dot64(&s, &y);
        let improvement = loss - next_loss;
        theta = next;
        grad = next_grad;
        loss = next_loss;
        if sy > 1e-12 {
            if steps.len() == MEMORY {
                steps.pop_front();
            }
            steps.push_back((s, y, 1.0 / sy));
        }
        if improvement < 1e-10 * loss.abs().max(1.0) {
            break;
        }
    }
    theta
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clouds of points, one per class, offset along the first coordinate.
    fn clouds(n: usize) -> (Vec<Vec<f32>>, Vec<u32>) {
        let mut rng = crate::rng::SplitMix64::new(7);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..n {
            let y = (i % 2) as u32;
            let x: Vec<f32> = (0..6)
                .map(|j| {
                    let noise = rng.next_f32() - 0.5;
                    if j == 0 {
                        noise + if y == 1 { 1.0 } else { -1.0 }
                    } else {
                        noise
                    }
                })
                .collect();
            xs.push(x);
            ys.push(y);
        }
        (xs, ys)
    }

    #[test]
    fn learns_separable_classes_and_reads_raw_vectors() {
        let (xs, ys) = clouds(200);
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let head = DenseHead::fit(&refs, &ys, 2, 1e-3);
        let mut out = Vec::new();
        let mut right = 0;
        for (x, &y) in xs.iter().zip(&ys) {
            head.logits_into(x, &mut out);
            right += usize::from(crate::model::argmax(&out) == y as usize);
        }
        assert_eq!(right, 200);
        // Shifting every vector's first coordinate (which the standardization absorbs in
        // training) changes the folded layer's answers: it reads raw vectors.
        head.logits_into(&[3.0, 0.0, 0.0, 0.0, 0.0, 0.0], &mut out);
        assert!(out[1] > out[0]);
        head.logits_into(&[-3.0, 0.0, 0.0, 0.0, 0.0, 0.0], &mut out);
        assert!(out[0] > out[1]);
    }

    #[test]
    fn reaches_the_optimum_and_a_stronger_penalty_shrinks_the_weights() {
        let (xs, ys) = clouds(100);
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let weak = DenseHead::fit(&refs, &ys, 2, 1e-3);
        let strong = DenseHead::fit(&refs, &ys, 2, 1.0);
        let norm = |h: &DenseHead| h.weight.iter().map(|w| w * w).sum::<f32>();
        assert!(norm(&strong) < norm(&weak) / 4.0);
        // At the optimum the gradient vanishes: check it on the standardized problem.
        let n = ys.len() as f64;
        let dim = 6;
        let mean: Vec<f64> = (0..dim)
            .map(|j| xs.iter().map(|x| x[j] as f64).sum::<f64>() / n)
            .collect();
        let scale: Vec<f64> = (0..dim)
            .map(|j| {
                let v = xs
                    .iter()
                    .map(|x| (x[j] as f64 - mean[j]).powi(2))
                    .sum::<f64>()
                    / n;
                1.0 / v.sqrt()
            })
            .collect();
        let z: Vec<f32> = xs
            .iter()
            .flat_map(|x| (0..dim).map(|j| ((x[j] as f64 - mean[j]) * scale[j]) as f32))
            .collect();
        let problem = Problem {
            z: &z,
            targets: &ys,
            dim,
            classes: 2,
            l2: 1.0,
        };
        let theta = lbfgs(&problem, vec![0.0; 2 * (dim + 1)]);
        let (_, grad) = problem.loss_and_gradient(&theta);
        assert!(grad.iter().all(|g| g.abs() < 1e-4), "{grad:?}");
    }

    #[test]
    fn same_layer_on_any_thread_count_and_through_tensors() {
        let (xs, ys) = clouds(1000);
        let refs: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
        let one = crate::threads::install(Some(1), || DenseHead::fit(&refs, &ys, 2, 1e-2)).unwrap();
        let two = crate::threads::install(Some(2), || DenseHead::fit(&refs, &ys, 2, 1e-2)).unwrap();
        assert_eq!(one, two);
        let tensors: std::collections::HashMap<String, Tensor> =
            one.tensors("h").unwrap().into_iter().collect();
        assert_eq!(DenseHead::from_tensors(&tensors, "h", 2, 6).unwrap(), one);
        let err = DenseHead::from_tensors(&tensors, "h", 3, 6).unwrap_err();
        assert!(err.contains("h.weight") && err.contains("[3, 6]"), "{err}");
    }
}
