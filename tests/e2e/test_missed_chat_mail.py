"""Issue 16, item 4: missed-chat summaries by e-mail, end to end (real Synapse, Prosody, SMTP sink).

A Matrix user who chose `notifications missed-chats on --via email --to ADDRESS` and left an XMPP
contact's message unread while away gets the summary as a mail in the sink, and no summary in
their chat with the bot.
"""
from __future__ import annotations

import ucb
from ucb import Peers, run, token, wait_for
from test_journal import ask, bot_after
from test_missed_calls import parts, sink  # noqa: F401 (fixture)
from test_rooms import bot_dm


def test_a_missed_chat_summary_comes_by_email_when_chosen_and_not_in_the_chat(bridge, sink):
    def fast(cfg):
        cfg["missed_chats"] = {"enabled": True, "after_secs": 4, "sweep_secs": 1}

    with ucb.config_variant(bridge, "missed-chat-mail", fast):
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("mcm")
                dm = await bot_dm(m)
                address = f"mcm-{token(6).lower()}@calls.test"
                ok = await ask(m, dm, f"notifications missed-chats on --via email --to {address}", "OK")
                assert f"by email to {address}" in ok["body"], ok
                await m.set_presence("unavailable")
                writer = await p.xmpp_user("mcw")
                await p.dm_from_xmpp(m, writer)

                await wait_for(lambda: sink.to(address), 40, what="the missed-chat e-mail")
                [mail] = sink.to(address)
                assert mail["Message-ID"].startswith("<missed-chat."), mail["Message-ID"]
                assert writer.bare in mail["Subject"] and "Unread chat" in mail["Subject"], mail["Subject"]
                body = parts(mail)["text/plain"]
                assert writer.bare in body and "still unread" in body, body
                # No summary in the chat: the bot answers a later command there, so anything it
                # had posted before would be in the synced history by then.
                await ask(m, dm, "notifications", "Your notifications")
                assert not bot_after(m, dm, 0, lambda c: "Missed chat" in c.get("body", "")), \
                    "a chat summary although e-mail was chosen"
                assert len(sink.to(address)) == 1, [x["Message-ID"] for x in sink.to(address)]
        run(go(), timeout=240)


def test_the_template_directory_replaces_the_missed_chat_mail_too(bridge, sink, tmp_path):
    """`missed_calls.mail.templates_dir` with an `en/` that has the missed-chat files as well: the
    summary mail is written from them (the missed-call files are the shipped ones, copied; `de/`
    has no missed-chat files and keeps the built-in ones)."""
    import os
    import shutil
    marker = "custom-" + token(6).lower()
    for lang in ("en", "de"):
        (tmp_path / lang).mkdir()
        for name in ("subject.txt.j2", "missed_call.txt.j2", "missed_call.html.j2"):
            shutil.copy(os.path.join(ucb.ROOT, "templates", lang, name), tmp_path / lang / name)
    en = tmp_path / "en"
    (en / "missed_chat_subject.txt.j2").write_text(f"[{marker}] {{{{ from }}}} is waiting\n")
    (en / "missed_chat.txt.j2").write_text(f"{marker}: {{{{ messages }}}} from {{{{ from }}}} since {{{{ unread_time }}}}\n")

    def custom(cfg):
        cfg["missed_chats"] = {"enabled": True, "after_secs": 4, "sweep_secs": 1}
        cfg["missed_calls"]["mail"]["templates_dir"] = str(tmp_path)

    with ucb.config_variant(bridge, "missed-chat-templates", custom):
        async def go():
            async with Peers() as p:
                m = await p.matrix_user("mct")
                dm = await bot_dm(m)
                address = f"mct-{token(6).lower()}@calls.test"
                await ask(m, dm, f"notifications missed-chats on --via email --to {address}", "OK")
                await m.set_presence("unavailable")
                writer = await p.xmpp_user("mctw")
                await p.dm_from_xmpp(m, writer)
                await wait_for(lambda: sink.to(address), 40, what="the missed-chat e-mail")
                [mail] = sink.to(address)
                assert f"[{marker}] {writer.bare} is waiting" in mail["Subject"], mail["Subject"]
                body = parts(mail)["text/plain"]
                assert body.startswith(f"{marker}: 1 from {writer.bare} since "), body
                assert "still unread" not in body, body
        run(go(), timeout=240)
