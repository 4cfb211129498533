#!/usr/bin/env bash
# Benchmark ucbridge through the real peers and write bench/results.md.
#   usage: bench/run.sh [--wait-ports SECONDS] [--db sqlite|postgres] [--log FILTER] [--scale]
#                       [bench.py options, e.g. --convs 5 --burst 100 --out FILE]
#
# 1. installs the peers if missing (scripts/peers/install.sh: Prosody, the venv with Synapse,
#    matrix-nio, slixmpp) and builds the bridge (cargo build --release --locked);
# 2. makes a fresh state dir .state/bench: a bridge config (--db: SQLite file, or a fresh
#    PostgreSQL database ucbridge_bench on 127.0.0.1:5432; --log: the log filter, default info as
#    shipped), the appservice registration, Synapse + Prosody started with it, the bridge started
#    and waited for (/health reports the XMPP component connected); with --scale the bridge is
#    stopped once migrated, bench/seed_scale.py fills its database (10,000 ghosts, 1,000 hosted
#    rooms, 5,000 direct chats...), and the start-up that follows is timed;
# 3. runs bench/bench.py (numbers, not asserts), which prints the tables and writes bench/results.md;
# 4. stops the bridge and the peers (also on failure or Ctrl-C).
# The peers' ports (8008 5222 5280 5347 9090 on 127.0.0.1) must be free: another state dir's peers
# (scripts/test.sh, scripts/demo.sh) would be in the way. --wait-ports N waits up to N seconds for them.
set -euo pipefail
export UCB_LOG_TAG=bench
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../scripts/lib.sh
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

WAIT_PORTS=0 DB=sqlite LOG_FILTER=info SCALE=0
ARGS=()
while (($#)); do
  case "$1" in
    --wait-ports) WAIT_PORTS=${2:?--wait-ports needs seconds}; shift 2 ;;
    --db) DB=${2:?--db needs sqlite or postgres}; shift 2 ;;
    --log) LOG_FILTER=${2:?--log needs a filter}; shift 2 ;;
    --scale) SCALE=1; shift ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

S="$ROOT/.state/bench"
CFG="$S/ucbridge.yaml"
REG="$S/registration.yaml"
LOG="$S/ucbridge.log"
# UCB_BENCH_BIN: a binary to measure instead of building the release one (to try the scripts).
BIN="${UCB_BENCH_BIN:-$ROOT/target/release/ucbridge}"
PORTS=(8008 5222 5280 5347 9090)
T0=$(date +%s)

# ------------------------------------------------------------------ install ---
"$ROOT/scripts/peers/install.sh" "$S"
ucb_ensure_toolchain
if [[ -n "${UCB_BENCH_BIN:-}" ]]; then
  export UCB_BENCH_BUILD="binary $UCB_BENCH_BIN (not rebuilt)"
else
  ucb_log "building the bridge (cargo build --release --locked)"
  cargo build --release --locked
fi
[[ -x "$BIN" ]] || ucb_die "no $BIN after the build"
VENV_PY="${PEER_VENV:-$ROOT/.state/venv}/bin/python"

# ---------------------------------------------------------------- free ports --
if [[ -d "$S/run" ]]; then   # leftovers of an interrupted run of this script
  peer_init_state "$S"
  peer_stop ucbridge 15 || true
  "$ROOT/scripts/peers/down.sh" "$S" || true
fi
busy_ports() { local p out=(); for p in "${PORTS[@]}"; do peer_port_open "$p" && out+=("$p"); done; echo "${out[*]}"; }
deadline=$(( $(date +%s) + WAIT_PORTS ))
while busy="$(busy_ports)"; [[ -n "$busy" ]]; do
  if (( $(date +%s) >= deadline )); then
    ucb_die "127.0.0.1 ports in use: $busy (another bridge or peers: scripts/test.sh, scripts/demo.sh stop?). --wait-ports SECONDS waits for them."
  fi
  ucb_log "ports in use: $busy; waiting"
  sleep 10
done

