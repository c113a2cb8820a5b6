"""asyncio on the non-blocking calls: send_async, close_async,
shutdown_async, the event dispatcher and iterators, ``async with`` and
``async for``, all on the loop's readers (no threads), and the loop staying
free while they wait."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import aranya_quic as aq
from support import TEAM_A, TEAM_B, WAIT, config_for

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


class Relay(asyncio.DatagramProtocol):
    """A UDP relay run by the test's own loop: the client (the first address
    that sends to it) talks to ``target`` through it until ``forward`` is
    cleared; from then on both sides hear nothing from each other, as from
    a peer that stopped answering."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.client: tuple[str, int] | None = None
        self.forward = True
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.forward or self.transport is None:
            return
        if addr == self.target:
            if self.client is not None:
                self.transport.sendto(data, self.client)
        else:
            self.client = addr
            self.transport.sendto(data, self.target)


async def start_relay(target: str) -> tuple[Relay, str]:
    host, port = target.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, relay = await loop.create_datagram_endpoint(
        lambda: Relay((host, int(port))), local_addr=("127.0.0.1", 0)
    )
    assert relay.transport is not None
    return relay, "%s:%d" % relay.transport.get_extra_info("sockname")


def run(coro: Any) -> Any:
    """Run a test coroutine, bounded against hangs."""
    return asyncio.run(asyncio.wait_for(coro, WAIT * 2))


