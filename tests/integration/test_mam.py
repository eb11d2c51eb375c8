"""Message Archive Management (XEP-0313 urn:xmpp:mam:2 and #extended, RSM
XEP-0059, stanza-id XEP-0359, store hints XEP-0334) against the real server.

Messages with a body are archived in the sender's and the recipient's
archive; the recipient's copy is delivered with <stanza-id by=recipient
id=archive id/>, and a forged one (by= the recipient) is removed. Queries
return <result/> messages in chronological order and an IQ result with
<fin/>. A 10 000-message archive is paged forwards and backwards; filters,
ids, flip-page, metadata, preferences, retention and malformed requests are
checked exactly, and slixmpp's xep_0313 plugin reads the archive too.
"""

import asyncio
import datetime
import re
import time

import pytest

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, XmppClient, body_of, show,
                        stanza_error_condition, subscribe, tag, xml_escape)
from test_login import loop, make_xmpp, start_session, stop  # noqa: F401 (loop: fixture)

NS_MAM = "urn:xmpp:mam:2"
NS_MAM_EXT = "urn:xmpp:mam:2#extended"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_DATA = "jabber:x:data"
NS_HINTS = "urn:xmpp:hints"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
ID_RE = re.compile(r"^[0-9a-f]{32}$")
STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

ALICE = "alice@localhost"
BOB = "bob@localhost"
CAROL = "carol@localhost"


# --------------------------------------------------------------------------
# helpers


def online(c):
    c.send("<presence/>")
    c.assert_ping()
    return c


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def stanza_ids(msg):
    return [(s.get("by"), s.get("id")) for s in msg.findall(tag(NS_SID, "stanza-id"))]


def field(var, values):
    if isinstance(values, str):
        values = [values]
    return "<field var='%s'>%s</field>" % (
        var, "".join("<value>%s</value>" % xml_escape(v) for v in values))


def query_xml(qid, fields=None, rsm="", flip=False, form_type=NS_MAM):
    form = ""
    if fields is not None:
        form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
                "<value>%s</value></field>%s</x>" % (form_type, "".join(
                    field(v, val) for v, val in fields)))
    return "<query xmlns='%s' queryid='%s'>%s%s%s</query>" % (
        NS_MAM, qid, form, rsm, "<flip-page/>" if flip else "")


def rsm(max_=None, after=None, before=None):
    parts = []
    if max_ is not None:
        parts.append("<max>%d</max>" % max_)
    if after is not None:
        parts.append("<after>%s</after>" % after)
    if before is not None:
        parts.append("<before>%s</before>" % before if before else "<before/>")
    return "<set xmlns='%s'>%s</set>" % (NS_RSM, "".join(parts))


class Result:
    def __init__(self, id_, stamp, msg):
        self.id = id_
        self.stamp = stamp
        self.msg = msg
        self.body = body_of(msg)


def take_results(c, qid, owner):
    """The <result/> messages of query qid queued on c, in arrival order,
    checked for their exact shape."""
    out, rest = [], []
    for el in c.pending:
        r = el.find(tag(NS_MAM, "result")) if is_message(el) else None
        if r is None or r.get("queryid") != qid:
            rest.append(el)
            continue
        assert el.get("from") == owner, show(el)
        assert el.get("to") == c.jid, show(el)
        assert ID_RE.match(r.get("id") or ""), show(el)
        fwd = r.find(tag(NS_FORWARD, "forwarded"))
        assert fwd is not None, show(el)
        delay = fwd.find(tag(NS_DELAY, "delay"))
        assert delay is not None and STAMP_RE.match(delay.get("stamp") or ""), show(el)
        inner = fwd.find(tag(NS_CLIENT, "message"))
        assert inner is not None, show(el)
        out.append(Result(r.get("id"), delay.get("stamp"), inner))
    c.pending[:] = rest
    return out


