"""Input limits and restricted XML (RFC 6120 sections 4.9.3 and 11): a bad
stream is closed with the right stream error and nothing else notices."""

import time

import pytest

from conftest import USERS
from hearthtest import NS_TLS, XmppClient, body_of


def big_message(to, size):
    """A <message/> of exactly `size` bytes."""
    head = "<message to='%s' type='chat' id='big'><body>" % to
    tail = "</body></message>"
    return head + "A" * (size - len(head) - len(tail)) + tail


def assert_server_fine(server, user="carol"):
    """The server still accepts a fresh login and answers a ping."""
    server.assert_alive()
    c = XmppClient.login(server, user, USERS[user])
    try:
        c.assert_ping()
    finally:
        c.close()


def test_one_mebibyte_stanza_policy_violation(server, login):
    bob = login("bob", "watcher")
    alice = login("alice", "flood")
    alice.send_flood(big_message("bob@localhost/watcher", 1024 * 1024))
    assert alice.expect_stream_error() == "policy-violation"
    # The other user's session is untouched and got nothing of the flood.
    bob.assert_ping()
    bob.expect_nothing(0.3, lambda e: e.get("id") == "big")
    bob.message("bob@localhost/watcher", "still here")
    assert body_of(bob.wait_message()) == "still here"
    assert_server_fine(server)


def test_stanza_below_default_limit_is_accepted(server, login):
    alice = login("alice", "big")
    alice.send(big_message("alice@localhost/big", 200000))
    got = alice.wait_message(lambda e: e.get("id") == "big")
    assert len(body_of(got)) > 199000


def test_max_stanza_size_override(make_server):
    server = make_server(overrides={"c2s": {"max_stanza_size": 20000}})
    alice = XmppClient.login(server, "alice", USERS["alice"], "small")
    server.clients.append(alice)
    alice.send(big_message("alice@localhost/small", 10000))
    assert len(body_of(alice.wait_message(lambda e: e.get("id") == "big"))) > 9000
    alice.send_flood(big_message("alice@localhost/small", 30000))
    assert alice.expect_stream_error() == "policy-violation"
    assert_server_fine(server)


def test_oversized_stanza_before_tls(server, connect):
    c = connect()
    c.open_stream()
    c.send_flood("<message to='bob@localhost'><body>" + "A" * 400000 + "</body></message>")
    # Either limit applies first: the size limit or the no-stanzas-before-TLS rule.
    assert c.expect_stream_error() in ("policy-violation", "not-authorized")
    assert_server_fine(server)


PROLOGUE_HEADER = ("<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
                   "xmlns:stream='http://etherx.jabber.org/streams'>")


@pytest.mark.parametrize("prologue", [
    "<?xml version='1.0'?><!DOCTYPE stream:stream>",
    "<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM 'http://127.0.0.1:9/x.dtd'>",
    "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY xxe 'boom'>]>",
    "<!DOCTYPE stream:stream [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>]>",
], ids=["doctype", "doctype-system", "entity", "nested-entities"])
def test_doctype_restricted_xml_before_tls(server, connect, prologue):
    c = connect()
    c.send(prologue + PROLOGUE_HEADER)
    assert c.expect_stream_error() == "restricted-xml"
    assert_server_fine(server)


def test_doctype_restricted_xml_after_tls(server, connect):
    c = connect()
    c.open_stream()
    c.starttls(reopen=False)
    c._new_parser()
    c.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" + PROLOGUE_HEADER)
    assert c.expect_stream_error() == "restricted-xml"
    assert_server_fine(server)


def test_entity_declaration_after_auth_restart(server, connect):
    # The stream restart after SASL parses a new header: same rules.
    c = connect()
    c.open_stream()
    c.starttls()
    res = c.sasl("alice", USERS["alice"], "SCRAM-SHA-256")
    assert res.tag.endswith("success")
    c._new_parser()
    c.send("<!DOCTYPE stream:stream [<!ENTITY x 'y'>]>" + PROLOGUE_HEADER)
    assert c.expect_stream_error() == "restricted-xml"
    assert_server_fine(server)


@pytest.mark.parametrize("payload", [
    "<?hearth evil?>",
    "<message to='bob@localhost' type='chat'><?pi inside?><body>x</body></message>",
    "<!-- a comment -->",
    "<message to='bob@localhost' type='chat'><body>x<!-- inside --></body></message>",
], ids=["pi", "pi-in-stanza", "comment", "comment-in-stanza"])
def test_restricted_xml_after_login(server, login, payload):
    bob = login("bob", "other")
    alice = login("alice", "evil")
    alice.send(payload)
    assert alice.expect_stream_error() == "restricted-xml"
    bob.expect_nothing(0.3, lambda e: e.tag.endswith("message"))
    bob.assert_ping()
    assert_server_fine(server)


