"""Errors: the exception hierarchy, detail messages, argument and config
errors, closed endpoints, unreachable and untrusted peers."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import aranya_quic as aq
from aranya_quic import _ffi
from support import TEAM_A, config_for, recv

CODES = {
    _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK: aq.WouldBlock,
    _ffi.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL: aq.BufferTooSmall,
    _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT: aq.InvalidArgument,
    _ffi.ARANYA_QUIC_ERR_INVALID_HANDLE: aq.InvalidHandle,
    _ffi.ARANYA_QUIC_ERR_CLOSED: aq.Closed,
    _ffi.ARANYA_QUIC_ERR_TIMEOUT: aq.Timeout,
    _ffi.ARANYA_QUIC_ERR_TOO_LARGE: aq.TooLarge,
    _ffi.ARANYA_QUIC_ERR_CONNECTION: aq.ConnectionFailed,
    _ffi.ARANYA_QUIC_ERR_TLS: aq.TlsError,
    _ffi.ARANYA_QUIC_ERR_INTERNAL: aq.InternalError,
    _ffi.ARANYA_QUIC_ERR_BAD_ADDRESS: aq.BadAddress,
    _ffi.ARANYA_QUIC_ERR_IO: aq.IoError,
    _ffi.ARANYA_QUIC_ERR_UNCONFIRMED: aq.Unconfirmed,
    _ffi.ARANYA_QUIC_ERR_RESOLVE: aq.ResolveError,
}


def test_hierarchy_mirrors_codes() -> None:
    for code, cls in CODES.items():
        e = aq.error_from_code(code, "detail", "fn")
        assert type(e) is cls and isinstance(e, aq.AranyaQuicError)
        assert (e.code, e.detail, e.function) == (code, "detail", "fn")
        assert aq.strerror(code) in str(e) and "detail" in str(e)
    assert aq.error_from_code(-2, needed=1234).needed == 1234  # type: ignore[attr-defined]
    assert sorted(CODES) == list(range(-len(CODES), 0))  # every code, none skipped
    assert aq.Unconfirmed.CODE == -13
    assert aq.ResolveError.CODE == -14
    unknown = aq.error_from_code(-99)
    assert type(unknown) is aq.AranyaQuicError and unknown.code == -99
    assert issubclass(aq.InvalidArgument, ValueError) and issubclass(aq.BadAddress, ValueError)


def test_label_too_long(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    with pytest.raises(aq.InvalidArgument) as ei:
        alice.send(bob.local_addr, TEAM_A, "x" * (aq.LABEL_MAX + 1), b"m")
    assert ei.value.code == _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT
    assert "label" in ei.value.detail  # the library's detail, read right after the call
    assert ei.value.function == "aranya_quic_send"
    # Multi-byte characters count in bytes: 128 * 2 bytes > 255.
    with pytest.raises(aq.InvalidArgument):
        alice.send(bob.local_addr, TEAM_A, "é" * 128, b"m")


def test_label_not_utf8(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    with pytest.raises(aq.InvalidArgument, match="UTF-8"):
        alice.send(bob.local_addr, TEAM_A, b"\xff\xfe", b"m")


def test_team_id_length(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(aq.InvalidArgument, match="team_id"):
            alice.send(bob.local_addr, bad, "l", b"m")


@pytest.mark.parametrize(
    "addr", ["nonsense", "127.0.0.1", "127.0.0.1:0", "localhost:0", "1.2.3.4:99999", "", "a\0b"]
)
def test_bad_address(alice: aq.Endpoint, addr: str) -> None:
    with pytest.raises(aq.BadAddress) as ei:
        alice.send(addr, TEAM_A, "l", b"m")
    assert ei.value.code == _ffi.ARANYA_QUIC_ERR_BAD_ADDRESS and ei.value.detail
    with pytest.raises(aq.BadAddress):
        alice.send_sync(addr, 1, b"m")
    with pytest.raises(aq.BadAddress):
        alice.close_connection(addr)


def test_bad_bind_address(certs: Path) -> None:
    with pytest.raises(aq.BadAddress):
        aq.Endpoint(config_for(certs, "alice", bind_addr="not an address"))


def test_address_in_use(alice: aq.Endpoint, certs: Path) -> None:
    with pytest.raises(aq.IoError) as ei:
        aq.Endpoint(config_for(certs, "bob", bind_addr=alice.local_addr))
    assert ei.value.detail


def test_too_large(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    small = make_endpoint("alice", max_message_size=1024)
    small.send(bob.local_addr, TEAM_A, "l", bytes(1024))
    with pytest.raises(aq.TooLarge):
        small.send(bob.local_addr, TEAM_A, "l", bytes(1025))
    with pytest.raises(aq.TooLarge):
        small.send_sync(bob.local_addr, 1, bytes(1025))
    assert len(recv(bob).data) == 1024


@pytest.mark.parametrize(
    "field,value",
    [
        ("cert", b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"),
        ("key", b"not a pem at all"),
        ("ca", b""),
        ("cert", b""),
    ],
)
def test_invalid_pem(certs: Path, field: str, value: bytes) -> None:
    cfg = config_for(certs, "alice")
    setattr(cfg, field, value)
    with pytest.raises(aq.InvalidArgument) as ei:
        aq.Endpoint(cfg)
    assert ei.value.function == "aranya_quic_new" and ei.value.detail


@pytest.mark.parametrize(
    "fields",
    [
        {"max_message_size": 2048, "max_queue_bytes": 1024},  # queue below message size
        {"max_message_size": aq.MAX_MESSAGE_SIZE_LIMIT + 1},
        {"log_level": 99},
    ],
)
def test_invalid_config_fields(certs: Path, fields: dict[str, int]) -> None:
    with pytest.raises(aq.InvalidArgument):
        aq.Endpoint(config_for(certs, "alice", **fields))


def test_config_values_checked_before_truncation(certs: Path) -> None:
    # ctypes would silently wrap these into the uint32 fields.
    with pytest.raises(aq.InvalidArgument, match="out of range"):
        aq.Endpoint(config_for(certs, "alice", max_connections=-1))
    with pytest.raises(aq.InvalidArgument, match="out of range"):
        aq.Endpoint(config_for(certs, "alice", idle_timeout_ms=2**32))
    with pytest.raises(aq.InvalidArgument, match="pinned_peers"):
        aq.Endpoint(config_for(certs, "alice", pinned_peers=[b"short"]))


def test_closed_endpoint_use(certs: Path, bob: aq.Endpoint) -> None:
    ep = aq.Endpoint(config_for(certs, "alice"))
    ep.close()
    ep.close()  # idempotent
    assert ep.closed and ep.handle == 0
    calls: list[Callable[[], object]] = [
        lambda: ep.send(bob.local_addr, TEAM_A, "l", b"m"),
        lambda: ep.send_sync(bob.local_addr, 1, b"m"),
        lambda: ep.receive(timeout=0),
        lambda: ep.receive(),
        lambda: ep.close_connection(bob.local_addr),
        lambda: ep.local_addr,
        lambda: ep.stats(),
        lambda: ep.fileno(),
    ]
    for call in calls:
        with pytest.raises(aq.Closed) as ei:
            call()
        assert ei.value.code == _ffi.ARANYA_QUIC_ERR_CLOSED


def test_freed_handle_through_raw_api(certs: Path) -> None:
    """The library itself reports a freed handle (no Python-side guard)."""
    ep = aq.Endpoint(config_for(certs, "alice"))
    h = ep.handle
    ep.close()
    lib = aq.library()
    s = _ffi.aranya_quic_stats(struct_size=ctypes.sizeof(_ffi.aranya_quic_stats))
    rc = lib.aranya_quic_get_stats(h, ctypes.byref(s))
    assert rc in (_ffi.ARANYA_QUIC_ERR_INVALID_HANDLE, _ffi.ARANYA_QUIC_ERR_CLOSED)
    assert aq.error_from_code(rc, lib.aranya_quic_last_error().decode()).detail
    assert lib.aranya_quic_free(h) == _ffi.ARANYA_QUIC_OK  # freeing twice is harmless
    assert lib.aranya_quic_free(0) == _ffi.ARANYA_QUIC_OK
    assert lib.aranya_quic_free(123456789) == _ffi.ARANYA_QUIC_ERR_INVALID_HANDLE


def test_unreachable_peer(certs: Path, make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("alice", handshake_timeout_ms=500, send_timeout_ms=1000)
    # A port nobody listens on: the port of an endpoint that is gone.
    with aq.Endpoint(config_for(certs, "carol")) as gone:
        addr = gone.local_addr
    with pytest.raises((aq.ConnectionFailed, aq.Timeout)) as ei:
        ep.send(addr, TEAM_A, "l", b"m")
    assert ei.value.detail


def test_untrusted_peer_rejected(certs: Path, bob: aq.Endpoint) -> None:
    stranger = aq.Config(
        cert=certs / "stranger.crt",
        key=certs / "stranger.key",
        ca=certs / "ca.pem",
        handshake_timeout_ms=3000,
        drain_timeout_ms=500,
    )
    with aq.Endpoint(stranger) as ep:
        with pytest.raises(aq.TlsError) as ei:
            ep.send(bob.local_addr, TEAM_A, "l", b"m")
        assert ei.value.code == _ffi.ARANYA_QUIC_ERR_TLS
    assert bob.receive(timeout=0) is None
    assert bob.stats().handshake_failures >= 1


def test_library_not_found_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "libaranya_quic.so"
    code = "import aranya_quic as aq\ntry:\n    aq.library()\nexcept aq.LibraryNotFoundError as e:\n    print(e)\n"
    env = dict(os.environ, ARANYA_QUIC_LIB=str(missing))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(aq.__file__).parents[1]), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    msg = out.stdout
    assert str(missing) in msg
    assert str(_ffi.default_library_path()) in msg
    assert "make lib" in msg and "ARANYA_QUIC_LIB" in msg


def _fake_rc(monkeypatch: pytest.MonkeyPatch, name: str, rc: int, call_real: bool) -> list[tuple]:
    """Make the library function ``name`` return ``rc`` (after running the
    real one if ``call_real``); returns the list of calls' arguments."""
    lib = aq.library()
    real = getattr(lib, name)
    calls: list[tuple] = []

    def fake(*args: object) -> int:
        calls.append(args)
        if call_real:
            real(*args)
        return rc

    monkeypatch.setattr(lib, name, fake)
    return calls


