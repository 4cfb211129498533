"""The XMPP server goes away and comes back: the bridge reconnects by itself, and what Matrix
users wrote meanwhile is delivered (held in the outbox, not dropped)."""
from __future__ import annotations

import os
import subprocess

import pytest

from ucb import ROOT, Peers, run, settings, token, wait_for


def _prosody(action: str) -> None:
    s = settings()
    env = {**os.environ, **s.env, "PEER_SERVICES": "prosody"}
    script = os.path.join(ROOT, "scripts", "peers", f"{action}.sh")
    r = subprocess.run([script, s.state], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{action} prosody failed: {r.stdout}\n{r.stderr}"


@pytest.mark.timeout(420)
def test_bridge_reconnects_after_xmpp_server_restart(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user()
            x = await p.xmpp_user()
            room_id = await p.dm_from_matrix(m, x)
            before = "before the outage " + token(3)
            await m.send_text(room_id, before)
            await x.wait_chat(m.jid, before)

            _prosody("down")
            try:
                await wait_for(lambda: (bridge.health() or {}).get("xmpp") == "disconnected", 30,
                               what="the bridge to notice the XMPP server is gone")
                during = "while the XMPP server was down " + token(3)
                await m.send_text(room_id, during)
                # Accepted and held: it waits in the outbox.
                await wait_for(lambda: (bridge.health() or {}).get("outbox", 0) >= 1, 30,
                               what="the message to wait in the outbox")
            finally:
                _prosody("up")
            await wait_for(lambda: (bridge.health() or {}).get("xmpp") == "connected", 60,
                           what="the bridge to reconnect")

            # The XMPP user's own connection died with the server: log in again.
            y = await p.relogin(x)
            await y.wait_chat(m.jid, during, timeout=60)
            await wait_for(lambda: (bridge.health() or {}).get("outbox") == 0, 30, what="an empty outbox")

            # And the other direction works on the new connection.
            after = "after the outage " + token(3)
            y.send_chat(m.jid, after)
            await m.wait_message(room_id, y.ghost, after, timeout=30)
    run(go(), timeout=300)
