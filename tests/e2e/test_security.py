"""The appservice API only answers the homeserver; bad stanzas get error replies, not silence."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from xml.sax.saxutils import escape, quoteattr

import pytest

from ucb import Peers, run, settings, token

ERROR_TEXT_WORDS = ("long", "large", "size", "limit", "bytes")


def _http(method: str, path: str, body: dict | None = None, headers: dict | None = None,
          query: dict | None = None) -> tuple[int, dict | None]:
    url = settings().bridge_url + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                         **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, {"_raw": raw[:200].decode("utf-8", "replace")}


def _endpoints():
    s = settings()
    q = urllib.parse.quote
    ghost = f"@_xmpp_nobody{token(2)}=40localhost:{s.matrix_domain}"
    return [
        ("PUT", f"/_matrix/app/v1/transactions/e2e-{token(4)}", {"events": []}),
        ("GET", f"/_matrix/app/v1/users/{q(ghost)}", None),
        ("GET", f"/_matrix/app/v1/rooms/{q('#_xmpp_nothing' + token(2) + ':' + s.matrix_domain)}", None),
        ("POST", "/_matrix/app/v1/ping", {"transaction_id": "e2e-" + token(4)}),
    ]


@pytest.mark.parametrize("which", range(4), ids=["transactions", "users", "rooms", "ping"])
def test_wrong_hs_token_is_forbidden(bridge, which):
    method, path, body = _endpoints()[which]
    status, j = _http(method, path, body, headers={"Authorization": "Bearer wrong-" + token(8)})
    assert status == 403, f"{method} {path} with a wrong token: {status} {j}"
    assert (j or {}).get("errcode") == "M_FORBIDDEN", j


@pytest.mark.parametrize("which", range(4), ids=["transactions", "users", "rooms", "ping"])
def test_missing_hs_token_is_unauthorized(bridge, which):
    method, path, body = _endpoints()[which]
    status, j = _http(method, path, body)
    assert status == 401, f"{method} {path} without a token: {status} {j}"
    assert (j or {}).get("errcode") == "M_UNAUTHORIZED", j


def test_wrong_legacy_query_token_is_forbidden(bridge):
    method, path, body = _endpoints()[0]
    status, j = _http(method, path, body, query={"access_token": "wrong-" + token(8)})
    assert status == 403, f"{status} {j}"
    assert (j or {}).get("errcode") == "M_FORBIDDEN", j


def test_right_token_accepted_in_header_and_legacy_query(bridge):
    s = settings()
    method, path, body = _endpoints()[0]
    status, j = _http(method, path, body, query={"access_token": s.hs_token})
    assert status == 200, f"?access_token=<hs_token>: {status} {j}"
    method, path, body = _endpoints()[0]
    status, j = _http(method, path, body, headers={"Authorization": f"Bearer {s.hs_token}"})
    assert status == 200, f"Authorization: Bearer <hs_token>: {status} {j}"


def test_replayed_transaction_is_accepted_and_processed_once(bridge):
    """The homeserver retries a transaction it got no answer for: the same txnId is 200 again, and
    the message event it carries is bridged once, not once per delivery."""
    s = settings()

    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            body = "replayed " + token(3)
            event = {"type": "m.room.message", "room_id": room_id, "sender": m.user_id,
                     "event_id": f"$e2e-replay-{token(8)}", "origin_server_ts": int(time.time() * 1000),
                     "content": {"msgtype": "m.text", "body": body}, "unsigned": {"age": 1}}
            path = f"/_matrix/app/v1/transactions/e2e-replay-{token(4)}"
            for attempt in range(3):
                status, j = await asyncio.to_thread(
                    _http, "PUT", path, {"events": [event]}, headers={"Authorization": f"Bearer {s.hs_token}"})
                assert status == 200, f"attempt {attempt + 1}: {status} {j}"
            await x.wait_chat(m.jid, body)
            # Positive control: a later message in the same chat, through Synapse; once it is here,
            # a second copy of the replayed one would be too (one lane per conversation, in order).
            later = "after the replay " + token(3)
            await m.send_text(room_id, later)
            await x.wait_chat(m.jid, later)
            copies = [c for c in x.chats_from(m.jid) if c.body == body]
            assert len(copies) == 1, f"the replayed transaction was bridged {len(copies)} times: " \
                                     f"{[c.xml for c in copies]}"
    run(go())


# ------------------------------------------------------------------ stanzas --
async def _still_serving(p: Peers, m, x, room_id: str) -> None:
    body = "still here " + token(3)
    x.send_chat(m.jid, body)
    await m.wait_message(room_id, x.ghost, body)


def test_oversized_message_rejected(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            limit = settings().max_message_bytes
            big = f"big {token(3)} " + "a" * (limit + 1000)
            sid = x.send_chat(m.jid, big)
            err = await x.wait_error(sid)
            assert err.error_condition in ("policy-violation", "not-acceptable"), err.xml
            assert err.error_text and any(w in err.error_text.lower() for w in ERROR_TEXT_WORDS), \
                f"error text should say the message is too long: {err.error_text!r}"
            await _still_serving(p, m, x, room_id)
            lengths = [len(e["content"].get("body", "")) for e in await m.room_messages(room_id, x.ghost)]
            assert max(lengths) <= limit, f"a {max(lengths)}-byte message was bridged anyway"
    run(go())


def test_message_to_malformed_jid_rejected(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            sid = "e2e-" + token(6)
            to = f"a\\zzb@{settings().component}"
            x.send_raw(f"<message type='chat' to={quoteattr(to)} id={quoteattr(sid)}>"
                       f"<body>to a malformed address</body></message>")
            err = await x.wait_error(sid)
            assert err.error_condition in ("jid-malformed", "item-not-found"), err.xml
            await _still_serving(p, m, x, room_id)
    run(go())


def test_unparseable_message_gets_bad_request(bridge):
    """Prosody (0.12) forwards <message type="bogus"> to the component as it is."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            sid = "e2e-" + token(6)
            bogus = "bogus " + token(3)
            x.send_raw(f"<message type='bogus' to={quoteattr(m.jid)} id={quoteattr(sid)}>"
                       f"<body>{escape(bogus)}</body></message>")
            err = await x.wait_error(sid)
            assert err.error_condition == "bad-request", err.xml
            await _still_serving(p, m, x, room_id)
            bodies = [e["content"].get("body") for e in await m.room_messages(room_id, x.ghost)]
            assert bogus not in bodies, "the unparseable message was bridged"
    run(go())
