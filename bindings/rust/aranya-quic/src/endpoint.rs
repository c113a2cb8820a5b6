//! The endpoint: one UDP socket that listens and dials.

use std::ffi::{c_char, c_int, CStr};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use aranya_quic_sys as sys;

use crate::batch::MessageBatch;
use crate::config::Config;
use crate::error::{check, ErrorKind, QuicMessageError};
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
/// `send` blocks (up to the send timeout); in async code call it from
/// `tokio::task::spawn_blocking`. Dropping the endpoint frees it (closing
/// connections gracefully, bounded by the drain timeout) and ignores any
/// error; call [`shutdown`](Self::shutdown) first to see it (e.g.
/// [`ErrorKind::Unconfirmed`]).
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

/// An address as the C API takes it, "ip:port" or "[ipv6]:port" and a NUL,
/// formatted on the stack so that a send allocates nothing.
struct CAddr {
    buf: [u8; sys::ARANYA_QUIC_ADDR_MAX],
    len: usize,
}

impl CAddr {
    fn new(addr: SocketAddr) -> Result<CAddr, QuicMessageError> {
        use std::io::Write;
        let mut buf = [0u8; sys::ARANYA_QUIC_ADDR_MAX];
        let room = buf.len() - 1; // the NUL stays
        let mut w = &mut buf[..room];
        // Cannot fail: the longest SocketAddr text ("[" + 39 + "%" + 10 +
        // "]:" + 5) is 58 bytes. Reported rather than trusted all the same.
        if write!(w, "{addr}").is_err() {
            return Err(QuicMessageError::new(
                ErrorKind::BadAddress,
                format!("address {addr} is longer than {room} bytes"),
            ));
        }
        let len = room - w.len();
        Ok(CAddr { buf, len })
    }

    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).expect("one NUL, at the end")
    }

    fn as_ptr(&self) -> *const c_char {
        self.buf.as_ptr().cast()
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
        let bind = CAddr::new(config.bind_addr)?;
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
                async_init: std::sync::Mutex::new(()),
                #[cfg(feature = "tokio")]
                pending: std::sync::Mutex::new(Pending { batch: MessageBatch::empty(), next: 0 }),
                #[cfg(feature = "tokio")]
                pending_left: std::sync::atomic::AtomicUsize::new(0),
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
        let addr = CAddr::new(addr)?;
        let (lp, ll) = label_ptr(label);
        let (mp, ml) = bytes_ptr(message);
        // SAFETY: every pointer is valid for its length during the call.
        check(unsafe { sys::aranya_quic_send(self.handle, addr.as_ptr(), team_id.0.as_ptr(), lp, ll, mp, ml) })
    }

    /// Sends one Aranya sync message of type `sync_type` to `addr`.
    pub fn send_sync(&self, addr: SocketAddr, sync_type: u32, message: &[u8]) -> Result<(), QuicMessageError> {
        let addr = CAddr::new(addr)?;
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
        addr: SocketAddr,
        team_id: &GraphId,
        label: &str,
        messages: &[M],
    ) -> Result<(), QuicMessageError> {
        let addr = CAddr::new(addr).map_err(|e| e.with_sent(0))?;
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
        addr: SocketAddr,
        sync_type: u32,
        messages: &[M],
    ) -> Result<(), QuicMessageError> {
        let addr = CAddr::new(addr).map_err(|e| e.with_sent(0))?;
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
    pub fn close(&self, addr: SocketAddr) -> Result<(), QuicMessageError> {
        let addr = CAddr::new(addr)?;
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
        r
    }
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
    /// in the endpoint). Returns an error once the endpoint is shut down.
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

    fn pending_into_vec(&self, buf: &mut Vec<u8>) -> Result<Option<QuicChannel>, QuicMessageError> {
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
    fn refill_into_vec(&self, buf: &mut Vec<u8>) -> Result<Option<QuicChannel>, QuicMessageError> {
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

    #[test]
    fn addresses_format_like_the_c_api() {
        let f = |s: &str| CAddr::new(s.parse().unwrap()).unwrap().as_cstr().to_str().unwrap().to_owned();
        assert_eq!(f("127.0.0.1:80"), "127.0.0.1:80");
        assert_eq!(f("[::1]:80"), "[::1]:80");
        // The longest text a SocketAddr has still fits ARANYA_QUIC_ADDR_MAX.
        let longest: SocketAddr = std::net::SocketAddrV6::new(
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe".parse().unwrap(),
            65535,
            0,
            u32::MAX,
        )
        .into();
        let s = f(&longest.to_string());
        assert_eq!(s, longest.to_string());
        assert!(s.len() < sys::ARANYA_QUIC_ADDR_MAX);
        let c = CAddr::new(longest).unwrap();
        assert_eq!(c.buf[c.len], 0);
        assert_eq!(c.as_ptr(), c.buf.as_ptr().cast());
    }
}
