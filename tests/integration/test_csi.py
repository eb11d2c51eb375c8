"""Client State Indication (XEP-0352) against the real server: alice's
phone goes <inactive/>; bob's presence updates are held (only the newest per
full JID survives), chat-state-only messages are dropped, and a message with
a body, an IQ, <active/> or too many held stanzas ([csi] max_held = 10)
deliver what was held first, in order.
"""

import pytest

from hearthtest import NS_CLIENT, XmppClient, body_of, show, subscribe, tag

NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_PING = "urn:xmpp:ping"
ALICE = "alice@localhost"
BOB = "bob@localhost"


def is_presence(el):
    return el.tag == tag(NS_CLIENT, "presence")


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def is_stanza(el):
    return el.tag in (tag(NS_CLIENT, "message"), tag(NS_CLIENT, "presence"),
                      tag(NS_CLIENT, "iq"))


@pytest.fixture
def pair(make_server):
    """alice (subscribed to bob, available) and bob (available), settled."""
    server = make_server({"csi": {"max_held": 10}})

    def log_in(user, resource):
        from conftest import USERS
        c = XmppClient.login(server, user, USERS[user], resource)
        server.clients.append(c)
        return c

    alice = log_in("alice", "phone")
    bob = log_in("bob", "pc")
    subscribe(alice, "alice", bob, "bob")
    alice.send("<presence/>")
    alice.wait_for(lambda e: is_presence(e) and e.get("from") == bob.jid and e.get("type") is None,
                   what="bob's presence after alice's initial presence")
    settle(alice)
    settle(bob)
    return server, alice, bob


def settle(c):
    """Drain whatever is still on its way (roster pushes, presence)."""
    c.assert_ping()
    c.expect_nothing(0.3, pred=lambda e: False)
    c.pending.clear()


def inactive(c):
    c.send("<inactive xmlns='%s'/>" % NS_CSI)
    c.assert_ping()  # processed (an IQ reply passes, nothing is held yet)


def bob_presence(bob, show_text):
    bob.send("<presence><show>%s</show><status>%s</status></presence>" % (show_text, show_text))


def chat_state(bob, to, state="composing"):
    msg_id = XmppClient.new_id("cs")
    bob.send("<message to='%s' type='chat' id='%s'><%s xmlns='%s'/></message>"
             % (to, msg_id, state, NS_CHATSTATES))
    return msg_id


def stanzas(c, count, what):
    """The next `count` stanzas, in the order they arrived."""
    out = []
    for i in range(count):
        el = c.next(what="%s (%d of %d)" % (what, i + 1, count))
        assert is_stanza(el), show(el)
        out.append(el)
    return out


def presence_show(el):
    s = el.find(tag(NS_CLIENT, "show"))
    return None if s is None else s.text


def test_feature_is_advertised(server, login):
    c = login("alice", "phone")
    assert c.feature(NS_CSI, "csi") is not None, show(c.features)
    # An unknown element of the namespace is ignored; the stream stays up.
    c.send("<sleepy xmlns='%s'/>" % NS_CSI)
    c.assert_ping()
    server.assert_alive()


def test_only_the_newest_presence_arrives_on_active(pair):
    server, alice, bob = pair
    inactive(alice)
    bob_presence(bob, "away")
    bob_presence(bob, "dnd")
    bob_presence(bob, "xa")
    chat_state(bob, alice.jid)
    chat_state(bob, ALICE, "paused")
    bob.assert_ping()
    alice.expect_nothing(0.8, pred=is_stanza)
    alice.send("<active xmlns='%s'/>" % NS_CSI)
    [el] = stanzas(alice, 1, "the held presence")
    assert is_presence(el) and el.get("from") == bob.jid, show(el)
    assert presence_show(el) == "xa", show(el)
    # Older updates and the chat states never come.
    alice.expect_nothing(0.8, pred=lambda e: is_presence(e) or is_message(e))
    # Active again: chat states pass.
    k = chat_state(bob, alice.jid)
    el = alice.wait_message(lambda e: e.get("id") == k, what="a chat state while active")
    assert el.find(tag(NS_CHATSTATES, "composing")) is not None, show(el)
    alice.assert_ping()
    bob.assert_ping()
    server.assert_alive()


