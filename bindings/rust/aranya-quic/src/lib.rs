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
//! ep.send("127.0.0.1:4434".parse()?, &team, "chat", b"hello")?;
//! let mut buf = vec![0u8; 64 * 1024];
//! if let Some((channel, n)) = ep.receive_timeout(&mut buf, Some(std::time::Duration::from_secs(1)))? {
//!     println!("{} bytes on {:?} from {}", n, channel.label, channel.addr);
//! }
//! # Ok(()) }
//! ```
//!
//! With the `tokio` feature, `Endpoint::recv` waits asynchronously on the
//! endpoint's pollable fd.
//!
//! Many messages per call: [`Endpoint::send_batch`] and
//! [`Endpoint::send_sync_batch`] send a slice of messages on one channel;
//! [`Endpoint::receive_batch`] (and, with `tokio`, `Endpoint::recv_batch`)
//! take every queued message that fits a reusable [`MessageBatch`], whose
//! messages are read in place without allocating.
//!
//! A received channel's label is a [`Label`], a shared string that an
//! endpoint reuses for every message on a label it has seen: receiving
//! allocates nothing once a label is known.

mod batch;
mod config;
mod endpoint;
mod error;
mod label;
mod types;

pub use aranya_quic_sys as sys;
pub use batch::{BatchIter, BatchMessage, MessageBatch};
pub use config::{CongestionControl, Config, Limit, LogLevel};
pub use endpoint::Endpoint;
pub use error::{ErrorKind, QuicMessageError};
pub use label::Label;
pub use types::{version, ChannelKind, GraphId, QuicChannel, Stats};

/// Longest label, in bytes.
pub const LABEL_MAX: usize = sys::ARANYA_QUIC_LABEL_MAX;
