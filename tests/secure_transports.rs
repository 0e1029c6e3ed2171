//! tls+tcp, ws and wss between nanoport sockets: messages both ways, the TLS
//! configuration and its checks, ws paths sharing a port.
#![cfg(all(feature = "tls", feature = "ws"))]

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::time::Duration;

use common::{tls_tcp, ws, wss};
use nanoport::{Error, Socket, TlsAuthMode, TlsConfig};
use pki::Pki;

const LIMIT: Duration = Duration::from_secs(10);

fn server_cfg(p: &Pki) -> TlsConfig {
    TlsConfig::server()
        .cert_key_pem(&p.server.cert, &p.server.key)
        .unwrap()
}

fn client_cfg(p: &Pki) -> TlsConfig {
    TlsConfig::client().ca_pem(&p.ca).unwrap()
}

/// A rep listening on `url` (TLS configured when the URL needs it) and a req dialing it.
fn req_rep(url: &str, p: &Pki) -> (Socket, Socket) {
    let rep = Socket::rep0().unwrap();
    let l = rep.listener(url).unwrap();
    if !url.starts_with("ws:") {
        l.set_tls(&server_cfg(p)).unwrap();
    }
    l.start().unwrap();
    let req = Socket::req0().unwrap();
    let d = req.dialer(url).unwrap();
    if !url.starts_with("ws:") {
        d.set_tls(&client_cfg(p)).unwrap();
    }
    d.start(false).unwrap();
    for s in [&req, &rep] {
        s.set_recv_timeout(LIMIT).unwrap();
        s.set_send_timeout(LIMIT).unwrap();
    }
    (req, rep)
}

#[test]
fn req_rep_over_each_transport_with_small_and_large_messages() {
    let p = Pki::new();
    for url in [tls_tcp(), ws("/rr"), wss("/rr")] {
        let (req, rep) = req_rep(&url, &p);
        for size in [0usize, 1, 100, 70_000, 1 << 20] {
            let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            req.send(body.as_slice()).unwrap();
            let q = rep.recv().unwrap();
            assert_eq!(q.body(), body.as_slice(), "{url} {size}");
            rep.send(q).unwrap();
            assert_eq!(req.recv().unwrap().body(), body.as_slice(), "{url} {size}");
        }
    }
}

#[test]
fn tls_pipes_report_the_peer() {
    let p = Pki::new();
    let url = tls_tcp();
    let (req, rep) = req_rep(&url, &p);
    req.send("x").unwrap();
    let m = rep.recv().unwrap();
    // The server asked for no client certificate.
    let pipe = m.pipe().unwrap();
    assert_eq!(pipe.option("tls-verified").unwrap(), "false");
    rep.send(m).unwrap();
    let a = req.recv().unwrap();
    let pipe = a.pipe().unwrap();
    assert_eq!(pipe.option("tls-verified").unwrap(), "true");
    assert_eq!(pipe.option("tls-peer-cn").unwrap(), "nanoport server");
}

#[test]
fn a_client_refuses_an_unknown_ca_and_a_wrong_name() {
    let p = Pki::new();
    for url in [tls_tcp(), wss("/x")] {
        let rep = Socket::rep0().unwrap();
        let l = rep.listener(&url).unwrap();
        l.set_tls(&server_cfg(&p)).unwrap();
        l.start().unwrap();
        // Signed by a CA we do not trust.
        let req = Socket::req0().unwrap();
        let d = req.dialer(&url).unwrap();
        d.set_tls(&TlsConfig::client().ca_pem(&p.other_ca).unwrap())
            .unwrap();
        assert_eq!(d.start(false), Err(Error::PeerAuth), "{url}");
        // The right CA, the wrong name.
        let d = req.dialer(&url).unwrap();
        d.set_tls(&client_cfg(&p).server_name("elsewhere.example"))
            .unwrap();
        assert_eq!(d.start(false), Err(Error::PeerAuth), "{url}");
        // Insecure: accepted, and reported as not verified.
        let d = req.dialer(&url).unwrap();
        d.set_tls(&TlsConfig::client().auth_mode(TlsAuthMode::None))
            .unwrap();
        d.start(false).unwrap();
        req.set_recv_timeout(LIMIT).unwrap();
        rep.set_recv_timeout(LIMIT).unwrap();
        req.send("hi").unwrap();
        let m = rep.recv().unwrap();
        rep.send(m).unwrap();
        let a = req.recv().unwrap();
        assert_eq!(a.pipe().unwrap().option("tls-verified").unwrap(), "false");
    }
}

