#!/usr/bin/env bash
# Checks the packaging files as far as this machine can: the systemd unit with
# `systemd-analyze verify` (the binary path pointed at an existing executable), and the
# Containerfile's shape (multi-stage, non-root, the paths the README names). Containers are
# not built here: no container engine runs on the development machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "contrib/check.sh: $*" >&2; exit 1; }

unit=$here/contrib/ucbridge.service
for want in DynamicUser=yes StateDirectory=ucbridge ProtectSystem=strict NoNewPrivileges=yes \
            PrivateTmp=yes RestrictAddressFamilies= SystemCallFilter=@system-service; do
  grep -q "^$want" "$unit" || fail "ucbridge.service lacks $want"
done
if command -v systemd-analyze >/dev/null; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  bin=${UCB_BIN:-$here/target/debug/ucbridge}
  [ -x "$bin" ] || bin=/bin/true
  sed "s|/usr/local/bin/ucbridge|$bin|" "$unit" > "$tmp/ucbridge.service"
  out=$(systemd-analyze verify "$tmp/ucbridge.service" 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
  echo "ucbridge.service: systemd-analyze verify OK"
else
  echo "ucbridge.service: no systemd-analyze here, only the key lines were checked"
fi

cf=$here/Containerfile
[ "$(grep -c '^FROM ' "$cf")" -ge 2 ] || fail "Containerfile is not multi-stage"
user=$(grep '^USER ' "$cf" | tail -1 | awk '{print $2}' || true)
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || fail "Containerfile runs as root"
grep -q 'cargo build --release --locked' "$cf" || fail "Containerfile does not build --locked"
for dir in $(grep -oE '^COPY (src|migrations|templates|config) ' "$cf" | awk '{print $2}'); do
  [ -d "$here/$dir" ] || fail "Containerfile copies $dir, which does not exist"
done
echo "Containerfile: multi-stage, runs as $user"
