"""Missed-call notifications end to end: signed webhook events in, e-mail out through a real SMTP
server (aiosmtpd, started here), chat notice in the bot's DM on Matrix, the journal endpoint.

The bridge config (scripts/lib.sh ucb_write_config) has a `missed_calls:` section: users anna (201,
German, Matrix account @calls-anna), ben (202), carla (203), dora (204), emil (205, German); the
contact Erika Mustermann (+49 30 1234567, erika@caller.test); caller-as-sender and vCard on; link
prefix tel:. A test that needs other options runs a second bridge with a modified copy of the config
(same database, same port) and leaves the session bridge to be restarted by the next test.
"""
from __future__ import annotations

import asyncio
import csv
import dataclasses
import email
import email.policy
import hashlib
import hmac
import io
import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml
from aiosmtpd.controller import Controller

import ucb
from ucb import run, settings, token, wait_for

ERIKA = "+49 30 1234567"


# ------------------------------------------------------------------ helpers --
def _calls_cfg() -> dict:
    return settings().config["missed_calls"]


class Sink:
    """An SMTP server collecting messages; can be stopped and started again on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        msg["X-Envelope-From"] = envelope.mail_from
        with self.lock:
            self.messages.append(msg)
        return "250 OK"

    def start(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
                self.controller.start()
                return
            except Exception:  # noqa: BLE001 (port still in TIME_WAIT or the like)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def by_id(self, message_id: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["Message-ID"] == message_id]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in m["X-Envelope-To"]]


@pytest.fixture(scope="module")
def sink():
    sk = Sink(int(_calls_cfg()["mail"]["smtp"]["port"]))
    sk.start()
    yield sk
    sk.stop()


def message_id(call_id: str, user: str) -> str:
    digest = hashlib.sha256(call_id.encode() + b"\0" + user.encode()).hexdigest()[:32]
    return f"<missed-call.{digest}@{_calls_cfg()['mail']['message_id_domain']}>"


def post_events(events, secret: str | None = None, ts: int | None = None) -> tuple[int, str]:
    body = json.dumps(events).encode()
    ts = int(time.time()) if ts is None else ts
    key = (secret or _calls_cfg()["webhook"]["secret"]).encode()
    sig = "sha256=" + hmac.new(key, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(settings().bridge_url + "/calls/events", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Ucbridge-Timestamp": str(ts),
                                          "X-Ucbridge-Signature": sig})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def journal(params: str, tok: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(settings().bridge_url + "/calls/journal?" + params,
                                 headers={"Authorization": f"Bearer {tok or _calls_cfg()['journal_token']}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def missed_call(call_id: str, ext: str, number: str | None, name: str | None = None, ring_s: int = 10,
                answered_by: str | None = None, pickup: bool = False, direction: str = "inbound",
                t0: int | None = None, called: str | None = None) -> list[dict]:
    """The events of one call ringing at ext; t0 (Unix ms) is its start, by default just long enough
    ago for it to have ended now; called is the number dialled (default: ext's direct line)."""
    t0 = int(time.time() * 1000) - (ring_s + 2) * 1000 if t0 is None else t0
    caller = {"number": number, "name": name} if number else {"hidden": True}
    ev = [
        {"type": "call_created", "call_id": call_id, "caller": caller, "called": called or "+49305550" + ext,
         "direction": direction, "at": t0},
        {"type": "leg_ringing", "call_id": call_id, "leg_id": call_id + "-l1", "extension": ext, "at": t0 + 100},
    ]
    end = t0 + 100 + ring_s * 1000
    if answered_by:
        ev.append({"type": "leg_ringing", "call_id": call_id, "leg_id": call_id + "-l2", "extension": answered_by,
                   "at": t0 + 200})
        ev.append({"type": "call_answered", "call_id": call_id, "by": answered_by, "pickup": pickup, "at": end})
        ev.append({"type": "leg_ended", "call_id": call_id, "leg_id": call_id + "-l1",
                   "outcome": {"kind": "cancelled"}, "at": end})
        ev.append({"type": "call_ended", "call_id": call_id, "cause": "normal_clearing", "at": end + 5000})
    else:
        ev.append({"type": "leg_ended", "call_id": call_id, "leg_id": call_id + "-l1",
                   "outcome": {"kind": "no_answer"}, "at": end})
        ev.append({"type": "call_ended", "call_id": call_id, "cause": "no_answer", "at": end + 100})
    return ev


def outgoing_call(call_id: str, from_ext: str, to_number: str) -> list[dict]:
    t0 = int(time.time() * 1000)
    return [
        {"type": "call_created", "call_id": call_id, "caller": {"number": from_ext}, "called": to_number,
         "direction": "outbound", "at": t0},
        {"type": "call_answered", "call_id": call_id, "by": from_ext, "at": t0 + 3000},
        {"type": "call_ended", "call_id": call_id, "cause": "normal_clearing", "at": t0 + 30000},
    ]


def rnd_number() -> str:
    return "+49 30 " + str(int.from_bytes(os.urandom(3), "big") % 9000000 + 1000000)


def wait_mails(sink: Sink, mid: str, n: int = 1, timeout: float = 30) -> list:
    run(wait_for(lambda: len(sink.by_id(mid)) >= n, timeout, what=f"{n} mail(s) {mid}"))
    return sink.by_id(mid)


def parts(msg) -> dict[str, object]:
    """text/plain, text/html and the vCard of a notice."""
    out: dict[str, object] = {}
    for part in msg.walk():
        ct = part.get_content_type()
        if ct in ("text/plain", "text/html", "text/vcard") and ct not in out:
            out[ct] = part.get_content()
            if ct == "text/vcard":
                out["vcard_filename"] = part.get_filename()
    return out


def variant_bridge(bridge: ucb.Bridge, change) -> ucb.Bridge:
    """Stop the session bridge and start one on a modified copy of the config (same database)."""
    s = settings()
    cfg = yaml.safe_load(open(s.config_path))
    change(cfg["missed_calls"])
    path = os.path.join(os.path.dirname(s.config_path), "ucbridge-calls-variant.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    bridge.stop()
    b = ucb.Bridge(dataclasses.replace(s, config_path=path), bridge.database_url)
    b.log_path = bridge.log_path
    b.start()
    return b


# -------------------------------------------------------------------- tests --
def test_missed_call_mail_german_from_caller_with_vcard_and_link(bridge, sink):
    call = "c-" + token(6)
    status, body = post_events(missed_call(call, "201", ERIKA, name="Erika M."))
    assert status == 200, body
    [m] = wait_mails(sink, message_id(call, "anna"))
    assert m["X-Envelope-To"] == "anna@calls.test" and m["To"] == "anna@calls.test"
    # Caller as sender: From and Reply-To are the caller's contact, Sender and envelope are ours.
    assert "erika@caller.test" in m["From"] and "Erika Mustermann" in m["From"]
    assert "erika@caller.test" in m["Reply-To"]
    assert "calls@bridge.test" in m["Sender"] and m["X-Envelope-From"] == "calls@bridge.test"
    assert m["Subject"] == "Verpasster Anruf von Erika Mustermann"   # anna reads German
    p = parts(m)
    assert 'href="tel:+49301234567"' in p["text/html"]
    assert "Beispiel GmbH" in p["text/html"]
    assert "FN:Erika Mustermann" in p["text/vcard"] and p["vcard_filename"].endswith(".vcf")


def test_english_user_unknown_caller_name_is_escaped(bridge, sink):
    call = "c-" + token(6)
    number = rnd_number()
    # A name with CR/LF (header injection) is refused at the webhook already.
    status, body = post_events(missed_call(call, "202", number, name="Eve\r\nBcc: victim@evil.test"))
    assert status == 400 and "control characters" in body, body
    name = "<script>alert(1)</script> & Co"
    assert post_events(missed_call(call, "202", number, name=name))[0] == 200
    [m] = wait_mails(sink, message_id(call, "ben"))
    assert m["Subject"] == f"Missed call from {name}"   # a header is not HTML: kept as text
    assert m["Bcc"] is None
    assert "calls@bridge.test" in m["From"]   # no contact: our address
    p = parts(m)
    assert "<script>" not in p["text/html"] and "&lt;script&gt;" in p["text/html"]
    digits = "+49" + number.replace(" ", "")[3:]
    assert f'href="tel:{digits}"' in p["text/html"]
    assert "text/vcard" not in p   # no contact, nothing to attach


def test_wrong_signature_is_refused_and_sends_nothing(bridge, sink):
    call = "c-" + token(6)
    status, _ = post_events(missed_call(call, "202", rnd_number()), secret="not-the-secret")
    assert status == 401
    status, _ = post_events(missed_call(call, "202", rnd_number()), ts=int(time.time()) - 3600)
    assert status == 401
    status, body = post_events({"type": "nonsense"})
    assert status == 400, body
    # Positive control: a correctly signed call after them is mailed; the refused ones, had they
    # been taken, were queued before it.
    probe = "c-" + token(6)
    assert post_events(missed_call(probe, "202", rnd_number()))[0] == 200
    wait_mails(sink, message_id(probe, "ben"))
    assert sink.by_id(message_id(call, "ben")) == []


def test_answered_by_someone_else_is_not_notified_without_the_option(bridge, sink):
    call = "c-" + token(6)
    assert post_events(missed_call(call, "202", rnd_number(), answered_by="203", pickup=True))[0] == 200
    # A later missed call to the same person shows the processor got past this one.
    probe = "c-" + token(6)
    assert post_events(missed_call(probe, "202", rnd_number()))[0] == 200
    wait_mails(sink, message_id(probe, "ben"))
    assert sink.by_id(message_id(call, "ben")) == [] and sink.by_id(message_id(call, "carla")) == []


def test_answered_by_someone_else_is_notified_with_the_option(bridge, sink):
    b = variant_bridge(bridge, lambda mc: (mc["rules"].__setitem__("notify_even_if_answered_by_other", True),
                                           mc["mail"].__setitem__("link_prefix", "callto:")))
    try:
        call = "c-" + token(6)
        number = rnd_number()
        assert post_events(missed_call(call, "202", number, answered_by="203", pickup=True))[0] == 200
        [m] = wait_mails(sink, message_id(call, "ben"))
        p = parts(m)
        assert "203" in p["text/plain"] and "pickup" in p["text/plain"]
        assert 'href="callto:+49' in p["text/html"]
        # The one who answered is not told. Positive control: a later missed call to carla is mailed.
        probe = "c-" + token(6)
        assert post_events(missed_call(probe, "203", rnd_number()))[0] == 200
        wait_mails(sink, message_id(probe, "carla"))
        assert sink.by_id(message_id(call, "carla")) == []
    finally:
        b.stop()


def test_smtp_down_during_a_burst_each_mail_exactly_once(bridge, sink):
    sink.stop()
    calls = ["burst-" + token(6) for _ in range(5)]
    offset = bridge.log_size()
    try:
        for c in calls:
            assert post_events(missed_call(c, "204", rnd_number()))[0] == 200
        # Positive control: the bridge did try while SMTP was down, failed, and kept the mails.
        failed = bridge.wait_log(offset, "delivery failed; will retry", "mail>dora@", timeout=30)
        deadline = time.monotonic() + 20
        while (bridge.health() or {}).get("outbox", 0) < len(calls):
            assert time.monotonic() < deadline, f"the 5 mails are not in the outbox: /health {bridge.health()}"
            time.sleep(0.1)
        assert all(sink.by_id(message_id(c, "dora")) == [] for c in calls), "a mail arrived while SMTP was down"
    finally:
        sink.start()
    for c in calls:
        wait_mails(sink, message_id(c, "dora"), timeout=60)
    # Exactly once: the outbox is empty (every mail was settled), and each arrived once.
    deadline = time.monotonic() + 30
    while (bridge.health() or {}).get("outbox", -1) != 0:
        assert time.monotonic() < deadline, f"the outbox did not drain: /health {bridge.health()}"
        time.sleep(0.1)
    for c in calls:
        assert len(sink.by_id(message_id(c, "dora"))) == 1, (c, failed[:1])


@pytest.mark.kills_bridge
def test_kill9_right_after_the_webhook_was_acknowledged(bridge, sink):
    sink.stop()   # nothing can be sent before the crash
    call = "crash-" + token(6)
    try:
        assert post_events(missed_call(call, "205", rnd_number()))[0] == 200
        bridge.kill9()
        bridge.start()
    finally:
        sink.start()
    [m] = wait_mails(sink, message_id(call, "emil"), timeout=60)
    assert m["Subject"].startswith("Verpasster Anruf")
    # A replay of the whole call after the restart is recognised. Positive control: a later call
    # to the same person is mailed (the call events are processed in order).
    assert post_events(missed_call(call, "205", rnd_number()))[0] == 200
    probe = "crash-" + token(6)
    assert post_events(missed_call(probe, "205", rnd_number()))[0] == 200
    wait_mails(sink, message_id(probe, "emil"))
    assert len(sink.by_id(message_id(call, "emil"))) == 1


async def calls_anna() -> tuple[ucb.MatrixUser, str, str]:
    """anna's Matrix account (@calls-anna, in missed_calls.users) logged in, with a new direct chat
    with the bridge bot: (the user, the room, the bot's ID). The caller closes the user."""
    s = settings()
    from nio import AsyncClient
    localpart, password = "calls-anna", "calls-anna-pw"
    c = AsyncClient(s.hs_url, "")
    r = await c.register(localpart, password)
    if not getattr(r, "access_token", None):   # registered by an earlier session
        await c.close()
        c = AsyncClient(s.hs_url, f"@{localpart}:{s.matrix_domain}")
        r = await c.login(password)
        assert getattr(r, "access_token", None), f"login {localpart}: {r}"
    m = ucb.MatrixUser(c, localpart, password)
    try:
        await m.sync_once(0)
        bot = f"@{s.config['appservice']['bot_localpart']}:{s.matrix_domain}"
        room = await m.create_dm(bot)
        await m.wait_joined(room, bot)
    except BaseException:
        await m.close()
        raise
    return m, room, bot


def test_matrix_user_gets_the_notice_in_the_bot_chat(bridge, sink):
    async def go():
        m, room, bot = await calls_anna()
        try:
            call = "chat-" + token(6)
            assert post_events(missed_call(call, "201", ERIKA))[0] == 200

            def notice():
                return [e for e in m.messages_in(room, bot)
                        if "Erika Mustermann" in e["content"].get("body", "")
                        and "+49 30 1234567" in e["content"].get("body", "")]
            [ev] = await m.sync_until(notice, 30, "the missed-call notice in the bot chat")
            assert ev["content"]["msgtype"] == "m.notice"
        finally:
            await m.close()
    run(go())


def test_journal_json_csv_called_back_and_token(bridge, sink):
    number = rnd_number()
    missed, out = "jm-" + token(6), "jo-" + token(6)
    assert post_events(missed_call(missed, "202", number))[0] == 200
    wait_mails(sink, message_id(missed, "ben"))
    # ben calls the number back: the missed call is processed.
    assert post_events(outgoing_call(out, "202", number.replace(" ", "")))[0] == 200

    def rows():
        st, body = journal("user=ben&format=json")
        assert st == 200, body
        return {r["call_id"]: r for r in json.loads(body)["calls"]}
    run(wait_for(lambda: out in rows(), 20, what="the outgoing call in the journal"))
    r = rows()
    assert r[missed]["type"] == "missed" and r[missed]["notified"] and r[missed]["channels"] == ["email"]
    assert r[missed]["processed"] and r[missed]["processed_by"] == out
    assert r[out]["type"] == "outgoing"

    st, body = journal("user=ben&type=missed&format=json")
    assert st == 200 and all(c["type"] == "missed" for c in json.loads(body)["calls"])
    future = int(time.time() * 1000) + 3_600_000
    st, body = journal(f"user=ben&from={future}")
    assert st == 200 and json.loads(body)["calls"] == []

    st, body = journal("user=ben&format=csv")
    assert st == 200
    table = list(csv.DictReader(io.StringIO(body)))
    by_call = {t["call_id"]: t for t in table}
    assert by_call[missed]["type"] == "missed" and by_call[missed]["processed"] == "true"
    assert by_call[out]["type"] == "outgoing"

    assert journal("user=ben", tok="wrong-token-0123456789")[0] == 401
    req = urllib.request.Request(settings().bridge_url + "/calls/journal")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 401
