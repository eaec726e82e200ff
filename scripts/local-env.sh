# Environment shared by `make dev`, `make test` and `make bench`: dummy credentials and the local endpoint, so the SDK clients
# reach moto through AWS_ENDPOINT_URL with no code path that knows it is local.
# With PRIVATE_STACK=<name> (test, bench): moto on a free port and tables and secrets of that name, so a run
# never touches `make dev`'s data.
if [ -n "${PRIVATE_STACK:-}" ]; then
  MOTO_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  API_PORT=0
  export KEYGATE_TABLE=$PRIVATE_STACK KEYGATE_KEY_SECRET_ID=$PRIVATE_STACK/signing-keys
  export KEYGATE_PUBLIC_KEYS_SECRET_ID=$PRIVATE_STACK/public-keys
  export KEYGATE_MFA_KEY_SECRET_ID=$PRIVATE_STACK/mfa-key
  export KEYGATE_ISSUER=http://$PRIVATE_STACK.local
  export RUST_LOG=${RUST_LOG:-warn}
fi
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT}"
export KEYGATE_TABLE=${KEYGATE_TABLE:-keygate}
export KEYGATE_KEY_SECRET_ID=${KEYGATE_KEY_SECRET_ID:-keygate/signing-keys}
export KEYGATE_PUBLIC_KEYS_SECRET_ID=${KEYGATE_PUBLIC_KEYS_SECRET_ID:-keygate/public-keys}
export KEYGATE_MFA_KEY_SECRET_ID=${KEYGATE_MFA_KEY_SECRET_ID:-keygate/mfa-key}
export KEYGATE_ISSUER=${KEYGATE_ISSUER:-http://127.0.0.1:${API_PORT}}
export KEYGATE_MAIL_FROM=${KEYGATE_MAIL_FROM:-no-reply@keygate.example.com}
export KEYGATE_APP_URL=${KEYGATE_APP_URL:-http://localhost:5173}
# The mail outbox. moto names a queue <endpoint>/<account>/<name>; `keygate-local setup` creates it and checks.
export KEYGATE_MAIL_QUEUE_URL="$AWS_ENDPOINT_URL/123456789012/${KEYGATE_TABLE}-mail"

# Starts moto on MOTO_PORT (single-threaded, see local/moto/server.py) and waits until it answers.
start_moto() {
  .venv/bin/python local/moto/server.py --port "$MOTO_PORT" "$@" &
  MOTO_PID=$!
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:${MOTO_PORT}/moto-api/"; then return 0; fi
    sleep 0.2
  done
  echo "moto did not start on port $MOTO_PORT" >&2
  return 1
}
