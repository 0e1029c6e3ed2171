//! A protocol state machine is pure: driving one, and dropping the large messages that go
//! through it, never starts an engine thread (the reactor, workers, the idle sweep).

use std::sync::Arc;

use nanoport_engine::{Message, Now, Pipe, PipeId, PipeOps, Result};
use nanoport_protocols::{open, Action, Protocol};

struct Bare(PipeId);

impl PipeOps for Bare {
    fn id(&self) -> PipeId {
        self.0
    }
    fn close(&self) {}
    fn option(&self, _: &str) -> Result<String> {
        Err(nanoport_engine::Error::NotSup)
    }
    fn peer_protocol(&self) -> u16 {
        0x51
    }
}

/// Names of this process's threads that belong to nanoport's engine.
#[cfg(target_os = "linux")]
fn engine_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .filter(|n| n.starts_with("nanoport"))
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_bare_state_machine_starts_no_engine_thread() {
    let mut push = open(Protocol::Push0, false).unwrap();
    let now = Now::at(std::time::Instant::now());
    push.add_pipe(PipeId(1), now);
    let _pipe = Pipe::new(Arc::new(Bare(PipeId(1))));
    for _ in 0..8 {
        // 64 KiB bodies: the size the buffer cache recycles.
        let msg = Message::from(vec![7u8; 64 << 10]);
        push.try_send(0, msg, now).map_err(|_| ()).unwrap();
        while let Some(action) = push.poll_action() {
            if let Action::SendToPipe(p, m) = action {
                drop(m);
                push.pipe_writable(p, now);
            }
        }
    }
    drop(push);
    assert!(
        engine_threads().is_empty(),
        "engine threads started: {:?}",
        engine_threads()
    );
}
