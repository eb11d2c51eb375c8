"""Message Carbons (XEP-0280) against the real server: alice has three
resources, a and b with carbons enabled, c without; bob is her contact.
Every copy is checked exactly (wrapper from/to/type, <sent/> or <received/>,
the forwarded original) and counted: a session gets at most one copy of a
message, and nothing where the rules say nothing.
"""

from hearthtest import NS_CLIENT, NS_DISCO_INFO, XmppClient, body_of, show, \
    stanza_error_condition, tag

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
ALICE = "alice@localhost"
BOB = "bob@localhost"


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def online(login, user, resource, priority=None, carbons=False):
    c = login(user, resource)
    prio = "<priority>%d</priority>" % priority if priority is not None else ""
    c.send("<presence>%s</presence>" % prio)
    if carbons:
        enable(c)
    c.assert_ping()
    return c


def enable(c, what="enable"):
    reply = c.iq("set", "<%s xmlns='%s'/>" % (what, NS_CARBONS))
    assert reply.get("type") == "result", show(reply)
    assert len(reply) == 0, show(reply)
    return reply


def send(c, to, body="hello", type_="chat", extra="", msg_id=None):
    msg_id = msg_id or XmppClient.new_id("cm")
    body_xml = "<body>%s</body>" % body if body is not None else ""
    c.send("<message to='%s' type='%s' id='%s'>%s%s</message>" % (to, type_, msg_id, body_xml,
                                                                  extra))
    return msg_id


def about(msg_id):
    """The message itself or a carbon of it."""
    def pred(el):
        if not is_message(el):
            return False
        if el.get("id") == msg_id:
            return True
        return any(inner.get("id") == msg_id for inner in el.iter(tag(NS_CLIENT, "message")))
    return pred


def expect_plain(c, msg_id, sender, body, type_="chat"):
    el = c.wait_message(lambda e: e.get("id") == msg_id, what="message %s" % msg_id)
    assert el.get("from") == sender, show(el)
    assert el.get("type") == type_, show(el)
    assert body_of(el) == body, show(el)
    assert el.find(tag(NS_CARBONS, "sent")) is None, show(el)
    assert el.find(tag(NS_CARBONS, "received")) is None, show(el)
    assert el.find(tag(NS_CARBONS, "private")) is None, show(el)
    return el


def expect_carbon(c, kind, msg_id, account, sender, to, body, type_="chat"):
    """Exactly one <sent/>/<received/> copy of msg_id for c, checked in full."""
    el = c.wait_message(about(msg_id), what="the %s carbon of %s" % (kind, msg_id))
    assert el.get("from") == account, show(el)
    assert el.get("to") == c.jid, show(el)
    assert el.get("type") == type_, show(el)
    assert el.get("id") != msg_id, "the original instead of a carbon: " + show(el)
    wrappers = [w for w in el if w.tag in (tag(NS_CARBONS, "sent"), tag(NS_CARBONS, "received"))]
    assert len(wrappers) == 1 and wrappers[0].tag == tag(NS_CARBONS, kind), show(el)
    fwd = wrappers[0].find(tag(NS_FORWARD, "forwarded"))
    assert fwd is not None, show(el)
    inner = fwd.find(tag(NS_CLIENT, "message"))
    assert inner is not None, show(el)
    assert inner.get("id") == msg_id, show(el)
    assert inner.get("from") == sender, show(el)
    assert inner.get("to") == to, show(el)
    assert inner.get("type") == type_, show(el)
    assert body_of(inner) == body, show(el)
    assert inner.find(tag(NS_CARBONS, "private")) is None, show(el)
    # Exactly once.
    c.expect_nothing(0.3, pred=about(msg_id))
    return el


def three(login):
    a = online(login, "alice", "a", 5, carbons=True)
    b = online(login, "alice", "b", 1, carbons=True)
    c = online(login, "alice", "c", 1)
    bob = online(login, "bob", "pc", 0)
    # Presence of the siblings may still arrive; only messages matter here.
    return a, b, c, bob


def all_up(server, *clients):
    for c in clients:
        c.assert_ping()
    server.assert_alive()


