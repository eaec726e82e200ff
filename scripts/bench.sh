#!/usr/bin/env bash
# `make bench`: builds the release binaries, installs the Node.js peer, runs the micro-benchmarks and the
# Lambda Runtime API harness against a private moto, and writes bench/results.md. It reports; it never fails on
# a number. Expect 25 to 40 minutes on 2 cores from cold (release builds with fat LTO dominate); the report
# states how long its own run took.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYGATE_BENCH_STARTED=$(date +%s)
PRIVATE_STACK=keygate-bench source scripts/local-env.sh
# One function of each kind the report covers.
FUNCTIONS=(auth-login auth-refresh auth-me authorizer oauth-token auth-login-service auth-2fa-verify
  auth-passkey-login-verify mailer)
export KEYGATE_BENCH_FUNCTIONS="${FUNCTIONS[*]}"
# Where cargo puts the binaries; the harness reads the same variable.
TARGET_DIR=${CARGO_TARGET_DIR:-target}

echo "==> [1/5] release build of ${FUNCTIONS[*]}, then the harness (fat LTO: this is the slow part)"
# Two cargo runs: one run unifies the features of every crate it builds, so the harness's (tokio's `process`,
# say) would make the measured functions differ from the deployed ones.
cargo build --release --quiet $(printf -- '-p %s ' "${FUNCTIONS[@]}")
# The harness is built at opt-level 3, as auth-login is, so that the argon2 floor it measures and keygate's
# verify it compares with are compiled the way the login binary is.
cargo build --release --quiet --config 'profile.release.package.keygate-bench.opt-level=3' -p keygate-bench
echo "==> [2/5] installing the Node.js peer (bench/peer-node, pinned)"
(cd bench/peer-node && npm install --no-audit --no-fund --silent >/dev/null)
echo "==> [3/5] micro-benchmarks (criterion)"
cargo bench --quiet -p keygate --bench micro -- --warm-up-time 1 --measurement-time 3 2>/dev/null | grep -E "^[a-zA-Z].*|time:" || true
echo "==> [4/5] starting the local AWS services on $AWS_ENDPOINT_URL"
start_moto --quiet 2>/dev/null
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
echo "==> [5/5] cold starts, warm latency, memory, argon2 floor, round trips"
"$TARGET_DIR/release/keygate-bench"
echo "==> make bench took $(( ($(date +%s) - KEYGATE_BENCH_STARTED) / 60 )) min"
