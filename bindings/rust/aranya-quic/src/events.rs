//! Events ([`Event`]) and the endpoint's event dispatcher.
//!
//! The library hands each event to one taker. Async close and shutdown
//! futures need the events that carry their ids, and the user wants every
//! event too, so an endpoint never lets anyone take events straight from
//! the library: whoever wants one (a future, a stream, `next_event`) takes
//! all that are waiting into the dispatcher ([`Hub`]), which completes the
//! waiting close/shutdown futures by id and queues every event for the
//! user, bounded.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::task::Waker;

use aranya_quic_sys as sys;

use crate::error::{ErrorKind, QuicMessageError};
use crate::label::{Label, LabelCache};
use crate::types::{c_array_str, channel_kind, channel_label, parse_addr, ChannelKind, GraphId};

/// Something that happened that no call's result reports
/// (`aranya_quic_next_event`): a connection coming or going, a message a
/// non-blocking send accepted that could not be sent, a non-blocking close
/// or shutdown finishing, a refused handshake.
///
/// Taken with [`Endpoint::next_event`](crate::Endpoint::next_event) or,
/// with the `tokio` feature, the stream of
/// `AsyncEndpoint::events`.
/// New variants may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A connection to a peer is up (dialed or accepted, handshake done).
    /// Reported once per peer address while it has a connection.
    PeerConnected {
        /// The peer's IP address and port.
        addr: SocketAddr,
        /// SHA-256 of the peer's DER leaf certificate.
        peer_id: [u8; sys::ARANYA_QUIC_PEER_ID_LEN],
    },
    /// The last connection to a peer address ended.
    PeerDisconnected {
        addr: SocketAddr,
        peer_id: [u8; sys::ARANYA_QUIC_PEER_ID_LEN],
        /// Why, in words.
        reason: String,
        /// `None` for a graceful close by either side; else why (usually
        /// [`ErrorKind::Connection`]: a lost connection or an idle timeout).
        error: Option<QuicMessageError>,
        /// Accepted messages to that peer the library gave up on while
        /// connected (also counted in
        /// [`Stats::messages_unconfirmed`](crate::Stats::messages_unconfirmed)).
        unconfirmed: u64,
    },
    /// A message a non-blocking send accepted (`id`) could not be handed
    /// to the peer's connection; it was not sent.
    SendFailed {
        /// The id the send returned.
        id: u64,
        /// The address as given to the send (a host name stays a name).
        addr: String,
        /// Where the message was going.
        channel: EventChannel,
        /// Why: the error a blocking send would have returned
        /// (`Connection`, `Timeout`, `Resolve`, `Tls`, `TooLarge`,
        /// `Closed`, ...), with the library's reason as its message.
        error: QuicMessageError,
    },
    /// A close started by
    /// [`Endpoint::close_nowait`](crate::Endpoint::close_nowait) (`id`)
    /// finished.
    CloseFinished {
        id: u64,
        /// The address as given to the close.
        addr: String,
        /// `Ok`: the peer confirmed every accepted message (or there was no
        /// connection). Else usually [`ErrorKind::Unconfirmed`].
        result: Result<(), QuicMessageError>,
        /// Accepted messages the peer did not confirm.
        unconfirmed: u64,
    },
    /// A handshake was refused: we rejected the peer's certificate, or the
    /// peer rejected ours.
    HandshakeRejected {
        addr: SocketAddr,
        /// Why, in words.
        reason: String,
    },
    /// The shutdown started by
    /// [`Endpoint::shutdown_nowait`](crate::Endpoint::shutdown_nowait)
    /// (`id`) finished. The last event of an endpoint.
    ShutdownFinished {
        id: u64,
        /// `Ok`, or [`ErrorKind::Unconfirmed`] when peers did not confirm
        /// every accepted message.
        result: Result<(), QuicMessageError>,
        unconfirmed: u64,
    },
    /// `count` events were dropped here, for lack of room: by the library
    /// (its `max_events` were waiting; the C event's `dropped_before`) or
    /// by the endpoint's own queue of events for the user (bounded by the
    /// same number). Comes in order, just before the next event kept (or
    /// last, when nothing followed yet).
    Dropped {
        count: u64,
    },
    /// An event type this version does not know (new types may be added).
    Unknown(u32),
}

/// The channel of a message in an [`Event::SendFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChannel {
    pub kind: ChannelKind,
    /// For [`ChannelKind::Channel`]: the team id; else zeroes.
    pub team_id: GraphId,
    /// For [`ChannelKind::Channel`]: the label; else empty.
    pub label: Label,
    /// For [`ChannelKind::Sync`]: the sync type; else 0.
    pub sync_type: u32,
    /// The resolved IP address, when resolution got that far.
    pub resolved: Option<SocketAddr>,
}

