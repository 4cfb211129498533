"""Issue 7 end to end: the admin commands that change the bridge's set-up (rooms link/unlink, contact
groups, the missed-call block list, policy and options, contacts import of an uploaded vCard, reload),
run by an admin in the control room; a non-admin refused there; user commands (missed-calls on|off,
language, start-chat) from Matrix and XMPP; admin commands through XEP-0050 forms with slixmpp.

The config (scripts/lib.sh) has the missed-call users fritz (206, chat notices to @calls-fritz) and gina
(207, chat notices to calls-gina@localhost); the block list and settings stored here are removed again,
so that the other missed-call tests see the config's settings.
"""
from __future__ import annotations

import io
import re
import shutil

import yaml
from nio import AsyncClient, UploadResponse

import ucb
from ucb import Peers, run, settings, token, wait_for
from test_control import ask, control_room
from test_missed_calls import message_id, missed_call, post_events, rnd_number, sink  # noqa: F401
from test_portal import join_remote_muc, muc_domain
from test_rooms import _bot, bot_dm, bot_says, iq, power_level

COMMANDS = "http://jabber.org/protocol/commands"
FORMS = "jabber:x:data"


async def fixed_matrix_user(localpart: str) -> ucb.MatrixUser:
    """A Matrix account with a fixed name (the config names it), registered once per peer set."""
    s = settings()
    password = localpart + "-pw"
    c = AsyncClient(s.hs_url, "")
    r = await c.register(localpart, password)
    if not getattr(r, "access_token", None):
        await c.close()
        c = AsyncClient(s.hs_url, f"@{localpart}:{s.matrix_domain}")
        r = await c.login(password)
        assert getattr(r, "access_token", None), f"login {localpart}: {r}"
    m = ucb.MatrixUser(c, localpart, password)
    await m.sync_once(0)
    return m


async def fixed_xmpp_user(user: str) -> ucb.XmppUser:
    password = user + "-pw"
    try:
        await ucb.xmpp_register(user, password)
    except AssertionError as e:   # registered by the run on the other database
        assert "conflict" in str(e), e
    x = await ucb.xmpp_login(user, password, resource="e2e" + token(2))
    x.e2e_password = password
    return x


async def mails(sink, mid: str, timeout: float = 30) -> list:
    """The mails with this Message-ID, once there is one (inside a test's event loop)."""
    await wait_for(lambda: sink.by_id(mid), timeout, what=f"mail {mid}")
    return sink.by_id(mid)


async def upload_file(m, room: str, name: str, data: bytes, mimetype: str) -> str:
    r, _ = await m.c.upload(io.BytesIO(data), content_type=mimetype, filename=name, filesize=len(data))
    assert isinstance(r, UploadResponse), r
    status, body = await m.send_raw(room, "m.room.message", {
        "msgtype": "m.file", "body": name, "filename": name, "url": r.content_uri,
        "info": {"mimetype": mimetype, "size": len(data)}})
    assert status == 200, body
    return body["event_id"]


def note(res) -> str:
    n = res.find(f"{{{COMMANDS}}}command/{{{COMMANDS}}}note")
    return n.text if n is not None else ""


def form(fields: dict[str, str | list[str]]) -> str:
    out = []
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        out.append(f"<field var='{var}'>" + "".join(f"<value>{ucb.xml_escape(v)}</value>" for v in values)
                   + "</field>")
    return f"<x xmlns='{FORMS}' type='submit'>{''.join(out)}</x>"


async def adhoc(x, node: str, fields: dict | None = None):
    comp = settings().component
    body = form(fields) if fields is not None else ""
    return await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='{node}' action='complete'>{body}</command>")


