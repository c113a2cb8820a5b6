//! Raw FFI declarations for `libaranya_quic`, written by hand to mirror
//! `include/aranya_quic.h` (the source of truth of the ABI). Read the header
//! for the meaning of every item; the names are the C names.
//!
//! `tests/layout.rs` checks every struct's size and field offsets, and every
//! constant, against the C compiler's view of the header.
//!
//! Use the safe `aranya-quic` crate unless you need the raw calls.

#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_void};

// ---------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_VERSION_MAJOR: u32 = 0;
pub const ARANYA_QUIC_VERSION_MINOR: u32 = 1;
pub const ARANYA_QUIC_VERSION_PATCH: u32 = 0;
/// Without the NUL; compare with `aranya_quic_version()`.
pub const ARANYA_QUIC_VERSION_STRING: &str = "0.1.0";
pub const ARANYA_QUIC_VERSION_NUMBER: u32 = 1000;

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_TEAM_ID_LEN: usize = 32;
pub const ARANYA_QUIC_LABEL_MAX: usize = 255;
pub const ARANYA_QUIC_ADDR_MAX: usize = 64;
pub const ARANYA_QUIC_PEER_ID_LEN: usize = 32;
/// Size of a buffer for any peer address argument with its NUL: a host name
/// of up to 253 bytes, or an IP literal, with brackets and port. (Added in
/// 0.2.)
pub const ARANYA_QUIC_PEER_ADDR_MAX: usize = 264;
pub const ARANYA_QUIC_FINGERPRINT_LEN: usize = 32;
pub const ARANYA_QUIC_RESET_KEY_LEN: usize = 32;

// ---------------------------------------------------------------------------
// Return codes
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_OK: i32 = 0;
pub const ARANYA_QUIC_ERR_WOULD_BLOCK: i32 = -1;
pub const ARANYA_QUIC_ERR_BUFFER_TOO_SMALL: i32 = -2;
pub const ARANYA_QUIC_ERR_INVALID_ARGUMENT: i32 = -3;
pub const ARANYA_QUIC_ERR_INVALID_HANDLE: i32 = -4;
pub const ARANYA_QUIC_ERR_CLOSED: i32 = -5;
pub const ARANYA_QUIC_ERR_TIMEOUT: i32 = -6;
pub const ARANYA_QUIC_ERR_TOO_LARGE: i32 = -7;
pub const ARANYA_QUIC_ERR_CONNECTION: i32 = -8;
pub const ARANYA_QUIC_ERR_TLS: i32 = -9;
pub const ARANYA_QUIC_ERR_INTERNAL: i32 = -10;
pub const ARANYA_QUIC_ERR_BAD_ADDRESS: i32 = -11;
pub const ARANYA_QUIC_ERR_IO: i32 = -12;
pub const ARANYA_QUIC_ERR_UNCONFIRMED: i32 = -13;
/// A peer's host name could not be resolved within resolve_timeout_ms.
/// (Added in 0.2.)
pub const ARANYA_QUIC_ERR_RESOLVE: i32 = -14;
/// The peer refused the channel: it runs per-team authorization and does
/// not allow this endpoint's peer id on the channel's team (for a sync
/// message: on any team). (Added in 0.2.)
pub const ARANYA_QUIC_ERR_NOT_AUTHORIZED: i32 = -15;

// ---------------------------------------------------------------------------
// Message kinds, congestion control, log levels
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_KIND_CHANNEL: u32 = 1;
pub const ARANYA_QUIC_KIND_SYNC: u32 = 2;

pub const ARANYA_QUIC_CC_DEFAULT: u32 = 0;
pub const ARANYA_QUIC_CC_RENO: u32 = 1;
pub const ARANYA_QUIC_CC_BBR2: u32 = 2;

pub const ARANYA_QUIC_LOG_OFF: u32 = 0;
pub const ARANYA_QUIC_LOG_ERROR: u32 = 1;
pub const ARANYA_QUIC_LOG_WARN: u32 = 2;
pub const ARANYA_QUIC_LOG_INFO: u32 = 3;
pub const ARANYA_QUIC_LOG_DEBUG: u32 = 4;

