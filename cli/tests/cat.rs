//! `nanoport cat` against itself and against the real nngcat, in both directions, for
//! req/rep, push/pull and pub/sub, comparing what each side prints byte for byte in every
//! output format.

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::{nanoport, nngcat, run, s, start_server, Proc, TempDir};

const T: Duration = Duration::from_secs(10);

/// A message with everything the formats treat specially.
const SPECIAL: &[u8] = b"a\"b\\c\n\r\t\x00\x01\x7f\x80\xff z~";
const REPLY: &[u8] = b"re\"ply\\\x00\xfe\n";

const FORMATS: [&str; 5] = ["ascii", "quoted", "hex", "msgpack", "raw"];

/// The shorthand flag for a format (clients use these, servers use `--format F`).
fn short_flag(f: &str) -> &'static str {
    match f {
        "ascii" => "-A",
        "quoted" => "-Q",
        "hex" => "--hex",
        "msgpack" => "--msgpack",
        _ => "--raw",
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    ReqRep,
    PushPull,
    PubSub,
}

struct Files {
    msgs: [String; 3],
    reply: String,
    pubs: [String; 3],
}

fn files(dir: &TempDir) -> Files {
    Files {
        msgs: [
            dir.file("m0", SPECIAL),
            dir.file("m1", b""),
            dir.file("m2", b"hello"),
        ],
        reply: dir.file("reply", REPLY),
        pubs: [
            dir.file("p0", &[b"ab", SPECIAL].concat()),
            dir.file("p1", b"nope"),
            dir.file("p2", b"ab"),
        ],
    }
}

/// One exchange: `server` listens on a fresh port, `client` dials it three times in turn.
/// Returns what the server printed and what the clients printed, concatenated.
fn exchange(kind: Kind, fmt: &str, server: &Path, client: &Path, f: &Files) -> (Vec<u8>, Vec<u8>) {
    let server_args = |url: &str| {
        let flags = match kind {
            Kind::ReqRep => s(&[
                "--rep0", "--listen", url, "--file", &f.reply, "--count", "3",
            ]),
            Kind::PushPull => s(&["--pull", "--bind", url, "-C", "3"]),
            Kind::PubSub => s(&[
                "--sub",
                "--listen",
                url,
                "--subscribe",
                "ab",
                "--count",
                "2",
            ]),
        };
        cat_args(server, [flags, s(&["--format", fmt, "--verbose"])].concat())
    };
    let (srv, url, announce) = start_server(server, server_args);
    let mut client_out = Vec::new();
    for i in 0..3 {
        let args = match kind {
            Kind::ReqRep => s(&["--req", "--dial", &url, "-F", &f.msgs[i], short_flag(fmt)]),
            Kind::PushPull => s(&["--push0", "--connect", &url, "--file", &f.msgs[i]]),
            Kind::PubSub => s(&["--pub", "--dial", &url, "--file", &f.pubs[i]]),
        };
        let out = Proc::spawn(client, &cat_args(client, args.clone())).finish(T);
        if out.code != Some(0) {
            let srv_out = srv.stop();
            panic!(
                "{kind:?} {fmt}: client `{} {}` failed: {}; server {} said: {:?}",
                client.display(),
                args.join(" "),
                out.stderr,
                server.display(),
                srv_out
            );
        }
        client_out.extend_from_slice(&out.stdout);
    }
    let out = srv.success(T);
    let line = format!("Listening at: {url}\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout[..announce.min(out.stdout.len())]),
        line,
        "{kind:?} {fmt}: server {} --verbose",
        server.display()
    );
    (out.stdout[announce..].to_vec(), client_out)
}

/// nanoport takes nngcat's flags after `cat`; nngcat takes them directly.
fn cat_args(prog: &Path, flags: Vec<String>) -> Vec<String> {
    if prog == nanoport() {
        [vec!["cat".to_string()], flags].concat()
    } else {
        flags
    }
}

