//! The kernels against the scalar reference (every SIMD level this CPU has), the
//! reference against candle's dequantization of the same blocks, and the row-splitting
//! product against per-row dot products. Seeded random blocks: both weights quantized
//! from random values by candle (realistic blocks) and raw random bytes (every bit
//! pattern, with sane f16 scales).

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ActRow, Activations, Level, Q8KRow, Q8Row, QK, QK_K, QuantMatrix, WeightKind, scalar};

const KINDS: [(WeightKind, GgmlDType); 7] = [
    (WeightKind::Q4_0, GgmlDType::Q4_0),
    (WeightKind::Q4_1, GgmlDType::Q4_1),
    (WeightKind::Q5_0, GgmlDType::Q5_0),
    (WeightKind::Q5_1, GgmlDType::Q5_1),
    (WeightKind::Q8_0, GgmlDType::Q8_0),
    (WeightKind::Q4K, GgmlDType::Q4K),
    (WeightKind::Q6K, GgmlDType::Q6K),
];

fn random_values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `rows` rows of `cols` values quantized by candle to `dtype`: the blocks' bytes.
fn candle_blocks(rng: &mut ChaCha8Rng, dtype: GgmlDType, rows: usize, cols: usize) -> Vec<u8> {
    let values = Tensor::from_vec(random_values(rng, rows * cols), (rows, cols), &Device::Cpu)
        .expect("a tensor of random values");
    let tensor = QTensor::quantize(&values, dtype).expect("candle quantizes it");
    tensor.data().expect("CPU bytes").into_owned()
}

/// Random bytes for `rows` rows of `cols` values of `kind`, with every f16 scale and min
/// a random value in [-1, 1].
fn random_blocks(rng: &mut ChaCha8Rng, kind: WeightKind, rows: usize, cols: usize) -> Vec<u8> {
    let blocks = rows * cols / kind.block_values();
    let mut bytes: Vec<u8> = (0..blocks * kind.block_bytes())
        .map(|_| rng.random())
        .collect();
    let halves: &[usize] = match kind {
        WeightKind::Q4_0 | WeightKind::Q5_0 | WeightKind::Q8_0 => &[0],
        WeightKind::Q4_1 | WeightKind::Q5_1 | WeightKind::Q4K => &[0, 2],
        WeightKind::Q6K => &[208],
    };
    for block in bytes.chunks_exact_mut(kind.block_bytes()) {
        for &at in halves {
            let value = f16::from_f32(rng.random_range(-1.0f32..1.0)).to_bits();
            block[at..at + 2].copy_from_slice(&value.to_le_bytes());
        }
    }
    bytes
}

/// candle's dequantization of `bytes` (`rows x cols` of `dtype`).
fn candle_dequantize(bytes: &[u8], dtype: GgmlDType, rows: usize, cols: usize) -> Vec<f32> {
    let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, dtype)
        .expect("candle reads the blocks");
    QTensor::new(storage, (rows, cols))
        .and_then(|t| t.dequantize(&Device::Cpu))
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("candle dequantizes the blocks")
}

fn quantize(kind: WeightKind, x: &[f32]) -> Activations {
    Activations::quantize(kind, x, x.len())
}

fn first_row(acts: &Activations) -> ActRow<'_> {
    match acts {
        Activations::Q8(rows) => ActRow::Q8(&rows[0]),
        Activations::Q8K(rows) => ActRow::Q8K(&rows[0]),
    }
}

fn dequantized(acts: &Activations) -> Vec<f32> {
    match acts {
        Activations::Q8(rows) => rows[0].dequantize(),
        Activations::Q8K(rows) => rows[0].dequantize(),
    }
}

/// Checks `actual` against `expected` within `rel` of `scale` (the sum of |w x|).
fn check_close(what: &str, actual: f64, expected: f64, scale: f64, rel: f64) {
    let diff = (actual - expected).abs();
    assert!(
        diff <= rel * scale + 1e-6,
        "{what}: {actual} vs {expected} (diff {diff:e}, scale {scale})"
    );
}

