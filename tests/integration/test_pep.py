"""Personal Eventing Protocol (XEP-0163 on a XEP-0060 subset): publish,
publish-options preconditions, access models, +notify filtering from entity
caps (XEP-0115, the server asks the client's disco#info and caches only a
verified sha-1 'ver'), last-item delivery on presence, retract/purge/delete
notifications, max_items, the [pep] caps, malformed requests; OMEMO
(both namespaces), Bookmarks 2 and User Nickname (slixmpp) shaped."""

import asyncio
import base64
import calendar
import hashlib
import re
import time

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, XmppClient, bare_jid, show,
                        stanza_error_condition, subscribe, tag, xml_escape)
from test_login import TIMEOUT, loop, make_xmpp, start_session, stop  # noqa: F401 (loop: fixture)

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_OWNER = NS_PUBSUB + "#owner"
NS_EVENT = NS_PUBSUB + "#event"
NS_ERRORS = NS_PUBSUB + "#errors"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_DATA = "jabber:x:data"
NS_AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = NS_AXOLOTL + ".devicelist"
BUNDLES = NS_AXOLOTL + ".bundles:31415"
OMEMO2_DEVICES = "urn:xmpp:omemo:2:devices"
OMEMO2_BUNDLES = "urn:xmpp:omemo:2:bundles"
BOOKMARKS = "urn:xmpp:bookmarks:1"
TESTNODE = "urn:example:pep-test"
CAPS_NODE = "https://hearth.example/test-client"

ALICE, BOB, CAROL = bare_jid("alice"), bare_jid("bob"), bare_jid("carol")


# ---------------------------------------------------------------- helpers

def caps_ver(features, name="Hearth test"):
    """XEP-0115 section 5.1 for one identity client/pc and no forms."""
    s = "client/pc//%s<" % name + "".join(f + "<" for f in sorted(set(features)))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def is_caps_query(e):
    return (e.tag == tag(NS_CLIENT, "iq") and e.get("type") == "get"
            and e.find(tag(NS_DISCO_INFO, "query")) is not None)


def features_for(notify):
    return [NS_DISCO_INFO, NS_CAPS] + [n + "+notify" for n in notify]


def announce(c, notify, expect_query=True, ver=None, answer_features=None):
    """Send available presence with caps advertising NODE+notify for each
    node in `notify`; answer the server's disco#info query (if one is
    expected) with those features; round-trip a ping so the server has
    processed everything. Returns the ver."""
    features = features_for(notify) if answer_features is None else answer_features
    ver = ver or caps_ver(features)
    c.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
           % (NS_CAPS, CAPS_NODE, ver))
    if expect_query:
        q = c.wait_for(is_caps_query, what="the server's XEP-0115 disco#info query")
        query = q.find(tag(NS_DISCO_INFO, "query"))
        assert query.get("node") == "%s#%s" % (CAPS_NODE, ver), show(q)
        assert q.get("to") == c.jid, show(q)
        assert q.get("from") in (c.jid.split("/")[0], DOMAIN), show(q)
        body = "<identity category='client' type='pc' name='Hearth test'/>" + "".join(
            "<feature var='%s'/>" % xml_escape(f) for f in features)
        c.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>%s</query></iq>"
               % (q.get("id"), q.get("from"), NS_DISCO_INFO, xml_escape(query.get("node")), body))
    c.assert_ping()
    if not expect_query:
        assert not [e for e in c.pending if is_caps_query(e)], \
            "the server asked for caps it should have cached: %s" % [show(e) for e in c.pending]
    return ver


def form(fields, form_type=NS_PUBSUB + "#publish-options"):
    out = "<x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>" % (
        NS_DATA, form_type)
    for var, value in fields.items():
        out += "<field var='%s'><value>%s</value></field>" % (var, value)
    return out + "</x>"


def publish(c, node, payload, item_id=None, options=None, to=None):
    id_attr = " id='%s'" % item_id if item_id is not None else ""
    opts = "<publish-options>%s</publish-options>" % form(options) if options else ""
    return c.iq("set", "<pubsub xmlns='%s'><publish node='%s'><item%s>%s</item></publish>%s</pubsub>"
                % (NS_PUBSUB, node, id_attr, payload, opts), to=to)


def published_id(reply, node):
    assert reply.get("type") == "result", show(reply)
    pub = reply.find("%s/%s" % (tag(NS_PUBSUB, "pubsub"), tag(NS_PUBSUB, "publish")))
    assert pub is not None and pub.get("node") == node, show(reply)
    items = pub.findall(tag(NS_PUBSUB, "item"))
    assert len(items) == 1 and items[0].get("id"), show(reply)
    return items[0].get("id")


