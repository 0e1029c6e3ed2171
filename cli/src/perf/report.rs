//! The figures NNG's perf tools print, and the arithmetic behind them.

use std::time::Duration;

/// One-way latency in microseconds, as NNG's `remote_lat`: total / (2 * round trips).
pub fn one_way_latency_us(total: Duration, trips: u32) -> f64 {
    if trips == 0 {
        return 0.0;
    }
    total.as_secs_f64() * 1e6 / (2.0 * f64::from(trips))
}

/// Messages per second and megabits (2^20 bits) per second, as NNG's `local_thr`.
pub fn throughput(total: Duration, size: usize, count: u64) -> (f64, f64) {
    let secs = total.as_secs_f64();
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    let msgs = count as f64 / secs;
    (msgs, msgs * 8.0 * size as f64 / (1024.0 * 1024.0))
}

/// `remote_lat`'s output.
pub fn latency_report(total: Duration, size: usize, trips: u32) -> String {
    format!(
        "total time: {:.3} [s]\nmessage size: {} [B]\nround trip count: {}\naverage latency: {:.3} [us]\n",
        total.as_secs_f64(),
        size,
        trips,
        one_way_latency_us(total, trips)
    )
}

/// `local_thr`'s output.
pub fn throughput_report(total: Duration, size: usize, count: u32) -> String {
    let (msgs, mbps) = throughput(total, size, u64::from(count));
    format!(
        "total time: {:.3} [s]\nmessage size: {} [B]\nmessage count: {}\nthroughput: {:.0} [msg/s]\nthroughput: {:.3} [Mb/s]\n",
        total.as_secs_f64(),
        size,
        count,
        msgs,
        mbps
    )
}

/// NNG perf's `parse_int`: a decimal integer in `0..=1_000_000_000`.
pub fn parse_int(arg: &str, what: &str) -> Result<u32, String> {
    match arg.parse::<i64>() {
        Ok(v) if (0..=1_000_000_000).contains(&v) => Ok(v as u32),
        _ => Err(format!("Invalid {what}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lines() {
        let r = latency_report(Duration::from_millis(1500), 64, 1000);
        assert_eq!(
            r,
            "total time: 1.500 [s]\nmessage size: 64 [B]\nround trip count: 1000\naverage latency: 750.000 [us]\n"
        );
        assert_eq!(one_way_latency_us(Duration::from_secs(1), 0), 0.0);
    }

    #[test]
    fn throughput_lines() {
        let r = throughput_report(Duration::from_secs(2), 1024, 100_000);
        assert_eq!(
            r,
            "total time: 2.000 [s]\nmessage size: 1024 [B]\nmessage count: 100000\nthroughput: 50000 [msg/s]\nthroughput: 390.625 [Mb/s]\n"
        );
        assert_eq!(throughput(Duration::ZERO, 1, 1), (0.0, 0.0));
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("0", "count"), Ok(0));
        assert_eq!(parse_int("1000000000", "count"), Ok(1_000_000_000));
        assert_eq!(
            parse_int("1000000001", "count"),
            Err("Invalid count".into())
        );
        assert_eq!(
            parse_int("-1", "message size"),
            Err("Invalid message size".into())
        );
        assert_eq!(parse_int("12x", "count"), Err("Invalid count".into()));
        assert_eq!(parse_int("", "count"), Err("Invalid count".into()));
    }
}
