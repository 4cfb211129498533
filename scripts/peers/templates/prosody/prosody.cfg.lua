-- Prosody 0.12 for tests: loopback only, run from the peers state dir as the
-- current user (root included), no s2s, plaintext c2s allowed (STARTTLS offered
-- with a self-signed cert). Rendered by scripts/peers/up.sh (envsubst of ${PEER_*}).

run_as_root = true                -- CI runs as root; prosody refuses root otherwise
pidfile = "${PEER_STATE}/prosody/prosody.pid"
data_path = "${PEER_STATE}/prosody/data"
certificates = "${PEER_STATE}/prosody/certs"
log = {
  { levels = { min = "info" }, to = "file", filename = "${PEER_STATE}/prosody/prosody.log" };
}

-- Loopback only; nothing listens on other addresses.
interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { ${PEER_XMPP_C2S_PORT} }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
component_interfaces = { "127.0.0.1" }
component_ports = { ${PEER_COMPONENT_PORT} }
http_interfaces = { "127.0.0.1" }
http_ports = { ${PEER_PROSODY_HTTP_PORT} }
https_ports = { }
s2s_ports = { }
admin_socket = "${PEER_STATE}/prosody/prosody.sock"

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "posix";
  "carbons";      -- XEP-0280
  "pep"; "private"; "blocklist"; "vcard4"; "vcard_legacy"; "bookmarks";
  "mam";          -- XEP-0313 for 1:1
  "offline";      -- offline storage for 1:1 messages
  "smacks";       -- XEP-0198 (core module in 0.12)
  "csi_simple"; "ping"; "time"; "version"; "uptime";
  "register";     -- in-band registration (XEP-0077), for tests that need many users
  "admin_shell";
}
modules_disabled = { "s2s" }

-- Plaintext on loopback: tests connect without TLS. SCRAM-SHA-1 works unencrypted;
-- PLAIN is allowed too for simple clients.
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"

-- Registration: open, unthrottled from loopback (127.0.0.1/::1 are whitelisted by default).
allow_registration = true
min_seconds_between_registrations = 0

-- MAM: archive everything by default so offline/history tests have data.
default_archive_policy = true
archive_expires_after = "1w"

-- Stream Management resumption window kept short so tests notice disconnects quickly.
smacks_hibernation_time = 60

http_default_host = "${PEER_UPLOAD_DOMAIN}"   -- requests to 127.0.0.1:PORT (no vhost) go to the upload service
http_external_url = "http://127.0.0.1:${PEER_PROSODY_HTTP_PORT}/"

VirtualHost "${PEER_XMPP_DOMAIN}"

Component "${PEER_MUC_DOMAIN}" "muc"
  modules_enabled = { "muc_mam"; "vcard_muc" }   -- vcard_muc (prosody-modules): room avatars (XEP-0486-like)
  muc_log_by_default = true
  muc_log_all_rooms = true
  max_history_messages = 50
  restrict_room_creation = false
  muc_room_locking = false   -- a room created by a join is usable at once (no 201 config step)
  muc_room_default_public_jids = true   -- occupants see real JIDs: the bridge maps them to ghosts

Component "${PEER_UPLOAD_DOMAIN}" "http_file_share"
  http_file_share_size_limit = 52428800
  http_file_share_expires_after = 86400

-- The bridge under test connects here (XEP-0114) with this secret.
Component "${PEER_COMPONENT_DOMAIN}"
  component_secret = "${PEER_COMPONENT_SECRET}"

-- A MUC service on a foreign domain that e2e tests play themselves (a hostile remote MUC).
Component "${PEER_EVIL_MUC_DOMAIN}"
  component_secret = "${PEER_EVIL_MUC_SECRET}"
