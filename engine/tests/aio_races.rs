//! Multi-threaded stress tests of the aio races: cancel, abort, stop, a deadline and the
//! provider's completion, fired from several threads at once, thousands of times.
//!
//! Each round is lined up with barriers (no sleeps): racers wait at a start barrier, spin a
//! random few iterations so every interleaving gets its turn, act, and meet at an end
//! barrier; then the round is checked. Callbacks are counted with atomics.

mod common;

use nanoport_engine::AioProvider;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::Duration;

use common::{eventually, CountingHook, Rng};
use nanoport_engine::{sleep_aio, Aio, Error, Message, OpToken, SendAttempt, Timeout};

/// One racer's move against the round's shared value.
type Action<S> = Box<dyn Fn(&S, &mut Rng) + Send + Sync>;

/// Runs `rounds` rounds. Each round `setup` builds a shared value; every action runs on its
/// own thread against it, all released together; then `check` inspects it.
fn race<S: Send + Sync + 'static>(
    rounds: usize,
    mut setup: impl FnMut(usize, &mut Rng) -> S,
    actions: Vec<Action<S>>,
    mut check: impl FnMut(usize, S),
) {
    let n = actions.len();
    let slot: Arc<RwLock<Option<Arc<S>>>> = Arc::new(RwLock::new(None));
    let start = Arc::new(Barrier::new(n + 1));
    let end = Arc::new(Barrier::new(n + 1));
    let mut handles = Vec::new();
    for (i, act) in actions.into_iter().enumerate() {
        let (slot, start, end) = (slot.clone(), start.clone(), end.clone());
        handles.push(thread::spawn(move || {
            let mut rng = Rng::new(0x9e37_79b9 * (i as u64 + 1));
            for _ in 0..rounds {
                start.wait();
                let s = slot.read().unwrap().clone().unwrap();
                for _ in 0..rng.below(64) {
                    std::hint::spin_loop();
                }
                act(&s, &mut rng);
                drop(s);
                end.wait();
            }
        }));
    }
    let mut rng = Rng::new(12345);
    for round in 0..rounds {
        *slot.write().unwrap() = Some(Arc::new(setup(round, &mut rng)));
        start.wait();
        end.wait();
        let s = slot.write().unwrap().take().unwrap();
        let s = Arc::try_unwrap(s)
            .ok()
            .expect("racers hold no reference after the round");
        check(round, s);
    }
    for h in handles {
        h.join().unwrap();
    }
}

/// One round's operation: a callback aio counting its runs, the token, the provider's hook.
struct Op {
    aio: Aio,
    token: OpToken,
    runs: Arc<AtomicUsize>,
    hook: Arc<CountingHook>,
    finished: AtomicUsize,
    stopped: std::sync::atomic::AtomicBool,
    timeout: bool,
}

fn counting_aio() -> (Aio, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let aio = Aio::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    (aio, runs)
}

