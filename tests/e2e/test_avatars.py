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

from ucb import Peers, run, settings
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
