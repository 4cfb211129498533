#!/usr/bin/env bash
# Inject an incoming (MO) SMS through Kannel's fake SMSC, as if a phone sent it.
#   usage: scripts/peers/sms-inject.sh [--ucs2] FROM TO TEXT...
# Kannel then calls the sms-service get-url (PEER_SMS_MO_URL) with it.
# Default type "text" passes the bytes through (coding=0, charset=UTF-8 at the MO URL);
# --ucs2 sends it the way a handset sends non-GSM text (coding=2, charset=UTF-16BE,
# text = URL-encoded UTF-16BE bytes at the MO URL). State dir: $PEER_STATE or <repo>/.state.
set -euo pipefail
type=text
if [[ "${1:-}" == --ucs2 ]]; then type=ucs2; shift; fi
(($# >= 3)) || { echo "usage: $0 [--ucs2] FROM TO TEXT..." >&2; exit 2; }
from=$1 to=$2; shift 2; text="$*"
fifo="${PEER_STATE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.state}/kannel/mo.fifo"
[[ -p "$fifo" ]] || { echo "no $fifo: are the peers up (kannel)?" >&2; exit 1; }
[[ "$text" != *$'\n'* ]] || { echo "TEXT must be one line" >&2; exit 2; }
if [[ $type == ucs2 ]]; then
  text="$(printf '%s' "$text" | iconv -f UTF-8 -t UTF-16BE | od -An -v -tx1 | tr -d ' \n' | sed 's/../%&/g')"
fi
line="$from $to $type $text"
(( ${#line} < 255 )) || { echo "line too long for fakesmsc (255 bytes max)" >&2; exit 2; }
printf '%s\n' "$line" > "$fifo"