#[test]
fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let p = Pki::new();
    let url = tls_tcp();
    let rep = Socket::rep0().unwrap();
    let l = rep.listener(&url).unwrap();
    l.set_tls(
        &server_cfg(&p)
            .ca_pem(&p.ca)
            .unwrap()
            .auth_mode(TlsAuthMode::Required),
    )
    .unwrap();
    l.start().unwrap();
    let req = Socket::req0().unwrap();
    // No certificate: refused, no pipe.
    let d = req.dialer(&url).unwrap();
    d.set_tls(&client_cfg(&p)).unwrap();
    assert_eq!(d.start(false), Err(Error::PeerAuth));
    // A certificate from another CA: refused.
    let d = req.dialer(&url).unwrap();
    d.set_tls(
        &client_cfg(&p)
            .cert_key_pem(&p.stranger.cert, &p.stranger.key)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d.start(false), Err(Error::PeerAuth));
    assert_eq!(l.stats().accepted, 0);
    // Signed by the CA: accepted, and the server sees who it is.
    let d = req.dialer(&url).unwrap();
    d.set_tls(
        &client_cfg(&p)
            .cert_key_pem(&p.client.cert, &p.client.key)
            .unwrap(),
    )
    .unwrap();
    d.start(false).unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();
    req.send("me").unwrap();
    let m = rep.recv().unwrap();
    let pipe = m.pipe().unwrap();
    assert_eq!(pipe.option("tls-verified").unwrap(), "true");
    assert_eq!(pipe.option("tls-peer-cn").unwrap(), "nanoport client");
}

#[test]
fn tls_options_by_name_and_settable_only_before_start() {
    let p = Pki::new();
    let url = tls_tcp();
    let rep = Socket::rep0().unwrap();
    let l = rep.listener(&url).unwrap();
    // One file holding the chain and the key, as NNG's tls-cert-key-file.
    let both = p.dir.join("server-both.pem");
    std::fs::write(&both, format!("{}{}", p.server.cert, p.server.key)).unwrap();
    l.set_option_string("tls-cert-key-file", both.to_str().unwrap())
        .unwrap();
    l.start().unwrap();
    assert_eq!(l.set_tls(&server_cfg(&p)), Err(Error::Busy));
    let req = Socket::req0().unwrap();
    let d = req.dialer(&url).unwrap();
    d.set_option_string("tls-ca-file", &p.ca_file).unwrap();
    d.set_option_string("tls-server-name", "localhost").unwrap();
    d.set_option_string("tls-auth-mode", "required").unwrap();
    assert_eq!(
        d.set_option_string("tls-auth-mode", "sometimes"),
        Err(Error::Inval)
    );
    assert_eq!(d.set_option_string("tls-nonsense", "x"), Err(Error::NotSup));
    assert_eq!(d.set_tls(&server_cfg(&p)), Err(Error::Inval));
    d.start(false).unwrap();
    assert_eq!(d.set_tls(&client_cfg(&p)), Err(Error::Busy));
    // A tls listener without a configuration cannot start.
    let l2 = rep.listener(&tls_tcp()).unwrap();
    assert_eq!(l2.start(), Err(Error::Inval));
}