// ---------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS: u32 = 32;
pub const ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS: u32 = 30000;
pub const ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10000;
pub const ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS: u32 = 10000;
pub const ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS: u32 = 5000;
/// `connect_timeout_ms` 0: this, or `send_timeout_ms / 2` when that is shorter.
pub const ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS: u32 = 5000;
pub const ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE: u32 = 16 * 1024 * 1024;
pub const ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES: u32 = 64 * 1024 * 1024;
pub const ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES: u32 = 65536;
pub const ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER: u32 = 1024;
pub const ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES: u32 = 256 * 1024;
pub const ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT: u32 = 1024 * 1024 * 1024;
pub const ARANYA_QUIC_DISABLED: u32 = u32::MAX;
// Added in 0.2.
pub const ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER: u32 = 4 * 1024 * 1024;
pub const ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES: u32 = 64 * 1024 * 1024;
pub const ARANYA_QUIC_DEFAULT_MAX_EVENTS: u32 = 4096;
pub const ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS: u32 = 5000;

// ---------------------------------------------------------------------------
// Event types (aranya_quic_event.type), added in 0.2. New types may be
// added: ignore those you do not know.
// ---------------------------------------------------------------------------

pub const ARANYA_QUIC_EVENT_PEER_CONNECTED: u32 = 1;
pub const ARANYA_QUIC_EVENT_PEER_DISCONNECTED: u32 = 2;
pub const ARANYA_QUIC_EVENT_SEND_FAILED: u32 = 3;
pub const ARANYA_QUIC_EVENT_CLOSE_FINISHED: u32 = 4;
pub const ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED: u32 = 5;
pub const ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED: u32 = 6;

/// `bytes_in_flight` of an [`aranya_quic_connection_info`] whose congestion
/// controller does not report it (quic-go's NewReno). (Added in 0.2.)
pub const ARANYA_QUIC_UNKNOWN: u64 = u64::MAX;

/// How many distinct peers an endpoint remembers after their connections
/// ended, for `aranya_quic_set_trust` to revoke. (Added in 0.2.)
pub const ARANYA_QUIC_KNOWN_PEERS_MAX: usize = 4096;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// An endpoint handle; 0 is never valid.
pub type aranya_quic_t = u64;

/// `aranya_quic_receive_callback`: the type of
/// [`aranya_quic_config::receive_callback`] (added in 0.2). The header says
/// when and on which threads the library calls it.
pub type aranya_quic_receive_callback = unsafe extern "C" fn(
    user: *mut c_void,
    channel: *const aranya_quic_channel,
    msg: *const u8,
    len: usize,
);

/// `aranya_quic_log_callback`: the type of
/// [`aranya_quic_config::log_callback`] (added in 0.2). Called on library
/// threads, possibly several at once; `msg` is `len` bytes of UTF-8
/// followed by a NUL, valid only during the call. It must not unwind.
pub type aranya_quic_log_callback =
    unsafe extern "C" fn(user: *mut c_void, level: u32, msg: *const c_char, len: usize);

/// `struct aranya_quic_config`. Initialize with [`aranya_quic_config_init`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_config {
    pub struct_size: u32,
    pub bind_addr: *const c_char,
    pub cert_pem: *const u8,
    pub cert_pem_len: usize,
    pub key_pem: *const u8,
    pub key_pem_len: usize,
    pub ca_pem: *const u8,
    pub ca_pem_len: usize,
    pub max_connections: u32,
    pub idle_timeout_ms: u32,
    pub send_timeout_ms: u32,
    pub max_message_size: u64,
    pub max_queue_bytes: u64,
    pub pinned_peers: *const u8,
    pub pinned_peers_len: usize,
    pub keep_alive_ms: u32,
    pub drain_timeout_ms: u32,
    pub handshake_timeout_ms: u32,
    pub max_queue_messages: u32,
    pub max_channels_per_peer: u32,
    pub congestion_control: u32,
    pub log_level: u32,
    pub send_buffer_bytes: u32,
    pub stateless_reset_key: *const u8,
    // --- added in 0.2; read only when struct_size covers them ---
    pub connect_timeout_ms: u32,
    /// `None` is the C NULL: received messages go to the queue.
    pub receive_callback: Option<aranya_quic_receive_callback>,
    pub receive_callback_user: *mut c_void,
    // --- added in 0.2 (non-blocking sends, events, logging) ---
    pub max_outbound_bytes_per_peer: u64,
    pub max_outbound_bytes: u64,
    pub max_events: u32,
    pub resolve_timeout_ms: u32,
    /// `None` is the C NULL: logs go to stderr when log_level is non-zero.
    pub log_callback: Option<aranya_quic_log_callback>,
    pub log_callback_user: *mut c_void,
    // --- added with runtime trust and team authorization ---
    /// Non-zero: per-team authorization (see [`aranya_quic_team_allow`]).
    pub team_authorization: u32,
}

