#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nanoport_fuzz::url(data));
