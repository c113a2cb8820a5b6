"""Hostile tests of the asyncio API: cancellation, many concurrent senders,
competing event takers, shutdown and close while coroutines wait, two
event loops, log forwarding during frees, event overflow. Every wait is
bounded (asyncio.wait_for) so that a hang fails instead of hanging."""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import aranya_quic as aq
from support import TEAM_A, WAIT

Make = Callable[..., aq.Endpoint]


def tiny(make: Make, name: str = "alice", **kw: Any) -> aq.Endpoint:
    kw.setdefault("max_outbound_bytes_per_peer", 1)
    kw.setdefault("connect_timeout_ms", 2000)
    kw.setdefault("send_timeout_ms", 5000)
    return make(name, **kw)


@pytest.fixture
def blackhole() -> Iterator[str]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield "%s:%d" % s.getsockname()
    finally:
        s.close()


async def bounded(aw: Any, what: str = "wait") -> Any:
    try:
        return await asyncio.wait_for(aw, WAIT)
    except asyncio.TimeoutError:
        pytest.fail(f"{what}: hung")


async def receive_until(ep: aq.Endpoint, end: bytes) -> collections.Counter[bytes]:
    seen: collections.Counter[bytes] = collections.Counter()
    while True:
        m = await bounded(ep.receive_async(), "receive")
        if m.data == end:
            return seen
        seen[m.data] += 1


def test_cancelled_send_async_sends_once_or_not_at_all(make_endpoint: Make) -> None:
    alice, bob = tiny(make_endpoint), make_endpoint("bob")

    async def main() -> None:
        accepted: set[bytes] = set()
        for i in range(200):
            p = b"m%d" % i
            task = asyncio.ensure_future(alice.send_async(bob.local_addr, TEAM_A, "k", p))
            for _ in range(i % 4):
                await asyncio.sleep(0)
            if i % 3 == 0:
                await asyncio.sleep(0.0005 * (i % 5))
            task.cancel()
            try:
                await task
                accepted.add(p)
            except asyncio.CancelledError:
                pass
        await bounded(alice.send_async(bob.local_addr, TEAM_A, "k", b"end"))
        seen = await receive_until(bob, b"end")
        assert all(n == 1 for n in seen.values()), seen
        assert set(seen) == accepted, (set(seen) ^ accepted)

    asyncio.run(main())


def test_many_concurrent_send_async_through_a_tiny_queue(make_endpoint: Make) -> None:
    alice, bob = tiny(make_endpoint), make_endpoint("bob")
    tasks_n, each = 24, 25

    async def sender(t: int) -> None:
        for i in range(each):
            await alice.send_async(bob.local_addr, TEAM_A, f"l{t}", b"t%d-%d" % (t, i))

    async def main() -> None:
        await bounded(asyncio.gather(*(sender(t) for t in range(tasks_n))), "senders")
        seen: collections.Counter[bytes] = collections.Counter()
        while len(seen) < tasks_n * each:
            m = await bounded(bob.receive_async(), "receive")
            seen[m.data] += 1
        assert all(n == 1 for n in seen.values())
        await bounded(alice.shutdown_async(), "shutdown")

    asyncio.run(main())


def test_cancelled_close_async_does_not_break_later_closes(make_endpoint: Make, blackhole: str) -> None:
    alice, bob = tiny(make_endpoint), make_endpoint("bob")

    async def main() -> None:
        await bounded(alice.send_async(bob.local_addr, TEAM_A, "k", b"hi"))
        await bounded(bob.receive_async())
        # A close of a dialing peer waits (the dial to the silent peer).
        alice.try_send(blackhole, TEAM_A, "k", b"queued")
        task = asyncio.ensure_future(alice.close_async(blackhole))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Its event still arrives.
        while True:
            ev = await bounded(alice.next_event_async(), "event of the cancelled close")
            if ev.type == aq.EventType.CLOSE_FINISHED and ev.addr == blackhole:
                break
        await bounded(alice.close_async(bob.local_addr), "close bob")
        await bounded(alice.close_async(blackhole), "close again")
        # Cancelled before it ever ran.
        t2 = asyncio.ensure_future(alice.close_async(bob.local_addr))
        t2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t2
        await bounded(alice.close_async(bob.local_addr), "close after an unstarted cancel")
        assert not alice._ev_outcomes, alice._ev_outcomes

    asyncio.run(main())


