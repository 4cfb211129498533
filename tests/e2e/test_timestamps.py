"""A message that waited shows its original time on the other side.

XMPP -> Matrix: the XEP-0203 `<delay stamp>` a message carries becomes the Matrix event's
`origin_server_ts` (the appservice `ts` parameter), if it is believable (not in the future, not
older than 7 days); otherwise, and without a stamp, the time the bridge received it.
Matrix -> XMPP: a message that reaches XMPP more than a few seconds after it was sent on Matrix
(here: the bridge was down, and the homeserver's backlog delivered it later) carries
`<delay xmlns='urn:xmpp:delay' stamp=... from=component>`; one on time carries none. In a 1:1 chat,
in a room the bridge hosts (each occupant's copy) and in a linked MUC (the MUC passes it on). In a
linked MUC the sender's `<delay>` is kept too, and never put before the room was linked.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from test_content import hosted
from test_linked_content import linked
from ucb import Peers, run, settings, token, wait_for, xml_escape

DELAY_NS = "urn:xmpp:delay"


def stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def delayed_xml(to: str, body: str, when: str) -> str:
    return (f"<message to='{xml_escape(to)}' type='chat' id='d{token(4)}'><body>{xml_escape(body)}</body>"
            f"<delay xmlns='{DELAY_NS}' from='{settings().xmpp_domain}' stamp='{when}'/></message>")


def test_xmpp_delay_stamp_becomes_the_matrix_events_time(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_xmpp(m, x)
            # Written two hours ago (e.g. queued by her client while offline): shown at that time.
            written = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
            body = "from two hours ago " + token(3)
            x.send_xml(delayed_xml(m.jid, body, stamp(written)))
            ev = await m.wait_message(room, x.ghost, body)
            assert ev["origin_server_ts"] == ms(written), (ev["origin_server_ts"], ms(written))
            # Not believable: a stamp in the future and one older than a week are the receive time.
            for when in (datetime.now(timezone.utc) + timedelta(days=1), datetime.now(timezone.utc) - timedelta(days=30)):
                before = time.time() * 1000
                body = "odd stamp " + token(3)
                x.send_xml(delayed_xml(m.jid, body, stamp(when)))
                ev = await m.wait_message(room, x.ghost, body)
                assert before - 2000 <= ev["origin_server_ts"] <= time.time() * 1000 + 2000, (when, ev)
    run(go())


def test_matrix_message_delivered_late_carries_a_delay_on_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room = await p.dm_from_matrix(m, x)
            # On time: no <delay>.
            on_time = "on time " + token(3)
            await m.send_text(room, on_time)
            got = await x.wait_chat(m.jid, on_time)
            assert got.child(DELAY_NS, "delay") is None, got.xml
            late = "written while the bridge was down " + token(3)
            sent = await sent_while_the_bridge_is_down(bridge, m, room, late)
            got = await x.wait_chat(m.jid, late, timeout=60)
            assert_held_since(got, sent)
    run(go(), timeout=150)


async def sent_while_the_bridge_is_down(bridge, m, room: str, body: str) -> int:
    """The bridge is down while m writes `body`: the homeserver keeps the event and pushes it when
    the bridge is back, more than the few seconds after which a message counts as late. Returns the
    event's origin_server_ts."""
    bridge.stop()
    try:
        event_id = await m.send_text(room, body)
        status, ev = await m.request("GET", f"/rooms/{quote(room, safe='')}/event/{quote(event_id, safe='')}")
        assert status == 200, ev
        sent = ev["origin_server_ts"]
        await wait_for(lambda: time.time() * 1000 - sent > 7000, 15, what="the event to be 7 s old")
    finally:
        bridge.start()
    return sent


def assert_held_since(got, sent: int) -> None:
    """`got` carries the component's <delay> with the Matrix event's time."""
    delay = got.child(DELAY_NS, "delay")
    assert delay is not None, got.xml
    assert delay.get("from") == settings().component, got.xml
    shown = datetime.fromisoformat(delay["stamp"].replace("Z", "+00:00"))
    assert abs(ms(shown) - sent) < 1000, (delay["stamp"], sent)


async def on_time_then_late(bridge, m, room: str, x, muc: str) -> None:
    """In a room: m's message on time reaches x's client in the MUC without a <delay>, one held
    while the bridge was down with one (x's client stays in the MUC meanwhile)."""
    def from_m(body):
        return next((s for s in x.messages if s.type == "groupchat" and s.frm == f"{muc}/{m.localpart}"
                     and s.body == body), None)
    on_time = "on time " + token(3)
    await m.send_text(room, on_time)
    got = await wait_for(lambda: from_m(on_time), 30, what="the message on time")
    assert got.child(DELAY_NS, "delay") is None, got.xml
    late = "said while the bridge was down " + token(3)
    sent = await sent_while_the_bridge_is_down(bridge, m, room, late)
    assert_held_since(await wait_for(lambda: from_m(late), 60, what="the late message"), sent)


def test_a_late_matrix_message_in_a_hosted_room_carries_a_delay(bridge):
    async def go():
        async with Peers() as p:
            m, x, room, muc, _ = await hosted(p, "late")
            await on_time_then_late(bridge, m, room, x, muc)
    run(go(), timeout=180)


def test_linked_muc_time_stamps_both_ways(bridge):
    async def go():
        async with Peers() as p:
            before_link = time.time() * 1000
            x, m, muc, room = await linked(p, "lts")
            linked_at = time.time() * 1000
            await wait_for(lambda: time.time() * 1000 - linked_at > 3000, 10, what="the link to be 3 s old")

            def said(body: str, when: datetime) -> str:
                return (f"<message to='{xml_escape(muc)}' type='groupchat' id='d{token(4)}'><body>{body}</body>"
                        f"<delay xmlns='{DELAY_NS}' from='{settings().xmpp_domain}' stamp='{stamp(when)}'/></message>")
            # XMPP -> Matrix: her client held the message two seconds (after the link): that time.
            written = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=2)
            x.send_xml(said("held a moment " + token(3), written))
            ev = (await m.sync_until(lambda: [e for e in m.messages_in(room, x.ghost)
                                              if e["content"]["body"].startswith("held a moment")], 30, "held"))[0]
            assert ev["origin_server_ts"] == ms(written), (ev["origin_server_ts"], ms(written))
            # Two hours ago is before the room was linked: shown no earlier than the link.
            sent_at = time.time() * 1000
            x.send_xml(said("from before the link " + token(3), datetime.now(timezone.utc) - timedelta(hours=2)))
            ev = (await m.sync_until(lambda: [e for e in m.messages_in(room, x.ghost)
                                              if e["content"]["body"].startswith("from before")], 30, "old"))[0]
            assert before_link - 1000 <= ev["origin_server_ts"] <= sent_at - 2000, (before_link, ev, sent_at)

            # Matrix -> XMPP: on time without a <delay>, late with one (the MUC passes it on).
            await on_time_then_late(bridge, m, room, x, muc)
    run(go(), timeout=240)
