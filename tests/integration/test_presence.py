"""Presence and subscriptions (RFC 6121 sections 3 and 4) against the real
server: the subscription handshake with its roster pushes, requests kept
for an offline contact (also across a restart), pre-approval, cancellation,
probes at login, broadcast, unavailable when a stream ends, directed
presence, priorities; and two slixmpp clients subscribing to each other."""

import asyncio


from conftest import USERS
from hearthtest import NS_CLIENT, show, stanza_error_condition, tag
from test_login import make_xmpp  # slixmpp without channel binding, as there

NS_ROSTER = "jabber:iq:roster"
NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"
ALICE = "alice@localhost"
BOB = "bob@localhost"
CAROL = "carol@localhost"
TIMEOUT = 10


def is_presence(el, type_=None, frm=None):
    if el.tag != tag(NS_CLIENT, "presence"):
        return False
    if type_ is not None and el.get("type") != (type_ or None):
        return False
    return frm is None or el.get("from") == frm


def wait_presence(c, type_, frm, what=None):
    """type_ '' means available (no type attribute)."""
    return c.wait_for(lambda e: is_presence(e, type_, frm),
                      what=what or "presence type=%r from %s" % (type_, frm))


def no_presence(c, type_=None, frm=None, wait=0.5):
    c.expect_nothing(wait, pred=lambda e: is_presence(e, type_, frm))


def push_item(c, jid, what=None):
    """The next roster push for `jid`; returns its <item/>."""
    def match(e):
        if e.tag != tag(NS_CLIENT, "iq") or e.get("type") != "set":
            return False
        q = e.find(tag(NS_ROSTER, "query"))
        return q is not None and any(i.get("jid") == jid for i in q)
    push = c.wait_for(match, what=what or "a roster push for %s" % jid)
    c.send("<iq type='result' id='%s'/>" % push.get("id"))
    return push.find(tag(NS_ROSTER, "query")).find(tag(NS_ROSTER, "item"))


def state(item):
    return (item.get("subscription"), item.get("ask"), item.get("approved"))


def no_push(c, wait=0.4):
    c.expect_nothing(wait, pred=lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("type") == "set"
                     and e.find(tag(NS_ROSTER, "query")) is not None)


def roster(c):
    reply = c.iq("get", "<query xmlns='%s'/>" % NS_ROSTER)
    assert reply.get("type") == "result", show(reply)
    return {i.get("jid"): i for i in reply.find(tag(NS_ROSTER, "query"))}


def online(login, user, resource, status=None, priority=None):
    """Logged in, roster requested (so it gets pushes), initial presence sent
    and its own reflection consumed."""
    c = login(user, resource)
    roster(c)
    extra = ""
    if status:
        extra += "<status>%s</status>" % status
    if priority is not None:
        extra += "<priority>%s</priority>" % priority
    c.send("<presence>%s</presence>" % extra)
    wait_presence(c, "", c.jid, "own presence reflected")
    return c


def subscribe(x, y):
    """x subscribes to y and y approves; both online, checking each step."""
    xb, yb = x.jid.split("/")[0], y.jid.split("/")[0]
    x.send("<presence to='%s' type='subscribe'/>" % yb)
    req = wait_presence(y, "subscribe", xb)
    assert req.get("to") == yb, show(req)
    y.send("<presence to='%s' type='subscribed'/>" % xb)
    wait_presence(x, "subscribed", yb)
    pres = wait_presence(x, "", y.jid, "%s's presence after approval" % y.jid)
    assert pres.get("to", "").split("/")[0] == xb, show(pres)


def mutual(a, b):
    subscribe(a, b)
    subscribe(b, a)
    for c, other in ((a, b), (b, a)):
        item = roster(c)[other.jid.split("/")[0]]
        assert item.get("subscription") == "both", show(item)
    # Drop what is left of the handshake (pushes, presence) so that later
    # assertions see only new stanzas: the server has sent it all by now.
    for c in (a, b):
        c.assert_ping()
        c.pending.clear()


def test_pre_approval_stream_feature(login):
    alice = login("alice", "a")
    assert alice.feature(NS_PREAPPROVAL, "sub") is not None, show(alice.features)