/// What nngcat prints for `body` in format `fmt` (checked against nngcat 1.5.2); used as
/// the reference when nngcat itself is not installed.
fn oracle(fmt: &str, body: &[u8]) -> Vec<u8> {
    let printable = |c: u8| (0x20..=0x7e).contains(&c);
    let mut o = Vec::new();
    match fmt {
        "ascii" => o.extend(body.iter().map(|&c| if printable(c) { c } else { b'.' })),
        "quoted" => {
            o.push(b'"');
            for &c in body {
                match c {
                    b'\n' => o.extend_from_slice(b"\\n"),
                    b'\r' => o.extend_from_slice(b"\\r"),
                    b'\t' => o.extend_from_slice(b"\\t"),
                    b'"' | b'\\' => o.extend_from_slice(&[b'\\', c]),
                    c if printable(c) => o.push(c),
                    c => o.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
                }
            }
            o.extend_from_slice(b"\"\n");
        }
        "hex" => {
            o.push(b'"');
            for &c in body {
                o.extend_from_slice(format!("\\x{c:02x}").as_bytes());
            }
            o.extend_from_slice(b"\"\n");
        }
        "msgpack" => {
            o.extend_from_slice(&[0xc4, body.len() as u8]);
            o.extend_from_slice(body);
        }
        _ => o.extend_from_slice(body),
    }
    o
}

fn oracle_all(fmt: &str, bodies: &[&[u8]]) -> Vec<u8> {
    bodies.iter().flat_map(|b| oracle(fmt, b)).collect()
}

/// One exchange's format, server, client, and (server output, client output).
type Run = (String, PathBuf, PathBuf, (Vec<u8>, Vec<u8>));

