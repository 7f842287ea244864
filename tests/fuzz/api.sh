#!/usr/bin/env bash
# `just fuzz-api`: schemathesis against /api/openapi.json of a running `omnistream serve`, as an
# authenticated organization admin. Fails on any 5xx and on any response that breaks the
# documented schema. Needs PostgreSQL and NATS (TEST_DATABASE_URL / NATS_URL, else the local
# defaults); schemathesis is installed from PyPI into target/schemathesis on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."

MAX_EXAMPLES="${FUZZ_API_EXAMPLES:-30}"
MAX_TIME="${FUZZ_API_SECONDS:-600}"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
DATABASE="omnistream_fuzz_api_$$"
VENV=target/schemathesis

if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4.32,<5'
fi
cargo build --release --bin omnistream

psql "$ADMIN_URL" -qc "CREATE DATABASE $DATABASE"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA_DIR=$(mktemp -d)
DATABASE_URL="${ADMIN_URL%/*}/$DATABASE" \
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}" \
NATS_PREFIX="fuzz_api_$$" \
BIND_ADDR="127.0.0.1:$PORT" \
JWT_SECRET="fuzz-api-jwt-secret-that-is-long-enough" \
ENCRYPTION_KEY="fuzz-api-encryption-key-of-32-bytes!" \
OMNISTREAM_DATA_DIR="$DATA_DIR" \
RUST_LOG="${RUST_LOG:-error}" \
    target/release/omnistream serve &
SERVER=$!
cleanup() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" || true
    rm -rf "$DATA_DIR"
}
trap cleanup EXIT

BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do
    curl -fs "$BASE/api/health" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -fs "$BASE/api/auth/register" -H 'content-type: application/json' \
    -d '{"organization_name":"Fuzz","name":"Fuzz Admin","email":"fuzz-admin@example.com","password":"password123"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# Logging out would end the run's own session; the stream never ends.
"$VENV/bin/st" run "$BASE/api/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --exclude-path /api/auth/logout \
    --exclude-path /api/stream \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --request-timeout 10 \
    --seed "${FUZZ_API_SEED:-1}" \
    --workers 2 \
    --suppress-health-check all
