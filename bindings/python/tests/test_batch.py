"""Batch sends and receives: send_batch, send_sync_batch, receive_batch, and
the batched draining of iteration and receive_async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import aranya_quic as aq
from support import TEAM_A, TEAM_B, WAIT


def collect(ep: aq.Endpoint, n: int, max_msgs: int = 64) -> tuple[list[aq.Message], list[int]]:
    """Receive batches until ``n`` messages arrived: the messages and the batch sizes."""
    got: list[aq.Message] = []
    sizes: list[int] = []
    while len(got) < n:
        batch = ep.receive_batch(max_msgs, timeout=WAIT)
        assert batch, f"no message within {WAIT} s ({len(got)} of {n})"
        assert len(batch) <= max_msgs
        sizes.append(len(batch))
        got.extend(batch)
    return got, sizes


def wait_queued(ep: aq.Endpoint, n: int) -> None:
    """Wait until ``ep`` has ``n`` messages queued (bounded only against hangs)."""
    end = time.monotonic() + WAIT
    while ep.stats().queue_messages < n:
        assert time.monotonic() < end, f"{n} messages never got queued"
        time.sleep(0.005)


def test_send_batch_then_receive_batch_in_order(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    msgs: list[object] = [bytes([i % 256]) * ((i * 37) % 700) for i in range(150)]
    # Other bytes-like objects go through the slow path of the same call.
    msgs[3] = bytearray(b"bytearray")
    msgs[4] = memoryview(b"memoryview")
    assert alice.send_batch(bob.local_addr, TEAM_A, "batch", msgs) == 150
    assert alice.send_batch(bob.local_addr, TEAM_A, "batch", (m for m in [b"last"])) == 1
    got, sizes = collect(bob, 151, max_msgs=16)
    assert [m.data for m in got] == [bytes(m) for m in msgs] + [b"last"]  # type: ignore[call-overload]
    assert all(
        (m.kind, m.label, m.team_id, m.addr, m.sync_type) == (aq.Kind.CHANNEL, "batch", TEAM_A, alice.local_addr, 0)
        for m in got
    )
    assert len({m.peer_id for m in got}) == 1
    assert max(sizes) <= 16
    # Same fields as the one-message receive gives.
    alice.send_batch(bob.local_addr, TEAM_B, b"raw\x00label", [b"x"])
    alice.send(bob.local_addr, TEAM_B, b"raw\x00label", b"x")
    a = bob.receive_batch(1, timeout=WAIT)[0]
    b = bob.receive(timeout=WAIT)
    assert a == b and a.label == "raw\x00label"
    # Empty queue.
    assert bob.receive_batch(timeout=0) == []
    assert bob.receive_batch(timeout=0.01) == []


def test_send_sync_batch(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    msgs = [f"sync-{i}".encode() for i in range(70)]
    assert alice.send_sync_batch(bob.local_addr, 12, msgs) == 70
    got, _ = collect(bob, 70)
    assert [m.data for m in got] == msgs
    assert all(m.is_sync and m.sync_type == 12 and m.label == "" and m.team_id == bytes(32) for m in got)


def test_empty_batches_send_nothing(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    assert alice.send_batch(bob.local_addr, TEAM_A, "e", []) == 0
    assert alice.send_batch(bob.local_addr, TEAM_A, "e", ()) == 0
    assert alice.send_batch(bob.local_addr, TEAM_A, "e", iter([])) == 0
    assert alice.send_sync_batch(bob.local_addr, 1, []) == 0
    assert bob.receive_batch(timeout=0.2) == []


def test_oversize_message_in_the_middle(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    alice = make_endpoint("alice", max_message_size=1000)
    msgs = [b"a", b"b", bytes(1001), b"c"]
    with pytest.raises(aq.TooLarge) as ei:
        alice.send_batch(bob.local_addr, TEAM_A, "t", msgs)
    assert ei.value.sent == 2
    assert "2 message(s) of the batch sent" in str(ei.value)
    with pytest.raises(aq.TooLarge) as ei:
        alice.send_sync_batch(bob.local_addr, 3, [bytes(1001)])
    assert ei.value.sent == 0
    # Exactly the accepted ones arrive, and nothing after the failure.
    got, _ = collect(bob, 2)
    assert [m.data for m in got] == [b"a", b"b"]
    assert bob.receive_batch(timeout=0.2) == []


def test_bad_arguments_fail_before_any_message(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    with pytest.raises(aq.InvalidArgument) as ei:
        alice.send_batch(bob.local_addr, TEAM_A, "l" * (aq.LABEL_MAX + 1), [b"m"])
    assert ei.value.sent == 0
    with pytest.raises(aq.InvalidArgument) as ei:
        alice.send_batch(bob.local_addr, b"short", "l", [b"m"])
    assert ei.value.sent == 0
    with pytest.raises(aq.BadAddress) as ei:
        alice.send_batch("not an address", TEAM_A, "l", [b"m"])
    assert ei.value.sent == 0
    with pytest.raises(aq.BadAddress) as ei:
        alice.send_sync_batch(alice.local_addr, 1, [b"m"])  # our own address
    assert ei.value.sent == 0
    with pytest.raises(TypeError):
        alice.send_batch(bob.local_addr, TEAM_A, "l", b"one message, not a list")
    with pytest.raises(TypeError):
        alice.send_batch(bob.local_addr, TEAM_A, "l", [b"ok", "str is not bytes"])
    with pytest.raises(aq.InvalidArgument) as ei:
        alice.send_sync_batch(bob.local_addr, -1, [b"m"])
    assert ei.value.sent == 0
    assert bob.receive_batch(timeout=0.2) == []
    # Errors of other calls carry no count.
    with pytest.raises(aq.InvalidArgument) as ei:
        alice.send(bob.local_addr, b"short", "l", b"m")
    assert ei.value.sent is None


def test_receive_batch_arguments(bob: aq.Endpoint) -> None:
    with pytest.raises(aq.InvalidArgument):
        bob.receive_batch(0)
    with pytest.raises(TypeError):
        bob.receive_batch(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bob.receive_batch(timeout=-1)
    with pytest.raises(ValueError):
        bob.receive_batch(timeout=float("nan"))


def test_buffer_too_small_grows_and_keeps_order(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    """A message that does not fit what is left of the buffer waits for the
    next batch; one larger than the whole buffer grows it. Nothing is lost."""
    big = bytes(i % 251 for i in range(100_000))  # over the 64 KiB initial buffer
    alice.send_batch(bob.local_addr, TEAM_A, "big", [b"small", big, b"after"])
    wait_queued(bob, 3)
    first = bob.receive_batch(timeout=0)
    second = bob.receive_batch(timeout=0)
    third = bob.receive_batch(timeout=0)
    assert [[m.data for m in b] for b in (first, second, third)] == [[b"small"], [big], [b"after"]]


def test_max_msgs_limits_a_batch(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    alice.send_batch(bob.local_addr, TEAM_A, "rec", [bytes([i]) for i in range(10)])
    wait_queued(bob, 10)
    batches = [bob.receive_batch(3, timeout=0) for _ in range(4)]
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [m.data[0] for b in batches for m in b] == list(range(10))


def test_iteration_and_receive_async_drain_in_batches(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    """Iteration takes the whole queue in one call; every receive method then
    hands out the rest first, in order."""
    alice.send_batch(bob.local_addr, TEAM_A, "it", [bytes([i]) for i in range(10)])
    wait_queued(bob, 10)
    assert next(iter(bob)).data == b"\x00"
    assert bob.stats().queue_messages == 0  # all taken by one library call
    assert bob.receive(timeout=0).data == b"\x01"  # type: ignore[union-attr]
    assert [m.data for m in bob.receive_batch(3, timeout=0)] == [b"\x02", b"\x03", b"\x04"]
    assert asyncio.run(asyncio.wait_for(bob.receive_async(), WAIT)).data == b"\x05"
    assert [m.data for m in bob.receive_batch(timeout=0)] == [bytes([i]) for i in range(6, 10)]
    assert bob.receive(timeout=0) is None

    # receive_async takes batches too.
    alice.send_sync_batch(bob.local_addr, 2, [bytes([i]) for i in range(5)])
    wait_queued(bob, 5)

    async def five() -> list[bytes]:
        return [(await asyncio.wait_for(bob.receive_async(), WAIT)).data for _ in range(5)]

    assert asyncio.run(five()) == [bytes([i]) for i in range(5)]


def test_close_drops_messages_taken_in_a_batch(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    alice, bob = make_endpoint("alice"), make_endpoint("bob")
    alice.send_batch(bob.local_addr, TEAM_A, "c", [b"x", b"y", b"z"])
    wait_queued(bob, 3)
    assert next(iter(bob)).data == b"x"
    bob.close()
    with pytest.raises(aq.Closed):
        bob.receive(timeout=0)
    with pytest.raises(aq.Closed):
        bob.receive_batch(timeout=0)
    assert list(bob) == []
    with pytest.raises(aq.Closed) as ei:
        bob.send_batch(alice.local_addr, TEAM_A, "c", [b"m"])
    assert ei.value.sent == 0


def test_send_batch_payload_kinds_on_both_paths(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    """Many small messages are copied into one buffer; a batch too large for
    that passes each payload as it is. Both carry every bytes-like kind."""
    small: list[object] = [b"", bytearray(b"ba"), memoryview(b"mv"), b"b"] + [bytes([i]) for i in range(8)]
    large: list[object] = [b"", bytearray(b"ba"), memoryview(b"mv"), bytes(300_000)] + [bytes([i]) for i in range(8)]
    empties: list[object] = [b""] * 10
    for msgs in (small, large, empties):
        assert alice.send_batch(bob.local_addr, TEAM_A, "kinds", msgs) == len(msgs)
        got, _ = collect(bob, len(msgs))
        assert [m.data for m in got] == [bytes(m) for m in msgs]  # type: ignore[call-overload]
    # A non-contiguous view is refused on either path, before anything is sent.
    for n in (2, 10):
        with pytest.raises(TypeError):
            alice.send_batch(bob.local_addr, TEAM_A, "kinds", [b"ok"] * (n - 1) + [memoryview(b"abcd")[::2]])
    assert bob.receive_batch(timeout=0.2) == []
