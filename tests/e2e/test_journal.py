"""Issue 16, items 3 and 4 end to end: the personal journal (`journal` listing, notes, CSV export,
personal HTTP tokens) and missed-chat summaries, with real Synapse, Prosody, signed webhooks.

The config (scripts/lib.sh) has the missed-call users fritz (206, @calls-fritz) and gina (207,
calls-gina@localhost); their calls land in their journals, and a chat between them in both.
"""
from __future__ import annotations

import csv
import io
import json
import re
import urllib.request

import ucb
from ucb import Peers, hosted_alias, run, token, wait_for, xml_escape
from test_avatars import download
from test_commands import fixed_matrix_user, fixed_xmpp_user
from test_missed_calls import journal, missed_call, post_events, rnd_number, sink  # noqa: F401 (fixture)
from test_rooms import _bot, bot_dm, create_room, groupchat, invited_xmpp_joins, muc_of


def bot_after(m, dm: str, mark: int, pred) -> list[dict]:
    """The bot's messages in dm after the first `mark` that satisfy pred."""
    return [e for e in m.messages_in(dm, _bot())[mark:] if pred(e["content"])]


async def ask(m, dm: str, text: str, expect: str) -> dict:
    """m sends a command to the bot; the content of the first answer containing `expect`."""
    mark = len(m.messages_in(dm, _bot()))
    await m.send_text(dm, text)
    found = await m.sync_until(lambda: bot_after(m, dm, mark, lambda c: expect in c.get("body", "")),
                               30, f"{expect!r} for {text!r}")
    return found[-1]["content"]


async def ask_xmpp(x, text: str, expect: str) -> str:
    comp = ucb.settings().component
    mark = len(x.chats_from(comp))
    x.send_message(mto=comp, mbody=text, mtype="chat")
    found = await wait_for(lambda: [s for s in x.chats_from(comp)[mark:] if expect in s.body], 30,
                           what=f"{expect!r} for {text!r}")
    return found[-1].body


def tail(number: str) -> str:
    """The random part of rnd_number(): in the number however it is written."""
    return number[-7:]


def call_id_of(table: str, number: str) -> str:
    """The journal id (c12) of the row naming `number`."""
    for line in table.splitlines():
        if tail(number) in line:
            found = re.search(r"\|\s*(c\d+)\s*\|", line)
            assert found, line
            return found.group(1)
    raise AssertionError(f"no row with {number} in:\n{table}")


def http_calls(params: str, tok: str | None = None) -> dict[str, dict]:
    st, body = journal(params + "&format=json", tok)
    assert st == 200, body
    return {r["call_id"]: r for r in json.loads(body)["calls"]}


