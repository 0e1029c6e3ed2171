//! Fuzz bodies for the WebSocket transport's parsers of network bytes: the HTTP upgrade
//! (request and response) and the frame decoder. Used by the cargo-fuzz targets
//! `ws_upgrade` and `ws_frame` and replayed by `tests/fuzz_corpus_ws.rs`.

use nanoport_transports::ws::{
    encode_frame, parse_request, parse_response, server_response, FrameDecoder, Role, WsEvent,
    MAX_HTTP_HEAD,
};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const TOKEN: &str = "rep.sp.nanomsg.org";

/// The upgrade parsers on arbitrary bytes: no panic; an accepted request used no more
/// than it was given and no more than the head limit, and the answer we would send it
/// is one our client accepts; an accepted response used no more than it was given.
pub fn upgrade(data: &[u8]) {
    match parse_request(data) {
        Ok(Some((n, req))) => {
            assert!(n <= data.len() && n <= MAX_HTTP_HEAD);
            assert!(req.path.starts_with('/') || !req.path.is_empty());
            let res = server_response(&req.key, TOKEN);
            assert_eq!(parse_response(&res, &req.key, TOKEN), Ok(Some(res.len())));
        }
        Ok(None) => assert!(data.len() <= MAX_HTTP_HEAD),
        Err(status) => assert!(matches!(status, 400 | 405 | 426 | 431)),
    }
    if let Ok(Some(n)) = parse_response(data, KEY, TOKEN) {
        assert!(n <= data.len());
    }
}

/// The frame decoder on arbitrary bytes fed in arbitrary chunks, as a pipe's read buffer
/// fills: it never uses more than it has, never yields a message over the limit, stops
/// at the first error; and any payload, framed as a peer would, decodes back to itself.
pub fn frame(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let role = if sel & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let recv_max = [0usize, 1, 16, 125, 1024][(sel as usize >> 1) % 5];
    let chunk = 1 + (sel as usize >> 4) % 13;
    let mut dec = FrameDecoder::new(role, recv_max);
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    'feed: while pos < rest.len() {
        let end = (pos + chunk).min(rest.len());
        buf.extend_from_slice(&rest[pos..end]);
        pos = end;
        loop {
            match dec.decode(&buf) {
                Ok((0, ev)) => {
                    assert!(ev.is_none());
                    break;
                }
                Ok((used, ev)) => {
                    assert!(used <= buf.len());
                    if let Some(WsEvent::Message(m)) = &ev {
                        assert!(
                            recv_max == 0 || m.len() <= recv_max,
                            "message over the limit"
                        );
                    }
                    if let Some(WsEvent::Ping(p)) = &ev {
                        assert!(p.len() <= 125);
                    }
                    buf.drain(..used);
                }
                Err(_) => break 'feed,
            }
        }
    }
    // Round trip: the rest as one binary message from the other side.
    let mut wire = Vec::new();
    let mask = (role == Role::Server).then_some([sel, 7, 0x55, 0xaa]);
    encode_frame(&mut wire, 0x2, rest, mask);
    let mut dec = FrameDecoder::new(role, 0);
    assert_eq!(
        dec.decode(&wire),
        Ok((wire.len(), Some(WsEvent::Message(rest.to_vec()))))
    );
}
