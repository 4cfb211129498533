"""SMS end to end through the real Kannel (bearerbox + smsbox) and its fake SMSC: what people on
Matrix and XMPP write to a phone number reaches the SMSC with the right number and text, incoming
SMS (injected at the fake SMSC, as a phone would send them) reach the right conversation, delivery
reports become ticks, people without the permission are refused, and a Kannel outage delays an SMS
but never loses or doubles it. Missed-call notices by SMS go the same way. The daily cap (in SMS
parts) and the per-user rate limit refuse the excess with the reason and send none of it, and an
incoming SMS to a number of ours (a DID) reaches its owner; these run on a bridge of their own
with a config variant (small limits, DIDs owned by test users).

The bridge config (scripts/lib.sh ucb_write_config) has an `sms:` section for the peers' Kannel
(sender +4930555000) and the missed-call user hanna (extension 208, mobile +49 176 5550208, SMS
notices only, from the caller's number).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.parse

import ucb
from test_control import ask, control_room
from test_missed_calls import missed_call, post_events
from test_rooms import _bot, bot_dm, bot_says
from ucb import RECEIPTS_NS, Peers, run, settings, token, wait_for

SENDER = "+4930555000"


# ------------------------------------------------------------------ helpers --
def rnd_mobile() -> str:
    """A German mobile number nobody else in the session uses."""
    return "+49176" + str(int.from_bytes(os.urandom(4), "big") % 90000000 + 10000000)


def ghost(number: str) -> str:
    return f"@_sms_{number}:{settings().matrix_domain}"


def address(number: str) -> str:
    return f"{number}@{settings().component}"


def _kannel_dir() -> str:
    return os.path.join(settings().state, "kannel")


def _decode(kind: str, payload: str) -> str:
    """The text of one MT as fakesmsc logs it."""
    raw = urllib.parse.unquote_to_bytes(payload.replace("+", " "))
    if kind in ("ucs-2", "ucs2"):
        return raw.decode("utf-16-be")
    return raw.decode("utf-8", "replace") if kind == "data" else payload


def sent_sms() -> list[tuple[str, str, str]]:
    """(from, to, text) of every MT the fake SMSC got, concatenated parts joined (by their UDH)."""
    out: list[tuple[str, str, str]] = []
    pending: dict[tuple[str, str, int], dict[int, str]] = {}
    try:
        lines = open(os.path.join(_kannel_dir(), "fakesmsc.log"), encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        if "Got message" not in line or ": <" not in line:
            continue
        body = line.split(": <", 1)[1].rstrip(">")
        frm, to, kind, rest = (body.split(" ", 3) + ["", "", "", ""])[:4]
        if kind != "udh":
            out.append((frm, to, _decode(kind, rest)))
            continue
        udh, kind2, payload = (rest.split(" ", 2) + ["", ""])[:3]
        h = urllib.parse.unquote_to_bytes(udh)
        ref, total, seq = h[3], h[4], h[5]
        key = (frm, to, ref)
        pending.setdefault(key, {})[seq] = _decode(kind2, payload)
        if len(pending[key]) == total:
            out.append((frm, to, "".join(pending[key][i] for i in sorted(pending[key]))))
            del pending[key]
    return out


def sms_to(number: str) -> list[tuple[str, str, str]]:
    return [m for m in sent_sms() if m[1] == number]


async def wait_sms(number: str, text: str, timeout: float = 30) -> tuple[str, str, str]:
    return await wait_for(lambda: next((m for m in sms_to(number) if m[2] == text), None), timeout,
                          what=f"the fake SMSC to get {text[:40]!r} for {number} (got {sms_to(number)})")


def inject(frm: str, to: str, text: str, ucs2: bool = False) -> None:
    """An incoming SMS, as a phone sends it, through the fake SMSC."""
    args = [os.path.join(ucb.ROOT, "scripts/peers/sms-inject.sh")] + (["--ucs2"] if ucs2 else []) + [frm, to, text]
    subprocess.run(args, check=True, env=dict(os.environ, PEER_STATE=settings().state), timeout=10)


def kannel(action: str) -> None:
    """Stop or start the peers' Kannel (bearerbox, smsbox, fakesmsc)."""
    script = os.path.join(ucb.ROOT, f"scripts/peers/{action}.sh")
    env = {**os.environ, **settings().env, "PEER_SERVICES": "kannel"}
    r = subprocess.run([script, settings().state], env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, f"{action}.sh kannel: {r.stdout}\n{r.stderr}"


async def grant(p: Peers, who: str) -> None:
    """An admin allows `who` to send SMS (permissions grant, in the control room)."""
    admin = await p.matrix_user("admin")
    room = await control_room(admin)
    await ask(admin, room, f"permissions grant {who} sms", "OK")


async def sms_room(m, number: str) -> str:
    """m opens a chat with the number's ghost; returns the room once the ghost joined."""
    room = await m.create_dm(ghost(number))
    await m.wait_joined(room, ghost(number))
    return room


def notices(m, room: str, sender: str, text: str) -> list[dict]:
    return [e for e in m.messages_in(room, sender) if text in e["content"].get("body", "")
            and e["content"].get("msgtype") == "m.notice"]


# -------------------------------------------------------------------- tests --
def test_matrix_user_sends_sms_gets_delivered_tick_and_the_reply(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sm")
            await grant(p, m.user_id)
            number = rnd_mobile()
            room = await sms_room(m, number)
            text = f"Hallo Grüße 👍 {token(3)}"
            eid = await m.send_text(room, text)
            frm, _, got = await wait_sms(number, text)
            assert frm == SENDER
            # The delivery report is the ghost's read receipt on the message.
            await m.sync_until(lambda: ghost(number) in m.read_receipts(room, eid), 30, "the delivered tick")
            # The phone answers: to the last writer, in the same room, from the ghost.
            reply = f"Antwort {token(3)}"
            inject(number, SENDER, reply)
            ev = await m.wait_message(room, ghost(number), reply)
            assert ev["content"]["msgtype"] == "m.text"
            # A reply in UCS-2, as a handset sends non-GSM text.
            reply2 = f"Спасибо ✓ {token(2)}"
            inject(number, SENDER, reply2, ucs2=True)
            await m.wait_message(room, ghost(number), reply2)
    run(go(), timeout=150)


def test_xmpp_user_sends_sms_with_receipt_and_gets_the_reply(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("sx")
            await grant(p, x.bare)
            number = rnd_mobile()
            text = f"Привет из XMPP ☀ {token(3)}"
            sid = x.send_chat_requesting_receipts(address(number), text)
            frm, _, _ = await wait_sms(number, text)
            assert frm == SENDER
            await wait_for(lambda: [r for r in x.messages_with(address(number), RECEIPTS_NS, "received")
                                    if r.child(RECEIPTS_NS, "received").get("id") == sid], 30,
                           what="the XEP-0184 receipt from the number's address")
            reply = f"ok {token(3)}"
            inject(number, SENDER, reply)
            await x.wait_chat(address(number), reply)
    run(go(), timeout=150)


def test_long_message_goes_as_concatenated_sms_with_the_count_shown(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sl")
            await grant(p, m.user_id)
            number = rnd_mobile()
            room = await sms_room(m, number)
            text = ("Lorem ipsum dolor sit amet " * 12 + token(3)).strip()   # 330 GSM characters: 3 parts
            await m.send_text(room, text)
            await wait_sms(number, text)
            await m.sync_until(lambda: notices(m, room, ghost(number), "3 parts"), 30, "the part count")
            # Longer than sms.max_parts (4): refused with the count, nothing sent.
            too_long = "x" * 700
            await m.send_text(room, too_long)
            await m.sync_until(lambda: notices(m, room, ghost(number), "would take 5 SMS"), 30, "the refusal")
            assert not [s for s in sms_to(number) if s[2] == too_long]
    run(go(), timeout=150)


def test_without_permission_matrix_and_xmpp_users_are_refused(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sn")
            x = await p.xmpp_user("sxn")
            number = rnd_mobile()
            # The ghost refuses the invite: it joins to say why, then leaves (security review L4).
            room = await m.create_dm(ghost(number))
            await m.sync_until(lambda: notices(m, room, ghost(number), "may not send SMS"), 30, "the warning")
            await m.sync_until(lambda: [e for e in m.timeline.get(room, []) if e.get("type") == "m.room.member"
                                        and e.get("state_key") == ghost(number)
                                        and e["content"].get("membership") == "leave"], 30, "the ghost leaving")
            await m.send_text(room, "should not go out")
            sid = x.send_chat(address(number), "nor this")
            err = await x.wait_error(sid)
            assert err.error_condition == "forbidden" and "may not send SMS" in (err.error_text or ""), err.describe()
            # Positive control instead of a pause: once allowed, both write again to the number; those
            # SMS go out, and the refused ones, taken in order before them, would have gone first.
            await grant(p, m.user_id)
            await grant(p, x.bare)
            x.send_chat(address(number), "allowed now (xmpp)")
            room2 = await sms_room(m, number)
            await m.send_text(room2, "allowed now (matrix)")
            await wait_sms(number, "allowed now (xmpp)")
            await wait_sms(number, "allowed now (matrix)")
            assert sorted(s[2] for s in sms_to(number)) == ["allowed now (matrix)", "allowed now (xmpp)"], sms_to(number)
    run(go(), timeout=120)


def test_unknown_sender_goes_to_the_control_room(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            number, text = rnd_mobile(), f"who is this {token(3)}"
            inject(number, SENDER, text)

            def seen():
                return [e for e in admin.messages_in(room, _bot())
                        if text in e["content"].get("body", "") and number in e["content"]["body"]]
            await admin.sync_until(seen, 30, "the unknown sender's SMS in the control room")
    run(go(), timeout=120)


def test_sms_command_opens_a_conversation_on_matrix_and_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sc")
            x = await p.xmpp_user("sxc")
            await grant(p, m.user_id)
            await grant(p, x.bare)
            number = rnd_mobile()
            spaced = f"{number[:3]} {number[3:6]} {number[6:10]} {number[10:]}"
            dm = await bot_dm(m)
            await m.send_text(dm, f"sms {spaced}")
            await m.sync_until(lambda: bot_says(m, dm, ghost(number)), 30, "the bot's answer")
            room, _ = await m.wait_invite(ghost(number))
            await m.join(room)
            await m.sync_until(lambda: notices(m, room, ghost(number), "SMS conversation"), 30, "the greeting")
            text = f"via command {token(3)}"
            await m.send_text(room, text)
            await wait_sms(number, text)
            # XMPP: the command to the component; the number's address writes first.
            x.send_chat(settings().component, f"sms {spaced}")
            await wait_for(lambda: [c for c in x.chats_from(address(number)) if "SMS conversation" in c.body], 30,
                           what="the greeting from the number's address")
            await wait_for(lambda: [c for c in x.chats_from(settings().component) if address(number) in c.body],
                           30, what="the component's answer")
            # An unknown contact name gets a clear answer.
            await m.send_text(dm, "sms Nobody Known")
            await m.sync_until(lambda: bot_says(m, dm, "No contact named"), 30, "the refusal")
    run(go(), timeout=150)


def test_kannel_down_during_a_send_delivers_exactly_once_after_it_returns(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("sk")
            await grant(p, x.bare)
            number = rnd_mobile()
            kannel("down")
            try:
                text = f"while Kannel is down {token(3)}"
                offset = bridge.log_size()
                x.send_chat(address(number), text)
                # Positive control: the bridge tried to send it, failed, and kept it in the outbox.
                await asyncio.to_thread(bridge.wait_log, offset, "delivery failed; will retry", "sms:", timeout=30)
                assert (bridge.health() or {}).get("outbox", 0) >= 1, f"not in the outbox: {bridge.health()}"
                assert sms_to(number) == []
            finally:
                kannel("up")
            await wait_sms(number, text, timeout=60)
            # Exactly once: a second SMS on the same conversation (one lane, in order) arrives after
            # any repeat of the first would have.
            second = f"after Kannel is back {token(3)}"
            x.send_chat(address(number), second)
            await wait_sms(number, second, timeout=60)
            await wait_for(lambda: (bridge.health() or {}).get("outbox", -1) == 0, 30, what="an empty outbox")
            assert [s for s in sms_to(number) if s[2] == text] == [(SENDER, number, text)], sms_to(number)
    run(go(), timeout=180)


def test_missed_call_notice_by_sms_from_the_callers_number(bridge):
    async def go():
        call = "sms-" + token(6)
        caller = "+49 30 " + str(int.from_bytes(os.urandom(3), "big") % 9000000 + 1000000)
        e164 = "+49" + caller[4:].replace(" ", "")
        assert post_events(missed_call(call, "208", caller))[0] == 200
        mobile = "+491765550208"

        def notice():
            return [s for s in sms_to(mobile) if s[0] == e164]
        [(frm, to, text)] = await wait_for(notice, 30, what=f"the SMS notice from {e164} (got {sms_to(mobile)})")
        assert caller in text or e164 in text, text
    run(go(), timeout=90)


# ------------------------------------------------ the generic HTTP provider --
class FakeGateway:
    """A small HTTP SMS gateway in the style of common REST gateways: POST /api/sms with a bearer
    token and a JSON body, 201 {"id": ...} when taken, 422 for a number it cannot reach. It stands in
    for a commercial gateway (the only fake in these tests); Kannel is the real peer."""

    REFUSED = "+4915100000000"

    def __init__(self):
        import http.server
        import json
        import threading
        self.requests: list[dict] = []
        gw = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Authorization") != "Bearer gw-token":
                    return self._answer(401, {"error": "bad token"})
                msg = json.loads(body)
                gw.requests.append(msg)
                if msg.get("recipient") == FakeGateway.REFUSED:
                    return self._answer(422, {"error": "number not reachable"})
                return self._answer(201, {"id": f"gw-{len(gw.requests)}"})

            def _answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def http_bridge(bridge: ucb.Bridge, gw: FakeGateway) -> ucb.Bridge:
    """Stop the session bridge; start one whose `sms:` speaks to the fake gateway (same database)."""
    def change(cfg: dict) -> None:
        cfg["sms"]["provider"] = "http"
        cfg["sms"].pop("kannel")
        cfg["sms"]["http"] = {
            "url": f"http://127.0.0.1:{gw.port}/api/sms", "method": "post", "encoding": "json",
            "fields": {"from": "sender", "to": "recipient", "text": "message", "reference": "client_ref",
                       "dlr_url": "callback"},
            "auth": {"type": "bearer", "token": "gw-token"},
            "response_id_field": "id",
            "inbound": {"secret_header": "X-Sms-Secret"},
        }
    return ucb.start_variant(bridge, "sms-http", change)


def post_json(url: str, obj: dict, secret: str | None) -> int:
    import json
    import urllib.error
    import urllib.request
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Sms-Secret"] = secret
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_generic_http_gateway_send_refusal_delivery_report_and_mo(bridge):
    gw = FakeGateway()
    b = http_bridge(bridge, gw)
    secret = settings().config["sms"]["inbound_secret"]
    base = settings().bridge_url

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sh")
            await grant(p, m.user_id)
            number = rnd_mobile()
            room = await sms_room(m, number)
            text = f"über HTTP {token(3)}"
            eid = await m.send_text(room, text)
            req = await wait_for(lambda: next((r for r in gw.requests if r.get("message") == text), None), 30,
                                 what="the gateway request")
            assert req["recipient"] == number and req["sender"] == SENDER and req["client_ref"], req
            assert req["callback"].startswith(base + "/sms/http/dlr"), req
            gw_id = f"gw-{gw.requests.index(req) + 1}"
            # The gateway's delivery report, by its own id; refused without the secret.
            assert post_json(req["callback"], {"reference": gw_id, "status": "delivered"}, "wrong") == 401
            await wait_for(lambda: post_json(req["callback"], {"reference": gw_id, "status": "delivered"}, secret) == 200,
                           20, step=0.5, what="the delivery report to be taken")
            await m.sync_until(lambda: ghost(number) in m.read_receipts(room, eid), 30, "the delivered tick")
            # An incoming SMS through the gateway's MO callback.
            mo = {"from": number, "to": SENDER, "text": f"Antwort über HTTP {token(3)}", "id": "mo-" + token(4)}
            assert post_json(base + "/sms/http/mo", mo, None) == 401
            assert post_json(base + "/sms/http/mo", mo, secret) == 200
            assert post_json(base + "/sms/http/mo", mo, secret) == 200   # a repeat is taken, not shown twice
            await m.wait_message(room, ghost(number), mo["text"])
            # Positive control: a later MO from the same number arrives after any second copy would.
            mo2 = {"from": number, "to": SENDER, "text": f"noch eine {token(3)}", "id": "mo-" + token(4)}
            assert post_json(base + "/sms/http/mo", mo2, secret) == 200
            await m.wait_message(room, ghost(number), mo2["text"])
            assert len([e for e in m.messages_in(room, ghost(number)) if e["content"]["body"] == mo["text"]]) == 1
            # A number the gateway refuses: a visible failure notice, and no retries.
            room2 = await sms_room(m, FakeGateway.REFUSED)
            await m.send_text(room2, "to nowhere")
            await m.sync_until(lambda: notices(m, room2, ghost(FakeGateway.REFUSED), "was not delivered"), 30,
                               "the failure notice")
            # No retries. Positive control: a second message on the same conversation gets its own
            # notice; a retry of the first would have been sent before it.
            await m.send_text(room2, "to nowhere again")
            await m.sync_until(lambda: len(notices(m, room2, ghost(FakeGateway.REFUSED), "was not delivered")) >= 2,
                               30, "the second failure notice")
            assert len([r for r in gw.requests if r.get("recipient") == FakeGateway.REFUSED]) == 2, \
                [r for r in gw.requests if r.get("recipient") == FakeGateway.REFUSED]
    try:
        run(go(), timeout=150)
    finally:
        b.stop()
        gw.close()


# ------------------------------------------------------- limits and DID owners --
# These run on a bridge of their own (ucb.start_variant): small limits, and DIDs owned by test
# users, without touching the session bridge's config that the other tests rely on.
PER_MINUTE, DAILY_CAP = 3, 5


def small_limits(cfg: dict) -> None:
    cfg["sms"]["rate_limits"] = {"per_user_per_minute": PER_MINUTE, "global_per_minute": 600,
                                 "daily_cap_per_user": DAILY_CAP}


def gsm_text(parts: int) -> str:
    """A GSM-7 text of exactly `parts` concatenated parts (153 characters a part), ending unique."""
    tail = token(3)
    length = 153 * (parts - 1) + 10 if parts > 1 else 20
    return ("x" * (length - len(tail) - 1)) + " " + tail


async def wait_notice(m, room: str, number: str, text: str, what: str) -> dict:
    [ev] = await m.sync_until(lambda: notices(m, room, ghost(number), text), 30, what)
    return ev


def test_daily_cap_counts_parts_refuses_the_excess_and_others_still_send(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sd")
            x = await p.xmpp_user("sxd")
            await grant(p, m.user_id)
            await grant(p, x.bare)
            # Matrix: 3 + 2 parts use the cap of 5; the next SMS is refused with the reason.
            num_m = rnd_mobile()
            room = await sms_room(m, num_m)
            three, two, over = gsm_text(3), gsm_text(2), f"one too many {token(3)}"
            await m.send_text(room, three)
            await wait_sms(num_m, three)
            await m.send_text(room, two)
            await wait_sms(num_m, two)
            await m.send_text(room, over)
            ev = await wait_notice(m, room, num_m, "daily limit", "the daily-cap refusal")
            body = ev["content"]["body"]
            assert f"daily limit of {DAILY_CAP} SMS" in body and f"({DAILY_CAP} sent today)" in body, body
            # XMPP, another user: not affected by the Matrix user's cap. 4 parts go; 2 more would
            # exceed the cap (refused, and not counted); 1 more reaches it exactly and goes.
            num_x = rnd_mobile()
            four, two_x, one = gsm_text(4), gsm_text(2), f"exactly at the cap {token(3)}"
            x.send_chat(address(num_x), four)
            await wait_sms(num_x, four)
            sid = x.send_chat(address(num_x), two_x)
            err = await x.wait_error(sid)
            assert err.error_condition == "forbidden", err.describe()
            assert f"daily limit of {DAILY_CAP} SMS" in (err.error_text or "") and "(4 sent today)" in err.error_text, \
                err.describe()
            x.send_chat(address(num_x), one)
            await wait_sms(num_x, one)
            # That SMS was sent after both refusals arrived: nothing refused reached the SMSC.
            assert [t for _, _, t in sms_to(num_m)] == [three, two], sms_to(num_m)
            assert [t for _, _, t in sms_to(num_x)] == [four, one], sms_to(num_x)
    with ucb.config_variant(bridge, "sms-limits", small_limits):
        run(go(), timeout=180)


def test_per_user_rate_limit_refuses_the_excess_without_sending_it(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sr")
            x = await p.xmpp_user("sxr")
            other = await p.xmpp_user("sxo")
            for who in (m.user_id, x.bare, other.bare):
                await grant(p, who)
            # Matrix: PER_MINUTE messages in a row go, the next one within the minute is refused.
            num_m = rnd_mobile()
            room = await sms_room(m, num_m)
            sent_m = [f"quick {i} {token(3)}" for i in range(PER_MINUTE)]
            for text in sent_m:
                await m.send_text(room, text)
                await wait_sms(num_m, text)
            await m.send_text(room, f"too quick {token(3)}")
            ev = await wait_notice(m, room, num_m, "in the last minute", "the rate-limit refusal")
            assert f"you sent {PER_MINUTE} SMS in the last minute" in ev["content"]["body"], ev
            # XMPP: the same, the excess gets a <forbidden/> error reply with the reason.
            num_x = rnd_mobile()
            sent_x = [f"schnell {i} {token(3)}" for i in range(PER_MINUTE)]
            for text in sent_x:
                x.send_chat(address(num_x), text)
            for text in sent_x:
                await wait_sms(num_x, text)
            sid = x.send_chat(address(num_x), f"zu schnell {token(3)}")
            err = await x.wait_error(sid)
            assert err.error_condition == "forbidden", err.describe()
            assert f"you sent {PER_MINUTE} SMS in the last minute" in (err.error_text or ""), err.describe()
            # Someone else is not limited by them; their SMS, sent after both refusals, marks the
            # point by which a refused SMS would have reached the SMSC.
            num_o = rnd_mobile()
            marker = f"not limited {token(3)}"
            other.send_chat(address(num_o), marker)
            await wait_sms(num_o, marker)
            assert sorted(t for _, _, t in sms_to(num_m)) == sorted(sent_m), sms_to(num_m)
            assert sorted(t for _, _, t in sms_to(num_x)) == sorted(sent_x), sms_to(num_x)
    with ucb.config_variant(bridge, "sms-limits", small_limits):
        run(go(), timeout=180)


def test_incoming_sms_to_an_owned_number_reaches_its_owner(bridge):
    did_m, did_x = "+4930555111", "+4930555112"

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("sdo")
            x = await p.xmpp_user("sxdo")

            def owners(cfg: dict) -> None:
                cfg["sms"]["numbers"] = [{"number": did_m, "owner": m.user_id}, {"number": did_x, "owner": x.bare}]
            with ucb.config_variant(bridge, "sms-owners", owners):
                await grant(p, m.user_id)
                # A number nobody wrote to writes to the Matrix user's DID: the number's ghost opens
                # a chat with the owner and the SMS is in it.
                phone = rnd_mobile()
                text = f"an den Inhaber {token(3)}"
                inject(phone, did_m, text)
                room, _ = await m.wait_invite(ghost(phone))
                await m.join(room)
                ev = await m.wait_message(room, ghost(phone), text)
                assert ev["content"]["msgtype"] == "m.text", ev
                # That chat is the owner's SMS conversation with the number: the answer goes out
                # from the owner's DID.
                answer = f"Antwort vom Inhaber {token(3)}"
                await m.send_text(room, answer)
                frm, _, _ = await wait_sms(phone, answer)
                assert frm == did_m, (frm, did_m)
                # An XMPP owner: the SMS comes from the number's address.
                phone_x = rnd_mobile()
                text_x = f"an den XMPP-Inhaber {token(3)}"
                inject(phone_x, did_x, text_x)
                await x.wait_chat(address(phone_x), text_x)
    run(go(), timeout=180)


def test_sms_offers_every_mobile_number_of_an_imported_contact_and_never_a_landline(bridge):
    """Issue 20 item 5: `sms NAME` finds a contact an admin imported (`contacts import`) and offers
    every number in its mobile fields, numbered; the choice is a bare number (Matrix), `sms NAME N`
    (XMPP chat) or the same in the XEP-0050 form. A contact with only a landline is refused."""
    from test_commands import adhoc, note

    async def go():
        async with Peers() as p:
            m = await p.matrix_user("smn")
            x = await p.xmpp_user("sxn")
            admin_x = await p.xmpp_user("admin")
            await grant(p, m.user_id)
            await grant(p, x.bare)
            comp = settings().component
            one, two = rnd_mobile(), rnd_mobile()
            office = "+4930" + str(int.from_bytes(os.urandom(3), "big") % 9000000 + 1000000)
            name, landline_only = "Multi " + token(4), "Desk " + token(4)
            card = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", f"TEL;TYPE=WORK:{office}",
                    f"TEL;TYPE=CELL:{one}", f"TEL;TYPE=CELL:{two}", "END:VCARD",
                    "BEGIN:VCARD", "VERSION:3.0", f"FN:{landline_only}", f"TEL;TYPE=WORK:{office}", "END:VCARD"]
            kind, res = await adhoc(admin_x, "contacts-import", {"name": f"multi-{token(3)}.vcf", "content": card})
            assert kind == "result" and "imported 2 contacts" in note(res), (kind, res)

            # Matrix: the numbered list, answered with a bare number.
            dm = await bot_dm(m)
            await m.send_text(dm, f"sms {name}")
            [choice] = await m.sync_until(lambda: bot_says(m, dm, "2 mobile numbers"), 30, "the choice")
            listing = choice["content"]["body"]
            assert f"1. {one}" in listing and f"2. {two}" in listing, listing
            assert office not in listing, f"a landline is offered: {listing}"
            await m.send_text(dm, "2")
            room, _ = await m.wait_invite(ghost(two))
            await m.join(room)
            await m.sync_until(lambda: notices(m, room, ghost(two), "SMS conversation"), 30, "the greeting")
            text = f"to the second mobile {token(3)}"
            await m.send_text(room, text)
            await wait_sms(two, text)

            # XMPP chat: `sms NAME 1`.
            x.send_chat(comp, f"sms {name} 1")
            await wait_for(lambda: [c for c in x.chats_from(address(one)) if "SMS conversation" in c.body], 30,
                           what="the greeting from the first mobile's address")
            x.send_chat(comp, f"sms {name} 3")
            await wait_for(lambda: [c for c in x.chats_from(comp) if "there is no number 3" in c.body], 30,
                           what="a choice that is not in the list")

            # XEP-0050: the form answers with the list, then takes the choice.
            kind, res = await adhoc(x, "sms", {"target": name})
            assert kind == "result" and f"2. {two}" in note(res) and office not in note(res), note(res)
            kind, res = await adhoc(x, "sms", {"target": f"{name} 2"})
            assert kind == "result" and address(two) in note(res), note(res)

            # Never a landline: a contact without a mobile number is refused with the reason.
            await m.send_text(dm, f"sms {landline_only}")
            await m.sync_until(lambda: bot_says(m, dm, "has no mobile number"), 30, "the refusal")
            assert not sms_to(office) and not m.invites_from(ghost(office)), "something went to the landline"
    run(go(), timeout=180)
