#!/usr/bin/env bash
# Stop what scripts/peers/up.sh started in this state dir, by pid file only (never by name).
#   usage: scripts/peers/down.sh [STATE_DIR]
# PEER_SERVICES="synapse prosody smtp kannel" (default: all) stops only those, e.g.
#   PEER_SERVICES=synapse scripts/peers/down.sh && PEER_SERVICES=synapse scripts/peers/up.sh   # restart Synapse
set -euo pipefail
PEER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$PEER_DIR/lib.sh"
peer_init_state "${1:-}"
services="${PEER_SERVICES:-synapse prosody smtp kannel}"
services=" ${services//,/ } "
names=()
[[ "$services" == *" kannel "* ]] && names+=(smsbox bearerbox fakesmsc)
[[ "$services" == *" smtp "* ]] && names+=(smtp)
[[ "$services" == *" prosody "* ]] && names+=(prosody)
[[ "$services" == *" synapse "* ]] && names+=(synapse)
# In parallel; within Kannel, smsbox before bearerbox (bearerbox waits for its
# boxes) and fakesmsc last.
pids=()
for group in "smsbox bearerbox fakesmsc" smtp prosody synapse; do
  (
    for name in $group; do
      [[ " ${names[*]} " == *" $name "* ]] && peer_stop "$name" 20
    done
    true
  ) &
  pids+=($!)
done
wait "${pids[@]}"
peer_log "down: ${names[*]} ($PEER_STATE)"
