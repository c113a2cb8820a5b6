"""The safe Python API: :class:`Endpoint`, :class:`Config`, :class:`Message`, :class:`Stats`."""

from __future__ import annotations

import array
import asyncio
import collections
import ctypes
import dataclasses
import enum
import itertools
import math
import os
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from ctypes import POINTER, byref, c_int, c_size_t, c_uint8
from typing import Any, Union

from . import _ffi
from .errors import AranyaQuicError, Closed, InvalidArgument, check, error_from_code, last_error

__all__ = [
    "Address",
    "PemSource",
    "Kind",
    "CongestionControl",
    "LogLevel",
    "Config",
    "Message",
    "Stats",
    "Endpoint",
    "RECEIVE_BUFFER_INITIAL",
    "RECEIVE_BATCH_DEFAULT",
]

#: A peer address: ``"ip:port"``, ``"[ipv6]:port"`` or a ``(host, port)`` tuple
#: whose host is an IP address literal (no name resolution is done).
Address = Union[str, tuple[str, int]]

#: Certificate/key material: ``bytes``/``bytearray``/``memoryview`` hold PEM
#: contents; a ``str`` starting with ``-----BEGIN`` is PEM text; any other
#: ``str`` or an :class:`os.PathLike` is the path of a PEM file.
PemSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]

#: Size of the receive buffer :meth:`Endpoint.receive` starts with.
RECEIVE_BUFFER_INITIAL = 64 * 1024
#: Largest receive buffer kept between calls (per thread); bigger buffers,
#: grown for one large message, are dropped after use.
RECEIVE_BUFFER_KEEP_MAX = 1024 * 1024
#: Longest single wait in the library while :meth:`Endpoint.receive` blocks,
#: so that signals (Ctrl-C) are handled at least this often. Milliseconds.
_WAIT_SLICE_MS = 1000
#: Messages :meth:`Endpoint.receive_batch` takes per call by default, and what
#: iteration and :meth:`Endpoint.receive_async` take per library call.
RECEIVE_BATCH_DEFAULT = 64

_U8P = POINTER(c_uint8)
_UINT32_MAX = 0xFFFFFFFF
_UINT64_MAX = 0xFFFFFFFFFFFFFFFF


class Kind(enum.IntEnum):
    """What a received message is (``aranya_quic_channel.kind``)."""

    #: An application message on a (peer, team id, label) channel.
    CHANNEL = _ffi.ARANYA_QUIC_KIND_CHANNEL
    #: An Aranya sync message; :attr:`Message.sync_type` says which.
    SYNC = _ffi.ARANYA_QUIC_KIND_SYNC


class CongestionControl(enum.IntEnum):
    """Values of :attr:`Config.congestion_control`."""

    #: BBRv2 in the library ``make lib`` builds (quic-go with the
    #: congestion hook), NewReno in a build without it.
    DEFAULT = _ffi.ARANYA_QUIC_CC_DEFAULT
    #: quic-go's NewReno.
    RENO = _ffi.ARANYA_QUIC_CC_RENO
    #: BBRv2; rejected (InvalidArgument) by a build without the hook.
    BBR2 = _ffi.ARANYA_QUIC_CC_BBR2


