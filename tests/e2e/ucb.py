"""Helpers for the end-to-end tests: settings, the bridge process, Matrix and XMPP test users.

The tests drive the real peers (Synapse, Prosody) that scripts/peers/up.sh started, with
independent client libraries: matrix-nio (plus raw HTTP where the test needs exact control) and
slixmpp. Everything talks to 127.0.0.1 only.

Environment (scripts/test.sh sets all of them):
  PEERS_ENV   <state>/peers.env written by scripts/peers/up.sh   (default .state/test/peers.env)
  UCB_CONFIG  the bridge config                                  (default .state/test/ucbridge.yaml)
  UCB_BIN     the bridge binary                                  (default target/debug/ucbridge)
  UCB_DB      sqlite | postgres                                  (default sqlite)
  UCB_TEST_PG_URL  maintenance database for UCB_DB=postgres      (default postgres://postgres@127.0.0.1:5432/test)
  UCB_E2E_PG_DB    the database each session recreates            (default ucbridge_e2e_<bridge port>)
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Awaitable, Callable
from xml.sax.saxutils import escape as _sax_escape

import aiohttp
import slixmpp
import yaml
from nio import AsyncClient, JoinResponse, RoomCreateResponse, RoomLeaveResponse, RoomSendResponse
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

ANY = object()   # a wildcard for the helpers that compare a value
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"
RECEIPTS_NS = "urn:xmpp:receipts"
MARKERS_NS = "urn:xmpp:chat-markers:0"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
CLIENT_NS = "jabber:client"
log = logging.getLogger("ucb-e2e")
# slixmpp logs a send after disconnect, a normal end of a test client, as an ERROR traceback.
logging.getLogger("slixmpp.xmlstream.xmlstream").setLevel(logging.CRITICAL)


# ------------------------------------------------------------------ settings --
def load_env(path: str) -> dict[str, str]:
    """Parse the `export K=V` lines (bash %q quoting) of peers.env."""
    env: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                parts = shlex.split(v) if v else []
                env[k] = parts[0] if parts else ""
    return env


@dataclass
class Settings:
    env: dict[str, str]
    state: str
    config_path: str
    config: dict[str, Any]
    registration: dict[str, Any]
    bin: str
    db: str

    @property
    def hs_url(self) -> str:
        return self.env.get("PEER_SYNAPSE_URL") or self.config["homeserver"]["url"]

    @property
    def matrix_domain(self) -> str:
        return self.config["homeserver"]["domain"]

    @property
    def xmpp_domain(self) -> str:
        return self.env.get("PEER_XMPP_DOMAIN", "localhost")

    @property
    def c2s_port(self) -> int:
        return int(self.env.get("PEER_XMPP_C2S_PORT", "5222"))

    @property
    def component(self) -> str:
        return self.config["xmpp"]["component_jid"]

    @property
    def bridge_url(self) -> str:
        return "http://" + self.config["appservice"]["listen"]

    @property
    def listen_port(self) -> int:
        return int(self.config["appservice"]["listen"].rsplit(":", 1)[1])

    @property
    def hs_token(self) -> str:
        return self.registration["hs_token"]

    @property
    def as_token(self) -> str:
        return self.registration["as_token"]

    @property
    def max_message_bytes(self) -> int:
        # Default: Synapse's event limit (limits.matrix_event_bytes) less 4 KiB.
        limits = self.config.get("limits") or {}
        return int(limits.get("max_message_bytes", int(limits.get("matrix_event_bytes", 65536)) - 4096))


@cache
def settings() -> Settings:
    peers_env = os.path.abspath(os.environ.get("PEERS_ENV", os.path.join(ROOT, ".state/test/peers.env")))
    config_path = os.path.abspath(os.environ.get("UCB_CONFIG", os.path.join(ROOT, ".state/test/ucbridge.yaml")))
    for p, what in ((peers_env, "PEERS_ENV"), (config_path, "UCB_CONFIG")):
        if not os.path.isfile(p):
            raise RuntimeError(f"{what}: {p} does not exist; run scripts/test.sh --e2e-only "
                               "(it writes the config and starts the peers)")
    env = load_env(peers_env)
    with open(config_path) as f:
        config = yaml.safe_load(f)
    reg_path = config["appservice"]["registration"]
    if not os.path.isabs(reg_path):
        reg_path = os.path.join(os.path.dirname(config_path), reg_path)
    with open(reg_path) as f:
        registration = yaml.safe_load(f)
    return Settings(
        env=env,
        state=env.get("PEER_STATE") or os.path.dirname(peers_env),
        config_path=config_path,
        config=config,
        registration=registration,
        bin=os.path.abspath(os.environ.get("UCB_BIN", os.path.join(ROOT, "target/debug/ucbridge"))),
        db=os.environ.get("UCB_DB", "sqlite"),
    )


def fresh_database_url(s: Settings) -> str:
    """A database URL for this test session, with nothing in it yet."""
    if s.db == "sqlite":
        path = os.path.join(s.state, "e2e-sqlite.db")
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass
        return "sqlite://" + path  # absolute path: sqlite:///abs/path.db
    if s.db == "postgres":
        base = os.environ.get("UCB_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/test")
        u = urllib.parse.urlsplit(base)
        # One name per bridge port, so rigs of several worktrees on one PostgreSQL do not collide.
        name = os.environ.get("UCB_E2E_PG_DB", f"ucbridge_e2e_{s.listen_port}")
        for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
            r = subprocess.run(["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", base, "-c", sql],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"psql {sql!r} failed: {r.stderr.strip()}")
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))
    raise RuntimeError(f"UCB_DB must be sqlite or postgres, not {s.db!r}")


# ------------------------------------------------------------------ identity --
def matrix_escape_localpart(s: str) -> str:
    """Matrix spec mapping of a foreign identifier into a user localpart."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.islower() or c.isdigit() or c in ".-"):
            out.append(c)
        elif c == "_":
            out.append("__")
        elif "A" <= c <= "Z":
            out.append("_" + c.lower())
        else:
            out.append(f"={b:02x}")
    return "".join(out)


