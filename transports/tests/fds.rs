//! Close semantics and fd accounting. Tests here are serialised (fd counts are per
//! process).

mod common;
use common::*;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use nanoport_engine::{Error, Message};
use nanoport_transports::handshake::encode_header;
use nanoport_transports::{
    BoxPipe, EndpointOptions, Stream, StreamDialer, StreamListener, TransportDialer,
    TransportListener, Url,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn short_opts() -> EndpointOptions {
    EndpointOptions {
        handshake_timeout: Duration::from_millis(200),
        recv_max: 1000,
        ..Default::default()
    }
}

fn tcp_listener() -> (TransportListener, u16) {
    let l = TransportListener::bind(
        &Url::parse("tcp://127.0.0.1:0").unwrap(),
        PULL,
        short_opts(),
    )
    .unwrap();
    let p = l.port().unwrap();
    (l, p)
}

fn expect_dropped(port: u16, bytes: &[u8]) {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn good_peer_works(l: &TransportListener, port: u16) {
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        short_opts(),
    )
    .unwrap();
    let a = waitable();
    l.accept_aio(&a);
    let p = dial(&d).expect("good dial");
    a.wait();
    let lp = a.take_output::<BoxPipe>().expect("good accept");
    send(&p, Message::from("ok")).unwrap();
    assert_eq!(recv(&lp).unwrap().body(), b"ok");
}

#[test]
fn a_thousand_bad_connections_leak_no_fds() {
    let _g = serial();
    let (l, port) = tcp_listener();
    let a = waitable();
    l.accept_aio(&a);
    // Warm up the engine (reactor, workers) before the baseline.
    expect_dropped(port, b"garbage!");
    let base = fd_count();
    let h = encode_header(PUSH);
    for i in 0..1000 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        match i % 4 {
            0 => {
                let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n");
            }
            1 => {
                let _ = s.write_all(&h[..i % 8]);
            }
            2 => {
                let _ = s.write_all(&[0, b'S', b'P', 9, 0, 0x50, 0, 0]);
            }
            _ => {} // connect and leave
        }
    }
    assert!(
        eventually(Duration::from_secs(10), || fd_count() <= base
            && l.handshaking() == 0),
        "fds {} > baseline {base}, {} handshaking",
        fd_count(),
        l.handshaking()
    );
    a.cancel();
    a.wait();
    good_peer_works(&l, port);
}

fn settle(base: usize) {
    assert!(
        eventually(Duration::from_secs(5), || fd_count() <= base),
        "fds {} > baseline {base}",
        fd_count()
    );
}

#[test]
fn close_completes_everything_in_flight_exactly_once_and_frees_fds() {
    let _g = serial();
    // Warm up.
    drop(connect("tcp://127.0.0.1:0", EndpointOptions::default()));
    for url in [
        "tcp://127.0.0.1:0".to_string(),
        ipc_path("close"),
        format!("inproc://{}", unique("close")),
    ] {
        let base = fd_count();
        let (d, l, listener) = connect(&url, EndpointOptions::default());
        // Pending receives on both sides, a pending accept.
        let r1 = waitable();
        let r2 = waitable();
        d.recv_aio(&r1);
        l.recv_aio(&r2);
        let acc = waitable();
        listener.accept_aio(&acc);
        assert!(r1.busy() && r2.busy() && acc.busy());
        listener.close();
        acc.wait();
        assert_eq!(acc.result(), Err(Error::Closed), "{url}");
        d.close();
        r1.wait();
        r2.wait();
        assert_eq!(r1.result(), Err(Error::Closed), "{url}");
        assert!(r2.result().is_err(), "{url}");
        // After close: operations fail at once with Closed; the message stays with the user.
        let s = waitable();
        s.set_msg(Message::from("late"));
        d.send_aio(&s);
        s.wait();
        assert_eq!(s.result(), Err(Error::Closed));
        assert_eq!(s.take_msg().unwrap().body(), b"late");
        l.close();
        drop((d, l, listener));
        settle(base);
        if let Some(path) = url.strip_prefix("ipc://") {
            assert!(!std::path::Path::new(path).exists(), "ipc path unlinked");
        }
    }
}

#[test]
fn closing_a_dialer_mid_handshake_completes_the_dial_with_closed() {
    let _g = serial();
    // A raw listener that accepts but never speaks.
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    let base = fd_count();
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    let a = waitable();
    d.dial_aio(&a);
    let (conn, _) = raw.accept().unwrap();
    assert!(a.busy());
    d.close();
    a.wait();
    assert_eq!(a.result(), Err(Error::Closed));
    drop(conn);
    // Dial after close fails at once.
    let b = waitable();
    d.dial_aio(&b);
    b.wait();
    assert_eq!(b.result(), Err(Error::Closed));
    drop(d);
    settle(base);
    // A dial timeout (the aio's own) and a cancel also complete once and free the fd.
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    let a = waitable();
    a.set_timeout(Duration::from_millis(50));
    d.dial_aio(&a);
    a.wait();
    assert_eq!(a.result(), Err(Error::TimedOut));
    let c = waitable();
    d.dial_aio(&c);
    c.cancel();
    c.wait();
    assert_eq!(c.result(), Err(Error::Canceled));
    drop(raw);
    drop(d);
    settle(base);
}

