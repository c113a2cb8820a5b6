"""Hostile tests of the trust calls: revocations from other threads and from
inside receive loops while iteration / receive_async hold messages they
took ahead, wrong types and sizes, calls racing close, the connection
list while peers churn, identity rotations racing sends, and a log
callback that calls the trust calls. Every wait is bounded so that a hang
fails instead of hanging; no test checks how long anything takes."""

from __future__ import annotations

import array
import asyncio
import ipaddress
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import aranya_quic as aq
from support import REPO_ROOT, TEAM_A, TEAM_B, WAIT, recv

MakeEndpoint = Callable[..., aq.Endpoint]

SYNC_TYPE = 5


def numbered(tag: int, seq: int) -> bytes:
    return struct.pack(">BI", tag, seq)


def seq_of(data: bytes) -> int:
    return struct.unpack(">BI", data)[1]


def tag_of(data: bytes) -> int:
    return data[0]


def close_sender(ep: aq.Endpoint) -> None:
    """Close a sender whose stream the receiver reset: what it had sent on
    it unconfirmed is reported again by the close."""
    try:
        ep.close()
    except aq.Unconfirmed:
        pass


def pem(certs: Path, name: str) -> bytes:
    return (certs / name).read_bytes()


@pytest.fixture
def ids(certs: Path) -> dict[str, bytes]:
    return {n: aq.peer_id_from_pem(certs / f"{n}.crt") for n in ("alice", "bob", "carol", "stranger")}


def wait_queued(ep: aq.Endpoint, count: int) -> None:
    """Wait until ``count`` messages wait in the library's receive queue
    (bounded: a hang fails)."""
    deadline = time.monotonic() + WAIT
    while ep.stats().queue_messages < count:
        assert time.monotonic() < deadline, f"{count} messages never queued: {ep.stats()}"
        time.sleep(0.01)


def drain(ep: aq.Endpoint, timeout: float = 0.3) -> list[aq.Message]:
    """Everything that arrives until a receive waits ``timeout`` in vain
    (bounds a wait for messages that must not come)."""
    got = []
    while (m := ep.receive(timeout=timeout)) is not None:
        got.append(m)
    return got


@dataclass
class Seen:
    """A message as a consumer saw it, and whether the revocation had
    returned before the receive that gave it started."""

    after: bool
    msg: aq.Message


def check_revocation(
    seen: list[Seen],
    revoked: Callable[[aq.Message], bool],
    kept: dict[str, Callable[[aq.Message], bool]],
    n: int,
) -> None:
    late = [s.msg for s in seen if s.after and revoked(s.msg)]
    assert not late, f"{len(late)} revoked message(s) from receives started after the call returned: {late[:5]}"
    for what, keep in kept.items():
        got = [seq_of(s.msg.data) for s in seen if keep(s.msg)]
        assert got == list(range(n)), f"{what}: every message, in order, once (got {len(got)}: {got[:20]}...)"
    before = [seq_of(s.msg.data) for s in seen if revoked(s.msg)]
    assert before == sorted(before), f"revoked messages taken before the call, in order: {before}"


class Revoker(threading.Thread):
    """Once ``progress`` messages were taken, calls ``revoke`` and sets
    ``done`` after it returned."""

    def __init__(self, revoke: Callable[[], Any], at: int) -> None:
        super().__init__(daemon=True)
        self.revoke, self.at = revoke, at
        self.progress = 0
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + WAIT
        while self.progress < self.at and time.monotonic() < deadline:
            time.sleep(0.0005)
        try:
            self.result = self.revoke()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.done.set()


def queue_two_senders(alice: aq.Endpoint, bob: aq.Endpoint, carol: aq.Endpoint, n: int) -> None:
    for i in range(n):
        bob.send(alice.local_addr, TEAM_A, "b", numbered(1, i))
        carol.send(alice.local_addr, TEAM_A, "c", numbered(2, i))
    wait_queued(alice, 2 * n)


