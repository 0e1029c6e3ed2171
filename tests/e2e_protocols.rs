//! Protocol semantics end to end, between nanoport sockets, over inproc, ipc and tcp.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{all_urls, eventually, inproc, tcp};
use nanoport::{device, Aio, Error, Message, PipeEvent, Protocol, Socket};

const LIMIT: Duration = Duration::from_secs(10);

fn wait_pipes(s: &Socket, n: usize) {
    assert!(
        eventually(LIMIT, || (s.pipe_count() >= n).then_some(())).is_some(),
        "pipes never reached {n}"
    );
}

#[test]
fn req_rep_echo_over_every_transport() {
    for url in all_urls("reqrep") {
        let rep = Socket::rep0().unwrap();
        rep.listen(&url).unwrap();
        let req = Socket::req0().unwrap();
        req.dial(&url).unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..200 {
                let m = rep.recv().unwrap();
                rep.send(m).unwrap();
            }
        });
        for i in 0..200u32 {
            let mut m = Message::new();
            m.append_u32(i);
            m.append(&vec![7u8; (i as usize * 37) % 3000]);
            req.send(m.clone()).unwrap();
            let r = req.recv().unwrap();
            assert_eq!(r.body(), m.body(), "{url} #{i}");
        }
        server.join().unwrap();
    }
}

#[test]
fn wrong_state_errors() {
    let req = Socket::req0().unwrap();
    assert_eq!(req.try_recv().unwrap_err(), Error::State);
    let rep = Socket::rep0().unwrap();
    assert_eq!(rep.try_send("x").unwrap_err(), Error::State);
    assert_eq!(
        Socket::sub0().unwrap().send("x").unwrap_err(),
        Error::NotSup
    );
    assert_eq!(
        Socket::pull0().unwrap().send("x").unwrap_err(),
        Error::NotSup
    );
    assert_eq!(Socket::pub0().unwrap().recv().unwrap_err(), Error::NotSup);
    assert_eq!(Socket::push0().unwrap().recv().unwrap_err(), Error::NotSup);
    assert_eq!(
        Socket::pair0().unwrap().context().unwrap_err(),
        Error::NotSup
    );
    assert_eq!(
        Socket::open_raw(Protocol::Req0)
            .unwrap()
            .context()
            .unwrap_err(),
        Error::NotSup
    );
}

#[test]
fn closed_socket_fails_pending_and_new_operations() {
    let s = Socket::pull0().unwrap();
    let aio = Aio::new_waitable().unwrap();
    s.recv_aio(&aio);
    assert!(aio.busy());
    s.close().unwrap();
    aio.wait();
    assert_eq!(aio.result(), Err(Error::Closed));
    assert_eq!(s.recv().unwrap_err(), Error::Closed);
    assert_eq!(s.close(), Err(Error::Closed));
}

#[test]
fn recv_timeout_and_nonblocking() {
    let s = Socket::pull0().unwrap();
    s.set_recv_timeout(Duration::from_millis(20)).unwrap();
    assert_eq!(s.recv().unwrap_err(), Error::TimedOut);
    assert_eq!(s.try_recv().unwrap_err(), Error::Again);
    let p = Socket::push0().unwrap();
    assert_eq!(p.try_send("x").unwrap_err(), Error::Again);
}

#[test]
fn failed_send_leaves_message_on_the_aio() {
    let push = Socket::push0().unwrap();
    let aio = Aio::new_waitable().unwrap();
    aio.set_timeout(Duration::from_millis(10));
    aio.set_msg(Message::from("keep me"));
    push.send_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    assert_eq!(aio.take_msg().unwrap().body(), b"keep me");
}

#[test]
fn req_resends_when_the_rep_restarts() {
    let url = tcp();
    let req = Socket::req0().unwrap();
    req.set_resend_time(Duration::from_millis(200)).unwrap();
    req.set_reconnect_min_time(Duration::from_millis(20))
        .unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    let rep1 = Socket::rep0().unwrap();
    rep1.listen(&url).unwrap();
    req.dial(&url).unwrap();
    req.send("question").unwrap();
    // The first replier takes the request and dies without answering.
    assert_eq!(rep1.recv().unwrap().body(), b"question");
    rep1.close().unwrap();
    let rep2 = Socket::rep0().unwrap();
    let l = eventually(LIMIT, || rep2.listen(&url).ok()).expect("relisten");
    let t = std::thread::spawn(move || {
        let q = rep2.recv().unwrap();
        rep2.send(Message::from(
            format!("answer to {}", String::from_utf8_lossy(q.body())).as_bytes(),
        ))
        .unwrap();
        drop(l);
        rep2
    });
    assert_eq!(req.recv().unwrap().body(), b"answer to question");
    t.join().unwrap();
}

