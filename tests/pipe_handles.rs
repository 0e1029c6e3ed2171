//! A pipe knows its socket, its dialer or listener and its addresses
//! (`nng_pipe_socket`, `nng_pipe_dialer`, `nng_pipe_listener`, `nng_pipe_get_addr`),
//! from a `pipe_notify` callback and from a received message alike.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{inproc, ipc, nngcat_or_skip, tcp, NngCat};
use nanoport::{opt, Error, OptValue, Pipe, PipeEvent, PipeExt, SockAddr, Socket};

/// One message from `push` to `pull` over `url`; returns the pull side's pipe and the
/// push side's (from its AddPost callback).
fn connected_pair(url: &str) -> (Socket, Socket, Pipe, Pipe) {
    let pull = Socket::pull0().unwrap();
    let l = pull.listen(url).unwrap();
    let url = match l.port() {
        Some(p) if url.starts_with("tcp") => format!("tcp://127.0.0.1:{p}"),
        _ => url.to_string(),
    };
    let push = Socket::push0().unwrap();
    let (tx, rx) = mpsc::channel();
    push.pipe_notify(PipeEvent::AddPost, move |p, _| {
        let _ = tx.send(p);
    });
    push.dial(&url).unwrap();
    push.send("x").unwrap();
    let m = pull.recv().unwrap();
    let push_pipe = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    (push, pull, push_pipe, m.pipe().unwrap())
}

#[test]
fn a_pipe_names_its_socket_and_the_endpoint_that_made_it() {
    for url in [inproc("pipe-handles"), ipc("pipe-handles"), tcp()] {
        let (push, pull, dialed, accepted) = connected_pair(&url);
        assert_eq!(dialed.socket().unwrap().id(), push.id(), "{url}");
        assert_eq!(accepted.socket().unwrap().id(), pull.id(), "{url}");
        let d = dialed.dialer().expect("a dialed pipe has its dialer");
        assert!(dialed.listener().is_none(), "{url}");
        assert!(
            d.url().starts_with(url.split("://").next().unwrap()),
            "{url}"
        );
        let l = accepted
            .listener()
            .expect("an accepted pipe has its listener");
        assert!(accepted.dialer().is_none(), "{url}");
        assert_eq!(
            l.url(),
            url,
            "the pipe's listener is the one listening on {url}"
        );
        // Closing the pipe through the handle its socket gave back.
        accepted.close();
        assert!(
            common::eventually(Duration::from_secs(5), || {
                (pull.pipe_count() == 0 && accepted.socket().is_err()).then_some(())
            })
            .is_some(),
            "{url}: the closed pipe left its socket"
        );
        assert_eq!(accepted.socket().err(), Some(Error::Closed), "{url}");
        assert!(accepted.listener().is_none(), "{url}");
    }
}

#[test]
fn addresses_are_values_of_the_transport_s_family() {
    let (_a, _b, dialed, accepted) = connected_pair(&tcp());
    let (SockAddr::Inet(local), SockAddr::Inet(remote)) = (
        dialed.local_addr().unwrap(),
        accepted.remote_addr().unwrap(),
    ) else {
        panic!("tcp pipes have inet addresses");
    };
    assert_eq!(
        local, remote,
        "the dialer's local address is what the listener sees"
    );
    assert_eq!(
        accepted.get_option("remote-address"),
        Ok(OptValue::Str(format!("tcp://{remote}")))
    );
    assert_eq!(
        accepted.get_option(opt::TCP_NODELAY),
        Ok(OptValue::Bool(true))
    );
    assert_eq!(accepted.get_option(opt::PEER), Ok(OptValue::Int(0x50)));
    assert_eq!(accepted.get_option("no-such-option"), Err(Error::NotSup));

    let path = ipc("pipe-addr");
    let (_a, _b, _dialed, accepted) = connected_pair(&path);
    assert_eq!(
        accepted.remote_addr(),
        Ok(SockAddr::Ipc(path.trim_start_matches("ipc://").into()))
    );
    assert!(
        matches!(accepted.get_option("ipc:peer-pid"), Ok(OptValue::Int(p)) if p as u32 == std::process::id())
    );

    let name = inproc("pipe-addr");
    let (_a, _b, dialed, _accepted) = connected_pair(&name);
    assert_eq!(
        dialed.remote_addr(),
        Ok(SockAddr::Inproc(
            name.trim_start_matches("inproc://").into()
        ))
    );
}

#[test]
fn an_add_pre_callback_sees_the_socket_already() {
    let rep = Socket::rep0().unwrap();
    let url = inproc("pipe-addpre");
    rep.listen(&url).unwrap();
    let (tx, rx) = mpsc::channel();
    rep.pipe_notify(PipeEvent::AddPre, move |p, _| {
        let _ = tx.send((p.socket().map(|s| s.id()), p.listener().is_some()));
    });
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    let (sock, has_listener) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(sock, Ok(rep.id()));
    assert!(has_listener);
}

#[test]
fn a_libnng_peer_s_pipe_has_our_listener_and_its_loopback_address() {
    if !nngcat_or_skip("a_libnng_peer_s_pipe_has_our_listener_and_its_loopback_address") {
        return;
    }
    let rep = Socket::rep0().unwrap();
    let url = tcp();
    let l = rep.listen(&url).unwrap();
    let cat = NngCat::req_once(&url, "ping");
    let q = rep.recv().unwrap();
    let pipe = q.pipe().unwrap();
    assert_eq!(pipe.listener().map(|x| x.url()), Some(l.url()));
    assert!(matches!(pipe.remote_addr(), Ok(SockAddr::Inet(a)) if a.ip().is_loopback()));
    rep.send(q).unwrap();
    let (ok, out, err) = cat.finish(Duration::from_secs(10));
    assert!(ok, "nngcat failed: {out} {err}");
}