def get_items(c, owner, node, extra="", max_items=None):
    m = " max_items='%d'" % max_items if max_items is not None else ""
    return c.iq("get", "<pubsub xmlns='%s'><items node='%s'%s>%s</items></pubsub>"
                % (NS_PUBSUB, node, m, extra), to=owner)


def item_ids(reply, node):
    assert reply.get("type") == "result", show(reply)
    items = reply.find("%s/%s" % (tag(NS_PUBSUB, "pubsub"), tag(NS_PUBSUB, "items")))
    assert items is not None and items.get("node") == node, show(reply)
    return [i.get("id") for i in items.findall(tag(NS_PUBSUB, "item"))]


def owner_iq(c, type_, inner):
    return c.iq(type_, "<pubsub xmlns='%s'>%s</pubsub>" % (NS_OWNER, inner))


def assert_error(reply, type_, condition, app=None, feature=None):
    assert reply.get("type") == "error", show(reply)
    err = reply.find(tag(NS_CLIENT, "error"))
    assert err.get("type") == type_, show(reply)
    assert stanza_error_condition(reply) == condition, show(reply)
    if app is not None:
        a = err.find(tag(NS_ERRORS, app))
        assert a is not None, "no pubsub#errors <%s/>: %s" % (app, show(reply))
        if feature is not None:
            assert a.get("feature") == feature, show(reply)


def is_event(node=None, frm=ALICE):
    def pred(e):
        if e.tag != tag(NS_CLIENT, "message") or e.get("from") != frm:
            return False
        ev = e.find(tag(NS_EVENT, "event"))
        if ev is None:
            return False
        return node is None or any(ch.get("node") == node for ch in ev)
    return pred


def wait_event(c, node, what, frm=ALICE):
    m = c.wait_message(is_event(node, frm), what=what)
    assert m.get("type") == "headline", show(m)
    assert m.get("to") == c.jid, show(m)
    assert m.get("id"), show(m)
    return m.find(tag(NS_EVENT, "event"))


def event_item(event, node):
    items = event.find(tag(NS_EVENT, "items"))
    assert items is not None and items.get("node") == node, show(event)
    found = items.findall(tag(NS_EVENT, "item"))
    assert len(found) == 1, show(event)
    return found[0]


def devicelist(*ids):
    return "<list xmlns='%s'>%s</list>" % (NS_AXOLOTL, "".join("<device id='%d'/>" % i for i in ids))


def mutual(server, a, b):
    """a and b subscribed to each other (both ways), then logged out."""
    ca = XmppClient.login(server, a, USERS[a], "setup")
    cb = XmppClient.login(server, b, USERS[b], "setup")
    try:
        subscribe(ca, a, cb, b)
        subscribe(cb, b, ca, a)
    finally:
        ca.close()
        cb.close()


def login(server, user, resource):
    c = XmppClient.login(server, user, USERS[user], resource, name="%s/%s" % (user, resource))
    server.clients.append(c)
    return c


# ---------------------------------------------------------------- tests

def test_omemo_devicelist_reaches_contact_with_notify_only(server):
    mutual(server, "alice", "bob")
    alice = login(server, "alice", "phone")
    alice.send("<presence/>")
    bob = login(server, "bob", "phone")
    ver = announce(bob, [DEVICELIST])
    bob2 = login(server, "bob", "laptop")
    announce(bob2, [BOOKMARKS])  # no devicelist+notify
    carol = login(server, "carol", "pc")
    # Same features as bob: the verified ver is cached, carol is not asked.
    assert announce(carol, [DEVICELIST], expect_query=False) == ver

    reply = publish(alice, DEVICELIST, devicelist(12345), item_id="current")
    assert published_id(reply, DEVICELIST) == "current"
    m = bob.wait_message(is_event(DEVICELIST), what="bob's devicelist notification")
    assert m.get("type") == "headline" and m.get("to") == bob.jid, show(m)
    assert m.find(tag("urn:xmpp:delay", "delay")) is None, show(m)  # live, not delayed
    ev = m.find(tag(NS_EVENT, "event"))
    item = event_item(ev, DEVICELIST)
    assert item.get("id") == "current", show(ev)
    dev = item.find("%s/%s" % (tag(NS_AXOLOTL, "list"), tag(NS_AXOLOTL, "device")))
    assert dev is not None and dev.get("id") == "12345", show(ev)
    bob2.expect_nothing(1.0, pred=is_event())
    carol.expect_nothing(0.2, pred=is_event())
    alice.expect_nothing(0.2, pred=is_event())  # no caps: no +notify

    # Access model presence: bob may read, carol may not.
    assert item_ids(get_items(bob, ALICE, DEVICELIST), DEVICELIST) == ["current"]
    assert_error(get_items(carol, ALICE, DEVICELIST), "auth", "not-authorized",
                 "presence-subscription-required")
    # Nor may carol publish there, or read a node that does not exist.
    assert_error(publish(carol, DEVICELIST, devicelist(1), to=ALICE), "auth", "forbidden")
    assert_error(get_items(bob, ALICE, "urn:example:none"), "cancel", "item-not-found")

    # Republishing with the same id replaces the item.
    publish(alice, DEVICELIST, devicelist(12345, 777), item_id="current")
    ev = wait_event(bob, DEVICELIST, "the second devicelist")
    ids = [d.get("id") for d in event_item(ev, DEVICELIST).iter(tag(NS_AXOLOTL, "device"))]
    assert ids == ["12345", "777"], show(ev)
    reply = get_items(alice, ALICE, DEVICELIST)
    assert item_ids(reply, DEVICELIST) == ["current"]
    server.assert_alive()


