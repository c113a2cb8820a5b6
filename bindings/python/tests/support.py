"""Helpers shared by the tests (imported as a plain module: the tests
directory is on sys.path, also in the processes the spawn test starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aranya_quic as aq

REPO_ROOT = Path(__file__).resolve().parents[3]
CERTS_ENV = "ARANYA_QUIC_TEST_CERTS"
NAMES = ("alice", "bob", "carol")

#: Generous bound on waits that must succeed; it only guards against hangs
#: (no test asserts how long anything takes).
WAIT = 15.0

TEAM_A = bytes(range(32))
TEAM_B = bytes(range(100, 132))


def config_for(certs: Path, name: str, **kwargs: Any) -> aq.Config:
    """A loopback config for NAME with short drain/handshake bounds for the tests."""
    kwargs.setdefault("drain_timeout_ms", 1000)
    kwargs.setdefault("handshake_timeout_ms", 5000)
    kwargs.setdefault("send_timeout_ms", 10000)
    return aq.Config(
        cert=certs / f"{name}.crt",
        key=certs / f"{name}.key",
        ca=certs / "ca.pem",
        bind_addr=kwargs.pop("bind_addr", "127.0.0.1:0"),
        **kwargs,
    )


def recv(ep: aq.Endpoint, timeout: float = WAIT) -> aq.Message:
    """Receive one message, failing the test (instead of hanging) if none comes."""
    msg = ep.receive(timeout=timeout)
    assert msg is not None, f"no message within {timeout} s"
    return msg