impl Default for aranya_quic_config {
    /// All zeroes and NULLs (struct_size 0: still call
    /// [`aranya_quic_config_init`]).
    fn default() -> Self {
        // SAFETY: integers, raw pointers and an Option of a function
        // pointer (None), for all of which all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// `struct aranya_quic_channel`: where a received message came from.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_channel {
    pub addr: [c_char; ARANYA_QUIC_ADDR_MAX],
    pub kind: u32,
    pub sync_type: u32,
    pub team_id: [u8; ARANYA_QUIC_TEAM_ID_LEN],
    pub label: [c_char; ARANYA_QUIC_LABEL_MAX + 1],
    pub label_len: usize,
    pub peer_id: [u8; ARANYA_QUIC_PEER_ID_LEN],
}

impl Default for aranya_quic_channel {
    fn default() -> Self {
        // SAFETY: integers and integer arrays, for which all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// `struct aranya_quic_stats`. Set `struct_size` to
/// `size_of::<aranya_quic_stats>()` before [`aranya_quic_get_stats`]
/// (`Default` does).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_stats {
    pub struct_size: u32,
    pub open_connections: u64,
    pub dials: u64,
    pub accepts: u64,
    pub evictions: u64,
    pub handshake_failures: u64,
    pub open_streams: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub queue_messages: u64,
    pub queue_bytes: u64,
    pub streams_reset: u64,
    pub connections_lost: u64,
    pub congestion_control: [c_char; 16],
    // --- added in 0.2; filled only when struct_size covers them ---
    pub messages_unconfirmed: u64,
    // --- added with non-blocking sends and events ---
    pub outbound_messages: u64,
    pub outbound_bytes: u64,
    pub sends_failed: u64,
    pub events_dropped: u64,
    // --- added with runtime trust and team authorization ---
    pub connections_revoked: u64,
    pub messages_revoked: u64,
    pub streams_refused: u64,
}

impl Default for aranya_quic_stats {
    /// Zeroes, with `struct_size` set to this struct's size.
    fn default() -> Self {
        // SAFETY: integers and integer arrays, for which all-zero is valid.
        let mut s: Self = unsafe { core::mem::zeroed() };
        s.struct_size = core::mem::size_of::<Self>() as u32;
        s
    }
}

/// `struct aranya_quic_message`: one message taken by
/// [`aranya_quic_receive_batch`]; its payload is
/// `buf[offset .. offset + len]` of the buffer passed to that call.
/// (Added in 0.2.)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_message {
    pub channel: aranya_quic_channel,
    pub offset: usize,
    pub len: usize,
}

impl Default for aranya_quic_message {
    fn default() -> Self {
        // SAFETY: integers and integer arrays, for which all-zero is valid.
        unsafe { core::mem::zeroed() }
    }
}

/// `struct aranya_quic_buf`: one message for [`aranya_quic_send_batch`]:
/// `len` bytes at `data` (NULL only if `len` is 0). (Added in 0.2.)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_buf {
    pub data: *const u8,
    pub len: usize,
}

impl Default for aranya_quic_buf {
    /// NULL and 0: the empty message.
    fn default() -> Self {
        aranya_quic_buf { data: core::ptr::null(), len: 0 }
    }
}

/// `struct aranya_quic_event`: one event, as [`aranya_quic_next_event`]
/// returns it (added in 0.2). Fields that do not apply to the event's type
/// are zero. Set `struct_size` to `size_of::<aranya_quic_event>()` before
/// the call (`Default` does).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_event {
    pub struct_size: u32,
    /// One of `ARANYA_QUIC_EVENT_*`.
    pub type_: u32,
    pub error_code: i32,
    pub id: u64,
    pub addr: [c_char; ARANYA_QUIC_PEER_ADDR_MAX],
    pub peer_id: [u8; ARANYA_QUIC_PEER_ID_LEN],
    pub channel: aranya_quic_channel,
    pub unconfirmed: u64,
    pub dropped_before: u64,
    pub reason: [c_char; 256],
}

