#!/usr/bin/env bash
# One-command benchmark: builds tollgate and tollgate-loadgen (release), installs Rotel into
# bench/.venv when missing, then runs bench/bench.py (sink alone, Rotel, tollgate passthrough,
# tollgate with everything on) and prints the comparison table. See BENCHMARKS.md.
#
#   bench/run.sh                 # 3 repetitions × 15 s (+3 s warm-up) per scenario
#   QUICK=1 bench/run.sh         # 1 × 5 s, for a quick look
#   REPS=5 SCENARIOS=sink,rotel bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(nproc)" -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (collector on one, load generator + sink on another)" >&2
    exit 1
fi
command -v taskset >/dev/null || { echo "bench: taskset missing (apt-get install util-linux)" >&2; exit 1; }

cargo build --release --features testkit --bin tollgate --bin tollgate-loadgen

rotel="$(find bench/.venv -name rotel-agent -type f 2>/dev/null | head -n 1 || true)"
if [[ -z "${ROTEL:-}" && -z "$rotel" ]]; then
    echo "bench: installing Rotel into bench/.venv" >&2
    python3 -m venv bench/.venv
    bench/.venv/bin/pip install --quiet rotel
fi

exec python3 bench/bench.py "$@"
