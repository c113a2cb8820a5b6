"""Exceptions mirroring the ``ARANYA_QUIC_ERR_*`` return codes.

Every failing library call raises a subclass of :class:`AranyaQuicError`
carrying the numeric ``code`` and the library's ``detail`` message (from
``aranya_quic_last_error()``, read right after the failing call on the same
thread). Unknown negative codes raise :class:`AranyaQuicError` itself.

A failed batch send (:meth:`Endpoint.send_batch`,
:meth:`Endpoint.send_sync_batch` and their ``try_`` variants) raises the
error of the message that failed, with ``sent`` set to the number of
messages accepted before it (and, for the ``try_`` variants, ``ids`` their
message ids). An error that an event reported (for example the outcome of
:meth:`Endpoint.close_async`) carries that event in ``event``.

:class:`InvalidArgument` and :class:`BadAddress` also derive from
:class:`ValueError`, so generic argument handlers catch them. (The OSError
family, e.g. ``TimeoutError``, is deliberately not used as a base: its
constructor reinterprets positional arguments as errno/strerror/filename.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import _ffi

if TYPE_CHECKING:  # pragma: no cover
    from .endpoint import Event

__all__ = [
    "AranyaQuicError",
    "WouldBlock",
    "BufferTooSmall",
    "InvalidArgument",
    "InvalidHandle",
    "Closed",
    "Timeout",
    "TooLarge",
    "ConnectionFailed",
    "TlsError",
    "InternalError",
    "BadAddress",
    "IoError",
    "Unconfirmed",
    "ResolveError",
    "NotAuthorizedError",
    "error_from_code",
    "check",
]


class AranyaQuicError(Exception):
    """Base class of every error returned by libaranya_quic.

    Attributes:
        code: the negative ``ARANYA_QUIC_ERR_*`` code.
        detail: the library's detail message for this failure (may be "").
        function: the C function that failed, if known.
        sent: for a batch send, how many messages from the start of the
            batch were accepted (sent, as by a successful ``send``) before
            the one that failed; the failed one and the rest were not.
            ``None`` for errors of other calls.
        ids: for a non-blocking batch send (``try_send_batch``,
            ``send_batch_async`` and their sync variants): the message ids
            of those ``sent`` messages (a ``range`` for the ``try_``
            methods, a ``list`` for the async ones; empty when none was
            accepted). ``None`` otherwise.
        event: for an error an event reported (``close_async``,
            ``shutdown_async``, :attr:`Event.error`): that
            :class:`~aranya_quic.Event`. ``None`` otherwise.
    """

    #: The code this class stands for (``None`` on the base class).
    CODE: int | None = None
    #: See the class docstring; set on the instance by batch sends.
    sent: int | None = None
    #: See the class docstring; set on the instance by non-blocking batch sends.
    ids: Sequence[int] | None = None
    #: See the class docstring; set on errors built from an event.
    event: Event | None = None

    def __init__(self, code: int, detail: str = "", function: str | None = None) -> None:
        self.code = code
        self.detail = detail
        self.function = function
        super().__init__(code, detail)

    @property
    def description(self) -> str:
        """The library's short description of ``code`` (``aranya_quic_strerror``)."""
        try:
            raw = _ffi.lib().aranya_quic_strerror(self.code)
        except Exception:  # pragma: no cover - library unavailable
            return f"error {self.code}"
        return (raw or b"").decode("utf-8", "replace")

    def __str__(self) -> str:
        # The library's details usually start with the function's name already.
        head = ""
        if self.function and not self.detail.startswith(self.function):
            head = f"{self.function}: "
        desc = self.description
        tail = "" if self.sent is None else f" ({self.sent} message(s) of the batch sent before it)"
        if self.detail:
            return f"{head}{desc} ({self.code}): {self.detail}{tail}"
        return f"{head}{desc} ({self.code}){tail}"


class WouldBlock(AranyaQuicError):
    """``ARANYA_QUIC_ERR_WOULD_BLOCK``: the call cannot go on without waiting.

    Raised by the non-blocking sends (:meth:`Endpoint.try_send` and the
    other ``try_`` methods) when the peer's outbound queue holds
    ``max_outbound_bytes_per_peer`` (or all queues ``max_outbound_bytes``):
    nothing was accepted; wait until :meth:`Endpoint.send_fileno` is
    readable and try again (:meth:`Endpoint.send_async` does that for you).
    An empty receive queue is not an error: :meth:`Endpoint.receive` returns
    ``None`` for it.
    """

    CODE = _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK


class BufferTooSmall(AranyaQuicError):
    """``ARANYA_QUIC_ERR_BUFFER_TOO_SMALL``: an output buffer was too small.

    Attributes:
        needed: the size needed, as reported by the library (``*out_len``).
    """

    CODE = _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL

    def __init__(
        self, code: int, detail: str = "", function: str | None = None, needed: int = 0
    ) -> None:
        super().__init__(code, detail, function)
        self.needed = needed


class InvalidArgument(AranyaQuicError, ValueError):
    """``ARANYA_QUIC_ERR_INVALID_ARGUMENT``: a parameter or config field is invalid
    (label too long or not UTF-8, PEM that does not parse, field out of range...)."""

    CODE = _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT


class InvalidHandle(AranyaQuicError):
    """``ARANYA_QUIC_ERR_INVALID_HANDLE``: the handle is 0, unknown, or freed."""

    CODE = _ffi.ARANYA_QUIC_ERR_INVALID_HANDLE


