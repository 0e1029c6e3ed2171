//! The fuzz targets' bodies: plain functions over bytes, shared by the cargo-fuzz
//! binaries (`fuzz/fuzz_targets/`) and by the normal test suite, which replays the kept
//! corpus (`fuzz/corpus/<target>/`) through them (`tests/fuzz_corpus.rs`).
//!
//! Each body feeds network bytes to one parser and checks what must hold for any input:
//! no panic, a clean error, and the parser's own invariants.

use std::time::{Duration, Instant};

use nanoport_engine::{Message, PipeId, MAX_HEADER};
use nanoport_protocols::{Action, Protocol, ProtocolCore};
use nanoport_transports::frame::{FrameDecoder, FrameReader, Framing, ReadError, READ_BUF_MAX};
use nanoport_transports::handshake::{encode_header, parse_header};
use nanoport_transports::Url;

/// The SP connection header: parse, and a parsed id encodes back to the same bytes.
pub fn handshake(data: &[u8]) {
    let Some(h) = data.get(..8) else { return };
    let h: [u8; 8] = h.try_into().expect("eight bytes");
    if let Ok(proto) = parse_header(&h) {
        assert_eq!(
            encode_header(proto),
            h,
            "a header we accept must be one we would send"
        );
    }
}

/// Stream framing: arbitrary bytes in arbitrary chunks. A frame never exceeds the limit,
/// and a peer that announces a large frame pins no more than it has sent. The buffered
/// reader the pipes use ([`FrameReader`]) yields exactly the decoder's frames and error.
pub fn frame(data: &[u8], framing: Framing) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let recv_max = [0usize, 1, 16, 1024, 65536][sel as usize % 5];
    let chunk = 1 + (sel as usize >> 3) % 17;
    let mut dec = FrameDecoder::new(framing, recv_max);
    let mut fed = 0usize;
    let mut pos = 0usize;
    let mut frames = Vec::new();
    let mut error = None;
    'outer: while pos < rest.len() {
        let end = (pos + chunk).min(rest.len());
        let mut slice = &rest[pos..end];
        while !slice.is_empty() {
            match dec.feed(slice) {
                Ok((used, frame)) => {
                    assert!(used <= slice.len());
                    fed += used;
                    if let Some(f) = frame {
                        assert!(recv_max == 0 || f.len() <= recv_max, "frame over the limit");
                        frames.push(f);
                    }
                    if used == 0 {
                        break;
                    }
                    slice = &slice[used..];
                }
                Err(e) => {
                    error = Some(e);
                    break 'outer;
                }
            }
            assert!(
                dec.buffered_capacity() <= fed.max(1) * 2 + 64,
                "buffer grew ahead of the bytes received"
            );
        }
        pos = end;
    }
    // Whether the reader's source pauses (would-block) every few reads, and the reader
    // then gives its idle buffer back, as the idle sweep does between bursts.
    let pause_every = (sel as usize >> 5) % 4;
    frame_reader(rest, framing, recv_max, chunk, pause_every, &frames, error);
}

