#!/usr/bin/env bash
# List the outgoing (MT) SMS that reached Kannel's fake SMSC, oldest first, one per line:
#   FROM TO TYPE PAYLOAD      TYPE: text (plain) | data (URL-encoded 8-bit) |
#                             ucs-2 (URL-encoded UTF-16BE, '+' = space) | udh UDH DATA
# State dir: $PEER_STATE or <repo>/.state.
set -euo pipefail
log="${PEER_STATE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.state}/kannel/fakesmsc.log"
[[ -f "$log" ]] || { echo "no $log: are the peers up (kannel)?" >&2; exit 1; }
grep -a 'Got message [0-9]*: <' "$log" | sed -E 's/.*Got message [0-9]+: <(.*)>$/\1/' || true