class Closed(AranyaQuicError):
    """``ARANYA_QUIC_ERR_CLOSED``: the endpoint is closed or being closed.

    Also raised, without calling the library, when a closed
    :class:`~aranya_quic.Endpoint` is used.
    """

    CODE = _ffi.ARANYA_QUIC_ERR_CLOSED


class Timeout(AranyaQuicError):
    """``ARANYA_QUIC_ERR_TIMEOUT``: a time limit passed (for example the send
    timeout: dial, handshake, peer confirmation or backpressure)."""

    CODE = _ffi.ARANYA_QUIC_ERR_TIMEOUT


class TooLarge(AranyaQuicError):
    """``ARANYA_QUIC_ERR_TOO_LARGE``: the message is over ``max_message_size``."""

    CODE = _ffi.ARANYA_QUIC_ERR_TOO_LARGE


class ConnectionFailed(AranyaQuicError):
    """``ARANYA_QUIC_ERR_CONNECTION``: the peer could not be reached or the
    connection died while sending. The next send dials again."""

    CODE = _ffi.ARANYA_QUIC_ERR_CONNECTION


class TlsError(AranyaQuicError):
    """``ARANYA_QUIC_ERR_TLS``: either side rejected the other's certificate."""

    CODE = _ffi.ARANYA_QUIC_ERR_TLS


class InternalError(AranyaQuicError):
    """``ARANYA_QUIC_ERR_INTERNAL``: the library caught a bug of its own."""

    CODE = _ffi.ARANYA_QUIC_ERR_INTERNAL


class BadAddress(AranyaQuicError, ValueError):
    """``ARANYA_QUIC_ERR_BAD_ADDRESS``: an address is not "ip:port",
    "[ipv6]:port" or (for a peer) "host:port", has port 0 for a peer, is not
    unicast, or is this endpoint's own."""

    CODE = _ffi.ARANYA_QUIC_ERR_BAD_ADDRESS


class IoError(AranyaQuicError):
    """``ARANYA_QUIC_ERR_IO``: an OS call failed (e.g. the address is in use)."""

    CODE = _ffi.ARANYA_QUIC_ERR_IO


class Unconfirmed(AranyaQuicError):
    """``ARANYA_QUIC_ERR_UNCONFIRMED``: messages that a send accepted were not
    confirmed by the peer before the library gave up on them (a close whose
    drain did not finish within ``drain_timeout_ms``, or a connection that
    died while draining). They may or may not have been delivered.

    Raised by :meth:`Endpoint.close_connection` and :meth:`Endpoint.close`;
    the close still happened (after :meth:`Endpoint.close` the endpoint is
    closed). ``detail`` says how many messages;
    :attr:`Stats.messages_unconfirmed` counts them too.
    """

    CODE = _ffi.ARANYA_QUIC_ERR_UNCONFIRMED


class ResolveError(AranyaQuicError):
    """``ARANYA_QUIC_ERR_RESOLVE``: a peer's host name (``"host:port"``)
    could not be resolved to an address within ``resolve_timeout_ms`` (no
    such name, no address of a family the endpoint's socket can reach, or no
    answer). ``detail`` names the host. Raised by blocking sends; a
    non-blocking send reports it in a :attr:`EventType.SEND_FAILED` event."""

    CODE = _ffi.ARANYA_QUIC_ERR_RESOLVE


class NotAuthorizedError(AranyaQuicError):
    """``ARANYA_QUIC_ERR_NOT_AUTHORIZED``: the peer runs per-team
    authorization (:attr:`Config.team_authorization`) and refused the
    channel: it does not allow this endpoint's peer id on the channel's team
    (for a sync message: on any team). The refused message was not
    delivered. Raised by the sends, also once a peer revoked a team whose
    stream was open (:meth:`Endpoint.team_revoke` on its side; a few sends
    may still be accepted before its refusal arrives). A non-blocking send
    reports it in a :attr:`EventType.SEND_FAILED` event."""

    CODE = _ffi.ARANYA_QUIC_ERR_NOT_AUTHORIZED


_BY_CODE: dict[int, type[AranyaQuicError]] = {
    cls.CODE: cls
    for cls in (
        WouldBlock,
        BufferTooSmall,
        InvalidArgument,
        InvalidHandle,
        Closed,
        Timeout,
        TooLarge,
        ConnectionFailed,
        TlsError,
        InternalError,
        BadAddress,
        IoError,
        Unconfirmed,
        ResolveError,
        NotAuthorizedError,
    )
    if cls.CODE is not None
}


def error_from_code(
    code: int, detail: str = "", function: str | None = None, needed: int = 0
) -> AranyaQuicError:
    """The exception for ``code`` (unknown codes give :class:`AranyaQuicError`)."""
    cls = _BY_CODE.get(code, AranyaQuicError)
    if cls is BufferTooSmall:
        return BufferTooSmall(code, detail, function, needed=needed)
    return cls(code, detail, function)


def last_error() -> str:
    """The calling thread's detail message (``aranya_quic_last_error()``)."""
    raw = _ffi.lib().aranya_quic_last_error()
    return (raw or b"").decode("utf-8", "replace")


def check(rc: int, function: str, needed: int = 0) -> None:
    """Raise the exception for ``rc`` unless it is ``ARANYA_QUIC_OK``.

    Must be called right after the C call, on the same thread, so that the
    detail message read from ``aranya_quic_last_error()`` is this call's.
    """
    if rc == _ffi.ARANYA_QUIC_OK:
        return
    raise error_from_code(rc, last_error(), function, needed=needed)
