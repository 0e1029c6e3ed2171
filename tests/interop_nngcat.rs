//! Every protocol against libnng's own tool, nngcat (Debian's nng-utils, NNG 1.5.2), in
//! both directions (nngcat dials us, we dial nngcat), over tcp and ipc.

mod common;

use std::time::Duration;

use common::{ipc, nngcat_or_skip, tcp, NngCat};
use nanoport::{Error, Message, Socket};

const LIMIT: Duration = Duration::from_secs(10);

fn urls() -> Vec<String> {
    vec![tcp(), ipc("interop")]
}

#[test]
fn req_dials_nngcat_rep() {
    if !nngcat_or_skip("req_dials_nngcat_rep") {
        return;
    }
    for url in urls() {
        let cat = NngCat::spawn(&["--rep0", "--listen", &url, "--data", "pong", "--count", "1"]);
        let req = Socket::req0().unwrap();
        req.set_recv_timeout(LIMIT).unwrap();
        let d = req.dial_nonblocking(&url).unwrap();
        req.send("ping").unwrap();
        assert_eq!(req.recv().unwrap().body(), b"pong", "{url}");
        d.close().unwrap();
        let (ok, _, err) = cat.finish(LIMIT);
        assert!(ok, "{url}: nngcat failed: {err}");
    }
}

#[test]
fn nngcat_req_dials_our_rep() {
    if !nngcat_or_skip("nngcat_req_dials_our_rep") {
        return;
    }
    for url in urls() {
        let rep = Socket::rep0().unwrap();
        rep.listen(&url).unwrap();
        rep.set_recv_timeout(LIMIT).unwrap();
        let cat = NngCat::req_once(&url, "ping");
        let q = rep.recv().unwrap();
        assert_eq!(q.body(), b"ping", "{url}");
        rep.send("pong").unwrap();
        let (ok, out, err) = cat.finish(LIMIT);
        assert!(ok, "{url}: nngcat failed: {err}");
        assert_eq!(out, "\"pong\"\n", "{url}");
    }
}

#[test]
fn pub_to_nngcat_sub_and_back() {
    if !nngcat_or_skip("pub_to_nngcat_sub_and_back") {
        return;
    }
    for url in urls() {
        // Our pub listens, nngcat's sub dials with a subscription.
        let publ = Socket::pub0().unwrap();
        publ.listen(&url).unwrap();
        let cat = NngCat::spawn(&[
            "--sub0",
            "--dial",
            &url,
            "--subscribe",
            "news",
            "--count",
            "1",
            "-Q",
        ]);
        // Messages that do not match must be filtered by nngcat's sub.
        let _ = publ.try_send("sport: nothing");
        let (ok, out, err) = cat.finish_while_sending(&publ, "news: hello", LIMIT);
        assert!(ok, "{url}: {err}");
        assert_eq!(out, "\"news: hello\"\n", "{url}");
        publ.close().unwrap();

        // nngcat's pub listens, our sub dials.
        let url2 = if url.starts_with("tcp") {
            tcp()
        } else {
            ipc("interop-pub")
        };
        let cat = NngCat::spawn(&[
            "--pub0",
            "--listen",
            &url2,
            "--data",
            "tick",
            "--interval",
            "1",
            "--count",
            "10",
        ]);
        let sub = Socket::sub0().unwrap();
        sub.subscribe(b"").unwrap();
        sub.set_recv_timeout(LIMIT).unwrap();
        sub.dial_nonblocking(&url2).unwrap();
        assert_eq!(sub.recv().unwrap().body(), b"tick", "{url2}");
        drop(cat);
    }
}