def test_subscription_handshake(server, login):
    alice = online(login, "alice", "a", status="here")
    bob = online(login, "bob", "b", status="there")

    alice.send("<presence to='%s' type='subscribe' id='s1'><status>add me</status></presence>"
               % BOB)
    assert state(push_item(alice, BOB)) == ("none", "subscribe", None)
    req = wait_presence(bob, "subscribe", ALICE)  # bare 'from' (RFC 6121 3.1.2)
    assert req.get("to") == BOB, show(req)
    assert req.find(tag(NS_CLIENT, "status")).text == "add me", show(req)
    no_push(bob)  # a request alone creates no roster item
    assert BOB not in roster(bob)

    bob.send("<presence to='%s' type='subscribed'/>" % ALICE)
    assert state(push_item(bob, ALICE)) == ("from", None, None)
    ok = wait_presence(alice, "subscribed", BOB)
    assert ok.get("to") == ALICE, show(ok)
    assert state(push_item(alice, BOB)) == ("to", None, None)
    pres = wait_presence(alice, "", "bob@localhost/b", "bob's presence")
    assert pres.find(tag(NS_CLIENT, "status")).text == "there", show(pres)
    no_presence(bob, "", "alice@localhost/a")  # bob is not subscribed to alice

    # And back.
    bob.send("<presence to='%s' type='subscribe'/>" % ALICE)
    assert state(push_item(bob, ALICE)) == ("from", "subscribe", None)
    wait_presence(alice, "subscribe", BOB)
    alice.send("<presence to='%s' type='subscribed'/>" % BOB)
    assert state(push_item(alice, BOB)) == ("both", None, None)
    assert state(push_item(bob, ALICE)) == ("both", None, None)
    pres = wait_presence(bob, "", "alice@localhost/a", "alice's presence")
    assert pres.find(tag(NS_CLIENT, "status")).text == "here", show(pres)

    # Updates reach the contact and the account's own resources.
    alice2 = online(login, "alice", "a2")
    wait_presence(alice, "", alice2.jid)
    wait_presence(bob, "", alice2.jid)
    wait_presence(alice2, "", "bob@localhost/b", "bob's presence at a2's login")
    own = wait_presence(alice2, "", "alice@localhost/a", "the other resource's presence")
    assert own.find(tag(NS_CLIENT, "status")).text == "here", show(own)
    alice.send("<presence><show>away</show></presence>")
    for c in (bob, alice2):
        p = wait_presence(c, "", "alice@localhost/a", "the update")
        assert p.find(tag(NS_CLIENT, "show")).text == "away", show(p)

    # A repeated request is answered by the server (RFC 6121 3.1.3); the
    # answer changes nothing for alice (A.3.2), so it is not delivered.
    alice.send("<presence to='%s' type='subscribe'/>" % BOB)
    no_presence(bob, "subscribe")
    no_push(alice)
    assert state(roster(bob)[ALICE]) == ("both", None, None)
    server.assert_alive()


def test_request_to_offline_contact_delivered_at_login(server, login):
    alice = online(login, "alice", "a")
    alice.send("<presence to='%s' type='subscribe'><status>hi bob</status></presence>" % BOB)
    assert state(push_item(alice, BOB)) == ("none", "subscribe", None)
    alice.assert_ping()

    # Not at bind: at initial presence, and again on every one until answered.
    bob = login("bob", "b1")
    no_presence(bob, "subscribe", wait=0.5)
    bob.send("<presence/>")
    req = wait_presence(bob, "subscribe", ALICE)
    assert req.find(tag(NS_CLIENT, "status")).text == "hi bob", show(req)
    bob.close()

    # Across a restart of the whole server.
    server.restart()

    bob = online(login, "bob", "b2")
    req = wait_presence(bob, "subscribe", ALICE)
    assert req.get("to") == BOB, show(req)
    bob.send("<presence to='%s' type='subscribed'/>" % ALICE)
    assert state(push_item(bob, ALICE)) == ("from", None, None)

    # Answered: not delivered again.
    bob2 = login("bob", "b3")
    bob2.send("<presence/>")
    wait_presence(bob2, "", bob2.jid)
    no_presence(bob2, "subscribe")
    alice = online(login, "alice", "a")
    assert state(roster(alice)[BOB]) == ("to", None, None)
    # alice is subscribed now: her probe at login got bob's presence.
    wait_presence(alice, "", "bob@localhost/b2", "bob's presence via the probe")
    server.assert_alive()


