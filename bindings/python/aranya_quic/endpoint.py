"""The safe Python API: :class:`Endpoint`, :class:`Config`, :class:`Message`,
:class:`Stats`, :class:`Event`, :class:`ConnectionInfo`."""

from __future__ import annotations

import array
import asyncio
import atexit
import collections
import ctypes
import dataclasses
import enum
import itertools
import logging
import math
import os
import struct
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Sequence
from ctypes import POINTER, byref, c_int, c_size_t, c_uint8, c_uint64
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
    "EventType",
    "Channel",
    "Event",
    "EventStream",
    "ConnectionInfo",
    "peer_id_from_pem",
    "LOGGER_NAME",
    "forward_to_logging",
    "RECEIVE_BUFFER_INITIAL",
    "RECEIVE_BATCH_DEFAULT",
]

#: A peer address: ``"ip:port"``, ``"[ipv6]:port"``, ``"host:port"`` (C API
#: 0.2: the library resolves the name, bounded by ``resolve_timeout_ms``) or
#: a ``(host, port)`` tuple whose host is an IP address or a host name.
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
#: The slice instead, once iteration or receive_async took messages ahead
#: on the endpoint: a blocking receive waiting in the library cannot be
#: woken when another consumer leaves taken messages behind, so it looks
#: for them between slices. Milliseconds.
_TAKEN_AHEAD_SLICE_MS = 100
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
    """Values of :attr:`Config.log_level`. Records go to
    :attr:`Config.log_callback` when it is set, else to stderr."""

    OFF = _ffi.ARANYA_QUIC_LOG_OFF
    ERROR = _ffi.ARANYA_QUIC_LOG_ERROR
    WARN = _ffi.ARANYA_QUIC_LOG_WARN
    INFO = _ffi.ARANYA_QUIC_LOG_INFO
    DEBUG = _ffi.ARANYA_QUIC_LOG_DEBUG


class EventType(enum.IntEnum):
    """What an :class:`Event` reports (``ARANYA_QUIC_EVENT_*``). The library
    may add types: an event of a type this package does not know has a plain
    ``int`` as its :attr:`Event.type`."""

    #: A connection to a peer is up (dialed or accepted): :attr:`Event.addr`
    #: and :attr:`Event.peer_id` say who.
    PEER_CONNECTED = _ffi.ARANYA_QUIC_EVENT_PEER_CONNECTED
    #: The last connection to a peer address ended: ``error`` is ``None`` for
    #: a graceful close by either side, else why (``ConnectionFailed``);
    #: ``unconfirmed`` counts the accepted messages given up on.
    PEER_DISCONNECTED = _ffi.ARANYA_QUIC_EVENT_PEER_DISCONNECTED
    #: A message a non-blocking send accepted (``id``) could not be handed to
    #: the peer's connection and was not sent: ``error`` says why,
    #: ``channel`` where it was going.
    SEND_FAILED = _ffi.ARANYA_QUIC_EVENT_SEND_FAILED
    #: A close started by :meth:`Endpoint.close_nowait` (``id``) finished:
    #: ``error`` is ``None`` or ``Unconfirmed`` (count in ``unconfirmed``).
    CLOSE_FINISHED = _ffi.ARANYA_QUIC_EVENT_CLOSE_FINISHED
    #: A handshake was refused (either side rejected the other's
    #: certificate): ``error`` is a ``TlsError``, ``reason`` says why.
    HANDSHAKE_REJECTED = _ffi.ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED
    #: The drain started by :meth:`Endpoint.shutdown` (``id``) finished. The
    #: last event of an endpoint.
    SHUTDOWN_FINISHED = _ffi.ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED


_EVENT_TYPES: dict[int, EventType] = {int(t): t for t in EventType}
#: The function whose outcome an event reports, for its error's ``function``.
_EVENT_FUNCTIONS: dict[int, str] = {
    EventType.SEND_FAILED: "aranya_quic_send_nowait",
    EventType.CLOSE_FINISHED: "aranya_quic_close_nowait",
    EventType.SHUTDOWN_FINISHED: "aranya_quic_shutdown",
}


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

#: The :mod:`logging` logger :func:`forward_to_logging` writes to.
LOGGER_NAME = "aranya_quic"
_logger = logging.getLogger(LOGGER_NAME)
_PY_LEVELS: dict[int, int] = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
}
_LOG_LEVELS: dict[int, LogLevel] = {int(v): v for v in LogLevel}


def forward_to_logging(level: int, message: str) -> None:
    """A :attr:`Config.log_callback` that hands the library's records to
    :mod:`logging`: logger ``"aranya_quic"``, ``ERROR``/``WARN``/``INFO``/
    ``DEBUG`` mapped to ``logging.ERROR``/``WARNING``/``INFO``/``DEBUG``
    (an unknown level to ``INFO``)."""
    py_level = _PY_LEVELS.get(level, logging.INFO)
    if _logger.isEnabledFor(py_level):
        _logger.log(py_level, message)


#: Log trampolines of endpoints closed with ``close(wait=False)``: their
#: endpoints go on closing, and logging, in the background after the call,
#: so the C function pointer must stay valid for good.
_IMMORTAL_CALLBACKS: list[Any] = []
#: Endpoints that have a log callback, closed at interpreter exit (see
#: _close_logging_endpoints).
_LOGGING_ENDPOINTS: weakref.WeakSet[Endpoint] = weakref.WeakSet()


def _log_trampoline(fn: Callable[[Any, str], None]) -> Any:
    """The C ``aranya_quic_log_callback`` calling ``fn(level, text)``.

    It runs on the library's threads (ctypes takes the GIL for it). Nothing
    may propagate into C: an exception of ``fn`` is printed to stderr once
    per trampoline and otherwise ignored.
    """
    # next() on it is atomic under the GIL: exactly one failure reports.
    failures = itertools.count()

    def call(user: Any, level: int, msg: Any, length: int) -> None:
        try:
            text = ctypes.string_at(msg, length).decode("utf-8", "replace") if msg and length else ""
            fn(_LOG_LEVELS.get(level, level), text)
        except BaseException:
            if next(failures):
                return
            try:
                sys.stderr.write(
                    "aranya_quic: the log_callback raised (reported once, later errors ignored):\n"
                    + traceback.format_exc()
                )
            except BaseException:
                pass

    return _ffi.aranya_quic_log_callback(call)


@atexit.register
def _close_logging_endpoints() -> None:
    # A library thread that calls into Python while the interpreter
    # finalizes would be stopped mid-call inside the Go runtime. atexit
    # handlers run before finalization starts, so freeing these endpoints
    # here (free returns once the library stopped calling) avoids that.
    for ep in list(_LOGGING_ENDPOINTS):
        try:
            ep.close()
        except BaseException:
            pass


# ---------------------------------------------------------------------------
# Waiting on the library's descriptors in asyncio
# ---------------------------------------------------------------------------


class _FdWatch:
    """One event loop's reader on one of an endpoint's descriptors, shared
    by every coroutine of that loop waiting on it.

    asyncio keeps one reader per descriptor and loop (a second ``add_reader``
    replaces the first, a ``remove_reader`` removes it for everyone), so the
    endpoint registers the reader when the first coroutine of a loop starts
    waiting on a descriptor and removes it when the last one stops
    (``users``). When the descriptor is readable the reader runs ``pump``
    (the event dispatcher, for the event descriptor) and wakes every
    coroutine parked in ``wakers``. Touched only on its loop's thread,
    except that other threads schedule :meth:`wake` with
    ``call_soon_threadsafe``.
    """

    __slots__ = ("loop", "fd", "kind", "pump", "users", "wakers")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, kind: str, pump: Callable[[], None] | None
    ) -> None:
        self.loop = loop
        self.fd = fd
        self.kind = kind
        self.pump = pump
        self.users = 0
        self.wakers: list[asyncio.Future[None]] = []

    def fire(self) -> None:
        if self.pump is not None:
            self.pump()
        self.wake()

    def wake(self) -> None:
        wakers, self.wakers = self.wakers, []
        for fut in wakers:
            if not fut.done():
                fut.set_result(None)


def _settle(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], result: Any = None,
            error: Callable[[], BaseException] | None = None) -> None:
    """Complete ``fut`` (of ``loop``) with ``result`` or a fresh ``error()``,
    from any thread; a future already done, or of a closed loop, is left."""

    def settle() -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error())
        else:
            fut.set_result(result)

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        settle()
        return
    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the loop is closed: nobody waits on it any more
        pass


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


def _wait_ms(deadline: float | None, slice_ms: int = _WAIT_SLICE_MS) -> int:
    """How long one library wait may last: a slice of an endless wait, or
    what is left before ``deadline``."""
    if deadline is None:
        return slice_ms
    left_ms = (deadline - time.monotonic()) * 1000
    # Compare before ceil(): a huge timeout must not overflow.
    return slice_ms if left_ms >= slice_ms else max(0, math.ceil(left_ms))


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
_U64P = POINTER(c_uint64)
_FAST_ARGTYPES.update(
    {
        "aranya_quic_send_nowait": [
            _ffi.aranya_quic_t, ctypes.c_char_p, _VOIDP, ctypes.c_char_p, c_size_t, _VOIDP, c_size_t, _U64P
        ],
        "aranya_quic_send_sync_nowait": [
            _ffi.aranya_quic_t, ctypes.c_char_p, ctypes.c_uint32, _VOIDP, c_size_t, _U64P
        ],
        "aranya_quic_send_batch_nowait": [
            _ffi.aranya_quic_t,
            ctypes.c_char_p,
            _VOIDP,
            ctypes.c_char_p,
            c_size_t,
            POINTER(_ffi.aranya_quic_buf),
            c_size_t,
            POINTER(c_size_t),
            _U64P,
        ],
    }
)
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
    return _id_bytes(team_id, "team_id", function)


