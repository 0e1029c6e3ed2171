//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`) through the same bodies the
//! fuzzers run (`fuzz/src/bodies.rs`), so every input that once mattered stays a
//! regression test in the normal suite, on stable Rust.

#[path = "../fuzz/src/bodies.rs"]
mod bodies;

use std::path::Path;

use nanoport_transports::frame::Framing;

fn replay(target: &str, body: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            body(&data);
            n += 1;
        }
    }
    n
}

/// Inputs written by hand for the cases NNG's and libzmq's advisories name, so the
/// bodies run even where no corpus was kept.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        vec![],
        b"\x00SP\x00\x00\x30\x00\x00".to_vec(),
        b"\x00SP\x01\x00\x30\x00\x00".to_vec(),
        b"\xffSP\x00\x00\x30\x00\x07".to_vec(),
        [&[3u8][..], &0x8000_0000_0000_0000u64.to_be_bytes()].concat(),
        [&[3u8][..], &u64::MAX.to_be_bytes()].concat(),
        [&[3u8][..], &1025u64.to_be_bytes(), b"short"].concat(),
        [&[9u8][..], &[2u8], &5u64.to_be_bytes(), b"hello"].concat(),
        b"tcp://[::1]:80".to_vec(),
        b"tcp://:".to_vec(),
        b"ipc://".to_vec(),
        b"abstract://%zz".to_vec(),
        b"inproc://\xff".to_vec(),
        // req/rep: a backtrace longer than the TTL, a header shorter than 4 bytes.
        [&[0x0d_u8, 0, 2, 60][..], &[0u8; 60]].concat(),
        vec![0x0c, 0, 2, 3, 1, 2, 3],
        // pair1: hop count over 0xff.
        vec![0x01, 0, 2, 4, 0, 0, 1, 0],
    ]
}

#[test]
fn handshake_corpus() {
    for s in seeds() {
        bodies::handshake(&s);
    }
    let n = replay("handshake", bodies::handshake);
    eprintln!("handshake: {n} corpus inputs");
}

#[test]
fn frame_corpus() {
    for s in seeds() {
        bodies::frame(&s, Framing::Tcp);
        bodies::frame(&s, Framing::Ipc);
    }
    let n = replay("frame_tcp", |d| bodies::frame(d, Framing::Tcp))
        + replay("frame_ipc", |d| bodies::frame(d, Framing::Ipc));
    eprintln!("frame: {n} corpus inputs");
}

#[test]
fn url_corpus() {
    for s in seeds() {
        bodies::url(&s);
    }
    let n = replay("url", bodies::url);
    eprintln!("url: {n} corpus inputs");
}

#[test]
fn protocol_corpus() {
    for s in seeds() {
        for sel in 0..=255u8 {
            let mut d = vec![sel];
            d.extend_from_slice(&s);
            bodies::protocol_inbound(&d);
        }
    }
    let n = replay("protocol_inbound", bodies::protocol_inbound);
    eprintln!("protocol_inbound: {n} corpus inputs");
}
