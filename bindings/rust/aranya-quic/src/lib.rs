//! Safe Rust API for Aranya QUIC Channels, over the C ABI of
//! `libaranya_quic.so` (see `include/aranya_quic.h`).
//!
//! ```no_run
//! use aranya_quic::{Config, Endpoint, GraphId};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ep = Endpoint::new(Config::new(
//!     "127.0.0.1:4433".parse()?,
//!     std::fs::read("alice.crt")?,
//!     std::fs::read("alice.key")?,
//!     std::fs::read("ca.pem")?,
//! ))?;
//! let team = GraphId([1; 32]);
//! ep.send("127.0.0.1:4434", &team, "chat", b"hello")?;   // or a SocketAddr, or "host:port"
//! let mut buf = vec![0u8; 64 * 1024];
//! if let Some((channel, n)) = ep.receive_timeout(&mut buf, Some(std::time::Duration::from_secs(1)))? {
//!     println!("{} bytes on {:?} from {}", n, channel.label, channel.addr);
//! }
//! # Ok(()) }
//! ```
//!
//! Peer addresses ([`PeerAddr`]) are `SocketAddr`s or strings:
//! `"ip:port"`, `"[ipv6]:port"` or `"host:port"` (resolved by the library).
//!
//! Non-blocking calls: [`Endpoint::try_send`] (and `try_send_sync`, the
//! batch forms) accept a message at once or refuse it with
//! [`ErrorKind::WouldBlock`], and return its id;
//! [`Endpoint::close_nowait`] and [`Endpoint::shutdown_nowait`] start a
//! close and return its id; the outcomes arrive as [`Event`]s
//! ([`Endpoint::next_event`]). Their fds ([`Endpoint::send_fd`],
//! [`Endpoint::event_fd`], and the receive fd from `AsRawFd`) fit any
//! poll loop.
//!
//! With the `tokio` feature, `AsyncEndpoint` drives all of it from tokio's
//! reactor, never blocking a thread: `send(..).await`, `close(addr).await`,
//! `shutdown().await`, and `messages()` / `events()` streams; and
//! `Endpoint::recv` waits asynchronously on the receive fd.
//!
//! With the `log` feature, the library's log records go to the `log` crate
//! (target `"aranya_quic"`) instead of stderr.
//!
//! Many messages per call: [`Endpoint::send_batch`] and
//! [`Endpoint::send_sync_batch`] send a slice of messages on one channel;
//! [`Endpoint::receive_batch`] (and, with `tokio`, `Endpoint::recv_batch`)
//! take every queued message that fits a reusable [`MessageBatch`], whose
//! messages are read in place without allocating.
//!
//! Trust at runtime: [`Endpoint::set_trust`] replaces the trusted CAs and
//! pins (closing the connections of peers no longer trusted, and
//! returning those peers),
//! [`Endpoint::set_identity`] renews this endpoint's certificate, and with
//! [`Config::team_authorization`] on, [`Endpoint::team_allow`] and
//! [`Endpoint::team_revoke`] decide which peer ([`PeerId`], see
//! [`peer_id_from_pem`]) may use which team; refused senders get
//! [`ErrorKind::NotAuthorized`]. [`Endpoint::connections`] lists the
//! connections with their round-trip times and traffic.
//!
//! A received channel's label is a [`Label`], a shared string that an
//! endpoint reuses for every message on a label it has seen: receiving
//! allocates nothing once a label is known.

mod addr;
#[cfg(feature = "tokio")]
mod asynch;
mod batch;
mod config;
mod endpoint;
mod error;
mod events;
mod label;
#[cfg(feature = "log")]
mod logging;
mod trust;
mod types;

pub use aranya_quic_sys as sys;
pub use addr::PeerAddr;
#[cfg(feature = "tokio")]
pub use asynch::{AsyncEndpoint, Close, Events, Message, Messages, Shutdown};
pub use batch::{BatchIter, BatchMessage, MessageBatch};
pub use config::{CongestionControl, Config, Limit, LogLevel};
pub use endpoint::Endpoint;
pub use error::{ErrorKind, QuicMessageError};
pub use events::{Event, EventChannel};
pub use label::Label;
pub use trust::{peer_id_from_pem, ConnectionInfo};
pub use types::{version, ChannelKind, GraphId, PeerId, QuicChannel, Stats};

/// Longest label, in bytes.
pub const LABEL_MAX: usize = sys::ARANYA_QUIC_LABEL_MAX;