#[test]
fn the_reference_agrees_with_candles_dequantization() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let (rows, cols) = (6, 512);
    for (kind, dtype) in KINDS {
        for (source, bytes) in [
            (
                "candle-quantized",
                candle_blocks(&mut rng, dtype, rows, cols),
            ),
            ("random bytes", random_blocks(&mut rng, kind, rows, cols)),
        ] {
            let weights = candle_dequantize(&bytes, dtype, rows, cols);
            let acts = quantize(kind, &random_values(&mut rng, cols));
            let x = dequantized(&acts);
            let row_bytes = bytes.len() / rows;
            for r in 0..rows {
                let w = &weights[r * cols..(r + 1) * cols];
                let expected: f64 = w
                    .iter()
                    .zip(&x)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                let scale: f64 = w
                    .iter()
                    .zip(&x)
                    .map(|(&a, &b)| f64::from((a * b).abs()))
                    .sum();
                let actual = scalar::dot(
                    kind,
                    &bytes[r * row_bytes..(r + 1) * row_bytes],
                    first_row(&acts),
                );
                check_close(
                    &format!("{kind:?} {source} row {r}"),
                    f64::from(actual),
                    expected,
                    scale,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn every_simd_level_agrees_with_the_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // 24 blocks of 32 (or 3 of 256), and an odd 25 blocks of 32 (Q8_0's 512-bit kernel
    // takes two blocks at a time and the last one alone).
    for (level, (rows, cols)) in Level::all_available()
        .into_iter()
        .flat_map(|level| [(level, (9usize, 768usize)), (level, (5, 800))])
    {
        for (kind, dtype) in KINDS {
            if !cols.is_multiple_of(kind.block_values()) {
                continue;
            }
            for bytes in [
                candle_blocks(&mut rng, dtype, rows, cols),
                random_blocks(&mut rng, kind, rows, cols),
            ] {
                let weights = candle_dequantize(&bytes, dtype, rows, cols);
                let acts = quantize(kind, &random_values(&mut rng, cols));
                let x = dequantized(&acts);
                let mut out = vec![0f32; rows];
                level.dot_rows(kind, &bytes, first_row(&acts), &mut out);
                let row_bytes = bytes.len() / rows;
                for r in 0..rows {
                    let w = &weights[r * cols..(r + 1) * cols];
                    let scale: f64 = w
                        .iter()
                        .zip(&x)
                        .map(|(&a, &b)| f64::from((a * b).abs()))
                        .sum();
                    let reference = scalar::dot(
                        kind,
                        &bytes[r * row_bytes..(r + 1) * row_bytes],
                        first_row(&acts),
                    );
                    check_close(
                        &format!("{level:?} {kind:?} row {r}"),
                        f64::from(out[r]),
                        f64::from(reference),
                        scale,
                        1e-6,
                    );
                }
            }
        }
    }
}

/// With every scale 1 (and small activations), each dot product is an integer below
/// 2^24, so the SIMD kernels must equal the reference exactly.
#[test]
fn integer_arithmetic_is_exact_at_every_level() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (rows, cols) = (5, 512);
    let one = f16::from_f32(1.0).to_bits().to_le_bytes();
    for level in Level::all_available() {
        for (kind, _) in KINDS {
            let mut bytes = random_blocks(&mut rng, kind, rows, cols);
            let halves: &[usize] = match kind {
                WeightKind::Q4_0 | WeightKind::Q5_0 | WeightKind::Q8_0 => &[0],
                WeightKind::Q4_1 | WeightKind::Q5_1 | WeightKind::Q4K => &[0, 2],
                WeightKind::Q6K => &[208],
            };
            for block in bytes.chunks_exact_mut(kind.block_bytes()) {
                for &at in halves {
                    block[at..at + 2].copy_from_slice(&one);
                }
            }
            let qs: Vec<i8> = (0..cols).map(|_| rng.random_range(-8i8..=8)).collect();
            let acts = if matches!(kind, WeightKind::Q4K | WeightKind::Q6K) {
                let bsums = qs
                    .chunks_exact(16)
                    .map(|g| g.iter().map(|&q| i32::from(q)).sum())
                    .collect();
                Activations::Q8K(vec![Q8KRow {
                    d: vec![1.0; cols / QK_K],
                    bsums,
                    qs,
                }])
            } else {
                let sum = qs
                    .chunks_exact(QK)
                    .map(|b| b.iter().map(|&q| i32::from(q)).sum())
                    .collect();
                Activations::Q8(vec![Q8Row {
                    d: vec![1.0; cols / QK],
                    sum,
                    qs,
                }])
            };
            let mut out = vec![0f32; rows];
            level.dot_rows(kind, &bytes, first_row(&acts), &mut out);
            let row_bytes = bytes.len() / rows;
            for (r, &value) in out.iter().enumerate() {
                let reference = scalar::dot(
                    kind,
                    &bytes[r * row_bytes..(r + 1) * row_bytes],
                    first_row(&acts),
                );
                assert_eq!(value, reference, "{level:?} {kind:?} row {r}");
                assert_eq!(
                    value,
                    value.round(),
                    "{level:?} {kind:?} row {r} is an integer"
                );
            }
        }
    }
}

#[test]
fn activations_are_quantized_as_ggml_defines() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut x = random_values(&mut rng, 512);
    x[40] = 3.0; // the largest magnitude of its 32- and 256-value blocks
    x[300] = -2.5;
    let q8 = Q8Row::quantize(&x);
    assert_eq!(q8.qs[40], 127);
    for (b, block) in x.chunks_exact(QK).enumerate() {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(q8.d[b], f16::from_f32(amax / 127.0).to_f32());
        let sum: i32 = q8.qs[b * QK..(b + 1) * QK]
            .iter()
            .map(|&q| i32::from(q))
            .sum();
        assert_eq!(q8.sum[b], sum);
    }
    for (v, q) in x.iter().zip(q8.dequantize()) {
        assert!((v - q).abs() <= 3.0 / 127.0, "{v} vs {q}");
    }
    let q8k = Q8KRow::quantize(&x);
    // The largest value maps to -127 (ggml's sign convention), the scale to -max/127.
    assert_eq!(q8k.qs[40], -127);
    assert_eq!(q8k.d[0], 1.0 / (-127.0 / 3.0));
    assert_eq!(q8k.qs[300], -127);
    for (g, group) in q8k.qs.chunks_exact(16).enumerate() {
        assert_eq!(
            q8k.bsums[g],
            group.iter().map(|&q| i32::from(q)).sum::<i32>()
        );
    }
    for (v, q) in x.iter().zip(q8k.dequantize()) {
        assert!((v - q).abs() <= 0.5 * 3.0 / 127.0 + 1e-6, "{v} vs {q}");
    }
    let zeros = Q8KRow::quantize(&[0.0; QK_K]);
    assert_eq!((zeros.d[0], zeros.qs[0], zeros.bsums[0]), (0.0, 0, 0));
}

/// The whole product, rows split over the threads, against per-row reference dots, for
/// one row of activations and for several.
#[test]
fn a_split_product_equals_its_rows_dot_products() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (rows, cols) = (1000, 512);
    for (kind, dtype) in KINDS {
        let bytes = candle_blocks(&mut rng, dtype, rows, cols);
        let storage =
            QStorage::from_data(Cow::Borrowed(&bytes), &Device::Cpu, dtype).expect("blocks");
        let tensor = Arc::new(QTensor::new(storage, (rows, cols)).expect("a tensor"));
        let matrix = QuantMatrix::with_any_level(tensor).expect("kernels for the type");
        for n_x in [1, 3] {
            let x = random_values(&mut rng, n_x * cols);
            let out = matrix.matmul(&x).expect("a product");
            assert_eq!(out.len(), n_x * rows);
            let acts = Activations::quantize(kind, &x, cols);
            let row_bytes = bytes.len() / rows;
            for i in 0..n_x {
                let act = match &acts {
                    Activations::Q8(r) => ActRow::Q8(&r[i]),
                    Activations::Q8K(r) => ActRow::Q8K(&r[i]),
                };
                let mut expected = vec![0f32; rows];
                Level::detect().dot_rows(kind, &bytes, act, &mut expected);
                assert_eq!(
                    &out[i * rows..(i + 1) * rows],
                    &expected[..],
                    "{kind:?} x row {i}"
                );
                for r in [0, rows / 2, rows - 1] {
                    let reference =
                        scalar::dot(kind, &bytes[r * row_bytes..(r + 1) * row_bytes], act);
                    assert!(
                        (out[i * rows + r] - reference).abs() <= 1e-3 * reference.abs().max(1.0)
                    );
                }
            }
        }
    }
}

