//! [`Error`]: NNG's error codes as a Rust enum, with NNG's numbers and texts.

use std::fmt;
use std::io;

/// The result type of every fallible nanoport call.
pub type Result<T> = std::result::Result<T, Error>;

/// An NNG error. Each variant has the meaning and the numeric [`code`](Error::code) of its
/// `NNG_E*` counterpart, and displays as `nng_strerror` does.
///
/// # Examples
///
/// ```
/// use nanoport_engine::Error;
/// assert_eq!(Error::Closed.code(), 7);
/// assert_eq!(Error::Closed.to_string(), "Object closed");
/// assert_eq!(Error::from_code(5), Error::TimedOut);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// `NNG_EINTR` (1).
    Interrupted,
    /// `NNG_ENOMEM` (2).
    NoMem,
    /// `NNG_EINVAL` (3).
    Inval,
    /// `NNG_EBUSY` (4).
    Busy,
    /// `NNG_ETIMEDOUT` (5).
    TimedOut,
    /// `NNG_ECONNREFUSED` (6).
    ConnRefused,
    /// `NNG_ECLOSED` (7).
    Closed,
    /// `NNG_EAGAIN` (8).
    Again,
    /// `NNG_ENOTSUP` (9).
    NotSup,
    /// `NNG_EADDRINUSE` (10).
    AddrInUse,
    /// `NNG_ESTATE` (11).
    State,
    /// `NNG_ENOENT` (12).
    NoEnt,
    /// `NNG_EPROTO` (13).
    Proto,
    /// `NNG_EUNREACHABLE` (14).
    Unreachable,
    /// `NNG_EADDRINVAL` (15).
    AddrInval,
    /// `NNG_EPERM` (16).
    Perm,
    /// `NNG_EMSGSIZE` (17).
    MsgSize,
    /// `NNG_ECONNABORTED` (18).
    ConnAborted,
    /// `NNG_ECONNRESET` (19).
    ConnReset,
    /// `NNG_ECANCELED` (20).
    Canceled,
    /// `NNG_ENOFILES` (21).
    NoFiles,
    /// `NNG_ENOSPC` (22).
    NoSpace,
    /// `NNG_EEXIST` (23).
    Exists,
    /// `NNG_EREADONLY` (24).
    ReadOnly,
    /// `NNG_EWRITEONLY` (25).
    WriteOnly,
    /// `NNG_ECRYPTO` (26).
    Crypto,
    /// `NNG_EPEERAUTH` (27).
    PeerAuth,
    /// `NNG_ENOARG` (28).
    NoArg,
    /// `NNG_EAMBIGUOUS` (29).
    Ambiguous,
    /// `NNG_EBADTYPE` (30).
    BadType,
    /// `NNG_ECONNSHUT` (31).
    ConnShut,
    /// `NNG_ESTOPPED` (999, NNG 2.x): an operation was started on an aio that was
    /// stopped (`nng_aio_stop`); code that resubmits until this error ends.
    Stopped,
    /// `NNG_EINTERNAL` (1000).
    Internal,
    /// `NNG_ESYSERR | errno`: an operating-system error without a closer NNG match.
    System(i32),
    /// `NNG_ETRANERR | n`: a transport-specific error.
    Transport(i32),
}

const ESYSERR: i32 = 0x1000_0000;
const ETRANERR: i32 = 0x2000_0000;

impl Error {
    /// NNG's numeric value for this error (`NNG_ECLOSED` is 7, ...).
    ///
    /// ```
    /// # use nanoport_engine::Error;
    /// assert_eq!(Error::System(2).code(), 0x1000_0002);
    /// ```
    pub fn code(&self) -> i32 {
        use Error::*;
        match *self {
            Interrupted => 1,
            NoMem => 2,
            Inval => 3,
            Busy => 4,
            TimedOut => 5,
            ConnRefused => 6,
            Closed => 7,
            Again => 8,
            NotSup => 9,
            AddrInUse => 10,
            State => 11,
            NoEnt => 12,
            Proto => 13,
            Unreachable => 14,
            AddrInval => 15,
            Perm => 16,
            MsgSize => 17,
            ConnAborted => 18,
            ConnReset => 19,
            Canceled => 20,
            NoFiles => 21,
            NoSpace => 22,
            Exists => 23,
            ReadOnly => 24,
            WriteOnly => 25,
            Crypto => 26,
            PeerAuth => 27,
            NoArg => 28,
            Ambiguous => 29,
            BadType => 30,
            ConnShut => 31,
            Stopped => 999,
            Internal => 1000,
            System(e) => ESYSERR | (e & 0x0fff_ffff),
            Transport(e) => ETRANERR | (e & 0x0fff_ffff),
        }
    }

