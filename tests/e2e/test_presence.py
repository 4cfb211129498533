"""Presence across the bridge, both ways, in the six states of the suite.

| suite state    | Matrix presence | Matrix status_msg  | XMPP <show/>        | XMPP <status/> |
|----------------|-----------------|--------------------|---------------------|----------------|
| available      | online          | note               | none (or chat)      | note           |
| away           | unavailable     | note               | away                | note           |
| inactive       | unavailable     | "💤 " + note ("💤") | xa                  | note           |
| busy           | online          | "📞 " + note        | dnd                 | "📞 " + note    |
| do not disturb | unavailable     | "⛔ " + note        | dnd                 | note           |
| offline        | offline         | note               | (type unavailable)  | note           |

XMPP -> Matrix needs the XMPP user's presence to reach the bridge: she subscribes to the Matrix
user's address, the bridge answers 'subscribed' and subscribes back, her client approves
(slixmpp auto_authorize), and from then on Prosody sends her broadcasts to the bridge. The ghost's
Matrix presence is read by the Matrix user, who shares the DM room with it.

Matrix -> XMPP: the Matrix user sets presence with PUT /presence (raw HTTP; the helper also makes
his later syncs claim the same state, as a nio sync would otherwise mark him online again), and
the subscribed XMPP user receives it from the Matrix user's address. These tests subscribe one way
(she to him) so that they do not depend on the bridge subscribing back; one test does the full
handshake.

Every test first opens a DM between the two (a conversation): without one the bridge would ask the
Matrix user before accepting her subscription (see test_consent.py).

Synapse drops a presence set by PUT to offline ~30 s after the last sync or activity; every
check here is done well within that.
"""
from __future__ import annotations

import asyncio
import time

import pytest

from ucb import ANY, Peers, bare, run, token, wait_for


async def dm_from_xmpp_known(p, m, x) -> str:
    """p.dm_from_xmpp, and then until the bridge has seen him join: a DM counts as a conversation
    (which lets her see his presence without asking him) only once the Matrix user joined it.
    His reply reaching her means the bridge handled his join, which came before it."""
    room_id = await p.dm_from_xmpp(m, x)
    body = "joined " + token(3)
    await m.send_text(room_id, body)
    await x.wait_chat(m.jid, body)
    return room_id


# (id, XMPP presence type, <show/>, <status/>, Matrix presence, status_msg); "{n}" is a unique note.
STATES = [
    ("available", None, None, "{n}", "online", "{n}"),
    ("away", None, "away", "{n}", "unavailable", "{n}"),
    ("inactive", None, "xa", "{n}", "unavailable", "💤 {n}"),
    ("inactive-without-note", None, "xa", None, "unavailable", "💤"),
    ("busy", None, "dnd", "📞 {n}", "online", "📞 {n}"),
    ("do-not-disturb", None, "dnd", "{n}", "unavailable", "⛔ {n}"),
    ("offline", "unavailable", None, "{n}", "offline", "{n}"),
]


def _fill(template: str | None, note: str) -> str | None:
    return None if template is None else template.format(n=note)


def _show_matches(expected: str | None, got: str | None) -> bool:
    # "available" may be sent without <show/> or with <show>chat</show>.
    if expected is None:
        return got in (None, "", "chat")
    return got == expected


def _matches(pr, ptype: str | None, show: str | None, status: str | None) -> bool:
    want_type = ptype or "available"
    return (pr.type == want_type and _show_matches(show, pr.show)
            and (pr.status or None) == (status or None))


def _fmt(prs) -> str:
    if not prs:
        return "(none)"
    return "\n  " + "\n  ".join(f"type={p.type} show={p.show!r} status={p.status!r}  {p.xml}" for p in prs)


async def _wait_xmpp_presence(x, frm: str, ptype: str | None, show: str | None, status: str | None,
                              after: int, timeout: float = 15):
    """The first presence from frm (after index `after`) with this type/show/status."""
    def found():
        return next((pr for pr in x.presences_from(frm, after) if _matches(pr, ptype, show, status)), None)
    try:
        return await wait_for(found, timeout, what="")
    except AssertionError:
        raise AssertionError(
            f"{x.bare} got no presence from {frm} with type={ptype or 'available'} show={show!r} "
            f"status={status!r} within {timeout:.0f}s; presences from {frm} since the change:"
            f"{_fmt(x.presences_from(frm, after))}\n"
            f"subscription-related stanzas from it: "
            f"{[(p.type, p.status) for p in x.presences if bare(p.frm) == frm and p.type not in ('available', 'unavailable')]}"
        ) from None


