//! libzmq contenders (feature `libzmq`): the same req/rep round trip and push/pull stream
//! as [`crate::np`] and [`crate::nng`], on the system's libzmq through the `zmq` crate.
//!
//! Issue 5 sets nanoport's targets against libzmq's figures; these let them be taken in
//! the same run instead of quoted. Tuned alike ([`Tuning::Alike`]): the pushing socket's
//! send high-water mark is [`push_send_buffer`] messages; at [`Tuning::Defaults`] it keeps
//! libzmq's 1,000 (and the pulling socket's receive high-water mark its 1,000 either way).
//! Every send copies the body, and the context keeps libzmq's one I/O thread. Linger is
//! 0, so closing never waits for unsent messages (it changes nothing while running).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::np::push_send_buffer;
use crate::{remove_ipc_file, RoundTrip, Stream, Transport, Tuning};

/// The URL libzmq binds for `t` (`tcp://127.0.0.1:*` picks a free port).
fn bind_url(t: Transport) -> String {
    match t {
        Transport::Tcp => "tcp://127.0.0.1:*".to_string(),
        _ => t.listen_url(),
    }
}

/// Binds `s` for `t`; returns the endpoint a peer should connect to.
fn bind(s: &zmq::Socket, t: Transport) -> String {
    s.set_linger(0).expect("linger");
    s.bind(&bind_url(t)).expect("bind");
    s.get_last_endpoint()
        .expect("last endpoint")
        .expect("endpoint is UTF-8")
}

/// A REQ client and a REP echo thread, connected over `t`.
pub struct ZmqRoundTrip {
    req: zmq::Socket,
    url: String,
    echo: Option<JoinHandle<()>>,
    body: Vec<u8>,
    _ctx: zmq::Context,
}

impl ZmqRoundTrip {
    /// Connects a pair over `t`; messages carry `size` bytes (at least 1: an empty
    /// message is the echo thread's signal to stop).
    pub fn new(t: Transport, size: usize) -> Self {
        let ctx = zmq::Context::new();
        let rep = ctx.socket(zmq::REP).expect("rep");
        let url = bind(&rep, t);
        let req = ctx.socket(zmq::REQ).expect("req");
        req.set_linger(0).expect("linger");
        req.connect(&url).expect("connect");
        let echo = std::thread::spawn(move || {
            let mut m = zmq::Message::new();
            while rep.recv(&mut m, 0).is_ok() {
                let last = m.is_empty();
                // Sent as received, no copy, as the other echo threads do.
                let reply = std::mem::replace(&mut m, zmq::Message::new());
                if rep.send(reply, 0).is_err() || last {
                    break;
                }
            }
        });
        ZmqRoundTrip {
            req,
            url,
            echo: Some(echo),
            body: vec![7u8; size.max(1)],
            _ctx: ctx,
        }
    }
}

impl RoundTrip for ZmqRoundTrip {
    fn round_trip(&mut self) {
        self.req.send(&self.body[..], 0).expect("send");
        let m = self.req.recv_msg(0).expect("recv");
        debug_assert_eq!(m.len(), self.body.len(), "echo size");
    }
}

impl Drop for ZmqRoundTrip {
    fn drop(&mut self) {
        // The empty message ends the echo thread after its reply.
        if self.req.send(&b""[..], 0).is_ok() {
            let _ = self.req.recv_msg(0);
        }
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
        remove_ipc_file(&self.url);
    }
}

/// A PUSH socket (moved into a sender thread per call) and a PULL socket (the caller).
pub struct ZmqStream {
    push: Option<zmq::Socket>,
    pull: zmq::Socket,
    url: String,
    body: Vec<u8>,
    _ctx: zmq::Context,
}

impl ZmqStream {
    /// Connects a push/pull pair over `t`, tuned alike ([`Tuning::Alike`]); messages
    /// carry `size` bytes.
    pub fn new(t: Transport, size: usize) -> Self {
        Self::with_tuning(t, size, Tuning::Alike)
    }

    /// Connects a push/pull pair over `t` set up as `tuning` says; messages carry `size`
    /// bytes.
    pub fn with_tuning(t: Transport, size: usize, tuning: Tuning) -> Self {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).expect("pull");
        let url = bind(&pull, t);
        let push = ctx.socket(zmq::PUSH).expect("push");
        push.set_linger(0).expect("linger");
        if tuning == Tuning::Alike {
            push.set_sndhwm(push_send_buffer())
                .expect("send high-water mark");
        }
        push.connect(&url).expect("connect");
        ZmqStream {
            push: Some(push),
            pull,
            url,
            body: vec![7u8; size],
            _ctx: ctx,
        }
    }
}

impl Stream for ZmqStream {
    fn stream(&mut self, n: u64) -> Duration {
        // zmq::Socket is Send but not Sync: the sender thread owns it for the call.
        let push = self.push.take().expect("push socket");
        let (body, pull) = (&self.body, &self.pull);
        let start = Instant::now();
        let (elapsed, push) = std::thread::scope(|s| {
            let sender = s.spawn(move || {
                for _ in 0..n {
                    push.send(&body[..], 0).expect("send");
                }
                push
            });
            let mut m = zmq::Message::new();
            for _ in 0..n {
                pull.recv(&mut m, 0).expect("recv");
                assert_eq!(m.len(), body.len(), "message size");
            }
            let elapsed = start.elapsed();
            (elapsed, sender.join().expect("sender thread"))
        });
        self.push = Some(push);
        elapsed
    }
}

impl Drop for ZmqStream {
    fn drop(&mut self) {
        remove_ipc_file(&self.url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_stream_work_over_every_transport() {
        for t in Transport::ALL {
            let mut rt = ZmqRoundTrip::new(t, 64);
            for _ in 0..10 {
                rt.round_trip();
            }
            drop(rt); // joins the echo thread
            let mut st = ZmqStream::new(t, 64);
            let _ = st.stream(100);
            let _ = st.stream(100); // the push socket came back from the first call
        }
    }
}
