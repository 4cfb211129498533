"""Issue 16, item 5: people's notification choices (`notifications`), end to end.

- `notifications` shows the defaults for each kind;
- the missed-call line owner ivo (scripts/lib.sh: extension 231, @calls-ivo, no e-mail address in the
  config, so chat notices) chooses e-mail with his own address: the next missed call arrives as a
  mail in the real SMTP sink and not in his chat; back on chat, the chat notice returns;
- an XMPP watcher who turned status changes off (through the XEP-0050 form) gets no watch notice,
  while another watcher of the same contact does;
- a channel the admins do not allow, a bad e-mail address, SMS without the permission and an unknown
  channel get a clear answer and change nothing.
"""
from __future__ import annotations

from ucb import Peers, run, token, wait_for
from test_commands import adhoc, fixed_matrix_user, note
from test_missed_calls import message_id, missed_call, post_events, rnd_number, sink  # noqa: F401
from test_notify import _ask_component, _from_bridge, _seen_on_xmpp, dm_from_xmpp_known
from test_rooms import _bot, bot_dm, bot_says


async def _ask_bot(m, dm: str, command: str, expect: str) -> str:
    """Send a command to the bot and return its (new) answer containing `expect`."""
    before = len(bot_says(m, dm, expect))
    await m.send_text(dm, command)
    evs = await m.sync_until(lambda: bot_says(m, dm, expect)[before:], 30, f"the answer to {command!r}")
    return evs[-1]["content"]["body"]


def test_defaults_and_missed_calls_by_email_instead_of_chat(bridge, sink):
    async def go():
        m = await fixed_matrix_user("calls-ivo")
        try:
            dm = await bot_dm(m)
            shown = await _ask_bot(m, dm, "notifications", "Your notifications")
            for kind in ("missed-calls", "missed-chats", "pickup", "status-changes"):
                assert f"- {kind}: on " in shown and "(default;" in shown, shown
            assert "- status-changes: on by chat (default; may choose: chat)" in shown, shown

            def chat_notice(number):
                return [e for e in m.messages_in(dm, _bot()) if number in e["content"].get("body", "")]

            # By default (no address in the config) the notice comes by chat.
            first = rnd_number()
            assert post_events(missed_call("nc1-" + token(6), "231", first))[0] == 200
            await m.sync_until(lambda: chat_notice(first), 30, "the default chat notice")

            ok = await _ask_bot(m, dm, "notifications missed-calls on --via email --to ivo@calls.test", "OK")
            assert "by email to ivo@calls.test" in ok, ok
            shown = await _ask_bot(m, dm, "notifications", "Your notifications")
            assert "- missed-calls: on by email to ivo@calls.test (your choice;" in shown, shown

            mailed, call = rnd_number(), "nc2-" + token(6)
            assert post_events(missed_call(call, "231", mailed))[0] == 200
            await wait_for(lambda: sink.by_id(message_id(call, "ivo")), 30, what="the e-mail notice")
            [mail] = sink.by_id(message_id(call, "ivo"))
            assert "ivo@calls.test" in mail["To"] and "ivo@calls.test" in mail["X-Envelope-To"], mail["To"]

            # Back to the chat: its notice arrives, in the same chat after the mailed call's would
            # have (one ordered lane), so the mailed call's absence there is real.
            await _ask_bot(m, dm, "notifications missed-calls on --via chat", "by chat")
            last, call3 = rnd_number(), "nc3-" + token(6)
            assert post_events(missed_call(call3, "231", last))[0] == 200
            await m.sync_until(lambda: chat_notice(last), 30, "the chat notice after switching back")
            assert not chat_notice(mailed), "the call chosen for e-mail was also told in the chat"
            assert not sink.by_id(message_id(call3, "ivo")), "a mail although the chat was chosen"

            # Mistakes: each answered with what is wrong; nothing changes.
            err = await _ask_bot(m, dm, "notifications status-changes on --via email", "Not changed")
            assert "do not come by email" in err and "may choose: chat" in err, err
            err = await _ask_bot(m, dm, "notifications missed-calls on --via email", "Not changed")
            assert "no email address of yours" in err and "--to" in err, err
            err = await _ask_bot(m, dm, "notifications missed-calls on --via email --to ivo-at-calls", "Not changed")
            assert "'ivo-at-calls' is not an e-mail address" in err, err
            err = await _ask_bot(m, dm, "notifications missed-calls on --via sms --to +491765550231", "Not changed")
            assert "sms permission" in err, err
            err = await _ask_bot(m, dm, "notifications missed-calls on --via fax", "'fax'")
            assert "chat, email, sms" in err, err
            shown = await _ask_bot(m, dm, "notifications", "Your notifications")
            assert "- missed-calls: on by chat (your choice;" in shown, shown
        finally:
            await m.close()
    run(go(), timeout=240)


