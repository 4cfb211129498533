#!/usr/bin/env bash
# Run ucbridge with local Synapse and Prosody, to try it with real clients.
#   usage: scripts/demo.sh [start|stop|status]        (default: start)
#
# start   installs the peers (apt + <repo>/.state/venv), builds the bridge (release), writes
#         .state/demo/ucbridge.yaml and .state/demo/registration.yaml (each only if missing),
#         starts Synapse, Prosody and Kannel (fake SMSC) with that registration, starts the bridge detached
#         (log .state/demo/ucbridge.log) and waits until it is connected. Rerunnable:
#         whatever already runs is left alone.
# stop    stops the bridge, then the peers.
# status  shows what runs and the bridge's /health.
set -euo pipefail
export UCB_LOG_TAG=demo
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

S="$UCB_ROOT/.state/demo"
CFG="$S/ucbridge.yaml"
REG="$S/registration.yaml"
LOG="$S/ucbridge.log"
BIN="$UCB_ROOT/target/release/ucbridge"

bridge_start() {
  peer_init_state "$S"
  if peer_alive ucbridge; then
    ucb_log "bridge already running (pid $(head -n1 "$(peer_pidfile ucbridge)"))"
  else
    if peer_port_open "${UCB_LISTEN##*:}"; then
      ucb_die "port $UCB_LISTEN is taken by another process (another bridge? scripts/test.sh?)"
    fi
    peer_spawn ucbridge "$CFG" "$LOG" "$BIN" -c "$CFG" run
    ucb_log "bridge started (pid $(head -n1 "$(peer_pidfile ucbridge)"), log $LOG)"
  fi
  local deadline=$(( $(date +%s) + 60 ))
  until ucb_health; do
    if ! peer_alive ucbridge; then
      tail -n 30 "$LOG" >&2 || true
      ucb_die "the bridge exited; log: $LOG"
    fi
    if (( $(date +%s) >= deadline )); then
      tail -n 30 "$LOG" >&2 || true
      ucb_die "the bridge did not report the XMPP component connected at $UCB_HEALTH_URL within 60 s; log: $LOG"
    fi
    sleep 0.5
  done
}

cmd_start() {
  "$UCB_ROOT/scripts/peers/install.sh" "$S"
  ucb_ensure_toolchain
  ucb_log "building the bridge (cargo build --release --locked)"
  (cd "$UCB_ROOT" && cargo build --release --locked)
  [[ -x "$BIN" ]] || ucb_die "no $BIN after the build"

  mkdir -p "$S"
  if [[ -f "$CFG" ]]; then
    ucb_log "keeping the existing config $CFG"
  else
    ucb_write_config "$CFG"
    ucb_log "wrote $CFG"
  fi
  if [[ -f "$REG" ]]; then
    ucb_log "keeping the existing registration $REG"
  else
    "$BIN" -c "$CFG" generate-registration -o "$REG"
    ucb_log "wrote $REG"
  fi
  # A config kept from an older demo may carry a secret the bridge now refuses (the old
  # component secret "bridge-secret"): say so before starting anything.
  "$BIN" -c "$CFG" check-config >/dev/null \
    || ucb_die "$CFG does not pass check-config (see above); remove it (and $REG) to get a fresh one"

  # Kannel with its fake SMSC too, so that SMS (and SMS notices) can be tried without a provider.
  PEER_SERVICES="${PEER_SERVICES:-synapse prosody kannel}" PEER_APPSERVICE_REGISTRATION="$REG" \
    "$UCB_ROOT/scripts/peers/up.sh" "$S"
  bridge_start

  cat <<EOF

ucbridge is running: Matrix <-> XMPP chats, rooms, presence, SMS.   (stop: scripts/demo.sh stop)

Matrix side   Element or any Matrix client, homeserver http://127.0.0.1:8008
              Register a new user there (no e-mail, no verification); it becomes @USER:localhost.
XMPP side     Gajim, Dino, Conversations ... server 127.0.0.1, port 5222, domain localhost
              (plain connection or STARTTLS with a self-signed certificate)
              Users: alice / alice-pw, bob / bob-pw, carol / carol-pw, or register in-band.

Talking across:
  from XMPP to the Matrix user @USER:localhost      write to  USER\\40localhost@bridge.localhost
  from Matrix to the XMPP user alice@localhost      start a direct chat with / invite
                                                   @_xmpp_alice=40localhost:localhost
  (XMPP user names map as in the Matrix spec: '_' -> '__', other characters -> '=hex',
   e.g. '@' -> '=40'.)

Commands:  Matrix: start a direct chat with @ucbridge:localhost and send  help
           XMPP:   send  help  to bridge.localhost (or use its ad-hoc commands)
           A group conversation:  room create sales Sales team
Admins:    any account named admin... (Matrix @admin...:localhost, XMPP admin...@localhost);
           send  control-room  to the bot for the control room, then e.g.  status, help
SMS:       an admin grants it (permissions grant @USER:localhost sms), then  sms +49 176 1234 5678
           SMS sent so far:   PEER_STATE=$S scripts/peers/sms-sent.sh
           an incoming SMS:   PEER_STATE=$S scripts/peers/sms-inject.sh +4917612345678 +4930555000 hello

Files: config $CFG, registration $REG, bridge log $LOG,
       Synapse $S/synapse/homeserver.log, Prosody $S/prosody/prosody.log
Health: $UCB_HEALTH_URL
EOF
}

cmd_stop() {
  peer_init_state "$S"
  peer_stop ucbridge 20
  "$UCB_ROOT/scripts/peers/down.sh" "$S"
}

cmd_status() {
  peer_init_state "$S"
  local rc=0
  if peer_alive ucbridge; then
    echo "bridge: running (pid $(head -n1 "$(peer_pidfile ucbridge)")), health: $(curl -sS --max-time 2 "$UCB_HEALTH_URL" 2>&1 || true)"
  else
    echo "bridge: not running"; rc=1
  fi
  "$UCB_ROOT/scripts/peers/status.sh" "$S" || rc=1
  return $rc
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h|--help|help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
