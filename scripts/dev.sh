#!/usr/bin/env bash
# `make dev`: moto on :4566, the table, a signing key and the sender identity, then the API on :3000.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_PORT=${MOTO_PORT:-4566}
API_PORT=${API_PORT:-3000}
source scripts/local-env.sh
source scripts/slapd.sh
LDAP_PORT=${LDAP_PORT:-3890}
LDAPS_PORT=${LDAPS_PORT:-6360}
export KEYGATE_LISTEN="127.0.0.1:${API_PORT}"
export RUST_LOG=${RUST_LOG:-info}

echo "==> building the local server"
install_slapd
cargo build --quiet -p keygate-local
echo "==> starting the local AWS services on $AWS_ENDPOINT_URL (emails are printed below)"
start_moto
trap 'kill $MOTO_PID 2>/dev/null || true; stop_slapd' EXIT INT TERM
target/debug/keygate-local setup
echo "==> starting the demo LDAP directory (OpenLDAP) on $LDAP_PORT (StartTLS) and $LDAPS_PORT (ldaps)"
start_slapd "$LDAP_PORT" "$LDAPS_PORT" .local/slapd/dev demo
target/debug/keygate-local idp demo
echo "    demo@corp.test / demo-directory-password signs in through it (POST /v1/auth/login)"
# The metrics (CloudWatch EMF documents) go to a file rather than between the emails on the console.
export KEYGATE_EMF_FILE=${KEYGATE_EMF_FILE:-$PWD/.local/metrics.emf}
echo "==> metrics (EMF) are appended to $KEYGATE_EMF_FILE"
# The scheduled cleanup, every minute (hourly in AWS).
( while sleep 60; do target/debug/keygate-local cleanup >/dev/null 2>&1 || true; done ) &
CLEANUP_PID=$!
trap 'kill $MOTO_PID $CLEANUP_PID 2>/dev/null || true; stop_slapd' EXIT INT TERM
echo "==> keygate API on http://127.0.0.1:${API_PORT}  (Ctrl-C stops everything)"
target/debug/keygate-local serve
