"""The chatbot (issue 15): an AI assistant people chat with one to one, from Element (a DM with
@assistant) and from an XMPP client (messages to assistant@<component>), answered through an
OpenAI-compatible provider — here a stand-in that speaks the documented wire format and records
what it was sent (openai_standin.py)."""
from __future__ import annotations

import os
import re
import urllib.parse

import pytest

from openai_standin import ANSWER_PREFIX, PNG, StandIn
from test_control import ask, control_room
from ucb import CHATSTATES_NS, Peers, config_variant, run, settings, token, wait_for

SYSTEM = {"role": "system", "content": "You are the e2e assistant."}
REFUSAL = "may not use the AI assistant"


def assistant() -> str:
    s = settings()
    return f"@{s.config['chatbot']['localpart']}:{s.matrix_domain}"


def assistant_jid() -> str:
    s = settings()
    return f"{s.config['chatbot']['localpart']}@{s.component}"


def api_key() -> str:
    s = settings()
    path = os.path.join(os.path.dirname(s.config_path), s.config["chatbot"]["api_key_file"])
    with open(path) as f:
        return f.readline().strip()


@pytest.fixture(scope="module")
def provider():
    base = settings().config["chatbot"]["openai"]["base_url"]
    p = StandIn(urllib.parse.urlsplit(base).port, api_key()).start()
    yield p
    p.stop()


async def grant(p: Peers, *who: str) -> None:
    """An admin allows each of `who` to use the chatbot (permissions grant, in the control room)."""
    admin = await p.matrix_user("admin")
    room = await control_room(admin)
    for w in who:
        await ask(admin, room, f"permissions grant {w} chatbot", "OK")


async def assistant_dm(m) -> str:
    """m invites the assistant to a DM (as Element does); returns the room once it joined."""
    room = await m.create_dm(assistant())
    await m.wait_joined(room, assistant())
    return room


def said(m, room: str, text: str) -> list[dict]:
    return [e for e in m.messages_in(room, assistant()) if text in e["content"].get("body", "")]


def xmpp_said(x, text: str) -> list:
    return [c for c in x.chats_from(assistant_jid()) if text in (c.body or "")]


async def ask_matrix(m, room: str, question: str) -> None:
    await m.send_text(room, question)
    await m.wait_message(room, assistant(), ANSWER_PREFIX + question)


async def ask_xmpp(x, question: str) -> None:
    x.send_chat(assistant_jid(), question)
    await x.wait_chat(assistant_jid(), ANSWER_PREFIX + question)


def test_two_peoples_contexts_stay_apart_and_clear_forgets_one(bridge, provider):
    async def go():
        async with Peers() as p:
            anna = await p.matrix_user("cba")
            xena = await p.xmpp_user("cbx")
            await grant(p, anna.user_id, xena.bare)
            room = await assistant_dm(anna)
            await anna.sync_until(lambda: said(anna, room, "Ask me anything"), 30, "the assistant's welcome")
            a1 = f"Please answer in German from now on {token()}"
            await ask_matrix(anna, room, a1)
            [first] = provider.asked(a1)
            assert first.body["model"] == "e2e-model", first.body
            assert first.messages == [SYSTEM, {"role": "user", "content": a1}], first.messages
            # Xena's first question holds nothing of Anna's conversation.
            x1 = f"What is XMPP {token()}"
            await ask_xmpp(xena, x1)
            [rx] = provider.asked(x1)
            assert rx.messages == [SYSTEM, {"role": "user", "content": x1}], rx.messages
            # Anna's second question carries her first turn and its answer, nothing of Xena's.
            a2 = f"And what is Matrix {token()}"
            await ask_matrix(anna, room, a2)
            [r2] = provider.asked(a2)
            assert r2.contents() == [SYSTEM["content"], a1, ANSWER_PREFIX + a1, a2], r2.contents()
            # /clear forgets Anna's conversation and says so; her next question starts afresh.
            await anna.send_text(room, "/clear")
            await anna.sync_until(lambda: said(anna, room, "forgotten our conversation"), 30, "the /clear answer")
            a3 = f"Fresh start {token()}"
            await ask_matrix(anna, room, a3)
            [r3] = provider.asked(a3)
            assert r3.contents() == [SYSTEM["content"], a3], r3.contents()
            # What it cannot read is not passed over in silence.
            await anna.send_raw(room, "m.room.message", {"msgtype": "m.file", "body": "notes.pdf",
                                                         "url": "mxc://localhost/none"})
            await anna.sync_until(lambda: said(anna, room, "only plain text"), 30, "the notice about the file")
            # Xena's context is untouched by Anna's /clear.
            x2 = f"Tell me more {token()}"
            await ask_xmpp(xena, x2)
            [rx2] = provider.asked(x2)
            assert rx2.contents() == [SYSTEM["content"], x1, ANSWER_PREFIX + x1, x2], rx2.contents()
            # "/clear" from XMPP works the same way.
            xena.send_chat(assistant_jid(), "/clear")
            await wait_for(lambda: xmpp_said(xena, "forgotten our conversation"), 30, what="the XMPP /clear answer")
            x3 = f"Again {token()}"
            await ask_xmpp(xena, x3)
            assert provider.asked(x3)[0].contents() == [SYSTEM["content"], x3]
    run(go(), timeout=180)


