//! The `Aio` contract, point by point, as NNG's `nng_aio` defines it (its nng_aio(5)
//! page and nng_aio_alloc(3), nng_aio_stop(3), nng_aio_wait(3)): deterministic tests, one behaviour each.
//!
//! The multi-threaded race tests are in `aio_races.rs`.

mod common;

use nanoport_engine::AioProvider;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{starting, CountingHook, Recorder};
use nanoport_engine::{callback_panics, sleep_aio, Aio, Error, Message, Timeout};

const HOUR: Duration = Duration::from_secs(3600);

fn assert_on_worker(seen: &common::Seen) {
    assert!(
        seen.thread.starts_with("nanoport:worker"),
        "callback ran on {:?}, not a worker",
        seen.thread
    );
    assert!(
        !seen.inside_start,
        "callback ran inside the call that started the operation"
    );
}

// ----- the callback: once, on a worker, never inside the starting call ---------------------

#[test]
fn zero_timeout_fails_at_once_but_callback_is_deferred_to_a_worker() {
    let r = Recorder::new();
    r.aio.set_timeout(Duration::ZERO);
    starting(|| sleep_aio(HOUR, &r.aio));
    let seen = r.next();
    assert_eq!(seen.result, Err(Error::TimedOut));
    assert_on_worker(&seen);
    r.assert_runs(1);
}

#[test]
fn zero_timeout_means_do_not_wait_the_provider_may_still_answer_at_once() {
    // NNG's NONBLOCK: a zero timeout does not fail the start; a provider that can answer
    // synchronously (a queued message, say) still wins. Inside an engine scope (a socket
    // call) the deadline is only enforced when the scope ends.
    let r = Recorder::new();
    r.aio.set_timeout(Timeout::After(Duration::ZERO));
    let hook = CountingHook::new();
    starting(|| {
        nanoport_engine::engine_scope(|| {
            let token = r
                .aio
                .begin(Timeout::Infinite, Some(hook.hook()))
                .expect("a zero timeout still starts");
            assert!(
                r.aio.finish(token, Ok(()), 3),
                "the synchronous answer wins"
            );
        })
    });
    let seen = r.next();
    assert_eq!((seen.result, seen.count), (Ok(()), 3));
    assert_on_worker(&seen);
    assert_eq!(hook.calls(), 0);
    r.assert_runs(1);
}

#[test]
fn zero_timeout_with_no_answer_times_out_without_waiting() {
    // Inside a scope: times out when the scope ends, the provider's hook told once.
    let r = Recorder::new();
    r.aio.set_timeout(Timeout::After(Duration::ZERO));
    let hook = CountingHook::new();
    let token = starting(|| {
        nanoport_engine::engine_scope(|| r.aio.begin(Timeout::Infinite, Some(hook.hook())))
    });
    let seen = r.next();
    assert_eq!(seen.result, Err(Error::TimedOut));
    assert_on_worker(&seen);
    common::eventually(
        || hook.calls() == 1,
        "the provider hears of the timeout once",
    );
    if let Some(t) = token {
        assert!(!r.aio.finish(t, Ok(()), 0), "a late answer loses");
    }
    r.assert_runs(1);

    // Outside any scope the due deadline goes to the reactor, which fires it promptly.
    let t0 = Instant::now();
    let token = starting(|| r.aio.begin(Timeout::Infinite, Some(hook.hook())));
    let seen = r.next();
    assert_eq!(seen.result, Err(Error::TimedOut));
    assert_on_worker(&seen);
    assert!(t0.elapsed() < Duration::from_secs(5));
    if let Some(t) = token {
        assert!(!r.aio.finish(t, Ok(()), 0));
    }
    r.assert_runs(2);
}

#[test]
fn stopped_aio_fails_every_later_operation_with_stopped_on_a_worker() {
    let r = Recorder::new();
    r.aio.stop();
    assert_eq!(
        r.runs.load(Ordering::SeqCst),
        0,
        "stop with nothing pending runs no callback"
    );
    for _ in 0..3 {
        starting(|| sleep_aio(HOUR, &r.aio));
        let seen = r.next();
        assert_eq!(seen.result, Err(Error::Stopped));
        assert_on_worker(&seen);
        r.aio.wait();
    }
    // The provider side sees the same: begin refuses.
    let token = starting(|| r.aio.begin(Timeout::Infinite, None));
    assert!(token.is_none());
    assert_eq!(r.next().result, Err(Error::Stopped));
    assert_eq!(Error::Stopped.code(), 999);
    r.assert_runs(4);
}

