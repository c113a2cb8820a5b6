//! Trust at runtime, team authorization and the connection list: changing
//! the trusted CAs, pins and this endpoint's own certificate without a
//! restart, allowing peers per team, and looking at the connections.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aranya_quic_sys as sys;

use crate::endpoint::Endpoint;
use crate::error::{check, ErrorKind, QuicMessageError};
use crate::types::{c_array_str, parse_addr, GraphId, PeerId};

/// Connection records asked for by the first `aranya_quic_connections`
/// call; most endpoints have fewer connections than this.
const FIRST_CAPACITY: usize = 16;

/// Room for revoked peers beyond the connections counted just before
/// `aranya_quic_set_trust`: the library also revokes the peers it admitted
/// recently (at most `ARANYA_QUIC_KNOWN_PEERS_MAX`) that have no connection any more, and checks
/// connections set up between the count and the revocation, and those the
/// count does not list yet (still being set up).
const REVOKED_MARGIN: usize = sys::ARANYA_QUIC_KNOWN_PEERS_MAX + 64;

/// The largest `revoked_peer_ids_cap` the library takes (its limit on id
/// counts; more is refused as an invalid argument).
const REVOKED_CAP_MAX: usize = 1 << 20;

/// For a message an async `recv` took, once `set_trust` revoked more peers
/// than it had room to name: whether its `peer` may be one of them. A
/// revoked peer is named, or (when there are pins) not pinned, or has no
/// connection any more: the call closed its connections, and its new
/// handshakes fail. `connected` is `None` when the connections could not
/// be listed; then every peer may have been revoked.
fn maybe_revoked(
    peer: &[u8; sys::ARANYA_QUIC_PEER_ID_LEN],
    named: &HashSet<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]>,
    pins: &[PeerId],
    connected: Option<&HashSet<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]>>,
) -> bool {
    named.contains(peer) || (!pins.is_empty() && !pins.iter().any(|p| p == peer)) || !connected.is_some_and(|c| c.contains(peer))
}

/// One connection of an endpoint, as [`Endpoint::connections`] lists it
/// (`aranya_quic_connection_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's IP address and port.
    pub addr: SocketAddr,
    /// SHA-256 of the peer's DER leaf certificate.
    pub peer_id: PeerId,
    /// `true` if this endpoint dialed the connection, `false` if it
    /// accepted it.
    pub dialed: bool,
    /// `true` while the connection closes gracefully (it takes no new
    /// streams).
    pub draining: bool,
    /// When the connection was set up (millisecond precision).
    pub connected_at: SystemTime,
    /// How long it has been up (millisecond precision).
    pub connected_for: Duration,
    /// Smoothed round-trip time (RFC 9002); zero before the first sample.
    pub smoothed_rtt: Duration,
    /// Smallest round-trip time seen; zero before the first sample.
    pub min_rtt: Duration,
    /// The latest round-trip time sample; zero before the first one.
    pub latest_rtt: Duration,
    /// The congestion window, in bytes of QUIC packets.
    pub congestion_window: u64,
    /// Bytes of QUIC packets in flight; `None` when the connection's
    /// congestion controller does not report it (quic-go's NewReno).
    pub bytes_in_flight: Option<u64>,
    /// QUIC packets sent on the connection.
    pub packets_sent: u64,
    /// QUIC packets received on the connection.
    pub packets_received: u64,
    /// QUIC packets declared lost on the connection.
    pub packets_lost: u64,
    /// Messages sent on this connection.
    pub messages_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Messages received on this connection.
    pub messages_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// The congestion control the connection runs, `"reno"` or `"bbr2"`:
    /// what was built for it, not only what was configured.
    pub congestion_control: String,
}