def _id_bytes(value: Any, name: str, function: str | None) -> bytes:
    """The 32 bytes of a peer id or team id, as ``bytes``.

    The C calls read exactly 32 bytes through a bare pointer, so a value of
    another length cannot be handed over (the library would read past it):
    it is refused here with :class:`InvalidArgument`, as a wrong-length
    team id is for the sends. Only ``bytes``, ``bytearray`` and
    ``memoryview`` are taken; the error for any other object names its
    type, since its size is not what is wrong with it (an ``array.array``
    of 32 bytes is refused as an ``array.array``). Whether the 32 bytes are
    acceptable (not all zero) is the library's check.
    """
    if type(value) is bytes and len(value) == 32:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        kind = type(value)
        what = kind.__qualname__
        if kind.__module__ != "builtins":
            what = f"{kind.__module__}.{what}"
        try:
            memoryview(value)
            hint = " (a buffer of another type: convert it with bytes())"
        except TypeError:
            hint = ""
        raise InvalidArgument(
            _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
            f"{name} must be bytes, bytearray or memoryview of 32 bytes, not {what}{hint}",
            function,
        )
    n = memoryview(value).nbytes
    if n != 32:
        raise InvalidArgument(
            _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT, f"{name} must be 32 bytes, got {n} bytes", function
        )
    return bytes(value)


def _pins_arg(pins: Any, name: str, function: str | None) -> tuple[bytes, int]:
    """The concatenated 32-byte fingerprints of ``pins`` and their COUNT
    (the C API's ``pinned_peers_len`` counts fingerprints, not bytes)."""
    if isinstance(pins, (bytes, bytearray, memoryview, str)):
        # Iterating one fingerprint would give ints: a common slip for [fp].
        raise TypeError(
            f"{name}: expected a sequence of 32-byte fingerprints, got a single {type(pins).__name__}"
        )
    fps = list(pins)
    for i, fp in enumerate(fps):
        if not isinstance(fp, (bytes, bytearray, memoryview)):
            raise TypeError(f"{name}[{i}]: expected bytes, got {type(fp).__name__}")
        n = memoryview(fp).nbytes
        if n != _ffi.ARANYA_QUIC_FINGERPRINT_LEN:
            raise InvalidArgument(
                _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
                f"{name}[{i}] is {n} bytes, not {_ffi.ARANYA_QUIC_FINGERPRINT_LEN}",
                function,
            )
    return b"".join(bytes(fp) for fp in fps), len(fps)


def _pem_arg(value: PemSource, name: str) -> tuple[Any, int, Any]:
    """``uint8_t *``, length and keep-alive of a :data:`PemSource` for a C call."""
    return _as_u8(_read_pem(value, name), name)


