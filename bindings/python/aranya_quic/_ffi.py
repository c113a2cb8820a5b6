"""Raw ctypes declarations of ``include/aranya_quic.h`` and the library loader.

Everything here mirrors the public C header exactly: the constants, the
structs (same field order and C types; documented exceptions of the same
ABI: ``data`` of :class:`aranya_quic_buf` and ``msg`` of
:data:`aranya_quic_log_callback`) and the signature of every function.
The safe API in :mod:`aranya_quic.endpoint` is built on top of it; use this
module directly only when you need the C API as-is.

The shared library is located, in this order:

1. the ``ARANYA_QUIC_LIB`` environment variable (a path to the ``.so``);
2. ``<repo>/build/libaranya_quic.so`` relative to this package (where
   ``make lib`` writes it).

It is loaded once (lazily, on first use, with :class:`ctypes.CDLL`) and never
unloaded: a Go c-shared library must never be ``dlclose``'d.
"""

from __future__ import annotations

import ctypes
import os
import threading
from ctypes import (
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Final

# ---------------------------------------------------------------------------
# Version
# ---------------------------------------------------------------------------

ARANYA_QUIC_VERSION_MAJOR: Final = 0
ARANYA_QUIC_VERSION_MINOR: Final = 1
ARANYA_QUIC_VERSION_PATCH: Final = 0
ARANYA_QUIC_VERSION_STRING: Final = "0.1.0"
ARANYA_QUIC_VERSION_NUMBER: Final = 1000

# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------

ARANYA_QUIC_TEAM_ID_LEN: Final = 32
ARANYA_QUIC_LABEL_MAX: Final = 255
ARANYA_QUIC_ADDR_MAX: Final = 64
ARANYA_QUIC_PEER_ID_LEN: Final = 32
#: (0.2) Buffer size for any peer address argument with its NUL: a host name
#: of up to 253 bytes or an IP literal, with brackets and port.
ARANYA_QUIC_PEER_ADDR_MAX: Final = 264
ARANYA_QUIC_FINGERPRINT_LEN: Final = 32
ARANYA_QUIC_RESET_KEY_LEN: Final = 32

# ---------------------------------------------------------------------------
# Return codes (int32_t). Never renumbered.
# ---------------------------------------------------------------------------

ARANYA_QUIC_OK: Final = 0
ARANYA_QUIC_ERR_WOULD_BLOCK: Final = -1
ARANYA_QUIC_ERR_BUFFER_TOO_SMALL: Final = -2
ARANYA_QUIC_ERR_INVALID_ARGUMENT: Final = -3
ARANYA_QUIC_ERR_INVALID_HANDLE: Final = -4
ARANYA_QUIC_ERR_CLOSED: Final = -5
ARANYA_QUIC_ERR_TIMEOUT: Final = -6
ARANYA_QUIC_ERR_TOO_LARGE: Final = -7
ARANYA_QUIC_ERR_CONNECTION: Final = -8
ARANYA_QUIC_ERR_TLS: Final = -9
ARANYA_QUIC_ERR_INTERNAL: Final = -10
ARANYA_QUIC_ERR_BAD_ADDRESS: Final = -11
ARANYA_QUIC_ERR_IO: Final = -12
ARANYA_QUIC_ERR_UNCONFIRMED: Final = -13
#: (0.2) A peer's host name could not be resolved within resolve_timeout_ms.
ARANYA_QUIC_ERR_RESOLVE: Final = -14
#: (0.2) The peer runs per-team authorization and refused the channel.
ARANYA_QUIC_ERR_NOT_AUTHORIZED: Final = -15

# ---------------------------------------------------------------------------
# Message kinds, congestion control, log levels
# ---------------------------------------------------------------------------

ARANYA_QUIC_KIND_CHANNEL: Final = 1
ARANYA_QUIC_KIND_SYNC: Final = 2

ARANYA_QUIC_CC_DEFAULT: Final = 0
ARANYA_QUIC_CC_RENO: Final = 1
ARANYA_QUIC_CC_BBR2: Final = 2

ARANYA_QUIC_LOG_OFF: Final = 0
ARANYA_QUIC_LOG_ERROR: Final = 1
ARANYA_QUIC_LOG_WARN: Final = 2
ARANYA_QUIC_LOG_INFO: Final = 3
ARANYA_QUIC_LOG_DEBUG: Final = 4

# ---------------------------------------------------------------------------
# Defaults (used for config fields left 0)
# ---------------------------------------------------------------------------

ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS: Final = 32
ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS: Final = 30000
ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS: Final = 10000
ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS: Final = 10000
ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS: Final = 5000
#: connect_timeout_ms 0: this, or send_timeout_ms / 2 when that is shorter.
ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS: Final = 5000
ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES: Final = 64 * 1024 * 1024
ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES: Final = 65536
ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER: Final = 1024
ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES: Final = 256 * 1024
ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT: Final = 1024 * 1024 * 1024
ARANYA_QUIC_DISABLED: Final = 0xFFFFFFFF  # UINT32_MAX
# Added in 0.2.
ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER: Final = 4 * 1024 * 1024
ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES: Final = 64 * 1024 * 1024
ARANYA_QUIC_DEFAULT_MAX_EVENTS: Final = 4096
ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS: Final = 5000

# ---------------------------------------------------------------------------
# Event types (aranya_quic_event.type), added in 0.2. New types may be added:
# ignore the ones you do not know.
# ---------------------------------------------------------------------------

ARANYA_QUIC_EVENT_PEER_CONNECTED: Final = 1
ARANYA_QUIC_EVENT_PEER_DISCONNECTED: Final = 2
ARANYA_QUIC_EVENT_SEND_FAILED: Final = 3
ARANYA_QUIC_EVENT_CLOSE_FINISHED: Final = 4
ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED: Final = 5
ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED: Final = 6

#: (0.2) ``aranya_quic_connection_info.bytes_in_flight`` of a connection
#: whose congestion controller does not report it (NewReno). UINT64_MAX.
ARANYA_QUIC_UNKNOWN: Final = 0xFFFFFFFFFFFFFFFF
ARANYA_QUIC_KNOWN_PEERS_MAX: Final = 4096

# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------

#: ``typedef uint64_t aranya_quic_t;`` 0 is never a valid handle.
aranya_quic_t = c_uint64

#: ``typedef void (*aranya_quic_log_callback)(void *user, uint32_t level,
#: const char *msg, size_t len);`` (0.2). ``msg`` is declared ``c_void_p``
#: rather than ``c_char_p`` so that the callback reads exactly ``len`` bytes
#: (``c_char_p`` would stop at a NUL and copy before the callback runs).
aranya_quic_log_callback = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_size_t)


