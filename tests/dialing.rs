//! Dialing as a long-running service does: the host name is looked up again at every
//! attempt, off the reactor, each address found is tried in turn; and the endpoint options
//! that shape a connection (`local-address`, `ipc:permissions`, keep-alive timing).
//!
//! The program-supplied resolver is process-wide: this binary installs one at first use
//! that answers the names in [`NAMES`] (each test uses its own) and leaves the rest to
//! the system.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

use common::{eventually, ipc, tcp};
use nanoport::{opt, Aio, Error, OptValue, Result, Socket, Timeout};

type Answer = Box<dyn Fn(u16) -> Option<Result<Vec<SocketAddr>>> + Send + Sync>;

static NAMES: Mutex<Option<HashMap<String, Arc<Answer>>>> = Mutex::new(None);

/// Answers `host` with `f` from now on (installing this binary's resolver once).
fn answer(host: &str, f: impl Fn(u16) -> Option<Result<Vec<SocketAddr>>> + Send + Sync + 'static) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        nanoport::set_resolver(Some(Arc::new(|host: &str, port: u16| {
            let f = NAMES.lock().unwrap().as_ref()?.get(host).cloned()?;
            f(port)
        })));
    });
    NAMES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(host.to_string(), Arc::new(Box::new(f)));
}

const LIMIT: Duration = Duration::from_secs(10);

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Whether this machine can listen on IPv6 loopback.
fn have_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

fn recv_body(s: &Socket) -> Vec<u8> {
    s.set_recv_timeout(LIMIT).unwrap();
    s.recv().unwrap().body().to_vec()
}

#[test]
fn localhost_connects_whichever_family_the_resolver_gives_first() {
    // The listener sits on the last address `localhost` resolves to: when there are two
    // (::1 and 127.0.0.1), the dialer must get past the first, refused one.
    use std::net::ToSocketAddrs;
    let found: Vec<SocketAddr> = ("localhost", 1).to_socket_addrs().unwrap().collect();
    let last = found.last().unwrap().ip();
    let pull = Socket::pull0().unwrap();
    let host = match last {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    let l = pull.listen(&format!("tcp://{host}:0")).unwrap();
    let port = l.port().unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&format!("tcp://localhost:{port}")).unwrap();
    push.send("via localhost").unwrap();
    assert_eq!(recv_body(&pull), b"via localhost");
}

#[test]
fn each_address_is_tried_in_turn_until_one_answers() {
    // IPv6 first, but only IPv4 listens.
    let pull = Socket::pull0().unwrap();
    let l = pull.listen("tcp://127.0.0.1:0").unwrap();
    let p = l.port().unwrap();
    answer("v6-then-v4.nanoport.test", move |port| {
        Some(Ok(vec![
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 3], port ^ 1)), // nobody there either
            SocketAddr::from(([127, 0, 0, 1], port)),
        ]))
    });
    let push = Socket::push0().unwrap();
    push.dial(&format!("tcp://v6-then-v4.nanoport.test:{p}"))
        .unwrap();
    push.send("third address").unwrap();
    assert_eq!(recv_body(&pull), b"third address");

    // The other way round: IPv4 refused, IPv6 listens.
    if !have_ipv6_loopback() {
        eprintln!("SKIP (part): no IPv6 loopback on this machine");
        return;
    }
    let pull6 = Socket::pull0().unwrap();
    let p6 = pull6.listen("tcp://[::1]:0").unwrap().port().unwrap();
    answer("v4-then-v6.nanoport.test", move |port| {
        Some(Ok(vec![
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
        ]))
    });
    // 127.0.0.1 on that port must be free for the test to mean anything.
    if std::net::TcpListener::bind(("127.0.0.1", p6)).is_err() {
        eprintln!("SKIP (part): 127.0.0.1:{p6} is taken");
        return;
    }
    let push6 = Socket::push0().unwrap();
    push6
        .dial(&format!("tcp://v4-then-v6.nanoport.test:{p6}"))
        .unwrap();
    push6.send("second address").unwrap();
    assert_eq!(recv_body(&pull6), b"second address");

    // Every address refused: the first one's error.
    answer("all-refused.nanoport.test", move |port| {
        Some(Ok(vec![
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
        ]))
    });
    let free = port_of(&tcp());
    let s = Socket::push0().unwrap();
    assert_eq!(
        s.dial(&format!("tcp://all-refused.nanoport.test:{free}"))
            .map(|_| ()),
        Err(Error::ConnRefused)
    );
}

