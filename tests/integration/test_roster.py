"""The roster (RFC 6121 section 2) and its versioning (XEP-0237), against the
real server: get, set, update, remove with pushes to every interested
resource (and only those), deltas since a known version, the per-account
item limit, and every malformed roster IQ answered with the RFC's error on
a stream that stays up."""


import pytest

from hearthtest import (NS_CLIENT, NS_STANZA_ERRORS, show, stanza_error_condition, tag)

NS_ROSTER = "jabber:iq:roster"
NS_ROSTERVER = "urn:xmpp:features:rosterver"
ALICE = "alice@localhost"


def query_of(iq):
    return iq.find(tag(NS_ROSTER, "query"))


def items_of(iq):
    q = query_of(iq)
    assert q is not None, "no roster <query/>: %s" % show(iq)
    return {i.get("jid"): i for i in q.findall(tag(NS_ROSTER, "item"))}


def groups_of(item):
    return sorted((g.text or "") for g in item.findall(tag(NS_ROSTER, "group")))


def roster_get(c, ver=None):
    attr = "" if ver is None else " ver='%s'" % ver
    reply = c.iq("get", "<query xmlns='%s'%s/>" % (NS_ROSTER, attr))
    assert reply.get("type") == "result", show(reply)
    return reply


def roster_set(c, item_xml):
    return c.iq("set", "<query xmlns='%s'>%s</query>" % (NS_ROSTER, item_xml))


def is_push(el, jid=None):
    if el.tag != tag(NS_CLIENT, "iq") or el.get("type") != "set":
        return False
    q = query_of(el)
    if q is None:
        return False
    if jid is None:
        return True
    return any(i.get("jid") == jid for i in q.findall(tag(NS_ROSTER, "item")))


def wait_push(c, jid, what=None):
    push = c.wait_for(lambda e: is_push(e, jid), what=what or "a roster push for %s" % jid)
    # RFC 6121 2.1.6: from the account itself (no 'from', or its bare JID).
    assert push.get("from") in (None, c.jid.split("/")[0]), show(push)
    assert push.get("to") == c.jid, show(push)
    assert push.get("id"), show(push)
    q = query_of(push)
    items = q.findall(tag(NS_ROSTER, "item"))
    assert len(items) == 1, show(push)
    assert q.get("ver"), "push without ver: %s" % show(push)
    # Acknowledge as a client must (RFC 6121 2.1.6).
    c.send("<iq type='result' id='%s'/>" % push.get("id"))
    return push, items[0]


def error_of(reply):
    assert reply.get("type") == "error", show(reply)
    err = reply.find(tag(NS_CLIENT, "error"))
    assert err is not None, show(reply)
    return err.get("type"), stanza_error_condition(reply)


def test_rosterver_stream_feature(login):
    alice = login("alice", "a1")
    assert alice.feature(NS_ROSTERVER, "ver") is not None, show(alice.features)


def test_get_empty_roster(server, login):
    alice = login("alice", "a1")
    reply = roster_get(alice)
    q = query_of(reply)
    assert q is not None, show(reply)
    assert list(q) == [], show(reply)
    assert q.get("ver"), "a versioned roster result carries ver: %s" % show(reply)
    server.assert_alive()