class aranya_quic_config(Structure):
    """``struct aranya_quic_config``: endpoint configuration.

    Initialize with ``aranya_quic_config_init`` (sets ``struct_size`` and
    zeroes the rest). Pointer fields are ``c_char_p``/``POINTER(c_uint8)``;
    the buffers they point to must stay alive during ``aranya_quic_new``.
    """

    _fields_ = [
        ("struct_size", c_uint32),
        ("bind_addr", c_char_p),
        ("cert_pem", POINTER(c_uint8)),
        ("cert_pem_len", c_size_t),
        ("key_pem", POINTER(c_uint8)),
        ("key_pem_len", c_size_t),
        ("ca_pem", POINTER(c_uint8)),
        ("ca_pem_len", c_size_t),
        ("max_connections", c_uint32),
        ("idle_timeout_ms", c_uint32),
        ("send_timeout_ms", c_uint32),
        ("max_message_size", c_uint64),
        ("max_queue_bytes", c_uint64),
        ("pinned_peers", POINTER(c_uint8)),
        ("pinned_peers_len", c_size_t),
        ("keep_alive_ms", c_uint32),
        ("drain_timeout_ms", c_uint32),
        ("handshake_timeout_ms", c_uint32),
        ("max_queue_messages", c_uint32),
        ("max_channels_per_peer", c_uint32),
        ("congestion_control", c_uint32),
        ("log_level", c_uint32),
        ("send_buffer_bytes", c_uint32),
        ("stateless_reset_key", POINTER(c_uint8)),
        # --- added in 0.2; read only when struct_size covers them ---
        ("connect_timeout_ms", c_uint32),
        # aranya_quic_receive_callback, a nullable function pointer; NULL
        # (None) queues received messages. This binding leaves it NULL.
        ("receive_callback", c_void_p),
        ("receive_callback_user", c_void_p),
        # --- added in 0.2 (non-blocking sends, events, logging) ---
        ("max_outbound_bytes_per_peer", c_uint64),
        ("max_outbound_bytes", c_uint64),
        ("max_events", c_uint32),
        ("resolve_timeout_ms", c_uint32),
        # aranya_quic_log_callback; NULL (None) logs to stderr when
        # log_level is non-zero. The CFUNCTYPE object assigned here must be
        # kept alive by the caller for as long as the library may call it.
        ("log_callback", aranya_quic_log_callback),
        ("log_callback_user", c_void_p),
        # --- added with runtime trust and team authorization ---
        ("team_authorization", c_uint32),
    ]


