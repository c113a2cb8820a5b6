//! Plain data types: team and peer ids, channels, stats.

use std::ffi::{c_char, CStr};
use std::fmt;
use std::net::SocketAddr;

use aranya_quic_sys as sys;

use crate::error::{ErrorKind, QuicMessageError};
use crate::label::{Label, LabelCache};

/// An Aranya team id (graph id): 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GraphId(pub [u8; sys::ARANYA_QUIC_TEAM_ID_LEN]);

impl GraphId {
    pub const fn new(bytes: [u8; sys::ARANYA_QUIC_TEAM_ID_LEN]) -> Self {
        GraphId(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; sys::ARANYA_QUIC_TEAM_ID_LEN] {
        &self.0
    }
}

impl From<[u8; sys::ARANYA_QUIC_TEAM_ID_LEN]> for GraphId {
    fn from(b: [u8; sys::ARANYA_QUIC_TEAM_ID_LEN]) -> Self {
        GraphId(b)
    }
}

impl AsRef<[u8]> for GraphId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for GraphId {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for GraphId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GraphId({self})")
    }
}

/// A peer id: the SHA-256 of a peer's DER leaf certificate, 32 bytes. The
/// value received messages carry in [`QuicChannel::peer_id`], that pins
/// ([`Config::pinned_peers`](crate::Config::pinned_peers),
/// [`Endpoint::set_trust`](crate::Endpoint::set_trust)) list, and that
/// [`Endpoint::team_allow`](crate::Endpoint::team_allow) takes. Compute it
/// from a certificate with [`peer_id_from_pem`](crate::peer_id_from_pem).
///
/// Compares equal to the plain `[u8; 32]` the older fields
/// ([`QuicChannel::peer_id`], events) hold.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct PeerId(pub [u8; sys::ARANYA_QUIC_PEER_ID_LEN]);

impl PeerId {
    /// The peer id with these 32 bytes.
    pub const fn new(bytes: [u8; sys::ARANYA_QUIC_PEER_ID_LEN]) -> Self {
        PeerId(bytes)
    }
    /// Its 32 bytes.
    pub fn as_bytes(&self) -> &[u8; sys::ARANYA_QUIC_PEER_ID_LEN] {
        &self.0
    }
}

impl From<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]> for PeerId {
    fn from(b: [u8; sys::ARANYA_QUIC_PEER_ID_LEN]) -> Self {
        PeerId(b)
    }
}

impl From<PeerId> for [u8; sys::ARANYA_QUIC_PEER_ID_LEN] {
    fn from(p: PeerId) -> Self {
        p.0
    }
}

impl AsRef<[u8]> for PeerId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]> for PeerId {
    fn eq(&self, other: &[u8; sys::ARANYA_QUIC_PEER_ID_LEN]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<PeerId> for [u8; sys::ARANYA_QUIC_PEER_ID_LEN] {
    fn eq(&self, other: &PeerId) -> bool {
        *self == other.0
    }
}

impl fmt::Display for PeerId {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// What kind of message was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelKind {
    /// An application message on a (peer, team id, label) channel.
    Channel,
    /// An Aranya sync message; see [`QuicChannel::sync_type`].
    Sync,
    /// A kind this version does not know (the message is still delivered).
    Other(u32),
}

/// Where a received message came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuicChannel {
    /// The peer's listening address: pass it to `send` to reply.
    pub addr: SocketAddr,
    /// For [`ChannelKind::Channel`]: the team id; else zeroes.
    pub team_id: GraphId,
    /// For [`ChannelKind::Channel`]: the label; else empty. Shared with
    /// every other message on that label the endpoint received recently, so
    /// receiving it allocates nothing.
    pub label: Label,
    pub kind: ChannelKind,
    /// For [`ChannelKind::Sync`]: the sync type; else 0.
    pub sync_type: u32,
    /// SHA-256 of the peer's DER leaf certificate: who sent the message.
    pub peer_id: [u8; sys::ARANYA_QUIC_PEER_ID_LEN],
}

/// The NUL-terminated string at the start of a C char array (the whole array
/// if it has no NUL).
pub(crate) fn c_array_str(a: &[c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let b = unsafe { std::slice::from_raw_parts(a.as_ptr().cast::<u8>(), a.len()) };
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

pub(crate) fn parse_addr(b: &[u8]) -> Result<SocketAddr, QuicMessageError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            QuicMessageError::new(
                ErrorKind::Internal,
                format!("the library returned an address Rust cannot parse: {:?}", String::from_utf8_lossy(b)),
            )
        })
}

