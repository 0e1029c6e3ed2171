//! Request/reply backtraces (req, rep, surveyor, respondent and their raw forms).
//!
//! A backtrace is a stack of big-endian u32 words in front of the payload: pipe ids pushed
//! by devices (top bit clear), ending with the request or survey id (top bit set).

use nanoport_engine::{Message, MAX_HEADER};

use crate::wire::WireFront;

/// What came of moving a backtrace from the body into the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BacktraceVerdict {
    /// The words up to and including the id are now in the header.
    Complete,
    /// More hops than allowed (or than a header holds): drop the message, keep the pipe.
    TooManyHops,
    /// The body ran out before an id: the peer speaks garbage, close its pipe.
    Garbage,
}

/// Whether a backtrace word is a request/survey id, which ends the backtrace.
pub(crate) fn is_id_word(word: u32) -> bool {
    word & 0x8000_0000 != 0
}

/// Moves backtrace words from the front of the message as it was on the wire (`wire`, then
/// the body) to the end of the header, up to and including the first word with the top
/// bit set, accepting at most `max_words` words. What `wire` holds beyond them goes back
/// in front of the body.
/// This is NNG's `rep0_pipe_recv_cb` loop (`hops` from 1; `hops > ttl` drops; fewer than
/// four bytes left is garbage). On a verdict other than `Complete` the message is to be
/// discarded, so its state does not matter.
pub(crate) fn move_backtrace_to_header(
    msg: &mut Message,
    mut wire: WireFront,
    max_words: u8,
) -> BacktraceVerdict {
    let mut hops: u8 = 1;
    loop {
        if hops > max_words {
            return BacktraceVerdict::TooManyHops;
        }
        hops = hops.saturating_add(1);
        let Ok(word) = wire.next_u32(msg) else {
            return BacktraceVerdict::Garbage;
        };
        if msg.header_append_u32(word).is_err() {
            return BacktraceVerdict::TooManyHops;
        }
        if is_id_word(word) {
            wire.restore(msg);
            return BacktraceVerdict::Complete;
        }
    }
}

/// A saved backtrace: the header a reply must carry back (at most [`MAX_HEADER`] bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backtrace {
    words: [u8; MAX_HEADER],
    len: u8,
}

impl Backtrace {
    /// Copies the message's header.
    pub(crate) fn from_header(msg: &Message) -> Backtrace {
        let header = msg.header();
        let mut words = [0u8; MAX_HEADER];
        let len = header.len().min(MAX_HEADER);
        words[..len].copy_from_slice(&header[..len]);
        Backtrace {
            words,
            len: len as u8,
        }
    }

    /// Replaces the message's header with this backtrace.
    pub(crate) fn apply(&self, msg: &mut Message) {
        msg.header_clear();
        // Cannot fail: the backtrace is at most MAX_HEADER bytes and the header is empty.
        let _ = msg.header_append(&self.words[..self.len as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves the backtrace of a message as a stream transport delivers it (header empty).
    fn mv(m: &mut Message, max_words: u8) -> BacktraceVerdict {
        let wire = WireFront::take(m);
        move_backtrace_to_header(m, wire, max_words)
    }

    fn body(words: &[u32], payload: &[u8]) -> Message {
        let mut m = Message::new();
        for w in words {
            m.append_u32(*w);
        }
        m.append(payload);
        m
    }

    #[test]
    fn moves_words_through_the_id() {
        let mut m = body(&[1, 2, 0x8000_0005], b"hi");
        assert_eq!(mv(&mut m, 8), BacktraceVerdict::Complete);
        assert_eq!(m.header(), &[0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0, 0, 5]);
        assert_eq!(m.body(), b"hi");
    }

    #[test]
    fn ttl_bounds_the_words() {
        let words: Vec<u32> = (1..=8)
            .map(|i| if i == 8 { 0x8000_0000 } else { i })
            .collect();
        assert_eq!(mv(&mut body(&words, b""), 8), BacktraceVerdict::Complete);
        let words: Vec<u32> = (1..=9)
            .map(|i| if i == 9 { 0x8000_0000 } else { i })
            .collect();
        assert_eq!(mv(&mut body(&words, b""), 8), BacktraceVerdict::TooManyHops);
    }

    #[test]
    fn running_out_is_garbage() {
        assert_eq!(mv(&mut body(&[], b"abc"), 8), BacktraceVerdict::Garbage);
        assert_eq!(mv(&mut body(&[7], b"abc"), 8), BacktraceVerdict::Garbage);
    }

    #[test]
    fn full_header_drops() {
        // rep0_raw puts its pipe word in the header before the backtrace: a header with
        // no room left ends the move.
        let mut m = body(&[1; 20], b"");
        let wire = WireFront::take(&mut m);
        m.header_append(&[0; 60]).unwrap();
        assert_eq!(
            move_backtrace_to_header(&mut m, wire, 15),
            BacktraceVerdict::TooManyHops
        );
    }

    #[test]
    fn a_backtrace_still_in_the_header_moves_as_one_in_the_body() {
        // inproc delivers the sender's header as it is; a stream transport, in the body.
        let mut split = Message::from("hi");
        split.header_append_u32(1).unwrap();
        split.header_append_u32(0x8000_0005).unwrap();
        let mut streamed = split.clone();
        streamed.pull_up_header();
        assert_eq!(mv(&mut split, 8), BacktraceVerdict::Complete);
        assert_eq!(mv(&mut streamed, 8), BacktraceVerdict::Complete);
        assert_eq!(split.header(), streamed.header());
        assert_eq!(split.body(), b"hi");
        assert_eq!(streamed.body(), b"hi");
    }

    #[test]
    fn saved_backtrace_round_trips() {
        let mut m = body(&[3, 0x8000_0001], b"x");
        mv(&mut m, 8);
        let bt = Backtrace::from_header(&m);
        let mut reply = Message::from("y");
        reply.header_append_u32(99).unwrap();
        bt.apply(&mut reply);
        assert_eq!(reply.header(), &[0, 0, 0, 3, 0x80, 0, 0, 1]);
    }
}
