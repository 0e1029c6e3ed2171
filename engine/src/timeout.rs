//! [`Timeout`]: NNG's `nng_duration`, with its two special values as variants.

use std::time::{Duration, Instant};

/// How long an operation may take: NNG's `nng_duration`.
///
/// `Default` (`NNG_DURATION_DEFAULT`) means "whatever the socket's send or receive timeout
/// says"; `Infinite` (`NNG_DURATION_INFINITE`) never expires; `After(Duration::ZERO)`
/// (`NNG_DURATION_ZERO`) fails at once with [`Error::TimedOut`](crate::Error::TimedOut)
/// unless the result is already known.
///
/// # Examples
///
/// ```
/// use nanoport_engine::Timeout;
/// use std::time::Duration;
/// let t: Timeout = Duration::from_millis(100).into();
/// assert_eq!(t, Timeout::After(Duration::from_millis(100)));
/// assert_eq!(Timeout::from_millis(-1), Timeout::Infinite);
/// assert_eq!(Timeout::Infinite.as_millis(), -1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Timeout {
    /// Use the owner's default (the socket's or context's timeout; infinite elsewhere).
    #[default]
    Default,
    /// Never time out.
    Infinite,
    /// Time out after this long.
    After(Duration),
}

impl Timeout {
    /// The timeout for NNG's millisecond encoding: -1 is infinite, -2 default, others are ms.
    /// Any other negative value is treated as infinite.
    pub fn from_millis(ms: i32) -> Timeout {
        match ms {
            -2 => Timeout::Default,
            m if m < 0 => Timeout::Infinite,
            m => Timeout::After(Duration::from_millis(m as u64)),
        }
    }

    /// NNG's millisecond encoding of this timeout (saturating at `i32::MAX`).
    pub fn as_millis(&self) -> i32 {
        match self {
            Timeout::Default => -2,
            Timeout::Infinite => -1,
            Timeout::After(d) => d.as_millis().min(i32::MAX as u128) as i32,
        }
    }

    /// Replaces `Default` with `fallback`.
    pub fn or(self, fallback: Timeout) -> Timeout {
        match self {
            Timeout::Default => fallback,
            t => t,
        }
    }

    /// The absolute deadline this timeout gives from `now`, or `None` when it never expires
    /// (`Default` counts as infinite here: normalise it first with [`or`](Timeout::or)).
    pub fn deadline_from(&self, now: Instant) -> Option<Instant> {
        match self {
            Timeout::After(d) => Some(
                now.checked_add(*d)
                    .unwrap_or(now + Duration::from_secs(86400 * 365 * 30)),
            ),
            _ => None,
        }
    }
}

impl From<Duration> for Timeout {
    fn from(d: Duration) -> Timeout {
        Timeout::After(d)
    }
}

impl From<Option<Duration>> for Timeout {
    /// `None` is [`Timeout::Infinite`].
    fn from(d: Option<Duration>) -> Timeout {
        d.map_or(Timeout::Infinite, Timeout::After)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_encoding_matches_nng() {
        assert_eq!(Timeout::from_millis(-2), Timeout::Default);
        assert_eq!(Timeout::from_millis(-1), Timeout::Infinite);
        assert_eq!(Timeout::from_millis(0), Timeout::After(Duration::ZERO));
        assert_eq!(Timeout::from_millis(250).as_millis(), 250);
        assert_eq!(
            Timeout::After(Duration::from_secs(u64::MAX)).as_millis(),
            i32::MAX
        );
    }

    #[test]
    fn deadlines() {
        let now = Instant::now();
        assert_eq!(Timeout::Infinite.deadline_from(now), None);
        assert_eq!(Timeout::Default.deadline_from(now), None);
        assert_eq!(
            Timeout::After(Duration::from_secs(1)).deadline_from(now),
            Some(now + Duration::from_secs(1))
        );
        assert!(Timeout::After(Duration::MAX).deadline_from(now).is_some());
        assert_eq!(Timeout::Default.or(Timeout::Infinite), Timeout::Infinite);
    }
}
