//! The threads a matrix-vector product's rows are split over: the calling thread plus
//! `threads - 1` helpers (the count candle was given, see `crate::threads`), none at 1
//! thread.
//!
//! A product is cut into chunks of rows that the caller and the helpers claim from an
//! atomic counter, so a helper the OS has not scheduled (this machine is shared) delays
//! little: the caller takes the unclaimed chunks, and recomputes a claimed one that is
//! late (about one chunk's time late). Between products a helper spins for a short
//! while (the next product of a decoding step usually comes within microseconds), then
//! parks until woken, so an idle engine costs no CPU.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a helper spins for the next product before parking.
const SPIN: Duration = Duration::from_micros(200);

/// Bytes of weights below which a product is not split: handing it over costs more.
const MIN_SPLIT_BYTES: usize = 16 * 1024;

/// Rows per chunk for a product of `rows` weight rows of `row_bytes` bytes each: about
/// four chunks per thread, at least 16 KiB of weights each.
pub(super) fn chunk_rows(rows: usize, row_bytes: usize) -> usize {
    let threads = pool().map_or(1, |p| p.helpers.len() + 1);
    if threads == 1 || rows * row_bytes < MIN_SPLIT_BYTES * 2 {
        return rows.max(1);
    }
    let by_size = MIN_SPLIT_BYTES.div_ceil(row_bytes.max(1));
    rows.div_ceil(4 * threads).max(by_size).max(1)
}

/// Runs `job(chunk)` for every chunk in `0..n_chunks`, on this thread and the helpers;
/// returns when all have run: `false` if one of them panicked.
pub(super) fn run(n_chunks: usize, job: impl Fn(usize) + Send + Sync + 'static) -> bool {
    let pool = match pool() {
        Some(pool) if n_chunks > 1 => pool,
        _ => {
            (0..n_chunks).for_each(job);
            return true;
        }
    };
    let work = Arc::new(Work {
        job: Box::new(job),
        n_chunks,
        next: AtomicUsize::new(0),
        finished: (0..n_chunks).map(|_| AtomicBool::new(false)).collect(),
        panicked: AtomicBool::new(false),
    });
    pool.post(work.clone());
    let started = Instant::now();
    let own = work.help();
    // A chunk a helper claimed but has not finished: wait about as long as one chunk takes
    // here, then compute it on this thread too. A helper the OS has descheduled (this
    // machine is shared) then costs one chunk, not a time slice; when it does finish, it
    // writes the same values again.
    let patience = started
        .elapsed()
        .checked_div(own as u32)
        .unwrap_or(Duration::ZERO)
        .max(MIN_PATIENCE);
    for chunk in 0..n_chunks {
        let deadline = Instant::now() + patience;
        let mut spins = 0u32;
        while !work.is_finished(chunk) {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && Instant::now() >= deadline {
                work.run_chunk(chunk);
                break;
            }
            std::hint::spin_loop();
        }
    }
    !work.panicked.load(Ordering::Relaxed)
}

/// The least time to wait for a helper's chunk before computing it here.
const MIN_PATIENCE: Duration = Duration::from_micros(20);

struct Work {
    job: Box<dyn Fn(usize) + Send + Sync>,
    n_chunks: usize,
    next: AtomicUsize,
    /// Per chunk: whether it has run (a chunk that panicked counts as run).
    finished: Vec<AtomicBool>,
    panicked: AtomicBool,
}

impl Work {
    /// Claims and runs chunks until none are left; returns how many it ran.
    fn help(&self) -> usize {
        let mut ran = 0;
        loop {
            let chunk = self.next.fetch_add(1, Ordering::Relaxed);
            if chunk >= self.n_chunks {
                return ran;
            }
            self.run_chunk(chunk);
            ran += 1;
        }
    }

    fn run_chunk(&self, chunk: usize) {
        let job = std::panic::AssertUnwindSafe(|| (self.job)(chunk));
        if std::panic::catch_unwind(job).is_err() {
            self.panicked.store(true, Ordering::Relaxed);
        }
        if let Some(finished) = self.finished.get(chunk) {
            finished.store(true, Ordering::Release);
        }
    }

    fn is_finished(&self, chunk: usize) -> bool {
        self.finished
            .get(chunk)
            .is_none_or(|finished| finished.load(Ordering::Acquire))
    }
}

struct Pool {
    shared: Arc<Shared>,
    helpers: Vec<Thread>,
}

struct Shared {
    /// Bumped for every posted product.
    epoch: AtomicU64,
    work: Mutex<Option<Arc<Work>>>,
    /// Per helper: whether it is parked (or about to park).
    sleeping: Vec<AtomicBool>,
}

impl Pool {
    fn post(&self, work: Arc<Work>) {
        if let Ok(mut slot) = self.shared.work.lock() {
            *slot = Some(work);
        }
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        for (helper, sleeping) in self.helpers.iter().zip(&self.shared.sleeping) {
            if sleeping.load(Ordering::SeqCst) {
                helper.unpark();
            }
        }
    }
}

/// The process's helpers, started on first use; `None` at 1 thread.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = candle_core::utils::get_num_threads().max(1);
        if threads == 1 {
            return None;
        }
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            work: Mutex::new(None),
            sleeping: (1..threads).map(|_| AtomicBool::new(false)).collect(),
        });
        let mut helpers = Vec::new();
        for index in 0..threads - 1 {
            let shared = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("podium-matvec-{index}"))
                .spawn(move || helper_loop(&shared, index));
            match spawned {
                Ok(handle) => helpers.push(handle.thread().clone()),
                Err(e) => tracing::warn!("could not start a matrix-vector helper thread: {e}"),
            }
        }
        if helpers.is_empty() {
            None
        } else {
            Some(Pool { shared, helpers })
        }
    })
    .as_ref()
}

fn helper_loop(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    let Some(sleeping) = shared.sleeping.get(index) else {
        return;
    };
    loop {
        // Wait for a new product: spin, then park.
        let started = Instant::now();
        let mut spins = 0u32;
        while shared.epoch.load(Ordering::Acquire) == seen {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || started.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            sleeping.store(true, Ordering::SeqCst);
            if shared.epoch.load(Ordering::SeqCst) == seen {
                thread::park();
            }
            sleeping.store(false, Ordering::SeqCst);
        }
        seen = shared.epoch.load(Ordering::Acquire);
        let work = shared.work.lock().ok().and_then(|slot| slot.clone());
        if let Some(work) = work {
            work.help();
        }
    }
}
