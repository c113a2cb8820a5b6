#!/usr/bin/env python3
"""aqbench.py - the library through its Python binding (bindings/python,
ctypes over the C API): the msg scenario of bench/c/aqbench.c, measured the
same way.

    python3 bench/python/aqbench.py msg [size=64] [dur=SECONDS] [certs=DIR]
                                        [lib=PATH] [batch=N]

Two endpoints in one process. A sender thread sends size-byte messages on
one channel for dur seconds: one send() per message (batch=0, the default)
or send_batch() with N messages per call. The main thread receives them:
receive() one by one, or receive_batch(N). Throughput = messages received /
(the receiver's last message - the sender's start). cpu_ns_per_msg is the
CPU time of the whole process (both endpoints, user + system) per message.

certs: a folder from `go run ./examples/certgen -out DIR alice bob`
(default build/bench/certs). lib: the libaranya_quic.so to load (default:
what the binding finds, $ARANYA_QUIC_LIB or build/libaranya_quic.so).

Prints one JSON line, like the other drivers:
{"scenario":"py-msg","impl":"aranya-quic-python","metrics":{..}}.
Exit status 0 on success; on failure a message on stderr and status 1.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bindings" / "python"))

# The binding loads the library on first use, so lib= can still set
# $ARANYA_QUIC_LIB after this import.
import aranya_quic as aq  # noqa: E402

IMPL = "aranya-quic-python"
TEAM = bytes([1]) * 32
#: With nothing received for this long after the sender finished, messages
#: were lost (a guard against hangs, not a measurement).
STALL_S = 20.0


def die(msg: str) -> None:
    print(f"aqbench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def parse(argv: list[str]) -> tuple[str, dict[str, str]]:
    if not argv:
        die("usage: aqbench.py msg [size=N] [dur=SECONDS] [certs=DIR] [lib=PATH] [batch=N]")
    opts = {"size": "64", "dur": "1", "certs": str(REPO / "build" / "bench" / "certs"), "lib": "", "batch": "0"}
    for a in argv[1:]:
        key, sep, value = a.partition("=")
        if not sep or key not in opts:
            die(f"unknown option {a!r} (want size=, dur=, certs=, lib=, batch=)")
        opts[key] = value
    return argv[0], opts


def cpu_s() -> float:
    """User + system CPU time of the whole process (every thread)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def emit(scenario: str, metrics: dict[str, float]) -> None:
    line = {"scenario": scenario, "impl": IMPL, "metrics": metrics}
    print(json.dumps(line, separators=(",", ":")), flush=True)


def msg(certs: Path, size: int, dur: float, batch: int) -> dict[str, float]:
    def endpoint(name: str) -> aq.Endpoint:
        return aq.Endpoint(
            cert=certs / f"{name}.crt", key=certs / f"{name}.key", ca=certs / "ca.pem", bind_addr="127.0.0.1:0"
        )

    a, b = endpoint("alice"), endpoint("bob")
    try:
        to = b.local_addr
        # Connect before the clock starts, on a channel of its own, as the
        # C driver does: the measured channel is still new at the start.
        a.send(to, TEAM, "connect", bytes(64))
        if b.receive(timeout=10) is None:
            die("warm-up message lost")

        payload = bytes(size)
        many = [payload] * batch
        # Clock checks: about every 64 small messages, every call once a
        # call carries 4 KiB or more (as bench/c/aqbench.c).
        per_call = max(batch, 1)
        every = 1 if size * per_call >= 4096 or per_call >= 64 else 64 // per_call
        sent = [0]
        failure: list[BaseException] = []
        done = threading.Event()

        start = time.monotonic()
        cpu0 = cpu_s()
        deadline = start + dur

        def sender() -> None:
            try:
                i = 0
                n = 0
                while True:
                    if batch > 0:
                        n += a.send_batch(to, TEAM, "bench", many)
                    else:
                        a.send(to, TEAM, "bench", payload)
                        n += 1
                    i += 1
                    if i % every == 0 and time.monotonic() >= deadline:
                        break
                sent[0] = n
            except BaseException as e:  # reported by the main thread
                failure.append(e)
            finally:
                done.set()

        t = threading.Thread(target=sender, name="sender")
        t.start()
        msgs = 0
        nbytes = 0
        last = start
        while True:
            if batch > 0:
                got = b.receive_batch(batch, timeout=0.2)
                if got:
                    msgs += len(got)
                    for m in got:
                        nbytes += len(m.data)
                    last = time.monotonic()
            else:
                m = b.receive(timeout=0.2)
                if m is not None:
                    msgs += 1
                    nbytes += len(m.data)
                    last = time.monotonic()
            if done.is_set():
                if failure:
                    break
                if msgs >= sent[0]:
                    break
                if time.monotonic() - last > STALL_S:
                    break
        cpu_end = cpu_s()
        t.join()
        if failure:
            die(f"sender failed: {failure[0]!r}")
        if msgs != sent[0]:
            die(f"received {msgs} of {sent[0]} messages")
        el = last - start
        cpu = cpu_end - cpu0
        return {
            "msgs_per_s": round(msgs / el, 1),
            "gbit_s": round(nbytes * 8 / el / 1e9, 4),
            "cpu_ns_per_msg": round(cpu * 1e9 / msgs, 1),
            "msgs": msgs,
            "seconds": round(el, 3),
            "cpu_seconds": round(cpu, 3),
            "batch": batch,
        }
    finally:
        a.close()
        b.close()


def main() -> None:
    scenario, o = parse(sys.argv[1:])
    try:
        size, dur, batch = int(o["size"]), float(o["dur"]), int(o["batch"])
    except ValueError as e:
        die(f"bad option value: {e}")
    if size < 0 or not dur > 0 or batch < 0:
        die("want size >= 0, dur > 0, batch >= 0")
    if o["lib"]:
        os.environ["ARANYA_QUIC_LIB"] = o["lib"]

    certs = Path(o["certs"])
    if not (certs / "ca.pem").is_file():
        die(f"{certs}/ca.pem not found: run `go run ./examples/certgen -out {certs} alice bob`")
    if scenario != "msg":
        die(f"unknown scenario {scenario!r} (only msg)")
    try:
        metrics = msg(certs, size, dur, batch)
    except aq.AranyaQuicError as e:
        die(str(e))
    emit("py-msg", metrics)


if __name__ == "__main__":
    main()