impl ConnectionInfo {
    fn from_c(c: &sys::aranya_quic_connection_info) -> Result<Self, QuicMessageError> {
        Ok(ConnectionInfo {
            addr: parse_addr(c_array_str(&c.addr))?,
            peer_id: PeerId(c.peer_id),
            dialed: c.dialed != 0,
            draining: c.draining != 0,
            connected_at: UNIX_EPOCH + Duration::from_millis(c.connected_unix_ms),
            connected_for: Duration::from_millis(c.connected_ms),
            smoothed_rtt: Duration::from_micros(c.smoothed_rtt_us),
            min_rtt: Duration::from_micros(c.min_rtt_us),
            latest_rtt: Duration::from_micros(c.latest_rtt_us),
            congestion_window: c.congestion_window,
            bytes_in_flight: (c.bytes_in_flight != sys::ARANYA_QUIC_UNKNOWN).then_some(c.bytes_in_flight),
            packets_sent: c.packets_sent,
            packets_received: c.packets_received,
            packets_lost: c.packets_lost,
            messages_sent: c.messages_sent,
            bytes_sent: c.bytes_sent,
            messages_received: c.messages_received,
            bytes_received: c.bytes_received,
            congestion_control: String::from_utf8_lossy(c_array_str(&c.congestion_control)).into_owned(),
        })
    }
}

/// (pointer, length) of a buffer, NULL for an empty one (which the library
/// then refuses with its own message).
fn ptr_len(b: &[u8]) -> (*const u8, usize) {
    if b.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (b.as_ptr(), b.len())
    }
}

/// The peer id of a certificate (`aranya_quic_peer_id_from_pem`): the
/// SHA-256 of the DER of the first certificate in `cert_pem` (a chain's
/// leaf comes first). It is the value peers see in received messages'
/// `peer_id`, and the one pins ([`Endpoint::set_trust`],
/// [`Config::pinned_peers`](crate::Config::pinned_peers)),
/// [`Endpoint::team_allow`] and [`Endpoint::team_revoke`] take.
///
/// Needs no endpoint; never blocks; callable from any thread.
///
/// # Errors
///
/// [`ErrorKind::InvalidArgument`]: `cert_pem` is empty, larger than 16 MiB,
/// or has no certificate block that parses. [`ErrorKind::Internal`]: a bug
/// in the library was caught.
pub fn peer_id_from_pem(cert_pem: &[u8]) -> Result<PeerId, QuicMessageError> {
    let (p, l) = ptr_len(cert_pem);
    let mut out = [0u8; sys::ARANYA_QUIC_PEER_ID_LEN];
    // SAFETY: p is valid for l bytes (or NULL with 0) and out writable for
    // the 32 bytes the library writes, during the call.
    check(unsafe { sys::aranya_quic_peer_id_from_pem(p, l, out.as_mut_ptr()) })?;
    Ok(PeerId(out))
}

