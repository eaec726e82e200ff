#!/usr/bin/env bash
# `make fuzz` (FUZZ_MINUTES, default 30) and the last stage of `make test` (3 minutes): schemathesis runs every phase
# and every check (`--checks all`) of openapi.yaml against the whole API, served by `keygate-local serve` over a
# private moto and slapd on free ports with the fuzz configuration (local/fuzz/fuzz.env), and stops what it started.
# local/fuzz/hooks.py makes the credentials, local/fuzz/schemathesis.toml holds the settings, and
# local/fuzz/exclusions.toml the documented exclusions. Fails on any server error, failed check (every failure comes
# with a curl that reproduces it), or panic in the server's log.
# Logs and the JUnit report of the last run: .local/fuzz/ (api.log, moto.log, report/). Arguments are passed on to
# `schemathesis run`, e.g. `scripts/fuzz.sh --include-operation-id login` or `--report ndjson` for every
# interaction (about 9 MB a minute); RUST_LOG=info logs every request in api.log. FUZZ_SEED=<n> replays a run's
# cases (the seed is printed at the end of every run).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_MINUTES=${FUZZ_MINUTES:-30}
if ! [[ $FUZZ_MINUTES =~ ^[1-9][0-9]*$ ]]; then
  echo "FUZZ_MINUTES must be a whole number of minutes, not '$FUZZ_MINUTES'" >&2
  exit 2
fi
if ! [ -x .venv/bin/schemathesis ]; then
  echo "schemathesis is not in .venv: run \`make fuzz\` (or \`make test\`), which installs it" >&2
  exit 2
fi
PRIVATE_STACK=keygate-fuzz source scripts/local-env.sh
source scripts/slapd.sh
set -a
source local/fuzz/fuzz.env
set +a
OUT=$PWD/.local/fuzz
rm -rf "$OUT" && mkdir -p "$OUT"
export KEYGATE_EMF_FILE=$OUT/metrics.emf

install_slapd
cargo build --quiet -p keygate-local
start_moto --quiet 2>"$OUT/moto.log"
API_PID=""
SLAPD_STATE=$(mktemp -d "${TMPDIR:-/tmp}/keygate-fuzz-slapd.XXXXXX")
trap 'kill $API_PID $MOTO_PID 2>/dev/null || true; stop_slapd; rm -rf "$SLAPD_STATE"' EXIT
# The demo directory routes corp.test to LDAP, so login is fuzzed through that path too.
start_slapd auto auto "$SLAPD_STATE" demo
target/debug/keygate-local setup >/dev/null
target/debug/keygate-local idp demo >/dev/null

# Port 0: the server picks a free port and prints it, so no other process can take it in between.
KEYGATE_LISTEN=127.0.0.1:0 target/debug/keygate-local serve >"$OUT/api.log" 2>&1 &
API_PID=$!
API=""
for _ in $(seq 1 100); do
  API=$(sed -n 's/^keygate API listening on \(http:[^ ]*\).*/\1/p' "$OUT/api.log")
  if [ -n "$API" ]; then break; fi
  if ! kill -0 "$API_PID" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -z "$API" ]; then
  cat "$OUT/api.log" >&2
  echo "the API did not start" >&2
  exit 1
fi

echo "==> fuzzing the API on $API for $FUZZ_MINUTES minute(s) (schemathesis, every check)"
started=$SECONDS
status=0
KEYGATE_FUZZ_API=$API SCHEMATHESIS_HOOKS=$PWD/local/fuzz/hooks.py \
  .venv/bin/schemathesis --config-file local/fuzz/schemathesis.toml run openapi.yaml \
  --url "$API" --checks all --max-time $((FUZZ_MINUTES * 60)) \
  --report junit --report-dir "$OUT/report" ${FUZZ_SEED:+--seed "$FUZZ_SEED"} "$@" || status=$?
if grep -n "panicked" "$OUT/api.log" >&2; then
  echo "the server panicked (above; .local/fuzz/api.log)" >&2
  status=1
fi
echo "==> fuzzing took $((SECONDS - started)) s; exit status $status (reports in .local/fuzz/report)"
exit "$status"