def test_a_context_survives_a_restart(bridge, provider):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbr")
            await grant(p, m.user_id)
            room = await assistant_dm(m)
            q1 = f"Remember the number 42 {token()}"
            await ask_matrix(m, room, q1)
            bridge.restart()
            q2 = f"Which number {token()}"
            await ask_matrix(m, room, q2)
            [r2] = provider.asked(q2)
            assert r2.contents() == [SYSTEM["content"], q1, ANSWER_PREFIX + q1, q2], r2.contents()
    run(go(), timeout=180)


def test_someone_without_the_permission_is_refused_and_nothing_is_sent(bridge, provider):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbn")
            x = await p.xmpp_user("cbn")
            room = await assistant_dm(m)
            # The welcome already says it; each message is refused the same way.
            await m.sync_until(lambda: said(m, room, REFUSAL), 30, "the refusal as welcome")
            qm = f"Secret plans {token()}"
            await m.send_text(room, qm)
            await m.sync_until(lambda: len(said(m, room, REFUSAL)) >= 2, 30, "the refusal of the message")
            qx = f"More secret plans {token()}"
            x.send_chat(assistant_jid(), qx)
            await wait_for(lambda: xmpp_said(x, REFUSAL), 30, what="the XMPP refusal")
            # The refusals were sent by the deliveries that would have asked: nothing was asked.
            assert not provider.asked(qm) and not provider.asked(qx)
            # Once granted, the same person gets answers (the refusal was the permission's).
            await grant(p, x.bare)
            q = f"Now allowed {token()}"
            await ask_xmpp(x, q)
    run(go(), timeout=180)


def test_a_429_is_retried_after_retry_after_and_then_answered(bridge, provider):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbl")
            await grant(p, x.bare)
            offset = bridge.log_size()
            provider.fail_next(429, "rate_limit_exceeded", "Rate limit reached for requests", {"Retry-After": "1"})
            q = f"Busy now {token()}"
            await ask_xmpp(x, q)
            tries = provider.asked(q)
            assert [t.status for t in tries] == [429, 200], [(t.status, t.path) for t in tries]
            assert tries[0].body == tries[1].body
            assert bridge.log_lines(offset, "provider failed; asking again", "429")
            # It showed as composing while it waited.
            assert x.messages_with(assistant_jid(), CHATSTATES_NS, "composing")
    run(go(), timeout=120)


def test_a_failing_provider_gives_a_short_friendly_error_and_the_presence_away(bridge, provider):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbf")
            await grant(p, m.user_id)
            room = await assistant_dm(m)
            warm = f"Warm up {token()}"
            await ask_matrix(m, room, warm)
            await m.wait_presence(assistant(), "online", None)
            for _ in range(3):   # chatbot.max_attempts
                provider.fail_next(503, "server_error", "The server is overloaded")
            q = f"Are you there {token()}"
            await m.send_text(room, q)
            await m.sync_until(lambda: said(m, room, "AI service has a problem right now"), 60, "the friendly error")
            assert [t.status for t in provider.asked(q)] == [503, 503, 503]
            # Its presence says so, until it answers again.
            await m.wait_presence(assistant(), "unavailable", "The AI service is not reachable")
            # The failed question is not part of the context.
            q2 = f"Now? {token()}"
            await ask_matrix(m, room, q2)
            assert provider.asked(q2)[0].contents() == [SYSTEM["content"], warm, ANSWER_PREFIX + warm, q2]
            await m.wait_presence(assistant(), "online", None)
    run(go(), timeout=120)


