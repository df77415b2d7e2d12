//! Throughput of candle's matmul paths on the shapes of SmolLM2-135M: quantized (Q8_0,
//! Q4_1) against dense f32 and f16 weights, for one row (decoding) and for batches
//! (prefill, scoring), plus the cost of dequantizing. This is what `Linear` in
//! `model.rs` and its `DENSE_MIN_ROWS` are based on.
//!
//! cargo run --release -p podium-local --example matmul_kernels -- [THREADS]

use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

fn main() -> candle_core::Result<()> {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    podium_local::set_thread_count(threads);
    let dev = Device::Cpu;
    println!("threads {threads}");
    let shapes = [
        (1, 576, 1536),
        (8, 576, 1536),
        (86, 576, 1536),
        (344, 576, 1536),
        (57, 576, 49152),
        (228, 576, 49152),
        (128, 576, 1536),
        (128, 1536, 576),
        (512, 576, 1536),
        (128, 576, 49152),
    ];
    for (m, k, n) in shapes {
        let w = Tensor::randn(0f32, 0.05, (n, k), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let flops = 2.0 * (m * k * n) as f64;
        let reps = 20;
        for (name, mm) in [
            (
                "q8_0",
                QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?,
            ),
            (
                "q4_1",
                QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q4_1)?)?,
            ),
            ("f32", QMatMul::Tensor(w.clone())),
            ("f16", QMatMul::TensorF16(w.to_dtype(DType::F16)?)),
        ] {
            let _ = mm.forward(&x)?;
            let start = Instant::now();
            for _ in 0..reps {
                let _ = mm.forward(&x)?;
            }
            let secs = start.elapsed().as_secs_f64() / reps as f64;
            println!(
                "m={m:<4} k={k:<5} n={n:<6} {name:<5} {:>9.3} ms {:>7.1} GFLOPS",
                secs * 1e3,
                flops / secs / 1e9
            );
        }
        let q = QTensor::quantize(&w, GgmlDType::Q4_1)?;
        let start = Instant::now();
        for _ in 0..reps {
            let _ = q.dequantize(&dev)?;
        }
        println!(
            "  dequantize q4_1 {:.3} ms",
            start.elapsed().as_secs_f64() / reps as f64 * 1e3
        );
    }
    Ok(())
}