def mam(c, fields=None, rsm_xml="", flip=False, to=None, owner=None, expect="result"):
    """Runs one query; returns (reply iq, [Result], fin or None)."""
    qid = XmppClient.new_id("q")
    reply = c.iq("set", query_xml(qid, fields, rsm_xml, flip), to=to, timeout=30)
    results = take_results(c, qid, owner or c.jid.split("/")[0])
    assert reply.get("type") == expect, show(reply)
    fin = reply.find(tag(NS_MAM, "fin"))
    if expect == "result":
        assert fin is not None, show(reply)
    else:
        assert not results, "results for a refused query: %s" % [r.body for r in results]
    return reply, results, fin


def fin_ids(fin):
    s = fin.find(tag(NS_RSM, "set"))
    assert s is not None, show(fin)
    first, last = s.find(tag(NS_RSM, "first")), s.find(tag(NS_RSM, "last"))
    return (first.text if first is not None else None, last.text if last is not None else None)


def complete(fin):
    return fin.get("complete") == "true"


def all_bodies(c, **kw):
    _, res, fin = mam(c, rsm_xml=rsm(250), **kw)
    assert complete(fin), show(fin)
    return [r.body for r in res]


def expect_error(c, fields=None, rsm_xml="", condition=None, to=None, payload=None):
    if payload is not None:
        reply = c.iq("set", payload, to=to)
    else:
        reply, _, _ = mam(c, fields, rsm_xml, to=to, expect="error")
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == condition, show(reply)
    return reply


def drain_into(c, got, prefix, wait):
    """Reads what c has (waiting up to `wait`), recording body -> stanza-id
    of messages whose body starts with prefix; others stay queued."""
    if c._readable(wait):
        c._read_some(time.monotonic() + 5)
    rest = []
    for el in c.pending:
        b = body_of(el) if is_message(el) else None
        if b is not None and b.startswith(prefix):
            ids = stanza_ids(el)
            got[b] = ids[0][1] if ids else None
        else:
            rest.append(el)
    c.pending[:] = rest
    c.received.clear()  # 10 000 messages: keep memory flat


def fill(sender, receiver, to, n, prefix, timeout=120):
    """Pipelines n chat messages (bodies prefix00000...) from sender to
    `to` in batches, at most `window` ahead of what receiver has read (the
    server disconnects a reader that falls too far behind); returns
    {body: stanza-id}."""
    got = {}
    batch, window = 250, 2000
    deadline = time.monotonic() + timeout
    sender.sock.settimeout(30)
    for start in range(0, n, batch):
        while start - len(got) > window:
            assert time.monotonic() < deadline, "only %d of %d arrived" % (len(got), n)
            drain_into(receiver, got, prefix, 0.5)
        sender.sock.sendall("".join(
            "<message to='%s' type='chat' id='%s%d'><body>%s%05d</body></message>"
            % (to, prefix, i, prefix, i) for i in range(start, min(n, start + batch))).encode())
        drain_into(receiver, got, prefix, 0)
    while len(got) < n:
        assert time.monotonic() < deadline, "only %d of %d messages arrived" % (len(got), n)
        drain_into(receiver, got, prefix, 1.0)
    return got


def set_prefs(c, default, always=(), never=()):
    payload = "<prefs xmlns='%s' default='%s'><always>%s</always><never>%s</never></prefs>" % (
        NS_MAM, default, "".join("<jid>%s</jid>" % j for j in always),
        "".join("<jid>%s</jid>" % j for j in never))
    reply = c.iq("set", payload)
    assert reply.get("type") == "result", show(reply)
    return reply


# --------------------------------------------------------------------------
# archiving


