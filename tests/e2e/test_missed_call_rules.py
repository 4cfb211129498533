"""Missed-call rules end to end (issue 20): the policies `last` and `none`, each exception, a custom
link prefix of 9 characters, the called line's name, and the caller as envelope sender. Signed
webhook events in; the real SMTP sink (aiosmtpd), Synapse and the journal endpoint show the outcome.

Each rule is shown twice where it stops a notice: the journal names the reason (`skip_reason`) and
no mail arrives, against a positive control in the same test that is mailed. Options other than the
session config's run on a variant bridge (same database, same port; see ucb.config_variant). Users,
contacts and lines: scripts/lib.sh (anna 201 German with Matrix @calls-anna, ben 202, carla 203;
Erika Mustermann +49 30 1234567; the line +49 30 5550 999 "Hotline Beispiel"; Europe/Berlin).
"""
from __future__ import annotations

import asyncio
import datetime
import json
import time
import zoneinfo

import ucb
from test_missed_calls import (ERIKA, calls_anna, journal, message_id, missed_call, parts, post_events,  # noqa: F401
                               rnd_number, sink, wait_mails)
from test_security_calls import _ucbridge, _variant
from ucb import run, token, wait_for


def now_ms() -> int:
    return int(time.time() * 1000)


def journal_row(user: str, call: str, timeout: float = 30) -> dict:
    """The journal row of `user` for `call`, once the call has been handled."""
    def row():
        st, body = journal(f"user={user}&format=json")
        assert st == 200, body
        return next((r for r in json.loads(body)["calls"] if r["call_id"] == call), None)
    return run(wait_for(row, timeout, what=f"{user}'s journal row of {call}"))


def outbox_empty(b: ucb.Bridge, timeout: float = 30) -> None:
    """Every queued notice was delivered: the notices of a call are queued in the transaction that
    writes its journal rows, so after a row is seen and the outbox is empty, a mail not in the sink
    was never queued."""
    run(wait_for(lambda: (b.health() or {}).get("outbox") == 0, timeout, what=f"an empty outbox: {b.health()}"))


def assert_skipped(b: ucb.Bridge, sink, user: str, call: str, reason: str) -> None:
    row = journal_row(user, call)
    assert row["skip_reason"] == reason and not row["notified"], row
    outbox_empty(b)
    assert sink.by_id(message_id(call, user)) == [], f"{user} was mailed about {call}"


def exceptions(**on):
    def change(cfg: dict) -> None:
        cfg["missed_calls"]["rules"]["exceptions"] = dict(on)
    return change


# ------------------------------------------------------------------ policies --
def test_policy_last_tells_only_the_last_phone_and_none_tells_nobody(bridge, sink):
    def ring_group(call: str, number: str) -> list[dict]:
        t0 = now_ms() - 20_000
        ev = [{"type": "call_created", "call_id": call, "caller": {"number": number}, "called": "+49305550200",
               "direction": "inbound", "at": t0}]
        for i, ext in enumerate(["201", "202", "203"]):   # cyclic: 203's phone starts ringing last
            ev.append({"type": "leg_ringing", "call_id": call, "leg_id": f"{call}-{ext}", "extension": ext,
                       "at": t0 + i * 5000})
            ev.append({"type": "leg_ended", "call_id": call, "leg_id": f"{call}-{ext}",
                       "outcome": {"kind": "no_answer"}, "at": t0 + i * 5000 + 4000})
        ev.append({"type": "call_ended", "call_id": call, "cause": "no_answer", "at": t0 + 15_000})
        return ev

    def policy(name: str):
        return lambda cfg: cfg["missed_calls"]["rules"].__setitem__("policy", name)

    last = "pl-" + token(6)
    with ucb.config_variant(bridge, "calls-last", policy("last")) as b:
        assert post_events(ring_group(last, rnd_number()))[0] == 200
        wait_mails(sink, message_id(last, "carla"))
        for user in ("anna", "ben"):
            assert_skipped(b, sink, user, last, "not_chosen")
    none = "pn-" + token(6)
    with ucb.config_variant(bridge, "calls-none", policy("none")) as b:
        assert post_events(ring_group(none, rnd_number()))[0] == 200
        for user in ("anna", "ben", "carla"):
            assert_skipped(b, sink, user, none, "policy_none")


# ---------------------------------------------------------------- exceptions --
def test_internal_calls_are_not_reported(bridge, sink):
    # internal_calls is on in the session config (the default).
    internal = "in-" + token(6)
    assert post_events(missed_call(internal, "202", "203", direction="internal"))[0] == 200
    control = "in-" + token(6)
    assert post_events(missed_call(control, "202", rnd_number()))[0] == 200
    wait_mails(sink, message_id(control, "ben"))
    assert_skipped(bridge, sink, "ben", internal, "internal")


