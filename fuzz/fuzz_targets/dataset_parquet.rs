#![no_main]
// The parquet crate panics on some corrupted files; the loader catches those
// panics at its boundary (a caught panic is an error naming the file).
// libfuzzer-sys's panic hook aborts before any unwinding, which would report
// every caught panic as a crash, so this target installs a quiet hook: a panic
// that escapes the loader still reaches libfuzzer-sys's catch and aborts.
libfuzzer_sys::fuzz_target!(
    init: std::panic::set_hook(Box::new(|_| {})),
    |data: &[u8]| podium_fuzz::tasks::dataset_parquet(data)
);
