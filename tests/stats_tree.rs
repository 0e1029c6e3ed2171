//! The statistics tree (`nng_stats_get`): per socket, dialer, listener and pipe, with
//! NNG's names, counted as traffic flows.

mod common;

use std::time::Duration;

use common::{eventually, nngcat_or_skip, tcp, NngCat};
use nanoport::{stats, Socket, Stat, StatValue};

fn counter(s: &Stat, name: &str) -> u64 {
    match s.find(name).map(Stat::value) {
        Some(StatValue::Counter(v) | StatValue::Level(v) | StatValue::Id(v)) => *v,
        other => panic!("{name}: {other:?} in\n{s}"),
    }
}

fn child<'a>(s: &'a Stat, scope: &str) -> &'a Stat {
    s.children()
        .iter()
        .find(|c| c.name() == scope)
        .unwrap_or_else(|| panic!("no {scope} scope in\n{s}"))
}

#[test]
fn traffic_is_counted_per_socket_pipe_and_endpoint() {
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let push = Socket::push0().unwrap();
    push.dial(&url).unwrap();
    for _ in 0..10 {
        push.send(vec![1u8; 100]).unwrap();
    }
    for _ in 0..10 {
        pull.recv().unwrap();
    }
    let (ps, ls) = (push.stat(), pull.stat());
    assert_eq!(counter(&ps, "tx_msgs"), 10);
    assert_eq!(counter(&ps, "tx_bytes"), 1000);
    assert_eq!(counter(&ls, "rx_msgs"), 10);
    assert_eq!(counter(&ls, "rx_bytes"), 1000);
    assert_eq!(counter(&ls, "pipes"), 1);
    assert_eq!(counter(&ls, "pipes_added"), 1);
    assert_eq!(counter(&ls, "listeners"), 1);
    assert_eq!(counter(&ps, "dialers"), 1);
    // The pipe scopes agree with their sockets.
    assert_eq!(counter(child(&ps, "pipe"), "tx_msgs"), 10);
    assert_eq!(counter(child(&ls, "pipe"), "rx_bytes"), 1000);
    // Endpoints: one connection made, one accepted.
    assert_eq!(counter(child(&ps, "dialer"), "connect"), 1);
    assert_eq!(counter(child(&ls, "listener"), "accept"), 1, "{ls}");
    assert_eq!(
        child(&ps, "dialer").find("url").map(Stat::value),
        Some(&StatValue::String(url.clone()))
    );
    // The pipe leaves: counted, and its scope goes.
    drop(push);
    assert!(
        eventually(Duration::from_secs(5), || (counter(&pull.stat(), "pipes")
            == 0)
            .then_some(()))
        .is_some()
    );
    let ls = pull.stat();
    assert_eq!(counter(&ls, "pipes_removed"), 1);
    assert!(ls.children().iter().all(|c| c.name() != "pipe"), "{ls}");
}

#[test]
fn refused_dials_are_counted_by_cause() {
    let url = tcp(); // nobody listens there
    let s = Socket::push0().unwrap();
    let d = s.dialer(&url).unwrap();
    d.set_reconnect_min_time(Duration::from_millis(10)).unwrap();
    d.set_reconnect_max_time(Duration::from_millis(10)).unwrap();
    d.start_nonblocking().unwrap();
    let refused = eventually(Duration::from_secs(10), || {
        let n = counter(child(&s.stat(), "dialer"), "refused");
        (n >= 3).then_some(n)
    });
    assert!(refused.is_some(), "{}", s.stat());
    assert_eq!(counter(child(&s.stat(), "dialer"), "connect"), 0);
}

#[test]
fn the_process_tree_holds_every_open_socket_and_drops_closed_ones() {
    let a = Socket::rep0().unwrap();
    let b = Socket::sub0().unwrap();
    let ids = |t: &Stat| -> Vec<u64> {
        t.children()
            .iter()
            .filter_map(|c| match c.find("id").map(Stat::value) {
                Some(StatValue::Id(v)) => Some(*v),
                _ => None,
            })
            .collect()
    };
    let all = stats();
    assert!(ids(&all).contains(&u64::from(a.id())));
    assert!(ids(&all).contains(&u64::from(b.id())));
    b.close().unwrap();
    let all = stats();
    assert!(ids(&all).contains(&u64::from(a.id())));
    assert!(!ids(&all).contains(&u64::from(b.id())));
    let text = a.stat().to_string();
    assert!(
        text.starts_with("socket:\n") && text.contains("protocol") && text.contains("\"rep\""),
        "{text}"
    );
}

#[test]
fn messages_from_nngcat_are_counted() {
    if !nngcat_or_skip("messages_from_nngcat_are_counted") {
        return;
    }
    let url = tcp();
    let pull = Socket::pull0().unwrap();
    pull.listen(&url).unwrap();
    let cat = NngCat::spawn(&[
        "--push0",
        "--dial",
        &url,
        "--data",
        "abcd",
        "--count",
        "3",
        "--interval",
        "0",
    ]);
    for _ in 0..3 {
        pull.recv().unwrap();
    }
    let s = pull.stat();
    assert_eq!(counter(&s, "rx_msgs"), 3);
    assert_eq!(counter(&s, "rx_bytes"), 12);
    assert!(counter(child(&s, "listener"), "accept") >= 1);
    drop(cat);
}
