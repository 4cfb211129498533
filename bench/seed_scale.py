#!/usr/bin/env python3
"""Fill a migrated ucbridge database with a large installation's worth of rows, for the scale run.

    seed_scale.py --sqlite PATH | --postgres URL [--ghosts N] [--rooms N] [--dms N] [--members N]

The rows look like what the bridge writes itself (ghosts, direct chats with their message map,
hosted rooms with members and an archive, subscriptions, presence), under names that cannot clash
with the bench's own users (`scale…`). None of them exist on the homeserver: the point is the size of
the tables the message path and the start-up read, not traffic in these conversations.
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
import time

DOMAIN = "localhost"
REMOTE = "scale.example.org"


def rows(args) -> dict[str, tuple[list[str], list[tuple]]]:
    now = int(time.time() * 1000)
    out: dict[str, tuple[list[str], list[tuple]]] = {}
    out["ghost"] = (
        ["user_id", "displayname", "registered_at"],
        [(f"@_xmpp_scale{i}=40{REMOTE}:{DOMAIN}", f"scale{i}@{REMOTE}", now) for i in range(args.ghosts)],
    )
    out["xmpp_subscription"] = (
        ["contact", "subscriber", "created_at"],
        [(f"@scaleuser{i % args.dms}:{DOMAIN}", f"scale{i}@{REMOTE}", now) for i in range(args.ghosts)],
    )
    out["dm_portal"] = (
        ["room_id", "xmpp_jid", "matrix_user", "peer_membership", "updated_at"],
        [(f"!scaledm{i}:{DOMAIN}", f"scale{i}@{REMOTE}", f"@scaleuser{i}:{DOMAIN}", "join", now) for i in range(args.dms)],
    )
    out["message_map"] = (
        ["room_id", "event_id", "xmpp_jid", "matrix_user", "stanza_id", "from_xmpp", "markable", "created_at"],
        [
            (f"!scaledm{i % args.dms}:{DOMAIN}", f"$scale{i}", f"scale{i % args.dms}@{REMOTE}",
             f"@scaleuser{i % args.dms}:{DOMAIN}", f"scale-{i}", i % 2, 1, now - i)
            for i in range(args.dms * 10)
        ],
    )
    out["matrix_presence"] = (
        ["user_id", "state", "note", "updated_at"],
        [(f"@scaleuser{i}:{DOMAIN}", "online" if i % 3 else "unavailable", None, now) for i in range(args.dms)],
    )
    out["bridged_room"] = (
        ["room_id", "alias", "name", "topic", "owner", "is_open", "created_at"],
        [(f"!scaleroom{r}:{DOMAIN}", f"#ucb-scale{r}:{DOMAIN}", f"scale room {r}", None,
          f"@scaleuser{r % args.dms}:{DOMAIN}", r % 2, now) for r in range(args.rooms)],
    )
    members = []
    for r in range(args.rooms):
        for m in range(args.members):
            if m % 2:
                party, role = f"scale{(r + m) % args.ghosts}@{REMOTE}", "participant"
            else:
                party, role = f"@scaleuser{(r + m) % args.dms}:{DOMAIN}", "owner" if m == 0 else "participant"
            members.append((f"!scaleroom{r}:{DOMAIN}", party, role, "join", party.strip("@").split(":")[0].split("@")[0], now))
    out["room_member"] = (["room_id", "party", "role", "state", "nick", "updated_at"], members)
    return out


def seed_sqlite(path: str, data) -> None:
    db = sqlite3.connect(path)
    with db:
        for table, (cols, values) in data.items():
            marks = ", ".join("?" for _ in cols)
            db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", values)
    db.close()


def seed_postgres(url: str, data) -> None:
    # COPY through psql: no Python driver is needed in the venv.
    script = []
    for table, (cols, values) in data.items():
        script.append(f"COPY {table} ({', '.join(cols)}) FROM STDIN;")
        for v in values:
            script.append("\t".join("\\N" if x is None else str(x) for x in v))
        script.append("\\.")
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url], input="\n".join(script) + "\n",
                   text=True, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = ap.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite")
    target.add_argument("--postgres")
    ap.add_argument("--ghosts", type=int, default=10_000)
    ap.add_argument("--rooms", type=int, default=1_000)
    ap.add_argument("--dms", type=int, default=5_000)
    ap.add_argument("--members", type=int, default=6, help="members per hosted room")
    args = ap.parse_args()
    data = rows(args)
    t0 = time.monotonic()
    if args.sqlite:
        seed_sqlite(args.sqlite, data)
    else:
        seed_postgres(args.postgres, data)
    total = sum(len(v) for _, v in data.values())
    print(f"seeded {total} rows ({', '.join(f'{t} {len(v)}' for t, (_, v) in data.items())}) "
          f"in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
