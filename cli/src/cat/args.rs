//! nngcat's command line: the option table, NNG's `nng_opts_parse` rules (unique
//! prefixes, `--opt=v`, `--opt:v`, `--opt v`, `-Xv`, `-X v`, no clustering, stop at the
//! first non-option) and the checks nngcat's `main` makes, in the same order, with the
//! same messages. No sockets here.

use std::io::Read;

/// The protocol flags, as nngcat's table has them (`--pair` is resolved after parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Req0,
    Rep0,
    Push0,
    Pull0,
    Pub0,
    Sub0,
    Surveyor0,
    Respondent0,
    /// `--pair`: pair1, or pair0 with `--compat`.
    Pair,
    Pair0,
    Pair1,
    Bus0,
}

/// How received messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Nothing chosen: nothing is printed.
    #[default]
    Unset,
    /// `--format no`: nothing is printed either.
    Blank,
    Raw,
    Ascii,
    Quoted,
    Msgpack,
    Hex,
}

/// Whether an address is dialed or listened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMode {
    Dial,
    Listen,
}

/// Everything nngcat's `main` gathers before it opens the socket. Times are in
/// milliseconds with nngcat's conventions: -1 means "not given" (infinite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub proto: Proto,
    pub addrs: Vec<(AddrMode, String)>,
    pub format: Format,
    pub verbose: bool,
    /// nanoport's `--stats`: print the socket's statistics tree on stderr at the end.
    pub stats: bool,
    pub delay_ms: i64,
    pub interval_ms: i64,
    pub send_timeout_ms: i64,
    pub recv_timeout_ms: i64,
    pub data: Option<Vec<u8>>,
    pub compat: bool,
    pub nonblocking: bool,
    pub count: u32,
    /// `None`: leave the socket default.
    pub recv_maxsz: Option<usize>,
    pub topics: Vec<Vec<u8>>,
    pub socket_name: Option<Vec<u8>>,
    /// `--insecure`, `--cacert`, `--cert`, `--key` or `--zt-home` were given (ZeroTier is
    /// not available here; `--zt-home` is accepted and ignored).
    pub tls_or_zt: bool,
    /// `--cacert FILE`: the CA chain (PEM) a `tls+tcp://` or `wss://` endpoint trusts.
    pub cacert: Option<Vec<u8>>,
    /// `--cert FILE` (`-E`): our certificate chain (PEM).
    pub cert: Option<Vec<u8>>,
    /// `--key FILE`: our private key (PEM); without it, taken from the `--cert` file.
    pub key: Option<Vec<u8>>,
    /// `--insecure` (`-k`): a dialer does not verify the server (auth mode none).
    pub insecure: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
// Built once per process, so the size of `Run` next to the empty variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Run(Config),
    /// `-h`/`--help`: print the usage and exit 1, as nngcat does.
    Help,
    /// `-V`/`--version`: print the version and exit 0.
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Stats,
    Verbose,
    Silent,
    Proto(Proto),
    Dial,
    Listen,
    Data,
    File,
    Subscribe,
    Format,
    Ascii,
    Quoted,
    Raw,
    Hex,
    Compat,
    Async,
    Msgpack,
    RecvMaxSz,
    Count,
    Delay,
    Interval,
    RecvTimeout,
    SendTimeout,
    SocketName,
    ListenIpc,
    DialIpc,
    ListenLocal,
    DialLocal,
    Insecure,
    CaCert,
    Key,
    Cert,
    ZtHome,
    Version,
}

struct Spec {
    name: &'static str,
    short: Option<u8>,
    opt: Opt,
    arg: bool,
}

const fn o(name: &'static str, short: Option<u8>, opt: Opt, arg: bool) -> Spec {
    Spec {
        name,
        short,
        opt,
        arg,
    }
}

