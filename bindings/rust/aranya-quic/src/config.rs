//! Endpoint configuration, owned by Rust and turned into the C struct only
//! during [`Endpoint::new`](crate::Endpoint::new).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use aranya_quic_sys as sys;

use crate::error::{ErrorKind, QuicMessageError};

/// A time limit that can also be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limit {
    /// The library's default.
    #[default]
    Default,
    /// This duration (rounded up to whole milliseconds).
    After(Duration),
    /// No limit (`ARANYA_QUIC_DISABLED`).
    Disabled,
}

/// Congestion control algorithm of new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// The library's default: BBRv2 in the library `make lib` builds
    /// (quic-go with aranya-quic's congestion hook), NewReno in a build
    /// without the hook.
    #[default]
    Default,
    /// quic-go's NewReno.
    Reno,
    /// BBRv2; `Endpoint::new` fails with `InvalidArgument` in a library
    /// built without the congestion hook.
    Bbr2,
}

/// How much the library logs: to stderr, or, with the crate feature `log`,
/// to the `log` crate (target `"aranya_quic"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    #[default]
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

/// Endpoint configuration. `None` (and [`Limit::Default`]) fields take the
/// library's defaults (see `include/aranya_quic.h`).
///
/// ```no_run
/// # use aranya_quic::Config;
/// let cfg = Config::new(
///     "127.0.0.1:4433".parse().unwrap(),
///     std::fs::read("alice.crt").unwrap(),
///     std::fs::read("alice.key").unwrap(),
///     std::fs::read("ca.pem").unwrap(),
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Local UDP address; port 0 picks a free port (see
    /// [`Endpoint::local_addr`](crate::Endpoint::local_addr)).
    pub bind_addr: SocketAddr,
    /// This endpoint's certificate chain (leaf first), PEM.
    pub cert_pem: Vec<u8>,
    /// The leaf certificate's private key, PEM.
    pub key_pem: Vec<u8>,
    /// The certificates of the CAs whose peers are trusted, PEM.
    pub ca_pem: Vec<u8>,
    /// SHA-256 fingerprints of the DER leaf certificates of the only peers
    /// accepted (in addition to the CA check). Empty: no pinning.
    pub pinned_peers: Vec<[u8; sys::ARANYA_QUIC_FINGERPRINT_LEN]>,
    /// Most connections kept at once (LRU eviction beyond).
    pub max_connections: Option<u32>,
    /// Close a connection that heard nothing from its peer for this long.
    pub idle_timeout: Option<Duration>,
    /// Bounds one send (dial, handshake, confirmation, backpressure).
    pub send_timeout: Limit,
    /// Keep-alive period (default: idle timeout / 3).
    pub keep_alive: Limit,
    /// Bounds the graceful close of one connection.
    pub drain_timeout: Option<Duration>,
    /// Bounds a dial, the TLS handshake and the peer's confirmation.
    pub handshake_timeout: Option<Duration>,
    /// Bounds one outgoing dial (handshake and the peer's confirmation); a
    /// peer that does not answer within it fails the send with
    /// [`ErrorKind::Connection`]. Must be shorter than the send timeout
    /// (else `Endpoint::new` fails with [`ErrorKind::InvalidArgument`]).
    /// `None`: `ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS`, or half the send
    /// timeout when that is shorter.
    pub connect_timeout: Option<Duration>,
    /// Largest message sent or accepted, in bytes.
    pub max_message_size: Option<u64>,
    /// Bound of the receive queue in bytes (at least `max_message_size`).
    pub max_queue_bytes: Option<u64>,
    /// Bound of the receive queue in messages.
    pub max_queue_messages: Option<u32>,
    /// Most channel streams a peer may have open on one connection.
    pub max_channels_per_peer: Option<u32>,
    /// Bytes one channel buffers before send blocks.
    pub send_buffer_bytes: Option<u32>,
    pub congestion_control: CongestionControl,
    /// Which log records the library makes. Without the `log` feature they
    /// go to stderr ([`LogLevel::Off`]: none). With it they go to the `log`
    /// crate, and [`LogLevel::Off`] means "as much as `log::max_level()`
    /// lets through when the endpoint is created" (nothing when that is
    /// `Off`).
    pub log_level: LogLevel,
    /// QUIC stateless reset key; `None`: derived from the private key.
    pub stateless_reset_key: Option<[u8; sys::ARANYA_QUIC_RESET_KEY_LEN]>,
    /// Bytes of messages the non-blocking sends (`try_send`, async `send`)
    /// may hold queued for one peer address before they refuse with
    /// [`ErrorKind::WouldBlock`]. An empty queue always takes one message.
    /// `None`: `ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER` (4 MiB).
    pub max_outbound_bytes_per_peer: Option<u64>,
    /// The same bound across all peers. `None`:
    /// `ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES` (64 MiB).
    pub max_outbound_bytes: Option<u64>,
    /// Events the library holds until they are taken; more are dropped and
    /// counted ([`Event::Dropped`](crate::Event::Dropped)). Also the bound
    /// of the endpoint's own queue of events for
    /// [`Endpoint::next_event`](crate::Endpoint::next_event) and the event
    /// stream. `None`: `ARANYA_QUIC_DEFAULT_MAX_EVENTS` (4096).
    pub max_events: Option<u32>,
    /// Bounds resolving a peer's host name. `None`:
    /// `ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS` (5 s).
    pub resolve_timeout: Option<Duration>,
    /// Per-team authorization. `true`: a peer may open a channel only on a
    /// team that [`Endpoint::team_allow`](crate::Endpoint::team_allow)
    /// allowed its peer id on, and send sync messages only when allowed on
    /// at least one team; other streams are refused (the sender gets
    /// [`ErrorKind::NotAuthorized`]) and counted in
    /// [`Stats::streams_refused`](crate::Stats::streams_refused). `false`
    /// (the default): every trusted peer may use every team, and
    /// `team_allow` / `team_revoke` fail with
    /// [`ErrorKind::InvalidArgument`].
    pub team_authorization: bool,
}

