//! Differentiable CPU kernels for the transformer, as candle custom ops with hand-written
//! backward passes.
//!
//! Built from candle's generic tensor ops, a layer norm, a masked softmax, a GELU and a bias
//! add take ten to twenty small ops each, forward and backward, each allocating a tensor (and
//! candle's fast fused versions record no gradient at all in 0.11); together they took most of a
//! training step. Here each is one pass over the data forward and one backward. The tests check every op, forward and backward, against the
//! composition of candle tensor ops it replaces, in F64; the model's tests check the whole
//! network against finite differences.
//!
//! Inputs are made contiguous first; F32 and F64 are supported.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor};

type Result<T> = candle_core::Result<T>;

/// The floating-point types the kernels run on.
trait Real: candle_core::WithDType {
    fn exp(self) -> Self;
    fn sqrt(self) -> Self;
    fn erf(self) -> Self;
    fn larger(self, other: Self) -> Self;
}

impl Real for f32 {
    fn exp(self) -> Self {
        f32::exp(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f32(self)
    }
    fn larger(self, other: Self) -> Self {
        f32::max(self, other)
    }
}

impl Real for f64 {
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    fn larger(self, other: Self) -> Self {
        f64::max(self, other)
    }
}

fn c<T: Real>(x: f64) -> T {
    T::from_f64(x)
}

/// The contiguous data of a storage.
fn slice<'a, T: Real>(s: &'a [T], l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("khabar op: non-contiguous input"),
    }
}

/// The data of a (small or intermediate) tensor as a vector.
fn vec<T: Real>(t: &Tensor) -> Result<Vec<T>> {
    t.flatten_all()?.to_vec1::<T>()
}

fn owned<T: Real>(v: Vec<T>) -> CpuStorage {
    T::to_cpu_storage_owned(v)
}

fn unsupported(dtype: DType) -> candle_core::Error {
    candle_core::Error::Msg(format!("khabar op: unsupported type {dtype:?}"))
}

