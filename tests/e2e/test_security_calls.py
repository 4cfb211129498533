"""Security issue #11, the calls / SMS slice, end to end against the real peers:

- L3: a vCard whose TEL value has a multi-byte character, imported through the XMPP ad-hoc command
  `contacts-import`, does not stop the bridge (it used to panic and kill the XMPP task);
- L6: every text column of the journal's CSV export is defused against spreadsheet formulas;
- L9: `check-config` and `run` refuse weak or example secrets, naming the key;
- L4: inviting a number's ghost without the `sms` permission shows no name from the contact store
  (the ghost refuses, saying the permission is needed); a permitted person still sees the name;
- numbers: an SMS address that is not a valid number (`+4917684@bridge…`, `@_sms_+4917644`) is refused
  with a clear message, and nothing reaches Kannel's fake SMSC (a valid number does, as control).

The config is scripts/lib.sh's (contact Erika Mustermann, +49 30 1234567, in calls-contacts.vcf).
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import time

import yaml

import ucb
from test_commands import adhoc, note
from test_missed_calls import journal, post_events, sink  # noqa: F401 (fixture)
from test_rooms import bot_dm, bot_says
from test_sms import SENDER, address, ghost, grant, notices, rnd_mobile, sent_sms, wait_sms
from ucb import Peers, run, settings, token, wait_for

ERIKA_E164 = "+49301234567"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def short_mobile() -> str:
    """`+49176` and two digits: `+` and digits as an address allows, but no valid number."""
    return "+49176" + str(int.from_bytes(os.urandom(1), "big") % 90 + 10)


def sms_with(text: str) -> list[tuple[str, str, str]]:
    """Every MT the fake SMSC got whose text contains `text` (to any number)."""
    return [m for m in sent_sms() if text in m[2]]


def member_events(m, room: str, user: str) -> list[dict]:
    return [e for e in m.timeline.get(room, []) if e.get("type") == "m.room.member" and e.get("state_key") == user]


def joined_as(m, room: str, user: str) -> list[str]:
    """The display names `user` had in its join events in `room`."""
    return [e["content"].get("displayname") or "" for e in member_events(m, room, user)
            if e["content"].get("membership") == "join"]


def left(m, room: str, user: str) -> bool:
    return any(e["content"].get("membership") == "leave" for e in member_events(m, room, user))


# ------------------------------------------------------------------------ L3 --
def test_vcard_with_a_multibyte_tel_over_xmpp_adhoc_leaves_the_bridge_serving(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.xmpp_user("admin")
            lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:Euro Tel {token(2)}", "TEL:ab€123", "END:VCARD",
                     "BEGIN:VCARD", "VERSION:3.0", "FN:Emoji Tel", "TEL;TYPE=CELL:😀1", "END:VCARD"]
            kind, res = await adhoc(admin, "contacts-import", {"name": f"mb-{token(2)}.vcf", "content": lines})
            # Imported or refused, it is answered (the panic left the iq unanswered).
            assert kind in ("result", "error"), (kind, res)
            # The bridge keeps serving XMPP: later commands are answered.
            kind, res = await adhoc(admin, "whoami", {})
            assert kind == "result" and admin.bare in note(res), (kind, note(res) if kind == "result" else res)
            number = "+49 30 " + str(int.from_bytes(os.urandom(3), "big") % 9000000 + 1000000)
            kind, res = await adhoc(admin, "contacts-import",
                                    {"name": f"ok-{token(2)}.csv", "content": ["Name,Phone", f"After Panic,{number}"]})
            assert kind == "result" and "imported 1 contacts" in note(res), note(res) if kind == "result" else res
            assert bridge.running() and (bridge.health() or {}).get("xmpp") == "connected", bridge.health()
    run(go(), timeout=120)


# ------------------------------------------------------------------------ L6 --
def test_journal_csv_defuses_formulas_in_every_text_column(bridge, sink):
    tag = token(4)
    t0 = int(time.time() * 1000) - 20_000
    taken_by = f"@SUM(1+1)*{tag}"
    evil = {   # call id -> (caller name, caller number)
        f"=HYPERLINK(\"x\")-{tag}": ("=cmd|' /C calc'!A0", "-1 (555) 0199"),
        f"+x-{tag}": ("+cmd|' /C calc'!A0", "+1+1"),
        f"-x-{tag}": ("@SUM(A1)", "+49 30 5550199"),
    }
    for call, (name, number) in evil.items():
        events = [
            {"type": "call_created", "call_id": call, "caller": {"number": number, "name": name},
             "called": "+49305550202", "direction": "inbound", "at": t0},
            {"type": "leg_ringing", "call_id": call, "leg_id": call + "-l1", "extension": "202", "at": t0 + 100},
            {"type": "leg_ringing", "call_id": call, "leg_id": call + "-l2", "extension": taken_by, "at": t0 + 200},
            {"type": "call_answered", "call_id": call, "by": taken_by, "at": t0 + 9000},
            {"type": "leg_ended", "call_id": call, "leg_id": call + "-l1", "outcome": {"kind": "cancelled"},
             "at": t0 + 9000},
            {"type": "call_ended", "call_id": call, "cause": "normal_clearing", "at": t0 + 15000},
        ]
        status, body = post_events(events)
        assert status == 200, body
    # Tab and CR cannot come in through the webhook at all (control characters are refused).
    for bad in ("\tcmd", "\rcmd"):
        status, body = post_events([{"type": "call_created", "call_id": f"tab-{tag}", "caller": {"name": bad},
                                     "called": "+49305550202", "direction": "inbound", "at": t0}])
        assert status == 400 and "control" in body, (status, body)

    def rows():
        st, body = journal("user=ben&format=json")
        assert st == 200, body
        return {r["call_id"]: r for r in json.loads(body)["calls"] if r["call_id"] in evil}
    run(wait_for(lambda: len(rows()) == len(evil), 30, what="the three calls in ben's journal"))
    # JSON keeps the values as they are.
    r = rows()
    assert {c: (r[c]["name"], r[c]["answered_by"]) for c in evil} == {c: (n, taken_by) for c, (n, _) in evil.items()}

    st, body = journal("user=ben&format=csv")
    assert st == 200, body
    table = [row for row in csv.reader(io.StringIO(body))]
    header, data = table[0], table[1:]
    mine = [dict(zip(header, row)) for row in data if row[header.index("call_id")].lstrip("'") in evil]
    assert len(mine) == len(evil), body
    for row in mine:
        for column, cell in row.items():
            genuine_number = column == "number" and cell.startswith("+") and cell[1:].replace(" ", "").isdigit()
            assert not cell.startswith(FORMULA_START) or genuine_number, f"{column}: {cell!r} in {row}"
        assert row["answered_by"] == "'" + taken_by, row
        assert row["call_id"].startswith("'"), row
    by_call = {row["call_id"].lstrip("'"): row for row in mine}
    assert by_call[f"-x-{tag}"]["number"] == "+49 30 5550199"   # a phone number stays a number
    assert by_call[f"+x-{tag}"]["number"] == "'+1+1"


# ------------------------------------------------------------------------ L9 --
def _variant(name: str, change) -> str:
    s = settings()
    with open(s.config_path) as f:
        cfg = yaml.safe_load(f)
    change(cfg)
    path = os.path.join(os.path.dirname(s.config_path), f"ucbridge-{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def _ucbridge(config: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    s = settings()
    env = dict(os.environ, UCBRIDGE_DATABASE_URL="sqlite://" + os.path.join(s.state, "weak-secret-check.db"))
    return subprocess.run([s.bin, "-c", config, command], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=s.state)


def test_check_config_and_run_refuse_weak_or_example_secrets_naming_the_key(bridge):
    s = settings()
    ok = _ucbridge(s.config_path, "check-config")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout, ok.stderr   # the positive control

    def setter(*path: str, value: str):
        def change(cfg: dict) -> None:
            node = cfg
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        return change

    cases = [
        ("xmpp.secret", setter("xmpp", "secret", value="bridge-secret")),
        ("xmpp.secret", setter("xmpp", "secret", value="change-me-component-secret")),
        ("missed_calls.webhook.secret", setter("missed_calls", "webhook", "secret", value="short-secret")),
        ("missed_calls.webhook.secret",
         setter("missed_calls", "webhook", "secret", value="change-me-to-a-long-random-string")),
        ("missed_calls.journal_token", setter("missed_calls", "journal_token", value="change-me-journal-token")),
        ("sms.inbound_secret", setter("sms", "inbound_secret", value="change-me-sms-secret-0123456789")),
    ]
    for key, change in cases:
        path = _variant("weak-secret", change)
        r = _ucbridge(path, "check-config")
        assert r.returncode != 0 and key in r.stderr, f"{key}: rc={r.returncode} {r.stdout} {r.stderr}"
    # `run` refuses it before it starts anything (the session bridge keeps the port meanwhile).
    path = _variant("weak-secret", cases[2][1])
    r = _ucbridge(path, "run")
    assert r.returncode != 0 and "missed_calls.webhook.secret" in r.stderr, r.stderr
    assert bridge.running()
    # The registration's tokens too.
    reg = os.path.join(s.state, "registration-weak.yaml")
    with open(os.path.join(os.path.dirname(s.config_path), s.config["appservice"]["registration"])) as f:
        registration = yaml.safe_load(f)
    registration["hs_token"] = "CHANGE-ME-hs-token-generated-by-ucbridge"
    with open(reg, "w") as f:
        yaml.safe_dump(registration, f)
    path = _variant("weak-token", setter("appservice", "registration", value=reg))
    r = _ucbridge(path, "check-config")
    assert r.returncode != 0 and "hs_token" in r.stderr, r.stderr


# ------------------------------------------------------------------------ L4 --
def test_sms_ghost_invite_without_the_permission_shows_no_contact_name(bridge):
    async def go():
        async with Peers() as p:
            erika = ghost(ERIKA_E164)
            m = await p.matrix_user("lookup")
            room = await m.create_dm(erika)
            await m.sync_until(lambda: notices(m, room, erika, "needs the sms permission"), 30, "the refusal")
            await m.sync_until(lambda: left(m, room, erika), 30, "the ghost leaving again")
            names = joined_as(m, room, erika)
            assert names and all("Erika" not in n and "Mustermann" not in n for n in names), names
            assert all("Erika" not in e["content"].get("body", "") for e in m.messages_in(room, erika))
            # Messages there go nowhere (the room is no SMS chat).
            text = f"no sms {token(3)}"
            await m.send_text(room, text)

            # The positive control: someone allowed to send SMS gets the contact's name.
            allowed = await p.matrix_user("lookok")
            await grant(p, allowed.user_id)
            room2 = await allowed.create_dm(erika)
            await allowed.wait_joined(room2, erika)
            await allowed.sync_until(lambda: joined_as(allowed, room2, erika), 30, "the ghost's join event")
            assert joined_as(allowed, room2, erika) == ["Erika Mustermann (SMS)"], joined_as(allowed, room2, erika)
            ok = f"allowed sms {token(3)}"
            await allowed.send_text(room2, ok)
            await wait_sms(ERIKA_E164, ok)
            assert sms_with(text) == []
    run(go(), timeout=150)


# ------------------------------------------------------ numbers, every path --
def test_xmpp_sms_to_an_invalid_number_is_refused_and_nothing_reaches_kannel(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("snum")
            await grant(p, x.bare)
            bad, text = short_mobile(), f"to a short number {token(3)}"
            sid = x.send_chat(address(bad), text)
            err = await x.wait_error(sid)
            assert "not a valid phone number" in (err.error_text or ""), err.describe()
            # The `sms` command says the same about it.
            x.send_chat(settings().component, f"sms {bad}")
            await wait_for(lambda: [c for c in x.chats_from(settings().component)
                                    if "not a valid phone number" in c.body], 30, what="the command's refusal")
            # Control: a valid number from the same person arrives at the fake SMSC.
            good, ok = rnd_mobile(), f"to a real number {token(3)}"
            x.send_chat(address(good), ok)
            frm, _, _ = await wait_sms(good, ok)
            assert frm == SENDER
            # Refused when it came in (the error above), so never queued: the control suffices.
            assert sms_with(text) == [], sms_with(text)
    run(go(), timeout=120)


def test_matrix_sms_ghost_of_an_invalid_number_is_refused_and_nothing_reaches_kannel(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("snumm")
            await grant(p, m.user_id)
            bad = short_mobile()
            room = await m.create_dm(ghost(bad))
            await m.sync_until(lambda: notices(m, room, ghost(bad), "not a valid phone number"), 30, "the refusal")
            await m.sync_until(lambda: left(m, room, ghost(bad)), 30, "the ghost leaving again")
            text = f"to a short number {token(3)}"
            await m.send_text(room, text)
            # The `sms` command refuses it the same way.
            dm = await bot_dm(m)
            await m.send_text(dm, f"sms {bad}")
            await m.sync_until(lambda: bot_says(m, dm, "not a valid phone number"), 30, "the command's refusal")
            assert not [inv for inv in m.invites_from(ghost(bad))], m.invites_from(ghost(bad))
            # Control: a valid number's ghost works for the same person.
            good = rnd_mobile()
            room2 = await m.create_dm(ghost(good))
            await m.wait_joined(room2, ghost(good))
            ok = f"to a real number {token(3)}"
            await m.send_text(room2, ok)
            await wait_sms(good, ok)
            # The control went on another lane (another number): had the refused one been queued,
            # it would reach the gateway about as fast; a grace period, not a wait for something.
            await asyncio.sleep(2)
            assert sms_with(text) == [], sms_with(text)
    run(go(), timeout=150)
