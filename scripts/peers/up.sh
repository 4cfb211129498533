#!/usr/bin/env bash
# Start the real peers on loopback and wait until each one really answers.
#   usage: scripts/peers/up.sh [STATE_DIR]    (default <repo>/.state or $PEER_STATE; run install.sh first)
# Env: PEER_SERVICES (default "synapse prosody"; any of synapse prosody smtp kannel), and every PEER_* in lib.sh.
# Writes STATE_DIR/peers.env (source it in tests) and prints a one-line summary.
# Already-running services (same state dir) are left alone.
set -euo pipefail
PEER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$PEER_DIR/lib.sh"
peer_init_state "${1:-}"
peer_defaults
[[ -x "$PEER_VENV/bin/python" ]] || peer_die "no venv in $PEER_VENV: run scripts/peers/install.sh $PEER_STATE first"
T0=$(date +%s%N)
if [[ "$PEER_APPSERVICE_REGISTRATION" != none && -f "$PEER_APPSERVICE_REGISTRATION" ]]; then
  PEER_APPSERVICE_REGISTRATION="$(cd "$(dirname "$PEER_APPSERVICE_REGISTRATION")" && pwd)/$(basename "$PEER_APPSERVICE_REGISTRATION")"
fi
want() { [[ " $PEER_SERVICES " == *" $1 "* ]]; }
need_free_port() {
  if peer_port_open "$1"; then peer_die "$2: port 127.0.0.1:$1 is already taken by another process"; fi
}
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 ))ms"; }

# ---------------------------------------------------------------- synapse ----
synapse_ready() { curl -fsS "http://127.0.0.1:$PEER_SYNAPSE_PORT/health" | grep -q OK; }
start_synapse() {
  local d="$PEER_STATE/synapse"
  mkdir -p "$d/media_store"
  if peer_alive synapse; then peer_log "synapse already running"; return 0; fi
  need_free_port "$PEER_SYNAPSE_PORT" synapse
  if [[ "$PEER_APPSERVICE_REGISTRATION" == none ]]; then
    PEER_SYNAPSE_AS_FILES="[]"
  else
    [[ -f "$PEER_APPSERVICE_REGISTRATION" ]] || peer_die "PEER_APPSERVICE_REGISTRATION=$PEER_APPSERVICE_REGISTRATION not found"
    # shellcheck disable=SC2089,SC2090  # a YAML list literal, quotes wanted
    PEER_SYNAPSE_AS_FILES="[\"$(cd "$(dirname "$PEER_APPSERVICE_REGISTRATION")" && pwd)/$(basename "$PEER_APPSERVICE_REGISTRATION")\"]"
  fi
  # shellcheck disable=SC2090
  export PEER_SYNAPSE_AS_FILES
  peer_render "$PEER_DIR/templates/synapse/homeserver.yaml" "$d/homeserver.yaml"
  peer_render "$PEER_DIR/templates/synapse/log.yaml" "$d/log.yaml"
  if [[ ! -s "$d/signing.key" ]]; then
    "$PEER_VENV/bin/python" -m synapse.app.homeserver -c "$d/homeserver.yaml" --generate-keys >>"$d/stdout.log" 2>&1
  fi
  peer_spawn synapse "$d/homeserver.yaml" "$d/stdout.log" \
    "$PEER_VENV/bin/python" -m synapse.app.homeserver -c "$d/homeserver.yaml"
  peer_wait synapse 180 synapse_ready || { tail -n 30 "$d/stdout.log" "$d/homeserver.log" >&2; return 1; }
  # Admin user via the shared-secret admin API (HMAC-SHA1 over nonce\0user\0pass\0admin).
  local nonce mac
  nonce="$(curl -fsS "http://127.0.0.1:$PEER_SYNAPSE_PORT/_synapse/admin/v1/register" | sed -E 's/.*"nonce":"([^"]+)".*/\1/')"
  mac="$(printf '%s\0%s\0%s\0admin' "$nonce" "$PEER_SYNAPSE_ADMIN_USER" "$PEER_SYNAPSE_ADMIN_PASS" \
        | openssl dgst -sha1 -hmac "$PEER_SYNAPSE_REG_SECRET" | awk '{print $NF}')"
  curl -sS -o "$d/admin-register.json" -X POST "http://127.0.0.1:$PEER_SYNAPSE_PORT/_synapse/admin/v1/register" \
    -H 'Content-Type: application/json' \
    -d "{\"nonce\":\"$nonce\",\"username\":\"$PEER_SYNAPSE_ADMIN_USER\",\"password\":\"$PEER_SYNAPSE_ADMIN_PASS\",\"admin\":true,\"mac\":\"$mac\"}"
  grep -q -E 'access_token|M_USER_IN_USE' "$d/admin-register.json" || { peer_log "admin registration failed: $(cat "$d/admin-register.json")"; return 1; }
  peer_log "synapse ready ($(elapsed))"
}

