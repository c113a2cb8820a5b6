"""Two endpoints exchanging channel and sync messages, buffer growth,
receive semantics, close_connection, local_addr and stats."""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aranya_quic as aq
from support import TEAM_A, TEAM_B, WAIT, recv


def leaf_fingerprint(cert_path: Path) -> bytes:
    """SHA-256 of the DER of the first certificate in a PEM file (the peer id)."""
    pem = cert_path.read_text()
    end = "-----END CERTIFICATE-----"
    first = pem[: pem.index(end) + len(end)]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).digest()


def test_version_and_strerror() -> None:
    assert aq.version().split(".")[:2] == aq.HEADER_VERSION.split(".")[:2]
    assert aq.strerror(0) != aq.strerror(-3)
    assert aq.strerror(-12345) == "unknown error code"


def test_channel_messages_content_order_and_metadata(
    alice: aq.Endpoint, bob: aq.Endpoint, certs: Path
) -> None:
    sent = {
        (TEAM_A, "chat"): [f"chat {i}".encode() for i in range(20)],
        (TEAM_B, "files"): [os.urandom(100 + i) for i in range(20)],
    }
    for i in range(20):  # interleave the two channels
        for (team, label), msgs in sent.items():
            alice.send(bob.local_addr, team, label, msgs[i])

    got: dict[tuple[bytes, str], list[bytes]] = {k: [] for k in sent}
    alice_id = leaf_fingerprint(certs / "alice.crt")
    for _ in range(40):
        m = recv(bob)
        assert m.kind == aq.Kind.CHANNEL
        assert not m.is_sync
        assert m.sync_type == 0
        assert m.addr == alice.local_addr
        assert m.peer_id == alice_id
        got[(m.team_id, m.label)].append(m.data)
    assert got == sent  # content and order per channel
    assert bob.receive(timeout=0) is None


def test_reply_to_received_address(alice: aq.Endpoint, bob: aq.Endpoint, certs: Path) -> None:
    alice.send(bob.local_addr, TEAM_A, "ping", b"ping")
    m = recv(bob)
    bob.send(m.addr, m.team_id, m.label, b"pong:" + m.data)
    r = recv(alice)
    assert (r.data, r.label, r.team_id, r.addr) == (b"pong:ping", "ping", TEAM_A, bob.local_addr)
    assert r.peer_id == leaf_fingerprint(certs / "bob.crt")
    assert bob.stats().dials == 0  # the reply reused alice's connection