#[test]
fn req_contexts_keep_100_requests_outstanding() {
    let url = inproc("ctx");
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    // A rep server with 8 contexts echoing.
    let mut servers = Vec::new();
    for _ in 0..8 {
        let ctx = rep.context().unwrap();
        servers.push(std::thread::spawn(move || loop {
            match ctx.recv() {
                Ok(m) => {
                    if ctx.send(m).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }));
    }
    let (tx, rx) = mpsc::channel();
    let mut clients = Vec::new();
    for i in 0..100u32 {
        let ctx = req.context().unwrap();
        let tx = tx.clone();
        clients.push(std::thread::spawn(move || {
            ctx.set_recv_timeout(LIMIT).unwrap();
            let mut m = Message::new();
            m.append_u32(i);
            ctx.send(m).unwrap();
            let mut r = ctx.recv().unwrap();
            tx.send((i, r.trim_u32().unwrap())).unwrap();
        }));
    }
    drop(tx);
    let got: Vec<(u32, u32)> = rx.iter().collect();
    assert_eq!(got.len(), 100);
    assert!(
        got.iter().all(|(a, b)| a == b),
        "a context got another's reply"
    );
    for c in clients {
        c.join().unwrap();
    }
    rep.close().unwrap();
    for s in servers {
        s.join().unwrap();
    }
}

#[test]
fn pub_sub_prefix_filtering() {
    for url in all_urls("pubsub") {
        let publ = Socket::pub0().unwrap();
        publ.listen(&url).unwrap();
        let sub = Socket::sub0().unwrap();
        sub.subscribe(b"a.").unwrap();
        sub.set_recv_timeout(Duration::from_millis(200)).unwrap();
        sub.dial(&url).unwrap();
        wait_pipes(&publ, 1);
        for m in ["b.1", "a.1", "a", "a.2", "c"] {
            publ.send(m).unwrap();
        }
        assert_eq!(sub.recv().unwrap().body(), b"a.1", "{url}");
        assert_eq!(sub.recv().unwrap().body(), b"a.2", "{url}");
        assert_eq!(sub.recv().unwrap_err(), Error::TimedOut, "{url}");
        assert_eq!(sub.unsubscribe(b"zzz"), Err(Error::NoEnt));
    }
}

#[test]
fn push_round_robins_across_pullers() {
    for url in all_urls("pipeline") {
        let push = Socket::push0().unwrap();
        push.listen(&url).unwrap();
        push.set_send_timeout(LIMIT).unwrap();
        let pulls: Vec<Socket> = (0..3).map(|_| Socket::pull0().unwrap()).collect();
        for (i, p) in pulls.iter().enumerate() {
            p.set_recv_timeout(LIMIT).unwrap();
            p.dial(&url).unwrap();
            wait_pipes(&push, i + 1);
        }
        // With every pipe idle, three messages go one to each puller, in connect order
        // (NNG's "push load balance" test).
        for m in ["one", "two", "three"] {
            push.send(m).unwrap();
        }
        for (p, want) in pulls.iter().zip(["one", "two", "three"]) {
            assert_eq!(p.recv().unwrap().body(), want.as_bytes(), "{url}");
        }
        // A stream: every puller gets a share, each share in order, nothing lost.
        let sender = {
            let push = push.clone();
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let mut m = Message::new();
                    m.append_u32(i);
                    push.send(m).unwrap();
                }
            })
        };
        let (tx, rx) = mpsc::channel();
        let receivers: Vec<_> = pulls
            .iter()
            .map(|p| {
                let p = p.clone();
                let tx = tx.clone();
                p.set_recv_timeout(Duration::from_millis(500)).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(mut m) = p.recv() {
                        got.push(m.trim_u32().unwrap());
                    }
                    tx.send(got).unwrap();
                })
            })
            .collect();
        drop(tx);
        sender.join().unwrap();
        let shares: Vec<Vec<u32>> = rx.iter().collect();
        for r in receivers {
            r.join().unwrap();
        }
        let mut all: Vec<u32> = shares.iter().flatten().copied().collect();
        for share in &shares {
            assert!(!share.is_empty(), "{url}: a puller got nothing");
            assert!(
                share.windows(2).all(|w| w[0] < w[1]),
                "{url}: a share is out of order"
            );
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..300).collect::<Vec<u32>>(),
            "{url}: lost or duplicated"
        );
    }
}

