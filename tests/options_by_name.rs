//! Every option by its NNG name, with NNG's type checks, on sockets, contexts, dialers
//! and listeners (`nng_socket_set`, `nng_ctx_get`, `nng_dialer_set`, ...).

mod common;

use std::time::Duration;

use common::tcp;
use nanoport::{opt, Error, OptValue, Socket, Timeout};

fn ms(n: u64) -> OptValue {
    OptValue::Duration(Timeout::After(Duration::from_millis(n)))
}

#[test]
fn socket_options_by_name_round_trip_with_nng_s_types() {
    let s = Socket::req0().unwrap();
    let cases = [
        (opt::RECV_TIMEOUT, ms(250)),
        (opt::SEND_TIMEOUT, ms(125)),
        (opt::RECV_SIZE_MAX, OptValue::Size(4096)),
        (opt::RECONNECT_TIME_MIN, ms(50)),
        (opt::RECONNECT_TIME_MAX, ms(800)),
        (opt::TCP_NODELAY, OptValue::Bool(false)),
        (opt::TCP_KEEPALIVE, OptValue::Bool(true)),
        (opt::SEND_AHEAD_MAX, OptValue::Size(65536)),
        (opt::SOCKET_NAME, OptValue::Str("front door".into())),
        (opt::MAX_TTL, OptValue::Int(3)),
        (opt::REQ_RESEND_TIME, ms(9000)),
    ];
    for (name, v) in cases {
        s.set_option(name, v.clone()).unwrap();
        assert_eq!(s.get_option(name).unwrap(), v, "{name}");
    }
    // The typed setters see the same values.
    assert_eq!(s.recv_max_size(), Ok(4096));
    assert_eq!(s.name().unwrap(), "front door");
    // Read-only facts of the protocol.
    assert_eq!(s.get_option(opt::PROTOCOL), Ok(OptValue::Int(0x30)));
    assert_eq!(s.get_option(opt::PEER), Ok(OptValue::Int(0x31)));
    assert_eq!(
        s.get_option(opt::PROTOCOL_NAME),
        Ok(OptValue::Str("req".into()))
    );
    assert_eq!(
        s.get_option(opt::PEER_NAME),
        Ok(OptValue::Str("rep".into()))
    );
    assert_eq!(s.get_option(opt::RAW), Ok(OptValue::Bool(false)));
    // NNG's refusals.
    assert_eq!(
        s.set_option(opt::RECV_TIMEOUT, OptValue::Int(5)),
        Err(Error::BadType)
    );
    assert_eq!(
        s.set_option(opt::TCP_NODELAY, OptValue::Size(1)),
        Err(Error::BadType)
    );
    assert_eq!(
        s.set_option(
            opt::RECONNECT_TIME_MIN,
            OptValue::Duration(Timeout::Infinite)
        ),
        Err(Error::Inval)
    );
    assert_eq!(
        s.set_option(opt::PROTOCOL, OptValue::Int(1)),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        s.set_option("no-such-option", OptValue::Int(1)),
        Err(Error::NotSup)
    );
    assert_eq!(s.get_option("no-such-option"), Err(Error::NotSup));
    s.close().unwrap();
    assert_eq!(s.get_option(opt::RECV_TIMEOUT), Err(Error::Closed));
    assert_eq!(s.set_option(opt::RECV_TIMEOUT, ms(1)), Err(Error::Closed));
}

#[test]
fn context_dialer_and_listener_options_by_name() {
    let s = Socket::req0().unwrap();
    let c = s.context().unwrap();
    c.set_option(opt::RECV_TIMEOUT, ms(40)).unwrap();
    assert_eq!(c.get_option(opt::RECV_TIMEOUT), Ok(ms(40)));
    assert_eq!(
        c.recv_timeout(),
        Ok(Timeout::After(Duration::from_millis(40)))
    );
    assert_eq!(
        c.set_option(opt::SEND_TIMEOUT, OptValue::Bool(true)),
        Err(Error::BadType)
    );
    c.set_option(opt::REQ_RESEND_TIME, ms(1500)).unwrap();
    assert_eq!(c.get_option(opt::REQ_RESEND_TIME), Ok(ms(1500)));

    let url = tcp();
    let rep = Socket::rep0().unwrap();
    let l = rep.listener("tcp://127.0.0.1:0").unwrap();
    l.set_option(opt::RECV_SIZE_MAX, OptValue::Size(999))
        .unwrap();
    l.start().unwrap();
    assert_eq!(l.get_option(opt::RECV_SIZE_MAX), Ok(OptValue::Size(999)));
    let port = l.port().unwrap();
    assert_eq!(
        l.get_option(opt::TCP_BOUND_PORT),
        Ok(OptValue::Int(i32::from(port)))
    );
    assert_eq!(
        l.set_option(opt::TCP_BOUND_PORT, OptValue::Int(1)),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        l.set_option(opt::RECONNECT_TIME_MIN, ms(5)),
        Err(Error::NotSup),
        "listeners do not reconnect"
    );

    let d = s.dialer(&url).unwrap();
    d.set_option(opt::RECONNECT_TIME_MIN, ms(30)).unwrap();
    d.set_option(opt::TCP_NODELAY, OptValue::Bool(false))
        .unwrap();
    assert_eq!(d.get_option(opt::RECONNECT_TIME_MIN), Ok(ms(30)));
    assert_eq!(d.get_option(opt::TCP_NODELAY), Ok(OptValue::Bool(false)));
    assert_eq!(d.get_option(opt::URL), Ok(OptValue::Str(url.clone())));
    assert_eq!(
        d.set_option(opt::URL, OptValue::Str("tcp://x:1".into())),
        Err(Error::ReadOnly)
    );
    assert_eq!(
        d.set_option(opt::RECV_SIZE_MAX, OptValue::Int(5)),
        Err(Error::BadType)
    );
}

#[test]
fn every_endpoint_setter_has_a_getter_that_reads_it_back() {
    let s = Socket::req0().unwrap();
    let d = s.dialer("tcp://127.0.0.1:1").unwrap();
    d.set_reconnect_min_time(Duration::from_millis(30)).unwrap();
    d.set_reconnect_max_time(Duration::from_millis(900))
        .unwrap();
    d.set_tcp_nodelay(false).unwrap();
    d.set_tcp_keepalive(true).unwrap();
    d.set_recv_max_size(777).unwrap();
    d.set_send_ahead_max(4096).unwrap();
    assert_eq!(d.reconnect_min_time(), Duration::from_millis(30));
    assert_eq!(d.reconnect_max_time(), Duration::from_millis(900));
    assert!(!d.tcp_nodelay());
    assert!(d.tcp_keepalive());
    assert_eq!(d.recv_max_size(), 777);
    assert_eq!(d.send_ahead_max(), 4096);

    let l = s.listener(&tcp()).unwrap();
    l.set_handshake_timeout(Duration::from_millis(1500))
        .unwrap();
    l.set_tcp_nodelay(false).unwrap();
    l.set_tcp_keepalive(true).unwrap();
    l.set_recv_max_size(555).unwrap();
    assert_eq!(l.handshake_timeout(), Duration::from_millis(1500));
    assert!(!l.tcp_nodelay());
    assert!(l.tcp_keepalive());
    assert_eq!(l.recv_max_size(), 555);
}
