//! Matrix-vector products as decoding does them (one activation row), on the weight
//! shapes of the catalogue models: Podium's kernels (`src/qkernels/`) and candle's
//! `QMatMul` on the same random blocks, side by side, with a plain read of the same bytes
//! as the memory-bandwidth ceiling. Prints milliseconds per product and the weight bytes
//! read per second.
//!
//! cargo run --release -p podium-local --example qkernels -- [THREADS] [REPS] [ONLY]
//!
//! `ONLY` keeps the shapes whose name or type contains it (e.g. `Q4K`, `head`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use podium_local::qkernels_bench::Kernels;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let only = args.next().unwrap_or_default();
    podium_local::set_thread_count(threads);
    println!("threads {threads}, {reps} products each, best of 3 rounds");
    // (rows, cols) as the weights are used: `x @ W^T` with `W` of `rows x cols`.
    let shapes = [
        ("Gemma 3 head", GgmlDType::Q8_0, 262_144, 640),
        ("Gemma 3 FFN up", GgmlDType::Q5_0, 2048, 640),
        ("Gemma 3 FFN down", GgmlDType::Q4K, 640, 2048),
        ("Gemma 3 FFN down", GgmlDType::Q6K, 640, 2048),
        ("SmolLM2 head", GgmlDType::Q8_0, 49_152, 576),
        ("SmolLM2 FFN up", GgmlDType::Q4_1, 1536, 576),
    ];
    let dev = Device::Cpu;
    for (name, dtype, rows, cols) in shapes {
        if !name.contains(&only) && !format!("{dtype:?}").contains(&only) {
            continue;
        }
        let w = Tensor::randn(0f32, 0.05, (rows, cols), &dev)?;
        let tensor = Arc::new(QTensor::quantize(&w, dtype)?);
        drop(w);
        let bytes = tensor.data()?.into_owned();
        let x: Vec<f32> = (0..cols)
            .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
            .collect();
        let xt = Tensor::from_vec(x.clone(), (1, cols), &dev)?;
        let ours = Kernels::new(tensor.clone())?;
        let candle = QMatMul::from_arc(tensor)?;
        let gb = bytes.len() as f64 / 1e9;
        let time = |f: &mut dyn FnMut()| {
            f();
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    start.elapsed().as_secs_f64() / reps as f64
                })
                .fold(f64::INFINITY, f64::min)
        };
        let t_ours = time(&mut || {
            black_box(ours.matmul(&x).ok());
        });
        let t_candle = time(&mut || {
            black_box(candle.forward(&xt).ok());
        });
        let t_read = time(&mut || {
            let sum = bytes.chunks_exact(64).fold(0u64, |s, c| {
                s.wrapping_add(u64::from(c[0]) + u64::from(c[63]))
            });
            black_box(sum);
        });
        println!(
            "{name:<17} {dtype:?} {rows:>6} x {cols:<5} {:>7.1} MB | ours {:>7.3} ms {:>5.1} GB/s | candle {:>7.3} ms {:>5.1} GB/s | ours/candle {:>4.2}x | read {:>7.3} ms {:>5.1} GB/s",
            gb * 1e3,
            t_ours * 1e3,
            gb / t_ours,
            t_candle * 1e3,
            gb / t_candle,
            t_candle / t_ours,
            t_read * 1e3,
            gb / t_read,
        );
    }
    Ok(())
}