def test_sync_messages(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    for t in (1, 7, 0xFFFFFFFF):
        for i in range(3):
            alice.send_sync(bob.local_addr, t, f"sync {t} {i}".encode())
    by_type: dict[int, list[bytes]] = {}
    for _ in range(9):
        m = recv(bob)
        assert m.kind == aq.Kind.SYNC and m.is_sync
        assert m.team_id == bytes(32)
        assert m.label == ""
        assert m.addr == alice.local_addr
        by_type.setdefault(m.sync_type, []).append(m.data)
    assert by_type == {t: [f"sync {t} {i}".encode() for i in range(3)] for t in (1, 7, 0xFFFFFFFF)}


def test_labels_unicode_nul_empty_and_max(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    labels = ["", "é✓", "a\0b", "x" * aq.LABEL_MAX]
    for label in labels:
        alice.send(bob.local_addr, TEAM_A, label, label.encode())
    got = sorted((recv(bob).label for _ in labels), key=labels.index)
    assert got == labels


def test_message_types_and_empty_message(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    payloads = [b"", bytearray(b"bytearray"), memoryview(b"xxmemoryview")[2:], (bytes(range(256)))]
    for p in payloads:
        alice.send(bob.local_addr, TEAM_A, "types", p)
    assert [recv(bob).data for _ in payloads] == [bytes(p) for p in payloads]


def test_tuple_address(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    host, port = bob.local_addr.rsplit(":", 1)
    alice.send((host, int(port)), TEAM_A, "tuple", b"t")
    alice.send_sync((host, int(port)), 3, b"s")
    got = {(m.kind, m.data) for m in (recv(bob), recv(bob))}  # two streams: any order
    assert got == {(aq.Kind.CHANNEL, b"t"), (aq.Kind.SYNC, b"s")}


def test_buffer_grows_for_big_messages(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    big = os.urandom(3 * 1024 * 1024 + 17)  # far over the 64 KiB starting buffer
    bigger = os.urandom(5 * 1024 * 1024)
    seq = [b"small before", big, b"small between", bigger, b"small after"]
    for p in seq:
        alice.send(bob.local_addr, TEAM_A, "big", p)
    got = [recv(bob).data for _ in seq]
    assert [len(g) for g in got] == [len(p) for p in seq]
    assert got == seq  # nothing lost or reordered by the retries
    # Large one-off buffers are not kept; the thread's buffer stays small.
    assert len(bob._tls.buf) <= 1024 * 1024


def test_receive_timeout_semantics(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    assert bob.receive(timeout=0) is None
    assert bob.receive(timeout=0.05) is None
    with pytest.raises(ValueError):
        bob.receive(timeout=-1)
    alice.send(bob.local_addr, TEAM_A, "t", b"now")
    m = recv(bob)
    assert m.data == b"now"
    # A queued message is returned by a non-blocking receive.
    alice.send(bob.local_addr, TEAM_A, "t", b"queued")
    readable, _, _ = select.select([bob], [], [], WAIT)  # queued, not yet taken
    assert readable == [bob]
    m0 = bob.receive(timeout=0)
    assert m0 is not None and m0.data == b"queued"


@pytest.mark.parametrize(
    "timeout",
    [math.inf, None, 3e9, 1e300, 1.7e308, 10**400],
    ids=["inf", "None", "3e9", "1e300", "1.7e308", "int-10**400"],
)
def test_receive_infinite_and_huge_timeouts_wait(
    alice: aq.Endpoint, bob: aq.Endpoint, timeout: float | None
) -> None:
    """math.inf waits like None; finite timeouts beyond int32 milliseconds
    (3e9 s is ~3e12 ms) wait too, instead of overflowing the C int32."""
    sender = threading.Timer(0.2, lambda: alice.send(bob.local_addr, TEAM_A, "inf", b"later"))
    sender.start()
    try:
        m = bob.receive(timeout=timeout)
    finally:
        sender.join(WAIT)
    assert m is not None and m.data == b"later"


def test_receive_infinite_timeout_woken_by_close(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("carol")
    result: list[BaseException | object] = []

    def receiver() -> None:
        try:
            result.append(ep.receive(timeout=math.inf))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=receiver)
    t.start()
    t.join(0.2)  # let it start waiting
    ep.close()
    t.join(WAIT)
    assert not t.is_alive()
    assert isinstance(result[0], aq.Closed), result


@pytest.mark.parametrize("timeout", [-1, -0.001, -math.inf, math.nan])
def test_receive_rejects_negative_and_nan_timeouts(bob: aq.Endpoint, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        bob.receive(timeout=timeout)


def test_blocking_receive_gets_message_from_other_thread(
    alice: aq.Endpoint, bob: aq.Endpoint
) -> None:
    result: list[aq.Message | BaseException] = []

    def receiver() -> None:
        try:
            m = bob.receive()  # timeout=None: blocks until a message arrives
            assert m is not None
            result.append(m)
        except BaseException as e:  # pragma: no cover - reported below
            result.append(e)

    t = threading.Thread(target=receiver)
    t.start()
    alice.send(bob.local_addr, TEAM_A, "block", b"wake up")
    t.join(WAIT)
    assert not t.is_alive()
    assert isinstance(result[0], aq.Message) and result[0].data == b"wake up"


def test_close_wakes_blocked_receive(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("carol")
    started = threading.Event()
    result: list[BaseException | object] = []

    def receiver() -> None:
        started.set()
        try:
            result.append(ep.receive())
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=receiver)
    t.start()
    started.wait(WAIT)
    ep.close()
    t.join(WAIT)
    assert not t.is_alive()
    assert isinstance(result[0], aq.Closed), result


def test_iteration_stops_on_close(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    for i in range(3):
        alice.send(bob.local_addr, TEAM_A, "iter", bytes([i]))
    got = []
    for m in bob:
        got.append(m.data)
        if len(got) == 3:
            bob.close()
    assert got == [b"\0", b"\1", b"\2"]


def test_close_connection_redials(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    alice.send(bob.local_addr, TEAM_A, "c", b"first")
    assert recv(bob).data == b"first"
    assert alice.stats().open_connections == 1
    alice.close_connection(bob.local_addr)
    s = alice.stats()
    assert s.open_connections == 0
    assert s.dials == 1
    alice.send(bob.local_addr, TEAM_A, "c", b"second")
    assert recv(bob).data == b"second"
    s = alice.stats()
    assert (s.dials, s.open_connections) == (2, 1)
    # No connection to that address: nothing to do.
    alice.close_connection("127.0.0.1:9")


def test_local_addr(alice: aq.Endpoint) -> None:
    host, port = alice.local_addr.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert 0 < int(port) < 65536
    assert alice.local_addr == alice.local_addr


def test_local_addr_ipv6(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    try:
        ep = make_endpoint("alice", bind_addr="[::1]:0")
    except aq.IoError:
        pytest.skip("no IPv6 loopback")
    assert ep.local_addr.startswith("[::1]:")
    other = make_endpoint("bob", bind_addr="[::1]:0")
    ep.send(other.local_addr, TEAM_A, "v6", b"six")
    m = recv(other)
    assert (m.data, m.addr) == (b"six", ep.local_addr)


def test_stats(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    s0 = bob.stats()
    assert isinstance(s0, aq.Stats)
    assert (s0.messages_received, s0.queue_messages, s0.open_connections) == (0, 0, 0)
    assert s0.congestion_control == "bbr2"  # the shipped library's default
    payloads = [b"a" * 10, b"b" * 20, b"c" * 30]
    for p in payloads:
        alice.send(bob.local_addr, TEAM_A, "stats", p)
    sa = alice.stats()
    assert (sa.messages_sent, sa.bytes_sent, sa.dials) == (3, 60, 1)
    for p in payloads:
        assert recv(bob).data == p
    sb = bob.stats()
    assert (sb.messages_received, sb.bytes_received) == (3, 60)
    assert (sb.queue_messages, sb.queue_bytes) == (0, 0)
    assert sb.accepts == 1
    assert sa.messages_unconfirmed == 0 and sb.messages_unconfirmed == 0


def test_connect_timeout_reaches_the_library(
    certs: Path, make_endpoint: Callable[..., aq.Endpoint]
) -> None:
    from support import config_for

    cfg = config_for(certs, "alice", connect_timeout_ms=1234)
    raw, _keep = cfg._to_c()
    assert raw.connect_timeout_ms == 1234
    assert raw.struct_size == ctypes.sizeof(aq._ffi.aranya_quic_config)
    # The library checks it: it must be shorter than send_timeout_ms.
    with pytest.raises(aq.InvalidArgument):
        aq.Endpoint(config_for(certs, "alice", send_timeout_ms=2000, connect_timeout_ms=2000))
    with pytest.raises(aq.InvalidArgument, match="out of range"):
        aq.Endpoint(config_for(certs, "alice", connect_timeout_ms=2**32))
    # It bounds a dial to a peer that never answers (a bare UDP socket).
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        ep = make_endpoint("alice", connect_timeout_ms=300, handshake_timeout_ms=8000)
        t0 = time.monotonic()
        with pytest.raises((aq.ConnectionFailed, aq.Timeout)):
            ep.send("127.0.0.1:%d" % silent.getsockname()[1], TEAM_A, "l", b"m")
        assert time.monotonic() - t0 < 5  # well under the handshake timeout
    finally:
        silent.close()


def test_config_pem_forms(certs: Path, make_endpoint: Callable[..., aq.Endpoint]) -> None:
    bob = make_endpoint("bob")
    as_bytes = aq.Config(
        cert=(certs / "alice.crt").read_bytes(),
        key=(certs / "alice.key").read_bytes(),
        ca=(certs / "ca.pem").read_bytes(),
    )
    as_text = aq.Config(
        cert=(certs / "alice.crt").read_text(),
        key=str(certs / "alice.key"),  # a str that is not PEM: a path
        ca=certs / "ca.pem",
    )
    for cfg in (as_bytes, as_text):
        with aq.Endpoint(cfg, drain_timeout_ms=500) as ep:
            ep.send(bob.local_addr, TEAM_A, "pem", b"ok")
            assert recv(bob).data == b"ok"


@pytest.mark.parametrize(
    ("cc", "want"),
    [
        (aq.CongestionControl.DEFAULT, "bbr2"),
        (aq.CongestionControl.BBR2, "bbr2"),
        (aq.CongestionControl.RENO, "reno"),
    ],
)
def test_congestion_control_reported(make_endpoint: Any, cc: int, want: str) -> None:
    """The shipped library drives connections with BBRv2 by default; stats
    report what the connection was actually built with."""
    a = make_endpoint("alice", congestion_control=cc)
    b = make_endpoint("bob")
    a.send(b.local_addr, TEAM_A, "cc", b"x")
    assert recv(b).data == b"x"
    assert a.stats().congestion_control == want