# ---------------------------------------------------------------------------
# set_trust and team_revoke while receive loops hold messages taken ahead
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("at", [1, 5, 70])
def test_set_trust_from_another_thread_during_async_for(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes], at: int
) -> None:
    alice, bob, carol = make_endpoint("alice"), make_endpoint("bob"), make_endpoint("carol")
    n = 150
    queue_two_senders(alice, bob, carol, n)
    ca = pem(certs, "ca.pem")
    rev = Revoker(lambda: alice.set_trust(ca, [ids["carol"]]), at)

    async def consume() -> list[Seen]:
        # ``after`` is read at the end of each body, i.e. before the next
        # receive starts.
        seen: list[Seen] = []
        rev.start()
        carols = 0
        after = rev.done.is_set()
        async for msg in alice:
            seen.append(Seen(after, msg))
            rev.progress += 1
            carols += msg.peer_id == ids["carol"]
            if carols == n:
                break
            await asyncio.sleep(0)  # let the revoker in
            after = rev.done.is_set()
        return seen

    seen = asyncio.run(asyncio.wait_for(consume(), WAIT * 2))
    rev.join(WAIT)
    assert rev.error is None, rev.error
    assert rev.result == [ids["bob"]]
    check_revocation(
        seen, lambda m: m.peer_id == ids["bob"], {"carol": lambda m: m.peer_id == ids["carol"]}, n
    )
    assert all(m.peer_id == ids["carol"] for m in drain(alice))


@pytest.mark.parametrize("way", ["iterator", "receive_async", "mixed"])
def test_set_trust_from_another_thread_during_receives(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes], way: str
) -> None:
    """The sync iterator on a thread, receive_async on a loop, or both
    plus receive/receive_batch in turn, with the revocation from yet
    another thread."""
    alice, bob, carol = make_endpoint("alice"), make_endpoint("bob"), make_endpoint("carol")
    n = 150
    queue_two_senders(alice, bob, carol, n)
    ca = pem(certs, "ca.pem")
    rev = Revoker(lambda: alice.set_trust(ca, [ids["carol"]]), 4)
    rev.start()
    seen: list[Seen] = []
    it = iter(alice)

    def carols() -> int:
        return sum(s.msg.peer_id == ids["carol"] for s in seen)

    async def one_async() -> list[aq.Message]:
        return [await asyncio.wait_for(alice.receive_async(), WAIT)]

    i = 0
    while carols() < n:
        after = rev.done.is_set()
        choice = way if way != "mixed" else ("iterator", "receive_async", "receive", "batch")[i % 4]
        i += 1
        if choice == "iterator":
            got = [next(it)]
        elif choice == "receive_async":
            got = asyncio.run(one_async())
        elif choice == "receive":
            m = alice.receive(timeout=WAIT)
            assert m is not None
            got = [m]
        else:
            got = alice.receive_batch(7, timeout=WAIT)
            assert got
        for m in got:
            seen.append(Seen(after, m))
        rev.progress += len(got)
    rev.join(WAIT)
    assert rev.error is None, rev.error
    assert rev.result == [ids["bob"]]
    check_revocation(
        seen, lambda m: m.peer_id == ids["bob"], {"carol": lambda m: m.peer_id == ids["carol"]}, n
    )


