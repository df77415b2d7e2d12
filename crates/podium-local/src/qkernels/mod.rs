//! Our own quantized matrix-vector products for decoding: the GGUF's weight blocks as
//! stored (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K) against an activation row quantized
//! to 8 bits the way llama.cpp does it (32-value blocks with their sums for the first
//! five, 256-value blocks with 16-value sums for the k-quants).
//!
//! Why not candle's: candle has no SIMD kernel for Q4_1 or Q5_x (Podium used to
//! re-quantize them to Q8_0 at load, which reads 1.7x the bytes per token), and its
//! thread pool spins at a barrier on every product (about 15% of decode time on 2
//! threads). See docs/BENCHMARKS.md for the measurements.
//!
//! Layout: [`scalar`] holds the reference dot products (the definition, tested against
//! candle's dequantization), [`x86`] the AVX-512 VNNI and AVX2 versions (tested against
//! the reference on random blocks), [`pool`] the threads a product's rows are split over.
//! The dot product of a weight row with an activation row is `f32`; its integer part is
//! exact, and the SIMD versions sum the per-block floats in another order than the
//! reference.

mod pool;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

/// Values per block of the 32-value formats and of a [`Q8Row`] block.
pub(crate) const QK: usize = 32;
/// Values per super-block of the k-quants and of a [`Q8KRow`] block.
pub(crate) const QK_K: usize = 256;

/// A weight format with a kernel here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightKind {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl WeightKind {
    /// The kind for a ggml type, if there is a kernel for it.
    pub(crate) fn of(dtype: GgmlDType) -> Option<WeightKind> {
        Some(match dtype {
            GgmlDType::Q4_0 => WeightKind::Q4_0,
            GgmlDType::Q4_1 => WeightKind::Q4_1,
            GgmlDType::Q5_0 => WeightKind::Q5_0,
            GgmlDType::Q5_1 => WeightKind::Q5_1,
            GgmlDType::Q8_0 => WeightKind::Q8_0,
            GgmlDType::Q4K => WeightKind::Q4K,
            GgmlDType::Q6K => WeightKind::Q6K,
            _ => return None,
        })
    }

    /// Values per block.
    pub(crate) fn block_values(self) -> usize {
        match self {
            WeightKind::Q4K | WeightKind::Q6K => QK_K,
            _ => QK,
        }
    }

    /// Bytes per block (ggml's layouts).
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            WeightKind::Q4_0 => 18,
            WeightKind::Q4_1 => 20,
            WeightKind::Q5_0 => 22,
            WeightKind::Q5_1 => 24,
            WeightKind::Q8_0 => 34,
            WeightKind::Q4K => 144,
            WeightKind::Q6K => 210,
        }
    }

    fn uses_k_activations(self) -> bool {
        matches!(self, WeightKind::Q4K | WeightKind::Q6K)
    }
}

/// An activation row quantized to 8 bits per value in 32-value blocks (ggml's Q8_0,
/// and Q8_1 through `sum`): value `i` of block `b` is `d[b] * qs[32 b + i]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Q8Row {
    /// Per block, the scale, rounded to f16 as ggml stores it.
    pub(crate) d: Vec<f32>,
    /// Per block, the sum of its quantized values.
    pub(crate) sum: Vec<i32>,
    pub(crate) qs: Vec<i8>,
}

impl Q8Row {
    /// Quantizes `x` (a multiple of 32 values) as ggml's `quantize_row_q8_0_ref` does:
    /// scale `max |x| / 127`, values rounded half away from zero.
    pub(crate) fn quantize(x: &[f32]) -> Q8Row {
        let blocks = x.len() / QK;
        let mut row = Q8Row {
            d: Vec::with_capacity(blocks),
            sum: Vec::with_capacity(blocks),
            qs: Vec::with_capacity(blocks * QK),
        };
        for block in x.chunks_exact(QK) {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut sum = 0i32;
            for &v in block {
                let q = (v * id).round() as i8;
                sum += i32::from(q);
                row.qs.push(q);
            }
            row.d.push(f16::from_f32(d).to_f32());
            row.sum.push(sum);
        }
        row
    }

    /// The values the row stands for.
    #[cfg(test)]
    pub(crate) fn dequantize(&self) -> Vec<f32> {
        self.qs
            .chunks_exact(QK)
            .zip(&self.d)
            .flat_map(|(qs, &d)| qs.iter().map(move |&q| d * f32::from(q)))
            .collect()
    }
}