#[test]
fn survey_collects_responses_then_times_out() {
    for url in all_urls("survey") {
        let surv = Socket::surveyor0().unwrap();
        surv.set_survey_time(Duration::from_millis(300)).unwrap();
        surv.listen(&url).unwrap();
        let mut resps = Vec::new();
        for i in 0..2 {
            let r = Socket::respondent0().unwrap();
            r.dial(&url).unwrap();
            let t = std::thread::spawn(move || {
                let q = r.recv().unwrap();
                assert_eq!(q.body(), b"who?");
                r.send(Message::from(format!("me{i}").as_str())).unwrap();
                r
            });
            resps.push(t);
        }
        wait_pipes(&surv, 2);
        surv.send("who?").unwrap();
        let mut got = HashSet::new();
        got.insert(surv.recv().unwrap().body().to_vec());
        got.insert(surv.recv().unwrap().body().to_vec());
        assert_eq!(
            got,
            HashSet::from([b"me0".to_vec(), b"me1".to_vec()]),
            "{url}"
        );
        assert_eq!(surv.recv().unwrap_err(), Error::TimedOut, "{url}");
        for t in resps {
            t.join().unwrap();
        }
    }
}

#[test]
fn bus_reaches_every_peer_but_never_echoes() {
    let url = inproc("bus");
    let hub = Socket::bus0().unwrap();
    hub.listen(&url).unwrap();
    let a = Socket::bus0().unwrap();
    let b = Socket::bus0().unwrap();
    a.dial(&url).unwrap();
    b.dial(&url).unwrap();
    wait_pipes(&hub, 2);
    for s in [&hub, &a, &b] {
        s.set_recv_timeout(Duration::from_millis(200)).unwrap();
    }
    hub.send("from hub").unwrap();
    assert_eq!(a.recv().unwrap().body(), b"from hub");
    assert_eq!(b.recv().unwrap().body(), b"from hub");
    assert_eq!(
        hub.recv().unwrap_err(),
        Error::TimedOut,
        "the hub heard its own message"
    );
    a.send("from a").unwrap();
    assert_eq!(hub.recv().unwrap().body(), b"from a");
    // No relaying in cooked mode: b is not directly connected to a.
    assert_eq!(b.recv().unwrap_err(), Error::TimedOut);
    assert_eq!(a.recv().unwrap_err(), Error::TimedOut);
}

#[test]
fn pair0_and_pair1_exchange_in_order() {
    for open in [
        Socket::pair0 as fn() -> nanoport::Result<Socket>,
        Socket::pair1,
    ] {
        for url in all_urls("pair") {
            let x = open().unwrap();
            x.listen(&url).unwrap();
            let y = open().unwrap();
            y.dial(&url).unwrap();
            let t = std::thread::spawn(move || {
                for i in 0..500u32 {
                    let mut m = Message::new();
                    m.append_u32(i);
                    y.send(m).unwrap();
                }
                y
            });
            for i in 0..500u32 {
                assert_eq!(x.recv().unwrap().trim_u32(), Ok(i), "{url}");
            }
            t.join().unwrap();
        }
    }
}

#[test]
fn pair0_refuses_a_second_peer() {
    let url = inproc("pair-busy");
    let a = Socket::pair0().unwrap();
    a.listen(&url).unwrap();
    let b = Socket::pair0().unwrap();
    b.dial(&url).unwrap();
    wait_pipes(&a, 1);
    let c = Socket::pair0().unwrap();
    let _ = c.dial_nonblocking(&url);
    c.set_send_timeout(Duration::from_millis(100)).unwrap();
    b.send("first").unwrap();
    a.set_recv_timeout(LIMIT).unwrap();
    assert_eq!(a.recv().unwrap().body(), b"first");
    assert!(eventually(LIMIT, || (a.pipe_count() == 1).then_some(())).is_some());
}

