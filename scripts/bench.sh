#!/usr/bin/env bash
# `make bench`: builds the release binaries, installs the Node.js peer, runs the micro-benchmarks and the
# Lambda Runtime API harness against a private moto, and writes bench/results.md. It reports; it never fails on
# a number. Expect 15 to 25 minutes on 2 cores from cold (release builds with fat LTO dominate).
set -euo pipefail
cd "$(dirname "$0")/.."
PRIVATE_STACK=keygate-bench source scripts/local-env.sh
FUNCTIONS=(auth-login auth-refresh auth-me authorizer)

echo "==> [1/5] release build of ${FUNCTIONS[*]} and the harness (fat LTO: this is the slow part)"
cargo build --release --quiet $(printf -- '-p %s ' "${FUNCTIONS[@]}") -p keygate-bench
echo "==> [2/5] installing the Node.js peer (bench/peer-node, pinned)"
(cd bench/peer-node && npm install --no-audit --no-fund --silent >/dev/null)
echo "==> [3/5] micro-benchmarks (criterion)"
cargo bench --quiet -p keygate --bench micro -- --warm-up-time 1 --measurement-time 3 2>/dev/null | grep -E "^[a-zA-Z].*|time:" || true
echo "==> [4/5] starting the local AWS services on $AWS_ENDPOINT_URL"
start_moto --quiet 2>/dev/null
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
echo "==> [5/5] cold starts, warm latency, memory, round trips"
target/release/keygate-bench