#[test]
fn the_name_is_looked_up_again_when_the_dialer_reconnects() {
    // The peer moves (to the other family when there is IPv6 loopback) after the first
    // pipe closes; the dialer finds it only by looking the name up again.
    let first = Socket::pull0().unwrap();
    let p1 = first.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let second = Socket::pull0().unwrap();
    let moved_to: SocketAddr = if have_ipv6_loopback() {
        let p = second.listen("tcp://[::1]:0").unwrap().port().unwrap();
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], p))
    } else {
        let p = second.listen("tcp://127.0.0.2:0").unwrap().port().unwrap();
        SocketAddr::from(([127, 0, 0, 2], p))
    };
    let now = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], p1))));
    let lookups = Arc::new(AtomicUsize::new(0));
    {
        let (now, lookups) = (now.clone(), lookups.clone());
        answer("moving.nanoport.test", move |_| {
            lookups.fetch_add(1, Ordering::SeqCst);
            Some(Ok(vec![*now.lock().unwrap()]))
        });
    }
    let push = Socket::push0().unwrap();
    push.set_reconnect_min_time(Duration::from_millis(10))
        .unwrap();
    push.set_reconnect_max_time(Duration::from_millis(50))
        .unwrap();
    // The URL's port is only what the resolver is asked for; it answers full addresses.
    push.dial("tcp://moving.nanoport.test:1").unwrap();
    push.send("to the first place").unwrap();
    assert_eq!(recv_body(&first), b"to the first place");
    assert_eq!(lookups.load(Ordering::SeqCst), 1);

    *now.lock().unwrap() = moved_to;
    first.close().unwrap(); // the pipe closes; the dialer redials
                            // Until push sees its pipe closed, a send may still go into it (and be lost with
                            // it): send until one arrives at the new place.
    push.set_send_timeout(LIMIT).unwrap();
    second.set_recv_timeout(Duration::from_millis(100)).unwrap();
    let arrived = eventually(LIMIT, || {
        push.send("to where it moved").unwrap();
        second.recv().ok()
    });
    assert_eq!(arrived.unwrap().body(), b"to where it moved");
    assert!(lookups.load(Ordering::SeqCst) >= 2);
}

#[test]
fn a_name_that_does_not_resolve_is_addr_inval_and_is_retried_with_back_off() {
    let url = "tcp://no-such-host.invalid:5555";
    // NNG's resolver reports EAI_NONAME as NNG_EADDRINVAL.
    let s = Socket::push0().unwrap();
    assert_eq!(s.dial(url).map(|_| ()), Err(Error::AddrInval));

    let (tx, rx) = std::sync::mpsc::channel();
    let aio = Aio::new(move |a: &Aio| {
        let _ = tx.send(a.result());
    })
    .unwrap();
    s.dialer(url).unwrap().start_aio(&aio);
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), Err(Error::AddrInval));

    // In the background the dialer keeps trying, looking the name up each time (counted
    // by the program's resolver, which leaves the answer to the system's).
    let lookups = Arc::new(AtomicUsize::new(0));
    {
        let lookups = lookups.clone();
        answer("still-missing.invalid", move |_| {
            lookups.fetch_add(1, Ordering::SeqCst);
            None
        });
    }
    let bg = Socket::push0().unwrap();
    bg.set_reconnect_min_time(Duration::from_millis(5)).unwrap();
    bg.set_reconnect_max_time(Duration::from_millis(20))
        .unwrap();
    let d = bg
        .dial_nonblocking("tcp://still-missing.invalid:5555")
        .unwrap();
    assert!(
        eventually(LIMIT, || (lookups.load(Ordering::SeqCst) >= 3)
            .then_some(()))
        .is_some(),
        "the dialer retries, looking the name up each time"
    );
    d.close().unwrap();
}

/// A lookup that hangs until released (a DNS server that does not answer).
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    threads: Mutex<Vec<String>>,
    entered: AtomicUsize,
}