#[test]
fn push_to_nngcat_pull_and_back() {
    if !nngcat_or_skip("push_to_nngcat_pull_and_back") {
        return;
    }
    for url in urls() {
        let cat = NngCat::spawn(&["--pull0", "--listen", &url, "--count", "3", "-Q"]);
        let push = Socket::push0().unwrap();
        push.dial_nonblocking(&url).unwrap();
        push.set_send_timeout(LIMIT).unwrap();
        for m in ["one", "two", "three"] {
            push.send(m).unwrap();
        }
        let (ok, out, err) = cat.finish(LIMIT);
        assert!(ok, "{url}: {err}");
        assert_eq!(out, "\"one\"\n\"two\"\n\"three\"\n", "{url}");

        let url2 = if url.starts_with("tcp") {
            tcp()
        } else {
            ipc("interop-push")
        };
        let pull = Socket::pull0().unwrap();
        pull.listen(&url2).unwrap();
        pull.set_recv_timeout(LIMIT).unwrap();
        let cat = NngCat::spawn(&["--push0", "--dial", &url2, "--data", "work", "--count", "2"]);
        assert_eq!(pull.recv().unwrap().body(), b"work");
        assert_eq!(pull.recv().unwrap().body(), b"work");
        let (ok, _, err) = cat.finish(LIMIT);
        assert!(ok, "{url2}: {err}");
    }
}

#[test]
fn surveyor_and_respondent_with_nngcat() {
    if !nngcat_or_skip("surveyor_and_respondent_with_nngcat") {
        return;
    }
    for url in urls() {
        // Our surveyor listens; nngcat answers every survey with "yes".
        let surv = Socket::surveyor0().unwrap();
        surv.set_survey_time(Duration::from_millis(500)).unwrap();
        surv.listen(&url).unwrap();
        let cat = NngCat::spawn(&["--respondent0", "--dial", &url, "--data", "yes"]);
        let got = common::eventually(LIMIT, || {
            surv.send("anyone?").ok()?;
            surv.recv().ok()
        });
        assert_eq!(got.expect("a response").body(), b"yes", "{url}");
        // After the survey time, a pending receive ends with TimedOut.
        loop {
            match surv.recv() {
                Ok(_) => continue,
                Err(e) => {
                    assert_eq!(e, Error::TimedOut);
                    break;
                }
            }
        }
        drop(cat);

        // nngcat surveys; our respondent answers.
        let url2 = if url.starts_with("tcp") {
            tcp()
        } else {
            ipc("interop-surv")
        };
        let cat = NngCat::spawn(&[
            "--surveyor0",
            "--listen",
            &url2,
            "--data",
            "q",
            "--interval",
            "1",
            "--count",
            "5",
            "-Q",
        ]);
        let resp = Socket::respondent0().unwrap();
        resp.set_recv_timeout(LIMIT).unwrap();
        resp.dial_nonblocking(&url2).unwrap();
        assert_eq!(resp.recv().unwrap().body(), b"q");
        resp.send("a").unwrap();
        let (_, out, _) = cat.finish(Duration::from_secs(8));
        assert!(
            out.lines().any(|l| l == "\"a\""),
            "{url2}: nngcat printed {out:?}"
        );
    }
}

#[test]
fn pair0_and_pair1_with_nngcat() {
    if !nngcat_or_skip("pair0_and_pair1_with_nngcat") {
        return;
    }
    for (flag, open) in [
        ("--pair0", Socket::pair0 as fn() -> nanoport::Result<Socket>),
        ("--pair1", Socket::pair1),
    ] {
        for url in urls() {
            let cat = NngCat::spawn(&[flag, "--listen", &url, "--count", "1", "-Q"]);
            let s = open().unwrap();
            s.set_send_timeout(LIMIT).unwrap();
            s.dial_nonblocking(&url).unwrap();
            s.send("hi there").unwrap();
            let (ok, out, err) = cat.finish(LIMIT);
            assert!(ok, "{flag} {url}: {err}");
            assert_eq!(out, "\"hi there\"\n", "{flag} {url}");

            let url2 = if url.starts_with("tcp") {
                tcp()
            } else {
                ipc("interop-pair")
            };
            let s = open().unwrap();
            s.listen(&url2).unwrap();
            s.set_recv_timeout(LIMIT).unwrap();
            let cat = NngCat::spawn(&[flag, "--dial", &url2, "--data", "from nng", "--count", "1"]);
            assert_eq!(s.recv().unwrap().body(), b"from nng", "{flag} {url2}");
            drop(cat);
        }
    }
}