#[test]
fn past_expire_fails_at_once_with_timed_out() {
    let r = Recorder::new();
    r.aio.set_expire(Instant::now() - Duration::from_millis(1));
    starting(|| sleep_aio(HOUR, &r.aio));
    let seen = r.next();
    assert_eq!(seen.result, Err(Error::TimedOut));
    assert_on_worker(&seen);
    r.assert_runs(1);
}

#[test]
fn provider_finish_on_the_starting_thread_still_runs_the_callback_on_a_worker() {
    let r = Recorder::new();
    starting(|| {
        let token = r.aio.begin(Timeout::Infinite, None).unwrap();
        assert!(r.aio.finish(token, Ok(()), 42));
    });
    let seen = r.next();
    assert_eq!(seen.result, Ok(()));
    assert_eq!(seen.count, 42);
    assert_on_worker(&seen);
    assert_eq!(r.aio.result(), Ok(()));
    assert_eq!(r.aio.count(), 42);
    r.assert_runs(1);
}

#[test]
fn sleep_zero_completes_ok_on_a_worker() {
    let r = Recorder::new();
    starting(|| sleep_aio(Duration::ZERO, &r.aio));
    let seen = r.next();
    assert_eq!(seen.result, Ok(()));
    assert_on_worker(&seen);
    r.assert_runs(1);
}

#[test]
fn finishing_twice_loses_the_second_time() {
    let r = Recorder::new();
    let token = r.aio.begin(Timeout::Infinite, None).unwrap();
    assert!(r.aio.finish(token, Err(Error::Closed), 1));
    assert!(!r.aio.finish(token, Ok(()), 2), "a second finish must lose");
    assert_eq!(r.next().result, Err(Error::Closed));
    r.assert_runs(1);
    assert_eq!(r.aio.count(), 1);
    // A token of a finished operation stays dead after the next one starts.
    let token2 = r.aio.begin(Timeout::Infinite, None).unwrap();
    assert!(!r.aio.is_pending(token));
    assert!(
        !r.aio.finish(token, Ok(()), 3),
        "an old token must not finish a new operation"
    );
    assert!(r.aio.is_pending(token2));
    assert!(r.aio.finish(token2, Ok(()), 4));
    assert_eq!(r.next().count, 4);
    r.assert_runs(2);
}

// ----- waitable aios, timeouts ---------------------------------------------------------------

#[test]
fn waitable_aio_wait_busy_result() {
    let aio = Aio::new_waitable().unwrap();
    assert!(!aio.busy());
    aio.wait(); // idle: returns at once
    let token = aio.begin(Timeout::Infinite, None).unwrap();
    assert!(aio.busy());
    let a2 = aio.clone();
    let t = thread::spawn(move || {
        assert!(a2.finish(token, Ok(()), 5));
    });
    aio.wait();
    t.join().unwrap();
    assert!(!aio.busy());
    assert_eq!(aio.result(), Ok(()));
    assert_eq!(aio.count(), 5);
}

#[test]
fn timeout_variants() {
    // Default: sleep_aio treats it as infinite, so the sleep itself completes with Ok.
    let aio = Aio::new_waitable().unwrap();
    aio.set_timeout(Timeout::Default);
    sleep_aio(Duration::from_millis(5), &aio);
    aio.wait();
    assert_eq!(aio.result(), Ok(()));
    assert_eq!(aio.timeout(), Timeout::Default);

    // Infinite: same.
    aio.set_timeout(Timeout::Infinite);
    sleep_aio(Duration::from_millis(5), &aio);
    aio.wait();
    assert_eq!(aio.result(), Ok(()));

    // A relative timeout shorter than the sleep: TimedOut, no earlier than the timeout.
    aio.set_timeout(Duration::from_millis(20));
    let t0 = Instant::now();
    sleep_aio(HOUR, &aio);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    assert!(t0.elapsed() >= Duration::from_millis(20));

    // A relative timeout longer than the sleep: the sleep wins with Ok.
    aio.set_timeout(HOUR);
    let t0 = Instant::now();
    sleep_aio(Duration::from_millis(10), &aio);
    aio.wait();
    assert_eq!(aio.result(), Ok(()));
    assert!(t0.elapsed() >= Duration::from_millis(10));
    assert!(!aio.busy());
}