#[test]
fn pair1_polyamorous_routes_by_pipe() {
    let url = inproc("poly");
    let hub = Socket::open(Protocol::Pair1Poly).unwrap();
    hub.listen(&url).unwrap();
    let a = Socket::pair1().unwrap();
    let b = Socket::pair1().unwrap();
    a.dial(&url).unwrap();
    b.dial(&url).unwrap();
    wait_pipes(&hub, 2);
    hub.set_recv_timeout(LIMIT).unwrap();
    a.send("from a").unwrap();
    let m = hub.recv().unwrap();
    assert_eq!(m.body(), b"from a");
    let pipe_a = m.pipe().expect("poly messages carry their pipe");
    b.send("from b").unwrap();
    let m = hub.recv().unwrap();
    let pipe_b = m.pipe().unwrap();
    assert_ne!(pipe_a.id(), pipe_b.id());
    let mut reply = Message::from("to b");
    reply.set_pipe(Some(pipe_b));
    hub.send(reply).unwrap();
    b.set_recv_timeout(LIMIT).unwrap();
    a.set_recv_timeout(Duration::from_millis(100)).unwrap();
    assert_eq!(b.recv().unwrap().body(), b"to b");
    assert_eq!(a.recv().unwrap_err(), Error::TimedOut);
}

#[test]
fn device_forwards_requests_through_raw_sockets() {
    let front_url = inproc("dev-front");
    let back_url = inproc("dev-back");
    let front = Socket::open_raw(Protocol::Rep0).unwrap();
    let back = Socket::open_raw(Protocol::Req0).unwrap();
    front.listen(&front_url).unwrap();
    back.listen(&back_url).unwrap();
    let (f2, b2) = (front.clone(), back.clone());
    let dev = std::thread::spawn(move || device(&f2, &b2));
    let server = Socket::rep0().unwrap();
    server.dial(&back_url).unwrap();
    let srv = std::thread::spawn(move || {
        for _ in 0..10 {
            let m = server.recv().unwrap();
            server.send(m).unwrap();
        }
    });
    let client = Socket::req0().unwrap();
    client.set_recv_timeout(LIMIT).unwrap();
    client.dial(&front_url).unwrap();
    for i in 0..10u32 {
        let mut m = Message::new();
        m.append_u32(i);
        client.send(m).unwrap();
        assert_eq!(client.recv().unwrap().trim_u32(), Ok(i));
    }
    srv.join().unwrap();
    front.close().unwrap();
    assert_eq!(dev.join().unwrap(), Err(Error::Closed));
}

#[test]
fn device_rejects_cooked_or_mismatched_sockets() {
    let a = Socket::rep0().unwrap();
    let b = Socket::open_raw(Protocol::Req0).unwrap();
    assert_eq!(device(&a, &b), Err(Error::Inval));
    let c = Socket::open_raw(Protocol::Pull0).unwrap();
    assert_eq!(device(&b, &c), Err(Error::Inval));
}

