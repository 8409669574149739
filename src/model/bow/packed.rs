//! The rows prediction reads: each table row multiplied by the head, with its IDF, packed
//! and aligned to cache lines (in single or, where the CPU converts it, half precision), and
//! the SIMD loops that pool them. Also the memory hints (prefetch, huge pages) both training
//! and prediction use.

use super::counts::RowCounts;
use super::weights::{RowWeight, SparseDoc};

/// Values that start on a cache line (64 bytes), for packed rows: then a row of 16 or 32 bytes
/// never straddles two lines, and one of 96 bytes spans two, not three. (A large `Vec` from the
/// allocator starts 16 bytes into a line.) The buffer is one line longer than the rows, which
/// start at its first 64-byte boundary.
#[derive(Debug, Default)]
pub(super) struct AlignedRows<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> AlignedRows<T> {
    /// `len` zeros, on huge pages where the system gives them.
    pub(super) fn zeros(len: usize) -> AlignedRows<T> {
        // Zeroed by the allocator (fresh pages, touched only when written; `vec!` asks for
        // zeroed memory when the value is a zero number), which growing a `Vec` would not be.
        let pad = 64 / std::mem::size_of::<T>() - 1;
        let mut buf = vec![T::default(); len + pad];
        advise_huge_pages(&mut buf);
        let start = buf.as_ptr().align_offset(64).min(pad);
        AlignedRows { buf, start, len }
    }
}

impl<T> std::ops::Deref for AlignedRows<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> std::ops::DerefMut for AlignedRows<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl<T: Copy + Default> Clone for AlignedRows<T> {
    /// A copy aligned in its own buffer (a clone of the `Vec` could start elsewhere in a line).
    fn clone(&self) -> AlignedRows<T> {
        let mut out = AlignedRows::zeros(self.len);
        out.copy_from_slice(self);
        out
    }
}

impl<T: PartialEq> PartialEq for AlignedRows<T> {
    fn eq(&self, other: &AlignedRows<T>) -> bool {
        self[..] == other[..]
    }
}

/// Floats per packed row of a model with `classes` labels: the row's value for each label,
/// zeros, and its IDF last, in a multiple of four (rows are summed four lanes at a time).
pub(super) fn packed_stride(classes: usize) -> usize {
    (classes + 1).next_multiple_of(4)
}

/// The packed rows of a model: for each table row its value for each label, zeros, and its IDF
/// last.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Packed {
    /// In single precision, [`packed_stride`] values a row.
    F32(AlignedRows<f32>),
    /// The bits of half-precision values, [`half_stride`] a row: for a model saved in half
    /// precision (where they are exactly its weights and IDFs) on a CPU that converts them
    /// (`converts_half`). A row is half as long, so fewer lines are read for it (one instead of
    /// two for 20 labels), and more of the table stays in the caches.
    F16(AlignedRows<u16>),
}

impl Default for Packed {
    fn default() -> Packed {
        Packed::F32(AlignedRows::default())
    }
}

impl Packed {
    /// Values per row of a model with `classes` labels.
    pub(super) fn stride(&self, classes: usize) -> usize {
        match self {
            Packed::F32(_) => packed_stride(classes),
            Packed::F16(_) => half_stride(classes),
        }
    }

    /// Row `r`'s value for label `c`.
    pub(super) fn value(&self, r: usize, c: usize, classes: usize) -> f32 {
        let at = r * self.stride(classes) + c;
        match self {
            Packed::F32(rows) => rows[at],
            Packed::F16(rows) => half::f16::from_bits(rows[at]).to_f32(),
        }
    }

    /// Where the first row starts in memory.
    #[cfg(test)]
    pub(super) fn address(&self) -> usize {
        match self {
            Packed::F32(rows) => rows.as_ptr() as usize,
            Packed::F16(rows) => rows.as_ptr() as usize,
        }
    }

    /// Asks for row `r` (see [`prefetch_span`]).
    #[inline(always)]
    pub(super) fn prefetch_row(&self, r: usize, stride: usize) {
        match self {
            Packed::F32(rows) => prefetch_span(rows, r * stride, stride),
            Packed::F16(rows) => prefetch_span(rows, r * stride, stride),
        }
    }
}

