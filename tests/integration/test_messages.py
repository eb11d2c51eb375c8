"""Message routing of the core (RFC 6121 section 8, RFC 6120 sections 8 and 10)
against the real server: full and bare JIDs, priorities, message types,
unknown accounts and resources, no 'to', remote domains, malformed
addresses and types. After each scenario every client's stream is still up
(a ping round trip) and the server is alive.
"""

from hearthtest import NS_CLIENT, NS_STANZA_ERRORS, XmppClient, body_of, show, \
    stanza_error_condition, tag

NS_DELAY = "urn:xmpp:delay"


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def with_id(msg_id):
    return lambda el: is_message(el) and el.get("id") == msg_id


def online(login, user, resource, priority=None):
    """Log in, send initial presence (with a priority), and wait until the
    server has processed it (a ping round trip)."""
    c = login(user, resource)
    prio = "<priority>%d</priority>" % priority if priority is not None else ""
    c.send("<presence>%s</presence>" % prio)
    c.assert_ping()
    return c


def send(c, to, body="hello", type_="chat", msg_id=None, extra=""):
    msg_id = msg_id or XmppClient.new_id("msg")
    to_attr = " to='%s'" % to if to is not None else ""
    type_attr = " type='%s'" % type_ if type_ is not None else ""
    body_xml = "<body>%s</body>" % body if body is not None else ""
    c.send("<message%s%s id='%s'>%s%s</message>" % (to_attr, type_attr, msg_id, body_xml, extra))
    return msg_id


def expect_delivered(c, msg_id, sender, body, type_="chat", to=None):
    el = c.wait_message(lambda e: e.get("id") == msg_id, what="message %s" % msg_id)
    assert el.get("from") == sender, show(el)
    assert el.get("type") == type_, show(el)
    assert body_of(el) == body, show(el)
    if to is not None:
        assert el.get("to") == to, show(el)
    assert el.find(tag(NS_DELAY, "delay")) is None, "live delivery has a <delay/>: " + show(el)
    return el


def expect_error(c, msg_id, condition, error_type, sender=None):
    el = c.wait_message(lambda e: e.get("id") == msg_id, what="the error for %s" % msg_id)
    assert el.get("type") == "error", "expected an error for %s: %s" % (msg_id, show(el))
    assert el.get("to") == c.jid, show(el)
    if sender is not None:
        assert el.get("from") == sender, show(el)
    err = el.find(tag(NS_CLIENT, "error"))
    assert err is not None, show(el)
    assert err.get("type") == error_type, show(el)
    assert stanza_error_condition(el) == condition, show(el)
    return el


def all_up(server, *clients):
    for c in clients:
        c.assert_ping()
    server.assert_alive()


def test_full_jid_reaches_that_resource_only(server, login):
    alice = login("alice", "desk")
    a = online(login, "bob", "a")
    b = online(login, "bob", "b")
    c = login("bob", "c")  # connected, no presence: RFC 6121 8.5.3.1 still delivers
    m1 = send(alice, "bob@localhost/b", "for b")
    m2 = send(alice, "bob@localhost/c", "for c", "normal")
    expect_delivered(b, m1, alice.jid, "for b", to="bob@localhost/b")
    expect_delivered(c, m2, alice.jid, "for c", "normal", to="bob@localhost/c")
    for other in (a, c):
        other.expect_nothing(0.3, pred=with_id(m1))
    for other in (a, b):
        other.expect_nothing(0.3, pred=with_id(m2))
    alice.expect_nothing(0.2, pred=is_message)
    all_up(server, alice, a, b, c)


def test_bare_jid_goes_to_the_highest_priority_only(server, login):
    alice = login("alice", "desk")
    five = online(login, "bob", "five", 5)
    one = online(login, "bob", "one", 1)
    m = send(alice, "bob@localhost", "to the best")
    n = send(alice, "bob@localhost", "normal too", "normal")
    expect_delivered(five, m, alice.jid, "to the best", to="bob@localhost")
    expect_delivered(five, n, alice.jid, "normal too", "normal")
    one.expect_nothing(0.7, pred=is_message)
    alice.expect_nothing(0.2, pred=is_message)
    all_up(server, alice, five, one)


def test_bare_jid_equal_priorities_all_get_it(server, login):
    alice = login("alice", "desk")
    x = online(login, "bob", "x", 3)
    y = online(login, "bob", "y", 3)
    low = online(login, "bob", "low", 0)
    m = send(alice, "bob@localhost", "both of you")
    expect_delivered(x, m, alice.jid, "both of you")
    expect_delivered(y, m, alice.jid, "both of you")
    low.expect_nothing(0.5, pred=is_message)
    all_up(server, alice, x, y, low)


def test_bare_jid_with_only_negative_priority_goes_offline(server, login):
    alice = login("alice", "desk")
    neg = online(login, "bob", "neg", -1)
    m = send(alice, "bob@localhost", "keep it for me")
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_message)  # stored, not bounced
    neg.expect_nothing(0.5, pred=is_message)
    pos = online(login, "bob", "pos", 0)
    el = pos.wait_message(with_id(m), what="the stored message")
    assert body_of(el) == "keep it for me", show(el)
    assert el.find(tag(NS_DELAY, "delay")) is not None, show(el)
    neg.expect_nothing(0.3, pred=is_message)
    all_up(server, alice, neg, pos)