def test_hidden_numbers_are_not_reported_when_the_exception_is_on(bridge, sink):
    with ucb.config_variant(bridge, "calls-hidden", exceptions(hidden_numbers=True)) as b:
        hidden = "hn-" + token(6)
        assert post_events(missed_call(hidden, "202", None))[0] == 200
        control = "hn-" + token(6)
        assert post_events(missed_call(control, "202", rnd_number()))[0] == 200
        wait_mails(sink, message_id(control, "ben"))
        assert_skipped(b, sink, "ben", hidden, "hidden_number")


def test_callers_without_a_contact_are_not_reported_when_the_exception_is_on(bridge, sink):
    with ucb.config_variant(bridge, "calls-no-contact", exceptions(no_contact=True)) as b:
        stranger = "nc-" + token(6)
        assert post_events(missed_call(stranger, "202", rnd_number()))[0] == 200
        known = "nc-" + token(6)
        assert post_events(missed_call(known, "202", ERIKA))[0] == 200
        wait_mails(sink, message_id(known, "ben"))
        assert_skipped(b, sink, "ben", stranger, "no_contact")


def test_repeated_calls_on_the_same_day_across_local_midnight(bridge, sink):
    """Two calls 20 minutes apart either side of midnight in Berlin are on two days there, though on
    one day in UTC (Berlin is ahead of UTC all year): both are mailed; a third call after the second,
    the same Berlin day, is not."""
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    local = datetime.datetime.now(berlin) - datetime.timedelta(hours=1)
    midnight = int(datetime.datetime.combine(local.date(), datetime.time(0), tzinfo=berlin).timestamp() * 1000)
    assert datetime.datetime.fromtimestamp(midnight / 1000, datetime.UTC).hour in (22, 23)   # the day before in UTC

    def change(cfg: dict) -> None:
        exceptions(repeated_same_day=True)(cfg)
        cfg["missed_calls"]["mail"]["time_zone"] = "Europe/Berlin"

    number = rnd_number()
    before, after, again = ("sd-" + token(6) for _ in range(3))
    with ucb.config_variant(bridge, "calls-same-day", change) as b:
        assert post_events(missed_call(before, "202", number, t0=midnight - 10 * 60_000))[0] == 200
        wait_mails(sink, message_id(before, "ben"))
        assert post_events(missed_call(after, "202", number, t0=midnight + 10 * 60_000))[0] == 200
        [m] = wait_mails(sink, message_id(after, "ben"))
        assert "00:10 UTC+01:00" in parts(m)["text/plain"] or "00:10 UTC+02:00" in parts(m)["text/plain"]
        assert post_events(missed_call(again, "202", number, t0=midnight + 20 * 60_000))[0] == 200
        assert_skipped(b, sink, "ben", again, "repeated_same_day")


def test_repeated_calls_until_the_user_logged_on(bridge, sink):
    """anna is mailed about a caller once; the caller's next call is not reported until anna's Matrix
    presence shows her again; then it is."""
    async def set_presence_seen(b, m, note: str) -> None:
        offset = b.log_size()
        await m.set_presence("online", note)
        await asyncio.to_thread(b.wait_log, offset, "last logon recorded", m.user_id, timeout=30)

    async def go(b):
        m, _room, _bot = await calls_anna()
        try:
            await set_presence_seen(b, m, "here " + token(3))
            number = rnd_number()
            first, second, third = ("ul-" + token(6) for _ in range(3))
            # Started after the logon above, so that logon does not count as having seen this call.
            assert post_events(missed_call(first, "201", number, ring_s=3, t0=now_ms()))[0] == 200
            await wait_for(lambda: sink.by_id(message_id(first, "anna")), 30, what="the first call's mail")
            assert post_events(missed_call(second, "201", number, ring_s=3, t0=now_ms()))[0] == 200
            await asyncio.to_thread(assert_skipped, b, sink, "anna", second, "repeated_without_logon")
            await set_presence_seen(b, m, "back " + token(3))
            assert post_events(missed_call(third, "201", number, ring_s=3, t0=now_ms()))[0] == 200
            await wait_for(lambda: sink.by_id(message_id(third, "anna")), 30, what="the mail after the logon")
        finally:
            await m.close()

    with ucb.config_variant(bridge, "calls-logon", exceptions(repeated_until_logon=True)) as b:
        run(go(b))


