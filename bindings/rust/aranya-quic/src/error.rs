//! Errors: the library's return code plus its detail message.

use std::ffi::CStr;
use std::fmt;

use aranya_quic_sys as sys;

/// What went wrong: one variant per `ARANYA_QUIC_ERR_*` code.
///
/// `WouldBlock` and `Timeout` from a receive are not errors in this API
/// (they give `Ok(None)`); they appear only where the library returns them
/// as failures (a send timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `ARANYA_QUIC_ERR_WOULD_BLOCK` (-1)
    WouldBlock,
    /// `ARANYA_QUIC_ERR_BUFFER_TOO_SMALL` (-2); see [`QuicMessageError::needed`].
    BufferTooSmall,
    /// `ARANYA_QUIC_ERR_INVALID_ARGUMENT` (-3)
    InvalidArgument,
    /// `ARANYA_QUIC_ERR_INVALID_HANDLE` (-4): the endpoint was shut down.
    InvalidHandle,
    /// `ARANYA_QUIC_ERR_CLOSED` (-5): the endpoint is being shut down.
    Closed,
    /// `ARANYA_QUIC_ERR_TIMEOUT` (-6)
    Timeout,
    /// `ARANYA_QUIC_ERR_TOO_LARGE` (-7)
    TooLarge,
    /// `ARANYA_QUIC_ERR_CONNECTION` (-8)
    Connection,
    /// `ARANYA_QUIC_ERR_TLS` (-9)
    Tls,
    /// `ARANYA_QUIC_ERR_INTERNAL` (-10)
    Internal,
    /// `ARANYA_QUIC_ERR_BAD_ADDRESS` (-11)
    BadAddress,
    /// `ARANYA_QUIC_ERR_IO` (-12)
    Io,
    /// `ARANYA_QUIC_ERR_UNCONFIRMED` (-13): messages that `send` accepted
    /// were not confirmed by the peer before a close gave up on them
    /// ([`Endpoint::close`](crate::Endpoint::close) or
    /// [`Endpoint::shutdown`](crate::Endpoint::shutdown) whose drain did not
    /// finish within the drain timeout, or a connection that died while
    /// draining). They may or may not have been delivered; the close itself
    /// happened. The message says how many; see also
    /// [`Stats::messages_unconfirmed`](crate::Stats::messages_unconfirmed).
    Unconfirmed,
    /// `ARANYA_QUIC_ERR_RESOLVE` (-14): a peer's host name could not be
    /// resolved within the resolve timeout (no such name, no address of a
    /// family the endpoint's socket can reach, or no answer). The message
    /// names the host.
    Resolve,
    /// `ARANYA_QUIC_ERR_NOT_AUTHORIZED` (-15): the peer runs per-team
    /// authorization and does not allow this endpoint's peer id on the
    /// channel's team (for a sync message: on any team). The refused
    /// message was not delivered and does not count as accepted; messages
    /// accepted earlier on the channel that the peer did not confirm are
    /// counted in [`Stats::messages_unconfirmed`](crate::Stats::messages_unconfirmed).
    NotAuthorized,
    /// A negative code this version does not know (codes may be added).
    Unknown(i32),
}

impl ErrorKind {
    /// The kind of a (negative) return code.
    pub fn from_code(code: i32) -> ErrorKind {
        match code {
            sys::ARANYA_QUIC_ERR_WOULD_BLOCK => ErrorKind::WouldBlock,
            sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL => ErrorKind::BufferTooSmall,
            sys::ARANYA_QUIC_ERR_INVALID_ARGUMENT => ErrorKind::InvalidArgument,
            sys::ARANYA_QUIC_ERR_INVALID_HANDLE => ErrorKind::InvalidHandle,
            sys::ARANYA_QUIC_ERR_CLOSED => ErrorKind::Closed,
            sys::ARANYA_QUIC_ERR_TIMEOUT => ErrorKind::Timeout,
            sys::ARANYA_QUIC_ERR_TOO_LARGE => ErrorKind::TooLarge,
            sys::ARANYA_QUIC_ERR_CONNECTION => ErrorKind::Connection,
            sys::ARANYA_QUIC_ERR_TLS => ErrorKind::Tls,
            sys::ARANYA_QUIC_ERR_INTERNAL => ErrorKind::Internal,
            sys::ARANYA_QUIC_ERR_BAD_ADDRESS => ErrorKind::BadAddress,
            sys::ARANYA_QUIC_ERR_IO => ErrorKind::Io,
            sys::ARANYA_QUIC_ERR_UNCONFIRMED => ErrorKind::Unconfirmed,
            sys::ARANYA_QUIC_ERR_RESOLVE => ErrorKind::Resolve,
            sys::ARANYA_QUIC_ERR_NOT_AUTHORIZED => ErrorKind::NotAuthorized,
            other => ErrorKind::Unknown(other),
        }
    }