impl Endpoint {
    /// Replaces the trusted CA certificates and the pins at once
    /// (`aranya_quic_set_trust`) and returns the peers it revoked: the
    /// peers the endpoint knows whose certificate no longer verifies, each
    /// once, in the library's order; empty when all of them are still
    /// trusted.
    ///
    /// `ca_pem` holds at least one CA certificate (PEM, every block must
    /// parse, at most 16 MiB). `pins` are the peer ids (SHA-256 of the DER
    /// leaf certificate, see [`peer_id_from_pem`]) of the only peers
    /// accepted in addition to the CA check; empty removes pinning.
    ///
    /// New handshakes use the new set from the moment the call starts.
    /// Every connection whose peer's certificate no longer verifies (chain
    /// to a new CA, within its validity, pinned if `pins` is not empty) is
    /// closed before the call returns; connections whose peer still
    /// verifies are not touched. The peers the endpoint knows are those
    /// with a connection and the last
    /// [`ARANYA_QUIC_KNOWN_PEERS_MAX`](crate::sys::ARANYA_QUIC_KNOWN_PEERS_MAX)
    /// distinct peers it admitted (and did not revoke since), also those
    /// whose connections are gone: such a peer is revoked and named too,
    /// and its messages still queued are dropped. A peer the endpoint does
    /// not know any more is not in the list; it is simply refused when it
    /// next connects. When the call returns, for each revoked peer:
    /// - no message of it is received any more: those queued and not yet
    ///   taken are dropped (counted in
    ///   [`Stats::messages_revoked`](crate::Stats::messages_revoked)), and
    ///   so are those an async `recv` had already taken from the library
    ///   but not handed out (not counted);
    /// - messages sent to it that it had not confirmed are counted in
    ///   [`Stats::messages_unconfirmed`](crate::Stats::messages_unconfirmed),
    ///   its queued non-blocking sends fail with
    ///   [`Event::SendFailed`](crate::Event::SendFailed), and a later send
    ///   to it dials again and fails with [`ErrorKind::Tls`];
    /// - its closed connections are counted in
    ///   [`Stats::connections_revoked`](crate::Stats::connections_revoked)
    ///   (a peer may have had more than one).
    ///
    /// A peer re-admitted by a later call connects again on the next send,
    /// by either side.
    ///
    /// The library names the revoked peers in a buffer the binding sizes
    /// before the call: the connections open then plus a margin for the
    /// known peers without a connection and those connecting meanwhile.
    /// Should more peers than that be revoked, the list holds only the
    /// first ones the library found (the revocation itself is complete
    /// all the same), and the messages an async `recv` had taken are then
    /// dropped for every peer that may have been revoked: those named,
    /// those not pinned, and those without a connection after the call.
    ///
    /// Blocks only while the revoked connections are closed locally (no
    /// network round trip). Callable from any thread, also from a logger
    /// that sees this call's own log records; concurrent calls are applied
    /// one at a time.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`]: `ca_pem` empty, a PEM block that
    /// does not parse, no certificate, or over 16 MiB; nothing changed.
    /// [`ErrorKind::Closed`] / [`ErrorKind::InvalidHandle`]: the endpoint
    /// is shut down. [`ErrorKind::Internal`]: a bug in the library was
    /// caught.
    pub fn set_trust(&self, ca_pem: &[u8], pins: &[PeerId]) -> Result<Vec<PeerId>, QuicMessageError> {
        // A failed count leaves only the margin; the call itself then says
        // what is wrong with the endpoint.
        let cap = self.connection_count().unwrap_or(0).saturating_add(REVOKED_MARGIN).min(REVOKED_CAP_MAX);
        let mut revoked = vec![PeerId::default(); cap];
        let mut count = 0usize;
        let (cp, cl) = ptr_len(ca_pem);
        // PeerId is repr(transparent) over [u8; 32]: the slices are the
        // concatenated ids, and their lengths the counts.
        let pp = if pins.is_empty() { std::ptr::null() } else { pins.as_ptr().cast::<u8>() };
        // No binding lock is held across the call: the library logs the
        // revocation on this thread before it returns, and a logger may
        // call the trust calls.
        // SAFETY: cp is valid for cl bytes, pp for pins.len() * 32 bytes
        // (or NULL with 0), `revoked` writable for cap * 32 bytes (never
        // empty: cap >= REVOKED_MARGIN), count writable; the library keeps
        // none of them.
        check(unsafe {
            sys::aranya_quic_set_trust(
                self.handle(),
                cp,
                cl,
                pp,
                pins.len(),
                revoked.as_mut_ptr().cast::<u8>(),
                cap,
                &mut count,
            )
        })?;
        let complete = count <= cap;
        revoked.truncate(count);
        // Listed before the lock, like any library call.
        let connected = if complete { None } else { self.peers_connected() };
        // The library has revoked them, so no message of them is taken
        // from it any more, and every one a refill took before is in the
        // buffer once the lock is ours (a refill takes and stores under
        // it): what is waiting there now is all there is to drop.
        let mut pending = self.hold_pending();
        if !pending.is_empty() {
            let named: HashSet<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]> = revoked.iter().map(|p| p.0).collect();
            if complete {
                pending.remove(|ch| named.contains(&ch.peer_id));
            } else {
                pending.remove(|ch| maybe_revoked(&ch.peer_id, &named, pins, connected.as_ref()));
            }
        }
        Ok(revoked)
    }

    /// How many connections `connections` would list, without listing
    /// them.
    fn connection_count(&self) -> Result<usize, QuicMessageError> {
        let mut count = 0usize;
        // SAFETY: no records (NULL with capacity 0); count is writable.
        let rc = unsafe {
            sys::aranya_quic_connections(
                self.handle(),
                std::ptr::null_mut(),
                0,
                std::mem::size_of::<sys::aranya_quic_connection_info>(),
                &mut count,
            )
        };
        match rc {
            sys::ARANYA_QUIC_OK | sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL => Ok(count),
            _ => Err(QuicMessageError::from_last(rc)),
        }
    }

    /// Peer ids of the current connections, for `set_trust`; `None` when
    /// they cannot be listed.
    fn peers_connected(&self) -> Option<HashSet<[u8; sys::ARANYA_QUIC_PEER_ID_LEN]>> {
        Some(self.connections().ok()?.into_iter().map(|c| c.peer_id.0).collect())
    }

    /// Replaces this endpoint's certificate chain (leaf first) and private
    /// key, both PEM, for new handshakes, those it dials and those it
    /// accepts (`aranya_quic_set_identity`): e.g. to renew a certificate
    /// without a restart. Existing connections keep working with the
    /// identity they were set up with. Peers learn the new peer id (see
    /// [`peer_id_from_pem`]) with their next connection; peers that pin
    /// must list it first. The stateless reset key stays the one the
    /// endpoint started with.
    ///
    /// Never blocks beyond parsing the PEM. Callable from any thread;
    /// concurrent calls leave one of the identities.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`]: an empty input, a PEM that does not
    /// parse, an encrypted key or one that does not match the certificate,
    /// a certificate outside its validity period, an input over 16 MiB;
    /// nothing changed. [`ErrorKind::Closed`] /
    /// [`ErrorKind::InvalidHandle`]: the endpoint is shut down.
    /// [`ErrorKind::Internal`]: a bug in the library was caught.
    pub fn set_identity(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), QuicMessageError> {
        let (cp, cl) = ptr_len(cert_pem);
        let (kp, kl) = ptr_len(key_pem);
        // SAFETY: both buffers are valid for their lengths (or NULL with 0)
        // during the call; the library copies what it keeps.
        check(unsafe { sys::aranya_quic_set_identity(self.handle(), cp, cl, kp, kl) })
    }

    /// Allows the peer `peer` to use team `team`
    /// (`aranya_quic_team_allow`), with
    /// [`Config::team_authorization`](crate::Config::team_authorization)
    /// on: channel streams it opens afterwards on that team are accepted,
    /// and its sync streams too. Allowing a pair that is already allowed
    /// does nothing.
    ///
    /// Never blocks beyond a short lock. Callable from any thread, also
    /// from a logger.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`]: an all-zero peer id or team id, or
    /// team authorization is off in the config; nothing changed.
    /// [`ErrorKind::Closed`] / [`ErrorKind::InvalidHandle`]: the endpoint
    /// is shut down. [`ErrorKind::Internal`]: a bug in the library was
    /// caught.
    pub fn team_allow(&self, peer: &PeerId, team: &GraphId) -> Result<(), QuicMessageError> {
        // SAFETY: both ids are 32 bytes, valid during the call.
        check(unsafe { sys::aranya_quic_team_allow(self.handle(), peer.0.as_ptr(), team.0.as_ptr()) })
    }

    /// Stops allowing `peer` on team `team` (`aranya_quic_team_revoke`),
    /// also for streams already open: when it returns, the peer's open
    /// streams on the team are reset, nothing more of them is received,
    /// their messages queued and not yet taken are dropped (counted in
    /// [`Stats::messages_revoked`](crate::Stats::messages_revoked)), and
    /// so are those an async `recv` had taken from the library but not
    /// handed out (not counted). The peer's sends on the team then fail
    /// with [`ErrorKind::NotAuthorized`]; as the reset travels the network,
    /// a few of its sends may still be accepted on its side, but none of
    /// them is received. Revoking a pair that is not allowed does nothing.
    ///
    /// Returns `true` when the pair was allowed and `team` was the peer's
    /// last team in the library's list at the moment it revoked the pair:
    /// then the same went for the peer's sync messages (its sync streams
    /// reset, those queued and those an async `recv` had taken dropped,
    /// new ones refused). `false` when the peer keeps another team, or the
    /// pair was not allowed. An application that buffers messages it took
    /// itself drops the peer's sync messages on `true`.
    ///
    /// Those an async `recv` had taken are dropped just after the library
    /// call returns: should another thread allow the pair again (or, after
    /// `true`, any team of the peer) in that moment, a message the peer
    /// sent under the new allowance that a `recv` already took may be
    /// dropped as well.
    ///
    /// Blocks only while the streams are reset locally (no network round
    /// trip). Callable from any thread, also from a logger that sees this
    /// call's own log records.
    ///
    /// # Errors
    ///
    /// As [`team_allow`](Self::team_allow).
    pub fn team_revoke(&self, peer: &PeerId, team: &GraphId) -> Result<bool, QuicMessageError> {
        let mut last = 0u32;
        // No binding lock is held across the call: the library logs the
        // revocation on this thread before it returns, and a logger may
        // call the trust calls.
        // SAFETY: both ids are 32 bytes and `last` is writable, during the
        // call; the library keeps none of them.
        check(unsafe { sys::aranya_quic_team_revoke(self.handle(), peer.0.as_ptr(), team.0.as_ptr(), &mut last) })?;
        let last = last != 0;
        // The library has revoked them, so no message of them is taken
        // from it any more, and every one a refill took before is in the
        // buffer once the lock is ours (a refill takes and stores under
        // it).
        let mut pending = self.hold_pending();
        if !pending.is_empty() {
            pending.remove(|ch| {
                *peer == ch.peer_id
                    && match ch.kind {
                        sys::ARANYA_QUIC_KIND_CHANNEL => ch.team_id == team.0,
                        sys::ARANYA_QUIC_KIND_SYNC => last,
                        _ => false,
                    }
            });
        }
        Ok(last)
    }

    /// The endpoint's connections (`aranya_quic_connections`): those in
    /// its connection map and those still draining, with their peer, age,
    /// round-trip times, congestion state and traffic. A snapshot; the
    /// order is the library's.
    ///
    /// Never blocks beyond short locks. Callable from any thread.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] / [`ErrorKind::InvalidHandle`]: the endpoint
    /// is shut down. [`ErrorKind::Internal`]: a bug in the library was
    /// caught (or it reported an address Rust cannot parse).
    pub fn connections(&self) -> Result<Vec<ConnectionInfo>, QuicMessageError> {
        let mut raw: Vec<sys::aranya_quic_connection_info> = Vec::new();
        let mut capacity = FIRST_CAPACITY;
        loop {
            raw.clear();
            raw.resize(capacity, sys::aranya_quic_connection_info::default());
            let mut count = 0usize;
            // SAFETY: raw holds `capacity` writable records of the size
            // passed; count is writable.
            let rc = unsafe {
                sys::aranya_quic_connections(
                    self.handle(),
                    raw.as_mut_ptr(),
                    capacity,
                    std::mem::size_of::<sys::aranya_quic_connection_info>(),
                    &mut count,
                )
            };
            match rc {
                sys::ARANYA_QUIC_OK if count <= capacity => {
                    return raw[..count].iter().map(ConnectionInfo::from_c).collect();
                }
                sys::ARANYA_QUIC_OK => {
                    return Err(QuicMessageError::new(
                        ErrorKind::Internal,
                        format!("library reported {count} connections for {capacity} records"),
                    ))
                }
                // Connections may come between two calls: leave room.
                sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL => {
                    capacity = count.saturating_add(count / 2).max(capacity.saturating_mul(2));
                }
                _ => return Err(QuicMessageError::from_last(rc)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_char;

    fn c_str<const N: usize>(s: &str) -> [c_char; N] {
        let mut a = [0 as c_char; N];
        for (d, b) in a.iter_mut().zip(s.bytes()) {
            *d = b as c_char;
        }
        a
    }

    #[test]
    fn maybe_revoked_keeps_only_unnamed_pinned_connected_peers() {
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let named: HashSet<_> = [a].into();
        let connected: HashSet<_> = [a, b, c].into();
        let none = HashSet::new();
        // Named: revoked whatever else holds.
        assert!(maybe_revoked(&a, &named, &[], Some(&connected)));
        // Unnamed, connected, no pins: kept.
        assert!(!maybe_revoked(&b, &named, &[], Some(&connected)));
        // With pins, only the pinned are kept.
        assert!(!maybe_revoked(&b, &named, &[PeerId(b)], Some(&connected)));
        assert!(maybe_revoked(&c, &named, &[PeerId(b)], Some(&connected)));
        // Without a connection after the call it may have been revoked.
        assert!(maybe_revoked(&b, &none, &[], Some(&none)));
        // Connections unknown: nothing is kept.
        assert!(maybe_revoked(&b, &none, &[PeerId(b)], None));
    }

    #[test]
    fn connection_info_from_c() {
        let mut c = sys::aranya_quic_connection_info {
            dialed: 1,
            addr: c_str("[::1]:4433"),
            peer_id: [7; 32],
            connected_unix_ms: 1_700_000_000_123,
            connected_ms: 2500,
            smoothed_rtt_us: 1500,
            min_rtt_us: 900,
            latest_rtt_us: 2000,
            congestion_window: 32_000,
            bytes_in_flight: 1200,
            packets_sent: 10,
            packets_received: 11,
            packets_lost: 1,
            messages_sent: 3,
            bytes_sent: 30,
            messages_received: 4,
            bytes_received: 40,
            congestion_control: c_str("bbr2"),
            ..Default::default()
        };
        let i = ConnectionInfo::from_c(&c).unwrap();
        assert_eq!(i.addr, "[::1]:4433".parse().unwrap());
        assert_eq!(i.peer_id, PeerId([7; 32]));
        assert!(i.dialed && !i.draining);
        assert_eq!(i.connected_at, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        assert_eq!(i.connected_for, Duration::from_millis(2500));
        assert_eq!((i.smoothed_rtt, i.min_rtt, i.latest_rtt), (Duration::from_micros(1500), Duration::from_micros(900), Duration::from_millis(2)));
        assert_eq!((i.congestion_window, i.bytes_in_flight), (32_000, Some(1200)));
        assert_eq!((i.packets_sent, i.packets_received, i.packets_lost), (10, 11, 1));
        assert_eq!((i.messages_sent, i.bytes_sent, i.messages_received, i.bytes_received), (3, 30, 4, 40));
        assert_eq!(i.congestion_control, "bbr2");

        c.bytes_in_flight = sys::ARANYA_QUIC_UNKNOWN;
        c.draining = 1;
        c.dialed = 0;
        let i = ConnectionInfo::from_c(&c).unwrap();
        assert_eq!(i.bytes_in_flight, None, "UNKNOWN is None");
        assert!(!i.dialed && i.draining);

        c.addr = c_str("garbage");
        assert_eq!(ConnectionInfo::from_c(&c).unwrap_err().kind(), ErrorKind::Internal);
    }
}