def test_feature_is_advertised(server, login):
    a = login("alice", "a")
    reply = a.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to="localhost")
    assert reply.get("type") == "result", show(reply)
    features = [f.get("var") for f in reply.iter(tag(NS_DISCO_INFO, "feature"))]
    assert NS_CARBONS in features, show(reply)
    all_up(server, a)


def test_received_carbons_for_bare_and_full_jid(server, login):
    a, b, c, bob = three(login)
    m = send(bob, ALICE, "to the best")
    expect_plain(a, m, bob.jid, "to the best")
    expect_carbon(b, "received", m, ALICE, bob.jid, ALICE, "to the best")
    a.expect_nothing(0.2, pred=about(m))
    c.expect_nothing(0.2, pred=about(m))
    # Directed to c (no carbons): a and b each get one received copy.
    n = send(bob, ALICE + "/c", "for c", type_="normal")
    expect_plain(c, n, bob.jid, "for c", "normal")
    expect_carbon(a, "received", n, ALICE, bob.jid, ALICE + "/c", "for c", "normal")
    expect_carbon(b, "received", n, ALICE, bob.jid, ALICE + "/c", "for c", "normal")
    c.expect_nothing(0.2, pred=about(n))
    bob.expect_nothing(0.2, pred=is_message)
    all_up(server, a, b, c, bob)


def test_sent_carbons_go_to_the_other_enabled_resources(server, login):
    a, b, c, bob = three(login)
    m = send(a, BOB, "from a")
    expect_plain(bob, m, a.jid, "from a")
    expect_carbon(b, "sent", m, ALICE, a.jid, BOB, "from a")
    a.expect_nothing(0.3, pred=about(m))
    c.expect_nothing(0.2, pred=about(m))
    # c has no carbons itself; what it sends is still copied (section 6).
    n = send(c, BOB + "/pc", "from c")
    expect_plain(bob, n, c.jid, "from c")
    expect_carbon(a, "sent", n, ALICE, c.jid, BOB + "/pc", "from c")
    expect_carbon(b, "sent", n, ALICE, c.jid, BOB + "/pc", "from c")
    c.expect_nothing(0.2, pred=about(n))
    # A chat state is part of the conversation (section 8.2).
    k = XmppClient.new_id("cs")
    a.send("<message to='%s' type='chat' id='%s'>"
           "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>" % (BOB, k))
    bob.wait_message(lambda e: e.get("id") == k, what="the chat state")
    el = b.wait_message(about(k), what="the chat state carbon")
    assert el.find(tag(NS_CARBONS, "sent")) is not None, show(el)
    all_up(server, a, b, c, bob)


def test_private_and_no_copy_are_honoured(server, login):
    a, b, c, bob = three(login)
    private = "<private xmlns='%s'/>" % NS_CARBONS
    m = send(a, BOB, "secret out", extra=private)
    expect_plain(bob, m, a.jid, "secret out")  # delivered without <private/>
    n = send(bob, ALICE, "secret in", extra=private)
    expect_plain(a, n, bob.jid, "secret in")
    hint = "<no-copy xmlns='urn:xmpp:hints'/>"
    o = send(bob, ALICE, "no copy in", extra=hint)
    el = expect_plain(a, o, bob.jid, "no copy in")
    assert el.find(tag("urn:xmpp:hints", "no-copy")) is not None, show(el)
    p = send(a, BOB, "no copy out", extra=hint)
    expect_plain(bob, p, a.jid, "no copy out")
    for other in (b, c):
        for mid in (m, n, o, p):
            other.expect_nothing(0.1, pred=about(mid))
    b.expect_nothing(0.3, pred=is_message)
    # The next ordinary message is copied again.
    q = send(bob, ALICE, "ordinary")
    expect_plain(a, q, bob.jid, "ordinary")
    expect_carbon(b, "received", q, ALICE, bob.jid, ALICE, "ordinary")
    all_up(server, a, b, c, bob)


def test_disable_stops_copies(server, login):
    a, b, c, bob = three(login)
    enable(b, "disable")
    enable(b, "disable")  # section 8.1: repeated requests are fine
    m = send(bob, ALICE, "in")
    expect_plain(a, m, bob.jid, "in")
    n = send(a, BOB, "out")
    expect_plain(bob, n, a.jid, "out")
    b.expect_nothing(0.6, pred=is_message)
    c.expect_nothing(0.1, pred=is_message)
    enable(b)
    enable(b)
    o = send(a, BOB, "out again")
    expect_plain(bob, o, a.jid, "out again")
    expect_carbon(b, "sent", o, ALICE, a.jid, BOB, "out again")
    all_up(server, a, b, c, bob)


