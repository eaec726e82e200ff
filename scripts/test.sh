#!/usr/bin/env bash
# `make test`: unit and end-to-end tests against a private moto on a free port, stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
API_PORT=0
source scripts/local-env.sh
export KEYGATE_TABLE=keygate-test KEYGATE_KEY_SECRET_ID=keygate-test/signing-keys
export KEYGATE_ISSUER=http://keygate.test
export RUST_LOG=${RUST_LOG:-warn}

echo "==> building"
cargo test --workspace --no-run --quiet
echo "==> starting the local AWS services on $AWS_ENDPOINT_URL"
start_moto --quiet 2>.moto-test.log
trap 'kill $MOTO_PID 2>/dev/null || true; rm -f .moto-test.log' EXIT
cargo run --quiet -p keygate-local -- setup >/dev/null
echo "==> running the tests"
cargo test --workspace --quiet -- --test-threads "${TEST_THREADS:-4}" 2>&1 | tee .test-output.log
# One closing line for the whole run: cargo prints a result line per test binary, most of them empty.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "keygate: %d passed, %d failed\n", p, f }' .test-output.log
rm -f .test-output.log