def test_headline_to_bare_jid_reaches_every_non_negative_resource(server, login):
    alice = login("alice", "desk")
    five = online(login, "bob", "five", 5)
    zero = online(login, "bob", "zero", 0)
    neg = online(login, "bob", "neg", -1)
    quiet = login("bob", "quiet")  # no presence: not available
    m = send(alice, "bob@localhost", "breaking news", "headline")
    expect_delivered(five, m, alice.jid, "breaking news", "headline")
    expect_delivered(zero, m, alice.jid, "breaking news", "headline")
    for c in (neg, quiet):
        c.expect_nothing(0.4, pred=is_message)
    alice.expect_nothing(0.2, pred=is_message)
    all_up(server, alice, five, zero, neg, quiet)


def test_groupchat_to_a_user_is_service_unavailable(server, login):
    """RFC 6121 8.5.2.1.1 (resources available) and 8.5.2.2.1 (none)."""
    alice = login("alice", "desk")
    bob = online(login, "bob", "phone")
    m = send(alice, "bob@localhost", "wrong place", "groupchat")
    expect_error(alice, m, "service-unavailable", "cancel", sender="bob@localhost")
    n = send(alice, "carol@localhost", "nobody home", "groupchat")
    expect_error(alice, n, "service-unavailable", "cancel", sender="carol@localhost")
    bob.expect_nothing(0.5, pred=is_message)
    all_up(server, alice, bob)


def test_error_messages_never_bounce(server, login):
    """RFC 6120 8.3.1: an error stanza is never answered with an error; RFC
    6121 8.5.2.1.1/8.5.2.2.1/8.5.3.2.1: messages of type error to a bare JID
    or a missing resource are silently ignored."""
    alice = login("alice", "desk")
    bob = online(login, "bob", "phone")
    payload = "<error type='cancel'><item-not-found xmlns='%s'/></error>" % NS_STANZA_ERRORS
    ids = [send(alice, to, None, "error", extra=payload)
           for to in ("nobody@localhost", "carol@localhost", "bob@localhost",
                      "bob@localhost/gone", "someone@example.org")]
    alice.assert_ping()
    alice.expect_nothing(0.7, pred=is_message)
    bob.expect_nothing(0.3, pred=is_message)
    assert len(ids) == 5
    all_up(server, alice, bob)


def test_message_to_unknown_local_user_is_service_unavailable(server, login):
    alice = login("alice", "desk")
    m = send(alice, "nobody@localhost", "anyone?")
    expect_error(alice, m, "service-unavailable", "cancel", sender="nobody@localhost")
    n = send(alice, "nobody@localhost/res", "anyone at all?", "normal")
    expect_error(alice, n, "service-unavailable", "cancel", sender="nobody@localhost/res")
    all_up(server, alice)


def test_unknown_resource_is_treated_as_bare_jid(server, login):
    """RFC 6121 8.5.3.2.1: chat and normal to a missing resource go to the
    bare JID."""
    alice = login("alice", "desk")
    a = online(login, "bob", "a")
    m = send(alice, "bob@localhost/nowhere", "lost resource")
    n = send(alice, "bob@localhost/nowhere", "lost normal", "normal")
    expect_delivered(a, m, alice.jid, "lost resource")
    expect_delivered(a, n, alice.jid, "lost normal", "normal")
    alice.expect_nothing(0.3, pred=is_message)
    all_up(server, alice, a)


def test_message_without_to_goes_to_own_bare_jid(server, login):
    """RFC 6120 10.3.1: no 'to' means the account's bare JID, which then
    follows the bare-JID rules (highest priority)."""
    low = online(login, "alice", "low", 0)
    high = online(login, "alice", "high", 5)
    m = send(low, None, "note to self")
    expect_delivered(high, m, low.jid, "note to self")
    low.expect_nothing(0.5, pred=is_message)
    all_up(server, low, high)


def test_remote_domain_is_remote_server_not_found(server, login):
    alice = login("alice", "desk")
    m = send(alice, "someone@example.org", "far away")
    expect_error(alice, m, "remote-server-not-found", "cancel", sender="someone@example.org")
    n = send(alice, "example.net", "domain only", "normal")
    expect_error(alice, n, "remote-server-not-found", "cancel", sender="example.net")
    all_up(server, alice)


def test_invalid_to_is_jid_malformed(server, login):
    alice = login("alice", "desk")
    for to in ("@localhost", "bob@", "bob@localhost/", "bob@local host", "a@b@localhost"):
        m = send(alice, to, "bad address")
        expect_error(alice, m, "jid-malformed", "modify")
        alice.assert_ping()
    all_up(server, alice)


def test_unknown_message_type_is_bad_request(server, login):
    alice = login("alice", "desk")
    bob = online(login, "bob", "phone")
    m = send(alice, "bob@localhost", "what am I", "chatty")
    expect_error(alice, m, "bad-request", "modify")
    bob.expect_nothing(0.5, pred=is_message)
    all_up(server, alice, bob)
