"""A peer in a second Python process (multiprocessing, ``spawn``)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import aranya_quic as aq
from peer_process import echo_peer
from support import TEAM_A, TEAM_B, WAIT, recv


def test_peer_in_spawned_process(alice: aq.Endpoint, certs: Path) -> None:
    # Never fork: the Go runtime is loaded in this process (BRIEF section 8).
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    sent = [
        ("chan", TEAM_A, "one", b"hello"),
        ("chan", TEAM_B, "two", b"world"),
        ("chan", TEAM_A, "one", b"again" * 1000),
        ("sync", 5, None, b"sync five"),
    ]
    proc = ctx.Process(target=echo_peer, args=(str(certs), "bob", len(sent), child), daemon=True)
    proc.start()
    try:
        assert parent.poll(WAIT * 2), "peer process did not start"
        tag, peer_addr = parent.recv()
        assert tag == "addr", peer_addr

        for kind, team_or_type, label, data in sent:
            if kind == "chan":
                alice.send(peer_addr, team_or_type, label, data)
            else:
                alice.send_sync(peer_addr, team_or_type, data)

        replies = [recv(alice) for _ in sent]
        assert parent.poll(WAIT), "peer process did not report"
        tag, seen = parent.recv()
        assert tag == "done", seen

        # What the peer received: content, metadata, our address.
        expect_seen = [
            (int(aq.Kind.CHANNEL), alice.local_addr, TEAM_A, "one", 0, b"hello"),
            (int(aq.Kind.CHANNEL), alice.local_addr, TEAM_B, "two", 0, b"world"),
            (int(aq.Kind.CHANNEL), alice.local_addr, TEAM_A, "one", 0, b"again" * 1000),
            (int(aq.Kind.SYNC), alice.local_addr, bytes(32), "", 5, b"sync five"),
        ]
        key = lambda t: (t[0], t[3], t[4], t[5])  # noqa: E731 - channels may interleave
        assert sorted(seen, key=key) == sorted(expect_seen, key=key)
        # Per channel, order is kept.
        assert [s[5] for s in seen if s[3] == "one"] == [b"hello", b"again" * 1000]

        # What we got back.
        got = sorted(
            ((int(r.kind), r.addr, r.team_id, r.label, r.sync_type, r.data) for r in replies), key=key
        )
        want = sorted(
            ((k, peer_addr, t, lab, st, b"echo:" + d) for k, _, t, lab, st, d in expect_seen), key=key
        )
        assert got == want
        parent.send("bye")
        proc.join(WAIT)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