def test_azure_openai_is_asked_in_its_own_url_and_header_form(bridge, provider):
    def azure(cfg: dict) -> None:
        c = cfg["chatbot"]
        base = c.pop("openai")["base_url"]
        c["provider"] = "azure"
        c["azure"] = {"endpoint": base.removesuffix("/v1"), "deployment": "e2e-deploy", "api_version": "2024-10-21"}
        c["image_deployment"] = "e2e-dalle"   # images need their own deployment on Azure

    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbz")
            await grant(p, x.bare)
            q = f"Via Azure {token()}"
            await ask_xmpp(x, q)
            [r] = provider.asked(q)
            assert r.path == "/openai/deployments/e2e-deploy/chat/completions?api-version=2024-10-21", r.path
            assert r.headers.get("api-key") == api_key() and "authorization" not in r.headers, r.headers
            assert r.body == {"messages": [SYSTEM, {"role": "user", "content": q}]}, r.body
            # An image goes to the image deployment, in the same form.
            m = await p.matrix_user("cbzi")
            await grant(p, m.user_id)
            room = await assistant_dm(m)
            prompt = f"a lighthouse {token()}"
            await m.send_text(room, f"draw {prompt}")
            await m.sync_until(lambda: [e for e in m.messages_in(room, assistant())
                                        if e["content"].get("msgtype") == "m.image"], 60, "the Azure image")
            [ri] = provider.images(prompt)
            assert ri.path == "/openai/deployments/e2e-dalle/images/generations?api-version=2024-10-21", ri.path
            assert ri.headers.get("api-key") == api_key() and "model" not in ri.body, (ri.headers, ri.body)
    with config_variant(bridge, "chatbot-azure", azure):
        run(go(), timeout=120)


def test_the_key_goes_to_the_provider_and_never_into_the_log(bridge, provider):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbk")
            await grant(p, x.bare)
            q = f"Key check {token()}"
            await ask_xmpp(x, q)
    run(go(), timeout=120)
    key = api_key()
    # Positive control: the key was sent, in the header the API documents.
    assert provider.requests and all(r.headers.get("authorization") == f"Bearer {key}"
                                     for r in provider.requests if r.status == 200 and r.path.startswith("/v1/"))
    log = bridge.log_since(0)
    assert "chatbot: answered" in log
    assert key not in log


async def shared_room(owner, *others) -> str:
    """owner makes a room (not a direct chat) with `others` and the assistant in it."""
    r = await owner.c.room_create(invite=[o.user_id for o in others] + [assistant()])
    room = r.room_id
    for o in others:
        await o.join(room)
    await owner.wait_joined(room, assistant())
    return room


def replies_to(m, room: str, event_id: str) -> list[dict]:
    return [e for e in m.messages_in(room, assistant())
            if e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id]


