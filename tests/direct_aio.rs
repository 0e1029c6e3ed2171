//! `Aio::new_direct`: the callback runs on the thread that completed the operation (the
//! reactor for a peer's message), never inside the call that started it.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{inproc, ipc, nngcat_or_skip, tcp, NngCat};
use nanoport::{Aio, Message, Socket};

thread_local! {
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

fn initiate(f: impl FnOnce()) {
    IN_CALL.with(|c| c.set(true));
    f();
    IN_CALL.with(|c| c.set(false));
}

/// (body, thread name, whether it ran inside an initiating call)
type Seen = (Vec<u8>, String, bool);

fn direct_recv(tx: mpsc::Sender<Seen>) -> Aio {
    Aio::new_direct(move |a: &Aio| {
        let body = a.take_msg().map(|m| m.body().to_vec()).unwrap_or_default();
        let name = std::thread::current().name().unwrap_or("").to_owned();
        let _ = tx.send((body, name, IN_CALL.with(Cell::get)));
    })
    .unwrap()
}

#[test]
fn a_peer_s_message_runs_the_callback_on_the_reactor_thread() {
    for url in [tcp(), ipc("direct")] {
        let pull = Socket::pull0().unwrap();
        pull.listen(&url).unwrap();
        let push = Socket::push0().unwrap();
        push.dial(&url).unwrap();
        let (tx, rx) = mpsc::channel();
        let aio = direct_recv(tx);
        initiate(|| pull.recv_aio(&aio));
        push.send("late").unwrap();
        let (body, thread, inside) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(body, b"late", "{url}");
        assert!(!inside, "{url}");
        assert_eq!(
            thread, "nanoport:reactor",
            "{url}: completed by the reactor, run there"
        );
    }
}

#[test]
fn a_completion_inside_the_starting_call_goes_to_a_worker() {
    let url = inproc("direct-queued");
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    let (tx, rx) = mpsc::channel();
    let aio = Aio::new_direct(move |a: &Aio| {
        let name = std::thread::current().name().unwrap_or("").to_owned();
        let _ = tx.send((a.result(), a.take_msg(), name, IN_CALL.with(Cell::get)));
    })
    .unwrap();
    // A zero timeout means "do not wait": the receive completes before recv_aio returns,
    // with TimedOut on an empty socket or with a message already queued. Either way the
    // completion is part of the starting call, so a worker runs the callback.
    aio.set_timeout(Duration::ZERO);
    push.send("queued").unwrap();
    let mut got = None;
    for _ in 0..1000 {
        initiate(|| pull.recv_aio(&aio));
        let (result, msg, thread, inside) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(!inside, "the callback ran inside recv_aio");
        assert!(thread.starts_with("nanoport:worker"), "ran on {thread}");
        match result {
            Ok(()) => {
                got = msg;
                break;
            }
            Err(e) => assert_eq!(e, nanoport::Error::TimedOut),
        }
    }
    assert_eq!(got.expect("the queued message").body(), b"queued");
}

#[test]
fn a_direct_callback_chain_serves_requests_without_a_worker() {
    let url = tcp();
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let on_worker = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    // One aio alternates: receive a request, send it back as the reply, receive again.
    let r = rep.clone();
    let (s, w, i) = (served.clone(), on_worker.clone(), inside.clone());
    let aio = Aio::new_direct(move |a: &Aio| {
        if IN_CALL.with(Cell::get) {
            i.fetch_add(1, Ordering::Relaxed);
        }
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("nanoport:worker"))
        {
            w.fetch_add(1, Ordering::Relaxed);
        }
        if a.result().is_err() {
            return;
        }
        match a.take_msg() {
            Some(req) => {
                s.fetch_add(1, Ordering::Relaxed);
                a.set_msg(req);
                initiate(|| r.send_aio(a));
            }
            None => initiate(|| r.recv_aio(a)),
        }
    })
    .unwrap();
    initiate(|| rep.recv_aio(&aio));
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    for i in 0..200u32 {
        req.send(Message::from(&i.to_be_bytes()[..])).unwrap();
        assert_eq!(req.recv().unwrap().body(), i.to_be_bytes());
    }
    assert_eq!(served.load(Ordering::Relaxed), 200);
    assert_eq!(
        inside.load(Ordering::Relaxed),
        0,
        "a callback ran inside its starting call"
    );
    // Sends into a tcp pipe with room complete inside send_aio (a worker then runs that
    // callback); receives complete on the reactor. So at most half ran on workers.
    assert!(
        on_worker.load(Ordering::Relaxed) <= 201,
        "{} of ~400 callbacks hopped to a worker",
        on_worker.load(Ordering::Relaxed)
    );
    aio.stop();
}

#[cfg(debug_assertions)]
#[test]
fn a_direct_callback_that_blocks_is_caught_in_debug_builds() {
    let url = inproc("direct-blocks");
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    let p = pull.clone();
    let (tx, rx) = mpsc::channel();
    let aio = Aio::new_direct(move |_a: &Aio| {
        // Blocks on another receive: refused by the debug assertion when this runs on
        // the completing thread inside its engine scope.
        let blocked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.set_recv_timeout(Duration::from_millis(50)).unwrap();
            let _ = p.recv();
        }));
        let _ = tx.send(blocked.is_err());
    })
    .unwrap();
    pull.recv_aio(&aio);
    push.send("one").unwrap();
    let refused = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        refused,
        "a blocking receive inside a direct callback was allowed"
    );
}

#[test]
fn nngcat_requests_served_by_direct_callbacks() {
    if !nngcat_or_skip("nngcat_requests_served_by_direct_callbacks") {
        return;
    }
    let url = tcp();
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let r = rep.clone();
    let aio = Aio::new_direct(move |a: &Aio| {
        if a.result().is_err() {
            return;
        }
        match a.take_msg() {
            Some(mut req) => {
                req.clear();
                req.append(b"pong");
                a.set_msg(req);
                r.send_aio(a);
            }
            None => r.recv_aio(a),
        }
    })
    .unwrap();
    rep.recv_aio(&aio);
    let cat = NngCat::req_once(&url, "ping");
    let (ok, out, err) = cat.finish(Duration::from_secs(10));
    assert!(ok, "nngcat failed: {err}");
    assert_eq!(out.trim(), "\"pong\"");
    aio.stop();
}
