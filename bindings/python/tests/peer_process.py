"""The peer run in a second Python process by test_process.py.

Started with multiprocessing's ``spawn`` start method (never ``fork``: the
Go runtime inside libaranya_quic does not survive fork without exec), so
this module is imported fresh in the child, which loads the library itself.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from pathlib import Path

import aranya_quic as aq
from support import WAIT, config_for


def echo_peer(certs_dir: str, name: str, count: int, conn: Connection) -> None:
    """Receive ``count`` messages and answer each on its own channel/sync type.

    Reports to the parent through ``conn``: first ``("addr", local_addr)``,
    then ``("done", [(kind, addr, team_id, label, sync_type, data), ...])``
    or ``("error", text)``; then waits for the parent's ``"bye"`` before
    closing, so that every reply is read before the connection drains.
    """
    try:
        with aq.Endpoint(config_for(Path(certs_dir), name)) as ep:
            conn.send(("addr", ep.local_addr))
            seen = []
            for _ in range(count):
                m = ep.receive(timeout=WAIT)
                if m is None:
                    conn.send(("error", f"no message within {WAIT} s after {len(seen)}"))
                    return
                seen.append((int(m.kind), m.addr, m.team_id, m.label, m.sync_type, m.data))
                reply = b"echo:" + m.data
                if m.kind == aq.Kind.SYNC:
                    ep.send_sync(m.addr, m.sync_type, reply)
                else:
                    ep.send(m.addr, m.team_id, m.label, reply)
            conn.send(("done", seen))
            if conn.poll(WAIT):
                conn.recv()
    except BaseException as e:  # report anything to the parent instead of dying silently
        conn.send(("error", repr(e)))
        raise