def test_add_update_remove_with_pushes(server, login):
    a1 = login("alice", "a1")
    a2 = login("alice", "a2")
    a3 = login("alice", "a3")  # never asks for the roster: gets no pushes
    roster_get(a1)
    roster_get(a2)

    reply = roster_set(a1, "<item jid='bob@localhost' name='Bob'><group>Friends</group>"
                           "<group>Work</group></item>")
    assert reply.get("type") == "result", show(reply)
    assert len(reply) == 0, "a roster set result is empty: %s" % show(reply)
    vers = []
    for c in (a1, a2):
        push, item = wait_push(c, "bob@localhost")
        assert item.get("name") == "Bob", show(push)
        assert item.get("subscription") == "none", show(push)
        assert item.get("ask") is None, show(push)
        assert groups_of(item) == ["Friends", "Work"], show(push)
        vers.append(query_of(push).get("ver"))
    assert vers[0] == vers[1]
    a3.expect_nothing(0.5, pred=lambda e: is_push(e))

    items = items_of(roster_get(a3))
    assert list(items) == ["bob@localhost"]
    assert items["bob@localhost"].get("name") == "Bob"
    assert groups_of(items["bob@localhost"]) == ["Friends", "Work"]

    # Update: new name, one group; 'subscription' other than remove is ignored.
    reply = roster_set(a2, "<item jid='Bob@LOCALHOST' name='Robert' subscription='both'>"
                           "<group>Family</group></item>")
    assert reply.get("type") == "result", show(reply)
    for c in (a1, a2, a3):  # a3 asked for the roster meanwhile
        push, item = wait_push(c, "bob@localhost")
        assert item.get("name") == "Robert", show(push)
        assert item.get("subscription") == "none", show(push)
        assert groups_of(item) == ["Family"], show(push)
        assert query_of(push).get("ver") != vers[0]

    # Remove.
    reply = roster_set(a1, "<item jid='bob@localhost' subscription='remove'/>")
    assert reply.get("type") == "result", show(reply)
    for c in (a1, a2, a3):
        push, item = wait_push(c, "bob@localhost")
        assert item.get("subscription") == "remove", show(push)
    assert items_of(roster_get(a1)) == {}

    # Removing what is not there (RFC 6121 2.5.3).
    reply = roster_set(a1, "<item jid='bob@localhost' subscription='remove'/>")
    assert error_of(reply) == ("cancel", "item-not-found"), show(reply)
    a1.assert_ping()
    server.assert_alive()


def test_roster_survives_restart(server, login):
    alice = login("alice", "a1")
    roster_get(alice)
    assert roster_set(alice, "<item jid='carol@localhost' name='C'/>").get("type") == "result"
    server.restart()
    alice = login("alice", "a1")
    items = items_of(roster_get(alice))
    assert list(items) == ["carol@localhost"]
    assert items["carol@localhost"].get("name") == "C"


def test_versioning_returns_only_changes(server, login):
    a1 = login("alice", "a1")
    v0 = query_of(roster_get(a1)).get("ver")
    for jid in ("bob@localhost", "carol@localhost", "dave@localhost"):
        assert roster_set(a1, "<item jid='%s'/>" % jid).get("type") == "result"
        wait_push(a1, jid)
    v_after_bob_carol_dave = query_of(roster_get(a1)).get("ver")
    assert v_after_bob_carol_dave != v0

    # Current version: an empty result, no pushes (XEP-0237 2.4).
    a2 = login("alice", "a2")
    reply = roster_get(a2, ver=v_after_bob_carol_dave)
    assert len(reply) == 0, "expected an empty result: %s" % show(reply)
    a2.expect_nothing(0.5, pred=lambda e: is_push(e))

    # Two changes: carol renamed, bob removed.
    assert roster_set(a1, "<item jid='carol@localhost' name='Carol'/>").get("type") == "result"
    assert roster_set(a1, "<item jid='bob@localhost' subscription='remove'/>").get(
        "type") == "result"
    _, carol_push = wait_push(a1, "carol@localhost")
    bob_push, _ = wait_push(a1, "bob@localhost")
    current = query_of(bob_push).get("ver")

    a3 = login("alice", "a3")
    reply = roster_get(a3, ver=v_after_bob_carol_dave)
    assert len(reply) == 0, "a delta is an empty result plus pushes: %s" % show(reply)
    p1, i1 = wait_push(a3, None, "the first delta push")
    p2, i2 = wait_push(a3, None, "the second delta push")
    assert (i1.get("jid"), i1.get("name")) == ("carol@localhost", "Carol"), show(p1)
    assert (i2.get("jid"), i2.get("subscription")) == ("bob@localhost", "remove"), show(p2)
    assert query_of(p2).get("ver") == current
    a3.expect_nothing(0.5, pred=lambda e: is_push(e))  # dave did not change

    # From the very first version: every change since (3 adds, 1 rename,
    # 1 removal collapse to carol, dave and the removal of bob).
    a4 = login("alice", "a4")
    reply = roster_get(a4, ver=v0)
    assert len(reply) == 0, show(reply)
    seen = {}
    for _ in range(3):
        p, i = wait_push(a4, None)
        seen[i.get("jid")] = i.get("subscription")
    assert seen == {"carol@localhost": "none", "dave@localhost": "none",
                    "bob@localhost": "remove"}
    a4.expect_nothing(0.5, pred=lambda e: is_push(e))

    # An unknown version (not ours): the full roster.
    a5 = login("alice", "a5")
    for bogus in ("999999", "not-a-version", ""):
        reply = roster_get(a5, ver=bogus)
        assert sorted(items_of(reply)) == ["carol@localhost", "dave@localhost"], show(reply)
        assert query_of(reply).get("ver") == current
    server.assert_alive()


