"""SIGKILL of the bridge in the middle of a 100-message stream: nothing it accepted is lost or doubled.

XMPP -> Matrix: XEP-0114 has no acknowledgements, so a stanza counts as accepted once the bridge
has had time to read it. While the bridge is down Prosody bounces messages for *@bridge.localhost
to their sender (type="error", the original id, <remote-server-timeout/> "Component unavailable");
those were never accepted, and the test resends them once the bridge is back, as a client would.
Matrix -> XMPP: Synapse queues the transactions while the bridge is down; the bridge pings the
homeserver at start, which flushes the queue at once.
"""
from __future__ import annotations

import asyncio

import pytest

from ucb import Peers, component_gone, run, token, wait_for

TIMEOUT = 60


def _check_exactly_once_in_order(got: list[str], expected: list[str], ids: dict[str, list[str]] | None = None) -> None:
    missing = [b for b in expected if b not in got]
    dupes = sorted({b for b in got if got.count(b) > 1})
    extra = [b for b in got if b not in expected]
    assert not missing, f"lost {len(missing)} of {len(expected)}: {missing[:8]}"
    if dupes and ids is not None:
        detail = {b: ids.get(b) for b in dupes[:5]}
        raise AssertionError(f"delivered more than once: {dupes[:8]} (stanza ids per copy: {detail})")
    assert not dupes, f"delivered more than once: {dupes[:8]}"
    assert not extra, f"unexpected: {extra[:8]}"
    assert got == expected, "out of order: " + ", ".join(
        f"#{i}: {g!r} != {e!r}" for i, (g, e) in enumerate(zip(got, expected)) if g != e)[:600]


