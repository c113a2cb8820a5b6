//! Feature `tokio`: [`AsyncEndpoint`], the endpoint driven from tokio's
//! reactor through the library's non-blocking calls and its three fds
//! (receive, send, event). No call here blocks a thread or uses
//! `spawn_blocking`.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::{FusedStream, Stream};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

use crate::addr::{c_addr, CAddr, PeerAddr};
use crate::config::Config;
use crate::endpoint::{Endpoint, FdRef};
use crate::error::{ErrorKind, QuicMessageError};
use crate::events::{CloseSlot, Event, Hub};
use crate::types::{GraphId, QuicChannel};

/// An [`Endpoint`] for async code on tokio.
///
/// ```no_run
/// # async fn demo(cfg: aranya_quic::Config) -> Result<(), aranya_quic::QuicMessageError> {
/// use aranya_quic::{AsyncEndpoint, Event, GraphId};
///
/// let ep = AsyncEndpoint::new(cfg)?;
/// let team = GraphId([1; 32]);
/// let id = ep.send("peer.example:4433", &team, "chat", b"hello").await?; // never blocks a thread
/// let mut events = ep.events();
/// let mut messages = ep.messages();
/// loop {
///     tokio::select! {
///         Some(m) = messages.next() => { let m = m?; println!("{} bytes from {}", m.data.len(), m.channel.addr); }
///         Some(ev) = events.next() => match ev? {
///             Event::SendFailed { id: failed, error, .. } if failed == id => println!("not sent: {error}"),
///             other => println!("{other:?}"),
///         },
///         else => break,
///     }
/// #   break;
/// }
/// ep.close("peer.example:4433").await?;  // waits for the drain without blocking
/// ep.shutdown().await?;                  // then dropping `ep` returns at once
/// # Ok(()) }
/// ```
///
/// It dereferences to its [`Endpoint`], so the non-blocking calls
/// (`try_send`, `close_nowait`, `next_event`, `stats`, `local_addr`, ...),
/// the trust calls, which block only briefly and never on the network
/// (`set_trust`, `set_identity`, `team_allow`, `team_revoke`,
/// `connections`), and the async receives (`recv`, `recv_batch`) are there
/// too; the blocking `send`, `close` and `shutdown` are shadowed by the
/// async ones here (reach them through [`endpoint`](Self::endpoint) if you
/// must, but not on a runtime thread).
///
/// Its fds are registered with the runtime of the first async call that
/// needs each of them: use one runtime per endpoint.
///
/// # Drop
///
/// Dropping never waits: the endpoint closes in the background
/// (`aranya_quic_free_nowait`). Await [`shutdown`](Self::shutdown) first to
/// let the peers confirm what was sent and to learn the outcome; after it,
/// dropping returns at once.
pub struct AsyncEndpoint {
    ep: Endpoint,
}

impl From<Endpoint> for AsyncEndpoint {
    /// Wraps an endpoint; from now on its Drop never waits.
    fn from(ep: Endpoint) -> Self {
        ep.mark_async();
        AsyncEndpoint { ep }
    }
}

impl Deref for AsyncEndpoint {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.ep
    }
}

impl std::fmt::Debug for AsyncEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AsyncEndpoint").field(&self.ep).finish()
    }
}

fn io_err(what: &str, e: std::io::Error) -> QuicMessageError {
    QuicMessageError::new(ErrorKind::Io, format!("waiting on the {what} fd: {e}"))
}

impl AsyncEndpoint {
    /// Creates an endpoint ([`Endpoint::new`]) for async use.
    pub fn new(config: Config) -> Result<AsyncEndpoint, QuicMessageError> {
        Ok(Endpoint::new(config)?.into())
    }