/// Calls the generic body with the element type of `$storage`.
macro_rules! dispatch {
    ($storage:expr, |$v:ident| $body:expr) => {
        match $storage {
            CpuStorage::F32($v) => $body,
            CpuStorage::F64($v) => $body,
            s => Err(unsupported(s.dtype())),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Layer norm over the last dimension.

struct LayerNorm {
    eps: f64,
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last dimension of `x`.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(gamma, beta, LayerNorm { eps })
}

/// `sum_k f(k)` for `k < n`, in eight interleaved partial sums: a single running sum is one
/// long chain of dependent additions, which the compiler may not reorder into vector lanes.
#[inline]
fn sum8<T: Real>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let mut k = 0;
    while k + 8 <= n {
        for (j, a) in acc.iter_mut().enumerate() {
            *a += f(k + j);
        }
        k += 8;
    }
    let mut s = T::zero();
    for a in acc {
        s += a;
    }
    for i in k..n {
        s += f(i);
    }
    s
}

/// Mean and 1/std of one row.
fn moments<T: Real>(row: &[T], eps: f64) -> (T, T) {
    let n: T = c(row.len() as f64);
    let mean = sum8(row.len(), |k| row[k]) / n;
    let var = sum8(row.len(), |k| {
        let d = row[k] - mean;
        d * d
    }) / n;
    (mean, T::one() / (var + c(eps)).sqrt())
}

fn layer_norm_fwd<T: Real>(x: &[T], g: &[T], b: &[T], eps: f64) -> Vec<T> {
    let d = g.len();
    let mut y = vec![T::zero(); x.len()];
    for (row, out) in x.chunks(d).zip(y.chunks_mut(d)) {
        let (mean, rstd) = moments(row, eps);
        for k in 0..d {
            out[k] = (row[k] - mean) * rstd * g[k] + b[k];
        }
    }
    y
}

/// `(dx, dgamma, dbeta)`.
fn layer_norm_bwd<T: Real>(x: &[T], g: &[T], dy: &[T], eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let d = g.len();
    let n: T = c(d as f64);
    let mut dx = Vec::with_capacity(x.len());
    let mut dg = vec![T::zero(); d];
    let mut db = vec![T::zero(); d];
    let mut xhat = vec![T::zero(); d];
    for (row, dyr) in x.chunks(d).zip(dy.chunks(d)) {
        let (mean, rstd) = moments(row, eps);
        // dxhat = dy * gamma; dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        for k in 0..d {
            xhat[k] = (row[k] - mean) * rstd;
            dg[k] += dyr[k] * xhat[k];
            db[k] += dyr[k];
        }
        let s1 = sum8(d, |k| dyr[k] * g[k]);
        let s2 = sum8(d, |k| dyr[k] * g[k] * xhat[k]);
        let (m1, m2) = (s1 / n, s2 / n);
        for k in 0..d {
            dx.push(rstd * (dyr[k] * g[k] - m1 - xhat[k] * m2));
        }
    }
    (dx, dg, db)
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "khabar-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = l1.dims().last().copied().unwrap_or(0);
        if l2.dims() != [d] || l3.dims() != [d] {
            candle_core::bail!("layer norm: gamma and beta must have shape [{d}]");
        }
        let y = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(g), CpuStorage::F32(b)) => CpuStorage::F32(
                layer_norm_fwd(slice(x, l1)?, slice(g, l2)?, slice(b, l3)?, self.eps),
            ),
            (CpuStorage::F64(x), CpuStorage::F64(g), CpuStorage::F64(b)) => CpuStorage::F64(
                layer_norm_fwd(slice(x, l1)?, slice(g, l2)?, slice(b, l3)?, self.eps),
            ),
            _ => return Err(unsupported(s1.dtype())),
        };
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(
            x: &Tensor,
            gamma: &Tensor,
            grad: &Tensor,
            eps: f64,
        ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
            let (dx, dg, db) = layer_norm_bwd::<T>(&vec(x)?, &vec(gamma)?, &vec(grad)?, eps);
            let dev = x.device();
            Ok((
                Some(Tensor::from_vec(dx, x.shape(), dev)?),
                Some(Tensor::from_vec(dg, gamma.shape(), dev)?),
                Some(Tensor::from_vec(db, gamma.shape(), dev)?),
            ))
        }
        match x.dtype() {
            DType::F32 => run::<f32>(x, gamma, grad, self.eps),
            DType::F64 => run::<f64>(x, gamma, grad, self.eps),
            d => Err(unsupported(d)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scaled, masked softmax for attention scores.

/// Softmax over the last dimension of attention scores `[b, h, l, l]`, after scaling them by
/// `scale`; keys at or after `lens[i]` in sequence `i` are masked out (probability 0).
struct AttentionSoftmax {
    lens: Vec<usize>,
    scale: f64,
}

/// `softmax(scale * scores)` over the keys of each query, padded keys masked out. `scores`:
/// `[b, h, l, l]`; `lens`: the real length of each of the `b` sequences.
pub fn attention_softmax(scores: &Tensor, lens: &[usize], scale: f64) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(AttentionSoftmax {
        lens: lens.to_vec(),
        scale,
    })
}

impl AttentionSoftmax {
    /// The number of keys of each row of the `[b, h, l, l]` tensor, in order.
    fn keys(&self, dims: &[usize]) -> Result<impl Iterator<Item = usize> + '_> {
        let &[b, h, l, l2] = dims else {
            candle_core::bail!("attention softmax: expected [b, h, l, l], got {dims:?}")
        };
        if l != l2 || b != self.lens.len() || self.lens.iter().any(|&n| n == 0 || n > l) {
            candle_core::bail!("attention softmax: lengths {:?} for {dims:?}", self.lens);
        }
        Ok(self
            .lens
            .iter()
            .flat_map(move |&n| std::iter::repeat_n(n, h * l)))
    }

    fn fwd<T: Real>(&self, s: &[T], dims: &[usize]) -> Result<Vec<T>> {
        let l = dims[3];
        let scale: T = c(self.scale);
        let mut y = vec![T::zero(); s.len()];
        for ((row, out), n) in s.chunks(l).zip(y.chunks_mut(l)).zip(self.keys(dims)?) {
            let max = row[..n].iter().fold(row[0], |m, &v| m.larger(v));
            let mut sum = T::zero();
            for k in 0..n {
                let e = ((row[k] - max) * scale).exp();
                out[k] = e;
                sum += e;
            }
            let inv = T::one() / sum;
            out[..n].iter_mut().for_each(|v| *v *= inv);
        }
        Ok(y)
    }

    fn bwd_vec<T: Real>(&self, y: &[T], g: &[T], dims: &[usize]) -> Result<Vec<T>> {
        let l = dims[3];
        let scale: T = c(self.scale);
        let mut dx = vec![T::zero(); y.len()];
        for (((yr, gr), out), n) in y
            .chunks(l)
            .zip(g.chunks(l))
            .zip(dx.chunks_mut(l))
            .zip(self.keys(dims)?)
        {
            let mut dot = T::zero();
            for k in 0..n {
                dot += yr[k] * gr[k];
            }
            for k in 0..n {
                out[k] = scale * yr[k] * (gr[k] - dot);
            }
        }
        Ok(dx)
    }
}

