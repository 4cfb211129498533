#!/usr/bin/env python3
"""ucbridge benchmark: the bridge measured through the real peers, next to the direct paths.

Run by bench/run.sh (which builds the bridge, starts Synapse, Prosody and the bridge in
.state/bench and stops them again). By hand, with the peers and the bridge already running:

    .state/venv/bin/python bench/bench.py --state .state/bench --bridge-pid PID

Paths (one conversation = one fixed pair of users):
  x2m  XMPP client -> Prosody -> bridge -> Synapse -> Matrix client (nio sync)    bridged
  m2x  Matrix client -> Synapse -> bridge -> Prosody -> XMPP client (slixmpp)      bridged
  m2m  Matrix client -> Synapse -> Matrix client (nio sync)                        baseline
  x2x  XMPP client -> Prosody -> XMPP client                                       baseline

Every message body is `ucbb PHASE CONV SEQ T_SEND_NS`; the receiving client takes the wall
clock when the message arrives (for Matrix: when the sync response that carries it returns).
Sender and receivers are in this one process, on the same clock. Numbers only, no asserts:
the exit code is 0 unless the setup failed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import re
import resource
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import slixmpp
from nio import AsyncClient, JoinResponse, RoomCreateResponse, RoomSendResponse
from nio.api import RoomPreset
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

CLIENT_NS = "jabber:client"
TAG = "ucbb"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Long timeline limit: a sync that carries more events than the limit is "limited" and drops
# the older ones, which would look like lost messages.
SYNC_FILTER = {
    "room": {"timeline": {"limit": 2000}, "state": {"lazy_load_members": True},
             "ephemeral": {"types": []}, "account_data": {"types": []}},
    "presence": {"types": []}, "account_data": {"types": []},
}
log = logging.getLogger("bench")


def now_ns() -> int:
    return time.time_ns()


# ------------------------------------------------------------------ recording --
class Recorder:
    """Every benchmark message that arrived at a receiving client: phase -> conv -> [(seq, t_send, t_recv)]."""

    def __init__(self) -> None:
        self.got: dict[str, dict[int, list[tuple[int, int, int]]]] = {}

    def record(self, body: str, t_recv: int) -> bool:
        if not body.startswith(TAG + " "):
            return False
        parts = body.split(" ")
        if len(parts) != 5:
            return False
        try:
            phase, conv, seq, ts = parts[1], int(parts[2]), int(parts[3]), int(parts[4])
        except ValueError:
            return False
        self.got.setdefault(phase, {}).setdefault(conv, []).append((seq, ts, t_recv))
        return True

    def count(self, phase: str) -> int:
        return sum(len(v) for v in self.got.get(phase, {}).values())


REC = Recorder()


# --------------------------------------------------------------------- matrix --
class MUser:
    """A Matrix user (matrix-nio). Receivers run a sync loop for the whole benchmark."""

    def __init__(self, hs: str, domain: str, localpart: str):
        self.localpart = localpart
        self.password = "pw-" + secrets.token_hex(6)
        self.user_id = f"@{localpart}:{domain}"
        self.c = AsyncClient(hs, self.user_id)
        self.invites: list[tuple[str, str]] = []        # (room_id, inviter)
        self.other: list[tuple[str, str, str, str]] = []  # non-benchmark messages: (room, sender, msgtype, body)
        self.sync_errors = 0
        self.limited = 0
        self.known_rooms: set[str] = set()
        self.syncs = 0
        self.task: asyncio.Task | None = None

    async def register(self) -> None:
        r = await self.c.register(self.localpart, self.password)
        if not getattr(r, "access_token", None):
            raise RuntimeError(f"register {self.localpart}: {r}")
        self.user_id = r.user_id

    def start_sync(self) -> None:
        self.task = asyncio.create_task(self._sync_loop())

    async def _sync_loop(self) -> None:
        try:
            await self._sync_loop_inner()
        except asyncio.CancelledError:
            raise
        except BaseException:
            log.exception("%s: the sync loop died", self.user_id)
            raise

    async def _sync_loop_inner(self) -> None:
        first = True
        while True:
            try:
                r = await self.c.sync(timeout=0 if first else 10000, sync_filter=SYNC_FILTER)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - count and go on
                self.sync_errors += 1
                log.warning("%s sync: %s", self.user_id, e)
                await asyncio.sleep(0.5)
                continue
            t = now_ns()
            rooms = getattr(r, "rooms", None)
            if rooms is None:
                self.sync_errors += 1
                await asyncio.sleep(0.2)
                continue
            self.syncs += 1
            for room_id, info in rooms.join.items():
                # A room's first sync after the join is limited by design; later ones must not be.
                if info.timeline.limited and room_id in self.known_rooms:
                    self.limited += 1
                self.known_rooms.add(room_id)
                for ev in info.timeline.events:
                    src = getattr(ev, "source", None) or {}
                    if src.get("type") != "m.room.message" or src.get("sender") == self.user_id:
                        continue
                    content = src.get("content") or {}
                    body = content.get("body") or ""
                    if not REC.record(body, t):
                        self.other.append((room_id, src.get("sender", ""), content.get("msgtype", ""), body))
            for room_id, info in rooms.invite.items():
                for ev in info.invite_state:
                    # nio's InviteMemberEvent.source has no "content"; use its parsed fields.
                    if getattr(ev, "state_key", None) == self.user_id and getattr(ev, "membership", None) == "invite":
                        self.invites.append((room_id, getattr(ev, "sender", "")))
            first = False

    async def send(self, room_id: str, body: str) -> bool:
        r = await self.c.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        if not isinstance(r, RoomSendResponse):
            log.warning("%s send: %s", self.user_id, r)
            return False
        return True

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            try:
                await self.task
            except BaseException:  # noqa: BLE001
                pass
        await self.c.close()


# ----------------------------------------------------------------------- xmpp --
class XUser(slixmpp.ClientXMPP):
    """An XMPP client (slixmpp) on Prosody's c2s port, plaintext with SCRAM (as in the peers' smoke test)."""

    def __init__(self, jid: str, password: str):
        super().__init__(jid, password)
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0077")
        self.ready = asyncio.Event()
        self.failed: str | None = None
        self.other: list[tuple[str, str, str]] = []  # non-benchmark messages: (from, type, body)
        self.errors: list[str] = []                  # <message type="error"> received (bounces)
        self.add_event_handler("failed_auth", lambda *_: setattr(self, "failed", "auth"))
        self.register_handler(Callback("bench-msg", MatchXPath(f"{{{CLIENT_NS}}}message"), self._on_message))

    def _on_message(self, stanza) -> None:
        t = now_ns()
        try:
            x = stanza.xml
            typ = x.get("type") or "normal"
            b = x.find(f"{{{CLIENT_NS}}}body")
            body = (b.text or "") if b is not None else None
            if typ == "error":
                self.errors.append(str(stanza)[:500])
                return
            if body is None:
                return
            if typ == "chat" and REC.record(body, t):
                return
            self.other.append(((x.get("from") or "").split("/")[0], typ, body))
        except Exception:  # noqa: BLE001 - never raise in a handler
            log.exception("recording a message")

    def send_chat(self, to: str, body: str, sid: str) -> None:
        m = self.make_message(mto=to, mbody=body, mtype="chat")
        m["id"] = sid
        m.send()


async def xmpp_register(domain: str, port: int, user: str, password: str) -> None:
    reg = XUser(f"{user}@{domain}", password)
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

    reg.add_event_handler("register", do_register)
    reg.connect("127.0.0.1", port)
    await wait_for(lambda: result, 20, f"in-band registration of {user}")
    if result[0] is not True:
        raise RuntimeError(f"in-band registration of {user}: {result[0]}")


async def xmpp_login(domain: str, port: int, user: str, password: str) -> XUser:
    c = XUser(f"{user}@{domain}/bench", password)

    async def start(_):
        c.send_presence()
        c.ready.set()

    c.add_event_handler("session_start", start)
    c.connect("127.0.0.1", port)
    try:
        await asyncio.wait_for(c.ready.wait(), 20)
    except asyncio.TimeoutError:
        raise RuntimeError(f"XMPP login of {user} failed ({c.failed or 'timeout'})") from None
    return c


# ---------------------------------------------------------------------- utils --
async def wait_for(pred, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        r = pred()
        if r:
            return r
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(step)


def matrix_escape(s: str) -> str:
    out = []
    for b in s.encode():
        c = chr(b)
        if ("a" <= c <= "z") or ("0" <= c <= "9") or c in ".-":
            out.append(c)
        elif c == "_":
            out.append("__")
        elif "A" <= c <= "Z":
            out.append("_" + c.lower())
        else:
            out.append(f"={b:02x}")
    return "".join(out)


def load_env(path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                parts = shlex.split(v) if v else []
                env[k] = parts[0] if parts else ""
    return env


def cpu_ticks(pid: int | None) -> int | None:
    """utime + stime of a process, in clock ticks."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])   # fields 14 and 15 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def ctx_switches(pid: int | None) -> int | None:
    """Voluntary + involuntary context switches of all threads of a process."""
    if not pid:
        return None
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass   # a thread that ended meanwhile
    return total