#[test]
fn bus_with_nngcat() {
    if !nngcat_or_skip("bus_with_nngcat") {
        return;
    }
    for url in urls() {
        let cat = NngCat::spawn(&["--bus0", "--listen", &url, "--count", "1", "-Q"]);
        let bus = Socket::bus0().unwrap();
        bus.dial_nonblocking(&url).unwrap();
        let (ok, out, err) = cat.finish_while_sending(&bus, "to all", LIMIT);
        assert!(ok, "{url}: {err}");
        assert_eq!(out, "\"to all\"\n", "{url}");

        let url2 = if url.starts_with("tcp") {
            tcp()
        } else {
            ipc("interop-bus")
        };
        let bus = Socket::bus0().unwrap();
        bus.listen(&url2).unwrap();
        bus.set_recv_timeout(LIMIT).unwrap();
        let cat = NngCat::spawn(&[
            "--bus0",
            "--dial",
            &url2,
            "--data",
            "from nng",
            "--interval",
            "1",
            "--count",
            "5",
        ]);
        assert_eq!(bus.recv().unwrap().body(), b"from nng", "{url2}");
        drop(cat);
    }
}

#[test]
fn req_refuses_a_req_peer_from_nngcat() {
    if !nngcat_or_skip("req_refuses_a_req_peer_from_nngcat") {
        return;
    }
    let url = tcp();
    let req = Socket::req0().unwrap();
    req.listen(&url).unwrap();
    req.set_send_timeout(Duration::from_millis(300)).unwrap();
    let cat = NngCat::spawn(&["--req0", "--dial", &url, "--data", "x", "--count", "1"]);
    // The nngcat req0 peer is rejected by the protocol check, so no pipe ever joins and
    // our request cannot be sent.
    assert_eq!(req.send("q").map_err(|e| e.error()), Err(Error::TimedOut));
    assert_eq!(req.pipe_count(), 0);
    drop(cat);
}

#[test]
fn raw_sockets_interoperate_with_cooked_nngcat_peers() {
    if !nngcat_or_skip("raw_sockets_interoperate_with_cooked_nngcat_peers") {
        return;
    }
    // Our raw rep answers nngcat's cooked req by sending the request's header (pipe id
    // and backtrace) back with the reply, as a device would.
    let url = tcp();
    let rep = Socket::open_raw(nanoport::Protocol::Rep0).unwrap();
    rep.listen(&url).unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();
    let cat = NngCat::req_once(&url, "raw?");
    let q = rep.recv().unwrap();
    assert_eq!(q.body(), b"raw?");
    assert!(
        q.header_len() >= 8,
        "raw rep exposes pipe id + request id, got {:?}",
        q.header()
    );
    let mut reply = nanoport::Message::from("raw!");
    reply.header_append(q.header()).unwrap();
    rep.send(reply).unwrap();
    let (ok, out, err) = cat.finish(LIMIT);
    assert!(ok, "nngcat failed: {err}");
    assert_eq!(out, "\"raw!\"\n");

    // Our raw req sends a request with a hand-made id to nngcat's cooked rep.
    let url = tcp();
    let cat = NngCat::spawn(&["--rep0", "--listen", &url, "--data", "ok", "--count", "1"]);
    let req = Socket::open_raw(nanoport::Protocol::Req0).unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    req.set_send_timeout(LIMIT).unwrap();
    req.dial_nonblocking(&url).unwrap();
    let mut m = nanoport::Message::from("hello");
    m.header_append_u32(0x8000_1234).unwrap();
    req.send(m).unwrap();
    let r = req.recv().unwrap();
    assert_eq!(r.body(), b"ok");
    assert_eq!(
        r.header(),
        &[0x80, 0x00, 0x12, 0x34],
        "the reply carries our request id"
    );
    drop(cat);
}

