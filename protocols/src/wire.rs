//! [`WireFront`]: the front of a message that came from a pipe, read as its sender put it
//! on the wire: the header the sender set, then the body.
//!
//! A stream transport delivers a frame as one body, so the header words (hop counts,
//! backtraces, request ids) lead the body. inproc hands the sender's message over as it
//! is, with those words still in its header. A parser that reads through `WireFront`
//! sees the same bytes either way.
//!
//! Why not move the header into the body on delivery, as NNG's inproc does: a body
//! shared with a clone is copy-on-write, so that prepend copied it. A user streaming
//! clones of one 64 KiB message over pair1 paid a 64 KiB copy per message, and ran at a
//! tenth of push/pull's rate. A protocol that parses no header calls
//! [`Message::pull_up_header`] on entry instead, which costs nothing when the header is
//! empty (every stream transport's case).

use nanoport_engine::{Error, Message, Result, MAX_HEADER};

/// Takes the first word of `msg` as it was on the wire and leaves the rest as payload:
/// the one-word parsers' whole use of [`WireFront`] (a hop count, a request or survey id).
///
/// # Errors
/// `Inval` when the message is shorter than a word (it is malformed and to be dropped).
pub(crate) fn take_first_word(msg: &mut Message) -> Result<u32> {
    if msg.header_len() == 0 {
        // What every stream transport delivers: nothing to take off the header.
        return msg.trim_u32();
    }
    let mut wire = WireFront::take(msg);
    let word = wire.next_u32(msg)?;
    wire.restore(msg);
    Ok(word)
}

/// The header a message arrived with, taken off it, and how much of it has been read.
#[derive(Debug)]
pub(crate) struct WireFront {
    bytes: [u8; MAX_HEADER],
    len: u8,
    read: u8,
}

impl WireFront {
    /// Takes `msg`'s header (the first bytes on the wire), leaving the header empty for the
    /// parser to fill.
    pub(crate) fn take(msg: &mut Message) -> WireFront {
        let header = msg.header();
        let mut bytes = [0u8; MAX_HEADER];
        let len = header.len().min(MAX_HEADER);
        bytes[..len].copy_from_slice(&header[..len]);
        msg.header_clear();
        WireFront {
            bytes,
            len: len as u8,
            read: 0,
        }
    }

    /// The next big-endian word on the wire: from the taken header first, then from the
    /// front of the body (a word may straddle the two).
    ///
    /// # Errors
    /// `Inval` when fewer than four bytes are left; what was left is then unspecified (the
    /// message is malformed and is to be dropped).
    pub(crate) fn next_u32(&mut self, msg: &mut Message) -> Result<u32> {
        let left = usize::from(self.len - self.read);
        if left == 0 {
            return msg.trim_u32();
        }
        let mut word = [0u8; 4];
        let from_header = left.min(4);
        let start = usize::from(self.read);
        word[..from_header].copy_from_slice(&self.bytes[start..start + from_header]);
        let from_body = 4 - from_header;
        if from_body > 0 {
            let body = msg.body().get(..from_body).ok_or(Error::Inval)?;
            word[from_header..].copy_from_slice(body);
            msg.trim(from_body)?;
        }
        self.read += from_header as u8;
        Ok(u32::from_be_bytes(word))
    }

    /// Puts what was not read back in front of the body: on the wire it was the start of
    /// the payload. (Only a sender that set more header than the parser reads leaves any.)
    pub(crate) fn restore(self, msg: &mut Message) {
        let (read, len) = (usize::from(self.read), usize::from(self.len));
        if read < len {
            msg.prepend(&self.bytes[read..len]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message a stream transport would deliver for `m`: its header pulled up.
    fn as_streamed(m: &Message) -> Message {
        let mut s = m.clone();
        s.pull_up_header();
        s
    }

    /// Reads `n` words through a `WireFront`, restores, and returns the words and the
    /// message left.
    fn read_words(mut m: Message, n: usize) -> (Vec<Result<u32>>, Message) {
        let mut w = WireFront::take(&mut m);
        let words = (0..n).map(|_| w.next_u32(&mut m)).collect();
        w.restore(&mut m);
        (words, m)
    }

    #[test]
    fn header_then_body_reads_as_the_streamed_bytes_would() {
        // Header lengths 0..=9 over bodies long enough for three words: every split of a
        // word between header and body.
        for hlen in 0..=9usize {
            let mut m = Message::from(&[0xa0u8, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7][..]);
            m.append(b"payload");
            let h: Vec<u8> = (0..hlen as u8).map(|i| 0x10 + i).collect();
            m.header_append(&h).unwrap();
            let (split, rest) = read_words(m.clone(), 3);
            let (streamed, rest_streamed) = read_words(as_streamed(&m), 3);
            assert_eq!(split, streamed, "header of {hlen}");
            assert_eq!(rest.body(), rest_streamed.body(), "header of {hlen}");
            assert!(rest.header().is_empty());
        }
    }

    #[test]
    fn unread_header_bytes_go_back_in_front_of_the_body() {
        let mut m = Message::from(&b"body"[..]);
        m.header_append(&[0, 0, 0, 1, 0xee, 0xff]).unwrap();
        let (words, rest) = read_words(m, 1);
        assert_eq!(words, [Ok(1)]);
        assert_eq!(rest.body(), b"\xee\xffbody");
    }

    #[test]
    fn the_first_word_comes_off_the_header_or_the_body_alike() {
        for hlen in 0..=6usize {
            let mut m = Message::from(&[1u8, 2, 3, 4, 5, 6, 7, 8][..]);
            let h: Vec<u8> = (0..hlen as u8).map(|i| 0x10 + i).collect();
            m.header_append(&h).unwrap();
            let mut streamed = as_streamed(&m);
            assert_eq!(take_first_word(&mut m), take_first_word(&mut streamed));
            assert_eq!(m.body(), streamed.body(), "header of {hlen}");
            assert!(m.header().is_empty());
        }
        assert_eq!(
            take_first_word(&mut Message::from(&b"abc"[..])),
            Err(Error::Inval)
        );
    }

    #[test]
    fn too_few_bytes_is_an_error() {
        let mut m = Message::from(&b"ab"[..]);
        m.header_append(&[1]).unwrap();
        let mut w = WireFront::take(&mut m);
        assert_eq!(w.next_u32(&mut m), Err(Error::Inval));
        let mut empty = Message::new();
        let mut w = WireFront::take(&mut empty);
        assert_eq!(w.next_u32(&mut empty), Err(Error::Inval));
    }

    #[test]
    fn reading_a_header_leaves_a_shared_body_shared() {
        let body = Message::from(vec![7u8; 65536]);
        let mut sent = body.clone();
        sent.header_append_u32(1).unwrap();
        let (words, rest) = read_words(sent, 1);
        assert_eq!(words, [Ok(1)]);
        assert_eq!(
            rest.body().as_ptr(),
            body.body().as_ptr(),
            "the body was copied"
        );
    }
}