_XEP0106 = {" ": "\\20", '"': "\\22", "&": "\\26", "'": "\\27", "/": "\\2f", ":": "\\3a",
            "<": "\\3c", ">": "\\3e", "@": "\\40", "\\": "\\5c"}


def xep0106_escape(s: str) -> str:
    return "".join(_XEP0106.get(c, c) for c in s)


def hosted_alias(alias: str) -> str:
    """The alias localpart the bridge gives a room asked for as `alias` (rooms.alias_prefix)."""
    prefix = "ucb-"
    return alias if alias.startswith(prefix) else prefix + alias


def ghost_for(xmpp_bare: str) -> str:
    """The Matrix ghost of an XMPP user: alice@localhost -> @_xmpp_alice=40localhost:localhost."""
    s = settings()
    return f"@_xmpp_{matrix_escape_localpart(xmpp_bare)}:{s.matrix_domain}"


def jid_for(mxid: str) -> str:
    """The XMPP JID of a Matrix user: @bob:localhost -> bob\\40localhost@bridge.localhost."""
    local, _, server = mxid[1:].partition(":")
    return f"{xep0106_escape(local + '@' + server)}@{settings().component}"


def xml_escape(s: str) -> str:
    """Text or attribute value for hand-written XML."""
    return _sax_escape(s, {'"': "&quot;", "'": "&apos;"})


def bare(jid: str | None) -> str:
    return (jid or "").split("/", 1)[0]


# -------------------------------------------------------------------- waiting --
async def wait_for(pred: Callable[[], Any], timeout: float, step: float = 0.1, what: str = "") -> Any:
    """Poll pred() until it returns something truthy; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or pred}")
        await asyncio.sleep(step)


def run(coro: Awaitable[Any], timeout: float = 240) -> Any:
    """Run one test's coroutine to completion (no pytest-asyncio here)."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def token(n: int = 4) -> str:
    return secrets.token_hex(n)