def test_send_async_and_async_for(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    async def main() -> None:
        ids = [await alice.send_async(bob.local_addr, TEAM_A, "a", b"%d" % i) for i in range(3)]
        ids.append(await alice.send_sync_async(bob.local_addr, 4, b"sync"))
        assert ids == sorted(ids) and len(set(ids)) == 4
        got = []
        async for msg in bob:
            got.append(msg)
            if len(got) == 4:
                break
        assert sorted(m.data for m in got) == [b"0", b"1", b"2", b"sync"]
        assert all(m.addr == alice.local_addr for m in got)

    run(main())


def test_async_for_ends_when_closed(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("carol")

    async def main() -> None:
        async def consume() -> list[aq.Message]:
            return [m async for m in ep]

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        ep.close()
        assert await task == []

    run(main())


def test_async_with_shuts_down_then_frees(certs: Path, bob: aq.Endpoint) -> None:
    async def main() -> aq.Endpoint:
        async with aq.Endpoint(config_for(certs, "alice")) as ep:
            await ep.send_async(bob.local_addr, TEAM_A, "with", b"inside")
            msg = await bob.receive_async()
            assert msg.data == b"inside"
        return ep

    ep = run(main())
    assert ep.closed


def test_async_with_raises_the_shutdown_outcome(certs: Path, bob: aq.Endpoint) -> None:
    async def main() -> aq.Endpoint:
        relay, relay_addr = await start_relay(bob.local_addr)
        try:
            with pytest.raises(aq.Unconfirmed) as ei:
                async with aq.Endpoint(config_for(certs, "alice", drain_timeout_ms=300)) as ep:
                    await ep.send_async(relay_addr, TEAM_A, "with", b"through")
                    assert (await bob.receive_async()).data == b"through"
                    relay.forward = False
                    await ep.send_async(relay_addr, TEAM_A, "with", b"lost")
            assert ei.value.event is not None and ei.value.event.type == aq.EventType.SHUTDOWN_FINISHED
            assert ei.value.event.unconfirmed >= 1
            return ep
        finally:
            relay.transport.close()

    assert run(main()).closed


def test_async_with_keeps_the_blocks_exception(certs: Path) -> None:
    async def main() -> None:
        async with aq.Endpoint(config_for(certs, "alice")):
            raise KeyError("the block's own")

    with pytest.raises(KeyError):
        run(main())


def test_close_async_and_events(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    async def main() -> list[aq.Event]:
        seen: list[aq.Event] = []

        async def collect() -> None:
            async for event in alice.events():
                seen.append(event)

        collector = asyncio.create_task(collect())
        await alice.send_async(bob.local_addr, TEAM_A, "c", b"x")
        assert (await bob.receive_async()).data == b"x"
        await alice.close_async(bob.local_addr)  # OK: returns None
        await alice.close_async(bob.local_addr)  # no connection: OK too
        await alice.shutdown_async()
        await collector  # ends after SHUTDOWN_FINISHED
        return seen

    seen = run(main())
    types = [e.type for e in seen]
    assert types[0] == aq.EventType.PEER_CONNECTED and seen[0].addr == bob.local_addr
    assert types.count(aq.EventType.CLOSE_FINISHED) == 2
    assert aq.EventType.PEER_DISCONNECTED in types
    assert types[-1] == aq.EventType.SHUTDOWN_FINISHED
    assert all(e.ok for e in seen)
    assert not alice._watches  # every reader removed


def test_shutdown_async_shared_and_repeated(make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint) -> None:
    ep = make_endpoint("alice")

    async def main() -> None:
        await ep.send_async(bob.local_addr, TEAM_B, "s", b"x")
        await asyncio.gather(ep.shutdown_async(), ep.shutdown_async(), ep.shutdown_async())
        await ep.shutdown_async()  # after it finished: at once, same outcome
        with pytest.raises(aq.Closed):
            await ep.send_async(bob.local_addr, TEAM_B, "s", b"y")
        with pytest.raises(aq.Closed):
            await ep.close_async(bob.local_addr)

    run(main())
    ep.close()


def test_shutdown_ends_waiting_sends(make_endpoint: Callable[..., aq.Endpoint], blackhole: str) -> None:
    ep = make_endpoint("alice", max_outbound_bytes_per_peer=SMALL_QUEUE, connect_timeout_ms=1000,
                       drain_timeout_ms=500)

    async def main() -> None:
        queued = ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
        waiting = asyncio.create_task(ep.send_async(blackhole, TEAM_A, "q", PAYLOAD))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        shutdown = asyncio.create_task(ep.shutdown_async())
        with pytest.raises(aq.Closed):
            await waiting
        try:
            await shutdown
        except aq.Unconfirmed:
            pass
        failed = [e async for e in ep.events() if e.type == aq.EventType.SEND_FAILED]
        assert [e.id for e in failed] == [queued]

    run(main())
    ep.close()


def test_several_waiters_on_one_loop(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    """asyncio keeps one reader per descriptor and loop: many coroutines
    waiting on the same descriptor share it, and one leaving (here
    cancelled) does not unregister it for the others."""

    async def main() -> None:
        receivers = [asyncio.create_task(bob.receive_async()) for _ in range(4)]
        event_waiters = [asyncio.create_task(bob.next_event_async()) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in receivers + event_waiters)
        receivers[0].cancel()
        event_waiters[0].cancel()
        await asyncio.sleep(0)
        for i in range(3):
            await alice.send_async(bob.local_addr, TEAM_A, "many", b"%d" % i)
        got = await asyncio.gather(*receivers[1:])
        assert sorted(m.data for m in got) == [b"0", b"1", b"2"]
        event = await event_waiters[1]
        assert event.type == aq.EventType.PEER_CONNECTED
        assert receivers[0].cancelled() and event_waiters[0].cancelled()
        assert not bob._watches  # no reader left behind

    run(main())


def test_send_async_waits_for_the_queue(make_endpoint: Callable[..., aq.Endpoint], blackhole: str) -> None:
    ep = make_endpoint("alice", max_outbound_bytes_per_peer=SMALL_QUEUE, connect_timeout_ms=500)

    async def main() -> None:
        first = ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
        with pytest.raises(aq.WouldBlock):
            ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
        second = await ep.send_async(blackhole, TEAM_A, "q", PAYLOAD)
        assert second > first
        ids = await ep.send_batch_async(blackhole, TEAM_A, "q", [PAYLOAD, PAYLOAD])
        sync_ids = await ep.send_sync_batch_async(blackhole, 2, [PAYLOAD])
        assert ids[0] > second and ids[1] > ids[0] and sync_ids[0] > ids[1]
        failed = set()
        async for event in ep.events():
            if event.type == aq.EventType.SEND_FAILED:
                assert isinstance(event.error, (aq.ConnectionFailed, aq.Timeout))
                failed.add(event.id)
            if failed == {first, second, *ids, *sync_ids}:
                break

    run(main())


def test_loop_stays_free_while_operations_wait(
    make_endpoint: Callable[..., aq.Endpoint], bob: aq.Endpoint, blackhole: str
) -> None:
    """THE key test. In one loop, a send_async to a peer that never answers
    (its queue full, waiting for it to drain) and a close_async of a peer
    that stopped answering (waiting for drain_timeout_ms) are pending
    together while another task keeps counting loop iterations; both then
    finish with the right outcome."""
    alice = make_endpoint(
        "alice",
        max_outbound_bytes_per_peer=SMALL_QUEUE,
        connect_timeout_ms=2000,
        drain_timeout_ms=1500,
    )

    async def main() -> None:
        relay, relay_addr = await start_relay(bob.local_addr)
        try:
            # Through the relay while it forwards: a live connection.
            await alice.send_async(relay_addr, TEAM_A, "relay", b"through")
            assert (await bob.receive_async()).data == b"through"
            relay.forward = False  # the peer stops answering
            for _ in range(3):
                await alice.send_async(relay_addr, TEAM_A, "relay", b"never confirmed")

            first = alice.try_send(blackhole, TEAM_A, "hole", PAYLOAD)
            with pytest.raises(aq.WouldBlock):
                alice.try_send(blackhole, TEAM_A, "hole", PAYLOAD)

            events: list[aq.Event] = []

            async def collect() -> None:
                async for event in alice.events():
                    events.append(event)

            collector = asyncio.create_task(collect())
            send = asyncio.create_task(alice.send_async(blackhole, TEAM_A, "hole", PAYLOAD))
            close = asyncio.create_task(alice.close_async(relay_addr))
            both_pending = 0

            async def count() -> None:
                nonlocal both_pending
                while not (send.done() and close.done()):
                    if not send.done() and not close.done():
                        both_pending += 1
                    await asyncio.sleep(0.001)

            await asyncio.gather(count(), send, close, return_exceptions=True)
            assert both_pending >= 20, both_pending

            second = send.result()  # accepted once the first one's dial failed
            assert second > first
            with pytest.raises(aq.Unconfirmed) as ei:
                close.result()
            assert ei.value.event is not None
            assert ei.value.event.type == aq.EventType.CLOSE_FINISHED
            assert ei.value.event.unconfirmed >= 3

            # The dispatcher kept every event for the iterator as well.
            while not any(e.type == aq.EventType.SEND_FAILED and e.id == second for e in events):
                await asyncio.sleep(0.01)
            failed = {e.id: e for e in events if e.type == aq.EventType.SEND_FAILED}
            assert first in failed and isinstance(failed[first].error, (aq.ConnectionFailed, aq.Timeout))
            closes = [e for e in events if e.type == aq.EventType.CLOSE_FINISHED]
            assert [c.id for c in closes] == [ei.value.event.id]
            collector.cancel()
        finally:
            assert relay.transport is not None
            relay.transport.close()

    run(main())
    assert alice.stats().messages_unconfirmed >= 3


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("closer", ["loop", "thread"])
def test_close_ends_every_async_wait(
    make_endpoint: Callable[..., aq.Endpoint], blackhole: str, closer: str
) -> None:
    ep = make_endpoint("carol", max_outbound_bytes_per_peer=SMALL_QUEUE, connect_timeout_ms=5000,
                       send_timeout_ms=10000, drain_timeout_ms=300)
    fds_before = _open_fds()

    async def main() -> None:
        ep.try_send(blackhole, TEAM_A, "q", PAYLOAD)
        waits = [
            asyncio.create_task(ep.receive_async()),
            asyncio.create_task(ep.next_event_async()),
            asyncio.create_task(ep.send_async(blackhole, TEAM_A, "q", PAYLOAD)),
            asyncio.create_task(ep.close_async(blackhole)),  # behind the queued message
        ]
        events = asyncio.create_task(_drain(ep.events()))
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in waits)

        def close() -> None:
            # The queued messages never reach the blackhole.
            with pytest.raises(aq.Unconfirmed):
                ep.close()

        if closer == "loop":
            close()
        else:
            t = threading.Thread(target=close)
            t.start()
            while t.is_alive():
                await asyncio.sleep(0.01)
        for task in waits:
            with pytest.raises(aq.Closed):
                await task
        await events  # the iterator ends

    run(main())
    assert ep.closed and not ep._watches
    assert _open_fds() <= fds_before


async def _drain(stream: aq.EventStream) -> list[aq.Event]:
    return [e async for e in stream]


def test_two_loops_in_two_threads(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    """Waiters of different loops each get their own reader; the dispatcher
    settles each close on its own loop."""
    results: list[object] = []

    def worker(addr: str) -> None:
        async def go() -> object:
            await alice.send_async(addr, TEAM_A, "two", b"x")
            await alice.close_async(addr)
            return "ok"

        try:
            results.append(asyncio.run(asyncio.wait_for(go(), WAIT)))
        except BaseException as e:  # report to the test thread
            results.append(e)

    threads = [threading.Thread(target=worker, args=(bob.local_addr,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert results == ["ok", "ok"]
    assert not alice._watches