/// nngcat's `opts[]`, in its order (the order decides prefix matches).
const OPTS: &[Spec] = &[
    o("help", Some(b'h'), Opt::Help, false),
    o("verbose", Some(b'v'), Opt::Verbose, false),
    o("silent", Some(b'q'), Opt::Silent, false),
    o("req0", None, Opt::Proto(Proto::Req0), false),
    o("rep0", None, Opt::Proto(Proto::Rep0), false),
    o("push0", None, Opt::Proto(Proto::Push0), false),
    o("pull0", None, Opt::Proto(Proto::Pull0), false),
    o("pub0", None, Opt::Proto(Proto::Pub0), false),
    o("sub", None, Opt::Proto(Proto::Sub0), false),
    o("sub0", None, Opt::Proto(Proto::Sub0), false),
    o("surveyor0", None, Opt::Proto(Proto::Surveyor0), false),
    o("respondent0", None, Opt::Proto(Proto::Respondent0), false),
    o("pair", None, Opt::Proto(Proto::Pair), false),
    o("pair0", None, Opt::Proto(Proto::Pair0), false),
    o("pair1", None, Opt::Proto(Proto::Pair1), false),
    o("bus0", None, Opt::Proto(Proto::Bus0), false),
    o("dial", None, Opt::Dial, true),
    o("listen", None, Opt::Listen, true),
    o("data", Some(b'D'), Opt::Data, true),
    o("file", Some(b'F'), Opt::File, true),
    o("subscribe", None, Opt::Subscribe, true),
    o("format", None, Opt::Format, true),
    o("ascii", Some(b'A'), Opt::Ascii, false),
    o("quoted", Some(b'Q'), Opt::Quoted, false),
    o("raw", None, Opt::Raw, false),
    o("hex", None, Opt::Hex, false),
    o("compat", None, Opt::Compat, false),
    o("async", None, Opt::Async, false),
    o("msgpack", None, Opt::Msgpack, false),
    o("recv-maxsz", Some(b'Z'), Opt::RecvMaxSz, true),
    o("count", Some(b'C'), Opt::Count, true),
    o("delay", Some(b'd'), Opt::Delay, true),
    o("interval", Some(b'i'), Opt::Interval, true),
    o("recv-timeout", None, Opt::RecvTimeout, true),
    o("send-timeout", None, Opt::SendTimeout, true),
    o("socket-name", None, Opt::SocketName, true),
    o("bind", None, Opt::Listen, true),
    o("connect", None, Opt::Dial, true),
    o("bind-ipc", Some(b'X'), Opt::ListenIpc, true),
    o("connect-ipc", Some(b'x'), Opt::DialIpc, true),
    o("bind-local", Some(b'L'), Opt::ListenLocal, true),
    o("connect-local", Some(b'l'), Opt::DialLocal, true),
    o("insecure", Some(b'k'), Opt::Insecure, false),
    o("cacert", None, Opt::CaCert, true),
    o("key", None, Opt::Key, true),
    o("cert", Some(b'E'), Opt::Cert, true),
    o("zt-home", None, Opt::ZtHome, true),
    o("version", Some(b'V'), Opt::Version, false),
    // nanoport's own, last so that no nngcat prefix changes meaning.
    o("stats", None, Opt::Stats, false),
];

enum Step<'a> {
    /// An option, with its value if it takes one.
    Opt(Opt, Option<&'a [u8]>),
    /// No more options.
    End,
}