# --------------------------------------------------------------------- bridge --
def _http_get(url: str, timeout: float = 2) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def as_put(path: str, body: bytes, timeout: float = 60) -> tuple[int, str]:
    """PUT raw bytes to the bridge's appservice API as the homeserver (the real hs_token)."""
    s = settings()
    req = urllib.request.Request(s.bridge_url + path, data=body, method="PUT",
                                 headers={"Authorization": f"Bearer {s.hs_token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Bridge:
    """The bridge binary under test: `UCB_BIN -c CONFIG run`, database from UCBRIDGE_DATABASE_URL.

    The pid file <state>/run/ucbridge.pid (pid, then a marker from its command line) follows the
    scheme of scripts/peers/lib.sh, so scripts/test.sh can stop a bridge a crashed pytest left.
    """

    def __init__(self, s: Settings, database_url: str):
        self.s = s
        self.database_url = database_url
        self.log_path = os.path.join(s.state, f"ucbridge-e2e-{s.db}.log")
        self.pid_path = os.path.join(s.state, "run", "ucbridge.pid")
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}   # more environment for the process (config keys, secret files)
        self.starts = 0
        self.kills = 0

    # -- lifecycle
    def start(self, timeout: float = 30) -> None:
        assert not self.running(), "bridge already running"
        if not os.access(self.s.bin, os.X_OK):
            raise RuntimeError(f"no bridge binary at {self.s.bin} (cargo build, or set UCB_BIN)")
        # A killed bridge's port may take a moment to be free; something else on it is an error.
        deadline = time.monotonic() + 5
        while port_open(self.s.listen_port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"127.0.0.1:{self.s.listen_port} is taken by another process "
                                   "(a demo bridge? scripts/demo.sh stop)")
            time.sleep(0.1)
        env = dict(os.environ, UCBRIDGE_DATABASE_URL=self.database_url, **self.env)
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n===== e2e: start #{self.starts} at {time.strftime('%H:%M:%S')} "
                       f"db={self.database_url} =====\n".encode())
            logf.flush()
            self.proc = subprocess.Popen([self.s.bin, "-c", self.s.config_path, "run"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         cwd=self.s.state, start_new_session=True)
        os.makedirs(os.path.dirname(self.pid_path), exist_ok=True)
        with open(self.pid_path, "w") as f:
            f.write(f"{self.proc.pid}\n{self.s.config_path}\n")
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop(timeout=5, check=False)   # never leave a half-started bridge holding the port
            raise

    def health(self) -> dict | None:
        try:
            status, body = _http_get(self.s.bridge_url + "/health")
        except OSError:
            return None
        if status != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited with {self.proc.returncode} while starting; "
                                   f"log tail:\n{self.log_tail()}")
            last = self.health()
            if last and last.get("xmpp") == "connected":
                return
            time.sleep(0.2)
        raise RuntimeError(f"bridge not healthy after {timeout:.0f}s (last /health: {last}); "
                           f"log tail:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs. Only for tests marked @pytest.mark.kills_bridge."""
        assert self.proc is not None
        self.kills += 1
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._forget()

    def stop(self, timeout: float = 15, check: bool = True) -> int | None:
        """SIGTERM, SIGKILL after timeout. Returns the exit code.

        check: a clean shutdown is part of the contract, so a bridge that was running and did not
        exit with 0 on SIGTERM within `timeout` (killed by the signal: -15; needed SIGKILL: -9; an
        error: 1), or that had already exited on its own, raises AssertionError (after it is gone)."""
        if self.proc is None:
            return None
        died_before = self.proc.poll()
        if died_before is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("bridge ignored SIGTERM for %ss; SIGKILL", timeout)
                self.proc.kill()
                self.proc.wait(10)
        rc = self.proc.returncode
        self._forget()
        if check and died_before is not None:
            raise AssertionError(f"the bridge had already exited with {died_before} before it was stopped; "
                                 f"log tail:\n{self.log_tail()}")
        if check and rc != 0:
            raise AssertionError(f"the bridge exited with {rc} on SIGTERM, not 0 (a clean shutdown "
                                 f"within {timeout:.0f}s); log tail:\n{self.log_tail()}")
        return rc

    def died(self) -> int | None:
        """The exit code if the process exited without being stopped or killed through this object."""
        return self.proc.poll() if self.proc is not None else None

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_lines(self, offset: int, *needles: str) -> list[str]:
        """Lines of the bridge log written after `offset` (log_size()) that contain every needle."""
        return [line for line in self.log_since(offset).splitlines() if all(n in line for n in needles)]

    def wait_log(self, offset: int, *needles: str, timeout: float = 20) -> list[str]:
        """Blocking wait for log_lines(offset, *needles) to be non-empty."""
        deadline = time.monotonic() + timeout
        while not (found := self.log_lines(offset, *needles)):
            if time.monotonic() >= deadline:
                raise AssertionError(f"no line with {needles} in the bridge log within {timeout:.0f}s; "
                                     f"log tail:\n{self.log_tail(30)}")
            time.sleep(0.1)
        return found

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def restart(self) -> None:
        self.stop()
        self.start()

    def _forget(self) -> None:
        self.proc = None
        try:
            os.remove(self.pid_path)
        except FileNotFoundError:
            pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200_000))
                data = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return "(no bridge log)"
        return "\n".join(data[-lines:])


