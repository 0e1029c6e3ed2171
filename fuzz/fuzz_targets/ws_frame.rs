#![no_main]
#[path = "../src/ws_bodies.rs"]
mod ws_bodies;
libfuzzer_sys::fuzz_target!(|data: &[u8]| ws_bodies::frame(data));
