"""Offline messages (XEP-0160) against the real server.

A chat/normal message for an account with no available resource of priority
>= 0 is stored (durably: it survives `kill -9` of the whole server) with a
XEP-0203 <delay/> from the server's domain, and delivered in order to the
first resource that sends initial presence with priority >= 0. headline,
error and standalone chat-state messages are never stored; groupchat is
answered with service-unavailable (RFC 6121 section 8.5.2.2.1). A full queue
([offline] max_messages) answers <resource-constraint/> of type 'wait'.
"""

import asyncio
import calendar
import os
import re
import subprocess
import time

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_STANZA_ERRORS, XmppClient, body_of,
                        show, stanza_error_condition, tag)
from test_login import loop, make_xmpp, start_session, stop  # noqa: F401 (loop: fixture)

NS_DELAY = "urn:xmpp:delay"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
STAMP_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$")


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def go_online(c, priority=None):
    """Initial presence, then a round trip so the server has processed it."""
    prio = "<priority>%d</priority>" % priority if priority is not None else ""
    c.send("<presence>%s</presence>" % prio)
    c.assert_ping()
    return c


def login_to(server, user, resource=None):
    """Like the login fixture, for servers from make_server."""
    c = XmppClient.login(server, user, USERS[user], resource)
    server.clients.append(c)
    return c


def send_message(c, to, body=None, type_="chat", msg_id=None, extra=""):
    msg_id = msg_id or XmppClient.new_id("off")
    type_attr = " type='%s'" % type_ if type_ is not None else ""
    body_xml = "<body>%s</body>" % body if body is not None else ""
    c.send("<message to='%s'%s id='%s'>%s%s</message>" % (to, type_attr, msg_id, body_xml, extra))
    return msg_id


def stamp_seconds(stamp):
    m = STAMP_RE.match(stamp or "")
    assert m, "delay stamp %r is not a XEP-0082 UTC DateTime" % stamp
    return calendar.timegm(tuple(int(x) for x in m.groups()[:6]))


def check_offline_copy(el, sender, to, msg_id, type_, body, not_before, not_after):
    """The delivered stanza is the sent one plus the server's <delay/>."""
    assert el.get("id") == msg_id, show(el)
    assert el.get("from") == sender, show(el)
    # A message to a missing resource is handled as one to the bare JID
    # (RFC 6121 8.5.3.2.1); the server may keep or rewrite its 'to'.
    assert el.get("to") in (to, to.split("/", 1)[0]), show(el)
    assert el.get("type") == type_, show(el)
    assert body_of(el) == body, show(el)
    delays = el.findall(tag(NS_DELAY, "delay"))
    assert len(delays) == 1, "expected one <delay/>: %s" % show(el)
    assert delays[0].get("from") == DOMAIN, show(el)
    t = stamp_seconds(delays[0].get("stamp"))
    assert not_before - 2 <= t <= not_after + 2, "stamp %s not within the send window: %s" % (
        delays[0].get("stamp"), show(el))


def receive_messages(c, n, what="an offline message"):
    return [c.wait_message(what="%s (%d of %d)" % (what, i + 1, n)) for i in range(n)]