    /// The wrapped endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// Sends one message on the channel (addr, team_id, label) and returns
    /// its id once the library accepted it: [`Endpoint::try_send`], and
    /// while that refuses with [`ErrorKind::WouldBlock`] (the peer's
    /// outbound queue is full), waiting until the send fd is readable and
    /// trying again. Accepted means queued or handed to the stream, not
    /// delivered: a message that cannot be sent later (peer unreachable,
    /// name not resolved, ...) is reported by an [`Event::SendFailed`] with
    /// this id. Errors found at once (bad address or label, too large,
    /// [`ErrorKind::Closed`] after a shutdown started) are returned.
    ///
    /// Cancel-safe: the message is accepted only inside a poll that then
    /// completes with its id, so a future dropped before completing has
    /// not sent it, and one that completed has sent all of it; a message
    /// is never half-sent. Resending after a cancel cannot duplicate it.
    pub fn send<'a>(
        &'a self,
        addr: impl PeerAddr,
        team_id: &'a GraphId,
        label: &'a str,
        message: &'a [u8],
    ) -> impl Future<Output = Result<u64, QuicMessageError>> + Send + 'a {
        let addr = c_addr(&addr);
        async move {
            let addr = addr?;
            self.send_with(|ep| ep.try_send_c(&addr, team_id, label, message)).await
        }
    }

    /// [`send`](Self::send) for an Aranya sync message of type
    /// `sync_type` ([`Endpoint::try_send_sync`]). Cancel-safe likewise.
    pub fn send_sync<'a>(
        &'a self,
        addr: impl PeerAddr,
        sync_type: u32,
        message: &'a [u8],
    ) -> impl Future<Output = Result<u64, QuicMessageError>> + Send + 'a {
        let addr = c_addr(&addr);
        async move {
            let addr = addr?;
            self.send_with(|ep| ep.try_send_sync_c(&addr, sync_type, message)).await
        }
    }

    async fn send_with(&self, mut attempt: impl FnMut(&Endpoint) -> Result<u64, QuicMessageError>) -> Result<u64, QuicMessageError> {
        // The fd is registered only once a send was refused: most sends
        // never need it.
        match attempt(&self.ep) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            r => return r,
        }
        let afd = self.ep.send_afd()?;
        loop {
            let mut guard = afd.readable().await.map_err(|e| io_err("send", e))?;
            match attempt(&self.ep) {
                // Still refused: the readiness tokio saw is stale. Clearing
                // it cannot lose a newer edge (tokio clears only the
                // readiness this guard was made from).
                Err(e) if e.kind() == ErrorKind::WouldBlock => guard.clear_ready(),
                r => return r,
            }
        }
    }

    /// Closes the connection to `addr` gracefully and waits, without
    /// blocking a thread, until it is closed: [`Endpoint::close_nowait`],
    /// then its [`Event::CloseFinished`]. `Ok`: the peer confirmed every
    /// accepted message (or there was no connection);
    /// [`ErrorKind::Unconfirmed`] (with
    /// [`unconfirmed`](QuicMessageError::unconfirmed) the count): the drain
    /// timed out or the connection died first; the connection is closed
    /// all the same.
    ///
    /// The close starts at the first poll. Dropping the future after that
    /// does not stop the close (its event still reaches the event stream).
    pub fn close(&self, addr: impl PeerAddr) -> Close<'_> {
        Close { ep: &self.ep, state: CloseState::Start(Box::new(c_addr(&addr))), readable: None }
    }

    /// Shuts the endpoint down and waits, without blocking a thread, until
    /// every connection drained: [`Endpoint::shutdown_nowait`], then its
    /// [`Event::ShutdownFinished`]. [`ErrorKind::Unconfirmed`] (with the
    /// count in [`unconfirmed`](QuicMessageError::unconfirmed)) when peers
    /// did not confirm every accepted message. Afterwards sends fail with
    /// [`ErrorKind::Closed`], the message stream ends once the messages
    /// already queued are taken, the event stream ends after the
    /// `ShutdownFinished` event, and dropping the endpoint returns at once.
    /// Several calls wait for the same shutdown.
    pub fn shutdown(&self) -> Shutdown<'_> {
        Shutdown { ep: &self.ep, token: None, started: false, readable: None }
    }

    /// The received messages, as a [`Stream`] (also [`Messages::next`]).
    /// Each message is handed out only when a poll completes with it, so
    /// dropping the stream (or a `next()` future) loses none. Ends once a
    /// shutdown started and the messages queued before it are taken, or
    /// when the endpoint is freed.
    ///
    /// Mixing it with `recv`, `recv_batch` or the blocking receives keeps
    /// per-channel order: they share one queue. With several consumers,
    /// each message goes to one of them.
    pub fn messages(&self) -> Messages<'_> {
        Messages { ep: &self.ep, token: None, readable: None, done: false }
    }

    /// The endpoint's events, as a [`Stream`] (also [`Events::next`]).
    /// Every event goes to one taker: this stream, another one, or
    /// [`Endpoint::next_event`]; close and shutdown futures see the events
    /// they wait for whoever takes them. Ends after
    /// [`Event::ShutdownFinished`], or when the endpoint is freed.
    pub fn events(&self) -> Events<'_> {
        Events { ep: &self.ep, token: None, readable: None, done: false }
    }
}

/// A wait for the event fd, boxed so that a stream can keep it between
/// polls (tokio wakes every such waiter; a bare `poll_read_ready` would
/// wake only the last task that polled).
type Readable<'a> = Pin<Box<dyn Future<Output = std::io::Result<AsyncFdReadyGuard<'a, FdRef>>> + Send + 'a>>;