def test_set_trust_from_inside_the_async_loop(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    """The consumer revokes between two messages: the very next message
    must not be bob's."""
    alice, bob, carol = make_endpoint("alice"), make_endpoint("bob"), make_endpoint("carol")
    n = 100
    queue_two_senders(alice, bob, carol, n)
    ca = pem(certs, "ca.pem")

    async def consume() -> list[Seen]:
        seen: list[Seen] = []
        revoked = False
        async for msg in alice:
            seen.append(Seen(revoked, msg))
            if len(seen) == 3:
                assert alice.set_trust(ca, [ids["carol"]]) == [ids["bob"]]
                revoked = True
            if sum(s.msg.peer_id == ids["carol"] for s in seen) == n:
                break
        return seen

    seen = asyncio.run(asyncio.wait_for(consume(), WAIT * 2))
    check_revocation(
        seen, lambda m: m.peer_id == ids["bob"], {"carol": lambda m: m.peer_id == ids["carol"]}, n
    )


def test_set_trust_with_two_consumer_threads(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    """Two threads iterate, a third revokes: carol's all come out, each
    once; bob's never from a receive started after the return. Each
    consumer stops at one of carol's two end markers."""
    alice, bob, carol = make_endpoint("alice"), make_endpoint("bob"), make_endpoint("carol")
    n = 150
    for i in range(n):
        bob.send(alice.local_addr, TEAM_A, "b", numbered(1, i))
        carol.send(alice.local_addr, TEAM_A, "c", numbered(2, i))
    carol.send(alice.local_addr, TEAM_A, "c", numbered(9, n))
    carol.send(alice.local_addr, TEAM_A, "c", numbered(9, n + 1))
    wait_queued(alice, 2 * n + 2)
    ca = pem(certs, "ca.pem")
    rev = Revoker(lambda: alice.set_trust(ca, [ids["carol"]]), 10)
    results: list[list[Seen]] = [[], []]
    errors: list[BaseException] = []

    def consume(k: int) -> None:
        try:
            it = iter(alice)
            while True:
                after = rev.done.is_set()
                if k == 0:
                    m = next(it)
                else:
                    # Short waits, each starting with what the iterator
                    # took ahead (a wait already in the library does not
                    # see those: see the test of receive_async below).
                    deadline = time.monotonic() + WAIT
                    while (m := alice.receive(timeout=0.1)) is None:
                        assert time.monotonic() < deadline, "carol's messages stopped coming"
                results[k].append(Seen(after, m))
                rev.progress += 1
                if tag_of(m.data) == 9:
                    return
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=consume, args=(k,), daemon=True) for k in (0, 1)]
    rev.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
        assert not t.is_alive(), "a consumer hung"
    assert not errors, errors
    rev.join(WAIT)
    assert rev.result == [ids["bob"]]
    seen = results[0] + results[1]
    late = [s.msg for s in seen if s.after and s.msg.peer_id == ids["bob"]]
    assert not late, f"{len(late)} of bob's after set_trust returned"
    carols = sorted(seq_of(s.msg.data) for s in seen if s.msg.peer_id == ids["carol"])
    assert carols == list(range(n + 2)), "every message of carol, once"


@pytest.mark.parametrize("way", ["async_for", "iterator"])
def test_team_revoke_from_another_thread_during_receives(
    make_endpoint: MakeEndpoint, ids: dict[str, bytes], way: str
) -> None:
    alice = make_endpoint("alice", team_authorization=True)
    bob = make_endpoint("bob")
    alice.team_allow(ids["bob"], TEAM_A)
    alice.team_allow(ids["bob"], TEAM_B)
    n = 80
    for i in range(n):
        bob.send(alice.local_addr, TEAM_A, "a", numbered(1, i))
        bob.send(alice.local_addr, TEAM_B, "b", numbered(2, i))
        bob.send_sync(alice.local_addr, SYNC_TYPE, numbered(3, i))
    wait_queued(alice, 3 * n)
    rev = Revoker(lambda: alice.team_revoke(ids["bob"], TEAM_A), 5)

    def done(seen: list[Seen]) -> bool:
        return sum(tag_of(s.msg.data) == 2 for s in seen) == n and sum(tag_of(s.msg.data) == 3 for s in seen) == n

    seen: list[Seen] = []
    rev.start()
    if way == "async_for":

        async def consume() -> None:
            after = rev.done.is_set()
            async for msg in alice:
                seen.append(Seen(after, msg))
                rev.progress += 1
                if done(seen):
                    return
                await asyncio.sleep(0)
                after = rev.done.is_set()

        asyncio.run(asyncio.wait_for(consume(), WAIT * 2))
    else:
        it = iter(alice)
        while not done(seen):
            after = rev.done.is_set()
            seen.append(Seen(after, next(it)))
            rev.progress += 1
    rev.join(WAIT)
    assert rev.error is None, rev.error
    check_revocation(
        seen,
        lambda m: m.kind == aq.Kind.CHANNEL and m.team_id == TEAM_A,
        {"team B": lambda m: m.team_id == TEAM_B, "sync": lambda m: m.kind == aq.Kind.SYNC},
        n,
    )
    close_sender(bob)


