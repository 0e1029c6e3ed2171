//! tls+tcp, ws and wss against libnng's own tool, nngcat (Debian's nng-utils, NNG 1.5.2
//! built with mbedTLS), in both directions, with certificates generated at test time.
#![cfg(all(feature = "tls", feature = "ws"))]

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::time::Duration;

use common::{nngcat_or_skip, tls_tcp, ws, wss, NngCat};
use nanoport::{Error, Socket, TlsAuthMode, TlsConfig};
use pki::Pki;

const LIMIT: Duration = Duration::from_secs(10);

fn needs_tls(url: &str) -> bool {
    url.starts_with("tls+") || url.starts_with("wss")
}

/// nngcat arguments: `base`, then the server's certificate when it listens on a TLS URL,
/// or our CA when it dials one.
fn cat_args<'a>(base: &[&'a str], url: &'a str, listen: bool, p: &'a Pki) -> Vec<&'a str> {
    let mut v: Vec<&str> = base.to_vec();
    v.extend([if listen { "--listen" } else { "--dial" }, url]);
    if needs_tls(url) {
        if listen {
            v.extend(["--cert", &p.server.cert_file, "--key", &p.server.key_file]);
        } else {
            v.extend(["--cacert", &p.ca_file]);
        }
    }
    v
}

fn our_listen(s: &Socket, url: &str, p: &Pki) {
    let l = s.listener(url).unwrap();
    if needs_tls(url) {
        l.set_tls(
            &TlsConfig::server()
                .cert_key_pem(&p.server.cert, &p.server.key)
                .unwrap(),
        )
        .unwrap();
    }
    l.start().unwrap();
}

fn our_dial(s: &Socket, url: &str, p: &Pki) {
    let d = s.dialer(url).unwrap();
    if needs_tls(url) {
        d.set_tls(&TlsConfig::client().ca_pem(&p.ca).unwrap())
            .unwrap();
    }
    d.start(true).unwrap();
}

type Mk = fn() -> String;

