//! x86-64 SIMD dot products: one body of kernels (`kernel_bodies!`), compiled twice —
//! with AVX-512 VNNI (`vpdpbusd` on 256-bit vectors, AVX-512BW masks for Q5's fifth
//! bit; Q8_0 two blocks per 512-bit vector) and with AVX2 (`vpmaddubsw` + `vpmaddwd`).
//! Each works on 32 weight values at a time, as unsigned bytes against the activation's signed bytes: Q4/Q5 values are unsigned
//! with their offset (8 or 16) subtracted through the activation block's sum, Q8_0
//! weights use |w| against x·sign(w), Q4_K/Q6_K multiply each 32-value product by its
//! sub-block scale before summing, and Q6_K's offset of 32 and Q4_K's mins go through
//! the activation's 16-value sums.
//!
//! A kernel runs only through a token ([`Avx512Vnni`], [`Avx2`]) that exists only when
//! the CPU reported every feature the kernel is compiled with.

#![allow(unsafe_code)]

use super::{ActRow, WeightKind};

/// Proof that the CPU runs AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx512Vnni(());

/// Proof that the CPU runs AVX2, FMA and F16C.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Avx2(());

impl Avx512Vnni {
    pub(crate) fn detect() -> Option<Avx512Vnni> {
        let ok = Avx2::detect().is_some()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        ok.then_some(Avx512Vnni(()))
    }

    /// See [`super::Level::dot_rows`]; `row_bytes` is the size of one weight row.
    pub(crate) fn dot_rows(
        self,
        kind: WeightKind,
        weights: &[u8],
        row_bytes: usize,
        x: ActRow<'_>,
        out: &mut [f32],
    ) {
        // SAFETY: `self` exists only when `detect` saw every feature `vnni::dot_rows` is
        // compiled with; the kernels read memory only through bounds-checked slices.
        unsafe { vnni::dot_rows(kind, weights, row_bytes, x, out) }
    }
}

impl Avx2 {
    pub(crate) fn detect() -> Option<Avx2> {
        let ok = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        ok.then_some(Avx2(()))
    }

    /// See [`super::Level::dot_rows`]; `row_bytes` is the size of one weight row.
    pub(crate) fn dot_rows(
        self,
        kind: WeightKind,
        weights: &[u8],
        row_bytes: usize,
        x: ActRow<'_>,
        out: &mut [f32],
    ) {
        // SAFETY: `self` exists only when `detect` saw every feature `avx2::dot_rows` is
        // compiled with; the kernels read memory only through bounds-checked slices.
        unsafe { avx2::dot_rows(kind, weights, row_bytes, x, out) }
    }
}