def test_last_item_on_login_and_caps_verification(server):
    mutual(server, "alice", "bob")
    alice = login(server, "alice", "phone")
    publish(alice, DEVICELIST, devicelist(1), item_id="current")
    publish(alice, DEVICELIST, devicelist(2), item_id="current")
    publish(alice, TESTNODE, "<x xmlns='urn:example'>unrelated</x>", item_id="u")
    # bob comes online later: the last item of the node he +notifies, once.
    bob = login(server, "bob", "phone")
    ver = announce(bob, [DEVICELIST])
    m = bob.wait_message(is_event(DEVICELIST), what="the last devicelist at login")
    # Sent later than published: XEP-0203 delay with a XEP-0082 UTC stamp.
    delay = m.find(tag("urn:xmpp:delay", "delay"))
    assert delay is not None and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", delay.get("stamp", "")), show(m)
    stamp = calendar.timegm(time.strptime(delay.get("stamp"), "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(stamp - time.time()) < 120, show(m)
    ev = m.find(tag(NS_EVENT, "event"))
    item = event_item(ev, DEVICELIST)
    assert item.get("id") == "current"
    assert [d.get("id") for d in item.iter(tag(NS_AXOLOTL, "device"))] == ["2"], show(ev)
    bob.expect_nothing(0.5, pred=is_event())
    # The same presence again changes nothing: no second copy.
    bob.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>"
             % (NS_CAPS, CAPS_NODE, ver))
    bob.assert_ping()
    bob.expect_nothing(0.5, pred=is_event())

    # A second resource with the same (verified, cached) ver: no query, item at once.
    bob2 = login(server, "bob", "tablet")
    announce(bob2, [DEVICELIST], expect_query=False)
    event_item(wait_event(bob2, DEVICELIST, "the last item from the cached caps"), DEVICELIST)

    # A ver that does not match its disco#info is used for that session only.
    bogus = "bm90LWEtcmVhbC1oYXNoLWF0LWFsbA=="
    bob3 = login(server, "bob", "bogus")
    announce(bob3, [DEVICELIST, TESTNODE], ver=bogus)
    nodes = set()
    for _ in range(2):
        ev = wait_event(bob3, None, "the last items for an unverified ver")
        nodes.add(ev.find(tag(NS_EVENT, "items")).get("node"))
    assert nodes == {DEVICELIST, TESTNODE}
    bob4 = login(server, "bob", "bogus2")
    announce(bob4, [DEVICELIST], ver=bogus)  # asked again: not cached
    event_item(wait_event(bob4, DEVICELIST, "the last item for bob4"), DEVICELIST)

    # Caps change: only the newly +notified node is sent.
    announce(bob, [DEVICELIST, TESTNODE])
    ev = wait_event(bob, TESTNODE, "the last item of the newly wanted node")
    assert event_item(ev, TESTNODE).get("id") == "u"
    bob.expect_nothing(0.5, pred=is_event(DEVICELIST))
    server.assert_alive()


def test_bundles_open_and_publish_options_preconditions(server):
    mutual(server, "alice", "bob")
    alice = login(server, "alice", "phone")
    carol = login(server, "carol", "pc")
    bundle = "<bundle xmlns='%s'><signedPreKeyPublic signedPreKeyId='1'>AAAA</signedPreKeyPublic></bundle>" % NS_AXOLOTL
    r = publish(alice, BUNDLES, bundle, item_id="current", options={"pubsub#access_model": "open"})
    assert published_id(r, BUNDLES) == "current"
    # A stranger reads an open node.
    reply = get_items(carol, ALICE, BUNDLES)
    assert item_ids(reply, BUNDLES) == ["current"]
    assert reply.find(".//" + tag(NS_AXOLOTL, "signedPreKeyPublic")).text == "AAAA", show(reply)

    # Existing node, different options: conflict + precondition-not-met.
    r = publish(alice, BUNDLES, bundle, item_id="current", options={"pubsub#access_model": "presence"})
    assert_error(r, "cancel", "conflict", "precondition-not-met")
    publish(alice, DEVICELIST, devicelist(5), item_id="current")  # default: presence
    r = publish(alice, DEVICELIST, devicelist(5), item_id="current",
                options={"pubsub#access_model": "open"})
    assert_error(r, "cancel", "conflict", "precondition-not-met")
    assert_error(get_items(carol, ALICE, DEVICELIST), "auth", "not-authorized",
                 "presence-subscription-required")
    # What Conversations does next: reconfigure, then publish again.
    r = owner_iq(alice, "set", "<configure node='%s'>%s</configure>"
                 % (DEVICELIST, form({"pubsub#access_model": "open"}, NS_PUBSUB + "#node_config")))
    assert r.get("type") == "result", show(r)
    r = publish(alice, DEVICELIST, devicelist(5, 6), item_id="current",
                options={"pubsub#access_model": "open"})
    assert published_id(r, DEVICELIST) == "current"
    assert item_ids(get_items(carol, ALICE, DEVICELIST), DEVICELIST) == ["current"]
    # Matching options are fine; invalid ones on a new node are refused.
    r = publish(alice, BUNDLES, bundle, item_id="current", options={"pubsub#access_model": "open"})
    assert published_id(r, BUNDLES) == "current"
    r = publish(alice, "urn:example:new", "<a xmlns='urn:a'/>",
                options={"pubsub#access_model": "authorize"})
    assert_error(r, "cancel", "conflict", "precondition-not-met")
    assert_error(get_items(alice, ALICE, "urn:example:new"), "cancel", "item-not-found")

    # OMEMO 2: one item per device, max_items=max.
    opts = {"pubsub#max_items": "max", "pubsub#access_model": "open"}
    for dev in (11, 22, 33):
        r = publish(alice, OMEMO2_BUNDLES, "<bundle xmlns='urn:xmpp:omemo:2'><spk id='%d'/></bundle>" % dev,
                    item_id=str(dev), options=opts)
        assert published_id(r, OMEMO2_BUNDLES) == str(dev)
    assert item_ids(get_items(carol, ALICE, OMEMO2_BUNDLES), OMEMO2_BUNDLES) == ["11", "22", "33"]
    assert item_ids(get_items(carol, ALICE, OMEMO2_BUNDLES, extra="<item id='22'/>"),
                    OMEMO2_BUNDLES) == ["22"]
    r = publish(alice, OMEMO2_DEVICES, "<devices xmlns='urn:xmpp:omemo:2'><device id='11'/></devices>",
                item_id="current", options={"pubsub#access_model": "open"})
    assert published_id(r, OMEMO2_DEVICES) == "current"
    server.assert_alive()


def test_whitelist_bookmarks_are_private(server):
    mutual(server, "alice", "bob")
    a1 = login(server, "alice", "one")
    announce(a1, [BOOKMARKS, DEVICELIST])
    a2 = login(server, "alice", "two")
    announce(a2, [DEVICELIST])
    bob = login(server, "bob", "phone")
    announce(bob, [BOOKMARKS, DEVICELIST], expect_query=False)  # a1's ver, cached
    opts = {"pubsub#persist_items": "true", "pubsub#max_items": "max",
            "pubsub#send_last_published_item": "never", "pubsub#access_model": "whitelist"}
    conf = ("<conference xmlns='%s' name='Room' autojoin='true'><nick>alice</nick></conference>"
            % BOOKMARKS)
    r = publish(a2, BOOKMARKS, conf, item_id="room@muc.example", options=opts)
    assert published_id(r, BOOKMARKS) == "room@muc.example"
    ev = wait_event(a1, BOOKMARKS, "the bookmark on alice's other resource")
    item = event_item(ev, BOOKMARKS)
    assert item.get("id") == "room@muc.example"
    assert item.find(tag(BOOKMARKS, "conference")).get("name") == "Room", show(ev)
    r = publish(a1, BOOKMARKS, conf.replace("Room", "Other"), item_id="other@muc.example",
                options=opts)
    assert published_id(r, BOOKMARKS) == "other@muc.example"
    wait_event(a1, BOOKMARKS, "alice's own publish notifies her +notify resource")
    bob.expect_nothing(1.0, pred=is_event())
    a2.expect_nothing(0.2, pred=is_event(BOOKMARKS))

    assert_error(get_items(bob, ALICE, BOOKMARKS), "cancel", "not-allowed", "closed-node")
    assert item_ids(get_items(a2, ALICE, BOOKMARKS), BOOKMARKS) == [
        "room@muc.example", "other@muc.example"]
    assert item_ids(get_items(a2, ALICE, BOOKMARKS, max_items=1), BOOKMARKS) == [
        "other@muc.example"]

    # disco#items: bob sees alice's presence node, not her bookmarks.
    publish(a1, DEVICELIST, devicelist(9), item_id="current")
    r = bob.iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=ALICE)
    assert r.get("type") == "result", show(r)
    nodes = {i.get("node") for i in r.iter(tag(NS_DISCO_ITEMS, "item"))}
    assert nodes == {DEVICELIST}, show(r)
    r = a1.iq("get", "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=ALICE)
    assert {i.get("node") for i in r.iter(tag(NS_DISCO_ITEMS, "item"))} == {DEVICELIST, BOOKMARKS}
    r = bob.iq("get", "<query xmlns='%s' node='%s'/>" % (NS_DISCO_ITEMS, BOOKMARKS), to=ALICE)
    assert r.get("type") == "error" and stanza_error_condition(r) == "item-not-found", show(r)
    r = bob.iq("get", "<query xmlns='%s' node='%s'/>" % (NS_DISCO_INFO, DEVICELIST), to=ALICE)
    assert r.get("type") == "result", show(r)
    ident = r.find(".//" + tag(NS_DISCO_INFO, "identity"))
    assert (ident.get("category"), ident.get("type")) == ("pubsub", "leaf"), show(r)
    r = bob.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=ALICE)
    idents = {(i.get("category"), i.get("type")) for i in r.iter(tag(NS_DISCO_INFO, "identity"))}
    feats = {f.get("var") for f in r.iter(tag(NS_DISCO_INFO, "feature"))}
    assert ("pubsub", "pep") in idents, show(r)
    for f in ("publish", "publish-options", "auto-create", "access-whitelist",
              "filtered-notifications", "last-published", "retract-items", "purge-nodes"):
        assert NS_PUBSUB + "#" + f in feats, f

    # A new alice resource with +notify: send_last_published_item=never.
    a3 = login(server, "alice", "three")
    announce(a3, [BOOKMARKS], expect_query=True)
    a3.expect_nothing(0.7, pred=is_event(BOOKMARKS))
    server.assert_alive()


