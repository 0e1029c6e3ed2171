//! Every idle strategy keeps every promise of the default one: messages flow, timeouts
//! fire, timers run. (What they cost and gain is measured by the `idle_rt` benchmark.)

mod common;

use std::time::Duration;

use common::{inproc, ipc, tcp};
use nanoport::{set_idle_strategy, sleep_aio, Aio, Error, IdleStrategy, Socket};

/// One test function, because the strategy is process-wide.
#[test]
fn each_strategy_moves_messages_and_honours_timeouts() {
    for strategy in [
        IdleStrategy::SpinThenPark(Duration::from_micros(200)),
        IdleStrategy::BusySpin,
        IdleStrategy::Park,
    ] {
        set_idle_strategy(strategy);
        for url in [inproc("idle"), ipc("idle"), tcp()] {
            let rep = Socket::rep0().unwrap();
            rep.listen(&url).unwrap();
            let req = Socket::req0().unwrap();
            req.dial(&url).unwrap();
            let server = rep.clone();
            let echo = std::thread::spawn(move || {
                for _ in 0..100 {
                    let m = server.recv().unwrap();
                    server.send(m).unwrap();
                }
            });
            for i in 0..100u32 {
                req.send(&i.to_be_bytes()[..]).unwrap();
                assert_eq!(
                    req.recv().unwrap().body(),
                    i.to_be_bytes(),
                    "{strategy:?} {url}"
                );
            }
            echo.join().unwrap();
            // A receive that nothing answers still times out.
            rep.set_recv_timeout(Duration::from_millis(30)).unwrap();
            assert_eq!(
                rep.recv().err(),
                Some(Error::TimedOut),
                "{strategy:?} {url}"
            );
        }
        // Timers fire, and a waitable aio's wait ends.
        let aio = Aio::new_waitable().unwrap();
        sleep_aio(Duration::from_millis(5), &aio);
        aio.wait();
        assert_eq!(aio.result(), Ok(()), "{strategy:?}");
    }
    assert_eq!(nanoport::idle_strategy(), IdleStrategy::Park);
}