#[test]
fn pipe_notify_sees_add_and_remove_and_can_reject() {
    let url = inproc("notify");
    let pull = Socket::pull0().unwrap();
    let pre = Arc::new(AtomicUsize::new(0));
    let post = Arc::new(AtomicUsize::new(0));
    let rem = Arc::new(AtomicUsize::new(0));
    let (p1, p2, p3) = (pre.clone(), post.clone(), rem.clone());
    pull.pipe_notify(PipeEvent::AddPre, move |pipe, _| {
        // Reject the first pipe only.
        if p1.fetch_add(1, Ordering::SeqCst) == 0 {
            pipe.close();
        }
    });
    pull.pipe_notify(PipeEvent::AddPost, move |_, _| {
        p2.fetch_add(1, Ordering::SeqCst);
    });
    pull.pipe_notify(PipeEvent::RemPost, move |_, _| {
        p3.fetch_add(1, Ordering::SeqCst);
    });
    pull.listen(&url).unwrap();
    let push1 = Socket::push0().unwrap();
    // Its pipe is rejected and it would redial after the reconnect time (100 ms), adding
    // a third pipe if the checks below came late: keep it from redialing.
    push1
        .set_reconnect_min_time(Duration::from_secs(3600))
        .unwrap();
    push1
        .set_reconnect_max_time(Duration::from_secs(3600))
        .unwrap();
    push1.dial(&url).unwrap();
    let push2 = Socket::push0().unwrap();
    push2.dial(&url).unwrap();
    wait_pipes(&pull, 1);
    // Callbacks run on the socket's pipe-event queue, off the thread that attached the
    // pipe: AddPost comes just after the pipe is counted.
    assert!(eventually(LIMIT, || (post.load(Ordering::SeqCst) == 1).then_some(())).is_some());
    assert_eq!(pre.load(Ordering::SeqCst), 2);
    assert_eq!(post.load(Ordering::SeqCst), 1);
    // The rejected pipe never joined: no RemPost for it (NNG 1.11). Its events ran
    // before the second pipe's AddPost, on the socket's ordered event queue.
    assert_eq!(rem.load(Ordering::SeqCst), 0);
    push2.close().unwrap();
    assert!(eventually(LIMIT, || (rem.load(Ordering::SeqCst) == 1).then_some(())).is_some());
}

#[test]
fn dialer_reconnects_after_the_listener_restarts() {
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.set_reconnect_min_time(Duration::from_millis(10))
        .unwrap();
    push.set_reconnect_max_time(Duration::from_millis(100))
        .unwrap();
    push.set_send_timeout(LIMIT).unwrap();
    push.dial(&url).unwrap();
    push.send("before").unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"before");
    pull.close().unwrap();
    let pull2 = Socket::pull0().unwrap();
    pull2.set_recv_timeout(LIMIT).unwrap();
    eventually(LIMIT, || pull2.listen(&url).ok()).expect("relisten");
    // The dialer redials only after it has dropped the old pipe, so once the new listener
    // has a pipe, "after" cannot go to the dead one.
    wait_pipes(&pull2, 1);
    push.send("after").unwrap();
    assert_eq!(pull2.recv().unwrap().body(), b"after");
}

#[test]
fn dial_without_listener_is_refused_and_listen_twice_is_in_use() {
    let s = Socket::push0().unwrap();
    assert_eq!(s.dial(&inproc("nobody")).unwrap_err(), Error::ConnRefused);
    assert_eq!(s.dial(&tcp()).unwrap_err(), Error::ConnRefused);
    let url = inproc("twice");
    let _l = s.listen(&url).unwrap();
    assert_eq!(
        Socket::pull0().unwrap().listen(&url).unwrap_err(),
        Error::AddrInUse
    );
    assert_eq!(s.listen("bogus://x").unwrap_err(), Error::NotSup);
    assert_eq!(s.listen("tcp://127.0.0.1").unwrap_err(), Error::AddrInval);
}

#[test]
fn callbacks_deliver_on_workers() {
    let url = inproc("aio-cb");
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let aio = Aio::new(move |a| {
        let m = a.take_msg();
        tx.lock()
            .unwrap()
            .send((
                a.result(),
                m.map(|m| m.body().to_vec()),
                std::thread::current().name().map(str::to_owned),
            ))
            .unwrap();
    })
    .unwrap();
    pull.recv_aio(&aio);
    push.send("async").unwrap();
    let (r, body, thread) = rx.recv_timeout(LIMIT).unwrap();
    assert_eq!(r, Ok(()));
    assert_eq!(body.unwrap(), b"async");
    assert!(thread.unwrap().starts_with("nanoport:worker"));
}