/// How many nngcat exchanges ran (each protocol pair, transport and direction is one).
static CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn case_done() {
    CASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn req_rep(mk: Mk, p: &Pki) {
    // We dial nngcat's rep.
    let url = mk();
    let args = cat_args(&["--rep0", "--data", "pong", "--count", "1"], &url, true, p);
    let cat = NngCat::spawn(&args);
    let req = Socket::req0().unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    our_dial(&req, &url, p);
    req.send("ping").unwrap();
    assert_eq!(req.recv().unwrap().body(), b"pong", "{url}");
    drop(req);
    let (ok, _, err) = cat.finish(LIMIT);
    assert!(ok, "{url}: nngcat failed: {err}");
    case_done();
    // nngcat's req dials our rep.
    let url = mk();
    let rep = Socket::rep0().unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();
    our_listen(&rep, &url, p);
    let base = [
        "--req0",
        "--data",
        "ping",
        "--interval",
        "2",
        "--count",
        "1",
        "-Q",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    let q = rep.recv().unwrap();
    assert_eq!(q.body(), b"ping", "{url}");
    rep.send("pong").unwrap();
    let (ok, out, err) = cat.finish(LIMIT);
    assert!(ok, "{url}: nngcat failed: {err}");
    assert_eq!(out, "\"pong\"\n", "{url}");
    case_done();
}

fn pub_sub(mk: Mk, p: &Pki) {
    // Our pub listens, nngcat's sub dials with a subscription.
    let url = mk();
    let publ = Socket::pub0().unwrap();
    our_listen(&publ, &url, p);
    let base = ["--sub0", "--subscribe", "news", "--count", "1", "-Q"];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    let _ = publ.try_send("sport: nothing");
    let (ok, out, err) = cat.finish_while_sending(&publ, "news: hello", LIMIT);
    assert!(ok, "{url}: {err}");
    assert_eq!(out, "\"news: hello\"\n", "{url}");
    case_done();
    // nngcat's pub listens, our sub dials.
    let url = mk();
    let base = [
        "--pub0",
        "--data",
        "tick",
        "--interval",
        "1",
        "--count",
        "10",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, true, p));
    let sub = Socket::sub0().unwrap();
    sub.subscribe(b"").unwrap();
    sub.set_recv_timeout(LIMIT).unwrap();
    our_dial(&sub, &url, p);
    match sub.recv() {
        Ok(m) => assert_eq!(m.body(), b"tick", "{url}"),
        Err(e) => {
            let (ok, out, err) = cat.finish(LIMIT);
            panic!(
                "{url}: nothing published ({e}); nngcat exited ok={ok}, out {out:?}, err {err:?}"
            );
        }
    }
    drop(cat);
    case_done();
}

fn push_pull(mk: Mk, p: &Pki) {
    let url = mk();
    let base = ["--pull0", "--count", "3", "-Q"];
    let cat = NngCat::spawn(&cat_args(&base, &url, true, p));
    let push = Socket::push0().unwrap();
    push.set_send_timeout(LIMIT).unwrap();
    our_dial(&push, &url, p);
    for m in ["one", "two", "three"] {
        push.send(m).unwrap();
    }
    let (ok, out, err) = cat.finish(LIMIT);
    assert!(ok, "{url}: {err}");
    assert_eq!(out, "\"one\"\n\"two\"\n\"three\"\n", "{url}");
    case_done();
    let url = mk();
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    our_listen(&pull, &url, p);
    // An interval: without one nngcat 1.5.2 sets a negative receive timeout once a
    // millisecond has passed (a TLS handshake takes more) and gives up.
    let base = [
        "--push0",
        "--data",
        "work",
        "--interval",
        "1",
        "--count",
        "2",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    assert_eq!(pull.recv().unwrap().body(), b"work", "{url}");
    assert_eq!(pull.recv().unwrap().body(), b"work", "{url}");
    let (ok, _, err) = cat.finish(LIMIT);
    assert!(ok, "{url}: {err}");
    case_done();
}

fn pair(flag: &str, open: fn() -> nanoport::Result<Socket>, mk: Mk, p: &Pki) {
    let url = mk();
    let cat = NngCat::spawn(&cat_args(&[flag, "--count", "1", "-Q"], &url, true, p));
    let s = open().unwrap();
    s.set_send_timeout(LIMIT).unwrap();
    our_dial(&s, &url, p);
    s.send("hi there").unwrap();
    let (ok, out, err) = cat.finish(LIMIT);
    assert!(ok, "{flag} {url}: {err}");
    assert_eq!(out, "\"hi there\"\n", "{flag} {url}");
    case_done();
    let url = mk();
    let s = open().unwrap();
    s.set_recv_timeout(LIMIT).unwrap();
    our_listen(&s, &url, p);
    let base = [
        flag,
        "--data",
        "from nng",
        "--interval",
        "1",
        "--count",
        "1",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    let m = s.recv().unwrap_or_else(|e| panic!("{flag} {url}: {e}"));
    assert_eq!(m.body(), b"from nng", "{flag} {url}");
    drop(cat);
    case_done();
}

fn survey(mk: Mk, p: &Pki) {
    // Our surveyor listens; nngcat answers every survey with "yes".
    let url = mk();
    let surv = Socket::surveyor0().unwrap();
    surv.set_survey_time(Duration::from_millis(500)).unwrap();
    our_listen(&surv, &url, p);
    let base = ["--respondent0", "--data", "yes"];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    let got = common::eventually(LIMIT, || {
        surv.send("anyone?").ok()?;
        surv.recv().ok()
    });
    assert_eq!(got.expect("a response").body(), b"yes", "{url}");
    drop(cat);
    case_done();
    // nngcat surveys; our respondent answers.
    let url = mk();
    let base = [
        "--surveyor0",
        "--data",
        "q",
        "--interval",
        "1",
        "--count",
        "5",
        "-Q",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, true, p));
    let resp = Socket::respondent0().unwrap();
    resp.set_recv_timeout(LIMIT).unwrap();
    our_dial(&resp, &url, p);
    let q = match resp.recv() {
        Ok(q) => q,
        Err(e) => {
            let (ok, out, err) = cat.finish(LIMIT);
            panic!("{url}: no survey ({e}); nngcat exited ok={ok}, out {out:?}, err {err:?}");
        }
    };
    assert_eq!(q.body(), b"q", "{url}");
    resp.send("a").unwrap();
    let (_, out, _) = cat.finish(Duration::from_secs(8));
    assert!(
        out.lines().any(|l| l == "\"a\""),
        "{url}: nngcat printed {out:?}"
    );
    case_done();
}

fn bus(mk: Mk, p: &Pki) {
    let url = mk();
    let cat = NngCat::spawn(&cat_args(&["--bus0", "--count", "1", "-Q"], &url, true, p));
    let b = Socket::bus0().unwrap();
    our_dial(&b, &url, p);
    let (ok, out, err) = cat.finish_while_sending(&b, "to all", LIMIT);
    assert!(ok, "{url}: {err}");
    assert_eq!(out, "\"to all\"\n", "{url}");
    case_done();
    let url = mk();
    let b = Socket::bus0().unwrap();
    b.set_recv_timeout(LIMIT).unwrap();
    our_listen(&b, &url, p);
    let base = [
        "--bus0",
        "--data",
        "from nng",
        "--interval",
        "1",
        "--count",
        "5",
    ];
    let cat = NngCat::spawn(&cat_args(&base, &url, false, p));
    assert_eq!(b.recv().unwrap().body(), b"from nng", "{url}");
    drop(cat);
    case_done();
}

fn ws_any() -> String {
    ws("/sp")
}

fn wss_any() -> String {
    wss("/sp/deeper")
}

/// Every protocol pair over ws, both directions; and over tls+tcp and wss the four
/// pairs the issue names (req/rep, pub/sub, push/pull, pair1), both directions.
#[test]
fn every_protocol_over_ws_and_four_over_tls_and_wss() {
    if !nngcat_or_skip("every_protocol_over_ws_and_four_over_tls_and_wss") {
        return;
    }
    let p = Pki::new();
    let ws_only: Mk = ws_any;
    for mk in [ws_only, tls_tcp as Mk, wss_any as Mk] {
        req_rep(mk, &p);
        pub_sub(mk, &p);
        push_pull(mk, &p);
        pair("--pair1", Socket::pair1, mk, &p);
    }
    pair("--pair0", Socket::pair0, ws_only, &p);
    survey(ws_only, &p);
    bus(ws_only, &p);
    let n = CASES.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("interop cases against nngcat: {n}");
    assert_eq!(n, 30);
}

/// nngcat's server requires a client certificate (it is given our CA); nngcat's client
/// shows one, or not, to ours.
#[test]
fn mutual_tls_with_nngcat() {
    if !nngcat_or_skip("mutual_tls_with_nngcat") {
        return;
    }
    let p = Pki::new();
    // Our rep requires a certificate signed by our CA; nngcat's req without one fails
    // (it never gets an answer), with one it is served.
    let url = tls_tcp();
    let rep = Socket::rep0().unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();
    let l = rep.listener(&url).unwrap();
    l.set_tls(
        &TlsConfig::server()
            .cert_key_pem(&p.server.cert, &p.server.key)
            .unwrap()
            .ca_pem(&p.ca)
            .unwrap()
            .auth_mode(TlsAuthMode::Required),
    )
    .unwrap();
    l.start().unwrap();
    let base = [
        "--req0",
        "--data",
        "ping",
        "--interval",
        "1",
        "--count",
        "1",
        "-Q",
    ];
    let mut args = cat_args(&base, &url, false, &p);
    let cat = NngCat::spawn(&args);
    let (ok, out, _) = cat.finish(LIMIT);
    assert!(out.is_empty(), "served without a certificate: {ok} {out:?}");
    assert!(
        l.stats().handshake_proto >= 1,
        "refusal counted: {:?}",
        l.stats()
    );
    assert_eq!(l.stats().accepted, 0);
    args.extend(["--cert", &p.client.cert_file, "--key", &p.client.key_file]);
    let cat = NngCat::spawn(&args);
    let q = rep.recv().unwrap();
    assert_eq!(
        q.pipe().unwrap().option("tls-peer-cn").unwrap(),
        "nanoport client"
    );
    rep.send("pong").unwrap();
    let (ok, out, err) = cat.finish(LIMIT);
    assert!(ok, "{err}");
    assert_eq!(out, "\"pong\"\n");

    // Our client refuses nngcat's server when it trusts another CA, or expects another
    // name; it is served when it trusts the right CA.
    let url = tls_tcp();
    let base = ["--rep0", "--data", "pong"];
    let _cat = NngCat::spawn(&cat_args(&base, &url, true, &p));
    let req = Socket::req0().unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    let attempt = |cfg: TlsConfig| {
        // nngcat may still be starting: retry a refused connect only.
        let r = common::eventually(LIMIT, || {
            match req.dialer(&url).and_then(|d| {
                d.set_tls(&cfg)?;
                d.start(false)
            }) {
                Err(Error::ConnRefused) => None,
                r => Some(r),
            }
        });
        r.unwrap()
    };
    assert_eq!(
        attempt(TlsConfig::client().ca_pem(&p.other_ca).unwrap()),
        Err(Error::PeerAuth)
    );
    assert_eq!(
        attempt(
            TlsConfig::client()
                .ca_pem(&p.ca)
                .unwrap()
                .server_name("not-this-host")
        ),
        Err(Error::PeerAuth)
    );
    attempt(TlsConfig::client().ca_pem(&p.ca).unwrap()).unwrap();
    req.send("ping").unwrap();
    assert_eq!(req.recv().unwrap().body(), b"pong");
}
