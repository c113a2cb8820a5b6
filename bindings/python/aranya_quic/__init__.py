"""aranya_quic: Python bindings (ctypes) of libaranya_quic, Aranya QUIC Channels.

Quick start::

    import aranya_quic as aq

    with aq.Endpoint(cert="alice.crt", key="alice.key", ca="ca.pem") as alice:
        alice.send("127.0.0.1:4434", team_id, "chat", b"hello")
        msg = alice.receive(timeout=5)      # Message or None

The shared library is found through ``$ARANYA_QUIC_LIB`` (path to the
``.so``) or ``<repo>/build/libaranya_quic.so`` (``make lib``); it is loaded
on first use. Never use the library in a process forked after it loaded:
multiprocessing must use the ``spawn`` start method.

The raw C API (structs, constants, every function with its ``argtypes``) is
in :mod:`aranya_quic._ffi`; :func:`library` returns the loaded ``CDLL``.
"""

from __future__ import annotations

from . import _ffi
from ._ffi import (
    ARANYA_QUIC_VERSION_STRING as HEADER_VERSION,
    ENV_VAR,
    LibraryNotFoundError,
    LibraryVersionError,
    library_path,
)
from ._ffi import lib as library
from .endpoint import (
    LOGGER_NAME,
    RECEIVE_BATCH_DEFAULT,
    RECEIVE_BUFFER_INITIAL,
    Address,
    Channel,
    Config,
    CongestionControl,
    ConnectionInfo,
    Endpoint,
    Event,
    EventStream,
    EventType,
    Kind,
    LogLevel,
    Message,
    PemSource,
    Stats,
    forward_to_logging,
    peer_id_from_pem,
)
from .errors import (
    AranyaQuicError,
    BadAddress,
    BufferTooSmall,
    Closed,
    ConnectionFailed,
    InternalError,
    InvalidArgument,
    InvalidHandle,
    IoError,
    NotAuthorizedError,
    ResolveError,
    TlsError,
    TooLarge,
    Timeout,
    Unconfirmed,
    WouldBlock,
    error_from_code,
)

__version__ = "0.1.0"

#: Length of a team id in bytes.
TEAM_ID_LEN = _ffi.ARANYA_QUIC_TEAM_ID_LEN
#: Longest label in bytes of UTF-8.
LABEL_MAX = _ffi.ARANYA_QUIC_LABEL_MAX
#: Length of a peer id (SHA-256 of the peer's DER leaf certificate).
PEER_ID_LEN = _ffi.ARANYA_QUIC_PEER_ID_LEN
#: Longest peer address argument in bytes (with room for a NUL): a host name
#: of up to 253 bytes or an IP literal, with brackets and port.
PEER_ADDR_MAX = _ffi.ARANYA_QUIC_PEER_ADDR_MAX
#: For send_timeout_ms / keep_alive_ms: no timeout / no keep-alives.
DISABLED = _ffi.ARANYA_QUIC_DISABLED
#: Length of a pinned peer fingerprint (the same value as a peer id).
FINGERPRINT_LEN = _ffi.ARANYA_QUIC_FINGERPRINT_LEN
#: Largest accepted max_message_size.
MAX_MESSAGE_SIZE_LIMIT = _ffi.ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT


def version() -> str:
    """The loaded library's version (``aranya_quic_version()``), e.g. ``"0.1.0"``."""
    return (library().aranya_quic_version() or b"").decode("utf-8", "replace")


def strerror(code: int) -> str:
    """The library's short description of a return code (``aranya_quic_strerror``)."""
    return (library().aranya_quic_strerror(code) or b"").decode("utf-8", "replace")


__all__ = [
    "Address",
    "AranyaQuicError",
    "Channel",
    "BadAddress",
    "BufferTooSmall",
    "Closed",
    "Config",
    "CongestionControl",
    "ConnectionFailed",
    "ConnectionInfo",
    "DISABLED",
    "ENV_VAR",
    "FINGERPRINT_LEN",
    "Endpoint",
    "Event",
    "EventStream",
    "EventType",
    "HEADER_VERSION",
    "InternalError",
    "InvalidArgument",
    "InvalidHandle",
    "IoError",
    "Kind",
    "LABEL_MAX",
    "LOGGER_NAME",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "LogLevel",
    "MAX_MESSAGE_SIZE_LIMIT",
    "Message",
    "NotAuthorizedError",
    "PEER_ADDR_MAX",
    "PEER_ID_LEN",
    "PemSource",
    "ResolveError",
    "RECEIVE_BATCH_DEFAULT",
    "RECEIVE_BUFFER_INITIAL",
    "Stats",
    "TEAM_ID_LEN",
    "Timeout",
    "TlsError",
    "TooLarge",
    "Unconfirmed",
    "WouldBlock",
    "error_from_code",
    "forward_to_logging",
    "library",
    "library_path",
    "peer_id_from_pem",
    "strerror",
    "version",
]
