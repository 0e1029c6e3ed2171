//! How a thread that has nothing to do waits: park at once (the default, NNG's way), spin
//! for a while first, or never park, as low-latency messaging systems offer (Aeron's
//! idle strategies).
//!
//! Parking costs a wake-up when work arrives: on a VM with two vCPUs, waking a thread
//! whose CPU went idle takes tens of microseconds, more than a whole round trip between
//! two pinned threads. Spinning trades CPU for that latency: a thread that spins keeps
//! its CPU busy while it waits, so only use it where a core can be spared.
//!
//! The strategy is process-wide and read at each wait: the reactor thread before it
//! blocks in the poller, and a blocking call (`send`, `recv`, [`Aio::wait`]) before it
//! sleeps.
//!
//! [`Aio::wait`]: crate::Aio::wait

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How an idle thread waits: park at once (the default, NNG's way), spin for a while
/// first, or never park, as Aeron's idle strategies offer.
///
/// Parking costs a wake-up when work arrives: on a VM with two vCPUs, waking a thread
/// whose CPU went idle takes tens of microseconds, more than a whole round trip between
/// two pinned threads. Spinning trades CPU for that latency, so use it only where a core
/// can be spared. The strategy is process-wide and read at each wait: by the reactor
/// thread before it blocks in the poller, and by a blocking call (`send`, `recv`,
/// [`Aio::wait`](crate::Aio::wait)) before it sleeps. A spinning thread yields its CPU
/// between checks, so a peer that shares the CPU still runs.
///
/// # Examples
///
/// ```
/// use nanoport_engine::{idle_strategy, set_idle_strategy, IdleStrategy};
/// use std::time::Duration;
///
/// set_idle_strategy(IdleStrategy::SpinThenPark(Duration::from_micros(50)));
/// assert_eq!(idle_strategy(), IdleStrategy::SpinThenPark(Duration::from_micros(50)));
/// set_idle_strategy(IdleStrategy::Park);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleStrategy {
    /// Block at once (the default): no CPU spent waiting, a wake-up's latency paid.
    #[default]
    Park,
    /// Poll for up to this long (checking for work without sleeping), then block.
    SpinThenPark(Duration),
    /// Never block: poll until work arrives, keeping a CPU busy for each waiting thread
    /// and for the reactor.
    BusySpin,
}

/// The strategy, encoded: 0 parks, `u64::MAX` never parks, else the spin in nanoseconds.
static STRATEGY: AtomicU64 = AtomicU64::new(0);

/// Sets the process-wide idle strategy (default [`IdleStrategy::Park`]).
pub fn set_idle_strategy(s: IdleStrategy) {
    let v = match s {
        IdleStrategy::Park => 0,
        IdleStrategy::SpinThenPark(d) => (d.as_nanos().min(u64::MAX as u128 - 1) as u64).max(1),
        IdleStrategy::BusySpin => u64::MAX,
    };
    STRATEGY.store(v, Ordering::Relaxed);
}

/// The process-wide idle strategy.
pub fn idle_strategy() -> IdleStrategy {
    match STRATEGY.load(Ordering::Relaxed) {
        0 => IdleStrategy::Park,
        u64::MAX => IdleStrategy::BusySpin,
        n => IdleStrategy::SpinThenPark(Duration::from_nanos(n)),
    }
}

/// How long a waiter may poll before it blocks, from now: `None` to block at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpinBudget {
    until: Option<Instant>,
}

impl SpinBudget {
    /// The budget for a wait starting now, or `None` to park at once.
    pub(crate) fn start() -> Option<SpinBudget> {
        match STRATEGY.load(Ordering::Relaxed) {
            0 => None,
            u64::MAX => Some(SpinBudget { until: None }),
            n => Some(SpinBudget {
                until: Some(Instant::now() + Duration::from_nanos(n)),
            }),
        }
    }

    /// Whether the waiter may keep polling.
    pub(crate) fn left(&self) -> bool {
        self.until.is_none_or(|u| Instant::now() < u)
    }
}

/// Spins until `done()` or the budget runs out; returns whether `done()` became true.
///
/// Between checks the thread yields its CPU (`sched_yield`), as Aeron's back-off
/// strategy does after its first spins: when the thread that will do the work shares
/// this CPU (pinned, or more threads than CPUs), a pure spin would hold the CPU for its
/// whole time slice and delay that work; with nothing else to run, the yield returns at
/// once and the check comes round again within a microsecond.
pub(crate) fn spin_until(budget: SpinBudget, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if !budget.left() {
            return false;
        }
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_round_trip_and_budgets_follow_them() {
        for s in [
            IdleStrategy::SpinThenPark(Duration::from_micros(7)),
            IdleStrategy::BusySpin,
            IdleStrategy::Park,
        ] {
            set_idle_strategy(s);
            assert_eq!(idle_strategy(), s);
        }
        assert!(SpinBudget::start().is_none(), "parking spins not at all");
        set_idle_strategy(IdleStrategy::SpinThenPark(Duration::from_millis(1)));
        let b = SpinBudget::start().expect("a budget");
        assert!(!spin_until(b, || false), "the budget runs out");
        // A budget far longer than any scheduling delay: the spin must end at the third
        // check, whatever the machine's load.
        set_idle_strategy(IdleStrategy::SpinThenPark(Duration::from_secs(600)));
        let mut n = 0;
        let b = SpinBudget::start().expect("a budget");
        assert!(spin_until(b, || {
            n += 1;
            n == 3
        }));
        set_idle_strategy(IdleStrategy::Park);
    }
}
