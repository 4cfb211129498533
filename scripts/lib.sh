# shellcheck shell=bash
# Helpers shared by scripts/demo.sh and scripts/test.sh. Source it; do not run it.
# Builds on scripts/peers/lib.sh (pid files with a marker, detached spawning, waiting).

UCB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=peers/lib.sh
. "$UCB_ROOT/scripts/peers/lib.sh"

ucb_log() { printf '[%s] %s\n' "${UCB_LOG_TAG:-ucbridge}" "$*" >&2; }
ucb_die() { printf '[%s] ERROR: %s\n' "${UCB_LOG_TAG:-ucbridge}" "$*" >&2; exit 1; }

# Where the bridge listens (appservice API, /health); must match the registration url.
: "${UCB_LISTEN:=127.0.0.1:9090}"
# The secret Kannel's MO and DLR calls carry (sms.inbound_secret; in PEER_SMS_MO_URL).
: "${UCB_SMS_SECRET:=e2e-sms-inbound-secret-0123}"
export UCB_SMS_SECRET
: "${PEER_SMS_MO_URL:=http://$UCB_LISTEN/sms/kannel/mo?key=$UCB_SMS_SECRET&from=%p&to=%P&text=%b&coding=%c&charset=%C&smsc=%i&id=%I&ts=%T}"
export PEER_SMS_MO_URL
UCB_HEALTH_URL="http://$UCB_LISTEN/health"
# The chatbot's provider stand-in (tests/e2e/openai_standin.py) listens beside the bridge.
: "${UCB_CHATBOT_PORT:=$(( ${UCB_LISTEN##*:} + 7 ))}"

# cargo must exist (the machine's toolchain); a C compiler is needed by crates that build C (ring).
ucb_ensure_toolchain() {
  if ! command -v cargo >/dev/null 2>&1; then
    ucb_die "cargo not found. Install a Rust toolchain (rustup, stable >= 1.94) so that 'cargo' is on PATH, then run this again."
  fi
  if ! command -v cc >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || ucb_die "no C compiler (cc) or pkg-config, and no apt-get to install them"
    ucb_log "installing Rust build dependencies (build-essential pkg-config)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential pkg-config >/dev/null
  fi
}