def test_retract_purge_delete_and_max_items(server):
    mutual(server, "alice", "bob")
    alice = login(server, "alice", "phone")
    bob = login(server, "bob", "phone")
    announce(bob, [TESTNODE])
    for i in range(1, 6):
        r = publish(alice, TESTNODE, "<n xmlns='urn:example'>%d</n>" % i, item_id="i%d" % i,
                    options={"pubsub#max_items": "3"})
        assert published_id(r, TESTNODE) == "i%d" % i
        assert event_item(wait_event(bob, TESTNODE, "item %d" % i), TESTNODE).get("id") == "i%d" % i
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == ["i3", "i4", "i5"]
    assert item_ids(get_items(bob, ALICE, TESTNODE, max_items=2), TESTNODE) == ["i4", "i5"]
    assert item_ids(get_items(bob, ALICE, TESTNODE, extra="<item id='i3'/><item id='i1'/>"),
                    TESTNODE) == ["i3"]
    # Same id again: replaced, and now the newest.
    publish(alice, TESTNODE, "<n xmlns='urn:example'>3b</n>", item_id="i3")
    wait_event(bob, TESTNODE, "i3 again")
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == ["i4", "i5", "i3"]
    # Generated ids.
    gen = published_id(publish(alice, TESTNODE, "<n xmlns='urn:example'>g</n>"), TESTNODE)
    assert event_item(wait_event(bob, TESTNODE, "generated id"), TESTNODE).get("id") == gen
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == ["i5", "i3", gen]

    r = alice.iq("set", "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='i5'/></retract></pubsub>"
                 % (NS_PUBSUB, TESTNODE))
    assert r.get("type") == "result", show(r)
    ev = wait_event(bob, TESTNODE, "the retract notification")
    retracts = ev.find(tag(NS_EVENT, "items")).findall(tag(NS_EVENT, "retract"))
    assert [x.get("id") for x in retracts] == ["i5"], show(ev)
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == ["i3", gen]
    r = alice.iq("set", "<pubsub xmlns='%s'><retract node='%s'><item id='i5'/></retract></pubsub>"
                 % (NS_PUBSUB, TESTNODE))
    assert_error(r, "cancel", "item-not-found")

    # Configuration: get, lower max_items (trims), default.
    r = owner_iq(alice, "get", "<configure node='%s'/>" % TESTNODE)
    assert r.get("type") == "result", show(r)
    values = {f.get("var"): [v.text for v in f.findall(tag(NS_DATA, "value"))]
              for f in r.iter(tag(NS_DATA, "field"))}
    assert values["pubsub#max_items"] == ["3"] and values["pubsub#access_model"] == ["presence"], values
    assert values["FORM_TYPE"] == [NS_PUBSUB + "#node_config"]
    r = owner_iq(alice, "set", "<configure node='%s'>%s</configure>"
                 % (TESTNODE, form({"pubsub#max_items": "1"}, NS_PUBSUB + "#node_config")))
    assert r.get("type") == "result", show(r)
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == [gen]
    r = owner_iq(alice, "get", "<default/>")
    assert r.get("type") == "result", show(r)
    assert r.find(".//" + tag(NS_OWNER, "default") + "/" + tag(NS_DATA, "x")) is not None, show(r)

    r = owner_iq(alice, "set", "<purge node='%s'/>" % TESTNODE)
    assert r.get("type") == "result", show(r)
    ev = wait_event(bob, TESTNODE, "the purge notification")
    assert ev.find(tag(NS_EVENT, "purge")).get("node") == TESTNODE, show(ev)
    assert item_ids(get_items(alice, ALICE, TESTNODE), TESTNODE) == []

    r = owner_iq(alice, "set", "<delete node='%s'/>" % TESTNODE)
    assert r.get("type") == "result", show(r)
    ev = wait_event(bob, TESTNODE, "the delete notification")
    assert ev.find(tag(NS_EVENT, "delete")).get("node") == TESTNODE, show(ev)
    assert_error(get_items(alice, ALICE, TESTNODE), "cancel", "item-not-found")
    assert_error(owner_iq(alice, "set", "<delete node='%s'/>" % TESTNODE), "cancel", "item-not-found")
    server.assert_alive()