def offline_records(server):
    """Records in the 'offline' table of data.mdb (read with mdb_dump)."""
    path = os.path.join(server.data_dir, "data.mdb")
    r = subprocess.run(["mdb_dump", "-n", "-s", "offline", path], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, "mdb_dump failed: %s %s" % (r.stdout, r.stderr)
    data = r.stdout.split("HEADER=END", 1)[1]
    return sum(1 for line in data.splitlines() if line.startswith(" ")) // 2


def hard_restart(server):
    """kill -9 of the whole server (every process of its group), then a new
    `hearth run` on the same data_dir and INI."""
    server.restart(kill=True)


def test_messages_are_stored_and_delivered_in_order_with_delay(server, login):
    alice = login("alice", "desk")
    sent = [("chat", "first"), ("normal", "second &amp; &lt;more&gt;"), (None, "third"),
            ("chat", "vierte \u2713")]
    expected_bodies = ["first", "second & <more>", "third", "vierte \u2713"]
    before = time.time()
    ids = [send_message(alice, "bob@localhost", body, type_) for type_, body in sent]
    alice.assert_ping()
    after = time.time()
    # Stored, not bounced.
    alice.expect_nothing(0.3, pred=is_message)
    assert offline_records(server) >= len(sent)

    bob = login("bob", "phone")
    # Nothing before initial presence (XEP-0160 section 2).
    bob.expect_nothing(0.5, pred=is_message)
    go_online(bob)
    got = receive_messages(bob, len(sent))
    for el, (type_, _), body, msg_id in zip(got, sent, expected_bodies, ids):
        check_offline_copy(el, alice.jid, "bob@localhost", msg_id, type_, body, before, after)
    bob.expect_nothing(0.5, pred=is_message)

    # Delivered means deleted: another resource gets nothing, the table is empty.
    bob2 = login("bob", "laptop")
    go_online(bob2)
    bob2.expect_nothing(0.7, pred=is_message)
    assert offline_records(server) == 0
    for c in (alice, bob, bob2):
        c.assert_ping()
    server.assert_alive()


def test_stored_messages_survive_kill_9(server, login):
    alice = login("alice", "desk")
    before = time.time()
    ids = [send_message(alice, "bob@localhost", "durable %d" % i) for i in range(3)]
    ids.append(send_message(alice, "bob@localhost/gone", "to a resource", "normal"))
    # The round trip proves the server has handled the messages; storing
    # commits before the next stanza is read, so they are on disk now.
    alice.assert_ping()
    after = time.time()
    alice_jid = alice.jid
    hard_restart(server)

    bob = login("bob", "phone")
    go_online(bob)
    got = receive_messages(bob, 4)
    for i in range(3):
        check_offline_copy(got[i], alice_jid, "bob@localhost", ids[i], "chat", "durable %d" % i,
                           before, after)
    check_offline_copy(got[3], alice_jid, "bob@localhost/gone", ids[3], "normal",
                       "to a resource", before, after)
    bob.expect_nothing(0.5, pred=is_message)
    bob.assert_ping()
    server.assert_alive()


def test_full_queue_bounces_resource_constraint(make_server):
    server = make_server({"offline": {"max_messages": 2}})
    alice = login_to(server, "alice", "desk")
    ids = [send_message(alice, "bob@localhost", "m%d" % i) for i in range(3)]
    err = alice.wait_message(lambda e: e.get("type") == "error", what="the error for m2")
    assert err.get("id") == ids[2], show(err)
    assert err.get("from") == "bob@localhost", show(err)
    assert err.get("to") == alice.jid, show(err)
    error = err.find(tag(NS_CLIENT, "error"))
    assert error is not None and error.get("type") == "wait", show(err)
    assert stanza_error_condition(err) == "resource-constraint", show(err)
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_message)  # no error for m0, m1

    bob = login_to(server, "bob", "phone")
    go_online(bob)
    got = receive_messages(bob, 2)
    assert [body_of(e) for e in got] == ["m0", "m1"], [show(e) for e in got]
    assert [e.get("id") for e in got] == ids[:2]
    bob.expect_nothing(0.5, pred=is_message)

    # Delivery emptied the queue: bob goes offline, alice may store again.
    bob.close()
    server.clients.remove(bob)
    time.sleep(0.3)
    again = send_message(alice, "bob@localhost", "after")
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_message)
    bob = login_to(server, "bob", "tablet")
    go_online(bob)
    el = bob.wait_message(what="the message stored after delivery")
    assert el.get("id") == again and body_of(el) == "after", show(el)
    server.assert_alive()


