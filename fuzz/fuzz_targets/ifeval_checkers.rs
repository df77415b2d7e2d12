#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| podium_fuzz::tasks::ifeval_checkers(data));