#[test]
fn set_expire_is_absolute_and_applies_to_later_operations() {
    let aio = Aio::new_waitable().unwrap();
    let at = Instant::now() + Duration::from_millis(15);
    aio.set_expire(at);
    sleep_aio(HOUR, &aio);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    assert!(Instant::now() >= at);
    // The same absolute deadline, now past, fails the next operation at once.
    sleep_aio(HOUR, &aio);
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    // A provider's default timeout does not override an explicit expiry (past: the
    // operation times out without waiting).
    let token = aio.begin(Timeout::Infinite, Some(CountingHook::new().hook()));
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    if let Some(t) = token {
        assert!(!aio.finish(t, Ok(()), 0));
    }
}

#[test]
fn provider_default_timeout_replaces_default_only() {
    let hook = CountingHook::new();
    let aio = Aio::new_waitable().unwrap();
    // Default on the aio: the provider's (socket's) timeout applies.
    let t0 = Instant::now();
    let token = aio
        .begin(Timeout::After(Duration::from_millis(10)), Some(hook.hook()))
        .unwrap();
    aio.wait();
    assert_eq!(aio.result(), Err(Error::TimedOut));
    assert!(t0.elapsed() >= Duration::from_millis(10));
    // The engine tells the provider after completing the aio, so a waiter may get there
    // first: the hook is told once, soon.
    common::eventually(
        || hook.calls() == 1,
        "the provider hears of the expiry once",
    );
    assert!(
        !aio.finish(token, Ok(()), 0),
        "a late finish loses to the deadline"
    );
    assert_eq!(aio.result(), Err(Error::TimedOut));

    // Infinite on the aio: the provider's timeout is ignored.
    aio.set_timeout(Timeout::Infinite);
    let token = aio
        .begin(Timeout::After(Duration::ZERO), Some(hook.hook()))
        .unwrap();
    assert!(aio.busy());
    assert!(aio.finish(token, Ok(()), 1));
    aio.wait();
    assert_eq!(aio.result(), Ok(()));
}

#[test]
fn operation_without_cancel_hook_neither_expires_nor_cancels() {
    let aio = Aio::new_waitable().unwrap();
    aio.set_timeout(Duration::from_millis(1));
    let token = aio.begin(Timeout::Infinite, None).unwrap();
    aio.cancel();
    aio.abort(Error::Closed);
    thread::sleep(Duration::from_millis(10)); // let the 1 ms deadline pass: nothing may fire
    assert!(aio.busy(), "a non-cancellable operation must stay pending");
    assert!(aio.finish(token, Ok(()), 3));
    aio.wait();
    assert_eq!(aio.result(), Ok(()));
    assert_eq!(aio.count(), 3);
}

// ----- cancel, abort ----------------------------------------------------------------------------

#[test]
fn cancel_and_abort_complete_with_their_error_and_tell_the_provider_once() {
    for (err, act) in [
        (Error::Canceled, &(|a: &Aio| a.cancel()) as &dyn Fn(&Aio)),
        (Error::Closed, &|a: &Aio| a.abort(Error::Closed)),
        (Error::ConnReset, &|a: &Aio| a.abort(Error::ConnReset)),
    ] {
        let r = Recorder::new();
        let hook = CountingHook::new();
        let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
        act(&r.aio);
        act(&r.aio); // a second cancel finds nothing pending
        let seen = r.next();
        assert_eq!(seen.result, Err(err));
        assert_eq!(seen.count, 0);
        assert_eq!(hook.calls(), 1);
        assert!(
            !r.aio.finish(token, Ok(()), 9),
            "the provider's late finish loses"
        );
        r.assert_runs(1);
    }
}