def test_zero_max_messages_stores_nothing(make_server):
    """max_messages = 0 switches storage off: the server behaves as one
    without offline storage (RFC 6121 section 8.5.2.2.1: service-unavailable)."""
    server = make_server({"offline": {"max_messages": 0}})
    alice = login_to(server, "alice")
    msg_id = send_message(alice, "bob@localhost", "nowhere")
    err = alice.wait_message(lambda e: e.get("type") == "error", what="the error")
    assert err.get("id") == msg_id, show(err)
    assert stanza_error_condition(err) == "service-unavailable", show(err)
    bob = login_to(server, "bob")
    go_online(bob)
    bob.expect_nothing(0.7, pred=is_message)
    alice.assert_ping()
    server.assert_alive()


def test_headline_groupchat_error_and_chat_states_are_not_stored(server, login):
    alice = login("alice", "desk")
    headline = send_message(alice, "bob@localhost", "news", "headline")
    groupchat = send_message(alice, "bob@localhost", "room talk", "groupchat")
    error = send_message(alice, "bob@localhost", None, "error",
                         extra="<error type='cancel'><item-not-found xmlns='%s'/></error>"
                         % NS_STANZA_ERRORS)
    typing = send_message(alice, "bob@localhost", None, "chat",
                          extra="<composing xmlns='%s'/>" % NS_CHATSTATES)
    marker = send_message(alice, "bob@localhost", "marker")

    err = alice.wait_message(lambda e: e.get("id") == groupchat, what="the groupchat error")
    assert err.get("type") == "error", show(err)
    assert err.get("from") == "bob@localhost", show(err)
    assert stanza_error_condition(err) == "service-unavailable", show(err)
    alice.assert_ping()
    # headline and error are dropped silently, the chat state and the marker
    # are taken without an error.
    alice.expect_nothing(0.5, pred=is_message)

    bob = login("bob")
    go_online(bob)
    el = bob.wait_message(what="the marker")
    assert el.get("id") == marker and body_of(el) == "marker", \
        "expected only the marker, got %s first" % show(el)
    bob.expect_nothing(0.7, pred=is_message)
    assert headline and error and typing  # sent and never seen again
    for c in (alice, bob):
        c.assert_ping()
    server.assert_alive()


def test_negative_priority_does_not_take_offline_messages(server, login):
    alice = login("alice", "desk")
    first = send_message(alice, "bob@localhost", "kept")
    alice.assert_ping()

    hidden = login("bob", "hidden")
    go_online(hidden, priority=-1)
    hidden.expect_nothing(0.7, pred=is_message)
    # With only a negative resource, new messages are stored too.
    second = send_message(alice, "bob@localhost", "while hidden")
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_message)
    hidden.expect_nothing(0.5, pred=is_message)

    shown = login("bob", "shown")
    go_online(shown, priority=0)
    got = receive_messages(shown, 2)
    assert [(e.get("id"), body_of(e)) for e in got] == [(first, "kept"),
                                                        (second, "while hidden")]
    hidden.expect_nothing(0.5, pred=is_message)
    for c in (alice, hidden, shown):
        c.assert_ping()
    server.assert_alive()


def test_slixmpp_message_to_offline_user(server, loop):  # noqa: F811
    async def run():
        alice = make_xmpp("alice@localhost/slix", USERS["alice"])
        alice.register_plugin("xep_0199", {"keepalive": False})
        bob = make_xmpp("bob@localhost/slix", USERS["bob"])
        bob.register_plugin("xep_0203")
        inbox = asyncio.get_running_loop().create_future()

        def on_message(msg):
            if msg["body"] == "while you were out" and not inbox.done():
                inbox.set_result(msg)

        bob.add_event_handler("message", on_message)
        try:
            assert await start_session(alice, server.starttls_port) == "session"
            before = time.time()
            alice.send_message(mto="bob@localhost", mbody="while you were out", mtype="chat")
            # A round trip: the message has been handled (stored) after it.
            await alice["xep_0199"].send_ping("localhost", timeout=10)
            after = time.time()
            assert await start_session(bob, server.starttls_port) == "session"
            bob.send_presence()
            msg = await asyncio.wait_for(inbox, 10)
            assert msg["from"] == alice.boundjid
            assert msg["type"] == "chat"
            assert msg["delay"]["from"] == DOMAIN
            stamp = msg["delay"]["stamp"].timestamp()
            assert before - 2 <= stamp <= after + 2, (stamp, before, after)
        finally:
            await stop(alice, bob)

    loop.run_until_complete(run())
    server.assert_alive()