/// Runs `kind` in every format for every server/client pairing (nanoport and nngcat, when
/// installed), all at once, and checks each against the reference.
fn matrix(kind: Kind, test: &str) {
    let dir = TempDir::new(test);
    let f = files(&dir);
    let np = nanoport();
    let nng = nngcat(test);
    let mut impls = vec![np.clone()];
    impls.extend(nng.clone());

    let results: Vec<Run> = thread::scope(|sc| {
        let mut handles = Vec::new();
        for fmt in FORMATS {
            for server in &impls {
                for client in &impls {
                    let f = &f;
                    handles.push(sc.spawn(move || {
                        let r = exchange(kind, fmt, server, client, f);
                        (fmt.to_string(), server.clone(), client.clone(), r)
                    }));
                }
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("exchange thread panicked"))
            .collect()
    });

    for fmt in FORMATS {
        let expected = match kind {
            Kind::ReqRep => (
                oracle_all(fmt, &[SPECIAL, b"", b"hello"]),
                oracle_all(fmt, &[REPLY, REPLY, REPLY]),
            ),
            Kind::PushPull => (oracle_all(fmt, &[SPECIAL, b"", b"hello"]), Vec::new()),
            Kind::PubSub => (
                oracle_all(fmt, &[&[b"ab", SPECIAL].concat(), b"ab"]),
                Vec::new(),
            ),
        };
        // With nngcat installed, nngcat talking to nngcat is the reference (and the
        // oracle must agree with it); otherwise the oracle is.
        let reference: (Vec<u8>, Vec<u8>) = match &nng {
            Some(n) => {
                let r = results
                    .iter()
                    .find(|(f, srv, cli, _)| f == fmt && srv == n && cli == n)
                    .map(|r| r.3.clone())
                    .expect("reference run");
                assert_eq!(
                    r, expected,
                    "{kind:?} {fmt}: nngcat differs from the oracle"
                );
                r
            }
            None => expected,
        };
        // The reference itself must show the messages (guards against both sides printing nothing).
        assert!(!reference.0.is_empty(), "{kind:?} {fmt}: empty reference");
        for (f, srv, cli, got) in &results {
            if f != fmt {
                continue;
            }
            let who = format!(
                "{kind:?} {fmt}: server {} / client {}",
                srv.display(),
                cli.display()
            );
            assert_eq!(got.0, reference.0, "{who}: server output differs");
            assert_eq!(got.1, reference.1, "{who}: client output differs");
        }
    }
    if nng.is_none() {
        // Without nngcat, check the oracle against nngcat 1.5.2's recorded output.
        let want = oracle("quoted", SPECIAL);
        assert_eq!(
            want,
            b"\"a\\\"b\\\\c\\n\\r\\t\\x00\\x01\\x7f\\x80\\xff z~\"\n"
        );
    }
}

#[test]
fn req_rep_all_formats_both_directions() {
    matrix(Kind::ReqRep, "req_rep");
}

#[test]
fn push_pull_all_formats_both_directions() {
    matrix(Kind::PushPull, "push_pull");
}

#[test]
fn pub_sub_all_formats_both_directions() {
    matrix(Kind::PubSub, "pub_sub");
}

/// ipc addresses (`-X`/`-x`), `--verbose`, repeated sends with `--count`/`--interval`.
#[test]
fn ipc_verbose_count_interval() {
    let dir = TempDir::new("ipc");
    let path = dir.0.join("sock");
    let p = path.to_string_lossy().into_owned();
    let np = nanoport();
    let mut peers = vec![np.clone()];
    peers.extend(nngcat("ipc_verbose_count_interval"));
    for (i, peer) in peers.iter().enumerate() {
        let path_i = format!("{p}{i}");
        let url = format!("ipc:///{path_i}");
        let srv = Proc::spawn(
            &np,
            &s(&["cat", "--pull0", "-X", &path_i, "-v", "-Q", "-C", "3"]),
        );
        let line = format!("Listening at: {url}\n");
        let deadline = std::time::Instant::now() + T;
        while !srv.stdout_so_far().starts_with(line.as_bytes()) {
            assert!(
                std::time::Instant::now() < deadline,
                "ipc server did not listen"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let args = s(&["--push0", "-x", &path_i, "-D", "tick", "-C", "3", "-i", "0"]);
        Proc::spawn(peer, &cat_args(peer, args)).success(T);
        let out = srv.success(T);
        let want = format!("Listening at: {url}\n\"tick\"\n\"tick\"\n\"tick\"\n");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "peer {}",
            peer.display()
        );
    }
}

/// Surveyor sends, respondents answer; the survey ends after the survey time (1 s).
/// The respondents listen and the surveyor dials them all (blocking) before it asks.
#[test]
fn surveyor_respondent() {
    let np = nanoport();
    let mut impls = vec![np.clone()];
    impls.extend(nngcat("surveyor_respondent"));
    let mut resp = Vec::new();
    let mut surveyor = s(&["--surveyor", "--data", "q?", "-Q"]);
    for prog in &impls {
        let n = impls.len().to_string();
        let (p, url, _) = start_server(prog, |url| {
            let flags = [
                "--respondent",
                "--listen",
                url,
                "--data",
                "yes",
                "-Q",
                "-C",
                &n,
                "-v",
            ];
            cat_args(prog, s(&flags))
        });
        resp.push(p);
        surveyor.extend(s(&["--dial", &url]));
    }
    for prog in &impls {
        let out = Proc::spawn(prog, &cat_args(prog, surveyor.clone())).success(T);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "\"yes\"\n".repeat(impls.len()),
            "surveyor {}",
            prog.display()
        );
    }
    for r in resp {
        // Each respondent answered one survey per surveyor (-C n) and exited.
        let out = r.success(T).stdout;
        let body = &out[out.iter().position(|&c| c == b'\n').map_or(0, |p| p + 1)..];
        assert_eq!(body, b"\"q?\"\n".repeat(impls.len()));
    }
}

/// `--file -` reads standard input whole; an empty `--data` sends an empty message.
#[test]
fn file_from_stdin_and_empty_data() {
    let np = nanoport();
    let (srv, url, announce) = start_server(&np, |url| {
        s(&["cat", "--pull", "--listen", url, "--hex", "-C", "2", "-v"])
    });
    let input: &[u8] = b"line one\n\x00line two\n";
    Proc::spawn_with_stdin(
        &np,
        &s(&["cat", "--push", "--dial", &url, "--file", "-"]),
        Some(input),
    )
    .success(T);
    Proc::spawn(&np, &s(&["cat", "--push", "--dial", &url, "--data", ""])).success(T);
    let out = srv.success(T);
    assert_eq!(
        out.stdout[announce..],
        [oracle("hex", input), oracle("hex", b"")].concat()
    );
}

#[test]
fn bad_flags_and_errors() {
    let np = nanoport();
    let cases: &[(&[&str], &str)] = &[
        (&["cat", "--bogus"], "Option --bogus is invalid."),
        (
            &["cat", "--re", "--dial", "tcp://127.0.0.1:1"],
            "Option --re is ambiguous (specify in full).",
        ),
        (&["cat", "--req0"], "No address specified."),
        (
            &["cat", "--req0", "--dial"],
            "Option --dial requires argument.",
        ),
        (
            &["cat", "--push", "--dial", "tcp://127.0.0.1:1"],
            "Protocol requires either --file or --data.",
        ),
        (
            &[
                "cat",
                "--pull",
                "--dial",
                "tcp://127.0.0.1:1",
                "--count",
                "x",
            ],
            "Integer argument expected.",
        ),
        (
            &["cat", "--pull", "--dial", "nope://x"],
            "Unable to create dialer for nope://x: ",
        ),
    ];
    for (args, want) in cases {
        let out = run(&np, &s(args));
        assert_eq!(out.code, Some(1), "{args:?}");
        assert!(
            out.stderr.contains(want),
            "{args:?}: stderr {:?}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {:?}", out.stderr);
    }
    // A refused dial.
    let port = common::free_port();
    let out = run(
        &np,
        &s(&[
            "cat",
            "--req",
            "--dial",
            &format!("tcp://127.0.0.1:{port}"),
            "-D",
            "x",
        ]),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("Unable to dial on"), "{:?}", out.stderr);
    // Help: usage on stdout, exit 1, as nngcat.
    let out = run(&np, &s(&["cat", "--help"]));
    assert_eq!(out.code, Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--req0"));
    // A receive timeout ends a receive loop normally.
    let out = run(
        &np,
        &s(&[
            "cat",
            "--pull",
            "--listen",
            "tcp://127.0.0.1:0",
            "--recv-timeout",
            "0.2",
        ]),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// nanoport's `--stats`: the socket's statistics tree on stderr when cat ends, with what
/// it moved; stdout keeps nngcat's output alone.
#[test]
fn stats_flag_prints_the_tree_on_stderr() {
    let np = nanoport();
    let mut peers = vec![np.clone()];
    peers.extend(nngcat("stats_flag_prints_the_tree_on_stderr"));
    for peer in peers {
        let (srv, url, _) = start_server(&np, |url| {
            s(&[
                "cat", "--pull0", "--listen", url, "-Q", "-C", "2", "--stats",
            ])
        });
        let args = s(&["--push0", "--dial", &url, "-D", "abc", "-C", "2", "-i", "0"]);
        Proc::spawn(&peer, &cat_args(&peer, args)).success(T);
        let out = srv.success(T);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .matches("\"abc\"")
                .count(),
            2
        );
        assert!(out.stderr.starts_with("socket:\n"), "{}", out.stderr);
        for line in [
            "rx_msgs      2",
            "rx_bytes     6",
            "listener:",
            "accept       1",
        ] {
            assert!(out.stderr.contains(line), "no `{line}` in:\n{}", out.stderr);
        }
    }
}