def test_journal_lists_notes_exports_and_reads_by_token_only_ones_own(bridge, sink):
    async def go():
        m = await fixed_matrix_user("calls-fritz")
        x = await fixed_xmpp_user("calls-gina")
        try:
            dm = await bot_dm(m)
            fritz_no, gina_no = rnd_number(), rnd_number()
            fritz_call, gina_call = "jf-" + token(6), "jg-" + token(6)
            assert post_events(missed_call(fritz_call, "206", fritz_no, name="Fritz Caller"))[0] == 200
            assert post_events(missed_call(gina_call, "207", gina_no, name="Gina Caller"))[0] == 200
            # Both calls handled (the admins' token reads everyone's journal).
            await wait_for(lambda: fritz_call in http_calls("user=fritz"), 30, what="fritz's call in the journal")
            await wait_for(lambda: gina_call in http_calls("user=gina"), 30, what="gina's call in the journal")
            # A chat between them lands in both journals.
            x.send_chat(m.jid, "journal hello " + token(3))

            async def chats_listed() -> dict:
                listing = await ask(m, dm, "journal chats", "Your journal (chats)")
                return listing if x.bare in listing["body"] else {}
            chats = {}
            for _ in range(20):
                chats = await chats_listed()
                if chats:
                    break
            assert chats, "gina's chat never showed in fritz's `journal chats`"
            assert tail(fritz_no) not in chats["body"], f"a call in `journal chats`:\n{chats['body']}"

            # fritz: an HTML table with his call, not gina's call.
            listing = await ask(m, dm, "journal", "Your journal (calls and chats)")
            body = listing["body"]
            assert tail(fritz_no) in body and "missed call" in body and x.bare in body, body
            assert tail(gina_no) not in body, f"gina's call in fritz's journal:\n{body}"
            assert "<table>" in listing.get("formatted_body", ""), listing
            # gina (positive control for the absence above): her listing has her call, not his.
            hers = await ask_xmpp(x, "journal", "Your journal (calls and chats)")
            assert tail(gina_no) in hers and "@calls-fritz" in hers, hers
            assert tail(fritz_no) not in hers, f"fritz's call in gina's journal:\n{hers}"

            # gina's export comes as a link the bridge serves (XMPP): her call, not his. The link is
            # fetched after the answer, which is sent once the command's transaction committed.
            comp = ucb.settings().component
            await ask_xmpp(x, "journal export", "Your journal export")
            [link, *_] = [s.body for s in x.chats_from(comp) if "/media/" in s.body]
            with urllib.request.urlopen(link.strip(), timeout=10) as r:
                exported = r.read().decode()
            assert exported.startswith("id,when,what,with,details,note"), exported
            assert tail(gina_no) in exported and tail(fritz_no) not in exported, exported

            # A note on fritz's call shows in his listing; gina cannot note his entries.
            cid = call_id_of(body, fritz_no)
            await ask(m, dm, f"journal note {cid} call back on Monday", f"noted on {cid}")
            refused = await ask_xmpp(x, f"journal note {cid} hijacked", "has no entry")
            assert cid in refused, refused
            noted = await ask(m, dm, "journal calls", "call back on Monday")
            assert "call back on Monday" in noted["body"] and "hijacked" not in noted["body"], noted["body"]

            # The export: a CSV file from the bot with the call and the note, not gina's call.
            mark = len(m.messages_in(dm, _bot()))
            await m.send_text(dm, "journal export")
            [file_ev, *_] = await m.sync_until(
                lambda: bot_after(m, dm, mark, lambda c: c.get("msgtype") == "m.file"), 30, "the CSV file")
            assert file_ev["content"]["body"] == "journal.csv", file_ev["content"]
            rows = list(csv.DictReader(io.StringIO((await download(m, file_ev["content"]["url"])).decode())))
            mine = [r for r in rows if r["id"] == cid]
            assert len(mine) == 1 and mine[0]["note"] == "call back on Monday", rows
            assert tail(fritz_no) in mine[0]["with"] and mine[0]["what"] == "missed call", mine
            assert [r for r in rows if x.bare in r["with"]], "the chat is not in the export"
            assert not [r for r in rows if tail(gina_no) in r["with"]], rows

            # A personal token reads only fritz's rows: 403 for gina's, 401 for a made-up token.
            answer = await ask(m, dm, "journal token new", "ucbj_")
            tok = re.search(r"ucbj_[0-9a-f]+", answer["body"]).group(0)
            own = http_calls("limit=10000", tok)
            assert fritz_call in own and {r["user"] for r in own.values()} == {"fritz"}, own.keys()
            assert gina_call not in own
            assert fritz_call in http_calls("user=fritz", tok)
            assert journal("user=gina&format=json", tok=tok)[0] == 403
            assert journal("format=json", tok="ucbj_" + "0" * 64)[0] == 401
            # The admins' token still reads gina's (the endpoint itself is not narrowed).
            assert gina_call in http_calls("user=gina")
            await ask(m, dm, "journal token revoke", "revoked")
            assert journal("format=json", tok=tok)[0] == 401
        finally:
            await x.close()
            await m.close()
    run(go(), timeout=240)


