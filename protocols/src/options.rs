//! Parsing and checking option values, shared by every protocol.

use std::ops::RangeInclusive;

use nanoport_engine::{Error, Result, Timeout};

use crate::core::OptValue;

/// `NNG_OPT_MAXTTL`'s default.
pub(crate) const DEFAULT_MAX_TTL: u8 = 8;

/// `NNI_MAX_MAX_TTL`: the largest hop limit NNG accepts.
pub(crate) const MAX_TTL_LIMIT: u8 = 15;

/// The range NNG accepts for `send-buffer` and `recv-buffer`.
pub(crate) const BUFFER_RANGE: RangeInclusive<i32> = 0..=8192;

/// The range for buffers that must hold at least one message (pub, bus, sub).
pub(crate) const NONEMPTY_BUFFER_RANGE: RangeInclusive<i32> = 1..=8192;

/// An `Int` option within `range`.
///
/// # Errors
/// `BadType` for another type, `Inval` for a value outside `range`.
pub(crate) fn int_in(value: &OptValue, range: RangeInclusive<i32>) -> Result<i32> {
    match value {
        OptValue::Int(v) if range.contains(v) => Ok(*v),
        OptValue::Int(_) => Err(Error::Inval),
        _ => Err(Error::BadType),
    }
}

/// A buffer size (an `Int` within `range`) as a message count.
///
/// # Errors
/// `BadType` for another type, `Inval` for a value outside `range`.
pub(crate) fn buffer_size(value: &OptValue, range: RangeInclusive<i32>) -> Result<usize> {
    int_in(value, range).map(|v| v as usize)
}

/// The `ttl-max` option: an `Int` in `1..=15`.
///
/// # Errors
/// `BadType` for another type, `Inval` for a value outside the range.
pub(crate) fn max_ttl(value: &OptValue) -> Result<u8> {
    int_in(value, 1..=i32::from(MAX_TTL_LIMIT)).map(|v| v as u8)
}

/// A `Duration` option.
///
/// # Errors
/// `BadType` for another type.
pub(crate) fn duration(value: &OptValue) -> Result<Timeout> {
    match value {
        OptValue::Duration(t) => Ok(*t),
        _ => Err(Error::BadType),
    }
}

/// A `Bool` option.
///
/// # Errors
/// `BadType` for another type.
pub(crate) fn boolean(value: &OptValue) -> Result<bool> {
    match value {
        OptValue::Bool(b) => Ok(*b),
        _ => Err(Error::BadType),
    }
}

/// A `Bytes` option.
///
/// # Errors
/// `BadType` for another type.
pub(crate) fn bytes(value: &OptValue) -> Result<&[u8]> {
    match value {
        OptValue::Bytes(b) => Ok(b),
        _ => Err(Error::BadType),
    }
}

/// The size of a buffer as an `Int` option value.
pub(crate) fn buffer_value(size: usize) -> OptValue {
    OptValue::Int(size.min(i32::MAX as usize) as i32)
}

/// A duration option's timer deadline from `now`: `None` when it is zero, negative
/// (`Infinite`, `Default`) or otherwise disabled, as NNG treats `<= 0`.
pub(crate) fn positive_deadline(t: Timeout, now: std::time::Instant) -> Option<std::time::Instant> {
    match t {
        Timeout::After(d) if !d.is_zero() => t.deadline_from(now),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_types_are_checked() {
        assert_eq!(int_in(&OptValue::Int(5), 1..=10), Ok(5));
        assert_eq!(int_in(&OptValue::Int(11), 1..=10), Err(Error::Inval));
        assert_eq!(int_in(&OptValue::Bool(true), 1..=10), Err(Error::BadType));
        assert_eq!(max_ttl(&OptValue::Int(15)), Ok(15));
        assert_eq!(max_ttl(&OptValue::Int(16)), Err(Error::Inval));
        assert_eq!(max_ttl(&OptValue::Int(0)), Err(Error::Inval));
        assert_eq!(max_ttl(&OptValue::Int(-1)), Err(Error::Inval));
        assert_eq!(duration(&OptValue::Int(1)), Err(Error::BadType));
        assert_eq!(boolean(&OptValue::Bool(false)), Ok(false));
        assert_eq!(bytes(&OptValue::Bytes(vec![1])), Ok(&[1u8][..]));
    }

    #[test]
    fn non_positive_durations_disable_timers() {
        let now = std::time::Instant::now();
        assert_eq!(positive_deadline(Timeout::Infinite, now), None);
        assert_eq!(positive_deadline(Timeout::Default, now), None);
        assert_eq!(
            positive_deadline(Timeout::After(std::time::Duration::ZERO), now),
            None
        );
        let one = std::time::Duration::from_secs(1);
        assert_eq!(positive_deadline(Timeout::After(one), now), Some(now + one));
    }
}