/// One call of `nng_opts_parse`. On error, the message names `args[*idx]` as nngcat does.
fn next_opt<'a>(args: &'a [Vec<u8>], idx: &mut usize) -> Result<Step<'a>, String> {
    let i = *idx;
    let Some(full) = args.get(i) else {
        return Ok(Step::End);
    };
    if full.first() != Some(&b'-') {
        return Ok(Step::End);
    }
    if full.len() == 1 {
        *idx = i + 1;
        return Ok(Step::End);
    }
    let shown = || String::from_utf8_lossy(full).into_owned();
    let (arg, short, l) = if full[1] == b'-' {
        let a = &full[2..];
        let l = a
            .iter()
            .position(|&c| c == b'=' || c == b':')
            .unwrap_or(a.len());
        (a, false, l)
    } else {
        (&full[1..], true, 1)
    };

    let mut matches = 0;
    let mut found: Option<&Spec> = None;
    for spec in OPTS {
        if short {
            if spec.short == Some(arg[0]) {
                matches = 1;
                found = Some(spec);
                break;
            }
            continue;
        }
        let name = spec.name.as_bytes();
        if name.len() < l || name[..l] != arg[..l] {
            continue;
        }
        matches += 1;
        found = Some(spec);
        if name.len() == l {
            matches = 1;
            break;
        }
    }
    let spec = match (matches, found) {
        (1, Some(s)) => s,
        (0, _) | (_, None) => return Err(format!("Option {} is invalid.", shown())),
        _ => {
            return Err(format!(
                "Option {} is ambiguous (specify in full).",
                shown()
            ))
        }
    };
    if !spec.arg {
        if arg.len() != l {
            return Err(format!("Option {} is invalid.", shown()));
        }
        *idx = i + 1;
        return Ok(Step::Opt(spec.opt, None));
    }
    let val: &[u8] = if arg.len() != l {
        if short {
            &arg[l..]
        } else {
            &arg[l + 1..]
        }
    } else {
        match args.get(i + 1) {
            Some(v) => {
                *idx = i + 2;
                return Ok(Step::Opt(spec.opt, Some(v)));
            }
            None => return Err(format!("Option {} requires argument.", shown())),
        }
    };
    *idx = i + 1;
    Ok(Step::Opt(spec.opt, Some(val)))
}

/// nngcat's `intarg`: decimal digits only, at most `maxv`.
pub fn int_arg(val: &[u8], maxv: u64) -> Result<u64, String> {
    if val.is_empty() {
        return Err("Empty integer argument.".into());
    }
    let mut v: u64 = 0;
    for &c in val {
        if !c.is_ascii_digit() {
            return Err("Integer argument expected.".into());
        }
        v = v * 10 + u64::from(c - b'0');
        if v > maxv {
            return Err("Integer argument too large.".into());
        }
    }
    Ok(v)
}

/// A time in seconds, at most a day, as milliseconds. nngcat 1.5.2 takes whole seconds;
/// a decimal fraction (`0.25`) is accepted too, to millisecond precision (truncated).
pub fn secs_arg(val: &[u8]) -> Result<i64, String> {
    const MAX_SECS: u64 = 86400;
    if val.is_empty() {
        return Err("Empty integer argument.".into());
    }
    let (int_part, frac) = match val.iter().position(|&c| c == b'.') {
        Some(p) => (&val[..p], Some(&val[p + 1..])),
        None => (val, None),
    };
    let Some(frac) = frac else {
        return Ok(int_arg(int_part, MAX_SECS)? as i64 * 1000);
    };
    if (int_part.is_empty() && frac.is_empty())
        || !int_part.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return Err("Number of seconds expected.".into());
    }
    let secs = if int_part.is_empty() {
        0
    } else {
        int_arg(int_part, MAX_SECS)?
    };
    let mut ms: u64 = 0;
    for k in 0..3 {
        ms = ms * 10 + frac.get(k).map_or(0, |&c| u64::from(c - b'0'));
    }
    let total = secs * 1000 + ms;
    if total > MAX_SECS * 1000 {
        return Err("Integer argument too large.".into());
    }
    Ok(total as i64)
}

/// Reads `path` (`-` = standard input) whole, as nngcat's `loadfile`.
fn load_file(path: &[u8]) -> Result<Vec<u8>, String> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let mut buf = Vec::new();
    if path == b"-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .map_err(|e| format!("Read from {shown} failed: {}", io_msg(&e)))?;
        return Ok(buf);
    }
    let p = bytes_to_path(path);
    let mut f =
        std::fs::File::open(&p).map_err(|e| format!("Cannot open file {shown}: {}", io_msg(&e)))?;
    f.read_to_end(&mut buf)
        .map_err(|e| format!("Read from {shown} failed: {}", io_msg(&e)))?;
    Ok(buf)
}

