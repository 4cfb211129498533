"""The user commands as XMPP ad-hoc commands (XEP-0050) on the component, run with slixmpp."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from ucb import Peers, run, settings, token, wait_for
from test_rooms import iq

COMMANDS = "http://jabber.org/protocol/commands"
FORMS = "jabber:x:data"


def _note(res) -> str:
    note = res.find(f"{{{COMMANDS}}}command/{{{COMMANDS}}}note")
    return note.text if note is not None else ""


def test_xmpp_user_runs_commands_through_xep_0050(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("ah")
            m = await p.matrix_user("ahm")
            # Watching a Matrix user needs their consent: a conversation gives it.
            await p.dm_from_matrix(m, x)
            comp = settings().component
            info = await x.plugin["xep_0030"].get_info(jid=comp, timeout=10)
            assert COMMANDS in info["disco_info"]["features"]
            items = await x.plugin["xep_0030"].get_items(jid=comp, node=COMMANDS, timeout=10)
            nodes = {i[1] for i in items["disco_items"]["items"]}
            assert {"help", "notify-add", "notify-list", "notify-cancel", "room-create"} <= nodes, nodes

            # A command with a form: first the form, then the submission.
            kind, res = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='notify-add' action='execute'/>")
            assert kind == "result", res
            cmd = res.find(f"{{{COMMANDS}}}command")
            assert cmd.get("status") == "executing", ET.tostring(cmd)
            fields = {f.get("var") for f in cmd.iter(f"{{{FORMS}}}field")}
            assert {"contact", "when"} <= fields, fields
            session = cmd.get("sessionid")
            form = (f"<x xmlns='{FORMS}' type='submit'><field var='contact'><value>{m.user_id}</value></field>"
                    f"<field var='when'><value>available</value></field></x>")
            kind, res = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='notify-add' "
                                                 f"sessionid='{session}' action='complete'>{form}</command>")
            assert kind == "result" and res.find(f"{{{COMMANDS}}}command").get("status") == "completed", res
            assert "OK" in _note(res) and m.user_id in _note(res), _note(res)
            # A command without a form runs at once; it sees what the first one stored.
            kind, res = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='notify-list' action='execute'/>")
            assert kind == "result" and m.user_id in _note(res), _note(res)
            # A missing required field and an unknown command are refused with a reason.
            kind, err = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='notify-cancel' action='complete'>"
                                                 f"<x xmlns='{FORMS}' type='submit'/></command>")
            assert kind == "error" and err[0] == "bad-request" and "contact" in err[1], err
            kind, err = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='frobnicate' action='execute'/>")
            assert kind == "error" and err[0] == "item-not-found", err
            # Starting a room from XMPP: the XMPP user is its owner.
            alias = "adhoc" + token(4).lower()
            form = f"<x xmlns='{FORMS}' type='submit'><field var='alias'><value>{alias}</value></field></x>"
            kind, res = await iq(x, comp, "set", f"<command xmlns='{COMMANDS}' node='room-create' action='complete'>"
                                                 f"{form}</command>")
            assert kind == "result" and "Creating" in _note(res), _note(res)
            await wait_for(lambda: [s for s in x.chats_from(comp) if "is ready" in (s.body or "")], 30,
                           what="the room is ready")
    run(go(), timeout=120)
