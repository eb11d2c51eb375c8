"""Blocking Command (XEP-0191) against the real server.

The blocklist IQs (get, block, unblock, unblock-all) with pushes to exactly
the resources that asked for the list; enforcement both ways: what a blocked
entity sends the user is dropped (presence) or refused with
<service-unavailable/> (chat/normal messages, IQ get/set) so the user looks
offline (section 3.3), what the user sends a blocked entity is refused with
<not-acceptable/> + <blocked xmlns='urn:xmpp:blocking:errors'/>, and the
user's presence broadcasts never reach a blocked contact (unavailable on
block, current presence again on unblock). The list survives a restart;
malformed requests get the right error and the stream stays up.
"""

import asyncio

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_STANZA_ERRORS, XmppClient, body_of,
                        show, stanza_error_condition, tag)
from test_login import TIMEOUT, loop, make_xmpp, start_session, stop  # noqa: F401 (loop: fixture)

NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_ROSTER = "jabber:iq:roster"
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN


# --------------------------------------------------------------------------
# helpers


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def is_presence(el):
    return el.tag == tag(NS_CLIENT, "presence")


def is_iq(el):
    return el.tag == tag(NS_CLIENT, "iq")


def is_push(el):
    if not is_iq(el) or el.get("type") != "set":
        return False
    return any(el.find(tag(NS_BLOCKING, n)) is not None for n in ("block", "unblock"))


def items_xml(jids):
    return "".join("<item jid='%s'/>" % j for j in jids)