def test_message_with_body_flushes_held_presence_first(pair):
    server, alice, bob = pair
    inactive(alice)
    bob_presence(bob, "away")
    chat_state(bob, alice.jid)
    bob_presence(bob, "chat")
    bob.assert_ping()
    alice.expect_nothing(0.5, pred=is_stanza)
    m = XmppClient.new_id("m")
    bob.send("<message to='%s' type='chat' id='%s'><body>wake up</body>"
             "<active xmlns='%s'/></message>" % (ALICE, m, NS_CHATSTATES))
    first, second = stanzas(alice, 2, "the held presence, then the message")
    assert is_presence(first) and presence_show(first) == "chat", show(first)
    assert first.get("from") == bob.jid, show(first)
    assert is_message(second) and second.get("id") == m, show(second)
    assert body_of(second) == "wake up", show(second)
    alice.expect_nothing(0.5, pred=is_stanza)
    # Still inactive: the next update is held until <active/>.
    bob_presence(bob, "dnd")
    bob.assert_ping()
    alice.expect_nothing(0.5, pred=is_stanza)
    alice.send("<active xmlns='%s'/>" % NS_CSI)
    [el] = stanzas(alice, 1, "the presence held after the flush")
    assert presence_show(el) == "dnd", show(el)
    alice.assert_ping()
    server.assert_alive()


def test_more_than_max_held_flushes_everything_in_order(pair):
    server, alice, bob = pair
    inactive(alice)
    bob_presence(bob, "away")
    ids = []
    for i in range(9):  # 1 presence + 9 headlines = 10 held: still held
        ids.append(XmppClient.new_id("h"))
        bob.send("<message to='%s' type='headline' id='%s'><event xmlns='urn:example:tick' n='%d'/>"
                 "</message>" % (alice.jid, ids[-1], i))
    bob.assert_ping()
    alice.expect_nothing(0.8, pred=is_stanza)
    ids.append(XmppClient.new_id("h"))
    bob.send("<message to='%s' type='headline' id='%s'><event xmlns='urn:example:tick' n='9'/>"
             "</message>" % (alice.jid, ids[-1]))
    got = stanzas(alice, 11, "the flushed stanzas")
    assert is_presence(got[0]) and presence_show(got[0]) == "away", show(got[0])
    assert [e.get("id") for e in got[1:]] == ids, "".join(show(e) for e in got)
    alice.expect_nothing(0.4, pred=is_stanza)
    alice.assert_ping()
    server.assert_alive()


def test_iq_to_the_client_passes_at_once_after_what_was_held(pair):
    server, alice, bob = pair
    inactive(alice)
    bob_presence(bob, "away")
    bob.assert_ping()
    alice.expect_nothing(0.5, pred=is_stanza)
    q = XmppClient.new_id("q")
    bob.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (q, alice.jid, NS_PING))
    first, second = stanzas(alice, 2, "the held presence, then bob's ping")
    assert is_presence(first) and presence_show(first) == "away", show(first)
    assert second.tag == tag(NS_CLIENT, "iq") and second.get("id") == q, show(second)
    assert second.get("from") == bob.jid, show(second)
    alice.send("<iq type='result' id='%s' to='%s'/>" % (q, bob.jid))
    reply = bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("id") == q,
                         what="alice's ping answer")
    assert reply.get("type") == "result", show(reply)
    # The server's own IQ answers pass too, with nothing held in front.
    alice.assert_ping(timeout=2.0)
    alice.send("<active xmlns='%s'/>" % NS_CSI)
    alice.expect_nothing(0.5, pred=is_stanza)
    server.assert_alive()