#[test]
fn cancel_abort_stop_timeout_and_finish_race_to_exactly_one_callback() {
    const ROUNDS: usize = 3000;
    let mut tally = [0usize; 5]; // Ok, Canceled, Closed (abort), TimedOut, stop's Canceled
    race(
        ROUNDS,
        |_, rng| {
            let (aio, runs) = counting_aio();
            // Half the rounds have a deadline a few microseconds out, racing the others.
            let timeout = rng.below(2) == 0;
            if timeout {
                aio.set_timeout(Duration::from_micros(rng.below(40)));
            }
            let hook = CountingHook::new();
            // A zero deadline completes at once in `begin`; retry without one.
            let token = match aio.begin(Timeout::Infinite, Some(hook.hook())) {
                Some(t) => t,
                None => {
                    aio.wait();
                    aio.set_timeout(Duration::from_micros(1 + rng.below(40)));
                    runs.store(0, Ordering::SeqCst);
                    aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap()
                }
            };
            Op {
                aio,
                token,
                runs,
                hook,
                finished: AtomicUsize::new(0),
                stopped: false.into(),
                timeout,
            }
        },
        vec![
            Box::new(|op: &Op, _| {
                if op.aio.finish(op.token, Ok(()), 7) {
                    op.finished.fetch_add(1, Ordering::SeqCst);
                }
            }),
            Box::new(|op: &Op, _| op.aio.cancel()),
            Box::new(|op: &Op, _| op.aio.abort(Error::Closed)),
            Box::new(|op: &Op, rng| {
                if rng.below(4) == 0 {
                    op.stopped.store(true, Ordering::SeqCst);
                    op.aio.stop();
                    // stop waits for the callback: it has run by now.
                    assert_eq!(
                        op.runs.load(Ordering::SeqCst),
                        1,
                        "stop returned before the callback ran"
                    );
                } else {
                    op.aio.cancel();
                }
            }),
        ],
        |round, op| {
            op.aio.wait();
            assert_eq!(
                op.runs.load(Ordering::SeqCst),
                1,
                "round {round}: callback runs"
            );
            let result = op.aio.result();
            let finished = op.finished.load(Ordering::SeqCst);
            match result {
                Ok(()) => {
                    assert_eq!(finished, 1, "round {round}: Ok without a winning finish");
                    assert_eq!(op.aio.count(), 7);
                    assert_eq!(
                        op.hook.calls(),
                        0,
                        "round {round}: hook told although finish won"
                    );
                    tally[0] += 1;
                }
                Err(e) => {
                    assert_eq!(finished, 0, "round {round}: finish won but result is {e:?}");
                    assert_eq!(op.aio.count(), 0);
                    match e {
                        Error::Canceled if op.stopped.load(Ordering::SeqCst) => tally[4] += 1,
                        Error::Canceled => tally[1] += 1,
                        Error::Closed => tally[2] += 1,
                        Error::TimedOut => {
                            assert!(op.timeout, "round {round}: TimedOut without a deadline");
                            tally[3] += 1;
                        }
                        other => panic!("round {round}: unexpected result {other:?}"),
                    }
                    // The reactor tells the provider after completing the aio.
                    eventually(|| op.hook.calls() == 1, "the hook is told exactly once");
                }
            }
            assert!(op.hook.calls() <= 1);
            assert!(!op.aio.busy());
        },
    );
    eprintln!(
        "outcomes: ok={} canceled={} aborted={} timed_out={} stopped={}",
        tally[0], tally[1], tally[2], tally[3], tally[4]
    );
    // Every kind of winner must actually have won some rounds, or the race was not a race.
    assert!(
        tally[0] > 0 && tally[1] + tally[4] > 0 && tally[2] > 0,
        "one-sided race: {tally:?}"
    );
}

/// One round of a send racing a cancel: message `id` on the aio.
struct SendOp {
    aio: Aio,
    token: OpToken,
    id: u32,
    runs: Arc<AtomicUsize>,
    delivered: Mutex<Vec<u32>>,
}