def get_blocklist(c):
    """The blocklist as a list of JIDs (this resource now gets pushes)."""
    r = c.iq("get", "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    assert r.get("type") == "result", show(r)
    bl = r.find(tag(NS_BLOCKING, "blocklist"))
    assert bl is not None, "result without <blocklist/>: %s" % show(r)
    items = bl.findall(tag(NS_BLOCKING, "item"))
    assert len(items) == len(list(bl)), "only <item/> children expected: %s" % show(r)
    return [i.get("jid") for i in items]


def block(c, *jids):
    r = c.iq("set", "<block xmlns='%s'>%s</block>" % (NS_BLOCKING, items_xml(jids)))
    assert r.get("type") == "result", show(r)
    assert len(list(r)) == 0, "block result carries a payload: %s" % show(r)
    return r


def unblock(c, *jids):
    r = c.iq("set", "<unblock xmlns='%s'>%s</unblock>" % (NS_BLOCKING, items_xml(jids)))
    assert r.get("type") == "result", show(r)
    return r


def expect_push(c, action, jids):
    """The next block/unblock push; checks it exactly and answers it."""
    el = c.wait_for(is_push, what="a blocklist push (%s)" % action)
    assert el.get("to") == c.jid, show(el)
    assert el.get("from") in (None, c.jid.split("/")[0]), show(el)
    assert el.get("id"), show(el)
    children = list(el)
    assert len(children) == 1 and children[0].tag == tag(NS_BLOCKING, action), show(el)
    got = sorted(i.get("jid") for i in children[0].findall(tag(NS_BLOCKING, "item")))
    assert got == sorted(jids), "push items %r, expected %r: %s" % (got, jids, show(el))
    assert len(list(children[0])) == len(jids), show(el)
    c.send("<iq type='result' id='%s'/>" % el.get("id"))
    return el


def error_of(el):
    err = el.find(tag(NS_CLIENT, "error"))
    assert err is not None, "no <error/>: %s" % show(el)
    return err


def assert_error(el, etype, condition, app=None):
    assert el.get("type") == "error", show(el)
    err = error_of(el)
    assert err.get("type") == etype, "error type %r, expected %r: %s" % (
        err.get("type"), etype, show(el))
    assert stanza_error_condition(el) == condition, show(el)
    if app is not None:
        assert err.find(app) is not None, "no %s in the error: %s" % (app, show(el))


def iq_error(c, type_, payload, condition, etype, to=None):
    r = c.iq(type_, payload, to=to)
    assert_error(r, etype, condition)
    return r


def go_online(c, extra=""):
    c.send("<presence>%s</presence>" % extra)
    c.assert_ping()


def subscribe_mutually(a, b):
    """RFC 6121 section 3.1 both ways between two online clients, over the
    wire; afterwards both have subscription 'both' and see each other."""
    a_bare, b_bare = a.jid.split("/")[0], b.jid.split("/")[0]
    for x, y, y_bare, x_bare in ((a, b, b_bare, a_bare), (b, a, a_bare, b_bare)):
        x.send("<presence to='%s' type='subscribe'/>" % y_bare)
        req = y.wait_for(lambda e: is_presence(e) and e.get("type") == "subscribe",
                         what="the subscription request from %s" % x_bare)
        assert req.get("from") == x_bare, show(req)
        y.send("<presence to='%s' type='subscribed'/>" % x_bare)
        # x now gets 'subscribed' and y's current presence.
        x.wait_for(lambda e: is_presence(e) and e.get("type") == "subscribed",
                   what="subscribed from %s" % y_bare)
        x.wait_for(lambda e: is_presence(e) and e.get("type") is None
                   and e.get("from") == y.jid, what="%s's presence" % y.jid)
    for c in (a, b):
        c.assert_ping()
        # Drop what is left of the handshake (roster pushes, presence).
        c.expect_nothing(0.3, pred=lambda e: False)
        c.pending.clear()


def login_to(server, user, resource=None):
    c = XmppClient.login(server, user, USERS[user], resource)
    server.clients.append(c)
    return c


# --------------------------------------------------------------------------
# the list and its pushes


def test_empty_blocklist_and_server_feature(server, login):
    alice = login("alice", "desk")
    assert get_blocklist(alice) == []
    # XEP-0191 section 3.1: the server advertises the feature.
    r = alice.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
    assert r.get("type") == "result", show(r)
    features = [f.get("var") for f in r.iter(tag(NS_DISCO_INFO, "feature"))]
    assert NS_BLOCKING in features, show(r)
    server.assert_alive()


def test_block_pushes_to_resources_that_asked(server, login):
    a1 = login("alice", "one")
    a2 = login("alice", "two")
    a3 = login("alice", "three")  # never asks for the list: no pushes
    assert get_blocklist(a1) == []
    assert get_blocklist(a2) == []

    block(a1, BOB, "Spam.Example")
    for c in (a1, a2):
        expect_push(c, "block", [BOB, "spam.example"])
    a3.expect_nothing(0.5, pred=is_push)
    assert sorted(get_blocklist(a3)) == [BOB, "spam.example"]

    # Blocking again what is blocked is fine and pushed again.
    block(a2, BOB)
    for c in (a1, a2, a3):  # a3 asked for the list above
        expect_push(c, "block", [BOB])

    # A resource that closed gets nothing; a new one only after asking.
    a2.close()
    a4 = login("alice", "four")
    unblock(a1, "spam.example")
    expect_push(a1, "unblock", ["spam.example"])
    expect_push(a3, "unblock", ["spam.example"])
    a4.expect_nothing(0.5, pred=is_push)
    assert get_blocklist(a4) == [BOB]
    server.assert_alive()


# --------------------------------------------------------------------------
# enforcement


def test_blocked_contact_cannot_reach_user(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    go_online(alice)
    go_online(bob)
    # Before the block, bob reaches alice.
    bob.message(ALICE, "hello")
    got = alice.wait_message(what="bob's message before the block")
    assert body_of(got) == "hello"

    block(alice, BOB)
    alice.pending.clear()
    bob.pending.clear()

    # Messages (chat, normal, no type) to bare and full JID: the user looks
    # offline, the sender gets <service-unavailable/>.
    for to, type_ in ((ALICE, "chat"), (alice.jid, "chat"), (ALICE, "normal")):
        mid = bob.message(to, "blocked %s %s" % (to, type_), type_=type_)
        err = bob.wait_message(lambda e, mid=mid: e.get("id") == mid,
                               what="the error for message %s" % mid)
        assert err.get("from") == to, show(err)
        assert err.get("to") == bob.jid, show(err)
        assert_error(err, "cancel", "service-unavailable")
    bob.send("<message to='%s' id='nt1'><body>no type</body></message>" % ALICE)
    err = bob.wait_message(lambda e: e.get("id") == "nt1", what="the error for a typeless message")
    assert_error(err, "cancel", "service-unavailable")
    # headline: dropped without an answer.
    bob.message(ALICE, "news", type_="headline")
    # IQ get to the full JID and to the bare JID (vCard): service-unavailable.
    r = bob.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=alice.jid)
    assert_error(r, "cancel", "service-unavailable")
    assert r.get("from") == alice.jid, show(r)
    r = bob.iq("get", "<vCard xmlns='vcard-temp'/>", to=ALICE)
    assert_error(r, "cancel", "service-unavailable")
    # Presence (directed, subscription request): dropped, never answered.
    bob.send("<presence to='%s'/>" % alice.jid)
    bob.send("<presence to='%s' type='subscribe'/>" % ALICE)
    bob.assert_ping()
    bob.expect_nothing(0.5, pred=lambda e: is_message(e) or is_presence(e))
    alice.expect_nothing(0.5, pred=lambda e: e.get("from", "").startswith(BOB))

    # Carol is not blocked.
    carol = login("carol", "pc")
    carol.message(ALICE, "from carol")
    got = alice.wait_message(what="carol's message")
    assert got.get("from") == carol.jid and body_of(got) == "from carol", show(got)
    for c in (alice, bob, carol):
        c.assert_ping()
    server.assert_alive()


def test_user_cannot_reach_blocked_contact(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    go_online(alice)
    go_online(bob)
    block(alice, "bob@localhost/phone")
    alice.pending.clear()
    bob.pending.clear()
    blocked = tag(NS_BLOCKING_ERRORS, "blocked")

    mid = alice.message(bob.jid, "can you hear me?")
    err = alice.wait_message(lambda e: e.get("id") == mid, what="the blocked error")
    assert err.get("from") == bob.jid and err.get("to") == alice.jid, show(err)
    assert_error(err, "cancel", "not-acceptable", blocked)
    assert body_of(err) in (None, "can you hear me?"), show(err)

    r = alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=bob.jid)
    assert_error(r, "cancel", "not-acceptable", blocked)

    alice.send("<presence to='%s' id='dp1'/>" % bob.jid)
    err = alice.wait_for(lambda e: is_presence(e) and e.get("id") == "dp1",
                         what="the error for directed presence")
    assert_error(err, "cancel", "not-acceptable", blocked)

    # An error or IQ result to the blocked entity is dropped silently.
    alice.send("<message to='%s' type='error' id='e1'><error type='cancel'>"
               "<service-unavailable xmlns='%s'/></error></message>" % (bob.jid, NS_STANZA_ERRORS))
    alice.send("<iq to='%s' type='result' id='r1'/>" % bob.jid)
    alice.assert_ping()
    alice.expect_nothing(0.5, pred=lambda e: e.get("id") in ("e1", "r1"))
    bob.expect_nothing(0.5, pred=lambda e: e.get("from", "").startswith(ALICE))

    # Only that resource is blocked: bob's other resource is reachable.
    bob2 = login("bob", "laptop")
    alice.message(bob2.jid, "to the laptop")
    got = bob2.wait_message(what="alice's message to the other resource")
    assert body_of(got) == "to the laptop" and got.get("from") == alice.jid, show(got)
    server.assert_alive()


def test_presence_never_reaches_blocked_contact(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    go_online(alice)
    go_online(bob)
    subscribe_mutually(alice, bob)

    block(alice, BOB)
    # Section 3.3: bob gets unavailable presence from alice's resource.
    un = bob.wait_for(lambda e: is_presence(e) and e.get("from") == alice.jid,
                      what="unavailable presence from blocked-by alice")
    assert un.get("type") == "unavailable", show(un)
    assert un.get("to") in (BOB, bob.jid), show(un)

    # alice's updates (broadcast by the server) do not reach bob, and
    # bob's presence does not reach alice.
    alice.send("<presence><show>away</show></presence>")
    alice.assert_ping()
    bob.send("<presence><show>dnd</show></presence>")
    bob.assert_ping()
    bob.expect_nothing(0.6, pred=lambda e: is_presence(e) and e.get("from", "").startswith(ALICE))
    alice.expect_nothing(0.6, pred=lambda e: is_presence(e) and e.get("from", "").startswith(BOB))
    # A new resource of alice: its initial presence does not reach bob either.
    alice2 = login("alice", "tablet")
    go_online(alice2)
    bob.expect_nothing(0.5, pred=lambda e: is_presence(e) and e.get("from", "").startswith(ALICE))
    alice2.close()
    bob.expect_nothing(0.5, pred=lambda e: is_presence(e) and e.get("from", "").startswith(ALICE))

    # Section 3.4: on unblock bob gets alice's current presence again.
    unblock(alice, BOB)
    cur = bob.wait_for(lambda e: is_presence(e) and e.get("from") == alice.jid,
                       what="alice's current presence after the unblock")
    assert cur.get("type") is None, show(cur)
    show_el = cur.find(tag(NS_CLIENT, "show"))
    assert show_el is not None and show_el.text == "away", show(cur)
    # And updates flow again, both ways.
    alice.send("<presence><show>xa</show></presence>")
    upd = bob.wait_for(lambda e: is_presence(e) and e.get("from") == alice.jid,
                       what="alice's update after the unblock")
    assert upd.find(tag(NS_CLIENT, "show")).text == "xa", show(upd)
    bob.send("<presence><show>chat</show></presence>")
    upd = alice.wait_for(lambda e: is_presence(e) and e.get("from") == bob.jid,
                         what="bob's update after the unblock")
    assert upd.find(tag(NS_CLIENT, "show")).text == "chat", show(upd)
    server.assert_alive()


def test_unblock_and_unblock_all_restore_delivery(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    carol = login("carol", "pc")
    for c in (alice, bob, carol):
        go_online(c)
    assert get_blocklist(alice) == []
    block(alice, BOB, CAROL)
    expect_push(alice, "block", [BOB, CAROL])

    unblock(alice, BOB)
    expect_push(alice, "unblock", [BOB])
    assert get_blocklist(alice) == [CAROL]
    bob.message(ALICE, "bob again")
    got = alice.wait_message(what="bob's message after the unblock")
    assert body_of(got) == "bob again" and got.get("from") == bob.jid, show(got)
    mid = carol.message(ALICE, "still blocked")
    err = carol.wait_message(lambda e: e.get("id") == mid, what="carol's error")
    assert_error(err, "cancel", "service-unavailable")

    # Unblocking what is not blocked is a no-op that succeeds.
    unblock(alice, "nobody@" + DOMAIN)
    expect_push(alice, "unblock", ["nobody@" + DOMAIN])

    # Empty <unblock/>: everything, pushed as an empty <unblock/>.
    block(alice, "x.example")
    expect_push(alice, "block", ["x.example"])
    unblock(alice)
    expect_push(alice, "unblock", [])
    assert get_blocklist(alice) == []
    carol.message(ALICE, "carol again")
    got = alice.wait_message(what="carol's message after unblock-all")
    assert body_of(got) == "carol again", show(got)
    alice.message(CAROL, "hi carol")
    got = carol.wait_message(what="alice's message after unblock-all")
    assert body_of(got) == "hi carol", show(got)
    server.assert_alive()


def test_blocked_messages_are_not_stored_offline(server, login):
    alice = login("alice", "desk")
    block(alice, BOB)
    alice.close()
    bob = login("bob", "phone")
    # alice is offline: the message is refused, not stored (XEP-0160 never sees it).
    mid = bob.message(ALICE, "store me?")
    err = bob.wait_message(lambda e: e.get("id") == mid, what="the error while alice is offline")
    assert_error(err, "cancel", "service-unavailable")
    alice = login("alice", "desk")
    go_online(alice)
    alice.expect_nothing(0.6, pred=is_message)
    server.assert_alive()


def test_slixmpp_blocking(server, loop):  # noqa: F811
    """slixmpp's XEP-0191 plugin: list, block with a push, unblock-all."""
    async def run():
        alice = make_xmpp("alice@localhost/slix", USERS["alice"])
        alice.register_plugin("xep_0191")
        events = {"blocked": asyncio.get_running_loop().create_future(),
                  "unblocked": asyncio.get_running_loop().create_future()}
        for name in events:
            alice.add_event_handler(
                name, lambda iq, name=name: events[name].done() or events[name].set_result(iq))
        bob = login_to(server, "bob", "phone")
        try:
            assert await start_session(alice, server.starttls_port) == "session"
            got = await alice["xep_0191"].get_blocked(timeout=TIMEOUT)
            assert set(got["blocklist"]["items"]) == set(), str(got)
            await alice["xep_0191"].block([BOB, "spam.example"], timeout=TIMEOUT)
            push = await asyncio.wait_for(events["blocked"], TIMEOUT)
            assert {str(j) for j in push["block"]["items"]} == {BOB, "spam.example"}, str(push)
            got = await alice["xep_0191"].get_blocked(timeout=TIMEOUT)
            assert {str(j) for j in got["blocklist"]["items"]} == {BOB, "spam.example"}, str(got)
            mid = bob.message(ALICE + "/slix", "blocked?")
            err = await loop.run_in_executor(
                None, lambda: bob.wait_message(lambda e: e.get("id") == mid,
                                               what="the error from slixmpp's blocker"))
            assert_error(err, "cancel", "service-unavailable")
            await alice["xep_0191"].unblock([], timeout=TIMEOUT)
            push = await asyncio.wait_for(events["unblocked"], TIMEOUT)
            assert len(push["unblock"]["items"]) == 0, str(push)
            got = await alice["xep_0191"].get_blocked(timeout=TIMEOUT)
            assert set(got["blocklist"]["items"]) == set(), str(got)
        finally:
            await stop(alice)

    loop.run_until_complete(run())
    server.assert_alive()


def test_blocklist_survives_restart(server):
    alice = login_to(server, "alice", "desk")
    block(alice, BOB, "evil.example")
    server.restart()
    alice = login_to(server, "alice", "desk")
    bob = login_to(server, "bob", "phone")
    go_online(alice)
    assert sorted(get_blocklist(alice)) == [BOB, "evil.example"]
    mid = bob.message(ALICE, "after restart")
    err = bob.wait_message(lambda e: e.get("id") == mid, what="the error after the restart")
    assert_error(err, "cancel", "service-unavailable")
    alice.expect_nothing(0.5, pred=is_message)
    server.assert_alive()


# --------------------------------------------------------------------------
# malformed requests


def test_malformed_requests_get_errors_and_stream_stays_up(server, login):
    alice = login("alice", "desk")
    bob = login("bob", "phone")
    ns = NS_BLOCKING
    # Section 3.3: <block/> without items.
    iq_error(alice, "set", "<block xmlns='%s'/>" % ns, "bad-request", "modify")
    # Items without a jid, with a malformed jid (nothing is written).
    iq_error(alice, "set", "<block xmlns='%s'><item/></block>" % ns, "jid-malformed", "modify")
    iq_error(alice, "set", "<block xmlns='%s'><item jid=''/></block>" % ns, "jid-malformed",
             "modify")
    iq_error(alice, "set", "<block xmlns='%s'><item jid='%s'/><item jid='a@b@c'/></block>"
             % (ns, BOB), "jid-malformed", "modify")
    iq_error(alice, "set", "<unblock xmlns='%s'><item jid='@nodomain'/></unblock>" % ns,
             "jid-malformed", "modify")
    iq_error(alice, "set", "<block xmlns='%s'><item jid='%s/%s'/></block>"
             % (ns, BOB, "r" * 1100), "jid-malformed", "modify")
    # Valid, but too long to be a key of the table.
    iq_error(alice, "set", "<block xmlns='%s'><item jid='%s/%s'/></block>"
             % (ns, BOB, "r" * 600), "not-acceptable", "modify")
    # Unknown children and elements.
    iq_error(alice, "set", "<block xmlns='%s'><jid>%s</jid></block>" % (ns, BOB), "bad-request",
             "modify")
    iq_error(alice, "set", "<block xmlns='%s'><item xmlns='urn:other' jid='%s'/></block>"
             % (ns, BOB), "bad-request", "modify")
    iq_error(alice, "set", "<frobnicate xmlns='%s'/>" % ns, "bad-request", "modify")
    iq_error(alice, "get", "<block xmlns='%s'><item jid='%s'/></block>" % (ns, BOB),
             "bad-request", "modify")
    iq_error(alice, "set", "<blocklist xmlns='%s'/>" % ns, "bad-request", "modify")
    # Someone else's blocklist is no one's business.
    iq_error(bob, "get", "<blocklist xmlns='%s'/>" % ns, "service-unavailable", "cancel", to=ALICE)
    iq_error(bob, "set", "<block xmlns='%s'><item jid='%s'/></block>" % (ns, CAROL),
             "service-unavailable", "cancel", to=ALICE)
    # None of it changed anything.
    assert get_blocklist(alice) == []
    assert get_blocklist(bob) == []
    for c in (alice, bob):
        c.assert_ping()
    server.assert_alive()