def test_both_directions_stanza_id_and_spoofing(server, login):
    alice, bob = online(login("alice", "a")), online(login("bob", "b"))
    alice.send("<message to='%s' type='chat' id='m1'><body>hello bob</body>"
               "<origin-id xmlns='%s' id='origin-1'/>"
               "<stanza-id xmlns='%s' by='%s' id='forged'/>"
               "<stanza-id xmlns='%s' by='elsewhere.example' id='other'/>"
               "<stanza-id xmlns='%s' by='%s' id='self-forged'/></message>"
               % (BOB, NS_SID, NS_SID, BOB, NS_SID, NS_SID, ALICE))
    got = bob.wait_message(lambda e: body_of(e) == "hello bob")
    sids = stanza_ids(got)
    # The forged ones (by bob, by alice) are gone, a foreign one stays,
    # ours is added once.
    assert ("elsewhere.example", "other") in sids, show(got)
    assert all(by != ALICE for by, _ in sids), show(got)
    ours = [i for by, i in sids if by == BOB]
    assert len(ours) == 1 and ours[0] != "forged" and ID_RE.match(ours[0]), show(got)

    _, res, fin = mam(bob)
    assert [r.body for r in res] == ["hello bob"]
    assert res[0].id == ours[0], "archive id %s != stanza-id %s" % (res[0].id, ours[0])
    inner = res[0].msg
    assert inner.get("from") == "alice@localhost/a" and inner.get("to") == BOB
    assert inner.find(tag(NS_SID, "origin-id")).get("id") == "origin-1"
    assert all(by != BOB for by, _ in stanza_ids(inner)), show(inner)
    assert complete(fin) and fin_ids(fin) == (res[0].id, res[0].id)

    bob.send("<message to='alice@localhost/a' type='chat'><body>hi alice</body></message>")
    got = alice.wait_message(lambda e: body_of(e) == "hi alice")
    alice_sid = [i for by, i in stanza_ids(got) if by == ALICE]
    assert len(alice_sid) == 1, show(got)

    _, res, fin = mam(alice)
    assert [r.body for r in res] == ["hello bob", "hi alice"]
    assert res[0].msg.get("to") == BOB and res[0].msg.get("from") == "alice@localhost/a"
    assert res[1].id == alice_sid[0]
    assert res[0].id != ours[0], "two archives share an id"
    assert all(by != ALICE for by, _ in stanza_ids(res[0].msg)), show(res[0].msg)
    assert complete(fin)
    _, res, _ = mam(bob)
    assert [r.body for r in res] == ["hello bob", "hi alice"]
    # Stamps are chronological.
    assert res[0].stamp <= res[1].stamp
    server.assert_alive()


def test_what_is_not_archived(server, login):
    alice, bob = online(login("alice")), online(login("bob"))
    sends = [
        ("<message to='%s' type='chat'><active xmlns='%s'/></message>" % (BOB, NS_CHATSTATES), None),
        ("<message to='%s' type='chat'><body>nostore</body><no-store xmlns='%s'/></message>"
         % (BOB, NS_HINTS), "nostore"),
        ("<message to='%s' type='chat'><body>noperm</body><no-permanent-store xmlns='%s'/>"
         "</message>" % (BOB, NS_HINTS), "noperm"),
        ("<message to='%s' type='headline'><body>headline</body></message>" % BOB, "headline"),
        ("<message to='%s' type='normal'><body>normal</body></message>" % BOB, "normal"),
        ("<message to='%s'><body>notype</body></message>" % BOB, "notype"),
        ("<message to='%s' type='chat'><store xmlns='%s'/><composing xmlns='%s'/></message>"
         % (BOB, NS_HINTS, NS_CHATSTATES), None),
        ("<message to='%s' type='chat'><body>last</body></message>" % BOB, "last"),
    ]
    for xml, _ in sends:
        alice.send(xml)
    received = []
    while True:
        m = bob.wait_message(what="the messages")
        received.append(m)
        if body_of(m) == "last":
            break
    assert len(received) == len(sends), [show(m) for m in received]
    # Only archived copies carry a stanza-id.
    for m, (_, body) in zip(received, sends):
        archived = body in ("normal", "notype", "last") or m.find(tag(NS_HINTS, "store")) is not None
        assert bool(stanza_ids(m)) == archived, show(m)
    for c in (alice, bob):
        _, res, _ = mam(c)
        assert [r.body for r in res] == ["normal", "notype", None, "last"], [show(r.msg) for r in res]
        assert res[2].msg.find(tag(NS_HINTS, "store")) is not None
    server.assert_alive()


