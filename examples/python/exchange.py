#!/usr/bin/env python3
"""Two Aranya QUIC endpoints in one process exchange a few messages.

Run from the repo root after `make lib`:

    go run ./examples/certgen -out build/certs alice bob
    PYTHONPATH=bindings/python python3 examples/python/exchange.py build/certs

(set ARANYA_QUIC_LIB=/path/to/libaranya_quic.so if the library is not in
build/). Alice sends on two channels and a sync type; Bob answers every
message on the channel it came from; both print what they receive.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aranya_quic as aq

TEAM = bytes.fromhex("aa" * 32)  # an Aranya team (graph) id: 32 bytes


def endpoint(certs: Path, name: str) -> aq.Endpoint:
    return aq.Endpoint(
        cert=certs / f"{name}.crt",
        key=certs / f"{name}.key",
        ca=certs / "ca.pem",
        bind_addr="127.0.0.1:0",  # any free port; see local_addr
    )


def show(who: str, m: aq.Message) -> None:
    where = f"sync type {m.sync_type}" if m.is_sync else f"team {m.team_id.hex()[:8]}.. label {m.label!r}"
    print(f"{who} <- {m.addr} [{where}]: {m.data.decode()}")


def main() -> int:
    certs = Path(sys.argv[1] if len(sys.argv) > 1 else "build/certs")
    with endpoint(certs, "alice") as alice, endpoint(certs, "bob") as bob:
        print(f"alice on {alice.local_addr}, bob on {bob.local_addr}")

        alice.send(bob.local_addr, TEAM, "chat", b"hi bob")
        alice.send(bob.local_addr, TEAM, "status", b"alice is online")
        alice.send_sync(bob.local_addr, 1, b"sync request")

        for _ in range(3):
            m = bob.receive(timeout=10)
            if m is None:
                print("bob: nothing received", file=sys.stderr)
                return 1
            show("bob", m)
            reply = b"got: " + m.data
            if m.is_sync:
                bob.send_sync(m.addr, m.sync_type, reply)  # reply to the sender's address
            else:
                bob.send(m.addr, m.team_id, m.label, reply)

        for _ in range(3):
            m = alice.receive(timeout=10)
            if m is None:
                print("alice: nothing received", file=sys.stderr)
                return 1
            show("alice", m)

        s = alice.stats()
        print(f"alice sent {s.messages_sent} messages ({s.bytes_sent} bytes) on {s.open_connections} connection(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