class aranya_quic_channel(Structure):
    """``struct aranya_quic_channel``: where a received message came from.

    Note: ctypes turns a ``c_char`` array field into ``bytes`` cut at the
    first NUL. ``label`` may contain NUL bytes, so read it with
    :func:`channel_label_bytes` (which honours ``label_len``).
    """

    _fields_ = [
        ("addr", c_char * ARANYA_QUIC_ADDR_MAX),
        ("kind", c_uint32),
        ("sync_type", c_uint32),
        ("team_id", c_uint8 * ARANYA_QUIC_TEAM_ID_LEN),
        ("label", c_char * (ARANYA_QUIC_LABEL_MAX + 1)),
        ("label_len", c_size_t),
        ("peer_id", c_uint8 * ARANYA_QUIC_PEER_ID_LEN),
    ]


class aranya_quic_stats(Structure):
    """``struct aranya_quic_stats``: counters and gauges of an endpoint.

    Set ``struct_size = ctypes.sizeof(aranya_quic_stats)`` before calling
    ``aranya_quic_get_stats``.
    """

    _fields_ = [
        ("struct_size", c_uint32),
        ("open_connections", c_uint64),
        ("dials", c_uint64),
        ("accepts", c_uint64),
        ("evictions", c_uint64),
        ("handshake_failures", c_uint64),
        ("open_streams", c_uint64),
        ("messages_sent", c_uint64),
        ("bytes_sent", c_uint64),
        ("messages_received", c_uint64),
        ("bytes_received", c_uint64),
        ("queue_messages", c_uint64),
        ("queue_bytes", c_uint64),
        ("streams_reset", c_uint64),
        ("connections_lost", c_uint64),
        ("congestion_control", c_char * 16),
        # --- added in 0.2; filled only when struct_size covers them ---
        ("messages_unconfirmed", c_uint64),
        # --- added with non-blocking sends and events ---
        ("outbound_messages", c_uint64),
        ("outbound_bytes", c_uint64),
        ("sends_failed", c_uint64),
        ("events_dropped", c_uint64),
        # --- added with runtime trust and team authorization ---
        ("connections_revoked", c_uint64),
        ("messages_revoked", c_uint64),
        ("streams_refused", c_uint64),
    ]


class aranya_quic_message(Structure):
    """``struct aranya_quic_message`` (0.2): one message taken by
    ``aranya_quic_receive_batch``; its payload is ``buf[offset:offset + len]``
    of the buffer passed to that call."""

    _fields_ = [
        ("channel", aranya_quic_channel),
        ("offset", c_size_t),
        ("len", c_size_t),
    ]


class aranya_quic_buf(Structure):
    """``struct aranya_quic_buf`` (0.2): one message for
    ``aranya_quic_send_batch``, ``len`` bytes at ``data``.

    ``data`` is ``const uint8_t *`` in C and declared ``c_char_p`` here (the
    same ABI): a ``bytes`` object can then be assigned to it directly, with
    no cast, and ctypes keeps that object alive as long as the struct (or
    the array holding it). The length is always ``len``, never a NUL.
    """

    _fields_ = [
        ("data", c_char_p),
        ("len", c_size_t),
    ]


