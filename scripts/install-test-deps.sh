#!/usr/bin/env bash
# Installs everything the tests need, idempotently. Safe to run repeatedly.
# Every real program a Rust test needs (tests/require/mod.rs: `require::program`) is installed
# here from Debian: under CI=true a test whose program is missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# program -> Debian package
declare -A programs=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [docker-compose]=docker-compose
  [openssl]=openssl
  [python3]=python3
  [redis-server]=redis-server
)
need_apt=()
for program in "${!programs[@]}"; do
  command -v "$program" >/dev/null 2>&1 || need_apt+=("${programs[$program]}")
done
# PostgreSQL's server programs (initdb, pg_ctl; tests/ledger_postgres.rs) live in
# /usr/lib/postgresql/<version>/bin, not on PATH.
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; }
have_postgres || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
  echo "== apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  for program in "${!programs[@]}"; do
    command -v "$program" >/dev/null 2>&1 || { echo "install-test-deps: $program still missing" >&2; exit 1; }
  done
  have_postgres || { echo "install-test-deps: PostgreSQL (initdb, pg_ctl) still missing" >&2; exit 1; }
fi

if [ -f tests/e2e/install.sh ]; then
  bash tests/e2e/install.sh
fi