    /// The C return code.
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::WouldBlock => sys::ARANYA_QUIC_ERR_WOULD_BLOCK,
            ErrorKind::BufferTooSmall => sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL,
            ErrorKind::InvalidArgument => sys::ARANYA_QUIC_ERR_INVALID_ARGUMENT,
            ErrorKind::InvalidHandle => sys::ARANYA_QUIC_ERR_INVALID_HANDLE,
            ErrorKind::Closed => sys::ARANYA_QUIC_ERR_CLOSED,
            ErrorKind::Timeout => sys::ARANYA_QUIC_ERR_TIMEOUT,
            ErrorKind::TooLarge => sys::ARANYA_QUIC_ERR_TOO_LARGE,
            ErrorKind::Connection => sys::ARANYA_QUIC_ERR_CONNECTION,
            ErrorKind::Tls => sys::ARANYA_QUIC_ERR_TLS,
            ErrorKind::Internal => sys::ARANYA_QUIC_ERR_INTERNAL,
            ErrorKind::BadAddress => sys::ARANYA_QUIC_ERR_BAD_ADDRESS,
            ErrorKind::Io => sys::ARANYA_QUIC_ERR_IO,
            ErrorKind::Unconfirmed => sys::ARANYA_QUIC_ERR_UNCONFIRMED,
            ErrorKind::Resolve => sys::ARANYA_QUIC_ERR_RESOLVE,
            ErrorKind::NotAuthorized => sys::ARANYA_QUIC_ERR_NOT_AUTHORIZED,
            ErrorKind::Unknown(c) => c,
        }
    }

    /// The library's short description of the code (`aranya_quic_strerror`).
    pub fn description(self) -> &'static str {
        // SAFETY: strerror returns a static, NUL-terminated string, never NULL.
        unsafe { CStr::from_ptr(sys::aranya_quic_strerror(self.code())) }
            .to_str()
            .unwrap_or("unknown error code")
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// An error from the library (or from this crate checking an argument
/// before the call): the code, the detail message, and for
/// [`ErrorKind::BufferTooSmall`] the size needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicMessageError {
    kind: ErrorKind,
    message: String,
    needed: Option<usize>,
    sent: Option<usize>,
    first_id: Option<u64>,
    unconfirmed: Option<u64>,
}

impl QuicMessageError {
    /// Builds the error of a failed call from `rc` and the calling thread's
    /// `aranya_quic_last_error()`. Call right after the failing call, on the
    /// same thread, with no library call in between.
    pub(crate) fn from_last(rc: i32) -> Self {
        // SAFETY: last_error returns a thread-local NUL-terminated string,
        // never NULL, valid until the next call on this thread; copied here.
        let message = unsafe { CStr::from_ptr(sys::aranya_quic_last_error()) }
            .to_string_lossy()
            .into_owned();
        QuicMessageError::new(ErrorKind::from_code(rc), message)
    }

    /// An error found by this crate before calling the library.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        QuicMessageError { kind, message: message.into(), needed: None, sent: None, first_id: None, unconfirmed: None }
    }

    /// The error a code from an event stands for, with the event's reason
    /// as the message.
    pub(crate) fn from_code(code: i32, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::from_code(code), message)
    }

    pub(crate) fn with_first_id(mut self, first_id: Option<u64>) -> Self {
        self.first_id = first_id;
        self
    }

    pub(crate) fn with_unconfirmed(mut self, n: u64) -> Self {
        self.unconfirmed = Some(n);
        self
    }

    pub(crate) fn with_needed(mut self, needed: usize) -> Self {
        self.needed = Some(needed);
        self
    }

    pub(crate) fn with_sent(mut self, sent: usize) -> Self {
        self.sent = Some(sent);
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The C return code (negative).
    pub fn code(&self) -> i32 {
        self.kind.code()
    }

    /// The library's detail message (`aranya_quic_last_error`), possibly
    /// empty.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For [`ErrorKind::BufferTooSmall`]: the buffer size needed (the
    /// message stays queued; retry with at least this many bytes).
    pub fn needed(&self) -> Option<usize> {
        self.needed
    }

    /// For a failed batch send ([`Endpoint::send_batch`],
    /// [`Endpoint::send_sync_batch`]): how many messages, from the start of
    /// the batch, were accepted before the one that failed. Those are sent
    /// (as a successful `send` is); the failed one and the rest are not.
    /// `None` for errors of other calls.
    ///
    /// [`Endpoint::send_batch`]: crate::Endpoint::send_batch
    /// [`Endpoint::send_sync_batch`]: crate::Endpoint::send_sync_batch
    pub fn sent(&self) -> Option<usize> {
        self.sent
    }

    /// For a failed non-blocking batch send
    /// ([`Endpoint::try_send_batch`](crate::Endpoint::try_send_batch),
    /// [`Endpoint::try_send_sync_batch`](crate::Endpoint::try_send_sync_batch))
    /// that accepted some messages before the one that failed: the id of
    /// the first of them; the `sent()` accepted ones have ids
    /// `first_id .. first_id + sent`. `None` when none was accepted.
    pub fn first_id(&self) -> Option<u64> {
        self.first_id
    }

    /// For [`ErrorKind::Unconfirmed`] from an event (an async close or
    /// shutdown, a close event): how many accepted messages the peer(s) did
    /// not confirm. `None` elsewhere (the blocking calls report the count
    /// only in the message).
    pub fn unconfirmed(&self) -> Option<u64> {
        self.unconfirmed
    }
}