def test_status_changes_off_silences_watch_notices(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            quiet = await p.xmpp_user()
            told = await p.xmpp_user()
            for x in (quiet, told):
                await dm_from_xmpp_known(p, m, x)   # a conversation: consent to watch m
            await told.subscribe(m.jid, mutual=False)

            # The XEP-0050 form of `notifications`.
            kind, res = await adhoc(quiet, "notifications", {"kind": "status-changes", "switch": "off"})
            assert kind == "result" and "status-changes notices are off" in note(res), note(res)
            kind, res = await adhoc(quiet, "notifications", {})
            assert kind == "result" and "- status-changes: off by chat (your choice;" in note(res), note(res)

            for x in (quiet, told):
                await _ask_component(x, f"notify add {m.user_id}", "OK")
            mark = len(told.presences)
            await m.set_presence("unavailable", "away " + token(2))
            await _seen_on_xmpp(told, m, mark, "away")
            await m.set_presence("online")
            await wait_for(lambda: _from_bridge(told, f"{m.user_id} is available again"), 30,
                           what="the watch notice to the watcher with status changes on")
            # quiet's answers come on the same ordered lane as a watch notice to quiet would, after it.
            await _ask_component(quiet, "notifications", "Your notifications")
            assert not _from_bridge(quiet, "is available again"), "a watch notice although status changes are off"
    run(go(), timeout=240)


def test_sms_notices_stop_when_the_sms_permission_is_revoked(bridge):
    """vera (scripts/lib.sh: extension 241, @calls-vera, no address in the config) chooses SMS for
    missed calls; once an admin revokes her sms permission, the notice comes in her chat and says so."""
    from test_control import ask as admin_ask, control_room
    from test_sms import rnd_mobile, sms_to

    async def go():
        m = await fixed_matrix_user("calls-vera")
        try:
            async with Peers() as p:
                admin = await p.matrix_user("admin")
                ctl = await control_room(admin)
                await admin_ask(admin, ctl, f"permissions grant {m.user_id} sms", "OK")
                dm = await bot_dm(m)
                mobile = rnd_mobile()
                ok = await _ask_bot(m, dm, f"notifications missed-calls on --via sms --to {mobile}", "OK")
                assert f"by sms to {mobile}" in ok, ok

                def sms_about(number: str) -> list:
                    digits = number.replace(" ", "")[-7:]
                    return [s for s in sms_to(mobile) if digits in s[0] + s[2]]

                def chat_notice(number: str) -> list[dict]:
                    return [e for e in m.messages_in(dm, _bot()) if number in e["content"].get("body", "")]

                # Permitted: the notice comes by SMS.
                first = rnd_number()
                assert post_events(missed_call("vs1-" + token(6), "241", first))[0] == 200
                await wait_for(lambda: sms_about(first), 30, what="the SMS notice while permitted")

                # Revoked: the notice comes in the chat, saying why, and no SMS goes out.
                await admin_ask(admin, ctl, f"permissions revoke {m.user_id} sms", "OK")
                second = rnd_number()
                assert post_events(missed_call("vs2-" + token(6), "241", second))[0] == 200
                [ev] = await m.sync_until(lambda: chat_notice(second), 30, "the chat notice instead of the SMS")
                assert "SMS is not allowed for you now" in ev["content"]["body"], ev["content"]

                # Granted again: SMS again. Notices go to the SMSC in order, so the second call's
                # SMS, had it been sent, would have arrived before this one.
                await admin_ask(admin, ctl, f"permissions grant {m.user_id} sms", "OK")
                third = rnd_number()
                assert post_events(missed_call("vs3-" + token(6), "241", third))[0] == 200
                await wait_for(lambda: sms_about(third), 30, what="the SMS notice once permitted again")
                assert not sms_about(second), "an SMS notice although the sms permission was revoked"
                assert not chat_notice(third) and not chat_notice(first), "a chat notice besides the SMS"
        finally:
            await m.close()
    run(go(), timeout=240)
