#!/usr/bin/env bash
# Show what scripts/peers/up.sh started in this state dir: name, pid, alive, RSS.
#   usage: scripts/peers/status.sh [STATE_DIR]     exit 0 only if every recorded service is alive
set -euo pipefail
PEER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$PEER_DIR/lib.sh"
peer_init_state "${1:-}"
rc=0 total=0
for pf in "$PEER_RUN"/*.pid; do
  [[ -e "$pf" ]] || { echo "nothing started in $PEER_STATE"; exit 1; }
  name="$(basename "$pf" .pid)"
  if peer_alive "$name"; then
    kb="$(peer_rss_kb "$name")"; total=$((total + kb))
    printf '%-10s pid %-7s up    RSS %6d KiB\n' "$name" "$(head -n1 "$pf")" "$kb"
  else
    printf '%-10s pid %-7s DEAD (stale pid file)\n' "$name" "$(head -n1 "$pf")"; rc=1
  fi
done
printf '%-10s %18s RSS %6d KiB\n' total "" "$total"
exit $rc