/// The kernels, over two primitives the including module defines with the same
/// features: `dot(u, s)` (per 32-bit lane, the sum of 4 products of unsigned bytes `u`
/// and signed bytes `s`), `scaled_dot(u, s, lo, hi)` (the same products, the first 16
/// bytes' scaled by `lo` and the last 16's by `hi`, summed into 32-bit lanes) and
/// `high_bits(qh)` (byte i is 0x10 where bit i of `qh` is set).
macro_rules! kernel_bodies {
    ($features:literal) => {
        use std::arch::x86_64::*;

        use super::super::{ActRow, Q8KRow, Q8Row, QK, QK_K, WeightKind, q4k_scales_mins};

        /// The f16 stored little-endian at `bytes[at..at + 2]`, converted by F16C (the
        /// `half` crate's conversion checks the CPU on every call).
        #[target_feature(enable = $features)]
        #[inline]
        fn f16_at(bytes: &[u8], at: usize) -> f32 {
            let bits = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
        }

        /// 32 bytes as a vector.
        #[target_feature(enable = $features)]
        #[inline]
        fn load32(bytes: &[u8]) -> __m256i {
            let bytes: &[u8; 32] = bytes[..32].try_into().unwrap_or(&[0; 32]);
            // SAFETY: `bytes` is exactly 32 readable bytes; `loadu` needs no alignment.
            unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
        }

        /// 32 signed bytes as a vector.
        #[target_feature(enable = $features)]
        #[inline]
        fn load32_i8(values: &[i8]) -> __m256i {
            let values: &[i8; 32] = values[..32].try_into().unwrap_or(&[0; 32]);
            // SAFETY: `values` is exactly 32 readable bytes; `loadu` needs no alignment.
            unsafe { _mm256_loadu_si256(values.as_ptr().cast()) }
        }

        /// The 32 nibbles of 16 bytes, low nibbles first (ggml's order in Q4/Q5 blocks).
        #[target_feature(enable = $features)]
        #[inline]
        fn nibbles(bytes: &[u8]) -> __m256i {
            let bytes: &[u8; 16] = bytes[..16].try_into().unwrap_or(&[0; 16]);
            // SAFETY: `bytes` is exactly 16 readable bytes; `loadu` needs no alignment.
            let q = unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) };
            let mask = _mm_set1_epi8(0x0F);
            let lo = _mm_and_si128(q, mask);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(q), mask);
            _mm256_set_m128i(hi, lo)
        }

        #[target_feature(enable = $features)]
        #[inline]
        fn hsum(v: __m256) -> f32 {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }

        /// How far ahead of the bytes a kernel reads it asks for the weights: the hardware
        /// prefetcher alone kept the Q8_0 head at half of a plain read's bandwidth
        /// (docs/BENCHMARKS.md, "Decoding: prefetching the weights"). Any distance from 1 KiB to
        /// 21 KiB measured the same.
        const PREFETCH_AHEAD: usize = 4096;

        /// Asks for the cache lines of `w[at..at + len]` (addresses past the end are
        /// harmless: a prefetch reads nothing and never faults).
        #[target_feature(enable = $features)]
        #[inline]
        fn prefetch(w: &[u8], at: usize, len: usize) {
            let mut line = 0;
            while line < len {
                _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(at + line).cast());
                line += 64;
            }
        }

        /// One 32-value block of a Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 row against its activation
        /// block: adds `d * dx * (q . x)` to `acc` and returns what the offset and min add,
        /// `dx * sum(x) * (m - d * offset)`.
        #[target_feature(enable = $features)]
        #[inline]
        fn small_block<const KIND: u8>(
            b: &[u8],
            x: __m256i,
            dx: f32,
            sx: i32,
            acc: &mut __m256,
        ) -> f32 {
            let d = f16_at(b, 0);
            let (p, offset, m) = match KIND {
                Q4_0 => (dot(nibbles(&b[2..18]), x), 8.0, 0.0),
                Q4_1 => (dot(nibbles(&b[4..20]), x), 0.0, f16_at(b, 2)),
                Q5_0 => {
                    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                    let u = _mm256_or_si256(nibbles(&b[6..22]), high_bits(qh));
                    (dot(u, x), 16.0, 0.0)
                }
                Q5_1 => {
                    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                    let u = _mm256_or_si256(nibbles(&b[8..24]), high_bits(qh));
                    (dot(u, x), 0.0, f16_at(b, 2))
                }
                _ => {
                    let w = load32(&b[2..34]);
                    (
                        dot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                        0.0,
                        0.0,
                    )
                }
            };
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(p), *acc);
            if KIND == Q8_0 {
                0.0
            } else {
                dx * sx as f32 * (m - d * offset)
            }
        }

        /// One Q4_K super-block against its activation block: adds the scaled products to
        /// `acc`, and to `mins` (per lane, summed at the end) what the mins subtract:
        /// `dmin * dx * min[j] * (sum of x over sub-block j)`, with `pair_sums` the
        /// activation block's eight 32-value sums.
        #[target_feature(enable = $features)]
        #[inline]
        fn q4k_block(
            b: &[u8],
            xq: &[i8],
            dx: f32,
            pair_sums: __m256i,
            acc: &mut __m256,
            mins: &mut __m256,
        ) {
            let mask = _mm256_set1_epi8(0x0F);
            let (sc, mn) = q4k_scales_mins(&b[4..16]);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..4 {
                let q = load32(&b[16 + 32 * j..48 + 32 * j]);
                let lo = _mm256_and_si256(q, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), mask);
                let (sc0, sc1) = (i32::from(sc[2 * j]), i32::from(sc[2 * j + 1]));
                let plo = scaled_dot(lo, load32_i8(&xq[64 * j..]), sc0, sc0);
                let phi = scaled_dot(hi, load32_i8(&xq[64 * j + 32..]), sc1, sc1);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(plo, phi));
            }
            let d = f16_at(b, 0) * dx;
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
            let mins_v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(i64::from_le_bytes(mn)));
            let weighted = _mm256_cvtepi32_ps(_mm256_mullo_epi32(mins_v, pair_sums));
            *mins = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(b, 2) * dx), weighted, *mins);
        }

        /// A Q8_K block's sixteen 16-value sums as two vectors (sums 0..8 and 8..16).
        #[target_feature(enable = $features)]
        #[inline]
        fn sums_of_16(bsums: &[i32]) -> (__m256i, __m256i) {
            let bsums: &[i32; 16] = bsums[..16].try_into().unwrap_or(&[0; 16]);
            // SAFETY: `bsums` is exactly 16 readable i32s; `loadu` needs no alignment.
            unsafe {
                (
                    _mm256_loadu_si256(bsums.as_ptr().cast()),
                    _mm256_loadu_si256(bsums.as_ptr().add(8).cast()),
                )
            }
        }

        /// The eight 32-value sums from the sixteen 16-value sums.
        #[target_feature(enable = $features)]
        #[inline]
        fn pair_sums(lo: __m256i, hi: __m256i) -> __m256i {
            // hadd pairs within 128-bit lanes: [lo01 lo23 hi01 hi23 | lo45 lo67 hi45 hi67].
            let h = _mm256_hadd_epi32(lo, hi);
            _mm256_permute4x64_epi64::<0b11_01_10_00>(h)
        }

        /// One Q6_K super-block against its activation block: adds the scaled products
        /// to `acc`, and to `offsets` (per lane, summed at the end) what the offset 32
        /// subtracts, from the block's sixteen 16-value sums (`bsums_lo`, `bsums_hi`).
        #[target_feature(enable = $features)]
        #[inline]
        fn q6k_block(
            b: &[u8],
            xq: &[i8],
            dx: f32,
            (bsums_lo, bsums_hi): (__m256i, __m256i),
            acc: &mut __m256,
            offsets: &mut __m256,
        ) {
            let (m4, m30) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30));
            let sc = |g: usize| i32::from(b[192 + g] as i8);
            let mut sumi = _mm256_setzero_si256();
            for n in 0..2 {
                let ql0 = load32(&b[64 * n..]);
                let ql1 = load32(&b[64 * n + 32..]);
                let h = load32(&b[128 + 32 * n..]);
                let v = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<4>(h), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_and_si256(_mm256_slli_epi16::<2>(h), m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                        _mm256_and_si256(h, m30),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                        _mm256_and_si256(_mm256_srli_epi16::<2>(h), m30),
                    ),
                ];
                for (k, v) in v.into_iter().enumerate() {
                    let g = 8 * n + 2 * k;
                    let p = scaled_dot(v, load32_i8(&xq[128 * n + 32 * k..]), sc(g), sc(g + 1));
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            let d = f16_at(b, 208) * dx;
            *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
            // The offset 32 of every value, through the 16-value sums: per lane
            // scale[g] * bsum[g] for g and g + 8, added to `offsets` times 32 d.
            let scales: [u8; 16] = b[192..208].try_into().unwrap_or([0; 16]);
            let scales = _mm_set_epi64x(
                i64::from_le_bytes(scales[8..].try_into().unwrap_or([0; 8])),
                i64::from_le_bytes(scales[..8].try_into().unwrap_or([0; 8])),
            );
            let corr = _mm256_add_epi32(
                _mm256_mullo_epi32(_mm256_cvtepi8_epi32(scales), bsums_lo),
                _mm256_mullo_epi32(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(scales)), bsums_hi),
            );
            *offsets =
                _mm256_fmadd_ps(_mm256_set1_ps(d * 32.0), _mm256_cvtepi32_ps(corr), *offsets);
        }

        /// `R` rows of 32-value blocks (`w`, rows of `row_bytes`) against `x`, side by
        /// side: each activation block is loaded once for all of them, and the `R` weight
        /// streams are read together, which keeps more loads in flight than one row at a
        /// time (measured: one row at a time was latency-bound on the weight loads).
        #[target_feature(enable = $features)]
        fn small_rows<const KIND: u8, const R: usize>(
            w: &[u8],
            row_bytes: usize,
            x: &Q8Row,
            out: &mut [f32],
        ) {
            let bb = row_bytes / x.d.len().max(1);
            let mut acc = [_mm256_setzero_ps(); R];
            let mut extra = [0f32; R];
            for (i, ((xq, &dx), &sx)) in x.qs.chunks_exact(QK).zip(&x.d).zip(&x.sum).enumerate() {
                let xv = load32_i8(xq);
                for r in 0..R {
                    let at = r * row_bytes + i * bb;
                    prefetch(w, at + PREFETCH_AHEAD, bb);
                    let e = small_block::<KIND>(&w[at..at + bb], xv, dx, sx, &mut acc[r]);
                    if KIND != Q8_0 {
                        extra[r] += e;
                    }
                }
            }
            for r in 0..R {
                out[r] = hsum(acc[r]) + extra[r];
            }
        }

        /// As [`small_rows`], for Q4_K (`KIND` 5) and Q6_K (6) super-blocks.
        #[target_feature(enable = $features)]
        fn k_rows<const KIND: u8, const R: usize>(
            w: &[u8],
            row_bytes: usize,
            x: &Q8KRow,
            out: &mut [f32],
        ) {
            let bb = row_bytes / x.d.len().max(1);
            let mut acc = [_mm256_setzero_ps(); R];
            // What the Q4_K mins or the Q6_K offset subtract, per lane.
            let mut less = [_mm256_setzero_ps(); R];
            for (i, ((xq, &dx), bsums)) in
                x.qs.chunks_exact(QK_K)
                    .zip(&x.d)
                    .zip(x.bsums.chunks_exact(QK_K / 16))
                    .enumerate()
            {
                let (lo, hi) = sums_of_16(bsums);
                let pairs = if KIND == Q4K {
                    pair_sums(lo, hi)
                } else {
                    _mm256_setzero_si256()
                };
                for r in 0..R {
                    let at = r * row_bytes + i * bb;
                    prefetch(w, at + PREFETCH_AHEAD, bb);
                    if KIND == Q4K {
                        q4k_block(&w[at..at + bb], xq, dx, pairs, &mut acc[r], &mut less[r]);
                    } else {
                        q6k_block(&w[at..at + bb], xq, dx, (lo, hi), &mut acc[r], &mut less[r]);
                    }
                }
            }
            for r in 0..R {
                out[r] = hsum(acc[r]) - hsum(less[r]);
            }
        }

        /// Rows four at a time, then the rest one by one.
        #[target_feature(enable = $features)]
        fn rows_of<const KIND: u8>(
            weights: &[u8],
            row_bytes: usize,
            x: ActRow<'_>,
            out: &mut [f32],
        ) {
            let quad = 4 * row_bytes;
            let (mut w, mut out) = (weights, out);
            while out.len() >= 4 && w.len() >= quad {
                match x {
                    ActRow::Q8(x) if KIND == Q8_0 => q8_0_rows::<4>(w, row_bytes, x, out),
                    ActRow::Q8(x) => small_rows::<KIND, 4>(w, row_bytes, x, out),
                    ActRow::Q8K(x) => k_rows::<KIND, 4>(w, row_bytes, x, out),
                }
                (w, out) = (&w[quad..], &mut out[4..]);
            }
            while !out.is_empty() && w.len() >= row_bytes {
                match x {
                    ActRow::Q8(x) if KIND == Q8_0 => q8_0_rows::<1>(w, row_bytes, x, out),
                    ActRow::Q8(x) => small_rows::<KIND, 1>(w, row_bytes, x, out),
                    ActRow::Q8K(x) => k_rows::<KIND, 1>(w, row_bytes, x, out),
                }
                (w, out) = (&w[row_bytes..], &mut out[1..]);
            }
        }

        const Q4_0: u8 = 0;
        const Q4_1: u8 = 1;
        const Q5_0: u8 = 2;
        const Q5_1: u8 = 3;
        const Q8_0: u8 = 4;
        const Q4K: u8 = 5;
        const Q6K: u8 = 6;

        /// `out[r] = dot(row r of weights, x)`; rows are `row_bytes` long.
        #[target_feature(enable = $features)]
        pub(super) fn dot_rows(
            kind: WeightKind,
            weights: &[u8],
            row_bytes: usize,
            x: ActRow<'_>,
            out: &mut [f32],
        ) {
            match (kind, x) {
                (WeightKind::Q4_0, ActRow::Q8(_)) => rows_of::<Q4_0>(weights, row_bytes, x, out),
                (WeightKind::Q4_1, ActRow::Q8(_)) => rows_of::<Q4_1>(weights, row_bytes, x, out),
                (WeightKind::Q5_0, ActRow::Q8(_)) => rows_of::<Q5_0>(weights, row_bytes, x, out),
                (WeightKind::Q5_1, ActRow::Q8(_)) => rows_of::<Q5_1>(weights, row_bytes, x, out),
                (WeightKind::Q8_0, ActRow::Q8(_)) => rows_of::<Q8_0>(weights, row_bytes, x, out),
                (WeightKind::Q4K, ActRow::Q8K(_)) => rows_of::<Q4K>(weights, row_bytes, x, out),
                (WeightKind::Q6K, ActRow::Q8K(_)) => rows_of::<Q6K>(weights, row_bytes, x, out),
                _ => out.fill(0.0),
            }
        }
    };
}

