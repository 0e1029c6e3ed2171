//! Running out of file descriptors during accept: the listener pauses (100 ms, as NNG)
//! instead of spinning or dying, and accepts the waiting connection once descriptors
//! come back.
//!
//! The test lowers its own fd limit by re-running itself under `sh -c 'ulimit -n 128'`,
//! so the rest of the suite (and the machine) keeps its limit.

use std::fs::File;
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use nanoport::Socket;

const CHILD: &str = "NANOPORT_FD_EXHAUSTION_CHILD";

#[test]
fn listener_pauses_on_emfile_and_recovers() {
    if std::env::var_os(CHILD).is_some() {
        exhaust_and_recover();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 128 && exec '{}' --exact listener_pauses_on_emfile_and_recovers --nocapture",
            exe.display()
        ))
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("RECOVERED"),
        "child did not reach the end:\n{text}"
    );
}

fn exhaust_and_recover() {
    let pull = Socket::pull0().unwrap();
    let l = pull.listen("tcp://127.0.0.1:0").unwrap();
    let port = l.port().unwrap();
    // Use up every descriptor but one, then connect with that one: the kernel completes
    // the connection into the backlog, and our accept(2) fails with EMFILE.
    let mut hog = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hog.push(f);
    }
    drop(hog.pop());
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect with the last fd");
    // While descriptors are exhausted the listener cannot accept (it retries every 100 ms):
    // no SP header may arrive.
    client
        .set_read_timeout(Some(Duration::from_millis(350)))
        .unwrap();
    let mut byte = [0u8; 1];
    let starved = client.read(&mut byte);
    assert!(
        starved.is_err(),
        "accepted without a free descriptor? {starved:?}"
    );
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    drop(hog);
    // Once descriptors are back, the listener accepts and sends its SP header.
    let mut header = [0u8; 8];
    client
        .read_exact(&mut header)
        .expect("the listener never accepted after recovering");
    assert_eq!(
        header,
        [0, b'S', b'P', 0, 0, 0x51, 0, 0],
        "pull0's SP header"
    );
    println!("RECOVERED");
}