def test_competing_event_takers_and_pending_closes(make_endpoint: Make) -> None:
    alice = tiny(make_endpoint)

    async def main() -> None:
        seen: list[tuple[str, aq.Event]] = []

        async def stream(name: str) -> None:
            async for ev in alice.events():
                seen.append((name, ev))

        async def poller() -> None:
            while True:
                try:
                    ev = await alice.next_event_async()
                except aq.Closed:
                    return
                seen.append(("poll", ev))
                if ev.type == aq.EventType.SHUTDOWN_FINISHED:
                    return

        takers = [asyncio.ensure_future(stream("a")), asyncio.ensure_future(stream("b")), asyncio.ensure_future(poller())]
        await asyncio.sleep(0)
        await bounded(asyncio.gather(*(alice.close_async(f"127.0.0.1:{20000 + i}") for i in range(40))), "closes")
        await bounded(alice.shutdown_async(), "shutdown")
        # Only one taker gets SHUTDOWN_FINISHED; the others end at close().
        done, pending = await asyncio.wait(takers, timeout=0.5)
        alice.close()
        await bounded(asyncio.gather(*pending), "takers after close")
        ids = collections.Counter(ev.id for _, ev in seen if ev.type == aq.EventType.CLOSE_FINISHED)
        assert len(ids) == 40 and all(n == 1 for n in ids.values()), ids
        assert sum(1 for _, ev in seen if ev.type == aq.EventType.SHUTDOWN_FINISHED) == 1

    asyncio.run(main())


def test_shutdown_async_while_everything_is_pending(make_endpoint: Make, blackhole: str) -> None:
    alice = tiny(make_endpoint, connect_timeout_ms=60000, send_timeout_ms=90000)

    async def main() -> None:
        alice.try_send(blackhole, TEAM_A, "q", b"1")
        with pytest.raises(aq.WouldBlock):
            alice.try_send(blackhole, TEAM_A, "q", b"2")
        send = asyncio.ensure_future(alice.send_async(blackhole, TEAM_A, "q", b"2"))
        close = asyncio.ensure_future(alice.close_async(blackhole))
        recv = asyncio.ensure_future(alice.receive_async())
        evs = asyncio.ensure_future(alice.next_event_async())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not any(t.done() for t in (send, close, recv, evs))
        try:
            await bounded(alice.shutdown_async(), "shutdown")
        except aq.Unconfirmed:
            pass
        r = await bounded(asyncio.gather(send, close, evs, return_exceptions=True), "pending calls")
        assert isinstance(r[0], aq.Closed), r
        assert r[1] is None or isinstance(r[1], (aq.Closed, aq.Unconfirmed)), r
        # The receive ends with Closed: at the shutdown (the library says
        # closed once nothing is queued) or at close() at the latest.
        alice.close()
        with pytest.raises(aq.Closed):
            await bounded(recv, "receive after close")

    asyncio.run(main())


@pytest.mark.parametrize("wait", [True, False])
def test_close_from_another_thread_while_coroutines_wait(make_endpoint: Make, blackhole: str, wait: bool) -> None:
    alice = tiny(make_endpoint, connect_timeout_ms=60000, send_timeout_ms=90000,
                 log_callback=aq.forward_to_logging, log_level=aq.LogLevel.DEBUG)

    async def main() -> None:
        alice.try_send(blackhole, TEAM_A, "q", b"1")
        send = asyncio.ensure_future(alice.send_async(blackhole, TEAM_A, "q", b"2"))
        close = asyncio.ensure_future(alice.close_async(blackhole))
        shut = None
        recv = asyncio.ensure_future(alice.receive_async())
        stream_items: list[aq.Event] = []

        async def stream() -> None:
            async for ev in alice.events():
                stream_items.append(ev)

        evs = asyncio.ensure_future(stream())
        for _ in range(5):
            await asyncio.sleep(0)
        shut = asyncio.ensure_future(alice.shutdown_async())
        await asyncio.sleep(0)
        t = threading.Thread(target=lambda: alice.close(wait=wait) if not wait else _close_ignoring(alice))
        t.start()
        r = await bounded(asyncio.gather(send, close, recv, shut, evs, return_exceptions=True), "pending calls")
        t.join(WAIT)
        assert not t.is_alive()
        for x in r[:4]:
            assert isinstance(x, aq.AranyaQuicError), r
        assert r[4] is None, r
        with pytest.raises(aq.Closed):
            await alice.send_async(blackhole, TEAM_A, "q", b"3")
        assert not alice._watches and not alice._dups, (alice._watches, alice._dups)

    asyncio.run(main())