def test_item_limit(make_server):
    server = make_server(overrides={"roster": {"max_items": 2}})
    from hearthtest import XmppClient
    from conftest import USERS
    alice = XmppClient.login(server, "alice", USERS["alice"], "a1")
    server.clients.append(alice)
    roster_get(alice)
    for jid in ("bob@localhost", "carol@localhost"):
        assert roster_set(alice, "<item jid='%s'/>" % jid).get("type") == "result"
        wait_push(alice, jid)
    reply = roster_set(alice, "<item jid='dave@localhost'/>")
    assert error_of(reply) == ("wait", "resource-constraint"), show(reply)
    text = reply.find("%s/%s" % (tag(NS_CLIENT, "error"), tag(NS_STANZA_ERRORS, "text")))
    assert text is not None and "2" in text.text, show(reply)
    alice.expect_nothing(0.3, pred=lambda e: is_push(e))
    # Updating an existing item still works; removing makes room again.
    assert roster_set(alice, "<item jid='bob@localhost' name='B'/>").get("type") == "result"
    wait_push(alice, "bob@localhost")
    assert roster_set(alice, "<item jid='carol@localhost' subscription='remove'/>").get(
        "type") == "result"
    wait_push(alice, "carol@localhost")
    assert roster_set(alice, "<item jid='dave@localhost'/>").get("type") == "result"
    wait_push(alice, "dave@localhost")
    assert sorted(items_of(roster_get(alice))) == ["bob@localhost", "dave@localhost"]
    # A subscription request to a new contact is refused the same way.
    alice.send("<presence to='erin@localhost' type='subscribe' id='full1'/>")
    err = alice.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("id") == "full1",
                         what="the presence error")
    assert err.get("type") == "error"
    assert stanza_error_condition(err) == "resource-constraint", show(err)
    alice.assert_ping()
    server.assert_alive()


Q = "<query xmlns='jabber:iq:roster'>%s</query>"
MALFORMED = [
    ("set", Q % "", "modify", "bad-request"),
    ("set", Q % "<item jid='bob@localhost'/><item jid='carol@localhost'/>", "modify",
     "bad-request"),
    ("set", Q % "<item jid='bob@localhost'/><foo xmlns='urn:x'/>", "modify", "bad-request"),
    ("set", Q % "<item name='nobody'/>", "modify", "bad-request"),
    ("set", Q % "<item jid='alice@@localhost'/>", "modify", "jid-malformed"),
    ("set", Q % "<item jid='@localhost'/>", "modify", "jid-malformed"),
    ("set", Q % "<item jid='bob@localhost/res'/>", "modify", "bad-request"),
    ("set", Q % "<item jid='alice@localhost'/>", "cancel", "not-allowed"),
    ("set", Q % "<item jid='ALICE@localhost' subscription='remove'/>", "cancel", "not-allowed"),
    ("set", Q % "<item jid='bob@localhost'><group/></item>", "modify", "not-acceptable"),
    ("set", Q % "<item jid='bob@localhost'><group>a</group><group>a</group></item>", "modify",
     "bad-request"),
    ("set", Q % ("<item jid='bob@localhost' name='%s'/>" % ("n" * 1024)), "modify",
     "not-acceptable"),
    ("set", "<roster xmlns='jabber:iq:roster'/>", "cancel", "service-unavailable"),
    ("get", "<roster xmlns='jabber:iq:roster'/>", "cancel", "service-unavailable"),
    ("set", "", "modify", "bad-request"),
]


@pytest.mark.parametrize("type_,payload,err_type,condition", MALFORMED,
                         ids=["no-item", "two-items", "item-and-other", "no-jid",
                              "bad-jid", "bad-jid-2", "full-jid", "own-jid", "remove-own-jid",
                              "empty-group", "duplicate-group", "long-name",
                              "wrong-element-set", "wrong-element-get", "no-query"])
def test_malformed_roster_iq(server, login, type_, payload, err_type, condition):
    alice = login("alice", "a1")
    roster_get(alice)
    reply = alice.iq(type_, payload)
    assert error_of(reply) == (err_type, condition), show(reply)
    # Nothing changed, nobody was pushed anything, the stream is up.
    alice.expect_nothing(0.3, pred=lambda e: is_push(e))
    assert items_of(roster_get(alice)) == {}
    alice.assert_ping()
    server.assert_alive()