/// An activation row quantized as ggml's Q8_K: 256-value blocks with an f32 scale and the
/// sum of every 16 values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Q8KRow {
    pub(crate) d: Vec<f32>,
    /// Per block, 16 sums of 16 values.
    pub(crate) bsums: Vec<i32>,
    pub(crate) qs: Vec<i8>,
}

impl Q8KRow {
    /// Quantizes `x` (a multiple of 256 values) as ggml's `quantize_row_q8_K_ref` does:
    /// the value of largest magnitude maps to -127, values rounded half to even.
    pub(crate) fn quantize(x: &[f32]) -> Q8KRow {
        let blocks = x.len() / QK_K;
        let mut row = Q8KRow {
            d: Vec::with_capacity(blocks),
            bsums: Vec::with_capacity(blocks * QK_K / 16),
            qs: Vec::with_capacity(blocks * QK_K),
        };
        for block in x.chunks_exact(QK_K) {
            let (mut amax, mut max) = (0f32, 0f32);
            for &v in block {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            if amax == 0.0 {
                row.d.push(0.0);
                row.bsums.extend([0; QK_K / 16]);
                row.qs.extend([0; QK_K]);
                continue;
            }
            let iscale = -127.0 / max;
            let start = row.qs.len();
            for &v in block {
                let q = ((iscale * v).round_ties_even() as i32).min(127);
                row.qs.push(q as i8);
            }
            for group in row.qs[start..].chunks_exact(16) {
                row.bsums
                    .push(group.iter().map(|&q| i32::from(q)).sum::<i32>());
            }
            row.d.push(1.0 / iscale);
        }
        row
    }

    /// The values the row stands for.
    #[cfg(test)]
    pub(crate) fn dequantize(&self) -> Vec<f32> {
        self.qs
            .chunks_exact(QK_K)
            .zip(&self.d)
            .flat_map(|(qs, &d)| qs.iter().map(move |&q| d * f32::from(q)))
            .collect()
    }
}

/// Activation rows quantized for one weight kind.
pub(crate) enum Activations {
    Q8(Vec<Q8Row>),
    Q8K(Vec<Q8KRow>),
}

impl Activations {
    /// Quantizes `rows` rows of `cols` values (row-major `x`) for weights of `kind`.
    pub(crate) fn quantize(kind: WeightKind, x: &[f32], cols: usize) -> Activations {
        let rows = x.chunks_exact(cols.max(1));
        if kind.uses_k_activations() {
            Activations::Q8K(rows.map(Q8KRow::quantize).collect())
        } else {
            Activations::Q8(rows.map(Q8Row::quantize).collect())
        }
    }

    fn len(&self) -> usize {
        match self {
            Activations::Q8(rows) => rows.len(),
            Activations::Q8K(rows) => rows.len(),
        }
    }

    /// Row `i` (`i < self.len()`).
    fn row(&self, i: usize) -> ActRow<'_> {
        match self {
            Activations::Q8(rows) => ActRow::Q8(&rows[i]),
            Activations::Q8K(rows) => ActRow::Q8K(&rows[i]),
        }
    }
}

/// Which instruction set the kernels use, detected once at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX-512 F/BW/VL with VNNI (`vpdpbusd` on 256-bit vectors), plus AVX2/FMA/F16C.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni(x86::Avx512Vnni),
    /// AVX2 with FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
    Scalar,
}

impl Level {
    /// The best level this CPU runs.
    pub(crate) fn detect() -> Level {
        static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(token) = x86::Avx512Vnni::detect() {
                    return Level::Avx512Vnni(token);
                }
                if let Some(token) = x86::Avx2::detect() {
                    return Level::Avx2(token);
                }
            }
            Level::Scalar
        })
    }

    /// The levels this CPU runs, best first (for tests and benchmarks).
    #[cfg(test)]
    pub(crate) fn all_available() -> Vec<Level> {
        let mut levels = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            levels.extend(x86::Avx512Vnni::detect().map(Level::Avx512Vnni));
            levels.extend(x86::Avx2::detect().map(Level::Avx2));
        }
        levels.push(Level::Scalar);
        levels
    }

    /// `out[r] = dot(weight row r, x)` for the weight rows in `weights` (whole rows of
    /// `kind` blocks; `out.len()` rows) against one activation row.
    pub(crate) fn dot_rows(self, kind: WeightKind, weights: &[u8], x: ActRow<'_>, out: &mut [f32]) {
        let row_bytes = weights.len() / out.len().max(1);
        match self {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni(token) => token.dot_rows(kind, weights, row_bytes, x, out),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2(token) => token.dot_rows(kind, weights, row_bytes, x, out),
            Level::Scalar => {
                for (w, o) in weights.chunks_exact(row_bytes.max(1)).zip(out.iter_mut()) {
                    *o = scalar::dot(kind, w, x);
                }
            }
        }
    }
}