#[test]
fn cancel_with_nothing_pending_is_a_no_op_and_does_not_leak_into_the_next_operation() {
    let r = Recorder::new();
    r.aio.cancel();
    r.aio.abort(Error::Closed);
    assert!(!r.aio.busy());
    sleep_aio(Duration::from_millis(1), &r.aio);
    assert_eq!(r.next().result, Ok(()));
    r.assert_runs(1);
}

#[test]
fn cancel_of_a_sleep() {
    let r = Recorder::new();
    sleep_aio(HOUR, &r.aio);
    r.aio.cancel();
    assert_eq!(r.next().result, Err(Error::Canceled));
    r.assert_runs(1);
}

// ----- messages ---------------------------------------------------------------------------------

#[test]
fn set_msg_take_msg() {
    let aio = Aio::new_waitable().unwrap();
    assert!(aio.take_msg().is_none());
    aio.set_msg(Message::from("one"));
    assert!(aio.has_msg());
    aio.set_msg(Message::from("two")); // replaces
    assert_eq!(aio.take_msg().unwrap().body(), b"two");
    assert!(aio.take_msg().is_none());
}

#[test]
fn failed_or_cancelled_send_leaves_the_message_on_the_aio() {
    let r = Recorder::new();
    let hook = CountingHook::new();
    r.aio.set_msg(Message::from("keep me"));
    let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
    r.aio.cancel();
    assert_eq!(r.next().result, Err(Error::Canceled));
    assert!(
        r.aio.finish_send(token).is_none(),
        "a late finish_send must not take the message"
    );
    assert_eq!(r.aio.take_msg().unwrap().body(), b"keep me");

    // A provider failing a send with an error also leaves it.
    r.aio.set_msg(Message::from("again"));
    let token = r.aio.begin(Timeout::Infinite, None).unwrap();
    assert!(r.aio.finish(token, Err(Error::Closed), 0));
    assert_eq!(r.next().result, Err(Error::Closed));
    assert_eq!(r.aio.take_msg().unwrap().body(), b"again");
    r.assert_runs(2);
}

#[test]
fn successful_send_takes_the_message_and_counts_bytes() {
    let r = Recorder::new();
    let mut m = Message::from("12345");
    m.header_append_u32(1).unwrap();
    r.aio.set_msg(m);
    let token = r.aio.begin(Timeout::Infinite, None).unwrap();
    let sent = r.aio.finish_send(token).expect("the send wins");
    assert_eq!(sent.body(), b"12345");
    let seen = r.next();
    assert_eq!(seen.result, Ok(()));
    assert_eq!(seen.count, 9, "body and header bytes");
    assert!(
        r.aio.take_msg().is_none(),
        "a sent message is gone from the aio"
    );
    r.assert_runs(1);
}

#[test]
fn send_without_message_fails_with_inval() {
    let r = Recorder::new();
    let token = r.aio.begin(Timeout::Infinite, None).unwrap();
    assert!(r.aio.finish_send(token).is_none());
    assert_eq!(r.next().result, Err(Error::Inval));
    r.assert_runs(1);
}

#[test]
fn receive_stores_the_message_and_a_late_receive_gets_it_back() {
    let r = Recorder::new();
    let hook = CountingHook::new();
    let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
    assert!(r.aio.finish_recv(token, Message::from("hello")).is_ok());
    let seen = r.next();
    assert_eq!((seen.result, seen.count), (Ok(()), 5));
    assert_eq!(r.aio.take_msg().unwrap().body(), b"hello");

    let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
    r.aio.cancel();
    assert_eq!(r.next().result, Err(Error::Canceled));
    let back = r
        .aio
        .finish_recv(token, Message::from("late"))
        .expect_err("the late receive loses");
    assert_eq!(back.body(), b"late");
    assert!(
        r.aio.take_msg().is_none(),
        "nothing delivered to a cancelled receive"
    );
    r.assert_runs(2);
}

#[test]
fn finish_output_and_take_output() {
    let aio = Aio::new_waitable().unwrap();
    let token = aio.begin(Timeout::Infinite, None).unwrap();
    assert!(aio.finish_output(token, 17u32).is_ok());
    aio.wait();
    assert_eq!(
        aio.take_output::<String>(),
        None,
        "wrong type leaves the output in place"
    );
    assert_eq!(aio.take_output::<u32>(), Some(17));
    assert_eq!(aio.take_output::<u32>(), None);
    assert_eq!(aio.finish_output(token, 1u8), Err(1u8));
}