# ------------------------------------------------------------------ XMPP -> Matrix --
def test_mutual_subscription_makes_the_ghost_online(bridge):
    """The bridge subscribes back to the XMPP user; her (available) presence then reaches Matrix."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            # A fresh ghost that never synced is offline in Synapse; her available presence makes it online.
            await m.wait_presence(x.ghost, "online", None, timeout=15)
    run(go())


@pytest.mark.parametrize("state", STATES, ids=[s[0] for s in STATES])
def test_xmpp_presence_to_matrix(bridge, state):
    _, ptype, show, status_t, mx_presence, mx_status_t = state

    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            note = "note " + token(3)
            x.send_presence_state(show, _fill(status_t, note), ptype=ptype)
            await m.wait_presence(x.ghost, mx_presence, _fill(mx_status_t, note), timeout=15)
    run(go())


def test_xmpp_presence_changes_follow_each_other(bridge):
    """One XMPP user walks through every state; the ghost follows each step, in order."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            # offline last: after it she is gone and sends nothing more.
            for _, ptype, show, status_t, mx_presence, mx_status_t in STATES:
                note = "step " + token(3)
                x.send_presence_state(show, _fill(status_t, note), ptype=ptype)
                await m.wait_presence(x.ghost, mx_presence, _fill(mx_status_t, note), timeout=15)
    run(go())


def test_xmpp_logoff_makes_the_ghost_offline(bridge):
    """Disconnecting (no explicit unavailable from the test) turns the ghost offline."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            note = "here " + token(3)
            x.send_presence_state(None, note)
            await m.wait_presence(x.ghost, "online", note, timeout=15)
            await x.close()
            p.xmpp.remove(x)
            await m.wait_presence(x.ghost, "offline", ANY, timeout=15)
    run(go())


def test_xmpp_presence_of_two_resources(bridge):
    """The ghost shows her most available resource; one resource logging off does not make it offline."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            phone = await p.another_resource(x, "phone")
            phone_note = "on the phone " + token(3)
            phone.send_presence_state("away", phone_note)
            desk_note = "at my desk " + token(3)
            x.send_presence_state(None, desk_note)
            await m.wait_presence(x.ghost, "online", desk_note, timeout=15)
            await x.close()
            p.xmpp.remove(x)
            await m.wait_presence(x.ghost, "unavailable", phone_note, timeout=15)
            await phone.close()
            p.xmpp.remove(phone)
            await m.wait_presence(x.ghost, "offline", ANY, timeout=15)
    run(go())


async def _hold_presence(m, user_id: str, presence: str, status_msg: str | None, seconds: float, why: str):
    """Fail as soon as user_id's presence is not (presence, status_msg) during the next `seconds`."""
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        status, j = await m.get_presence(user_id)
        got = (status, (j or {}).get("presence"), (j or {}).get("status_msg") or None)
        assert got == (200, presence, status_msg), (
            f"{user_id}'s Matrix presence changed to {got[1:]} after {time.monotonic() - t0:.0f}s {why}; "
            f"it should have stayed ({presence!r}, {status_msg!r}) (full answer: {status} {j})")
        await asyncio.sleep(1)


@pytest.mark.timeout(420)
def test_ghost_presence_outlasts_synapse_timeout(bridge):
    """Synapse turns a presence set by PUT into offline ~30 s after the last sync or activity of the
    user; an XMPP user who stays in do-not-disturb must not go offline on Matrix by that."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            note = "long meeting " + token(3)
            x.send_presence_state("dnd", note)
            await m.wait_presence(x.ghost, "unavailable", "⛔ " + note, timeout=15)
            await _hold_presence(m, x.ghost, "unavailable", "⛔ " + note, 40,
                                 "without any change on XMPP (she is still connected and in dnd)")
    run(go(), timeout=300)


def test_ghost_presence_survives_her_messages(bridge):
    """Synapse marks an 'unavailable' user online when they send, type or send a receipt; the ghost of
    an XMPP user who is away but writes must stay away on Matrix."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await dm_from_xmpp_known(p, m, x)
            await x.subscribe(m.jid, mutual=True)
            note = "on the train " + token(3)
            x.send_presence_state("away", note)
            await m.wait_presence(x.ghost, "unavailable", note, timeout=15)
            x.send_chat_state(m.jid, "composing")
            body = "quick answer while away " + token(3)
            x.send_chat(m.jid, body)
            await m.wait_message(room_id, x.ghost, body)
            # Synapse marks the sender online the moment the message is sent; the bridge sets the
            # ghost back right after, so a blip as long as one request is possible (seen once on a
            # loaded machine). What must hold: she is away again at once, and stays away.
            await m.wait_presence(x.ghost, "unavailable", note, timeout=5)
            await _hold_presence(m, x.ghost, "unavailable", note, 8,
                                 "after she sent a message while away (she did not change her presence)")
    run(go())


