//! The endpoint: one UDP socket that listens and dials.

use std::ffi::{c_char, c_int, CString};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use aranya_quic_sys as sys;

use crate::config::Config;
use crate::error::{check, ErrorKind, QuicMessageError};
use crate::types::{c_array_str, parse_addr, GraphId, QuicChannel, Stats};

/// Initial buffer for [`Endpoint::receive_vec`] / `recv` when the caller's
/// `Vec` has no capacity.
const MIN_RECEIVE_BUF: usize = 4096;

/// An Aranya QUIC Channels endpoint (`aranya_quic_t`).
///
/// Every method takes `&self`: share it between threads with `Arc`.
/// `send` blocks (up to the send timeout); in async code call it from
/// `tokio::task::spawn_blocking`. Dropping the endpoint frees it (closing
/// connections gracefully, bounded by the drain timeout) and ignores any
/// error; call [`shutdown`](Self::shutdown) first to see it (e.g.
/// [`ErrorKind::Unconfirmed`]).
pub struct Endpoint {
    handle: sys::aranya_quic_t,
    /// Registration of `fd` with tokio, made on the first `recv`. Declared
    /// before `fd` so that it is deregistered before `fd` is closed.
    #[cfg(feature = "tokio")]
    async_fd: std::sync::OnceLock<tokio::io::unix::AsyncFd<FdRef>>,
    #[cfg(feature = "tokio")]
    async_init: std::sync::Mutex<()>,
    /// Our own duplicate of the library's receive fd. The library closes its
    /// fd when the handle is freed; this one stays open (then reading as
    /// end-of-file, i.e. readable, which wakes waiters) until the
    /// `Endpoint` is dropped, so pollers never see a closed or reused fd.
    fd: OwnedFd,
}

/// A borrowed fd for tokio's AsyncFd (the OwnedFd lives next to it).
#[cfg(feature = "tokio")]
struct FdRef(RawFd);

#[cfg(feature = "tokio")]
impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("handle", &self.handle).field("fd", &self.fd).finish()
    }
}

fn addr_cstring(addr: SocketAddr) -> CString {
    // "ip:port" or "[ipv6]:port"; SocketAddr's Display never has a NUL.
    CString::new(addr.to_string()).expect("socket address without NUL")
}

fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
    }
}

