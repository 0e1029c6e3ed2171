//! Which protocol options each socket answers, asked of libnng (NNG 2.0.0, vendored in
//! `nng-sys`) and of nanoport side by side: code ported from NNG sets options such as
//! `send-buffer` on every socket, so an option libnng takes must not be `NotSup` here.
//!
//! Run by `cargo test -p nanoport-bench --features libnng --lib option_table`.

use std::ffi::{c_int, CString};

use nanoport::{Error, OptValue, Protocol, Socket};
use nng_sys as sys;

use crate::nng::init;

/// How an option is read through NNG's typed getters.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Ms,
    Bool,
}

/// The protocol options whose presence differs between protocols.
const OPTIONS: [(&str, Kind); 7] = [
    ("send-buffer", Kind::Int),
    ("recv-buffer", Kind::Int),
    ("ttl-max", Kind::Int),
    ("req:resend-time", Kind::Ms),
    ("req:resend-tick", Kind::Ms),
    ("surveyor:survey-time", Kind::Ms),
    ("sub:prefnew", Kind::Bool),
];

fn open_nng(p: Protocol) -> sys::nng_socket {
    init();
    let mut s = sys::nng_socket::default();
    // SAFETY: `s` is a valid out-parameter for each open call.
    let rv = unsafe {
        match p {
            Protocol::Pair0 => sys::nng_pair0_open(&mut s),
            Protocol::Pair1 => sys::nng_pair1_open(&mut s),
            Protocol::Pair1Poly => sys::nng_pair1_open_poly(&mut s),
            Protocol::Pub0 => sys::nng_pub0_open(&mut s),
            Protocol::Sub0 => sys::nng_sub0_open(&mut s),
            Protocol::Req0 => sys::nng_req0_open(&mut s),
            Protocol::Rep0 => sys::nng_rep0_open(&mut s),
            Protocol::Push0 => sys::nng_push0_open(&mut s),
            Protocol::Pull0 => sys::nng_pull0_open(&mut s),
            Protocol::Surveyor0 => sys::nng_surveyor0_open(&mut s),
            Protocol::Respondent0 => sys::nng_respondent0_open(&mut s),
            Protocol::Bus0 => sys::nng_bus0_open(&mut s),
        }
    };
    assert_eq!(rv, 0, "libnng could not open {p:?}");
    s
}

/// Whether libnng's socket answers `name` (0 from the typed getter), or its error code.
fn nng_has(s: sys::nng_socket, name: &str, kind: Kind) -> std::result::Result<(), c_int> {
    let c = CString::new(name).expect("no NUL");
    // SAFETY: `c` is NUL-terminated and alive for the call; each out-parameter is a valid
    // local of the getter's type.
    let rv = unsafe {
        match kind {
            Kind::Int => {
                let mut v: c_int = 0;
                sys::nng_socket_get_int(s, c.as_ptr(), &mut v)
            }
            Kind::Ms => {
                let mut v: sys::nng_duration = 0;
                sys::nng_socket_get_ms(s, c.as_ptr(), &mut v)
            }
            Kind::Bool => {
                let mut v = false;
                sys::nng_socket_get_bool(s, c.as_ptr(), &mut v)
            }
        }
    };
    if rv == 0 {
        Ok(())
    } else {
        Err(rv)
    }
}

fn nng_close(s: sys::nng_socket) {
    // SAFETY: `s` was opened by open_nng and is closed once.
    unsafe {
        sys::nng_socket_close(s);
    }
}

#[test]
fn every_option_libnng_answers_is_answered_here_too() {
    let mut differences = Vec::new();
    for p in Protocol::ALL {
        let theirs = open_nng(p);
        let ours = Socket::open(p).expect("nanoport socket");
        for (name, kind) in OPTIONS {
            let nng = nng_has(theirs, name, kind);
            let np = ours.get_option(name);
            match (nng, &np) {
                (Ok(()), Ok(_)) => {}
                (Ok(()), Err(e)) => {
                    differences.push(format!("{p:?} {name}: libnng answers, we say {e:?}"))
                }
                (Err(_), Ok(_)) => {}
                (Err(_), Err(_)) => {}
            }
            // What libnng takes, we take too (the value it reads back).
            if nng_has(theirs, name, kind).is_ok() {
                if let Ok(v) = np {
                    if let Err(e) = ours.set_option(name, v.clone()) {
                        differences.push(format!("{p:?} {name}: set back {v:?} refused: {e:?}"));
                    }
                }
            }
        }
        nng_close(theirs);
    }
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn buffer_depths_are_range_checked_as_libnng_does() {
    for p in [Protocol::Req0, Protocol::Sub0, Protocol::Push0] {
        let s = Socket::open(p).unwrap();
        for name in ["send-buffer", "recv-buffer"] {
            assert_eq!(
                s.set_option(name, OptValue::Int(8193)),
                Err(Error::Inval),
                "{p:?} {name}"
            );
            assert_eq!(
                s.set_option(name, OptValue::Int(-1)),
                Err(Error::Inval),
                "{p:?} {name}"
            );
            assert_eq!(
                s.set_option(name, OptValue::Bool(true)),
                Err(Error::BadType),
                "{p:?} {name}"
            );
            s.set_option(name, OptValue::Int(64)).unwrap();
            assert_eq!(s.get_option(name), Ok(OptValue::Int(64)), "{p:?} {name}");
        }
    }
}