#[test]
fn req_contexts_against_nngcat_rep() {
    if !nngcat_or_skip("req_contexts_against_nngcat_rep") {
        return;
    }
    // nngcat's rep answers each request; our req multiplexes contexts over one pipe.
    let url = tcp();
    let cat = NngCat::spawn(&["--rep0", "--listen", &url, "--data", "ack", "--count", "4"]);
    let req = Socket::req0().unwrap();
    req.dial_nonblocking(&url).unwrap();
    let ctxs: Vec<_> = (0..4).map(|_| req.context().unwrap()).collect();
    for c in &ctxs {
        c.set_recv_timeout(LIMIT).unwrap();
        c.set_send_timeout(LIMIT).unwrap();
        c.send("q").unwrap();
    }
    for c in &ctxs {
        assert_eq!(c.recv().unwrap().body(), b"ack");
    }
    drop(cat);
}

/// pair1 polyamorous mode is local routing over the ordinary pair1 wire protocol, so
/// plain libnng pair1 peers can drive it: two nngcat processes dial one poly socket, each
/// sends its name, and each must get back exactly the reply addressed to its own pipe.
#[test]
fn pair1_poly_routes_replies_to_each_nngcat_peer() {
    if !nngcat_or_skip("pair1_poly_routes_replies_to_each_nngcat_peer") {
        return;
    }
    for url in [tcp(), ipc("interop-poly")] {
        let hub = Socket::open(nanoport::Protocol::Pair1Poly).unwrap();
        hub.listen(&url).unwrap();
        hub.set_recv_timeout(LIMIT).unwrap();
        hub.set_send_timeout(LIMIT).unwrap();
        // --interval 3 --count 1: send once, then print what arrives for 3 s and exit.
        let cats: Vec<(String, NngCat)> = ["alpha", "beta"]
            .iter()
            .map(|name| {
                let cat = NngCat::spawn(&[
                    "--pair1",
                    "--dial",
                    &url,
                    "--data",
                    name,
                    "--interval",
                    "3",
                    "--count",
                    "1",
                    "-Q",
                ]);
                (name.to_string(), cat)
            })
            .collect();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let m = hub.recv().unwrap();
            let name = String::from_utf8(m.body().to_vec()).unwrap();
            let pipe = m.pipe().expect("a poly message names its pipe");
            let mut reply = Message::from(format!("to {name}").as_str());
            reply.set_pipe(Some(pipe));
            hub.send(reply).unwrap();
            seen.push(name);
        }
        seen.sort();
        assert_eq!(seen, ["alpha", "beta"], "{url}");
        for (name, cat) in cats {
            let (ok, out, err) = cat.finish(LIMIT);
            assert!(ok, "{url} {name}: nngcat failed: {err}");
            assert_eq!(
                out,
                format!("\"to {name}\"\n"),
                "{url}: {name} got another's reply"
            );
        }
    }
}

/// Our req resends when its pipe is lost: the first libnng rep takes the request and dies
/// without answering; a second one, started on the same address, gets the resent request
/// and its answer reaches us.
#[test]
fn req_resends_to_a_restarted_nngcat_rep() {
    if !nngcat_or_skip("req_resends_to_a_restarted_nngcat_rep") {
        return;
    }
    for url in urls() {
        let req = Socket::req0().unwrap();
        // Far beyond the test: only the pipe loss can trigger the resend.
        req.set_resend_time(Duration::from_secs(600)).unwrap();
        req.set_recv_timeout(LIMIT).unwrap();
        // Without --data, nngcat's rep prints requests and never answers.
        let mut mute = NngCat::spawn(&["--rep0", "--listen", &url, "-Q"]);
        req.dial_nonblocking(&url).unwrap();
        req.send("ping").unwrap();
        assert_eq!(
            mute.first_line(LIMIT).as_deref(),
            Some("\"ping\""),
            "{url}: the first rep never got the request"
        );
        drop(mute); // killed before it could answer
        let cat = NngCat::spawn(&[
            "--rep0", "--listen", &url, "--data", "pong", "--count", "1", "-Q",
        ]);
        assert_eq!(req.recv().unwrap().body(), b"pong", "{url}");
        let (ok, out, err) = cat.finish(LIMIT);
        assert!(ok, "{url}: {err}");
        assert_eq!(
            out, "\"ping\"\n",
            "{url}: the second rep saw the resent request"
        );
    }
}

