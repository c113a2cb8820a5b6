#!/usr/bin/env python3
"""Python peer of the three-language interop test (see run.py).

    peer.py NAME RUNDIR CERTDIR

The plan every peer follows (peer_c.c and the Rust interop_peer example
implement the same; keep the three in step):

- Peers are "c", "py", "rs" (index 0, 1, 2); NAME.crt/NAME.key in CERTDIR,
  all from CERTDIR/ca.pem.
- Bind 127.0.0.1:0, write the local address to RUNDIR/NAME.addr (written to
  a temporary file, then renamed), wait for the other two .addr files.
  RUNDIR/NAME.id holds each peer's id (hex SHA-256 of its DER certificate,
  written by the driver).
- Three streams from each sender to each receiver, N messages each:
  stream 0: team id TEAM_A, label "interop-a";
  stream 1: team id TEAM_B, label "interop/β" (non-ASCII UTF-8);
  stream 2: sync messages of type SYNC_TYPE.
  For i in 0..N, for each other peer (in index order), send stream 0, 1
  then 2's message i.
- Message i of stream s from sender f to receiver r is payload(f, r, s, i).
- Receive until N messages of each stream came from both others, checking
  each: sender address == the sender's .addr, peer id == its .id, kind,
  team id, label and sync type of the stream, and content == the next
  expected payload of that (sender, stream) (so order per channel).
- Then write RUNDIR/NAME.done and keep receiving until the other two .done
  files exist: any message then is an extra (failure). Exit 0 only if all
  was as expected, within the deadline (DEADLINE seconds from start).

Trust and team authorization, on top of that plan (the Rust peer needs
nothing more: its messages all go on the two allowed teams):

- The C peer runs with team authorization on. Before writing its .addr it
  allows the other two peers' ids (aranya_quic_peer_id_from_pem of their
  certificates, checked against their .id files) on TEAM_A and TEAM_B,
  and on nothing else.
- After its sends, this peer sends one message to the C peer on TEAM_X,
  allowed to nobody, and expects NotAuthorizedError; it must not arrive
  (the C peer fails on an unknown label), and the C peer ends with exactly
  one refused stream in its stats.
- Halfway through its sends, this peer replaces its trust with its current
  CA (set_trust, a no-op replacement): nothing may be revoked, every peer
  connected before is connected after, and the C peer, which fails on a
  lost connection or a second PEER_CONNECTED, sees no change.
- Once they received everything, before writing .done, the C peer and this
  peer list their connections: each other peer has one there, with its
  .addr and .id, and there is no connection to anyone else.

How each peer sends is its own choice; the receivers check the same things
whatever the sender used. The C peer sends with the non-blocking calls
(send_nowait, the batch and sync variants, retried after WOULD_BLOCK once
send_fd is readable), blocking sends interleaved on the same streams, and
ends with shutdown and its event; it addresses this peer as
"localhost:PORT", and this peer addresses the C peer the same way, so host
names are resolved on both sides while received messages still carry the
sender's IP address.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import aranya_quic as aq

PEERS = ["c", "py", "rs"]
N = 16
SYNC_TYPE = 7
TEAM_A = bytes((0xA0 + k) & 0xFF for k in range(32))
TEAM_B = bytes((0x5B ^ (k * 13)) & 0xFF for k in range(32))
LABELS = ["interop-a", "interop/β"]
TEAMS = [TEAM_A, TEAM_B]
# Allowed to nobody on the C peer, which runs with team authorization.
TEAM_X = bytes((0x33 + k * 7) & 0xFF for k in range(32))
STREAM_NAMES = ["a", "b", "s"]
DEADLINE = float(os.environ.get("INTEROP_DEADLINE", "30"))


def payload(f: int, r: int, s: int, i: int) -> bytes:
    """Message i of stream s from peer f to peer r."""
    if s == 2 and i == 0:
        return b""  # an empty sync message
    head = f"{PEERS[f]}>{PEERS[r]}/{STREAM_NAMES[s]}#{i}|".encode()
    n = (i * 997 + s * 131 + f * 17) % 1500
    if s == 0 and i == N - 1:
        n += 200_000  # one large message, many packets
    seed = i * 7 + s * 3 + f * 11 + r
    return head + bytes(((k * 31 + seed) & 0xFF) for k in range(n))


def wait_file(path: Path, deadline: float) -> str:
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {path}")
        time.sleep(0.02)
    return path.read_text().strip()


def check_connections(ep: aq.Endpoint, addrs: dict[int, str], ids: dict[int, bytes]) -> str | None:
    """None if the connection list holds a live connection to each other
    peer, with its address and id, and none to anyone else; else what is
    wrong."""
    conns = ep.connections()
    live = {p: 0 for p in addrs}
    for c in conns:
        p = next((q for q, a in addrs.items() if a == c.addr), None)
        if p is None:
            return f"connection to unknown address {c.addr} (peer id {c.peer_id.hex()})"
        if c.peer_id != ids[p]:
            return f"connection to {c.addr} ({PEERS[p]}): peer id {c.peer_id.hex()}, want {ids[p].hex()}"
        if not c.draining:
            live[p] += 1
    missing = [PEERS[p] for p, n in live.items() if n == 0]
    if missing:
        return f"no connection to {missing} in {[(c.addr, c.peer_id.hex()[:8]) for c in conns]}"
    return None


def main() -> int:
    name, rundir, certdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    deadline = time.monotonic() + DEADLINE
    me = PEERS.index(name)
    others = [p for p in range(3) if p != me]

    def fail(msg: str) -> int:
        print(f"peer {name}: FAIL: {msg}", file=sys.stderr, flush=True)
        return 1

    with aq.Endpoint(cert=certdir / f"{name}.crt", key=certdir / f"{name}.key",
                     ca=certdir / "ca.pem", bind_addr="127.0.0.1:0") as ep:
        tmp = rundir / f"{name}.addr.tmp"
        tmp.write_text(ep.local_addr + "\n")
        tmp.rename(rundir / f"{name}.addr")
        addrs = {p: wait_file(rundir / f"{PEERS[p]}.addr", deadline) for p in others}
        # The C peer by host name; the others by IP address.
        dsts = {p: ("localhost:" + a.rsplit(":", 1)[1]) if PEERS[p] == "c" else a for p, a in addrs.items()}
        ids = {p: bytes.fromhex(wait_file(rundir / f"{PEERS[p]}.id", deadline)) for p in others}
        for p in others:
            got = aq.peer_id_from_pem(certdir / f"{PEERS[p]}.crt")
            if got != ids[p]:
                return fail(f"peer_id_from_pem of {PEERS[p]}.crt is {got.hex()}, the driver's id is {ids[p].hex()}")
        by_addr = {a: p for p, a in addrs.items()}
        c_peer = PEERS.index("c")

        for i in range(N):
            if i == N // 2:
                # Mid-run, trust what was trusted: a replacement that must
                # leave every connection alone.
                # Peers, not connections, are compared: a simultaneous open
                # may drain a duplicate connection at any time.
                before = {(c.addr, c.peer_id) for c in ep.connections() if not c.draining}
                revoked = ep.set_trust(certdir / "ca.pem")
                after = {(c.addr, c.peer_id) for c in ep.connections() if not c.draining}
                if revoked or not before <= after or ep.stats().connections_revoked != 0:
                    return fail(f"set_trust with the same CA revoked {len(revoked)} peer(s); "
                                f"peers connected before {sorted(before)}, after {sorted(after)}")
            for r in others:
                for s in range(2):
                    ep.send(dsts[r], TEAMS[s], LABELS[s], payload(me, r, s, i))
                ep.send_sync(dsts[r], SYNC_TYPE, payload(me, r, 2, i))

        try:
            ep.send(dsts[c_peer], TEAM_X, "interop-x", b"py>c/x: not allowed")
            return fail("a send to the C peer on a team it does not allow us on succeeded")
        except aq.NotAuthorizedError:
            pass

        nxt = {(p, s): 0 for p in others for s in range(3)}
        received = 0
        want = len(nxt) * N
        done = False
        while True:
            if time.monotonic() > deadline:
                if done:
                    return fail(f"received all {want} messages, but the others did not finish before the deadline")
                missing = {f"{PEERS[p]}/{STREAM_NAMES[s]}": N - v for (p, s), v in nxt.items() if v < N}
                return fail(f"deadline passed; received {received}/{want}, missing {missing}")
            m = ep.receive(timeout=0.05)
            if m is None:
                if done and all((rundir / f"{PEERS[p]}.done").exists() for p in others):
                    break
                continue
            f = by_addr.get(m.addr)
            if f is None:
                return fail(f"message from unknown address {m.addr!r} (peers: {addrs})")
            if m.peer_id != ids[f]:
                return fail(f"message from {m.addr}: peer id {m.peer_id.hex()}, want {ids[f].hex()}")
            if m.kind == aq.Kind.CHANNEL:
                if m.label not in LABELS:
                    return fail(f"message from {PEERS[f]}: unknown label {m.label!r}")
                s = LABELS.index(m.label)
                if m.team_id != TEAMS[s]:
                    return fail(f"message from {PEERS[f]} label {m.label!r}: team id {m.team_id.hex()}, want {TEAMS[s].hex()}")
                if m.sync_type != 0:
                    return fail(f"channel message from {PEERS[f]} with sync type {m.sync_type}")
            elif m.kind == aq.Kind.SYNC:
                s = 2
                if m.sync_type != SYNC_TYPE:
                    return fail(f"sync message from {PEERS[f]}: type {m.sync_type}, want {SYNC_TYPE}")
                if m.label != "" or m.team_id != bytes(32):
                    return fail(f"sync message from {PEERS[f]}: label {m.label!r} team {m.team_id.hex()}, want empty/zero")
            else:
                return fail(f"message from {PEERS[f]}: unknown kind {m.kind}")
            i = nxt[(f, s)]
            if done or i >= N:
                return fail(f"extra message from {PEERS[f]} on stream {STREAM_NAMES[s]} ({len(m.data)} bytes)")
            exp = payload(f, me, s, i)
            if m.data != exp:
                at = next((k for k in range(min(len(exp), len(m.data))) if exp[k] != m.data[k]), min(len(exp), len(m.data)))
                return fail(f"from {PEERS[f]} stream {STREAM_NAMES[s]} message {i}: got {len(m.data)} bytes "
                            f"{m.data[:32]!r}, want {len(exp)} bytes {exp[:32]!r} (first difference at byte {at})")
            nxt[(f, s)] = i + 1
            received += 1
            if received == want:
                done = True
                # Before .done: the others stay up until every peer wrote it.
                wrong = check_connections(ep, addrs, ids)
                if wrong is not None:
                    return fail(wrong)
                (rundir / f"{name}.done").write_text("ok\n")
        st = ep.stats()
        if st.connections_revoked != 0 or st.messages_revoked != 0:
            return fail(f"stats: {st.connections_revoked} connections and {st.messages_revoked} messages revoked")
        print(f"peer {name}: ok: received {received} messages from {[PEERS[p] for p in others]}, "
              f"sent {st.messages_sent}; set_trust mid-run revoked nothing; the C peer refused team X; "
              f"connections to both listed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
