#!/usr/bin/env bash
# The whole test suite, in one command. Installs what the tests need first (idempotently):
# Debian packages (Prometheus, Alertmanager, Chromium, docker-compose), Python venvs and npm
# packages for the end-to-end suite and the deployment validators.
#
#   bash scripts/test.sh            # everything
#   SKIP_E2E=1 bash scripts/test.sh # Rust tests and validators only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-test-deps.sh

echo "== cargo test"
cargo build --bins --features testkit
# Tests that need a real program list themselves here when they skip (tests/require/mod.rs);
# under CI=true they fail instead.
skipped="target/tmp/skipped-real-components.txt"
rm -f "$skipped"
cargo test --all-targets
if [ -s "$skipped" ]; then
  echo "!! these tests did NOT run (their program is missing; under CI=true they fail):"
  sed 's/^/!!   /' "$skipped"
fi

if [ -x deploy/validate.sh ] || [ -f deploy/validate.sh ]; then
  echo "== deploy/validate.sh"
  bash deploy/validate.sh
fi

if [ -z "${SKIP_E2E:-}" ] && [ -f tests/e2e/run.sh ]; then
  echo "== end-to-end suite"
  bash tests/e2e/run.sh "$root/target/debug/tollgate"
fi
echo "== all tests passed"