@pytest.mark.parametrize("payload", [
    b"<message to='bob@localhost'><body>hi</message>",
    b"<message to='bob@localhost' <body/></message>",
    b"<message to='bob@localhost'><body>\xff\xfe</body></message>",
    b"<message to='bob@localhost'><body>&undefined;</body></message>",
], ids=["mismatched-tag", "bad-attribute", "bad-utf8", "undefined-entity"])
def test_not_well_formed(server, login, payload):
    alice = login("alice", "bad")
    alice.send(payload)
    cond = alice.expect_stream_error()
    if b"&undefined;" in payload:
        # An entity reference is both ill-formed and restricted XML.
        assert cond in ("not-well-formed", "restricted-xml"), cond
    elif b"\xff" in payload:
        # RFC 6120 11.6: bytes that are not UTF-8 may also be reported as such.
        assert cond in ("not-well-formed", "unsupported-encoding"), cond
    else:
        assert cond == "not-well-formed", cond
    assert_server_fine(server)


def test_not_well_formed_before_tls(server, connect):
    c = connect()
    c.open_stream()
    c.send("<starttls xmlns='%s'><</starttls>" % NS_TLS)
    assert c.expect_stream_error() == "not-well-formed"
    assert_server_fine(server)


def test_deep_nesting_does_not_hurt(server, login):
    alice = login("alice", "deep")
    depth = 5000
    alice.send_flood("<message to='alice@localhost/deep'>" + "<x xmlns='urn:t'>" * depth
                     + "</x>" * depth + "</message>")
    # Closing with a stream error (policy-violation) or delivering are both
    # fine; the server must neither crash nor hang.
    el = alice.wait_for(lambda e: True, what="a reply to a deeply nested stanza")
    if el.tag.endswith("error") and not el.tag.endswith("}message"):
        alice.expect_close()
    assert_server_fine(server)


def test_pre_auth_timeout(make_server):
    server = make_server(overrides={"c2s": {"pre_auth_timeout": 5}})
    alice = XmppClient.login(server, "alice", USERS["alice"], "stays")
    server.clients.append(alice)
    idle = XmppClient.connect(server.starttls_port, timeout=12, name="idle")
    server.clients.append(idle)
    idle.open_stream()
    idle.starttls()
    start = time.monotonic()
    cond = idle.expect_stream_error(timeout=10)
    waited = time.monotonic() - start
    assert cond == "connection-timeout", cond
    assert waited > 3.5, "closed after %.1f s, before pre_auth_timeout = 5" % waited
    # An authenticated session is not subject to the pre-auth timer.
    alice.assert_ping()


@pytest.mark.parametrize("header,condition", [
    ("<stream:stream to='localhost' version='1.0' xmlns='jabber:server' "
     "xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-namespace"),
    ("<stream:stream to='localhost' version='1.0' "
     "xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-namespace"),
    ("<stream:stream to='localhost' version='1.0' xmlns='jabber:client' "
     "xmlns:stream='urn:example:not-streams'>", "invalid-namespace"),
    ("<stream:stream to='elsewhere.example' version='1.0' xmlns='jabber:client' "
     "xmlns:stream='http://etherx.jabber.org/streams'>", "host-unknown"),
    ("<stream:stream to='localhost' xmlns='jabber:client' "
     "xmlns:stream='http://etherx.jabber.org/streams'>", "unsupported-version"),
], ids=["jabber-server", "no-default-ns", "wrong-stream-ns", "unknown-host", "no-version"])
def test_bad_stream_header(server, connect, header, condition):
    """RFC 6120 4.9.3: a wrong stream header is answered with the matching
    stream error, and nothing else on the server notices."""
    c = connect()
    c.send(header)
    assert c.expect_stream_error() == condition
    assert_server_fine(server)


def test_client_that_never_reads_is_closed_and_others_are_unharmed(server, login):
    """A session that stops reading has at most a few MiB queued for it; then
    it is closed. Messages to the account's bare JID keep reaching its other
    resources, and the sender and the server never notice."""
    alice = login("alice")
    # The stuck session is bound first, so that closing it while the router
    # walks bob's sessions would disturb the walk over the others.
    slow = login("bob", resource="slow")
    fast = login("bob", resource="fast")
    for c in (fast, slow):
        c.send("<presence/>")
    fast.wait_for(lambda el: el.tag.endswith("presence") and el.get("from", "").endswith("/slow"),
                  what="slow's presence")
    body = "y" * 200000
    for i in range(120):
        alice.send("<message to='bob@localhost' type='chat' id='m%d'><body>%s</body></message>"
                   % (i, body))
        el = fast.wait_for(lambda el: el.tag.endswith("message") and el.get("id") == "m%d" % i,
                           what="message m%d at the reading resource" % i)
        assert el is not None
        if "output buffer over" in server.log_text():
            break
    assert "output buffer over" in server.log_text(), "the stuck session was never closed"
    # The stuck resource is gone: it gets an unavailable presence broadcast.
    fast.wait_for(lambda el: el.tag.endswith("presence") and el.get("type") == "unavailable"
                  and el.get("from", "").endswith("/slow"), what="slow's unavailable presence")
    alice.ping()
    fast.ping()
    server.assert_alive()