# -------------------------------------------------------------- link prefix --
def test_custom_link_prefix_of_nine_characters_plus_colon(bridge, sink):
    def prefix(value: str):
        return lambda cfg: cfg["missed_calls"]["mail"].__setitem__("link_prefix", value)
    r = _ucbridge(_variant("calls-prefix-10", prefix("abcdefghij:")), "check-config")
    assert r.returncode != 0 and "missed_calls.mail.link_prefix" in r.stderr, (r.stdout, r.stderr)
    r = _ucbridge(_variant("calls-prefix-9", prefix("abcdefghi:")), "check-config")
    assert r.returncode == 0, (r.stdout, r.stderr)
    with ucb.config_variant(bridge, "calls-prefix", prefix("abcdefghi:")):
        call = "lp-" + token(6)
        assert post_events(missed_call(call, "202", ERIKA))[0] == 200
        [m] = wait_mails(sink, message_id(call, "ben"))
        p = parts(m)
        assert '<a href="abcdefghi:+49301234567">' in p["text/html"], p["text/html"]
        assert "Call back: abcdefghi:+49301234567" in p["text/plain"]


# ------------------------------------------------------------- called line --
def test_called_line_and_its_name_in_mail_and_chat_notice(bridge, sink):
    async def go():
        m, room, bot = await calls_anna()
        try:
            hotline = "cl-" + token(6)
            assert post_events(missed_call(hotline, "201", rnd_number(), called="+49 30 5550999"))[0] == 200
            [mail] = await asyncio.to_thread(wait_mails, sink, message_id(hotline, "anna"))
            p = parts(mail)   # anna reads German
            assert "Gewählt:  +49 30 5550999 (Hotline Beispiel)" in p["text/plain"], p["text/plain"]
            assert "<td>+49 30 5550999 (Hotline Beispiel)</td>" in p["text/html"], p["text/html"]

            def notice():
                return [e for e in m.messages_in(room, bot)
                        if "Gewählt:  +49 30 5550999 (Hotline Beispiel)" in e["content"].get("body", "")]
            await m.sync_until(notice, 30, "the chat notice with the called line")
        finally:
            await m.close()
    run(go())
    # A called number that is a contact's shows the contact; one that is neither, the number only.
    to_contact, plain = "cl-" + token(6), "cl-" + token(6)
    assert post_events(missed_call(to_contact, "202", rnd_number(), called=ERIKA))[0] == 200
    assert post_events(missed_call(plain, "202", rnd_number(), called="+49 30 5550 777"))[0] == 200
    [mail] = wait_mails(sink, message_id(to_contact, "ben"))
    text = parts(mail)["text/plain"].replace("\r\n", "\n")
    assert f"Called:   {ERIKA} (Erika Mustermann)\n" in text, text
    [mail] = wait_mails(sink, message_id(plain, "ben"))
    text = parts(mail)["text/plain"].replace("\r\n", "\n")
    assert "Called:   +49 30 5550 777\n" in text, text


# ------------------------------------------------------ caller as envelope --
def test_caller_as_envelope_sender_when_allowed(bridge, sink):
    # Off (the session config): the envelope is ours even though From is the caller.
    off = "es-" + token(6)
    assert post_events(missed_call(off, "202", ERIKA))[0] == 200
    [m] = wait_mails(sink, message_id(off, "ben"))
    assert "erika@caller.test" in m["From"] and m["X-Envelope-From"] == "calls@bridge.test"

    def allow(cfg: dict) -> None:
        cfg["missed_calls"]["mail"]["caller_as_envelope_sender"] = True
    with ucb.config_variant(bridge, "calls-envelope", allow):
        on, unknown = "es-" + token(6), "es-" + token(6)
        assert post_events(missed_call(on, "202", ERIKA))[0] == 200
        assert post_events(missed_call(unknown, "202", rnd_number()))[0] == 200
        [m] = wait_mails(sink, message_id(on, "ben"))
        # Auto-replies (RFC 3834) and bounces go to the envelope sender: the caller. We stay Sender.
        assert m["X-Envelope-From"] == "erika@caller.test", m["X-Envelope-From"]
        assert "erika@caller.test" in m["From"] and "erika@caller.test" in m["Reply-To"]
        assert "calls@bridge.test" in m["Sender"]
        # A caller without a known address: From and envelope are ours.
        [m] = wait_mails(sink, message_id(unknown, "ben"))
        assert m["X-Envelope-From"] == "calls@bridge.test" and "calls@bridge.test" in m["From"]
