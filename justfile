# OmniStream developer recipes. `just run` and `just test` are the README's two commands.

# Start the whole platform (embedded PostgreSQL/NATS when none is reachable).
run:
    cargo run --release

# Run every test against real PostgreSQL and NATS.
test:
    cargo test

# Run the benchmarks; results go to bench/results/latest.md and latest.json.
bench:
    cargo build --release --bin omnistream
    cargo bench -p omnistream-tests --bench platform

# Format the code.
fmt:
    cargo fmt --all

# Lint exactly as CI does.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Apply database migrations.
migrate:
    cargo run --release -- migrate

# Rebuild a projection (or `all`) from the event log.
replay projection="all":
    cargo run --release -- replay {{projection}}

# Property-test the inbound parsers and the request DTOs (also part of `just test`).
fuzz:
    cargo test -p omnistream-ingest --test fuzz_meta
    cargo test -p omnistream-ingest --test fuzz_email
    cargo test -p omnistream-tests --test e2e fuzz::

# schemathesis against /api/openapi.json of a running server (zero 5xx, zero schema breaks).
fuzz-api:
    tests/fuzz/api.sh