    /// The error with NNG's numeric value `code`; unknown values map to [`Error::Internal`].
    ///
    /// ```
    /// # use nanoport_engine::Error;
    /// assert_eq!(Error::from_code(Error::Proto.code()), Error::Proto);
    /// ```
    pub fn from_code(code: i32) -> Error {
        use Error::*;
        const TABLE: [Error; 31] = [
            Interrupted,
            NoMem,
            Inval,
            Busy,
            TimedOut,
            ConnRefused,
            Closed,
            Again,
            NotSup,
            AddrInUse,
            State,
            NoEnt,
            Proto,
            Unreachable,
            AddrInval,
            Perm,
            MsgSize,
            ConnAborted,
            ConnReset,
            Canceled,
            NoFiles,
            NoSpace,
            Exists,
            ReadOnly,
            WriteOnly,
            Crypto,
            PeerAuth,
            NoArg,
            Ambiguous,
            BadType,
            ConnShut,
        ];
        match code {
            1..=31 => TABLE[(code - 1) as usize],
            999 => Stopped,
            c if c & ESYSERR != 0 && c & ETRANERR == 0 => System(c & 0x0fff_ffff),
            c if c & ETRANERR != 0 && c & ESYSERR == 0 => Transport(c & 0x0fff_ffff),
            _ => Internal,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        let s = match *self {
            Interrupted => "Interrupted",
            NoMem => "Out of memory",
            Inval => "Invalid argument",
            Busy => "Resource busy",
            TimedOut => "Timed out",
            ConnRefused => "Connection refused",
            Closed => "Object closed",
            Again => "Try again",
            NotSup => "Not supported",
            AddrInUse => "Address in use",
            State => "Incorrect state",
            NoEnt => "Entry not found",
            Proto => "Protocol error",
            Unreachable => "Destination unreachable",
            AddrInval => "Address invalid",
            Perm => "Permission denied",
            MsgSize => "Message too large",
            ConnAborted => "Connection aborted",
            ConnReset => "Connection reset",
            Canceled => "Operation canceled",
            NoFiles => "Out of files",
            NoSpace => "Out of space",
            Exists => "Resource already exists",
            ReadOnly => "Read only resource",
            WriteOnly => "Write only resource",
            Crypto => "Cryptographic error",
            PeerAuth => "Peer could not be authenticated",
            NoArg => "Option requires argument",
            Ambiguous => "Ambiguous option",
            BadType => "Incorrect type",
            ConnShut => "Connection shutdown",
            Stopped => "Operation stopped",
            Internal => "Internal error detected",
            System(e) => return write!(f, "{}", io::Error::from_raw_os_error(e)),
            Transport(e) => return write!(f, "Transport error #{e}"),
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    /// Maps an OS error the way NNG's `nni_plat_errno` does.
    fn from(e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(errno) => Error::from_errno(errno),
            None => match e.kind() {
                io::ErrorKind::WouldBlock => Error::Again,
                io::ErrorKind::TimedOut => Error::TimedOut,
                io::ErrorKind::ConnectionRefused => Error::ConnRefused,
                io::ErrorKind::ConnectionReset => Error::ConnReset,
                io::ErrorKind::ConnectionAborted => Error::ConnAborted,
                io::ErrorKind::AddrInUse => Error::AddrInUse,
                io::ErrorKind::AddrNotAvailable => Error::AddrInval,
                io::ErrorKind::NotFound => Error::NoEnt,
                io::ErrorKind::PermissionDenied => Error::Perm,
                io::ErrorKind::InvalidInput => Error::Inval,
                io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => Error::ConnShut,
                io::ErrorKind::OutOfMemory => Error::NoMem,
                _ => Error::Internal,
            },
        }
    }
}

impl Error {
    /// Maps a raw `errno` value to the NNG error NNG itself reports for it.
    ///
    /// ```
    /// # use nanoport_engine::Error;
    /// assert_eq!(Error::from_errno(libc::ECONNREFUSED), Error::ConnRefused);
    /// ```
    pub fn from_errno(errno: i32) -> Error {
        match errno {
            0 => Error::Internal,
            libc::EINTR => Error::Interrupted,
            libc::ENOMEM | libc::ENOBUFS => Error::NoMem,
            libc::EINVAL => Error::Inval,
            libc::EBUSY => Error::Busy,
            libc::ETIMEDOUT => Error::TimedOut,
            libc::ECONNREFUSED => Error::ConnRefused,
            libc::EBADF => Error::Closed,
            libc::EAGAIN => Error::Again,
            libc::ENOTSUP => Error::NotSup,
            libc::EADDRINUSE => Error::AddrInUse,
            libc::ENOENT => Error::NoEnt,
            libc::EPROTO => Error::Proto,
            libc::EHOSTUNREACH | libc::ENETUNREACH => Error::Unreachable,
            libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT => Error::AddrInval,
            libc::EPERM | libc::EACCES => Error::Perm,
            libc::EMSGSIZE => Error::MsgSize,
            libc::ECONNABORTED => Error::ConnAborted,
            libc::ECONNRESET => Error::ConnReset,
            libc::ECANCELED => Error::Canceled,
            libc::EMFILE | libc::ENFILE => Error::NoFiles,
            libc::ENOSPC => Error::NoSpace,
            libc::EEXIST => Error::Exists,
            libc::EROFS => Error::ReadOnly,
            libc::EPIPE | libc::ENOTCONN => Error::ConnShut,
            e => Error::System(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_for_every_named_error() {
        for code in 1..=31 {
            assert_eq!(Error::from_code(code).code(), code);
        }
        assert_eq!(Error::from_code(1000), Error::Internal);
        assert_eq!(Error::from_code(999), Error::Stopped);
        assert_eq!(
            Error::from_code(Error::System(13).code()),
            Error::System(13)
        );
        assert_eq!(
            Error::from_code(Error::Transport(4).code()),
            Error::Transport(4)
        );
        assert_eq!(Error::from_code(-5), Error::Internal);
    }

    #[test]
    fn display_matches_nng_strerror() {
        assert_eq!(Error::TimedOut.to_string(), "Timed out");
        assert_eq!(Error::ConnShut.to_string(), "Connection shutdown");
        assert_eq!(Error::Transport(3).to_string(), "Transport error #3");
    }

    #[test]
    fn io_errors_map_like_nng() {
        let e: Error = io::Error::from_raw_os_error(libc::EMFILE).into();
        assert_eq!(e, Error::NoFiles);
        let e: Error = io::Error::from(io::ErrorKind::UnexpectedEof).into();
        assert_eq!(e, Error::ConnShut);
        let e: Error = io::Error::from_raw_os_error(libc::ELOOP).into();
        assert_eq!(e, Error::System(libc::ELOOP));
    }

    #[test]
    fn error_is_send_sync_clone_eq() {
        fn check<T: Send + Sync + Clone + Eq + std::error::Error>() {}
        check::<Error>();
    }

    #[test]
    fn socket_errnos_map_like_nng() {
        for (errno, want) in [
            (libc::ECONNREFUSED, Error::ConnRefused),
            (libc::ECONNRESET, Error::ConnReset),
            (libc::EPIPE, Error::ConnShut),
            (libc::EADDRINUSE, Error::AddrInUse),
            (libc::EAGAIN, Error::Again),
            (libc::ETIMEDOUT, Error::TimedOut),
            (libc::EACCES, Error::Perm),
            (libc::EMSGSIZE, Error::MsgSize),
        ] {
            assert_eq!(Error::from_errno(errno), want, "errno {errno}");
            let via_io: Error = io::Error::from_raw_os_error(errno).into();
            assert_eq!(via_io, want, "io::Error for errno {errno}");
        }
        // io::Errors without an OS code map by kind.
        let e: Error = io::Error::from(io::ErrorKind::WouldBlock).into();
        assert_eq!(e, Error::Again);
        let e: Error = io::Error::other("x").into();
        assert_eq!(e, Error::Internal);
    }

    #[test]
    fn codes_are_nngs_numbers() {
        assert_eq!(Error::Interrupted.code(), 1);
        assert_eq!(Error::TimedOut.code(), 5);
        assert_eq!(Error::Closed.code(), 7);
        assert_eq!(Error::Canceled.code(), 20);
        assert_eq!(Error::ConnShut.code(), 31);
        assert_ne!(Error::System(5).code(), Error::Transport(5).code());
    }
}