// ----- a callback starting the next operation, stop and drop -----------------------------------

#[test]
fn callback_may_start_the_next_operation_on_the_same_aio() {
    const N: usize = 200;
    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let r = runs.clone();
    let tx = Mutex::new(tx);
    let aio = Aio::new(move |aio| {
        assert_eq!(aio.result(), Ok(()));
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        if n < N {
            sleep_aio(Duration::ZERO, aio);
        } else {
            tx.lock().unwrap().send(()).unwrap();
        }
    })
    .unwrap();
    sleep_aio(Duration::ZERO, &aio);
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    aio.wait();
    assert_eq!(runs.load(Ordering::SeqCst), N);
    assert!(!aio.busy());
}

#[test]
fn stop_waits_for_a_running_callback() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let aio = Aio::new(move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        f.store(true, Ordering::SeqCst);
    })
    .unwrap();
    sleep_aio(Duration::ZERO, &aio);
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(aio.busy(), "busy while the callback runs");
    let a2 = aio.clone();
    let f2 = finished.clone();
    let stopper = thread::spawn(move || {
        a2.stop();
        assert!(
            f2.load(Ordering::SeqCst),
            "stop returned while the callback was still running"
        );
    });
    // Give the stopper time to block in stop (the assertion holds in every interleaving).
    thread::sleep(Duration::from_millis(20));
    assert!(
        !stopper.is_finished(),
        "stop must block while the callback runs"
    );
    release_tx.send(()).unwrap();
    stopper.join().unwrap();
    assert!(!aio.busy());
}

#[test]
fn drop_of_the_last_handle_waits_for_a_running_callback() {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let aio = Aio::new(move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        f.store(true, Ordering::SeqCst);
    })
    .unwrap();
    sleep_aio(Duration::ZERO, &aio);
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let f2 = finished.clone();
    let dropper = thread::spawn(move || {
        drop(aio);
        assert!(
            f2.load(Ordering::SeqCst),
            "drop returned while the callback was still running"
        );
    });
    thread::sleep(Duration::from_millis(20));
    assert!(
        !dropper.is_finished(),
        "drop must block while the callback runs"
    );
    release_tx.send(()).unwrap();
    dropper.join().unwrap();
}

#[test]
fn drop_cancels_a_pending_operation_and_runs_its_callback_before_returning() {
    let r = Recorder::new();
    let hook = CountingHook::new();
    let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
    let provider = r.aio.provider_handle();
    let runs = r.runs.clone();
    let rx = r.rx;
    drop(r.aio);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "drop returns after the callback ran"
    );
    assert_eq!(rx.try_recv().unwrap().result, Err(Error::Canceled));
    assert_eq!(hook.calls(), 1);
    assert!(
        !provider.finish(token, Ok(()), 0),
        "the provider's handle sees the op gone"
    );
}

#[test]
fn clones_share_the_slot_and_only_the_last_drop_stops() {
    let r = Recorder::new();
    let clone = r.aio.clone();
    assert!(Aio::ptr_eq(&clone, &r.aio));
    sleep_aio(Duration::from_millis(5), &r.aio);
    drop(clone); // not the last handle: the sleep goes on
    assert_eq!(r.next().result, Ok(()));
    r.assert_runs(1);
}

#[test]
fn stop_inside_own_callback_does_not_deadlock() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let aio = Aio::new(move |aio| {
        let result = aio.result();
        aio.stop(); // must not wait for this very callback
        if result == Ok(()) {
            // Stopped: the next operation fails at once, with its own callback later.
            sleep_aio(HOUR, aio);
        }
        tx.lock().unwrap().send(result).unwrap();
    })
    .unwrap();
    sleep_aio(Duration::ZERO, &aio);
    let d = Duration::from_secs(10);
    assert_eq!(
        rx.recv_timeout(d).unwrap(),
        Ok(()),
        "first callback returned"
    );
    assert_eq!(
        rx.recv_timeout(d).unwrap(),
        Err(Error::Stopped),
        "the op started after stop"
    );
    aio.wait();
    assert!(rx.try_recv().is_err());
}

