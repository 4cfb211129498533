"""Group chat avatars both ways (XEP-0486, MUC avatars). A hosted room's m.room.avatar is the PHOTO of
the vCard its MUC answers with, and its SHA-1 is in the room's disco#info (muc#roominfo_avatarhash); a
change tells the occupants (status 104). A moderator's vCard set on the MUC becomes the room's
m.room.avatar; anyone else is refused. A MUC on Prosody (mod_vcard_muc) with a vCard photo gives its
linked room its avatar, on joining and when it changes."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import xml.etree.ElementTree as ET

from nio import JoinResponse

from test_avatars import download, png
from test_content import upload_matrix
from test_portal import join_remote_muc, muc_domain
from test_rooms import MUC_USER, create_room, invited_xmpp_joins, iq, muc_of, room_with_xmpp_moderator
from ucb import Peers, matrix_escape_localpart, run, settings, token, wait_for, xml_escape

VCARD = "vcard-temp"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DATA = "jabber:x:data"


def vcard_set(photo: bytes | None) -> str:
    if photo is None:
        return f"<vCard xmlns='{VCARD}'/>"
    b64 = base64.b64encode(photo).decode()
    return f"<vCard xmlns='{VCARD}'><PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL></PHOTO></vCard>"


async def avatar_hash(x, muc: str) -> tuple[list[str], set[str]]:
    """The room's disco#info: the values of muc#roominfo_avatarhash, and the features."""
    kind, res = await iq(x, muc, "get", f"<query xmlns='{DISCO_INFO}'/>")
    assert kind == "result", res
    features = {f.get("var") for f in res.iter(f"{{{DISCO_INFO}}}feature")}
    values = [v.text for f in res.iter(f"{{{DATA}}}field") if f.get("var") == "muc#roominfo_avatarhash"
              for v in f.findall(f"{{{DATA}}}value")]
    return values, features


async def vcard_photo(x, muc: str) -> bytes | None:
    kind, res = await iq(x, muc, "get", f"<vCard xmlns='{VCARD}'/>")
    assert kind == "result", res
    binval = res.find(f"{{{VCARD}}}vCard/{{{VCARD}}}PHOTO/{{{VCARD}}}BINVAL")
    return None if binval is None else base64.b64decode("".join(binval.text.split()))


def config_changes(x, muc: str) -> list:
    """Status-104 messages from the room itself."""
    return [s for s in x.messages if s.frm == muc and s.type == "groupchat"
            and ET.fromstring(s.xml).find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}status[@code='104']") is not None]


async def room_avatar_bytes(m, room: str, not_url: str | None = None, timeout: float = 30) -> tuple[str, bytes]:
    """Poll the room's m.room.avatar until it has a URL (other than `not_url`); its URL and bytes."""
    async def current():
        status, j = await m.get_state(room, "m.room.avatar")
        url = (j or {}).get("url") if status == 200 else None
        return url if url and url != not_url else None
    url = None
    for _ in range(int(timeout / 0.2)):
        url = await current()
        if url:
            break
        await asyncio.sleep(0.2)
    assert url, f"no new m.room.avatar in {room}"
    return url, await download(m, url)


def test_a_hosted_rooms_matrix_avatar_is_its_mucs_vcard_photo_and_disco_hash(bridge):
    async def go():
        async with Peers() as p:
            m = await p.matrix_user("rav")
            x = await p.xmpp_user("ravx")
            alias = "rav" + token(4).lower()
            room = await create_room(m, alias)
            muc = muc_of(alias)
            await invited_xmpp_joins(m, room, x, muc, "ravx")
            # No avatar yet: the room says it serves vCards, shows no hash, and its vCard has no photo.
            values, features = await avatar_hash(x, muc)
            assert VCARD in features and values == [], (values, features)
            assert await vcard_photo(x, muc) is None

            picture = png(10, 120, 240)
            url = await upload_matrix(m, picture, "room.png", "image/png")
            status, j = await m.put_state(room, "m.room.avatar", {"url": url})
            assert status == 200, j
            # The occupant is told the configuration changed (status 104, from the room itself)...
            await wait_for(lambda: config_changes(x, muc), 20, what="a status-104 message from the room")
            # ...and finds the new hash and the same bytes.
            values, _ = await avatar_hash(x, muc)
            assert values == [hashlib.sha1(picture).hexdigest()], values
            assert await vcard_photo(x, muc) == picture

            # Another picture: another notice and hash.
            told = len(config_changes(x, muc))
            second = png(240, 120, 10)
            status, j = await m.put_state(room, "m.room.avatar", {"url": await upload_matrix(m, second, "b.png",
                                                                                            "image/png")})
            assert status == 200, j
            await wait_for(lambda: len(config_changes(x, muc)) > told, 20, what="a second status-104 message")
            values, _ = await avatar_hash(x, muc)
            assert values == [hashlib.sha1(second).hexdigest()], values
    run(go(), timeout=180)


