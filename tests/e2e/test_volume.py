"""A burst of 100 messages each way arrives complete, once each, in order.

Sent as fast as the client can; the 60 s wait is a timeout, not a speed requirement.
"""
from __future__ import annotations

from ucb import Peers, run, token, wait_for

N = 100
TIMEOUT = 60


def _check_sequence(got: list[str], expected: list[str]) -> None:
    missing = [b for b in expected if b not in got]
    dupes = sorted({b for b in got if got.count(b) > 1})
    assert not missing, f"{len(missing)} of {len(expected)} missing, first: {missing[:5]}"
    assert not dupes, f"duplicates: {dupes[:5]}"
    assert got == expected, "out of order: " + ", ".join(
        f"#{i}: {g!r} != {e!r}" for i, (g, e) in enumerate(zip(got, expected)) if g != e)[:600]


def test_100_messages_xmpp_to_matrix(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            tag = token(3)
            expected = [f"vol {tag} {i:03d}" for i in range(N)]
            for body in expected:
                x.send_chat(m.jid, body)
            await m.wait_message(room_id, x.ghost, expected[-1], timeout=TIMEOUT)

            async def bodies():
                return [e["content"]["body"] for e in await m.room_messages(room_id, x.ghost)
                        if e["content"].get("body", "").startswith(f"vol {tag} ")]
            # A late duplicate: one more message on the same conversation, after all the others.
            last = f"vol {tag} end"
            x.send_chat(m.jid, last)
            await m.wait_message(room_id, x.ghost, last, timeout=TIMEOUT)
            _check_sequence(await bodies(), expected + [last])
    run(go())


def test_100_messages_matrix_to_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            tag = token(3)
            expected = [f"vol {tag} {i:03d}" for i in range(N)]
            for body in expected:
                await m.send_text(room_id, body)

            def bodies():
                return [c.body for c in x.chats_from(m.jid) if (c.body or "").startswith(f"vol {tag} ")]
            await wait_for(lambda: len(bodies()) >= N, TIMEOUT, what=f"{N} messages at {x.bare}")
            # A late duplicate: one more message on the same conversation, after all the others.
            last = f"vol {tag} end"
            await m.send_text(room_id, last)
            await x.wait_chat(m.jid, last, timeout=TIMEOUT)
            _check_sequence(bodies(), expected + [last])
    run(go())