impl Endpoint {
    /// Creates an endpoint and binds its UDP socket; it accepts connections
    /// from trusted peers at once.
    pub fn new(config: Config) -> Result<Endpoint, QuicMessageError> {
        let bind = addr_cstring(config.bind_addr);
        let pinned: Vec<u8> = config.pinned_peers.concat();
        let c = config.to_c(&bind, &pinned)?;
        let mut handle: sys::aranya_quic_t = 0;
        // SAFETY: c and every buffer it points to (config, bind, pinned) are
        // alive for the call; the library keeps no pointer after it.
        check(unsafe { sys::aranya_quic_new(&c, &mut handle) })?;
        let fd = (|| {
            let mut raw: c_int = -1;
            // SAFETY: valid handle and out pointer.
            check(unsafe { sys::aranya_quic_receive_fd(handle, &mut raw) })?;
            // SAFETY: the library's fd is open until the handle is freed,
            // which cannot happen before we return.
            unsafe { BorrowedFd::borrow_raw(raw) }
                .try_clone_to_owned()
                .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("dup of the receive fd: {e}")))
        })();
        match fd {
            Ok(fd) => Ok(Endpoint {
                handle,
                #[cfg(feature = "tokio")]
                async_fd: std::sync::OnceLock::new(),
                #[cfg(feature = "tokio")]
                async_init: std::sync::Mutex::new(()),
                fd,
            }),
            Err(e) => {
                // SAFETY: the handle we just made.
                unsafe { sys::aranya_quic_free(handle) };
                Err(e)
            }
        }
    }

    /// The raw handle, for calls through `aranya-quic-sys`.
    pub fn handle(&self) -> sys::aranya_quic_t {
        self.handle
    }

    /// The address the socket is bound to (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, QuicMessageError> {
        let mut buf = [0 as c_char; sys::ARANYA_QUIC_ADDR_MAX];
        let mut n = 0usize;
        // SAFETY: buf has buf.len() writable bytes.
        check(unsafe { sys::aranya_quic_local_addr(self.handle, buf.as_mut_ptr(), buf.len(), &mut n) })?;
        parse_addr(c_array_str(&buf))
    }

    /// Sends one message on the channel (addr, team_id, label), dialing
    /// `addr` if needed. Returns once the transport accepted the message.
    /// Blocks under backpressure, bounded by the send timeout.
    pub fn send(
        &self,
        addr: SocketAddr,
        team_id: &GraphId,
        label: &str,
        message: &[u8],
    ) -> Result<(), QuicMessageError> {
        let addr = addr_cstring(addr);
        let (lp, ll) = if label.is_empty() {
            (std::ptr::null(), 0)
        } else {
            (label.as_ptr().cast::<c_char>(), label.len())
        };
        let (mp, ml) = if message.is_empty() { (std::ptr::null(), 0) } else { (message.as_ptr(), message.len()) };
        // SAFETY: every pointer is valid for its length during the call.
        check(unsafe { sys::aranya_quic_send(self.handle, addr.as_ptr(), team_id.0.as_ptr(), lp, ll, mp, ml) })
    }

    /// Sends one Aranya sync message of type `sync_type` to `addr`.
    pub fn send_sync(&self, addr: SocketAddr, sync_type: u32, message: &[u8]) -> Result<(), QuicMessageError> {
        let addr = addr_cstring(addr);
        let (mp, ml) = if message.is_empty() { (std::ptr::null(), 0) } else { (message.as_ptr(), message.len()) };
        // SAFETY: every pointer is valid for its length during the call.
        check(unsafe { sys::aranya_quic_send_sync(self.handle, addr.as_ptr(), sync_type, mp, ml) })
    }

    /// The one receive call: `timeout_ms` None is `aranya_quic_receive`,
    /// Some is `aranya_quic_receive_timeout`. WOULD_BLOCK and TIMEOUT give
    /// `Ok(None)`; BUFFER_TOO_SMALL an error with the needed size.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes (or `len` 0).
    unsafe fn receive_raw(
        &self,
        buf: *mut u8,
        len: usize,
        timeout_ms: Option<i32>,
    ) -> Result<Option<(QuicChannel, usize)>, QuicMessageError> {
        let buf = if len == 0 { std::ptr::null_mut() } else { buf };
        let mut ch = sys::aranya_quic_channel::default();
        let mut n = 0usize;
        let rc = match timeout_ms {
            None => sys::aranya_quic_receive(self.handle, buf, len, &mut ch, &mut n),
            Some(t) => sys::aranya_quic_receive_timeout(self.handle, buf, len, &mut ch, &mut n, t),
        };
        match rc {
            sys::ARANYA_QUIC_OK => {
                if n > len {
                    return Err(QuicMessageError::new(
                        ErrorKind::Internal,
                        format!("library reported {n} bytes for a {len}-byte buffer"),
                    ));
                }
                Ok(Some((QuicChannel::from_c(&ch)?, n)))
            }
            sys::ARANYA_QUIC_ERR_WOULD_BLOCK => Ok(None),
            sys::ARANYA_QUIC_ERR_TIMEOUT if timeout_ms.is_some() => Ok(None),
            sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL => Err(QuicMessageError::from_last(rc).with_needed(n)),
            _ => Err(QuicMessageError::from_last(rc)),
        }
    }

    /// Takes the oldest queued message into `target`, without blocking.
    ///
    /// `Ok(None)`: the queue is empty. A message larger than `target` gives
    /// an [`ErrorKind::BufferTooSmall`] error whose
    /// [`needed`](QuicMessageError::needed) is its size; the message stays
    /// queued.
    pub fn receive(&self, target: &mut [u8]) -> Result<Option<(QuicChannel, usize)>, QuicMessageError> {
        // SAFETY: target is writable for its length.
        unsafe { self.receive_raw(target.as_mut_ptr(), target.len(), None) }
    }

    /// Like [`receive`](Self::receive), but waits up to `timeout` for a
    /// message (`None`: until one arrives or the endpoint is shut down;
    /// durations are rounded up to milliseconds and capped at `i32::MAX`
    /// ms). `Ok(None)`: the timeout passed.
    pub fn receive_timeout(
        &self,
        target: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Option<(QuicChannel, usize)>, QuicMessageError> {
        // SAFETY: target is writable for its length.
        unsafe { self.receive_raw(target.as_mut_ptr(), target.len(), Some(timeout_ms(timeout))) }
    }

    /// Receives into a `Vec` that grows as needed: on success `buf` holds
    /// exactly the message. `timeout` as in
    /// [`receive_timeout`](Self::receive_timeout), with `Some(Duration::ZERO)`
    /// not waiting. Nothing is lost when `buf` is too small.
    pub fn receive_vec(
        &self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Option<QuicChannel>, QuicMessageError> {
        self.receive_vec_raw(buf, Some(timeout_ms(timeout)))
    }

    fn receive_vec_raw(&self, buf: &mut Vec<u8>, timeout_ms: Option<i32>) -> Result<Option<QuicChannel>, QuicMessageError> {
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(MIN_RECEIVE_BUF);
        }
        loop {
            // SAFETY: the spare capacity is writable for capacity() bytes;
            // on success the library wrote n <= capacity bytes (checked by
            // receive_raw), so they are initialized.
            match unsafe { self.receive_raw(buf.as_mut_ptr(), buf.capacity(), timeout_ms) } {
                Ok(Some((ch, n))) => {
                    unsafe { buf.set_len(n) };
                    return Ok(Some(ch));
                }
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::BufferTooSmall => {
                    let need = e.needed().unwrap_or(0).max(buf.capacity() * 2);
                    buf.reserve(need);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the connection to `addr` gracefully (bounded by the drain
    /// timeout). No connection to `addr`: nothing to do.
    ///
    /// An [`ErrorKind::Unconfirmed`] error means that messages sent to
    /// `addr` were not confirmed by the peer within the drain timeout (they
    /// may or may not have been delivered); the connection is closed all the
    /// same.
    pub fn close(&self, addr: SocketAddr) -> Result<(), QuicMessageError> {
        let addr = addr_cstring(addr);
        // SAFETY: addr is NUL-terminated.
        check(unsafe { sys::aranya_quic_close(self.handle, addr.as_ptr()) })
    }

    /// The endpoint's counters.
    pub fn stats(&self) -> Result<Stats, QuicMessageError> {
        let mut s = sys::aranya_quic_stats::default(); // struct_size set
        // SAFETY: s is a valid stats struct.
        check(unsafe { sys::aranya_quic_get_stats(self.handle, &mut s) })?;
        Ok(Stats::from(&s))
    }

    /// Frees the endpoint now, from `&self`: every call blocked in another
    /// thread (e.g. `receive_timeout(.., None)`, or an async `recv`) returns
    /// with [`ErrorKind::Closed`] or [`ErrorKind::InvalidHandle`], as do all
    /// later calls. Waits for calls in flight. Dropping the endpoint
    /// afterwards is still required (it closes the fd) and harmless.
    ///
    /// Call it before dropping the endpoint to learn whether the graceful
    /// close lost anything: an [`ErrorKind::Unconfirmed`] error means that
    /// messages sent were not confirmed by their peers within the drain
    /// timeout. The endpoint is freed all the same (a second `shutdown`
    /// returns `Ok`). `Drop` frees too, but ignores the result.
    pub fn shutdown(&self) -> Result<(), QuicMessageError> {
        // SAFETY: freeing a handle twice or concurrently is harmless.
        check(unsafe { sys::aranya_quic_free(self.handle) })
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // SAFETY: our handle; a second free (after shutdown) is harmless.
        // The fields (tokio registration, then our fd) drop after this.
        // The result (e.g. ARANYA_QUIC_ERR_UNCONFIRMED) is ignored: Drop
        // cannot report it; callers who care call `shutdown` first.
        unsafe { sys::aranya_quic_free(self.handle) };
    }
}

/// The fd that is readable while the receive queue is non-empty (our
/// duplicate of the library's, valid until the `Endpoint` is dropped; after
/// [`Endpoint::shutdown`] it reads as end-of-file, i.e. stays readable).
/// Wait for readability, then call [`Endpoint::receive`] until `Ok(None)`.
/// Never read from or write to it.
impl AsRawFd for Endpoint {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Endpoint {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(feature = "tokio")]
impl Endpoint {
    fn async_fd(&self) -> Result<&tokio::io::unix::AsyncFd<FdRef>, QuicMessageError> {
        if let Some(a) = self.async_fd.get() {
            return Ok(a);
        }
        let _g = self.async_init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = self.async_fd.get() {
            return Ok(a);
        }
        // `with_interest` is deprecated since tokio 1.54 in favour of the
        // unsafe `register_with_interest`, which older 1.x releases lack.
        // Its safety contract holds here: the fd is our own `self.fd`, which
        // stays open (same file description) until after this AsyncFd is
        // dropped (field order of `Endpoint`).
        #[allow(deprecated)]
        let a = tokio::io::unix::AsyncFd::with_interest(FdRef(self.fd.as_raw_fd()), tokio::io::Interest::READABLE)
            .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("registering the receive fd with tokio: {e}")))?;
        let _ = self.async_fd.set(a);
        Ok(self.async_fd.get().expect("just set"))
    }

    /// Waits for a message without blocking a thread: `buf` is cleared,
    /// grown as needed, and holds exactly the message on return.
    ///
    /// Built on `tokio::io::unix::AsyncFd` over the receive fd (registered
    /// with the runtime of the first call: use one runtime per endpoint).
    /// Cancel-safe: a message is taken only when the future completes.
    /// Returns an error once the endpoint is shut down.
    pub async fn recv(&self, buf: &mut Vec<u8>) -> Result<QuicChannel, QuicMessageError> {
        let afd = self.async_fd()?;
        loop {
            let mut guard = afd
                .readable()
                .await
                .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("waiting on the receive fd: {e}")))?;
            match self.receive_vec_raw(buf, None)? {
                Some(ch) => return Ok(ch),
                // Empty (another receiver was faster, or a stale wake-up):
                // clear readiness and wait for the next edge.
                None => guard.clear_ready(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Endpoint>();
        check::<QuicMessageError>();
    }

    #[test]
    fn timeouts_to_ms() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(10))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_secs(10))), 10_000);
        assert_eq!(timeout_ms(Some(Duration::MAX)), i32::MAX);
    }

    #[test]
    fn addresses_format_like_the_c_api() {
        assert_eq!(addr_cstring("127.0.0.1:80".parse().unwrap()).to_str().unwrap(), "127.0.0.1:80");
        assert_eq!(addr_cstring("[::1]:80".parse().unwrap()).to_str().unwrap(), "[::1]:80");
    }
}