def test_size_and_node_caps(make_server):
    server = make_server({"pep": {"max_items": 4, "max_nodes": 3, "max_item_size": 1024}})
    alice = login(server, "alice", "phone")
    big = "<b xmlns='urn:example'>%s</b>" % ("x" * 1100)
    r = publish(alice, "urn:example:a", big)
    assert_error(r, "modify", "not-acceptable", "payload-too-big")
    assert_error(get_items(alice, ALICE, "urn:example:a"), "cancel", "item-not-found")
    # max_items above the cap is refused; "max" means the cap.
    r = publish(alice, "urn:example:a", "<s xmlns='urn:example'/>", options={"pubsub#max_items": "5"})
    assert_error(r, "cancel", "conflict", "precondition-not-met")
    for i in range(6):
        r = publish(alice, "urn:example:a", "<s xmlns='urn:example'>%d</s>" % i, item_id="k%d" % i,
                    options={"pubsub#max_items": "max"})
        assert published_id(r, "urn:example:a") == "k%d" % i
    assert item_ids(get_items(alice, ALICE, "urn:example:a"), "urn:example:a") == [
        "k2", "k3", "k4", "k5"]
    publish(alice, "urn:example:b", "<s xmlns='urn:example'/>")
    publish(alice, "urn:example:c", "<s xmlns='urn:example'/>")
    r = publish(alice, "urn:example:d", "<s xmlns='urn:example'/>")
    assert_error(r, "wait", "resource-constraint")
    r = alice.iq("set", "<pubsub xmlns='%s'><create node='urn:example:e'/></pubsub>" % NS_PUBSUB)
    assert_error(r, "wait", "resource-constraint")
    # Existing nodes still take items.
    assert published_id(publish(alice, "urn:example:c", "<s xmlns='urn:example'/>"), "urn:example:c")
    server.assert_alive()