/// The `label_len` bytes of a C channel's label (NUL bytes included).
pub(crate) fn channel_label(c: &sys::aranya_quic_channel) -> &[u8] {
    let len = c.label_len.min(c.label.len());
    // SAFETY: c_char and u8 have the same size and alignment.
    unsafe { std::slice::from_raw_parts(c.label.as_ptr().cast::<u8>(), len) }
}

pub(crate) fn channel_kind(kind: u32) -> ChannelKind {
    match kind {
        sys::ARANYA_QUIC_KIND_CHANNEL => ChannelKind::Channel,
        sys::ARANYA_QUIC_KIND_SYNC => ChannelKind::Sync,
        k => ChannelKind::Other(k),
    }
}

impl QuicChannel {
    /// The owned form of a C channel. Allocates nothing when `labels`
    /// already holds its label (the address is parsed, not kept as a
    /// string); without a cache, a non-empty label is allocated.
    pub(crate) fn from_c(c: &sys::aranya_quic_channel, labels: Option<&LabelCache>) -> Result<Self, QuicMessageError> {
        let addr = parse_addr(c_array_str(&c.addr))?;
        let label = match labels {
            Some(cache) => cache.get(channel_label(c)),
            None => Label::from_bytes_lossy(channel_label(c)),
        };
        Ok(QuicChannel {
            addr,
            team_id: GraphId(c.team_id),
            label,
            kind: channel_kind(c.kind),
            sync_type: c.sync_type,
            peer_id: c.peer_id,
        })
    }
}

/// Counters since the endpoint started, and current gauges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Gauge: connections in the map.
    pub open_connections: u64,
    /// Outgoing connections attempted.
    pub dials: u64,
    /// Incoming connections that completed the handshake.
    pub accepts: u64,
    /// Connections evicted because the map was full.
    pub evictions: u64,
    /// Dials or accepts that failed TLS or the confirmation.
    pub handshake_failures: u64,
    /// Gauge: channel streams open, both directions.
    pub open_streams: u64,
    pub messages_sent: u64,
    /// Payload bytes.
    pub bytes_sent: u64,
    /// Messages put on the receive queue.
    pub messages_received: u64,
    /// Payload bytes.
    pub bytes_received: u64,
    /// Gauge: messages queued.
    pub queue_messages: u64,
    /// Gauge: payload bytes queued.
    pub queue_bytes: u64,
    /// Incoming streams reset for protocol errors.
    pub streams_reset: u64,
    /// Connections that ended without a graceful close.
    pub connections_lost: u64,
    /// Congestion control algorithm new connections use, e.g. "reno".
    pub congestion_control: String,
    /// Messages `send` accepted that the library gave up on without the
    /// peer's confirmation: a close, free or eviction whose drain timed out,
    /// a connection that died, a stream the peer reset.
    pub messages_unconfirmed: u64,
    /// Gauge: messages the non-blocking sends queued that are not yet
    /// handed to a stream.
    pub outbound_messages: u64,
    /// Gauge: their payload bytes.
    pub outbound_bytes: u64,
    /// Queued messages given up before they were sent (one
    /// [`SendFailed`](crate::Event::SendFailed) event each).
    pub sends_failed: u64,
    /// Events the library dropped because `max_events` were waiting.
    pub events_dropped: u64,
    /// Connections closed because [`Endpoint::set_trust`](crate::Endpoint::set_trust)
    /// no longer trusts their peer.
    pub connections_revoked: u64,
    /// Received messages dropped, not delivered, because their peer (or
    /// its team) was revoked before the application took them.
    pub messages_revoked: u64,
    /// Incoming streams refused by team authorization
    /// ([`Config::team_authorization`](crate::Config::team_authorization)).
    pub streams_refused: u64,
}

impl From<&sys::aranya_quic_stats> for Stats {
    fn from(s: &sys::aranya_quic_stats) -> Self {
        Stats {
            open_connections: s.open_connections,
            dials: s.dials,
            accepts: s.accepts,
            evictions: s.evictions,
            handshake_failures: s.handshake_failures,
            open_streams: s.open_streams,
            messages_sent: s.messages_sent,
            bytes_sent: s.bytes_sent,
            messages_received: s.messages_received,
            bytes_received: s.bytes_received,
            queue_messages: s.queue_messages,
            queue_bytes: s.queue_bytes,
            streams_reset: s.streams_reset,
            connections_lost: s.connections_lost,
            congestion_control: String::from_utf8_lossy(c_array_str(&s.congestion_control)).into_owned(),
            messages_unconfirmed: s.messages_unconfirmed,
            outbound_messages: s.outbound_messages,
            outbound_bytes: s.outbound_bytes,
            sends_failed: s.sends_failed,
            events_dropped: s.events_dropped,
            connections_revoked: s.connections_revoked,
            messages_revoked: s.messages_revoked,
            streams_refused: s.streams_refused,
        }
    }
}