# ---------------------------------------------------------------- prosody ----
start_prosody() {
  local d="$PEER_STATE/prosody" cfg="$PEER_STATE/prosody/prosody.cfg.lua"
  mkdir -p "$d/data" "$d/certs"
  if peer_alive prosody; then peer_log "prosody already running"; return 0; fi
  need_free_port "$PEER_XMPP_C2S_PORT" prosody
  need_free_port "$PEER_COMPONENT_PORT" prosody
  peer_render "$PEER_DIR/templates/prosody/prosody.cfg.lua" "$cfg"
  # Self-signed cert so STARTTLS is offered (tests may also stay plaintext).
  if [[ ! -s "$d/certs/$PEER_XMPP_DOMAIN.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$PEER_XMPP_DOMAIN" \
      -addext "subjectAltName=DNS:$PEER_XMPP_DOMAIN,DNS:*.$PEER_XMPP_DOMAIN" \
      -keyout "$d/certs/$PEER_XMPP_DOMAIN.key" -out "$d/certs/$PEER_XMPP_DOMAIN.crt" >/dev/null 2>&1
  fi
  local u
  for u in $PEER_XMPP_USERS; do
    prosodyctl --config "$cfg" register "${u%%:*}" "$PEER_XMPP_DOMAIN" "${u#*:}" >>"$d/prosodyctl.log" 2>&1 \
      || { peer_log "prosodyctl register ${u%%:*} failed"; tail -n 5 "$d/prosodyctl.log" >&2; return 1; }
  done
  peer_spawn prosody "$cfg" "$d/stdout.log" prosody --config "$cfg" -F
  peer_wait prosody 30 peer_port_open "$PEER_XMPP_C2S_PORT" || { tail -n 30 "$d/stdout.log" "$d/prosody.log" >&2; return 1; }
  peer_wait prosody-component 10 peer_port_open "$PEER_COMPONENT_PORT" || return 1
  peer_log "prosody ready ($(elapsed))"
}

# ------------------------------------------------------------------- smtp ----
start_smtp() {
  local d="$PEER_STATE/smtp"
  mkdir -p "$d/maildir/cur" "$d/maildir/new" "$d/maildir/tmp"
  if peer_alive smtp; then peer_log "smtp already running"; return 0; fi
  need_free_port "$PEER_SMTP_PORT" smtp
  peer_spawn smtp "$d/maildir" "$d/smtp.log" \
    "$PEER_VENV/bin/python" -m aiosmtpd -n -u -l "127.0.0.1:$PEER_SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$d/maildir"
  peer_wait smtp 30 peer_port_open "$PEER_SMTP_PORT" || { tail -n 20 "$d/smtp.log" >&2; return 1; }
  peer_log "smtp ready ($(elapsed))"
}

# ----------------------------------------------------------------- kannel ----
kannel_status() { curl -fsS "http://127.0.0.1:$PEER_KANNEL_ADMIN_PORT/status.txt?password=$PEER_KANNEL_ADMIN_PASS"; }
kannel_smsc_online() { kannel_status | grep -E '^ *fake\[fake\]' | grep -q online; }
kannel_smsbox_connected() { kannel_status | grep -q -E 'smsbox:.*IP 127\.0\.0\.1'; }
start_kannel() {
  local d="$PEER_STATE/kannel" fakesmsc=/usr/lib/kannel/test/fakesmsc
  mkdir -p "$d"
  peer_render "$PEER_DIR/templates/kannel/kannel.conf" "$d/kannel.conf"
  if ! peer_alive bearerbox; then
    need_free_port "$PEER_KANNEL_ADMIN_PORT" bearerbox
    need_free_port "$PEER_KANNEL_FAKESMSC_PORT" bearerbox
    peer_spawn bearerbox "$d/kannel.conf" "$d/bearerbox.out" /usr/sbin/bearerbox "$d/kannel.conf"
    peer_wait bearerbox 30 peer_port_open "$PEER_KANNEL_ADMIN_PORT" || { tail -n 20 "$d/bearerbox.out" >&2; return 1; }
    peer_wait bearerbox-smsc 10 peer_port_open "$PEER_KANNEL_FAKESMSC_PORT" || return 1
  fi
  if [[ "${PEER_FAKESMSC:-1}" != 0 ]] && ! peer_alive fakesmsc; then
    # MO input: one line "FROM TO text BODY" per write into mo.fifo (scripts/peers/sms-inject.sh).
    # Opened read-write so fakesmsc never sees EOF; stdbuf -i0 keeps lines in the
    # pipe (fakesmsc select()s the fd, then fgets() one line). -i 0: no send pacing.
    # MT output: debug lines "Got message N: <FROM TO text BODY>" in fakesmsc.log.
    [[ -p "$d/mo.fifo" ]] || mkfifo "$d/mo.fifo"
    PEER_SPAWN_STDIN="$d/mo.fifo" peer_spawn fakesmsc "fakesmsc -H 127.0.0.1 -r $PEER_KANNEL_FAKESMSC_PORT" "$d/fakesmsc.log" \
      stdbuf -i0 "$fakesmsc" -H 127.0.0.1 -r "$PEER_KANNEL_FAKESMSC_PORT" -i 0 -v 0
  fi
  if ! peer_alive smsbox; then
    need_free_port "$PEER_KANNEL_SENDSMS_PORT" smsbox
    peer_spawn smsbox "$d/kannel.conf" "$d/smsbox.out" /usr/sbin/smsbox "$d/kannel.conf"
  fi
  peer_wait smsbox 30 peer_port_open "$PEER_KANNEL_SENDSMS_PORT" || { tail -n 20 "$d/smsbox.out" >&2; return 1; }
  peer_wait kannel-smsbox-link 30 kannel_smsbox_connected || return 1
  if [[ "${PEER_FAKESMSC:-1}" != 0 ]]; then
    peer_wait kannel-fake-smsc 30 kannel_smsc_online || { tail -n 20 "$d/fakesmsc.log" >&2; return 1; }
  fi
  peer_log "kannel ready ($(elapsed))"
}

# ------------------------------------------------------------------- main ----
declare -A JOBS=()
for s in $PEER_SERVICES; do
  case "$s" in synapse|prosody|smtp|kannel) ;; *) peer_die "unknown service '$s' in PEER_SERVICES";; esac
  "start_$s" 1>&2 &
  JOBS[$s]=$!