def test_malformed_requests_get_errors_and_stream_stays(server):
    mutual(server, "alice", "bob")
    alice = login(server, "alice", "phone")
    bob = login(server, "bob", "phone")
    publish(alice, TESTNODE, "<n xmlns='urn:example'/>", item_id="one")
    P = "<pubsub xmlns='%s'>%%s</pubsub>" % NS_PUBSUB
    cases = [
        ("set", P % "", "modify", "bad-request", None),
        ("set", P % "<publish/>", "modify", "bad-request", "nodeid-required"),
        ("set", P % "<publish node='n'/>", "modify", "bad-request", "item-required"),
        ("set", P % "<publish node='n'><item/><item/></publish>", "modify", "bad-request",
         "invalid-payload"),
        ("set", P % "<publish node='n'><item id='a'/></publish>", "modify", "bad-request",
         "payload-required"),
        ("set", P % "<publish node='n'><item><a xmlns='urn:a'/><b xmlns='urn:b'/></item></publish>",
         "modify", "bad-request", "invalid-payload"),
        ("set", P % ("<publish node='%s'><item/></publish>" % ("n" * 300)), "modify",
         "not-acceptable", None),
        ("set", P % ("<publish node='n'><item id='%s'><a xmlns='urn:a'/></item></publish>" % ("i" * 200)),
         "modify", "not-acceptable", None),
        ("set", P % "<publish node='n'><item><a xmlns='urn:a'/></item></publish><publish node='m'/>",
         "modify", "bad-request", None),
        ("set", P % ("<publish node='%s'><item><a xmlns='urn:a'/></item></publish>"
                     "<publish-options><x xmlns='jabber:x:data' type='form'/></publish-options>" % TESTNODE),
         "cancel", "conflict", "precondition-not-met"),
        ("set", P % "<retract node='%s'/>" % TESTNODE, "modify", "bad-request", "item-required"),
        ("set", P % "<retract node='nope'><item id='x'/></retract>", "cancel", "item-not-found", None),
        ("set", P % "<subscribe node='n' jid='alice@localhost'/>", "cancel",
         "feature-not-implemented", "unsupported"),
        ("set", P % "<bogus/>", "modify", "bad-request", None),
        ("set", "<pubsub xmlns='%s'><other xmlns='urn:x'/></pubsub>" % NS_PUBSUB, "modify",
         "bad-request", None),
        ("get", P % "<items/>", "modify", "bad-request", "nodeid-required"),
        ("get", P % "<items node='%s' max_items='x'/>" % TESTNODE, "modify", "bad-request", None),
        ("get", P % "<items node='%s' max_items='0'/>" % TESTNODE, "modify", "bad-request", None),
        ("get", P % "<subscriptions/>", "cancel", "feature-not-implemented", "unsupported"),
        ("get", "<notpubsub xmlns='%s'/>" % NS_PUBSUB, "modify", "bad-request", None),
        ("get", "<pubsub xmlns='%s'><configure/></pubsub>" % NS_OWNER, "modify", "bad-request",
         "nodeid-required"),
        ("get", "<pubsub xmlns='%s'><configure node='nope'/></pubsub>" % NS_OWNER, "cancel",
         "item-not-found", None),
        ("set", "<pubsub xmlns='%s'><configure node='%s'/></pubsub>" % (NS_OWNER, TESTNODE),
         "modify", "bad-request", None),
        ("set", "<pubsub xmlns='%s'><configure node='%s'>%s</configure></pubsub>"
         % (NS_OWNER, TESTNODE, form({"pubsub#max_items": "-1"}, NS_PUBSUB + "#node_config")),
         "modify", "not-acceptable", None),
        ("set", "<pubsub xmlns='%s'><configure node='%s'>%s</configure></pubsub>"
         % (NS_OWNER, TESTNODE, form({"pubsub#access_model": "roster"}, NS_PUBSUB + "#node_config")),
         "modify", "not-acceptable", None),
        ("set", "<pubsub xmlns='%s'><purge/></pubsub>" % NS_OWNER, "modify", "bad-request",
         "nodeid-required"),
        ("get", "<pubsub xmlns='%s'><purge node='%s'/></pubsub>" % (NS_OWNER, TESTNODE), "modify",
         "bad-request", None),
        ("set", "<pubsub xmlns='%s'><default/></pubsub>" % NS_OWNER, "modify", "bad-request", None),
        ("set", "<pubsub xmlns='%s'><a/><b/></pubsub>" % NS_OWNER, "modify", "bad-request", None),
        ("set", "<pubsub xmlns='%s'><create node='%s'/></pubsub>" % (NS_PUBSUB, TESTNODE), "cancel",
         "conflict", None),
    ]
    for type_, payload, etype, cond, app in cases:
        r = alice.iq(type_, payload)
        assert_error(r, etype, cond, app)
    # Other accounts: no owner requests, no publishing.
    r = bob.iq("get", "<pubsub xmlns='%s'><configure node='%s'/></pubsub>" % (NS_OWNER, TESTNODE),
               to=ALICE)
    assert_error(r, "cancel", "service-unavailable")
    r = bob.iq("set", P % ("<retract node='%s'><item id='one'/></retract>" % TESTNODE), to=ALICE)
    assert_error(r, "auth", "forbidden")
    # Nothing changed, both streams are up.
    assert item_ids(get_items(bob, ALICE, TESTNODE), TESTNODE) == ["one"]
    alice.assert_ping()
    bob.assert_ping()
    # A caps query left unanswered (error reply) costs nothing either.
    alice.send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='unknownver='/></presence>"
               % (NS_CAPS, CAPS_NODE))
    q = alice.wait_for(is_caps_query, what="the caps query")
    alice.send("<iq type='error' id='%s' to='%s'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
               % (q.get("id"), q.get("from")))
    alice.assert_ping()
    server.assert_alive()


