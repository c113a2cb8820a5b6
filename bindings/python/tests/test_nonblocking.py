"""The non-blocking calls of C API 0.2 without asyncio: try_send and its
variants, the send and event descriptors, close_nowait, shutdown, events,
host names, the new config and stats fields, and log forwarding."""

from __future__ import annotations

import ctypes
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import aranya_quic as aq
from aranya_quic import _ffi
from support import TEAM_A, TEAM_B, WAIT, recv

SMALL_QUEUE = 1000  # max_outbound_bytes_per_peer of the tests that fill it
PAYLOAD = bytes(800)  # one fits an empty queue, two do not


@pytest.fixture
def blackhole() -> Iterator[str]:
    """The address of a UDP socket that is bound but never read: a peer
    that never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield "%s:%d" % s.getsockname()
    finally:
        s.close()


def readable(fd: int, timeout: float = WAIT) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def wait_event(ep: aq.Endpoint, match: Callable[[aq.Event], bool], seen: list[aq.Event] | None = None) -> aq.Event:
    """The first event ``match`` accepts, waiting on event_fileno (bounded
    only against hangs); every event taken is appended to ``seen``."""
    end = time.monotonic() + WAIT
    while True:
        while (e := ep.next_event()) is not None:
            if seen is not None:
                seen.append(e)
            if match(e):
                return e
        left = end - time.monotonic()
        assert left > 0, f"no matching event within {WAIT} s; saw {seen}"
        readable(ep.event_fileno(), left)


def test_try_send_variants_return_increasing_ids(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    a = alice.try_send(bob.local_addr, TEAM_A, "nb", b"one")
    b = alice.try_send_sync(bob.local_addr, 7, b"sync")
    batch = alice.try_send_batch(bob.local_addr, TEAM_A, "nb", [b"two", bytearray(b"three")])
    sync_batch = alice.try_send_sync_batch(bob.local_addr, 7, [b"s2", b"s3"])
    assert isinstance(a, int) and 0 < a < b < batch[0]
    assert isinstance(batch, range) and len(batch) == 2 and batch[1] == batch[0] + 1
    assert len(sync_batch) == 2 and sync_batch[0] > batch[-1]
    assert alice.try_send_batch(bob.local_addr, TEAM_A, "nb", []) == range(0)
    got = [recv(bob) for _ in range(6)]
    chan = [m.data for m in got if m.kind == aq.Kind.CHANNEL]
    sync = [m.data for m in got if m.kind == aq.Kind.SYNC]
    assert chan == [b"one", b"two", b"three"] and sync == [b"sync", b"s2", b"s3"]
    assert all(m.addr == alice.local_addr for m in got)
    # Blocking and non-blocking sends share the channel's order.
    alice.send(bob.local_addr, TEAM_B, "mix", b"1")
    alice.try_send(bob.local_addr, TEAM_B, "mix", b"2")
    alice.send(bob.local_addr, TEAM_B, "mix", b"3")
    assert [recv(bob).data for _ in range(3)] == [b"1", b"2", b"3"]


def test_try_send_argument_errors(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    alice = make_endpoint("alice", max_message_size=1024)
    with pytest.raises(aq.BadAddress) as ei:
        alice.try_send("nonsense", TEAM_A, "l", b"m")
    assert ei.value.function == "aranya_quic_send_nowait"
    with pytest.raises(aq.InvalidArgument):
        alice.try_send(bob.local_addr, bytes(3), "l", b"m")
    with pytest.raises(aq.BadAddress) as bi:
        alice.try_send_batch("nonsense", TEAM_A, "l", [b"m"])
    assert bi.value.sent == 0 and bi.value.ids == range(0)
    with pytest.raises(aq.TooLarge):
        alice.try_send_sync(bob.local_addr, 1, bytes(1025))
    with pytest.raises(aq.BadAddress):
        alice.close_nowait("nonsense")


def test_would_block_until_send_fd_readable(
    make_endpoint: Callable[..., aq.Endpoint], blackhole: str
) -> None:
    ep = make_endpoint("alice", max_outbound_bytes_per_peer=SMALL_QUEUE, connect_timeout_ms=700)
    send_fd = ep.send_fileno()
    assert ep.send_fileno() == send_fd
    assert readable(send_fd, 0)  # nothing refused yet
    first = ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)  # an empty queue takes one
    with pytest.raises(aq.WouldBlock) as ei:
        ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
    assert ei.value.code == _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK and ei.value.detail
    s = ep.stats()
    assert (s.outbound_messages, s.outbound_bytes) == (1, len(PAYLOAD))  # the refused one is not queued
    assert not readable(send_fd, 0)
    # The dial fails, the queue drains, the descriptor turns readable.
    assert readable(send_fd), "send fd never became readable"
    second = ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
    assert second > first
    failed = wait_event(ep, lambda e: e.type == aq.EventType.SEND_FAILED and e.id == first)
    # The header names ConnectionFailed for a dial that times out; this
    # build of the library reports Timeout. Either is a failed dial.
    assert isinstance(failed.error, (aq.ConnectionFailed, aq.Timeout))
    assert failed.error.event is failed and failed.error.function == "aranya_quic_send_nowait"
    assert failed.addr == blackhole and failed.reason
    assert failed.channel is not None
    assert (failed.channel.kind, failed.channel.team_id, failed.channel.label) == (aq.Kind.CHANNEL, TEAM_A, "q")
    assert failed.peer_id is None and not failed.ok
    wait_event(ep, lambda e: e.type == aq.EventType.SEND_FAILED and e.id == second)
    assert ep.stats().sends_failed == 2


def test_try_send_batch_stops_at_the_refused_message(
    make_endpoint: Callable[..., aq.Endpoint], blackhole: str
) -> None:
    ep = make_endpoint("alice", max_outbound_bytes_per_peer=SMALL_QUEUE, connect_timeout_ms=700)
    with pytest.raises(aq.WouldBlock) as ei:
        ep.try_send_batch(blackhole, TEAM_A, "q", [PAYLOAD, PAYLOAD, PAYLOAD])
    assert ei.value.sent == 1 and len(ei.value.ids) == 1
    with pytest.raises(aq.WouldBlock) as si:
        ep.try_send_sync_batch(blackhole, 3, [PAYLOAD])
    assert si.value.sent == 0 and si.value.ids == range(0)
    (accepted,) = ei.value.ids
    wait_event(ep, lambda e: e.type == aq.EventType.SEND_FAILED and e.id == accepted)


def test_connection_and_close_events(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    alice.send(bob.local_addr, TEAM_A, "ev", b"hello")
    recv(bob)
    up = wait_event(alice, lambda e: e.type == aq.EventType.PEER_CONNECTED)
    assert up.addr == bob.local_addr and up.ok and up.error is None
    assert up.peer_id is not None and len(up.peer_id) == aq.PEER_ID_LEN
    bob_up = wait_event(bob, lambda e: e.type == aq.EventType.PEER_CONNECTED)
    assert bob_up.addr == alice.local_addr
    close_id = alice.close_nowait(bob.local_addr)
    seen: list[aq.Event] = []
    done = wait_event(alice, lambda e: e.type == aq.EventType.CLOSE_FINISHED, seen)
    assert done.id == close_id and done.ok and done.unconfirmed == 0 and done.addr == bob.local_addr
    down = [e for e in seen if e.type == aq.EventType.PEER_DISCONNECTED]
    if not down:
        down = [wait_event(alice, lambda e: e.type == aq.EventType.PEER_DISCONNECTED)]
    assert down[0].addr == bob.local_addr and down[0].ok and down[0].peer_id == up.peer_id
    bob_down = wait_event(bob, lambda e: e.type == aq.EventType.PEER_DISCONNECTED)
    assert bob_down.addr == alice.local_addr
    # No connection left: the close still reports its outcome.
    again = alice.close_nowait(bob.local_addr)
    assert again > close_id
    assert wait_event(alice, lambda e: e.type == aq.EventType.CLOSE_FINISHED).id == again
    assert alice.next_event() is None


def test_shutdown_then_close(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    ep = make_endpoint("alice")
    ep.send(bob.local_addr, TEAM_A, "sd", b"before")
    assert recv(bob).data == b"before"
    sid = ep.shutdown()
    assert ep.shutdown() == sid  # the first call's id
    with pytest.raises(aq.Closed):
        ep.try_send(bob.local_addr, TEAM_A, "sd", b"after")
    with pytest.raises(aq.Closed):
        ep.send(bob.local_addr, TEAM_A, "sd", b"after")
    done = wait_event(ep, lambda e: e.type == aq.EventType.SHUTDOWN_FINISHED)
    assert done.id == sid and done.ok and done.unconfirmed == 0
    ep.close()  # returns at once after the shutdown finished
    with pytest.raises(aq.Closed):  # SHUTDOWN_FINISHED was the last event
        ep.next_event()
    with pytest.raises(aq.Closed):
        ep.shutdown()
    with pytest.raises(aq.Closed):
        ep.close_nowait(bob.local_addr)


def test_handshake_rejected_event(certs: Path, bob: aq.Endpoint) -> None:
    stranger = aq.Endpoint(
        aq.Config(cert=certs / "stranger.crt", key=certs / "stranger.key", ca=certs / "ca.pem",
                  handshake_timeout_ms=3000, send_timeout_ms=5000, connect_timeout_ms=3000)
    )
    try:
        with pytest.raises((aq.TlsError, aq.ConnectionFailed, aq.Timeout)):
            stranger.send(bob.local_addr, TEAM_A, "l", b"m")
        rejected = wait_event(bob, lambda e: e.type == aq.EventType.HANDSHAKE_REJECTED)
        assert isinstance(rejected.error, aq.TlsError) and rejected.reason and rejected.addr
    finally:
        stranger.close()


def test_host_name_addresses(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    port = int(bob.local_addr.rsplit(":", 1)[1])
    for addr in (f"localhost:{port}", ("localhost", port)):
        alice.try_send(addr, TEAM_A, "host", b"by name")
        m = recv(bob)
        assert m.data == b"by name"
        assert m.addr == alice.local_addr  # an IP address, never the name
    alice.send(f"localhost:{port}", TEAM_A, "host", b"blocking")
    assert recv(bob).data == b"blocking"
    up = wait_event(alice, lambda e: e.type == aq.EventType.PEER_CONNECTED)
    assert up.addr == bob.local_addr  # the connection is keyed by the address
    cid = alice.close_nowait(f"localhost:{port}")
    done = wait_event(alice, lambda e: e.type == aq.EventType.CLOSE_FINISHED)
    assert done.id == cid and done.addr == f"localhost:{port}"  # as given


def test_unresolvable_host(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("alice", resolve_timeout_ms=2000)
    with pytest.raises(aq.ResolveError) as ei:
        ep.send("no-such-host.invalid:4433", TEAM_A, "l", b"m")
    assert ei.value.code == _ffi.ARANYA_QUIC_ERR_RESOLVE and "no-such-host.invalid" in ei.value.detail
    msg_id = ep.try_send("no-such-host.invalid:4433", TEAM_A, "l", b"m")
    failed = wait_event(ep, lambda e: e.type == aq.EventType.SEND_FAILED)
    assert failed.id == msg_id and failed.addr == "no-such-host.invalid:4433"
    assert isinstance(failed.error, aq.ResolveError)
    assert failed.channel is not None and failed.channel.addr == ""  # never resolved


def test_next_event_raw_struct_size(alice: aq.Endpoint) -> None:
    lib = _ffi.lib()
    ev = _ffi.aranya_quic_event()
    ev.struct_size = 8
    assert lib.aranya_quic_next_event(alice.handle, ctypes.byref(ev)) == _ffi.ARANYA_QUIC_ERR_INVALID_ARGUMENT
    ev.struct_size = ctypes.sizeof(ev)
    assert lib.aranya_quic_next_event(alice.handle, ctypes.byref(ev)) == _ffi.ARANYA_QUIC_ERR_WOULD_BLOCK


def test_new_config_fields_are_passed(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    ep = make_endpoint(
        "alice", max_outbound_bytes_per_peer=1 << 20, max_outbound_bytes=1 << 22, max_events=16, resolve_timeout_ms=1500
    )
    ep.try_send(bob.local_addr, TEAM_A, "cfg", b"x")
    assert recv(bob).data == b"x"
    with pytest.raises(aq.InvalidArgument):
        make_endpoint("carol", max_events=-1)
    with pytest.raises(aq.InvalidArgument):
        make_endpoint("carol", max_outbound_bytes=2**64)
    with pytest.raises(TypeError):
        make_endpoint("carol", log_callback="not callable")


def test_events_overflow_is_counted(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint, blackhole: str) -> None:
    """With max_events 2, the library keeps two events and counts the rest;
    the outcomes of close_nowait are kept beyond the limit."""
    ep = make_endpoint("alice", max_events=2, connect_timeout_ms=200, send_timeout_ms=5000)
    ids = [ep.try_send(blackhole, TEAM_A, "lost", b"m") for _ in range(5)]
    end = time.monotonic() + WAIT
    while ep.stats().events_dropped < 3:
        assert time.monotonic() < end, "events never dropped"
        time.sleep(0.01)
    first = ep.next_event()
    second = ep.next_event()
    assert first is not None and second is not None
    assert {first.id, second.id} <= set(ids)
    assert ep.next_event() is None
    closes = [ep.close_nowait(bob.local_addr) for _ in range(3)]
    got = [wait_event(ep, lambda e: True) for _ in closes]
    assert [e.id for e in got] == closes, "close outcomes are kept even beyond max_events"
    assert got[0].dropped_before == 3
    assert ep.stats().events_dropped == 3


def test_forward_to_logging_maps_levels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=aq.LOGGER_NAME)
    for level in aq.LogLevel:
        if level != aq.LogLevel.OFF:
            aq.forward_to_logging(level, f"record {level.name}")
    aq.forward_to_logging(99, "unknown level")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        ("aranya_quic", logging.ERROR, "record ERROR"),
        ("aranya_quic", logging.WARNING, "record WARN"),
        ("aranya_quic", logging.INFO, "record INFO"),
        ("aranya_quic", logging.DEBUG, "record DEBUG"),
        ("aranya_quic", logging.INFO, "unknown level"),
    ]


def test_log_records_reach_logging(
    make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=aq.LOGGER_NAME)
    ep = make_endpoint("alice", log_callback=aq.forward_to_logging)  # log_level OFF: INFO with a callback
    ep.send(bob.local_addr, TEAM_A, "log", b"x")
    recv(bob)
    end = time.monotonic() + WAIT
    while not any(r.name == "aranya_quic" and r.levelno == logging.INFO for r in caplog.records):
        assert time.monotonic() < end, "no INFO record from the library"
        time.sleep(0.01)
    assert any(bob.local_addr in r.getMessage() for r in caplog.records if r.name == "aranya_quic")


def test_log_callback_errors_never_reach_the_library(
    make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint, capfd: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[aq.LogLevel, str]] = []

    def bad(level: aq.LogLevel, text: str) -> None:
        calls.append((level, text))
        raise RuntimeError("log callback bug")

    ep = make_endpoint("alice", log_callback=bad, log_level=aq.LogLevel.DEBUG)
    ep.send(bob.local_addr, TEAM_A, "log", b"x")
    assert recv(bob).data == b"x"
    ep.close_connection(bob.local_addr)
    ep.send(bob.local_addr, TEAM_A, "log", b"y")  # the endpoint works on
    assert recv(bob).data == b"y"
    ep.close()
    assert len(calls) >= 2 and all(isinstance(lv, aq.LogLevel) and isinstance(t, str) for lv, t in calls)
    err = capfd.readouterr().err
    assert err.count("RuntimeError: log callback bug") == 1  # reported once


def test_close_wait_false(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    ep = make_endpoint("alice", log_callback=lambda level, text: None)
    ep.send(bob.local_addr, TEAM_A, "nw", b"x")
    ep.close(wait=False)
    assert ep.closed
    with pytest.raises(aq.Closed):
        ep.try_send(bob.local_addr, TEAM_A, "nw", b"y")
    assert recv(bob).data == b"x"


def test_stats_has_the_new_fields(alice: aq.Endpoint) -> None:
    s = alice.stats()
    assert (s.outbound_messages, s.outbound_bytes, s.sends_failed, s.events_dropped) == (0, 0, 0, 0)