impl CustomOp1 for AttentionSoftmax {
    fn name(&self) -> &'static str {
        "khabar-attention-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = dispatch!(s, |v| Ok(owned(self.fwd(slice(v, l)?, l.dims())?)))?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dims = res.dims();
        let dx = match res.dtype() {
            DType::F32 => Tensor::from_vec(
                self.bwd_vec::<f32>(&vec(res)?, &vec(grad)?, dims)?,
                dims,
                res.device(),
            )?,
            DType::F64 => Tensor::from_vec(
                self.bwd_vec::<f64>(&vec(res)?, &vec(grad)?, dims)?,
                dims,
                res.device(),
            )?,
            d => return Err(unsupported(d)),
        };
        Ok(Some(dx))
    }
}

// ---------------------------------------------------------------------------------------------
// GELU (exact, with erf).

struct Gelu;

/// `x * Φ(x)`, Φ the standard normal distribution function (BERT's GELU).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

fn gelu_fwd<T: Real>(x: &[T]) -> Vec<T> {
    let (half, r2): (T, T) = (c(0.5), c(std::f64::consts::FRAC_1_SQRT_2));
    x.iter()
        .map(|&v| half * v * (T::one() + (v * r2).erf()))
        .collect()
}

fn gelu_bwd<T: Real>(x: &[T], g: &[T]) -> Vec<T> {
    let (half, r2): (T, T) = (c(0.5), c(std::f64::consts::FRAC_1_SQRT_2));
    let inv_sqrt_2pi: T = c(1.0 / (2.0 * std::f64::consts::PI).sqrt());
    x.iter()
        .zip(g)
        .map(|(&v, &gv)| {
            let cdf = half * (T::one() + (v * r2).erf());
            let pdf = inv_sqrt_2pi * (T::zero() - half * v * v).exp();
            gv * (cdf + v * pdf)
        })
        .collect()
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "khabar-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = dispatch!(s, |v| Ok(owned(gelu_fwd(slice(v, l)?))))?;
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = match x.dtype() {
            DType::F32 => Tensor::from_vec(
                gelu_bwd::<f32>(&vec(x)?, &vec(grad)?),
                x.shape(),
                x.device(),
            )?,
            DType::F64 => Tensor::from_vec(
                gelu_bwd::<f64>(&vec(x)?, &vec(grad)?),
                x.shape(),
                x.device(),
            )?,
            d => return Err(unsupported(d)),
        };
        Ok(Some(dx))
    }
}

// ---------------------------------------------------------------------------------------------
// Bias add.

struct AddBias;

/// `x + bias`, the bias (`[m]`) added to every row of `x` (`[n, m]`). Its backward sums the
/// gradient's rows in one pass (candle's broadcast backward is a slow strided reduction).
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(bias, AddBias)
}

