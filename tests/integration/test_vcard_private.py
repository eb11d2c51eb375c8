"""vcard-temp (XEP-0054) and private XML storage (XEP-0049) against the real
server.

vCard: a user sets their own (no 'to' or their own bare JID), anyone on the
server reads it at the bare JID, an account without one reads as an empty
<vCard/>, the server's own is item-not-found (as Prosody), setting another
user's is forbidden, [vcard] max_size is enforced with <not-acceptable/>.
Private storage: one element per namespace and name, only for the user
themself (forbidden for others), reserved namespaces are not-acceptable,
exactly one child element, [private] max_size. Both survive a restart.
"""


from conftest import USERS
from hearthtest import DOMAIN, NS_CLIENT, NS_DISCO_INFO, XmppClient, show, stanza_error_condition, tag

NS_VCARD = "vcard-temp"
NS_PRIVATE = "jabber:iq:private"
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN

ALICE_CARD = ("<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>al</NICKNAME>"
              "<N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N>"
              "<DESC>tea &amp; &lt;cake&gt; \u2615</DESC></vCard>")


def assert_error(el, etype, condition):
    assert el.get("type") == "error", show(el)
    err = el.find(tag(NS_CLIENT, "error"))
    assert err is not None, show(el)
    assert err.get("type") == etype, "error type %r, expected %r: %s" % (
        err.get("type"), etype, show(el))
    assert stanza_error_condition(el) == condition, show(el)


def iq_error(c, type_, payload, condition, etype, to=None):
    r = c.iq(type_, payload, to=to)
    assert_error(r, etype, condition)
    return r


def ok(c, type_, payload, to=None):
    r = c.iq(type_, payload, to=to)
    assert r.get("type") == "result", show(r)
    return r


def get_vcard(c, to=None):
    r = ok(c, "get", "<vCard xmlns='%s'/>" % NS_VCARD, to=to)
    children = list(r)
    assert len(children) == 1 and children[0].tag == tag(NS_VCARD, "vCard"), show(r)
    return children[0]


def check_alice_card(card):
    assert card.find(tag(NS_VCARD, "FN")).text == "Alice Liddell", show(card)
    assert card.find(tag(NS_VCARD, "NICKNAME")).text == "al", show(card)
    n = card.find(tag(NS_VCARD, "N"))
    assert n.find(tag(NS_VCARD, "FAMILY")).text == "Liddell", show(card)
    assert n.find(tag(NS_VCARD, "GIVEN")).text == "Alice", show(card)
    assert card.find(tag(NS_VCARD, "DESC")).text == "tea & <cake> \u2615", show(card)
    assert len(list(card)) == 4, show(card)


def private_get(c, inner):
    r = ok(c, "get", "<query xmlns='%s'>%s</query>" % (NS_PRIVATE, inner))
    q = r.find(tag(NS_PRIVATE, "query"))
    assert q is not None and len(list(r)) == 1, show(r)
    children = list(q)
    assert len(children) == 1, "query should hold exactly one element: %s" % show(r)
    return children[0]


def login_to(server, user, resource=None):
    c = XmppClient.login(server, user, USERS[user], resource)
    server.clients.append(c)
    return c


# --------------------------------------------------------------------------
# vCard


