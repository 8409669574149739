//! GGML's Q4_0 format: blocks of 32 weights, each an f16 scale (little-endian) and 16 bytes
//! whose low nibbles are the block's first 16 weights and high nibbles the next 16; a weight is
//! `(nibble - 8) * scale`. A matrix is its rows one after the other, each a whole number of
//! blocks.

use candle_core::{Device, Tensor};
use half::f16;

/// Weights per block.
pub(super) const BLOCK: usize = 32;
/// Bytes per block: the scale, then the nibbles.
pub(super) const BLOCK_BYTES: usize = 2 + BLOCK / 2;

/// Bytes of one row of `cols` weights (`cols` a multiple of [`BLOCK`]).
pub(super) fn row_bytes(cols: usize) -> usize {
    cols / BLOCK * BLOCK_BYTES
}

/// The weights of whole blocks `blocks` into `out` (32 per block).
pub(super) fn dequantize_into(blocks: &[u8], out: &mut [f32]) {
    debug_assert_eq!(blocks.len() / BLOCK_BYTES * BLOCK, out.len());
    for (block, out) in blocks
        .chunks_exact(BLOCK_BYTES)
        .zip(out.chunks_exact_mut(BLOCK))
    {
        let scale = f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        let (low, high) = out.split_at_mut(BLOCK / 2);
        for ((&q, lo), hi) in block[2..].iter().zip(low).zip(high) {
            *lo = ((q & 0x0f) as i32 - 8) as f32 * scale;
            *hi = ((q >> 4) as i32 - 8) as f32 * scale;
        }
    }
}

/// A matrix kept in Q4_0, whose rows are expanded when asked for: the word table (its rows are
/// looked up a few hundred at a time, so expanding them costs nothing next to the network).
#[derive(Debug, Clone)]
pub(super) struct Q4Rows {
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Q4Rows {
    /// `rows` rows of `cols` weights from their blocks; the error says what does not fit.
    pub(super) fn new(bytes: Vec<u8>, rows: usize, cols: usize) -> Result<Q4Rows, String> {
        if cols % BLOCK != 0 || bytes.len() != rows * row_bytes(cols) {
            return Err(format!(
                "{} bytes are not {rows} Q4_0 rows of {cols} weights",
                bytes.len()
            ));
        }
        Ok(Q4Rows { bytes, rows, cols })
    }

    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Row `i`'s weights into `out` (`cols` values). `i` must be below [`Q4Rows::rows`].
    pub(super) fn row_into(&self, i: usize, out: &mut [f32]) {
        let n = row_bytes(self.cols);
        dequantize_into(&self.bytes[i * n..(i + 1) * n], out);
    }

    /// The whole matrix in f32, `[rows, cols]`.
    pub(super) fn to_tensor(&self) -> candle_core::Result<Tensor> {
        let mut out = vec![0f32; self.rows * self.cols];
        dequantize_into(&self.bytes, &mut out);
        Tensor::from_vec(out, (self.rows, self.cols), &Device::Cpu)
    }

    /// Bytes held.
    pub(super) fn size_bytes(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One block by hand: scale 0.5, nibble `j` at weight `j` (low) and `15 - j` at weight
    /// `j + 16` (high).
    #[test]
    fn a_block_expands_as_ggml_says() {
        let mut block = f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let mut out = [0f32; BLOCK];
        dequantize_into(&block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5, "weight {j}");
            assert_eq!(out[j + 16], (7.0 - j as f32) * 0.5, "weight {}", j + 16);
        }
        let rows = Q4Rows::new([block.clone(), block].concat(), 2, BLOCK).unwrap();
        let mut row = [0f32; BLOCK];
        rows.row_into(1, &mut row);
        assert_eq!(row, out);
        let t: Vec<Vec<f32>> = rows.to_tensor().unwrap().to_vec2().unwrap();
        assert_eq!(t[0], out.to_vec());
        assert!(Q4Rows::new(vec![0; 17], 1, BLOCK).is_err());
        assert!(Q4Rows::new(vec![0; 18], 1, 16).is_err());
    }
}