def test_slixmpp_nick_publish_notify_and_retrieve(server, loop):
    mutual(server, "alice", "bob")

    async def run():
        alice = make_xmpp(ALICE + "/sli", USERS["alice"])
        bob = make_xmpp(BOB + "/sli", USERS["bob"])
        for x in (alice, bob):
            for p in ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0172"):
                x.register_plugin(p)
        nick_event = asyncio.get_running_loop().create_future()

        def on_nick(msg):
            if not nick_event.done():
                nick_event.set_result(msg)

        bob.add_event_handler("user_nick_publish", on_nick)
        try:
            assert await start_session(alice, server.starttls_port) == "session"
            assert await start_session(bob, server.starttls_port) == "session"
            # xep_0172 registered http://jabber.org/protocol/nick+notify in bob's
            # caps; his presence carries them and the server asks his disco#info.
            bob.send_presence()
            alice.send_presence()
            await asyncio.sleep(1.0)
            await alice["xep_0172"].publish_nick("Alice Liddell", timeout=TIMEOUT)
            msg = await asyncio.wait_for(nick_event, TIMEOUT)
            assert str(msg["from"]) == ALICE
            assert msg["pubsub_event"]["items"]["node"] == "http://jabber.org/protocol/nick"
            assert msg["pubsub_event"]["items"]["item"]["payload"].text == "Alice Liddell"
            # Retrieval through xep_0060, by a contact and by the owner.
            for x in (bob, alice):
                res = await x["xep_0060"].get_items(ALICE, "http://jabber.org/protocol/nick",
                                                    timeout=TIMEOUT)
                items = list(res["pubsub"]["items"])
                assert len(items) == 1
                assert items[0]["payload"].text == "Alice Liddell"
            # xep_0222-style publish with options through xep_0060 (open node).
            from slixmpp.plugins.xep_0004 import Form
            opts = Form()
            opts["type"] = "submit"  # what real clients send
            opts.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#publish-options")
            opts.add_field(var="pubsub#access_model", value="open")
            from slixmpp.plugins.xep_0172 import UserNick
            nick = UserNick()
            nick["nick"] = "Alice 2"
            await alice["xep_0060"].publish(ALICE, "urn:example:sli", id="n1", payload=nick.xml,
                                            options=opts, timeout=TIMEOUT)
            res = await bob["xep_0060"].get_items(ALICE, "urn:example:sli", timeout=TIMEOUT)
            assert [i["id"] for i in res["pubsub"]["items"]] == ["n1"]
        finally:
            await stop(alice, bob)

    loop.run_until_complete(run())
    server.assert_alive()


