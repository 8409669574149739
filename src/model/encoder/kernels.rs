//! Inference kernels of the encoder, in place on f32 tensors the network has just made: GELU
//! and the attention's masked softmax. The training ops (`model::ops`) call candle's scalar
//! `erf_f32` (about 20 ns a value) and `f32::exp` (a libm call): in the encoder those took 30%
//! (GELU) and 20% (softmax, at 256 pieces) of the time. Here erf and exp are polynomials the
//! compiler vectorizes (errors below 1e-6 and 2e-7 relative, tested), and nothing is allocated.
//! Forward only: the encoder is not trained.

use candle_core::{CpuStorage, InplaceOp1, Layout, Tensor};

type CResult<T> = candle_core::Result<T>;

/// `x Φ(x) = x (1 + erf(x / √2)) / 2` of every value of `x`, in its storage.
pub(super) fn gelu(x: Tensor) -> CResult<Tensor> {
    let x = x.contiguous()?;
    x.inplace_op1(&Gelu)?;
    Ok(x)
}

/// `softmax(scale * scores)` over the keys of each query, in the storage of `scores`
/// (`[b, h, l, l]`); keys at or after `lens[i]` in sequence `i` get probability 0.
pub(super) fn attention_softmax(scores: Tensor, lens: &[usize], scale: f32) -> CResult<Tensor> {
    let scores = scores.contiguous()?;
    scores.inplace_op1(&MaskedSoftmax { lens, scale })?;
    Ok(scores)
}

/// The contiguous f32 values of a storage.
fn values<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> CResult<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("encoder {op}: a contiguous f32 tensor is needed"),
    }
}

struct Gelu;

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "khabar-encoder-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> CResult<()> {
        for x in values(s, l, "gelu")? {
            *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
        }
        Ok(())
    }
}

struct MaskedSoftmax<'a> {
    lens: &'a [usize],
    scale: f32,
}

impl InplaceOp1 for MaskedSoftmax<'_> {
    fn name(&self) -> &'static str {
        "khabar-encoder-softmax"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> CResult<()> {
        let &[b, h, q, k] = l.dims() else {
            candle_core::bail!("encoder softmax: expected [b, h, l, l], got {:?}", l.dims())
        };
        if q != k || b != self.lens.len() || self.lens.iter().any(|&n| n == 0 || n > k) {
            candle_core::bail!(
                "encoder softmax: lengths {:?} for {:?}",
                self.lens,
                l.dims()
            );
        }
        let v = values(s, l, "softmax")?;
        for (seq, &n) in v.chunks_exact_mut(h * q * k).zip(self.lens) {
            for row in seq.chunks_exact_mut(k) {
                let (keys, padding) = row.split_at_mut(n);
                let max = lanes(keys, f32::NEG_INFINITY, f32::max);
                for x in keys.iter_mut() {
                    *x = exp((*x - max) * self.scale);
                }
                let inv = 1.0 / lanes(keys, 0.0, |a, b| a + b);
                keys.iter_mut().for_each(|x| *x *= inv);
                padding.fill(0.0);
            }
        }
        Ok(())
    }
}

/// `xs` folded with `f` (associative and commutative, like max or +) in eight lanes, which the
/// compiler can vectorize (one running value is a chain it must keep in order).
#[inline]
fn lanes(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = f(*a, x);
        }
    }
    let acc = acc.into_iter().chain(rest.iter().copied());
    acc.fold(init, f)
}

/// erf(x) in single precision: `x P(x²) / Q(x²)` on `[-4, 4]` (beyond, erf is ±1 in f32), the
/// rational approximation of Eigen and XLA.
#[inline]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    for a in [
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906e-4,
        -2.954_600_1e-3,
        -1.609_603_3e-2,
    ] {
        p = p * x2 + a;
    }
    let mut q = -1.456_607_2e-5_f32;
    for b in [-2.133_740_6e-4, -1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
        q = q * x2 + b;
    }
    x * p / q
}

/// e^x in single precision, as Cephes' `expf`: `x = k ln 2 + r` with `|r| <= ln 2 / 2`, a
/// polynomial in `r`, times 2^k made from its bits. Below -87 (where e^x is about 1e-38) the
/// result is e^-87, not 0.
#[inline]
fn exp(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer (no libm call), which the low bits of the sum
    // then hold.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let y = x * std::f32::consts::LOG2_E + ROUND;
    let k = y - ROUND;
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = p * r + c;
    }
    let e = p * r * r + r + 1.0;
    // 2^k: k + 127 in the exponent bits.
    let k = (y.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    e * f32::from_bits((k.wrapping_add(127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    #[test]
    fn erf_and_exp_are_within_their_bounds() {
        let (mut erf_worst, mut exp_worst) = (0f64, 0f64);
        for i in -80_000..=80_000 {
            let x = i as f64 * 1e-4;
            let exact = candle_core::cpu::erf::erf_f64(x);
            erf_worst = erf_worst.max((erf(x as f32) as f64 - exact).abs());
        }
        for i in -870_000..=880_000 {
            let x = (i as f32) * 1e-4;
            let exact = (x as f64).exp();
            exp_worst = exp_worst.max(((exp(x) as f64 - exact) / exact).abs());
        }
        assert!(erf_worst < 1e-6, "erf: largest error {erf_worst}");
        assert!(exp_worst < 2e-7, "exp: largest relative error {exp_worst}");
        assert!((erf(40.0) - 1.0).abs() < 1e-6 && (erf(-40.0) + 1.0).abs() < 1e-6);
        assert!(exp(-1000.0) < 1e-37 && exp(0.0) == 1.0);
    }

    #[test]
    fn gelu_and_softmax_match_candle() {
        let xs: Vec<f32> = (-60..=60).map(|i| i as f32 * 0.1).collect();
        let x = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let want: Vec<f32> = x.gelu_erf().unwrap().to_vec1().unwrap();
        let ours: Vec<f32> = gelu(x).unwrap().to_vec1().unwrap();
        for ((a, b), x) in ours.iter().zip(&want).zip(&xs) {
            assert!((a - b).abs() < 1e-6, "gelu({x}): {a} vs {b}");
        }

        let (b, h, l) = (3, 2, 5);
        let values: Vec<f32> = (0..b * h * l * l)
            .map(|i| ((i * 37 % 23) as f32) - 11.0)
            .collect();
        let scores = Tensor::from_vec(values, (b, h, l, l), &Device::Cpu).unwrap();
        let lens = [5, 2, 1];
        let mut mask = vec![0f32; b * l];
        for (i, &n) in lens.iter().enumerate() {
            mask[i * l + n..(i + 1) * l].fill(f32::NEG_INFINITY);
        }
        let mask = Tensor::from_vec(mask, (b, 1, 1, l), &Device::Cpu).unwrap();
        let scaled = (&scores * 0.3).unwrap().broadcast_add(&mask).unwrap();
        let want = candle_nn::ops::softmax(&scaled, D::Minus1);
        let want: Vec<f32> = want.unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let ours = attention_softmax(scores.copy().unwrap(), &lens, 0.3).unwrap();
        let ours: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-6, "[{i}]: {a} vs {b}");
        }
        assert!(attention_softmax(scores, &[5, 6, 1], 1.0).is_err());
    }
}