#[test]
fn a_device_loop_is_broken_by_the_ttl() {
    // A raw rep and a raw req forwarding into each other through a loop: the raw req
    // dials the raw rep's own address, so every forwarded request comes straight back,
    // one backtrace word longer each time. The TTL (ttl-max) must end it.
    let url = inproc("loop");
    let front = Socket::open_raw(Protocol::Rep0).unwrap();
    let back = Socket::open_raw(Protocol::Req0).unwrap();
    front.set_max_ttl(4).unwrap();
    front.listen(&url).unwrap();
    back.dial(&url).unwrap();
    let client = Socket::req0().unwrap();
    client.dial(&url).unwrap();
    wait_pipes(&front, 2);
    // Forward by hand, as `device` does, counting the hops.
    front.set_recv_timeout(Duration::from_millis(500)).unwrap();
    back.set_send_timeout(Duration::from_secs(2)).unwrap();
    let _ = client.try_send("round and round");
    let mut hops = 0;
    while let Ok(m) = front.recv() {
        hops += 1;
        assert!(hops <= 4, "the TTL did not stop the loop");
        back.send(m).unwrap();
    }
    eprintln!("loop hops: {hops}");
    // One hop per backtrace word the TTL allows: the request went round, then was dropped.
    assert_eq!(
        hops, 4,
        "the request should go round until its backtrace reaches ttl-max"
    );
}

#[test]
fn blocking_calls_keep_their_place_behind_pending_callback_operations() {
    // A blocking receive that finds a message queued takes it without an aio; it must
    // still not overtake a callback receive that was waiting first.
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    let (tx, rx) = mpsc::channel();
    let aio = Aio::new(move |a: &Aio| {
        let _ = tx.send(a.take_msg().map(|m| m.body().to_vec()));
    })
    .unwrap();
    pull.recv_aio(&aio);
    push.send("first").unwrap();
    push.send("second").unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"second");
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first.as_deref(), Some(&b"first"[..]));

    // A blocking send that the protocol takes at once behaves as one on an aio: sent,
    // or refused with the protocol's error (rep0 with no request to answer).
    let rep = Socket::rep0().unwrap();
    assert_eq!(rep.send("no request").unwrap_err(), Error::State);
    push.send("third").unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"third");
}

#[test]
fn a_burst_sent_just_before_close_is_received_whole_over_inproc() {
    // inproc holds accepted messages for the reader (its stand-in for a socket buffer);
    // the sender closing right after its last send must not lose what was accepted.
    let url = inproc("burst-close");
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.set_send_timeout(LIMIT).unwrap();
    push.dial(&url).unwrap();
    wait_pipes(&push, 1);
    // 200 tiny messages: well within what the pipe's queue takes with nobody receiving
    // (INPROC_BUF counts each with its overhead: some 600 of these).
    for i in 0..200u32 {
        let mut m = Message::new();
        m.append_u32(i);
        push.send(m).unwrap();
    }
    push.close().unwrap();
    for i in 0..200u32 {
        let m = pull.recv().unwrap();
        assert_eq!(m.body(), &i.to_be_bytes()[..], "#{i}");
    }
    assert!(
        eventually(LIMIT, || (pull.pipe_count() == 0).then_some(())).is_some(),
        "the closed pipe goes once drained"
    );
}

#[test]
fn inproc_hands_a_shared_body_over_without_copying_it() {
    // A body shared with a clone is copy-on-write. Had inproc moved the header (a hop
    // count, a request or survey id) into the body on delivery, as NNG's does, every
    // message sent as a clone would have been copied: 64 KiB each here.
    let body = Message::from(vec![5u8; 65536]);
    let at = body.body().as_ptr();

    let url = inproc("shared-pair1");
    let (x, y) = (Socket::pair1().unwrap(), Socket::pair1().unwrap());
    x.listen(&url).unwrap();
    y.dial(&url).unwrap();
    for _ in 0..3 {
        y.send(body.clone()).unwrap();
        let m = x.recv().unwrap();
        assert_eq!((m.body().as_ptr(), m.len()), (at, 65536), "pair1 copied");
    }

    let url = inproc("shared-req");
    let (rep, req) = (Socket::rep0().unwrap(), Socket::req0().unwrap());
    rep.listen(&url).unwrap();
    req.dial(&url).unwrap();
    for _ in 0..3 {
        req.send(body.clone()).unwrap();
        let m = rep.recv().unwrap();
        assert_eq!(m.body().as_ptr(), at, "rep0 copied the request");
        rep.send(m).unwrap();
        let r = req.recv().unwrap();
        assert_eq!(r.body().as_ptr(), at, "req0 copied the reply");
    }

    let url = inproc("shared-survey");
    let (surveyor, respondent) = (Socket::surveyor0().unwrap(), Socket::respondent0().unwrap());
    surveyor.listen(&url).unwrap();
    respondent.dial(&url).unwrap();
    wait_pipes(&surveyor, 1);
    surveyor.send(body.clone()).unwrap();
    let m = respondent.recv().unwrap();
    assert_eq!(m.body().as_ptr(), at, "respondent0 copied the survey");
    respondent.send(m).unwrap();
    let r = surveyor.recv().unwrap();
    assert_eq!(r.body().as_ptr(), at, "surveyor0 copied the response");
}