def test_a_missed_chat_summary_comes_once_after_the_threshold_and_not_when_read(bridge):
    def fast(cfg):
        cfg["missed_chats"] = {"enabled": True, "after_secs": 6, "sweep_secs": 1}

    with ucb.config_variant(bridge, "missed-chats", fast) as b:
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("mc")
                reader_dm = await bot_dm(m)
                await m.set_presence("unavailable")
                read_x, unread_x, late_x = await p.xmpp_user("mcr"), await p.xmpp_user("mcu"), await p.xmpp_user("mcl")

                def summaries(who: str) -> list[dict]:
                    return bot_after(m, reader_dm, 0, lambda c: "Missed chat" in c.get("body", "")
                                     and who in c.get("body", ""))

                # Read at once: no summary for this chat.
                room = await p.dm_from_xmpp(m, read_x)
                last = m.messages_in(room, read_x.ghost)[-1]
                await m.send_read_receipt(room, last["event_id"])
                # Left unread: one summary after the threshold, though the bridge restarts before it
                # (the unread state is stored, the sweep finds it).
                await p.dm_from_xmpp(m, unread_x)
                b.restart()
                [ev] = await m.sync_until(lambda: summaries(unread_x.bare), 40, "the summary of the unread chat")
                assert "still unread" in ev["content"]["body"], ev["content"]
                # Another unread message in the same chat: no second summary. Positive control: a
                # later chat's summary arrives, after the second message's threshold passed too.
                unread_x.send_chat(m.jid, "still there? " + token(3))
                await p.dm_from_xmpp(m, late_x)
                await m.sync_until(lambda: summaries(late_x.bare), 40, "the later chat's summary")
                assert len(summaries(unread_x.bare)) == 1, summaries(unread_x.bare)
                assert not summaries(read_x.bare), "a summary for a chat that was read"
                # The journal shows the unread chats as missed, the read one not.
                listing = await ask(m, reader_dm, "journal missed", "Your journal (missed calls and chats)")
                assert unread_x.bare in listing["body"] and late_x.bare in listing["body"], listing["body"]
                assert read_x.bare not in listing["body"], listing["body"]
        run(go(), timeout=240)


def test_a_group_journal_needs_membership_and_the_permission(bridge):
    from test_control import ask as admin_ask, control_room

    async def go():
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            lead, member = await p.matrix_user("gl"), await p.matrix_user("gm")
            x = await p.xmpp_user("gx")
            ctl = await control_room(admin)
            g = "jg" + token(3).lower()
            await admin_ask(admin, ctl, f"groups create {g}", "OK")
            await admin_ask(admin, ctl, f"groups add {g} {lead.user_id} {member.user_id}", "2 members")
            # The member's chat with x: an entry of the group's journal.
            await p.dm_from_xmpp(member, x)
            dm = await bot_dm(lead)
            refused = await ask(lead, dm, f"journal --group {g}", "may not read")
            assert "group-journal" in refused["body"], refused
            await admin_ask(admin, ctl, f"permissions grant {lead.user_id} group-journal", "may use group-journal")
            listing = await ask(lead, dm, f"journal chats --group {g}", f"The journal of group {g} (chats)")
            assert x.bare in listing["body"] and member.user_id in listing["body"], listing["body"]
            assert "| whose |" in listing["body"], listing["body"]
            # Someone with the permission but outside the group is refused too.
            await admin_ask(admin, ctl, f"permissions grant {x.bare} group-journal", "may use group-journal")
            comp = ucb.settings().component
            x.send_message(mto=comp, mbody=f"journal --group {g}", mtype="chat")
            await wait_for(lambda: [s for s in x.chats_from(comp) if "may not read" in s.body], 30,
                           what="the outsider's refusal")
            await admin_ask(admin, ctl, f"groups delete {g}", "deleted")
    run(go(), timeout=240)


async def read_row(m, dm: str, row_of) -> str:
    """m's `journal chats` row that `row_of(listing)` picks, asked for again until it is there
    and no longer unread (the receipt is handled apart from the answer); "" if it never is."""
    for _ in range(20):
        row = row_of((await ask(m, dm, "journal chats", "Your journal (chats)"))["body"])
        if row and "unread" not in row:
            return row
    return ""


def room_row(listing: str, alias: str) -> str:
    """The `journal chats` row of the hosted room `alias`, or "" when there is none."""
    return next((line for line in listing.splitlines() if hosted_alias(alias) in line), "")