fn add_bias_fwd<T: Real>(x: &[T], b: &[T]) -> Vec<T> {
    let mut y = x.to_vec();
    for row in y.chunks_mut(b.len()) {
        for (v, &bv) in row.iter_mut().zip(b) {
            *v += bv;
        }
    }
    y
}

fn column_sums<T: Real>(g: &[T], m: usize) -> Vec<T> {
    let mut s = vec![T::zero(); m];
    for row in g.chunks(m) {
        for (a, &v) in s.iter_mut().zip(row) {
            *a += v;
        }
    }
    s
}

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "khabar-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let m = l1.dims().last().copied().unwrap_or(0);
        if l2.dims() != [m] {
            candle_core::bail!("add bias: bias of shape {:?} for rows of {m}", l2.dims());
        }
        let y = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(b)) => {
                CpuStorage::F32(add_bias_fwd(slice(x, l1)?, slice(b, l2)?))
            }
            (CpuStorage::F64(x), CpuStorage::F64(b)) => {
                CpuStorage::F64(add_bias_fwd(slice(x, l1)?, slice(b, l2)?))
            }
            _ => return Err(unsupported(s1.dtype())),
        };
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let m = bias.elem_count();
        let db = match grad.dtype() {
            DType::F32 => Tensor::from_vec(column_sums::<f32>(&vec(grad)?, m), m, grad.device())?,
            DType::F64 => Tensor::from_vec(column_sums::<f64>(&vec(grad)?, m), m, grad.device())?,
            d => return Err(unsupported(d)),
        };
        Ok((Some(grad.clone()), Some(db)))
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix product.

struct MatMul;

/// A linear layer: `x W^T + b`, `x` of shape `[n, in]`, `W` `[out, in]`, `b` `[out]`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    add_bias(&matmul(x, &w.t()?)?, b)
}

/// `a b` over the last two dimensions (`[.., m, k]` by `[.., k, n]`, the same leading
/// dimensions; either may be a transposed view), on the calling thread. candle's own matmul
/// asks how many threads to split over on every call, which in candle 0.11 reads the
/// environment and then `/proc/cpuinfo`, and splits over threads that khabar's parallel tasks
/// already keep busy. The product itself is the same `gemm` call candle makes, unsplit.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.apply_op2(b, MatMul)
}

/// Checks that every element a layout reaches lies in a buffer of `len` values.
fn reaches_within(l: &Layout, len: usize) -> Result<()> {
    let last = l
        .dims()
        .iter()
        .zip(l.stride())
        .map(|(&d, &s)| d.saturating_sub(1) * s)
        .sum::<usize>()
        + l.start_offset();
    if l.dims().contains(&0) || last < len {
        Ok(())
    } else {
        candle_core::bail!("matmul: a layout reaches past its storage")
    }
}