def test_team_revoke_of_the_last_team_inside_the_loop(make_endpoint: MakeEndpoint, ids: dict[str, bytes]) -> None:
    """Bob's last team revoked from inside ``async for``: nothing more of
    bob, sync included; carol (same team) keeps all of hers."""
    alice = make_endpoint("alice", team_authorization=True)
    bob, carol = make_endpoint("bob"), make_endpoint("carol")
    alice.team_allow(ids["bob"], TEAM_A)
    alice.team_allow(ids["carol"], TEAM_A)
    n = 60
    for i in range(n):
        bob.send(alice.local_addr, TEAM_A, "a", numbered(1, i))
        bob.send_sync(alice.local_addr, SYNC_TYPE, numbered(3, i))
        carol.send(alice.local_addr, TEAM_A, "a", numbered(2, i))
        carol.send_sync(alice.local_addr, SYNC_TYPE, numbered(4, i))
    wait_queued(alice, 4 * n)

    async def consume() -> list[Seen]:
        seen: list[Seen] = []
        revoked = False
        async for msg in alice:
            seen.append(Seen(revoked, msg))
            if len(seen) == 4:
                assert alice.team_revoke(ids["bob"], TEAM_A) is True
                revoked = True
            if sum(s.msg.peer_id == ids["carol"] for s in seen) == 2 * n:
                break
        return seen

    seen = asyncio.run(asyncio.wait_for(consume(), WAIT * 2))
    check_revocation(
        seen,
        lambda m: m.peer_id == ids["bob"],
        {"carol's channel": lambda m: tag_of(m.data) == 2, "carol's sync": lambda m: tag_of(m.data) == 4},
        n,
    )
    close_sender(bob)


# ---------------------------------------------------------------------------
# A log callback that calls the trust calls
# ---------------------------------------------------------------------------

_LOG_CALLBACK_SCRIPT = textwrap.dedent(
    """
    import sys
    import aranya_quic as aq
    certs, action = sys.argv[1], sys.argv[2]
    TEAM_A, TEAM_B = bytes(range(32)), bytes(range(100, 132))
    box = {}

    def on_log(level, text):
        ep = box.pop("ep", None)  # once: the reaction may log again
        if ep is None or ("no longer allowed on team" not in text and "no longer trusted" not in text):
            if ep is not None:
                box["ep"] = ep
            return
        if action == "team_allow":
            ep.team_allow(box["bob"], TEAM_B)
        else:
            ep.set_trust(certs + "/ca.pem", [box["carol"]])

    def make(name, **kw):
        return aq.Endpoint(cert=f"{certs}/{name}.crt", key=f"{certs}/{name}.key",
                           ca=f"{certs}/ca.pem", bind_addr="127.0.0.1:0", **kw)

    alice = make("alice", team_authorization=(action == "team_allow"), log_callback=on_log,
                 log_level=aq.LogLevel.WARN)
    bob = make("bob")
    box["bob"] = aq.peer_id_from_pem(f"{certs}/bob.crt")
    box["carol"] = aq.peer_id_from_pem(f"{certs}/carol.crt")
    if action == "team_allow":
        alice.team_allow(box["bob"], TEAM_A)
    bob.send(alice.local_addr, TEAM_A, "l", b"open")
    assert alice.receive(timeout=10) is not None
    box["ep"] = alice
    if action == "team_allow":
        alice.team_revoke(box["bob"], TEAM_A)
    else:
        alice.set_trust(certs + "/ca.pem", [box["carol"]])
    print("returned", flush=True)
    for ep in (bob, alice):
        try:
            ep.close()
        except aq.Unconfirmed:
            pass
    """
)


