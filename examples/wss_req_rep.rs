//! A req/rep pair over `wss://` with a certificate generated on the spot: the server
//! presents it, the client trusts it as its CA and checks the name.
//!
//! `cargo run --example wss_req_rep`

use nanoport::{Socket, TlsConfig};

fn main() -> nanoport::Result<()> {
    // A self-signed certificate for "localhost" (it is its own CA).
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate a certificate");
    let (cert, key) = (ck.cert.pem(), ck.key_pair.serialize_pem());

    let rep = Socket::rep0()?;
    let l = rep.listener("wss://127.0.0.1:0/echo")?;
    l.set_tls(&TlsConfig::server().cert_key_pem(&cert, &key)?)?;
    l.start()?;
    let url = format!("wss://127.0.0.1:{}/echo", l.port().expect("bound port"));

    let req = Socket::req0()?;
    let d = req.dialer(&url)?;
    d.set_tls(&TlsConfig::client().ca_pem(&cert)?.server_name("localhost"))?;
    d.start(false)?;

    req.send("ping")?;
    let q = rep.recv()?;
    println!(
        "rep got {:?} (peer verified: {})",
        String::from_utf8_lossy(q.body()),
        q.pipe()
            .map_or("?".into(), |p| p.option("tls-verified").unwrap_or_default())
    );
    rep.send("pong")?;
    let a = req.recv()?;
    let pipe = a.pipe().expect("arrived on a pipe");
    println!(
        "req got {:?} from {} (server verified: {}, CN {:?})",
        String::from_utf8_lossy(a.body()),
        pipe.option("remote-address")?,
        pipe.option("tls-verified")?,
        pipe.option("tls-peer-cn").ok()
    );
    Ok(())
}