class aranya_quic_event(Structure):
    """``struct aranya_quic_event`` (0.2): one event, as
    ``aranya_quic_next_event`` returns it. Set ``struct_size =
    ctypes.sizeof(aranya_quic_event)`` before the call. Fields that do not
    apply to the event's type are zero."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("type", c_uint32),
        ("error_code", c_int32),
        ("id", c_uint64),
        ("addr", c_char * ARANYA_QUIC_PEER_ADDR_MAX),
        ("peer_id", c_uint8 * ARANYA_QUIC_PEER_ID_LEN),
        ("channel", aranya_quic_channel),
        ("unconfirmed", c_uint64),
        ("dropped_before", c_uint64),
        ("reason", c_char * 256),
    ]


class aranya_quic_connection_info(Structure):
    """``struct aranya_quic_connection_info`` (0.2): one connection, as
    ``aranya_quic_connections`` lists it. The library sets ``struct_size``
    to the bytes it filled (pass ``ctypes.sizeof`` of this struct as the
    call's ``info_size``). ``bytes_in_flight`` is :data:`ARANYA_QUIC_UNKNOWN`
    when the connection's controller does not report it."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("dialed", c_uint32),
        ("draining", c_uint32),
        ("addr", c_char * ARANYA_QUIC_ADDR_MAX),
        ("peer_id", c_uint8 * ARANYA_QUIC_PEER_ID_LEN),
        ("connected_unix_ms", c_uint64),
        ("connected_ms", c_uint64),
        ("smoothed_rtt_us", c_uint64),
        ("min_rtt_us", c_uint64),
        ("latest_rtt_us", c_uint64),
        ("congestion_window", c_uint64),
        ("bytes_in_flight", c_uint64),
        ("packets_sent", c_uint64),
        ("packets_received", c_uint64),
        ("packets_lost", c_uint64),
        ("messages_sent", c_uint64),
        ("bytes_sent", c_uint64),
        ("messages_received", c_uint64),
        ("bytes_received", c_uint64),
        ("congestion_control", c_char * 16),
    ]


def channel_label_bytes(ch: aranya_quic_channel) -> bytes:
    """The ``label_len`` bytes of ``ch.label``, NUL bytes included."""
    n = min(int(ch.label_len), ARANYA_QUIC_LABEL_MAX)
    return ctypes.string_at(ctypes.addressof(ch) + aranya_quic_channel.label.offset, n)


# ---------------------------------------------------------------------------
# Function signatures: name -> (restype, argtypes). Every function of the
# header is listed; a missing symbol is an error when the library loads.
# ---------------------------------------------------------------------------

_u8p = POINTER(c_uint8)