def proc_status_kb(pid: int | None, key: str) -> int | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pid_from_file(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def bridge_health(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return json.loads(r.read())
    except Exception:  # noqa: BLE001
        return None


def pct(sorted_vals: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not sorted_vals:
        return None
    k = math.ceil(p * len(sorted_vals)) - 1
    return sorted_vals[max(0, min(len(sorted_vals) - 1, k))]


# --------------------------------------------------------------------- phases --
PATH_LABEL = {"x2m": "XMPP → Matrix (bridge)", "m2x": "Matrix → XMPP (bridge)",
              "m2m": "Matrix → Matrix (Synapse only)", "x2x": "XMPP → XMPP (Prosody only)"}
BRIDGED = ("x2m", "m2x")


@dataclass
class Conv:
    """One conversation's users, for every path."""
    m: MUser            # Matrix user of the bridged pair (receives x2m, sends m2x, receives m2m)
    x: XUser            # XMPP user of the bridged pair (sends x2m, receives m2x, receives x2x)
    mb: MUser           # Matrix baseline sender (m2m)
    xb: XUser           # XMPP baseline sender (x2x)
    bridged_room: str = ""
    m2m_room: str = ""
    m_jid: str = ""      # the Matrix user's address under the component


@dataclass
class PhaseResult:
    idx: int
    path: str
    mode: str
    convs: int
    sent: int
    expected: int
    received: int = 0
    unique: int = 0
    dup: int = 0
    ooo: int = 0
    lost: int = 0
    send_errors: int = 0
    p50: float | None = None
    p99: float | None = None
    mean: float | None = None
    lat_max: float | None = None
    msgs_per_s: float | None = None
    send_rate: float | None = None
    duration_s: float = 0.0
    timed_out: bool = False
    key: str = ""
    bridge_ctx: int | None = None   # the bridge's context switches (all threads) during the phase
    cpu: dict = field(default_factory=dict)   # name -> cpu seconds during the phase


class Bench:
    def __init__(self, args):
        self.args = args
        self.env = load_env(os.path.join(args.state, "peers.env"))
        self.hs = self.env.get("PEER_SYNAPSE_URL", "http://127.0.0.1:8008")
        self.mdomain = self.env.get("PEER_MATRIX_DOMAIN", "localhost")
        self.xdomain = self.env.get("PEER_XMPP_DOMAIN", "localhost")
        self.component = self.env.get("PEER_COMPONENT_DOMAIN", "bridge.localhost")
        self.c2s = int(self.env.get("PEER_XMPP_C2S_PORT", "5222"))
        self.bridge_url = args.bridge_url
        self.pids = {
            "bridge": args.bridge_pid,
            "synapse": pid_from_file(os.path.join(args.state, "run", "synapse.pid")),
            "prosody": pid_from_file(os.path.join(args.state, "run", "prosody.pid")),
        }
        self.convs: list[Conv] = []
        self.results: list[PhaseResult] = []
        self.notes: list[str] = []
        self.mem: dict[str, int | None] = {}
        self.setup_s = 0.0
        self.idle_cpu_ms_per_s: float | None = None

    # -- setup
    async def setup(self) -> None:
        n = self.args.convs
        run = secrets.token_hex(3)
        t0 = time.monotonic()
        ms = [MUser(self.hs, self.mdomain, f"bm{run}{i}") for i in range(n)]
        mbs = [MUser(self.hs, self.mdomain, f"bmb{run}{i}") for i in range(n)]
        await asyncio.gather(*(u.register() for u in ms + mbs))
        xnames = [(f"bx{run}{i}", "pw-" + secrets.token_hex(5)) for i in range(n)]
        xbnames = [(f"bxb{run}{i}", "pw-" + secrets.token_hex(5)) for i in range(n)]
        await asyncio.gather(*(xmpp_register(self.xdomain, self.c2s, u, p) for u, p in xnames + xbnames))
        xs = await asyncio.gather(*(xmpp_login(self.xdomain, self.c2s, u, p) for u, p in xnames))
        xbs = await asyncio.gather(*(xmpp_login(self.xdomain, self.c2s, u, p) for u, p in xbnames))
        for u in ms:
            u.start_sync()
        await wait_for(lambda: all(u.syncs > 0 for u in ms), 30, "first sync of the receivers")
        for i in range(n):
            c = Conv(m=ms[i], x=xs[i], mb=mbs[i], xb=xbs[i])
            local, _, server = c.m.user_id[1:].partition(":")
            c.m_jid = f"{local}\\40{server}@{self.component}"
            self.convs.append(c)
        log.info("users ready in %.1fs", time.monotonic() - t0)
        await asyncio.gather(*(self.setup_conv(c) for c in self.convs))
        self.setup_s = time.monotonic() - t0
        log.info("conversations ready in %.1fs", self.setup_s)

    async def setup_conv(self, c: Conv) -> None:
        ghost = f"@_xmpp_{matrix_escape(c.x.boundjid.bare)}:{self.mdomain}"
        # Bridged DM, opened from XMPP: the ghost creates it and invites the Matrix user.
        hello = "hello " + secrets.token_hex(4)
        c.x.send_chat(c.m_jid, hello, "setup-" + secrets.token_hex(4))
        room, _ = await wait_for(lambda: next((iv for iv in c.m.invites if iv[1] == ghost), None), 30,
                                 f"invite from {ghost} to {c.m.user_id}")
        r = await c.m.c.join(room)
        if not isinstance(r, JoinResponse):
            raise RuntimeError(f"{c.m.user_id} join {room}: {r}")
        await wait_for(lambda: any(o[0] == room and o[3] == hello for o in c.m.other), 30,
                       f"first bridged message in {room}")
        c.bridged_room = room
        # Warm-up both ways (the first message of a pair does one-time work: ghost profile, DM).
        for i in range(2):
            w = f"warm-m2x {i} " + secrets.token_hex(3)
            await c.m.send(room, w)
            await wait_for(lambda: any(o[2] == w for o in c.x.other), 30, f"warm-up m2x at {c.x.boundjid.bare}")
            w = f"warm-x2m {i} " + secrets.token_hex(3)
            c.x.send_chat(c.m_jid, w, "warm-" + secrets.token_hex(4))
            await wait_for(lambda: any(o[3] == w for o in c.m.other), 30, f"warm-up x2m at {c.m.user_id}")
        # Baseline Matrix room: mb invites m.
        r = await c.mb.c.room_create(is_direct=True, invite=[c.m.user_id], preset=RoomPreset.trusted_private_chat)
        if not isinstance(r, RoomCreateResponse):
            raise RuntimeError(f"room_create: {r}")
        c.m2m_room = r.room_id
        r = await c.m.c.join(c.m2m_room)
        if not isinstance(r, JoinResponse):
            raise RuntimeError(f"{c.m.user_id} join {c.m2m_room}: {r}")
        for i in range(2):
            w = f"warm-m2m {i} " + secrets.token_hex(3)
            await c.mb.send(c.m2m_room, w)
            await wait_for(lambda: any(o[3] == w for o in c.m.other), 30, f"warm-up m2m at {c.m.user_id}")
            w = f"warm-x2x {i} " + secrets.token_hex(3)
            c.xb.send_chat(c.x.boundjid.bare, w, "warm-" + secrets.token_hex(4))
            await wait_for(lambda: any(o[2] == w for o in c.x.other), 30, f"warm-up x2x at {c.x.boundjid.bare}")

    # -- one phase
    async def send_conv(self, path: str, c: Conv, ci: int, phase: str, count: int, times: list[float] | None,
                        sent: list[int], errors: list[int], stamps: list[int]) -> None:
        """Send `count` messages of one conversation, at `times` (monotonic offsets) or back to back."""
        t0 = time.monotonic()
        for seq in range(count):
            if times is not None:
                delay = t0 + times[seq] - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            ts = now_ns()
            body = f"{TAG} {phase} {ci} {seq} {ts}"
            stamps.append(ts)
            if path == "x2m":
                c.x.send_chat(c.m_jid, body, f"{phase}-{ci}-{seq}")
                ok = True
            elif path == "x2x":
                c.xb.send_chat(c.x.boundjid.bare, body, f"{phase}-{ci}-{seq}")
                ok = True
            elif path == "m2x":
                ok = await c.m.send(c.bridged_room, body)
            else:  # m2m
                ok = await c.mb.send(c.m2m_room, body)
            if ok:
                sent[0] += 1
            else:
                errors[0] += 1
            if times is None and path in ("x2m", "x2x") and seq % 50 == 49:
                await asyncio.sleep(0)   # let the event loop flush the socket now and then

    async def quiesce(self) -> None:
        """Between phases: the bridge's outbox is empty, then a short pause."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            h = await asyncio.to_thread(bridge_health, self.bridge_url)
            if h and h.get("outbox") == 0:
                break
            await asyncio.sleep(0.3)
        else:
            self.notes.append(f"bridge outbox not empty before phase {len(self.results) + 1}: {h}")
        await asyncio.sleep(self.args.pause)

    async def phase(self, path: str, mode: str, nconv: int) -> PhaseResult:
        idx = len(self.results) + 1
        phase = f"p{idx:02d}{secrets.token_hex(2)}"
        convs = self.convs[:nconv]
        if mode == "paced":
            total = max(nconv, round(self.args.rate * self.args.paced_seconds))
            per = max(1, total // nconv)
            interval = nconv / self.args.rate          # each conversation at rate/nconv msg/s ...
            times = lambda ci: [ci / self.args.rate + k * interval for k in range(per)]  # noqa: E731 ... staggered
        else:
            per = self.args.burst if nconv == 1 else self.args.burst_multi
            times = lambda ci: None  # noqa: E731
        expected = per * nconv
        res = PhaseResult(idx=idx, path=path, mode=mode, convs=nconv, sent=0, expected=expected, key=phase)
        log.info("phase %d: %s %s x%d, %d messages", idx, path, mode, nconv, expected)
        cpu0 = {k: cpu_ticks(p) for k, p in self.pids.items()}
        cs0 = ctx_switches(self.pids["bridge"])
        self0 = self_cpu_s()
        sent, errors, stamps = [0], [0], []
        t_start = time.monotonic()
        deadline = t_start + self.args.phase_timeout
        senders = [asyncio.create_task(self.send_conv(path, c, ci, phase, per, times(ci), sent, errors, stamps))
                   for ci, c in enumerate(convs)]
        done, pending = await asyncio.wait(senders, timeout=self.args.phase_timeout)
        for t in pending:
            t.cancel()
            res.timed_out = True
        for t in done:
            if t.exception() is not None:
                self.notes.append(f"phase {idx} sender failed: {t.exception()!r}")
        t_sent = time.monotonic()
        res.sent = sent[0]
        res.send_errors = errors[0]
        while REC.count(phase) < res.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if REC.count(phase) < res.sent:
            res.timed_out = True
        res.duration_s = time.monotonic() - t_start
        cpu1 = {k: cpu_ticks(p) for k, p in self.pids.items()}
        cs1 = ctx_switches(self.pids["bridge"])
        res.bridge_ctx = (cs1 - cs0) if cs0 is not None and cs1 is not None else None
        res.cpu = {k: (cpu1[k] - cpu0[k]) / CLK_TCK for k in self.pids if cpu0[k] is not None and cpu1[k] is not None}
        res.cpu["bench client"] = self_cpu_s() - self0
        # Late duplicates would show up during the pause that quiesce() takes before the next phase.
        res.send_rate = (res.sent / (t_sent - t_start)) if t_sent > t_start and res.sent > 1 else None
        self.results.append(res)
        return res

    def finish(self) -> None:
        """Compute the statistics of every phase from what arrived (duplicates included)."""
        for res in self.results:
            got = REC.got.get(res.key, {})
            lats: list[float] = []
            t_first_send, t_last_recv = None, None
            received = unique = dup = ooo = 0
            for _conv, items in got.items():
                seen: set[int] = set()
                hi = -1
                for seq, ts, tr in items:   # arrival order
                    received += 1
                    if seq in seen:
                        dup += 1
                        continue
                    seen.add(seq)
                    unique += 1
                    if seq < hi:
                        ooo += 1
                    hi = max(hi, seq)
                    lats.append((tr - ts) / 1e6)
                    t_first_send = ts if t_first_send is None else min(t_first_send, ts)
                    t_last_recv = tr if t_last_recv is None else max(t_last_recv, tr)
            lats.sort()
            res.received, res.unique, res.dup, res.ooo = received, unique, dup, ooo
            res.lost = res.sent - unique
            res.p50, res.p99 = pct(lats, 0.50), pct(lats, 0.99)
            res.mean = sum(lats) / len(lats) if lats else None
            res.lat_max = lats[-1] if lats else None
            if unique > 1 and t_last_recv and t_first_send and t_last_recv > t_first_send:
                res.msgs_per_s = unique / ((t_last_recv - t_first_send) / 1e9)

    async def run(self) -> None:
        self.mem["rss_idle_kb"] = proc_status_kb(self.pids["bridge"], "VmRSS")
        # RSS is the program's own code pages (file-backed, clean: the kernel can drop them)
        # plus its heap and stacks (anonymous: what it really holds); reported apart.
        self.mem["anon_idle_kb"] = proc_status_kb(self.pids["bridge"], "RssAnon")
        self.mem["file_idle_kb"] = proc_status_kb(self.pids["bridge"], "RssFile")
        await self.setup()
        self.mem["rss_after_setup_kb"] = proc_status_kb(self.pids["bridge"], "VmRSS")
        await self.quiesce()
        c0, t0 = cpu_ticks(self.pids["bridge"]), time.monotonic()
        await asyncio.sleep(self.args.idle_seconds)
        c1, t1 = cpu_ticks(self.pids["bridge"]), time.monotonic()
        if c0 is not None and c1 is not None:
            self.idle_cpu_ms_per_s = (c1 - c0) / CLK_TCK * 1000 / (t1 - t0)
        paths = [p for p in ("m2m", "x2m", "x2x", "m2x") if p in self.args.paths.split(",")]
        for nconv in (1, self.args.convs):
            for mode in ("paced", "burst"):
                for path in paths:   # baseline and bridged alternate, so drift hits both alike
                    await self.quiesce()
                    res = await self.phase(path, mode, nconv)
                    log.info("  sent %d, arrived %d in %.1fs%s", res.sent, REC.count(res.key), res.duration_s,
                             " (TIMED OUT)" if res.timed_out else "")
        await self.quiesce()
        self.finish()
        self.mem["rss_end_kb"] = proc_status_kb(self.pids["bridge"], "VmRSS")
        self.mem["hwm_kb"] = proc_status_kb(self.pids["bridge"], "VmHWM")
        self.mem["anon_end_kb"] = proc_status_kb(self.pids["bridge"], "RssAnon")
        self.mem["file_end_kb"] = proc_status_kb(self.pids["bridge"], "RssFile")
        # "After the bench": once the bridge has been quiet for a while (it hands freed heap back
        # to the system at most 10 s after its last delivery), not the moment the last message
        # arrived.
        await asyncio.sleep(self.args.settle_seconds)
        self.mem["rss_after_kb"] = proc_status_kb(self.pids["bridge"], "VmRSS")
        self.mem["anon_after_kb"] = proc_status_kb(self.pids["bridge"], "RssAnon")
        for c in self.convs:
            for who, u in (("Matrix", c.m), ("Matrix", c.mb)):
                if u.sync_errors or u.limited:
                    self.notes.append(f"{who} {u.user_id}: {u.sync_errors} sync errors, {u.limited} limited timelines")
            for u in (c.x, c.xb):
                if u.errors:
                    self.notes.append(f"XMPP {u.boundjid.bare} got {len(u.errors)} error stanzas, first: {u.errors[0]}")
            stray_m = [o for o in c.m.other if not o[3].startswith(("hello ", "warm-"))]
            stray_x = [o for o in c.x.other if not o[2].startswith(("hello ", "warm-"))]
            for o in stray_m[:3]:
                self.notes.append(f"unexpected Matrix message at {c.m.user_id} in {o[0]} from {o[1]} ({o[2]}): {o[3][:200]}")
            for o in stray_x[:3]:
                self.notes.append(f"unexpected XMPP message at {c.x.boundjid.bare} from {o[0]} ({o[1]}): {o[2][:200]}")

    async def close(self) -> None:
        for c in self.convs:
            for u in (c.m, c.mb):
                try:
                    await u.close()
                except Exception:  # noqa: BLE001
                    pass
            for x in (c.x, c.xb):
                try:
                    x.disconnect()
                except Exception:  # noqa: BLE001
                    pass
        await asyncio.sleep(0.3)


# -------------------------------------------------------------------- report --
def fmt(v, nd=1, unit=""):
    if v is None:
        return "–"
    return f"{v:.{nd}f}{unit}"


def delta(a, b, nd=1):
    if a is None or b is None:
        return "–"
    d = a - b
    return f"{'+' if d >= 0 else '−'}{abs(d):.{nd}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_info(root: str) -> list[str]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(ln.split()[1] for ln in f if ln.startswith("MemTotal:")))
    except (OSError, StopIteration, ValueError):
        pass
    commit = sh(f"git -C {shlex.quote(root)} rev-parse --short HEAD") or "?"
    dirty = sh(f"git -C {shlex.quote(root)} status --porcelain -- src Cargo.toml Cargo.lock migrations")
    synapse_v = ""
    try:
        # Not synapse.__version__: that appends the git state of the current directory.
        from importlib.metadata import version  # noqa: PLC0415
        synapse_v = version("matrix-synapse")
    except Exception:  # noqa: BLE001
        pass
    prosody_v = sh("dpkg-query -W -f='${Version}' prosody")
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- commit: `{commit}`{' (with uncommitted changes in src/)' if dirty else ''}, "
        f"{os.environ.get('UCB_BENCH_BUILD', 'release build')}",
        f"- machine: {os.cpu_count()} CPUs (`nproc` {sh('nproc') or '?'}), {model or '?'}, "
        f"{mem_kb / 1048576:.1f} GiB RAM, {platform.system()} {platform.release()}",
        f"- peers: Synapse {synapse_v or '?'} (SQLite), Prosody {prosody_v or '?'}; clients matrix-nio + slixmpp, "
        f"Python {platform.python_version()}",
        "- everything (peers, bridge, clients) on the same machine, over 127.0.0.1",
    ]


def report(b: Bench) -> str:
    a = b.args
    L: list[str] = []
    L.append("# ucbridge benchmark results")
    L.append("")
    L.extend(machine_info(a.root))
    L.append(f"- load: paced = {a.rate:g} msg/s in total for {a.paced_seconds:g} s (spread evenly over the "
             f"conversations); burst = {a.burst} messages back to back in 1 conversation, "
             f"{a.burst_multi} per conversation in {a.convs} conversations at once. A Matrix sender waits for "
             f"each send to return before the next (order within a conversation); an XMPP sender just writes.")
    L.append(f"- bridge database: {a.db_label}{' seeded by bench/seed_scale.py (10,000 ghosts, 1,000 hosted rooms, 5,000 direct chats)' if a.scale else ''}; "
             f"log filter `{a.log_filter}`; start-up (spawn to healthy): {fmt(a.startup_ms, 0)} ms")
    L.append(f"- setup (register {4 * a.convs} users, open {a.convs} bridged DMs and {a.convs} Matrix rooms, warm-ups): "
             f"{b.setup_s:.1f} s")
    L.append("")
    L.extend(targets_table(measures(b)))
    L.append("")
    L.append("## All phases")
    L.append("")
    L.append("Latency = receive time at the receiving client − send time in the body, ms. msg/s = unique "
             "messages received ÷ (last receive − first send). OOO = out-of-order arrivals "
             "(a message after a later one of the same conversation). CPU = the bridge process's utime+stime "
             "during the phase ÷ messages received.")
    L.append("")
    L.append("| # | path | load | conv | sent | recv | lost | dup | OOO | msg/s | p50 ms | p99 ms | max ms "
             "| bridge CPU µs/msg | Synapse CPU µs/msg | Prosody CPU µs/msg |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in b.results:
        n = r.unique or 1
        cpu = {k: (r.cpu.get(k) / n * 1e6 if r.cpu.get(k) is not None and r.unique else None) for k in ("bridge", "synapse", "prosody")}
        flag = " ⚠ timeout" if r.timed_out else ""
        L.append(f"| {r.idx} | {PATH_LABEL[r.path]} | {r.mode}{flag} | {r.convs} | {r.sent} | {r.unique} | {r.lost} | {r.dup} "
                 f"| {r.ooo} | {fmt(r.msgs_per_s)} | {fmt(r.p50)} | {fmt(r.p99)} | {fmt(r.lat_max)} "
                 f"| {fmt(cpu['bridge'], 0) if r.path in BRIDGED else '–'} | {fmt(cpu['synapse'], 0)} | {fmt(cpu['prosody'], 0)} |")
    L.append("")
    L.append("## Bridge versus the direct paths")
    L.append("")
    L.append("Δ = bridged minus baseline at the same load and concurrency (ms); ratio = bridged msg/s ÷ baseline "
             "msg/s. The Matrix → Matrix baseline does the same Synapse work as a bridged message (one event "
             "stored and delivered) and, for XMPP → Matrix, the same nio sync receiver; XMPP → XMPP is the floor "
             "of the Prosody hop. Bursts: compare msg/s, not latency. An XMPP sender hands its whole burst "
             "to the stream at once, so XMPP → Matrix latency includes the wait in the bridge's queue (one "
             "Synapse send at a time per conversation), while a Matrix sender waits for each send, so its "
             "queueing happens before the timestamp (Matrix → Matrix, Matrix → XMPP).")
    L.append("")
    L.append("| bridged path | load | conv | p50 ms | p99 ms | msg/s | Δp50 vs M→M | Δp99 vs M→M | ratio vs M→M "
             "| Δp50 vs X→X | Δp99 vs X→X | ratio vs X→X | OOO | lost | bridge CPU µs/msg | bridge ctx switches/msg |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    idx = {(r.path, r.mode, r.convs): r for r in b.results}
    for r in b.results:
        if r.path not in BRIDGED:
            continue
        mm = idx.get(("m2m", r.mode, r.convs))
        xx = idx.get(("x2x", r.mode, r.convs))
        cpu = r.cpu.get("bridge")
        cpu_s = fmt(cpu / r.unique * 1e6, 0) if cpu is not None and r.unique else "–"
        arrow = "X→M" if r.path == "x2m" else "M→X"
        L.append(f"| {arrow} | {r.mode} | {r.convs} | {fmt(r.p50)} | {fmt(r.p99)} | {fmt(r.msgs_per_s)} "
                 f"| {delta(r.p50, mm and mm.p50)} | {delta(r.p99, mm and mm.p99)} | {ratio(r.msgs_per_s, mm and mm.msgs_per_s)} "
                 f"| {delta(r.p50, xx and xx.p50)} | {delta(r.p99, xx and xx.p99)} | {ratio(r.msgs_per_s, xx and xx.msgs_per_s)} "
                 f"| {r.ooo} | {r.lost} | {cpu_s} | {fmt(r.bridge_ctx / r.unique, 0) if r.bridge_ctx is not None and r.unique else '–'} |")
    L.append("")
    bridged = [r for r in b.results if r.path in BRIDGED]
    tot_cpu = sum(r.cpu.get("bridge", 0) for r in bridged)
    tot_msgs = sum(r.unique for r in bridged)
    L.append("## Bridge process")
    L.append("")
    kb = lambda v: f"{v / 1024:.1f} MiB" if v else "–"  # noqa: E731
    L.append(f"- RSS idle (started, connected, before any traffic): {kb(b.mem.get('rss_idle_kb'))}; "
             f"after setup: {kb(b.mem.get('rss_after_setup_kb'))}; at the end: {kb(b.mem.get('rss_end_kb'))}; "
             f"{a.settle_seconds:g} s later: {kb(b.mem.get('rss_after_kb'))} (anonymous {kb(b.mem.get('anon_after_kb'))}); "
             f"peak (VmHWM): {kb(b.mem.get('hwm_kb'))}")
    L.append(f"- of that, anonymous memory (heap, stacks): {kb(b.mem.get('anon_idle_kb'))} idle, "
             f"{kb(b.mem.get('anon_end_kb'))} at the end; the program's own mapped code and data (file pages, "
             f"clean): {kb(b.mem.get('file_idle_kb'))} idle, {kb(b.mem.get('file_end_kb'))} at the end")
    L.append(f"- CPU while idle (connected, {a.idle_seconds:g} s without traffic after the setup): "
             f"{fmt(b.idle_cpu_ms_per_s, 1)} ms per second")
    if tot_msgs:
        L.append(f"- CPU over all bridged phases: {tot_cpu:.2f} s for {tot_msgs} messages = "
                 f"{tot_cpu / tot_msgs * 1e6:.0f} µs per message (utime+stime, {CLK_TCK} ticks/s resolution)")
    tot_ctx = sum(r.bridge_ctx or 0 for r in bridged)
    if tot_msgs:
        L.append(f"- context switches over all bridged phases (all threads, voluntary + involuntary): {tot_ctx} = "
                 f"{tot_ctx / tot_msgs:.0f} per message")
    L.append(f"- out-of-order deliveries through the bridge: {sum(r.ooo for r in bridged)}; lost: "
             f"{sum(r.lost for r in bridged)}; duplicates: {sum(r.dup for r in bridged)}")
    if b.args.bridge_log:
        warns, first = scan_log(b.args.bridge_log)
        L.append(f"- bridge log ({os.path.relpath(b.args.bridge_log, a.root)}, filter `{a.log_filter}`): {warns} WARN/ERROR lines"
                 + (":" if first else ""))
        for ln in first:
            L.append(f"  - `{ln[:300]}`")
    L.append("")
    if b.notes:
        L.append("## Notes from the run")
        L.append("")
        for n in b.notes[:40]:
            L.append(f"- {n}")
        L.append("")
    return "\n".join(L)


def measures(b: Bench) -> dict:
    """The numbers the targets (issue 14) are stated in, for the table and the JSON file."""
    idx = {(r.path, r.mode, r.convs): r for r in b.results}
    out: dict = {"db": b.args.db_label, "scale": b.args.scale, "log": b.args.log_filter,
                 "startup_ms": b.args.startup_ms, "phases": {}}
    for r in b.results:
        if r.path not in BRIDGED:
            continue
        mm = idx.get(("m2m", r.mode, r.convs))
        key = f"{'X→M' if r.path == 'x2m' else 'M→X'} {r.mode} {r.convs}"
        out["phases"][key] = {
            "dp50": r.p50 - mm.p50 if r.p50 is not None and mm and mm.p50 is not None else None,
            "dp99": r.p99 - mm.p99 if r.p99 is not None and mm and mm.p99 is not None else None,
            "ratio": r.msgs_per_s / mm.msgs_per_s if r.msgs_per_s and mm and mm.msgs_per_s else None,
            "cpu_us": r.cpu.get("bridge") / r.unique * 1e6 if r.cpu.get("bridge") is not None and r.unique else None,
            "ooo": r.ooo, "lost": r.lost, "dup": r.dup,
        }
    bridged = [r for r in b.results if r.path in BRIDGED]
    msgs = sum(r.unique for r in bridged)
    out["cpu_us_per_msg"] = sum(r.cpu.get("bridge", 0) for r in bridged) / msgs * 1e6 if msgs else None
    out["rss_mib"] = {k: (v / 1024 if v else None) for k, v in b.mem.items()}
    out["ooo"] = sum(r.ooo for r in bridged)
    out["lost"] = sum(r.lost for r in bridged)
    out["dup"] = sum(r.dup for r in bridged)
    return out


def targets_table(m: dict) -> list[str]:
    """Each target of issue 14 next to this run's number."""
    def row(measure, target, value, ok):
        return f"| {measure} | {target} | {value} | {'met' if ok else '**not met**' if ok is not None else '–'} |"

    L = ["## Against the targets", "", "| measure | target | this run | |", "|---|---|---|---|"]
    for key, p in m["phases"].items():
        if " paced " in key:
            ok = None if p["dp50"] is None else p["dp50"] <= 5 and p["dp99"] <= 20
            L.append(row(f"{key}: added p50 / p99 (ms, vs M→M)", "≤ 5 / ≤ 20",
                         f"{delta(p['dp50'], 0)} / {delta(p['dp99'], 0)}", ok))
        else:
            ok = None if p["ratio"] is None else p["ratio"] >= 0.9
            L.append(row(f"{key}: msg/s ÷ M→M", "≥ 0.9", fmt(p["ratio"], 2), ok))
    cpu = m["cpu_us_per_msg"]
    L.append(row(f"CPU per bridged message (log `{m['log']}`)", "≤ 300 µs", f"{fmt(cpu, 0)} µs",
                 None if cpu is None else cpu <= 300))
    rss = m["rss_mib"]
    for k, label, lim in (("rss_idle_kb", "RSS idle after start", 15), ("hwm_kb", "RSS peak", 30),
                          ("rss_after_kb", "RSS after the bench (quiet)", 20)):
        v = rss.get(k)
        L.append(row(label, f"≤ {lim} MiB", f"{fmt(v)} MiB", None if v is None else v <= lim))
    L.append(row("out of order / lost / duplicates", "0 / 0 / 0", f"{m['ooo']} / {m['lost']} / {m['dup']}",
                 m["ooo"] == 0 and m["lost"] == 0 and m["dup"] == 0))
    if m["scale"]:
        s = m["startup_ms"]
        L.append(row("start-up with the seeded database", "≤ 5 s", f"{fmt(s / 1000 if s else None, 2)} s",
                     None if s is None else s <= 5000))
    return L


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def scan_log(path: str) -> tuple[int, list[str]]:
    try:
        with open(path, errors="replace") as f:
            lines = [ANSI.sub("", ln.rstrip()) for ln in f]
    except OSError:
        return 0, []
    hits = [ln for ln in lines if re.search(r"\b(WARN|ERROR)\b", ln)]
    return len(hits), hits[:8]


async def amain(args) -> int:
    b = Bench(args)
    rc = 0
    try:
        await asyncio.wait_for(b.run(), args.total_timeout)
    except asyncio.TimeoutError:
        # Report what was measured so far.
        b.notes.append(f"the run was cut off after --total-timeout {args.total_timeout:g} s")
        b.finish()
        rc = 1
    finally:
        await b.close()
    if not b.results:
        return 1
    text = report(b)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    with open(args.json or os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(measures(b), f, indent=1)
    print(text)
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--state", default=os.path.join(root, ".state/bench"), help="peers state dir (peers.env, run/*.pid)")
    ap.add_argument("--bridge-pid", type=int, required=True)
    ap.add_argument("--bridge-url", default="http://127.0.0.1:9090")
    ap.add_argument("--bridge-log", default=None)
    ap.add_argument("--out", default=os.path.join(root, "bench/results.md"))
    ap.add_argument("--convs", type=int, default=10, help="conversations in the concurrent phases")
    ap.add_argument("--rate", type=float, default=20.0, help="paced phases: total messages per second")
    ap.add_argument("--paced-seconds", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=200, help="burst, 1 conversation: messages")
    ap.add_argument("--burst-multi", type=int, default=50, help="burst, N conversations: messages per conversation")
    ap.add_argument("--paths", default="m2m,x2m,x2x,m2x")
    ap.add_argument("--phase-timeout", type=float, default=60.0, help="a phase ends after this many seconds, complete or not")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between phases")
    ap.add_argument("--idle-seconds", type=float, default=5.0, help="idle CPU measurement after the setup")
    ap.add_argument("--settle-seconds", type=float, default=15.0, help="quiet time before the RSS after the bench")
    ap.add_argument("--total-timeout", type=float, default=1500.0)
    ap.add_argument("--db-label", default="sqlite", help="the bridge's database, for the report")
    ap.add_argument("--log-filter", default="info", help="the bridge's log filter, for the report")
    ap.add_argument("--startup-ms", type=int, default=None, help="spawn to healthy, measured by run.sh")
    ap.add_argument("--scale", action="store_true", help="the database was seeded by seed_scale.py")
    ap.add_argument("--json", default=None, help="also write the target measures as JSON (default: --out with .json)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.root = root
    args.state = os.path.abspath(args.state)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    for noisy in ("slixmpp", "nio", "aiohttp", "peewee"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