/// The library's version, e.g. "0.1.0".
pub fn version() -> &'static str {
    // SAFETY: a static NUL-terminated string, never NULL.
    unsafe { CStr::from_ptr(sys::aranya_quic_version()) }.to_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(addr: &str, kind: u32, label: &[u8]) -> sys::aranya_quic_channel {
        let mut c = sys::aranya_quic_channel::default();
        for (d, s) in c.addr.iter_mut().zip(addr.bytes()) {
            *d = s as c_char;
        }
        for (d, s) in c.label.iter_mut().zip(label.iter()) {
            *d = *s as c_char;
        }
        c.label_len = label.len();
        c.kind = kind;
        c.team_id = [9; 32];
        c.peer_id = [8; 32];
        c.sync_type = 5;
        c
    }

    #[test]
    fn channel_from_c() {
        let cache = LabelCache::default();
        let q = QuicChannel::from_c(&chan("[::1]:4433", sys::ARANYA_QUIC_KIND_CHANNEL, b"a\0b"), Some(&cache)).unwrap();
        assert_eq!(q.addr, "[::1]:4433".parse().unwrap());
        assert_eq!(q.label, "a\0b"); // label_len wins over the NUL
        assert_eq!(q.kind, ChannelKind::Channel);
        assert_eq!(q.team_id, GraphId([9; 32]));
        assert_eq!(q.peer_id, [8; 32]);
        assert_eq!(q.sync_type, 5);
        let again = QuicChannel::from_c(&chan("[::1]:4433", sys::ARANYA_QUIC_KIND_CHANNEL, b"a\0b"), None).unwrap();
        assert_eq!(again, q, "with or without a cache, the same channel");
        let q = QuicChannel::from_c(&chan("1.2.3.4:5", 77, b""), Some(&cache)).unwrap();
        assert_eq!(q.kind, ChannelKind::Other(77));
        assert!(q.label.is_empty());
        let e = QuicChannel::from_c(&chan("nonsense", 1, b""), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
    }

    #[test]
    fn graph_id_hex() {
        let mut b = [0u8; 32];
        b[0] = 0xab;
        b[31] = 0x01;
        let s = GraphId(b).to_string();
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("ab00") && s.ends_with("0001"));
    }

    #[test]
    fn peer_id_hex_and_raw_comparisons() {
        let mut b = [0u8; 32];
        b[0] = 0x0f;
        let p = PeerId::from(b);
        assert!(p.to_string().starts_with("0f00") && p.to_string().len() == 64);
        assert_eq!(format!("{p:?}"), format!("PeerId({p})"));
        assert!(p == b, "PeerId == [u8; 32]");
        assert!(b == p, "[u8; 32] == PeerId");
        assert_eq!(<[u8; 32]>::from(p), b);
        assert_eq!(p.as_ref(), &b[..]);
        // repr(transparent): a slice of ids is the concatenated bytes the
        // C API takes for pins.
        assert_eq!(std::mem::size_of::<[PeerId; 3]>(), 96);
        assert_eq!(std::mem::align_of::<PeerId>(), 1);
    }

    #[test]
    fn stats_string() {
        let mut s = sys::aranya_quic_stats::default();
        for (d, c) in s.congestion_control.iter_mut().zip(b"reno\0") {
            *d = *c as c_char;
        }
        s.dials = 3;
        s.messages_unconfirmed = 4;
        s.outbound_messages = 5;
        s.outbound_bytes = 6;
        s.sends_failed = 7;
        s.events_dropped = 8;
        s.connections_revoked = 9;
        s.messages_revoked = 10;
        s.streams_refused = 11;
        let r = Stats::from(&s);
        assert_eq!((r.connections_revoked, r.messages_revoked, r.streams_refused), (9, 10, 11));
        assert_eq!((r.outbound_messages, r.outbound_bytes, r.sends_failed, r.events_dropped), (5, 6, 7, 8));
        assert_eq!(r.congestion_control, "reno");
        assert_eq!(r.dials, 3);
        assert_eq!(r.messages_unconfirmed, 4);
    }
}