FUNCTIONS: Final[dict[str, tuple[type | None, list[type]]]] = {
    # int32_t aranya_quic_config_init(aranya_quic_config *cfg);
    "aranya_quic_config_init": (c_int32, [POINTER(aranya_quic_config)]),
    # int32_t aranya_quic_config_init_sized(aranya_quic_config *cfg, size_t size);
    "aranya_quic_config_init_sized": (c_int32, [POINTER(aranya_quic_config), c_size_t]),
    # int32_t aranya_quic_new(const aranya_quic_config *cfg, aranya_quic_t *out);
    "aranya_quic_new": (c_int32, [POINTER(aranya_quic_config), POINTER(aranya_quic_t)]),
    # int32_t aranya_quic_free(aranya_quic_t ep);
    "aranya_quic_free": (c_int32, [aranya_quic_t]),
    # int32_t aranya_quic_local_addr(aranya_quic_t ep, char *buf, size_t buf_len, size_t *out_len);
    "aranya_quic_local_addr": (
        c_int32,
        [aranya_quic_t, POINTER(c_char), c_size_t, POINTER(c_size_t)],
    ),
    # int32_t aranya_quic_send(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
    #                          const char *label, size_t label_len, const uint8_t *msg,
    #                          size_t msg_len);
    "aranya_quic_send": (
        c_int32,
        [aranya_quic_t, c_char_p, _u8p, c_char_p, c_size_t, _u8p, c_size_t],
    ),
    # int32_t aranya_quic_send_sync(aranya_quic_t ep, const char *addr, uint32_t sync_type,
    #                               const uint8_t *msg, size_t msg_len);
    "aranya_quic_send_sync": (c_int32, [aranya_quic_t, c_char_p, c_uint32, _u8p, c_size_t]),
    # int32_t aranya_quic_receive(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
    #                             aranya_quic_channel *out_channel, size_t *out_len);
    "aranya_quic_receive": (
        c_int32,
        [aranya_quic_t, _u8p, c_size_t, POINTER(aranya_quic_channel), POINTER(c_size_t)],
    ),
    # int32_t aranya_quic_receive_timeout(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
    #                                     aranya_quic_channel *out_channel, size_t *out_len,
    #                                     int32_t timeout_ms);
    "aranya_quic_receive_timeout": (
        c_int32,
        [
            aranya_quic_t,
            _u8p,
            c_size_t,
            POINTER(aranya_quic_channel),
            POINTER(c_size_t),
            c_int32,
        ],
    ),
    # int32_t aranya_quic_receive_fd(aranya_quic_t ep, int *out_fd);
    "aranya_quic_receive_fd": (c_int32, [aranya_quic_t, POINTER(c_int)]),
    # int32_t aranya_quic_close(aranya_quic_t ep, const char *addr);
    "aranya_quic_close": (c_int32, [aranya_quic_t, c_char_p]),
    # int32_t aranya_quic_get_stats(aranya_quic_t ep, aranya_quic_stats *out);
    "aranya_quic_get_stats": (c_int32, [aranya_quic_t, POINTER(aranya_quic_stats)]),
    # const char *aranya_quic_strerror(int32_t code);
    "aranya_quic_strerror": (c_char_p, [c_int32]),
    # const char *aranya_quic_last_error(void);
    "aranya_quic_last_error": (c_char_p, []),
    # const char *aranya_quic_version(void);
    "aranya_quic_version": (c_char_p, []),
    # --- added in 0.2 ---
    # int32_t aranya_quic_receive_batch(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
    #                                   aranya_quic_message *msgs, size_t max_msgs,
    #                                   size_t *out_count, int32_t timeout_ms);
    "aranya_quic_receive_batch": (
        c_int32,
        [
            aranya_quic_t,
            _u8p,
            c_size_t,
            POINTER(aranya_quic_message),
            c_size_t,
            POINTER(c_size_t),
            c_int32,
        ],
    ),
    # int32_t aranya_quic_send_batch(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
    #                                const char *label, size_t label_len,
    #                                const aranya_quic_buf *msgs, size_t count, size_t *out_sent);
    "aranya_quic_send_batch": (
        c_int32,
        [
            aranya_quic_t,
            c_char_p,
            _u8p,
            c_char_p,
            c_size_t,
            POINTER(aranya_quic_buf),
            c_size_t,
            POINTER(c_size_t),
        ],
    ),
    # int32_t aranya_quic_send_sync_batch(aranya_quic_t ep, const char *addr, uint32_t sync_type,
    #                                     const aranya_quic_buf *msgs, size_t count,
    #                                     size_t *out_sent);
    "aranya_quic_send_sync_batch": (
        c_int32,
        [aranya_quic_t, c_char_p, c_uint32, POINTER(aranya_quic_buf), c_size_t, POINTER(c_size_t)],
    ),
    # --- non-blocking calls and events, added in 0.2 ---
    # int32_t aranya_quic_send_nowait(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
    #                                 const char *label, size_t label_len, const uint8_t *msg,
    #                                 size_t msg_len, uint64_t *out_id);
    "aranya_quic_send_nowait": (
        c_int32,
        [aranya_quic_t, c_char_p, _u8p, c_char_p, c_size_t, _u8p, c_size_t, POINTER(c_uint64)],
    ),
    # int32_t aranya_quic_send_sync_nowait(aranya_quic_t ep, const char *addr, uint32_t sync_type,
    #                                      const uint8_t *msg, size_t msg_len, uint64_t *out_id);
    "aranya_quic_send_sync_nowait": (
        c_int32,
        [aranya_quic_t, c_char_p, c_uint32, _u8p, c_size_t, POINTER(c_uint64)],
    ),
    # int32_t aranya_quic_send_batch_nowait(aranya_quic_t ep, const char *addr,
    #                                       const uint8_t *team_id, const char *label,
    #                                       size_t label_len, const aranya_quic_buf *msgs,
    #                                       size_t count, size_t *out_sent,
    #                                       uint64_t *out_first_id);
    "aranya_quic_send_batch_nowait": (
        c_int32,
        [
            aranya_quic_t,
            c_char_p,
            _u8p,
            c_char_p,
            c_size_t,
            POINTER(aranya_quic_buf),
            c_size_t,
            POINTER(c_size_t),
            POINTER(c_uint64),
        ],
    ),
    # int32_t aranya_quic_send_sync_batch_nowait(aranya_quic_t ep, const char *addr,
    #                                            uint32_t sync_type, const aranya_quic_buf *msgs,
    #                                            size_t count, size_t *out_sent,
    #                                            uint64_t *out_first_id);
    "aranya_quic_send_sync_batch_nowait": (
        c_int32,
        [
            aranya_quic_t,
            c_char_p,
            c_uint32,
            POINTER(aranya_quic_buf),
            c_size_t,
            POINTER(c_size_t),
            POINTER(c_uint64),
        ],
    ),
    # int32_t aranya_quic_send_fd(aranya_quic_t ep, int *out_fd);
    "aranya_quic_send_fd": (c_int32, [aranya_quic_t, POINTER(c_int)]),
    # int32_t aranya_quic_close_nowait(aranya_quic_t ep, const char *addr, uint64_t *out_id);
    "aranya_quic_close_nowait": (c_int32, [aranya_quic_t, c_char_p, POINTER(c_uint64)]),
    # int32_t aranya_quic_shutdown(aranya_quic_t ep, uint64_t *out_id);
    "aranya_quic_shutdown": (c_int32, [aranya_quic_t, POINTER(c_uint64)]),
    # int32_t aranya_quic_free_nowait(aranya_quic_t ep);
    "aranya_quic_free_nowait": (c_int32, [aranya_quic_t]),
    # int32_t aranya_quic_event_fd(aranya_quic_t ep, int *out_fd);
    "aranya_quic_event_fd": (c_int32, [aranya_quic_t, POINTER(c_int)]),
    # int32_t aranya_quic_next_event(aranya_quic_t ep, aranya_quic_event *out);
    "aranya_quic_next_event": (c_int32, [aranya_quic_t, POINTER(aranya_quic_event)]),
    # --- trust at runtime, team authorization and the connection list ---
    # int32_t aranya_quic_set_trust(aranya_quic_t ep, const uint8_t *ca_pem, size_t ca_pem_len,
    #                               const uint8_t *pinned_peers, size_t pinned_peers_len,
    #                               uint8_t *revoked_peer_ids, size_t revoked_peer_ids_cap,
    #                               size_t *out_revoked);
    "aranya_quic_set_trust": (
        c_int32,
        [aranya_quic_t, _u8p, c_size_t, _u8p, c_size_t, _u8p, c_size_t, POINTER(c_size_t)],
    ),
    # int32_t aranya_quic_set_identity(aranya_quic_t ep, const uint8_t *cert_pem,
    #                                  size_t cert_pem_len, const uint8_t *key_pem,
    #                                  size_t key_pem_len);
    "aranya_quic_set_identity": (c_int32, [aranya_quic_t, _u8p, c_size_t, _u8p, c_size_t]),
    # int32_t aranya_quic_team_allow(aranya_quic_t ep, const uint8_t *peer_id,
    #                                const uint8_t *team_id);
    "aranya_quic_team_allow": (c_int32, [aranya_quic_t, _u8p, _u8p]),
    # int32_t aranya_quic_team_revoke(aranya_quic_t ep, const uint8_t *peer_id,
    #                                 const uint8_t *team_id, uint32_t *out_last_team);
    "aranya_quic_team_revoke": (c_int32, [aranya_quic_t, _u8p, _u8p, POINTER(c_uint32)]),
    # int32_t aranya_quic_connections(aranya_quic_t ep, aranya_quic_connection_info *out,
    #                                 size_t capacity, size_t info_size, size_t *out_count);
    "aranya_quic_connections": (
        c_int32,
        [aranya_quic_t, POINTER(aranya_quic_connection_info), c_size_t, c_size_t, POINTER(c_size_t)],
    ),
    # int32_t aranya_quic_peer_id_from_pem(const uint8_t *cert_pem, size_t cert_pem_len,
    #                                      uint8_t *out);
    "aranya_quic_peer_id_from_pem": (c_int32, [_u8p, c_size_t, _u8p]),
}

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

