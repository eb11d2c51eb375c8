"""Resource binding, sessions, routing between local users and the server's
own IQ handlers (RFC 6120 sections 7-10, RFC 6121, XEP-0030, XEP-0199)."""

import pytest

from conftest import USERS
from hearthtest import (NS_BIND, NS_CLIENT, NS_DISCO_INFO, NS_SESSION, XmppClient, body_of,
                        show, stanza_error_condition, tag)


def is_error_for(msg_id):
    return lambda e: e.get("id") == msg_id and e.get("type") == "error"


# -- binding


def test_bind_client_chosen_resource(login):
    c = login("alice", "laptop")
    assert c.jid == "alice@localhost/laptop"
    c.assert_ping()


def test_bind_server_generated_resource(login):
    c = login("alice")
    user, _, resource = c.jid.partition("/")
    assert user == "alice@localhost"
    assert resource, "empty generated resource: %r" % c.jid
    other = login("alice")
    assert other.jid != c.jid, "two generated resources are equal: %s" % c.jid


def test_session_feature_and_legacy_session_iq(server, connect):
    c = connect()
    c.open_stream()
    c.starttls()
    feats = c.authenticate("alice", USERS["alice"])
    sess = feats.find(tag(NS_SESSION, "session"))
    if sess is not None:
        assert sess.find(tag(NS_SESSION, "optional")) is not None, (
            "legacy <session/> feature without <optional/>: " + show(feats))
    c.bind("legacy")
    reply = c.iq("set", "<session xmlns='%s'/>" % NS_SESSION)
    assert reply.get("type") == "result", show(reply)
    assert len(reply) == 0, "session result has children: " + show(reply)


def test_duplicate_full_jid_conflict_closes_old_session(server, login):
    old = login("alice", "same")
    new = XmppClient.connect(server.starttls_port, name="alice-new")
    server.clients.append(new)
    new.open_stream()
    new.starttls()
    new.authenticate("alice", USERS["alice"])
    reply = new.bind_request("same")
    assert reply.get("type") == "result", show(reply)
    jid = reply.find("%s/%s" % (tag(NS_BIND, "bind"), tag(NS_BIND, "jid")))
    assert jid is not None and jid.text == "alice@localhost/same", show(reply)
    assert old.expect_stream_error() == "conflict"
    new.assert_ping()
    # The new session is the one that receives for the full JID.
    bob = login("bob", "b")
    bob.message("alice@localhost/same", "to the new one")
    got = new.wait_message(what="the message for alice@localhost/same")
    assert body_of(got) == "to the new one"


def test_second_bind_on_same_stream(login):
    # RFC 6120 7.7.2.1 allows refusing a second bind on one stream; it must
    # not break the stream.
    c = login("alice", "one")
    reply = c.bind_request("two")
    assert reply.get("type") in ("result", "error"), show(reply)
    c.assert_ping()


# -- the server's own IQs


@pytest.mark.parametrize("to", ["localhost", None], ids=["to-domain", "no-to"])
def test_ping_server(login, to):
    c = login("alice")
    reply = c.ping(to=to)
    assert reply.get("type") == "result", show(reply)
    assert len(reply) == 0, "ping result has children: " + show(reply)


def test_disco_info_server(login):
    c = login("alice")
    reply = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to="localhost")
    assert reply.get("type") == "result", show(reply)
    query = reply.find(tag(NS_DISCO_INFO, "query"))
    assert query is not None, show(reply)
    idents = [(i.get("category"), i.get("type")) for i in query.findall(tag(NS_DISCO_INFO, "identity"))]
    assert ("server", "im") in idents, show(reply)
    feats = {f.get("var") for f in query.findall(tag(NS_DISCO_INFO, "feature"))}
    assert {NS_DISCO_INFO, "urn:xmpp:ping"} <= feats, show(reply)


@pytest.mark.parametrize("iq_type,to", [("get", "localhost"), ("set", "localhost"),
                                        ("get", None)], ids=["get", "set", "get-no-to"])
def test_unknown_iq_service_unavailable(login, iq_type, to):
    c = login("alice")
    reply = c.iq(iq_type, "<query xmlns='urn:example:hearth:unknown'/>", to=to)
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == "service-unavailable", show(reply)
    c.assert_ping()


# -- routing between local users


def test_message_to_full_jid(login):
    alice = login("alice", "a1")
    bob = login("bob", "b1")
    alice.message("bob@localhost/b1", "hello bob", msg_id="m-full")
    got = bob.wait_message(lambda e: e.get("id") == "m-full")
    assert body_of(got) == "hello bob"
    assert got.get("from") == "alice@localhost/a1", "from not stamped: " + show(got)
    assert got.get("to") == "bob@localhost/b1", show(got)
    bob.message(alice.jid, "hello alice", msg_id="m-back")
    got = alice.wait_message(lambda e: e.get("id") == "m-back")
    assert body_of(got) == "hello alice"
    assert got.get("from") == "bob@localhost/b1"


