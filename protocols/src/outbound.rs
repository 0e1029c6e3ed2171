//! [`OutboundPipe`]: one pipe's send side for protocols that queue per pipe (pub, bus,
//! surveyor, pair1 polyamorous, raw rep and respondent).
//!
//! The socket writes one message at a time to a pipe; while one is in flight the others
//! wait in a queue of bounded depth, and a full queue drops by the protocol's rule.

use std::collections::VecDeque;

use nanoport_engine::Message;

/// What a full per-pipe queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Drop the oldest queued message to make room (pub).
    DropOldest,
    /// Drop the new message (bus, surveyor, poly pair1, raw rep).
    DropNewest,
}

/// A pipe's write state and its queue of messages waiting for it.
#[derive(Debug, Default)]
pub(crate) struct OutboundPipe {
    busy: bool,
    queue: VecDeque<Message>,
}

impl OutboundPipe {
    /// An idle pipe with nothing queued.
    pub(crate) fn new() -> OutboundPipe {
        OutboundPipe::default()
    }

    /// Offers `msg` to the pipe: returns it when it should be written now (the pipe was
    /// idle and is now busy); otherwise queues it within `depth` or drops by `when_full`.
    pub(crate) fn offer(
        &mut self,
        msg: Message,
        depth: usize,
        when_full: WhenFull,
    ) -> Option<Message> {
        if !self.busy {
            self.busy = true;
            return Some(msg);
        }
        if self.queue.len() >= depth {
            if when_full == WhenFull::DropNewest || depth == 0 {
                return None;
            }
            while self.queue.len() >= depth {
                self.queue.pop_front();
            }
        }
        self.queue.push_back(msg);
        None
    }

    /// The pipe finished a write: returns the next message to write, or marks it idle.
    pub(crate) fn writable(&mut self) -> Option<Message> {
        let next = self.queue.pop_front();
        self.busy = next.is_some();
        next
    }

    /// Whether a write is in flight.
    #[cfg(test)]
    pub(crate) fn is_busy(&self) -> bool {
        self.busy
    }

    /// Messages waiting behind the one in flight.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drops the oldest queued messages beyond `depth` (the buffer option shrank).
    pub(crate) fn truncate_oldest(&mut self, depth: usize) {
        while self.queue.len() > depth {
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_pipe_takes_message_at_once_then_queues() {
        let mut p = OutboundPipe::new();
        assert!(p
            .offer(Message::from("1"), 2, WhenFull::DropNewest)
            .is_some());
        assert!(p.is_busy());
        assert!(p
            .offer(Message::from("2"), 2, WhenFull::DropNewest)
            .is_none());
        assert!(p
            .offer(Message::from("3"), 2, WhenFull::DropNewest)
            .is_none());
        assert!(p
            .offer(Message::from("4"), 2, WhenFull::DropNewest)
            .is_none());
        assert_eq!(p.queued(), 2);
        assert_eq!(p.writable().unwrap().body(), b"2");
        assert_eq!(p.writable().unwrap().body(), b"3");
        assert!(p.writable().is_none());
        assert!(!p.is_busy());
    }

    #[test]
    fn drop_oldest_keeps_newest() {
        let mut p = OutboundPipe::new();
        p.offer(Message::from("0"), 2, WhenFull::DropOldest);
        for s in ["1", "2", "3"] {
            p.offer(Message::from(s), 2, WhenFull::DropOldest);
        }
        assert_eq!(p.writable().unwrap().body(), b"2");
        assert_eq!(p.writable().unwrap().body(), b"3");
        p.offer(Message::from("4"), 0, WhenFull::DropOldest);
        assert_eq!(p.queued(), 0);
    }
}