impl fmt::Display for QuicMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind, self.code())?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(n) = self.needed {
            write!(f, " (needs {n} bytes)")?;
        }
        if let Some(n) = self.sent {
            write!(f, " ({n} message(s) of the batch sent before it)")?;
        }
        Ok(())
    }
}

impl std::error::Error for QuicMessageError {}

impl From<QuicMessageError> for std::io::Error {
    fn from(e: QuicMessageError) -> Self {
        use std::io::ErrorKind as K;
        let k = match e.kind {
            ErrorKind::WouldBlock => K::WouldBlock,
            ErrorKind::InvalidArgument | ErrorKind::BadAddress => K::InvalidInput,
            ErrorKind::Timeout => K::TimedOut,
            ErrorKind::Resolve => K::NotFound,
            ErrorKind::NotAuthorized => K::PermissionDenied,
            ErrorKind::Connection => K::ConnectionAborted,
            ErrorKind::Closed | ErrorKind::InvalidHandle => K::NotConnected,
            _ => K::Other,
        };
        std::io::Error::new(k, e)
    }
}

/// Ok on `ARANYA_QUIC_OK`, else the error with the thread's detail message.
pub(crate) fn check(rc: i32) -> Result<(), QuicMessageError> {
    if rc == sys::ARANYA_QUIC_OK {
        Ok(())
    } else {
        Err(QuicMessageError::from_last(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        let known = [
            (sys::ARANYA_QUIC_ERR_WOULD_BLOCK, ErrorKind::WouldBlock),
            (sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL, ErrorKind::BufferTooSmall),
            (sys::ARANYA_QUIC_ERR_INVALID_ARGUMENT, ErrorKind::InvalidArgument),
            (sys::ARANYA_QUIC_ERR_INVALID_HANDLE, ErrorKind::InvalidHandle),
            (sys::ARANYA_QUIC_ERR_CLOSED, ErrorKind::Closed),
            (sys::ARANYA_QUIC_ERR_TIMEOUT, ErrorKind::Timeout),
            (sys::ARANYA_QUIC_ERR_TOO_LARGE, ErrorKind::TooLarge),
            (sys::ARANYA_QUIC_ERR_CONNECTION, ErrorKind::Connection),
            (sys::ARANYA_QUIC_ERR_TLS, ErrorKind::Tls),
            (sys::ARANYA_QUIC_ERR_INTERNAL, ErrorKind::Internal),
            (sys::ARANYA_QUIC_ERR_BAD_ADDRESS, ErrorKind::BadAddress),
            (sys::ARANYA_QUIC_ERR_IO, ErrorKind::Io),
            (sys::ARANYA_QUIC_ERR_UNCONFIRMED, ErrorKind::Unconfirmed),
            (sys::ARANYA_QUIC_ERR_RESOLVE, ErrorKind::Resolve),
            (sys::ARANYA_QUIC_ERR_NOT_AUTHORIZED, ErrorKind::NotAuthorized),
        ];
        for (i, (code, kind)) in known.iter().enumerate() {
            assert_eq!(*code, -(i as i32) - 1, "codes are -1, -2, ... in order");
            assert_eq!(ErrorKind::from_code(*code), *kind);
            assert_eq!(kind.code(), *code);
            assert_ne!(kind.description(), "unknown error code", "{kind:?}");
        }
        assert_eq!(ErrorKind::Unconfirmed.code(), -13);
        assert_eq!(ErrorKind::Resolve.code(), -14);
        assert_eq!(ErrorKind::NotAuthorized.code(), -15);
        let next = -(known.len() as i32) - 1;
        assert_eq!(ErrorKind::from_code(next), ErrorKind::Unknown(next));
        assert_eq!(ErrorKind::Unknown(next).code(), next);
    }

    #[test]
    fn batch_errors_carry_the_count_sent() {
        let e = QuicMessageError::new(ErrorKind::TooLarge, "too big");
        assert_eq!(e.sent(), None);
        let e = e.with_sent(3);
        assert_eq!(e.sent(), Some(3));
        assert!(e.to_string().contains("3 message(s) of the batch sent"), "{e}");
    }

    #[test]
    fn unconfirmed_error_displays_and_converts() {
        let e = QuicMessageError::new(ErrorKind::Unconfirmed, "3 message(s) on 1 connection(s)");
        assert_eq!(e.code(), sys::ARANYA_QUIC_ERR_UNCONFIRMED);
        let s = e.to_string();
        assert!(s.contains("(-13)") && s.contains("3 message(s)"), "{s}");
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
    }

    #[test]
    fn not_authorized_converts_to_permission_denied() {
        let io: std::io::Error = QuicMessageError::new(ErrorKind::NotAuthorized, "team").into();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