fn c_text(a: &[std::ffi::c_char]) -> String {
    String::from_utf8_lossy(c_array_str(a)).into_owned()
}

fn result_of(code: i32, reason: &str, unconfirmed: u64) -> Result<(), QuicMessageError> {
    if code == sys::ARANYA_QUIC_OK {
        Ok(())
    } else {
        Err(QuicMessageError::from_code(code, reason).with_unconfirmed(unconfirmed))
    }
}

impl Event {
    /// The owned form of a C event (without its `dropped_before`).
    pub(crate) fn from_c(e: &sys::aranya_quic_event, labels: &LabelCache) -> Event {
        let reason = c_text(&e.reason);
        // The library reports IP addresses for these; an address Rust
        // cannot parse would be a library bug, and is not worth losing the
        // rest of the event stream over.
        let ip = || parse_addr(c_array_str(&e.addr)).ok();
        match e.type_ {
            sys::ARANYA_QUIC_EVENT_PEER_CONNECTED => match ip() {
                Some(addr) => Event::PeerConnected { addr, peer_id: e.peer_id },
                None => Event::Unknown(e.type_),
            },
            sys::ARANYA_QUIC_EVENT_PEER_DISCONNECTED => match ip() {
                Some(addr) => Event::PeerDisconnected {
                    addr,
                    peer_id: e.peer_id,
                    error: result_of(e.error_code, &reason, e.unconfirmed).err(),
                    reason,
                    unconfirmed: e.unconfirmed,
                },
                None => Event::Unknown(e.type_),
            },
            sys::ARANYA_QUIC_EVENT_SEND_FAILED => Event::SendFailed {
                id: e.id,
                addr: c_text(&e.addr),
                channel: EventChannel {
                    kind: channel_kind(e.channel.kind),
                    team_id: GraphId(e.channel.team_id),
                    label: labels.get(channel_label(&e.channel)),
                    sync_type: e.channel.sync_type,
                    resolved: parse_addr(c_array_str(&e.channel.addr)).ok(),
                },
                // A failure event always has a failure code; should it not,
                // say so rather than report success.
                error: QuicMessageError::from_code(
                    if e.error_code == sys::ARANYA_QUIC_OK { sys::ARANYA_QUIC_ERR_INTERNAL } else { e.error_code },
                    reason,
                ),
            },
            sys::ARANYA_QUIC_EVENT_CLOSE_FINISHED => Event::CloseFinished {
                id: e.id,
                addr: c_text(&e.addr),
                result: result_of(e.error_code, &reason, e.unconfirmed),
                unconfirmed: e.unconfirmed,
            },
            sys::ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED => match ip() {
                Some(addr) => Event::HandshakeRejected { addr, reason },
                None => Event::Unknown(e.type_),
            },
            sys::ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED => Event::ShutdownFinished {
                id: e.id,
                result: result_of(e.error_code, &reason, e.unconfirmed),
                unconfirmed: e.unconfirmed,
            },
            t => Event::Unknown(t),
        }
    }
}

/// Wakers of the tasks waiting on something, each under the token of the
/// future or stream that registered it (so that one dropped removes its
/// own, and repeated polls replace rather than pile up).
#[derive(Default)]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct WakerSet {
    map: HashMap<u64, Waker>,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl WakerSet {
    pub(crate) fn register(&mut self, token: u64, w: &Waker) {
        match self.map.get_mut(&token) {
            Some(old) if old.will_wake(w) => {}
            Some(old) => old.clone_from(w),
            None => {
                self.map.insert(token, w.clone());
            }
        }
    }

    pub(crate) fn remove(&mut self, token: u64) {
        self.map.remove(&token);
    }

    /// Wakes every task; each registers again when it polls and still
    /// has to wait.
    fn wake_all(&mut self) {
        for (_, w) in self.map.drain() {
            w.wake();
        }
    }
}

/// What a close future waits for.
pub(crate) struct CloseSlot {
    pub(crate) outcome: Option<Result<(), QuicMessageError>>,
    pub(crate) waker: Option<Waker>,
}