def start_variant(bridge: Bridge, name: str, change: Callable[[dict], None],
                  env: dict[str, str] | None = None) -> Bridge:
    """Stop the session bridge and start one on a variant of its config: `change` edits the parsed
    config, written to ucbridge-NAME.yaml beside the original (relative paths resolve the same).
    Same database, same log. The caller stops it; the next test's `bridge` fixture then starts the
    session bridge again (the bridge runs once per session, not once per test)."""
    s = bridge.s
    with open(s.config_path) as f:
        cfg = yaml.safe_load(f)
    change(cfg)
    path = os.path.join(os.path.dirname(s.config_path), f"ucbridge-{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    bridge.stop()
    b = Bridge(dataclasses.replace(s, config_path=path), bridge.database_url)
    b.log_path = bridge.log_path
    b.env = dict(env or {})
    b.start()
    return b


@contextlib.contextmanager
def config_variant(bridge: Bridge, name: str, change: Callable[[dict], None], env: dict[str, str] | None = None):
    """`with config_variant(bridge, "sms-limits", change) as b:` start_variant, stopped at the end;
    `env`: more environment for the variant (UCBRIDGE__SECTION__KEY variables)."""
    b = start_variant(bridge, name, change, env)
    try:
        yield b
    except BaseException:
        b.stop(check=False)   # the test's own failure is the one to report
        raise
    b.stop()


# --------------------------------------------------------------------- matrix --
SYNC_FILTER = {"room": {"timeline": {"limit": 200}, "state": {"lazy_load_members": False}},
               "presence": {"types": []}, "account_data": {"types": []}}


class MatrixUser:
    """A real Matrix user: matrix-nio for register/rooms/sync, aiohttp for exact raw requests."""

    def __init__(self, client: AsyncClient, localpart: str, password: str):
        self.c = client
        self.localpart = localpart
        self.password = password
        self.user_id: str = client.user_id
        self.http = aiohttp.ClientSession()
        self.timeline: dict[str, list[dict]] = {}   # room -> raw events, as synced
        self.invites: list[tuple[str, dict]] = []   # (room_id, the invite member event), each time seen
        self.left: set[str] = set()
        self.ephemeral: dict[str, list[dict]] = {}  # room -> m.typing / m.receipt events, as synced
        # The presence a nio sync claims (None: Synapse's default, online). A test of Matrix presence
        # sets this to the state it set, so its own syncs do not mark the user online again.
        self.presence_on_sync: str | None = None

    @property
    def jid(self) -> str:
        return jid_for(self.user_id)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.c.access_token}"}

    async def close(self) -> None:
        await self.http.close()
        await self.c.close()

    # -- raw client-server API
    def url(self, path: str) -> str:
        return settings().hs_url + "/_matrix/client/v3" + path

    async def request(self, method: str, path: str, body: Any = None, **params) -> tuple[int, Any]:
        async with self.http.request(method, self.url(path), headers=self.auth, json=body,
                                     params=params or None) as r:
            try:
                j = await r.json(content_type=None)
            except ValueError:
                j = None
            return r.status, j

    # -- sync
    async def sync_once(self, timeout_ms: int = 1000) -> None:
        r = await self.c.sync(timeout=timeout_ms, sync_filter=SYNC_FILTER, set_presence=self.presence_on_sync)
        rooms = getattr(r, "rooms", None)
        if rooms is None:
            await asyncio.sleep(0.2)
            return
        for room_id, info in rooms.join.items():
            self.timeline.setdefault(room_id, []).extend(e.source for e in info.timeline.events)
            self.ephemeral.setdefault(room_id, []).extend(_ephemeral_raw(e) for e in info.ephemeral)
        for room_id, info in rooms.invite.items():
            for e in info.invite_state:
                # nio keeps no content in an invite event's .source; rebuild the stripped event.
                src = dict(getattr(e, "source", None) or {})
                src.setdefault("sender", getattr(e, "sender", None))
                src.setdefault("state_key", getattr(e, "state_key", None))
                src["content"] = dict(getattr(e, "content", None) or {})
                if (src.get("type") == "m.room.member" and src.get("state_key") == self.user_id
                        and src["content"].get("membership") == "invite"):
                    self.invites.append((room_id, src))
        for room_id in rooms.leave:
            self.left.add(room_id)

    async def sync_until(self, pred: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            r = pred()
            if r:
                return r
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.user_id}: timed out after {timeout:.0f}s waiting for {what or pred}")
            await self.sync_once()

    def invites_from(self, inviter: str) -> list[tuple[str, dict]]:
        return [(rid, ev) for rid, ev in self.invites if ev.get("sender") == inviter]

    async def wait_invite(self, inviter: str, timeout: float = 30, after: int = 0) -> tuple[str, dict]:
        """The (after+1)-th invite from inviter: (room_id, member event)."""
        found = await self.sync_until(lambda: self.invites_from(inviter)[after:],
                                      timeout, f"invite #{after + 1} from {inviter}")
        return found[0]

    def messages_in(self, room_id: str, sender: str | None = None) -> list[dict]:
        return [e for e in self.timeline.get(room_id, [])
                if e.get("type") == "m.room.message" and (sender is None or e.get("sender") == sender)]

    async def wait_message(self, room_id: str, sender: str, body: str, timeout: float = 30) -> dict:
        def find():
            return next((e for e in self.messages_in(room_id, sender)
                         if e.get("content", {}).get("body") == body), None)
        return await self.sync_until(find, timeout, f"message {body[:40]!r} from {sender} in {room_id}")

    # -- rooms
    async def join(self, room_id: str) -> None:
        r = await self.c.join(room_id)
        assert isinstance(r, JoinResponse), f"{self.user_id} join {room_id}: {r}"

    async def leave(self, room_id: str) -> None:
        r = await self.c.room_leave(room_id)
        assert isinstance(r, RoomLeaveResponse), f"{self.user_id} leave {room_id}: {r}"

    async def create_dm(self, invitee: str) -> str:
        r = await self.c.room_create(is_direct=True, invite=[invitee])
        assert isinstance(r, RoomCreateResponse), f"room_create: {r}"
        return r.room_id

    async def send_text(self, room_id: str, body: str, msgtype: str = "m.text") -> str:
        r = await self.c.room_send(room_id, "m.room.message", {"msgtype": msgtype, "body": body})
        assert isinstance(r, RoomSendResponse), f"room_send: {r}"
        return r.event_id

    async def send_raw(self, room_id: str, event_type: str, content: dict) -> tuple[int, Any]:
        txn = "e2e" + token(8)
        q = urllib.parse.quote
        return await self.request("PUT", f"/rooms/{q(room_id)}/send/{q(event_type)}/{txn}", content)

    async def put_state(self, room_id: str, event_type: str, content: dict, state_key: str = "") -> tuple[int, Any]:
        q = urllib.parse.quote
        return await self.request("PUT", f"/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}", content)

    async def get_state(self, room_id: str, event_type: str, state_key: str = "") -> tuple[int, Any]:
        q = urllib.parse.quote
        return await self.request("GET", f"/rooms/{q(room_id)}/state/{q(event_type)}/{q(state_key)}")

    async def joined_members(self, room_id: str) -> set[str]:
        status, j = await self.request("GET", f"/rooms/{urllib.parse.quote(room_id)}/joined_members")
        return set((j or {}).get("joined", {})) if status == 200 else set()

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while user_id not in await self.joined_members(room_id):
            if time.monotonic() >= deadline:
                raise AssertionError(f"{user_id} did not join {room_id} within {timeout:.0f}s "
                                     f"(joined: {await self.joined_members(room_id)})")
            await asyncio.sleep(0.2)

    async def room_messages(self, room_id: str, sender: str | None = None) -> list[dict]:
        """Every m.room.message in the room, oldest first (GET /messages, paginated forwards)."""
        out: list[dict] = []
        frm = None
        q = urllib.parse.quote
        flt = json.dumps({"types": ["m.room.message"], "lazy_load_members": True})
        for _ in range(50):
            params = {"dir": "f", "limit": "500", "filter": flt}
            if frm:
                params["from"] = frm
            status, j = await self.request("GET", f"/rooms/{q(room_id)}/messages", **params)
            assert status == 200, f"/messages {room_id}: {status} {j}"
            chunk = j.get("chunk", [])
            out.extend(chunk)
            if not chunk or not j.get("end") or j.get("end") == frm:
                break
            frm = j["end"]
        return [e for e in out if e.get("type") == "m.room.message"
                and (sender is None or e.get("sender") == sender)]

    async def member_displayname(self, room_id: str, user_id: str) -> str | None:
        status, j = await self.get_state(room_id, "m.room.member", user_id)
        return (j or {}).get("displayname") if status == 200 else None

    # -- presence (raw HTTP: a nio sync would claim a presence of its own)
    async def set_presence(self, presence: str, status_msg: str | None = None) -> None:
        """PUT /presence/{me}/status; later syncs of this user keep claiming the same state."""
        body: dict[str, Any] = {"presence": presence}
        if status_msg is not None:
            body["status_msg"] = status_msg
        status, j = await self.request("PUT", f"/presence/{urllib.parse.quote(self.user_id)}/status", body)
        assert status == 200, f"{self.user_id}: setting presence {body}: {status} {j}"
        self.presence_on_sync = presence if presence in ("online", "unavailable", "offline") else None

    async def get_presence(self, user_id: str) -> tuple[int, Any]:
        """GET /presence/{user}/status as this user: (HTTP status, body)."""
        return await self.request("GET", f"/presence/{urllib.parse.quote(user_id)}/status")

    async def wait_presence(self, user_id: str, presence: str, status_msg: Any,
                            timeout: float = 15) -> dict:
        """Poll user_id's presence until it is `presence` with `status_msg` (None: no or empty message;
        ANY: whatever message)."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while True:
            status, j = await self.get_presence(user_id)
            got = (status, (j or {}).get("presence"), (j or {}).get("status_msg") or None) if status == 200 \
                else (status, j)
            if not seen or seen[-1] != got:
                seen.append(got)
            if status == 200 and got[1] == presence and (status_msg is ANY or got[2] == (status_msg or None)):
                return j
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{user_id}'s Matrix presence (as {self.user_id} sees it) did not become "
                    f"presence={presence!r} status_msg={'(any)' if status_msg is ANY else status_msg!r} "
                    f"within {timeout:.0f}s; "
                    f"observed (http, presence, status_msg) in order: {seen}")
            await asyncio.sleep(0.25)

    # -- typing and receipts
    async def set_typing(self, room_id: str, typing: bool, timeout_ms: int = 30000) -> None:
        q = urllib.parse.quote
        body: dict[str, Any] = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        status, j = await self.request("PUT", f"/rooms/{q(room_id)}/typing/{q(self.user_id)}", body)
        assert status == 200, f"{self.user_id}: typing {body} in {room_id}: {status} {j}"

    async def send_read_receipt(self, room_id: str, event_id: str) -> None:
        q = urllib.parse.quote
        status, j = await self.request("POST", f"/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {})
        assert status == 200, f"{self.user_id}: read receipt on {event_id}: {status} {j}"

    def typing_events(self, room_id: str) -> list[list[str]]:
        """The user_ids of every m.typing event synced for the room, oldest first."""
        return [list(e.get("content", {}).get("user_ids", [])) for e in self.ephemeral.get(room_id, [])
                if e.get("type") == "m.typing"]

    def read_receipts(self, room_id: str, event_id: str, receipt_type: str = "m.read") -> set[str]:
        """Users whose receipt of receipt_type on event_id was synced for the room."""
        out: set[str] = set()
        for e in self.ephemeral.get(room_id, []):
            if e.get("type") == "m.receipt":
                out |= set(e.get("content", {}).get(event_id, {}).get(receipt_type, {}))
        return out


def _ephemeral_raw(e: Any) -> dict:
    """A nio ephemeral event as the raw event it came from (nio keeps no .source for these)."""
    from nio import ReceiptEvent, TypingNoticeEvent
    if isinstance(e, TypingNoticeEvent):
        return {"type": "m.typing", "content": {"user_ids": list(e.users)}}
    if isinstance(e, ReceiptEvent):
        content: dict[str, Any] = {}
        for r in e.receipts:
            content.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})[r.user_id] = {"ts": r.timestamp}
        return {"type": "m.receipt", "content": content}
    return dict(getattr(e, "source", None) or {"type": type(e).__name__})


async def new_matrix_user(prefix: str = "m") -> MatrixUser:
    s = settings()
    localpart = f"{prefix}{token(4)}"
    password = "pw-" + token(6)
    c = AsyncClient(s.hs_url, "")
    r = await c.register(localpart, password)
    assert getattr(r, "access_token", None), f"register {localpart}: {r}"
    u = MatrixUser(c, localpart, password)
    await u.sync_once(0)   # establish the since-token so later syncs are incremental
    return u


# ----------------------------------------------------------------------- xmpp --
@dataclass
class Stanza:
    """What a test needs of a received stanza, read from the raw XML (no JID parsing)."""
    kind: str
    id: str | None
    type: str
    frm: str
    to: str
    body: str | None = None
    error_condition: str | None = None
    error_text: str | None = None
    nick: str | None = None
    xml: str = ""
    t: float = field(default_factory=time.monotonic)
    show: str | None = None     # presence <show/>
    status: str | None = None   # presence <status/>
    # Every child element but body/show/status/error: (namespace, local name, attributes).
    payload: list[tuple[str, str, dict]] = field(default_factory=list)

    def child(self, ns: str, name: str) -> dict | None:
        """The attributes of the first payload element {ns}name, or None if there is none."""
        return next((a for n, local, a in self.payload if n == ns and local == name), None)

    def describe(self) -> str:
        return self.xml or f"<{self.kind} type={self.type} from={self.frm} id={self.id}>"


def _parse(kind: str, x) -> Stanza:
    body = x.find(f"{{{CLIENT_NS}}}body")
    nick = x.find("{http://jabber.org/protocol/nick}nick")
    st = Stanza(kind=kind, id=x.get("id"), type=x.get("type") or ("normal" if kind == "message" else "available"),
                frm=x.get("from") or "", to=x.get("to") or "",
                body=(body.text or "") if body is not None else None,
                nick=nick.text if nick is not None else None)
    show = x.find(f"{{{CLIENT_NS}}}show")
    status = x.find(f"{{{CLIENT_NS}}}status")
    st.show = (show.text or "") if show is not None else None
    st.status = (status.text or "") if status is not None else None
    for child in x:
        ns, _, name = child.tag[1:].partition("}") if child.tag.startswith("{") else ("", "", child.tag)
        if ns == CLIENT_NS and name in ("body", "show", "status", "error"):
            continue
        st.payload.append((ns, name, dict(child.attrib)))
    err = x.find(f"{{{CLIENT_NS}}}error")
    if err is not None:
        for child in err:
            ns, _, name = child.tag[1:].partition("}")
            if ns == STANZAS_NS and name != "text":
                st.error_condition = name
            elif ns == STANZAS_NS and name == "text":
                st.error_text = child.text or ""
    try:
        from slixmpp.xmlstream import tostring
        st.xml = tostring(x)[:2000]
    except Exception:  # noqa: BLE001 - only for diagnostics
        pass
    return st


class XmppUser(slixmpp.ClientXMPP):
    """A real XMPP client (slixmpp) on Prosody's c2s port, plaintext with SCRAM as in the rig."""

    def __init__(self, jid: str, password: str):
        super().__init__(jid, password)
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        # slixmpp >= 1.8 refuses every SASL mechanism on an unencrypted stream unless told.
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        for p in ("xep_0030", "xep_0172", "xep_0199"):
            self.register_plugin(p)
        self.auto_authorize = True   # accept a contact's subscription request
        self.auto_subscribe = False
        self.messages: list[Stanza] = []
        self.presences: list[Stanza] = []
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("failed_auth", lambda *_: setattr(self, "failed", "auth"))
        self.register_handler(Callback("e2e-messages", MatchXPath(f"{{{CLIENT_NS}}}message"), self._on_message))
        self.register_handler(Callback("e2e-presences", MatchXPath(f"{{{CLIENT_NS}}}presence"), self._on_presence))

    async def _on_start(self, _):
        try:
            await self.get_roster()
        except Exception as e:  # noqa: BLE001
            log.warning("roster: %s", e)
        self.send_presence()
        self.ready.set()

    def _on_message(self, stanza) -> None:
        try:
            self.messages.append(_parse("message", stanza.xml))
        except Exception:  # noqa: BLE001 - never raise in a handler (slixmpp would answer with an error)
            log.exception("recording a message")

    def _on_presence(self, stanza) -> None:
        try:
            self.presences.append(_parse("presence", stanza.xml))
        except Exception:  # noqa: BLE001
            log.exception("recording a presence")

    @property
    def bare(self) -> str:
        return self.boundjid.bare

    @property
    def ghost(self) -> str:
        """The Matrix ghost of this XMPP user."""
        return ghost_for(self.bare)

    # -- sending
    def send_chat(self, to: str, body: str, nick: str | None = None, sid: str | None = None) -> str:
        m = self.make_message(mto=to, mbody=body, mtype="chat")
        sid = sid or "e2e-" + token(6)
        m["id"] = sid
        if nick is not None:
            m["nick"]["nick"] = nick
        m.send()
        return sid

    def send_xml(self, xml: str) -> None:
        """Send a stanza exactly as written (the server stamps the from). Through slixmpp's send queue,
        not send_raw: send_raw writes at once and can overtake stanzas queued before it (such as the
        initial presence of a fresh login)."""
        self.send(xml)

    def send_presence_state(self, show: str | None, status: str | None, to: str | None = None,
                            ptype: str | None = None) -> None:
        """A presence broadcast (or directed, with to) with this <show/> and <status/>."""
        attrs = (f' to="{xml_escape(to)}"' if to else "") + (f' type="{ptype}"' if ptype else "")
        inner = (f"<show>{show}</show>" if show else "") + \
            (f"<status>{xml_escape(status)}</status>" if status is not None else "")
        self.send_xml(f"<presence{attrs}>{inner}</presence>")

    def send_chat_state(self, to: str, state: str) -> str:
        """A bodiless chat message with an XEP-0085 chat state (composing, paused, active, ...)."""
        sid = "e2e-cs-" + token(6)
        self.send_xml(f'<message to="{xml_escape(to)}" type="chat" id="{sid}">'
                      f'<{state} xmlns="{CHATSTATES_NS}"/></message>')
        return sid

    def send_chat_requesting_receipts(self, to: str, body: str, sid: str | None = None) -> str:
        """A chat asking for an XEP-0184 receipt and markable (XEP-0333)."""
        sid = sid or "e2e-rr-" + token(6)
        self.send_xml(f'<message to="{xml_escape(to)}" type="chat" id="{sid}">'
                      f'<body>{xml_escape(body)}</body><request xmlns="{RECEIPTS_NS}"/>'
                      f'<markable xmlns="{MARKERS_NS}"/></message>')
        return sid

    def send_marker(self, to: str, marker: str, of_id: str) -> str:
        """An XEP-0333 chat marker (received, displayed, acknowledged) for the message of_id."""
        sid = "e2e-mk-" + token(6)
        self.send_xml(f'<message to="{xml_escape(to)}" type="chat" id="{sid}">'
                      f'<{marker} xmlns="{MARKERS_NS}" id="{xml_escape(of_id)}"/></message>')
        return sid

    async def subscribe(self, jid: str, mutual: bool = True, timeout: float = 20) -> None:
        """Subscribe to jid's presence. mutual: also wait until jid subscribed back to hers (the bridge asks,
        auto_authorize approves) and the roster item is 'both'; otherwise until it is 'to' or 'both'."""
        self.send_presence(pto=jid, ptype="subscribe")
        await wait_for(lambda: any(bare(pr.frm) == jid and pr.type == "subscribed" for pr in self.presences),
                       timeout, what=f"{self.bare}: 'subscribed' from {jid} after subscribing to it")
        if not mutual:
            await wait_for(lambda: self.client_roster[jid]["subscription"] in ("to", "both"), timeout,
                           what=f"{self.bare}: the roster item for {jid} to show the subscription "
                                f"(is {self.client_roster[jid]['subscription']!r})")
            return
        await wait_for(lambda: any(bare(pr.frm) == jid and pr.type == "subscribe" for pr in self.presences),
                       timeout, what=f"{self.bare}: a 'subscribe' back from {jid} (the bridge must ask for "
                                     "her presence, or Prosody never sends it her presence)")
        await wait_for(lambda: self.client_roster[jid]["subscription"] == "both", timeout,
                       what=f"{self.bare}: the roster item for {jid} to become subscription='both' "
                            f"(is {self.client_roster[jid]['subscription']!r})")

    # -- receiving
    def presences_from(self, frm: str, after: int = 0) -> list[Stanza]:
        """Presence broadcasts (available/unavailable, not subscription handling) from frm."""
        return [pr for pr in self.presences[after:] if bare(pr.frm) == frm and pr.type in ("available", "unavailable")]

    def messages_with(self, frm: str, ns: str, name: str, after: int = 0) -> list[Stanza]:
        """Messages from frm carrying a {ns}name element."""
        return [m for m in self.messages[after:] if bare(m.frm) == frm and m.child(ns, name) is not None]

    def chats_from(self, frm: str) -> list[Stanza]:
        return [m for m in self.messages if m.type == "chat" and bare(m.frm) == frm and m.body is not None]

    async def wait_chat(self, frm: str, body: str, timeout: float = 30) -> Stanza:
        return await wait_for(lambda: next((m for m in self.chats_from(frm) if m.body == body), None),
                              timeout, what=f"{self.bare}: chat {body[:40]!r} from {frm}")

    def error_for(self, sid: str) -> Stanza | None:
        return next((m for m in self.messages if m.type == "error" and m.id == sid), None)

    async def wait_error(self, sid: str, timeout: float = 20) -> Stanza:
        return await wait_for(lambda: self.error_for(sid), timeout,
                              what=f"{self.bare}: an error reply to the message id={sid}")

    async def close(self) -> None:
        try:
            fut = self.disconnect()
            if fut is not None:
                await asyncio.wait_for(fut, 5)
        except Exception:  # noqa: BLE001
            pass


