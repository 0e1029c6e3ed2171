//! Test certificates, generated at test time with rcgen: a CA, a server certificate it
//! signs (for `localhost` and `127.0.0.1`), a client certificate it signs, and a second,
//! unrelated CA. Written to a temp dir too, for nngcat's `--cert`/`--key`/`--cacert`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

pub struct Pair {
    pub cert: String,
    pub key: String,
    pub cert_file: String,
    pub key_file: String,
}

pub struct Pki {
    pub dir: PathBuf,
    pub ca: String,
    pub ca_file: String,
    pub other_ca: String,
    pub other_ca_file: String,
    pub server: Pair,
    pub client: Pair,
    /// Signed by the other CA.
    pub stranger: Pair,
}

fn ca(cn: &str) -> (rcgen::Certificate, KeyPair) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let k = KeyPair::generate().unwrap();
    let c = p.self_signed(&k).unwrap();
    (c, k)
}

fn leaf(cn: &str, ca: &rcgen::Certificate, ca_key: &KeyPair) -> (String, String) {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    // mbedTLS 2 (Debian's libnng) matches an IP literal server name against dNSName
    // entries only.
    p.subject_alt_names
        .push(SanType::DnsName("127.0.0.1".try_into().unwrap()));
    p.distinguished_name.push(DnType::CommonName, cn);
    let k = KeyPair::generate().unwrap();
    let c = p.signed_by(&k, ca, ca_key).unwrap();
    (c.pem(), k.serialize_pem())
}

impl Pki {
    pub fn new() -> Pki {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "np-pki-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let (ca_cert, ca_key) = ca("nanoport test CA");
        let (other, other_key) = ca("some other CA");
        let pair = |name: &str, cn: &str, c: &rcgen::Certificate, k: &KeyPair| {
            let (cert, key) = leaf(cn, c, k);
            Pair {
                cert_file: write(&format!("{name}.crt"), &cert),
                key_file: write(&format!("{name}.key"), &key),
                cert,
                key,
            }
        };
        Pki {
            ca: ca_cert.pem(),
            ca_file: write("ca.crt", &ca_cert.pem()),
            other_ca: other.pem(),
            other_ca_file: write("other-ca.crt", &other.pem()),
            server: pair("server", "nanoport server", &ca_cert, &ca_key),
            client: pair("client", "nanoport client", &ca_cert, &ca_key),
            stranger: pair("stranger", "stranger", &other, &other_key),
            dir,
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