/// A failed send gives its message back (`nng_sendmsg` leaves it with the caller), by
/// every path that can fail: the protocol refusing at once, nothing able to take it now,
/// a timeout, and a closed socket; on a context as on the socket.
#[test]
fn a_failed_send_hands_the_very_message_back() {
    let rep = Socket::rep0().unwrap();
    let e = rep.send("no request yet").unwrap_err();
    assert_eq!(e.error(), Error::State);
    assert_eq!(e.into_message().body(), b"no request yet");

    let push = Socket::push0().unwrap();
    let mut m = Message::from(&b"retry me"[..]);
    m.append(b" intact");
    let e = push.try_send(m).unwrap_err();
    assert_eq!(e.error(), Error::Again);
    let back = e.into_message();
    assert_eq!(back.body(), b"retry me intact");

    push.set_send_timeout(Duration::from_millis(20)).unwrap();
    let e = push.send(back).unwrap_err();
    assert_eq!(e.error(), Error::TimedOut);
    let back = e.into_message();
    assert_eq!(back.body(), b"retry me intact");

    // Now a peer is there: the message that came back goes through unchanged.
    let url = inproc("sendback");
    let pull = Socket::pull0().unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    pull.listen(&url).unwrap();
    push.dial(&url).unwrap();
    push.set_send_timeout(LIMIT).unwrap();
    push.send(back).unwrap();
    assert_eq!(pull.recv().unwrap().body(), b"retry me intact");

    let req = Socket::req0().unwrap();
    let ctx = req.context().unwrap();
    let e = ctx.try_send("ctx").unwrap_err();
    assert_eq!(e.error(), Error::Again);
    assert_eq!(e.message().body(), b"ctx");
    assert_eq!(ctx.try_recv().map(|_| ()), Err(Error::State));
    push.close().unwrap();
    let e = push.send("after close").unwrap_err();
    assert_eq!(
        (e.error(), e.message().body()),
        (Error::Closed, &b"after close"[..])
    );
}

/// `nng_dialer_start_aio`: every outcome arrives on the aio, once; a failed blocking
/// start leaves the dialer stopped but usable (NNG clears only "started"); `nng_dial`
/// closes the dialer it made when it fails; a bad URL fails at creation.
#[test]
fn dialer_start_reports_through_the_aio_and_a_failed_start_can_be_retried() {
    let s = Socket::push0().unwrap();
    // A port nobody listens on (bound and released).
    let url = tcp();

    let d = s.dialer(&url).unwrap();
    assert_eq!(d.start(false), Err(Error::ConnRefused));
    // Not closed: it may be started again, and now it connects.
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    assert_eq!(d.start(false), Ok(()));
    assert_eq!(d.start(true), Err(Error::State));

    let aio = Aio::new_waitable().unwrap();
    d.start_aio(&aio);
    aio.wait();
    assert_eq!(
        aio.result(),
        Err(Error::State),
        "already started, on the aio"
    );

    let d2 = s.dialer(&url).unwrap();
    d2.start_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), Ok(()), "the first attempt's result");
    assert_eq!(d2.close(), Ok(()));
    assert_eq!(d2.close(), Err(Error::Closed));
    d2.start_aio(&aio);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::Closed), "closed, on the aio");

    // nng_dial: the dialer it made is closed when the first attempt fails.
    let other = tcp();
    assert_eq!(s.dial(&other).map(|_| ()), Err(Error::ConnRefused));
    assert_eq!(s.dialer("tcp://").map(|_| ()), Err(Error::AddrInval));
    assert_eq!(s.dialer("nope://x").map(|_| ()), Err(Error::NotSup));
}