impl Gate {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

#[test]
fn a_hung_lookup_blocks_neither_the_reactor_nor_other_dialers_nor_close() {
    let gate = Arc::new(Gate {
        open: Mutex::new(false),
        cv: Condvar::new(),
        threads: Mutex::new(Vec::new()),
        entered: AtomicUsize::new(0),
    });
    {
        let gate = gate.clone();
        answer("hung.nanoport.test", move |_| {
            gate.threads
                .lock()
                .unwrap()
                .push(std::thread::current().name().unwrap_or("").to_string());
            gate.entered.fetch_add(1, Ordering::SeqCst);
            let open = gate.open.lock().unwrap();
            // Bounded, so a broken test cannot hang the suite.
            let _ = gate
                .cv
                .wait_timeout_while(open, Duration::from_secs(60), |o| !*o);
            Some(Err(Error::AddrInval))
        });
    }
    let hung = Socket::push0().unwrap();
    let d = hung
        .dial_nonblocking("tcp://hung.nanoport.test:5555")
        .unwrap();
    assert!(
        eventually(LIMIT, || (gate.entered.load(Ordering::SeqCst) == 1)
            .then_some(()))
        .is_some()
    );

    // While the lookup hangs: tcp connections to literal addresses are made and carry
    // messages both ways (the reactor and the workers are free).
    let url = tcp();
    let rep = Socket::rep0().unwrap();
    rep.listen(&url).unwrap();
    let req = Socket::req0().unwrap();
    req.dial(&url).unwrap();
    req.set_recv_timeout(LIMIT).unwrap();
    rep.set_recv_timeout(LIMIT).unwrap();
    for i in 0..20 {
        req.send(format!("ping {i}").as_str()).unwrap();
        let m = rep.recv().unwrap();
        rep.send(m).unwrap();
        assert_eq!(req.recv().unwrap().body(), format!("ping {i}").as_bytes());
    }
    // Closing the dialer does not wait for its lookup.
    d.close().unwrap();
    hung.close().unwrap();
    assert_eq!(gate.entered.load(Ordering::SeqCst), 1);

    gate.release();
    let names = gate.threads.lock().unwrap().clone();
    assert_eq!(names, vec!["nanoport:resolver".to_string()]);
}

#[test]
fn a_tcp_dialer_starts_from_its_local_address() {
    let pull = Socket::pull0().unwrap();
    let p = pull.listen("tcp://127.0.0.1:0").unwrap().port().unwrap();
    let push = Socket::push0().unwrap();
    let d = push.dialer(&format!("tcp://127.0.0.1:{p}")).unwrap();
    let src = IpAddr::from(Ipv4Addr::new(127, 0, 0, 2));
    d.set_local_address(src).unwrap();
    assert_eq!(d.local_address(), Some(src));
    assert_eq!(
        d.get_option(opt::LOCAL_ADDRESS).unwrap(),
        OptValue::Str("127.0.0.2".into())
    );
    d.start(false).unwrap();
    push.send("from 127.0.0.2").unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    let m = pull.recv().unwrap();
    let remote = m.pipe().unwrap().option("remote-address").unwrap();
    assert!(remote.starts_with("tcp://127.0.0.2:"), "{remote}");

    // By name, and through a host name (only same-family addresses are dialed).
    answer("dual-local.nanoport.test", move |port| {
        Some(Ok(vec![
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ]))
    });
    let push2 = Socket::push0().unwrap();
    let d2 = push2
        .dialer(&format!("tcp://dual-local.nanoport.test:{p}"))
        .unwrap();
    d2.set_option(opt::LOCAL_ADDRESS, OptValue::Str("127.0.0.3:0".into()))
        .unwrap();
    assert_eq!(d2.local_address(), Some(IpAddr::from([127, 0, 0, 3])));
    d2.start(false).unwrap();
    push2.send("from 127.0.0.3").unwrap();
    let m = pull.recv().unwrap();
    assert_eq!(m.body(), b"from 127.0.0.3");
    let remote = m.pipe().unwrap().option("remote-address").unwrap();
    assert!(remote.starts_with("tcp://127.0.0.3:"), "{remote}");

    // Refusals, as NNG's: a port, a listener, an ipc dialer; no address of its family.
    assert_eq!(
        d2.set_option(opt::LOCAL_ADDRESS, OptValue::Str("127.0.0.3:80".into())),
        Err(Error::AddrInval)
    );
    assert_eq!(
        d2.set_option(opt::LOCAL_ADDRESS, OptValue::Int(1)),
        Err(Error::BadType)
    );
    let l = pull.listener("tcp://127.0.0.1:0").unwrap();
    assert_eq!(
        l.set_option(opt::LOCAL_ADDRESS, OptValue::Str("127.0.0.1".into())),
        Err(Error::NotSup)
    );
    let di = push.dialer(&ipc("locaddr")).unwrap();
    assert_eq!(di.set_local_address(src), Err(Error::NotSup));
    let d6 = push.dialer(&format!("tcp://127.0.0.1:{p}")).unwrap();
    d6.set_local_address(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
        .unwrap();
    assert_eq!(d6.start(false), Err(Error::AddrInval));
    // Cleared, it dials as usual.
    d6.set_option(opt::LOCAL_ADDRESS, OptValue::Str(String::new()))
        .unwrap();
    assert_eq!(d6.local_address(), None);
    d6.start(false).unwrap();
}

#[cfg(feature = "ws")]
#[test]
fn a_ws_dialer_starts_from_its_local_address_too() {
    let pull = Socket::pull0().unwrap();
    let url = common::ws("/from");
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    let d = push.dialer(&url).unwrap();
    d.set_local_address(IpAddr::from([127, 0, 0, 4])).unwrap();
    d.start(false).unwrap();
    push.send("over ws").unwrap();
    pull.set_recv_timeout(LIMIT).unwrap();
    let m = pull.recv().unwrap();
    let remote = m.pipe().unwrap().option("remote-address").unwrap();
    assert!(remote.starts_with("ws://127.0.0.4:"), "{remote}");
}

#[test]
fn ipc_permissions_set_the_socket_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    for (mode, by_name) in [(0o600u32, false), (0o640, true)] {
        let url = ipc("perms");
        let path = url.strip_prefix("ipc://").unwrap().to_string();
        let s = Socket::pull0().unwrap();
        let l = s.listener(&url).unwrap();
        if by_name {
            l.set_option(opt::IPC_PERMISSIONS, OptValue::Int(mode as i32))
                .unwrap();
        } else {
            l.set_ipc_permissions(mode).unwrap();
        }
        assert_eq!(l.ipc_permissions(), Some(mode));
        assert_eq!(
            l.get_option(opt::IPC_PERMISSIONS).unwrap(),
            OptValue::Int(mode as i32)
        );
        l.start().unwrap();
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, mode, "{path}");
        // Fixed once started, as NNG's.
        assert_eq!(l.set_ipc_permissions(0o666), Err(Error::Busy));
        // A peer still connects (the owner may).
        let push = Socket::push0().unwrap();
        push.dial(&url).unwrap();
    }
    let s = Socket::pull0().unwrap();
    let l = s.listener(&ipc("perms-bad")).unwrap();
    assert_eq!(l.get_option(opt::IPC_PERMISSIONS), Err(Error::NoEnt));
    assert_eq!(l.set_ipc_permissions(0o170_000), Err(Error::Inval));
    assert_eq!(
        l.set_option(opt::IPC_PERMISSIONS, OptValue::Int(-1)),
        Err(Error::Inval)
    );
    let t = s.listener(&tcp()).unwrap();
    assert_eq!(t.set_ipc_permissions(0o600), Err(Error::NotSup));
    let d = s.dialer(&ipc("perms-dialer")).unwrap();
    assert_eq!(
        d.set_option(opt::IPC_PERMISSIONS, OptValue::Int(0o600)),
        Err(Error::NotSup)
    );
}

