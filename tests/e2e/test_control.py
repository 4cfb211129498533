"""The control room and admin commands: an admin (Matrix) steers the bridge from the control room, an
XMPP admin through the `admin` ad-hoc command; everyone else is refused."""
from __future__ import annotations

from ucb import Peers, hosted_alias, run, settings, token, wait_for
from test_rooms import _bot, bot_dm, bot_says, create_room, iq

COMMANDS = "http://jabber.org/protocol/commands"


async def control_room(m) -> str:
    dm = await bot_dm(m)
    await m.send_text(dm, "control-room")
    await m.sync_until(lambda: bot_says(m, dm, "invited to the control room"), 30, "the bot's invitation")
    room, _ = await m.wait_invite(_bot())
    await m.join(room)
    return room


async def ask(m, room: str, command: str, expect: str) -> str:
    """Send a command; the bot's answer after it (the control room may hold earlier sessions' history)."""
    eid = await m.send_text(room, command)

    def answer():
        timeline = m.timeline.get(room, [])
        at = next((i for i, e in enumerate(timeline) if e.get("event_id") == eid), None)
        if at is None:
            return None
        return [e for e in timeline[at + 1:] if e.get("sender") == _bot() and e.get("type") == "m.room.message"
                and expect in e.get("content", {}).get("body", "")]
    found = await m.sync_until(answer, 30, f"an answer containing {expect!r} to {command!r}")
    content = found[0]["content"]
    # A reply to the command, with an HTML body.
    assert content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == eid, content
    assert content.get("format") == "org.matrix.custom.html" and content.get("formatted_body"), content
    return content["body"]


def test_admin_runs_commands_in_the_control_room_and_others_are_refused(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            user = await p.matrix_user("usr")
            x = await p.xmpp_user("xu")
            room = await control_room(admin)
            status = await ask(admin, room, "status", "ucbridge")
            assert "XMPP: connected" in status and "outbox" in status, status
            await ask(admin, room, "help", "permissions")
            alias = "ctl" + token(4).lower()
            await create_room(user, alias)
            listing = await ask(admin, room, "rooms list", alias)
            assert f"#{hosted_alias(alias)}:" in listing, listing
            info = await ask(admin, room, f"rooms info #{hosted_alias(alias)}:{settings().matrix_domain}", "owner")
            assert user.user_id in info, info
            await ask(admin, room, f"permissions grant {x.bare} sms", "OK")
            await ask(admin, room, f"!ucb permissions grant {user.user_id} chatbot", "OK")
            listing = await ask(admin, room, "permissions list", "sms")
            assert x.bare in listing and user.user_id in listing, listing
            html = [e for e in admin.timeline[room] if e.get("content", {}).get("body") == listing][0]
            assert f"<li>{x.bare}: sms</li>" in html["content"]["formatted_body"], html["content"]
            await ask(admin, room, f"permissions revoke {x.bare} sms", "no longer")
            await ask(admin, room, "permissions grant someone fly", "invalid value")
            # A broadcast reaches people with a chat with the bridge.
            dm = await bot_dm(user)
            await ask(admin, room, "broadcast Maintenance at 18:00", "OK")
            await user.sync_until(lambda: bot_says(user, dm, "Maintenance at 18:00"), 30, "the broadcast")
            listing = await ask(admin, room, "users list", "Matrix users")
            assert user.user_id in listing, listing
            info = await ask(admin, room, f"users info {user.user_id}", "permissions")
            assert "chatbot" in info and f"#{hosted_alias(alias)}" not in info and "owner" in info, info
            await user.send_text(dm, "whoami")
            await user.sync_until(lambda: bot_says(user, dm, f"on XMPP you are {user.jid}"), 30, "whoami")
            # A non-admin asking for the control room is refused.
            await user.send_text(dm, "control-room")
            await user.sync_until(lambda: bot_says(user, dm, "Only the bridge's admins"), 30, "the refusal")
    run(go(), timeout=180)


def test_xmpp_admin_runs_an_admin_command_through_xep_0050(bridge):
    async def go():
        async with Peers() as p:
            admin = await p.xmpp_user("admin")
            user = await p.xmpp_user("plain")
            comp = settings().component
            items = await admin.plugin["xep_0030"].get_items(jid=comp, node=COMMANDS, timeout=10)
            assert "admin" in {i[1] for i in items["disco_items"]["items"]}
            items = await user.plugin["xep_0030"].get_items(jid=comp, node=COMMANDS, timeout=10)
            assert "admin" not in {i[1] for i in items["disco_items"]["items"]}, "non-admins must not see it"
            form = ("<x xmlns='jabber:x:data' type='submit'><field var='command'><value>status</value></field></x>")
            kind, res = await iq(admin, comp, "set", f"<command xmlns='{COMMANDS}' node='admin' action='complete'>"
                                                     f"{form}</command>")
            assert kind == "result", res
            note = res.find(f"{{{COMMANDS}}}command/{{{COMMANDS}}}note")
            assert note is not None and "XMPP: connected" in note.text, note
            kind, err = await iq(user, comp, "set", f"<command xmlns='{COMMANDS}' node='admin' action='complete'>"
                                                    f"{form}</command>")
            assert kind == "error" and err[0] == "forbidden" and "admins" in err[1], err
    run(go(), timeout=120)
