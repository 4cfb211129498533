"""End-to-end webhook throughput of the missed-call module against a running bridge.

Posts N signed calls (call_created, 2 x leg_ringing, call_answered, 2 x leg_ended, call_ended: 7
events, one request per call) with C concurrent senders to POST /calls/events, then waits until
every call is in the journal (GET /calls/journal). Reports accepted requests/s and events/s (stored,
answered 200) and processed calls/s (tracker + rules + journal transaction). The calls are
answered by a configured extension, so no notice is queued (the outbox is not what is measured).

usage: python bench/calls_webhook.py --config STATE/ucbridge.yaml [--calls 2000] [--concurrency 8]
       [--ext 202 --answer 203 --user carla]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time

import aiohttp
import yaml


def call_events(call_id: str, ext: str, answer: str, now_ms: int) -> list[dict]:
    return [
        {"type": "call_created", "call_id": call_id, "caller": {"number": "+49301234000"}, "called": "+49305550100",
         "direction": "inbound", "at": now_ms},
        {"type": "leg_ringing", "call_id": call_id, "leg_id": call_id + "a", "extension": ext, "at": now_ms + 10},
        {"type": "leg_ringing", "call_id": call_id, "leg_id": call_id + "b", "extension": answer, "at": now_ms + 10},
        {"type": "call_answered", "call_id": call_id, "by": answer, "at": now_ms + 5000},
        {"type": "leg_ended", "call_id": call_id, "leg_id": call_id + "a", "outcome": {"kind": "cancelled"},
         "at": now_ms + 5000},
        {"type": "leg_ended", "call_id": call_id, "leg_id": call_id + "b", "outcome": {"kind": "answered"},
         "at": now_ms + 5000},
        {"type": "call_ended", "call_id": call_id, "cause": "normal_clearing", "at": now_ms + 60000},
    ]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--ext", default="202")
    ap.add_argument("--answer", default="203")
    ap.add_argument("--user", default="carla", help="the owner of --answer (journal user)")
    a = ap.parse_args()
    cfg = yaml.safe_load(open(a.config))
    url = "http://" + cfg["appservice"]["listen"]
    secret = cfg["missed_calls"]["webhook"]["secret"].encode()
    token = cfg["missed_calls"]["journal_token"]
    run = f"b{int(time.time())}-"
    start_ms = int(time.time() * 1000)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(a.calls):
        queue.put_nowait(i)
    errors = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            body = json.dumps(call_events(f"{run}{i}", a.ext, a.answer, start_ms + i)).encode()
            ts = str(int(time.time()))
            sig = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            async with session.post(url + "/calls/events", data=body, headers={
                    "Content-Type": "application/json", "X-Ucbridge-Timestamp": ts,
                    "X-Ucbridge-Signature": sig}) as r:
                if r.status != 200:
                    errors += 1

    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        await asyncio.gather(*(sender(session) for _ in range(a.concurrency)))
        t_accept = time.monotonic() - t0
        done = 0
        while True:
            async with session.get(url + "/calls/journal", params={"user": a.user, "from": str(start_ms - 1),
                                                                    "limit": "10000"},
                                   headers={"Authorization": f"Bearer {token}"}) as r:
                rows = (await r.json())["calls"]
            done = sum(1 for c in rows if c["call_id"].startswith(run))
            if done >= a.calls or time.monotonic() - t0 > 300:
                break
            await asyncio.sleep(0.2)
        t_done = time.monotonic() - t0
    events = a.calls * 7
    print(f"{a.calls} calls ({events} events), {a.concurrency} senders, {errors} errors")
    print(f"accepted (stored, 200): {t_accept:.2f} s = {a.calls / t_accept:.0f} requests/s, {events / t_accept:.0f} events/s")
    print(f"processed (journal written): {done} calls in {t_done:.2f} s = {done / t_done:.0f} calls/s, {done * 7 / t_done:.0f} events/s")


if __name__ == "__main__":
    asyncio.run(main())
