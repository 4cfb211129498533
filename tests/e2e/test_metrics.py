"""Operating the bridge (issue 17): Prometheus metrics at /metrics (counters move with real traffic
through Synapse and Prosody; the bearer token is enforced when set), /health's state per dependency,
the MSC2346 bridge-info state events in hosted and linked rooms, and the bridge-state notices in the
control room when the XMPP server goes away and comes back."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from nio import JoinResponse

from ucb import Peers, config_variant, hosted_alias, matrix_escape_localpart, run, settings, token, wait_for
from test_control import control_room
from test_portal import join_remote_muc, muc_domain
from test_faults import _service
from test_reconnect import _prosody
from test_rooms import create_room

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(path: str, bearer: str | None = None, timeout: float = 5) -> tuple[int, dict, str]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    req = urllib.request.Request(settings().bridge_url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def parse(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        assert m, f"not Prometheus text format: {line!r}"
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def scrape(bearer: str | None = None) -> list[tuple[str, dict, float]]:
    status, headers, body = get("/metrics", bearer)
    assert status == 200, (status, body)
    assert headers.get("content-type", "").startswith("text/plain"), headers
    return parse(body)


def value(series, name: str, **labels) -> float:
    """The sum of `name`'s series whose labels include `labels` (0 when there is none)."""
    return sum(v for n, ls, v in series if n == name and all(ls.get(k) == w for k, w in labels.items()))