/// The keep-alive timing the kernel has on the socket under `pipe` (getsockopt).
fn kernel_timing(pipe: &nanoport::Pipe) -> (String, String, String, String) {
    (
        pipe.option("tcp-keepalive").unwrap(),
        pipe.option("tcp-keepalive-idle").unwrap(),
        pipe.option("tcp-keepalive-interval").unwrap(),
        pipe.option("tcp-keepalive-count").unwrap(),
    )
}

#[test]
fn keep_alive_timing_reaches_the_kernel_and_live_pipes() {
    let s = |x: &str| x.to_string();
    let url = tcp();
    let a = Socket::pair0().unwrap();
    let l = a.listener(&url).unwrap();
    l.set_tcp_keepalive(true).unwrap();
    l.set_option(
        opt::TCP_KEEPALIVE_IDLE,
        OptValue::Duration(Timeout::After(Duration::from_secs(42))),
    )
    .unwrap();
    l.set_tcp_keepalive_interval(Duration::from_secs(7))
        .unwrap();
    l.set_option(opt::TCP_KEEPALIVE_COUNT, OptValue::Int(5))
        .unwrap();
    l.start().unwrap();

    let b = Socket::pair0().unwrap();
    let d = b.dialer(&url).unwrap();
    d.set_tcp_keepalive(true).unwrap();
    d.set_tcp_keepalive_idle(Duration::from_secs(30)).unwrap();
    d.set_tcp_keepalive_interval(Duration::from_millis(3500)) // whole seconds: 3 s
        .unwrap();
    d.set_tcp_keepalive_count(4).unwrap();
    assert_eq!(d.tcp_keepalive_interval(), Some(Duration::from_secs(3)));
    d.start(false).unwrap();

    a.set_recv_timeout(LIMIT).unwrap();
    b.set_recv_timeout(LIMIT).unwrap();
    b.send("to a").unwrap();
    let on_a = a.recv().unwrap().pipe().unwrap();
    a.send("to b").unwrap();
    let on_b = b.recv().unwrap().pipe().unwrap();
    assert_eq!(
        kernel_timing(&on_a),
        (s("true"), s("42000"), s("7000"), s("5"))
    );
    assert_eq!(
        kernel_timing(&on_b),
        (s("true"), s("30000"), s("3000"), s("4"))
    );

    // A live pipe follows a change.
    d.set_tcp_keepalive_idle(Duration::from_secs(90)).unwrap();
    assert_eq!(on_b.option("tcp-keepalive-idle").unwrap(), "90000");
    assert_eq!(
        d.get_option(opt::TCP_KEEPALIVE_IDLE).unwrap(),
        OptValue::Duration(Timeout::After(Duration::from_secs(90)))
    );

    // Back to the system's; out of range refused.
    d.set_option(
        opt::TCP_KEEPALIVE_IDLE,
        OptValue::Duration(Timeout::Default),
    )
    .unwrap();
    assert_eq!(d.tcp_keepalive_idle(), None);
    assert_eq!(
        d.get_option(opt::TCP_KEEPALIVE_IDLE).unwrap(),
        OptValue::Duration(Timeout::Default)
    );
    assert_eq!(
        d.set_tcp_keepalive_idle(Duration::from_millis(500)),
        Err(Error::Inval)
    );
    assert_eq!(
        d.set_tcp_keepalive_interval(Duration::from_secs(40_000)),
        Err(Error::Inval)
    );
    assert_eq!(d.set_tcp_keepalive_count(128), Err(Error::Inval));
    assert_eq!(
        d.set_option(opt::TCP_KEEPALIVE_COUNT, OptValue::Int(-3)),
        Err(Error::Inval)
    );
    assert_eq!(
        d.set_option(
            opt::TCP_KEEPALIVE_INTERVAL,
            OptValue::Duration(Timeout::Infinite)
        ),
        Err(Error::Inval)
    );
    d.set_tcp_keepalive_count(None).unwrap();
    assert_eq!(
        d.get_option(opt::TCP_KEEPALIVE_COUNT).unwrap(),
        OptValue::Int(0)
    );
    // Per endpoint only, as the message says.
    assert_eq!(
        b.set_option(
            opt::TCP_KEEPALIVE_IDLE,
            OptValue::Duration(Timeout::Default)
        ),
        Err(Error::NotSup)
    );
}

#[cfg(feature = "ws")]
#[test]
fn a_ws_dialer_looks_its_name_up_and_tries_each_address() {
    let pull = Socket::pull0().unwrap();
    let url = common::ws("/named");
    pull.listen(&url).unwrap();
    let p = port_of(url.strip_suffix("/named").unwrap());
    let lookups = Arc::new(AtomicUsize::new(0));
    {
        let lookups = lookups.clone();
        answer("ws-dual.nanoport.test", move |port| {
            lookups.fetch_add(1, Ordering::SeqCst);
            Some(Ok(vec![
                SocketAddr::from(([127, 0, 0, 5], port ^ 1)), // refused
                SocketAddr::from(([127, 0, 0, 1], port)),
            ]))
        });
    }
    let push = Socket::push0().unwrap();
    push.dial(&format!("ws://ws-dual.nanoport.test:{p}/named"))
        .unwrap();
    push.send("over ws by name").unwrap();
    assert_eq!(recv_body(&pull), b"over ws by name");
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    // A name that does not resolve, as for tcp.
    let s = Socket::push0().unwrap();
    assert_eq!(
        s.dial("ws://no-such-host.invalid:80/x").map(|_| ()),
        Err(Error::AddrInval)
    );
}