/// Fills packed rows (`stride` values each, zeros already) with `classes` values each and the
/// row's IDF last.
pub(super) fn fill_rows<T>(
    packed: &mut [T],
    stride: usize,
    classes: usize,
    idf: impl Iterator<Item = T>,
    mut values: impl Iterator<Item = T>,
) {
    for (out, idf) in packed.chunks_mut(stride).zip(idf) {
        out[stride - 1] = idf;
        for (o, x) in out[..classes].iter_mut().zip(&mut values) {
            *o = x;
        }
    }
}

/// Values per half-precision row of a model with `classes` labels: the labels' values and the
/// IDF in a multiple of eight (rows are summed eight lanes at a time), and 8, 16 or 32 of them
/// (16, 32 or 64 bytes) or a multiple of 32, so that a row never straddles two cache lines.
pub(super) fn half_stride(classes: usize) -> usize {
    let n = (classes + 1).next_multiple_of(8);
    if n <= 32 {
        n.next_power_of_two()
    } else {
        n.next_multiple_of(32)
    }
}

/// Whether this CPU converts half-precision values (F16C, with AVX for eight lanes at a time):
/// most x86-64 CPUs since 2012, checked when the program runs since the binary targets any.
pub(super) fn converts_half() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx") && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Adds the counted rows (single precision), weighted, to `out` (`stride` long), emptying the
/// counts; returns the sum of the squared weights.
pub(super) fn pool_f32(
    rows: &[f32],
    stride: usize,
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    let mut norm2 = 0.0f32;
    for &r in &counter.used {
        let n = std::mem::take(&mut counter.counts[r as usize]);
        let r = r as usize;
        let row = &rows[r * stride..(r + 1) * stride];
        let w = weigh.of(n, row[stride - 1]);
        norm2 += w * w;
        add_scaled(out, w, row);
    }
    norm2
}

/// [`pool_f32`] on half-precision rows: each row converted to single precision eight lanes at a
/// time, then the same products and sums in the same order, so the same result to the bit as
/// on the same rows in single precision.
///
/// # Safety
/// The CPU must have F16C and AVX (`converts_half`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
pub(super) unsafe fn pool_f16(
    rows: &[u16],
    stride: usize,
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    debug_assert!(stride % 8 == 0 && out.len() == stride);
    // The rows of most models are one to four vectors: sums kept in registers.
    match stride {
        8 => pool_f16_in_registers::<8, 1>(rows, counter, weigh, out),
        16 => pool_f16_in_registers::<16, 2>(rows, counter, weigh, out),
        32 => pool_f16_in_registers::<32, 4>(rows, counter, weigh, out),
        _ => {
            use std::arch::x86_64::*;
            let mut norm2 = 0.0f32;
            for &r in &counter.used {
                let n = std::mem::take(&mut counter.counts[r as usize]);
                let row = &rows[r as usize * stride..(r as usize + 1) * stride];
                let w = weigh.of(n, half_to_f32(row[stride - 1]));
                norm2 += w * w;
                let wv = _mm256_set1_ps(w);
                for (o, p) in out.chunks_exact_mut(8).zip(row.chunks_exact(8)) {
                    let p = _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i));
                    let o = o.as_mut_ptr();
                    _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_mul_ps(wv, p)));
                }
            }
            norm2
        }
    }
}