#[test]
fn ws_paths_share_one_port_and_port_zero_reports_the_bound_port() {
    let a = Socket::pull0().unwrap();
    let la = a.listen("ws://127.0.0.1:0/a").unwrap();
    let port = la.port().unwrap();
    assert_ne!(port, 0);
    let b = Socket::pull0().unwrap();
    b.listen(&format!("ws://127.0.0.1:{port}/b")).unwrap();
    // The same path twice is taken.
    let c = Socket::pull0().unwrap();
    assert_eq!(
        c.listen(&format!("ws://127.0.0.1:{port}/a")).err(),
        Some(Error::AddrInUse)
    );
    for s in [&a, &b] {
        s.set_recv_timeout(LIMIT).unwrap();
    }
    let pa = Socket::push0().unwrap();
    pa.dial(&format!("ws://127.0.0.1:{port}/a")).unwrap();
    let pb = Socket::push0().unwrap();
    pb.dial(&format!("ws://127.0.0.1:{port}/b")).unwrap();
    pa.send("to a").unwrap();
    pb.send("to b").unwrap();
    assert_eq!(a.recv().unwrap().body(), b"to a");
    assert_eq!(b.recv().unwrap().body(), b"to b");
    // A path nobody listens on: refused.
    let pc = Socket::push0().unwrap();
    assert_eq!(
        pc.dial(&format!("ws://127.0.0.1:{port}/c")).err(),
        Some(Error::ConnRefused)
    );
    // A protocol the listener does not speak: refused (req dialing a pull).
    let r = Socket::req0().unwrap();
    assert_eq!(
        r.dial(&format!("ws://127.0.0.1:{port}/a")).err(),
        Some(Error::ConnRefused)
    );
}

/// `listener` on `url`, `dialer` dialing it, TLS configured where the URL needs it.
fn connect(url: &str, p: &Pki, listener: &Socket, dialer: &Socket) {
    let l = listener.listener(url).unwrap();
    if !url.starts_with("ws:") {
        l.set_tls(&server_cfg(p)).unwrap();
    }
    l.start().unwrap();
    let d = dialer.dialer(url).unwrap();
    if !url.starts_with("ws:") {
        d.set_tls(&client_cfg(p)).unwrap();
    }
    d.start(false).unwrap();
}

fn numbered(i: u32) -> Vec<u8> {
    let mut v = i.to_be_bytes().to_vec();
    v.resize(4 + (i as usize * 7919) % 3000, (i % 251) as u8);
    v
}

/// A long stream of varied sizes arrives whole and in order (the sender batches small
/// messages in the core and writes them from a flush op while it keeps encoding).
#[test]
fn streams_keep_order_over_each_transport() {
    let p = Pki::new();
    for url in [tls_tcp(), ws("/stream"), wss("/stream")] {
        let pull = Socket::pull0().unwrap();
        let push = Socket::push0().unwrap();
        pull.set_recv_timeout(LIMIT).unwrap();
        push.set_send_timeout(LIMIT).unwrap();
        connect(&url, &p, &pull, &push);
        let n = 20_000u32;
        let sender = std::thread::spawn(move || {
            for i in 0..n {
                push.send(numbered(i).as_slice()).unwrap();
            }
            push
        });
        for i in 0..n {
            let m = pull.recv().unwrap();
            assert_eq!(m.body(), numbered(i).as_slice(), "{url}: message {i}");
        }
        drop(sender.join().unwrap());
    }
}

/// Both sides of a pair1 send and receive at once: sends that answer (written at once)
/// and sends that stream (written by the flush op) never interleave their bytes.
#[test]
fn both_directions_at_once() {
    let p = Pki::new();
    for url in [tls_tcp(), ws("/both"), wss("/both")] {
        let a = Socket::pair1().unwrap();
        let b = Socket::pair1().unwrap();
        for s in [&a, &b] {
            s.set_recv_timeout(LIMIT).unwrap();
            s.set_send_timeout(LIMIT).unwrap();
        }
        connect(&url, &p, &a, &b);
        let n = 5_000u32;
        let run = |s: Socket| {
            std::thread::spawn(move || {
                let tx = {
                    let s = s.clone();
                    std::thread::spawn(move || {
                        for i in 0..n {
                            s.send(numbered(i).as_slice()).unwrap();
                        }
                    })
                };
                for i in 0..n {
                    assert_eq!(s.recv().unwrap().body(), numbered(i).as_slice(), "{i}");
                }
                tx.join().unwrap();
            })
        };
        let (ta, tb) = (run(a), run(b));
        ta.join().unwrap();
        tb.join().unwrap();
    }
}
