"""Trust at runtime (set_trust, set_identity), per-team authorization
(team_allow, team_revoke), the connection list and peer_id_from_pem."""

from __future__ import annotations

import hashlib
import ssl
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import aranya_quic as aq
import aranya_quic.endpoint as aq_endpoint
from support import TEAM_A, TEAM_B, WAIT, recv

MakeEndpoint = Callable[..., aq.Endpoint]


class Streamer(threading.Thread):
    """Sends numbered messages on one channel, one after another, until
    stopped or a send fails (the error is kept in ``error``)."""

    def __init__(self, ep: aq.Endpoint, addr: str, team: bytes, label: str) -> None:
        super().__init__(daemon=True)
        self.ep, self.addr, self.team, self.label = ep, addr, team, label
        self.sent = 0
        self.error: aq.AranyaQuicError | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.ep.send(self.addr, self.team, self.label, struct.pack(">Q", self.sent))
            except aq.AranyaQuicError as e:
                self.error = e
                return
            self.sent += 1
            self.stop.wait(0.001)  # gentle on a shared machine


def drain(ep: aq.Endpoint, quiet_rounds: int = 4, timeout: float = 0.25) -> list[aq.Message]:
    """Everything ``ep`` receives until ``quiet_rounds`` receives in a row
    got nothing (a bounded wait for messages that must not come)."""
    got: list[aq.Message] = []
    empty = 0
    while empty < quiet_rounds and len(got) < 100_000:
        m = ep.receive(timeout=timeout)
        if m is None:
            empty += 1
        else:
            got.append(m)
    return got


def send_until(
    send: Callable[[], None], error: type[aq.AranyaQuicError]
) -> tuple[int, list[aq.AranyaQuicError]]:
    """Call ``send`` until it raises ``error``; returns how many sends were
    accepted before and the other errors met on the way. A send refused by
    the peer may be accepted locally before the peer's refusal arrives."""
    accepted = 0
    others: list[aq.AranyaQuicError] = []
    stop = threading.Event()
    timer = threading.Timer(WAIT, stop.set)  # guards against a hang only
    timer.start()
    try:
        while not stop.is_set():
            try:
                send()
            except error:
                return accepted, others
            except aq.AranyaQuicError as e:
                others.append(e)
                continue
            accepted += 1
            stop.wait(0.01)
    finally:
        timer.cancel()
    pytest.fail(f"no {error.__name__} after {accepted} accepted sends; other errors: {others!r}")


def wait_stats(ep: aq.Endpoint, what: str, ok: Callable[[aq.Stats], bool]) -> None:
    """Wait until ``ok(ep.stats())``. A counter of the receiving side may
    move just after the sender learned the outcome."""
    done = threading.Event()
    timer = threading.Timer(WAIT, done.set)  # guards against a hang only
    timer.start()
    try:
        while not ok(ep.stats()):
            assert not done.wait(0.01), f"never {what}: {ep.stats()}"
    finally:
        timer.cancel()


def wait_queued(ep: aq.Endpoint, count: int) -> None:
    """Wait until ``count`` messages wait in the library's receive queue."""
    wait_stats(ep, f"{count} messages queued", lambda s: s.queue_messages >= count)


@pytest.fixture
def ids(certs: Path) -> dict[str, bytes]:
    return {n: aq.peer_id_from_pem(certs / f"{n}.crt") for n in ("alice", "bob", "carol", "stranger")}


def pem(certs: Path, name: str) -> bytes:
    return (certs / name).read_bytes()


def close_after_refusal(ep: aq.Endpoint) -> None:
    """Close an endpoint whose stream a peer reset as not authorized. The
    messages accepted on it before the reset that the peer had not yet
    confirmed with a receipt (delivered or not) are counted as unconfirmed,
    and the close may report them again."""
    try:
        ep.close()
    except aq.Unconfirmed:
        pass


# ---------------------------------------------------------------------------
# peer_id_from_pem
# ---------------------------------------------------------------------------


