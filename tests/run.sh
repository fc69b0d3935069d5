#!/usr/bin/env bash
# The whole test suite: installs what the tests need (Dovecot, Postfix, openssl from Debian's
# packages, when missing), then runs every unit test, integration test (against real servers
# started on loopback by tests/support; those that touch the store a second time on
# PostgreSQL), the demo build and the benchmark at a small size (it
# prints figures, never fails on them). A server that cannot be started
# fails the suite; only the corpus suites may not run (see below).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install.sh

# The corpus suites find their corpora themselves (tests/support/corpora.rs): INTAKE311_CORPORA
# when set (.ci/run sets it), else ../shared/corpora beside the checkout when it exists; with
# neither, each prints one "CORPUS SUITE NOT RUN" line and passes.

# Lints that keep the code as DESIGN.md asks: formatted, clippy-clean, and no unwrap/expect
# outside tests (Cargo.toml [lints], clippy.toml).
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

cargo build --locked --all-targets
# The benchmark at a small size, so it cannot rot: it prints its figures and never fails on
# them, only on real errors (a server that will not start, a daemon that dies, mail that never
# arrives). The full run is `cargo bench --bench throughput -- --n 10000` (see README, "Speed").
# It runs before the tests so that cargo test's summary closes the output.
cargo bench --locked --bench throughput -- --quick

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked --all-targets -- --test-threads="${INTAKE311_TEST_THREADS:-4}" 2>&1 | tee "$log"
# The tests that touch the store once more on PostgreSQL (each test binary starts its own
# private cluster, tests/support/postgres.rs); the full run above was on SQLite. Tests that mean
# something on SQLite only print a "SKIPPED ON POSTGRESQL" line with the reason.
pg_tests=(cli corpus_drain crash daemon_fetch dates_and_faults deadlines group_commit hygiene intake_flow referrals registry_mail report robots_drain threads)
INTAKE311_TEST_ENGINE=postgres cargo test --locked "${pg_tests[@]/#/--test=}" \
    -- --test-threads="${INTAKE311_PG_TEST_THREADS:-2}" 2>&1 | tee -a "$log"
# One closing line for the whole suite, both runs (cargo's last line is not the suite's).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "total: %d passed, %d failed\n", passed, failed }' "$log"