#[test]
fn matrices_that_are_not_whole_blocks_are_refused() {
    let values = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).expect("zeros");
    let q4k = QTensor::quantize(
        &Tensor::zeros((4, 256), candle_core::DType::F32, &Device::Cpu).expect("zeros"),
        GgmlDType::Q4K,
    )
    .expect("q4k");
    assert!(QuantMatrix::with_any_level(Arc::new(q4k)).is_ok());
    let f16_matrix = QTensor::quantize(&values, GgmlDType::F16).expect("f16");
    assert!(QuantMatrix::with_any_level(Arc::new(f16_matrix)).is_err());
    let wrong_length = QTensor::quantize(&values, GgmlDType::Q8_0).expect("q8_0");
    let matrix = QuantMatrix::with_any_level(Arc::new(wrong_length)).expect("q8_0 kernels");
    assert!(matrix.matmul(&[0.0; 65]).is_err());
}

/// The branch-free decoding of a Q4_K block's scales and mins gives what ggml's
/// per-sub-block decoding gives, for every bit pattern of random scale bytes.
#[test]
fn all_q4k_scales_and_mins_decode_as_one_at_a_time() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..2000 {
        let bytes: [u8; 12] = rng.random();
        let (scales, mins) = super::q4k_scales_mins(&bytes);
        for j in 0..8 {
            assert_eq!(
                (scales[j], mins[j]),
                super::q4k_scale_min(j, &bytes),
                "{bytes:?} j={j}"
            );
        }
    }
}
