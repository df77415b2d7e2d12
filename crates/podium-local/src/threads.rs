//! Setting candle's compute thread count, which it reads from the environment.

use std::sync::OnceLock;

static APPLIED: OnceLock<usize> = OnceLock::new();

/// Makes candle use `threads` compute threads (at least 1).
///
/// candle reads `RAYON_NUM_THREADS` on every matmul and `CANDLE_NUM_THREADS` once, when
/// its quantized-matmul pool starts; there is no API to pass a count. So this sets both
/// variables, and must run before the process's first tensor operation to take full
/// effect. Only the first call counts; a later call with another count is ignored with a
/// warning. A binary should call it early in `main`, before starting other threads.
pub fn set_thread_count(threads: usize) {
    let threads = threads.max(1);
    let applied = *APPLIED.get_or_init(|| {
        set_env("RAYON_NUM_THREADS", &threads.to_string());
        set_env("CANDLE_NUM_THREADS", &threads.to_string());
        threads
    });
    if applied != threads {
        tracing::warn!(
            "podium-local already runs with {applied} threads; ignoring a request for {threads}"
        );
    }
}

#[allow(unsafe_code)]
fn set_env(key: &str, value: &str) {
    // SAFETY: `set_var` races with concurrent reads of the environment from other
    // threads. It runs once per process (guarded by `APPLIED`), before the engine starts
    // its model thread and before candle's pools exist; callers are told to call this
    // early, before other threads that read the environment are running.
    unsafe { std::env::set_var(key, value) }
}