/// [`pool_f16`] for rows of `S = 8 L` values, summed in `L` registers.
///
/// # Safety
/// As [`pool_f16`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn pool_f16_in_registers<const S: usize, const L: usize>(
    rows: &[u16],
    counter: &mut RowCounts,
    weigh: RowWeight,
    out: &mut [f32],
) -> f32 {
    use std::arch::x86_64::*;
    assert!(S == 8 * L && out.len() == S);
    let mut sums = [_mm256_setzero_ps(); L];
    let mut norm2 = 0.0f32;
    for &r in &counter.used {
        let n = std::mem::take(&mut counter.counts[r as usize]);
        let row = &rows[r as usize * S..r as usize * S + S];
        let w = weigh.of(n, half_to_f32(row[S - 1]));
        norm2 += w * w;
        let wv = _mm256_set1_ps(w);
        for (l, sum) in sums.iter_mut().enumerate() {
            // SAFETY: values 8 l .. 8 l + 8 of a row of 8 L.
            let p = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(8 * l) as *const __m128i));
            *sum = _mm256_add_ps(*sum, _mm256_mul_ps(wv, p));
        }
    }
    for (l, sum) in sums.iter().enumerate() {
        // SAFETY: `out` holds 8 L values.
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * l), *sum);
    }
    norm2
}

/// One half-precision value (its bits) in single precision, by F16C.
///
/// # Safety
/// The CPU must have F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "f16c")]
unsafe fn half_to_f32(bits: u16) -> f32 {
    use std::arch::x86_64::*;
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// `out += w * row`, four lanes at a time (both lengths are the same multiple of four).
#[inline(always)]
pub(super) fn add_scaled(out: &mut [f32], w: f32, row: &[f32]) {
    debug_assert!(out.len() == row.len() && row.len() % 4 == 0);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_storeu_ps};
        let n = out.len().min(row.len());
        // SAFETY: SSE is part of x86_64; every load and store is of four floats at i < n, in
        // bounds of both slices.
        unsafe {
            let wv = _mm_set1_ps(w);
            for i in 0..n / 4 {
                let o = out.as_mut_ptr().add(4 * i);
                let p = _mm_loadu_ps(row.as_ptr().add(4 * i));
                _mm_storeu_ps(o, _mm_add_ps(_mm_loadu_ps(o), _mm_mul_ps(wv, p)));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (o, p) in out.iter_mut().zip(row) {
        *o += w * p;
    }
}

/// Asks the CPU to start loading `data[at..at + len]` (a row read soon), by the cache lines of
/// its first and last value (a short row may straddle two).
#[inline(always)]
pub(super) fn prefetch_span<T>(data: &[T], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for i in [at, at + len - 1] {
        if let Some(p) = data.get(i) {
            // SAFETY: a prefetch hint has no effect on memory; the pointer is in bounds.
            unsafe {
                std::arch::x86_64::_mm_prefetch(
                    p as *const T as *const i8,
                    std::arch::x86_64::_MM_HINT_T0,
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at, len);
}

/// Asks the kernel to back `v` with huge pages where it can (Linux): rows scattered over tens
/// of megabytes otherwise cost a page-table walk each. Call before the memory is first
/// written; a hint only.
pub(super) fn advise_huge_pages<T>(v: &mut [T]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const PAGE: usize = 4096;
        let bytes = std::mem::size_of_val(v);
        if bytes < 4 << 20 {
            return;
        }
        let start = (v.as_mut_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_mut_ptr() as usize + bytes) / PAGE * PAGE;
        // SAFETY: the range lies inside `v`'s allocation; MADV_HUGEPAGE changes how pages are
        // backed, never their contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = v;
}

/// Gives the heap's free pages back to the system (Linux with glibc): the raw features of the
/// training documents are freed once their rows are known, but glibc keeps the memory of
/// small allocations, and the SVMs' weights would then come on top of it.
pub(super) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How many items ahead a loop asks for what it will read (the SVMs' rows in training, the
/// word cache's and n-gram index's slots in prediction): far enough for memory to answer
/// before it is needed.
pub(super) const PREFETCH_AHEAD: usize = 8;

/// `out = sum_i weight_i * table[row_i]`: a document pooled through a `dim`-wide table, as
/// training scores it.
pub(super) fn pool(table: &[f32], dim: usize, doc: &SparseDoc, out: &mut Vec<f32>) {
    out.clear();
    out.resize(dim, 0.0);
    for (&r, &w) in doc.rows.iter().zip(&doc.weights) {
        let row = &table[r as usize * dim..(r as usize + 1) * dim];
        for (o, x) in out.iter_mut().zip(row) {
            *o += w * x;
        }
    }
}