/// AVX-512 VNNI: `vpdpbusd` on 256-bit vectors, the Q5 bit plane through a byte mask.
mod vnni {
    kernel_bodies!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni");

    /// 64 signed bytes as a vector.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    fn load64_i8(values: &[i8]) -> __m512i {
        let values: &[i8; 64] = values[..64].try_into().unwrap_or(&[0; 64]);
        // SAFETY: `values` is exactly 64 readable bytes; `loadu` needs no alignment.
        unsafe { _mm512_loadu_si512(values.as_ptr().cast()) }
    }

    /// Q8_0 rows against `x`, two blocks per 512-bit vector: |w| against x with the
    /// sign of w (AVX-512 has no `vpsignb`: x is negated under the mask of w's sign
    /// bits), each block's product scaled in its own half of the accumulator.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    // Indexed loops on purpose: the same loops over `iter_mut()` decoded Gemma 3 8 %
    // slower at 2 threads (40.0–41.4 against 44.5–44.9 t/s, alternating runs).
    #[allow(clippy::needless_range_loop)]
    fn q8_0_rows<const R: usize>(w: &[u8], row_bytes: usize, x: &Q8Row, out: &mut [f32]) {
        const BB: usize = 34;
        let n = x.d.len();
        let mut acc = [_mm512_setzero_ps(); R];
        for (i, (xq, dx)) in
            x.qs.chunks_exact(2 * QK)
                .zip(x.d.chunks_exact(2))
                .enumerate()
        {
            let xv = load64_i8(xq);
            for r in 0..R {
                let at = r * row_bytes + 2 * i * BB;
                prefetch(w, at + PREFETCH_AHEAD, 2 * BB);
                let b = &w[at..at + 2 * BB];
                let wv = _mm512_inserti64x4::<1>(
                    _mm512_castsi256_si512(load32(&b[2..34])),
                    load32(&b[BB + 2..2 * BB]),
                );
                let negative = _mm512_movepi8_mask(wv);
                let xs = _mm512_mask_sub_epi8(xv, negative, _mm512_setzero_si512(), xv);
                let p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), xs);
                let scale = _mm512_mask_blend_ps(
                    0xFF00,
                    _mm512_set1_ps(f16_at(b, 0) * dx[0]),
                    _mm512_set1_ps(f16_at(b, BB) * dx[1]),
                );
                acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(p), acc[r]);
            }
        }
        let mut last = [_mm256_setzero_ps(); R];
        if n % 2 == 1 {
            let i = n - 1;
            let xv = load32_i8(&x.qs[QK * i..]);
            for r in 0..R {
                let at = r * row_bytes + i * BB;
                small_block::<Q8_0>(&w[at..at + BB], xv, x.d[i], 0, &mut last[r]);
            }
        }
        for r in 0..R {
            out[r] = _mm512_reduce_add_ps(acc[r]) + hsum(last[r]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    fn scaled_dot(u: __m256i, s: __m256i, lo: i32, hi: i32) -> __m256i {
        let scale = _mm256_set_m128i(_mm_set1_epi32(hi), _mm_set1_epi32(lo));
        _mm256_mullo_epi32(dot(u, s), scale)
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    #[inline]
    fn high_bits(qh: u32) -> __m256i {
        _mm256_maskz_mov_epi8(qh, _mm256_set1_epi8(0x10))
    }
}

/// AVX2: `vpmaddubsw` (pairs of products into 16 bits, which cannot saturate here: the
/// unsigned side is at most 128, the signed side at most 127 in magnitude, so a pair is
/// at most 32,512) then `vpmaddwd` into 32 bits.
mod avx2 {
    kernel_bodies!("avx2,fma,f16c");

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn q8_0_rows<const R: usize>(w: &[u8], row_bytes: usize, x: &Q8Row, out: &mut [f32]) {
        small_rows::<Q8_0, R>(w, row_bytes, x, out);
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn dot(u: __m256i, s: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn scaled_dot(u: __m256i, s: __m256i, lo: i32, hi: i32) -> __m256i {
        // Scales are 6-bit (Q4_K) or signed 8-bit (Q6_K), so they fit 16 bits.
        let scale = _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16));
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn high_bits(qh: u32) -> __m256i {
        // Byte i takes byte i / 8 of `qh`, then keeps whether its bit i % 8 is set.
        let spread = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), spread);
        let select = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
        let hit = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, select), select);
        _mm256_and_si256(hit, _mm256_set1_epi8(0x10))
    }
}