def test_peer_id_from_pem_is_the_id_peers_see(
    alice: aq.Endpoint, bob: aq.Endpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    assert len(ids["alice"]) == aq.PEER_ID_LEN == 32
    assert len(set(ids.values())) == 4
    # SHA-256 of the leaf's DER, computed independently.
    text = (certs / "alice.crt").read_text()
    end = "-----END CERTIFICATE-----"
    leaf = ssl.PEM_cert_to_DER_cert(text[: text.index(end) + len(end)])
    assert ids["alice"] == hashlib.sha256(leaf).digest()
    # Every PemSource form gives the same id.
    raw = pem(certs, "alice.crt")
    assert aq.peer_id_from_pem(raw) == aq.peer_id_from_pem(raw.decode()) == ids["alice"]
    assert aq.peer_id_from_pem(str(certs / "alice.crt")) == ids["alice"]
    alice.send(bob.local_addr, TEAM_A, "id", b"x")
    assert recv(bob).peer_id == ids["alice"]


# ---------------------------------------------------------------------------
# set_trust
# ---------------------------------------------------------------------------


def test_set_trust_revokes_a_streaming_peer(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    carol = make_endpoint("carol")
    carol.send(alice.local_addr, TEAM_A, "carol", b"before")
    assert recv(alice).peer_id == ids["carol"]
    carol_conn = [c.connected_at for c in alice.connections() if c.peer_id == ids["carol"]]
    assert len(carol_conn) == 1

    streamer = Streamer(bob, alice.local_addr, TEAM_A, "stream")
    streamer.start()
    try:
        for _ in range(20):
            assert recv(alice).peer_id == ids["bob"]
        # Only carol stays pinned: bob is revoked while it streams.
        revoked = alice.set_trust(pem(certs, "ca.pem"), pins=[ids["carol"]])
        late = drain(alice)
    finally:
        streamer.stop.set()
        streamer.join(WAIT)
    assert not streamer.is_alive()
    assert [m for m in late if m.peer_id == ids["bob"]] == []
    assert late == []
    assert revoked == [ids["bob"]]  # carol still verifies

    # bob's later sends dial again and are rejected.
    send_until(lambda: bob.send(alice.local_addr, TEAM_A, "stream", b"late"), aq.TlsError)
    with pytest.raises(aq.TlsError):
        bob.send(alice.local_addr, TEAM_A, "stream", b"later")
    assert drain(alice, quiet_rounds=2) == []

    stats = alice.stats()
    assert stats.connections_revoked == 1
    # carol's connection was not touched and still carries messages.
    assert [c.connected_at for c in alice.connections() if c.peer_id == ids["carol"]] == carol_conn
    carol.send(alice.local_addr, TEAM_A, "carol", b"after")
    m = recv(alice)
    assert (m.data, m.peer_id) == (b"after", ids["carol"])
    alice.send(carol.local_addr, TEAM_A, "carol", b"to carol")
    assert recv(carol).data == b"to carol"


def test_set_trust_new_ca_set_and_readmission(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    stranger = make_endpoint("stranger")  # from the other CA; it trusts alice's CA
    bob.send(alice.local_addr, TEAM_A, "x", b"1")
    assert recv(alice).peer_id == ids["bob"]
    with pytest.raises(aq.TlsError):
        stranger.send(alice.local_addr, TEAM_A, "x", b"rejected")

    # Trust only the other CA: bob's connection goes, stranger gets in.
    assert alice.set_trust(pem(certs, "other-ca.pem")) == [ids["bob"]]
    send_until(lambda: bob.send(alice.local_addr, TEAM_A, "x", b"out"), aq.TlsError)
    stranger.send(alice.local_addr, TEAM_A, "x", b"admitted")
    m = recv(alice)
    assert (m.data, m.peer_id) == (b"admitted", ids["stranger"])

    # Back to the first CA: bob is re-admitted and connects on its next send.
    assert alice.set_trust(pem(certs, "ca.pem")) == [ids["stranger"]]
    bob.send(alice.local_addr, TEAM_A, "x", b"again")
    m = recv(alice)
    assert (m.data, m.peer_id, m.addr) == (b"again", ids["bob"], bob.local_addr)
    alice.send(m.addr, TEAM_A, "x", b"reply")
    assert recv(bob).data == b"reply"
    assert drain(alice, quiet_rounds=2) == []  # nothing of stranger's after its revocation
    assert alice.stats().connections_revoked == 2


def test_config_pins_and_set_trust_pins(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice", pinned_peers=[ids["bob"]])
    bob = make_endpoint("bob")
    carol = make_endpoint("carol")
    bob.send(alice.local_addr, TEAM_A, "x", b"pinned")
    assert recv(alice).peer_id == ids["bob"]
    with pytest.raises(aq.TlsError):
        carol.send(alice.local_addr, TEAM_A, "x", b"not pinned")

    # The pins swap: bob out, carol in.
    assert alice.set_trust(certs / "ca.pem", pins=[ids["carol"]]) == [ids["bob"]]
    carol.send(alice.local_addr, TEAM_A, "x", b"now pinned")
    assert recv(alice).peer_id == ids["carol"]
    send_until(lambda: bob.send(alice.local_addr, TEAM_A, "x", b"out"), aq.TlsError)

    # No pins: the CA alone decides, both get in.
    assert alice.set_trust(certs / "ca.pem") == []
    bob.send(alice.local_addr, TEAM_A, "x", b"back")
    m = recv(alice)
    assert (m.data, m.peer_id) == (b"back", ids["bob"])


def test_set_trust_revokes_a_peer_without_a_connection(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    for i in range(5):
        bob.send(alice.local_addr, TEAM_A, "x", b"queued %d" % i)
    wait_queued(alice, 5)
    bob.close_connection(alice.local_addr)
    wait_stats(alice, "bob's connection gone", lambda s: s.open_connections == 0)
    assert alice.set_trust(pem(certs, "other-ca.pem")) == [ids["bob"]]
    stats = alice.stats()
    assert (stats.messages_revoked, stats.queue_messages) == (5, 0)
    assert alice.receive(timeout=0) is None


def test_set_trust_drops_messages_taken_ahead(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    """Iteration takes a batch from the library; what it has not returned
    yet of a revoked peer is dropped like the library's queued messages."""
    alice = make_endpoint("alice")
    alice.set_trust(pem(certs, "ca.pem") + pem(certs, "other-ca.pem"))
    bob = make_endpoint("bob")
    stranger = make_endpoint("stranger")
    for i in range(10):
        bob.send(alice.local_addr, TEAM_A, "b", b"bob %d" % i)
        stranger.send(alice.local_addr, TEAM_A, "s", b"stranger %d" % i)
    wait_queued(alice, 20)
    first = next(iter(alice))  # takes all 20, returns one
    assert alice.stats().queue_messages == 0
    assert alice.set_trust(pem(certs, "other-ca.pem")) == [ids["bob"]]
    rest = drain(alice, quiet_rounds=1, timeout=0)
    assert all(m.peer_id == ids["stranger"] for m in rest)
    from_stranger = [m.data for m in [first, *rest] if m.peer_id == ids["stranger"]]
    assert from_stranger == [b"stranger %d" % i for i in range(10)]


# ---------------------------------------------------------------------------
# set_identity
# ---------------------------------------------------------------------------


def test_set_identity_while_connected(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    bob.send(alice.local_addr, TEAM_A, "x", b"1")
    assert recv(alice).peer_id == ids["bob"]
    alice.send(bob.local_addr, TEAM_A, "x", b"2")
    assert recv(bob).peer_id == ids["alice"]

    alice.set_identity(certs / "carol.crt", pem(certs, "carol.key"))  # same CA

    # The existing connection keeps alice's old identity and keeps working.
    bob.send(alice.local_addr, TEAM_A, "x", b"3")
    assert recv(alice).data == b"3"
    alice.send(bob.local_addr, TEAM_A, "x", b"4")
    m = recv(bob)
    assert (m.data, m.peer_id) == (b"4", ids["alice"])
    assert [c.peer_id for c in bob.connections()] == [ids["alice"]]

    # A new connection sees the new identity.
    third = make_endpoint("bob")  # another endpoint (bob's certificate)
    third.send(alice.local_addr, TEAM_A, "x", b"5")
    m = recv(alice)
    assert (m.data, m.addr, m.peer_id) == (b"5", third.local_addr, ids["bob"])
    alice.send(m.addr, TEAM_A, "x", b"6")
    m = recv(third)
    assert (m.data, m.peer_id) == (b"6", ids["carol"])
    assert [c.peer_id for c in third.connections()] == [ids["carol"]]

    # So does bob once its connection is replaced.
    bob.close_connection(alice.local_addr)
    bob.send(alice.local_addr, TEAM_A, "x", b"7")
    m = recv(alice)
    alice.send(m.addr, TEAM_A, "x", b"8")
    m = recv(bob)
    assert (m.data, m.peer_id) == (b"8", ids["carol"])


# ---------------------------------------------------------------------------
# Team authorization
# ---------------------------------------------------------------------------


def test_team_authorization(make_endpoint: MakeEndpoint, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice", team_authorization=True)
    bob = make_endpoint("bob")
    addr = alice.local_addr
    alice.team_allow(ids["bob"], TEAM_A)
    alice.team_allow(ids["bob"], TEAM_A)  # again: nothing changes

    bob.send(addr, TEAM_A, "a", b"a1")
    m = recv(alice)
    assert (m.data, m.team_id, m.peer_id) == (b"a1", TEAM_A, ids["bob"])

    # Team B is refused (a new stream's first send waits for the verdict);
    # nothing of it arrives.
    with pytest.raises(aq.NotAuthorizedError):
        bob.send(addr, TEAM_B, "b", b"b")
    wait_stats(alice, "a stream refused", lambda s: s.streams_refused >= 1)
    # Allowed on a team, bob may sync; team A goes on.
    bob.send_sync(addr, 1, b"sync")
    bob.send(addr, TEAM_A, "a", b"a2")
    got = drain(alice, quiet_rounds=2)
    assert sorted((m.kind, m.team_id, m.data) for m in got) == sorted(
        [(aq.Kind.SYNC, bytes(32), b"sync"), (aq.Kind.CHANNEL, TEAM_A, b"a2")]
    )

    # Revoke team A while bob streams on it.
    streamer = Streamer(bob, addr, TEAM_A, "a")
    streamer.start()
    try:
        for _ in range(10):
            m = recv(alice)
            assert (m.team_id, m.peer_id) == (TEAM_A, ids["bob"])
        assert alice.team_revoke(ids["bob"], TEAM_A) is True  # bob's only team
        late = drain(alice)
        streamer.join(WAIT)
    finally:
        streamer.stop.set()
        streamer.join(WAIT)
    assert late == []  # nothing of the revoked team once team_revoke returned
    assert isinstance(streamer.error, aq.NotAuthorizedError), streamer.error
    send_until(lambda: bob.send(addr, TEAM_A, "a", b"after"), aq.NotAuthorizedError)
    # Team A was bob's last team: its sync streams are refused too, the one
    # open since before and a new one.
    send_until(lambda: bob.send_sync(addr, 1, b"sync after"), aq.NotAuthorizedError)
    with pytest.raises(aq.NotAuthorizedError):
        bob.send_sync(addr, 2, b"sync after")
    assert drain(alice, quiet_rounds=2) == []
    # Not allowed any more: nothing to do, and no last team taken.
    assert alice.team_revoke(ids["bob"], TEAM_A) is False

    # Allowed again: a new stream on team A is accepted.
    alice.team_allow(ids["bob"], TEAM_A)
    bob.send(addr, TEAM_A, "a", b"welcome back")
    m = recv(alice)
    assert (m.data, m.team_id) == (b"welcome back", TEAM_A)
    wait_stats(alice, "3 streams refused", lambda s: s.streams_refused >= 3)
    close_after_refusal(bob)


def test_team_revoke_reports_the_last_team(make_endpoint: MakeEndpoint, ids: dict[str, bytes]) -> None:
    """team_revoke returns the library's verdict: True only when the pair
    was allowed and was the peer's last team."""
    alice = make_endpoint("alice", team_authorization=True)
    bob, carol = ids["bob"], ids["carol"]
    alice.team_allow(bob, TEAM_A)
    alice.team_allow(bob, TEAM_B)
    alice.team_allow(carol, TEAM_A)
    assert alice.team_revoke(bob, TEAM_A) is False  # bob keeps team B
    assert alice.team_revoke(bob, TEAM_A) is False  # no longer allowed
    assert alice.team_revoke(carol, TEAM_B) is False  # never allowed
    assert alice.team_revoke(bob, TEAM_B) is True  # bob's last team
    assert alice.team_revoke(bob, TEAM_B) is False  # nothing left to revoke
    # Another peer's teams do not count: carol's only team is her last.
    alice.team_allow(bob, TEAM_A)
    assert alice.team_revoke(carol, TEAM_A) is True
    assert alice.team_revoke(bob, TEAM_A) is True


def test_team_revoke_drops_messages_taken_ahead(make_endpoint: MakeEndpoint, ids: dict[str, bytes]) -> None:
    alice = make_endpoint("alice", team_authorization=True)
    bob = make_endpoint("bob")
    addr = alice.local_addr
    alice.team_allow(ids["bob"], TEAM_A)
    alice.team_allow(ids["bob"], TEAM_B)

    def take_ahead(revoke: bytes, count: int, last: bool) -> list[aq.Message]:
        """Wait for ``count`` queued messages, take them in one batch, revoke
        team ``revoke`` (``last``: bob's last team): what comes out (the
        first one went out before)."""
        wait_queued(alice, count)
        first = next(iter(alice))
        assert alice.team_revoke(ids["bob"], revoke) is last
        return [first, *drain(alice, quiet_rounds=1, timeout=0)]

    for i in range(10):
        bob.send(addr, TEAM_A, "a", b"a %d" % i)
        bob.send(addr, TEAM_B, "b", b"b %d" % i)
        bob.send_sync(addr, 1, b"s %d" % i)
    got = take_ahead(TEAM_A, 30, last=False)
    # Team A's messages go, except one that came out first; bob keeps team
    # B, so its sync messages stay.
    assert sum(m.team_id == TEAM_A for m in got[1:]) == 0
    assert [m.data for m in got if m.team_id == TEAM_B] == [b"b %d" % i for i in range(10)]
    assert [m.data for m in got if m.is_sync] == [b"s %d" % i for i in range(10)]

    for i in range(10):
        bob.send(addr, TEAM_B, "b", b"b2 %d" % i)
        bob.send_sync(addr, 1, b"s2 %d" % i)
    got = take_ahead(TEAM_B, 20, last=True)
    # Team B was bob's last team: its sync messages go too.
    assert got[1:] == []
    close_after_refusal(bob)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

CORRUPT_PEM = b"-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n"


def test_bad_input_to_every_new_call_changes_nothing(
    make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]
) -> None:
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    authz = make_endpoint("carol", team_authorization=True)
    ca = pem(certs, "ca.pem")
    bob.send(alice.local_addr, TEAM_A, "x", b"before")
    assert recv(alice).data == b"before"

    def invalid(call: Callable[[], object], function: str) -> None:
        with pytest.raises(aq.InvalidArgument) as info:
            call()
        assert info.value.function == function
        assert str(info.value)

    set_trust = "aranya_quic_set_trust"
    invalid(lambda: alice.set_trust(b""), set_trust)
    invalid(lambda: alice.set_trust(b"garbage"), set_trust)
    invalid(lambda: alice.set_trust(CORRUPT_PEM), set_trust)
    invalid(lambda: alice.set_trust(ca + CORRUPT_PEM), set_trust)  # every block must parse
    invalid(lambda: alice.set_trust(pem(certs, "alice.key")), set_trust)  # no certificate
    invalid(lambda: alice.set_trust(ca, pins=[b"short"]), set_trust)
    invalid(lambda: alice.set_trust(ca, pins=[ids["carol"], ids["bob"] + b"x"]), set_trust)
    with pytest.raises(TypeError):
        alice.set_trust(ca, pins=ids["bob"])  # type: ignore[arg-type]

    set_identity = "aranya_quic_set_identity"
    key = pem(certs, "alice.key")
    invalid(lambda: alice.set_identity(b"", key), set_identity)
    invalid(lambda: alice.set_identity(pem(certs, "alice.crt"), b""), set_identity)
    invalid(lambda: alice.set_identity(CORRUPT_PEM, key), set_identity)
    invalid(lambda: alice.set_identity(pem(certs, "carol.crt"), key), set_identity)  # key does not match

    allow, revoke = "aranya_quic_team_allow", "aranya_quic_team_revoke"
    for ep in (alice, authz):
        for fn, function in ((ep.team_allow, allow), (ep.team_revoke, revoke)):
            invalid(lambda: fn(b"short", TEAM_A), function)
            invalid(lambda: fn(ids["bob"] + b"x", TEAM_A), function)
            invalid(lambda: fn(ids["bob"], TEAM_A[:31]), function)
            invalid(lambda: fn(None, TEAM_A), function)  # type: ignore[arg-type]
    # All-zero ids are the library's check.
    for fn, function in ((authz.team_allow, allow), (authz.team_revoke, revoke)):
        invalid(lambda: fn(bytes(32), TEAM_A), function)
        invalid(lambda: fn(ids["bob"], bytes(32)), function)
    # Team authorization is off on alice.
    invalid(lambda: alice.team_allow(ids["bob"], TEAM_A), allow)
    invalid(lambda: alice.team_revoke(ids["bob"], TEAM_A), revoke)

    from_pem = "aranya_quic_peer_id_from_pem"
    invalid(lambda: aq.peer_id_from_pem(b""), from_pem)
    invalid(lambda: aq.peer_id_from_pem(b"garbage"), from_pem)
    invalid(lambda: aq.peer_id_from_pem(CORRUPT_PEM), from_pem)
    invalid(lambda: aq.peer_id_from_pem(key), from_pem)

    # Nothing changed: the same trust, the same identity, messages flow.
    assert alice.stats().connections_revoked == 0
    bob.send(alice.local_addr, TEAM_A, "x", b"after")
    assert recv(alice).data == b"after"
    bob.close_connection(alice.local_addr)
    bob.send(alice.local_addr, TEAM_A, "x", b"new connection")
    m = recv(alice)
    assert (m.data, m.peer_id) == (b"new connection", ids["bob"])
    alice.send(m.addr, TEAM_A, "x", b"reply")
    assert recv(bob).peer_id == ids["alice"]
    # authz allows nobody: its refusals are unchanged by the failed calls.
    with pytest.raises(aq.NotAuthorizedError):
        bob.send(authz.local_addr, TEAM_A, "x", b"no")


def test_new_calls_on_a_closed_endpoint(make_endpoint: MakeEndpoint, certs: Path, ids: dict[str, bytes]) -> None:
    ep = make_endpoint("alice", team_authorization=True)
    ep.close()
    for call in (
        lambda: ep.set_trust(pem(certs, "ca.pem")),
        lambda: ep.set_identity(certs / "alice.crt", certs / "alice.key"),
        lambda: ep.team_allow(ids["bob"], TEAM_A),
        lambda: ep.team_revoke(ids["bob"], TEAM_A),
        lambda: ep.connections(),
    ):
        with pytest.raises(aq.Closed):
            call()


# ---------------------------------------------------------------------------
# The connection list
# ---------------------------------------------------------------------------


def test_connections_after_an_exchange(
    alice: aq.Endpoint, bob: aq.Endpoint, ids: dict[str, bytes]
) -> None:
    assert alice.connections() == []
    to_bob = [b"x" * (10 + i) for i in range(5)]
    to_alice = [b"y" * (20 + i) for i in range(3)]
    for msg in to_bob:
        alice.send(bob.local_addr, TEAM_A, "c", msg)
    for _ in to_bob:
        recv(bob)
    for msg in to_alice:
        bob.send(alice.local_addr, TEAM_A, "c", msg)
    for _ in to_alice:
        recv(alice)

    for ep, peer, peer_name, dialed, sent, received in (
        (alice, bob, "bob", True, to_bob, to_alice),
        (bob, alice, "alice", False, to_alice, to_bob),
    ):
        conns = ep.connections()
        assert len(conns) == 1
        c = conns[0]
        assert isinstance(c, aq.ConnectionInfo)
        assert c.addr == peer.local_addr
        assert c.peer_id == ids[peer_name]
        assert (c.dialed, c.draining) == (dialed, False)
        assert c.smoothed_rtt > 0 and c.min_rtt > 0 and c.latest_rtt > 0
        assert c.congestion_control == ep.stats().congestion_control
        assert (c.bytes_in_flight is None) == (c.congestion_control == "reno")
        assert c.congestion_window > 0
        assert c.packets_sent > 0 and c.packets_received > 0 and c.packets_lost >= 0
        assert (c.messages_sent, c.bytes_sent) == (len(sent), sum(map(len, sent)))
        assert (c.messages_received, c.bytes_received) == (len(received), sum(map(len, received)))
        assert c.connected_at > 0 and c.connected_for >= 0


def test_connections_reno_has_no_bytes_in_flight(make_endpoint: MakeEndpoint) -> None:
    alice = make_endpoint("alice", congestion_control=aq.CongestionControl.RENO)
    bob = make_endpoint("bob", congestion_control=aq.CongestionControl.RENO)
    alice.send(bob.local_addr, TEAM_A, "c", b"m")
    recv(bob)
    (c,) = alice.connections()
    assert c.congestion_control == "reno"
    assert c.bytes_in_flight is None


def test_connections_grows_its_array(
    make_endpoint: MakeEndpoint, ids: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aq_endpoint, "_CONNECTIONS_INITIAL", 1)
    alice = make_endpoint("alice")
    bob = make_endpoint("bob")
    carol = make_endpoint("carol")
    for peer in (bob, carol):
        alice.send(peer.local_addr, TEAM_A, "c", b"m")
        recv(peer)
    conns = alice.connections()
    assert sorted((c.addr, c.peer_id) for c in conns) == sorted(
        [(bob.local_addr, ids["bob"]), (carol.local_addr, ids["carol"])]
    )