# ------------------------------------------------------------------ Matrix -> XMPP --
@pytest.mark.parametrize("state", STATES, ids=[s[0] for s in STATES])
def test_matrix_presence_to_xmpp(bridge, state):
    _, ptype, show, status_t, mx_presence, mx_status_t = state

    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)
            note = "note " + token(3)
            before = len(x.presences)
            await m.set_presence(mx_presence, _fill(mx_status_t, note))
            await _wait_xmpp_presence(x, m.jid, ptype, show, _fill(status_t, note), before)
    run(go())


def test_matrix_presence_to_xmpp_with_mutual_subscription(bridge):
    """The other tests of this direction subscribe one way only; with the full (mutual) handshake his
    presence arrives just the same."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=True)
            note = "at lunch " + token(3)
            before = len(x.presences)
            await m.set_presence("unavailable", "⛔ " + note)
            await _wait_xmpp_presence(x, m.jid, None, "dnd", note, before)
    run(go())


def test_matrix_presence_changes_follow_each_other(bridge):
    """One Matrix user walks through every state; the XMPP user sees each step, in order."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)
            for _, ptype, show, status_t, mx_presence, mx_status_t in STATES:
                note = "step " + token(3)
                before = len(x.presences)
                await m.set_presence(mx_presence, _fill(mx_status_t, note))
                await _wait_xmpp_presence(x, m.jid, ptype, show, _fill(status_t, note), before)
    run(go())


def test_matrix_presence_not_sent_to_unsubscribed_contacts(bridge):
    """An XMPP user who chats with him but never subscribed gets none of his presence."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            stranger = await p.xmpp_user("s")
            await p.dm_from_matrix(m, x)
            await p.dm_from_matrix(m, stranger)
            await x.subscribe(m.jid, mutual=False)
            note = "private " + token(3)
            await m.set_presence("unavailable", note)
            # Once the subscriber has it, the bridge has sent whatever it was going to send.
            await _wait_xmpp_presence(x, m.jid, None, "away", note, 0)
            leaked = stranger.presences_from(m.jid)
            assert not leaked, f"{stranger.bare} (not subscribed) got his presence:{_fmt(leaked)}"
    run(go())


def test_matrix_presence_only_changes_are_sent(bridge):
    """The same Matrix state set twice gives at most one XMPP presence for it."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)
            note = "meeting " + token(3)
            before = len(x.presences)
            await m.set_presence("unavailable", "⛔ " + note)
            await _wait_xmpp_presence(x, m.jid, None, "dnd", note, before)
            await m.set_presence("unavailable", "⛔ " + note)
            # A different state next: once it arrived, anything the repeat caused has arrived before it.
            later = "back " + token(3)
            await m.set_presence("online", later)
            await _wait_xmpp_presence(x, m.jid, None, None, later, before)
            same = [pr for pr in x.presences_from(m.jid, before) if _matches(pr, None, "dnd", note)]
            assert len(same) == 1, (f"the unchanged state was sent {len(same)} times to {x.bare}:"
                                    f"{_fmt(x.presences_from(m.jid, before))}")
    run(go())


@pytest.mark.timeout(420)
def test_probe_after_restart_gets_last_known_presence(bridge):
    """After a bridge restart, Prosody's probe at her next login is answered with his last state."""
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)
            note = "at lunch " + token(3)
            before = len(x.presences)
            await m.set_presence("unavailable", "⛔ " + note)
            await _wait_xmpp_presence(x, m.jid, None, "dnd", note, before)

            bridge.restart()
            y = await p.relogin(x)   # her initial presence makes Prosody probe her contacts
            await _wait_xmpp_presence(y, m.jid, None, "dnd", note, 0, timeout=20)
            refusals = [pr for pr in y.presences if bare(pr.frm) == m.jid and pr.type in ("unsubscribed", "error")]
            assert not refusals, f"the probe after the restart was refused:{_fmt(refusals)}"
            first = y.presences_from(m.jid)[0]
            assert _matches(first, None, "dnd", note), (
                f"the first presence {y.bare} got from {m.jid} after the restart was not his last state "
                f"(dnd, {note!r}):{_fmt(y.presences_from(m.jid))}")
    run(go(), timeout=300)