def test_big_request_stored_without_payload(server, login):
    alice = online(login, "alice", "a")
    alice.send("<presence to='%s' type='subscribe'><status>%s</status></presence>"
               % (BOB, "x" * 8000))
    push_item(alice, BOB)
    alice.assert_ping()
    bob = login("bob", "b")
    bob.send("<presence/>")
    req = wait_presence(bob, "subscribe", ALICE)
    assert req.get("to") == BOB and req.find(tag(NS_CLIENT, "status")) is None, show(req)


def test_error_presence_ends_directed_presence(server, login):
    alice = online(login, "alice", "a")
    carol = online(login, "carol", "c")
    alice.send("<presence to='%s'/>" % carol.jid)
    wait_presence(carol, "", alice.jid)
    carol.send("<presence to='%s' type='error'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
               "</presence>" % alice.jid)
    wait_presence(alice, "error", carol.jid)
    alice.close()
    no_presence(carol, "unavailable", alice.jid)
    server.assert_alive()


def test_stored_request_from_since_blocked_contact_not_delivered(server, login):
    carol = online(login, "carol", "c")
    carol.send("<presence to='%s' type='subscribe'/>" % BOB)
    push_item(carol, BOB)
    carol.assert_ping()
    bob = login("bob", "b")
    r = bob.iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='%s'/></block>" % CAROL)
    assert r.get("type") == "result", show(r)
    bob.send("<presence/>")
    wait_presence(bob, "", bob.jid)
    no_presence(bob, "subscribe")
    r = bob.iq("set", "<unblock xmlns='urn:xmpp:blocking'/>")
    assert r.get("type") == "result", show(r)
    bob2 = login("bob", "b2")
    bob2.send("<presence/>")
    wait_presence(bob2, "subscribe", CAROL, "the request once carol is unblocked")