# ------------------------------------------------------------------- state ----
find "$S" -mindepth 1 -maxdepth 1 ! -name venv -exec rm -rf {} +
mkdir -p "$S"
peer_init_state "$S"

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  peer_stop ucbridge 15 || true
  "$ROOT/scripts/peers/down.sh" "$S" || true
  ucb_log "stopped everything ($(( $(date +%s) - T0 ))s in all)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case "$DB" in
  sqlite) DB_URL="sqlite://ucbridge.db" ;;
  postgres)
    PG_BASE="postgres://postgres@127.0.0.1:5432"
    psql -X -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS ucbridge_bench" -c "CREATE DATABASE ucbridge_bench" \
      || ucb_die "cannot recreate the PostgreSQL database ucbridge_bench on 127.0.0.1:5432"
    DB_URL="$PG_BASE/ucbridge_bench" ;;
  *) ucb_die "--db: sqlite or postgres, not $DB" ;;
esac

cat > "$CFG" <<EOF
# ucbridge config for the benchmark (written by bench/run.sh). Relative paths: beside this file.
homeserver: {url: "http://127.0.0.1:8008", domain: "localhost"}
appservice: {id: "ucbridge", listen: "127.0.0.1:9090", url: "http://127.0.0.1:9090", registration: "registration.yaml", bot_localpart: "ucbridge"}
xmpp: {component_jid: "bridge.localhost", server: "127.0.0.1:5347", secret: "${PEER_COMPONENT_SECRET:-peer-component-secret-0123}"}
database: {url: "$DB_URL"}
logging: {filter: "$LOG_FILTER"}
EOF
"$BIN" -c "$CFG" generate-registration -o "$REG" || ucb_die "generate-registration failed"

PEER_SERVICES="synapse prosody" PEER_APPSERVICE_REGISTRATION="$REG" "$ROOT/scripts/peers/up.sh" "$S" \
  || ucb_die "the peers did not start (logs in $S)"

# The bridge's environment must not point it elsewhere.
unset RUST_LOG UCBRIDGE_DATABASE_URL
start_bridge() {
  peer_spawn ucbridge "$CFG" "$LOG" "$BIN" -c "$CFG" run
  BRIDGE_PID="$(head -n1 "$(peer_pidfile ucbridge)")"
  local t0 deadline
  t0=$(date +%s%N)
  deadline=$(( $(date +%s) + 60 ))
  until ucb_health; do
    peer_alive ucbridge || { tail -n 30 "$LOG" >&2; ucb_die "the bridge exited; log: $LOG"; }
    (( $(date +%s) < deadline )) || { tail -n 30 "$LOG" >&2; ucb_die "the bridge was not healthy within 60 s; log: $LOG"; }
    sleep 0.05
  done
  STARTUP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
start_bridge
EXTRA=(--db-label "$DB" --log-filter "$LOG_FILTER")
if ((SCALE)); then
  ucb_log "scale run: stopping the migrated bridge, seeding its database"
  peer_stop ucbridge 15 || ucb_die "the bridge did not stop"
  if [[ "$DB" == sqlite ]]; then
    "$VENV_PY" "$ROOT/bench/seed_scale.py" --sqlite "$S/ucbridge.db"
  else
    "$VENV_PY" "$ROOT/bench/seed_scale.py" --postgres "$DB_URL"
  fi
  start_bridge
  ucb_log "start-up with the seeded database: ${STARTUP_MS} ms to healthy"
  EXTRA+=(--scale)
fi
ucb_log "bridge up (pid $BRIDGE_PID); settling 3 s before measuring its idle RSS"
sleep 3

# ------------------------------------------------------------------- bench ----
rc=0
timeout --signal=INT --kill-after=30 1800 \
  "$VENV_PY" "$ROOT/bench/bench.py" --state "$S" --bridge-pid "$BRIDGE_PID" \
  --bridge-log "$LOG" --out "$ROOT/bench/results-$DB$( ((SCALE)) && echo -scale).md" --startup-ms "$STARTUP_MS" "${EXTRA[@]}" "${ARGS[@]}" || rc=$?
peer_alive ucbridge || ucb_log "WARNING: the bridge is no longer running; log: $LOG"
((rc == 0)) || ucb_log "bench.py failed (exit $rc); bridge log: $LOG"
exit "$rc"
