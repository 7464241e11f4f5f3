#!/usr/bin/env bash
# Installs everything the end-to-end suite needs, idempotently:
#   tests/e2e/.venv          pytest, OTel SDK + exporters, the real SDKs and instrumentations (requirements.txt)
#   tests/e2e/.venv-phoenix  Arize Phoenix (requirements-phoenix.txt; large, hence its own venv)
#   tests/e2e/.venv-legacy   Strands Agents + OpenLIT (requirements-legacy.txt; they pin anthropic<1)
#   tests/e2e/node           npm ci from the committed package-lock.json
#   tests/e2e/node-frameworks  npm ci: OpenLLMetry for Node + Vercel AI SDK 7 (other versions than node/)
#   prometheus-alertmanager  Debian package, when missing (apt-get update first)
# Each step is skipped when its stamp file holds the hash of its requirement files. Needs python3 (3.11), node (20)
# and npm; reaches only PyPI, npm and Debian. Measured here (2 cores): 9.4 min from scratch with no pip/npm cache
# while other builds held the load at ~19; alone, Phoenix venv ~2m45s, main venv ~1m10s, npm ci ~1m10s (run in
# parallel); ~1 s when already installed.
# Set E2E_SKIP_PHOENIX=1 or E2E_SKIP_APT=1 to skip those parts.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAMPS="$HERE/.stamps"
mkdir -p "$STAMPS"
PY="${PYTHON:-python3}"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
fresh() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }

venv() { # venv NAME REQUIREMENTS
  local dir="$HERE/$1" req="$HERE/$2" h
  h="$(hash_of "$req")"
  if fresh "$1" "$h" && [[ -x "$dir/bin/python" ]]; then return; fi
  echo "e2e: installing $1 from $2" >&2
  rm -f "$STAMPS/$1"
  [[ -x "$dir/bin/python" ]] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  echo "$h" > "$STAMPS/$1"
}

node_deps() { # node_deps DIR (under tests/e2e)
  local dir="$HERE/$1" h
  h="$(hash_of "$dir/package.json" "$dir/package-lock.json")"
  if fresh "$1" "$h" && [[ -x "$dir/node_modules/.bin/tsx" ]]; then return; fi
  echo "e2e: npm ci in tests/e2e/$1" >&2
  rm -f "$STAMPS/$1"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$h" > "$STAMPS/$1"
}

alertmanager() {
  if command -v prometheus-alertmanager >/dev/null 2>&1; then return; fi
  if [[ "${E2E_SKIP_APT:-0}" == 1 ]]; then return; fi
  if [[ "$(id -u)" != 0 ]] && ! command -v sudo >/dev/null; then
    echo "e2e: prometheus-alertmanager missing and not root; alert tests will be skipped" >&2; return
  fi
  local SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO=sudo
  echo "e2e: apt-get install prometheus-alertmanager" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus-alertmanager >/dev/null
}

ensure_venv_module() { # Debian splits ensurepip into python3-venv
  if "$PY" -c "import ensurepip, venv" 2>/dev/null; then return; fi
  echo "e2e: apt-get install python3-venv" >&2
  local SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
}

start=$(date +%s)
ensure_venv_module
venv .venv requirements.txt &
p1=$!
venv .venv-legacy requirements-legacy.txt &
p4=$!
node_deps node &
p2=$!
node_deps node-frameworks &
p5=$!
if [[ "${E2E_SKIP_PHOENIX:-0}" != 1 ]]; then venv .venv-phoenix requirements-phoenix.txt & p3=$!; fi
alertmanager
wait "$p1"; wait "$p4"; wait "$p2"; wait "$p5"; [[ -z "${p3:-}" ]] || wait "$p3"
echo "e2e: dependencies ready ($(( $(date +%s) - start )) s)" >&2