def test_in_a_room_it_answers_only_when_addressed_with_one_context_for_the_room(bridge, provider):
    async def go():
        async with Peers() as p:
            anna = await p.matrix_user("cbra")
            carl = await p.matrix_user("cbrc")
            nick = await p.matrix_user("cbrn")   # without the permission
            await grant(p, anna.user_id, carl.user_id)
            room = await shared_room(anna, carl, nick)
            await anna.sync_until(lambda: said(anna, room, "start with or mention"), 30, "the room welcome")
            # Talk not addressed to it stays in the room; the addressed question after it, from
            # the same person (their questions are handled in order), is the positive control.
            chat = f"Lunch at noon {token()}"
            await anna.send_text(room, chat)
            q1 = f"what is XMPP {token()}"
            e1 = await anna.send_text(room, f"Assistant: {q1}")
            await anna.wait_message(room, assistant(), ANSWER_PREFIX + q1)
            assert replies_to(anna, room, e1), "the answer is a reply to the question"
            assert not any(chat in c for r in provider.all_requests() for c in r.contents())
            [r1] = provider.asked(q1)
            assert r1.messages == [SYSTEM, {"role": "user", "content": q1}], r1.messages
            # Carl's question carries the room's conversation: the context is the room's.
            q2 = f"and how does the assistant compare it to Matrix {token()}"
            await carl.send_text(room, q2)
            await carl.wait_message(room, assistant(), ANSWER_PREFIX + q2)
            [r2] = provider.asked(q2)
            assert r2.contents() == [SYSTEM["content"], q1, ANSWER_PREFIX + q1, q2], r2.contents()
            # A mention (a pill: m.mentions) counts, whatever the text.
            q3 = f"Summarise please {token()}"
            await carl.send_raw(room, "m.room.message", {"msgtype": "m.text", "body": q3,
                                                         "m.mentions": {"user_ids": [assistant()]}})
            await carl.wait_message(room, assistant(), ANSWER_PREFIX + q3)
            # Someone without the permission is refused, in a reply, and nothing is asked.
            qn = f"Secret {token()}"
            en = await nick.send_text(room, f"assistant, {qn}")
            await nick.sync_until(lambda: [e for e in replies_to(nick, room, en)
                                           if REFUSAL in e["content"].get("body", "")], 30, "the refusal")
            assert not provider.asked(qn)
            # /clear clears the room's context, for everyone in it.
            await anna.send_text(room, "/clear")
            await anna.sync_until(lambda: said(anna, room, "forgotten this room's conversation"), 30, "the clear")
            q4 = f"fresh start {token()}"
            await carl.send_text(room, f"Assistant {q4}")
            await carl.wait_message(room, assistant(), ANSWER_PREFIX + q4)
            assert provider.asked(q4)[0].contents() == [SYSTEM["content"], q4]
            # A moderator removes it: it is gone, and the room is forgotten.
            status, j = await anna.request("POST", f"/rooms/{urllib.parse.quote(room)}/kick",
                                           {"user_id": assistant(), "reason": "enough"})
            assert status == 200, j
            await wait_for(lambda: bridge.log_lines(0, "chatbot: removed from a room", room), 30,
                           what="the removal noted")
    run(go(), timeout=240)


def test_an_image_keyword_posts_an_image_made_without_the_context(bridge, provider):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("cbi")
            await grant(p, m.user_id)
            room = await assistant_dm(m)
            q1 = f"Remember my cat is called Tom {token()}"
            await ask_matrix(m, room, q1)
            prompt = f"a red fox in the snow {token()}"
            await m.send_text(room, f"Paint {prompt}")
            image = await m.sync_until(lambda: [e for e in m.messages_in(room, assistant())
                                                if e["content"].get("msgtype") == "m.image"], 60, "the image")
            await m.wait_message(room, assistant(), prompt)   # the caption
            [r] = provider.images(prompt)
            # Only the prompt went: nothing of the conversation, not the keyword.
            assert r.path == "/v1/images/generations", r.path
            assert r.body["prompt"] == prompt and "messages" not in r.body, r.body
            assert r.body["model"] == "dall-e-3" and r.body["response_format"] == "b64_json", r.body
            assert not provider.asked(prompt), "an image request is not a question"
            info = image[0]["content"]
            assert info["info"]["mimetype"] == "image/png" and info["url"].startswith("mxc://"), info
            # The image is the stand-in's PNG, as uploaded to the homeserver.
            server, media = info["url"].removeprefix("mxc://").split("/", 1)
            async with m.http.get(settings().hs_url + f"/_matrix/client/v1/media/download/{server}/{media}",
                                  headers=m.auth) as resp:
                assert resp.status == 200 and (await resp.read()) == PNG
            # A server answering with a URL instead: the bridge fetches the image.
            provider.images_as_url = True
            try:
                prompt2 = f"a blue whale {token()}"
                await m.send_text(room, f"draw {prompt2}")
                await m.sync_until(lambda: len([e for e in m.messages_in(room, assistant())
                                                if e["content"].get("msgtype") == "m.image"]) >= 2, 60, "image 2")
            finally:
                provider.images_as_url = False
            # The conversation is unchanged by the images: the next question carries only q1.
            q2 = f"What is my cat called {token()}"
            await ask_matrix(m, room, q2)
            assert provider.asked(q2)[0].contents() == [SYSTEM["content"], q1, ANSWER_PREFIX + q1, q2]
    run(go(), timeout=180)