/// Polls the dispatcher until `check` finds what the caller waits for.
/// `check` also registers the waker where the thing it waits for will
/// wake it, for when another task takes that event from the library.
/// Whoever polls takes every waiting event from the library into the hub.
fn poll_hub<'a, T>(
    ep: &'a Endpoint,
    cx: &mut Context<'_>,
    readable: &mut Option<Readable<'a>>,
    mut check: impl FnMut(&mut Hub, &Waker) -> Option<T>,
) -> Poll<Result<T, QuicMessageError>> {
    let afd: &'a AsyncFd<FdRef> = match ep.event_afd() {
        Ok(a) => a,
        Err(e) => {
            // No fd (the handle is gone): what the hub holds is all there is.
            let mut hub = ep.lock_hub();
            hub.end();
            return match check(&mut hub, cx.waker()) {
                Some(t) => Poll::Ready(Ok(t)),
                None => Poll::Ready(Err(e)),
            };
        }
    };
    loop {
        {
            let mut hub = ep.lock_hub();
            if let Some(t) = check(&mut hub, cx.waker()) {
                *readable = None;
                return Poll::Ready(Ok(t));
            }
            if let Err(e) = hub.drain(ep.handle(), ep.labels()) {
                return Poll::Ready(Err(e));
            }
            if let Some(t) = check(&mut hub, cx.waker()) {
                *readable = None;
                return Poll::Ready(Ok(t));
            }
        }
        let fut = readable.get_or_insert_with(|| Box::pin(afd.readable()));
        match fut.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => {
                *readable = None;
                return Poll::Ready(Err(io_err("event", e)));
            }
            Poll::Ready(Ok(mut guard)) => {
                *readable = None;
                let r = ep.lock_hub().drain(ep.handle(), ep.labels());
                // Drained to WOULD_BLOCK while holding the guard: the
                // readiness it reported is used up.
                guard.clear_ready();
                r?;
            }
        }
    }
}

enum CloseState {
    Start(Box<Result<CAddr, QuicMessageError>>),
    Waiting(u64),
    Done,
}

/// The future of [`AsyncEndpoint::close`].
#[must_use = "futures do nothing unless polled; the close starts at the first poll"]
pub struct Close<'a> {
    ep: &'a Endpoint,
    state: CloseState,
    readable: Option<Readable<'a>>,
}

impl Future for Close<'_> {
    type Output = Result<(), QuicMessageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let id = match &mut this.state {
            CloseState::Done => panic!("Close polled after it completed"),
            CloseState::Waiting(id) => *id,
            CloseState::Start(addr) => {
                let addr = match std::mem::replace(&mut **addr, Err(QuicMessageError::new(ErrorKind::Internal, ""))) {
                    Ok(a) => a,
                    Err(e) => {
                        this.state = CloseState::Done;
                        return Poll::Ready(Err(e));
                    }
                };
                // Registered under the hub's lock, in which every event is
                // taken from the library: the CLOSE_FINISHED for this id
                // cannot be taken before its slot exists.
                let mut hub = this.ep.lock_hub();
                match this.ep.close_nowait_c(&addr) {
                    Ok(id) => {
                        hub.closes.insert(id, CloseSlot { outcome: None, waker: None });
                        this.state = CloseState::Waiting(id);
                        id
                    }
                    Err(e) => {
                        this.state = CloseState::Done;
                        return Poll::Ready(Err(e));
                    }
                }
            }
        };
        let r = poll_hub(this.ep, cx, &mut this.readable, |hub, w| {
            let slot = hub.closes.get_mut(&id)?;
            if let Some(outcome) = slot.outcome.take() {
                hub.closes.remove(&id);
                return Some(outcome);
            }
            match &mut slot.waker {
                Some(old) if old.will_wake(w) => {}
                other => *other = Some(w.clone()),
            }
            None
        });
        match r {
            Poll::Ready(Ok(outcome)) => {
                this.state = CloseState::Done;
                Poll::Ready(outcome)
            }
            Poll::Ready(Err(e)) => {
                this.ep.lock_hub().closes.remove(&id);
                this.state = CloseState::Done;
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Close<'_> {
    fn drop(&mut self) {
        if let CloseState::Waiting(id) = self.state {
            self.ep.lock_hub().closes.remove(&id);
        }
    }
}

/// The future of [`AsyncEndpoint::shutdown`].
#[must_use = "futures do nothing unless polled; the shutdown starts at the first poll"]
pub struct Shutdown<'a> {
    ep: &'a Endpoint,
    token: Option<u64>,
    started: bool,
    readable: Option<Readable<'a>>,
}

impl Future for Shutdown<'_> {
    type Output = Result<(), QuicMessageError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if !this.started {
            if let Err(e) = this.ep.shutdown_nowait() {
                return Poll::Ready(Err(e));
            }
            this.started = true;
        }
        let token = &mut this.token;
        poll_hub(this.ep, cx, &mut this.readable, |hub, w| {
            if let Some(r) = &hub.shutdown_done {
                return Some(r.clone());
            }
            if hub.ended {
                return Some(Err(QuicMessageError::new(ErrorKind::Closed, "the endpoint was freed during the shutdown")));
            }
            let t = *token.get_or_insert_with(|| hub.token());
            hub.shutdown_watch.register(t, w);
            None
        })
        .map(|r| r.and_then(|x| x))
    }
}