/// `strerror`-like text: the OS message without Rust's " (os error N)" suffix.
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(b).into()
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> std::path::PathBuf {
    String::from_utf8_lossy(b).into_owned().into()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses nngcat's arguments (without the program name) and applies `main`'s checks.
/// `Err` is the one-line message nngcat prints before exiting 1.
pub fn parse(args: &[Vec<u8>]) -> Result<Command, String> {
    let mut proto: Option<Proto> = None;
    let mut addrs = Vec::new();
    let mut format = Format::Unset;
    let mut verbose = false;
    let mut stats = false;
    let mut delay_ms = 0;
    let mut interval_ms = -1;
    let mut send_timeout_ms = -1;
    let mut recv_timeout_ms = -1;
    let mut data: Option<Vec<u8>> = None;
    let mut compat = false;
    let mut nonblocking = false;
    let mut count = 0u32;
    let mut recv_maxsz = None;
    let mut topics = Vec::new();
    let mut socket_name = None;
    let mut tls_or_zt = false;
    let mut tls_files: [Option<Vec<u8>>; 3] = [None, None, None];
    let mut insecure = false;

    let mut idx = 0;
    loop {
        let (opt, val) = match next_opt(args, &mut idx)? {
            Step::End => break,
            Step::Opt(o, v) => (o, v.unwrap_or(b"")),
        };
        let set_format = |format: &mut Format, f: Format| {
            if *format != Format::Unset {
                return Err("Format may be specified only once.".to_string());
            }
            *format = f;
            Ok(())
        };
        match opt {
            Opt::Help => return Ok(Command::Help),
            Opt::Version => return Ok(Command::Version),
            Opt::Proto(p) => {
                if proto.is_some() {
                    return Err("Only one protocol may be specified.".into());
                }
                proto = Some(p);
            }
            Opt::Dial => addrs.push((AddrMode::Dial, lossy(val))),
            Opt::Listen => addrs.push((AddrMode::Listen, lossy(val))),
            Opt::DialLocal | Opt::ListenLocal => {
                let port = int_arg(val, 65536)?;
                let mode = if opt == Opt::DialLocal {
                    AddrMode::Dial
                } else {
                    AddrMode::Listen
                };
                addrs.push((mode, format!("tcp://127.0.0.1:{port}")));
            }
            Opt::DialIpc | Opt::ListenIpc => {
                let mode = if opt == Opt::DialIpc {
                    AddrMode::Dial
                } else {
                    AddrMode::Listen
                };
                addrs.push((mode, format!("ipc:///{}", lossy(val))));
            }
            Opt::Count => count = int_arg(val, 0x7fff_ffff)? as u32,
            Opt::Subscribe => topics.push(val.to_vec()),
            Opt::Verbose => verbose = true,
            Opt::Stats => stats = true,
            Opt::Silent => verbose = false,
            Opt::Delay => delay_ms = secs_arg(val)?,
            Opt::Interval => interval_ms = secs_arg(val)?,
            Opt::SendTimeout => send_timeout_ms = secs_arg(val)?,
            Opt::RecvTimeout => recv_timeout_ms = secs_arg(val)?,
            Opt::RecvMaxSz => {
                let n = int_arg(val, 0x7fff_ffff)? as usize;
                recv_maxsz = Some(if n == 0 { 0x7fff_ffff } else { n });
            }
            Opt::Compat => compat = true,
            Opt::Async => nonblocking = true,
            Opt::Ascii => set_format(&mut format, Format::Ascii)?,
            Opt::Raw => set_format(&mut format, Format::Raw)?,
            Opt::Quoted => set_format(&mut format, Format::Quoted)?,
            Opt::Msgpack => set_format(&mut format, Format::Msgpack)?,
            Opt::Hex => set_format(&mut format, Format::Hex)?,
            Opt::Format => {
                if format != Format::Unset {
                    return Err("Format may be specified only once.".into());
                }
                format = match val {
                    b"no" => Format::Blank,
                    b"ascii" => Format::Ascii,
                    b"hex" => Format::Hex,
                    b"quoted" => Format::Quoted,
                    b"raw" => Format::Raw,
                    b"msgpack" => Format::Msgpack,
                    _ => return Err("Invalid format specified.".into()),
                };
            }
            Opt::File | Opt::Data => {
                if data.is_some() {
                    return Err("Data (--file, --data) may be specified only once.".into());
                }
                data = Some(if opt == Opt::File {
                    load_file(val)?
                } else {
                    val.to_vec()
                });
            }
            Opt::SocketName => socket_name = Some(val.to_vec()),
            Opt::CaCert | Opt::Key | Opt::Cert => {
                let (slot, what) = match opt {
                    Opt::CaCert => (0, "CA Certificate (--cacert)"),
                    Opt::Key => (1, "Key (--key)"),
                    _ => (2, "Cert (--cert)"),
                };
                if tls_files[slot].is_some() {
                    return Err(format!("{what} may be specified only once."));
                }
                tls_files[slot] = Some(load_file(val)?);
                tls_or_zt = true;
            }
            Opt::Insecure => {
                insecure = true;
                tls_or_zt = true;
            }
            Opt::ZtHome => tls_or_zt = true,
        }
    }

    if addrs.is_empty() {
        return Err("No address specified.".into());
    }
    if compat {
        if nonblocking {
            return Err("Options --async and --compat are incompatible.".into());
        }
        if count != 0 {
            return Err("Options --count and --compat are incompatible.".into());
        }
        if proto == Some(Proto::Pair) {
            proto = Some(Proto::Pair0);
        }
        if proto == Some(Proto::Pair1) {
            return Err("Protocol does not support --compat.".into());
        }
        nonblocking = true;
    } else if proto == Some(Proto::Pair) {
        proto = Some(Proto::Pair1);
    }
    if proto == Some(Proto::Sub0) {
        if topics.is_empty() {
            topics.push(Vec::new());
        }
    } else if !topics.is_empty() {
        return Err("Protocol does not support --subscribe.".into());
    }

    match proto {
        Some(Proto::Pull0 | Proto::Sub0) => {
            if data.is_some() {
                return Err("Protocol does not support --file or --data.".into());
            }
            if interval_ms >= 0 {
                return Err("Protocol does not support --interval.".into());
            }
        }
        Some(Proto::Push0 | Proto::Pub0) => {
            if format != Format::Unset {
                return Err("Protocol does not support --format options.".into());
            }
            if data.is_none() {
                return Err("Protocol requires either --file or --data.".into());
            }
        }
        Some(Proto::Surveyor0 | Proto::Req0) => {
            if data.is_none() {
                return Err("Protocol requires either --file or --data.".into());
            }
        }
        Some(Proto::Rep0 | Proto::Respondent0) => {
            if interval_ms >= 0 {
                return Err("Protocol does not support --interval.".into());
            }
        }
        Some(Proto::Pair0 | Proto::Pair1 | Proto::Bus0) => {
            if interval_ms >= 0 && data.is_none() {
                return Err("Option --interval requires either --file or --data.".into());
            }
        }
        Some(Proto::Pair) | None => {}
    }
    let Some(proto) = proto else {
        return Err("No protocol specified.".into());
    };

    Ok(Command::Run(Config {
        proto,
        addrs,
        format,
        verbose,
        stats,
        delay_ms,
        interval_ms,
        send_timeout_ms,
        recv_timeout_ms,
        data,
        compat,
        nonblocking,
        count,
        recv_maxsz,
        topics,
        socket_name,
        tls_or_zt,
        key: tls_files[1].take(),
        cert: tls_files[2].take(),
        cacert: tls_files[0].take(),
        insecure,
    }))
}

/// nngcat's usage text (printed to standard output by `--help`, which exits 1).
pub const USAGE: &str = "\
Usage: nanoport cat <proto> <addr>... [<fmt>] [<opts>...] [<src>]

<proto> must be one of:
  --req0                 (or alias --req)
  --rep0                 (or alias --rep)
  --pub0                 (or alias --pub)
  --sub0                 (or alias --sub)
  --push0                (or alias --push)
  --pull0                (or alias --pull)
  --surveyor0            (or alias --surveyor)
  --respondent0          (or alias --respondent)
  --pair0
  --pair1
  --pair                 (alias for either pair0 or pair1)
  --bus0                 (or alias --bus)

<addr> must be one or more of:
  --dial <url>           (or alias --connect <url>)
  --listen <url>         (or alias --bind <url>)
  --bind-local <port>    (or alias -L <port>)
  --connect-local <port> (or alias -l <port>)
  --bind-ipc <path>      (or alias -X <path>)
  --connect-ipc <path>   (or alias -x <path>)

<fmt> may be one or none of:
  --format <no|ascii|hex|msgpack|quoted|raw>
  --ascii                (or alias -A)
  --quoted               (or alias -Q)
  --hex
  --msgpack
  --raw

<opts> may be any of:
  --subscribe <topic>    (only with --sub protocol)
  --silent               (or alias -q)
  --verbose              (or alias -v)
  --stats                (nanoport: print the statistics tree on stderr at the end)
  --count <num>          (or alias -C <num>)
  --delay <secs>         (or alias -d <secs>)
  --interval <secs>      (or alias -i <secs>)
  --recv-timeout <secs>
  --send-timeout <secs>
  --recv-maxsz <size>    (or alias -Z <size>)
  --compat
  --async
  --insecure             (or alias -k)   (tls+tcp://, wss://: do not verify the server)
  --cacert <file>                        (CA certificates to trust, PEM)
  --cert <file>          (or alias -E <file>)   (our certificate chain, PEM)
  --key <file>                           (our key, PEM; default: the --cert file)
  --zt-home <path>                       (accepted; ZeroTier is not supported)

<src> may be one of:
  --file <file>          (or alias -F <file>). Use - for standard input.
  --data <data>          (or alias -D <data>)

Times (<secs>) are whole or decimal seconds (e.g. 2 or 0.5).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn run(s: &[&str]) -> Config {
        match parse(&argv(s)) {
            Ok(Command::Run(c)) => c,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    fn err(s: &[&str]) -> String {
        match parse(&argv(s)) {
            Err(e) => e,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn protocol_aliases_by_prefix() {
        let cases = [
            ("--req", Proto::Req0),
            ("--req0", Proto::Req0),
            ("--rep", Proto::Rep0),
            ("--pub", Proto::Pub0),
            ("--sub", Proto::Sub0),
            ("--sub0", Proto::Sub0),
            ("--push", Proto::Push0),
            ("--pull", Proto::Pull0),
            ("--bus", Proto::Bus0),
            ("--surveyor", Proto::Surveyor0),
            ("--surv", Proto::Surveyor0),
            ("--respondent", Proto::Respondent0),
            ("--pair0", Proto::Pair0),
            ("--pair1", Proto::Pair1),
            ("--pair", Proto::Pair1),
        ];
        for (flag, p) in cases {
            let data: &[&str] = if matches!(
                p,
                Proto::Req0 | Proto::Surveyor0 | Proto::Pub0 | Proto::Push0
            ) {
                &["--data", "x"]
            } else {
                &[]
            };
            let mut a = vec![flag, "--dial", "tcp://127.0.0.1:1"];
            a.extend_from_slice(data);
            assert_eq!(run(&a).proto, p, "{flag}");
        }
        let c = run(&["--pair", "--compat", "--dial", "tcp://h:1"]);
        assert_eq!(c.proto, Proto::Pair0);
        assert!(c.nonblocking);
    }

    #[test]
    fn parse_errors_match_nngcat() {
        assert_eq!(err(&["--foo"]), "Option --foo is invalid.");
        assert_eq!(
            err(&["--re", "--dial", "x"]),
            "Option --re is ambiguous (specify in full)."
        );
        assert_eq!(
            err(&["--pull", "--dial"]),
            "Option --dial requires argument."
        );
        assert_eq!(err(&["--req0"]), "No address specified.");
        assert_eq!(err(&["--dial", "x"]), "No protocol specified.");
        assert_eq!(
            err(&["--req0", "--rep0", "--dial", "x"]),
            "Only one protocol may be specified."
        );
        assert_eq!(err(&["--verbosex"]), "Option --verbosex is invalid.");
        assert_eq!(err(&["-vx"]), "Option -vx is invalid.");
        assert_eq!(err(&["-y"]), "Option -y is invalid.");
        assert_eq!(
            err(&["--req", "--dial", "x"]),
            "Protocol requires either --file or --data."
        );
        assert_eq!(
            err(&["--push", "--dial", "x", "-A", "-D", "a"]),
            "Protocol does not support --format options."
        );
        assert_eq!(
            err(&["--pull", "--dial", "x", "-D", "a"]),
            "Protocol does not support --file or --data."
        );
        assert_eq!(
            err(&["--pull", "--dial", "x", "-i", "1"]),
            "Protocol does not support --interval."
        );
        assert_eq!(
            err(&["--rep", "--dial", "x", "-i", "1"]),
            "Protocol does not support --interval."
        );
        assert_eq!(
            err(&["--pair", "--dial", "x", "-i", "1"]),
            "Option --interval requires either --file or --data."
        );
        assert_eq!(
            err(&["--rep", "--dial", "x", "--subscribe", "a"]),
            "Protocol does not support --subscribe."
        );
        assert_eq!(err(&["-A", "--hex"]), "Format may be specified only once.");
        assert_eq!(err(&["--format", "xml"]), "Invalid format specified.");
        assert_eq!(
            err(&["-D", "a", "-D", "b"]),
            "Data (--file, --data) may be specified only once."
        );
        assert_eq!(err(&["-C", "x1"]), "Integer argument expected.");
        assert_eq!(err(&["-C", ""]), "Empty integer argument.");
        assert_eq!(err(&["-L", "65537"]), "Integer argument too large.");
        assert_eq!(err(&["-i", "86401"]), "Integer argument too large.");
        assert_eq!(
            err(&["--compat", "--async", "--pair", "--dial", "x"]),
            "Options --async and --compat are incompatible."
        );
        assert_eq!(
            err(&["--compat", "-C", "1", "--pair", "--dial", "x"]),
            "Options --count and --compat are incompatible."
        );
        assert_eq!(
            err(&["--compat", "--pair1", "--dial", "x"]),
            "Protocol does not support --compat."
        );
        assert!(err(&["--pull", "-F", "/nonexistent/file", "--dial", "x"])
            .starts_with("Cannot open file /nonexistent/file: "));
        // `--` alone is a prefix of everything.
        assert_eq!(err(&["--"]), "Option -- is ambiguous (specify in full).");
    }

    #[test]
    fn value_forms_and_addresses() {
        let c = run(&[
            "--sub",
            "--dial=tcp://a:1",
            "--connect:tcp://b:2",
            "--listen",
            "tcp://c:3",
            "--bind",
            "tcp://d:4",
            "-L5",
            "-l",
            "6",
            "-X",
            "tmp/s",
            "-xtmp/t",
            "--subscribe",
            "x",
            "--subscribe=",
        ]);
        assert_eq!(
            c.addrs,
            vec![
                (AddrMode::Dial, "tcp://a:1".into()),
                (AddrMode::Dial, "tcp://b:2".into()),
                (AddrMode::Listen, "tcp://c:3".into()),
                (AddrMode::Listen, "tcp://d:4".into()),
                (AddrMode::Listen, "tcp://127.0.0.1:5".into()),
                (AddrMode::Dial, "tcp://127.0.0.1:6".into()),
                (AddrMode::Listen, "ipc:///tmp/s".into()),
                (AddrMode::Dial, "ipc:///tmp/t".into()),
            ]
        );
        assert_eq!(c.topics, vec![b"x".to_vec(), Vec::new()]);
        // sub with no topic subscribes to everything
        assert_eq!(run(&["--sub", "-l", "1"]).topics, vec![Vec::<u8>::new()]);
    }

    #[test]
    fn stops_at_first_non_option() {
        let c = run(&["--pull", "-l", "1", "-", "--bogus"]);
        assert_eq!(c.proto, Proto::Pull0);
        let c = run(&["--pull", "-l", "1", "extra", "--bogus"]);
        assert_eq!(c.proto, Proto::Pull0);
    }

    #[test]
    fn formats_times_and_misc() {
        let c = run(&[
            "--rep",
            "-l",
            "1",
            "--format",
            "no",
            "-D",
            "pong",
            "-v",
            "-d",
            "2",
            "--recv-timeout",
            "0.25",
            "--send-timeout=1.5",
            "-Z",
            "0",
            "-C",
            "7",
        ]);
        assert_eq!(c.format, Format::Blank);
        assert_eq!(c.data.as_deref(), Some(&b"pong"[..]));
        assert!(c.verbose);
        assert_eq!(c.delay_ms, 2000);
        assert_eq!(c.recv_timeout_ms, 250);
        assert_eq!(c.send_timeout_ms, 1500);
        assert_eq!(c.interval_ms, -1);
        assert_eq!(c.recv_maxsz, Some(0x7fff_ffff));
        assert_eq!(c.count, 7);
        let c = run(&["--pull", "-l", "1", "-v", "-q", "--hex", "-Z", "100"]);
        assert!(!c.verbose);
        assert_eq!(c.format, Format::Hex);
        assert_eq!(c.recv_maxsz, Some(100));
        for (f, want) in [
            ("--ascii", Format::Ascii),
            ("-A", Format::Ascii),
            ("-Q", Format::Quoted),
            ("--quoted", Format::Quoted),
            ("--raw", Format::Raw),
            ("--msgpack", Format::Msgpack),
            ("--hex", Format::Hex),
        ] {
            assert_eq!(run(&["--pull", "-l", "1", f]).format, want);
        }
        assert_eq!(parse(&argv(&["-h"])), Ok(Command::Help));
        assert_eq!(parse(&argv(&["--vers"])), Ok(Command::Version));
        // the accepted-and-ignored options
        let c = run(&[
            "--pull",
            "-l",
            "1",
            "--async",
            "--socket-name",
            "n",
            "-k",
            "--zt-home",
            "/x",
        ]);
        assert!(c.nonblocking);
        assert!(c.tls_or_zt);
        assert!(c.insecure);
    }

    #[test]
    fn seconds() {
        assert_eq!(secs_arg(b"0"), Ok(0));
        assert_eq!(secs_arg(b"3"), Ok(3000));
        assert_eq!(secs_arg(b"0.5"), Ok(500));
        assert_eq!(secs_arg(b".5"), Ok(500));
        assert_eq!(secs_arg(b"2."), Ok(2000));
        assert_eq!(secs_arg(b"1.2345"), Ok(1234));
        assert_eq!(secs_arg(b"86400"), Ok(86_400_000));
        assert!(secs_arg(b"86400.5").is_err());
        assert!(secs_arg(b".").is_err());
        assert!(secs_arg(b"1.x").is_err());
        assert!(secs_arg(b"-1").is_err());
        assert!(secs_arg(b"").is_err());
    }
}