impl Default for Config {
    /// Binds `0.0.0.0:0` with no certificates (which `Endpoint::new`
    /// rejects): set at least the three PEM fields.
    fn default() -> Self {
        Config {
            bind_addr: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            cert_pem: Vec::new(),
            key_pem: Vec::new(),
            ca_pem: Vec::new(),
            pinned_peers: Vec::new(),
            max_connections: None,
            idle_timeout: None,
            send_timeout: Limit::Default,
            keep_alive: Limit::Default,
            drain_timeout: None,
            handshake_timeout: None,
            connect_timeout: None,
            max_message_size: None,
            max_queue_bytes: None,
            max_queue_messages: None,
            max_channels_per_peer: None,
            send_buffer_bytes: None,
            congestion_control: CongestionControl::Default,
            log_level: LogLevel::Off,
            stateless_reset_key: None,
            max_outbound_bytes_per_peer: None,
            max_outbound_bytes: None,
            max_events: None,
            resolve_timeout: None,
            team_authorization: false,
        }
    }
}

impl Config {
    /// A config with the required fields and defaults for the rest.
    pub fn new(
        bind_addr: SocketAddr,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
        ca_pem: impl Into<Vec<u8>>,
    ) -> Self {
        Config {
            bind_addr,
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: ca_pem.into(),
            ..Config::default()
        }
    }

    /// Builds the C struct. It borrows `self`, `bind` (the NUL-terminated
    /// address) and `pinned` (`self.pinned_peers` concatenated): keep them alive
    /// while the struct is in use.
    pub(crate) fn to_c(
        &self,
        bind: &std::ffi::CStr,
        pinned: &[u8],
    ) -> Result<sys::aranya_quic_config, QuicMessageError> {
        let mut c = sys::aranya_quic_config::default();
        // SAFETY: c is a valid, writable config of the size passed, and
        // the library writes no more than that.
        crate::error::check(unsafe {
            sys::aranya_quic_config_init_sized(&mut c, std::mem::size_of::<sys::aranya_quic_config>())
        })?;
        c.bind_addr = bind.as_ptr();
        (c.cert_pem, c.cert_pem_len) = ptr_len(&self.cert_pem);
        (c.key_pem, c.key_pem_len) = ptr_len(&self.key_pem);
        (c.ca_pem, c.ca_pem_len) = ptr_len(&self.ca_pem);
        // NB: pinned_peers_len counts fingerprints, not bytes (unlike the
        // *_pem_len fields).
        debug_assert_eq!(pinned.len(), self.pinned_peers.len() * sys::ARANYA_QUIC_FINGERPRINT_LEN);
        c.pinned_peers = ptr_len(pinned).0;
        c.pinned_peers_len = pinned.len() / sys::ARANYA_QUIC_FINGERPRINT_LEN;
        c.max_connections = self.max_connections.unwrap_or(0);
        c.idle_timeout_ms = opt_ms("idle_timeout", self.idle_timeout)?;
        c.send_timeout_ms = limit_ms("send_timeout", self.send_timeout)?;
        c.keep_alive_ms = limit_ms("keep_alive", self.keep_alive)?;
        c.drain_timeout_ms = opt_ms("drain_timeout", self.drain_timeout)?;
        c.handshake_timeout_ms = opt_ms("handshake_timeout", self.handshake_timeout)?;
        c.connect_timeout_ms = opt_ms("connect_timeout", self.connect_timeout)?;
        c.max_message_size = self.max_message_size.unwrap_or(0);
        c.max_queue_bytes = self.max_queue_bytes.unwrap_or(0);
        c.max_queue_messages = self.max_queue_messages.unwrap_or(0);
        c.max_channels_per_peer = self.max_channels_per_peer.unwrap_or(0);
        c.send_buffer_bytes = self.send_buffer_bytes.unwrap_or(0);
        c.congestion_control = match self.congestion_control {
            CongestionControl::Default => sys::ARANYA_QUIC_CC_DEFAULT,
            CongestionControl::Reno => sys::ARANYA_QUIC_CC_RENO,
            CongestionControl::Bbr2 => sys::ARANYA_QUIC_CC_BBR2,
        };
        c.log_level = log_level_code(self.log_level);
        #[cfg(feature = "log")]
        crate::logging::install(&mut c, self.log_level);
        c.stateless_reset_key = match &self.stateless_reset_key {
            Some(k) => k.as_ptr(),
            None => std::ptr::null(),
        };
        c.max_outbound_bytes_per_peer = self.max_outbound_bytes_per_peer.unwrap_or(0);
        c.max_outbound_bytes = self.max_outbound_bytes.unwrap_or(0);
        c.max_events = self.max_events.unwrap_or(0);
        c.resolve_timeout_ms = opt_ms("resolve_timeout", self.resolve_timeout)?;
        c.team_authorization = u32::from(self.team_authorization);
        Ok(c)
    }
}