async def xmpp_register(user: str, password: str) -> None:
    """In-band registration (XEP-0077) on Prosody (open and unthrottled from loopback)."""
    s = settings()
    reg = XmppUser(f"{user}@{s.xmpp_domain}", password)
    reg.register_plugin("xep_0077")
    result: list = []

    async def do_register(_):
        iq = reg.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = user
        iq["register"]["password"] = password
        try:
            await iq.send(timeout=10)
            result.append(True)
        except Exception as e:  # noqa: BLE001
            result.append(e)
        reg.disconnect()

    reg.del_event_handler("session_start", reg._on_start)
    reg.add_event_handler("register", do_register)
    reg.connect("127.0.0.1", s.c2s_port)
    await wait_for(lambda: result, 20, what=f"in-band registration of {user}")
    assert result[0] is True, f"in-band registration of {user}: {result[0]}"


async def xmpp_login(user: str, password: str, resource: str = "e2e") -> XmppUser:
    s = settings()
    c = XmppUser(f"{user}@{s.xmpp_domain}/{resource}", password)
    c.connect("127.0.0.1", s.c2s_port)
    try:
        await asyncio.wait_for(c.ready.wait(), 20)
    except asyncio.TimeoutError:
        raise AssertionError(f"XMPP login of {user} failed ({c.failed or 'timeout'})") from None
    return c