@pytest.mark.parametrize("action", ["team_allow", "set_trust"])
def test_log_callback_may_call_the_trust_calls(certs: Path, action: str) -> None:
    """The library logs a revocation on the calling thread, from inside
    team_revoke / set_trust, and the header lets a log callback call the
    library. A callback that reacts with a trust call must not deadlock on
    the binding's own locks. Run in a child process: a deadlock there
    cannot hang this one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "bindings" / "python"), env.get("PYTHONPATH", "")]
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", _LOG_CALLBACK_SCRIPT, str(certs), action],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{action} from a log callback inside a revocation: deadlock (child killed after 20 s)")
    assert out.returncode == 0 and "returned" in out.stdout, out.stderr


# ---------------------------------------------------------------------------
# Wrong types and sizes
# ---------------------------------------------------------------------------


def test_ids_of_wrong_types_and_sizes(make_endpoint: MakeEndpoint, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice", team_authorization=True)
    bob = make_endpoint("bob")
    alice.team_allow(ids["bob"], TEAM_A)
    bad: list[Any] = [
        ids["bob"][:31],
        ids["bob"] + b"\x01",
        b"",
        ids["bob"].hex(),  # str, 64 characters
        ids["bob"].decode("latin-1"),  # str, 32 characters
        None,
        -1,
        2**256,
        list(ids["bob"]),
        3.5,
        memoryview(ids["bob"] * 2)[::2],  # 32 bytes, not contiguous: valid content
    ]
    for fn in (alice.team_allow, alice.team_revoke):
        for value in bad:
            for args in ((value, TEAM_B), (ids["bob"], value)):
                if isinstance(value, memoryview):
                    # Not contiguous but 32 bytes: taken as its bytes. It
                    # equals bob's id twice over sliced; just no crash.
                    try:
                        fn(*args)
                    except (aq.InvalidArgument, TypeError):
                        pass
                    continue
                with pytest.raises((aq.InvalidArgument, TypeError)) as ei:
                    fn(*args)
                assert str(ei.value), "the error says why"
    # Other bytes-likes of the right size work.
    alice.team_allow(bytearray(ids["bob"]), memoryview(TEAM_B))
    # Other buffer types are refused with a clear error, nothing changed.
    with pytest.raises(aq.InvalidArgument, match="32 bytes"):
        alice.team_allow(ids["bob"], array.array("B", TEAM_A[:31] + b"\x01"))
    # Nothing above changed team A for bob.
    bob.send(alice.local_addr, TEAM_A, "l", b"still")
    assert recv(alice).data == b"still"
    alice.team_revoke(memoryview(ids["bob"]), bytearray(TEAM_B))
    with pytest.raises(aq.NotAuthorizedError):
        for _ in range(1000):
            bob.send(alice.local_addr, TEAM_B, "l", b"b")
            m = alice.receive(timeout=0.5)
            # A send accepted before the revocation reached bob is never
            # delivered.
            assert m is None, m
    close_sender(bob)


def test_pins_and_pem_of_wrong_types_and_sizes(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes], tmp_path: Path
) -> None:
    alice, bob = make_endpoint("alice"), make_endpoint("bob")
    bob.send(alice.local_addr, TEAM_A, "l", b"up")
    recv(alice)
    ca = pem(certs, "ca.pem")
    carol_only = [ids["carol"]]  # would revoke bob if applied

    def refused(ca_arg: Any, pins: Any, *errors: type[BaseException]) -> None:
        with pytest.raises(errors or (aq.InvalidArgument, TypeError)) as ei:
            alice.set_trust(ca_arg, pins)
        assert str(ei.value), "the error says why"

    # Pins.
    refused(ca, [ids["carol"][:31]])
    refused(ca, [ids["carol"] + b"\0"])
    refused(ca, [ids["carol"], b""])
    refused(ca, [ids["carol"].hex()])
    refused(ca, [None])
    refused(ca, [-1])
    refused(ca, ids["carol"])  # one fingerprint, not a list of them
    refused(ca, ids["carol"].hex())
    refused(ca, None)
    refused(ca, 7)
    refused(ca, [ids["carol"]] * ((1 << 20) + 1))  # over the library's limit

    def broken_pins() -> Any:
        yield ids["carol"]
        raise RuntimeError("pins generator failed")

    refused(ca, broken_pins(), RuntimeError)
    # CA PEM in every wrong way.
    refused(b"", carol_only)
    refused(bytearray(), carol_only)
    refused(None, carol_only)
    refused(-1, carol_only)
    refused(12345, carol_only)
    refused(b"\0" * 4096, carol_only)
    refused(ca + b"-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n", carol_only)
    refused(pem(certs, "bob.key"), carol_only)
    refused(ca * ((16 << 20) // len(ca) + 1), carol_only)  # over 16 MiB
    refused(str(tmp_path / "missing.pem"), carol_only, OSError)
    refused(tmp_path / "missing.pem", carol_only, OSError)
    refused(str(tmp_path), carol_only, OSError)  # a directory
    refused("", carol_only, OSError)
    # Nothing of that changed anything: bob is still connected and trusted.
    assert alice.stats().connections_revoked == 0
    bob.send(alice.local_addr, TEAM_A, "l", b"still")
    assert recv(alice).data == b"still"

    # Every PEM form works; huge pin lists and empty ones are fine.
    many = [struct.pack(">I", i) + b"\xee" * 28 for i in range(100_000)]
    assert alice.set_trust(ca, many + [ids["bob"]]) == []
    assert alice.set_trust(ca.decode(), iter([ids["bob"]])) == []
    assert alice.set_trust("\n\n  " + ca.decode(), (ids["bob"],)) == []
    assert alice.set_trust(certs / "ca.pem", []) == []
    assert alice.set_trust(str(certs / "ca.pem"), ()) == []
    assert alice.set_trust(bytearray(ca), [bytearray(ids["bob"])]) == []
    assert alice.set_trust(memoryview(ca), [memoryview(ids["bob"])]) == []
    assert alice.set_trust(ca, {ids["bob"]: 1}) == []  # a dict's keys
    bob.send(alice.local_addr, TEAM_A, "l", b"after")
    assert recv(alice).data == b"after"
    assert alice.stats().connections_revoked == 0


def test_peer_id_and_identity_inputs(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    alice, bob = make_endpoint("alice"), make_endpoint("bob")
    crt, key = pem(certs, "alice.crt"), pem(certs, "alice.key")
    for bad in (b"", bytearray(), b"\0" * 100, key, crt[: len(crt) // 2], crt * ((16 << 20) // len(crt) + 1)):
        with pytest.raises(aq.InvalidArgument):
            aq.peer_id_from_pem(bad)
    for bad_type in (None, 5, -1, 2.0, [crt]):
        with pytest.raises(TypeError):
            aq.peer_id_from_pem(bad_type)
    with pytest.raises(OSError):
        aq.peer_id_from_pem("not a path and not PEM")
    # A chain gives its leaf; str, bytes, bytearray, memoryview, path.
    chain = pem(certs, "bob.crt") + pem(certs, "ca.pem")
    for form in (chain, chain.decode(), bytearray(chain), memoryview(chain), certs / "bob.crt"):
        assert aq.peer_id_from_pem(form) == ids["bob"]

    for c, k in ((key, crt), (crt, b""), (b"", key), (crt, pem(certs, "bob.key")), (None, key), (crt, 5)):
        with pytest.raises((aq.InvalidArgument, TypeError)):
            alice.set_identity(c, k)
    # Nothing changed: a new connection still shows alice.
    alice.send(bob.local_addr, TEAM_A, "l", b"x")
    assert recv(bob).peer_id == ids["alice"]


# ---------------------------------------------------------------------------
# Closed endpoints and races with close
# ---------------------------------------------------------------------------


def test_trust_calls_after_close(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice", team_authorization=True)
    alice.close()
    calls: list[Callable[[], Any]] = [
        lambda: alice.set_trust(certs / "ca.pem"),
        lambda: alice.set_identity(certs / "alice.crt", certs / "alice.key"),
        lambda: alice.team_allow(ids["bob"], TEAM_A),
        lambda: alice.team_revoke(ids["bob"], TEAM_A),
        lambda: alice.connections(),
    ]
    for _ in range(2):
        for call in calls:
            with pytest.raises(aq.Closed):
                call()
        alice.close()
    # Bad input on a closed endpoint: an error, no crash.
    with pytest.raises((aq.InvalidArgument, TypeError, aq.Closed)):
        alice.team_allow(b"short", TEAM_A)
    assert aq.peer_id_from_pem(certs / "bob.crt") == ids["bob"]


def test_trust_calls_race_close(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    """Each trust call in a loop on its own thread while the endpoint is
    closed from another: every call succeeds or raises Closed."""
    for _ in range(3):
        alice = make_endpoint("alice", team_authorization=True)
        bob = make_endpoint("bob")
        alice.team_allow(ids["bob"], TEAM_A)
        bob.send(alice.local_addr, TEAM_A, "l", b"up")
        recv(alice)
        ca, crt, key = pem(certs, "ca.pem"), pem(certs, "alice.crt"), pem(certs, "alice.key")
        calls: list[Callable[[], Any]] = [
            lambda: alice.set_trust(ca, [ids["bob"]]),
            lambda: alice.set_identity(crt, key),
            lambda: alice.team_allow(ids["bob"], TEAM_B),
            lambda: alice.team_revoke(ids["bob"], TEAM_B),
            lambda: alice.connections(),
        ]
        counts = [0] * len(calls)
        errors: list[BaseException] = []
        start = threading.Barrier(len(calls) + 1)

        def loop(k: int) -> None:
            start.wait()
            try:
                while True:
                    r = calls[k]()
                    counts[k] += 1
                    if k == 0:
                        assert r == [], f"bob is pinned: {r}"
            except aq.Closed:
                return
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in range(len(calls))]
        for t in threads:
            t.start()
        start.wait()
        while sum(counts) < 30:
            time.sleep(0.001)
        try:
            alice.close()
        except aq.Unconfirmed:
            pass
        for t in threads:
            t.join(WAIT)
            assert not t.is_alive(), "a trust call hung after close"
        assert not errors, errors


# ---------------------------------------------------------------------------
# The connection list while peers churn
# ---------------------------------------------------------------------------


def test_connections_while_peers_churn(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice")
    started = time.time() - 2
    known = {ids["bob"], ids["carol"]}
    stop = threading.Event()
    errors: list[BaseException] = []

    def receiver() -> None:
        k = 0
        try:
            while not stop.is_set():
                m = alice.receive(timeout=0.05)
                if m is not None:
                    k += 1
                    if k % 2 == 0:
                        alice.close_nowait(m.addr)
        except BaseException as e:
            errors.append(e)

    def churn() -> None:
        try:
            for i in range(10):
                p = aq.Endpoint(
                    cert=certs / f"{('bob', 'carol')[i % 2]}.crt",
                    key=certs / f"{('bob', 'carol')[i % 2]}.key",
                    ca=certs / "ca.pem",
                    bind_addr="127.0.0.1:0",
                    drain_timeout_ms=500,
                )
                p.send(alice.local_addr, TEAM_A, "churn", bytes([i]))
                p.close(wait=i % 3 != 0)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=receiver, daemon=True), threading.Thread(target=churn, daemon=True)]
    for t in threads:
        t.start()
    listed = rounds = 0
    while threads[1].is_alive() or rounds < 10:
        rounds += 1
        for c in alice.connections():
            listed += 1
            host, _, port = c.addr.rpartition(":")
            assert ipaddress.ip_address(host.strip("[]")).is_loopback and 0 < int(port) < 65536, c
            assert isinstance(c.peer_id, bytes) and len(c.peer_id) == 32 and c.peer_id in known, c
            assert c.congestion_control in ("reno", "bbr2"), c
            assert (c.bytes_in_flight is None) == (c.congestion_control == "reno"), c
            assert not c.dialed, c
            assert c.connected_at >= started and 0 <= c.connected_for < 3600, c
            assert min(c.smoothed_rtt, c.min_rtt, c.latest_rtt) >= 0, c
            if c.min_rtt and c.latest_rtt:
                assert c.min_rtt <= c.latest_rtt, c
            assert 0 <= c.packets_lost <= c.packets_sent, c
        time.sleep(0.002)
    threads[1].join(WAIT)
    stop.set()
    threads[0].join(WAIT)
    assert not errors, errors
    assert listed > 0


# ---------------------------------------------------------------------------
# Identity rotations racing sends
# ---------------------------------------------------------------------------


def test_set_identity_rotations_race_sends(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    """Bob renews his identity over and over (bob's and carol's
    certificates, and refused inputs) while he sends and reconnects;
    alice re-applies a trust set pinning both in a loop. Every message
    arrives, in order, from one of the two identities; nobody is revoked."""
    alice, bob = make_endpoint("alice"), make_endpoint("bob")
    ca = pem(certs, "ca.pem")
    both = [ids["bob"], ids["carol"]]
    assert alice.set_trust(ca, both) == []
    stop = threading.Event()
    errors: list[BaseException] = []
    rotations = [0]

    def rotate() -> None:
        forms = [(certs / "bob.crt", certs / "bob.key"), (pem(certs, "carol.crt"), pem(certs, "carol.key").decode())]
        try:
            while not stop.is_set():
                c, k = forms[rotations[0] % 2]
                bob.set_identity(c, k)
                with pytest.raises(aq.InvalidArgument):
                    bob.set_identity(c, certs / "stranger.key")
                rotations[0] += 1
                time.sleep(0)
        except BaseException as e:
            errors.append(e)

    def retrust() -> None:
        try:
            while not stop.is_set():
                r = alice.set_trust(ca, both)
                assert r == [], f"a still-trusted set revoked {r}"
                time.sleep(0.001)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=rotate, daemon=True), threading.Thread(target=retrust, daemon=True)]
    for t in threads:
        t.start()
    n = 120
    got: list[aq.Message] = []
    try:
        for i in range(n):
            bob.send(alice.local_addr, TEAM_A, "rot", numbered(1, i))
            if i % 15 == 14:
                bob.close_connection(alice.local_addr)  # the next send dials anew
            while (m := alice.receive(timeout=0)) is not None:
                got.append(m)
    finally:
        stop.set()
        for t in threads:
            t.join(WAIT)
    assert not errors, errors
    while len(got) < n:
        got.append(recv(alice))
    assert [seq_of(m.data) for m in got] == list(range(n)), "every message, in order, once"
    assert {m.peer_id for m in got} <= set(both)
    assert rotations[0] > 0
    assert alice.stats().connections_revoked == 0
    assert drain(alice) == []


# ---------------------------------------------------------------------------
# Messages taken ahead by one consumer while another waits
# ---------------------------------------------------------------------------


def test_a_waiting_receive_async_gets_messages_another_consumer_took_ahead(
    make_endpoint: MakeEndpoint,
) -> None:
    """A receive_async waiting on the descriptor, then another consumer (the
    iterator) takes a batch and returns one message of it, and stops: the
    rest waits inside the endpoint, the library's queue is empty, so the
    descriptor never turns readable again. The waiting receive must still
    get them (the messages are neither lost nor stuck behind a consumer
    that went away)."""
    alice, bob = make_endpoint("alice"), make_endpoint("bob")

    async def go() -> list[bytes]:
        waiting = asyncio.ensure_future(alice.receive_async())
        await asyncio.sleep(0.05)  # it now waits on the descriptor
        assert not waiting.done()
        # The loop is blocked while this runs: the waiter cannot take the
        # messages before the iterator does.
        for i in range(3):
            bob.send(alice.local_addr, TEAM_A, "l", numbered(1, i))
        wait_queued(alice, 3)
        first = next(iter(alice))
        assert alice.stats().queue_messages == 0, "the iterator took all three"
        try:
            second = await asyncio.wait_for(waiting, 5)
        except asyncio.TimeoutError:
            pytest.fail("receive_async kept waiting while two messages waited inside the endpoint")
        return [first.data, second.data]

    got = asyncio.run(asyncio.wait_for(go(), WAIT * 2))
    assert [seq_of(d) for d in got] == [0, 1]
    assert seq_of(recv(alice).data) == 2
