#!/usr/bin/env bash
# The whole benchmark campaign of the README's table: the same load on SQLite, on PostgreSQL and on
# SQLite seeded to a large installation's size, one after another (about 12 minutes), then
# bench/summary.py writes bench/results.md (the targets side by side, and the machine and commit).
#   usage: bench/all.sh [--wait-ports SECONDS] [bench.py options]
# Each run's full report stays in bench/results-sqlite.md, results-postgres.md, results-sqlite-scale.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/bench/run.sh" --db sqlite "$@"
"$ROOT/bench/run.sh" --db postgres "$@"
"$ROOT/bench/run.sh" --db sqlite --scale "$@"
"${PEER_VENV:-$ROOT/.state/venv}/bin/python" "$ROOT/bench/summary.py" \
  bench/results-sqlite.json bench/results-postgres.json bench/results-sqlite-scale.json > bench/results.md
cat bench/results.md
