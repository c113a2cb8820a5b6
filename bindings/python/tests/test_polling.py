"""The pollable receive fd: selectors, select and asyncio (add_reader and
Endpoint.receive_async)."""

from __future__ import annotations

import asyncio
import os
import selectors
import threading
from collections.abc import Callable

import pytest

import aranya_quic as aq
from support import TEAM_A, WAIT


def test_fileno_is_stable(bob: aq.Endpoint) -> None:
    fd = bob.fileno()
    assert isinstance(fd, int) and fd >= 0
    assert bob.fileno() == fd


def test_selectors(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    sel = selectors.DefaultSelector()
    sel.register(bob, selectors.EVENT_READ)  # uses bob.fileno()
    try:
        assert sel.select(timeout=0) == []  # empty queue: not readable
        payloads = [f"sel {i}".encode() for i in range(5)]
        for p in payloads:
            alice.send(bob.local_addr, TEAM_A, "sel", p)
        got: list[bytes] = []
        while len(got) < len(payloads):
            events = sel.select(timeout=WAIT)
            assert events, "fd never became readable"
            (key, mask), = events
            assert key.fileobj is bob and mask & selectors.EVENT_READ
            while (m := bob.receive(timeout=0)) is not None:  # drain until empty
                got.append(m.data)
        assert got == payloads
        assert sel.select(timeout=0) == []  # drained: no longer readable
    finally:
        sel.unregister(bob)  # before close, which closes the fd
        sel.close()


def test_fd_stays_readable_until_message_taken(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    sel = selectors.DefaultSelector()
    sel.register(bob.fileno(), selectors.EVENT_READ)
    try:
        alice.send(bob.local_addr, TEAM_A, "big", bytes(200_000))  # over the first buffer
        assert sel.select(timeout=WAIT)
        assert sel.select(timeout=0)  # still readable: nothing taken yet
        m = bob.receive(timeout=0)
        assert m is not None and len(m.data) == 200_000
        assert sel.select(timeout=0) == []
    finally:
        sel.unregister(bob.fileno())
        sel.close()


def test_asyncio_add_reader(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    payloads = [f"async {i}".encode() for i in range(10)]

    async def main() -> list[aq.Message]:
        loop = asyncio.get_running_loop()
        got: list[aq.Message] = []
        done = asyncio.Event()

        def on_readable() -> None:
            while (m := bob.receive(timeout=0)) is not None:
                got.append(m)
            if len(got) >= len(payloads):
                done.set()

        loop.add_reader(bob.fileno(), on_readable)
        try:
            # Send from a worker thread while the loop waits on the fd.
            def send_all() -> None:
                for p in payloads:
                    alice.send(bob.local_addr, TEAM_A, "aio", p)

            await loop.run_in_executor(None, send_all)
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            loop.remove_reader(bob.fileno())
        return got

    got = asyncio.run(main())
    assert [m.data for m in got] == payloads
    assert all(m.label == "aio" and m.addr == alice.local_addr for m in got)


def test_receive_async(alice: aq.Endpoint, bob: aq.Endpoint) -> None:
    async def main() -> tuple[list[bytes], int]:
        loop = asyncio.get_running_loop()
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # the loop stays free while receive_async waits
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        got: list[bytes] = []
        sender = loop.run_in_executor(
            None, lambda: [alice.send_sync(bob.local_addr, 9, bytes([i])) for i in range(5)]
        )
        for _ in range(5):
            m = await asyncio.wait_for(bob.receive_async(), WAIT)
            assert m.kind == aq.Kind.SYNC and m.sync_type == 9
            got.append(m.data)
        await sender
        stop.set()
        await tick_task
        return got, ticks

    got, ticks = asyncio.run(main())
    assert got == [bytes([i]) for i in range(5)]
    assert ticks > 0


def test_receive_async_cancel(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    ep = make_endpoint("carol")

    async def main() -> None:
        task = asyncio.create_task(ep.receive_async())
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        # The reader was removed: a fresh registration works.
        loop = asyncio.get_running_loop()
        loop.add_reader(ep.fileno(), lambda: None)
        loop.remove_reader(ep.fileno())

    asyncio.run(main())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("closer", ["loop", "thread"])
def test_receive_async_raises_closed_when_endpoint_closed(
    make_endpoint: Callable[..., aq.Endpoint], closer: str
) -> None:
    """Closing the endpoint while receive_async waits ends the wait promptly
    with Closed (the endpoint is closed by a task on the loop, or by another
    thread), and leaves no descriptor open."""
    ep = make_endpoint("carol")
    fds_before = _open_fds()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(ep.receive_async())
        await asyncio.sleep(0.1)  # it is waiting on the fd now
        assert not task.done()
        if closer == "loop":
            ep.close()
        else:
            t = threading.Thread(target=ep.close)
            t.start()
            await loop.run_in_executor(None, t.join)
        with pytest.raises(aq.Closed):
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert ep.closed
    assert _open_fds() <= fds_before
    with pytest.raises(aq.Closed):  # and a new wait fails at once
        asyncio.run(asyncio.wait_for(ep.receive_async(), 5))


def test_receive_async_several_waiters_all_closed(make_endpoint: Callable[..., aq.Endpoint]) -> None:
    """Waiters on different loops (threads) all end with Closed."""
    ep = make_endpoint("carol")
    results: list[BaseException | object] = []
    started = threading.Barrier(3)

    def waiter() -> None:
        async def run() -> object:
            fut = asyncio.ensure_future(ep.receive_async())
            await asyncio.sleep(0)
            started.wait(5)
            return await asyncio.wait_for(fut, 5)

        try:
            results.append(asyncio.run(run()))
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=waiter) for _ in range(2)]
    for t in threads:
        t.start()
    started.wait(5)
    threading.Event().wait(0.1)
    ep.close()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 2 and all(isinstance(r, aq.Closed) for r in results), results
