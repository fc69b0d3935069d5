#!/usr/bin/env bash
# The whole test suite: installs what the tests need (Dovecot, Postfix, openssl from Debian's
# packages, when missing), then runs every unit test, integration test (against real servers
# started on loopback by tests/support) and the demo build. A server that cannot be started
# fails the suite; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install.sh

# The corpora tests read ../shared/corpora in place when it is there (CI has it).
if [ -z "${INTAKE311_CORPORA:-}" ] && [ -d ../shared/corpora ]; then
  export INTAKE311_CORPORA="$(cd ../shared/corpora && pwd)"
fi

cargo build --locked --all-targets
cargo test --locked --all-targets -- --test-threads="${INTAKE311_TEST_THREADS:-4}"