/// The dispatcher, behind the endpoint's mutex. Every library call that
/// takes events (`aranya_quic_next_event`) is made under that mutex, so
/// events enter the queue in the order the library reports them, and a
/// close future that registers its id under the mutex right after
/// `aranya_quic_close_nowait` cannot miss its event.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct Hub {
    /// Events for the user (`next_event`, event streams).
    queue: VecDeque<Event>,
    cap: usize,
    /// Events lost (by the library or by `queue`'s bound) not reported yet.
    gap: u64,
    /// Waiting close futures by id.
    pub(crate) closes: HashMap<u64, CloseSlot>,
    /// The id of the shutdown, once started.
    pub(crate) shutdown_id: Option<u64>,
    /// The outcome of the shutdown, once its event was seen.
    pub(crate) shutdown_done: Option<Result<(), QuicMessageError>>,
    /// The handle is gone (freed): the library has no more events.
    pub(crate) ended: bool,
    /// Event streams waiting for an event.
    pub(crate) user: WakerSet,
    /// Shutdown futures and message streams, woken when a shutdown starts
    /// or finishes, or the handle is gone.
    pub(crate) shutdown_watch: WakerSet,
    next_token: u64,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl Hub {
    pub(crate) fn new(cap: usize) -> Hub {
        Hub {
            queue: VecDeque::new(),
            cap: cap.max(1),
            gap: 0,
            closes: HashMap::new(),
            shutdown_id: None,
            shutdown_done: None,
            ended: false,
            user: WakerSet::default(),
            shutdown_watch: WakerSet::default(),
            next_token: 1,
        }
    }

    /// A token for a future or stream registering wakers.
    pub(crate) fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Takes one event from the library. `Ok(false)`: none was waiting.
    pub(crate) fn pull_one(&mut self, handle: sys::aranya_quic_t, labels: &LabelCache) -> Result<bool, QuicMessageError> {
        if self.ended {
            return Err(QuicMessageError::new(ErrorKind::InvalidHandle, "the endpoint was freed"));
        }
        let mut raw = sys::aranya_quic_event::default();
        // SAFETY: raw is a valid event struct with struct_size set.
        let rc = unsafe { sys::aranya_quic_next_event(handle, &mut raw) };
        match rc {
            sys::ARANYA_QUIC_OK => {
                self.intake(Event::from_c(&raw, labels), raw.dropped_before);
                Ok(true)
            }
            sys::ARANYA_QUIC_ERR_WOULD_BLOCK => Ok(false),
            sys::ARANYA_QUIC_ERR_INVALID_HANDLE | sys::ARANYA_QUIC_ERR_CLOSED => {
                let e = QuicMessageError::from_last(rc);
                self.end();
                Err(e)
            }
            _ => Err(QuicMessageError::from_last(rc)),
        }
    }

    /// Takes every event waiting in the library. A handle that is gone
    /// ends the hub without an error: waiters see `ended`.
    pub(crate) fn drain(&mut self, handle: sys::aranya_quic_t, labels: &LabelCache) -> Result<(), QuicMessageError> {
        loop {
            match self.pull_one(handle, labels) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(_) if self.ended => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Dispatches one event: completes the future waiting for it, and
    /// queues it for the user.
    pub(crate) fn intake(&mut self, ev: Event, dropped_before: u64) {
        match &ev {
            Event::CloseFinished { id, result, .. } => {
                if let Some(slot) = self.closes.get_mut(id) {
                    slot.outcome = Some(result.clone());
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
            }
            Event::ShutdownFinished { id, result, .. } => {
                self.shutdown_id.get_or_insert(*id);
                self.shutdown_done = Some(result.clone());
                // The last event: a close still waiting will never finish.
                self.fail_closes();
                self.shutdown_watch.wake_all();
            }
            _ => {}
        }
        self.gap += dropped_before;
        // Like the library, the outcomes of calls are kept beyond the
        // bound: the stream's end is ShutdownFinished, and there is one
        // CloseFinished per close.
        let answers_call = matches!(ev, Event::CloseFinished { .. } | Event::ShutdownFinished { .. });
        if self.queue.len() >= self.cap && !answers_call {
            self.gap += 1;
        } else {
            if self.gap > 0 {
                self.queue.push_back(Event::Dropped { count: std::mem::take(&mut self.gap) });
            }
            self.queue.push_back(ev);
        }
        self.user.wake_all();
    }

    /// The oldest event for the user, or the report of a gap at the end.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        if let Some(ev) = self.queue.pop_front() {
            return Some(ev);
        }
        if self.gap > 0 {
            return Some(Event::Dropped { count: std::mem::take(&mut self.gap) });
        }
        None
    }

    /// The shutdown was started (by any caller) and has this id.
    pub(crate) fn shutdown_started(&mut self, id: u64) {
        if self.shutdown_id.is_none() {
            self.shutdown_id = Some(id);
            self.shutdown_watch.wake_all();
        }
    }

    /// The handle is gone: wake everyone so that they see it.
    pub(crate) fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.fail_closes();
            self.user.wake_all();
            self.shutdown_watch.wake_all();
        }
    }

    fn fail_closes(&mut self) {
        for slot in self.closes.values_mut() {
            if slot.outcome.is_none() {
                slot.outcome = Some(Err(QuicMessageError::new(
                    ErrorKind::Closed,
                    "the endpoint closed before the close finished",
                )));
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_char;

    fn raw(type_: u32, id: u64, addr: &str, code: i32) -> sys::aranya_quic_event {
        let mut e = sys::aranya_quic_event { type_, id, error_code: code, ..Default::default() };
        for (d, s) in e.addr.iter_mut().zip(addr.bytes()) {
            *d = s as c_char;
        }
        for (d, s) in e.reason.iter_mut().zip(b"why".iter()) {
            *d = *s as c_char;
        }
        e
    }

    #[test]
    fn events_from_c() {
        let labels = LabelCache::default();
        let mut e = raw(sys::ARANYA_QUIC_EVENT_PEER_CONNECTED, 0, "127.0.0.1:5", 0);
        e.peer_id = [3; 32];
        assert_eq!(Event::from_c(&e, &labels), Event::PeerConnected { addr: "127.0.0.1:5".parse().unwrap(), peer_id: [3; 32] });

        let mut e = raw(sys::ARANYA_QUIC_EVENT_SEND_FAILED, 9, "peer.example:5", sys::ARANYA_QUIC_ERR_RESOLVE);
        e.channel.kind = sys::ARANYA_QUIC_KIND_CHANNEL;
        e.channel.label[0] = b'c' as c_char;
        e.channel.label_len = 1;
        e.channel.team_id = [4; 32];
        match Event::from_c(&e, &labels) {
            Event::SendFailed { id, addr, channel, error } => {
                assert_eq!((id, addr.as_str()), (9, "peer.example:5"));
                assert_eq!((channel.kind, channel.label.as_str(), channel.team_id), (ChannelKind::Channel, "c", GraphId([4; 32])));
                assert_eq!(channel.resolved, None);
                assert_eq!((error.kind(), error.message()), (ErrorKind::Resolve, "why"));
            }
            other => panic!("{other:?}"),
        }

        let mut e = raw(sys::ARANYA_QUIC_EVENT_CLOSE_FINISHED, 4, "1.2.3.4:5", sys::ARANYA_QUIC_ERR_UNCONFIRMED);
        e.unconfirmed = 2;
        match Event::from_c(&e, &labels) {
            Event::CloseFinished { id: 4, result: Err(err), unconfirmed: 2, .. } => {
                assert_eq!((err.kind(), err.unconfirmed()), (ErrorKind::Unconfirmed, Some(2)));
            }
            other => panic!("{other:?}"),
        }
        let e = raw(sys::ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "[::1]:5", 0);
        assert!(matches!(Event::from_c(&e, &labels), Event::PeerDisconnected { error: None, .. }));
        let e = raw(sys::ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, 7, "", 0);
        assert_eq!(Event::from_c(&e, &labels), Event::ShutdownFinished { id: 7, result: Ok(()), unconfirmed: 0 });
        assert_eq!(Event::from_c(&raw(77, 0, "", 0), &labels), Event::Unknown(77));
    }

    #[test]
    fn the_queue_is_bounded_and_reports_gaps_in_order() {
        let mut hub = Hub::new(2);
        let up = |n: u16| Event::PeerConnected { addr: ([127, 0, 0, 1], n).into(), peer_id: [0; 32] };
        hub.intake(up(1), 0);
        hub.intake(up(2), 3); // the library dropped 3 before this one
        hub.intake(up(3), 0); // full: dropped here
        assert_eq!(hub.pop(), Some(up(1)));
        assert_eq!(hub.pop(), Some(Event::Dropped { count: 3 }));
        assert_eq!(hub.pop(), Some(up(2)));
        assert_eq!(hub.pop(), Some(Event::Dropped { count: 1 }), "the lost one, reported at the end");
        assert_eq!(hub.pop(), None);
    }

    #[test]
    fn close_slots_complete_by_id_and_shutdown_fails_the_rest() {
        let mut hub = Hub::new(8);
        hub.closes.insert(1, CloseSlot { outcome: None, waker: None });
        hub.closes.insert(2, CloseSlot { outcome: None, waker: None });
        hub.intake(Event::CloseFinished { id: 1, addr: "a:1".into(), result: Ok(()), unconfirmed: 0 }, 0);
        assert_eq!(hub.closes[&1].outcome, Some(Ok(())));
        assert!(hub.closes[&2].outcome.is_none());
        hub.intake(Event::ShutdownFinished { id: 3, result: Ok(()), unconfirmed: 0 }, 0);
        assert_eq!(hub.closes[&2].outcome.as_ref().unwrap().as_ref().unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!((hub.shutdown_id, hub.shutdown_done.clone()), (Some(3), Some(Ok(()))));
        // Both events are queued for the user as well.
        assert!(matches!(hub.pop(), Some(Event::CloseFinished { id: 1, .. })));
        assert!(matches!(hub.pop(), Some(Event::ShutdownFinished { id: 3, .. })));
    }
}
