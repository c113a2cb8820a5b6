//! The endpoint: one UDP socket that listens and dials.

use std::ffi::{c_char, c_int};
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use aranya_quic_sys as sys;

use crate::addr::{c_addr, CAddr, PeerAddr};
use crate::batch::MessageBatch;
use crate::config::Config;
use crate::error::{check, ErrorKind, QuicMessageError};
use crate::events::{Event, Hub};
use crate::label::LabelCache;
use crate::types::{c_array_str, parse_addr, GraphId, QuicChannel, Stats};

/// Initial buffer for [`Endpoint::receive_vec`] / `recv` when the caller's
/// `Vec` has no capacity.
const MIN_RECEIVE_BUF: usize = 4096;

/// Messages passed to the library per `aranya_quic_send_batch` call. Their
/// descriptors live on the stack, so a batch of any length allocates
/// nothing; splitting changes nothing either, since a batch is defined as
/// that many sends from one thread.
const SEND_CHUNK: usize = 64;

/// An Aranya QUIC Channels endpoint (`aranya_quic_t`).
///
/// Every method takes `&self`: share it between threads with `Arc`.
///
/// Two ways to drive it:
/// - Blocking: [`send`](Self::send) returns once the transport accepted the
///   message (blocking under backpressure, up to the send timeout),
///   [`close`](Self::close) and [`shutdown`](Self::shutdown) wait for the
///   drain.
/// - Non-blocking: [`try_send`](Self::try_send) and friends accept a
///   message or refuse it at once ([`ErrorKind::WouldBlock`]: wait until
///   [`send_fd`](Self::send_fd) is readable, then retry) and return its id;
///   [`close_nowait`](Self::close_nowait) and
///   [`shutdown_nowait`](Self::shutdown_nowait) start a close and return its
///   id; what happens later arrives as [`Event`]s
///   ([`next_event`](Self::next_event), readable
///   [`event_fd`](Self::event_fd)). With the `tokio` feature,
///   `AsyncEndpoint` wraps all of this in futures and streams.
///
/// # Drop
///
/// Dropping the endpoint frees it and ignores any error:
/// - by default it closes every connection gracefully and waits for that,
///   up to the drain timeout (plus a second): what a blocking program wants
///   before it exits. Call [`shutdown`](Self::shutdown) first to see the
///   outcome (e.g. [`ErrorKind::Unconfirmed`]).
/// - once the endpoint was used asynchronously (any async method, or an
///   `AsyncEndpoint`), or a [`shutdown_nowait`](Self::shutdown_nowait) was
///   started and its [`Event::ShutdownFinished`] not yet seen, it never
///   waits: `aranya_quic_free_nowait` lets the endpoint close in the
///   background (the library logs unconfirmed messages at WARN), so that
///   dropping it never blocks an async runtime. A process that exits right
///   after may cut that close short: `shutdown().await` first, which also
///   tells the outcome; after it, dropping returns at once.
pub struct Endpoint {
    handle: sys::aranya_quic_t,
    /// Labels received recently, so that a received channel shares its
    /// label instead of allocating it. Shared with the batches this
    /// endpoint fills, whose `channel()` uses it too.
    labels: Arc<LabelCache>,
    /// Registration of `fd` with tokio, made on the first `recv`. Declared
    /// before `fd` so that it is deregistered before `fd` is closed.
    #[cfg(feature = "tokio")]
    async_fd: std::sync::OnceLock<tokio::io::unix::AsyncFd<FdRef>>,
    /// Registrations of `send_fd` and `event_fd` with tokio, made on first
    /// use; declared before those fds for the same reason.
    #[cfg(feature = "tokio")]
    pub(crate) send_afd: OnceLock<tokio::io::unix::AsyncFd<FdRef>>,
    #[cfg(feature = "tokio")]
    pub(crate) event_afd: OnceLock<tokio::io::unix::AsyncFd<FdRef>>,
    #[cfg(feature = "tokio")]
    async_init: std::sync::Mutex<()>,
    #[cfg(feature = "tokio")]
    pending: std::sync::Mutex<Pending>,
    /// Messages in `pending` not handed out yet, readable without the lock
    /// so that receives skip it when it is empty (the usual case).
    #[cfg(feature = "tokio")]
    pending_left: std::sync::atomic::AtomicUsize,
    /// Our own duplicate of the library's receive fd. The library closes its
    /// fd when the handle is freed; this one stays open (then reading as
    /// end-of-file, i.e. readable, which wakes waiters) until the
    /// `Endpoint` is dropped, so pollers never see a closed or reused fd.
    fd: OwnedFd,
    /// Our duplicates of the library's send and event fds, made on first
    /// use, kept for the same reason as `fd`.
    send_fd: OnceLock<OwnedFd>,
    event_fd: OnceLock<OwnedFd>,
    /// The event dispatcher: every event taken from the library goes
    /// through it (see `events.rs`).
    pub(crate) hub: Mutex<Hub>,
    /// Drop must not wait: the endpoint was used from async code.
    async_used: AtomicBool,
}

/// Messages `recv` took from the library in one batch and has not returned
/// yet. They are older than anything still in the library's queue, so every
/// receive method hands them out first.
#[cfg(feature = "tokio")]
struct Pending {
    batch: MessageBatch,
    /// Index of the next message to hand out.
    next: usize,
}