done
fail=0
for s in "${!JOBS[@]}"; do
  wait "${JOBS[$s]}" || { peer_log "$s FAILED to start (logs in $PEER_STATE/$s*)"; fail=1; }
done

{
  echo "# written by scripts/peers/up.sh; source me"
  for v in $(compgen -v PEER_); do printf 'export %s=%q\n' "$v" "${!v}"; done
  printf 'export PEER_SYNAPSE_URL=%q\n' "http://127.0.0.1:$PEER_SYNAPSE_PORT"
  printf 'export PEER_SENDSMS_URL=%q\n' "http://127.0.0.1:$PEER_KANNEL_SENDSMS_PORT/cgi-bin/sendsms"
  printf 'export PEER_MO_FIFO=%q\n' "$PEER_STATE/kannel/mo.fifo"
  printf 'export PEER_FAKESMSC_LOG=%q\n' "$PEER_STATE/kannel/fakesmsc.log"
  printf 'export PEER_MAILDIR=%q\n' "$PEER_STATE/smtp/maildir"
} > "$PEER_STATE/peers.env"

if ((fail)); then
  peer_log "some services failed; running ones stay up (stop them with scripts/peers/down.sh $PEER_STATE)"
  exit 1
fi
sum="peers up in $(elapsed):"
want synapse && sum+=" synapse http://127.0.0.1:$PEER_SYNAPSE_PORT ($PEER_MATRIX_DOMAIN, AS: $PEER_APPSERVICE_REGISTRATION) |"
want prosody && sum+=" prosody c2s 127.0.0.1:$PEER_XMPP_C2S_PORT ($PEER_XMPP_DOMAIN, muc $PEER_MUC_DOMAIN), component $PEER_COMPONENT_DOMAIN@127.0.0.1:$PEER_COMPONENT_PORT |"
want smtp && sum+=" smtp 127.0.0.1:$PEER_SMTP_PORT |"
want kannel && sum+=" kannel sendsms 127.0.0.1:$PEER_KANNEL_SENDSMS_PORT, MO -> ${PEER_SMS_MO_URL%%\?*} |"
echo "$sum state $PEER_STATE/peers.env"
