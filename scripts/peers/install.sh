#!/usr/bin/env bash
# Idempotent install of the real peers the bridge is tested against.
#   usage: scripts/peers/install.sh [STATE_DIR]      (default: <repo>/.state, or $PEER_STATE)
# - Debian packages: prosody (XMPP server) and prosody-modules (mod_vcard_muc), kannel + kannel-extras (SMS gateway;
#   the fake SMSC binary `fakesmsc` lives in kannel-extras).
# - Python venv in $PEER_VENV (default <repo>/.state/venv, shared by every state dir):
#   matrix-synapse, matrix-nio, slixmpp, aiosmtpd, pytest, pytest-timeout, pyyaml, aiohttp, every one
#   of them and their dependencies pinned with == by scripts/peers/python-constraints.txt.
# Nothing is started. Safe to run again: it skips what is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${1:-${PEER_STATE:-$ROOT/.state}}"
mkdir -p "$STATE"
t0=$(date +%s)

# Pinned so that every developer and CI get the same peers (bump deliberately).
PY_PKGS=(
  "matrix-synapse==${PEER_SYNAPSE_VERSION:-1.163.2}"
  "matrix-nio==${PEER_NIO_VERSION:-0.26.0}"
  "slixmpp==${PEER_SLIXMPP_VERSION:-1.17.0}"
  "aiosmtpd==${PEER_AIOSMTPD_VERSION:-1.4.6}"
  "pytest==${PEER_PYTEST_VERSION:-9.2.0}"
  "pytest-timeout==2.4.0"
  "pyyaml==6.0.4"
  "aiohttp==3.14.5"   # the tests import it directly
)
# Every transitive dependency too (pip freeze); a PEER_*_VERSION override that disagrees with it
# needs PEER_PY_CONSTRAINTS=/dev/null.
CONSTRAINTS="${PEER_PY_CONSTRAINTS:-$ROOT/scripts/peers/python-constraints.txt}"
# prosody-modules: mod_vcard_muc, the room avatars of the MUC service (linked-room avatars).
APT_PKGS=(prosody prosody-modules kannel kannel-extras curl openssl gettext-base)   # gettext-base: envsubst

# ---- apt ------------------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[install] apt: ${missing[*]}"
  # No init system runs services here; keep package postinst scripts from
  # starting system-wide daemons (they would grab 5222/13013 on all interfaces).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[install] apt: ${APT_PKGS[*]} already installed"
fi

# ---- python venv ------------------------------------------------------------
VENV="${PEER_VENV:-$ROOT/.state/venv}"
mkdir -p "$(dirname "$VENV")"
want="$(printf '%s\n' "${PY_PKGS[@]}"; cat "$CONSTRAINTS")"
if [[ -x "$VENV/bin/python" && -f "$VENV/.peer-pkgs" && "$(cat "$VENV/.peer-pkgs")" == "$want" ]]; then
  echo "[install] venv: up to date ($VENV)"
else
  echo "[install] venv: installing ${PY_PKGS[*]}"
  PY="${PEER_PYTHON:-python3}"
  # Debian's own python3 has no venv/ensurepip without python3-venv.
  if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip wheel >/dev/null
  "$VENV/bin/pip" install -q -c "$CONSTRAINTS" "${PY_PKGS[@]}"
  printf '%s\n' "$want" > "$VENV/.peer-pkgs"
fi
echo "[install] done in $(( $(date +%s) - t0 ))s"