#[test]
fn send_racing_cancel_delivers_or_returns_each_message_exactly_once() {
    const ROUNDS: usize = 3000;
    let mut delivered_total = HashSet::new();
    let mut returned_total = HashSet::new();
    race(
        ROUNDS,
        |round, _| {
            let (aio, runs) = counting_aio();
            let mut m = Message::new();
            m.append_u32(round as u32);
            aio.set_msg(m);
            let token = aio
                .begin(Timeout::Infinite, Some(CountingHook::new().hook()))
                .unwrap();
            SendOp {
                aio,
                token,
                id: round as u32,
                runs,
                delivered: Mutex::new(Vec::new()),
            }
        },
        vec![
            Box::new(|op: &SendOp, rng| {
                // The provider takes the message: either with finish_send, or through
                // attempt_send (which may first give it back to wait for room).
                if rng.below(2) == 0 {
                    if let Some(mut m) = op.aio.finish_send(op.token) {
                        op.delivered.lock().unwrap().push(m.trim_u32().unwrap());
                    }
                } else {
                    let mut first = true;
                    loop {
                        let r = op.aio.attempt_send(op.token, |mut m| {
                            if std::mem::take(&mut first) {
                                return Err((m, None)); // no room yet: back on the aio
                            }
                            op.delivered.lock().unwrap().push(m.trim_u32().unwrap());
                            Ok(())
                        });
                        if r != SendAttempt::Pending {
                            break;
                        }
                    }
                }
            }),
            Box::new(|op: &SendOp, _| op.aio.cancel()),
        ],
        |round, op| {
            op.aio.wait();
            assert_eq!(
                op.runs.load(Ordering::SeqCst),
                1,
                "round {round}: callback runs"
            );
            let delivered = op.delivered.into_inner().unwrap();
            let left = op.aio.take_msg().map(|mut m| m.trim_u32().unwrap());
            match op.aio.result() {
                Ok(()) => {
                    assert_eq!(delivered, vec![op.id], "round {round}");
                    assert_eq!(left, None, "round {round}: delivered and left on the aio");
                    assert_eq!(op.aio.count(), 4);
                    assert!(delivered_total.insert(op.id));
                }
                Err(Error::Canceled) => {
                    assert!(
                        delivered.is_empty(),
                        "round {round}: cancelled but delivered"
                    );
                    assert_eq!(
                        left,
                        Some(op.id),
                        "round {round}: cancelled send lost its message"
                    );
                    assert!(returned_total.insert(op.id));
                }
                other => panic!("round {round}: unexpected {other:?}"),
            }
        },
    );
    eprintln!(
        "delivered={} returned={}",
        delivered_total.len(),
        returned_total.len()
    );
    assert_eq!(
        delivered_total.len() + returned_total.len(),
        ROUNDS,
        "every message accounted for once"
    );
    assert!(delivered_total.is_disjoint(&returned_total));
    assert!(
        !delivered_total.is_empty() && !returned_total.is_empty(),
        "one-sided race"
    );
}

struct RecvOp {
    aio: Aio,
    token: OpToken,
    id: u32,
    runs: Arc<AtomicUsize>,
    handed_back: Mutex<Option<u32>>,
}

#[test]
fn receive_racing_cancel_stores_or_hands_back_each_message_exactly_once() {
    const ROUNDS: usize = 3000;
    let (mut stored, mut back) = (0usize, 0usize);
    race(
        ROUNDS,
        |round, _| {
            let (aio, runs) = counting_aio();
            let token = aio
                .begin(Timeout::Infinite, Some(CountingHook::new().hook()))
                .unwrap();
            RecvOp {
                aio,
                token,
                id: round as u32,
                runs,
                handed_back: Mutex::new(None),
            }
        },
        vec![
            Box::new(|op: &RecvOp, _| {
                let mut m = Message::new();
                m.append_u32(op.id);
                if let Err(mut m) = op.aio.finish_recv(op.token, m) {
                    *op.handed_back.lock().unwrap() = Some(m.trim_u32().unwrap());
                }
            }),
            Box::new(|op: &RecvOp, rng| {
                if rng.below(2) == 0 {
                    op.aio.cancel()
                } else {
                    op.aio.abort(Error::Closed)
                }
            }),
        ],
        |round, op| {
            op.aio.wait();
            assert_eq!(
                op.runs.load(Ordering::SeqCst),
                1,
                "round {round}: callback runs"
            );
            let on_aio = op.aio.take_msg().map(|mut m| m.trim_u32().unwrap());
            let handed_back = op.handed_back.into_inner().unwrap();
            match op.aio.result() {
                Ok(()) => {
                    assert_eq!((on_aio, handed_back), (Some(op.id), None), "round {round}");
                    stored += 1;
                }
                Err(Error::Canceled | Error::Closed) => {
                    assert_eq!((on_aio, handed_back), (None, Some(op.id)), "round {round}");
                    back += 1;
                }
                other => panic!("round {round}: unexpected {other:?}"),
            }
        },
    );
    eprintln!("stored={stored} handed_back={back}");
    assert_eq!(stored + back, ROUNDS);
    assert!(stored > 0 && back > 0, "one-sided race");
}

struct DropOp {
    aio: Mutex<Option<Aio>>,
    provider: Aio,
    token: OpToken,
    runs: Arc<AtomicUsize>,
}

