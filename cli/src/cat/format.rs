//! How nngcat prints a received message, byte for byte (`printmsg` in nngcat.c; C locale,
//! so "printable" is 0x20..=0x7e).

use super::args::Format;

fn printable(c: u8) -> bool {
    (0x20..=0x7e).contains(&c)
}

fn hex_escape(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(c >> 4)],
        HEX[usize::from(c & 15)],
    ]);
}

/// Appends the printed form of a message body in format `f` to `out`.
pub fn render(f: Format, body: &[u8], out: &mut Vec<u8>) {
    match f {
        Format::Unset | Format::Blank => {}
        Format::Raw => out.extend_from_slice(body),
        Format::Ascii => out.extend(body.iter().map(|&c| if printable(c) { c } else { b'.' })),
        Format::Quoted => {
            out.push(b'"');
            for &c in body {
                match c {
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
                    c if printable(c) => out.push(c),
                    c => hex_escape(out, c),
                }
            }
            out.extend_from_slice(b"\"\n");
        }
        Format::Msgpack => {
            let len = body.len();
            if len < 256 {
                out.extend_from_slice(&[0xc4, len as u8]);
            } else if len < 65536 {
                out.push(0xc5);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xc6);
                // nngcat writes the low 32 bits of the length.
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(body);
        }
        Format::Hex => {
            out.push(b'"');
            for &c in body {
                hex_escape(out, c);
            }
            out.extend_from_slice(b"\"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(f: Format, b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        render(f, b, &mut v);
        v
    }

    const M: &[u8] = b"a\"b\\c\n\r\t\x00\x01\x7f\x80\xff z~";

    #[test]
    fn formats_match_nngcat_output() {
        // Expected bytes are what /usr/bin/nngcat 1.5.2 printed for the same messages.
        assert_eq!(r(Format::Ascii, M), b"a\"b\\c........ z~");
        assert_eq!(
            r(Format::Quoted, M),
            b"\"a\\\"b\\\\c\\n\\r\\t\\x00\\x01\\x7f\\x80\\xff z~\"\n"
        );
        assert_eq!(
            r(Format::Hex, M),
            b"\"\\x61\\x22\\x62\\x5c\\x63\\x0a\\x0d\\x09\\x00\\x01\\x7f\\x80\\xff\\x20\\x7a\\x7e\"\n"
        );
        let mut mp = vec![0xc4, 16];
        mp.extend_from_slice(M);
        assert_eq!(r(Format::Msgpack, M), mp);
        assert_eq!(r(Format::Raw, M), M);
    }

    #[test]
    fn empty_messages() {
        assert_eq!(r(Format::Ascii, b""), b"");
        assert_eq!(r(Format::Quoted, b""), b"\"\"\n");
        assert_eq!(r(Format::Hex, b""), b"\"\"\n");
        assert_eq!(r(Format::Msgpack, b""), [0xc4, 0]);
        assert_eq!(r(Format::Raw, b""), b"");
        assert_eq!(r(Format::Blank, b"abc"), b"");
        assert_eq!(r(Format::Unset, b"abc"), b"");
    }

    #[test]
    fn msgpack_headers() {
        let b = vec![7u8; 255];
        assert_eq!(&r(Format::Msgpack, &b)[..2], [0xc4, 255]);
        let b = vec![7u8; 256];
        assert_eq!(&r(Format::Msgpack, &b)[..3], [0xc5, 1, 0]);
        let b = vec![7u8; 65535];
        assert_eq!(&r(Format::Msgpack, &b)[..3], [0xc5, 0xff, 0xff]);
        let b = vec![7u8; 65536];
        let out = r(Format::Msgpack, &b);
        assert_eq!(&out[..5], [0xc6, 0, 1, 0, 0]);
        assert_eq!(out.len(), 5 + 65536);
    }
}
