"""Avatars: an XMPP user's vCard photo becomes their ghost's Matrix avatar (XEP-0153 hash in presence,
XEP-0054 vCard fetched by the bridge); a Matrix user's avatar is the photo of their vCard on XMPP."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import urllib.parse
import xml.etree.ElementTree as ET
import zlib

from ucb import Peers, run, settings, token, wait_for
from test_rooms import iq

VCARD = "vcard-temp"


def png(r: int, g: int, b: int) -> bytes:
    """A real 1×1 PNG of one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\x00" + bytes([r, g, b])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def download(m, mxc: str) -> bytes:
    server, _, media = mxc[len("mxc://"):].partition("/")
    url = f"{settings().hs_url}/_matrix/client/v1/media/download/{server}/{media}"
    async with m.http.get(url, headers=m.auth) as r:
        assert r.status == 200, (r.status, await r.text())
        return await r.read()


def test_avatars_follow_the_person_both_ways(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("av")
            x = await p.xmpp_user("avx")
            await p.dm_from_matrix(m, x)
            # XMPP → Matrix.
            photo = png(200, 30, 30)
            b64 = base64.b64encode(photo).decode()
            kind, res = await iq(x, x.bare, "set", f"<vCard xmlns='{VCARD}'><FN>Avi</FN><PHOTO><TYPE>image/png</TYPE>"
                                                    f"<BINVAL>{b64}</BINVAL></PHOTO></vCard>")
            assert kind == "result", res
            x.send_xml(f"<presence to='{m.jid}'><x xmlns='vcard-temp:x:update'>"
                       f"<photo>{hashlib.sha1(photo).hexdigest()}</photo></x></presence>")
            ghost = urllib.parse.quote(x.ghost)
            mxc = None
            for _ in range(100):
                status, j = await m.request("GET", f"/profile/{ghost}/avatar_url")
                mxc = (j or {}).get("avatar_url") if status == 200 else None
                if mxc:
                    break
                await asyncio.sleep(0.2)
            assert mxc and mxc.startswith("mxc://"), (status, j)
            assert await download(m, mxc) == photo

            # Matrix → XMPP.
            mine = png(30, 30, 200)
            async with m.http.post(f"{settings().hs_url}/_matrix/media/v3/upload", data=mine,
                                   headers={**m.auth, "Content-Type": "image/png"}) as r:
                assert r.status == 200, await r.text()
                uri = (await r.json())["content_uri"]
            status, j = await m.request("PUT", f"/profile/{urllib.parse.quote(m.user_id)}/avatar_url", {"avatar_url": uri})
            assert status == 200, j
            kind, res = await iq(x, m.jid, "get", f"<vCard xmlns='{VCARD}'/>")
            assert kind == "result", res
            binval = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL")
            assert binval is not None, ET.tostring(res)
            assert base64.b64decode("".join(binval.text.split())) == mine
            fn = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}FN")
            assert fn is not None and fn.text == m.localpart, ET.tostring(res)
    run(go(), timeout=120)


UPDATE_NS = "vcard-temp:x:update"


def photo_of(pr) -> str | None:
    """The XEP-0153 photo hash of a presence: its hex text, "" for an empty <photo/>, None without one."""
    el = ET.fromstring(pr.xml).find(f"{{{UPDATE_NS}}}x/{{{UPDATE_NS}}}photo")
    return None if el is None else (el.text or "").strip()


def test_a_matrix_users_presence_carries_the_hash_of_their_vcard_photo(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("avh")
            x = await p.xmpp_user("avhx")
            await p.dm_from_matrix(m, x)
            await x.subscribe(m.jid, mutual=False)

            async def next_presence(mark: int, what: str, pred=lambda pr: True):
                return await wait_for(lambda: next((pr for pr in x.presences_from(m.jid, mark)
                                                    if photo_of(pr) is not None and pred(pr)), None),
                                      30, what=f"a presence of {m.jid} with {what}")

            async def vcard_photo() -> bytes | None:
                kind, res = await iq(x, m.jid, "get", f"<vCard xmlns='{VCARD}'/>")
                assert kind == "result", res
                binval = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL")
                return None if binval is None else base64.b64decode("".join(binval.text.split()))

            async def set_avatar(uri: str) -> None:
                status, j = await m.request("PUT", f"/profile/{urllib.parse.quote(m.user_id)}/avatar_url",
                                            {"avatar_url": uri})
                assert status == 200, j

            # No avatar yet: an empty <photo/>, and the vCard has no PHOTO.
            mark = len(x.presences)
            await m.set_presence("online", "hash " + token(3))
            first = await next_presence(mark, "a photo element", lambda pr: pr.type == "available")
            assert photo_of(first) == "", first.describe()
            assert await vcard_photo() is None

            hashes = []
            for colour in (png(10, 200, 10), png(200, 200, 10)):
                async with m.http.post(f"{settings().hs_url}/_matrix/media/v3/upload", data=colour,
                                       headers={**m.auth, "Content-Type": "image/png"}) as r:
                    assert r.status == 200, await r.text()
                    uri = (await r.json())["content_uri"]
                mark = len(x.presences)
                await set_avatar(uri)
                # The change alone (no presence change on Matrix) sends a presence with the new hash.
                pr = await next_presence(mark, "a new photo hash", lambda pr: photo_of(pr) not in ("", *hashes))
                # What a client does with it: fetch the vCard; the hash is that of its PHOTO.
                photo = await vcard_photo()
                assert photo == colour
                assert photo_of(pr) == hashlib.sha1(photo).hexdigest(), pr.describe()
                hashes.append(photo_of(pr))
            # A presence change keeps announcing the current hash.
            mark = len(x.presences)
            await m.set_presence("unavailable", "away " + token(3))
            pr = await next_presence(mark, "show away", lambda pr: pr.show == "away")
            assert photo_of(pr) == hashes[-1], pr.describe()
            # The avatar removed: an empty <photo/> again.
            mark = len(x.presences)
            await set_avatar("")
            await next_presence(mark, "an empty photo", lambda pr: photo_of(pr) == "")
            assert await vcard_photo() is None
    run(go(), timeout=150)