#[cfg(feature = "tokio")]
impl Pending {
    fn left(&self) -> usize {
        self.batch.len() - self.next
    }
}

/// Size of `recv`'s internal batch. A message larger than the buffer is
/// received straight into the caller's `Vec` instead, so the buffer never
/// grows.
#[cfg(feature = "tokio")]
const PENDING_MESSAGES: usize = 64;
#[cfg(feature = "tokio")]
const PENDING_BUFFER: usize = 64 * 1024;

/// A borrowed fd for tokio's AsyncFd (the OwnedFd lives next to it).
#[cfg(feature = "tokio")]
pub(crate) struct FdRef(RawFd);

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

/// Label pointer and length for the C API (NULL for the empty label).
fn label_ptr(label: &str) -> (*const c_char, usize) {
    if label.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (label.as_ptr().cast::<c_char>(), label.len())
    }
}

/// Message pointer and length for the C API (NULL for the empty message).
fn bytes_ptr(message: &[u8]) -> (*const u8, usize) {
    if message.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (message.as_ptr(), message.len())
    }
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
        let bind = CAddr::from_socket(config.bind_addr)?;
        let max_events = config.max_events.map_or(sys::ARANYA_QUIC_DEFAULT_MAX_EVENTS, |n| if n == 0 { sys::ARANYA_QUIC_DEFAULT_MAX_EVENTS } else { n });
        let pinned: Vec<u8> = config.pinned_peers.concat();
        let c = config.to_c(bind.as_cstr(), &pinned)?;
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
                labels: Arc::default(),
                #[cfg(feature = "tokio")]
                async_fd: std::sync::OnceLock::new(),
                #[cfg(feature = "tokio")]
                send_afd: OnceLock::new(),
                #[cfg(feature = "tokio")]
                event_afd: OnceLock::new(),
                #[cfg(feature = "tokio")]
                async_init: std::sync::Mutex::new(()),
                #[cfg(feature = "tokio")]
                pending: std::sync::Mutex::new(Pending { batch: MessageBatch::empty(), next: 0 }),
                #[cfg(feature = "tokio")]
                pending_left: std::sync::atomic::AtomicUsize::new(0),
                fd,
                send_fd: OnceLock::new(),
                event_fd: OnceLock::new(),
                hub: Mutex::new(Hub::new(max_events as usize)),
                async_used: AtomicBool::new(false),
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
    /// Blocks under backpressure, bounded by the send timeout. `addr` is a
    /// [`SocketAddr`] or a `"host:port"` string ([`PeerAddr`]); a name is
    /// resolved in the calling thread.
    pub fn send(
        &self,
        addr: impl PeerAddr,
        team_id: &GraphId,
        label: &str,
        message: &[u8],
    ) -> Result<(), QuicMessageError> {
        let addr = c_addr(&addr)?;
        let (lp, ll) = label_ptr(label);
        let (mp, ml) = bytes_ptr(message);
        // SAFETY: every pointer is valid for its length during the call.
        check(unsafe { sys::aranya_quic_send(self.handle, addr.as_ptr(), team_id.0.as_ptr(), lp, ll, mp, ml) })
    }

    /// Sends one Aranya sync message of type `sync_type` to `addr`.
    pub fn send_sync(&self, addr: impl PeerAddr, sync_type: u32, message: &[u8]) -> Result<(), QuicMessageError> {
        let addr = c_addr(&addr)?;
        let (mp, ml) = bytes_ptr(message);
        // SAFETY: every pointer is valid for its length during the call.
        check(unsafe { sys::aranya_quic_send_sync(self.handle, addr.as_ptr(), sync_type, mp, ml) })
    }

    /// Sends `messages`, in order, on the channel (addr, team_id, label):
    /// the same as one [`send`](Self::send) per message from one thread, in
    /// far fewer calls into the library (`aranya_quic_send_batch`).
    ///
    /// Stops at the first message that fails and returns its error, whose
    /// [`sent`](QuicMessageError::sent) is the number of messages accepted
    /// before it (each sent as by a successful `send`); the failed one and
    /// those after it are not sent. Arguments that apply to every message
    /// (address, label) fail before any is sent (`sent() == Some(0)`); a
    /// message over the size limit fails in its turn. An empty `messages`
    /// sends nothing and returns `Ok`. The send timeout applies to each
    /// message.
    pub fn send_batch<M: AsRef<[u8]>>(
        &self,
        addr: impl PeerAddr,
        team_id: &GraphId,
        label: &str,
        messages: &[M],
    ) -> Result<(), QuicMessageError> {
        let addr = c_addr(&addr).map_err(|e| e.with_sent(0))?;
        let (lp, ll) = label_ptr(label);
        send_chunks(messages, |bufs, count, out_sent| {
            // SAFETY: addr is NUL-terminated, team_id 32 bytes, the label
            // valid for ll bytes, bufs valid for count records whose data
            // are valid for their lengths, out_sent writable; all during
            // the call.
            unsafe {
                sys::aranya_quic_send_batch(self.handle, addr.as_ptr(), team_id.0.as_ptr(), lp, ll, bufs, count, out_sent)
            }
        })
    }

    /// [`send_batch`](Self::send_batch) for Aranya sync messages of type
    /// `sync_type`: same behaviour and errors.
    pub fn send_sync_batch<M: AsRef<[u8]>>(
        &self,
        addr: impl PeerAddr,
        sync_type: u32,
        messages: &[M],
    ) -> Result<(), QuicMessageError> {
        let addr = c_addr(&addr).map_err(|e| e.with_sent(0))?;
        send_chunks(messages, |bufs, count, out_sent| {
            // SAFETY: as in send_batch.
            unsafe { sys::aranya_quic_send_sync_batch(self.handle, addr.as_ptr(), sync_type, bufs, count, out_sent) }
        })
    }

    /// The one receive call into the library: `timeout_ms` None is
    /// `aranya_quic_receive`, Some is `aranya_quic_receive_timeout`.
    /// WOULD_BLOCK and TIMEOUT give `Ok(None)`; BUFFER_TOO_SMALL an error
    /// with the needed size. Does not look at `recv`'s pending messages.
    ///
    /// # Safety
    /// `buf` must be valid for writes of `len` bytes (or `len` 0).
    unsafe fn receive_lib(
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
                Ok(Some((QuicChannel::from_c(&ch, Some(&self.labels))?, n)))
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
        #[cfg(feature = "tokio")]
        if let Some(r) = self.pending_into_slice(target)? {
            return Ok(Some(r));
        }
        // SAFETY: target is writable for its length.
        unsafe { self.receive_lib(target.as_mut_ptr(), target.len(), None) }
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
        #[cfg(feature = "tokio")]
        if let Some(r) = self.pending_into_slice(target)? {
            return Ok(Some(r));
        }
        // SAFETY: target is writable for its length.
        unsafe { self.receive_lib(target.as_mut_ptr(), target.len(), Some(timeout_ms(timeout))) }
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
        #[cfg(feature = "tokio")]
        if let Some(ch) = self.pending_into_vec(buf)? {
            return Ok(Some(ch));
        }
        self.receive_vec_lib(buf, Some(timeout_ms(timeout)))
    }

    /// Takes up to [`max_messages`](MessageBatch::max_messages) queued
    /// messages into `batch` in one call (`aranya_quic_receive_batch`),
    /// replacing what it held, and returns how many; read them with
    /// [`MessageBatch::iter`]. Waits up to `timeout` for the first message
    /// (`None`: until one arrives or the endpoint is shut down;
    /// `Some(Duration::ZERO)`: not at all), never for more once one is
    /// taken. `Ok(0)`: the wait ended with the queue empty.
    ///
    /// Messages come oldest first, as from [`receive`](Self::receive). A
    /// batch stops at the first message that does not fit in what is left of
    /// the batch's buffer (it stays queued, first for the next call); a
    /// message larger than the whole buffer grows it and is taken, so
    /// nothing is ever lost to a small buffer.
    pub fn receive_batch(&self, batch: &mut MessageBatch, timeout: Option<Duration>) -> Result<usize, QuicMessageError> {
        batch.use_labels(&self.labels);
        #[cfg(feature = "tokio")]
        if let Some(n) = self.pending_into_batch(batch) {
            return Ok(n);
        }
        batch.fill(self.handle, timeout_ms(timeout), true)
    }

    fn receive_vec_lib(&self, buf: &mut Vec<u8>, timeout_ms: Option<i32>) -> Result<Option<QuicChannel>, QuicMessageError> {
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(MIN_RECEIVE_BUF);
        }
        loop {
            // SAFETY: the spare capacity is writable for capacity() bytes;
            // on success the library wrote n <= capacity bytes (checked by
            // receive_lib), so they are initialized.
            match unsafe { self.receive_lib(buf.as_mut_ptr(), buf.capacity(), timeout_ms) } {
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
    pub fn close(&self, addr: impl PeerAddr) -> Result<(), QuicMessageError> {
        let addr = c_addr(&addr)?;
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
    ///
    /// Messages still queued are dropped, including those an async `recv`
    /// had already taken from the library in a batch but not returned.
    ///
    /// This blocks for up to the drain timeout: in async code use
    /// `AsyncEndpoint::shutdown().await` (feature `tokio`) instead, or
    /// [`shutdown_nowait`](Self::shutdown_nowait) and wait for its
    /// [`Event::ShutdownFinished`].
    pub fn shutdown(&self) -> Result<(), QuicMessageError> {
        // SAFETY: freeing a handle twice or concurrently is harmless.
        let r = check(unsafe { sys::aranya_quic_free(self.handle) });
        #[cfg(feature = "tokio")]
        {
            let mut p = self.lock_pending();
            p.batch.clear();
            p.next = 0;
            self.pending_left.store(0, std::sync::atomic::Ordering::Release);
        }
        // Futures and streams waiting on events learn that none will come.
        self.lock_hub().end();
        r
    }

    // --- non-blocking calls (C API 0.2) ---

    /// Sends one message on the channel (addr, team_id, label) without
    /// blocking (`aranya_quic_send_nowait`) and returns its id (unique per
    /// endpoint, increasing from 1).
    ///
    /// The message is handed to the channel's stream at once when it can
    /// take it, else copied into the peer's outbound queue, from which the
    /// library dials (or resolves `addr`) in the background. Channel order
    /// holds across blocking and non-blocking sends. An accepted message is
    /// delivered as one [`send`](Self::send) accepted is, or, when it
    /// cannot be handed over (peer unreachable or not resolved, TLS
    /// refused, too large for the peer, the send timeout passed before its
    /// turn), an [`Event::SendFailed`] with its id says so.
    ///
    /// [`ErrorKind::WouldBlock`]: the peer's queue holds
    /// [`Config::max_outbound_bytes_per_peer`](crate::Config::max_outbound_bytes_per_peer)
    /// (or all queues `max_outbound_bytes`); nothing was accepted. Wait
    /// until [`send_fd`](Self::send_fd) is readable and try again. Other
    /// errors as for `send`, found before anything is queued;
    /// [`ErrorKind::Closed`] once a shutdown started.
    pub fn try_send(
        &self,
        addr: impl PeerAddr,
        team_id: &GraphId,
        label: &str,
        message: &[u8],
    ) -> Result<u64, QuicMessageError> {
        self.try_send_c(&c_addr(&addr)?, team_id, label, message)
    }

    pub(crate) fn try_send_c(
        &self,
        addr: &CAddr,
        team_id: &GraphId,
        label: &str,
        message: &[u8],
    ) -> Result<u64, QuicMessageError> {
        let (lp, ll) = label_ptr(label);
        let (mp, ml) = bytes_ptr(message);
        let mut id = 0u64;
        // SAFETY: every pointer is valid for its length during the call;
        // the library copies what it keeps.
        check(unsafe {
            sys::aranya_quic_send_nowait(self.handle, addr.as_ptr(), team_id.0.as_ptr(), lp, ll, mp, ml, &mut id)
        })?;
        Ok(id)
    }

    /// [`try_send`](Self::try_send) for an Aranya sync message of type
    /// `sync_type` (`aranya_quic_send_sync_nowait`).
    pub fn try_send_sync(&self, addr: impl PeerAddr, sync_type: u32, message: &[u8]) -> Result<u64, QuicMessageError> {
        self.try_send_sync_c(&c_addr(&addr)?, sync_type, message)
    }

    pub(crate) fn try_send_sync_c(&self, addr: &CAddr, sync_type: u32, message: &[u8]) -> Result<u64, QuicMessageError> {
        let (mp, ml) = bytes_ptr(message);
        let mut id = 0u64;
        // SAFETY: as in try_send_c.
        check(unsafe { sys::aranya_quic_send_sync_nowait(self.handle, addr.as_ptr(), sync_type, mp, ml, &mut id) })?;
        Ok(id)
    }

    /// [`try_send`](Self::try_send) for `messages`, in order, on one
    /// channel, in one library call (`aranya_quic_send_batch_nowait`).
    /// Returns the ids of the messages, `messages.len()` consecutive ones
    /// (an empty range for an empty slice).
    ///
    /// Accepts messages until one is refused or fails its checks; that
    /// one's error is returned, with [`sent`](QuicMessageError::sent) the
    /// number accepted before it and [`first_id`](QuicMessageError::first_id)
    /// the id of the first of them. So [`ErrorKind::WouldBlock`] with
    /// `sent() == Some(k)` means `messages[..k]` are accepted and
    /// `messages[k..]` are not: retry those once [`send_fd`](Self::send_fd)
    /// is readable.
    pub fn try_send_batch<M: AsRef<[u8]>>(
        &self,
        addr: impl PeerAddr,
        team_id: &GraphId,
        label: &str,
        messages: &[M],
    ) -> Result<Range<u64>, QuicMessageError> {
        let addr = c_addr(&addr).map_err(|e| e.with_sent(0))?;
        let (lp, ll) = label_ptr(label);
        send_all_nowait(messages, |bufs, count, out_sent, out_first| {
            // SAFETY: addr is NUL-terminated, team_id 32 bytes, the label
            // valid for ll bytes, bufs for count records whose data are
            // valid for their lengths, the outputs writable; all during the
            // call.
            unsafe {
                sys::aranya_quic_send_batch_nowait(
                    self.handle,
                    addr.as_ptr(),
                    team_id.0.as_ptr(),
                    lp,
                    ll,
                    bufs,
                    count,
                    out_sent,
                    out_first,
                )
            }
        })
    }

    /// [`try_send_batch`](Self::try_send_batch) for Aranya sync messages of
    /// type `sync_type` (`aranya_quic_send_sync_batch_nowait`).
    pub fn try_send_sync_batch<M: AsRef<[u8]>>(
        &self,
        addr: impl PeerAddr,
        sync_type: u32,
        messages: &[M],
    ) -> Result<Range<u64>, QuicMessageError> {
        let addr = c_addr(&addr).map_err(|e| e.with_sent(0))?;
        send_all_nowait(messages, |bufs, count, out_sent, out_first| {
            // SAFETY: as in try_send_batch.
            unsafe {
                sys::aranya_quic_send_sync_batch_nowait(self.handle, addr.as_ptr(), sync_type, bufs, count, out_sent, out_first)
            }
        })
    }

    /// Starts closing the connection to `addr` as [`close`](Self::close)
    /// does, and returns at once with the close's id
    /// (`aranya_quic_close_nowait`). The close takes its turn after the
    /// messages already queued for `addr`; its outcome arrives as an
    /// [`Event::CloseFinished`] with that id (also when there was no
    /// connection).
    pub fn close_nowait(&self, addr: impl PeerAddr) -> Result<u64, QuicMessageError> {
        self.close_nowait_c(&c_addr(&addr)?)
    }

    pub(crate) fn close_nowait_c(&self, addr: &CAddr) -> Result<u64, QuicMessageError> {
        let mut id = 0u64;
        // SAFETY: addr is NUL-terminated; id writable.
        check(unsafe { sys::aranya_quic_close_nowait(self.handle, addr.as_ptr(), &mut id) })?;
        Ok(id)
    }

    /// Starts closing the whole endpoint and returns at once with the
    /// shutdown's id (`aranya_quic_shutdown`). From now on sends fail with
    /// [`ErrorKind::Closed`] and nothing more is received (messages already
    /// queued stay readable); messages queued by the non-blocking sends are
    /// handed over first (those that cannot be get [`Event::SendFailed`]),
    /// then every connection drains, each step bounded by the drain
    /// timeout. [`Event::ShutdownFinished`] with this id reports the
    /// outcome; after it, dropping the endpoint returns at once. Calling it
    /// again returns the same id.
    ///
    /// Unlike [`shutdown`](Self::shutdown) the handle stays valid (stats,
    /// events, receiving what is queued) until the endpoint is dropped.
    pub fn shutdown_nowait(&self) -> Result<u64, QuicMessageError> {
        let mut id = 0u64;
        // SAFETY: id writable.
        check(unsafe { sys::aranya_quic_shutdown(self.handle, &mut id) })?;
        self.lock_hub().shutdown_started(id);
        Ok(id)
    }

    /// Takes the oldest event, without blocking: `Ok(None)` when none is
    /// waiting. Events come in the order they happened; see [`Event`].
    /// Wait for [`event_fd`](Self::event_fd) to be readable (or use the
    /// `tokio` feature's event stream) rather than calling it in a loop.
    ///
    /// Every event also completes the async close and shutdown futures
    /// waiting for it (feature `tokio`), whichever of them, the event
    /// stream, or this method takes it from the library. The endpoint keeps
    /// up to [`Config::max_events`](crate::Config::max_events) events taken
    /// but not yet returned; beyond, it drops them, and an
    /// [`Event::Dropped`] says how many, in order (as it does for events
    /// the library dropped).
    pub fn next_event(&self) -> Result<Option<Event>, QuicMessageError> {
        let mut hub = self.lock_hub();
        if let Some(ev) = hub.pop() {
            return Ok(Some(ev));
        }
        hub.pull_one(self.handle, &self.labels)?;
        Ok(hub.pop())
    }

    /// A file descriptor readable while no non-blocking send is being
    /// refused (`aranya_quic_send_fd`): after [`ErrorKind::WouldBlock`],
    /// wait for it to be readable, then retry. Our own duplicate of the
    /// library's fd, valid until the endpoint is dropped. Never read from
    /// or write to it.
    pub fn send_fd(&self) -> Result<BorrowedFd<'_>, QuicMessageError> {
        self.dup_fd(&self.send_fd, sys::aranya_quic_send_fd, "send")
    }

    /// A file descriptor readable while events are waiting
    /// (`aranya_quic_event_fd`); then call [`next_event`](Self::next_event)
    /// until `Ok(None)`. Our own duplicate, as for
    /// [`send_fd`](Self::send_fd). It may stay readable while the events
    /// waiting are already taken into the endpoint: `next_event` returns
    /// those first.
    pub fn event_fd(&self) -> Result<BorrowedFd<'_>, QuicMessageError> {
        self.dup_fd(&self.event_fd, sys::aranya_quic_event_fd, "event")
    }

    fn dup_fd<'a>(
        &'a self,
        slot: &'a OnceLock<OwnedFd>,
        get: unsafe extern "C" fn(sys::aranya_quic_t, *mut c_int) -> i32,
        what: &str,
    ) -> Result<BorrowedFd<'a>, QuicMessageError> {
        if let Some(fd) = slot.get() {
            return Ok(fd.as_fd());
        }
        let mut raw: c_int = -1;
        // SAFETY: valid out pointer; a freed handle is an error, not UB.
        check(unsafe { get(self.handle, &mut raw) })?;
        // SAFETY: the library's fd stays open while the handle is valid;
        // a free racing with this could close it first, which the dup then
        // reports as an error (or duplicates a reused number: only if the
        // caller frees the endpoint concurrently with this call).
        let owned = unsafe { BorrowedFd::borrow_raw(raw) }
            .try_clone_to_owned()
            .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("dup of the {what} fd: {e}")))?;
        // Another thread may have won the race; its fd is kept, ours closed.
        let _ = slot.set(owned);
        Ok(slot.get().expect("just set").as_fd())
    }

    /// Locks the messages an async `recv` took from the library and has not
    /// handed out yet, for a trust change: while held no receive hands
    /// them out, so the caller can drop those of a revoked sender once the
    /// library revoked it (the library drops only what it still queues).
    /// Take it after the library call, never across it: the library logs
    /// a revocation on the caller's thread, and a logger may call the
    /// trust calls, which take this lock. That order loses nothing: a
    /// refill takes from the library and stores into the buffer under
    /// this lock, so once it is ours every message taken before the
    /// revocation is in the buffer, and none taken after is of what was
    /// revoked.
    pub(crate) fn hold_pending(&self) -> PendingHold<'_> {
        PendingHold {
            #[cfg(feature = "tokio")]
            ep: self,
            #[cfg(feature = "tokio")]
            guard: self.lock_pending(),
            #[cfg(not(feature = "tokio"))]
            _ep: std::marker::PhantomData,
        }
    }

    pub(crate) fn lock_hub(&self) -> MutexGuard<'_, Hub> {
        // The hub stays consistent if a holder panicked (no user code runs
        // under the lock; wakers are woken after the state is updated).
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, Drop does not wait.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn mark_async(&self) {
        self.async_used.store(true, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn labels(&self) -> &LabelCache {
        &self.labels
    }
}

/// See [`Endpoint::hold_pending`]. Without the `tokio` feature nothing is
/// ever pending and this holds nothing.
pub(crate) struct PendingHold<'a> {
    #[cfg(feature = "tokio")]
    ep: &'a Endpoint,
    #[cfg(feature = "tokio")]
    guard: MutexGuard<'a, Pending>,
    #[cfg(not(feature = "tokio"))]
    _ep: std::marker::PhantomData<&'a Endpoint>,
}