/// One quantized activation row, in the form its weight kind needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ActRow<'a> {
    Q8(&'a Q8Row),
    Q8K(&'a Q8KRow),
}

/// A weight matrix `[rows, cols]` of a kind with kernels here, multiplied as `x @ W^T`.
/// Holds candle's tensor (whose bytes are the GGUF's blocks) rather than a copy.
pub(crate) struct QuantMatrix {
    tensor: Arc<QTensor>,
    kind: WeightKind,
    rows: usize,
    cols: usize,
}

/// Why a tensor cannot be a [`QuantMatrix`] (the caller then keeps candle's kernels).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unsupported {
    #[error("no kernel for {0:?}")]
    Type(GgmlDType),
    #[error("not a matrix whose rows are whole blocks")]
    Shape,
    #[error("the tensor's bytes are not in CPU memory")]
    Storage,
    #[error("this CPU has no SIMD level the kernels are written for")]
    NoSimd,
}

impl QuantMatrix {
    /// Wraps `tensor` (`[rows, cols]`) if its type has kernels here, its rows are whole
    /// blocks and the CPU has SIMD kernels (the scalar reference is a reference, slower
    /// than candle's kernels on other CPUs).
    pub(crate) fn new(tensor: Arc<QTensor>) -> Result<QuantMatrix, Unsupported> {
        if Level::detect() == Level::Scalar {
            return Err(Unsupported::NoSimd);
        }
        // Measured on an idle machine (docs/BENCHMARKS.md, "Decoding: Q8_0 and
        // K-quants"): ours serve Q4_0/Q4_1/Q5_x (which candle would re-quantize) and Q8_0
        // (SmolLM2's and Gemma's output heads: +7% SmolLM2 tg128) always; Q4_K and Q6_K
        // only with helper threads, where our pool scales better than candle's (Gemma 3
        // at 2 threads +28%), while at 1 thread candle's repacked AVX-512 Q4_K kernel
        // is faster than ours (Gemma 3 tg128 25.3 against 23.9 t/s).
        if matches!(tensor.dtype(), GgmlDType::Q4K | GgmlDType::Q6K)
            && candle_core::utils::get_num_threads() <= 1
        {
            return Err(Unsupported::Type(tensor.dtype()));
        }
        QuantMatrix::with_any_level(tensor)
    }