#[test]
fn dropping_the_last_handle_inside_own_callback_does_not_deadlock() {
    let slot: Arc<Mutex<Option<Aio>>> = Arc::new(Mutex::new(None));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let s = slot.clone();
    let aio = Aio::new(move |aio| {
        let last = s.lock().unwrap().take();
        drop(last); // the last user handle: stop, from inside the callback
        tx.lock().unwrap().send(aio.result()).unwrap();
    })
    .unwrap();
    let provider = aio.provider_handle();
    {
        // Park the only user handle in the slot before the operation can complete.
        let mut guard = slot.lock().unwrap();
        sleep_aio(Duration::ZERO, &aio);
        *guard = Some(aio);
    }
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(()));
    provider.wait();
    assert!(!provider.busy());
    assert!(slot.lock().unwrap().is_none());
}

#[test]
fn wait_inside_own_callback_waits_for_the_operation_it_started() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let aio = Aio::new(move |aio| {
        if n2.fetch_add(1, Ordering::SeqCst) == 0 {
            sleep_aio(Duration::from_millis(5), aio);
            aio.wait(); // returns once that sleep completed, not when this callback ends
            tx.lock().unwrap().send(aio.result()).unwrap();
        }
    })
    .unwrap();
    sleep_aio(Duration::ZERO, &aio);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(()));
    aio.wait();
    assert_eq!(
        n.load(Ordering::SeqCst),
        2,
        "the second operation's callback ran after the first"
    );
}

// ----- misuse: starting on a busy aio ----------------------------------------------------------

#[test]
#[should_panic(expected = "while its previous operation is still in flight")]
fn starting_on_a_busy_aio_panics() {
    let aio = Aio::new_waitable().unwrap();
    sleep_aio(HOUR, &aio);
    sleep_aio(HOUR, &aio);
}

#[test]
fn busy_panic_leaves_the_running_operation_intact() {
    let r = Recorder::new();
    let hook = CountingHook::new();
    let token = r.aio.begin(Timeout::Infinite, Some(hook.hook())).unwrap();
    let p = catch_unwind(AssertUnwindSafe(|| sleep_aio(Duration::ZERO, &r.aio)));
    let msg = p.expect_err("must panic");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("still in flight"),
        "unclear panic message: {msg}"
    );
    assert!(
        r.aio.is_pending(token),
        "the first operation must still be pending"
    );
    assert_eq!(r.runs.load(Ordering::SeqCst), 0);
    assert!(r.aio.finish(token, Ok(()), 11));
    let seen = r.next();
    assert_eq!((seen.result, seen.count), (Ok(()), 11));
    assert_eq!(hook.calls(), 0);
    r.assert_runs(1);

    // After the callback, a new operation starts fine.
    sleep_aio(Duration::ZERO, &r.aio);
    assert_eq!(r.next().result, Ok(()));
    r.assert_runs(2);
}

// ----- panicking callbacks -------------------------------------------------------------------

#[test]
fn panicking_callback_is_counted_and_the_pool_keeps_working() {
    let before = callback_panics();
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let workers = nanoport_engine::worker_threads();
    // More panics than there are workers: if a panic killed its worker, the pool would die.
    let panicky = Aio::new(move |aio| {
        n2.fetch_add(1, Ordering::SeqCst);
        if aio.result().is_ok() {
            panic!("test: deliberate callback panic");
        }
    })
    .unwrap();
    let rounds = workers * 2 + 1;
    for _ in 0..rounds {
        sleep_aio(Duration::ZERO, &panicky);
        panicky.wait(); // the aio is usable again after its callback panicked
    }
    assert_eq!(n.load(Ordering::SeqCst), rounds);
    assert!(
        callback_panics() - before >= rounds,
        "every panic is counted"
    );

    // Other aios still get their callbacks.
    let r = Recorder::new();
    sleep_aio(Duration::ZERO, &r.aio);
    assert_eq!(r.next().result, Ok(()));
    r.assert_runs(1);
    // And the panicking aio itself still completes further operations.
    panicky.cancel();
    sleep_aio(HOUR, &panicky);
    panicky.cancel();
    panicky.wait();
    assert_eq!(panicky.result(), Err(Error::Canceled));
}

