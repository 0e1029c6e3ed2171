//! TLS configuration, as NNG's `nng_tls_config`, built on rustls (ring provider).
//!
//! A [`TlsConfig`] is either a server's (its certificate chain and key; whether it asks
//! clients for certificates) or a client's (the CA certificates it trusts, the server
//! name it checks). It is set on a dialer or listener before it starts; each connection
//! then runs a TLS 1.2 or 1.3 handshake before the SP one (`tls+tcp://`) or the HTTP
//! upgrade (`wss://`).

use std::sync::Arc;

use nanoport_engine::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whether the peer must present a certificate that verifies (NNG's
/// `nng_tls_auth_mode`).
///
/// A client defaults to [`Required`](TlsAuthMode::Required) (the server is checked
/// against the trusted CAs and the server name), a server to
/// [`None`](TlsAuthMode::None) (clients are not asked for certificates), as in NNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAuthMode {
    /// `NNG_TLS_AUTH_MODE_NONE`: no verification (a client accepts any server; a server
    /// asks for no client certificate).
    None,
    /// `NNG_TLS_AUTH_MODE_OPTIONAL`: verified if presented; the connection goes on
    /// either way, and the pipe's `tls-verified` tells.
    Optional,
    /// `NNG_TLS_AUTH_MODE_REQUIRED`: the peer must present a certificate that verifies.
    Required,
}

/// Which end of the handshake a configuration is for (`nng_tls_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `NNG_TLS_MODE_CLIENT`: for dialers.
    Client,
    /// `NNG_TLS_MODE_SERVER`: for listeners.
    Server,
}

/// A TLS configuration (`nng_tls_config`).
///
/// # Examples
///
/// A server with its own certificate and a client that trusts it (here the certificate
/// signs itself, so it is its own CA):
///
/// ```
/// use nanoport_transports::{TlsAuthMode, TlsConfig};
/// let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// let (cert, key) = (ck.cert.pem(), ck.key_pair.serialize_pem());
/// let server = TlsConfig::server().cert_key_pem(&cert, &key).unwrap();
/// let client = TlsConfig::client()
///     .ca_pem(&cert)
///     .unwrap()
///     .server_name("localhost")
///     .auth_mode(TlsAuthMode::Required);
/// assert!(server.is_server() && !client.is_server());
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    mode: TlsMode,
    auth: TlsAuthMode,
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<PrivateKeyDer<'static>>>,
    cas: Vec<CertificateDer<'static>>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("mode", &self.mode)
            .field("auth", &self.auth)
            .field("certs", &self.chain.len())
            .field("cas", &self.cas.len())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        _ => Err(Error::Inval),
    }
}

