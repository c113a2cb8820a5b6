#!/usr/bin/env python3
"""Three-language interop test: a C, a Python and a Rust peer, three processes.

    run.py --c PEER_C (--rust PEER_RS | --rust-workspace bindings/rust)
           [--workdir DIR] [--timeout SECONDS]

(`make test-interop` builds the C and Rust peers and runs this.) Makes
certificates for "c", "py" and "rs" from one CA with examples/certgen,
writes each peer's id (SHA-256 of its DER certificate) to DIR/NAME.id,
starts the three peers, and fails if any peer fails or they do not all
finish within the timeout. Every peer sends to both others on two channels
(two team ids, two labels) and one sync type, and checks everything it
received; the plan is in peer.py's docstring. The C peer sends with the
non-blocking calls and checks the events it gets (peer.py's docstring says
how), so the other two check the order of what they send across languages.
The C peer also runs with team authorization (allowing the others on the
two teams of the exchange only, which the Python peer checks by a send on a
third team that must be refused), the Python peer replaces its trust with
the same CA mid-run without losing a connection, and both list their
connections once they received everything.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PEERS = ["c", "py", "rs"]


def leaf_id(crt: Path) -> str:
    """Hex SHA-256 of the first (leaf) certificate of a PEM chain."""
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", crt.read_bytes(), re.S)
    if not m:
        raise SystemExit(f"no certificate in {crt}")
    return hashlib.sha256(base64.b64decode(b"".join(m.group(1).split()))).hexdigest()


def build_rust_peer(workspace: Path) -> Path:
    """cargo build --example interop_peer; returns the executable's path
    (wherever the target directory is). ARANYA_QUIC_LIB_DIR, if set, tells
    aranya-quic-sys where the library is."""
    out = subprocess.run(
        ["cargo", "build", "--locked", "--quiet", "--example", "interop_peer", "--message-format=json-render-diagnostics"],
        cwd=workspace, check=True, timeout=600, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "interop_peer":
            return Path(msg["executable"])
    raise SystemExit("cargo built no interop_peer executable")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--c", required=True, help="the C peer executable")
    rs = ap.add_mutually_exclusive_group(required=True)
    rs.add_argument("--rust", help="the Rust peer executable")
    rs.add_argument("--rust-workspace", metavar="DIR",
                    help="build the Rust peer (example interop_peer) in this cargo workspace and use it")
    ap.add_argument("--python", default=str(HERE / "peer.py"), help="the Python peer script")
    ap.add_argument("--workdir", default=str(REPO / "build" / "interop" / "run"))
    ap.add_argument("--timeout", type=float, default=40.0, help="seconds for the peers to finish")
    args = ap.parse_args()

    rust = Path(args.rust).resolve() if args.rust else build_rust_peer(Path(args.rust_workspace))
    work = Path(args.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    certs = work / "certs"
    certs.mkdir(parents=True)
    subprocess.run(["go", "run", "./examples/certgen", "-out", str(certs), *PEERS],
                   cwd=REPO, check=True, timeout=300, stdout=subprocess.DEVNULL)
    for name in PEERS:
        (work / f"{name}.id").write_text(leaf_id(certs / f"{name}.crt") + "\n")

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "bindings" / "python") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("ARANYA_QUIC_LIB", str(REPO / "build" / "libaranya_quic.so"))
    # Each peer gives up a little before the driver does, so that it reports
    # what it was missing instead of being killed.
    env["INTEROP_DEADLINE"] = str(max(args.timeout - 5, 1))
    cmds = {
        "c": [str(Path(args.c).resolve())],
        "py": [sys.executable, str(Path(args.python).resolve())],
        "rs": [str(rust)],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {}
    start = time.monotonic()
    for name in PEERS:
        logs[name] = open(work / f"{name}.log", "wb")
        procs[name] = subprocess.Popen([*cmds[name], name, str(work), str(certs)], env=env, cwd=work,
                                       stdout=logs[name], stderr=subprocess.STDOUT)

    deadline = start + args.timeout
    problems: list[str] = []
    while True:
        codes = {n: p.poll() for n, p in procs.items()}
        running = [n for n, c in codes.items() if c is None]
        if not running:
            break
        failed = [n for n, c in codes.items() if c not in (None, 0)]
        if failed:
            # One failed: the others cannot finish; give them a moment to
            # report what they saw, then stop them.
            deadline = min(deadline, time.monotonic() + 3)
        if time.monotonic() > deadline:
            for n in running:
                procs[n].kill()
                procs[n].wait()
                problems.append(f"peer {n} did not finish in time: killed")
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - start

    for name in PEERS:
        logs[name].close()
        rc = procs[name].returncode
        out = (work / f"{name}.log").read_text(errors="replace").rstrip()
        print(f"--- peer {name} (exit {rc})")
        if out:
            print(out)
        if rc != 0 and not any(p.startswith(f"peer {name} ") for p in problems):
            problems.append(f"peer {name} exited with {rc}")
    failed_peers = sum(1 for n in PEERS if procs[n].returncode != 0)
    if problems:
        print(f"interop: FAIL after {elapsed:.1f}s: " + "; ".join(problems), file=sys.stderr)
        print(f"interop: {len(PEERS) - failed_peers} passed, {max(failed_peers, 1)} failed")
        return 1
    print(f"interop: ok: C, Python and Rust peers exchanged and checked all messages in {elapsed:.1f}s")
    print(f"interop: {len(PEERS)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
