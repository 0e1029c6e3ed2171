//! nanoport logs through the `log` facade (silent until the program installs a logger):
//! pipes added and removed, rejected peers, failed dials and their back-off, with NNG
//! 2.x's message tags. One test binary of its own: a logger is process-wide.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{eventually, tcp};
use log::{Level, LevelFilter, Log, Metadata, Record};
use nanoport::Socket;

static LINES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &Record<'_>) {
        LINES
            .lock()
            .unwrap()
            .push((r.level(), r.args().to_string()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// The first record that starts with `tag` and mentions `about`.
fn seen_about(tag: &str, about: &str) -> Option<(Level, String)> {
    LINES
        .lock()
        .unwrap()
        .iter()
        .find(|(_, l)| l.starts_with(tag) && l.contains(about))
        .cloned()
}

fn seen(tag: &str) -> Option<(Level, String)> {
    seen_about(tag, "")
}

#[test]
fn pipe_life_rejections_and_dial_failures_are_logged_with_nng_s_tags() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(LevelFilter::Trace);
    let limit = Duration::from_secs(10);

    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    // Both ends log their pipe; the pull socket's is the one looked for.
    let (level, _) = eventually(limit, || seen_about("NNG-PIPEADD", " pull: "))
        .expect("the pull socket's pipe added");
    assert_eq!(level, Level::Debug);
    push.close().unwrap();
    eventually(limit, || seen("NNG-PIPEREM")).expect("pipe removed");

    // A peer of the wrong protocol is refused, with a warning that says why.
    let wrong = Socket::pull0().unwrap();
    wrong.dial_nonblocking(&url).unwrap();
    let (level, line) = eventually(limit, || seen("NNG-PEER-MISMATCH")).expect("rejected");
    assert_eq!(level, Level::Warn);
    assert!(line.contains("rejected"), "{line}");

    // A dial that fails is retried after a pause, and both are said.
    let nobody = tcp();
    let lonely = Socket::push0().unwrap();
    lonely
        .set_reconnect_min_time(Duration::from_millis(10))
        .unwrap();
    lonely.dial_nonblocking(&nobody).unwrap();
    let (level, line) = eventually(limit, || seen("NNG-CONN-FAIL")).expect("dial failure");
    assert_eq!(level, Level::Info);
    assert!(line.contains(&nobody), "{line}");
    eventually(limit, || seen("NNG-RECONNECT")).expect("back-off");
}
