//! The command line shared by the two-process perf tools in `examples/` (`nng_perf`,
//! `raw_perf`): NNG perf's four roles, its argument checks and its output, so each tool
//! only supplies the roles themselves and its figures read like `nanoport perf`'s.

use std::process::ExitCode;
use std::time::Duration;

/// A role's outcome: an error is one line for stderr.
pub type PerfResult<T> = Result<T, String>;

/// The four roles of NNG's perf tools, each given `URL SIZE COUNT`.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Echoes COUNT messages back.
    pub local_lat: fn(&str, usize, u32) -> PerfResult<()>,
    /// Times COUNT round trips.
    pub remote_lat: fn(&str, usize, u32) -> PerfResult<Duration>,
    /// Times the receipt of COUNT messages.
    pub local_thr: fn(&str, usize, u32) -> PerfResult<Duration>,
    /// Sends the messages `local_thr` counts.
    pub remote_thr: fn(&str, usize, u32) -> PerfResult<()>,
}

/// NNG perf's `parse_int`: a decimal integer in `0..=1_000_000_000`.
fn parse_int(arg: &str, what: &str) -> PerfResult<u32> {
    match arg.parse::<i64>() {
        Ok(v) if (0..=1_000_000_000).contains(&v) => Ok(v as u32),
        _ => Err(format!("Invalid {what}")),
    }
}

fn run(tool: &str, roles: &Roles, args: &[String]) -> PerfResult<String> {
    let [mode, url, size, count] = args else {
        return Err(format!(
            "Usage: {tool} local_lat|remote_lat|local_thr|remote_thr URL SIZE COUNT"
        ));
    };
    let size = parse_int(size, "message size")? as usize;
    let lat = mode.ends_with("_lat");
    let count = parse_int(count, if lat { "round trips" } else { "count" })?;
    match mode.as_str() {
        "local_lat" => (roles.local_lat)(url, size, count).map(|()| String::new()),
        "remote_lat" => (roles.remote_lat)(url, size, count).map(|t| {
            format!(
                "total time: {:.3} [s]\nmessage size: {} [B]\nround trip count: {}\naverage latency: {:.3} [us]\n",
                t.as_secs_f64(),
                size,
                count,
                t.as_secs_f64() * 1e6 / (2.0 * f64::from(count.max(1)))
            )
        }),
        "local_thr" => (roles.local_thr)(url, size, count).map(|t| {
            let msgs = f64::from(count) / t.as_secs_f64().max(f64::MIN_POSITIVE);
            format!(
                "total time: {:.3} [s]\nmessage size: {} [B]\nmessage count: {}\nthroughput: {:.0} [msg/s]\nthroughput: {:.3} [Mb/s]\n",
                t.as_secs_f64(),
                size,
                count,
                msgs,
                msgs * 8.0 * size as f64 / (1024.0 * 1024.0)
            )
        }),
        "remote_thr" => (roles.remote_thr)(url, size, count).map(|()| String::new()),
        other => Err(format!("unknown mode {other}")),
    }
}

/// Runs the role named by the process arguments and prints its figures, or one error
/// line prefixed with `tool` (exit status 2).
///
/// # Examples
///
/// ```no_run
/// use nanoport_bench::perf_tool::{perf_main, Roles};
/// fn main() -> std::process::ExitCode {
///     let nothing = |_: &str, _: usize, _: u32| Ok(());
///     let instant = |_: &str, _: usize, _: u32| Ok(std::time::Duration::from_millis(1));
///     perf_main("demo_perf", &Roles {
///         local_lat: nothing,
///         remote_lat: instant,
///         local_thr: instant,
///         remote_thr: nothing,
///     })
/// }
/// ```
pub fn perf_main(tool: &str, roles: &Roles) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(tool, roles, &args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{tool}: {err}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            local_lat: |_, _, _| Ok(()),
            remote_lat: |_, _, _| Ok(Duration::from_millis(20)),
            local_thr: |_, _, _| Ok(Duration::from_secs(2)),
            remote_thr: |_, _, _| Err("refused".into()),
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prints_nng_perf_figures_and_checks_arguments() {
        let r = roles();
        assert_eq!(
            run("t", &r, &args(&["remote_lat", "u", "64", "1000"])).unwrap(),
            "total time: 0.020 [s]\nmessage size: 64 [B]\nround trip count: 1000\naverage latency: 10.000 [us]\n"
        );
        assert_eq!(
            run("t", &r, &args(&["local_thr", "u", "1024", "1000"])).unwrap(),
            "total time: 2.000 [s]\nmessage size: 1024 [B]\nmessage count: 1000\nthroughput: 500 [msg/s]\nthroughput: 3.906 [Mb/s]\n"
        );
        assert_eq!(
            run("t", &r, &args(&["local_lat", "u", "1", "1"])).unwrap(),
            ""
        );
        assert_eq!(
            run("t", &r, &args(&["remote_thr", "u", "1", "1"])).unwrap_err(),
            "refused"
        );
        assert_eq!(
            run("t", &r, &args(&["local_thr", "u", "-1", "1"])).unwrap_err(),
            "Invalid message size"
        );
        assert_eq!(
            run("t", &r, &args(&["remote_lat", "u", "1", "x"])).unwrap_err(),
            "Invalid round trips"
        );
        assert_eq!(
            run("t", &r, &args(&["bogus", "u", "1", "1"])).unwrap_err(),
            "unknown mode bogus"
        );
        assert!(run("t", &r, &args(&["local_thr"]))
            .unwrap_err()
            .starts_with("Usage: t "));
    }
}