impl Default for aranya_quic_event {
    /// Zeroes, with `struct_size` set to this struct's size.
    fn default() -> Self {
        // SAFETY: integers and integer arrays, for which all-zero is valid.
        let mut e: Self = unsafe { core::mem::zeroed() };
        e.struct_size = core::mem::size_of::<Self>() as u32;
        e
    }
}

/// `struct aranya_quic_connection_info`: one connection, as
/// [`aranya_quic_connections`] lists it (added in 0.2). The library sets
/// `struct_size` to the bytes it filled; pass
/// `size_of::<aranya_quic_connection_info>()` as the call's `info_size`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct aranya_quic_connection_info {
    pub struct_size: u32,
    /// 1 if this endpoint dialed the connection, 0 if it accepted it.
    pub dialed: u32,
    /// 1 while the connection closes gracefully.
    pub draining: u32,
    pub addr: [c_char; ARANYA_QUIC_ADDR_MAX],
    pub peer_id: [u8; ARANYA_QUIC_PEER_ID_LEN],
    pub connected_unix_ms: u64,
    pub connected_ms: u64,
    pub smoothed_rtt_us: u64,
    pub min_rtt_us: u64,
    pub latest_rtt_us: u64,
    pub congestion_window: u64,
    /// [`ARANYA_QUIC_UNKNOWN`] when the controller does not report it.
    pub bytes_in_flight: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    pub congestion_control: [c_char; 16],
}

impl Default for aranya_quic_connection_info {
    /// Zeroes, with `struct_size` set to this struct's size.
    fn default() -> Self {
        // SAFETY: integers and integer arrays, for which all-zero is valid.
        let mut c: Self = unsafe { core::mem::zeroed() };
        c.struct_size = core::mem::size_of::<Self>() as u32;
        c
    }
}

// ---------------------------------------------------------------------------
// Functions
// ---------------------------------------------------------------------------

