# shellcheck shell=bash
# Common settings and helpers for scripts/peers/*.sh. Source it; do not run it.
# Every value below can be overridden from the environment before calling a peers script.

PEER_DIR="${PEER_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
# The repository root (scripts/peers/../..).
PEER_ROOT="${PEER_ROOT:-$(cd "$PEER_DIR/../.." && pwd)}"

peer_init_state() {  # $1 = optional state dir argument
  PEER_STATE="${1:-${PEER_STATE:-$PEER_ROOT/.state}}"
  mkdir -p "$PEER_STATE"
  PEER_STATE="$(cd "$PEER_STATE" && pwd)"
  PEER_RUN="$PEER_STATE/run"          # pid files
  # One venv for every state dir (demo, test, ...): <repo>/.state/venv unless overridden.
  PEER_VENV="${PEER_VENV:-$PEER_ROOT/.state/venv}"
  mkdir -p "$PEER_RUN"
  export PEER_DIR PEER_ROOT PEER_STATE PEER_RUN PEER_VENV
}

peer_defaults() {
  # Matrix / Synapse
  : "${PEER_MATRIX_DOMAIN:=localhost}"
  : "${PEER_SYNAPSE_PORT:=8008}"
  : "${PEER_SYNAPSE_REG_SECRET:=peer-registration-shared-secret}"
  : "${PEER_SYNAPSE_LOG_LEVEL:=INFO}"
  : "${PEER_SYNAPSE_ADMIN_USER:=admin}"
  : "${PEER_SYNAPSE_ADMIN_PASS:=admin-pw}"
  # The bridge (appservice HTTP + SMS webhooks) that Synapse/Kannel push to.
  : "${PEER_BRIDGE_URL:=http://127.0.0.1:9090}"
  # Path to the appservice registration file Synapse loads; "none" = no appservice.
  : "${PEER_APPSERVICE_REGISTRATION:=$PEER_STATE/registration.yaml}"
  # XMPP / Prosody
  : "${PEER_XMPP_DOMAIN:=localhost}"
  : "${PEER_XMPP_C2S_PORT:=5222}"
  : "${PEER_MUC_DOMAIN:=conference.$PEER_XMPP_DOMAIN}"
  : "${PEER_UPLOAD_DOMAIN:=upload.$PEER_XMPP_DOMAIN}"
  : "${PEER_PROSODY_HTTP_PORT:=5280}"
  : "${PEER_COMPONENT_DOMAIN:=bridge.$PEER_XMPP_DOMAIN}"
  : "${PEER_COMPONENT_PORT:=5347}"
  # At least 16 characters: the bridge refuses shorter or example secrets (check-config).
  : "${PEER_COMPONENT_SECRET:=peer-component-secret-0123}"
  : "${PEER_XMPP_USERS:=alice:alice-pw bob:bob-pw carol:carol-pw}"
  # A component on a foreign domain (not under the XMPP domain) that e2e tests drive as a
  # hostile MUC service; nothing connects to it otherwise.
  : "${PEER_EVIL_MUC_DOMAIN:=conference.evil.test}"
  : "${PEER_EVIL_MUC_SECRET:=evil-muc-secret-$(printf '%s' "$PEER_STATE" | cksum | cut -d' ' -f1)}"
  # SMTP sink
  : "${PEER_SMTP_PORT:=2525}"
  # Kannel
  : "${PEER_KANNEL_ADMIN_PORT:=13000}"
  : "${PEER_KANNEL_ADMIN_PASS:=peer-admin}"
  : "${PEER_KANNEL_SMSBOX_PORT:=13001}"
  : "${PEER_KANNEL_SENDSMS_PORT:=13013}"
  : "${PEER_KANNEL_FAKESMSC_PORT:=10000}"
  : "${PEER_KANNEL_USER:=ucb}"
  : "${PEER_KANNEL_PASS:=peer-pw}"
  : "${PEER_KANNEL_LOG_LEVEL:=1}"   # 0 debug (PDU dumps), 1 info, 2 warning
  : "${PEER_KANNEL_HTTP_RETRY:=30}" # MO/DLR URL retries (connection failure or 5xx) ...
  : "${PEER_KANNEL_HTTP_DELAY:=2}"  # ... every N seconds
  : "${PEER_SMS_MO_URL:=$PEER_BRIDGE_URL/sms/kannel/mo?from=%p&to=%P&text=%b&coding=%c&charset=%C&smsc=%i&id=%I&ts=%T}"
  # Which services up.sh starts (space or comma separated): synapse prosody smtp kannel.
  : "${PEER_SERVICES:=synapse prosody}"
  PEER_SERVICES="${PEER_SERVICES//,/ }"
  export "${!PEER_@}"
}