def test_hosted_room_messages_count_for_the_other_participants_only(bridge):
    async def go():
        async with Peers() as p:
            m, outsider = await p.matrix_user("rjm"), await p.matrix_user("rjo")
            x = await p.xmpp_user("rjx")
            alias = "jr" + token(4).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "rjx")
            await m.wait_joined(room, x.ghost)
            # m writes twice, then x three times: m has three unread, x two (and answered them).
            for i in range(2):
                await m.send_text(room, f"from m {i}")
            await wait_for(lambda: len([b for n, b in groupchat(x, muc) if b.startswith("from m")]) == 2, 30,
                           what="m's messages in the MUC")
            for i in range(3):
                x.send_xml(f"<message type='groupchat' to='{xml_escape(muc)}'><body>from x {i}</body></message>")
            for i in range(3):
                last = await m.wait_message(room, x.ghost, f"from x {i}")
            dm = await bot_dm(m)
            mine = room_row((await ask(m, dm, "journal chats", "Your journal (chats)"))["body"], alias)
            assert "room chat" in mine and "3 message(s)" in mine and "unread" in mine, mine
            hers = room_row(await ask_xmpp(x, "journal chats", "Your journal (chats)"), alias)
            assert "room chat" in hers and "2 message(s)" in hers and "unread" not in hers, hers
            # m's read receipt in the room: nothing waits there for m any more.
            await m.send_read_receipt(room, last["event_id"])

            row = await read_row(m, dm, lambda listing: room_row(listing, alias))
            assert "3 message(s)" in row, row
            # Someone outside the room: their listing answers (positive control), without the room.
            odm = await bot_dm(outsider)
            theirs = (await ask(outsider, odm, "journal chats", "Your journal (chats)"))["body"]
            assert not room_row(theirs, alias), theirs
    run(go(), timeout=240)


def muc_row(listing: str, muc: str) -> str:
    """The `journal chats` row of the linked MUC `muc`, or "" when there is none."""
    return next((line for line in listing.splitlines() if f"room {muc}" in line), "")


def test_a_linked_muc_counts_for_its_matrix_users_until_read(bridge):
    from test_linked_content import linked, said_by_xena

    async def go():
        async with Peers() as p:
            x, m, muc, room = await linked(p, "ljr")
            await said_by_xena(x, m, muc, room, "lj1", "first " + token(3))
            _, last = await said_by_xena(x, m, muc, room, "lj2", "second " + token(3))
            dm = await bot_dm(m)
            row = muc_row((await ask(m, dm, "journal chats", "Your journal (chats)"))["body"], muc)
            assert "room chat" in row and "2 message(s)" in row and "unread" in row, row
            # The MUC's own occupant keeps no journal of it here (the answer is the positive control).
            theirs = await ask_xmpp(x, "journal chats", "Your journal (chats)")
            assert not muc_row(theirs, muc), theirs
            # m's read receipt in the linked room: nothing waits there any more.
            await m.send_read_receipt(room, last["event_id"])

            row = await read_row(m, dm, lambda listing: muc_row(listing, muc))
            assert "2 message(s)" in row, row
    run(go(), timeout=240)


def test_a_read_receipt_in_an_sms_chat_clears_it_and_no_summary_follows(bridge):
    from test_sms import SENDER, ghost as sms_ghost, grant, inject, rnd_mobile, sms_room, wait_sms

    def fast(cfg):
        cfg["missed_chats"] = {"enabled": True, "after_secs": 6, "sweep_secs": 1}

    with ucb.config_variant(bridge, "sms-read", fast):
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("srr")
                await grant(p, m.user_id)
                dm = await bot_dm(m)
                await m.set_presence("unavailable")
                read_no, unread_no = rnd_mobile(), rnd_mobile()
                rooms = {}
                # m writes to both numbers (so their answers reach m), and both answer.
                for number in (read_no, unread_no):
                    rooms[number] = await sms_room(m, number)
                    text = "hi " + token(3)
                    await m.send_text(rooms[number], text)
                    await wait_sms(number, text)
                answers = {}
                for number in (read_no, unread_no):
                    reply = "answer " + token(3)
                    inject(number, SENDER, reply)
                    answers[number] = await m.wait_message(rooms[number], sms_ghost(number), reply)
                # Read at once: a receipt on the answer in the SMS chat.
                await m.send_read_receipt(rooms[read_no], answers[read_no]["event_id"])

                def summaries(number: str) -> list[dict]:
                    return bot_after(m, dm, 0, lambda c: "Missed chat" in c.get("body", "")
                                     and tail(number) in c.get("body", ""))
                # The unread chat's summary comes (positive control: after the threshold of both).
                await m.sync_until(lambda: summaries(unread_no), 40, "the unread SMS chat's summary")
                listing = (await ask(m, dm, "journal chats", "Your journal (chats)"))["body"]
                rows = {n: next((line for line in listing.splitlines() if tail(n) in line), "") for n in rooms}
                assert "missed SMS chat" in rows[unread_no], listing
                assert rows[read_no] and "missed" not in rows[read_no] and "unread" not in rows[read_no], listing
                assert not summaries(read_no), "a summary for an SMS chat that was read"
        run(go(), timeout=240)
