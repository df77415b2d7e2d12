//! The reference dot products: one weight row (ggml blocks) with one quantized activation
//! row, written as ggml defines the formats. Integer sums per block, then
//! `scale * sum` per block in f32, added in block order.

use super::{ActRow, Q8KRow, Q8Row, QK, QK_K, WeightKind, f16_at, q4k_scale_min};

/// `dot(w, x)` for a weight row `w` of `kind` blocks; 0 when `x` is the wrong form.
pub(crate) fn dot(kind: WeightKind, w: &[u8], x: ActRow<'_>) -> f32 {
    match (kind, x) {
        (WeightKind::Q4K, ActRow::Q8K(x)) => q4k(w, x),
        (WeightKind::Q6K, ActRow::Q8K(x)) => q6k(w, x),
        (WeightKind::Q4K | WeightKind::Q6K, ActRow::Q8(_)) => 0.0,
        (_, ActRow::Q8(x)) => small(kind, w, x),
        (_, ActRow::Q8K(_)) => 0.0,
    }
}

/// The 32 unsigned weight values of a 32-value block, and what to subtract from each
/// (`offset`), its scale `d` and its min `m` (`value = d * (q - offset) + m`).
pub(crate) fn unpack_small(kind: WeightKind, b: &[u8]) -> ([u8; QK], i32, f32, f32) {
    let mut q = [0u8; QK];
    let d = f16_at(b, 0);
    let (offset, m, qh, qs): (i32, f32, u32, &[u8]) = match kind {
        WeightKind::Q4_0 => (8, 0.0, 0, &b[2..18]),
        WeightKind::Q4_1 => (0, f16_at(b, 2), 0, &b[4..20]),
        WeightKind::Q5_0 => (
            16,
            0.0,
            u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            &b[6..22],
        ),
        WeightKind::Q5_1 => (
            0,
            f16_at(b, 2),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            &b[8..24],
        ),
        WeightKind::Q8_0 | WeightKind::Q4K | WeightKind::Q6K => {
            // Q8_0 values are signed: stored here shifted by 128.
            for (slot, &v) in q.iter_mut().zip(&b[2..34]) {
                *slot = (v as i8 as i16 + 128) as u8;
            }
            return (q, 128, d, 0.0);
        }
    };
    for j in 0..QK / 2 {
        let high = |bit: usize| (((qh >> bit) & 1) << 4) as u8;
        q[j] = (qs[j] & 0x0F) | high(j);
        q[j + QK / 2] = (qs[j] >> 4) | high(j + QK / 2);
    }
    (q, offset, d, m)
}

/// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 against Q8_0/Q8_1 activations.
fn small(kind: WeightKind, w: &[u8], x: &Q8Row) -> f32 {
    let mut acc = 0f32;
    for (((b, xq), &dx), &sx) in w
        .chunks_exact(kind.block_bytes())
        .zip(x.qs.chunks_exact(QK))
        .zip(&x.d)
        .zip(&x.sum)
    {
        let (q, offset, d, m) = unpack_small(kind, b);
        let sumi: i32 = q
            .iter()
            .zip(xq)
            .map(|(&q, &x)| (i32::from(q) - offset) * i32::from(x))
            .sum();
        acc += d * dx * sumi as f32 + m * dx * sx as f32;
    }
    acc
}

/// Q4_K against Q8_K: `d * sum_j sc_j * (q . x)_j - dmin * sum_j m_j * (sum of x)_j`.
fn q4k(w: &[u8], x: &Q8KRow) -> f32 {
    let mut acc = 0f32;
    for (((b, xq), &dx), bsums) in w
        .chunks_exact(WeightKind::Q4K.block_bytes())
        .zip(x.qs.chunks_exact(QK_K))
        .zip(&x.d)
        .zip(x.bsums.chunks_exact(QK_K / 16))
    {
        let (d, dmin, scales, qs) = (f16_at(b, 0), f16_at(b, 2), &b[4..16], &b[16..144]);
        let (mut sumi, mut summ) = (0i32, 0i32);
        for j in 0..QK_K / 32 {
            let (sc, m) = q4k_scale_min(j, scales);
            let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            let dot: i32 = bytes
                .iter()
                .zip(&xq[32 * j..32 * j + 32])
                .map(|(&q, &x)| i32::from((q >> shift) & 0x0F) * i32::from(x))
                .sum();
            sumi += i32::from(sc) * dot;
            summ += i32::from(m) * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        acc += d * dx * sumi as f32 - dmin * dx * summ as f32;
    }
    acc
}

/// The 256 values (0..64, stored value plus 32) of a Q6_K block, in order.
pub(crate) fn unpack_q6k(b: &[u8]) -> [u8; QK_K] {
    let (ql, qh) = (&b[0..128], &b[128..192]);
    let mut q = [0u8; QK_K];
    for half in 0..2 {
        let (ql, qh, q) = (&ql[64 * half..], &qh[32 * half..], &mut q[128 * half..]);
        for l in 0..32 {
            q[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
            q[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
            q[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            q[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    q
}

/// Q6_K against Q8_K: `d * sum_g sc_g * ((q - 32) . x)_g` over 16-value groups.
fn q6k(w: &[u8], x: &Q8KRow) -> f32 {
    let mut acc = 0f32;
    for ((b, xq), &dx) in w
        .chunks_exact(WeightKind::Q6K.block_bytes())
        .zip(x.qs.chunks_exact(QK_K))
        .zip(&x.d)
    {
        let q = unpack_q6k(b);
        let d = f16_at(b, 208);
        let mut sumi = 0i32;
        for g in 0..QK_K / 16 {
            let sc = i32::from(b[192 + g] as i8);
            let dot: i32 = q[16 * g..16 * g + 16]
                .iter()
                .zip(&xq[16 * g..16 * g + 16])
                .map(|(&q, &x)| (i32::from(q) - 32) * i32::from(x))
                .sum();
            sumi += sc * dot;
        }
        acc += d * dx * sumi as f32;
    }
    acc
}