def test_group_permission_rate_limit_and_budgets_refuse_with_a_reason(bridge, provider):
    group = f"ai-{token()}"

    async def before() -> int:
        """Today's tokens so far (earlier tests used some), from the admins' usage command."""
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            room = await control_room(admin)
            body = await ask(admin, room, "chatbot usage", "")
            m = re.search(r"Together: (\d+) tokens", body)
            return int(m.group(1)) if m else 0

    used = run(before(), timeout=60)
    total = used + 1500

    def limits(cfg: dict) -> None:
        cfg["chatbot"]["groups"] = [group]
        cfg["chatbot"]["limits"] = {"messages_per_minute": 2, "daily_tokens_per_user": 300,
                                    "daily_tokens_total": total}

    async def go(b):
        async with Peers() as p:
            admin = await p.matrix_user("admin")
            ctl = await control_room(admin)
            big = await p.xmpp_user("cbub")       # uses up their own budget
            fast = await p.xmpp_user("cbuf")      # writes too fast
            member = await p.xmpp_user("cbug")    # allowed as a member of the group
            late = await p.xmpp_user("cbul")      # comes after everyone's budget is gone
            await grant(p, big.bare, fast.bare, late.bare)
            # The group's member, before being added: refused (the control); then answered.
            q0 = f"Before the group {token()}"
            member.send_chat(assistant_jid(), q0)
            await wait_for(lambda: xmpp_said(member, REFUSAL), 30, what="the refusal before the group")
            await ask(admin, ctl, f"groups create {group}", "OK")
            await ask(admin, ctl, f"groups add {group} {member.bare}", "OK")
            # One long question takes more than the 300 tokens a person has a day.
            qb = f"Long question {token()} " + "lorem ipsum " * 110
            await ask_xmpp(big, qb.strip())
            qb2 = f"And another {token()}"
            big.send_chat(assistant_jid(), qb2)
            await wait_for(lambda: xmpp_said(big, "your daily budget of 300 tokens"), 30, what="the user budget")
            assert not provider.asked(qb2)
            # Two a minute: the third is refused, saying so.
            await ask_xmpp(fast, f"One {token()}")
            await ask_xmpp(fast, f"Two {token()}")
            q3 = f"Three {token()}"
            fast.send_chat(assistant_jid(), q3)
            await wait_for(lambda: xmpp_said(fast, "at most 2 a minute"), 30, what="the rate limit")
            assert not provider.asked(q3)
            # The group's member asks a long question that uses up what is left for everyone.
            qm = f"Group question {token()} " + "dolor sit amet " * 100
            await ask_xmpp(member, qm.strip())
            ql = f"Anything left {token()}"
            late.send_chat(assistant_jid(), ql)
            await wait_for(lambda: xmpp_said(late, f"daily budget of {total} tokens for everyone"), 30,
                           what="the budget for everyone")
            assert not provider.asked(ql)
            # The admins see the use per person: messages, tokens, images.
            text = await ask(admin, ctl, "chatbot usage", "AI assistant use today")
            for who, messages in ((big.bare, 1), (fast.bare, 2), (member.bare, 1)):
                line = next((ln for ln in text.splitlines() if who in ln), "")
                assert f"{messages} messages" in line and "0 images" in line, (who, text)
            assert late.bare not in text, text
    with config_variant(bridge, "chatbot-limits", limits) as b:
        run(go(b), timeout=240)


def test_an_admin_clears_every_context(bridge, provider):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("cbca")
            await grant(p, x.bare)
            q1 = f"Remember this {token()}"
            await ask_xmpp(x, q1)
            admin = await p.matrix_user("admin")
            ctl = await control_room(admin)
            await ask(admin, ctl, "chatbot clear-all", "every conversation with the AI assistant is forgotten")
            q2 = f"What did I say {token()}"
            await ask_xmpp(x, q2)
            assert provider.asked(q2)[0].contents() == [SYSTEM["content"], q2]
    run(go(), timeout=120)