def _close_ignoring(ep: aq.Endpoint) -> None:
    try:
        ep.close()
    except aq.Unconfirmed:
        pass


def test_one_endpoint_two_event_loops(make_endpoint: Make) -> None:
    alice, bob = tiny(make_endpoint), make_endpoint("bob")
    errors: list[BaseException] = []

    def other_loop() -> None:
        async def run() -> None:
            for i in range(30):
                await bounded(alice.close_async(f"127.0.0.1:{21000 + i}"), "close on loop 2")
                await bounded(alice.send_async(bob.local_addr, TEAM_A, "l2", b"b%d" % i), "send on loop 2")

        try:
            asyncio.run(run())
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    async def main() -> None:
        t = threading.Thread(target=other_loop)
        t.start()
        for i in range(30):
            await bounded(alice.close_async(f"127.0.0.1:{22000 + i}"), "close on loop 1")
            await bounded(alice.send_async(bob.local_addr, TEAM_A, "l1", b"a%d" % i), "send on loop 1")
        await bounded(asyncio.to_thread(t.join, WAIT))
        assert not errors, errors
        got: collections.Counter[bytes] = collections.Counter()
        while len(got) < 60:
            m = await bounded(bob.receive_async(), "receive")
            got[m.data] += 1
        assert all(n == 1 for n in got.values())
        await bounded(alice.shutdown_async(), "shutdown")

    asyncio.run(main())


def test_loop_closed_under_a_waiting_coroutine_then_endpoint_collected(certs: Any) -> None:
    """A coroutine abandoned mid-wait on a loop that is then closed, and
    the endpoint closed: when the garbage collector takes the endpoint and
    the coroutine together, every duplicate descriptor is closed exactly
    once (a second close would hit EBADF, or someone else's descriptor if
    the number was reused)."""
    import gc
    import sys

    from support import config_for

    alice = aq.Endpoint(config_for(certs, "alice"))
    loop = asyncio.new_event_loop()
    task = loop.create_task(alice.next_event_async())
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()  # the task never finishes
    alice.close()
    raised: list[BaseException] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: raised.append(u.exc_value)
    try:
        del alice, task, loop
        gc.collect()
    finally:
        sys.unraisablehook = old
    bad = [e for e in raised if isinstance(e, OSError)]
    assert not bad, f"a descriptor was closed twice: {bad!r}"


def test_log_forwarding_while_endpoints_are_freed(make_endpoint: Make, certs: Any) -> None:
    from support import config_for

    records: list[str] = []

    class H(logging.Handler):
        def emit(self, r: logging.LogRecord) -> None:
            records.append(r.getMessage())

    h = H()
    logger = logging.getLogger("aranya_quic")
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    bob = make_endpoint("bob")
    try:
        async def one(i: int) -> None:
            ep = aq.Endpoint(config_for(certs, "alice", log_callback=aq.forward_to_logging, log_level=aq.LogLevel.DEBUG,
                                        max_outbound_bytes_per_peer=1))
            for j in range(5):
                await ep.send_async(bob.local_addr, TEAM_A, "log", b"x")
            if i % 2:
                ep.close(wait=False)
            else:
                async with ep:
                    pass

        async def main() -> None:
            await bounded(asyncio.gather(*(one(i) for i in range(8))), "log endpoints")

        asyncio.run(main())
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    assert records


def test_event_overflow_with_pending_closes(make_endpoint: Make) -> None:
    alice = tiny(make_endpoint, max_events=1)
    bob, carol = make_endpoint("bob"), make_endpoint("carol")

    async def main() -> None:
        for p in (bob, carol):
            await bounded(alice.send_async(p.local_addr, TEAM_A, "k", b"x"))
            await bounded(p.receive_async())
        closes = [alice.close_async(f"127.0.0.1:{23000 + i}") for i in range(20)]
        closes += [alice.close_async(bob.local_addr), alice.close_async(carol.local_addr)]
        await bounded(asyncio.gather(*closes), "closes")
        await bounded(alice.shutdown_async(), "shutdown")
        evs = []
        async for ev in alice.events():
            evs.append(ev)
        assert evs and evs[-1].type == aq.EventType.SHUTDOWN_FINISHED, evs
        assert alice.event_queue_dropped > 0 or any(e.dropped_before for e in evs), evs

    asyncio.run(main())