// ----- inline aios and engine scopes --------------------------------------------------------

#[test]
fn inline_aio_runs_its_callback_at_the_end_of_the_outermost_scope() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let aio = Aio::new_inline(move |aio| {
        let t = thread::current().id();
        tx.lock().unwrap().send((aio.result(), t)).unwrap();
    })
    .unwrap();
    let me = thread::current().id();
    nanoport_engine::engine_scope(|| {
        nanoport_engine::engine_scope(|| {
            let token = aio.begin(Timeout::Infinite, None).unwrap();
            assert!(aio.finish(token, Ok(()), 1));
        });
        assert!(rx.try_recv().is_err(), "not at the end of an inner scope");
    });
    assert_eq!(
        rx.try_recv().unwrap(),
        (Ok(()), me),
        "ran on this thread when the scope ended"
    );
    // Outside any scope it falls back to the pool.
    sleep_aio(Duration::ZERO, &aio);
    let (res, t) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(res, Ok(()));
    assert_ne!(t, me);
    aio.wait();
}

#[test]
fn a_panic_inside_an_engine_scope_loses_no_inline_callback() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let aio = Aio::new_inline(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let p = catch_unwind(AssertUnwindSafe(|| {
        nanoport_engine::engine_scope(|| {
            let token = aio.begin(Timeout::Infinite, None).unwrap();
            assert!(aio.finish(token, Ok(()), 1));
            panic!("test: a panic inside an engine scope");
        })
    }));
    assert!(p.is_err());
    // The completed operation's callback still runs, exactly once.
    aio.wait();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // And the thread is not left "inside a scope": outside one, inline aios use the pool,
    // so a plain completion here must not be parked on this thread forever.
    let token = aio.begin(Timeout::Infinite, None).unwrap();
    assert!(aio.finish(token, Ok(()), 1));
    common::eventually(
        || runs.load(Ordering::SeqCst) == 2,
        "the second callback runs on the pool",
    );
    aio.wait();
}

#[test]
fn inline_callbacks_of_one_scope_run_in_completion_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let aios: Vec<Aio> = (0..5)
        .map(|i| {
            let o = order.clone();
            Aio::new_inline(move |_| o.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    nanoport_engine::engine_scope(|| {
        for a in &aios {
            let token = a.begin(Timeout::Infinite, None).unwrap();
            assert!(a.finish(token, Ok(()), 0));
        }
    });
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

// ----- waking waiters: after the completing scope lets go ---------------------------------

/// A waitable aio with an operation begun and not yet finished, and its token.
fn pending_waitable() -> (Aio, nanoport_engine::OpToken) {
    let aio = Aio::new_waitable().unwrap();
    let token = aio.begin(Timeout::Infinite, None).unwrap();
    (aio, token)
}

#[test]
fn a_waiter_woken_from_inside_a_scope_returns_once_the_scope_ends() {
    let (a, token) = pending_waitable();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let a2 = a.clone();
    let w = thread::spawn(move || {
        ready_tx.send(()).unwrap();
        a2.wait();
        done_tx.send(a2.count()).unwrap();
    });
    ready_rx.recv().unwrap();
    nanoport_engine::engine_scope(|| assert!(a.finish(token, Ok(()), 7)));
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(10)),
        Ok(7),
        "the waiter was never woken after the scope ended"
    );
    w.join().unwrap();
}

/// The rule that keeps one socket's trouble its own: nothing inside an engine scope
/// sleeps on another operation. A debug build refuses such a wait with a clear panic
/// instead of risking a cycle of scopes waiting on each other.
#[cfg(debug_assertions)]
#[test]
fn waiting_inside_a_scope_is_refused_in_debug_builds() {
    let (a, token) = pending_waitable();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        nanoport_engine::engine_scope(|| a.wait())
    }));
    let msg = caught.expect_err("a wait inside a scope must not go unnoticed");
    let text = msg
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| msg.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("inside an engine scope"), "{text}");
    assert!(a.finish(token, Ok(()), 0));
}