def test_spoofed_from_is_not_delivered(login):
    # RFC 6120 8.1.2.1: the server stamps (or rejects) the 'from'.
    alice = login("alice", "a1")
    bob = login("bob", "b1")
    alice.send("<message from='carol@localhost/x' to='bob@localhost/b1' type='chat' "
               "id='spoof'><body>I am carol</body></message>")
    el = None
    try:
        el = bob.wait_message(lambda e: e.get("id") == "spoof", timeout=2)
    except AssertionError:
        pass  # rejected (stream error or stanza error to alice): fine
    if el is not None:
        assert el.get("from") == "alice@localhost/a1", "spoofed from delivered: " + show(el)


def test_message_to_bare_jid_single_resource(login):
    alice = login("alice", "a1")
    bob = login("bob", "b1")
    bob.send("<presence/>")
    bob.assert_ping()  # the presence has been processed
    alice.message("bob@localhost", "to your bare jid", msg_id="m-bare")
    got = bob.wait_message(lambda e: e.get("id") == "m-bare")
    assert body_of(got) == "to your bare jid"
    assert got.get("from") == "alice@localhost/a1"


def test_message_to_bare_jid_reaches_available_resources(login):
    alice = login("alice", "a1")
    phone = login("bob", "phone")
    desk = login("bob", "desk")
    for c in (phone, desk):
        c.send("<presence/>")
        c.assert_ping()
    alice.message("bob@localhost", "both of you", msg_id="m-both")
    for c in (phone, desk):
        got = c.wait_message(lambda e: e.get("id") == "m-both", what="bare-JID message on " + c.jid)
        assert body_of(got) == "both of you"


def test_directed_presence_to_full_jid(login):
    alice = login("alice", "a1")
    bob = login("bob", "b1")
    alice.send("<presence to='bob@localhost/b1' id='dp1'><status>hi</status></presence>")
    got = bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("id") == "dp1",
                       what="the directed presence")
    assert got.get("from") == "alice@localhost/a1", show(got)


def test_message_to_offline_user_without_offline_storage_bounces(make_server):
    # With the offline module switched off, RFC 6121 §8.5.2.2.1: no storage,
    # so the sender is told.
    server = make_server(overrides={"modules": {"disabled": "offline"}})
    alice = XmppClient.login(server, "alice", USERS["alice"], resource="a1")
    server.clients.append(alice)
    alice.message("carol@localhost", "are you there?", msg_id="m-off")
    err = alice.wait_message(is_error_for("m-off"), what="the error for m-off")
    assert stanza_error_condition(err) == "service-unavailable", show(err)
    assert err.get("from") == "carol@localhost", show(err)
    alice.assert_ping()


def test_message_to_unknown_user_service_unavailable(login):
    alice = login("alice", "a1")
    alice.message("nobody@localhost", "hello?", msg_id="m-nobody")
    err = alice.wait_message(is_error_for("m-nobody"), what="the error for m-nobody")
    assert stanza_error_condition(err) == "service-unavailable", show(err)


@pytest.mark.parametrize("to", ["@localhost", "ju:liet@localhost", "alice@localhost/",
                                "alice@@localhost"])
def test_message_to_malformed_jid(login, to):
    alice = login("alice", "a1")
    alice.message(to, "bad address", msg_id="m-bad")
    err = alice.wait_message(is_error_for("m-bad"), what="the error for to=%r" % to)
    assert stanza_error_condition(err) == "jid-malformed", show(err)
    alice.assert_ping()


# -- shutdown


def test_sigterm_system_shutdown_on_all_streams(server, login, connect):
    alice = login("alice", "a1")
    bob = login("bob", "b1", direct_tls=True)
    plain = connect()
    plain.open_stream()
    server.send_sigterm()
    for c in (alice, bob, plain):
        assert c.expect_stream_error() == "system-shutdown", c.name
    server.stop()  # already signalled: waits, asserts code 0, no crash, no stray worker


@pytest.mark.parametrize("iq_type", ["result", "error"])
def test_no_reply_to_iq_result_or_error(login, iq_type):
    # RFC 6120 8.2.3: an IQ of type result or error is never answered.
    c = login("alice", "a1")
    c.send("<iq type='%s' id='noreply' to='localhost'/>" % iq_type)
    c.assert_ping()
    c.expect_nothing(0.3, lambda e: e.get("id") == "noreply")


def test_iq_get_without_payload_bad_request(login):
    # RFC 6120 8.2.3: get/set carries exactly one child; 8.3.3.1 bad-request.
    c = login("alice", "a1")
    reply = c.iq("get", "", to="localhost")
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == "bad-request", show(reply)


def test_stanza_before_bind_not_routed(server, login):
    # RFC 6120 7.1: no stanzas are processed before resource binding.
    bob = login("bob", "b1")
    c = XmppClient.connect(server.starttls_port, name="alice-unbound")
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    c.authenticate("alice", USERS["alice"])
    c.send("<message to='bob@localhost/b1' type='chat' id='early'><body>x</body></message>")
    bob.assert_ping()
    bob.expect_nothing(0.5, lambda e: e.get("id") == "early")
    server.assert_alive()
