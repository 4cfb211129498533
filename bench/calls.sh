#!/usr/bin/env bash
# Missed-call benchmarks (numbers, not pass/fail):
#   bench/calls.sh [--config STATE/ucbridge.yaml] [calls_webhook.py options]
# 1. rules engine: `cargo run --release --example calls_bench` (CallTracker + rules::decide over
#    200000 synthetic calls, no I/O);
# 2. with --config (a running bridge with a missed_calls section and journal_token, e.g. the e2e
#    rig of scripts/test.sh): end-to-end webhook throughput with bench/calls_webhook.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG=""
ARGS=()
while (($#)); do
  case "$1" in
    --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
    -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
echo "== rules engine (release build)"
cargo run --release --quiet --example calls_bench
if [[ -n "$CONFIG" ]]; then
  echo "== webhook end to end"
  "${PEER_VENV:-$ROOT/.state/venv}/bin/python" bench/calls_webhook.py --config "$CONFIG" "${ARGS[@]}"
fi