#[test]
fn drop_racing_completion_runs_the_callback_once_before_drop_returns() {
    const ROUNDS: usize = 3000;
    race(
        ROUNDS,
        |_, _| {
            let (aio, runs) = counting_aio();
            let token = aio
                .begin(Timeout::Infinite, Some(CountingHook::new().hook()))
                .unwrap();
            DropOp {
                provider: aio.provider_handle(),
                aio: Mutex::new(Some(aio)),
                token,
                runs,
            }
        },
        vec![
            Box::new(|op: &DropOp, _| {
                op.provider.finish(op.token, Ok(()), 1);
            }),
            Box::new(|op: &DropOp, _| {
                let aio = op.aio.lock().unwrap().take().unwrap();
                drop(aio);
                assert_eq!(
                    op.runs.load(Ordering::SeqCst),
                    1,
                    "drop returned before the callback ran"
                );
            }),
        ],
        |round, op| {
            assert_eq!(op.runs.load(Ordering::SeqCst), 1, "round {round}");
            assert!(!op.provider.busy());
            let r = op.provider.result();
            assert!(
                r == Ok(()) || r == Err(Error::Canceled),
                "round {round}: {r:?}"
            );
        },
    );
}

struct ChainOp {
    aio: Aio,
    runs: Arc<AtomicUsize>,
    last: Arc<Mutex<Option<nanoport_engine::Result<()>>>>,
}

#[test]
fn stop_racing_a_self_restarting_callback_ends_the_chain() {
    const ROUNDS: usize = 1000;
    race(
        ROUNDS,
        |_, _| {
            let runs = Arc::new(AtomicUsize::new(0));
            let last = Arc::new(Mutex::new(None));
            let (r, l) = (runs.clone(), last.clone());
            let aio = Aio::new(move |aio| {
                r.fetch_add(1, Ordering::SeqCst);
                let res = aio.result();
                *l.lock().unwrap() = Some(res);
                if res.is_ok() {
                    sleep_aio(Duration::ZERO, aio);
                }
            })
            .unwrap();
            sleep_aio(Duration::ZERO, &aio);
            ChainOp { aio, runs, last }
        },
        vec![Box::new(|op: &ChainOp, _| {
            op.aio.stop();
            // No callback runs after stop returns, and the chain saw it end.
            let n = op.runs.load(Ordering::SeqCst);
            // Canceled if the stop caught the pending sleep, Stopped if the callback
            // restarted it after the stop.
            let last = *op.last.lock().unwrap();
            assert!(
                matches!(last, Some(Err(Error::Canceled | Error::Stopped))),
                "the last callback saw the stop: {last:?}"
            );
            assert!(!op.aio.busy());
            for _ in 0..100 {
                thread::yield_now();
            }
            assert_eq!(
                op.runs.load(Ordering::SeqCst),
                n,
                "a callback ran after stop returned"
            );
        })],
        |_, op| {
            assert!(op.runs.load(Ordering::SeqCst) >= 1);
        },
    );
}

#[test]
fn many_aios_cancelled_from_many_threads() {
    // 8 threads x 500 sleeps each, every one cancelled by another thread at a random time
    // or allowed to finish; every callback runs exactly once.
    const THREADS: usize = 8;
    const PER: usize = 500;
    let total_runs = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let aios: Arc<Vec<Aio>> = Arc::new(
        (0..THREADS)
            .map(|_| {
                let (t, o) = (total_runs.clone(), ok.clone());
                Aio::new(move |aio| {
                    t.fetch_add(1, Ordering::SeqCst);
                    if aio.result().is_ok() {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                })
                .unwrap()
            })
            .collect(),
    );
    for i in 0..THREADS {
        let aios = aios.clone();
        handles.push(thread::spawn(move || {
            let mut rng = Rng::new(i as u64 + 77);
            for _ in 0..PER {
                let mine = &aios[i];
                sleep_aio(Duration::from_micros(rng.below(200)), mine);
                // Cancel a neighbour's operation (whatever it is right now) and maybe ours.
                aios[(i + 1) % THREADS].cancel();
                if rng.below(3) == 0 {
                    mine.cancel();
                }
                mine.wait();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    for a in aios.iter() {
        a.wait();
    }
    assert_eq!(total_runs.load(Ordering::SeqCst), THREADS * PER);
    assert!(ok.load(Ordering::SeqCst) > 0);
}