/// sub contexts keep their own subscriptions against libnng publishers: each context gets
/// only the topic it asked for.
#[test]
fn sub_contexts_filter_independently_against_nngcat_pubs() {
    if !nngcat_or_skip("sub_contexts_filter_independently_against_nngcat_pubs") {
        return;
    }
    let (url_a, url_b) = (tcp(), ipc("interop-subctx"));
    let pubs: Vec<NngCat> = [(&url_a, "alpha: 1"), (&url_b, "beta: 2")]
        .iter()
        .map(|(url, data)| {
            NngCat::spawn(&[
                "--pub0",
                "--listen",
                url,
                "--data",
                data,
                "--interval",
                "1",
                "--count",
                "20",
            ])
        })
        .collect();
    let sub = Socket::sub0().unwrap();
    sub.dial_nonblocking(&url_a).unwrap();
    sub.dial_nonblocking(&url_b).unwrap();
    let alpha = sub.context().unwrap();
    let beta = sub.context().unwrap();
    alpha.subscribe(b"alpha").unwrap();
    beta.subscribe(b"beta").unwrap();
    for c in [&alpha, &beta] {
        c.set_recv_timeout(LIMIT).unwrap();
    }
    for _ in 0..2 {
        assert_eq!(alpha.recv().unwrap().body(), b"alpha: 1");
        assert_eq!(beta.recv().unwrap().body(), b"beta: 2");
    }
    drop(pubs);
}

/// surveyor contexts run independent surveys over one pipe to a libnng respondent.
#[test]
fn surveyor_contexts_against_nngcat_respondent() {
    if !nngcat_or_skip("surveyor_contexts_against_nngcat_respondent") {
        return;
    }
    for url in urls() {
        let surv = Socket::surveyor0().unwrap();
        surv.listen(&url).unwrap();
        let cat = NngCat::spawn(&["--respondent0", "--dial", &url, "--data", "here"]);
        assert!(
            common::eventually(LIMIT, || (surv.pipe_count() == 1).then_some(())).is_some(),
            "{url}: nngcat never connected"
        );
        let ctxs: Vec<_> = (0..3).map(|_| surv.context().unwrap()).collect();
        for c in &ctxs {
            c.set_survey_time(Duration::from_secs(5)).unwrap();
            c.set_recv_timeout(LIMIT).unwrap();
            c.send("roll call").unwrap();
        }
        for c in &ctxs {
            assert_eq!(c.recv().unwrap().body(), b"here", "{url}");
        }
        drop(cat);
    }
}

/// `device` relays between two libnng processes: nngcat's req dials our raw rep, the
/// device forwards to our raw req, which nngcat's rep dials; the reply comes back the
/// same way.
#[test]
fn device_relays_between_nngcat_req_and_rep() {
    if !nngcat_or_skip("device_relays_between_nngcat_req_and_rep") {
        return;
    }
    let back_url = ipc("interop-device");
    let front = Socket::open_raw(nanoport::Protocol::Rep0).unwrap();
    let back = Socket::open_raw(nanoport::Protocol::Req0).unwrap();
    // Port 0: a port picked in advance may be taken by the time we bind it.
    let fl = front.listener("tcp://127.0.0.1:0").unwrap();
    fl.start().unwrap();
    let front_url = format!("tcp://127.0.0.1:{}", fl.port().unwrap());
    back.listen(&back_url).unwrap();
    let (f2, b2) = (front.clone(), back.clone());
    let dev = std::thread::spawn(move || nanoport::device(&f2, &b2));
    let rep = NngCat::spawn(&[
        "--rep0", "--dial", &back_url, "--data", "relayed", "--count", "1", "-Q",
    ]);
    let req = NngCat::req_once(&front_url, "via device");
    let (ok, out, err) = req.finish(LIMIT);
    assert!(ok, "nngcat req failed: {err}");
    assert_eq!(out, "\"relayed\"\n");
    let (ok, out, err) = rep.finish(LIMIT);
    assert!(ok, "nngcat rep failed: {err}");
    assert_eq!(out, "\"via device\"\n");
    front.close().unwrap();
    assert_eq!(dev.join().unwrap(), Err(Error::Closed));
}