def test_account_deletion_removes_pep_data(server):
    from test_register import dump_tables
    alice = login(server, "alice", "phone")
    bob = login(server, "bob", "phone")
    publish(alice, DEVICELIST, devicelist(1), item_id="current")
    publish(alice, BOOKMARKS, "<conference xmlns='%s'/>" % BOOKMARKS, item_id="r@muc",
            options={"pubsub#access_model": "whitelist", "pubsub#max_items": "max"})
    publish(bob, DEVICELIST, devicelist(2), item_id="current")
    before = dump_tables(server)
    for t in ("pep_nodes", "pep_items", "pep_item_ids"):
        assert any(k.startswith(b"alice\0") for k, _ in before[t]), (t, before[t])
    alice.close()
    server.del_user("alice")
    # The auth worker removes the account, then tells the reactor, which
    # deletes the data: give that notice a moment to arrive.
    deadline = time.monotonic() + 5
    while True:
        after = dump_tables(server)
        if not any(k.startswith(b"alice\0") for t in ("pep_nodes", "pep_items", "pep_item_ids")
                   for k, _ in after[t]) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for t in ("pep_nodes", "pep_items", "pep_item_ids"):
        assert not [k for k, _ in after[t] if k.startswith(b"alice\0")], (t, after[t])
        assert any(k.startswith(b"bob\0") for k, _ in after[t]), (t, after[t])
    assert item_ids(get_items(bob, BOB, DEVICELIST), DEVICELIST) == ["current"]
    server.assert_alive()