def test_an_admin_links_and_unlinks_a_matrix_room_with_an_xmpp_muc(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            m = await p.matrix_user("lnk")
            x = await p.xmpp_user("lx")
            ctl = await control_room(admin)
            muc = f"linked{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x, muc, "xavier")
            r = await m.c.room_create(name="a team room", invite=[_bot()])
            room = r.room_id
            # A mistake is answered with what is wrong and the usage.
            err = await ask(admin, ctl, f"rooms link {room} not-a-muc", "not a MUC")
            assert "Usage" in err, err
            ok = await ask(admin, ctl, f"rooms link {room} {muc}", "OK")
            assert muc in ok, ok
            # m is an occupant of the MUC now, and x's ghost is in the (invite-only) room.
            mark = len(x.presences)
            await wait_for(lambda: [s for s in x.presences if s.frm == f"{muc}/{m.localpart}" and s.type != "unavailable"],
                           20, what="the Matrix member in the MUC")
            await m.wait_joined(room, x.ghost)
            x.send_xml(f"<message type='groupchat' to='{muc}'><body>hi linked room</body></message>")
            await m.wait_message(room, x.ghost, "hi linked room")
            listing = await ask(admin, ctl, "rooms list", "Rooms linked to MUCs")
            assert room in listing and muc in listing, listing
            await ask(admin, ctl, f"rooms link {room} {muc}", "linked with")   # twice: refused
            await ask(admin, ctl, f"rooms unlink {muc}", "no longer linked")
            await wait_for(lambda: [s for s in x.presences[mark:] if s.frm == f"{muc}/{m.localpart}"
                                    and s.type == "unavailable"], 20, what="the Matrix member left the MUC")
            await ask(admin, ctl, f"rooms unlink {room}", "not linked")
    run(go(), timeout=180)


def test_an_admin_manages_contact_groups_and_a_member_starts_a_chat(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            caller = await p.matrix_user("sc")
            other = await p.matrix_user("so")
            x = await p.xmpp_user("sx")
            ctl = await control_room(admin)
            g = "team" + token(3).lower()
            await ask(admin, ctl, f"groups create {g}", "OK")
            await ask(admin, ctl, f"groups create {g}", "exists already")
            await ask(admin, ctl, "groups create Bad_Name", "cannot be a group name")
            await ask(admin, ctl, f"groups add {g} {caller.user_id} {other.user_id} {x.bare} {admin.user_id}",
                      "4 members")
            await ask(admin, ctl, f"groups add {g} nonsense", "Not a Matrix ID or JID")
            await ask(admin, ctl, f"groups remove {g} {admin.user_id}", "removed")
            listing = await ask(admin, ctl, f"groups list {g}", g)
            html = [e for e in admin.timeline[ctl] if e.get("content", {}).get("body") == listing][0]
            assert "<table>" in html["content"]["formatted_body"], html["content"]
            assert caller.user_id in listing and x.bare in listing and admin.user_id not in listing, listing

            # Someone outside the group is refused; a member starts the chat and moderates it.
            outsider = await p.matrix_user("out")
            dm_out = await bot_dm(outsider)
            await outsider.send_text(dm_out, f"start-chat {g}")
            await outsider.sync_until(lambda: bot_says(outsider, dm_out, "Only the members"), 30, "the refusal")
            dm = await bot_dm(caller)
            await caller.send_text(dm, f"start-chat {g}")
            await caller.sync_until(lambda: bot_says(caller, dm, "will invite 2"), 30, "the list to confirm")
            await caller.send_text(dm, "confirm")
            await caller.sync_until(lambda: bot_says(caller, dm, "is ready"), 40, "the room is ready")
            room, _ = await caller.wait_invite(_bot())
            await caller.join(room)
            assert await power_level(caller, room, caller.user_id) >= 50
            room2, _ = await other.wait_invite(_bot())
            assert room2 == room
            await other.join(room)
            invite = await wait_for(lambda: [s for s in x.messages if "invite" in (s.xml or "")
                                             and s.frm.endswith("@" + settings().component)], 30,
                                    what="the MUC invitation of the XMPP member")
            assert g in invite[0].frm or g in invite[0].xml, invite[0].xml
            await caller.wait_joined(room, x.ghost)
            await ask(admin, ctl, f"groups delete {g}", "deleted")
            await ask(admin, ctl, f"groups list {g}", "no group")
    run(go(), timeout=240)


async def says(m, dm: str, text: str, expect: str, timeout: float = 30) -> str:
    """m sends a command to the bot; returns the bot's answer containing `expect` (sent after it)."""
    mark = len(m.messages_in(dm, _bot()))
    await m.send_text(dm, text)
    found = await m.sync_until(lambda: [e for e in m.messages_in(dm, _bot())[mark:]
                                        if expect in e["content"].get("body", "")], timeout, f"{expect!r} for {text!r}")
    return found[0]["content"]["body"]


def test_own_groups_are_the_owners_and_start_chat_leaves_people_out_before_confirm(bridge):
    """Issue 20 item 6 on Matrix: a user's own group (`groups mine …`), invisible to others; a
    name of the admins' groups is refused; `start-chat` lists whom it will invite, `--without`
    leaves one out, `confirm` creates the room without them."""
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            ctl = await control_room(admin)
            owner = await p.matrix_user("og")
            a, b = await p.matrix_user("oa"), await p.matrix_user("ob")
            x = await p.xmpp_user("ox")
            nosy = await p.matrix_user("on")
            g, shared = "mine" + token(3).lower(), "shared" + token(3).lower()
            await ask(admin, ctl, f"groups create {shared}", "OK")
            dm = await bot_dm(owner)
            await says(owner, dm, f"groups mine create {shared}", "admins' contact group")
            await says(owner, dm, f"groups mine create {g}", "only you see it")
            await says(owner, dm, f"groups mine add {g} {a.user_id} {b.user_id} {x.bare}", "3 members")
            await says(owner, dm, f"groups mine add {g} nonsense", "Not a Matrix ID or JID")
            listing = await says(owner, dm, "groups mine list", "Your groups")
            assert g in listing and b.user_id in listing and x.bare in listing, listing

            # Nobody else sees or uses it.
            dm_n = await bot_dm(nosy)
            await says(nosy, dm_n, "groups mine list", "no groups of your own")
            await says(nosy, dm_n, f"start-chat {g}", "no contact group")
            await says(nosy, dm_n, f"groups mine delete {g}", "no group")

            # The list first; one left out by number; a word that is not in it is named.
            first = await says(owner, dm, f"start-chat {g}", "will invite 3")
            assert f"1. {a.user_id}" in first and f"2. {b.user_id}" in first and f"3. {x.bare}" in first, first
            await says(owner, dm, f"start-chat {g} --without 7", "Not in the list")
            second = await says(owner, dm, f"start-chat {g} --without 2", "will invite 2")
            assert f"Left out: 2. {b.user_id}" in second and f"1. {a.user_id}" in second, second
            await says(owner, dm, "confirm", "Creating the room", 30)
            await owner.sync_until(lambda: bot_says(owner, dm, "is ready"), 40, "the room is ready")
            room, _ = await owner.wait_invite(_bot())
            await owner.join(room)
            assert await power_level(owner, room, owner.user_id) >= 50
            room_a, _ = await a.wait_invite(_bot())
            assert room_a == room
            await a.join(room)
            await wait_for(lambda: [s for s in x.messages if "invite" in (s.xml or "")
                                    and s.frm.endswith("@" + settings().component)], 30,
                           what="the MUC invitation of the XMPP member")
            await owner.wait_joined(room, x.ghost)
            # The one left out is not in the room (the others, invited in the same step, are).
            members = await owner.joined_members(room)
            assert a.user_id in members and b.user_id not in members, members
            await b.sync_once(0)
            assert not [r for r, _ in b.invites_from(_bot()) if r == room], "the one left out was invited"
            await says(owner, dm, "confirm", "nothing to confirm")
            await says(owner, dm, f"groups mine delete {g}", "deleted")
            await says(owner, dm, f"start-chat {g}", "no contact group")
            await ask(admin, ctl, f"groups delete {shared}", "deleted")
    run(go(), timeout=240)


def test_an_xmpp_user_keeps_own_groups_and_confirms_a_chat_by_message_and_forms(bridge):
    """Issue 20 item 6 on XMPP: own groups by message to the component and by the `groups-mine`
    form; `start-chat` by form with people left out, `confirm` by its ad-hoc command."""
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("oxo")
            m1, m2 = await p.matrix_user("oxa"), await p.matrix_user("oxb")
            comp = settings().component
            g = "xg" + token(3).lower()

            async def chat(text: str, expect: str) -> str:
                mark = len(x.chats_from(comp))
                x.send_chat(comp, text)
                found = await wait_for(lambda: [c for c in x.chats_from(comp)[mark:] if expect in c.body], 30,
                                       what=f"{expect!r} for {text!r}")
                return found[0].body

            await chat(f"groups mine create {g}", "only you see it")
            await chat("confirm", "nothing to confirm")
            kind, res = await adhoc(x, "groups-mine", {"action": "add", "name": g,
                                                      "members": [m1.user_id, m2.user_id]})
            assert kind == "result" and "2 members" in note(res), note(res)
            kind, res = await adhoc(x, "groups-mine", {"action": "list"})
            assert kind == "result" and g in note(res) and m2.user_id in note(res), note(res)
            kind, res = await adhoc(x, "start-chat", {"group": g, "without": [m2.user_id]})
            assert kind == "result" and "will invite 1" in note(res) and f"Left out: 2. {m2.user_id}" in note(res), \
                note(res)
            kind, res = await adhoc(x, "confirm", {})
            assert kind == "result" and "Creating the room" in note(res), note(res)
            room, _ = await m1.wait_invite(_bot(), 40)
            await m1.join(room)
            await m2.sync_once(0)
            assert not [r for r, _ in m2.invites_from(_bot()) if r == room], "the one left out was invited"
    run(go(), timeout=180)


def test_block_list_policy_and_options_change_the_missed_call_notices(bridge, sink):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            ctl = await control_room(admin)
            blocked = rnd_number()
            try:
                ok = await ask(admin, ctl, f"block add {blocked}", "OK")
                e164 = "+49" + blocked.replace(" ", "")[3:]
                assert e164 in ok, ok
                await ask(admin, ctl, f"block add {blocked}", "already")
                await ask(admin, ctl, "block add --extension 299", "never told")
                listing = await ask(admin, ctl, "block list", e164)
                assert "299" in listing and "extension" in listing, listing
                # A call from the blocked number is not reported; a later one from elsewhere is.
                call, probe = "blk-" + token(6), "blp-" + token(6)
                assert post_events(missed_call(call, "202", blocked))[0] == 200
                assert post_events(missed_call(probe, "202", rnd_number()))[0] == 200
                await mails(sink, message_id(probe, "ben"))
                assert sink.by_id(message_id(call, "ben")) == [], "a blocked caller was reported"
                await ask(admin, ctl, f"block remove {e164}", "off the block list")
                await ask(admin, ctl, "block remove --extension 299", "off the block list")
                await ask(admin, ctl, "block remove 0301", "not on the block list")
                again = "blk2-" + token(6)
                assert post_events(missed_call(again, "202", blocked))[0] == 200
                await mails(sink, message_id(again, "ben"))

                # Policy: first: of two ringing phones only the first is told.
                await ask(admin, ctl, "missed-calls policy", "Policy: all")
                await ask(admin, ctl, "missed-calls policy first", "OK")
                await ask(admin, ctl, "missed-calls policy", "the config says all")
                err = await ask(admin, ctl, "missed-calls policy most", "invalid value")
                assert "Usage: missed-calls policy" in err, err   # a bad value comes with the usage
                two = "pol-" + token(6)
                events = missed_call(two, "202", rnd_number())
                events.insert(2, {"type": "leg_ringing", "call_id": two, "leg_id": two + "-l9", "extension": "203",
                                  "at": events[1]["at"] + 500})
                assert post_events(events)[0] == 200
                await mails(sink, message_id(two, "ben"))
                await ask(admin, ctl, "missed-calls options reset policy", "back to the config's value, all")

                # Options: a short ring is reported once short_ring is off.
                table = await ask(admin, ctl, "missed-calls options", "short_ring")
                assert re.search(r"\| short_ring \| on \|", table), table
                await ask(admin, ctl, "missed-calls options set short_ring off", "OK: short_ring is now off")
                await ask(admin, ctl, "missed-calls options set min_ring_secs 3", "OK")
                await ask(admin, ctl, "missed-calls options set min_ring_secs 9999", "at most 600")
                err = await ask(admin, ctl, "missed-calls options set warp on", "There is no option")
                assert "min_ring_secs" in err and "Usage" in err, err
                table = await ask(admin, ctl, "missed-calls options show", "short_ring")
                assert re.search(r"\| short_ring \| off \| on \|", table), table
                short = "short-" + token(6)
                assert post_events(missed_call(short, "202", rnd_number(), ring_s=1))[0] == 200
                await mails(sink, message_id(short, "ben"))
                # Five rejected options / mistakes are in the audit log too; the admin log says who.
                assert sink.by_id(message_id(two, "carla")) == [], "policy first told the second phone too"
            finally:
                for line in ("missed-calls options reset short_ring", "missed-calls options reset min_ring_secs",
                             "missed-calls options reset policy"):
                    await ask(admin, ctl, line, "back to the config")
    run(go(), timeout=240)


def test_contacts_import_of_an_uploaded_vcard(bridge, sink):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            ctl = await control_room(admin)
            number = rnd_number()
            name = "Importa " + token(3)
            card = (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nTEL;TYPE=WORK:{number}\r\nEND:VCARD\r\n"
                    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Nobody Callable\r\nEMAIL:n@c.test\r\nEND:VCARD\r\n").encode()
            await ask(admin, ctl, "contacts import", "Upload a vCard")
            file_event = await upload_file(admin, ctl, f"team-{token(2)}.vcf", card, "text/vcard")
            await admin.sync_until(lambda: [e for e in admin.messages_in(ctl, _bot())
                                            if "File received" in e["content"].get("body", "")], 30, "the hint")
            # Answer the file with the command.
            r = await admin.c.room_send(ctl, "m.room.message", {
                "msgtype": "m.text", "body": "contacts import",
                "m.relates_to": {"m.in_reply_to": {"event_id": file_event}}})
            eid = r.event_id
            found = await admin.sync_until(lambda: [e for e in admin.messages_in(ctl, _bot())
                                                    if e["content"].get("m.relates_to", {}).get("m.in_reply_to", {})
                                                    .get("event_id") == eid], 30, "the import's answer")
            body = found[0]["content"]["body"]
            assert "imported 1 contacts" in body and "1 problems" in body and "Nobody Callable" in body, body
            await ask(admin, ctl, "contacts list", "team-")
            # Lookups use the imported contact: the notice names the caller.
            call = "imp-" + token(6)
            assert post_events(missed_call(call, "202", number))[0] == 200
            [mail] = await mails(sink, message_id(call, "ben"))
            assert name in mail["Subject"], mail["Subject"]
            # A file that is not a contact file is refused with the reason.
            await upload_file(admin, ctl, "junk.vcf", b"BEGIN:VCARD\r\nFN:x\r\n", "text/vcard")
            await ask(admin, ctl, "contacts import", "cannot be read")
    run(go(), timeout=180)


def test_reload_applies_admins_and_reports_what_needs_a_restart(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            newbie = await p.matrix_user("rl")
            ctl = await control_room(admin)
            path = settings().config_path
            backup = path + ".before-reload"
            shutil.copy(path, backup)
            try:
                cfg = yaml.safe_load(open(path))
                cfg["admins"]["matrix"].append(newbie.user_id)
                cfg["logging"]["filter"] = "info"
                cfg["admins"]["command_prefix"] = "%ucb"
                cfg["links"] = {"region": "AT"}
                with open(path, "w") as f:
                    yaml.safe_dump(cfg, f)
                ans = await ask(admin, ctl, "reload", "OK: reloaded")
                assert "Applied: admins, admins.command_prefix" in ans, ans
                assert "needs a restart: logging, links" in ans, ans
                # The new prefix is taken at once (the old one would now be a mistake).
                await ask(admin, ctl, "%ucb status", "outbox:")
                dm = await bot_dm(newbie)
                await newbie.send_text(dm, "whoami")
                await newbie.sync_until(lambda: bot_says(newbie, dm, "You are an admin"), 30, "whoami as admin")
                # A broken file changes nothing.
                with open(path, "w") as f:
                    f.write("homeserver: [")
                await ask(admin, ctl, "reload", "nothing changed")
            finally:
                shutil.move(backup, path)
            ans = await ask(admin, ctl, "reload", "OK: reloaded")
            assert "admins" in ans, ans
            await newbie.send_text(dm, "control-room")
            await newbie.sync_until(lambda: bot_says(newbie, dm, "Only the bridge's admins"), 30, "no admin again")
    run(go(), timeout=180)


def test_a_non_admin_is_refused_admin_commands(bridge):
    async def go():
        async with Peers() as p:
            user = await p.matrix_user("nadm")
            dm = await bot_dm(user)
            for line in ("block list", "!ucb reload", "groups create x"):
                await user.send_text(dm, line)
            await user.sync_until(lambda: len(bot_says(user, dm, "Only the bridge's admins")) >= 3, 30, "3 refusals")
            assert not bot_says(user, dm, "Block list"), "the block list was shown to a non-admin"
            x = await p.xmpp_user("nx")
            kind, err = await adhoc(x, "admin", {"command": "block list"})
            assert kind == "error" and err[0] == "forbidden", err
            comp = settings().component
            x.send_message(mto=comp, mbody="missed-calls policy none", mtype="chat")
            await wait_for(lambda: [s for s in x.chats_from(comp) if "Only the bridge's admins" in s.body], 30,
                           what="the refusal on XMPP")
            # Every refused attempt is in the audit log, with who tried and what.
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            log = await ask(admin, room, "audit 100", "admin commands, newest first")
            rows = [line for line in log.splitlines() if line.startswith("| ")]
            for who, line in [(user.user_id, "block list"), (user.user_id, "!ucb reload"),
                              (user.user_id, "groups create x"), (x.jid, "block list"),
                              (x.jid, "missed-calls policy none")]:
                assert [r for r in rows if who in r and f"| {line} |" in r and "refused" in r], (who, line, log)
            assert not [r for r in rows if admin.user_id in r and "| audit" in r], "the audit command listed itself"
    run(go(), timeout=120)


def test_a_matrix_user_switches_notices_off_and_to_german(bridge):
    async def go():
        m = await fixed_matrix_user("calls-fritz")
        try:
            dm = await bot_dm(m)

            def notice(number):
                return lambda: [e for e in m.messages_in(dm, _bot()) if number in e["content"].get("body", "")]
            await m.send_text(dm, "missed-calls off")
            await m.sync_until(lambda: bot_says(m, dm, "no more missed-call notices"), 30, "off")
            silent = rnd_number()
            assert post_events(missed_call("off-" + token(6), "206", silent))[0] == 200
            await m.send_text(dm, "missed-calls on")
            await m.sync_until(lambda: bot_says(m, dm, "you get missed-call notices"), 30, "on")
            heard = rnd_number()
            assert post_events(missed_call("on-" + token(6), "206", heard))[0] == 200
            [ev] = await m.sync_until(notice(heard), 30, "the notice after switching on")
            assert "You missed a call" in ev["content"]["body"], ev["content"]
            assert not notice(silent)(), "a notice arrived while notices were off"
            await m.send_text(dm, "language fr")
            await m.sync_until(lambda: bot_says(m, dm, "not a language"), 30, "unknown language")
            await m.send_text(dm, "language de")
            await m.sync_until(lambda: bot_says(m, dm, "'de'"), 30, "German")
            german = rnd_number()
            assert post_events(missed_call("de-" + token(6), "206", german))[0] == 200
            [ev] = await m.sync_until(notice(german), 30, "the German notice")
            assert "Sie haben einen Anruf" in ev["content"]["body"], ev["content"]
        finally:
            await m.send_text(dm, "language en")
            await m.sync_until(lambda: bot_says(m, dm, "'en'"), 30, "back to English")
            await m.close()
    run(go(), timeout=180)


def test_an_xmpp_user_switches_notices_off_by_message_and_on_by_adhoc(bridge):
    async def go():
        x = await fixed_xmpp_user("calls-gina")
        comp = settings().component
        try:
            x.send_message(mto=comp, mbody="missed-calls off", mtype="chat")
            await wait_for(lambda: [s for s in x.chats_from(comp) if "no more missed-call notices" in s.body], 30,
                           what="off")
            # A bad value is answered with the mistake and the command's usage, on XMPP too.
            x.send_message(mto=comp, mbody="missed-calls maybe", mtype="chat")
            await wait_for(lambda: [s for s in x.chats_from(comp)
                                    if "'maybe'" in s.body and "Usage: missed-calls <SWITCH>" in s.body], 30,
                           what="the mistake with the usage")
            silent = rnd_number()
            assert post_events(missed_call("xoff-" + token(6), "207", silent))[0] == 200
            # The ad-hoc command with its form.
            kind, res = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='missed-calls' action='execute'/>")
            assert kind == "result" and res.find(f"{{{COMMANDS}}}command").get("status") == "executing", res
            kind, res = await adhoc(x, "missed-calls", {"switch": "on"})
            assert kind == "result" and "you get missed-call notices" in note(res), note(res)
            heard = rnd_number()
            assert post_events(missed_call("xon-" + token(6), "207", heard))[0] == 200
            await wait_for(lambda: [s for s in x.chats_from(comp) if heard in s.body], 30, what="the notice")
            assert not [s for s in x.chats_from(comp) if silent in s.body], "a notice arrived while off"
            kind, res = await adhoc(x, "whoami", {})
            assert kind == "result" and "calls-gina@" in note(res), note(res)
            kind, res = await adhoc(x, "start-chat", {"group": "no-such-group"})
            assert kind == "result" and "no contact group" in note(res), note(res)
        finally:
            await x.close()
    run(go(), timeout=180)


def test_an_xmpp_admin_uses_the_admin_forms(bridge, sink):
    async def go():
        async with Peers() as p:
            admin = await p.xmpp_user("admin")
            plain = await p.xmpp_user("pl")
            comp = settings().component
            items = await admin.plugin["xep_0030"].get_items(jid=comp, node=COMMANDS, timeout=10)
            nodes = {i[1] for i in items["disco_items"]["items"]}
            assert {"block", "groups", "missed-calls-policy", "contacts-import", "start-chat"} <= nodes, nodes
            items = await plain.plugin["xep_0030"].get_items(jid=comp, node=COMMANDS, timeout=10)
            nodes = {i[1] for i in items["disco_items"]["items"]}
            assert "block" not in nodes and "groups" not in nodes and "missed-calls" in nodes, nodes
            kind, err = await adhoc(plain, "block", {"action": "list"})
            assert kind == "error" and err[0] == "forbidden", err

            # The form first, then its submission.
            kind, res = await iq(admin, comp, "set", f"<command xmlns='{COMMANDS}' node='block' action='execute'/>")
            fields = {f.get("var") for f in res.iter(f"{{{FORMS}}}field")}
            assert {"action", "number", "extension"} <= fields, fields
            number = rnd_number()
            try:
                kind, res = await adhoc(admin, "block", {"action": "add", "number": number})
                assert kind == "result" and "not reported" in note(res), note(res)
                kind, res = await adhoc(admin, "block", {"action": "list"})
                assert "+49" + number.replace(" ", "")[3:] in note(res), note(res)
            finally:
                kind, res = await adhoc(admin, "block", {"action": "remove", "number": number})
                assert "off the block list" in note(res), note(res)
            kind, res = await adhoc(admin, "missed-calls-policy", {"policy": "all"})
            assert kind == "result" and "OK: the policy is now all" in note(res), note(res)
            kind, res = await adhoc(admin, "admin", {"command": "missed-calls options reset policy"})
            assert "back to the config" in note(res), note(res)
            g = "xg" + token(3).lower()
            kind, res = await adhoc(admin, "groups", {"action": "create", "name": g})
            assert "OK" in note(res), note(res)
            kind, res = await adhoc(admin, "groups", {"action": "add", "name": g, "members": [plain.bare, admin.bare]})
            assert "2 members" in note(res), note(res)
            kind, res = await adhoc(admin, "groups", {"action": "list"})
            assert g in note(res) and plain.bare in note(res), note(res)
            kind, err = await adhoc(admin, "groups", {"action": "add", "name": g})
            assert kind == "error" and err[0] == "bad-request" and "members" in err[1], err
            await adhoc(admin, "groups", {"action": "delete", "name": g})
            # Contacts from the form's multi-line field.
            number = rnd_number()
            lines = ["Name,Phone", f"Formy Contact,{number}"]
            kind, res = await adhoc(admin, "contacts-import", {"name": f"x-{token(2)}.csv", "content": lines})
            assert kind == "result" and "imported 1 contacts" in note(res), note(res)
            call = "xci-" + token(6)
            assert post_events(missed_call(call, "202", number))[0] == 200
            [mail] = await mails(sink, message_id(call, "ben"))
            assert "Formy Contact" in mail["Subject"], mail["Subject"]
    run(go(), timeout=180)