fn matmul_fwd<T: Real + 'static>(a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Result<Vec<T>> {
    let (da, db) = (la.dims(), lb.dims());
    let r = da.len();
    let (m, k, n) = (da[r - 2], da[r - 1], db[r - 1]);
    let batch_dims = &da[..r - 2];
    let batch: usize = batch_dims.iter().product();
    reaches_within(la, a.len())?;
    reaches_within(lb, b.len())?;
    let mut out = vec![T::zero(); batch * m * n];
    if m * n == 0 || k == 0 {
        return Ok(out);
    }
    let (sa, sb) = (la.stride(), lb.stride());
    for i in 0..batch {
        // The offsets of batch element i (row-major over the leading dimensions).
        let (mut oa, mut ob, mut rest) = (la.start_offset(), lb.start_offset(), i);
        for d in (0..r - 2).rev() {
            let at = rest % batch_dims[d];
            rest /= batch_dims[d];
            oa += at * sa[d];
            ob += at * sb[d];
        }
        // SAFETY: every element read lies in `a` and `b` (checked above: the largest offset
        // each layout reaches is inside its buffer), and the destination is batch element
        // i's `m x n` block of `out`, row-major.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr().add(i * m * n),
                1,
                n as isize,
                false,
                a.as_ptr().add(oa),
                sa[r - 1] as isize,
                sa[r - 2] as isize,
                b.as_ptr().add(ob),
                sb[r - 1] as isize,
                sb[r - 2] as isize,
                T::zero(),
                T::one(),
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
    Ok(out)
}

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "khabar-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (da, db) = (l1.dims(), l2.dims());
        let r = da.len();
        if r < 2 || db.len() != r || da[..r - 2] != db[..r - 2] || da[r - 1] != db[r - 2] {
            candle_core::bail!("matmul: shapes {da:?} and {db:?} do not multiply");
        }
        let y = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => CpuStorage::F32(matmul_fwd(a, l1, b, l2)?),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => CpuStorage::F64(matmul_fwd(a, l1, b, l2)?),
            _ => return Err(unsupported(s1.dtype())),
        };
        let mut shape = da[..r - 2].to_vec();
        shape.extend([da[r - 2], db[r - 1]]);
        Ok((y, Shape::from(shape)))
    }

    /// `d a = d c b^T`, `d b = a^T d c`.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let r = a.rank();
        let da = matmul(grad, &b.transpose(r - 2, r - 1)?)?;
        let db = matmul(&a.transpose(r - 2, r - 1)?, grad)?;
        Ok((Some(da), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn var(shape: &[usize], seed: u64) -> Var {
        let mut rng = crate::rng::SplitMix64::new(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.next_normal() as f64).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    /// A fixed random weighting of the output, so that the gradient is not uniform.
    fn weigh(y: &Tensor, seed: u64) -> Tensor {
        let w = var(y.dims(), seed);
        (y * w.as_tensor()).unwrap().sum_all().unwrap()
    }

    fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
        let a: Vec<f64> = vec(a).unwrap();
        let b: Vec<f64> = vec(b).unwrap();
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-10 + 1e-9 * y.abs(),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Forward and gradients of `ours` and `reference` agree at `inputs`.
    fn check(
        inputs: &[&Var],
        ours: impl Fn(&[Tensor]) -> Tensor,
        reference: impl Fn(&[Tensor]) -> Tensor,
        what: &str,
    ) {
        let ts: Vec<Tensor> = inputs.iter().map(|v| v.as_tensor().clone()).collect();
        let (y1, y2) = (ours(&ts), reference(&ts));
        assert_close(&y1, &y2, &format!("{what} forward"));
        let g1 = weigh(&y1, 99).backward().unwrap();
        let g2 = weigh(&y2, 99).backward().unwrap();
        for (i, v) in inputs.iter().enumerate() {
            let a = g1.get(v.as_tensor()).expect("our gradient");
            let b = g2.get(v.as_tensor()).expect("reference gradient");
            assert_close(a, b, &format!("{what} gradient of input {i}"));
        }
    }

    /// The product and its gradients are candle's, for plain, transposed and batched operands;
    /// in single precision, the same bits as candle's one-threaded product.
    #[test]
    fn matmul_matches_candle() {
        let (a, b) = (var(&[5, 7], 1), var(&[4, 7], 2));
        check(
            &[&a, &b],
            |t| matmul(&t[0], &t[1].t().unwrap()).unwrap(),
            |t| t[0].matmul(&t[1].t().unwrap()).unwrap(),
            "x w^T",
        );
        let (q, k) = (var(&[2, 3, 5, 4], 3), var(&[2, 3, 6, 4], 4));
        check(
            &[&q, &k],
            |t| matmul(&t[0], &t[1].t().unwrap()).unwrap(),
            |t| t[0].matmul(&t[1].t().unwrap()).unwrap(),
            "q k^T",
        );
        let (p, v) = (var(&[2, 5, 3, 6], 5), var(&[2, 3, 6, 4], 6));
        // A transposed batch layout, as attention's probabilities can have.
        check(
            &[&p, &v],
            |t| matmul(&t[0].transpose(1, 2).unwrap(), &t[1]).unwrap(),
            |t| {
                t[0].transpose(1, 2)
                    .unwrap()
                    .contiguous()
                    .unwrap()
                    .matmul(&t[1])
                    .unwrap()
            },
            "p v",
        );
        let bad = matmul(p.as_tensor(), v.as_tensor());
        assert!(bad.is_err());
        let a32 = a.as_tensor().to_dtype(DType::F32).unwrap();
        let b32 = b.as_tensor().to_dtype(DType::F32).unwrap().t().unwrap();
        let ours: Vec<f32> = vec(&matmul(&a32, &b32).unwrap()).unwrap();
        let want: Vec<f32> = vec(&a32.matmul(&b32).unwrap()).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ours), bits(&want));
    }

    #[test]
    fn layer_norm_matches_tensor_ops() {
        let (x, g, b) = (var(&[5, 7], 1), var(&[7], 2), var(&[7], 3));
        check(
            &[&x, &g, &b],
            |t| layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap(),
            |t| candle_nn::ops::layer_norm_slow(&t[0], &t[1], &t[2], 1e-5).unwrap(),
            "layer norm",
        );
    }

    #[test]
    fn attention_softmax_matches_tensor_ops() {
        let s = var(&[3, 2, 4, 4], 4);
        let lens = [4usize, 2, 1];
        let scale = 0.35;
        check(
            &[&s],
            |t| attention_softmax(&t[0], &lens, scale).unwrap(),
            |t| {
                let mut mask = vec![0f64; 3 * 4];
                for (i, &n) in lens.iter().enumerate() {
                    for j in n..4 {
                        mask[i * 4 + j] = -1e9;
                    }
                }
                let mask = Tensor::from_vec(mask, (3, 1, 1, 4), &Device::Cpu).unwrap();
                let x = (&t[0] * scale).unwrap().broadcast_add(&mask).unwrap();
                candle_nn::ops::softmax(&x, D::Minus1).unwrap()
            },
            "attention softmax",
        );
    }

    #[test]
    fn gelu_matches_erf_and_finite_differences() {
        let x = var(&[4, 9], 5);
        let y = gelu(x.as_tensor()).unwrap();
        assert_close(&y, &x.as_tensor().gelu_erf().unwrap(), "gelu forward");
        // candle's own GELU backward rounds 1/sqrt(2 pi) to 0.398942, so the gradient is
        // checked against central differences instead.
        let grads = gelu(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g: Vec<f64> = vec(grads.get(x.as_tensor()).unwrap()).unwrap();
        let xs: Vec<f64> = vec(x.as_tensor()).unwrap();
        let h = 1e-6;
        let f = |v: f64| gelu_fwd(&[v])[0];
        for (i, (&v, &gv)) in xs.iter().zip(&g).enumerate() {
            let numeric = (f(v + h) - f(v - h)) / (2.0 * h);
            assert!(
                (numeric - gv).abs() < 1e-8,
                "[{i}] at {v}: {numeric} vs {gv}"
            );
        }
    }

    #[test]
    fn add_bias_matches_tensor_ops() {
        let (x, b) = (var(&[6, 3], 6), var(&[3], 7));
        check(
            &[&x, &b],
            |t| add_bias(&t[0], &t[1]).unwrap(),
            |t| t[0].broadcast_add(&t[1]).unwrap(),
            "add bias",
        );
    }

    #[test]
    fn f32_works_too() {
        let x = Tensor::new(&[[1f32, 2., 3.], [0., -1., 4.]], &Device::Cpu).unwrap();
        let g = Tensor::ones(3, DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = layer_norm(&x, &g, &b, 1e-5).unwrap().to_vec2().unwrap();
        assert!((y[0][0] + 1.2247).abs() < 1e-3, "{y:?}");
        let y: Vec<f32> = gelu(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!((y[0] - 0.8413).abs() < 1e-3, "{y:?}");
    }
}