impl PendingHold<'_> {
    /// Whether no message is waiting to be handed out.
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(feature = "tokio")]
        return self.guard.left() == 0;
        #[cfg(not(feature = "tokio"))]
        true
    }

    /// Drops the waiting messages for which `drop` says so; returns how
    /// many.
    #[cfg_attr(not(feature = "tokio"), allow(unused_mut, unused_variables))]
    pub(crate) fn remove(&mut self, mut drop: impl FnMut(&sys::aranya_quic_channel) -> bool) -> usize {
        #[cfg(feature = "tokio")]
        {
            let p = &mut *self.guard;
            let n = p.batch.remove_from(p.next, &mut drop);
            self.ep.pending_left.store(p.left(), Ordering::Release);
            n
        }
        #[cfg(not(feature = "tokio"))]
        0
    }
}

/// One non-blocking batch call for all of `messages` (so that their ids
/// are consecutive): descriptors on the stack up to SEND_CHUNK messages,
/// on the heap beyond.
fn send_all_nowait<M: AsRef<[u8]>>(
    messages: &[M],
    call: impl FnOnce(*const sys::aranya_quic_buf, usize, &mut usize, &mut u64) -> i32,
) -> Result<Range<u64>, QuicMessageError> {
    let mut stack = [sys::aranya_quic_buf::default(); SEND_CHUNK];
    let mut heap = Vec::new();
    let bufs: &mut [sys::aranya_quic_buf] = if messages.len() <= SEND_CHUNK {
        &mut stack[..messages.len()]
    } else {
        heap.resize(messages.len(), sys::aranya_quic_buf::default());
        &mut heap
    };
    for (b, m) in bufs.iter_mut().zip(messages) {
        let (data, len) = bytes_ptr(m.as_ref());
        *b = sys::aranya_quic_buf { data, len };
    }
    let ptr = if bufs.is_empty() { std::ptr::null() } else { bufs.as_ptr() };
    let (mut sent, mut first) = (0usize, 0u64);
    let rc = call(ptr, bufs.len(), &mut sent, &mut first);
    let sent = sent.min(messages.len());
    if rc != sys::ARANYA_QUIC_OK {
        let first = (sent > 0).then_some(first);
        return Err(QuicMessageError::from_last(rc).with_sent(sent).with_first_id(first));
    }
    if messages.is_empty() {
        return Ok(0..0);
    }
    Ok(first..first + messages.len() as u64)
}

