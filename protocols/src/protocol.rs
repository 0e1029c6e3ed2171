//! [`Protocol`]: the protocols nanoport speaks, their NNG facts, and [`open`].

use nanoport_engine::{Error, Result};

use crate::core::{ProtoInfo, ProtocolCore};
use crate::{
    bus0, pair0, pair1, pair1_modal, pair1_poly, pub0, pull0, push0, rep0, rep0_raw, req0,
    req0_raw, respondent0, sub0, surveyor0, surveyor0_raw,
};

/// An SP protocol, as NNG's `nng_*_open` functions name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// pair0: one peer, both directions, no header.
    Pair0,
    /// pair1: one peer, with a hop-count header.
    Pair1,
    /// pair1 polyamorous: many peers, the message's pipe picks the destination.
    Pair1Poly,
    /// pub0: broadcast to subscribers.
    Pub0,
    /// sub0: receive what matches the subscriptions.
    Sub0,
    /// req0: send requests, receive replies (with resend).
    Req0,
    /// rep0: receive requests, send replies.
    Rep0,
    /// push0: load-balance messages over pullers.
    Push0,
    /// pull0: fair-queue messages from pushers.
    Pull0,
    /// surveyor0: broadcast a survey, collect responses until a deadline.
    Surveyor0,
    /// respondent0: answer surveys.
    Respondent0,
    /// bus0: broadcast to directly connected peers.
    Bus0,
}

impl Protocol {
    /// Every protocol, in NNG's id order.
    pub const ALL: [Protocol; 12] = [
        Protocol::Pair0,
        Protocol::Pair1,
        Protocol::Pair1Poly,
        Protocol::Pub0,
        Protocol::Sub0,
        Protocol::Req0,
        Protocol::Rep0,
        Protocol::Push0,
        Protocol::Pull0,
        Protocol::Surveyor0,
        Protocol::Respondent0,
        Protocol::Bus0,
    ];

    /// The protocol's ids, names and directions (NNG's protocol ids, the `NNG_*_SELF` and `NNG_*_PEER` macros).
    pub fn info(self, raw: bool) -> ProtoInfo {
        let (id, peer_id, name, peer_name, can_send, can_recv) = match self {
            Protocol::Pair0 => (0x10, 0x10, "pair", "pair", true, true),
            Protocol::Pair1 | Protocol::Pair1Poly => (0x11, 0x11, "pair1", "pair1", true, true),
            Protocol::Pub0 => (0x20, 0x21, "pub", "sub", true, false),
            Protocol::Sub0 => (0x21, 0x20, "sub", "pub", false, true),
            Protocol::Req0 => (0x30, 0x31, "req", "rep", true, true),
            Protocol::Rep0 => (0x31, 0x30, "rep", "req", true, true),
            Protocol::Push0 => (0x50, 0x51, "push", "pull", true, false),
            Protocol::Pull0 => (0x51, 0x50, "pull", "push", false, true),
            Protocol::Surveyor0 => (0x62, 0x63, "surveyor", "respondent", true, true),
            Protocol::Respondent0 => (0x63, 0x62, "respondent", "surveyor", true, true),
            Protocol::Bus0 => (0x70, 0x70, "bus", "bus", true, true),
        };
        ProtoInfo {
            id,
            peer_id,
            name,
            peer_name,
            can_send,
            can_recv,
            raw,
        }
    }
}

/// Creates the state machine for `p`, cooked or raw.
///
/// # Errors
/// `NotSup` for raw pair1 polyamorous (NNG has no raw form of it; a raw pair1 socket
/// forwards by hop count only).
pub fn open(p: Protocol, raw: bool) -> Result<Box<dyn ProtocolCore>> {
    let info = p.info(raw);
    Ok(match (p, raw) {
        (Protocol::Pair0, _) => Box::new(pair0::Pair0::new(info)),
        (Protocol::Pair1, false) => Box::new(pair1_modal::Pair1Modal::new(info)),
        (Protocol::Pair1, true) => Box::new(pair1::Pair1::new(info)),
        (Protocol::Pair1Poly, false) => Box::new(pair1_poly::Pair1Poly::new(info)),
        (Protocol::Pair1Poly, true) => return Err(Error::NotSup),
        (Protocol::Pub0, _) => Box::new(pub0::Pub0::new(info)),
        (Protocol::Sub0, _) => Box::new(sub0::Sub0::new(info)),
        (Protocol::Req0, false) => Box::new(req0::Req0::new(info)),
        (Protocol::Req0, true) => Box::new(req0_raw::Req0Raw::new(info)),
        (Protocol::Rep0, false) => Box::new(rep0::Replier::new(info)),
        (Protocol::Rep0, true) => {
            Box::new(rep0_raw::RawReplier::new(info, rep0_raw::XREP_PIPE_QUEUE))
        }
        (Protocol::Respondent0, false) => Box::new(respondent0::cooked(info)),
        (Protocol::Respondent0, true) => Box::new(respondent0::raw(info)),
        (Protocol::Push0, _) => Box::new(push0::Push0::new(info)),
        (Protocol::Pull0, _) => Box::new(pull0::Pull0::new(info)),
        (Protocol::Surveyor0, false) => Box::new(surveyor0::Surveyor0::new(info)),
        (Protocol::Surveyor0, true) => Box::new(surveyor0_raw::Surveyor0Raw::new(info)),
        (Protocol::Bus0, _) => Box::new(bus0::Bus0::new(info)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_match_nng() {
        let req = Protocol::Req0.info(false);
        assert_eq!(
            (req.id, req.peer_id, req.name, req.peer_name),
            (0x30, 0x31, "req", "rep")
        );
        let surv = Protocol::Surveyor0.info(true);
        assert_eq!((surv.id, surv.peer_id, surv.raw), (0x62, 0x63, true));
        assert!(!Protocol::Sub0.info(false).can_send);
        assert!(!Protocol::Push0.info(false).can_recv);
        assert_eq!(Protocol::Pair1Poly.info(false).id, 0x11);
    }

    #[test]
    fn every_protocol_opens_cooked_and_raw_reporting_its_info() {
        for p in Protocol::ALL {
            let cooked = open(p, false).unwrap();
            assert_eq!(cooked.info(), p.info(false));
            match open(p, true) {
                Ok(raw) => {
                    assert_eq!(raw.info(), p.info(true));
                    let mut raw = raw;
                    assert_eq!(
                        raw.open_ctx(),
                        Err(Error::NotSup),
                        "{p:?} raw has no contexts"
                    );
                }
                Err(e) => {
                    assert_eq!(p, Protocol::Pair1Poly);
                    assert_eq!(e, Error::NotSup);
                }
            }
        }
    }

    #[test]
    fn only_req_rep_surveyor_respondent_sub_have_contexts() {
        for p in Protocol::ALL {
            let mut s = open(p, false).unwrap();
            let has = matches!(
                p,
                Protocol::Req0
                    | Protocol::Rep0
                    | Protocol::Surveyor0
                    | Protocol::Respondent0
                    | Protocol::Sub0
            );
            assert_eq!(s.open_ctx().is_ok(), has, "{p:?}");
        }
    }
}