def test_message_to_self_archived_once(server, login):
    a1, a2 = online(login("alice", "one")), online(login("alice", "two"))
    a1.send("<message to='alice@localhost/two' type='chat'><body>note</body></message>")
    got = a2.wait_message(lambda e: body_of(e) == "note")
    assert len(stanza_ids(got)) == 1
    _, res, _ = mam(a1)
    assert [r.body for r in res] == ["note"]
    assert res[0].id == stanza_ids(got)[0][1]


# --------------------------------------------------------------------------
# the large archive: paging, filters, ids, flip-page, metadata


def test_ten_thousand_messages_paged_both_ways(server, login):
    alice, bob, carol = online(login("alice", "a")), login("bob", "b"), login("carol", "c")
    # Only alice's archive matters here: one write per message.
    set_prefs(bob, "never")
    set_prefs(carol, "never")
    n = 10000
    t0 = time.monotonic()
    sids = fill(bob, alice, ALICE, n, "m")
    fill_time = time.monotonic() - t0
    carol_sids = fill(carol, alice, ALICE, 20, "c")
    order = ["m%05d" % i for i in range(n)] + ["c%05d" % i for i in range(20)]
    ids_of = dict(sids, **carol_sids)
    assert all(ID_RE.match(ids_of[b] or "") for b in order), "a message without stanza-id"
    print("filled %d messages in %.1f s (%.0f/s)" % (n, fill_time, n / fill_time))

    # Forwards: after the last id of each page.
    seen, after, pages = [], None, 0
    while True:
        _, res, fin = mam(alice, rsm_xml=rsm(250, after=after))
        pages += 1
        seen += [r.body for r in res]
        assert [r.id for r in res] == [ids_of[r.body] for r in res]
        assert fin_ids(fin) == (res[0].id, res[-1].id)
        if complete(fin):
            break
        assert len(res) == 250
        after = res[-1].id
    assert seen == order, "forward paging differs (%d items)" % len(seen)
    assert pages == 41  # 10 020 / 250, the last page is complete

    # Backwards: <before/> for the last page, then before the first id.
    seen, before, chunks = [], "", []
    while True:
        _, res, fin = mam(alice, rsm_xml=rsm(250, before=before))
        chunks.append([r.body for r in res])
        if complete(fin):
            break
        assert len(res) == 250
        before = res[0].id
    for chunk in reversed(chunks):
        seen += chunk
    assert seen == order, "backward paging differs"
    assert chunks[0] == order[-250:] and chunks[-1] == order[:20]

    # Default page size 50; a larger max is capped at 250.
    _, res, fin = mam(alice)
    assert [r.body for r in res] == order[:50] and not complete(fin)
    _, res, fin = mam(alice, rsm_xml=rsm(100000))
    assert len(res) == 250
    _, res, fin = mam(alice, rsm_xml=rsm(0))
    assert res == [] and fin.find("%s/%s" % (tag(NS_RSM, "set"), tag(NS_RSM, "count"))).text == str(
        n + 20)

    # with: a bare JID, a full JID.
    assert all_bodies(alice, fields=[("with", CAROL)]) == order[n:]
    _, res, _ = mam(alice, fields=[("with", "bob@localhost/b")], rsm_xml=rsm(5))
    assert [r.body for r in res] == order[:5]
    assert all_bodies(alice, fields=[("with", "bob@localhost/other")]) == []
    assert all_bodies(alice, fields=[("with", "dave@localhost")]) == []

    # start/end (inclusive), also written with a UTC offset.
    _, mid, _ = mam(alice, fields=[("ids", [ids_of["m05000"], ids_of["m05009"]])])
    assert [r.body for r in mid] == ["m05000", "m05009"]
    start, end = mid[0].stamp, mid[1].stamp
    assert all_bodies(alice, fields=[("start", start), ("end", end)]) == order[5000:5010]
    dt = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ")
    shifted = (dt + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    _, res, _ = mam(alice, fields=[("start", shifted)], rsm_xml=rsm(3))
    assert [r.body for r in res] == order[5000:5003]
    _, res, fin = mam(alice, fields=[("end", end)], rsm_xml=rsm(3, before=""))
    assert [r.body for r in res] == order[5007:5010] and not complete(fin)
    assert all_bodies(alice, fields=[("start", end), ("end", start)]) == []
    assert all_bodies(alice, fields=[("start", "2100-01-01T00:00:00Z")]) == []

    # before-id / after-id (exclusive), combined with RSM.
    assert all_bodies(alice, fields=[("after-id", ids_of["m04000"]),
                                     ("before-id", ids_of["m04010"])]) == order[4001:4010]
    _, res, fin = mam(alice, fields=[("after-id", ids_of["m09990"])], rsm_xml=rsm(5))
    assert [r.body for r in res] == order[9991:9996] and not complete(fin)
    _, res, fin = mam(alice, fields=[("before-id", ids_of["m00010"])], rsm_xml=rsm(5, before=""))
    assert [r.body for r in res] == order[5:10] and not complete(fin)
    _, res, fin = mam(alice, fields=[("before-id", ids_of["m00010"])], rsm_xml=rsm(20, before=""))
    assert [r.body for r in res] == order[:10] and complete(fin)

    # ids: exactly those, chronological whatever the order asked.
    pick = ["m07777", "m00001", "c00019", "m03333"]
    _, res, fin = mam(alice, fields=[("ids", [ids_of[b] for b in pick])])
    assert [r.body for r in res] == ["m00001", "m03333", "m07777", "c00019"] and complete(fin)

    # flip-page: the page in reverse order.
    _, res, fin = mam(alice, rsm_xml=rsm(5, before=""), flip=True)
    assert [r.body for r in res] == list(reversed(order[-5:]))
    _, res, fin = mam(alice, rsm_xml=rsm(3), flip=True)
    assert [r.body for r in res] == ["m00002", "m00001", "m00000"]
    assert fin_ids(fin) == (ids_of["m00002"], ids_of["m00000"])

    # Metadata: the first and the last row.
    reply = alice.iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
    md = reply.find(tag(NS_MAM, "metadata"))
    first, last = md.find(tag(NS_MAM, "start")), md.find(tag(NS_MAM, "end"))
    assert first.get("id") == ids_of["m00000"] and last.get("id") == ids_of["c00019"], show(reply)
    assert STAMP_RE.match(first.get("timestamp")) and first.get("timestamp") <= last.get("timestamp")
    # bob archived nothing (prefs never): empty metadata.
    reply = bob.iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
    md = reply.find(tag(NS_MAM, "metadata"))
    assert md is not None and len(md) == 0, show(reply)
    server.assert_alive()


# --------------------------------------------------------------------------
# preferences


def test_prefs_never_always_roster(make_server):
    server = make_server({"archive": {"default": "roster"}})

    def login(user, res=None):
        c = XmppClient.login(server, user, USERS[user], res)
        server.clients.append(c)
        return c

    alice, bob, carol = online(login("alice")), online(login("bob")), online(login("carol"))
    # The configured default, no lists.
    reply = alice.iq("get", "<prefs xmlns='%s'/>" % NS_MAM)
    p = reply.find(tag(NS_MAM, "prefs"))
    assert p.get("default") == "roster" and len(p.find(tag(NS_MAM, "always"))) == 0, show(reply)

    subscribe(alice, "alice", bob, "bob")  # bob is in alice's roster, carol is not
    bob.send("<message to='%s' type='chat'><body>from contact</body></message>" % ALICE)
    carol.send("<message to='%s' type='chat'><body>from stranger</body></message>" % ALICE)
    got = alice.wait_message(lambda e: body_of(e) == "from stranger")
    assert stanza_ids(got) == [], show(got)
    assert [r.body for r in mam(alice)[1]] == ["from contact"]

    # always carol, never bob (JIDs normalised to bare).
    reply = set_prefs(alice, "roster", always=["Carol@LocalHost/x"], never=[BOB])
    p = reply.find(tag(NS_MAM, "prefs"))
    assert [j.text for j in p.find(tag(NS_MAM, "always"))] == [CAROL], show(reply)
    assert [j.text for j in p.find(tag(NS_MAM, "never"))] == [BOB], show(reply)
    reply = alice.iq("get", "<prefs xmlns='%s'/>" % NS_MAM)
    p = reply.find(tag(NS_MAM, "prefs"))
    assert p.get("default") == "roster"
    assert [j.text for j in p.find(tag(NS_MAM, "always"))] == [CAROL]
    bob.send("<message to='%s' type='chat'><body>bob never</body></message>" % ALICE)
    carol.send("<message to='%s' type='chat'><body>carol always</body></message>" % ALICE)
    alice.wait_message(lambda e: body_of(e) == "carol always")
    assert [r.body for r in mam(alice)[1]] == ["from contact", "carol always"]

    # default never: nothing new; outgoing too.
    set_prefs(alice, "never")
    alice.send("<message to='%s' type='chat'><body>out never</body></message>" % BOB)
    carol.send("<message to='%s' type='chat'><body>in never</body></message>" % ALICE)
    got = alice.wait_message(lambda e: body_of(e) == "in never")
    assert stanza_ids(got) == []
    bob.wait_message(lambda e: body_of(e) == "out never")
    assert [r.body for r in mam(alice)[1]] == ["from contact", "carol always"]
    # bob's archive (default roster, alice is his contact) has the outgoing one.
    assert [r.body for r in mam(bob)[1]] == ["from contact", "bob never", "out never"]

    # default always.
    set_prefs(alice, "always")
    carol.send("<message to='%s' type='chat'><body>in always</body></message>" % ALICE)
    alice.wait_message(lambda e: body_of(e) == "in always")
    assert [r.body for r in mam(alice)[1]][-1] == "in always"

    # Malformed preferences.
    for payload, cond in [
        ("<prefs xmlns='%s'/>" % NS_MAM, "bad-request"),
        ("<prefs xmlns='%s' default='sometimes'/>" % NS_MAM, "bad-request"),
        ("<prefs xmlns='%s' default='always'><always><jid>@@bad</jid></always></prefs>" % NS_MAM,
         "jid-malformed"),
        ("<prefs xmlns='%s' default='always'><never><item/></never></prefs>" % NS_MAM,
         "bad-request"),
    ]:
        reply = alice.iq("set", payload)
        assert reply.get("type") == "error" and stanza_error_condition(reply) == cond, show(reply)
    # Unchanged by the refusals.
    p = alice.iq("get", "<prefs xmlns='%s'/>" % NS_MAM).find(tag(NS_MAM, "prefs"))
    assert p.get("default") == "always"
    server.assert_alive()


# --------------------------------------------------------------------------
# retention


def test_retention_removes_only_expired_rows(make_server):
    # Expiry 6 s: the sweep runs every 1.5 s (expires_after / 4).
    server = make_server({"archive": {"expires_after": "6s"}})
    alice = online(XmppClient.login(server, "alice", USERS["alice"]))
    bob = XmppClient.login(server, "bob", USERS["bob"])
    server.clients += [alice, bob]
    set_prefs(bob, "never")
    first = fill(bob, alice, ALICE, 30, "old")
    t_first = time.monotonic()
    time.sleep(3.0)
    second = fill(bob, alice, ALICE, 30, "new")
    t_second = time.monotonic()
    # Wait for the first batch to go (expired after 6 s, swept within 1.5 s more).
    deadline = t_first + 15
    while True:
        bodies = all_bodies(alice)
        if not any(b.startswith("old") for b in bodies):
            break
        assert time.monotonic() < deadline, "old rows still there: %d" % len(bodies)
        # Never partially wrong: only whole old rows go, new ones all stay.
        assert [b for b in bodies if b.startswith("new")] == sorted(second)
        time.sleep(0.2)
    elapsed_new = time.monotonic() - t_second
    assert elapsed_new < 5.5, "test too slow to judge the second batch (%.1f s)" % elapsed_new
    assert bodies == sorted(second), "the unexpired batch was touched: %s" % bodies
    assert time.monotonic() - t_first >= 5.5, "rows deleted before they expired"
    # Metadata starts at the second batch now.
    reply = alice.iq("get", "<metadata xmlns='%s'/>" % NS_MAM)
    assert reply.find("%s/%s" % (tag(NS_MAM, "metadata"), tag(NS_MAM, "start"))).get(
        "id") == second["new00000"]
    assert first  # (the first batch had ids too)
    server.assert_alive()


# --------------------------------------------------------------------------
# errors, disco, form


def test_malformed_queries_keep_the_stream(server, login):
    alice, bob = online(login("alice")), online(login("bob"))
    bob.send("<message to='%s' type='chat'><body>one</body></message>" % ALICE)
    got = alice.wait_message(lambda e: body_of(e) == "one")
    good = stanza_ids(got)[0][1]
    missing = good[:-8] + ("00000000" if good[-8:] != "00000000" else "00000001")
    expect_error(alice, [("unknown-field", "x")], condition="bad-request")
    expect_error(alice, [("start", "yesterday")], condition="bad-request")
    expect_error(alice, [("end", "2024-02-30T00:00:00Z")], condition="bad-request")
    expect_error(alice, [("start", "2024-01-01T00:00:00")], condition="bad-request")
    expect_error(alice, [("with", "@bad@")], condition="bad-request")
    expect_error(alice, [("after-id", "nonsense")], condition="item-not-found")
    expect_error(alice, [("before-id", missing)], condition="item-not-found")
    expect_error(alice, [("ids", [good, "zz"])], condition="item-not-found")
    expect_error(alice, [("ids", [good, missing])], condition="item-not-found")
    expect_error(alice, rsm_xml=rsm(10, after="garbage"), condition="item-not-found")
    expect_error(alice, rsm_xml=rsm(10, before=missing), condition="item-not-found")
    expect_error(alice, rsm_xml="<set xmlns='%s'><max>ten</max></set>" % NS_RSM,
                 condition="bad-request")
    expect_error(alice, rsm_xml="<set xmlns='%s'><index>3</index></set>" % NS_RSM,
                 condition="feature-not-implemented")
    expect_error(alice, payload=query_xml("q", [], form_type="urn:xmpp:mam:1"),
                 condition="bad-request")
    # Someone else's archive: not offered (as Prosody).
    expect_error(alice, payload=query_xml("q"), to=BOB, condition="service-unavailable")
    # The other payloads of the namespace.
    reply = alice.iq("set", "<metadata xmlns='%s'/>" % NS_MAM)
    assert stanza_error_condition(reply) == "bad-request", show(reply)
    reply = alice.iq("get", "<archive xmlns='%s'/>" % NS_MAM)
    assert stanza_error_condition(reply) == "feature-not-implemented", show(reply)
    # Still fine afterwards, and an id of the archive works.
    alice.assert_ping()
    _, res, _ = mam(alice, fields=[("ids", good)])
    assert [r.body for r in res] == ["one"]
    _, res, _ = mam(alice, rsm_xml=rsm(10, after=good))
    assert res == []
    server.assert_alive()


def test_form_and_disco(server, login):
    alice = login("alice")
    reply = alice.iq("get", "<query xmlns='%s'/>" % NS_MAM)
    x = reply.find("%s/%s" % (tag(NS_MAM, "query"), tag(NS_DATA, "x")))
    assert x is not None and x.get("type") == "form", show(reply)
    fields = {f.get("var"): f.get("type") for f in x.findall(tag(NS_DATA, "field"))}
    assert fields == {"FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single",
                      "end": "text-single", "before-id": "text-single",
                      "after-id": "text-single", "ids": "text-multi"}, fields
    reply = alice.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=ALICE)
    features = {f.get("var") for f in reply.iter(tag(NS_DISCO_INFO, "feature"))}
    assert {NS_MAM, NS_MAM_EXT, NS_SID} <= features, features
    reply = alice.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
    features = {f.get("var") for f in reply.iter(tag(NS_DISCO_INFO, "feature"))}
    assert NS_MAM not in features, "the server's own disco should not claim an archive"