# ---------------------------------------------------------------------- scope --
class Peers:
    """Makes test users and closes every client at the end: `async with Peers() as p:`."""

    def __init__(self):
        self.matrix: list[MatrixUser] = []
        self.xmpp: list[XmppUser] = []

    async def __aenter__(self) -> "Peers":
        return self

    async def __aexit__(self, *exc) -> None:
        for x in self.xmpp:
            await x.close()
        for m in self.matrix:
            try:
                await m.close()
            except Exception:  # noqa: BLE001
                pass

    async def matrix_user(self, prefix: str = "m") -> MatrixUser:
        u = await new_matrix_user(prefix)
        self.matrix.append(u)
        return u

    async def xmpp_user(self, prefix: str = "x") -> XmppUser:
        user, password = f"{prefix}{token(4)}", "pw-" + token(6)
        await xmpp_register(user, password)
        x = await xmpp_login(user, password)
        x.e2e_password = password
        self.xmpp.append(x)
        return x

    async def relogin(self, x: XmppUser) -> XmppUser:
        """A new connection of the same XMPP account (the old one is closed)."""
        await x.close()
        self.xmpp.remove(x)
        y = await xmpp_login(x.boundjid.user, x.e2e_password, resource="e2e" + token(2))
        y.e2e_password = x.e2e_password
        self.xmpp.append(y)
        return y

    async def another_resource(self, x: XmppUser, resource: str) -> XmppUser:
        """A second, simultaneous connection of the same XMPP account (x stays connected)."""
        y = await xmpp_login(x.boundjid.user, x.e2e_password, resource=resource)
        y.e2e_password = x.e2e_password
        self.xmpp.append(y)
        return y

    async def dm_from_xmpp(self, m: MatrixUser, x: XmppUser, first: str | None = None) -> str:
        """XMPP user writes first; the Matrix user accepts the ghost's invite. Returns the room id."""
        first = first or "hello " + token(3)
        x.send_chat(m.jid, first)
        room_id, _ = await m.wait_invite(x.ghost)
        await m.join(room_id)
        await m.wait_message(room_id, x.ghost, first)
        return room_id

    async def dm_from_matrix(self, m: MatrixUser, x: XmppUser) -> str:
        """Matrix user opens a DM with the ghost; waits until the ghost joined. Returns the room id."""
        room_id = await m.create_dm(x.ghost)
        await m.wait_joined(room_id, x.ghost)
        return room_id


async def component_gone(x) -> None:
    """Wait until Prosody answers for the component itself, i.e. it saw the bridge disconnect."""

    async def gone() -> bool:
        try:
            await x.plugin["xep_0030"].get_info(jid=settings().component, timeout=2)
            return False
        except IqError:
            return True
        except IqTimeout:
            return False
    for _ in range(30):
        if await gone():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("Prosody still routes to the killed bridge")
