//! Replays the kept corpus of the WebSocket fuzz targets (`fuzz/corpus/ws_upgrade/`,
//! `fuzz/corpus/ws_frame/`) through their bodies (`fuzz/src/ws_bodies.rs`), with seeds
//! for the bad inputs the transport must refuse.
#![cfg(feature = "ws")]

#[path = "../fuzz/src/ws_bodies.rs"]
mod ws_bodies;

use std::path::Path;

fn replay(target: &str, body: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            body(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
    }
    n
}

fn upgrade_seeds() -> Vec<Vec<u8>> {
    let good =
        "GET /a HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Protocol: x, rep.sp.nanomsg.org\r\n\r\n";
    vec![
        good.as_bytes().to_vec(),
        good.replace("13", "8").into_bytes(),
        good.replace("GET", "PUT").into_bytes(),
        good.replace("dGhlIHNhbXBsZSBub25jZQ==", "short")
            .into_bytes(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n\r\n"
            .to_vec(),
        b"HTTP/1.1 404 Not Found\r\n\r\n".to_vec(),
        vec![b'A'; 9000],
        b"\x00\xff\r\n\r\n".to_vec(),
    ]
}

fn frame_seeds() -> Vec<Vec<u8>> {
    let mut v = vec![
        vec![],
        vec![0, 0x82, 0x80],
        vec![1, 0x82, 0x05, b'h', b'e', b'l', b'l', b'o'],
        vec![0, 0x81, 0x81, 1, 2, 3, 4, b'x'],
        vec![0, 0x89, 0xfe, 0, 126],
        vec![0, 0x08, 0x80],
        vec![0, 0xc2, 0x80],
    ];
    let mut huge = vec![0, 0x82, 0xff];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    v.push(huge);
    let mut big = vec![2, 0x82, 0xfe];
    big.extend_from_slice(&2000u16.to_be_bytes());
    v.push(big);
    v
}

#[test]
fn ws_upgrade_corpus() {
    for s in upgrade_seeds() {
        ws_bodies::upgrade(&s);
    }
    let n = replay("ws_upgrade", ws_bodies::upgrade);
    eprintln!("ws_upgrade: {n} corpus inputs");
}

#[test]
fn ws_frame_corpus() {
    for s in frame_seeds() {
        for sel in 0..=255u8 {
            let mut d = s.clone();
            if let Some(f) = d.first_mut() {
                *f = sel;
            }
            ws_bodies::frame(&d);
        }
    }
    let n = replay("ws_frame", ws_bodies::frame);
    eprintln!("ws_frame: {n} corpus inputs");
}