def test_denied_request(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    alice.send("<presence to='%s' type='subscribe'/>" % BOB)
    push_item(alice, BOB)
    wait_presence(bob, "subscribe", ALICE)
    bob.send("<presence to='%s' type='unsubscribed'/>" % ALICE)
    wait_presence(alice, "unsubscribed", BOB)
    assert state(push_item(alice, BOB)) == ("none", None, None)
    # Denied: no longer pending for bob.
    bob2 = online(login, "bob", "b2")
    no_presence(bob2, "subscribe")
    no_presence(alice, "", "bob@localhost/b")


def test_pre_approval(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b", status="ready")
    # bob approves before being asked (RFC 6121 3.4): kept, not routed.
    bob.send("<presence to='%s' type='subscribed'/>" % ALICE)
    assert state(push_item(bob, ALICE)) == ("none", None, "true")
    no_presence(alice, "subscribed")
    no_push(alice)

    alice.send("<presence to='%s' type='subscribe'/>" % BOB)
    assert state(push_item(alice, BOB)) == ("none", "subscribe", None)
    # The server answers for bob; bob is not asked.
    wait_presence(alice, "subscribed", BOB)
    assert state(push_item(alice, BOB)) == ("to", None, None)
    wait_presence(alice, "", "bob@localhost/b", "bob's presence")
    assert state(push_item(bob, ALICE)) == ("from", None, None)
    no_presence(bob, "subscribe")

    # A pre-approval can be withdrawn with unsubscribed.
    bob.send("<presence to='%s' type='subscribed'/>" % CAROL)
    assert state(push_item(bob, CAROL)) == ("none", None, "true")
    bob.send("<presence to='%s' type='unsubscribed'/>" % CAROL)
    assert state(push_item(bob, CAROL)) == ("none", None, None)
    carol = online(login, "carol", "c")
    carol.send("<presence to='%s' type='subscribe'/>" % BOB)
    push_item(carol, BOB)
    wait_presence(bob, "subscribe", CAROL)  # asked this time
    no_presence(carol, "subscribed")
    server.assert_alive()


def test_unsubscribe_and_unsubscribed(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)

    # alice stops receiving bob's presence.
    alice.send("<presence to='%s' type='unsubscribe'/>" % BOB)
    assert state(push_item(alice, BOB)) == ("from", None, None)
    wait_presence(bob, "unsubscribe", ALICE)
    assert state(push_item(bob, ALICE)) == ("to", None, None)
    wait_presence(alice, "unavailable", "bob@localhost/b", "bob's unavailable")
    bob.send("<presence><status>unseen</status></presence>")
    wait_presence(bob, "", bob.jid)
    no_presence(alice, "", "bob@localhost/b")
    # bob still gets alice's presence.
    alice.send("<presence><status>seen</status></presence>")
    wait_presence(bob, "", "alice@localhost/a")

    # alice cancels bob's subscription to her.
    alice.send("<presence to='%s' type='unsubscribed'/>" % BOB)
    assert state(push_item(alice, BOB)) == ("none", None, None)
    wait_presence(bob, "unsubscribed", ALICE)
    assert state(push_item(bob, ALICE)) == ("none", None, None)
    wait_presence(bob, "unavailable", "alice@localhost/a", "alice's unavailable")
    alice.send("<presence><status>gone</status></presence>")
    wait_presence(alice, "", alice.jid)
    no_presence(bob, "", "alice@localhost/a")
    server.assert_alive()


def test_roster_remove_cancels_both_ways(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)
    reply = alice.iq("set", "<query xmlns='%s'><item jid='%s' subscription='remove'/></query>"
                     % (NS_ROSTER, BOB))
    assert reply.get("type") == "result", show(reply)
    assert state(push_item(alice, BOB)) == ("remove", None, None)
    # RFC 6121 2.5.2: bob is told both subscriptions are over.
    wait_presence(bob, "unsubscribe", ALICE)
    wait_presence(bob, "unsubscribed", ALICE)
    wait_presence(bob, "unavailable", "alice@localhost/a")
    # bob's item ends in 'none' (pushes for each step).
    assert state(roster(bob)[ALICE]) == ("none", None, None)
    server.assert_alive()


def test_probes_answered_at_login(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b", status="at work", priority=3)
    mutual(alice, bob)
    alice.close()
    wait_presence(bob, "unavailable", "alice@localhost/a")

    alice = login("alice", "a2")
    no_presence(alice, wait=0.3)  # nothing before initial presence
    alice.send("<presence><status>back</status></presence>")
    pres = wait_presence(alice, "", "bob@localhost/b", "bob's presence (probe answer)")
    assert pres.get("to") == alice.jid, show(pres)
    assert pres.find(tag(NS_CLIENT, "status")).text == "at work", show(pres)
    assert pres.find(tag(NS_CLIENT, "priority")).text == "3", show(pres)
    got = wait_presence(bob, "", "alice@localhost/a2")
    assert got.find(tag(NS_CLIENT, "status")).text == "back", show(got)
    # Probes never reach clients.
    no_presence(bob, "probe")
    no_presence(alice, "probe")

    # A contact offline: its probe answer is unavailable (RFC 6121 4.3.2).
    bob.close()
    wait_presence(alice, "unavailable", "bob@localhost/b")
    alice3 = login("alice", "a3")
    alice3.send("<presence/>")
    wait_presence(alice3, "unavailable", BOB, "unavailable for offline bob")
    no_presence(alice3, "", "bob@localhost/b")
    server.assert_alive()


def test_unavailable_on_disconnect(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)
    alice2 = online(login, "alice", "a2")
    wait_presence(bob, "", alice2.jid)
    wait_presence(alice, "", alice2.jid)
    # The socket just drops (no </stream:stream>).
    alice.sock.close()
    alice.eof = True
    for c in (bob, alice2):
        wait_presence(c, "unavailable", "alice@localhost/a", "unavailable after the drop")
    # An explicit unavailable from a2 as well.
    alice2.send("<presence type='unavailable'/>")
    wait_presence(bob, "unavailable", alice2.jid)
    alice2.assert_ping()
    # a2 is unavailable: bob's update no longer reaches it.
    bob.send("<presence><show>dnd</show></presence>")
    wait_presence(bob, "", bob.jid)
    alice2.expect_nothing(0.5, pred=lambda e: is_presence(e, "", bob.jid)
                          and e.find(tag(NS_CLIENT, "show")) is not None)
    server.assert_alive()


def test_directed_presence_to_non_contact(server, login):
    alice = online(login, "alice", "a")
    carol = online(login, "carol", "c")
    alice.send("<presence to='%s'><status>psst</status></presence>" % carol.jid)
    got = wait_presence(carol, "", "alice@localhost/a")
    assert got.find(tag(NS_CLIENT, "status")).text == "psst", show(got)
    # A broadcast does not reach carol (no subscription).
    alice.send("<presence><status>public</status></presence>")
    wait_presence(alice, "", alice.jid)
    no_presence(carol, "", "alice@localhost/a")
    # But carol learns that alice went away (RFC 6121 4.6.3).
    alice.close()
    wait_presence(carol, "unavailable", "alice@localhost/a", "unavailable after directed")
    server.assert_alive()


def test_directed_unavailable_forgets(server, login):
    alice = online(login, "alice", "a")
    carol = online(login, "carol", "c")
    alice.send("<presence to='%s'/>" % carol.jid)
    wait_presence(carol, "", alice.jid)
    alice.send("<presence to='%s' type='unavailable'/>" % carol.jid)
    wait_presence(carol, "unavailable", alice.jid)
    alice.close()
    no_presence(carol, "unavailable", alice.jid)


def test_negative_priority_resource(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)
    shy = online(login, "bob", "shy", priority=-5)
    p = wait_presence(alice, "", shy.jid)
    assert p.find(tag(NS_CLIENT, "priority")).text == "-5", show(p)
    wait_presence(bob, "", shy.jid)
    # A message to the bare JID skips the negative-priority resource.
    alice.message(BOB, "to the bare jid", msg_id="np1")
    bob.wait_message(lambda e: e.get("id") == "np1")
    shy.expect_nothing(0.5, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    # But presence reaches it, and so does a message to its full JID.
    alice.send("<presence><status>x</status></presence>")
    wait_presence(shy, "", alice.jid)
    alice.message(shy.jid, "direct", msg_id="np2")
    shy.wait_message(lambda e: e.get("id") == "np2")
    server.assert_alive()


def test_bad_priority(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)
    for i, bad in enumerate(("high", "128", "-129", "1.5", "")):
        pid = "bp%d" % i
        alice.send("<presence id='%s'><priority>%s</priority><status>bad</status></presence>"
                   % (pid, bad))
        err = alice.wait_for(lambda e: is_presence(e, "error") and e.get("id") == pid,
                             what="the error for priority %r" % bad)
        assert stanza_error_condition(err) == "bad-request", show(err)
    no_presence(bob, "", alice.jid)
    alice.assert_ping()
    # Valid extremes are fine.
    alice.send("<presence><priority>-128</priority></presence>")
    p = wait_presence(bob, "", alice.jid)
    assert p.find(tag(NS_CLIENT, "priority")).text == "-128", show(p)
    alice.send("<presence><priority> 127 </priority></presence>")
    wait_presence(bob, "", alice.jid)
    server.assert_alive()


def test_account_deletion_cleans_contacts(server, login):
    alice = online(login, "alice", "a")
    bob = online(login, "bob", "b")
    mutual(alice, bob)
    carol = online(login, "carol", "c")
    carol.send("<presence to='%s' type='subscribe'/>" % BOB)  # pending for bob
    wait_presence(bob, "subscribe", CAROL)
    carol.close()
    reply = bob.iq("get", "<query xmlns='%s'/>" % NS_ROSTER)
    old_ver = reply.find(tag(NS_ROSTER, "query")).get("ver")
    server.del_user("carol")
    server.del_user("alice")
    wait_presence(bob, "unavailable", "alice@localhost/a")
    assert state(push_item(bob, ALICE)) == ("remove", None, None)
    assert ALICE not in roster(bob)
    # No key names alice any more, so a client that cached the roster
    # before gets the full roster, not a delta (XEP-0237).
    reply = bob.iq("get", "<query xmlns='%s' ver='%s'/>" % (NS_ROSTER, old_ver))
    q = reply.find(tag(NS_ROSTER, "query"))
    assert q is not None and ALICE not in [i.get("jid") for i in q], show(reply)
    bob2 = online(login, "bob", "b2")
    no_presence(bob2, "subscribe")  # carol's request went with her
    server.assert_alive()


# ---------------------------------------------------------------- slixmpp


async def start(x, port):
    fut = asyncio.get_running_loop().create_future()

    async def on_start(_):
        await x.get_roster()
        x.send_presence()
        if not fut.done():
            fut.set_result("session")

    x.add_event_handler("session_start", on_start)
    x.add_event_handler("failed_auth", lambda st: fut.done() or fut.set_result("failed_auth"))
    x.add_event_handler("disconnected", lambda e: fut.done() or fut.set_result("disconnected"))
    x.connect(("127.0.0.1", port))
    return await asyncio.wait_for(fut, TIMEOUT)


def test_slixmpp_mutual_subscription(server):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def run():
        alice = make_xmpp("alice@localhost/slix", USERS["alice"])
        bob = make_xmpp("bob@localhost/slix", USERS["bob"])
        seen = {"alice": loop.create_future(), "bob": loop.create_future()}

        def watcher(name, other):
            def on_available(pres):
                if pres["from"].bare == other and not seen[name].done():
                    seen[name].set_result(str(pres["from"]))
            return on_available

        alice.add_event_handler("presence_available", watcher("alice", BOB))
        bob.add_event_handler("presence_available", watcher("bob", ALICE))
        try:
            assert await start(alice, server.starttls_port) == "session"
            assert await start(bob, server.starttls_port) == "session"
            # slixmpp answers requests itself (auto_authorize) and asks back
            # (auto_subscribe).
            alice.send_presence_subscription(pto=BOB)
            got = await asyncio.wait_for(asyncio.gather(seen["alice"], seen["bob"]), TIMEOUT)
            assert got == ["bob@localhost/slix", "alice@localhost/slix"]
            deadline = loop.time() + TIMEOUT
            while loop.time() < deadline:
                if (alice.client_roster[BOB]["subscription"] == "both"
                        and bob.client_roster[ALICE]["subscription"] == "both"):
                    break
                await asyncio.sleep(0.05)
            assert alice.client_roster[BOB]["subscription"] == "both"
            assert bob.client_roster[ALICE]["subscription"] == "both"
        finally:
            for x in (alice, bob):
                x.disconnect()
            for x in (alice, bob):
                try:
                    await asyncio.wait_for(x.disconnected, 5)
                except asyncio.TimeoutError:
                    pass

    try:
        loop.run_until_complete(run())
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)
        loop.close()
    server.assert_alive()


def test_state_changes_reach_interested_unavailable_resources(server, login):
    """RFC 6121 §3.1.6: the approval goes to every interested resource (one
    that asked for the roster), available or not, with its roster push; a
    resource that did neither gets nothing."""
    alice = online(login, "alice", "a1")
    bob = login("bob", "quiet")
    roster(bob)  # interested, never available
    bob_plain = login("bob", "plain")  # neither
    bob.send("<presence to='%s' type='subscribe'/>" % ALICE)
    item = push_item(bob, ALICE, "bob's push for his request")
    assert state(item) == ("none", "subscribe", None), show(item)
    wait_presence(alice, "subscribe", BOB)
    alice.send("<presence to='%s' type='subscribed'/>" % BOB)
    item = push_item(bob, ALICE, "bob's push for the approval")
    assert state(item)[0] == "to", show(item)
    got = wait_presence(bob, "subscribed", ALICE, "the approval at the interested resource")
    assert got.get("to") == BOB, show(got)
    no_presence(bob_plain, "subscribed")
    alice.send("<presence to='%s' type='unsubscribed'/>" % BOB)
    item = push_item(bob, ALICE, "bob's push for the cancellation")
    assert state(item)[0] == "none", show(item)
    wait_presence(bob, "unsubscribed", ALICE, "the cancellation at the interested resource")
    server.assert_alive()
