//! `nanoport cat`'s TLS flags (`--cert`/`-E`, `--key`, `--cacert`, `--insecure`/`-k`) over
//! `tls+tcp://` and `wss://`, against itself and the real nngcat in both directions, with
//! certificates generated at test time.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{nanoport, nngcat, s, start_server, Proc, TempDir};

const T: Duration = Duration::from_secs(10);

struct Certs {
    _dir: TempDir,
    ca: String,
    other_ca: String,
    cert: String,
    key: String,
}

fn certs(tag: &str) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let dir = TempDir::new(tag);
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        let k = KeyPair::generate().unwrap();
        let c = p.self_signed(&k).unwrap();
        (c, k)
    };
    let (ca_cert, ca_key) = ca("cat test CA");
    let (other, _) = ca("another CA");
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    // mbedTLS 2 (nngcat) matches an IP literal against dNSName entries only.
    p.subject_alt_names
        .push(SanType::DnsName("127.0.0.1".try_into().unwrap()));
    let k = KeyPair::generate().unwrap();
    let leaf = p.signed_by(&k, &ca_cert, &ca_key).unwrap();
    Certs {
        ca: dir.file("ca.pem", ca_cert.pem().as_bytes()),
        other_ca: dir.file("other.pem", other.pem().as_bytes()),
        cert: dir.file("server.crt", leaf.pem().as_bytes()),
        key: dir.file("server.key", k.serialize_pem().as_bytes()),
        _dir: dir,
    }
}

fn with_cat(prog: &Path, args: Vec<String>) -> Vec<String> {
    if prog == nanoport() {
        [vec!["cat".to_string()], args].concat()
    } else {
        args
    }
}

fn peers(test: &str) -> Vec<PathBuf> {
    let mut v = vec![nanoport()];
    v.extend(nngcat(test));
    v
}

/// A rep server with a certificate on `scheme`, answering "pong"; a req client trusting
/// the CA: each pair of (server, client) among nanoport and nngcat, over tls+tcp and wss.
#[test]
fn req_rep_with_certificates_both_ways() {
    let c = certs("tls-rr");
    for scheme in ["tls+tcp", "wss"] {
        for server in peers("req_rep_with_certificates_both_ways") {
            for client in peers("req_rep_with_certificates_both_ways") {
                let (srv, url, _) = start_server(&server, |tcp_url| {
                    let url = tcp_url.replacen("tcp", scheme, 1);
                    let url = if scheme == "wss" { url + "/cat" } else { url };
                    with_cat(
                        &server,
                        s(&[
                            "--rep0", "--listen", &url, "--cert", &c.cert, "--key", &c.key,
                            "--data", "pong", "-C", "1", "-v",
                        ]),
                    )
                });
                let url = url.replacen("tcp", scheme, 1);
                let url = if scheme == "wss" { url + "/cat" } else { url };
                let args = s(&[
                    "--req0", "--dial", &url, "--cacert", &c.ca, "-D", "ping", "-Q", "-i", "2",
                    "-C", "1",
                ]);
                let out = Proc::spawn(&client, &with_cat(&client, args)).success(T);
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    "\"pong\"\n",
                    "{} -> {} over {scheme}",
                    client.display(),
                    server.display()
                );
                drop(srv);
            }
        }
    }
}

/// Without the CA our client refuses the server with a clear error; `--insecure` (`-k`)
/// accepts it.
#[test]
fn unknown_server_is_refused_unless_insecure() {
    let c = certs("tls-refused");
    let np = nanoport();
    let (srv, url, _) = start_server(&np, |tcp_url| {
        let url = tcp_url.replacen("tcp", "tls+tcp", 1);
        s(&[
            "cat", "--rep0", "--listen", &url, "-E", &c.cert, "--key", &c.key, "--data", "pong",
            "-v",
        ])
    });
    let url = url.replacen("tcp", "tls+tcp", 1);
    let base = [
        "cat", "--req0", "--dial", &url, "-D", "ping", "-Q", "-i", "2", "-C", "1",
    ];
    let refused = Proc::spawn(&np, &s(&[&base[..], &["--cacert", &c.other_ca]].concat())).finish(T);
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains(&format!("Unable to dial on {url}"))
            && refused.stderr.contains("Peer could not be authenticated"),
        "{:?}",
        refused.stderr
    );
    let out = Proc::spawn(&np, &s(&[&base[..], &["-k"]].concat())).success(T);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"pong\"\n");
    drop(srv);
}