def test_archive_survives_restart(server, login):
    alice, bob = online(login("alice")), online(login("bob"))
    alice.send("<message to='%s' type='chat'><body>before restart</body></message>" % BOB)
    bob.wait_message(lambda e: body_of(e) == "before restart")
    server.restart(kill=True)
    alice = online(XmppClient.login(server, "alice", USERS["alice"]))
    server.clients.append(alice)
    _, res, _ = mam(alice)
    assert [r.body for r in res] == ["before restart"]
    # New rows after the restart sort after the old ones.
    bob = online(XmppClient.login(server, "bob", USERS["bob"]))
    server.clients.append(bob)
    bob.send("<message to='%s' type='chat'><body>after restart</body></message>" % ALICE)
    alice.wait_message(lambda e: body_of(e) == "after restart")
    assert [r.body for r in mam(alice)[1]] == ["before restart", "after restart"]


# --------------------------------------------------------------------------
# slixmpp


def test_slixmpp_reads_the_archive(server, login, loop):  # noqa: F811
    bob = online(login("bob", "b"))
    for i in range(25):
        bob.send("<message to='%s' type='chat'><body>slix %02d</body></message>" % (ALICE, i))
    bob.assert_ping()

    async def run():
        x = make_xmpp("alice@localhost/slix", USERS["alice"])
        for p in ("xep_0030", "xep_0059", "xep_0297", "xep_0313"):
            x.register_plugin(p)
        try:
            assert await start_session(x, server.starttls_port) == "session"
            bodies = []
            async for msg in x["xep_0313"].iterate(rsm={"max": 10}):
                fwd = msg["mam_result"]["forwarded"]
                bodies.append(fwd["stanza"]["body"])
                assert fwd["stanza"]["from"].bare == BOB
            assert bodies == ["slix %02d" % i for i in range(25)], bodies
            # Newest first with reverse=True (RSM <before/> paging).
            newest = []
            async for msg in x["xep_0313"].iterate(rsm={"max": 10}, reverse=True, total=12):
                newest.append(msg["mam_result"]["forwarded"]["stanza"]["body"])
            assert newest == ["slix %02d" % i for i in range(24, 12, -1)], newest
            # The with filter and the metadata.
            only = []
            async for msg in x["xep_0313"].iterate(with_jid=slix_jid(CAROL)):
                only.append(msg)
            assert only == []
            md = await x["xep_0313"].get_archive_metadata()
            assert md["mam_metadata"]["start"]["id"] and md["mam_metadata"]["end"]["id"]
            form = await x["xep_0313"].get_fields()
            assert "with" in form.get_fields()
        finally:
            await stop(x)

    loop.run_until_complete(run())
    server.assert_alive()


def slix_jid(text):
    import slixmpp
    return slixmpp.JID(text)