impl Drop for Shutdown<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.token {
            self.ep.lock_hub().shutdown_watch.remove(t);
        }
    }
}

/// A received message, from [`Messages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it came from.
    pub channel: QuicChannel,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The stream of [`AsyncEndpoint::messages`].
pub struct Messages<'a> {
    ep: &'a Endpoint,
    token: Option<u64>,
    readable: Option<Readable<'a>>,
    done: bool,
}

impl Messages<'_> {
    /// The next message; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Result<Message, QuicMessageError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// What a failed receive means for the stream: the handle gone ends
    /// it, anything else is an item.
    fn failed(&mut self, e: QuicMessageError) -> Poll<Option<Result<Message, QuicMessageError>>> {
        if matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle) {
            self.done = true;
            self.readable = None;
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Messages<'_> {
    type Item = Result<Message, QuicMessageError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let ep = this.ep;
        let afd = match ep.async_fd() {
            Ok(a) => a,
            Err(e) => return this.failed(e),
        };
        let mut buf = Vec::new();
        loop {
            match ep.pending_into_vec(&mut buf) {
                Ok(Some(channel)) => return Poll::Ready(Some(Ok(Message { channel, data: buf }))),
                Ok(None) => {}
                Err(e) => return this.failed(e),
            }
            // Once a shutdown started nothing more arrives: hand out what is
            // queued, then end. Until then, have the shutdown wake us.
            let closing = {
                let mut hub = ep.lock_hub();
                if hub.shutdown_id.is_some() || hub.ended {
                    true
                } else {
                    let t = *this.token.get_or_insert_with(|| hub.token());
                    hub.shutdown_watch.register(t, cx.waker());
                    false
                }
            };
            if closing {
                return match ep.refill_into_vec(&mut buf) {
                    Ok(Some(channel)) => Poll::Ready(Some(Ok(Message { channel, data: buf }))),
                    Ok(None) => {
                        this.done = true;
                        this.readable = None;
                        Poll::Ready(None)
                    }
                    Err(e) => this.failed(e),
                };
            }
            let fut = this.readable.get_or_insert_with(|| Box::pin(afd.readable()));
            match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => {
                    this.readable = None;
                    return Poll::Ready(Some(Err(io_err("receive", e))));
                }
                Poll::Ready(Ok(mut guard)) => {
                    this.readable = None;
                    match ep.refill_into_vec(&mut buf) {
                        Ok(Some(channel)) => return Poll::Ready(Some(Ok(Message { channel, data: buf }))),
                        // Empty (another receiver was faster, or a stale
                        // wake-up): wait for the next edge.
                        Ok(None) => guard.clear_ready(),
                        Err(e) => return this.failed(e),
                    }
                }
            }
        }
    }
}

impl FusedStream for Messages<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for Messages<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.token {
            self.ep.lock_hub().shutdown_watch.remove(t);
        }
    }
}

/// The stream of [`AsyncEndpoint::events`].
pub struct Events<'a> {
    ep: &'a Endpoint,
    token: Option<u64>,
    readable: Option<Readable<'a>>,
    done: bool,
}

impl Events<'_> {
    /// The next event; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Result<Event, QuicMessageError>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for Events<'_> {
    type Item = Result<Event, QuicMessageError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let token = &mut this.token;
        let r = poll_hub(this.ep, cx, &mut this.readable, |hub, w| {
            if let Some(ev) = hub.pop() {
                return Some(Some(ev));
            }
            if hub.shutdown_done.is_some() || hub.ended {
                return Some(None);
            }
            let t = *token.get_or_insert_with(|| hub.token());
            hub.user.register(t, w);
            None
        });
        match r {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(ev))) => {
                if matches!(ev, Event::ShutdownFinished { .. }) {
                    this.done = true;
                }
                Poll::Ready(Some(Ok(ev)))
            }
            Poll::Ready(Ok(None)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) if matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl FusedStream for Events<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.token {
            self.ep.lock_hub().user.remove(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futures_and_streams_are_send() {
        fn send<T: Send>(_: &T) {}
        fn check(ep: &AsyncEndpoint, team: &GraphId) {
            send(&ep.send("127.0.0.1:1", team, "l", b"m"));
            send(&ep.send_sync("127.0.0.1:1", 1, b"m"));
            send(&ep.close("127.0.0.1:1"));
            send(&ep.shutdown());
            send(&ep.messages());
            send(&ep.events());
        }
        let _ = check;
        fn sync<T: Send + Sync>() {}
        sync::<AsyncEndpoint>();
    }
}
