//! Batched products on the f16 copies of the weights, computed in f32.
//!
//! candle multiplies an f16 weight copy by converting the activations to f16, running the
//! `gemm` crate's f16 product (which converts both sides back to f32 while packing them,
//! the activations on one thread) and converting the product to f32 again. Here the
//! weights are widened to f32 once per product, on all threads, into a buffer kept
//! between products, and the product is `gemm`'s f32 kernel on the f32 activations as
//! they are. That is faster at 2 threads (docs/BENCHMARKS.md, "Prefill at 2 threads: f32
//! arithmetic on the f16 copies") and more exact: neither the activations nor the products are
//! rounded to f16. It equals candle's f32 product with the same f16-rounded weights.

#![allow(unsafe_code)]

use std::cell::RefCell;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

/// Weights widened per parallel task.
const CHUNK: usize = 64 * 1024;

/// Most weights widened at a time (8 MiB of f32): a larger matrix is multiplied a band
/// of rows at a time, so the buffer kept between products stays bounded whatever the
/// model.
const BAND_VALUES: usize = 2 * 1024 * 1024;

thread_local! {
    /// The widened band of the last product on this thread, reused by the next.
    static WIDE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `x @ W^T` for `x` of `m` rows of `k` values (row-major) and `w` of `n` rows of `k`
/// values (row-major f16): `m` rows of `n` values. `None` when the lengths disagree.
pub(crate) fn matmul_f16_weights(
    x: &[f32],
    w: &[f16],
    m: usize,
    n: usize,
    k: usize,
) -> Option<Vec<f32>> {
    if k == 0 || x.len() != m.checked_mul(k)? || w.len() != n.checked_mul(k)? {
        return None;
    }
    let mut out = vec![0f32; m.checked_mul(n)?];
    if m == 0 || n == 0 {
        return Some(out);
    }
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let band_rows = (BAND_VALUES / k).clamp(1, n);
    WIDE.with(|wide| {
        let mut wide = wide.borrow_mut();
        for (band, w) in w.chunks(band_rows * k).enumerate() {
            let first = band * band_rows;
            let rows = w.len() / k;
            wide.resize(w.len(), 0.0);
            wide.par_chunks_mut(CHUNK)
                .zip(w.par_chunks(CHUNK))
                .for_each(|(dst, src)| src.convert_to_f32_slice(dst));
            // The band's columns of the output: `out[r * n + first..][..rows]` per row r.
            let dst = &mut out[first..];
            debug_assert!((m - 1) * n + rows <= dst.len());
            // SAFETY: gemm writes m x rows values at `dst + r * n + c` (r < m, c < rows):
            // the largest offset is (m - 1) * n + rows - 1 < m * n - first = dst.len(),
            // as first + rows <= n. It reads m x k values at `x + r * k + j` (x.len() is
            // m * k, checked above) and the band as the k x rows matrix W^T at
            // `wide + c * k + j` (wide.len() is rows * k). Every index is in its slice.
            unsafe {
                gemm::gemm(
                    m,
                    rows,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    wide.as_ptr(),
                    k as isize,
                    1,
                    0f32,
                    1f32,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;

    /// candle's f32 product of `x` (`[m, k]`) with the f16 `w` (`[n, k]`) widened to f32,
    /// and ours, flattened.
    fn both(m: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (m, k), &device).expect("x");
        let w = Tensor::randn(0f32, 0.1, (n, k), &device)
            .and_then(|w| w.to_dtype(DType::F16))
            .expect("w");
        let want = x
            .matmul(&w.to_dtype(DType::F32).and_then(|w| w.t()).expect("w^T"))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("candle's product");
        let xv = x.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("x");
        let wv = w.flatten_all().and_then(|t| t.to_vec1::<f16>()).expect("w");
        let got = matmul_f16_weights(&xv, &wv, m, n, k).expect("lengths agree");
        assert_eq!(got.len(), want.len());
        (got, want)
    }

    /// Equal, bit for bit, to candle's f32 product with the same f16-rounded weights, for
    /// shapes that are and are not multiples of the kernels' tiles.
    #[test]
    fn equals_candles_f32_product_on_the_rounded_weights() {
        for (m, n, k) in [(1, 1, 1), (8, 33, 17), (37, 64, 96), (130, 257, 80)] {
            let (got, want) = both(m, n, k);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "{m}x{n}x{k} at {i}: {g} vs {w}");
            }
        }
    }

    /// A matrix larger than one band (here 3,276 + 3,276 + 6 rows of 640) is multiplied
    /// band by band: every output column is its row's product, to f32 rounding (gemm may
    /// block the inner sum differently for a band than for the whole).
    #[test]
    fn a_matrix_of_several_bands_is_multiplied_whole() {
        let (m, k) = (9, 640);
        let n = 2 * (BAND_VALUES / k) + 6;
        let (got, want) = both(m, n, k);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "at {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn refuses_lengths_that_disagree() {
        let w = vec![f16::ONE; 6];
        assert!(matmul_f16_weights(&[1.0; 6], &w, 2, 2, 3).is_some());
        assert!(matmul_f16_weights(&[1.0; 5], &w, 2, 2, 3).is_none());
        assert!(matmul_f16_weights(&[1.0; 6], &w, 2, 3, 3).is_none());
        assert!(matmul_f16_weights(&[], &[], 0, 0, 0).is_none());
        assert_eq!(matmul_f16_weights(&[], &w, 0, 2, 3), Some(vec![]));
    }
}
