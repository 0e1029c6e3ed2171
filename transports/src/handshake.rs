//! The SP connection header, as a pure codec (no I/O).
//!
//! Both peers send `00 'S' 'P' 00 PP PP 00 00` (their own protocol id in bytes 4-5, big
//! endian) as soon as the byte stream is up, then read the peer's. Bytes 0-3 and 6-7 are
//! checked; anything else is a protocol error and the connection is dropped.

use nanoport_engine::Error;

/// Length of the SP connection header.
pub const HEADER_LEN: usize = 8;

/// Why a received connection header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Bytes 0-2 are not `00 'S' 'P'`.
    BadMagic,
    /// Byte 3 (the mapping version) is not 0.
    BadVersion,
    /// Bytes 6-7 (reserved) are not zero.
    BadReserved,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HandshakeError::BadMagic => "not an SP connection header",
            HandshakeError::BadVersion => "unsupported SP mapping version",
            HandshakeError::BadReserved => "reserved SP header bytes are not zero",
        })
    }
}

impl std::error::Error for HandshakeError {}

impl From<HandshakeError> for Error {
    /// Every bad header is `Proto`, as in NNG.
    fn from(_: HandshakeError) -> Error {
        Error::Proto
    }
}

/// The header we send: our own protocol id `proto`.
///
/// ```
/// use nanoport_transports::handshake::encode_header;
/// assert_eq!(encode_header(0x30), [0, b'S', b'P', 0, 0, 0x30, 0, 0]);
/// ```
pub fn encode_header(proto: u16) -> [u8; HEADER_LEN] {
    let p = proto.to_be_bytes();
    [0, b'S', b'P', 0, p[0], p[1], 0, 0]
}

/// Checks a received header and returns the peer's protocol id.
///
/// # Errors
/// The first check that fails, in wire order.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<u16, HandshakeError> {
    if h[0] != 0 || h[1] != b'S' || h[2] != b'P' {
        return Err(HandshakeError::BadMagic);
    }
    if h[3] != 0 {
        return Err(HandshakeError::BadVersion);
    }
    if h[6] != 0 || h[7] != 0 {
        return Err(HandshakeError::BadReserved);
    }
    Ok(u16::from_be_bytes([h[4], h[5]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_protocol_id() {
        for p in [
            0u16, 0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x50, 0x51, 0x62, 0x63, 0x70, 0xffff,
        ] {
            assert_eq!(parse_header(&encode_header(p)), Ok(p));
        }
    }

    #[test]
    fn worked_examples_from_nng() {
        assert_eq!(
            encode_header(0x30),
            [0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00]
        );
        assert_eq!(
            encode_header(0x31),
            [0x00, 0x53, 0x50, 0x00, 0x00, 0x31, 0x00, 0x00]
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(parse_header(b"GET / HT"), Err(HandshakeError::BadMagic));
        assert_eq!(parse_header(&[0xff; 8]), Err(HandshakeError::BadMagic));
        assert_eq!(parse_header(&[0; 8]), Err(HandshakeError::BadMagic));
        assert_eq!(
            parse_header(&[1, b'S', b'P', 0, 0, 0x30, 0, 0]),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(
            parse_header(&[0, b's', b'P', 0, 0, 0x30, 0, 0]),
            Err(HandshakeError::BadMagic)
        );
        assert_eq!(
            parse_header(&[0, b'S', b'p', 0, 0, 0x30, 0, 0]),
            Err(HandshakeError::BadMagic)
        );
    }

    #[test]
    fn version_byte_must_be_zero() {
        assert_eq!(
            parse_header(&[0, b'S', b'P', 1, 0, 0x30, 0, 0]),
            Err(HandshakeError::BadVersion)
        );
    }

    #[test]
    fn reserved_bytes_must_be_zero() {
        assert_eq!(
            parse_header(&[0, b'S', b'P', 0, 0, 0x30, 1, 0]),
            Err(HandshakeError::BadReserved)
        );
        assert_eq!(
            parse_header(&[0, b'S', b'P', 0, 0, 0x30, 0, 0x80]),
            Err(HandshakeError::BadReserved)
        );
        assert_eq!(Error::from(HandshakeError::BadReserved), Error::Proto);
    }
}