/// Release builds do not check the rule; a scope that blocks anyway still hands out the
/// wake-ups it owes first, so two such threads cannot wait for each other's.
#[cfg(not(debug_assertions))]
#[test]
fn blocking_inside_a_scope_first_wakes_the_waiters_it_owes() {
    // Thread S, inside a scope, completes A (its waiter's wake-up is deferred to the end
    // of the scope) and then blocks on B, which only A's waiter will complete. S must hand
    // out A's wake-up before it blocks, or both threads wait for ever.
    let (a, token_a) = pending_waitable();
    let (b, token_b) = pending_waitable();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (a2, b2) = (a.clone(), b.clone());
    let w = thread::spawn(move || {
        ready_tx.send(()).unwrap();
        a2.wait();
        assert!(b2.finish(token_b, Ok(()), 2));
    });
    ready_rx.recv().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let s = thread::spawn(move || {
        nanoport_engine::engine_scope(|| {
            assert!(a.finish(token_a, Ok(()), 1));
            b.wait();
            done_tx.send(b.count()).unwrap();
        });
    });
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(10)),
        Ok(2),
        "deadlock: the scope blocked while owing its waiter a wake-up"
    );
    s.join().unwrap();
    w.join().unwrap();
}

// ----- work put off to the end of a scope ---------------------------------------------------

/// Finishes an aio's pending operation when run: stands in for a deferred write whose
/// arrival lets the peer answer.
struct FinishLater(Mutex<Option<(Aio, nanoport_engine::OpToken)>>);

impl nanoport_engine::ScopeEndJob for FinishLater {
    fn run_at_scope_end(&self) {
        if let Some((aio, token)) = self.0.lock().unwrap().take() {
            assert!(aio.finish(token, Ok(()), 5));
        }
    }
}

#[test]
fn scope_end_jobs_run_after_the_outermost_scope_in_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    struct Push(Arc<Mutex<Vec<u32>>>, u32);
    impl nanoport_engine::ScopeEndJob for Push {
        fn run_at_scope_end(&self) {
            self.0.lock().unwrap().push(self.1);
        }
    }
    nanoport_engine::engine_scope(|| {
        nanoport_engine::at_scope_end(Arc::new(Push(order.clone(), 1)));
        nanoport_engine::engine_scope(|| {
            nanoport_engine::at_scope_end(Arc::new(Push(order.clone(), 2)));
        });
        assert!(
            order.lock().unwrap().is_empty(),
            "not at an inner scope's end"
        );
    });
    assert_eq!(*order.lock().unwrap(), vec![1, 2]);
    // Outside any scope a job runs at once.
    nanoport_engine::at_scope_end(Arc::new(Push(order.clone(), 3)));
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
}

#[test]
fn blocking_inside_a_scope_first_runs_the_jobs_it_put_off() {
    // A socket call that sends (the write is put off to the scope's end) and then blocks
    // for the answer inside the same scope: the write must go out before it blocks.
    let (a, token) = pending_waitable();
    let job = Arc::new(FinishLater(Mutex::new(Some((a.clone(), token)))));
    let (done_tx, done_rx) = mpsc::channel();
    let t = thread::spawn(move || {
        nanoport_engine::engine_scope(|| {
            nanoport_engine::at_scope_end(job);
            a.wait();
            done_tx.send(a.count()).unwrap();
        })
    });
    assert_eq!(
        done_rx.recv_timeout(Duration::from_secs(10)),
        Ok(5),
        "deadlock: the scope blocked before running the job it put off"
    );
    t.join().unwrap();
}

#[test]
fn a_panic_inside_a_scope_still_runs_its_jobs() {
    // A deferred write holds its pipe's writer role: dropping it would stall the pipe.
    let (a, token) = pending_waitable();
    let job = Arc::new(FinishLater(Mutex::new(Some((a.clone(), token)))));
    let p = catch_unwind(AssertUnwindSafe(|| {
        nanoport_engine::engine_scope(|| {
            nanoport_engine::at_scope_end(job);
            panic!("test: a panic inside an engine scope");
        })
    }));
    assert!(p.is_err());
    a.wait();
    assert_eq!(a.count(), 5);
}
