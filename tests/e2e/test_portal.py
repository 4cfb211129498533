"""Portal rooms: a MUC on the XMPP server (Prosody's conference.localhost) reached from Matrix through
#_xmpp_<room>=40conference.localhost:localhost. matrix-nio and slixmpp against the real servers."""
from __future__ import annotations

from nio import JoinResponse

from ucb import Peers, matrix_escape_localpart, run, settings, token, wait_for, xml_escape
from test_rooms import MUC_NS, occupant


def muc_domain() -> str:
    return settings().env.get("PEER_MUC_DOMAIN") or f"conference.{settings().xmpp_domain}"


async def join_remote_muc(x, muc: str, nick: str) -> None:
    before = len(x.presences)
    x.send_xml(f"<presence to='{xml_escape(muc)}/{xml_escape(nick)}'><x xmlns='{MUC_NS}'/></presence>")
    await wait_for(lambda: [p for p in x.presences[before:] if p.frm.partition("/")[0] == muc
                            and 110 in occupant(p)["statuses"]], 20, what=f"{x.bare} joined {muc}")


def said(x, muc: str, nick: str, body: str) -> list:
    return [m for m in x.messages if m.type == "groupchat" and m.frm == f"{muc}/{nick}" and m.body == body]


def test_a_matrix_user_talks_in_an_xmpp_muc_through_its_portal_room(bridge):
    async def go():
        async with Peers() as p:
            x1 = await p.xmpp_user("mx")
            x2 = await p.xmpp_user("my")
            m = await p.matrix_user("mp")
            muc = f"team{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x1, muc, "xena")

            alias = f"#_xmpp_{matrix_escape_localpart(muc)}:{settings().matrix_domain}"
            r = await m.c.join(alias)
            assert isinstance(r, JoinResponse), r
            room = r.room_id
            # The Matrix user is now an occupant of the MUC, under their display name.
            mark = len(x1.presences)
            await wait_for(lambda: [s for s in x1.presences if s.frm == f"{muc}/{m.localpart}"
                                    and s.type != "unavailable"], 20, what="the Matrix user in the MUC")
            shown = [occupant(s) for s in x1.presences if s.frm == f"{muc}/{m.localpart}"][-1]
            assert (shown["jid"] or "").startswith(m.jid), shown
            # x1 is in the portal room as its ghost (it was in the MUC when m came).
            await m.wait_joined(room, x1.ghost)

            x1.send_xml(f"<message type='groupchat' to='{muc}'><body>hello from XMPP ✓</body></message>")
            await m.wait_message(room, x1.ghost, "hello from XMPP ✓")
            await m.send_text(room, "hello from Matrix 👋")
            await wait_for(lambda: said(x1, muc, m.localpart, "hello from Matrix 👋"), 20, what="m's message in the MUC")
            await m.sync_once()
            assert [e["content"]["body"] for e in m.messages_in(room, x1.ghost)] == ["hello from XMPP ✓"], \
                "a message reached Matrix more or less than once"

            # Someone else joins and leaves the MUC: their ghost joins and leaves the room.
            await join_remote_muc(x2, muc, "yann")
            await m.wait_joined(room, x2.ghost)
            x2.send_xml(f"<presence type='unavailable' to='{muc}/yann'/>")
            await wait_for_left(m, room, x2.ghost)

            # The Matrix user leaves the room: they leave the MUC.
            await m.leave(room)
            await wait_for(lambda: [s for s in x1.presences[mark:] if s.frm == f"{muc}/{m.localpart}"
                                    and s.type == "unavailable"], 20, what="the Matrix user left the MUC")
    run(go(), timeout=180)


async def wait_for_left(m, room: str, user: str, timeout: float = 20) -> None:
    import asyncio
    import time
    deadline = time.monotonic() + timeout
    while user in await m.joined_members(room):
        assert time.monotonic() < deadline, f"{user} still in {room}"
        await asyncio.sleep(0.2)