def test_byte_budget_bounces_and_large_queue_is_delivered(server, login):
    """Besides max_messages, an account's queue holds at most 2 MiB of XML
    (it is sent at once at login and must fit the output buffer)."""
    alice = login("alice", "desk")
    body = "z" * 250000
    ids = [send_message(alice, "bob@localhost", body) for _ in range(9)]
    err = alice.wait_message(lambda e: e.get("type") == "error", what="the error for the 9th")
    assert err.get("id") == ids[8], show(err)
    assert err.find(tag(NS_CLIENT, "error")).get("type") == "wait", show(err)
    assert stanza_error_condition(err) == "resource-constraint", show(err)
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_message)

    bob = login("bob", "phone")
    go_online(bob)
    got = receive_messages(bob, 8)
    assert [e.get("id") for e in got] == ids[:8]
    assert all(body_of(e) == body for e in got)
    bob.expect_nothing(0.5, pred=is_message)
    for c in (alice, bob):
        c.assert_ping()
    server.assert_alive()


def test_msgoffline_is_advertised(server, login):
    """XEP-0160 section 4: the server's disco#info lists 'msgoffline'."""
    alice = login("alice")
    reply = alice.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
    assert reply.get("type") == "result", show(reply)
    features = [f.get("var") for f in reply.iter(tag(NS_DISCO_INFO, "feature"))]
    assert "msgoffline" in features, show(reply)
    server.assert_alive()


def test_deleted_account_loses_its_offline_messages(server, login):
    alice = login("alice", "desk")
    send_message(alice, "bob@localhost", "for the old bob")
    send_message(alice, "carol@localhost", "for carol")
    alice.assert_ping()
    assert offline_records(server) >= 2
    server.del_user("bob")
    # Only carol's queue is left (one message and its bookkeeping).
    deadline = time.time() + 5
    while offline_records(server) > 2 and time.time() < deadline:
        time.sleep(0.1)
    assert offline_records(server) == 2
    server.add_user("bob", USERS["bob"])
    bob = login("bob")
    go_online(bob)
    bob.expect_nothing(0.7, pred=is_message)
    carol = login("carol")
    go_online(carol)
    el = carol.wait_message(what="carol's stored message")
    assert body_of(el) == "for carol", show(el)
    for c in (alice, bob, carol):
        c.assert_ping()
    server.assert_alive()


def test_raising_a_negative_priority_takes_offline_messages(server, login):
    """A resource that starts hidden (negative priority) and then raises it
    gets the stored messages at that moment, in order (RFC 6121 §8.5.2.1.1:
    it can now take messages for the bare JID)."""
    alice = login("alice", "desk")
    first = send_message(alice, "bob@localhost", "one")
    second = send_message(alice, "bob@localhost", "two")
    alice.assert_ping()
    bob = login("bob", "phone")
    go_online(bob, priority=-5)
    bob.expect_nothing(0.5, pred=is_message)
    bob.send("<presence><priority>1</priority></presence>")
    got = receive_messages(bob, 2)
    assert [(e.get("id"), body_of(e)) for e in got] == [(first, "one"), (second, "two")]
    # Delivered once: a further update brings nothing.
    bob.send("<presence><priority>2</priority></presence>")
    bob.expect_nothing(0.5, pred=is_message)
    bob.assert_ping()
    server.assert_alive()
