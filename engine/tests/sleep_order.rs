//! 100,000 concurrent `sleep_aio` operations with random deadlines complete no earlier
//! than their deadlines and in deadline order, and the timer queue drains afterwards.
//!
//! This file holds a single test on purpose: `armed_timers()` is process-wide, so its
//! baseline is only meaningful when no other test of the same binary arms timers.
//! Speed is not checked here (that is `bench/`), only order and "never early".

use nanoport_engine::AioProvider;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nanoport_engine::{armed_timers, sleep_aio, Aio, Cancel, CancelHook, OpToken, Timeout};

/// Per operation: when its callback observed the completion, and in which order.
type Slot = Mutex<Option<(Instant, usize)>>;

const N: usize = 100_000;
const SPAN_MS: u64 = 300;
/// Deadlines closer together than this may complete out of order (timer resolution: a
/// sleep being started while the reactor collects due timers can land in the next batch).
const TIE: Duration = Duration::from_millis(1);

#[test]
fn hundred_thousand_sleeps_complete_in_deadline_order_and_free_their_timers() {
    // One worker, so callbacks run in the order the engine completed the operations: with
    // two, a worker preempted for a time slice (2 CPUs, 4 busy threads) lets the other run
    // later completions first, which says nothing about the timers. This binary holds
    // only this test, so the pool has not started yet.
    nanoport_engine::set_worker_threads(1).expect("the pool has not started yet");
    let baseline = armed_timers();
    let seq = Arc::new(AtomicUsize::new(0));
    // Per operation: (deadline, observed completion time, completion sequence number).
    let slots: Arc<Vec<Slot>> = Arc::new((0..N).map(|_| Mutex::new(None)).collect());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = Arc::new(Mutex::new(done_tx));
    let remaining = Arc::new(AtomicUsize::new(N));

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut aios = Vec::with_capacity(N);
    let mut deadlines = Vec::with_capacity(N);
    for i in 0..N {
        let (seq, slots, remaining, done_tx) = (
            seq.clone(),
            slots.clone(),
            remaining.clone(),
            done_tx.clone(),
        );
        let aio = Aio::new(move |aio| {
            let now = Instant::now();
            assert_eq!(aio.result(), Ok(()));
            let s = seq.fetch_add(1, Ordering::SeqCst);
            *slots[i].lock().unwrap() = Some((now, s));
            if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                let _ = done_tx.lock().unwrap().send(());
            }
        })
        .unwrap();
        aios.push(aio);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        deadlines.push(Duration::from_micros(rng % (SPAN_MS * 1000)));
    }
    // Start them all. The engine takes its deadline (now + d) inside the call, so it lies
    // between `before + d` and `after + d`: a preemption mid-call (a 4 ms time slice on 2
    // busy CPUs) moves it, so order is checked against these bounds, not a guess.
    let mut bounds = Vec::with_capacity(N);
    for (aio, d) in aios.iter().zip(&deadlines) {
        let before = Instant::now();
        sleep_aio(*d, aio);
        let after = Instant::now();
        bounds.push((before + *d, after + *d));
    }
    assert!(armed_timers() <= baseline + N);
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("all sleeps complete");

    // (earliest deadline, latest deadline, observed completion, completion sequence)
    let mut rows: Vec<(Instant, Instant, Instant, usize)> = (0..N)
        .map(|i| {
            let (seen, s) = slots[i].lock().unwrap().expect("every callback ran");
            (bounds[i].0, bounds[i].1, seen, s)
        })
        .collect();
    for (i, &(earliest, _, seen, _)) in rows.iter().enumerate() {
        assert!(
            seen >= earliest,
            "sleep {i} completed {:?} before its deadline",
            earliest - seen
        );
    }
    // Completion order versus deadline order: walking the completions in the order they
    // happened, an operation whose deadline is surely earlier (by more than TIE) than that
    // of an operation completed before it is an inversion.
    rows.sort_by_key(|r| r.3);
    let mut max_earliest = rows[0].0;
    let mut ties = 0usize;
    for (k, &(earliest, latest, _, _)) in rows.iter().enumerate() {
        if latest < max_earliest {
            ties += 1;
            assert!(
                max_earliest - latest <= TIE,
                "completion #{k} has a deadline {:?} before an earlier completion's",
                max_earliest - latest
            );
        }
        max_earliest = max_earliest.max(earliest);
    }
    eprintln!("{N} sleeps: {ties} completions within the {TIE:?} tie window of an earlier one");

    for a in &aios {
        assert!(!a.busy());
    }
    drop(aios);
    assert_eq!(
        armed_timers(),
        baseline,
        "timers left armed after every sleep completed"
    );

    // Timers also go away when their operation ends another way: cancelled sleeps,
    // operations finished by their provider before the deadline, and dropped aios.
    const M: usize = 10_000;
    let hook: Arc<dyn Cancel> = Arc::new(NoHook);
    let aios: Vec<Aio> = (0..M).map(|_| Aio::new_waitable().unwrap()).collect();
    for (i, a) in aios.iter().enumerate() {
        if i % 2 == 0 {
            sleep_aio(Duration::from_secs(3600), a);
        } else {
            a.set_timeout(Duration::from_secs(3600));
            let token = a.begin(Timeout::Infinite, Some(CancelHook::new(hook.clone(), 0)));
            assert!(a.finish(token.unwrap(), Ok(()), 0));
        }
    }
    assert_eq!(
        armed_timers(),
        baseline + M / 2,
        "one timer per pending sleep"
    );
    for a in aios.iter().step_by(4) {
        a.cancel();
    }
    assert_eq!(armed_timers(), baseline + M / 4);
    drop(aios); // the rest are stopped by their drop
    assert_eq!(
        armed_timers(),
        baseline,
        "cancel and drop free their timers"
    );
}

struct NoHook;
impl Cancel for NoHook {
    fn cancelled(&self, _: &Aio, _: usize, _: OpToken) {}
}