class LogLevel(enum.IntEnum):
    """Values of :attr:`Config.log_level` (logs go to stderr)."""

    OFF = _ffi.ARANYA_QUIC_LOG_OFF
    ERROR = _ffi.ARANYA_QUIC_LOG_ERROR
    WARN = _ffi.ARANYA_QUIC_LOG_WARN
    INFO = _ffi.ARANYA_QUIC_LOG_INFO
    DEBUG = _ffi.ARANYA_QUIC_LOG_DEBUG


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _read_pem(value: PemSource, name: str) -> bytes:
    """PEM bytes from a :data:`PemSource` (see its rules)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("utf-8")
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as f:
            return f.read()
    raise TypeError(f"{name}: expected PEM bytes, PEM text or a path, got {type(value).__name__}")


#: _format_addr's results for string addresses: a daemon sends to few peers,
#: over and over. Cleared when it grows past _ADDR_CACHE_MAX.
_ADDR_CACHE: dict[str, bytes] = {}
_ADDR_CACHE_MAX = 1024


def _format_addr(addr: Address) -> bytes:
    """``addr`` as the NUL-free bytes of ``"ip:port"`` / ``"[ipv6]:port"``."""
    if type(addr) is str:
        raw = _ADDR_CACHE.get(addr)
        if raw is None:
            raw = _format_addr_uncached(addr)
            if len(_ADDR_CACHE) >= _ADDR_CACHE_MAX:
                _ADDR_CACHE.clear()
            _ADDR_CACHE[addr] = raw
        return raw
    return _format_addr_uncached(addr)


def _format_addr_uncached(addr: Address) -> bytes:
    if isinstance(addr, tuple):
        if len(addr) < 2:
            raise InvalidArgument(
                _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT, f"address tuple {addr!r} needs (host, port)"
            )
        host, port = str(addr[0]), int(addr[1])
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    elif isinstance(addr, str):
        text = addr
    else:
        raise TypeError(f"address: expected str or (host, port), got {type(addr).__name__}")
    raw = text.encode("utf-8")
    if b"\0" in raw:
        # A C string cannot carry it; the library would see a shorter address.
        raise error_from_code(
            _ffi.ARANYA_QUIC_ERR_BAD_ADDRESS, f"address {text!r} contains a NUL byte"
        )
    return raw


def _as_u8(data: Any, name: str) -> tuple[Any, int, Any]:
    """A ``uint8_t *`` and length for a bytes-like object, plus what keeps it alive.

    ``bytes`` and writable buffers are passed without a copy.
    """
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), _U8P), len(data), data
    try:
        mv = memoryview(data).cast("B")
    except TypeError as e:
        raise TypeError(f"{name}: expected a bytes-like object, got {type(data).__name__}") from e
    n = mv.nbytes
    if n == 0:
        return None, 0, None
    arr = (c_uint8 * n).from_buffer_copy(mv) if mv.readonly else (c_uint8 * n).from_buffer(mv)
    return ctypes.cast(arr, _U8P), n, arr


def _normalize_timeout(timeout: float | None) -> float | None:
    """``None`` for an endless wait, else a finite number of seconds >= 0."""
    if timeout is None:
        return None
    try:
        timeout = float(timeout)
    except OverflowError:  # an int too large for a float: forever
        timeout = math.inf if timeout > 0 else -math.inf
    if not timeout >= 0:
        raise ValueError(f"timeout must be None or >= 0, got {timeout!r}")
    return None if math.isinf(timeout) else timeout


def _wait_ms(deadline: float | None) -> int:
    """How long one library wait may last: a slice of an endless wait, or
    what is left before ``deadline``."""
    if deadline is None:
        return _WAIT_SLICE_MS
    left_ms = (deadline - time.monotonic()) * 1000
    # Compare before ceil(): a huge timeout must not overflow.
    return _WAIT_SLICE_MS if left_ms >= _WAIT_SLICE_MS else max(0, math.ceil(left_ms))


def _layout(fields: list[tuple[int, str]], size: int) -> struct.Struct:
    """A struct.Struct reading the given (offset, format) fields of a C
    struct of ``size`` bytes in one C-level call (much faster than ctypes
    field access); offsets come from the ctypes declarations, so it follows
    :mod:`_ffi`."""
    fmt = "="  # native byte order, no implicit padding: the offsets say where
    for offset, f in fields:
        pad = offset - struct.calcsize(fmt)
        assert pad >= 0, "fields in offset order"
        fmt += "x" * pad + f
    fmt += "x" * (size - struct.calcsize(fmt))
    return struct.Struct(fmt)


def _channel_fields(base: int) -> list[tuple[int, str]]:
    """addr, kind, sync_type, team_id, label, label_len, peer_id of an
    ``aranya_quic_channel`` at ``base``."""
    ch = _ffi.aranya_quic_channel
    size_t = {4: "I", 8: "Q"}[ctypes.sizeof(c_size_t)]
    return [
        (base + ch.addr.offset, f"{_ffi.ARANYA_QUIC_ADDR_MAX}s"),
        (base + ch.kind.offset, "I"),
        (base + ch.sync_type.offset, "I"),
        (base + ch.team_id.offset, f"{_ffi.ARANYA_QUIC_TEAM_ID_LEN}s"),
        (base + ch.label.offset, f"{_ffi.ARANYA_QUIC_LABEL_MAX + 1}s"),
        (base + ch.label_len.offset, size_t),
        (base + ch.peer_id.offset, f"{_ffi.ARANYA_QUIC_PEER_ID_LEN}s"),
    ]


#: One ``aranya_quic_channel``: (addr, kind, sync_type, team_id, label,
#: label_len, peer_id).
_CHANNEL = _layout(_channel_fields(0), ctypes.sizeof(_ffi.aranya_quic_channel))
#: One ``aranya_quic_message``: the channel's fields, then offset, len.
_RECORD = _layout(
    _channel_fields(_ffi.aranya_quic_message.channel.offset)
    + [
        (_ffi.aranya_quic_message.offset.offset, {4: "I", 8: "Q"}[ctypes.sizeof(c_size_t)]),
        (_ffi.aranya_quic_message.len.offset, {4: "I", 8: "Q"}[ctypes.sizeof(c_size_t)]),
    ],
    ctypes.sizeof(_ffi.aranya_quic_message),
)
_KINDS: dict[int, int] = {int(k): k for k in Kind}
_LABEL_MAX = _ffi.ARANYA_QUIC_LABEL_MAX


#: Batches of at least this many messages, totalling at most
#: _JOIN_MAX_BYTES, are copied into one buffer by _buf_array: one copy of a
#: few KiB costs less than ctypes' per-element bookkeeping of pointers.
_JOIN_MIN_MSGS = 8
_JOIN_MAX_BYTES = 256 * 1024
#: _joined_array writes aranya_quic_buf records as pairs of 64-bit words.
_WORDS_ARE_RECORDS = (
    ctypes.sizeof(_ffi.aranya_quic_buf) == 16
    and _ffi.aranya_quic_buf.data.offset == 0
    and _ffi.aranya_quic_buf.len.offset == 8
)


def _buf_array(msgs: Iterable[Any], name: str) -> tuple[Any, int, list[Any]]:
    """A ctypes array of ``aranya_quic_buf`` for ``msgs`` (``None`` when empty),
    its length, and what keeps the payloads alive.

    Many small messages are joined into one buffer and described by offsets
    into it (see _JOIN_MIN_MSGS). Otherwise ``bytes`` are passed without a
    copy (the array itself keeps them alive), and other bytes-like objects
    go through :func:`_as_u8`.
    """
    if isinstance(msgs, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"{name}: expected a sequence of messages, got a single {type(msgs).__name__}")
    items = msgs if isinstance(msgs, (list, tuple)) else list(msgs)
    n = len(items)
    if n == 0:
        return None, 0, []
    if n >= _JOIN_MIN_MSGS:
        joined = _joined_array(items)
        if joined is not None:
            return joined
    array_type = _ffi.aranya_quic_buf * n
    if all(type(m) is bytes for m in items):
        return array_type(*[(m, len(m)) for m in items]), n, []
    arr = array_type()
    keep: list[Any] = []
    for i, m in enumerate(items):
        if type(m) is bytes:
            arr[i].data, arr[i].len = m, len(m)
            continue
        ptr, size, owner = _as_u8(m, f"{name}[{i}]")
        keep.append(owner)
        arr[i].data = ctypes.cast(ptr, ctypes.c_char_p) if size else None
        arr[i].len = size
    return arr, n, keep


_VOIDP = ctypes.c_void_p
#: The send functions declared a second time, with every ``const uint8_t *``
#: as ``c_void_p`` (the same ABI): then a ``bytes`` object (or a ctypes
#: array) is passed as it is, without the cast ``POINTER(c_uint8)`` needs,
#: which costs more than the rest of a small send's Python side. The exact
#: declarations in :mod:`_ffi` are separate function objects, unchanged.
_FAST_ARGTYPES: dict[str, list[Any]] = {
    "aranya_quic_send": [_ffi.aranya_quic_t, ctypes.c_char_p, _VOIDP, ctypes.c_char_p, c_size_t, _VOIDP, c_size_t],
    "aranya_quic_send_sync": [_ffi.aranya_quic_t, ctypes.c_char_p, ctypes.c_uint32, _VOIDP, c_size_t],
    "aranya_quic_send_batch": [
        _ffi.aranya_quic_t,
        ctypes.c_char_p,
        _VOIDP,
        ctypes.c_char_p,
        c_size_t,
        POINTER(_ffi.aranya_quic_buf),
        c_size_t,
        POINTER(c_size_t),
    ],
}
_fast_fns: dict[str, Any] = {}


def _fast(name: str) -> Any:
    """The :data:`_FAST_ARGTYPES` declaration of ``name``."""
    lib = _ffi.lib()  # also refuses a forked child, every call
    fn = _fast_fns.get(name)
    if fn is None:
        fn = lib[name]  # a new function object, not the one _ffi set up
        fn.restype = ctypes.c_int32
        fn.argtypes = _FAST_ARGTYPES[name]
        _fast_fns[name] = fn
    return fn


def _team_id_bytes(team_id: Any, function: str) -> bytes:
    """The 32 bytes of ``team_id`` (checked), as ``bytes``."""
    if type(team_id) is bytes and len(team_id) == _ffi.ARANYA_QUIC_TEAM_ID_LEN:
        return team_id
    if not isinstance(team_id, (bytes, bytearray, memoryview)) or len(team_id) != (
        _ffi.ARANYA_QUIC_TEAM_ID_LEN
    ):
        raise InvalidArgument(
            _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
            f"team_id must be {_ffi.ARANYA_QUIC_TEAM_ID_LEN} bytes, got "
            + (f"{len(team_id)} bytes" if hasattr(team_id, "__len__") else type(team_id).__name__),
            function,
        )
    return bytes(team_id)


def _msg_arg(message: Any) -> tuple[Any, int, Any]:
    """A ``c_void_p`` argument and length for a bytes-like message, plus what
    keeps it alive (``bytes`` go as they are)."""
    if type(message) is bytes:
        return message, len(message), None
    return _as_u8(message, "message")


def _joined_array(items: Sequence[Any]) -> tuple[Any, int, list[Any]] | None:
    """_buf_array for many small messages: the payloads copied one after
    another into one bytearray, and the records written as an array of
    (address, length) machine words viewed as ``aranya_quic_buf``. ``None``
    when the total is too large for a copy to pay, or an item's size is not
    its byte length (then _buf_array's per-item path reports it)."""
    if not _WORDS_ARE_RECORDS:  # pragma: no cover
        return None
    try:
        sizes = array.array("Q", [memoryview(m).nbytes for m in items])
    except TypeError:
        return None  # not bytes-like: the per-item path names the culprit
    total = sum(sizes)
    if total > _JOIN_MAX_BYTES:
        return None
    n = len(items)
    if total:
        try:
            blob = bytearray().join(items)
        except (TypeError, BufferError, ValueError):
            return None
        if len(blob) != total:  # pragma: no cover - a buffer that joins differently
            return None
        base = ctypes.addressof((ctypes.c_char * total).from_buffer(blob))
    else:
        # All empty: NULL data with length 0 is what the header allows.
        blob, base = bytearray(), 0
    words = array.array("Q", bytes(16 * n))
    offsets = array.array("Q", itertools.accumulate(sizes, initial=base))
    del offsets[n]
    words[0::2] = offsets  # data
    words[1::2] = sizes  # len
    return (_ffi.aranya_quic_buf * n).from_buffer(words), n, [blob, words]


def _check_uint(value: int, name: str, maximum: int) -> int:
    """``value`` if it fits the C field, else :class:`InvalidArgument` (ctypes
    would silently truncate it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise InvalidArgument(
            _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT, f"{name}={value} is out of range 0..{maximum}"
        )
    return value


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


@dataclasses.dataclass(kw_only=True)
class Config:
    """Endpoint configuration: the fields of ``aranya_quic_config``.

    Integer fields left at 0 take the library's defaults
    (``ARANYA_QUIC_DEFAULT_*``). ``send_timeout_ms`` and ``keep_alive_ms``
    accept :data:`aranya_quic.DISABLED`. The library validates ranges
    (:class:`~aranya_quic.InvalidArgument` from :class:`Endpoint`).

    ``cert``, ``key`` and ``ca`` are :data:`PemSource` values: PEM bytes,
    PEM text, or a path to a PEM file.
    """

    #: This endpoint's certificate chain (leaf first).
    cert: PemSource
    #: The private key of the leaf certificate.
    key: PemSource
    #: Certificates of the CAs whose peers are trusted.
    ca: PemSource
    #: Local UDP address, e.g. ``"127.0.0.1:0"`` (port 0: any free port, see
    #: :attr:`Endpoint.local_addr`) or ``"[::]:4433"``.
    bind_addr: str = "127.0.0.1:0"
    max_connections: int = 0
    idle_timeout_ms: int = 0
    send_timeout_ms: int = 0
    max_message_size: int = 0
    max_queue_bytes: int = 0
    #: SHA-256 fingerprints (32 bytes each) of the DER leaf certificates of
    #: the only peers accepted, in addition to the CA check. Empty: no pinning.
    pinned_peers: Sequence[bytes] = ()
    keep_alive_ms: int = 0
    #: Bounds the graceful close of one connection (:meth:`Endpoint.close`,
    #: :meth:`Endpoint.close_connection`, eviction); messages still
    #: unconfirmed when it passes raise :class:`~aranya_quic.Unconfirmed`.
    drain_timeout_ms: int = 0
    handshake_timeout_ms: int = 0
    #: Bounds one outgoing dial (handshake and the peer's confirmation); a
    #: peer that does not answer within it fails the send with
    #: :class:`~aranya_quic.ConnectionFailed`. Must be shorter than
    #: ``send_timeout_ms``. 0: ``ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS``, or
    #: ``send_timeout_ms / 2`` when that is shorter.
    connect_timeout_ms: int = 0
    max_queue_messages: int = 0
    max_channels_per_peer: int = 0
    congestion_control: int = CongestionControl.DEFAULT
    log_level: int = LogLevel.OFF
    send_buffer_bytes: int = 0
    #: 32 bytes used as the QUIC stateless reset key; ``None``: derived from
    #: the private key.
    stateless_reset_key: bytes | None = None

    _UINT32_FIELDS = (
        "max_connections",
        "idle_timeout_ms",
        "send_timeout_ms",
        "keep_alive_ms",
        "drain_timeout_ms",
        "handshake_timeout_ms",
        "max_queue_messages",
        "max_channels_per_peer",
        "congestion_control",
        "log_level",
        "send_buffer_bytes",
        "connect_timeout_ms",
    )
    _UINT64_FIELDS = ("max_message_size", "max_queue_bytes")

    def _to_c(self) -> tuple[_ffi.aranya_quic_config, list[Any]]:
        """The C struct and the objects that must outlive ``aranya_quic_new``."""
        # What aranya_quic_config_init does (ctypes structs start zeroed), done
        # here because config_init writes the *library's* sizeof: a newer
        # library with appended fields would write past this smaller struct.
        cfg = _ffi.aranya_quic_config()
        cfg.struct_size = ctypes.sizeof(_ffi.aranya_quic_config)
        keep: list[Any] = []

        bind = self.bind_addr.encode("utf-8")
        if b"\0" in bind:
            raise error_from_code(
                _ffi.ARANYA_QUIC_ERR_BAD_ADDRESS, f"bind_addr {self.bind_addr!r} contains a NUL byte"
            )
        keep.append(bind)
        cfg.bind_addr = bind

        for field in ("cert", "key", "ca"):
            pem = _read_pem(getattr(self, field), field)
            ptr, n, owner = _as_u8(pem, field)
            keep.append(owner)
            setattr(cfg, f"{field}_pem", ptr)
            setattr(cfg, f"{field}_pem_len", n)

        for name in self._UINT32_FIELDS:
            setattr(cfg, name, _check_uint(int(getattr(self, name)), name, _UINT32_MAX))
        for name in self._UINT64_FIELDS:
            setattr(cfg, name, _check_uint(int(getattr(self, name)), name, _UINT64_MAX))

        if self.pinned_peers:
            fps = list(self.pinned_peers)
            for i, fp in enumerate(fps):
                if len(fp) != _ffi.ARANYA_QUIC_FINGERPRINT_LEN:
                    raise InvalidArgument(
                        _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
                        f"pinned_peers[{i}] is {len(fp)} bytes, "
                        f"not {_ffi.ARANYA_QUIC_FINGERPRINT_LEN}",
                    )
            ptr, n, owner = _as_u8(b"".join(bytes(fp) for fp in fps), "pinned_peers")
            keep.append(owner)
            cfg.pinned_peers = ptr
            cfg.pinned_peers_len = n

        if self.stateless_reset_key is not None:
            if len(self.stateless_reset_key) != _ffi.ARANYA_QUIC_RESET_KEY_LEN:
                raise InvalidArgument(
                    _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
                    f"stateless_reset_key is {len(self.stateless_reset_key)} bytes, "
                    f"not {_ffi.ARANYA_QUIC_RESET_KEY_LEN}",
                )
            ptr, _, owner = _as_u8(bytes(self.stateless_reset_key), "stateless_reset_key")
            keep.append(owner)
            cfg.stateless_reset_key = ptr
        return cfg, keep


# ---------------------------------------------------------------------------
# Message and Stats
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """A received message and where it came from (``aranya_quic_channel``)."""

    #: The message's bytes.
    data: bytes
    #: The peer's listening address, ``"ip:port"`` or ``"[ipv6]:port"``: pass it
    #: to :meth:`Endpoint.send` to reply on the same connection.
    addr: str
    #: :attr:`Kind.CHANNEL` or :attr:`Kind.SYNC` (a plain ``int`` for a kind
    #: this package does not know).
    kind: int
    #: For channel messages: the 32-byte team id; else 32 zero bytes.
    team_id: bytes
    #: For channel messages: the label; else ``""``.
    label: str
    #: For sync messages: the sync type; else 0.
    sync_type: int
    #: SHA-256 of the peer's DER leaf certificate: who sent the message.
    peer_id: bytes

    @property
    def is_sync(self) -> bool:
        """True for an Aranya sync message."""
        return self.kind == Kind.SYNC

    @classmethod
    def _from_c(cls, data: bytes, ch: _ffi.aranya_quic_channel) -> Message:
        addr, kind, sync_type, team_id, label, label_len, peer_id = _CHANNEL.unpack_from(ch)
        return cls(
            data,
            addr.split(b"\0", 1)[0].decode("utf-8", "replace"),
            _KINDS.get(kind, kind),
            team_id,
            label[: min(label_len, _LABEL_MAX)].decode("utf-8", "replace"),
            sync_type,
            peer_id,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """Counters since the endpoint started, and current gauges (``aranya_quic_stats``)."""

    open_connections: int  #: gauge: connections in the map
    dials: int  #: outgoing connections attempted
    accepts: int  #: incoming connections that completed the handshake
    evictions: int  #: connections evicted because the map was full
    handshake_failures: int  #: dials or accepts that failed TLS or the confirmation
    open_streams: int  #: gauge: channel streams open, both directions
    messages_sent: int
    bytes_sent: int  #: payload bytes
    messages_received: int  #: messages put on the receive queue
    bytes_received: int  #: payload bytes
    queue_messages: int  #: gauge: messages queued
    queue_bytes: int  #: gauge: payload bytes queued
    streams_reset: int  #: incoming streams reset for protocol errors
    connections_lost: int  #: connections that ended without a graceful close
    congestion_control: str  #: algorithm connections use: "bbr2" or "reno"
    #: messages send accepted that the library gave up on without the peer's
    #: confirmation (a close, free or eviction whose drain timed out, a
    #: connection that died, a stream the peer reset)
    messages_unconfirmed: int = 0

    @classmethod
    def _from_c(cls, s: _ffi.aranya_quic_stats) -> Stats:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = getattr(s, f.name)
            values[f.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else int(v)
        return cls(**values)


# ---------------------------------------------------------------------------
# Endpoint
# ---------------------------------------------------------------------------


class Endpoint:
    """An Aranya QUIC endpoint: one UDP socket that listens and dials.

    Create it from a :class:`Config` or from the same fields as keyword
    arguments (keywords override fields of a given config)::

        with Endpoint(cert="alice.crt", key="alice.key", ca="ca.pem") as ep:
            ep.send("127.0.0.1:4434", team_id, "chat", b"hi")
            msg = ep.receive(timeout=5)

    Every method may be called from any thread; calls block without holding
    the GIL. :meth:`close` (or leaving the ``with`` block) frees the endpoint;
    afterwards every method raises :class:`~aranya_quic.Closed`.

    Do not use an endpoint (or the library) in a child made by ``fork()``:
    use multiprocessing's ``spawn`` start method.
    """

    def __init__(self, config: Config | None = None, /, **kwargs: Any) -> None:
        """Create the endpoint and bind its socket.

        Raises:
            InvalidArgument: a config field is invalid (e.g. PEM that does
                not parse, a value out of range).
            BadAddress: ``bind_addr`` is malformed.
            IoError: the socket could not be bound.
        """
        self._handle = 0
        if config is None:
            config = Config(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self._config = config
        self._lock = threading.Lock()
        self._fd: int | None = None
        # receive_async's own dup() of the receive fd, and how many
        # receive_async calls use it (see _async_fd_acquire).
        self._async_fd: int | None = None
        self._async_waiters = 0
        self._local_addr: str | None = None
        self._tls = threading.local()
        # Messages iteration or receive_async took from the library in a
        # batch and did not return yet. They are older than anything still
        # queued in the library, so every receive method returns them first.
        self._pending: collections.deque[Message] = collections.deque()
        lib = _ffi.lib()
        cfg, keep = config._to_c()
        out = _ffi.aranya_quic_t(0)
        rc = lib.aranya_quic_new(byref(cfg), byref(out))
        check(rc, "aranya_quic_new")
        del keep
        self._handle = int(out.value)

    # -- lifetime -----------------------------------------------------------

    @property
    def handle(self) -> int:
        """The raw ``aranya_quic_t`` handle (0 once closed)."""
        return self._handle

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle == 0

    def _live(self) -> int:
        h = self._handle
        if h == 0:
            raise Closed(_ffi.ARANYA_QUIC_ERR_CLOSED, "the endpoint was closed", None)
        return h

    def _check(self, rc: int, function: str) -> None:
        """:func:`check`, except that a call that raced with :meth:`close`
        raises :class:`Closed` (the library may report it as an invalid
        handle when the free won the race before the call started)."""
        if rc == _ffi.ARANYA_QUIC_OK:
            return
        raise self._error(rc, function)

    def _error(self, rc: int, function: str) -> AranyaQuicError:
        """The exception for a failed call (see :meth:`_check`); reads the
        detail message, so call it right after the call."""
        detail = last_error()
        if rc == _ffi.ARANYA_QUIC_ERR_INVALID_HANDLE and self._handle == 0:
            return Closed(_ffi.ARANYA_QUIC_ERR_CLOSED, f"the endpoint was closed ({detail})", function)
        return error_from_code(rc, detail, function)

    def close(self) -> None:
        """Free the endpoint (``aranya_quic_free``). Idempotent.

        Closes every connection gracefully (bounded by ``drain_timeout_ms``)
        and drops queued messages (also those iteration or
        :meth:`receive_async` had taken in a batch but not returned yet).
        Calls blocked on other threads return
        with :class:`~aranya_quic.Closed`, and so does a pending
        :meth:`receive_async`. The :meth:`fileno` descriptor is closed:
        unregister it from selectors / ``loop.remove_reader`` first.

        Raises:
            Unconfirmed: messages that sends accepted were not confirmed by
                their peers within the drain timeout (they may or may not
                have been delivered). The endpoint is closed all the same.
        """
        with self._lock:
            h, self._handle = self._handle, 0
        try:
            if h:
                check(_ffi.lib().aranya_quic_free(h), "aranya_quic_free")
        finally:
            # Dropped like the library's queued messages.
            self._pending.clear()
            self._async_fd_release(leaving=False)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        """Close the endpoint. An error of the close (e.g.
        :class:`~aranya_quic.Unconfirmed`) is raised only when the block
        itself did not raise; otherwise it is added as a note to the block's
        exception, which propagates unchanged."""
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Exception as close_error:
            exc.add_note(f"aranya_quic: closing the endpoint also failed: {close_error!r}")

    def __del__(self) -> None:
        h = getattr(self, "_handle", 0)
        if h and not _ffi._forked_child and _ffi._lib is not None:
            try:
                _ffi._lib.aranya_quic_free(h)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass
        fd = getattr(self, "_async_fd", None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass

    def __repr__(self) -> str:
        if self.closed:
            return "<aranya_quic.Endpoint closed>"
        return f"<aranya_quic.Endpoint handle={self._handle} local_addr={self._local_addr or '?'}>"

    # -- addresses and fd ---------------------------------------------------

    @property
    def local_addr(self) -> str:
        """The address the socket is bound to, ``"ip:port"`` (useful with port 0)."""
        if self._local_addr is not None:
            self._live()
            return self._local_addr
        lib = _ffi.lib()
        size = _ffi.ARANYA_QUIC_ADDR_MAX
        while True:
            buf = ctypes.create_string_buffer(size)
            n = c_size_t(0)
            rc = lib.aranya_quic_local_addr(self._live(), buf, size, byref(n))
            if rc == _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL and n.value + 1 > size:
                size = n.value + 1
                continue
            self._check(rc, "aranya_quic_local_addr")
            self._local_addr = buf.raw[: n.value].decode("utf-8")
            return self._local_addr

    def fileno(self) -> int:
        """A descriptor that is readable while the receive queue is non-empty.

        For :mod:`selectors`, :func:`select.select` and asyncio's
        ``loop.add_reader``. It belongs to the library: never read, write or
        close it. Readiness is a hint: after it, call ``receive(timeout=0)``
        (or ``receive_batch(timeout=0)``) until it returns ``None`` (``[]``).
        :meth:`close` closes it, so unregister it first. It reflects the
        library's queue only: messages that iteration or
        :meth:`receive_async` already took in a batch do not make it
        readable, so a poller that mixes with those drains with
        ``receive(timeout=0)`` before waiting.
        """
        h = self._live()
        if self._fd is None:
            fd = c_int(-1)
            self._check(_ffi.lib().aranya_quic_receive_fd(h, byref(fd)), "aranya_quic_receive_fd")
            self._fd = fd.value
        return self._fd

    # -- sending ------------------------------------------------------------

    def send(self, addr: Address, team_id: bytes, label: str | bytes, message: Any) -> None:
        """Send ``message`` on the channel (``addr``, ``team_id``, ``label``).

        Dials ``addr`` if needed and returns once the transport accepted the
        message. Blocks under backpressure, bounded by ``send_timeout_ms``.

        Args:
            addr: the peer's address (see :data:`Address`).
            team_id: exactly 32 bytes.
            label: at most 255 bytes of UTF-8 (``bytes`` are passed as they are).
            message: any bytes-like object (``bytes`` is passed without a copy).

        Raises:
            InvalidArgument: team_id is not 32 bytes; label too long or not UTF-8.
            BadAddress, TooLarge, Timeout, ConnectionFailed, TlsError, Closed.
        """
        team = _team_id_bytes(team_id, "aranya_quic_send")
        label_raw = label.encode("utf-8", "surrogatepass") if isinstance(label, str) else bytes(label)
        addr_raw = _format_addr(addr)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        rc = _fast("aranya_quic_send")(self._live(), addr_raw, team, label_raw, len(label_raw), msg_arg, msg_len)
        self._check(rc, "aranya_quic_send")
        del msg_keep

    def send_sync(self, addr: Address, sync_type: int, message: Any) -> None:
        """Send an Aranya sync message of type ``sync_type`` (0..2**32-1) to ``addr``.

        Same behaviour and errors as :meth:`send`.
        """
        _check_uint(sync_type, "sync_type", _UINT32_MAX)
        addr_raw = _format_addr(addr)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        rc = _fast("aranya_quic_send_sync")(self._live(), addr_raw, sync_type, msg_arg, msg_len)
        self._check(rc, "aranya_quic_send_sync")
        del msg_keep

    def send_batch(
        self, addr: Address, team_id: bytes, label: str | bytes, msgs: Iterable[Any]
    ) -> int:
        """Send the messages ``msgs``, in order, on the channel (``addr``,
        ``team_id``, ``label``) in one library call (``aranya_quic_send_batch``):
        the same as one :meth:`send` per message from one thread.

        Args:
            addr, team_id, label: as for :meth:`send`.
            msgs: a sequence (or iterable) of bytes-like messages; ``bytes``
                are passed without a copy. May be empty.

        Returns:
            The number of messages sent: ``len(msgs)`` (0 for an empty batch).

        Raises:
            The error of the first message that failed, as :meth:`send`
            raises it, with ``sent`` set to how many messages before it were
            accepted (those are sent; it and the rest are not). Arguments
            that apply to every message (address, team id, label) fail before
            any message is sent (``sent == 0``); a message over
            ``max_message_size`` fails in its turn (:class:`TooLarge`).
            TypeError: ``msgs`` is a single bytes-like object or str, or
            holds something that is not bytes-like (nothing is sent).
        """
        function = "aranya_quic_send_batch"
        try:
            team = _team_id_bytes(team_id, function)
            label_raw = label.encode("utf-8", "surrogatepass") if isinstance(label, str) else bytes(label)
            addr_raw = _format_addr(addr)
            h = self._live()
        except AranyaQuicError as e:
            e.sent = 0
            raise
        arr, n, keep = _buf_array(msgs, "msgs")
        sent = c_size_t(0)
        rc = _fast(function)(h, addr_raw, team, label_raw, len(label_raw), arr, n, byref(sent))
        self._check_batch(rc, function, sent.value)
        del keep, arr
        return n

    def send_sync_batch(self, addr: Address, sync_type: int, msgs: Iterable[Any]) -> int:
        """Send Aranya sync messages of type ``sync_type`` to ``addr`` in one
        library call (``aranya_quic_send_sync_batch``). Same behaviour, return
        value and errors as :meth:`send_batch`."""
        function = "aranya_quic_send_sync_batch"
        try:
            _check_uint(sync_type, "sync_type", _UINT32_MAX)
            addr_raw = _format_addr(addr)
            h = self._live()
        except AranyaQuicError as e:
            e.sent = 0
            raise
        arr, n, keep = _buf_array(msgs, "msgs")
        sent = c_size_t(0)
        rc = _ffi.lib().aranya_quic_send_sync_batch(h, addr_raw, sync_type, arr, n, byref(sent))
        self._check_batch(rc, function, sent.value)
        del keep, arr
        return n

    def _check_batch(self, rc: int, function: str, sent: int) -> None:
        """:meth:`_check` for a batch send: the error carries ``sent``."""
        if rc == _ffi.ARANYA_QUIC_OK:
            return
        e = self._error(rc, function)
        e.sent = sent
        raise e

    # -- receiving ----------------------------------------------------------

    def _buffer(self, size: int) -> ctypes.Array[c_uint8]:
        """This thread's receive buffer, at least ``size`` bytes."""
        buf = getattr(self._tls, "buf", None)
        if buf is None or len(buf) < size:
            buf = (c_uint8 * max(size, RECEIVE_BUFFER_INITIAL))()
            if len(buf) <= RECEIVE_BUFFER_KEEP_MAX:
                self._tls.buf = buf
        return buf

    def receive(self, timeout: float | None = None) -> Message | None:
        """Take the oldest received message, waiting for one if asked.

        The buffer is sized automatically: it starts at 64 KiB and grows to
        the size the library reports (``ARANYA_QUIC_ERR_BUFFER_TOO_SMALL``
        leaves the message queued, so nothing is lost).

        Args:
            timeout: ``None`` (default) or ``math.inf`` waits until a message
                arrives or the endpoint is closed; ``0`` does not wait; a
                positive number waits up to that many seconds (any size:
                the wait is done in slices, so values beyond the C API's
                int32 milliseconds work too).

        Returns:
            The message, or ``None`` when the timeout passed (or, for
            ``timeout=0``, the queue was empty). Never ``None`` with
            ``timeout=None`` or ``math.inf``.

        Raises:
            Closed: the endpoint was closed (possibly by another thread
                while this call waited).
            ValueError: ``timeout`` is negative or NaN.
        """
        timeout = _normalize_timeout(timeout)
        if self._pending:
            try:
                return self._pending.popleft()
            except IndexError:  # another thread took the last one
                pass
        lib = _ffi.lib()
        deadline = None if timeout is None else time.monotonic() + timeout
        ch = _ffi.aranya_quic_channel()
        n = c_size_t(0)
        buf = self._buffer(RECEIVE_BUFFER_INITIAL)
        while True:
            h = self._live()
            if timeout == 0:
                fn = "aranya_quic_receive"
                rc = lib.aranya_quic_receive(h, buf, len(buf), byref(ch), byref(n))
            else:
                fn = "aranya_quic_receive_timeout"
                wait_ms = _wait_ms(deadline)
                rc = lib.aranya_quic_receive_timeout(h, buf, len(buf), byref(ch), byref(n), wait_ms)
            if rc == _ffi.ARANYA_QUIC_OK:
                data = ctypes.string_at(buf, n.value)
                return Message._from_c(data, ch)
            if rc == _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL:
                needed = n.value
                if needed <= len(buf):  # pragma: no cover - library contract broken
                    raise error_from_code(rc, last_error(), fn, needed=needed)
                buf = self._buffer(needed)
                continue  # the message stays queued: take it at once
            if rc in (_ffi.ARANYA_QUIC_ERR_WOULD_BLOCK, _ffi.ARANYA_QUIC_ERR_TIMEOUT):
                if deadline is None:
                    continue
                if timeout == 0 or time.monotonic() >= deadline:
                    return None
                continue
            self._check(rc, fn)

    def receive_batch(
        self, max_msgs: int = RECEIVE_BATCH_DEFAULT, timeout: float | None = None
    ) -> list[Message]:
        """Take up to ``max_msgs`` received messages, oldest first, in one
        library call (``aranya_quic_receive_batch``).

        Waits (as :meth:`receive` does) for the first message only, never for
        more once one is there. One receive buffer is used for the whole
        batch: a batch stops at the first message that does not fit in what
        is left of it (that message stays queued, first for the next call),
        and a message larger than the whole buffer grows it, so nothing is
        lost to a small buffer.

        Args:
            max_msgs: the most messages to take (>= 1).
            timeout: as for :meth:`receive`.

        Returns:
            1 to ``max_msgs`` messages; ``[]`` when the timeout passed (for
            ``timeout=0``: the queue was empty). Never empty with
            ``timeout=None``.

        Raises:
            Closed: as for :meth:`receive`.
            InvalidArgument: ``max_msgs`` < 1.
            ValueError: ``timeout`` is negative or NaN.
        """
        if isinstance(max_msgs, bool) or not isinstance(max_msgs, int):
            raise TypeError(f"max_msgs: expected int, got {type(max_msgs).__name__}")
        if max_msgs < 1:
            raise InvalidArgument(
                _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT, f"max_msgs must be >= 1, got {max_msgs}"
            )
        timeout = _normalize_timeout(timeout)
        pending = self._pending
        if pending:
            out: list[Message] = []
            try:
                while len(out) < max_msgs:
                    out.append(pending.popleft())
            except IndexError:
                pass
            if out:
                return out
        return self._take_batch(max_msgs, timeout)

    def _records(self, count: int) -> ctypes.Array[_ffi.aranya_quic_message]:
        """This thread's array of at least ``count`` message records."""
        recs = getattr(self._tls, "recs", None)
        if recs is None or len(recs) < count:
            recs = (_ffi.aranya_quic_message * max(count, RECEIVE_BATCH_DEFAULT))()
            self._tls.recs = recs
        return recs

    def _take_batch(self, max_msgs: int, timeout: float | None) -> list[Message]:
        """One batch straight from the library (not from ``_pending``)."""
        lib = _ffi.lib()
        deadline = None if timeout is None else time.monotonic() + timeout
        recs = self._records(max_msgs)
        n = c_size_t(0)
        buf = self._buffer(RECEIVE_BUFFER_INITIAL)
        fn = "aranya_quic_receive_batch"
        while True:
            h = self._live()
            wait_ms = 0 if timeout == 0 else _wait_ms(deadline)
            rc = lib.aranya_quic_receive_batch(h, buf, len(buf), recs, max_msgs, byref(n), wait_ms)
            if rc == _ffi.ARANYA_QUIC_OK:
                return self._unpack(buf, recs, n.value, max_msgs)
            if rc == _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL:
                needed = int(recs[0].len)
                if needed <= len(buf):  # pragma: no cover - library contract broken
                    raise error_from_code(rc, last_error(), fn, needed=needed)
                buf = self._buffer(needed)
                continue  # the message stays queued: take it at once
            if rc in (_ffi.ARANYA_QUIC_ERR_WOULD_BLOCK, _ffi.ARANYA_QUIC_ERR_TIMEOUT):
                if deadline is None:
                    continue
                if timeout == 0 or time.monotonic() >= deadline:
                    return []
                continue
            self._check(rc, fn)

    @staticmethod
    def _unpack(
        buf: ctypes.Array[c_uint8], recs: ctypes.Array[_ffi.aranya_quic_message], count: int, max_msgs: int
    ) -> list[Message]:
        """Messages from the first ``count`` records and their payloads in ``buf``."""
        if not 1 <= count <= max_msgs:  # pragma: no cover - library contract broken
            raise error_from_code(
                _ffi.ARANYA_QUIC_ERR_INTERNAL, f"library reported {count} messages for {max_msgs} records"
            )
        records = list(_RECORD.iter_unpack(memoryview(recs).cast("B")[: count * _RECORD.size]))
        used = max(r[7] + r[8] for r in records)
        if used > len(buf):  # pragma: no cover - library contract broken
            raise error_from_code(
                _ffi.ARANYA_QUIC_ERR_INTERNAL,
                f"library reported messages up to byte {used} of a {len(buf)}-byte buffer",
            )
        # One copy of the payloads, sliced per message (cheaper than a
        # bytes() per message through the ctypes buffer).
        blob = memoryview(buf).cast("B")[:used].tobytes()
        out = []
        # Messages of a batch mostly share a sender and a label: decode each
        # distinct one once.
        last_addr = last_label = b""
        addr_s = label_s = ""
        last_len = -1
        for addr, kind, sync_type, team, label, label_len, peer, offset, length in records:
            if addr != last_addr:
                last_addr = addr
                addr_s = addr.split(b"\0", 1)[0].decode("utf-8", "replace")
            if label_len != last_len or label != last_label:
                last_label, last_len = label, label_len
                label_s = label[: min(label_len, _LABEL_MAX)].decode("utf-8", "replace")
            out.append(
                Message(blob[offset : offset + length], addr_s, _KINDS.get(kind, kind), team, label_s, sync_type, peer)
            )
        return out

    def _next_from_batch(self, timeout: float | None) -> Message | None:
        """The next message for iteration / receive_async: from ``_pending``,
        else a whole batch from the library whose first message is returned
        and the rest kept in ``_pending``."""
        if self._pending:
            try:
                return self._pending.popleft()
            except IndexError:
                pass
        msgs = self._take_batch(RECEIVE_BATCH_DEFAULT, timeout)
        if not msgs:
            return None
        if len(msgs) > 1:
            self._pending.extend(msgs[1:])
        return msgs[0]

    def __iter__(self) -> Endpoint:
        return self

    def __next__(self) -> Message:
        """Block for the next message; ends the iteration when the endpoint closes.

        Takes every queued message (up to 64) in one library call and hands
        them out one by one; any receive method returns those first.
        """
        try:
            msg = self._next_from_batch(None)
        except Closed:
            raise StopIteration from None
        assert msg is not None
        return msg

    async def receive_async(self) -> Message:
        """Wait for the next message without blocking the event loop.

        Registers a duplicate of :meth:`fileno` with the running loop's
        ``add_reader`` while waiting (no thread, no busy polling). Use one
        ``receive_async`` at a time per endpoint and loop (asyncio keeps one
        reader per fd). Takes every queued message (up to 64) in one library
        call and hands them out one by one, as iteration does.

        Raises:
            Closed: the endpoint is closed, or was closed (by a task on this
                loop or by another thread) while this call waited.
        """
        loop = asyncio.get_running_loop()
        fd = self._async_fd_acquire()
        try:
            while True:
                msg = self._next_from_batch(0)  # raises Closed once closed
                if msg is not None:
                    return msg
                ready: asyncio.Future[None] = loop.create_future()

                def wake(fut: asyncio.Future[None] = ready) -> None:
                    if not fut.done():
                        fut.set_result(None)

                loop.add_reader(fd, wake)
                try:
                    await ready
                finally:
                    loop.remove_reader(fd)
        finally:
            self._async_fd_release(leaving=True)

    def _async_fd_acquire(self) -> int:
        """receive_async's descriptor: our own ``dup()`` of the receive fd.

        The library's fd is closed by ``aranya_quic_free``; a poller waiting
        on it would then never wake (epoll drops a closed fd silently) and
        its number could be reused. The duplicate stays open until the
        endpoint is closed *and* no receive_async uses it; after the free it
        reads as end of file, i.e. readable, which wakes the waiters, whose
        next receive raises :class:`Closed`.
        """
        lib_fd = self.fileno()  # raises Closed once closed
        with self._lock:
            # close() sets _handle to 0 under this lock before freeing, so
            # while it is non-zero lib_fd is still the library's open fd.
            if self._handle == 0:
                raise Closed(_ffi.ARANYA_QUIC_ERR_CLOSED, "the endpoint was closed", None)
            if self._async_fd is None:
                self._async_fd = os.dup(lib_fd)  # non-inheritable (close-on-exec)
            self._async_waiters += 1
            return self._async_fd

    def _async_fd_release(self, *, leaving: bool) -> None:
        """A receive_async is ``leaving``, or (``leaving=False``) close() ran:
        close the duplicate once the endpoint is closed and no waiter
        still has it registered with a loop."""
        with self._lock:
            if leaving:
                self._async_waiters -= 1
            fd = None
            if self._handle == 0 and self._async_waiters == 0:
                fd, self._async_fd = self._async_fd, None
        if fd is not None:
            os.close(fd)

    # -- connections and stats ----------------------------------------------

    def close_connection(self, addr: Address) -> None:
        """Close the connection to ``addr`` gracefully (``aranya_quic_close``).

        Finishes its streams and waits (bounded by ``drain_timeout_ms``) until
        the peer read everything. No connection to ``addr``: nothing to do.
        The next send to ``addr`` dials again.

        Raises:
            Unconfirmed: messages sent to ``addr`` were not confirmed by the
                peer within ``drain_timeout_ms`` (they may or may not have
                been delivered); the connection is closed all the same.
            BadAddress, Closed.
        """
        addr_raw = _format_addr(addr)
        self._check(_ffi.lib().aranya_quic_close(self._live(), addr_raw), "aranya_quic_close")

    def stats(self) -> Stats:
        """The endpoint's counters and gauges (``aranya_quic_get_stats``)."""
        s = _ffi.aranya_quic_stats()
        s.struct_size = ctypes.sizeof(_ffi.aranya_quic_stats)
        self._check(_ffi.lib().aranya_quic_get_stats(self._live(), byref(s)), "aranya_quic_get_stats")
        return Stats._from_c(s)