/// Sends `messages` through `call` (one batch function of the C API),
/// SEND_CHUNK descriptors at a time, and adds up how many were accepted.
fn send_chunks<M: AsRef<[u8]>>(
    messages: &[M],
    mut call: impl FnMut(*const sys::aranya_quic_buf, usize, &mut usize) -> i32,
) -> Result<(), QuicMessageError> {
    if messages.is_empty() {
        // Still one call: the library's answer for an empty batch is the
        // contract (it sends nothing).
        let mut n = 0usize;
        let rc = call(std::ptr::null(), 0, &mut n);
        return check(rc).map_err(|e| e.with_sent(0));
    }
    let mut bufs = [sys::aranya_quic_buf::default(); SEND_CHUNK];
    let mut sent = 0usize;
    for chunk in messages.chunks(SEND_CHUNK) {
        for (b, m) in bufs.iter_mut().zip(chunk) {
            let (data, len) = bytes_ptr(m.as_ref());
            *b = sys::aranya_quic_buf { data, len };
        }
        let mut n = 0usize;
        let rc = call(bufs.as_ptr(), chunk.len(), &mut n);
        if rc != sys::ARANYA_QUIC_OK {
            return Err(QuicMessageError::from_last(rc).with_sent(sent + n.min(chunk.len())));
        }
        sent += chunk.len();
    }
    Ok(())
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // See "Drop" on the type. After a shutdown whose end was seen, free
        // returns at once; a shutdown still running, or an endpoint used
        // from async code, must not make Drop wait for the drain.
        let hub = self.hub.get_mut().unwrap_or_else(|e| e.into_inner());
        let finished = hub.shutdown_done.is_some();
        let no_wait = self.async_used.load(Ordering::Relaxed) || hub.shutdown_id.is_some();
        // SAFETY: our handle; a second free (after shutdown) is harmless.
        // The fields (tokio registrations, then our fds) drop after this.
        // The result (e.g. ARANYA_QUIC_ERR_UNCONFIRMED) is ignored: Drop
        // cannot report it; callers who care shut down first.
        unsafe {
            if no_wait && !finished {
                sys::aranya_quic_free_nowait(self.handle);
            } else {
                sys::aranya_quic_free(self.handle);
            }
        }
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
    pub(crate) fn async_fd(&self) -> Result<&tokio::io::unix::AsyncFd<FdRef>, QuicMessageError> {
        if let Some(a) = self.async_fd.get() {
            return Ok(a);
        }
        self.mark_async();
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

    /// Registers one of our fds with tokio (once; the runtime of the first
    /// call).
    fn register<'a>(
        &'a self,
        slot: &'a OnceLock<tokio::io::unix::AsyncFd<FdRef>>,
        fd: impl FnOnce() -> Result<RawFd, QuicMessageError>,
        what: &str,
    ) -> Result<&'a tokio::io::unix::AsyncFd<FdRef>, QuicMessageError> {
        if let Some(a) = slot.get() {
            return Ok(a);
        }
        self.mark_async();
        let raw = fd()?;
        let _g = self.async_init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = slot.get() {
            return Ok(a);
        }
        // As in async_fd: our own fd, open until after the AsyncFd drops.
        #[allow(deprecated)]
        let a = tokio::io::unix::AsyncFd::with_interest(FdRef(raw), tokio::io::Interest::READABLE)
            .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("registering the {what} fd with tokio: {e}")))?;
        let _ = slot.set(a);
        Ok(slot.get().expect("just set"))
    }

    /// The send fd, registered with tokio.
    pub(crate) fn send_afd(&self) -> Result<&tokio::io::unix::AsyncFd<FdRef>, QuicMessageError> {
        self.register(&self.send_afd, || Ok(self.send_fd()?.as_raw_fd()), "send")
    }

    /// The event fd, registered with tokio.
    pub(crate) fn event_afd(&self) -> Result<&tokio::io::unix::AsyncFd<FdRef>, QuicMessageError> {
        self.register(&self.event_afd, || Ok(self.event_fd()?.as_raw_fd()), "event")
    }

    /// Waits for a message without blocking a thread: `buf` is cleared,
    /// grown as needed, and holds exactly the message on return.
    ///
    /// Built on `tokio::io::unix::AsyncFd` over the receive fd (registered
    /// with the runtime of the first call: use one runtime per endpoint).
    /// When the fd is readable it takes every queued message in one library
    /// call (`aranya_quic_receive_batch`) into a buffer inside the endpoint,
    /// and the following calls return from there without calling the
    /// library. Those messages are older than any still queued in the
    /// library, so every receive method of the endpoint (sync, async,
    /// batch) returns them first: per-channel order holds whichever methods
    /// are mixed. [`shutdown`](Self::shutdown) drops them.
    ///
    /// Cancel-safe: a dropped future loses no message (a message is handed
    /// out only when the future completes; messages taken in a batch wait
    /// in the endpoint). Returns an error once the endpoint is freed
    /// ([`shutdown`](Self::shutdown) or drop); after a non-blocking
    /// shutdown (`shutdown_nowait`, `AsyncEndpoint::shutdown`) it keeps
    /// waiting, since the handle stays valid: `AsyncEndpoint::messages`
    /// ends by itself then.
    ///
    /// Using it makes the endpoint's `Drop` non-blocking (see "Drop" on
    /// the type).
    pub async fn recv(&self, buf: &mut Vec<u8>) -> Result<QuicChannel, QuicMessageError> {
        let afd = self.async_fd()?;
        loop {
            if let Some(ch) = self.pending_into_vec(buf)? {
                return Ok(ch);
            }
            let mut guard = afd
                .readable()
                .await
                .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("waiting on the receive fd: {e}")))?;
            match self.refill_into_vec(buf)? {
                Some(ch) => return Ok(ch),
                // Empty (another receiver was faster, or a stale wake-up):
                // clear readiness and wait for the next edge.
                None => guard.clear_ready(),
            }
        }
    }

    /// [`receive_batch`](Self::receive_batch) without blocking a thread:
    /// waits on the receive fd until at least one message is queued, then
    /// takes up to [`max_messages`](MessageBatch::max_messages) of them into
    /// `batch` in one call and returns how many (at least 1). Cancel-safe,
    /// like [`recv`](Self::recv).
    pub async fn recv_batch(&self, batch: &mut MessageBatch) -> Result<usize, QuicMessageError> {
        let afd = self.async_fd()?;
        batch.use_labels(&self.labels);
        loop {
            if let Some(n) = self.pending_into_batch(batch) {
                return Ok(n);
            }
            let mut guard = afd
                .readable()
                .await
                .map_err(|e| QuicMessageError::new(ErrorKind::Io, format!("waiting on the receive fd: {e}")))?;
            // A recv on another task may have filled `pending` meanwhile.
            if let Some(n) = self.pending_into_batch(batch) {
                return Ok(n);
            }
            match batch.fill(self.handle, 0, true)? {
                0 => guard.clear_ready(),
                n => return Ok(n),
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The pending batch stays consistent even if a holder panicked (no
        // user code runs under the lock).
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_pending(&self) -> bool {
        self.pending_left.load(std::sync::atomic::Ordering::Acquire) != 0
    }

    /// Hands out the next pending message: its channel and payload go to
    /// `out`, which returns what the caller returns.
    fn pop_pending<T>(
        &self,
        p: &mut Pending,
        out: impl FnOnce(&sys::aranya_quic_channel, &[u8]) -> Result<T, QuicMessageError>,
    ) -> Option<Result<T, QuicMessageError>> {
        if p.left() == 0 {
            return None;
        }
        let (ch, data) = p.batch.raw(p.next);
        let r = out(ch, data);
        // BUFFER_TOO_SMALL keeps the message, as the library does.
        if !matches!(&r, Err(e) if e.kind() == ErrorKind::BufferTooSmall) {
            p.next += 1;
            self.pending_left.store(p.left(), std::sync::atomic::Ordering::Release);
        }
        Some(r)
    }

    pub(crate) fn pending_into_vec(&self, buf: &mut Vec<u8>) -> Result<Option<QuicChannel>, QuicMessageError> {
        if !self.has_pending() {
            return Ok(None);
        }
        let mut p = self.lock_pending();
        self.pop_pending(&mut p, |ch, data| {
            buf.clear();
            buf.extend_from_slice(data);
            QuicChannel::from_c(ch, Some(&self.labels))
        })
        .transpose()
    }

    fn pending_into_slice(&self, target: &mut [u8]) -> Result<Option<(QuicChannel, usize)>, QuicMessageError> {
        if !self.has_pending() {
            return Ok(None);
        }
        let mut p = self.lock_pending();
        self.pop_pending(&mut p, |ch, data| {
            let Some(dst) = target.get_mut(..data.len()) else {
                return Err(QuicMessageError::new(
                    ErrorKind::BufferTooSmall,
                    format!("the oldest message is {} bytes, the buffer {}", data.len(), target.len()),
                )
                .with_needed(data.len()));
            };
            dst.copy_from_slice(data);
            Ok((QuicChannel::from_c(ch, Some(&self.labels))?, data.len()))
        })
        .transpose()
    }

    /// Moves pending messages into `batch` (as many as fit, at least one:
    /// the batch's buffer grows for a large first message). None when
    /// nothing is pending.
    fn pending_into_batch(&self, batch: &mut MessageBatch) -> Option<usize> {
        if !self.has_pending() {
            return None;
        }
        let mut p = self.lock_pending();
        if p.left() == 0 {
            return None;
        }
        batch.clear();
        while p.left() > 0 {
            let (ch, data) = p.batch.raw(p.next);
            if !batch.push(ch, data) {
                if !batch.is_empty() {
                    break;
                }
                batch.grow_to(data.len());
                let pushed = batch.push(ch, data);
                debug_assert!(pushed, "an empty batch grown to the message holds it");
            }
            p.next += 1;
        }
        self.pending_left.store(p.left(), std::sync::atomic::Ordering::Release);
        Some(batch.len())
    }

    /// For `recv` once the fd is readable: takes a batch from the library
    /// into `pending` (without waiting) and hands out its first message.
    pub(crate) fn refill_into_vec(&self, buf: &mut Vec<u8>) -> Result<Option<QuicChannel>, QuicMessageError> {
        let mut p = self.lock_pending();
        // Another task refilled while this one waited: no library call.
        if let Some(r) = self.pop_pending(&mut p, |ch, data| {
            buf.clear();
            buf.extend_from_slice(data);
            QuicChannel::from_c(ch, Some(&self.labels))
        }) {
            return r.map(Some);
        }
        if p.batch.max_messages() == 0 {
            p.batch = MessageBatch::with_capacity(PENDING_MESSAGES, PENDING_BUFFER);
        }
        p.next = 0;
        match p.batch.fill(self.handle, 0, false) {
            Ok(n) => {
                self.pending_left.store(n, std::sync::atomic::Ordering::Release);
                if n == 0 {
                    return Ok(None);
                }
                self.pop_pending(&mut p, |ch, data| {
                    buf.clear();
                    buf.extend_from_slice(data);
                    QuicChannel::from_c(ch, Some(&self.labels))
                })
                .transpose()
            }
            // The oldest message is larger than the pending buffer: receive
            // it straight into the caller's Vec, which grows as needed (no
            // copy through a buffer kept that large). Still under the lock,
            // so no other recv can take a newer message first.
            Err(e) if e.kind() == ErrorKind::BufferTooSmall => self.receive_vec_lib(buf, None),
            Err(e) => Err(e),
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
}