def peer_id_from_pem(cert_pem: PemSource) -> bytes:
    """The peer id of a certificate (``aranya_quic_peer_id_from_pem``): the
    SHA-256 of the DER of the first certificate in ``cert_pem`` (a chain's
    leaf comes first).

    It is what peers see in :attr:`Message.peer_id`, and what pins
    (:attr:`Config.pinned_peers`, :meth:`Endpoint.set_trust`),
    :meth:`Endpoint.team_allow` and :meth:`Endpoint.team_revoke` take.
    Needs no endpoint.

    Args:
        cert_pem: a :data:`PemSource` (PEM bytes, PEM text or a path).

    Raises:
        InvalidArgument: empty input, or no certificate block that parses.
    """
    ptr, n, keep = _pem_arg(cert_pem, "cert_pem")
    out = (c_uint8 * _ffi.ARANYA_QUIC_PEER_ID_LEN)()
    check(_ffi.lib().aranya_quic_peer_id_from_pem(ptr, n, out), "aranya_quic_peer_id_from_pem")
    del keep
    return bytes(out)


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
    #: Bytes of messages the non-blocking sends (:meth:`Endpoint.try_send`,
    #: :meth:`Endpoint.send_async`...) may hold queued for one peer address
    #: before they refuse with :class:`~aranya_quic.WouldBlock` (an empty
    #: queue always takes one message). 0:
    #: ``ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER`` (4 MiB).
    max_outbound_bytes_per_peer: int = 0
    #: The same bound across all peers. 0:
    #: ``ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES`` (64 MiB).
    max_outbound_bytes: int = 0
    #: Events the library holds until they are taken; more are dropped and
    #: counted (:attr:`Event.dropped_before`, :attr:`Stats.events_dropped`).
    #: Also the bound of the endpoint's own queue of taken events (see
    #: :meth:`Endpoint.events`). 0: ``ARANYA_QUIC_DEFAULT_MAX_EVENTS`` (4096).
    max_events: int = 0
    #: Bounds resolving a peer's host name. 0:
    #: ``ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS`` (5 s).
    resolve_timeout_ms: int = 0
    #: Receives the library's log records instead of stderr, as
    #: ``log_callback(level, message)`` (a :class:`LogLevel` and a ``str``).
    #: :func:`~aranya_quic.forward_to_logging` hands them to the
    #: ``"aranya_quic"`` :mod:`logging` logger. ``log_level`` still filters
    #: the records; with a callback, ``LogLevel.OFF`` means ``INFO``. It runs
    #: on the library's threads, possibly several at once, and holds up that
    #: connection's work while it runs: keep it short and thread-safe. Its
    #: exceptions are printed to stderr once and otherwise ignored. ``None``:
    #: stderr when ``log_level`` is not ``OFF``.
    log_callback: Callable[[LogLevel, str], None] | None = None
    #: Per-team authorization: when true, a peer may open a channel only on
    #: a team :meth:`Endpoint.team_allow` allowed its peer id on, and send
    #: sync messages only when allowed on at least one team; other streams
    #: are refused (the sender gets :class:`~aranya_quic.NotAuthorizedError`)
    #: and counted in :attr:`Stats.streams_refused`. False (default): every
    #: trusted peer may use every team.
    team_authorization: bool = False

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
        "max_events",
        "resolve_timeout_ms",
    )
    _UINT64_FIELDS = (
        "max_message_size",
        "max_queue_bytes",
        "max_outbound_bytes_per_peer",
        "max_outbound_bytes",
    )

    def _to_c(self, log_trampoline: Any = None) -> tuple[_ffi.aranya_quic_config, list[Any]]:
        """The C struct and the objects that must outlive ``aranya_quic_new``.

        ``log_trampoline``: the C callback for :attr:`log_callback` (made
        here when not given); it must outlive the endpoint, so the endpoint
        makes and keeps it.
        """
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
            joined, count = _pins_arg(self.pinned_peers, "pinned_peers", None)
            ptr, _, owner = _as_u8(joined, "pinned_peers")
            keep.append(owner)
            cfg.pinned_peers = ptr
            cfg.pinned_peers_len = count

        cfg.team_authorization = 1 if self.team_authorization else 0

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

        if self.log_callback is not None:
            if not callable(self.log_callback):
                raise TypeError(f"log_callback: expected a callable, got {type(self.log_callback).__name__}")
            if log_trampoline is None:
                log_trampoline = _log_trampoline(self.log_callback)
            keep.append(log_trampoline)
            cfg.log_callback = log_trampoline
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
    #: gauge: messages the non-blocking sends queued, not yet handed to a stream
    outbound_messages: int = 0
    #: gauge: their payload bytes
    outbound_bytes: int = 0
    #: queued messages given up before they were sent (one
    #: :attr:`EventType.SEND_FAILED` event each)
    sends_failed: int = 0
    #: events the library dropped because ``max_events`` were waiting
    events_dropped: int = 0
    #: connections closed because :meth:`Endpoint.set_trust` no longer
    #: trusts their peer
    connections_revoked: int = 0
    #: received messages dropped, not delivered, because their peer or its
    #: team was revoked first (by the library; see
    #: :meth:`Endpoint.set_trust` for those the endpoint had already taken)
    messages_revoked: int = 0
    #: incoming streams refused by team authorization
    streams_refused: int = 0

    @classmethod
    def _from_c(cls, s: _ffi.aranya_quic_stats) -> Stats:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = getattr(s, f.name)
            values[f.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else int(v)
        return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One of the endpoint's connections, from :meth:`Endpoint.connections`
    (``aranya_quic_connection_info``). Times are in seconds."""

    #: The peer's IP address and port, ``"ip:port"`` or ``"[ipv6]:port"``
    #: (as :attr:`Message.addr`).
    addr: str
    #: SHA-256 of the peer's DER leaf certificate.
    peer_id: bytes
    #: True if this endpoint dialed the connection, False if it accepted it.
    dialed: bool
    #: True while the connection closes gracefully (no new streams).
    draining: bool
    #: When the connection was set up, in seconds since the Unix epoch (as
    #: :func:`time.time`; millisecond resolution).
    connected_at: float
    #: How long the connection has been up.
    connected_for: float
    #: Round-trip times: smoothed (RFC 9002), minimum and latest sample. 0.0
    #: before the first sample.
    smoothed_rtt: float
    min_rtt: float
    latest_rtt: float
    #: The congestion window, in bytes of QUIC packets.
    congestion_window: int
    #: Bytes of QUIC packets in flight; ``None`` when the connection's
    #: controller does not report it (NewReno).
    bytes_in_flight: int | None
    #: QUIC packets sent, received and declared lost on the connection.
    packets_sent: int
    packets_received: int
    packets_lost: int
    #: Messages and their payload bytes each way on this connection.
    messages_sent: int
    bytes_sent: int
    messages_received: int
    bytes_received: int
    #: The congestion control the connection runs, ``"reno"`` or ``"bbr2"``:
    #: what was built for it, not only what was configured.
    congestion_control: str

    @classmethod
    def _from_c(cls, c: _ffi.aranya_quic_connection_info) -> ConnectionInfo:
        in_flight = int(c.bytes_in_flight)
        return cls(
            addr=c.addr.decode("utf-8", "replace"),
            peer_id=bytes(c.peer_id),
            dialed=bool(c.dialed),
            draining=bool(c.draining),
            connected_at=c.connected_unix_ms / 1000.0,
            connected_for=c.connected_ms / 1000.0,
            smoothed_rtt=c.smoothed_rtt_us / 1e6,
            min_rtt=c.min_rtt_us / 1e6,
            latest_rtt=c.latest_rtt_us / 1e6,
            congestion_window=int(c.congestion_window),
            bytes_in_flight=None if in_flight == _ffi.ARANYA_QUIC_UNKNOWN else in_flight,
            packets_sent=int(c.packets_sent),
            packets_received=int(c.packets_received),
            packets_lost=int(c.packets_lost),
            messages_sent=int(c.messages_sent),
            bytes_sent=int(c.bytes_sent),
            messages_received=int(c.messages_received),
            bytes_received=int(c.bytes_received),
            congestion_control=c.congestion_control.decode("utf-8", "replace"),
        )


#: Structs :meth:`Endpoint.connections` offers the library at first; it
#: grows the array to the count the library reports when that is more.
_CONNECTIONS_INITIAL = 16
#: Distinct admitted peers aranya_quic_set_trust remembers besides those
#: with a connection (the header's bound on the revoked peers it reports).
_REVOKED_PEERS_REMEMBERED = _ffi.ARANYA_QUIC_KNOWN_PEERS_MAX


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


def _closed_before_outcome() -> Closed:
    return Closed(
        _ffi.ARANYA_QUIC_ERR_CLOSED, "the endpoint was closed before the outcome was reported", None
    )


def _outcome_dropped() -> Closed:
    return Closed(
        _ffi.ARANYA_QUIC_ERR_CLOSED,
        "the endpoint shut down, and the close's outcome event was dropped "
        "(more than max_events events were waiting)",
        "aranya_quic_close_nowait",
    )



@dataclasses.dataclass(frozen=True, slots=True)
class Channel:
    """Where a message that a :attr:`EventType.SEND_FAILED` event reports was
    going (the channel fields of ``aranya_quic_event.channel``)."""

    #: The resolved peer address when resolution got that far, else ``""``.
    addr: str
    #: :attr:`Kind.CHANNEL` or :attr:`Kind.SYNC` (a plain ``int`` if unknown).
    kind: int
    #: For channel messages: the 32-byte team id; else 32 zero bytes.
    team_id: bytes
    #: For channel messages: the label; else ``""``.
    label: str
    #: For sync messages: the sync type; else 0.
    sync_type: int


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Something that happened on an endpoint (``aranya_quic_event``), from
    :meth:`Endpoint.next_event`, :meth:`Endpoint.next_event_async` or
    :meth:`Endpoint.events`. Fields that do not apply to the type are empty
    (``0``, ``""``, ``None``)."""

    #: An :class:`EventType` (a plain ``int`` for a type this package does
    #: not know: ignore those).
    type: int
    #: For SEND_FAILED, CLOSE_FINISHED and SHUTDOWN_FINISHED: the id that
    #: the non-blocking send, :meth:`Endpoint.close_nowait` or
    #: :meth:`Endpoint.shutdown` returned.
    id: int
    #: The peer's address. For SEND_FAILED and CLOSE_FINISHED as the call
    #: was given it (a host name stays one); otherwise ``"ip:port"``.
    addr: str
    #: What happened as a return code: ``0`` (``ARANYA_QUIC_OK``) or a
    #: negative ``ARANYA_QUIC_ERR_*``; :attr:`error` is the exception.
    error_code: int
    #: PEER_CONNECTED, PEER_DISCONNECTED: SHA-256 of the peer's DER leaf
    #: certificate; else ``None``.
    peer_id: bytes | None
    #: SEND_FAILED: where the message was going; else ``None``.
    channel: Channel | None
    #: PEER_DISCONNECTED, CLOSE_FINISHED, SHUTDOWN_FINISHED: accepted
    #: messages the peer(s) did not confirm.
    unconfirmed: int
    #: Events dropped for lack of room just before this one: by the library
    #: (``max_events`` waiting in it) plus by the endpoint's own queue of
    #: taken events (see :meth:`Endpoint.events`).
    dropped_before: int
    #: Why, in words (may be ``""``).
    reason: str

    @property
    def ok(self) -> bool:
        """True when :attr:`error_code` is ``ARANYA_QUIC_OK``."""
        return self.error_code == _ffi.ARANYA_QUIC_OK

    @property
    def error(self) -> AranyaQuicError | None:
        """The exception for :attr:`error_code` (a new one on every access,
        with this event in its ``event`` attribute and :attr:`reason` as its
        ``detail``), or ``None`` when it is ``ARANYA_QUIC_OK``."""
        if self.error_code == _ffi.ARANYA_QUIC_OK:
            return None
        detail = self.reason
        if not detail and self.unconfirmed:
            detail = f"{self.unconfirmed} accepted message(s) were not confirmed"
        e = error_from_code(self.error_code, detail, _EVENT_FUNCTIONS.get(self.type))
        e.event = self
        return e

    @classmethod
    def _from_c(cls, ev: _ffi.aranya_quic_event) -> Event:
        peer_id = bytes(ev.peer_id)
        ch = ev.channel
        channel = None
        if ch.kind:
            addr, kind, sync_type, team_id, label, label_len, _ = _CHANNEL.unpack_from(ch)
            channel = Channel(
                addr.split(b"\0", 1)[0].decode("utf-8", "replace"),
                _KINDS.get(kind, kind),
                team_id,
                label[: min(label_len, _LABEL_MAX)].decode("utf-8", "replace"),
                sync_type,
            )
        return cls(
            type=_EVENT_TYPES.get(ev.type, ev.type),
            id=int(ev.id),
            addr=ev.addr.decode("utf-8", "replace"),
            error_code=int(ev.error_code),
            peer_id=peer_id if any(peer_id) else None,
            channel=channel,
            unconfirmed=int(ev.unconfirmed),
            dropped_before=int(ev.dropped_before),
            reason=ev.reason.decode("utf-8", "replace"),
        )


class EventStream:
    """What :meth:`Endpoint.events` returns: an asynchronous iterator of the
    endpoint's events. It ends after yielding the
    :attr:`EventType.SHUTDOWN_FINISHED` event (the last of an endpoint), or
    once the endpoint is closed and every event taken before was yielded."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._done = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        try:
            event = await self._endpoint.next_event_async()
        except Closed:
            self._done = True
            raise StopAsyncIteration from None
        if event.type == EventType.SHUTDOWN_FINISHED:
            self._done = True
        return event


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

    In asyncio, every ``*_async`` method waits on the library's descriptors
    with the running loop's ``add_reader`` (no thread, no executor), and
    ``async with`` / ``async for`` work::

        async with Endpoint(cert=..., key=..., ca=...) as ep:
            msg_id = await ep.send_async("peer.example:4433", team_id, "chat", b"hi")
            async for msg in ep:
                ...

    Leaving ``async with`` awaits :meth:`shutdown_async`, then frees.

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
        # The library's descriptors, by kind: "recv" (aranya_quic_receive_fd),
        # "send" (aranya_quic_send_fd), "event" (aranya_quic_event_fd).
        self._fds: dict[str, int] = {}
        self._fd: int | None = None
        # The asyncio machinery's own dup() of each descriptor it waits on,
        # the loops' readers on them, and how many coroutines are between
        # _watch_acquire and _watch_release (see _watch_acquire).
        self._dups: dict[str, int] = {}
        self._watches: dict[tuple[asyncio.AbstractEventLoop, str], _FdWatch] = {}
        self._async_users = 0
        # Events taken from the library (see _pump_events). Guarded by
        # _ev_lock, which is held across the library calls whose ids it
        # registers, so that no outcome is taken before its waiter is known.
        self._ev_lock = threading.Lock()
        self._ev_struct = _ffi.aranya_quic_event()
        self._ev_queue: collections.deque[Event] = collections.deque()
        self._ev_queue_max = config.max_events or _ffi.ARANYA_QUIC_DEFAULT_MAX_EVENTS
        self._ev_queue_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # Futures of close_async / shutdown_async by (event type, id).
        self._ev_outcomes: dict[tuple[int, int], list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Event]]]] = {}
        self._ev_dropped_pending = 0
        self._ev_dropped_total = 0
        self._shutdown_outcome: Event | None = None
        self._local_addr: str | None = None
        self._tls = threading.local()
        # Messages iteration or receive_async took from the library in a
        # batch and did not return yet. They are older than anything still
        # queued in the library, so every receive method returns them first.
        self._pending: collections.deque[Message] = collections.deque()
        # Set once _pending got messages: blocking receives then wait in
        # shorter slices to look for them (see _TAKEN_AHEAD_SLICE_MS).
        self._took_ahead = False
        # Guards every change of _pending, so that a revocation can filter
        # it (see _drop_taken) without racing the takers. A batch take in
        # flight is in _takes with the revocation generation at the start
        # of its current library call; it learns of the revocations made
        # since from _revoke_log, entries (generation, predicate) kept only
        # while some take in flight started its library call before them.
        self._pending_lock = threading.Lock()
        self._takes: dict[int, int] = {}
        self._take_ids = itertools.count()
        self._revoke_gen = 0
        self._revoke_log: list[tuple[int, Callable[[Message], bool]]] = []
        lib = _ffi.lib()
        # The library calls the log trampoline until the endpoint is freed:
        # it lives as long as this object (or for good after close(wait=False)).
        self._log_trampoline = (
            _log_trampoline(config.log_callback) if config.log_callback is not None else None
        )
        cfg, keep = config._to_c(self._log_trampoline)
        out = _ffi.aranya_quic_t(0)
        rc = lib.aranya_quic_new(byref(cfg), byref(out))
        check(rc, "aranya_quic_new")
        del keep
        self._handle = int(out.value)
        if self._log_trampoline is not None:
            _LOGGING_ENDPOINTS.add(self)

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

    def close(self, wait: bool = True) -> None:
        """Free the endpoint (``aranya_quic_free``). Idempotent.

        Closes every connection gracefully (bounded by ``drain_timeout_ms``)
        and drops queued messages (also those iteration or
        :meth:`receive_async` had taken in a batch but not returned yet).
        Calls blocked on other threads return
        with :class:`~aranya_quic.Closed`, and so does every pending
        ``*_async`` call. The :meth:`fileno`, :meth:`send_fileno` and
        :meth:`event_fileno` descriptors are closed: unregister them from
        selectors / ``loop.remove_reader`` first. Events already taken from
        the library stay readable (:meth:`next_event`, :meth:`events`).

        After :meth:`shutdown` finished (:meth:`shutdown_async`), this
        returns at once, and raises no :class:`~aranya_quic.Unconfirmed`
        once the SHUTDOWN_FINISHED event was taken: that event already
        reported the outcome (the library's free repeats it).

        Args:
            wait: ``False`` invalidates the handle at once and lets the
                endpoint close in the background
                (``aranya_quic_free_nowait``): nothing blocks, but nobody
                learns whether the peers confirmed everything (the library
                logs the count at WARN). With a ``log_callback`` the process
                should not exit while that background close still runs.

        Raises:
            Unconfirmed: messages that sends accepted were not confirmed by
                their peers within the drain timeout (they may or may not
                have been delivered). The endpoint is closed all the same.
        """
        with self._lock:
            h, self._handle = self._handle, 0
        try:
            if h:
                if wait:
                    rc = _ffi.lib().aranya_quic_free(h)
                    if rc == _ffi.ARANYA_QUIC_ERR_UNCONFIRMED and self._shutdown_outcome is not None:
                        rc = _ffi.ARANYA_QUIC_OK  # reported once, by the shutdown's event
                    check(rc, "aranya_quic_free")
                else:
                    if self._log_trampoline is not None:
                        _IMMORTAL_CALLBACKS.append(self._log_trampoline)
                    check(_ffi.lib().aranya_quic_free_nowait(h), "aranya_quic_free_nowait")
        finally:
            # Dropped like the library's queued messages.
            with self._pending_lock:
                self._pending.clear()
            self._wake_async_after_close()

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

    async def __aenter__(self) -> Endpoint:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        """Await :meth:`shutdown_async` (every accepted message handed over
        and confirmed, or given up after the drain timeouts), then free the
        endpoint, which then returns at once. Errors are raised as
        ``__exit__`` raises them: only when the block itself did not raise,
        else added as a note to the block's exception. If this task is
        cancelled while the shutdown drains, the endpoint is freed in the
        background (``close(wait=False)``) and the cancellation goes on."""
        error: BaseException | None = None
        try:
            if not self.closed:
                await self.shutdown_async()
        except Closed:
            pass
        except Exception as e:
            error = e
        except BaseException:
            self.close(wait=False)
            raise
        try:
            self.close()
        except Exception as e:
            if error is None:
                error = e
        if error is None:
            return
        if exc is None:
            raise error
        exc.add_note(f"aranya_quic: closing the endpoint also failed: {error!r}")

    def __del__(self) -> None:
        h = getattr(self, "_handle", 0)
        if h and not _ffi._forked_child and _ffi._lib is not None:
            try:
                _ffi._lib.aranya_quic_free(h)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass
        # Emptied as they close, so that a waiter's cleanup running later
        # (a coroutine collected with the endpoint) closes none twice: the
        # numbers may already belong to other files.
        dups = getattr(self, "_dups", {})
        while dups:
            _, fd = dups.popitem()
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
        fd = self._fd
        if fd is None:
            fd = self._fd = self._lib_fd("recv")
        else:
            self._live()
        return fd

    def send_fileno(self) -> int:
        """A descriptor that is readable while no non-blocking send is being
        refused (``aranya_quic_send_fd``): after a
        :class:`~aranya_quic.WouldBlock` from a ``try_`` send, wait until it
        is readable, then retry (:meth:`send_async` does this). It becomes
        readable again once every queue that refused a message drained to
        half its limit. Owned by the library like :meth:`fileno`: never
        read, write or close it; :meth:`close` closes it."""
        fd = self._fds.get("send")
        if fd is None:
            return self._lib_fd("send")
        self._live()
        return fd

    def event_fileno(self) -> int:
        """A descriptor that is readable while events wait in the library to
        be taken (``aranya_quic_event_fd``): then call :meth:`next_event`
        until it returns ``None``. Owned by the library like :meth:`fileno`.
        Events the asyncio dispatcher already took (see :meth:`events`) do
        not make it readable: drain with :meth:`next_event` before waiting."""
        fd = self._fds.get("event")
        if fd is None:
            return self._lib_fd("event")
        self._live()
        return fd

    _FD_FUNCTIONS = {
        "recv": "aranya_quic_receive_fd",
        "send": "aranya_quic_send_fd",
        "event": "aranya_quic_event_fd",
    }

    def _lib_fd(self, kind: str) -> int:
        """The library's descriptor of ``kind`` (the same on every call)."""
        fd = self._fds.get(kind)
        h = self._live()
        if fd is None:
            name = self._FD_FUNCTIONS[kind]
            out = c_int(-1)
            self._check(getattr(_ffi.lib(), name)(h, byref(out)), name)
            fd = self._fds[kind] = out.value
        return fd

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
            NotAuthorizedError: the peer runs team authorization and does
                not allow this endpoint on ``team_id`` (or revoked it while
                the channel was open).
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

    # -- non-blocking sending -------------------------------------------------

    @staticmethod
    def _channel_args(addr: Address, team_id: bytes, label: str | bytes, function: str) -> tuple[bytes, bytes, bytes]:
        team = _team_id_bytes(team_id, function)
        label_raw = label.encode("utf-8", "surrogatepass") if isinstance(label, str) else bytes(label)
        return _format_addr(addr), team, label_raw

    def _nowait(self, function: str, *args: Any) -> tuple[int, int]:
        """One call of a one-message ``_nowait`` send: (rc, message id)."""
        out = c_uint64(0)
        rc = _fast(function)(self._live(), *args, byref(out))
        return rc, out.value

    def try_send(self, addr: Address, team_id: bytes, label: str | bytes, message: Any) -> int:
        """Send ``message`` on the channel (``addr``, ``team_id``, ``label``)
        without blocking (``aranya_quic_send_nowait``).

        The message goes to the channel's stream at once when it can take
        it, else into the peer's outbound queue, from which the library dials
        (or resolves ``addr``) in the background. Channel order holds across
        every send method. An accepted message is delivered as one that
        :meth:`send` accepted, or a :attr:`EventType.SEND_FAILED` event with
        its id says why it was not sent.

        Args: as for :meth:`send` (``addr`` may be ``"host:port"``).

        Returns:
            The message's id (unique per endpoint, increasing from 1).

        Raises:
            WouldBlock: the peer's outbound queue holds
                ``max_outbound_bytes_per_peer`` (or all queues
                ``max_outbound_bytes``); nothing was accepted. Retry once
                :meth:`send_fileno` is readable, or use :meth:`send_async`.
            InvalidArgument, BadAddress, TooLarge (over
                ``max_message_size``; over the peer's own limit is a
                SEND_FAILED event), Closed (also after :meth:`shutdown`).
        """
        function = "aranya_quic_send_nowait"
        addr_raw, team, label_raw = self._channel_args(addr, team_id, label, function)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        rc, msg_id = self._nowait(function, addr_raw, team, label_raw, len(label_raw), msg_arg, msg_len)
        self._check(rc, function)
        del msg_keep
        return msg_id

    def try_send_sync(self, addr: Address, sync_type: int, message: Any) -> int:
        """:meth:`try_send` for an Aranya sync message of type ``sync_type``
        (``aranya_quic_send_sync_nowait``). Returns the message's id; same
        errors."""
        function = "aranya_quic_send_sync_nowait"
        _check_uint(sync_type, "sync_type", _UINT32_MAX)
        addr_raw = _format_addr(addr)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        rc, msg_id = self._nowait(function, addr_raw, sync_type, msg_arg, msg_len)
        self._check(rc, function)
        del msg_keep
        return msg_id

    def _batch_nowait(self, function: str, head: tuple[Any, ...], arr: Any, start: int, n: int) -> tuple[int, range]:
        """One call of a batch ``_nowait`` send of ``arr[start:n]``: (rc, ids
        of the messages accepted)."""
        sent = c_size_t(0)
        first = c_uint64(0)
        count = n - start
        view: Any = arr if count else None
        if count and start:
            view = (_ffi.aranya_quic_buf * count).from_buffer(arr, start * ctypes.sizeof(_ffi.aranya_quic_buf))
        if function == "aranya_quic_send_batch_nowait":
            fn = _fast(function)
        else:
            fn = getattr(_ffi.lib(), function)
        rc = fn(self._live(), *head, view, count, byref(sent), byref(first))
        k = int(sent.value)
        return rc, (range(first.value, first.value + k) if k else range(0))

    def _batch_head(self, addr: Address, team_id: bytes, label: str | bytes, function: str) -> tuple[Any, ...]:
        try:
            addr_raw, team, label_raw = self._channel_args(addr, team_id, label, function)
            self._live()
        except AranyaQuicError as e:
            e.sent, e.ids = 0, range(0)
            raise
        return (addr_raw, team, label_raw, len(label_raw))

    def _sync_batch_head(self, addr: Address, sync_type: int, function: str) -> tuple[Any, ...]:
        try:
            _check_uint(sync_type, "sync_type", _UINT32_MAX)
            addr_raw = _format_addr(addr)
            self._live()
        except AranyaQuicError as e:
            e.sent, e.ids = 0, range(0)
            raise
        return (addr_raw, sync_type)

    def _try_batch(self, function: str, head: tuple[Any, ...], msgs: Iterable[Any]) -> range:
        arr, n, keep = _buf_array(msgs, "msgs")
        rc, ids = self._batch_nowait(function, head, arr, 0, n)
        if rc != _ffi.ARANYA_QUIC_OK:
            e = self._error(rc, function)
            e.sent, e.ids = len(ids), ids
            raise e
        del keep, arr
        return ids

    def try_send_batch(self, addr: Address, team_id: bytes, label: str | bytes, msgs: Iterable[Any]) -> range:
        """:meth:`try_send` for many messages of one channel, in order, in one
        library call (``aranya_quic_send_batch_nowait``).

        Returns:
            The ids of the messages, in order (consecutive; an empty range
            for an empty batch).

        Raises:
            The error of the first message refused or failing its checks
            (:class:`~aranya_quic.WouldBlock` when a queue is full), with
            ``sent`` the number accepted before it and ``ids`` their ids:
            those are accepted, it and the rest are not.
        """
        function = "aranya_quic_send_batch_nowait"
        return self._try_batch(function, self._batch_head(addr, team_id, label, function), msgs)

    def try_send_sync_batch(self, addr: Address, sync_type: int, msgs: Iterable[Any]) -> range:
        """:meth:`try_send_batch` for Aranya sync messages of type
        ``sync_type`` (``aranya_quic_send_sync_batch_nowait``)."""
        function = "aranya_quic_send_sync_batch_nowait"
        return self._try_batch(function, self._sync_batch_head(addr, sync_type, function), msgs)

    async def _retry_async(self, function: str, *args: Any) -> int:
        """A one-message ``_nowait`` send, retried whenever the send
        descriptor turns readable after a refusal."""
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            rc, msg_id = self._nowait(function, *args)
            if rc == _ffi.ARANYA_QUIC_OK:
                return msg_id
            if rc != _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK:
                self._check(rc, function)
            if loop is None:
                loop = asyncio.get_running_loop()
            await self._wait_readable(loop, "send")

    async def send_async(self, addr: Address, team_id: bytes, label: str | bytes, message: Any) -> int:
        """:meth:`try_send` without blocking the event loop: while the peer's
        outbound queue is full, wait (``add_reader`` on :meth:`send_fileno`)
        and retry. Returns once the message is accepted, with its id; its
        delivery is then reported as for :meth:`try_send` (a
        :attr:`EventType.SEND_FAILED` event if it cannot be sent).
        Cancelling the wait leaves the message unsent.

        Raises: as :meth:`try_send`, except ``WouldBlock``.
        """
        function = "aranya_quic_send_nowait"
        addr_raw, team, label_raw = self._channel_args(addr, team_id, label, function)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        msg_id = await self._retry_async(function, addr_raw, team, label_raw, len(label_raw), msg_arg, msg_len)
        del msg_keep
        return msg_id

    async def send_sync_async(self, addr: Address, sync_type: int, message: Any) -> int:
        """:meth:`send_async` for an Aranya sync message of type ``sync_type``."""
        function = "aranya_quic_send_sync_nowait"
        _check_uint(sync_type, "sync_type", _UINT32_MAX)
        addr_raw = _format_addr(addr)
        msg_arg, msg_len, msg_keep = _msg_arg(message)
        msg_id = await self._retry_async(function, addr_raw, sync_type, msg_arg, msg_len)
        del msg_keep
        return msg_id

    async def _batch_async(self, function: str, head: tuple[Any, ...], msgs: Iterable[Any]) -> list[int]:
        arr, n, keep = _buf_array(msgs, "msgs")
        ids: list[int] = []
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            rc, got = self._batch_nowait(function, head, arr, len(ids), n)
            ids.extend(got)
            if rc == _ffi.ARANYA_QUIC_OK:
                break
            if rc != _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK:
                e = self._error(rc, function)
                e.sent, e.ids = len(ids), ids
                raise e
            if loop is None:
                loop = asyncio.get_running_loop()
            try:
                await self._wait_readable(loop, "send")
            except AranyaQuicError as e:
                e.sent, e.ids = len(ids), ids
                raise
        del keep, arr
        return ids

    async def send_batch_async(self, addr: Address, team_id: bytes, label: str | bytes, msgs: Iterable[Any]) -> list[int]:
        """:meth:`try_send_batch` without blocking the event loop: what a
        full queue refuses is retried once :meth:`send_fileno` is readable,
        until every message is accepted.

        Returns:
            The ids of the messages, in order (consecutive within each
            library call only).

        Raises:
            As :meth:`try_send_batch` except ``WouldBlock``; ``sent`` and
            ``ids`` count every message accepted before the failure
            (``ids`` is then a list). A cancelled wait leaves the rest
            unsent.
        """
        function = "aranya_quic_send_batch_nowait"
        return await self._batch_async(function, self._batch_head(addr, team_id, label, function), msgs)

    async def send_sync_batch_async(self, addr: Address, sync_type: int, msgs: Iterable[Any]) -> list[int]:
        """:meth:`send_batch_async` for Aranya sync messages of type ``sync_type``."""
        function = "aranya_quic_send_sync_batch_nowait"
        return await self._batch_async(function, self._sync_batch_head(addr, sync_type, function), msgs)

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

        Messages that iteration or :meth:`receive_async` took ahead in a
        batch come first. A wait in the library cannot see those another
        consumer takes ahead while it waits, so the wait is done in slices
        and looks for them between two (slices of 1 s, of 0.1 s once the
        endpoint took messages ahead): such a message comes out with that
        delay at worst, never stays behind.

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
            msg = self._pop_pending()
            if msg is not None:  # else another thread took the last one
                return msg
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
                wait_ms = _wait_ms(deadline, self._slice_ms())
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
                # Another consumer may have left messages it took ahead
                # while this one waited in the library, which knows
                # nothing of them.
                if self._pending:
                    msg = self._pop_pending()
                    if msg is not None:
                        return msg
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

        Waits (as :meth:`receive` does, also for messages another consumer
        took ahead) for the first message only, never for more once one is
        there. One receive buffer is used for the whole
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
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            out = self._pop_pending_batch(max_msgs)
            if out:
                return out
            got = self._take_batch(max_msgs, timeout == 0, deadline)
            if got is not None:
                return got
            # None: messages another consumer took ahead wait in _pending.

    def _pop_pending_batch(self, max_msgs: int) -> list[Message]:
        """Up to ``max_msgs`` of the oldest messages of ``_pending``."""
        pending = self._pending
        if not pending:
            return []
        with self._pending_lock:
            return [pending.popleft() for _ in range(min(max_msgs, len(pending)))]

    def _slice_ms(self) -> int:
        """The longest single library wait of a blocking receive."""
        return _TAKEN_AHEAD_SLICE_MS if self._took_ahead else _WAIT_SLICE_MS

    def _records(self, count: int) -> ctypes.Array[_ffi.aranya_quic_message]:
        """This thread's array of at least ``count`` message records."""
        recs = getattr(self._tls, "recs", None)
        if recs is None or len(recs) < count:
            recs = (_ffi.aranya_quic_message * max(count, RECEIVE_BATCH_DEFAULT))()
            self._tls.recs = recs
        return recs

    def _take_batch(
        self, max_msgs: int, nowait: bool, deadline: float | None, take: int | None = None
    ) -> list[Message] | None:
        """One batch straight from the library (not from ``_pending``):
        one call if ``nowait``, else waiting until ``deadline`` (``None``:
        for good). ``[]`` when nothing came in time; ``None`` when, between
        two wait slices, messages showed up in ``_pending`` (the caller takes
        those). ``take``: the key in ``_takes`` of the batch take this is,
        whose generation is renewed before each library call after the
        first (see _drop_taken)."""
        lib = _ffi.lib()
        recs = self._records(max_msgs)
        n = c_size_t(0)
        buf = self._buffer(RECEIVE_BUFFER_INITIAL)
        fn = "aranya_quic_receive_batch"
        while True:
            h = self._live()
            wait_ms = 0 if nowait else _wait_ms(deadline, self._slice_ms())
            rc = lib.aranya_quic_receive_batch(h, buf, len(buf), recs, max_msgs, byref(n), wait_ms)
            if rc == _ffi.ARANYA_QUIC_OK:
                return self._unpack(buf, recs, n.value, max_msgs)
            if rc == _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL:
                needed = int(recs[0].len)
                if needed <= len(buf):  # pragma: no cover - library contract broken
                    raise error_from_code(rc, last_error(), fn, needed=needed)
                buf = self._buffer(needed)
                self._renew_take(take)
                continue  # the message stays queued: take it at once
            if rc in (_ffi.ARANYA_QUIC_ERR_WOULD_BLOCK, _ffi.ARANYA_QUIC_ERR_TIMEOUT):
                if nowait:
                    return []
                if self._pending:
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    return []
                self._renew_take(take)
                continue
            self._check(rc, fn)

    def _renew_take(self, take: int | None) -> None:
        """A batch take's library call took nothing: its next one starts
        now, so revocations made before cannot concern what it will take.
        Moving its generation up lets _revoke_log forget them, so the log
        stays short also while a take waits for long on an idle endpoint."""
        if take is None:
            return
        with self._pending_lock:
            if take in self._takes:
                self._takes[take] = self._revoke_gen
                self._trim_revoke_log_locked()

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
        and the rest kept in ``_pending``. ``timeout`` is ``0`` or ``None``."""
        while True:
            if self._pending:
                msg = self._pop_pending()
                if msg is not None:
                    return msg
            with self._pending_lock:
                take = next(self._take_ids)
                self._takes[take] = self._revoke_gen
            msgs: list[Message] | None = None
            try:
                msgs = self._take_batch(RECEIVE_BATCH_DEFAULT, timeout == 0, None, take)
            finally:
                kept = self._end_take(take, msgs)
            if kept:
                self._wake_receivers()
            if msgs is None:
                continue  # messages another consumer left behind: take those
            return msgs[0] if msgs else None

    def _end_take(self, take: int, msgs: list[Message] | None) -> bool:
        """Take ``take`` out of the takes in flight and keep all but the first
        of ``msgs`` in ``_pending``, less those of revocations made since
        its library call started (the application has not seen them yet).
        True when it kept some."""
        with self._pending_lock:
            gen = self._takes.pop(take)
            rest = msgs[1:] if msgs else []
            if rest and gen != self._revoke_gen:
                for g, revoked in self._revoke_log:
                    if g > gen:
                        rest = [m for m in rest if not revoked(m)]
            self._trim_revoke_log_locked()
            if not rest or not self._handle:
                return False
            self._pending.extend(rest)
            self._took_ahead = True
            return True

    def _trim_revoke_log_locked(self) -> None:
        """Forget the revocations every take in flight started its library
        call after (``_pending_lock`` held)."""
        log = self._revoke_log
        if not log:
            return
        if not self._takes:
            log.clear()
            return
        oldest = min(self._takes.values())
        keep = 0
        while keep < len(log) and log[keep][0] <= oldest:
            keep += 1
        del log[:keep]

    def _wake_receivers(self) -> None:
        """Messages were just left in ``_pending``: wake the receive_async
        calls waiting on the receive descriptor, which does not turn
        readable for them (the library's queue may be empty now)."""
        if not self._watches:
            # Checked after _pending grew: a receive_async that registers
            # its watch later looks at _pending once registered.
            return
        with self._lock:
            watches = [w for w in self._watches.values() if w.kind == "recv" and w.wakers]
        for w in watches:
            try:
                w.loop.call_soon_threadsafe(w.wake)
            except RuntimeError:  # its loop is closed
                pass

    def _pop_pending(self) -> Message | None:
        """The oldest message of ``_pending``, or ``None`` when it is empty."""
        with self._pending_lock:
            return self._pending.popleft() if self._pending else None

    def _drop_taken(self, revoked: Callable[[Message], bool]) -> None:
        """Drop the messages iteration or :meth:`receive_async` took from the
        library in a batch and did not return yet for which ``revoked`` is
        true, also those of batch takes still in flight, as the library
        drops the revoked messages still in its queue. Called after the
        library's revocation returned: a take whose library call started
        before it may hold revoked messages, one that starts after cannot."""
        with self._pending_lock:
            self._revoke_gen += 1
            if self._takes:
                self._revoke_log.append((self._revoke_gen, revoked))
            pending = self._pending
            if pending:
                kept = [m for m in pending if not revoked(m)]
                if len(kept) != len(pending):
                    pending.clear()
                    pending.extend(kept)

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

        Waits with the running loop's ``add_reader`` on the endpoint's own
        duplicate of :meth:`fileno` (no thread, no busy polling). Any number
        of ``receive_async`` calls may wait at once, on one loop or on
        several (each message goes to one of them). Takes every queued
        message (up to 64) in one library call and hands them out one by
        one, as iteration does. Messages another consumer (iteration, on
        any thread) takes ahead while this waits wake it too, although the
        descriptor does not turn readable for them.

        Raises:
            Closed: the endpoint is closed, or was closed (by a task on this
                loop or by another thread) while this call waited.
        """
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            msg = self._next_from_batch(0)  # raises Closed once closed
            if msg is not None:
                return msg
            if loop is None:
                loop = asyncio.get_running_loop()
            await self._wait_readable(loop, "recv")

    def __aiter__(self) -> Endpoint:
        return self

    async def __anext__(self) -> Message:
        """``async for msg in endpoint``: :meth:`receive_async` until the
        endpoint is closed."""
        try:
            return await self.receive_async()
        except Closed:
            raise StopAsyncIteration from None

    # -- asyncio machinery ----------------------------------------------------

    def _watch_acquire(self, loop: asyncio.AbstractEventLoop, kind: str) -> _FdWatch:
        """Count the calling coroutine as waiting on descriptor ``kind`` in
        ``loop``, registering the loop's reader if it is the first.

        The reader watches our own ``dup()`` of the library's descriptor,
        not the descriptor itself: ``aranya_quic_free`` closes the library's,
        and a poller waiting on a closed descriptor would never wake (epoll
        drops it silently) while its number could be reused. The duplicates
        stay open until the endpoint is closed *and* no coroutine uses them
        (``_async_users``); :meth:`close` wakes every waiter itself, so
        nothing depends on how a duplicate reads after the free.
        """
        lib_fd = self._lib_fd(kind)  # raises Closed once closed
        with self._lock:
            # close() sets _handle to 0 under this lock before freeing, so
            # while it is non-zero lib_fd is still the library's open fd.
            if self._handle == 0:
                raise Closed(_ffi.ARANYA_QUIC_ERR_CLOSED, "the endpoint was closed", None)
            key = (loop, kind)
            w = self._watches.get(key)
            if w is None:
                fd = self._dups.get(kind)
                if fd is None:
                    fd = self._dups[kind] = os.dup(lib_fd)  # non-inheritable (close-on-exec)
                w = _FdWatch(loop, fd, kind, self._pump_from_reader if kind == "event" else None)
                loop.add_reader(fd, w.fire)
                self._watches[key] = w
            w.users += 1
            self._async_users += 1
        return w

    def _watch_release(self, w: _FdWatch) -> None:
        """The calling coroutine stopped waiting on ``w`` (on ``w.loop``'s
        thread): remove the reader after the last one, and close the
        duplicates once the endpoint is closed and nobody uses them."""
        with self._lock:
            w.users -= 1
            self._async_users -= 1
            if w.users == 0:
                self._watches.pop((w.loop, w.kind), None)
                if not w.loop.is_closed():
                    w.loop.remove_reader(w.fd)
            dups = self._dups_to_close_locked()
        for fd in dups:
            os.close(fd)

    def _dups_to_close_locked(self) -> list[int]:
        if self._handle == 0 and self._async_users == 0 and self._dups:
            dups = list(self._dups.values())
            self._dups.clear()
            return dups
        return []

    async def _wait_readable(self, loop: asyncio.AbstractEventLoop, kind: str) -> None:
        """Wait until descriptor ``kind`` is readable, or the endpoint closed."""
        w = self._watch_acquire(loop, kind)
        fut: asyncio.Future[None] = loop.create_future()
        w.wakers.append(fut)
        if kind == "recv" and self._pending:
            # Left there by a consumer before it could see this waiter
            # (see _wake_receivers): no need to wait.
            fut.set_result(None)
        try:
            await fut
        finally:
            try:
                w.wakers.remove(fut)
            except ValueError:
                pass
            self._watch_release(w)

    def _wake_async_after_close(self) -> None:
        """close() ran: wake every waiting coroutine (they see the endpoint
        closed and raise Closed), fail every close/shutdown outcome still
        awaited, and close the duplicates nobody uses."""
        with self._lock:
            watches = list(self._watches.values())
            dups = self._dups_to_close_locked()
        for fd in dups:
            os.close(fd)
        for w in watches:
            try:
                w.loop.call_soon_threadsafe(w.wake)
            except RuntimeError:  # its loop is closed
                pass
        with self._ev_lock:
            outcomes = [x for waiters in self._ev_outcomes.values() for x in waiters]
            self._ev_outcomes.clear()
            queue_waiters, self._ev_queue_waiters = self._ev_queue_waiters, []
        for loop, fut in outcomes:
            _settle(loop, fut, error=_closed_before_outcome)
        for loop, qfut in queue_waiters:
            _settle(loop, qfut)

    # -- events ---------------------------------------------------------------

    def _pump_events(self) -> AranyaQuicError | None:
        """The event dispatcher: take every event waiting in the library and
        hand each out, to the close/shutdown waiting for its id (whatever
        loop or thread it waits on) and to the endpoint's queue of events
        for :meth:`next_event` and :meth:`events` (bounded: see
        :attr:`Config.max_events`). Returns the error of a failing take
        (none once the endpoint is closed) instead of raising it, since the
        loop's reader calls it too. Never blocks."""
        lib = _ffi.lib()
        size = ctypes.sizeof(_ffi.aranya_quic_event)
        with self._ev_lock:
            h = self._handle
            if h == 0:
                return None
            ev = self._ev_struct
            while True:
                ctypes.memset(byref(ev), 0, size)
                ev.struct_size = size
                rc = lib.aranya_quic_next_event(h, byref(ev))
                if rc != _ffi.ARANYA_QUIC_OK:
                    break
                self._dispatch_locked(Event._from_c(ev))
            if rc == _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK:
                return None
            return self._error(rc, "aranya_quic_next_event")

    def _pump_from_reader(self) -> None:
        """The event descriptor's reader: :meth:`_pump_events`; a failure
        (other than a close, which wakes everyone itself) fails the
        outcomes awaited, since no further event can be taken to settle
        them."""
        error = self._pump_events()
        if error is None or isinstance(error, Closed):
            return
        with self._ev_lock:
            outcomes = [x for waiters in self._ev_outcomes.values() for x in waiters]
            self._ev_outcomes.clear()
            queue_waiters, self._ev_queue_waiters = self._ev_queue_waiters, []
        def fresh() -> AranyaQuicError:
            assert error is not None
            return error_from_code(error.code, error.detail, error.function)

        for loop, fut in outcomes:
            _settle(loop, fut, error=fresh)
        for loop, qfut in queue_waiters:
            _settle(loop, qfut)

    def _dispatch_locked(self, event: Event) -> None:
        """Hand out one event taken from the library (``_ev_lock`` held)."""
        t = event.type
        if t == EventType.CLOSE_FINISHED or t == EventType.SHUTDOWN_FINISHED:
            for loop, fut in self._ev_outcomes.pop((t, event.id), ()):
                _settle(loop, fut, event)
            if t == EventType.SHUTDOWN_FINISHED:
                self._shutdown_outcome = event
                # The endpoint's last event: a close still awaited lost its
                # event to an overflow and would otherwise wait for good.
                lost = [x for waiters in self._ev_outcomes.values() for x in waiters]
                self._ev_outcomes.clear()
                for loop, fut in lost:
                    _settle(loop, fut, error=_outcome_dropped)
        answers_call = t == EventType.CLOSE_FINISHED or t == EventType.SHUTDOWN_FINISHED
        if len(self._ev_queue) >= self._ev_queue_max and not answers_call:
            # Like the library: drop the new one, and tell the next one
            # kept; the outcomes of calls are kept beyond the limit.
            self._ev_dropped_pending += 1 + event.dropped_before
            self._ev_dropped_total += 1
            return
        if self._ev_dropped_pending:
            event = dataclasses.replace(
                event, dropped_before=event.dropped_before + self._ev_dropped_pending
            )
            self._ev_dropped_pending = 0
        self._ev_queue.append(event)
        waiters, self._ev_queue_waiters = self._ev_queue_waiters, []
        for loop, qfut in waiters:
            _settle(loop, qfut)

    @property
    def event_queue_dropped(self) -> int:
        """Events the endpoint's own queue of taken events dropped because it
        held ``max_events`` (nobody took them with :meth:`next_event` or
        :meth:`events`). The library's own drops are in
        :attr:`Stats.events_dropped`; both show in the next event's
        :attr:`Event.dropped_before`."""
        return self._ev_dropped_total

    def next_event(self) -> Event | None:
        """Take the oldest event, without blocking (``aranya_quic_next_event``).

        Events come in the order they happened. Every event taken from the
        library goes through the endpoint's dispatcher first (so a pending
        :meth:`close_async` or :meth:`shutdown_async` learns its outcome
        whoever takes the event) and then to one taker: this method,
        :meth:`next_event_async` or :meth:`events`.

        Returns:
            The event, or ``None`` when none is waiting.

        Raises:
            Closed: the endpoint is closed and every event taken before the
                close was returned.
        """
        error = self._pump_events()
        with self._ev_lock:
            if self._ev_queue:
                return self._ev_queue.popleft()
        if error is not None:
            raise error
        self._live()
        return None

    async def next_event_async(self) -> Event:
        """Wait for the next event without blocking the event loop (the
        running loop's ``add_reader`` on the event descriptor).

        Raises:
            Closed: as for :meth:`next_event` (also when the endpoint is
                closed while this waits).
        """
        loop = asyncio.get_running_loop()
        while True:
            error = self._pump_events()
            fut: asyncio.Future[None] | None = None
            with self._ev_lock:
                if self._ev_queue:
                    return self._ev_queue.popleft()
                if error is None and self._handle != 0:
                    fut = loop.create_future()
                    self._ev_queue_waiters.append((loop, fut))
            if error is not None:
                raise error
            if fut is None:
                raise Closed(_ffi.ARANYA_QUIC_ERR_CLOSED, "the endpoint was closed", None)
            try:
                w = self._watch_acquire(loop, "event")
            except BaseException:
                self._forget_queue_waiter(loop, fut)
                raise
            try:
                await fut
            finally:
                self._forget_queue_waiter(loop, fut)
                self._watch_release(w)

    def _forget_queue_waiter(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[None]) -> None:
        with self._ev_lock:
            try:
                self._ev_queue_waiters.remove((loop, fut))
            except ValueError:
                pass

    def events(self) -> EventStream:
        """An asynchronous iterator of the endpoint's events::

            async for event in ep.events():
                if event.type == aq.EventType.SEND_FAILED:
                    log.warning("message %d to %s failed: %s", event.id, event.addr, event.error)

        It ends after the :attr:`EventType.SHUTDOWN_FINISHED` event, or when
        the endpoint is closed. Every event goes to one taker (iterators,
        :meth:`next_event`, :meth:`next_event_async`); the outcomes that
        :meth:`close_async` and :meth:`shutdown_async` wait for are also
        handed to them, and the events stay in the queue for the takers.
        Events that nobody takes are held up to ``max_events`` in the
        library and as many again in the endpoint, then dropped (counted
        in :attr:`Event.dropped_before` of the next one).
        """
        return EventStream(self)

    async def _await_outcome(
        self, loop: asyncio.AbstractEventLoop, w: _FdWatch, key: tuple[int, int],
        fut: asyncio.Future[Event],
    ) -> Event:
        """Wait for the CLOSE_FINISHED / SHUTDOWN_FINISHED event ``key``;
        ``w`` (the loop's event reader, acquired by the caller) is
        released."""
        try:
            return await fut
        finally:
            with self._ev_lock:
                waiters = self._ev_outcomes.get(key)
                if waiters is not None:
                    try:
                        waiters.remove((loop, fut))
                    except ValueError:
                        pass
                    if not waiters:
                        del self._ev_outcomes[key]
            self._watch_release(w)

    def close_nowait(self, addr: Address) -> int:
        """Start closing the connection to ``addr`` as
        :meth:`close_connection` does, without waiting
        (``aranya_quic_close_nowait``). The close takes its turn after the
        messages already queued for ``addr``; its outcome arrives as a
        :attr:`EventType.CLOSE_FINISHED` event with the returned id (also
        when there was no connection). :meth:`close_async` waits for it.

        Returns:
            The close's id.

        Raises:
            BadAddress, Closed.
        """
        addr_raw = _format_addr(addr)
        out = c_uint64(0)
        rc = _ffi.lib().aranya_quic_close_nowait(self._live(), addr_raw, byref(out))
        self._check(rc, "aranya_quic_close_nowait")
        return int(out.value)

    async def close_async(self, addr: Address) -> None:
        """Close the connection to ``addr`` gracefully without blocking the
        event loop: :meth:`close_nowait`, then wait for its
        :attr:`EventType.CLOSE_FINISHED` event. Cancelling the wait does not
        stop the close.

        Raises:
            Unconfirmed: the peer did not confirm every accepted message
                within ``drain_timeout_ms`` (or the connection died); the
                connection is closed all the same. ``.event`` is the event.
            BadAddress.
            Closed: the endpoint is closed, or was closed before the close
                finished.
        """
        addr_raw = _format_addr(addr)
        loop = asyncio.get_running_loop()
        w = self._watch_acquire(loop, "event")
        try:
            fut: asyncio.Future[Event] = loop.create_future()
            out = c_uint64(0)
            with self._ev_lock:
                rc = _ffi.lib().aranya_quic_close_nowait(self._live(), addr_raw, byref(out))
                self._check(rc, "aranya_quic_close_nowait")
                key = (int(EventType.CLOSE_FINISHED), int(out.value))
                self._ev_outcomes.setdefault(key, []).append((loop, fut))
        except BaseException:
            self._watch_release(w)
            raise
        event = await self._await_outcome(loop, w, key, fut)
        error = event.error
        if error is not None:
            raise error

    def shutdown(self) -> int:
        """Start closing the whole endpoint and return at once
        (``aranya_quic_shutdown``). From now on sends raise
        :class:`~aranya_quic.Closed` and nothing more is received (messages
        already queued stay readable until :meth:`close`); messages the
        non-blocking sends queued are handed over first, then every
        connection drains, each for up to ``drain_timeout_ms``. A
        :attr:`EventType.SHUTDOWN_FINISHED` event with the returned id
        reports the outcome; :meth:`close` then returns at once. Calling it
        again returns the first call's id. :meth:`shutdown_async` waits for
        the outcome.

        Returns:
            The shutdown's id.

        Raises:
            Closed: the endpoint is closed (freed).
        """
        out = c_uint64(0)
        self._check(_ffi.lib().aranya_quic_shutdown(self._live(), byref(out)), "aranya_quic_shutdown")
        self._wake_senders()
        return int(out.value)

    def _wake_senders(self) -> None:
        """After a shutdown every send fails at once: let the send_async
        calls waiting for room retry now (and raise Closed) rather than when
        the queues happen to drain."""
        with self._lock:
            watches = [w for w in self._watches.values() if w.kind == "send"]
        for w in watches:
            try:
                w.loop.call_soon_threadsafe(w.wake)
            except RuntimeError:  # its loop is closed
                pass

    async def shutdown_async(self) -> None:
        """:meth:`shutdown`, then wait (without blocking the event loop) for
        its :attr:`EventType.SHUTDOWN_FINISHED` event. May be awaited again,
        and by several tasks: each gets the same outcome. Afterwards
        :meth:`close` returns at once (``async with`` does both).

        Raises:
            Unconfirmed: the peers did not confirm every accepted message
                (``.event.unconfirmed`` says how many).
            Closed: the endpoint is closed, or was closed before the
                shutdown finished.
        """
        loop = asyncio.get_running_loop()
        w = self._watch_acquire(loop, "event")
        event: Event | None = None
        try:
            fut: asyncio.Future[Event] = loop.create_future()
            out = c_uint64(0)
            with self._ev_lock:
                rc = _ffi.lib().aranya_quic_shutdown(self._live(), byref(out))
                self._check(rc, "aranya_quic_shutdown")
                key = (int(EventType.SHUTDOWN_FINISHED), int(out.value))
                self._wake_senders()
                done = self._shutdown_outcome
                if done is not None and done.id == key[1]:
                    event = done
                else:
                    self._ev_outcomes.setdefault(key, []).append((loop, fut))
        except BaseException:
            self._watch_release(w)
            raise
        if event is None:
            event = await self._await_outcome(loop, w, key, fut)
        else:
            self._watch_release(w)
        error = event.error
        if error is not None:
            raise error

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

    def connections(self) -> list[ConnectionInfo]:
        """The endpoint's connections, those in use and those still draining,
        with their peer, age, round-trip times, congestion state and traffic
        (``aranya_quic_connections``). A snapshot; never blocks beyond short
        locks. The list is sized to what the library reports (a call that
        finds more connections than it has room for is made again with
        more).

        Raises:
            Closed.
        """
        lib = _ffi.lib()
        size = ctypes.sizeof(_ffi.aranya_quic_connection_info)
        capacity = _CONNECTIONS_INITIAL
        while True:
            arr = (_ffi.aranya_quic_connection_info * capacity)()
            count = c_size_t(0)
            rc = lib.aranya_quic_connections(self._live(), arr, capacity, size, byref(count))
            if rc == _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL and count.value > capacity:
                # Room for connections made before the next call too.
                capacity = count.value + max(4, count.value // 4)
                continue
            self._check(rc, "aranya_quic_connections")
            return [ConnectionInfo._from_c(arr[i]) for i in range(min(count.value, capacity))]

    # -- trust and team authorization ---------------------------------------

    def set_trust(self, ca_pem: PemSource, pins: Iterable[bytes] = ()) -> list[bytes]:
        """Replace the trusted CA certificates and the pins at once
        (``aranya_quic_set_trust``).

        New handshakes use the new set from the moment the call starts.
        Every connection whose peer's certificate no longer verifies (chain
        to one of the new CAs, within validity, pinned if ``pins`` is not
        empty) is closed before this returns (:attr:`Stats.connections_revoked`);
        connections whose peer still verifies are not touched. When it
        returns, nothing more from a revoked peer is received: the messages
        it had queued that were not taken are dropped
        (:attr:`Stats.messages_revoked`), and so are those that iteration or
        :meth:`receive_async` had taken ahead in a batch; its accepted but
        unconfirmed messages count in :attr:`Stats.messages_unconfirmed`, its
        queued non-blocking sends fail with :attr:`EventType.SEND_FAILED`
        events, and a later send to it dials again and raises
        :class:`~aranya_quic.TlsError`. The revoked peer learns of it when
        the close reaches it; until then its own sends may still be accepted
        on its side (none is delivered). A peer re-admitted by a later call
        connects again on the next send (by either side).

        Revoked peers are the peers the endpoint knows that the new set no
        longer trusts: those with a connection, and the last
        ``ARANYA_QUIC_KNOWN_PEERS_MAX`` (4096) distinct peers admitted and
        not revoked since (so also a peer whose connections are gone).

        Blocks while the revoked connections are closed locally (no network
        round trip). The library logs the revocation (WARN) on the calling
        thread before it returns; the endpoint holds none of its locks
        meanwhile, so a ``log_callback`` may call the trust calls.

        Args:
            ca_pem: PEM with at least one CA certificate, as a
                :data:`PemSource` (PEM bytes, PEM text or a path); every
                block must parse.
            pins: SHA-256 fingerprints (32 bytes each, see
                :func:`peer_id_from_pem`) of the only peers accepted, in
                addition to the CA check. Empty (default): no pinning.

        Returns:
            The peer ids of the revoked peers, each once (``len()`` is how
            many peers were revoked): an application that keeps messages
            it already received can drop theirs.

        Raises:
            InvalidArgument: empty PEM, a block that does not parse, no
                certificate, or a pin that is not 32 bytes. Nothing changed.
            TypeError: ``pins`` is a single bytes object (wrap it in a list).
            Closed.
        """
        function = "aranya_quic_set_trust"
        joined, count = _pins_arg(pins, "pins", function)
        ca_ptr, ca_len, ca_keep = _pem_arg(ca_pem, "ca_pem")
        pin_ptr, _, pin_keep = _as_u8(joined, "pins") if count else (None, 0, None)
        # The ids cannot be asked for again (a second call revokes nothing),
        # so the buffer holds the most the library may report, with room
        # for connections made meanwhile.
        conns = len(self.connections())
        cap = _REVOKED_PEERS_REMEMBERED + 2 * conns + 64
        id_len = _ffi.ARANYA_QUIC_PEER_ID_LEN
        ids = (c_uint8 * (cap * id_len))()
        revoked = c_size_t(0)
        rc = _ffi.lib().aranya_quic_set_trust(
            self._live(), ca_ptr, ca_len, pin_ptr, count, ids, cap, byref(revoked)
        )
        self._check(rc, function)
        del ca_keep, pin_keep
        raw = bytes(ids)
        peers = [raw[i * id_len : (i + 1) * id_len] for i in range(min(int(revoked.value), cap))]
        if peers:
            gone = frozenset(peers)
            self._drop_taken(lambda m: m.peer_id in gone)
        return peers

    def set_identity(self, cert_pem: PemSource, key_pem: PemSource) -> None:
        """Replace this endpoint's certificate chain and private key for new
        handshakes, dialed and accepted (``aranya_quic_set_identity``), e.g.
        to renew a certificate without a restart.

        Existing connections keep the identity they were set up with. Peers
        learn the new peer id (:func:`peer_id_from_pem` of the new leaf) with
        their next connection; peers that pin must list it first. The
        stateless reset key stays the one of the start.

        Args:
            cert_pem: the certificate chain, leaf first (a :data:`PemSource`).
            key_pem: the leaf's private key, not encrypted.

        Raises:
            InvalidArgument: empty PEM, a PEM that does not parse, a key that
                does not match the certificate, or a certificate outside its
                validity period. Nothing changed.
            Closed.
        """
        function = "aranya_quic_set_identity"
        cert_ptr, cert_len, cert_keep = _pem_arg(cert_pem, "cert_pem")
        key_ptr, key_len, key_keep = _pem_arg(key_pem, "key_pem")
        rc = _ffi.lib().aranya_quic_set_identity(self._live(), cert_ptr, cert_len, key_ptr, key_len)
        self._check(rc, function)
        del cert_keep, key_keep

    def _team_args(self, function: str, peer_id: bytes, team_id: bytes) -> tuple[bytes, bytes, Any, Any]:
        """The checked ids of a team call and their ``uint8_t *``."""
        peer = _id_bytes(peer_id, "peer_id", function)
        team = _id_bytes(team_id, "team_id", function)
        return peer, team, _as_u8(peer, "peer_id")[0], _as_u8(team, "team_id")[0]

    def team_allow(self, peer_id: bytes, team_id: bytes) -> None:
        """Allow the peer whose certificate has SHA-256 ``peer_id`` to use
        team ``team_id`` (``aranya_quic_team_allow``), when
        :attr:`Config.team_authorization` is on: channel streams it opens on
        that team are accepted from now on, and its sync streams too.
        Allowing a pair already allowed does nothing.

        Args:
            peer_id: 32 bytes, not all zero (:func:`peer_id_from_pem`, or
                :attr:`Message.peer_id`).
            team_id: 32 bytes, not all zero.

        Raises:
            InvalidArgument: an id that is not 32 bytes or is all zero, or
                team authorization is off. Nothing changed.
            Closed.
        """
        function = "aranya_quic_team_allow"
        # The bytes objects own the memory the pointers point into.
        peer, team, peer_ptr, team_ptr = self._team_args(function, peer_id, team_id)
        self._check(_ffi.lib().aranya_quic_team_allow(self._live(), peer_ptr, team_ptr), function)
        del peer, team

    def team_revoke(self, peer_id: bytes, team_id: bytes) -> bool:
        """Stop allowing ``peer_id`` on ``team_id``
        (``aranya_quic_team_revoke``), for streams already open too.

        When it returns, the peer's open streams on the team are reset,
        nothing more of them is received, and their messages not yet taken
        are dropped (:attr:`Stats.messages_revoked`; so are those iteration
        or :meth:`receive_async` took ahead in a batch). If that was the
        peer's last team, the same happens to its sync streams (open ones
        reset, queued sync messages dropped, including those taken ahead,
        new ones refused). The peer's sends on the team then raise
        :class:`~aranya_quic.NotAuthorizedError`. Revoking a pair that is
        not allowed does nothing.

        The library logs the revocation (WARN) on the calling thread before
        it returns; the endpoint holds none of its locks meanwhile, so a
        ``log_callback`` may call the trust calls.

        Args: as for :meth:`team_allow`.

        Returns:
            ``True`` when the pair was allowed and was the peer's last team
            (so its sync streams and sync messages went too), as the
            library decided it; ``False`` when the peer is still allowed on
            another team, or the pair was not allowed.

        Raises: as :meth:`team_allow`.
        """
        function = "aranya_quic_team_revoke"
        peer, team, peer_ptr, team_ptr = self._team_args(function, peer_id, team_id)
        last = ctypes.c_uint32(0)
        # No binding lock is held across the call: the library logs the
        # revocation on this thread, and the log callback may call back in.
        rc = _ffi.lib().aranya_quic_team_revoke(self._live(), peer_ptr, team_ptr, byref(last))
        self._check(rc, function)
        if last.value:
            self._drop_taken(
                lambda m: m.peer_id == peer
                and (m.kind == Kind.SYNC or (m.kind == Kind.CHANNEL and m.team_id == team))
            )
            return True
        self._drop_taken(lambda m: m.peer_id == peer and m.kind == Kind.CHANNEL and m.team_id == team)
        return False