def test_enable_errors(server, login):
    a = online(login, "alice", "a")
    a2 = online(login, "alice", "a2")
    bob = online(login, "bob", "pc")
    bad = a.iq("set", "<toggle xmlns='%s'/>" % NS_CARBONS)
    assert bad.get("type") == "error", show(bad)
    assert stanza_error_condition(bad) == "bad-request", show(bad)
    assert bad.find(tag(NS_CLIENT, "error")).get("type") == "modify", show(bad)
    get = a.iq("get", "<enable xmlns='%s'/>" % NS_CARBONS)
    assert get.get("type") == "error", show(get)
    assert stanza_error_condition(get) == "service-unavailable", show(get)
    other = a.iq("set", "<enable xmlns='%s'/>" % NS_CARBONS, to=BOB)
    assert other.get("type") == "error", show(other)
    assert stanza_error_condition(other) == "service-unavailable", show(other)
    # None of the failures enabled carbons for a.
    m = send(a2, BOB, "one")
    expect_plain(bob, m, a2.jid, "one")
    a.expect_nothing(0.5, pred=is_message)
    # To the server or to the own bare JID: both work.
    ok = a.iq("set", "<enable xmlns='%s'/>" % NS_CARBONS, to="localhost")
    assert ok.get("type") == "result", show(ok)
    n = send(a2, BOB, "two")
    expect_plain(bob, n, a2.jid, "two")
    expect_carbon(a, "sent", n, ALICE, a2.jid, BOB, "two")
    off = a.iq("set", "<disable xmlns='%s'/>" % NS_CARBONS, to=ALICE)
    assert off.get("type") == "result", show(off)
    o = send(a2, BOB, "three")
    expect_plain(bob, o, a2.jid, "three")
    a.expect_nothing(0.5, pred=is_message)
    all_up(server, a, a2, bob)


def test_headline_groupchat_and_bodyless_normal_are_not_copied(server, login):
    a, b, c, bob = three(login)
    h = send(bob, ALICE + "/a", "news", type_="headline")
    expect_plain(a, h, bob.jid, "news", "headline")
    g = send(a, BOB, "group", type_="groupchat")
    err = a.wait_message(lambda e: e.get("id") == g, what="the groupchat error")
    assert err.get("type") == "error", show(err)
    assert stanza_error_condition(err) == "service-unavailable", show(err)
    k = send(a, BOB, "headline out", type_="headline")
    expect_plain(bob, k, a.jid, "headline out", "headline")
    x = send(bob, ALICE + "/a", None, type_="normal", extra="<x xmlns='urn:example:thing'/>")
    a.wait_message(lambda e: e.get("id") == x, what="the bodyless normal message")
    for mid in (h, g, k, x):
        b.expect_nothing(0.1, pred=about(mid))
    b.expect_nothing(0.4, pred=is_message)
    c.expect_nothing(0.1, pred=is_message)
    all_up(server, a, b, c, bob)


def test_own_resources_get_each_message_once(server, login):
    a, b, c, bob = three(login)
    enable(c)
    # a to b (own full JID): b gets the message, c one <sent/> copy, a nothing.
    m = send(a, ALICE + "/b", "note for b")
    expect_plain(b, m, a.jid, "note for b")
    expect_carbon(c, "sent", m, ALICE, a.jid, ALICE + "/b", "note for b")
    a.expect_nothing(0.3, pred=about(m))
    b.expect_nothing(0.1, pred=about(m))
    # b to the own bare JID: a (highest priority) gets it, c a copy, b nothing.
    n = send(b, ALICE, "note to self")
    expect_plain(a, n, b.jid, "note to self")
    expect_carbon(c, "sent", n, ALICE, b.jid, ALICE, "note to self")
    a.expect_nothing(0.2, pred=about(n))
    b.expect_nothing(0.2, pred=about(n))
    bob.expect_nothing(0.1, pred=is_message)
    all_up(server, a, b, c, bob)