#[test]
fn dial_errors() {
    let _g = serial();
    // Nobody listening.
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    drop(raw);
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    assert_eq!(dial(&d).err(), Some(Error::ConnRefused));
    let d = TransportDialer::new(
        &Url::parse(&ipc_path("none")).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    assert_eq!(dial(&d).err(), Some(Error::ConnRefused));
    let d = TransportDialer::new(
        &Url::parse(&format!("inproc://{}", unique("none"))).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    assert_eq!(dial(&d).err(), Some(Error::ConnRefused));
    // A bad handshake from the listener side is Proto.
    let raw = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = raw.local_addr().unwrap().port();
    let d = TransportDialer::new(
        &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        PUSH,
        EndpointOptions::default(),
    )
    .unwrap();
    let a = waitable();
    d.dial_aio(&a);
    let (mut c, _) = raw.accept().unwrap();
    c.write_all(b"HTTP/1.1").unwrap();
    a.wait();
    assert_eq!(a.result(), Err(Error::Proto));
    // Address in use, for every transport.
    let (l, port) = tcp_listener();
    assert_eq!(
        TransportListener::bind(
            &Url::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
            PULL,
            short_opts()
        )
        .err(),
        Some(Error::AddrInUse)
    );
    drop(l);
    let ipc = ipc_path("inuse");
    let _l = TransportListener::bind(&Url::parse(&ipc).unwrap(), PULL, short_opts()).unwrap();
    assert_eq!(
        TransportListener::bind(&Url::parse(&ipc).unwrap(), PULL, short_opts()).err(),
        Some(Error::AddrInUse)
    );
    let inp = format!("inproc://{}", unique("inuse"));
    let l1 = TransportListener::bind(&Url::parse(&inp).unwrap(), PULL, short_opts()).unwrap();
    assert_eq!(
        TransportListener::bind(&Url::parse(&inp).unwrap(), PULL, short_opts()).err(),
        Some(Error::AddrInUse)
    );
    l1.close();
    assert!(TransportListener::bind(&Url::parse(&inp).unwrap(), PULL, short_opts()).is_ok());
    // A stale ipc socket file is replaced.
    let stale = ipc_path("stale");
    let path = stale.strip_prefix("ipc://").unwrap().to_string();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(std::path::Path::new(&path).exists());
    let l = TransportListener::bind(&Url::parse(&stale).unwrap(), PULL, short_opts()).unwrap();
    l.close();
    assert!(!std::path::Path::new(&path).exists());
}

#[test]
fn byte_streams_over_tcp_and_ipc() {
    let _g = serial();
    for url in ["tcp://127.0.0.1:0".to_string(), ipc_path("stream")] {
        let l =
            StreamListener::bind(&Url::parse(&url).unwrap(), EndpointOptions::default()).unwrap();
        let durl = match l.port() {
            Some(p) => format!("tcp://127.0.0.1:{p}"),
            None => url.clone(),
        };
        let d = StreamDialer::new(&Url::parse(&durl).unwrap(), EndpointOptions::default()).unwrap();
        let acc = waitable();
        l.accept_aio(&acc);
        let da = waitable();
        d.dial_aio(&da);
        da.wait();
        acc.wait();
        let a: Stream = da.take_output().expect("dialed stream");
        let b: Stream = acc.take_output().expect("accepted stream");
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut off = 0;
                let w = waitable();
                while off < data.len() {
                    w.set_msg(Message::from(&data[off..]));
                    a.send_aio(&w);
                    w.wait();
                    w.result().unwrap();
                    assert!(w.count() > 0);
                    off += w.count();
                }
            });
            let mut got = Vec::new();
            let r = waitable();
            while got.len() < data.len() {
                b.recv_aio(&r, 65536);
                r.wait();
                r.result().unwrap();
                let m = r.take_msg().unwrap();
                assert_eq!(r.count(), m.len());
                got.extend_from_slice(m.body());
            }
            assert_eq!(got, data);
        });
        let r = waitable();
        b.recv_aio(&r, 10);
        a.close();
        r.wait();
        assert_eq!(r.result(), Err(Error::ConnShut));
        b.close();
        let r = waitable();
        b.recv_aio(&r, 10);
        r.wait();
        assert_eq!(r.result(), Err(Error::Closed));
        assert!(StreamListener::bind(
            &Url::parse("inproc://x").unwrap(),
            EndpointOptions::default()
        )
        .is_err());
    }
}