/// [`FrameReader`] over the same bytes, `chunk` bytes per read: the same frames, then the
/// same error (or a clean would-block/EOF), holding no more than its buffer plus what
/// arrived. With `pause_every` > 0 the source would-blocks after every `pause_every`
/// reads, and at each pause the reader is told to release its idle buffer, which must
/// never lose a byte.
fn frame_reader(
    wire: &[u8],
    framing: Framing,
    recv_max: usize,
    chunk: usize,
    pause_every: usize,
    want: &[Vec<u8>],
    want_err: Option<nanoport_transports::frame::FrameError>,
) {
    let mut r = FrameReader::new(framing, recv_max);
    let mut pos = 0usize;
    let mut got = Vec::new();
    let mut reads = 0usize;
    let err = loop {
        let res = r.read_with(|b| {
            if pos == wire.len() {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            reads += 1;
            if pause_every > 0 && reads % (pause_every + 1) == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(chunk).min(wire.len() - pos);
            b[..n].copy_from_slice(&wire[pos..pos + n]);
            pos += n;
            Ok(n)
        });
        assert!(
            r.buffered_capacity() <= READ_BUF_MAX + 2 * pos.max(64 * 1024) + 64,
            "reader grew ahead of the bytes received"
        );
        match res {
            Ok(Some(f)) => {
                got.push(f);
                if r.skip_read_if_drained() {
                    // A skipped read must never leave a complete frame waiting.
                    assert!(
                        matches!(r.next_buffered(), Ok(None)),
                        "skipped a read with a frame buffered"
                    );
                }
            }
            Ok(None) if pos < wire.len() => {
                let (held, had_bytes) = (r.buffered_capacity(), r.in_frame());
                let freed = r.release_idle();
                assert!(freed == 0 || freed == held, "a partial release");
                assert!(freed == 0 || !had_bytes, "released a buffer holding bytes");
            }
            Ok(None) => break None,
            Err(ReadError::Frame(e)) => break Some(e),
            Err(e) => panic!("unexpected read error {e:?}"),
        }
    };
    assert_eq!(
        got.len(),
        want.len(),
        "reader and decoder disagree on frames"
    );
    assert!(got.iter().zip(want).all(|(a, b)| a == b), "frames differ");
    assert_eq!(err, want_err, "reader and decoder disagree on the error");
}

/// URL parsing: never panics; what parses prints back to something that parses the same.
pub fn url(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = Url::parse(s) {
        let again = Url::parse(&u.to_string()).expect("a printed URL parses again");
        assert_eq!(again.to_string(), u.to_string());
    }
}

/// A protocol fed arbitrary messages from arbitrary pipes, with user operations and time
/// interleaved: no panic, and every action names a pipe the protocol was given.
pub fn protocol_inbound(data: &[u8]) {
    let Some((&sel, mut ops)) = data.split_first() else {
        return;
    };
    let p = Protocol::ALL[sel as usize % Protocol::ALL.len()];
    let raw = sel & 0x80 != 0;
    let Ok(mut proto) = nanoport_protocols::open(p, raw) else {
        return;
    };
    let mut now = Instant::now();
    let mut pipes: Vec<PipeId> = Vec::new();
    let mut busy: Vec<PipeId> = Vec::new();
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        match op % 8 {
            0 => {
                let id = PipeId(1 + (op as u32 >> 3));
                if !pipes.contains(&id) {
                    pipes.push(id);
                    proto.add_pipe(id, now.into());
                }
            }
            1 if !pipes.is_empty() => {
                let id = pipes.remove((op as usize >> 3) % pipes.len());
                busy.retain(|b| *b != id);
                proto.remove_pipe(id, now.into());
            }
            2 | 3 if !pipes.is_empty() => {
                let id = pipes[(op as usize >> 3) % pipes.len()];
                let n = ops.first().map_or(0, |&b| b as usize % 24);
                let body = ops.get(1..1 + n).unwrap_or(&ops[ops.len().min(1)..]);
                ops = &ops[(1 + n).min(ops.len())..];
                // op 2: as a stream delivers it, all in the body; op 3: as inproc does,
                // the sender's header (the first bytes, up to 64) still in the header.
                let split = if op % 8 == 3 {
                    (op as usize >> 3).min(body.len()).min(MAX_HEADER)
                } else {
                    0
                };
                let mut m = Message::from(&body[split..]);
                let _ = m.header_append(&body[..split]);
                proto.pipe_message(id, m, now.into());
            }
            4 => {
                let _ = proto.try_recv(0, now.into());
            }
            5 => {
                let mut m = Message::from(&b"user"[..]);
                if raw {
                    let _ = m.header_append(&ops[..ops.len().min(8)]);
                }
                let _ = proto.try_send(0, m, now.into());
            }
            6 => {
                now += Duration::from_millis(op as u64 * 40);
                proto.timer(now.into());
            }
            _ => {
                if let Some(id) = busy.pop() {
                    proto.pipe_writable(id, now.into());
                }
            }
        }
        while let Some(a) = proto.poll_action() {
            match a {
                Action::SendToPipe(id, _) => {
                    assert!(
                        pipes.contains(&id),
                        "{p:?} raw={raw}: sent to unknown pipe {id:?}"
                    );
                    assert!(
                        !busy.contains(&id),
                        "{p:?} raw={raw}: second write to busy pipe {id:?}"
                    );
                    busy.push(id);
                }
                Action::ClosePipe(id) => {
                    if pipes.contains(&id) {
                        pipes.retain(|x| *x != id);
                        busy.retain(|x| *x != id);
                        proto.remove_pipe(id, now.into());
                    }
                }
                Action::RecvReady(_) | Action::SendReady(_) | Action::ResumePipe(_) => {}
            }
        }
    }
    let _ = proto.next_timer();
    drop(proto as Box<dyn ProtocolCore>);
}
