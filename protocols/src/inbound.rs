//! [`InboundQueue`]: received messages waiting for the user, with per-pipe backpressure.
//!
//! This is NNG's receive path for the faithful protocols (pair, pull, rep, ...): up to
//! `capacity` messages wait in a socket-level buffer; beyond that each pipe may hold one
//! more message ("parked"), and a pipe holding one is not read again until the user takes
//! it. So the queue never holds more than `capacity + pipes` messages, whatever the peers
//! do, and parked pipes are served in the order they parked (fair queueing).

use std::collections::VecDeque;

use nanoport_engine::{Message, PipeId};

/// A message the user took, with where it came from.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The pipe it arrived on.
    pub(crate) pipe: PipeId,
    /// The message.
    pub(crate) msg: Message,
    /// A pipe that had been paused and may now be read again.
    pub(crate) resume: Option<PipeId>,
}

/// Received messages in arrival order, bounded by the buffer size plus one per pipe.
#[derive(Debug)]
pub(crate) struct InboundQueue {
    buffered: VecDeque<(PipeId, Message)>,
    parked: VecDeque<(PipeId, Message)>,
    capacity: usize,
}

impl InboundQueue {
    /// A queue buffering `capacity` messages beyond the one each pipe may hold.
    pub(crate) fn new(capacity: usize) -> InboundQueue {
        InboundQueue {
            buffered: VecDeque::new(),
            parked: VecDeque::new(),
            capacity,
        }
    }

    /// Whether `pipe` may deliver another message now (it holds none parked).
    pub(crate) fn wants(&self, pipe: PipeId) -> bool {
        !self.parked.iter().any(|(p, _)| *p == pipe)
    }

    /// Adds a message that arrived on `pipe`.
    pub(crate) fn push(&mut self, pipe: PipeId, msg: Message) {
        if self.parked.is_empty() && self.buffered.len() < self.capacity {
            self.buffered.push_back((pipe, msg));
        } else {
            self.parked.push_back((pipe, msg));
        }
    }

    /// Takes the oldest message.
    pub(crate) fn pop(&mut self) -> Option<Taken> {
        if let Some((pipe, msg)) = self.buffered.pop_front() {
            let mut resume = None;
            if self.buffered.len() < self.capacity {
                if let Some((parked_pipe, parked_msg)) = self.parked.pop_front() {
                    resume = Some(parked_pipe);
                    self.buffered.push_back((parked_pipe, parked_msg));
                }
            }
            return Some(Taken { pipe, msg, resume });
        }
        let (pipe, msg) = self.parked.pop_front()?;
        Some(Taken {
            pipe,
            msg,
            resume: Some(pipe),
        })
    }

    /// Puts a taken message back at the front.
    pub(crate) fn unpop(&mut self, pipe: PipeId, msg: Message) {
        self.buffered.push_front((pipe, msg));
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.buffered.is_empty() && self.parked.is_empty()
    }

    /// The pipe is gone: the message it held parked is dropped, as NNG drops what a closing
    /// pipe holds; buffered messages stay.
    pub(crate) fn pipe_gone(&mut self, pipe: PipeId) {
        self.parked.retain(|(p, _)| *p != pipe);
    }

    /// The buffer size.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the buffer size; returns the pipes that may be read again (a larger
    /// buffer takes parked messages in). Messages beyond a smaller size stay until taken.
    pub(crate) fn set_capacity(&mut self, capacity: usize) -> Vec<PipeId> {
        self.capacity = capacity;
        let mut resumed = Vec::new();
        while self.buffered.len() < self.capacity {
            let Some((pipe, msg)) = self.parked.pop_front() else {
                break;
            };
            resumed.push(pipe);
            self.buffered.push_back((pipe, msg));
        }
        resumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Message {
        Message::from(s)
    }

    #[test]
    fn unbuffered_parks_one_per_pipe_and_resumes_in_order() {
        let mut q = InboundQueue::new(0);
        let (a, b) = (PipeId(1), PipeId(2));
        q.push(a, m("a1"));
        assert!(!q.wants(a));
        assert!(q.wants(b));
        q.push(b, m("b1"));
        let t = q.pop().unwrap();
        assert_eq!((t.pipe, t.msg.body(), t.resume), (a, &b"a1"[..], Some(a)));
        assert!(q.wants(a));
        let t = q.pop().unwrap();
        assert_eq!((t.pipe, t.resume), (b, Some(b)));
        assert!(q.pop().is_none());
    }

    #[test]
    fn buffered_then_parked_keeps_order() {
        let mut q = InboundQueue::new(1);
        let a = PipeId(1);
        q.push(a, m("1"));
        assert!(q.wants(a));
        q.push(a, m("2"));
        assert!(!q.wants(a));
        let t = q.pop().unwrap();
        assert_eq!((t.msg.body(), t.resume), (&b"1"[..], Some(a)));
        let t = q.pop().unwrap();
        assert_eq!((t.msg.body(), t.resume), (&b"2"[..], None));
        assert!(q.is_empty());
    }

    #[test]
    fn gone_pipe_drops_only_its_parked_message() {
        let mut q = InboundQueue::new(1);
        q.push(PipeId(1), m("kept"));
        q.push(PipeId(1), m("dropped"));
        q.pipe_gone(PipeId(1));
        assert_eq!(q.pop().unwrap().msg.body(), b"kept");
        assert!(q.pop().is_none());
    }

    #[test]
    fn growing_capacity_resumes_parked_pipes() {
        let mut q = InboundQueue::new(0);
        q.push(PipeId(1), m("x"));
        assert_eq!(q.set_capacity(4), vec![PipeId(1)]);
        assert!(q.wants(PipeId(1)));
        assert_eq!(q.capacity(), 4);
    }
}
