#!/usr/bin/env bash
# Everything CI checks, from a fresh machine (as root):
#   scripts/test.sh [--unit-only | --e2e-only] [--no-build] [--wait-ports SECONDS]
#
# 1. installs what the tests need: the peers (scripts/peers/install.sh: Prosody, Kannel, the venv with
#    Synapse, matrix-nio, slixmpp, pytest) and PostgreSQL on 127.0.0.1:5432 (database "test", trust
#    auth from 127.0.0.1) if nothing answers there;
# 2. unit stage: cargo fmt --check, cargo clippy (-D warnings), cargo build, cargo test
#    (UCB_TEST_PG_URL points the store tests at PostgreSQL), contrib/check.sh (systemd unit, Containerfile);
# 3. e2e stage: a fresh state dir .state/test with a config and a generated registration, Synapse and
#    Prosody and Kannel (bearerbox, smsbox, fake SMSC) started with it, then pytest tests/e2e twice (UCB_DB=sqlite, UCB_DB=postgres); the
#    fixtures start and stop the bridge (target/debug/ucbridge). Peers and bridge are stopped on exit.
# --no-build (with --e2e-only): use the existing binary ($UCB_BIN or target/debug/ucbridge) as it is.
# --wait-ports N: wait up to N s for the peers' ports to be free (another state dir's peers, a bench).
# Exit code 0 only if every step passed.
set -euo pipefail
export UCB_LOG_TAG=test
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
cd "$UCB_ROOT"

unit=1 e2e=1 build=1 wait_ports=0
while (($#)); do
  case "$1" in
    --unit-only) e2e=0 ;;
    --e2e-only) unit=0 ;;
    --no-build) build=0 ;;
    --wait-ports) wait_ports=${2:?--wait-ports needs seconds}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: $0 [--unit-only | --e2e-only] [--no-build] [--wait-ports SECONDS]" >&2; exit 2 ;;
  esac
  shift
done
((unit || e2e)) || ucb_die "--unit-only and --e2e-only exclude each other"
((build || !unit)) || ucb_die "--no-build only goes with --e2e-only"

export UCB_TEST_PG_URL="${UCB_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
S="$UCB_ROOT/.state/test"
T0=$(date +%s)
failures=()
COUNTS="$(mktemp -d)"   # test outputs, for the closing count

step() { ucb_log "== $* ($(( $(date +%s) - T0 ))s)"; }

# ------------------------------------------------------------------ postgres --
pg_psql() { psql -X -w -q -v ON_ERROR_STOP=1 "$@"; }
ensure_postgres() {
  local base="${UCB_TEST_PG_URL%/*}" db="${UCB_TEST_PG_URL##*/}"
  db="${db%%\?*}"
  if ! peer_port_open 5432; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      ucb_log "installing PostgreSQL (apt)"
      local prc=""
      if [[ ! -e /usr/sbin/policy-rc.d ]]; then   # no init system: keep postinst from starting daemons
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; prc=1
      fi
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      [[ -n "$prc" ]] && rm -f /usr/sbin/policy-rc.d
    fi
    local ver
    ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)"
    [[ -n "$ver" ]] || ucb_die "PostgreSQL is installed but /usr/lib/postgresql has no version"
    if [[ ! -d "/etc/postgresql/$ver/main" ]]; then
      pg_createcluster "$ver" main >/dev/null
    fi
    ucb_log "starting PostgreSQL $ver/main"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    peer_wait postgres 60 peer_port_open 5432 || ucb_die "PostgreSQL did not open 127.0.0.1:5432"
  fi
  # Trust auth for 127.0.0.1 (a test database on loopback; no password anywhere).
  if ! pg_psql "$base/postgres" -c 'select 1' >/dev/null 2>&1; then
    ucb_log "enabling trust auth for 127.0.0.1 in pg_hba.conf"
    local hba
    hba="$(runuser -u postgres -- psql -X -Atc 'show hba_file')" || ucb_die "cannot reach PostgreSQL as the postgres user to fix pg_hba.conf"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    runuser -u postgres -- psql -X -qc 'select pg_reload_conf()' >/dev/null
    sleep 0.5
    pg_psql "$base/postgres" -c 'select 1' >/dev/null || ucb_die "still cannot connect to $base/postgres"
  fi
  if [[ "$(pg_psql "$base/postgres" -Atc "select 1 from pg_database where datname = '$db'")" != 1 ]]; then
    pg_psql "$base/postgres" -c "create database \"$db\""
    ucb_log "created database $db"
  fi
  ucb_log "PostgreSQL ready: $UCB_TEST_PG_URL"
}

# ------------------------------------------------------------------- cleanup --
cleanup() {
  local rc=$?
  if [[ -d "$S/run" ]]; then
    peer_init_state "$S"
    peer_stop ucbridge 15 || true
    "$UCB_ROOT/scripts/peers/down.sh" "$S" || true
  fi
  exit "$rc"
}

run_step() {  # run_step NAME CMD...: run, remember a failure, go on
  local name=$1; shift
  step "$name"
  "$@" && return 0
  local rc=$?
  ucb_log "FAILED: $name (exit $rc)"
  failures+=("$name")
  return 0
}