@pytest.mark.kills_bridge
@pytest.mark.timeout(420)
def test_sigkill_xmpp_to_matrix(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_xmpp(m, x)
            tag = token(3)
            prefix = f"crash {tag} "

            # 1. A burst the bridge reads and is still delivering when it dies.
            phase1 = [f"{prefix}a{i:03d}" for i in range(60)]
            for body in phase1:
                x.send_chat(m.jid, body)
            await m.wait_message(room_id, x.ghost, phase1[0], timeout=TIMEOUT)
            # XEP-0114 has no acknowledgements: what Prosody wrote to the socket and the bridge
            # had not read yet is lost with the process (Prosody cannot know). So kill only once
            # the bridge accepted the whole burst (on Matrix or in its outbox), mid-delivery.
            arrived = queued = 0

            async def accepted_all() -> bool:
                nonlocal arrived, queued
                # Read Matrix first, then the outbox: a message that moves from one to the other in
                # between is counted in neither, so the sum never overstates what was accepted.
                arrived = len([e for e in await m.room_messages(room_id, x.ghost)
                               if e["content"].get("body", "").startswith(prefix)])
                queued = max((bridge.health() or {}).get("outbox", 0), 0)
                return arrived + queued >= len(phase1)
            deadline = asyncio.get_running_loop().time() + 30
            while not await accepted_all():
                assert asyncio.get_running_loop().time() < deadline, f"the bridge accepted only {arrived} + queue"
                await asyncio.sleep(0.05)
            bridge.kill9()
            print(f"killed the bridge with {arrived}/{len(phase1)} of the burst on Matrix, {queued} queued")
            # The point of the test: the crash happened mid-delivery, with accepted messages queued.
            assert queued > 0 and arrived < len(phase1), (
                f"the kill came too late to test a crash mid-delivery: {arrived}/{len(phase1)} had arrived, "
                f"{queued} queued")
            await component_gone(x)

            # 2. Sent while the bridge is down: Prosody bounces them; a client would resend.
            phase2 = {x.send_chat(m.jid, f"{prefix}b{i:03d}"): f"{prefix}b{i:03d}" for i in range(20)}
            await wait_for(lambda: all(x.error_for(sid) for sid in phase2), 20,
                           what="Prosody's bounces of the messages sent while the bridge was down")
            bounced = list(phase2.values())
            bounce = x.error_for(next(iter(phase2)))
            print(f"bounce: condition={bounce.error_condition} text={bounce.error_text!r}")

            # 3. Bridge back: resend the bounced ones, then more.
            bridge.start()
            for body in bounced:
                x.send_chat(m.jid, body)
            phase3 = [f"{prefix}c{i:03d}" for i in range(20)]
            for body in phase3:
                x.send_chat(m.jid, body)
            expected = phase1 + bounced + phase3
            await m.wait_message(room_id, x.ghost, phase3[-1], timeout=TIMEOUT)
            # A late duplicate: one more message on the same lane, after all the others.
            last = f"{prefix}z"
            x.send_chat(m.jid, last)
            await m.wait_message(room_id, x.ghost, last, timeout=TIMEOUT)
            got = [e["content"]["body"] for e in await m.room_messages(room_id, x.ghost)
                   if e["content"].get("body", "").startswith(prefix)]
            _check_exactly_once_in_order(got, expected + [last])
    run(go())


@pytest.mark.kills_bridge
@pytest.mark.timeout(420)
def test_sigkill_matrix_to_xmpp(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            tag = token(3)
            prefix = f"crash {tag} "

            def received() -> list[str]:
                return [c.body for c in x.chats_from(m.jid) if (c.body or "").startswith(prefix)]

            def ids() -> dict[str, list[str]]:
                out: dict[str, list[str]] = {}
                for c in x.chats_from(m.jid):
                    out.setdefault(c.body or "", []).append(c.id or "")
                return out

            # 1. The Matrix user keeps writing; the bridge is killed while it delivers.
            phase1 = [f"{prefix}a{i:03d}" for i in range(70)]

            async def write(bodies: list[str]) -> None:
                for body in bodies:
                    await m.send_text(room_id, body)
            writer = asyncio.create_task(write(phase1))
            await wait_for(lambda: len(received()) >= 5, TIMEOUT, what="the first messages at the XMPP user")
            bridge.kill9()
            at_kill = len(received())
            print(f"killed the bridge with {at_kill}/{len(phase1)} at the XMPP user")
            await writer   # Synapse accepts them and queues the transactions for the bridge
            assert at_kill < len(phase1), f"the kill came after all {at_kill} had arrived: no crash mid-stream"

            # 2. More while the bridge is down; Synapse backs off (2, 4, 8 ... s).
            phase2 = [f"{prefix}b{i:03d}" for i in range(15)]
            await write(phase2)
            await asyncio.sleep(3)

            # 3. Bridge back (it pings the homeserver, which flushes the queue at once), then more.
            bridge.start()
            phase3 = [f"{prefix}c{i:03d}" for i in range(15)]
            await write(phase3)
            expected = phase1 + phase2 + phase3

            def seen() -> list[str]:
                # XEP-0114 has no acknowledgements: a stanza the server took just before the kill
                # may be sent again after the restart, with the same id and origin-id, which
                # clients (Conversations, Gajim, Dino) drop as a repeat. So copies with one id
                # count once; a copy under another id is a real duplicate.
                out, seen_ids = [], set()
                for c in x.chats_from(m.jid):
                    if (c.body or "").startswith(prefix) and (c.body, c.id) not in seen_ids:
                        seen_ids.add((c.body, c.id))
                        out.append(c.body)
                return out
            try:
                await wait_for(lambda: set(expected) <= set(seen()), TIMEOUT,
                               what=f"{len(expected)} messages at the XMPP user")
            except AssertionError:
                _check_exactly_once_in_order(seen(), expected, ids())
                raise
            # A late duplicate: one more message on the same lane, after all the others.
            last = f"{prefix}z"
            await m.send_text(room_id, last)
            await x.wait_chat(m.jid, last, timeout=TIMEOUT)
            _check_exactly_once_in_order(seen(), expected + [last], ids())
            assert all(i for b in expected for i in ids()[b]), "a bridged stanza without an id"
            # The copies seen() folded: at most the one stanza the server took in the instant of
            # the kill (one lane, one kill), sent again with its id. Counted, never hidden.
            copies = [(c.body, c.id) for c in x.chats_from(m.jid) if (c.body or "").startswith(prefix)]
            resent = len(copies) - len(set(copies))
            print(f"same-id resends after the kill: {resent}")
            assert resent <= 1, f"{resent} stanzas sent again after one kill on one lane: " + str(
                sorted({b for b, _ in copies if copies.count((b, _)) > 1})[:5])
    run(go())