# ucb_write_config FILE: the bridge config for the local peers (relative paths are
# relative to the config file's directory: registration.yaml and ucbridge.db beside it).
ucb_write_config() {
  local file=$1
  mkdir -p "$(dirname "$file")"
  cat > "$file" <<EOF
# ucbridge config for the local peers (scripts/peers): Synapse on 127.0.0.1:8008 (localhost),
# Prosody's XEP-0114 component port 127.0.0.1:5347 (bridge.localhost).
# Relative paths are relative to this file's directory.
homeserver:
  url: "http://127.0.0.1:${PEER_SYNAPSE_PORT:-8008}"
  domain: "${PEER_MATRIX_DOMAIN:-localhost}"
appservice:
  id: "ucbridge"
  listen: "$UCB_LISTEN"
  url: "http://$UCB_LISTEN"
  registration: "registration.yaml"
  bot_localpart: "ucbridge"
xmpp:
  component_jid: "${PEER_COMPONENT_DOMAIN:-bridge.localhost}"
  server: "127.0.0.1:${PEER_COMPONENT_PORT:-5347}"
  secret: "${PEER_COMPONENT_SECRET:-peer-component-secret-0123}"
database:
  url: "sqlite://ucbridge.db"
# Files: XMPP uploads go to Prosody's XEP-0363 service on 127.0.0.1 (a loopback address the
# bridge refuses unless allowed here); Matrix files are served from the bridge's own port.
media:
  max_bytes: 10485760
  allow_private_hosts: ["127.0.0.1"]
admins:
  # Local accounts whose name starts with "admin" (the tests create such users).
  matrix: ["@admin*:${PEER_MATRIX_DOMAIN:-localhost}"]
  xmpp: ["admin*@${PEER_XMPP_DOMAIN:-localhost}"]
logging:
  filter: "info,ucbridge=debug"
# Missed calls: tests/e2e/test_missed_calls.py signs webhooks with this secret and runs its own
# SMTP server (aiosmtpd) on 127.0.0.1:${UCB_CALLS_SMTP_PORT:-2526}.
missed_calls:
  webhook:
    secret: "e2e-calls-webhook-secret"
  rules:
    policy: all
    channels: [email, chat, sms]
  users:
    - {id: anna, extensions: ["201"], email: "anna@calls.test", language: de, matrix_user: "@calls-anna:${PEER_MATRIX_DOMAIN:-localhost}"}
    - {id: ben, extensions: ["202"], email: "ben@calls.test", language: en}
    - {id: carla, extensions: ["203"], email: "carla@calls.test", language: en}
    - {id: dora, extensions: ["204"], email: "dora@calls.test"}
    - {id: emil, extensions: ["205"], email: "emil@calls.test", language: de}
    # SMS notices only (tests/e2e/test_sms.py): from the caller's number (sms_caller_as_sender).
    - {id: hanna, extensions: ["208"], mobile: "+49 176 5550208", language: en, channels: [sms]}
    # tests/e2e/test_commands.py: users who switch their notices off and on, and change language.
    - {id: fritz, extensions: ["206"], language: en, matrix_user: "@calls-fritz:${PEER_MATRIX_DOMAIN:-localhost}", channels: [chat]}
    - {id: gina, extensions: ["207"], language: en, xmpp_jid: "calls-gina@${PEER_XMPP_DOMAIN:-localhost}", channels: [chat]}
    # tests/e2e/test_notification_choices.py: no address in the config (chat notices), until ivo
    # chooses e-mail with his own address.
    - {id: ivo, extensions: ["231"], language: en, matrix_user: "@calls-ivo:${PEER_MATRIX_DOMAIN:-localhost}"}
    # tests/e2e/test_notification_choices.py: vera chooses SMS, then loses the sms permission.
    - {id: vera, extensions: ["241"], language: en, matrix_user: "@calls-vera:${PEER_MATRIX_DOMAIN:-localhost}"}
    # tests/e2e/test_phone_presence.py: pia (both networks) is shown busy while on the phone; quinn may
    # pick up her calls (one pickup group), rosa may not.
    - {id: pia, extensions: ["211"], language: en, matrix_user: "@calls-pia:${PEER_MATRIX_DOMAIN:-localhost}", xmpp_jid: "calls-pia@${PEER_XMPP_DOMAIN:-localhost}", channels: [chat]}
    - {id: quinn, extensions: ["212"], language: en, matrix_user: "@calls-quinn:${PEER_MATRIX_DOMAIN:-localhost}", channels: [chat]}
    - {id: rosa, extensions: ["213"], language: en, xmpp_jid: "calls-rosa@${PEER_XMPP_DOMAIN:-localhost}", channels: [chat]}
  presence_from_calls:
    enabled: true
    note: {en: "On the phone", de: "Am Telefon"}
  pickup_groups: [["211", "212"]]
  # The called line's name in the notices (tests/e2e/test_missed_call_rules.py).
  lines:
    - {number: "+49 30 5550 999", name: "Hotline Beispiel"}
  contacts:
    region: DE
    files: ["calls-contacts.vcf"]
  mail:
    smtp: {host: "127.0.0.1", port: ${UCB_CALLS_SMTP_PORT:-2526}, tls: none, timeout_secs: 5}
    from_address: "calls@bridge.test"
    from_name: "ucbridge calls"
    message_id_domain: "bridge.test"
    link_prefix: "tel:"
    caller_as_sender: true
    attach_vcard: true
    default_language: en
    time_zone: Europe/Berlin
  journal_token: "e2e-journal-token-0123456789"
  sms_caller_as_sender: true
# Missed-chat summaries: long enough that no other test's unread message gets one during a run;
# tests/e2e/test_journal.py runs a variant with a threshold of seconds.
missed_chats:
  after_secs: 3600
# SMS through the peers' Kannel (tests/e2e/test_sms.py); its MO URL is PEER_SMS_MO_URL.
sms:
  provider: kannel
  default_region: DE
  sender: "+4930555000"
  inbound_secret: "$UCB_SMS_SECRET"
  max_parts: 4
  rate_limits: {per_user_per_minute: 30, global_per_minute: 600, daily_cap_per_user: 60}
  kannel:
    sendsms_url: "http://127.0.0.1:${PEER_KANNEL_SENDSMS_PORT:-13013}/cgi-bin/sendsms"
    username: "${PEER_KANNEL_USER:-ucb}"
    password: "${PEER_KANNEL_PASS:-peer-pw}"
    dlr_mask: 3
    timeout_secs: 5
# The AI assistant against the provider stand-in the tests start (tests/e2e/test_chatbot.py);
# its key is read from chatbot.key beside this file (a fresh one per state dir).
chatbot:
  localpart: assistant
  display_name: "Assistant"
  provider: openai
  openai:
    base_url: "http://127.0.0.1:${UCB_CHATBOT_PORT}/v1"
    model: "e2e-model"
  api_key_file: "chatbot.key"
  avatar_file: "chatbot-avatar.png"
  system_prompt: "You are the e2e assistant."
  context_tokens: 2000
  timeout_secs: 10
  max_attempts: 3
  image_keywords: [paint, draw]
EOF
  printf 'sk-e2e-%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$(dirname "$file")/chatbot.key"
  # The assistant's picture (its XMPP vCard): a 2x2 blue PNG.
  printf '%s' 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAD0lEQVR4nGNgYPgPRmAKABf2A/1+6zfzAAAAAElFTkSuQmCC' \
    | base64 -d > "$(dirname "$file")/chatbot-avatar.png"
  cat > "$(dirname "$file")/calls-contacts.vcf" <<'EOF'
BEGIN:VCARD
VERSION:3.0
UID:erika-1
FN:Erika Mustermann
N:Mustermann;Erika;;;
ORG:Beispiel GmbH
EMAIL;TYPE=INTERNET:erika@caller.test
TEL;TYPE=WORK,VOICE:+49 30 1234567
END:VCARD
EOF
}

# ucb_health: the bridge answers /health with 200 and reports the XMPP component connected.
ucb_health() {
  curl -fsS --max-time 2 "$UCB_HEALTH_URL" 2>/dev/null | tr -d ' \n' | grep -q '"xmpp":"connected"'
}