def test_metrics_move_with_traffic_and_health_names_each_dependency(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("met")
            x = await p.xmpp_user("met")
            room = await p.dm_from_matrix(m, x)
            before = scrape()
            tag = token(3)
            await m.send_text(room, f"to xmpp {tag}")
            await x.wait_chat(m.jid, f"to xmpp {tag}")
            x.send_chat(m.jid, f"to matrix {tag}")
            await m.wait_message(room, x.ghost, f"to matrix {tag}")
            # A refusal: within the body limit, but too big for Synapse once escaped (policy).
            sid = x.send_chat(m.jid, f"big {tag} " + '"' * 33_000)
            await x.wait_error(sid)

            def moved():
                now = scrape()
                checks = {
                    "bridged to XMPP": value(now, "ucbridge_bridged_total", direction="to_xmpp", kind="direct")
                    > value(before, "ucbridge_bridged_total", direction="to_xmpp", kind="direct"),
                    "bridged to Matrix": value(now, "ucbridge_bridged_total", direction="to_matrix", kind="direct")
                    > value(before, "ucbridge_bridged_total", direction="to_matrix", kind="direct"),
                    "delivery latencies": value(now, "ucbridge_delivery_seconds_count", direction="to_xmpp")
                    > value(before, "ucbridge_delivery_seconds_count", direction="to_xmpp"),
                    "policy refusal": value(now, "ucbridge_refusals_total", reason="policy")
                    > value(before, "ucbridge_refusals_total", reason="policy"),
                    "transactions": value(now, "ucbridge_transactions_total")
                    > value(before, "ucbridge_transactions_total"),
                    "transaction requests": value(now, "ucbridge_http_requests_total",
                                                  route="/_matrix/app/v1/transactions/{txn_id}", status="200")
                    > value(before, "ucbridge_http_requests_total",
                            route="/_matrix/app/v1/transactions/{txn_id}", status="200"),
                }
                return now if all(checks.values()) else print("not yet:", [k for k, ok in checks.items() if not ok])
            now = await wait_for(moved, 30, step=0.5, what="the counters to move with the traffic")
            assert value(now, "ucbridge_connected", peer="xmpp") == 1, now
            await wait_for(lambda: value(scrape(), "ucbridge_connected", peer="homeserver") == 1, 20,
                           what="the homeserver link gauge")
            # The histogram has buckets (not a summary), and series carry no user data.
            assert any(n == "ucbridge_delivery_seconds_bucket" and ls.get("le") == "0.5" for n, ls, _ in now), now
            assert not [s for s in now if m.user_id in str(s) or x.bare in str(s)], "a person in a series"
            # The raw path of a transaction is never a label (a series per transaction id).
            assert not [ls for n, ls, _ in now if "/transactions/" in ls.get("route", "") and "{" not in ls["route"]]

            # /health: every dependency by name, the old fields kept.
            health = bridge.health()
            assert health["status"] == "ok" and health["xmpp"] == "connected" and health["outbox"] >= 0, health
            deps = health["dependencies"]
            assert {k: deps[k]["state"] for k in ("database", "homeserver", "xmpp")} == \
                {"database": "up", "homeserver": "up", "xmpp": "up"}, deps
            assert deps["smtp"]["state"] in ("up", "unknown", "down") and "sms_gateway" in deps, deps
    run(go(), timeout=120)


def test_sms_and_missed_call_counters_move_with_kannel_traffic(bridge):
    from test_missed_calls import missed_call, post_events
    from test_sms import grant, rnd_mobile, sms_room, wait_sms

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("msm")
            await grant(p, m.user_id)
            number = rnd_mobile()
            room = await sms_room(m, number)
            before = scrape()
            text = ("Lorem ipsum dolor sit amet " * 12 + token(3)).strip()   # 330 GSM characters: 3 parts
            await m.send_text(room, text)
            await wait_sms(number, text)
            # A missed call of the config's SMS-only user (extension 208): a notice by SMS.
            caller = "+49 30 " + str(int.from_bytes(os.urandom(3), "big") % 9000000 + 1000000)
            assert post_events(missed_call("met-" + token(6), "208", caller))[0] == 200

            def moved():
                now = scrape()
                grew = {k: value(now, k, **ls) - value(before, k, **ls) for k, ls in (
                    ("ucbridge_sms_sent_total", {}), ("ucbridge_sms_parts_total", {}),
                    ("ucbridge_missed_call_notices_total", {"channel": "sms"}),
                    ("ucbridge_bridged_total", {"direction": "to_phone", "kind": "sms"}))}
                ok = grew["ucbridge_sms_sent_total"] >= 2 and grew["ucbridge_sms_parts_total"] >= 4 and \
                    grew["ucbridge_missed_call_notices_total"] >= 1 and grew["ucbridge_bridged_total"] >= 2
                return ok or print("not yet:", grew)
            await wait_for(moved, 30, step=0.5, what="the SMS and missed-call counters to move")
            assert bridge.health()["dependencies"]["sms_gateway"]["state"] == "up"
    run(go(), timeout=150)


def test_metrics_need_the_token_when_one_is_set(bridge):
    secret = "metrics-" + token(12).lower()
    path = os.path.join(os.path.dirname(settings().config_path), "metrics.token")
    with open(path, "w") as f:
        f.write(secret + "\n")

    def with_token(cfg: dict) -> None:
        cfg["metrics"] = {"token_file": "metrics.token"}

    # Positive control: open without a token.
    assert get("/metrics")[0] == 200
    with config_variant(bridge, "metrics-token", with_token):
        status, headers, _ = get("/metrics")
        assert status == 401 and headers.get("www-authenticate") == "Bearer", (status, headers)
        assert get("/metrics", "wrong-" + secret)[0] == 401
        assert value(scrape(secret), "ucbridge_connected", peer="xmpp") == 1
        assert get("/health")[0] == 200, "health stays open"


def test_hosted_and_linked_rooms_carry_bridge_info(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("mbi")
            alias = "bi" + token(4).lower()
            room = await create_room(m, alias)
            full = f"#{hosted_alias(alias)}:{settings().matrix_domain}"
            bot = f"@ucbridge:{settings().matrix_domain}"

            async def info_in(room: str, channel_domain: str) -> dict:
                # Set before the bridge answers (the room's "is ready", the alias query), so no wait.
                status, body = await m.request("GET", f"/rooms/{urllib.parse.quote(room)}/state")
                assert status == 200, body
                events = {e["type"]: e for e in body if e["type"] in ("m.bridge", "uk.half-shot.bridge")}
                assert set(events) == {"m.bridge", "uk.half-shot.bridge"}, body
                a, b = events["m.bridge"], events["uk.half-shot.bridge"]
                assert a["content"] == b["content"] and a["state_key"] == b["state_key"], (a, b)
                assert a["sender"] == bot, a
                c = a["content"]
                assert c["bridgebot"] == bot and c["protocol"] == {"id": "xmpp", "displayname": "XMPP"}, c
                assert c["network"]["id"] == channel_domain and c["channel"]["id"].endswith("@" + channel_domain), c
                assert a["state_key"] == f"ucbridge/xmpp/{channel_domain}/{c['channel']['id']}", a
                return c

            hosted = await info_in(room, settings().component)
            assert hosted["creator"] == m.user_id and hosted["channel"]["displayname"] == full, hosted

            x = await p.xmpp_user("xbi")
            remote = f"bi{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x, remote, "xena")
            r = await m.c.join(f"#_xmpp_{matrix_escape_localpart(remote)}:{settings().matrix_domain}")
            assert isinstance(r, JoinResponse), r
            linked = await info_in(r.room_id, muc_domain())
            assert linked["channel"]["id"] == remote and linked["creator"] == bot, linked
    run(go(), timeout=120)


def test_rooms_that_lost_their_bridge_info_get_it_back_at_start(bridge):
    """Rooms bridged before the bridge wrote m.bridge (here: their events emptied by the bot, as
    a state event cannot be deleted) get it at the next start; a room that has it is left alone."""
    BRIDGE_TYPES = ("m.bridge", "uk.half-shot.bridge")

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("mbf")
            emptied = await create_room(m, "bf" + token(4).lower())
            # create_room waits for the bot's first "is ready": one room per user.
            m2 = await p.matrix_user("mbk")
            kept = await create_room(m2, "bk" + token(4).lower())
            x = await p.xmpp_user("xbf")
            remote = f"bf{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x, remote, "xavier")
            r = await m.c.join(f"#_xmpp_{matrix_escape_localpart(remote)}:{settings().matrix_domain}")
            assert isinstance(r, JoinResponse), r
            linked = r.room_id

            async def bridge_events(room: str) -> dict[str, dict]:
                member = m2 if room == kept else m
                status, body = await member.request("GET", f"/rooms/{urllib.parse.quote(room)}/state")
                assert status == 200, body
                return {e["type"]: e for e in body if e["type"] in BRIDGE_TYPES}

            async def as_bot(room: str, kind: str, key: str, content: dict) -> None:
                q = urllib.parse.quote
                url = f"{settings().hs_url}/_matrix/client/v3/rooms/{q(room)}/state/{q(kind)}/{q(key, safe='')}"
                async with m.http.put(url, json=content,
                                      headers={"Authorization": f"Bearer {settings().as_token}"}) as resp:
                    assert resp.status == 200, await resp.text()

            before = {room: await bridge_events(room) for room in (emptied, kept, linked)}
            for room, events in before.items():
                assert set(events) == set(BRIDGE_TYPES) and events["m.bridge"]["content"], (room, events)
            # Both events emptied in one room; in the linked room only the older name's.
            for kind in BRIDGE_TYPES:
                await as_bot(emptied, kind, before[emptied][kind]["state_key"], {})
            await as_bot(linked, "uk.half-shot.bridge", before[linked]["uk.half-shot.bridge"]["state_key"], {})
            gone = await bridge_events(emptied)
            assert all(e["content"] == {} for e in gone.values()), gone
            assert (await bridge_events(linked))["uk.half-shot.bridge"]["content"] == {}

            offset = bridge.log_size()
            bridge.restart()

            async def restored(room: str) -> bool:
                now = await bridge_events(room)
                return all(now.get(k, {}).get("content") == before[room][k]["content"] for k in BRIDGE_TYPES)
            for room in (emptied, linked):
                deadline = time.monotonic() + 30
                while not await restored(room):
                    assert time.monotonic() < deadline, (room, await bridge_events(room), bridge.log_tail(30))
                    await asyncio.sleep(0.3)
            # Checked, not rewritten: the room that had it keeps the very same events.
            bridge.wait_log(offset, "bridge info of the bridged rooms checked")
            after = await bridge_events(kept)
            assert {k: e["event_id"] for k, e in after.items()} == \
                {k: e["event_id"] for k, e in before[kept].items()}, (before[kept], after)
    run(go(), timeout=180)


@pytest.mark.timeout(300)
def test_the_control_room_hears_when_the_xmpp_server_goes_and_comes_back(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            reconnects = value(scrape(), "ucbridge_reconnects_total", peer="xmpp")
            # The control room keeps earlier sessions' notices: only what comes after now counts.
            await admin.sync_once()
            seen = len(admin.timeline.get(room, []))

            def notice(text: str):
                return [e for e in admin.timeline.get(room, [])[seen:] if e.get("type") == "m.room.message"
                        and "Bridge state: the XMPP server" in e.get("content", {}).get("body", "")
                        and text in e["content"]["body"]]
            assert not notice(""), "a bridge-state notice with the XMPP server up"
            _prosody("down")
            try:
                await wait_for(lambda: (bridge.health() or {}).get("dependencies", {}).get("xmpp", {})
                               .get("state") == "down", 30, what="/health to say XMPP is down")
                await admin.sync_until(lambda: notice("is unreachable since"), 30, "the lost-link notice")
                lost = notice("is unreachable since")
                assert lost[0]["sender"] == f"@ucbridge:{settings().matrix_domain}", lost
                assert lost[0]["content"]["msgtype"] == "m.notice", lost
                assert not notice("is back after"), "back before it came back"
                assert value(scrape(), "ucbridge_connected", peer="xmpp") == 0
            finally:
                _prosody("up")
            await admin.sync_until(lambda: notice("is back after"), 90, "the link-back notice")
            assert len(notice("is unreachable since")) == 1, "the outage was told more than once"
            await wait_for(lambda: (bridge.health() or {}).get("xmpp") == "connected", 30, what="reconnected")
            after = scrape()
            assert value(after, "ucbridge_reconnects_total", peer="xmpp") > reconnects, after
            assert value(after, "ucbridge_connected", peer="xmpp") == 1
    run(go(), timeout=240)


@pytest.mark.timeout(420)
def test_the_control_room_hears_when_the_homeserver_goes_and_comes_back(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            reconnects = value(scrape(), "ucbridge_reconnects_total", peer="homeserver")
            await admin.sync_once()
            seen = len(admin.timeline.get(room, []))

            def notices():
                return [e["content"]["body"] for e in admin.timeline.get(room, [])[seen:]
                        if "Bridge state: the homeserver" in e.get("content", {}).get("body", "")]
            assert not notices(), "a bridge-state notice with the homeserver up"
            _service("synapse", "down")
            try:
                await wait_for(lambda: (bridge.health() or {}).get("dependencies", {}).get("homeserver", {})
                               .get("state") == "down", 30, what="/health to say the homeserver is down")
                assert value(scrape(), "ucbridge_connected", peer="homeserver") == 0
            finally:
                _service("synapse", "up")
            # The notice of the outage waited in the outbox; both arrive, in order, once it is back.
            told = await admin.sync_until(lambda: len(notices()) >= 2 and notices(), 120, "both notices")
            assert "is unreachable since" in told[0] and "is back after" in told[1] and len(told) == 2, told
            await wait_for(lambda: value(scrape(), "ucbridge_reconnects_total", peer="homeserver") > reconnects,
                           10, what="the homeserver reconnect counted")
            assert (bridge.health() or {})["dependencies"]["homeserver"]["state"] == "up"
    run(go(), timeout=400)


@pytest.mark.skipif(settings().db != "postgres", reason="freezes a PostgreSQL server of its own: the PostgreSQL run only")
@pytest.mark.timeout(300)
def test_health_answers_within_seconds_while_the_database_hangs(bridge):
    """A database that takes connections but never answers (frozen, or a network partition) must
    not hold /health for the pool's 30 s acquire timeout: it says 503 within seconds."""
    from test_faults import PrivatePostgres
    pg = PrivatePostgres()
    old_url = bridge.database_url
    frozen: list[int] = []
    try:
        pg.init()
        bridge.stop()
        pg.copy_from(old_url)
        bridge.database_url = pg.url
        bridge.start()
        status, _, body = get("/health")
        assert status == 200 and json.loads(body)["dependencies"]["database"]["state"] == "up", body
        # Freeze this test's own PostgreSQL: its postmaster and every backend, by pid.
        with open(os.path.join(pg.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True)
        frozen = [postmaster] + [int(pid) for pid in children.stdout.split()]
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, _, body = get("/health", timeout=60)
            took = time.monotonic() - started
            assert status == 503, (status, body)
            health = json.loads(body)
            assert health["status"] == "database unavailable" and health["outbox"] == -1, health
            assert health["dependencies"]["database"]["state"] == "down", health
            assert health["dependencies"]["xmpp"]["state"] == "up", "the other dependencies are still told"
            assert took < 5, f"/health took {took:.1f} s with the database hanging"
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        wait_for_sync(lambda: get("/health")[0] == 200, 60, "/health to recover with the database")
        bridge.stop()
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        bridge.stop(check=False)
        bridge.database_url = old_url
        pg.remove()
        bridge.start()


def wait_for_sync(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
