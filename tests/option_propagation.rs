//! Options set while a socket runs reach what already exists, as NNG's `nni_sock_setopt`
//! does: a socket option goes to every existing dialer and listener and their live pipes,
//! and to those made later; a dialer's or listener's own setter works while it runs.

mod common;

use std::time::Duration;

use common::{eventually, inproc, ipc, tcp};
use nanoport::{Error, Socket};

const LIMIT: Duration = Duration::from_secs(10);

/// A ws URL on a fresh port, with a path.
fn ws() -> String {
    format!("ws{}/opt", &tcp()["tcp".len()..])
}

/// A push dialed to a pull listening on `url`, with one message through so the pipe is
/// live on both sides.
fn connected(url: &str) -> (Socket, Socket, nanoport::Listener) {
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    let l = pull.listen(url).unwrap();
    let push = Socket::push0().unwrap();
    push.set_send_timeout(LIMIT).unwrap();
    push.dial(url).unwrap();
    push.send("warm").unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"warm");
    (pull, push, l)
}

/// Sends a 5,000-byte message and says whether the receiver's pipe refused it (counted
/// as a frame too large, the connection dropped) rather than delivering it; whichever
/// happens first decides.
fn oversized_is_refused(pull: &Socket, push: &Socket) -> bool {
    let before = pull.stats().frames_too_large;
    push.send(vec![7u8; 5000]).unwrap();
    eventually(LIMIT, || {
        if pull.stats().frames_too_large > before {
            return Some(true);
        }
        match pull.try_recv() {
            Ok(m) => {
                assert_eq!(m.len(), 5000);
                Some(false)
            }
            Err(Error::Again) => None,
            Err(e) => panic!("unexpected receive error {e}"),
        }
    })
    .expect("the message neither arrived nor was refused")
}

#[test]
fn a_socket_receive_limit_reaches_live_pipes_and_later_connections() {
    for url in [tcp(), ipc("optprop"), ws()] {
        let (pull, push, _l) = connected(&url);
        pull.set_recv_max_size(4096).unwrap();
        assert!(
            oversized_is_refused(&pull, &push),
            "{url}: the live pipe took a 5,000-byte frame after the limit was set to 4096"
        );
        // The dialer reconnects; the new connection has the limit too.
        eventually(LIMIT, || (pull.pipe_count() == 1).then_some(())).expect("redialed");
        push.send("small").unwrap();
        assert_eq!(pull.recv().unwrap().body(), b"small");
        assert!(
            oversized_is_refused(&pull, &push),
            "{url}: a new connection ignored the socket's limit"
        );
    }
}

#[test]
fn a_running_listener_takes_a_new_receive_limit_for_its_pipes() {
    for url in [tcp(), ipc("optprop-l"), ws()] {
        let (pull, push, l) = connected(&url);
        l.set_recv_max_size(4096).unwrap();
        assert_eq!(l.recv_max_size(), 4096);
        assert!(
            oversized_is_refused(&pull, &push),
            "{url}: the listener's live pipe ignored its new limit"
        );
    }
}

#[test]
fn socket_options_reach_existing_dialers_on_every_transport() {
    for url in [inproc("optprop-d"), ipc("optprop-d"), tcp()] {
        let pull = Socket::pull0().unwrap();
        let _l = pull.listen(&url).unwrap();
        let push = Socket::push0().unwrap();
        let d = push.dial(&url).unwrap();
        push.set_reconnect_min_time(Duration::from_millis(250))
            .unwrap();
        push.set_reconnect_max_time(Duration::from_secs(3)).unwrap();
        push.set_recv_max_size(12_345).unwrap();
        assert_eq!(
            d.reconnect_times(),
            (Duration::from_millis(250), Duration::from_secs(3)),
            "{url}"
        );
        assert_eq!(d.recv_max_size(), 12_345, "{url}");
        // And a dialer made afterwards starts from them.
        let d2 = push.dialer(&url).unwrap();
        assert_eq!(d2.recv_max_size(), 12_345, "{url}");
    }
}

#[test]
fn tcp_no_delay_and_keep_alive_reach_live_pipes() {
    let url = tcp();
    let (pull, push, _l) = connected(&url);
    push.send("probe").unwrap();
    let pipe = pull
        .recv()
        .unwrap()
        .pipe()
        .expect("a received message knows its pipe");
    assert_eq!(pipe.option("tcp-nodelay").unwrap(), "true");
    assert_eq!(pipe.option("tcp-keepalive").unwrap(), "false");
    pull.set_tcp_nodelay(false).unwrap();
    pull.set_tcp_keepalive(true).unwrap();
    assert_eq!(pipe.option("tcp-nodelay").unwrap(), "false");
    assert_eq!(pipe.option("tcp-keepalive").unwrap(), "true");
    pull.set_recv_max_size(777).unwrap();
    assert_eq!(pipe.option("recv-size-max").unwrap(), "777");
}
