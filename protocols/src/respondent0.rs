//! respondent0: answers surveys exactly as rep0 answers requests (NNG's
//! src/sp/protocol/survey0/respond.c); only the protocol ids and the raw per-pipe queue (2)
//! differ, so it is the replier state machines with respondent's [`ProtoInfo`].

use crate::core::ProtoInfo;
use crate::rep0::Replier;
use crate::rep0_raw::{RawReplier, XRESPOND_PIPE_QUEUE};

/// A cooked respondent0.
pub(crate) fn cooked(info: ProtoInfo) -> Replier {
    Replier::new(info)
}

/// A raw respondent0 (xrespond).
pub(crate) fn raw(info: ProtoInfo) -> RawReplier {
    RawReplier::new(info, XRESPOND_PIPE_QUEUE)
}

#[cfg(test)]
mod tests {
    use crate::core::{opt, OptValue};
    use crate::protocol::Protocol;
    use crate::testing::{assert_send_fails, words, Harness};
    use nanoport_engine::{Error, Message};

    #[test]
    fn responds_once_to_the_surveying_pipe() {
        let mut h = Harness::new(Protocol::Respondent0, false);
        assert_eq!(h.proto.info().id, 0x63);
        h.add(1);
        h.deliver(1, &words(&[0x8000_0007], b"survey"));
        assert_eq!(h.recv_body(0), b"survey");
        h.send_ok(0, b"answer");
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0007], b"answer"))]);
        assert_send_fails(h.send(0, b"twice"), Error::State);
        assert_eq!(h.get(0, opt::MAX_TTL), Ok(OptValue::Int(8)));
        assert!(h.proto.open_ctx().is_ok());
    }

    #[test]
    fn raw_queues_two_per_pipe() {
        let mut h = Harness::new(Protocol::Respondent0, true);
        h.add(1);
        for i in 0..5u8 {
            let mut m = Message::from(&[i][..]);
            m.header_append_u32(1).unwrap();
            m.header_append_u32(0x8000_0001).unwrap();
            h.send_msg(0, m).unwrap();
        }
        assert_eq!(h.sent(), vec![(1, words(&[0x8000_0001], &[0]))]);
        h.writable(1);
        h.writable(1);
        h.writable(1);
        let rest: Vec<u8> = h.sent().into_iter().map(|(_, b)| b[4]).collect();
        assert_eq!(rest, vec![1, 2]);
    }
}