fn read_file(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoEnt,
        std::io::ErrorKind::PermissionDenied => Error::Perm,
        _ => Error::from(e),
    })
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    /// A configuration of `mode`, with NNG's default auth mode for it.
    pub fn new(mode: TlsMode) -> TlsConfig {
        TlsConfig {
            mode,
            auth: match mode {
                TlsMode::Client => TlsAuthMode::Required,
                TlsMode::Server => TlsAuthMode::None,
            },
            chain: Vec::new(),
            key: None,
            cas: Vec::new(),
            server_name: None,
        }
    }

    /// A server (listener) configuration: set its certificate with
    /// [`cert_key_pem`](TlsConfig::cert_key_pem) or [`cert_key_file`](TlsConfig::cert_key_file).
    pub fn server() -> TlsConfig {
        TlsConfig::new(TlsMode::Server)
    }

    /// A client (dialer) configuration: trust CAs with [`ca_pem`](TlsConfig::ca_pem) or
    /// [`ca_file`](TlsConfig::ca_file).
    pub fn client() -> TlsConfig {
        TlsConfig::new(TlsMode::Client)
    }

    /// Whether this is a server configuration.
    pub fn is_server(&self) -> bool {
        self.mode == TlsMode::Server
    }

    /// Our own certificate chain (leaf first) and its private key, PEM
    /// (`nng_tls_config_own_cert`). A client presents it when the server asks.
    ///
    /// # Errors
    /// `Inval` when the PEM holds no certificate or no private key (PKCS#8, PKCS#1 or
    /// SEC1).
    pub fn cert_key_pem(mut self, chain: &str, key: &str) -> Result<TlsConfig> {
        let chain = certs_from_pem(chain.as_bytes())?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| Error::Inval)?;
        self.chain = chain;
        self.key = Some(Arc::new(key));
        Ok(self)
    }

    /// Our certificate chain and key from one PEM file holding both
    /// (`nng_tls_config_cert_key_file`, option `tls-cert-key-file`).
    ///
    /// # Errors
    /// `NoEnt`/`Perm` for a file that cannot be read; `Inval` as
    /// [`cert_key_pem`](TlsConfig::cert_key_pem).
    pub fn cert_key_file(self, path: &str) -> Result<TlsConfig> {
        self.cert_file_key_file(path, path)
    }

    /// Our certificate chain and key from two PEM files (nngcat's `--cert` and `--key`).
    ///
    /// # Errors
    /// As [`cert_key_file`](TlsConfig::cert_key_file).
    pub fn cert_file_key_file(self, cert: &str, key: &str) -> Result<TlsConfig> {
        let c = read_file(cert)?;
        let k = if key == cert {
            c.clone()
        } else {
            read_file(key)?
        };
        let c = String::from_utf8(c).map_err(|_| Error::Inval)?;
        let k = String::from_utf8(k).map_err(|_| Error::Inval)?;
        self.cert_key_pem(&c, &k)
    }

    /// Adds trusted CA certificates, PEM (`nng_tls_config_ca_chain`): a client checks the
    /// server against them; a server checks client certificates against them.
    ///
    /// # Errors
    /// `Inval` when the PEM holds no certificate.
    pub fn ca_pem(mut self, pem: &str) -> Result<TlsConfig> {
        self.cas.extend(certs_from_pem(pem.as_bytes())?);
        Ok(self)
    }

    /// Adds trusted CA certificates from a PEM file (`nng_tls_config_ca_file`, option
    /// `tls-ca-file`).
    ///
    /// # Errors
    /// `NoEnt`/`Perm` for a file that cannot be read, `Inval` as [`ca_pem`](TlsConfig::ca_pem).
    pub fn ca_file(self, path: &str) -> Result<TlsConfig> {
        let pem = read_file(path)?;
        self.ca_pem(std::str::from_utf8(&pem).map_err(|_| Error::Inval)?)
    }

    /// The name the server's certificate must carry (`nng_tls_config_server_name`,
    /// option `tls-server-name`); by default the host of the dialed URL.
    pub fn server_name(mut self, name: &str) -> TlsConfig {
        self.server_name = Some(name.to_string());
        self
    }

    /// How the peer is verified (`nng_tls_config_auth_mode`, option `tls-auth-mode`).
    pub fn auth_mode(mut self, mode: TlsAuthMode) -> TlsConfig {
        self.auth = mode;
        self
    }

    /// The auth mode in force.
    pub fn auth(&self) -> TlsAuthMode {
        self.auth
    }

    fn roots(&self) -> Result<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        for c in &self.cas {
            roots.add(c.clone()).map_err(|_| Error::Inval)?;
        }
        Ok(Arc::new(roots))
    }

    /// The rustls server configuration.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        if self.mode != TlsMode::Server {
            return Err(Error::Inval);
        }
        let key = self.key.as_ref().ok_or(Error::Inval)?;
        let p = provider();
        let b = rustls::ServerConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|_| Error::Crypto)?;
        let b = match self.auth {
            TlsAuthMode::None => b.with_no_client_auth(),
            mode => {
                let v =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots()?, p);
                let v = if mode == TlsAuthMode::Optional {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                b.with_client_cert_verifier(v.build().map_err(|_| Error::Inval)?)
            }
        };
        let cfg = b
            .with_single_cert(self.chain.clone(), key.clone_key())
            .map_err(|_| Error::Inval)?;
        Ok(Arc::new(cfg))
    }

    /// The rustls client configuration, and the verifier that tells `tls-verified` when
    /// the handshake itself does not insist on verification.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        if self.mode != TlsMode::Client {
            return Err(Error::Inval);
        }
        let p = provider();
        let b = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|_| Error::Crypto)?;
        let b = match self.auth {
            TlsAuthMode::Required => b.with_root_certificates(self.roots()?),
            _ => b
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient(p))),
        };
        let cfg = match &self.key {
            Some(k) => b
                .with_client_auth_cert(self.chain.clone(), k.clone_key())
                .map_err(|_| Error::Inval)?,
            None => b.with_no_client_auth(),
        };
        Ok(Arc::new(cfg))
    }

    /// Whether `chain` (the server's, leaf first) verifies against our CAs for `name`:
    /// what a client in a lenient mode reports as `tls-verified`.
    pub(crate) fn verifies_server(&self, chain: &[CertificateDer<'_>], name: &str) -> bool {
        let (Some(leaf), Ok(roots), Ok(name)) = (
            chain.first(),
            self.roots(),
            ServerName::try_from(name.to_string()),
        ) else {
            return false;
        };
        if roots.is_empty() {
            return false;
        }
        let Ok(v) =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider()).build()
        else {
            return false;
        };
        v.verify_server_cert(leaf, &chain[1..], &name, &[], UnixTime::now())
            .is_ok()
    }

    pub(crate) fn name_for(&self, host: &str) -> String {
        self.server_name.clone().unwrap_or_else(|| host.to_string())
    }
}