def test_a_moderators_vcard_photo_becomes_the_rooms_avatar_and_others_are_refused(bridge):
    async def go():
        async with Peers() as p:
            m1, m2, x1, x2, room, muc = await room_with_xmpp_moderator(p)
            # A participant may not set the room's avatar.
            theirs = png(1, 2, 3)
            kind, err = await iq(x2, muc, "set", vcard_set(theirs))
            assert kind == "error" and err[0] == "forbidden", err
            # Nor may a moderator set what is not a picture.
            bogus = f"<vCard xmlns='{VCARD}'><PHOTO><TYPE>image/png</TYPE>" \
                    f"<BINVAL>{base64.b64encode(b'not a picture').decode()}</BINVAL></PHOTO></vCard>"
            kind, err = await iq(x1, muc, "set", bogus)
            assert kind == "error", err
            # A moderator may (the positive control: the avatar is theirs, not the refused ones).
            told = len(config_changes(x2, muc))
            picture = png(30, 200, 90)
            kind, res = await iq(x1, muc, "set", vcard_set(picture))
            assert kind == "result", res
            url, got = await room_avatar_bytes(m1, room)
            assert got == picture and got != theirs
            # Every occupant is told, and the room's vCard now serves it.
            await wait_for(lambda: len(config_changes(x2, muc)) > told, 20, what="the status-104 message")
            assert await vcard_photo(x2, muc) == picture
            values, _ = await avatar_hash(x2, muc)
            assert values == [hashlib.sha1(picture).hexdigest()], values
            # An empty vCard removes it.
            kind, res = await iq(x1, muc, "set", vcard_set(None))
            assert kind == "result", res
            for _ in range(100):
                status, j = await m1.get_state(room, "m.room.avatar")
                if status == 200 and not j.get("url"):
                    break
                await asyncio.sleep(0.2)
            assert status == 200 and not j.get("url"), (status, j)
    run(go(), timeout=240)


def test_a_linked_mucs_vcard_photo_is_its_rooms_avatar(bridge):
    async def go():
        async with Peers() as p:
            x = await p.xmpp_user("lavx")
            m = await p.matrix_user("lavm")
            muc = f"lav{token(4).lower()}@{muc_domain()}"
            await join_remote_muc(x, muc, "xena")
            # The MUC's owner gives it an avatar (Prosody's mod_vcard_muc) before anyone from Matrix comes.
            first = png(250, 10, 10)
            kind, res = await iq(x, muc, "set", vcard_set(first))
            assert kind == "result", res
            r = await m.c.join(f"#_xmpp_{matrix_escape_localpart(muc)}:{settings().matrix_domain}")
            assert isinstance(r, JoinResponse), r
            room = r.room_id
            await wait_for(lambda: [s for s in x.presences if s.frm == f"{muc}/{m.localpart}"
                                    and s.type != "unavailable"], 20, what="the Matrix user in the MUC")
            url, got = await room_avatar_bytes(m, room)
            assert got == first
            # A new avatar in the MUC (it announces the change): the room's follows.
            second = png(10, 250, 10)
            kind, res = await iq(x, muc, "set", vcard_set(second))
            assert kind == "result", res
            _, got = await room_avatar_bytes(m, room, not_url=url)
            assert got == second
            # Words still flow (the room works as before).
            x.send_xml(f"<message to='{xml_escape(muc)}' type='groupchat'><body>nice picture</body></message>")
            await m.wait_message(room, x.ghost, "nice picture")
    run(go(), timeout=180)