# --------------------------------------------------------------------- main --
step "install"
if ((e2e)); then "$UCB_ROOT/scripts/peers/install.sh"; fi
if ((build)); then ucb_ensure_toolchain; fi
ensure_postgres

if ((unit)); then
  run_step "cargo fmt --check" cargo fmt --check
  run_step "cargo clippy" cargo clippy --all-targets --locked -- -D warnings
fi
if ((build)); then
  step "cargo build --locked"
  cargo build --locked || ucb_die "cargo build failed"
fi
if ((unit)); then
  run_step "cargo test" bash -c 'set -o pipefail; cargo test --locked 2>&1 | tee "$0"' "$COUNTS/cargo-test.log"
  run_step "packaging (contrib/check.sh)" bash contrib/check.sh
fi

if ((e2e)); then
  step "e2e: fresh state dir $S"
  if [[ -d "$S/run" ]]; then   # leftovers of an interrupted run
    peer_init_state "$S"
    peer_stop ucbridge 15 || true
    "$UCB_ROOT/scripts/peers/down.sh" "$S" || true
  fi
  ports_free() {
    local port
    for port in "${PEER_SYNAPSE_PORT:-8008}" "${PEER_XMPP_C2S_PORT:-5222}" "${PEER_COMPONENT_PORT:-5347}" "${UCB_LISTEN##*:}" \
      "${PEER_KANNEL_ADMIN_PORT:-13000}" "${PEER_KANNEL_SENDSMS_PORT:-13013}" "${PEER_KANNEL_FAKESMSC_PORT:-10000}"; do
      if peer_port_open "$port"; then taken=$port; return 1; fi
    done
  }
  taken=""
  if ! ports_free && ((wait_ports > 0)); then
    ucb_log "waiting up to ${wait_ports}s for 127.0.0.1:$taken and the other peer ports to be free"
    peer_wait ports "$wait_ports" ports_free || true
  fi
  ports_free || ucb_die "127.0.0.1:$taken is taken (peers of another state dir? scripts/demo.sh stop, or scripts/peers/down.sh .state/NAME)"
  rm -rf "$S"
  mkdir -p "$S"
  trap cleanup EXIT
  BIN="${UCB_BIN:-${CARGO_TARGET_DIR:-$UCB_ROOT/target}/debug/ucbridge}"
  ucb_write_config "$S/ucbridge.yaml"
  "$BIN" -c "$S/ucbridge.yaml" generate-registration -o "$S/registration.yaml" \
    || ucb_die "generate-registration failed"
  [[ -s "$S/registration.yaml" ]] || ucb_die "generate-registration wrote no $S/registration.yaml"
  PEER_SERVICES="synapse prosody kannel" PEER_APPSERVICE_REGISTRATION="$S/registration.yaml" \
    "$UCB_ROOT/scripts/peers/up.sh" "$S" || ucb_die "the peers did not start"
  VENV_PY="${PEER_VENV:-$UCB_ROOT/.state/venv}/bin/python"
  for db in sqlite postgres; do
    step "e2e: pytest tests/e2e (UCB_DB=$db)"
    rc=0
    # UCB_E2E selects tests while developing (e.g. tests/e2e/test_notify.py); CI runs them all.
    # --durations: the slowest tests, to keep the suite inside its time budget.
    # shellcheck disable=SC2086
    UCB_DB=$db UCB_BIN="$BIN" PEERS_ENV="$S/peers.env" UCB_CONFIG="$S/ucbridge.yaml" \
      "$VENV_PY" -m pytest -q -p no:cacheprovider --durations=12 ${UCB_E2E:-tests/e2e} 2>&1 | tee "$COUNTS/pytest-$db.log" || rc=$?
    if ((rc == 5)); then
      ucb_log "FAILED: pytest collected no tests (UCB_DB=$db)"
    fi
    if ((rc != 0)); then failures+=("e2e UCB_DB=$db (pytest exit $rc)"); fi
  done
fi

step "done"
# The closing line: how many tests passed (cargo's "test result" lines, pytest's summary line).
count_passed() { { grep -hoE '[0-9]+ passed' || true; } | awk '{s += $1} END {print s + 0}'; }
unit_passed=$({ grep -h '^test result:' "$COUNTS/cargo-test.log" 2>/dev/null || true; } | count_passed)
e2e_sqlite=$({ tail -n 3 "$COUNTS/pytest-sqlite.log" 2>/dev/null || true; } | count_passed)
e2e_postgres=$({ tail -n 3 "$COUNTS/pytest-postgres.log" 2>/dev/null || true; } | count_passed)
ucb_log "tests passed: $((unit_passed + e2e_sqlite + e2e_postgres)) (unit and store $unit_passed, e2e SQLite $e2e_sqlite, e2e PostgreSQL $e2e_postgres); total time $(( $(date +%s) - T0 ))s"
if ((${#failures[@]})); then
  ucb_log "FAILED steps: ${failures[*]}"
  exit 1
fi
ucb_log "all steps passed in $(( $(date +%s) - T0 ))s"