/// A client's verifier in the `None` and `Optional` auth modes: any certificate is
/// accepted (the handshake's signatures are still checked, so the peer holds the key of
/// the certificate it showed); `tls-verified` is worked out after the handshake.
#[derive(Debug)]
struct Lenient(Arc<CryptoProvider>);

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// NNG's error for a TLS failure: `PeerAuth` when the peer's certificate did not verify
/// (or a peer refused ours), `Crypto` for anything else (garbage, a protocol error).
pub(crate) fn map_error(e: &rustls::Error) -> Error {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Error::PeerAuth
        }
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired
            | A::HandshakeFailure,
        ) => Error::PeerAuth,
        _ => Error::Crypto,
    }
}

// ----- the peer's common name ----------------------------------------------------------------

/// One DER element at the start of `b`: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)?;
    let (len, at) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = b.get(at..at.checked_add(len)?)?;
    Some((tag, body, &b[at + len..]))
}

/// The subject's common name (OID 2.5.4.3) of a DER certificate, for `tls-peer-cn`.
pub(crate) fn common_name(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (_, subject, _) = der(rest)?;
    let mut rdns = subject;
    while let Some((_, set, r)) = der(rdns) {
        rdns = r;
        let mut atvs = set;
        while let Some((_, atv, r2)) = der(atvs) {
            atvs = r2;
            let (_, oid, v) = der(atv)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, value, _) = der(v)?;
                return Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nanoport test peer");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            common_name(cert.der()).as_deref(),
            Some("nanoport test peer")
        );
        assert_eq!(common_name(b"\x30\x03\x02\x01"), None);
    }

    #[test]
    fn configs_need_their_parts() {
        assert_eq!(
            TlsConfig::server().server_config().err(),
            Some(Error::Inval)
        );
        assert_eq!(
            TlsConfig::server().cert_key_pem("junk", "junk").err(),
            Some(Error::Inval)
        );
        assert_eq!(
            TlsConfig::client().ca_file("/nonexistent/ca.pem").err(),
            Some(Error::NoEnt)
        );
        assert!(TlsConfig::client().client_config().is_ok());
    }
}