extern "C" {
    pub fn aranya_quic_config_init(cfg: *mut aranya_quic_config) -> i32;
    /// Zeroes the first `size` bytes (the caller's struct size) and sets
    /// `struct_size`: what `aranya_quic_config_init` is in C through the
    /// header's macro. Call this one, so that a newer library never
    /// writes past this crate's struct.
    pub fn aranya_quic_config_init_sized(cfg: *mut aranya_quic_config, size: usize) -> i32;
    pub fn aranya_quic_new(cfg: *const aranya_quic_config, out: *mut aranya_quic_t) -> i32;
    pub fn aranya_quic_free(ep: aranya_quic_t) -> i32;
    pub fn aranya_quic_local_addr(
        ep: aranya_quic_t,
        buf: *mut c_char,
        buf_len: usize,
        out_len: *mut usize,
    ) -> i32;
    pub fn aranya_quic_send(
        ep: aranya_quic_t,
        addr: *const c_char,
        team_id: *const u8,
        label: *const c_char,
        label_len: usize,
        msg: *const u8,
        msg_len: usize,
    ) -> i32;
    pub fn aranya_quic_send_sync(
        ep: aranya_quic_t,
        addr: *const c_char,
        sync_type: u32,
        msg: *const u8,
        msg_len: usize,
    ) -> i32;
    pub fn aranya_quic_receive(
        ep: aranya_quic_t,
        buf: *mut u8,
        buf_len: usize,
        out_channel: *mut aranya_quic_channel,
        out_len: *mut usize,
    ) -> i32;
    pub fn aranya_quic_receive_timeout(
        ep: aranya_quic_t,
        buf: *mut u8,
        buf_len: usize,
        out_channel: *mut aranya_quic_channel,
        out_len: *mut usize,
        timeout_ms: i32,
    ) -> i32;
    pub fn aranya_quic_receive_fd(ep: aranya_quic_t, out_fd: *mut c_int) -> i32;
    pub fn aranya_quic_close(ep: aranya_quic_t, addr: *const c_char) -> i32;
    pub fn aranya_quic_get_stats(ep: aranya_quic_t, out: *mut aranya_quic_stats) -> i32;
    pub fn aranya_quic_strerror(code: i32) -> *const c_char;
    pub fn aranya_quic_last_error() -> *const c_char;
    pub fn aranya_quic_version() -> *const c_char;

    // --- added in 0.2 ---
    pub fn aranya_quic_receive_batch(
        ep: aranya_quic_t,
        buf: *mut u8,
        buf_len: usize,
        msgs: *mut aranya_quic_message,
        max_msgs: usize,
        out_count: *mut usize,
        timeout_ms: i32,
    ) -> i32;
    pub fn aranya_quic_send_batch(
        ep: aranya_quic_t,
        addr: *const c_char,
        team_id: *const u8,
        label: *const c_char,
        label_len: usize,
        msgs: *const aranya_quic_buf,
        count: usize,
        out_sent: *mut usize,
    ) -> i32;
    pub fn aranya_quic_send_sync_batch(
        ep: aranya_quic_t,
        addr: *const c_char,
        sync_type: u32,
        msgs: *const aranya_quic_buf,
        count: usize,
        out_sent: *mut usize,
    ) -> i32;

    // --- non-blocking calls and events, added in 0.2 ---
    pub fn aranya_quic_send_nowait(
        ep: aranya_quic_t,
        addr: *const c_char,
        team_id: *const u8,
        label: *const c_char,
        label_len: usize,
        msg: *const u8,
        msg_len: usize,
        out_id: *mut u64,
    ) -> i32;
    pub fn aranya_quic_send_sync_nowait(
        ep: aranya_quic_t,
        addr: *const c_char,
        sync_type: u32,
        msg: *const u8,
        msg_len: usize,
        out_id: *mut u64,
    ) -> i32;
    pub fn aranya_quic_send_batch_nowait(
        ep: aranya_quic_t,
        addr: *const c_char,
        team_id: *const u8,
        label: *const c_char,
        label_len: usize,
        msgs: *const aranya_quic_buf,
        count: usize,
        out_sent: *mut usize,
        out_first_id: *mut u64,
    ) -> i32;
    pub fn aranya_quic_send_sync_batch_nowait(
        ep: aranya_quic_t,
        addr: *const c_char,
        sync_type: u32,
        msgs: *const aranya_quic_buf,
        count: usize,
        out_sent: *mut usize,
        out_first_id: *mut u64,
    ) -> i32;
    pub fn aranya_quic_send_fd(ep: aranya_quic_t, out_fd: *mut c_int) -> i32;
    pub fn aranya_quic_close_nowait(ep: aranya_quic_t, addr: *const c_char, out_id: *mut u64) -> i32;
    pub fn aranya_quic_shutdown(ep: aranya_quic_t, out_id: *mut u64) -> i32;
    pub fn aranya_quic_free_nowait(ep: aranya_quic_t) -> i32;
    pub fn aranya_quic_event_fd(ep: aranya_quic_t, out_fd: *mut c_int) -> i32;
    pub fn aranya_quic_next_event(ep: aranya_quic_t, out: *mut aranya_quic_event) -> i32;

    // --- trust at runtime, team authorization, connection list (0.2) ---
    /// `pinned_peers_len` and `revoked_peer_ids_cap` are COUNTS of 32-byte
    /// ids. `*out_revoked` may exceed `revoked_peer_ids_cap`: the ids
    /// beyond it are not written, and the call cannot be repeated to get
    /// them (the revocation already happened).
    pub fn aranya_quic_set_trust(
        ep: aranya_quic_t,
        ca_pem: *const u8,
        ca_pem_len: usize,
        pinned_peers: *const u8,
        pinned_peers_len: usize,
        revoked_peer_ids: *mut u8,
        revoked_peer_ids_cap: usize,
        out_revoked: *mut usize,
    ) -> i32;
    pub fn aranya_quic_set_identity(
        ep: aranya_quic_t,
        cert_pem: *const u8,
        cert_pem_len: usize,
        key_pem: *const u8,
        key_pem_len: usize,
    ) -> i32;
    pub fn aranya_quic_team_allow(ep: aranya_quic_t, peer_id: *const u8, team_id: *const u8) -> i32;
    /// `out_last_team` may be NULL; on `ARANYA_QUIC_OK` it receives 1 when
    /// the pair was allowed and was the peer's last team (its sync streams
    /// and queued sync messages went too), else 0.
    pub fn aranya_quic_team_revoke(
        ep: aranya_quic_t,
        peer_id: *const u8,
        team_id: *const u8,
        out_last_team: *mut u32,
    ) -> i32;
    pub fn aranya_quic_connections(
        ep: aranya_quic_t,
        out: *mut aranya_quic_connection_info,
        capacity: usize,
        info_size: usize,
        out_count: *mut usize,
    ) -> i32;
    pub fn aranya_quic_peer_id_from_pem(cert_pem: *const u8, cert_pem_len: usize, out: *mut u8) -> i32;
}