    /// [`QuantMatrix::new`] without the SIMD requirement.
    fn with_any_level(tensor: Arc<QTensor>) -> Result<QuantMatrix, Unsupported> {
        let kind = WeightKind::of(tensor.dtype()).ok_or(Unsupported::Type(tensor.dtype()))?;
        let &[rows, cols] = tensor.shape().dims() else {
            return Err(Unsupported::Shape);
        };
        if cols == 0 || !cols.is_multiple_of(kind.block_values()) {
            return Err(Unsupported::Shape);
        }
        let bytes = tensor.data().map_err(|_| Unsupported::Storage)?;
        if bytes.len() != rows * (cols / kind.block_values()) * kind.block_bytes() {
            return Err(Unsupported::Shape);
        }
        Ok(QuantMatrix {
            tensor,
            kind,
            rows,
            cols,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// `x @ W^T` for `x` of `n_x` rows of `cols` values (row-major): `n_x` rows of `rows`
    /// values. The weight rows are split between the compute threads.
    pub(crate) fn matmul(&self, x: &[f32]) -> Result<Vec<f32>, candle_core::Error> {
        if !x.len().is_multiple_of(self.cols) {
            candle_core::bail!("{} values are not rows of {}", x.len(), self.cols);
        }
        let acts = Arc::new(Activations::quantize(self.kind, x, self.cols));
        let n_x = acts.len();
        let level = Level::detect();
        let row_bytes = self.cols / self.kind.block_values() * self.kind.block_bytes();
        let chunk_rows = pool::chunk_rows(self.rows, row_bytes);
        if chunk_rows >= self.rows {
            // One chunk: straight into the output, no buffers shared with helpers.
            let bytes = self.tensor.data()?;
            let mut out = vec![0f32; n_x * self.rows];
            for (i, out) in out.chunks_exact_mut(self.rows).enumerate() {
                level.dot_rows(self.kind, &bytes, acts.row(i), out);
            }
            return Ok(out);
        }
        // A Vec inside the Arc (not an `Arc<[_]>`, which `collect` would fill by copying).
        let out: Arc<Vec<AtomicU32>> =
            Arc::new((0..n_x * self.rows).map(|_| AtomicU32::new(0)).collect());
        let failed = Arc::new(AtomicBool::new(false));
        let n_chunks = self.rows.div_ceil(chunk_rows);
        let job = {
            let (tensor, acts, out, failed) =
                (self.tensor.clone(), acts, out.clone(), failed.clone());
            let (kind, rows) = (self.kind, self.rows);
            move |chunk: usize| {
                let Ok(bytes) = tensor.data() else {
                    failed.store(true, Ordering::Relaxed);
                    return;
                };
                let first = chunk * chunk_rows;
                let last = (first + chunk_rows).min(rows);
                let Some(weights) = bytes.get(first * row_bytes..last * row_bytes) else {
                    failed.store(true, Ordering::Relaxed);
                    return;
                };
                let mut buf = vec![0f32; last - first];
                for i in 0..n_x {
                    level.dot_rows(kind, weights, acts.row(i), &mut buf);
                    for (slot, v) in out[i * rows + first..].iter().zip(&buf) {
                        slot.store(v.to_bits(), Ordering::Relaxed);
                    }
                }
            }
        };
        let completed = pool::run(n_chunks, job);
        if !completed || failed.load(Ordering::Relaxed) {
            candle_core::bail!("quantized weights not readable from CPU memory");
        }
        Ok(out
            .iter()
            .map(|v| f32::from_bits(v.load(Ordering::Relaxed)))
            .collect())
    }
}

/// An f16 stored little-endian at `bytes[0..2]`.
#[inline(always)]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// All eight 6-bit scales and mins of a Q4_K block's 12 scale bytes (`scales[..12]`), as
/// [`q4k_scale_min`] gives them for `j` in 0..8, decoded with a few 32-bit operations
/// instead of a branch per sub-block.
#[inline(always)]
pub(crate) fn q4k_scales_mins(scales: &[u8]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3F3F_3F3F;
    const LOW4: u32 = 0x0F0F_0F0F;
    const LOW2: u32 = 0x0303_0303;
    let word = |i: usize| {
        u32::from_le_bytes([
            scales[4 * i],
            scales[4 * i + 1],
            scales[4 * i + 2],
            scales[4 * i + 3],
        ])
    };
    let (a, b, c) = (word(0), word(1), word(2));
    // Sub-blocks 0..4 keep the low 6 bits of bytes 0..4 (scales) and 4..8 (mins);
    // 4..8 take a nibble of bytes 8..12 and, as bits 4-5, the top two bits of those bytes.
    let scales_lo = a & LOW6;
    let mins_lo = b & LOW6;
    let scales_hi = (c & LOW4) | (((a >> 6) & LOW2) << 4);
    let mins_hi = ((c >> 4) & LOW4) | (((b >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)).to_le_bytes();
    (join(scales_lo, scales_hi), join(mins_lo, mins_hi))
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K block's 12 scale bytes
/// (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn q4k_scale_min(j: usize, scales: &[u8]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Timing entry points for `examples/qkernels.rs`; not a stable API.
#[doc(hidden)]
pub mod bench {
    use std::sync::Arc;

    use candle_core::quantized::QTensor;

    use super::{Level, QuantMatrix};

    /// A weight matrix on this crate's kernels, whatever the thread count (the engine keeps
    /// Q4_K and Q6_K on candle's kernels at 1 thread; here both can be timed).
    pub struct Kernels(QuantMatrix);

    impl Kernels {
        /// `tensor` (`[rows, cols]`) on our kernels, or why not.
        pub fn new(tensor: Arc<QTensor>) -> Result<Kernels, String> {
            if Level::detect() == Level::Scalar {
                return Err("this CPU has no SIMD level the kernels are written for".into());
            }
            QuantMatrix::with_any_level(tensor)
                .map(Kernels)
                .map_err(|e| e.to_string())
        }

        /// `x @ W^T`, as the engine computes it while decoding.
        pub fn matmul(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
            self.0.matmul(x)
        }
    }
}