impl fmt::Debug for Config {
    /// Like a derived Debug, but PEM contents are shown as lengths and the
    /// private key and reset key are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind_addr", &self.bind_addr)
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &format_args!("<{} bytes, redacted>", self.key_pem.len()))
            .field("ca_pem", &format_args!("<{} bytes>", self.ca_pem.len()))
            .field("pinned_peers", &self.pinned_peers.len())
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("send_timeout", &self.send_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("drain_timeout", &self.drain_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_queue_messages", &self.max_queue_messages)
            .field("max_channels_per_peer", &self.max_channels_per_peer)
            .field("send_buffer_bytes", &self.send_buffer_bytes)
            .field("congestion_control", &self.congestion_control)
            .field("log_level", &self.log_level)
            .field("stateless_reset_key", &self.stateless_reset_key.map(|_| "<redacted>"))
            .field("max_outbound_bytes_per_peer", &self.max_outbound_bytes_per_peer)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("max_events", &self.max_events)
            .field("resolve_timeout", &self.resolve_timeout)
            .field("team_authorization", &self.team_authorization)
            .finish()
    }
}

pub(crate) fn log_level_code(l: LogLevel) -> u32 {
    match l {
        LogLevel::Off => sys::ARANYA_QUIC_LOG_OFF,
        LogLevel::Error => sys::ARANYA_QUIC_LOG_ERROR,
        LogLevel::Warn => sys::ARANYA_QUIC_LOG_WARN,
        LogLevel::Info => sys::ARANYA_QUIC_LOG_INFO,
        LogLevel::Debug => sys::ARANYA_QUIC_LOG_DEBUG,
    }
}

/// (pointer, length) of a buffer, NULL for an empty one.
fn ptr_len(b: &[u8]) -> (*const u8, usize) {
    if b.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (b.as_ptr(), b.len())
    }
}

/// A duration as the C field's milliseconds: rounded up, at least 1 (0 would
/// mean "default"), below `ARANYA_QUIC_DISABLED`.
fn dur_ms(field: &str, d: Duration) -> Result<u32, QuicMessageError> {
    let ms = d.as_nanos().div_ceil(1_000_000).max(1);
    if ms >= u128::from(sys::ARANYA_QUIC_DISABLED) {
        return Err(QuicMessageError::new(
            ErrorKind::InvalidArgument,
            format!("{field}: {d:?} does not fit in 32-bit milliseconds"),
        ));
    }
    Ok(ms as u32)
}

fn opt_ms(field: &str, d: Option<Duration>) -> Result<u32, QuicMessageError> {
    d.map_or(Ok(0), |d| dur_ms(field, d))
}