def test_vcard_set_and_get_own_and_others(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    # Nothing stored: an empty vCard (XEP-0054 section 3.1).
    card = get_vcard(alice)
    assert len(list(card)) == 0 and not (card.text or "").strip(), show(card)

    r = ok(alice, "set", ALICE_CARD)
    assert len(list(r)) == 0, show(r)
    check_alice_card(get_vcard(alice))
    check_alice_card(get_vcard(alice, to=ALICE))
    # Anyone on the server reads it at the bare JID.
    check_alice_card(get_vcard(bob, to=ALICE))
    assert len(list(get_vcard(bob, to=CAROL))) == 0
    # No such account (RFC 6121 section 8.5.1): service-unavailable.
    iq_error(bob, "get", "<vCard xmlns='vcard-temp'/>", "service-unavailable", "cancel",
             to="nobody@" + DOMAIN)

    # Replaced by a new one; own bare JID as 'to' is the same as none.
    ok(alice, "set", "<vCard xmlns='vcard-temp'><FN>A. L.</FN></vCard>", to=ALICE)
    card = get_vcard(bob, to=ALICE)
    assert [(el.tag, el.text) for el in card] == [(tag(NS_VCARD, "FN"), "A. L.")], show(card)
    # An empty vCard clears it.
    ok(alice, "set", "<vCard xmlns='vcard-temp'/>")
    assert len(list(get_vcard(bob, to=ALICE))) == 0

    # The server's own vCard: item-not-found (as Prosody).
    iq_error(alice, "get", "<vCard xmlns='vcard-temp'/>", "item-not-found", "cancel", to=DOMAIN)
    # Advertised on the server.
    r = ok(alice, "get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
    assert NS_VCARD in [f.get("var") for f in r.iter(tag(NS_DISCO_INFO, "feature"))], show(r)
    server.assert_alive()


def test_vcard_errors(make_server):
    server = make_server(overrides={"vcard": {"max_size": 1024}})
    alice = login_to(server, "alice", "desk")
    bob = login_to(server, "bob", "phone")
    ok(alice, "set", ALICE_CARD)

    # Someone else's vCard or the server's cannot be set.
    iq_error(bob, "set", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>", "forbidden", "auth",
             to=ALICE)
    iq_error(bob, "set", "<vCard xmlns='vcard-temp'><FN>Server</FN></vCard>", "forbidden", "auth",
             to=DOMAIN)
    # Too large (the serialised vCard over [vcard] max_size): not-acceptable
    # with a text, and the old vCard stays.
    big = "<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>" % ("x" * 1100)
    r = iq_error(alice, "set", big, "not-acceptable", "modify")
    text = r.find("%s/{urn:ietf:params:xml:ns:xmpp-stanzas}text" % tag(NS_CLIENT, "error"))
    assert text is not None and "1024" in text.text, show(r)
    just = "<vCard xmlns='vcard-temp'><DESC>%s</DESC></vCard>" % ("y" * 950)
    ok(alice, "set", just)
    assert get_vcard(bob, to=ALICE).find(tag(NS_VCARD, "DESC")).text == "y" * 950
    # Wrong element in the namespace.
    iq_error(alice, "set", "<vcard xmlns='vcard-temp'/>", "bad-request", "modify")
    iq_error(alice, "get", "<query xmlns='vcard-temp'/>", "bad-request", "modify")
    iq_error(bob, "get", "<VCARD xmlns='vcard-temp'/>", "bad-request", "modify", to=ALICE)
    # Nothing of it changed alice's vCard; streams are up.
    assert get_vcard(alice).find(tag(NS_VCARD, "DESC")).text == "y" * 950
    for c in (alice, bob):
        c.assert_ping()
    server.assert_alive()


# --------------------------------------------------------------------------
# private XML


def test_private_set_get_and_empty(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    # Nothing stored: the element as asked for, empty.
    el = private_get(alice, "<exodus xmlns='exodus:prefs'/>")
    assert el.tag == "{exodus:prefs}exodus" and len(list(el)) == 0, show(el)

    ok(alice, "set", "<query xmlns='%s'><exodus xmlns='exodus:prefs'>"
       "<defaultnick>Hamlet &amp; co</defaultnick></exodus></query>" % NS_PRIVATE)
    ok(alice, "set", "<query xmlns='%s'><storage xmlns='storage:bookmarks'>"
       "<conference jid='tea@muc.example' autojoin='true' name='Tea'><nick>al</nick></conference>"
       "</storage></query>" % NS_PRIVATE)
    el = private_get(alice, "<exodus xmlns='exodus:prefs'/>")
    assert el.tag == "{exodus:prefs}exodus", show(el)
    assert [(c.tag, c.text) for c in el] == [("{exodus:prefs}defaultnick", "Hamlet & co")], show(el)
    el = private_get(alice, "<storage xmlns='storage:bookmarks'/>")
    conf = el.find("{storage:bookmarks}conference")
    assert conf is not None and conf.get("jid") == "tea@muc.example", show(el)
    assert conf.get("autojoin") == "true" and conf.get("name") == "Tea", show(el)
    assert conf.find("{storage:bookmarks}nick").text == "al", show(el)
    # Another name in the same namespace is another item.
    el = private_get(alice, "<other xmlns='exodus:prefs'/>")
    assert el.tag == "{exodus:prefs}other" and len(list(el)) == 0, show(el)
    # Bob's storage is his own.
    el = private_get(bob, "<exodus xmlns='exodus:prefs'/>")
    assert len(list(el)) == 0, show(el)
    # Setting an empty element clears the item.
    ok(alice, "set", "<query xmlns='%s'><exodus xmlns='exodus:prefs'/></query>" % NS_PRIVATE)
    assert len(list(private_get(alice, "<exodus xmlns='exodus:prefs'/>"))) == 0
    # To one's own bare JID is the same as no 'to'.
    r = ok(alice, "get", "<query xmlns='%s'><storage xmlns='storage:bookmarks'/></query>"
           % NS_PRIVATE, to=ALICE)
    assert r.find(".//{storage:bookmarks}conference") is not None, show(r)
    server.assert_alive()


def test_private_errors(make_server):
    server = make_server(overrides={"private": {"max_size": 1024}})
    alice = login_to(server, "alice", "desk")
    bob = login_to(server, "bob", "phone")
    q = "<query xmlns='%s'>%%s</query>" % NS_PRIVATE
    ok(alice, "set", q % "<prefs xmlns='my:prefs'><a>1</a></prefs>")

    # Another user's storage (XEP-0049: forbidden).
    iq_error(bob, "get", q % "<prefs xmlns='my:prefs'/>", "forbidden", "auth", to=ALICE)
    iq_error(bob, "set", q % "<prefs xmlns='my:prefs'><a>2</a></prefs>", "forbidden", "auth",
             to=ALICE)
    # No child, two children.
    for t in ("get", "set"):
        iq_error(alice, t, q % "", "bad-request", "modify")
        iq_error(alice, t, q % "<a xmlns='x:a'/><b xmlns='x:b'/>", "bad-request", "modify")
    # Reserved namespaces: the child in jabber:iq:private (no own xmlns) or
    # jabber:client.
    for t in ("get", "set"):
        iq_error(alice, t, q % "<prefs/>", "not-acceptable", "modify")
        iq_error(alice, t, q % "<prefs xmlns='jabber:iq:private'/>", "not-acceptable", "modify")
        iq_error(alice, t, q % "<prefs xmlns='jabber:client'/>", "not-acceptable", "modify")
    # Wrong element.
    iq_error(alice, "get", "<storage xmlns='%s'/>" % NS_PRIVATE, "bad-request", "modify")
    # Too large.
    r = iq_error(alice, "set", q % ("<prefs xmlns='my:prefs'><a>%s</a></prefs>" % ("z" * 1100)),
                 "not-acceptable", "modify")
    text = r.find("%s/{urn:ietf:params:xml:ns:xmpp-stanzas}text" % tag(NS_CLIENT, "error"))
    assert text is not None and "1024" in text.text, show(r)
    # Nothing of it changed the stored item; the streams are up.
    el = private_get(alice, "<prefs xmlns='my:prefs'/>")
    assert [(c.tag, c.text) for c in el] == [("{my:prefs}a", "1")], show(el)
    for c in (alice, bob):
        c.assert_ping()
    server.assert_alive()


def test_vcard_and_private_survive_restart(server):
    alice = login_to(server, "alice", "desk")
    ok(alice, "set", ALICE_CARD)
    ok(alice, "set", "<query xmlns='%s'><prefs xmlns='my:prefs'><theme>dark</theme></prefs>"
       "</query>" % NS_PRIVATE)
    server.restart()
    alice = login_to(server, "alice", "desk")
    bob = login_to(server, "bob", "phone")
    check_alice_card(get_vcard(alice))
    check_alice_card(get_vcard(bob, to=ALICE))
    el = private_get(alice, "<prefs xmlns='my:prefs'/>")
    assert [(c.tag, c.text) for c in el] == [("{my:prefs}theme", "dark")], show(el)
    server.assert_alive()


def test_private_item_count_is_capped(server, login):
    """At most 256 private XML items per account: the next new namespace is
    refused with resource-constraint, replacing or clearing an existing one
    still works, and another account is unaffected."""
    alice = login("alice", "r1")
    sets = "".join(
        "<iq type='set' id='p%d'><query xmlns='jabber:iq:private'>"
        "<data xmlns='urn:example:n%d'>v</data></query></iq>" % (i, i) for i in range(256))
    alice.send(sets)
    for i in range(256):
        r = alice.wait_for(lambda e, i=i: e.get("id") == "p%d" % i, what="result p%d" % i)
        assert r.get("type") == "result", show(r)
    iq_error(alice, "set", "<query xmlns='jabber:iq:private'><data xmlns='urn:example:n256'>v"
             "</data></query>", "resource-constraint", "wait")
    ok(alice, "set", "<query xmlns='jabber:iq:private'><data xmlns='urn:example:n7'>new</data>"
       "</query>")
    ok(alice, "set", "<query xmlns='jabber:iq:private'><data xmlns='urn:example:n8'/></query>")
    ok(alice, "set", "<query xmlns='jabber:iq:private'><data xmlns='urn:example:n256'>v</data>"
       "</query>")
    bob = login("bob", "r1")
    ok(bob, "set", "<query xmlns='jabber:iq:private'><data xmlns='urn:example:n1'>b</data></query>")
    server.assert_alive()
