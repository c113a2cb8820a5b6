#!/usr/bin/env bash
# Runs the C demo as two processes: bob listens, alice sends on two channels
# and one sync type, bob answers each message, both print what they
# received. Used by `make run`; exits non-zero if anything went wrong.
#
#   examples/c/run-demo.sh DEMO_BINARY CERTS_DIR WORK_DIR
set -euo pipefail

demo=$1 certs=$2 work=$3
mkdir -p "$work"
addr_file=$work/bob.addr
rm -f "$addr_file"

"$demo" listen "$certs" bob "$addr_file" &
listener=$!
trap 'kill "$listener" 2>/dev/null || true' EXIT

# Wait (at most 10 s) for bob to publish its address.
for _ in $(seq 100); do
    [[ -s $addr_file ]] && break
    if ! kill -0 "$listener" 2>/dev/null; then
        echo "run-demo: the listener exited early" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ ! -s $addr_file ]]; then
    echo "run-demo: the listener did not start" >&2
    exit 1
fi

"$demo" send "$certs" alice "$(cat "$addr_file")"
wait "$listener"
trap - EXIT
echo "run-demo: ok"