def test_close_connection_raises_unconfirmed(
    alice: aq.Endpoint, bob: aq.Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_rc(monkeypatch, "aranya_quic_close", _ffi.ARANYA_QUIC_ERR_UNCONFIRMED, True)
    with pytest.raises(aq.Unconfirmed) as ei:
        alice.close_connection(bob.local_addr)
    assert ei.value.code == _ffi.ARANYA_QUIC_ERR_UNCONFIRMED
    assert ei.value.function == "aranya_quic_close" and len(calls) == 1
    assert not alice.closed  # only the connection was closed


def test_close_raises_unconfirmed_and_still_closes(
    certs: Path, bob: aq.Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = aq.Endpoint(config_for(certs, "alice"))
    calls = _fake_rc(monkeypatch, "aranya_quic_free", _ffi.ARANYA_QUIC_ERR_UNCONFIRMED, True)
    with pytest.raises(aq.Unconfirmed) as ei:
        ep.close()
    assert ei.value.function == "aranya_quic_free"
    assert ep.closed and ep.handle == 0  # free invalidated the handle anyway
    ep.close()  # idempotent: no second free
    assert len(calls) == 1
    with pytest.raises(aq.Closed):
        ep.send(bob.local_addr, TEAM_A, "l", b"m")


def test_exit_raises_unconfirmed_when_block_succeeded(
    certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_rc(monkeypatch, "aranya_quic_free", _ffi.ARANYA_QUIC_ERR_UNCONFIRMED, True)
    with pytest.raises(aq.Unconfirmed):
        with aq.Endpoint(config_for(certs, "alice")) as ep:
            pass
    assert ep.closed


def test_exit_does_not_mask_the_blocks_exception(
    certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_rc(monkeypatch, "aranya_quic_free", _ffi.ARANYA_QUIC_ERR_UNCONFIRMED, True)
    with pytest.raises(KeyError) as ei:
        with aq.Endpoint(config_for(certs, "alice")) as ep:
            raise KeyError("the block's own error")
    assert ep.closed
    assert ei.value.args == ("the block's own error",)
    notes = getattr(ei.value, "__notes__", [])
    assert any("Unconfirmed" in n for n in notes), notes
    # Exceptions that are not Exceptions (e.g. KeyboardInterrupt) too.
    with pytest.raises(KeyboardInterrupt):
        with aq.Endpoint(config_for(certs, "alice")):
            raise KeyboardInterrupt


def test_unconfirmed_when_peer_does_not_read(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    """End to end: bob's receive queue is full and he never reads, so
    alice's drain cannot finish within drain_timeout_ms."""
    bob = make_endpoint("bob", max_queue_messages=1, max_message_size=1024, max_queue_bytes=1024)
    alice = make_endpoint("alice", drain_timeout_ms=300)
    for _ in range(5):
        alice.send(bob.local_addr, TEAM_A, "l", bytes(1000))
    assert alice.stats().messages_unconfirmed == 0
    with pytest.raises(aq.Unconfirmed) as ei:
        alice.close_connection(bob.local_addr)
    assert ei.value.detail
    s = alice.stats()
    assert s.messages_unconfirmed > 0 and s.open_connections == 0  # closed all the same