#: Environment variable naming the shared library to load.
ENV_VAR: Final = "ARANYA_QUIC_LIB"
LIB_NAME: Final = "libaranya_quic.so"


class LibraryNotFoundError(ImportError):
    """The shared library could not be found or loaded."""


class LibraryVersionError(ImportError):
    """The shared library's version does not match this package's header."""


def default_library_path() -> Path:
    """``<repo>/build/libaranya_quic.so``, relative to this package's source."""
    # bindings/python/aranya_quic/_ffi.py -> <repo>
    return Path(__file__).resolve().parents[3] / "build" / LIB_NAME


def library_path() -> Path:
    """The path the library is loaded from (``$ARANYA_QUIC_LIB`` or the default)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return default_library_path()


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_forked_child = False


def _mark_forked_child() -> None:
    global _forked_child
    _forked_child = True


def lib() -> ctypes.CDLL:
    """The loaded library with every function's ``argtypes``/``restype`` set.

    Loads it on the first call (thread-safe) and returns the same object
    afterwards.

    Raises:
        LibraryNotFoundError: neither ``$ARANYA_QUIC_LIB`` nor the repo's
            build folder holds a loadable library, or a symbol is missing.
        LibraryVersionError: the library's major/minor version differs from
            the header this package mirrors.
        RuntimeError: this process was forked after the library was loaded
            (the Go runtime does not survive ``fork()``).
    """
    global _lib
    if _forked_child:
        raise RuntimeError(
            "aranya_quic: this process was forked after libaranya_quic was loaded; "
            "the Go runtime does not survive fork() without exec. Use "
            "multiprocessing's 'spawn' (or 'forkserver') start method."
        )
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            _lib = _load()
            os.register_at_fork(after_in_child=_mark_forked_child)
        return _lib


def _load() -> ctypes.CDLL:
    env = os.environ.get(ENV_VAR)
    default = default_library_path()
    path = Path(env) if env else default
    if not path.is_file():
        if env:
            env_part = f"${ENV_VAR}={env!r}: no such file"
            default_part = f"{default}: not tried, because ${ENV_VAR} is set"
        else:
            env_part = f"${ENV_VAR}: not set"
            default_part = f"{default}: no such file"
        raise LibraryNotFoundError(
            f"aranya_quic: {LIB_NAME} not found. Looked at {env_part}; and at the "
            f"repo's build folder, {default_part}. Run `make lib` in the repo root, "
            f"or set {ENV_VAR} to the path of {LIB_NAME}."
        )
    try:
        cdll = ctypes.CDLL(str(path))
    except OSError as e:
        raise LibraryNotFoundError(
            f"aranya_quic: {path} exists but could not be loaded: {e}. "
            f"Rebuild it with `make lib`, or point ${ENV_VAR} at a working {LIB_NAME} "
            f"(default location: {default})."
        ) from e
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(cdll, name)
        except AttributeError as e:
            raise LibraryNotFoundError(
                f"aranya_quic: {path} does not export {name}; it is not a "
                f"libaranya_quic matching include/aranya_quic.h (rebuild with `make lib`)"
            ) from e
        fn.restype = restype
        fn.argtypes = argtypes
    version = (cdll.aranya_quic_version() or b"").decode("utf-8", "replace")
    parts = version.split(".")
    want = [str(ARANYA_QUIC_VERSION_MAJOR), str(ARANYA_QUIC_VERSION_MINOR)]
    if parts[:2] != want:
        raise LibraryVersionError(
            f"aranya_quic: {path} is version {version!r}, but this package mirrors "
            f"the header of version {ARANYA_QUIC_VERSION_STRING}"
        )
    return cdll