peer_log() { printf '[peers] %s\n' "$*" >&2; }
peer_die() { printf '[peers] ERROR: %s\n' "$*" >&2; exit 1; }

# render TEMPLATE OUT: replace ${VAR} with exported environment values (only PEER_* vars).
peer_render() {
  local vars
  vars="$(compgen -v PEER_ | sed 's/^/$/' | tr '\n' ' ')"
  envsubst "$vars" < "$1" > "$2"
}

# True if something accepts TCP connections on 127.0.0.1:$1.
peer_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# peer_wait NAME TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds.
peer_wait() {
  local name=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      peer_log "$name not ready after ${timeout}s"; return 1
    fi
    sleep 0.2
  done
}

# pid file helpers -----------------------------------------------------------
peer_pidfile() { echo "$PEER_RUN/$1.pid"; }

# peer_alive NAME: the pid in NAME's pid file is running and its command line
# still contains the marker stored next to it (guards against pid reuse).
peer_alive() {
  local pf; pf="$(peer_pidfile "$1")"
  [[ -s "$pf" ]] || return 1
  local pid marker
  pid="$(head -n1 "$pf")"; marker="$(sed -n 2p "$pf")"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# peer_spawn NAME MARKER LOGFILE CMD...: start CMD detached (own session), record pid.
# PEER_SPAWN_STDIN=FILE: open FILE read-write as stdin (for a FIFO: never EOF).
# The daemon keeps no fd of ours beyond 0-2, so `scripts/peers/up.sh | tee` or `$(scripts/peers/up.sh)`
# return when up.sh does.
peer_spawn() {
  local name=$1 marker=$2 log=$3; shift 3
  (
    for fd in "/proc/$BASHPID"/fd/*; do
      fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
    done
    if [[ -n "${PEER_SPAWN_STDIN:-}" ]]; then
      exec setsid "$@" >>"$log" 2>&1 0<>"$PEER_SPAWN_STDIN"
    else
      exec setsid "$@" >>"$log" 2>&1 </dev/null
    fi
  ) &
  local pid=$!
  printf '%s\n%s\n' "$pid" "$marker" > "$(peer_pidfile "$name")"
}

# peer_stop NAME [TIMEOUT_S]: SIGTERM the recorded pid, SIGKILL after timeout.
peer_stop() {
  local name=$1 timeout=${2:-15} pf pid
  pf="$(peer_pidfile "$name")"
  [[ -f "$pf" ]] || return 0
  if peer_alive "$name"; then
    pid="$(head -n1 "$pf")"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(( $(date +%s) + timeout ))
    while kill -0 "$pid" 2>/dev/null; do
      if (( $(date +%s) >= deadline )); then
        peer_log "$name (pid $pid) ignored SIGTERM for ${timeout}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    peer_log "stopped $name (pid $pid)"
  fi
  rm -f "$pf"
}

peer_rss_kb() {  # RSS of NAME's pid in kB
  local pid; pid="$(head -n1 "$(peer_pidfile "$1")" 2>/dev/null)" || return 0
  awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null
}