fn limit_ms(field: &str, l: Limit) -> Result<u32, QuicMessageError> {
    match l {
        Limit::Default => Ok(0),
        Limit::After(d) => dur_ms(field, d),
        Limit::Disabled => Ok(sys::ARANYA_QUIC_DISABLED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_and_never_mean_default() {
        assert_eq!(dur_ms("x", Duration::from_micros(1)).unwrap(), 1);
        assert_eq!(dur_ms("x", Duration::ZERO).unwrap(), 1);
        assert_eq!(dur_ms("x", Duration::from_micros(1500)).unwrap(), 2);
        assert_eq!(dur_ms("x", Duration::from_secs(3)).unwrap(), 3000);
        let e = dur_ms("x", Duration::from_secs(u64::from(u32::MAX))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(limit_ms("x", Limit::Disabled).unwrap(), u32::MAX);
        assert_eq!(limit_ms("x", Limit::Default).unwrap(), 0);
    }

    #[test]
    fn to_c_fills_every_field() {
        let mut cfg = Config::new("127.0.0.1:9".parse().unwrap(), b"C".to_vec(), b"KK".to_vec(), b"AAA".to_vec());
        cfg.pinned_peers = vec![[1; 32], [2; 32]];
        cfg.max_connections = Some(3);
        cfg.idle_timeout = Some(Duration::from_secs(4));
        cfg.send_timeout = Limit::Disabled;
        cfg.keep_alive = Limit::After(Duration::from_millis(5));
        cfg.drain_timeout = Some(Duration::from_millis(6));
        cfg.handshake_timeout = Some(Duration::from_millis(7));
        cfg.connect_timeout = Some(Duration::from_millis(13));
        cfg.max_message_size = Some(8);
        cfg.max_queue_bytes = Some(9);
        cfg.max_queue_messages = Some(10);
        cfg.max_channels_per_peer = Some(11);
        cfg.send_buffer_bytes = Some(12);
        cfg.congestion_control = CongestionControl::Reno;
        cfg.log_level = LogLevel::Warn;
        cfg.stateless_reset_key = Some([7; 32]);
        cfg.max_outbound_bytes_per_peer = Some(14);
        cfg.max_outbound_bytes = Some(15);
        cfg.max_events = Some(16);
        cfg.resolve_timeout = Some(Duration::from_millis(17));
        cfg.team_authorization = true;
        let bind = std::ffi::CString::new(cfg.bind_addr.to_string()).unwrap();
        let pinned: Vec<u8> = cfg.pinned_peers.concat();
        let c = cfg.to_c(&bind, &pinned).unwrap();
        assert_eq!(c.struct_size as usize, std::mem::size_of::<sys::aranya_quic_config>());
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(c.bind_addr) }.to_str().unwrap(), "127.0.0.1:9");
        assert_eq!((c.cert_pem_len, c.key_pem_len, c.ca_pem_len, c.pinned_peers_len), (1, 2, 3, 2));
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.idle_timeout_ms, 4000);
        assert_eq!(c.send_timeout_ms, u32::MAX);
        assert_eq!(c.keep_alive_ms, 5);
        assert_eq!(c.drain_timeout_ms, 6);
        assert_eq!(c.handshake_timeout_ms, 7);
        assert_eq!(c.connect_timeout_ms, 13);
        assert_eq!((c.max_message_size, c.max_queue_bytes), (8, 9));
        assert_eq!((c.max_queue_messages, c.max_channels_per_peer, c.send_buffer_bytes), (10, 11, 12));
        assert_eq!(c.congestion_control, sys::ARANYA_QUIC_CC_RENO);
        assert_eq!(c.log_level, sys::ARANYA_QUIC_LOG_WARN);
        assert!(!c.stateless_reset_key.is_null());
        assert_eq!((c.max_outbound_bytes_per_peer, c.max_outbound_bytes), (14, 15));
        assert_eq!((c.max_events, c.resolve_timeout_ms), (16, 17));
        assert_eq!(c.team_authorization, 1);
        // With the `log` feature the callback is installed; without, logs
        // go to stderr.
        assert_eq!(c.log_callback.is_some(), cfg!(feature = "log"));

        let d = Config::default();
        let c = d.to_c(&bind, &[]).unwrap();
        assert!(c.cert_pem.is_null() && c.pinned_peers.is_null() && c.stateless_reset_key.is_null());
        assert_eq!((c.send_timeout_ms, c.keep_alive_ms, c.max_connections), (0, 0, 0));
        assert_eq!(c.connect_timeout_ms, 0);
        assert_eq!(c.team_authorization, 0);
        assert_eq!((c.max_outbound_bytes_per_peer, c.max_outbound_bytes, c.max_events, c.resolve_timeout_ms), (0, 0, 0, 0));
    }

    #[test]
    fn debug_hides_the_key() {
        let cfg = Config::new("127.0.0.1:9".parse().unwrap(), b"CERT".to_vec(), b"SECRETKEY".to_vec(), b"CA".to_vec());
        let s = format!("{cfg:?}");
        assert!(!s.contains("SECRETKEY") && !s.contains("83, 69, 67"), "{s}");
    }
}
