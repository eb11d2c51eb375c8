"""XEP-0198 Stream Management (urn:xmpp:sm:3) against the real server.

The feature after authentication; <enable/> with and without resumption;
<r/>/<a/> counting in both directions (messages, presence and IQs, h
exact); the errors (enable before bind or twice, h too high); a broken
TCP connection and a silently dead client resumed on a new connection with
every message exactly once and in order; a session not resumed in time
(contacts see it unavailable, unacknowledged messages come back from
offline storage or the account's other resource, acknowledged ones and
copies another resource already has do not; an IQ queued for it gets an
error); a graceful restart between or with the client connected (resume
fails cleanly, the messages are in offline storage and in the MAM archive);
the bound on unacknowledged stanzas; resumption with a wrong or foreign id
and without authentication; resume_timeout = 0; a clean close.

SmClient is the scripted client of hearthtest with Stream Management: it
counts every stanza it receives once <enabled/> (or <resumed/>) arrived,
answers the server's <r/> with that count (unless told not to), and counts
the stanzas it sends after <enable/> was accepted, so every h the server
states can be checked exactly.
"""

import socket
import ssl
import time
import xml.etree.ElementTree as ET

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_STANZA_ERRORS, NS_STREAM,
                        XmppClient, body_of, local, ns_of, show, stream_error_condition,
                        subscribe, tag)

NS_SM = "urn:xmpp:sm:3"
NS_DELAY = "urn:xmpp:delay"
NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
STANZAS = ("message", "presence", "iq")
# Reads wait this long by default: each archived message costs the server a
# disk commit, so a burst of a hundred can take seconds on a loaded machine.
CLIENT_TIMEOUT = 30.0
BOB_JID = "bob@localhost/phone"


def is_stanza(el):
    return ns_of(el.tag) == NS_CLIENT and local(el.tag) in STANZAS


def is_sm(el, name):
    return el.tag == tag(NS_SM, name)


def is_unavailable_from(jid):
    return lambda e: (e.tag == tag(NS_CLIENT, "presence") and e.get("type") == "unavailable"
                      and e.get("from") == jid)


def number_of(el, sender=BOB_JID):
    """The n of a test message 'n<number>' from sender, else None."""
    if el.tag != tag(NS_CLIENT, "message") or el.get("from") != sender:
        return None
    body = body_of(el)
    if el.get("type") == "error" or not body or not body.startswith("n"):
        return None
    return int(body[1:])


class SmClient(XmppClient):
    """XmppClient that counts stanzas for XEP-0198 and answers <r/>."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.sm_in = None  # stanzas received since <enabled/> (None: not counting)
        self.sm_out = None  # stanzas sent since <enable/> was accepted
        self.sm_id = None
        self.inbox = []  # (h after this stanza, element) for every counted stanza
        self.auto_ack = True
        self.acked = 0  # the last h this client sent in an <a/>
        self.requests = 0  # <r/> received from the server
        self._resume_h = None
        self.arrival = {}  # id(element) -> when it was read
        self._out_parser = None
        self._out_depth = 0

    # -- counting what arrives

    def _feed(self, data):
        start = len(self.pending)
        super()._feed(data)
        now = time.monotonic()
        for el in self.pending[start:]:
            self.arrival[id(el)] = now
        i = start
        while i < len(self.pending):
            el = self.pending[i]
            if is_stanza(el) and self.sm_in is not None:
                self.sm_in = (self.sm_in + 1) % (1 << 32)
                self.inbox.append((self.sm_in, el))
            elif is_sm(el, "enabled"):
                self.sm_in = 0
                self.inbox = []
            elif is_sm(el, "resumed") and self._resume_h is not None:
                self.sm_in = self._resume_h
            elif is_sm(el, "r"):
                self.requests += 1
                if self.auto_ack and self.sm_in is not None:
                    del self.pending[i]
                    self.ack()
                    continue
            i += 1

    # -- counting what leaves

    def _count_out(self, data):
        if data.startswith(b"<?xml") or data.startswith(b"<stream:stream") or \
                data.startswith(b"</stream:stream"):
            return
        self._out_parser.feed(data)
        for event, el in self._out_parser.read_events():
            if event == "start":
                self._out_depth += 1
            else:
                self._out_depth -= 1
                if self._out_depth == 1 and is_stanza(el):
                    self.sm_out = (self.sm_out + 1) % (1 << 32)

    def _start_out_count(self, value):
        self.sm_out = value
        self._out_parser = ET.XMLPullParser(events=("start", "end"))
        self._out_parser.feed("<root xmlns='jabber:client' "
                              "xmlns:stream='http://etherx.jabber.org/streams'>")
        list(self._out_parser.read_events())  # the root
        self._out_depth = 1

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        super().send(data)
        if self._out_parser is not None:
            self._count_out(data)

    # -- XEP-0198

    def sm_answer(self, what):
        return self.wait_for(lambda e: ns_of(e.tag) == NS_SM and local(e.tag) in (
            "enabled", "resumed", "failed"), what=what)

    def enable(self, resume=True):
        self.send("<enable xmlns='%s'%s/>" % (NS_SM, " resume='true'" if resume else ""))
        el = self.sm_answer("the answer to <enable/>")
        if not is_sm(el, "enabled"):
            self.fail("<enable/> was refused: %s" % show(el))
        self.sm_id = el.get("id")
        self._start_out_count(0)
        return el

    def ack(self, h=None):
        h = self.sm_in if h is None else h
        self.send("<a xmlns='%s' h='%d'/>" % (NS_SM, h))
        self.acked = h

    def request_ack(self):
        """<r/>; returns the server's h as an int."""
        self.send("<r xmlns='%s'/>" % NS_SM)
        a = self.wait_for(lambda e: is_sm(e, "a"), what="<a/> for our <r/>")
        return int(a.get("h"))

    def resume(self, previd, h):
        self._resume_h = h
        self.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, previd, h))
        return self.sm_answer("the answer to <resume/>")

    def read_until(self, cond, timeout=None, what="more stanzas"):
        self._wait(lambda: True if cond() else None, timeout, what)

    def numbers(self, upto=None):
        """The test messages counted so far (those with h <= upto)."""
        return [n for h, n in ((h, number_of(el)) for h, el in self.inbox)
                if n is not None and (upto is None or h <= upto)]


# --------------------------------------------------------------------------
# helpers


def login_to(server, user, resource=None):
    """A bound client (an SmClient without SM: it notes arrival times)."""
    c = SmClient.login(server, user, USERS[user], resource, timeout=CLIENT_TIMEOUT)
    server.clients.append(c)
    return c


def sm_connect(server, user, name=None):
    """An SmClient authenticated (stream restarted), not bound; checks <sm/>."""
    c = SmClient.connect(server.starttls_port, name=name or user, timeout=CLIENT_TIMEOUT)
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    c.authenticate(user, USERS[user])
    if c.feature(NS_SM, "sm") is None:
        c.fail("no <sm xmlns='%s'/> in the features after SASL: %s" % (NS_SM, show(c.features)))
    return c


def sm_login(server, user, resource, resume=True):
    c = sm_connect(server, user)
    c.bind(resource)
    c.enable(resume)
    if resume:
        assert c.sm_id, "no id in <enabled resume='true'/>"
    return c


def kill_tcp(c):
    """The connection breaks: TCP closed, no </stream:stream>, no TLS close_notify."""
    try:
        c.sock.shutdown(socket.SHUT_RDWR)  # SSLSocket.shutdown sends no close_notify
    except OSError:
        pass
    c.sock.close()
    c.eof = True


def send_numbers(sender, to, numbers):
    """Pipelined: all messages in one write."""
    sender.send("".join("<message to='%s' type='chat' id='n%d'><body>n%d</body></message>"
                        % (to, n, n) for n in numbers))


def expect_failed(c, condition, what):
    return check_failed(c.sm_answer(what), condition, what)


def check_failed(el, condition, what):
    assert is_sm(el, "failed"), "expected <failed/> for %s: %s" % (what, show(el))
    conds = [local(ch.tag) for ch in el if ns_of(ch.tag) == NS_STANZA_ERRORS]
    assert conds == [condition], "expected <failed><%s/></failed> for %s: %s" % (
        condition, what, show(el))
    return el


def resume_on_new_connection(server, old, h=None):
    """Authenticates a new connection as old's account and resumes old's
    session with h (default: what old counted); checks <resumed/>."""
    user = old.jid.split("@", 1)[0]
    h = old.sm_in if h is None else h
    c = sm_connect(server, user, name=user + "-resumed")
    el = c.resume(old.sm_id, h)
    if not is_sm(el, "resumed"):
        c.fail("resume of %s with h=%d refused: %s" % (old.sm_id, h, show(el)))
    assert el.get("previd") == old.sm_id, show(el)
    assert el.get("h") == str(old.sm_out), (
        "<resumed/> says the server handled %s of our stanzas, we sent %d: %s"
        % (el.get("h"), old.sm_out, show(el)))
    c.jid = old.jid
    c.sm_id = old.sm_id
    c._start_out_count(old.sm_out)
    return c


def check_all_once(numbers, expected, what):
    dups = sorted({n for n in numbers if numbers.count(n) > 1})
    missing = sorted(set(expected) - set(numbers))
    assert not dups, "%s: duplicated %s" % (what, dups)
    assert not missing, "%s: missing %s" % (what, missing)
    assert numbers == list(expected), "%s: out of order: %s" % (what, numbers)


def offline_numbers(c, count, what):
    """count stored messages (each with a XEP-0203 delay from the domain)."""
    got = []
    for i in range(count):
        el = c.wait_message(lambda e: number_of(e) is not None,
                            what="%s (%d of %d)" % (what, i + 1, count))
        delay = el.find(tag(NS_DELAY, "delay"))
        assert delay is not None and delay.get("from") == DOMAIN, \
            "stored message without the server's <delay/>: " + show(el)
        got.append(number_of(el))
    return got


def settle(c, wait=0.5):
    """Read (and count) whatever else arrives at SmClient c for `wait` s;
    its test messages are tallied from its inbox, not taken from the queue."""
    c.pending = [e for e in c.pending if number_of(e) is None]
    c.expect_nothing(wait, pred=lambda e: False)


def go_online(c):
    c.send("<presence/>")
    c.assert_ping()


# --------------------------------------------------------------------------
# 1. enable, counting, errors


def test_enable_and_counting_in_both_directions(make_server):
    server = make_server({"smacks": {"resume_timeout": 3}})
    alice = sm_connect(server, "alice")
    # Before bind: refused, the stream stays up.
    alice.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    expect_failed(alice, "unexpected-request", "<enable/> before bind")
    alice.bind("desk")
    alice.assert_ping()
    enabled = alice.enable(resume=True)
    assert enabled.get("resume") in ("true", "1"), show(enabled)
    assert enabled.get("id"), show(enabled)
    assert enabled.get("max") == "3", "max is not [smacks] resume_timeout: " + show(enabled)
    # Twice: refused, still counting from the first.
    alice.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
    expect_failed(alice, "unexpected-request", "a second <enable/>")
    # Nothing counted yet: failed <enable/> and <r/> are no stanzas.
    assert alice.request_ack() == 0
    assert alice.sm_out == 0
    # One IQ, one presence, one message (stored offline for bob), one IQ,
    # and one the server refuses (an error reply; it counts all the same).
    alice.send("<iq type='get' id='c1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
               "<presence/>"
               "<message to='bob@localhost' type='chat' id='c3'><body>hi</body></message>"
               "<iq type='get' id='c4'><query xmlns='%s'/></iq>"
               "<iq type='get' id='c5'><nothing xmlns='urn:example:nothing'/></iq>"
               % NS_DISCO_INFO)
    assert alice.sm_out == 5
    assert alice.request_ack() == 5
    err = alice.wait_for(lambda e: e.get("id") == "c5", what="the error for c5")
    assert err.get("type") == "error", show(err)
    alice.assert_ping()
    assert alice.request_ack() == 6
    assert alice.sm_in >= 3, "not even the three IQ results were counted"

    # The server asks (<r/>) when it has sent unacknowledged stanzas; our
    # answers carry the exact count and keep the stream up.
    bob = login_to(server, "bob", "phone")
    send_numbers(bob, alice.jid, range(20))
    alice.read_until(lambda: len(alice.numbers()) == 20, what="bob's 20 messages")
    alice.read_until(lambda: alice.requests > 0,
                     what="the server's <r/> for unacknowledged messages")
    alice.assert_ping()
    assert alice.numbers() == list(range(20))

    # A second session without resumption: <enabled/> has no id.
    other = sm_connect(server, "alice", name="alice-noresume")
    other.bind("laptop")
    plain = other.enable(resume=False)
    assert plain.get("id") is None, "<enabled/> without resume has an id: " + show(plain)
    assert plain.get("resume") not in ("true", "1"), show(plain)
    other.assert_ping()
    assert other.request_ack() == 1

    # h exactly what the server sent is fine, one more is a stream error
    # naming both numbers.
    alice.assert_ping()
    sent = alice.sm_in
    alice.ack(sent)
    alice.assert_ping()
    sent = alice.sm_in
    alice.send("<a xmlns='%s' h='%d'/>" % (NS_SM, sent + 1))
    err = alice.wait_for(lambda e: e.tag == tag(NS_STREAM, "error"), what="<stream:error/>")
    assert stream_error_condition(err) == "undefined-condition", show(err)
    high = err.find(tag(NS_SM, "handled-count-too-high"))
    assert high is not None, "no <handled-count-too-high/>: " + show(err)
    assert high.get("h") == str(sent + 1), show(err)
    assert high.get("send-count") == str(sent), (
        "the server says it sent %s stanzas, we received %d: %s"
        % (high.get("send-count"), sent, show(err)))
    alice.expect_close()
    # The others are untouched.
    other.assert_ping()
    bob.assert_ping()
    server.assert_alive()


# --------------------------------------------------------------------------
# 2./3. resumption after a broken connection


def online_pair(server):
    """bob (plain client, subscribed to alice's presence and available) and
    alice (SM with resumption, available); bob has seen alice available."""
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    subscribe(bob, "bob", alice, "alice")
    bob.send("<presence/>")
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("from") == alice.jid
                 and e.get("type") is None, what="alice's presence")
    return bob, alice


def check_resumed_delivery(server, bob, alice, new, before, total):
    """After the resumption: every number exactly once, in order, to the
    same full JID; the session goes on; bob never saw alice leave."""
    new.read_until(lambda: len(before) + len(new.numbers()) >= total,
                   what="the rest of the %d messages after resuming" % total)
    settle(new)  # duplicates would arrive now
    check_all_once(before + new.numbers(), range(total), "before the break + after resuming")
    for _, el in new.inbox:
        if number_of(el) is not None:
            assert el.get("to") in (alice.jid, "alice@localhost"), \
                "resumed delivery to another JID: " + show(el)
    new.assert_ping()
    assert new.request_ack() == alice.sm_out + 1, "the server lost count of our stanzas"
    send_numbers(bob, alice.jid, [total])
    new.read_until(lambda: new.numbers()[-1:] == [total], what="a message after resuming")
    bob.assert_ping()
    bob.expect_nothing(0.3, pred=is_unavailable_from(alice.jid))
    server.assert_alive()


def test_killed_connection_is_resumed_with_every_message_once(make_server):
    server = make_server({"smacks": {"resume_timeout": 30}})
    bob, alice = online_pair(server)
    alice.recv_size = 512  # what the server wrote stays partly unread
    send_numbers(bob, alice.jid, range(200))
    alice.read_until(lambda: len(alice.numbers()) >= 20, what="20 of bob's 200 messages")
    kill_tcp(alice)
    before = alice.numbers()
    assert len(before) < 200
    # More while the session waits for its client, to the bare JID: alice
    # is still available to others, the session queues them.
    send_numbers(bob, "alice@localhost", range(200, 220))
    bob.assert_ping()
    new = resume_on_new_connection(server, alice)
    check_resumed_delivery(server, bob, alice, new, before, 220)

    # The resumed session breaks again while messages flow: the counters
    # go on from the resumption, a second resumption loses nothing either.
    new.recv_size = 512
    send_numbers(bob, alice.jid, range(221, 271))
    new.read_until(lambda: len([n for n in new.numbers() if n > 220]) >= 10,
                   what="10 of the second round of messages")
    kill_tcp(new)
    first_two = before + new.numbers()
    third = resume_on_new_connection(server, new)
    third.read_until(lambda: len(first_two) + len(third.numbers()) >= 271,
                     what="the rest after the second resumption")
    settle(third)
    check_all_once(first_two + third.numbers(), range(271), "across two resumptions")
    third.assert_ping()
    bob.expect_nothing(0.2, pred=is_unavailable_from(alice.jid))
    server.assert_alive()


def test_client_stanzas_cut_off_by_the_break_are_sent_again_once(make_server):
    """The h in <resumed/> says which of the client's stanzas the server
    handled (a stanza cut in half by the break is not one); the client
    sends the rest and bob gets each once."""
    server = make_server({"smacks": {"resume_timeout": 30}})
    bob = login_to(server, "bob", "phone")
    go_online(bob)
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    start = alice.sm_out
    batch = ["<message to='%s' type='chat' id='a%d'><body>n%d</body></message>" % (bob.jid, n, n)
             for n in range(100)]
    # 60 messages and the start of the 61st, then the connection breaks.
    alice.send("".join(batch[:60]) + batch[60][:30])
    time.sleep(0.3)  # the server has read it all
    kill_tcp(alice)
    c = sm_connect(server, "alice", name="alice-resumed")
    el = c.resume(alice.sm_id, alice.sm_in)
    assert is_sm(el, "resumed"), show(el)
    handled = int(el.get("h")) - start
    assert handled == 60, "<resumed h=%s/>, but the server got %d whole stanzas: %s" % (
        el.get("h"), start + 60, show(el))
    c.jid = alice.jid
    c._start_out_count(int(el.get("h")))
    c.send("".join(batch[handled:]))
    c.assert_ping()
    got = []
    for i in range(100):
        m = bob.wait_message(lambda e: e.get("from") == alice.jid,
                             what="alice's message %d of 100" % (i + 1))
        got.append(int(body_of(m)[1:]))
    bob.expect_nothing(0.5, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    check_all_once(got, range(100), "alice's messages at bob")
    assert c.request_ack() == start + 101  # the 100 messages and the ping
    server.assert_alive()


def test_silently_dead_client_is_replaced_by_the_resumption(make_server):
    server = make_server({"smacks": {"resume_timeout": 30}})
    bob, alice = online_pair(server)
    alice.recv_size = 512
    send_numbers(bob, alice.jid, range(100))
    alice.read_until(lambda: len(alice.numbers()) >= 20, what="20 of bob's 100 messages")
    # alice's device vanishes: the socket stays open and is never read again.
    alice.auto_ack = False
    h = alice.sm_in
    before = alice.numbers()
    send_numbers(bob, "alice@localhost", range(100, 110))
    bob.assert_ping()
    new = resume_on_new_connection(server, alice, h)
    check_resumed_delivery(server, bob, alice, new, before, 110)
    # The server closed the old connection: the stream, and the TCP
    # connection too, although the dead client never answers.
    alice._wait(lambda: True if alice.stream_closed else None, None,
                "the server closing the replaced stream")
    deadline = time.monotonic() + 10
    while not alice.eof and time.monotonic() < deadline:
        try:
            alice._read_some(deadline)
        except socket.timeout:
            break
        except AssertionError:
            pass  # bytes after </stream:stream>; only the closing matters
    assert alice.eof, "the replaced connection is still open 10 s after its </stream:stream>"


# --------------------------------------------------------------------------
# 4. not resumed in time


def break_while_flowing(bob, alice, total, acked_at, break_at):
    """bob sends total messages; alice acknowledges (<a/>, then a round
    trip) after acked_at of them, reads on to break_at and her TCP
    connection dies. Returns (acknowledged numbers, received numbers)."""
    alice.auto_ack = False
    alice.recv_size = 512
    send_numbers(bob, alice.jid, range(total))
    alice.read_until(lambda: len(alice.numbers()) >= acked_at, what="%d messages" % acked_at)
    alice.ack()
    alice.assert_ping()  # the server has the <a/>
    acked = alice.numbers(upto=alice.acked)
    alice.read_until(lambda: len(alice.numbers()) >= break_at, what="%d messages" % break_at)
    received = alice.numbers()
    kill_tcp(alice)
    assert len(acked) >= acked_at and len(received) > len(acked)
    assert acked == list(range(len(acked))) and received == list(range(len(received)))
    return acked, received


def test_not_resumed_in_time_unacknowledged_messages_go_offline(make_server):
    timeout = 3
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob, alice = online_pair(server)
    acked, received = break_while_flowing(bob, alice, 100, 15, 30)
    killed = time.monotonic()
    send_numbers(bob, alice.jid, range(100, 120))
    bob.assert_ping()
    # Still online to bob while the session waits, then gone.
    gone = bob.wait_for(is_unavailable_from(alice.jid), timeout=timeout + 10,
                        what="alice's unavailable presence after resume_timeout")
    after = bob.arrival[id(gone)] - killed
    assert after >= timeout - 0.5, \
        "alice unavailable %.1f s after the break, resume_timeout is %d s" % (after, timeout)
    # The old session cannot be resumed any more...
    late = sm_connect(server, "alice", name="alice-late")
    check_failed(late.resume(alice.sm_id, alice.sm_in), "item-not-found",
                 "the id of a session that timed out")
    late.close()
    # ...and a fresh login gets exactly what was never acknowledged.
    fresh = login_to(server, "alice", "desk")
    fresh.expect_nothing(0.3, pred=lambda e: number_of(e) is not None)  # not before presence
    fresh.send("<presence/>")
    expected = [n for n in range(120) if n not in acked]
    got = offline_numbers(fresh, len(expected), "an unacknowledged message from offline")
    fresh.expect_nothing(0.7, pred=lambda e: number_of(e) is not None)
    check_all_once(got, expected, "offline after the timeout")
    check_all_once(acked + got, range(120), "acknowledged + offline")
    fresh.assert_ping()
    bob.assert_ping()
    server.assert_alive()


def test_not_resumed_in_time_messages_go_to_the_other_resource(make_server):
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob, alice = online_pair(server)
    laptop = login_to(server, "alice", "laptop")
    go_online(laptop)
    acked, _ = break_while_flowing(bob, alice, 60, 10, 20)
    laptop.expect_nothing(timeout - 1.0, pred=lambda e: number_of(e) is not None)
    expected = [n for n in range(60) if n not in acked]
    got = []
    for i in range(len(expected)):
        el = laptop.wait_message(lambda e: number_of(e) is not None, timeout=timeout + 20,
                                 what="unacknowledged message %d of %d at the other resource"
                                 % (i + 1, len(expected)))
        got.append(number_of(el))
    laptop.expect_nothing(0.5, pred=lambda e: number_of(e) is not None)
    check_all_once(got, expected, "redelivered to the other resource")
    # Nothing went to offline storage as well.
    tablet = login_to(server, "alice", "tablet")
    go_online(tablet)
    tablet.expect_nothing(0.7, pred=lambda e: number_of(e) is not None)
    server.assert_alive()


def test_carbon_copies_are_not_delivered_again_at_the_timeout(make_server):
    """desk (SM, carbons) gets a received carbon of each message bob sends
    to laptop and never acknowledges them; when desk's session ends, the
    copies are not messages for the account: laptop, which had the
    originals, gets nothing again and nothing goes to offline storage."""
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob = login_to(server, "bob", "phone")
    desk = sm_login(server, "alice", "desk")
    go_online(desk)
    reply = desk.iq("set", "<enable xmlns='urn:xmpp:carbons:2'/>")
    assert reply.get("type") == "result", show(reply)
    desk.auto_ack = False
    laptop = login_to(server, "alice", "laptop")
    go_online(laptop)
    send_numbers(bob, laptop.jid, range(10))
    got = [number_of(laptop.wait_message(lambda e: number_of(e) is not None,
                                         what="message %d at laptop" % i)) for i in range(10)]
    assert got == list(range(10))
    carbons = lambda: [el for _, el in desk.inbox if el.tag == tag(NS_CLIENT, "message")
                       and el.find("{urn:xmpp:carbons:2}received") is not None]
    desk.read_until(lambda: len(carbons()) == 10, what="10 received carbons at desk")
    kill_tcp(desk)
    time.sleep(timeout + 1.0)
    laptop.expect_nothing(0.5, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    tablet = login_to(server, "alice", "tablet")
    go_online(tablet)
    tablet.expect_nothing(0.7, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    laptop.assert_ping()
    server.assert_alive()


def test_bare_jid_messages_the_other_resource_had_are_not_sent_to_it_again(make_server):
    """desk and laptop (carbons) are available at the same priority: a
    message to the bare JID reaches both, one to desk reaches laptop as a
    carbon. desk never acknowledges and dies; laptop, which has them all,
    does not get them a second time, and nothing goes to offline storage."""
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob = login_to(server, "bob", "phone")
    desk = sm_login(server, "alice", "desk")
    go_online(desk)
    desk.auto_ack = False
    laptop = login_to(server, "alice", "laptop")
    go_online(laptop)
    reply = laptop.iq("set", "<enable xmlns='urn:xmpp:carbons:2'/>")
    assert reply.get("type") == "result", show(reply)
    send_numbers(bob, "alice@localhost", range(10))
    send_numbers(bob, desk.jid, range(10, 20))
    got = [number_of(laptop.wait_message(lambda e: number_of(e) is not None,
                                         what="message %d at laptop" % i)) for i in range(10)]
    assert got == list(range(10))
    for i in range(10, 20):
        laptop.wait_message(lambda e: e.find("{urn:xmpp:carbons:2}received") is not None,
                            what="the carbon of message %d at laptop" % i)
    desk.read_until(lambda: len(desk.numbers()) == 20, what="the 20 messages at desk")
    kill_tcp(desk)
    time.sleep(timeout + 1.0)
    laptop.expect_nothing(0.5, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    tablet = login_to(server, "alice", "tablet")
    go_online(tablet)
    tablet.expect_nothing(0.7, pred=lambda e: e.tag == tag(NS_CLIENT, "message"))
    server.assert_alive()


def test_resource_that_comes_online_later_gets_what_the_dead_one_did_not_acknowledge(
        make_server):
    """desk is alone when bob's messages (to the bare JID and to desk) are
    delivered to it; desk dies without acknowledging them. laptop comes
    online (with carbons) while desk's session waits: it never had those
    messages, so at the timeout they reach it, each once, in order."""
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob = login_to(server, "bob", "phone")
    desk = sm_login(server, "alice", "desk")
    go_online(desk)
    desk.auto_ack = False
    send_numbers(bob, "alice@localhost", range(10))
    send_numbers(bob, desk.jid, range(10, 20))
    desk.read_until(lambda: len(desk.numbers()) == 20, what="the 20 messages at desk")
    kill_tcp(desk)
    laptop = login_to(server, "alice", "laptop")
    go_online(laptop)
    reply = laptop.iq("set", "<enable xmlns='urn:xmpp:carbons:2'/>")
    assert reply.get("type") == "result", show(reply)
    got = []
    for i in range(20):
        el = laptop.wait_message(lambda e: number_of(e) is not None, timeout=timeout + 20,
                                 what="desk's unacknowledged message %d of 20 at laptop" % (i + 1))
        got.append(number_of(el))
    laptop.expect_nothing(0.5, pred=lambda e: number_of(e) is not None)
    check_all_once(got, range(20), "at the resource that came online later")
    laptop.assert_ping()
    server.assert_alive()


# --------------------------------------------------------------------------
# 5. graceful restart between


def mam_numbers(c):
    """Every test message in c's archive (XEP-0313 paged with XEP-0059)."""
    got = []
    after = None
    for _ in range(100):
        qid = XmppClient.new_id("q")
        rsm = "<set xmlns='%s'><max>50</max>%s</set>" % (
            NS_RSM, "<after>%s</after>" % after if after else "")
        reply = c.iq("set", "<query xmlns='%s' queryid='%s'>%s</query>" % (NS_MAM, qid, rsm))
        assert reply.get("type") == "result", "MAM query failed: " + show(reply)
        results = [e for e in c.pending if e.tag == tag(NS_CLIENT, "message")
                   and e.find(tag(NS_MAM, "result")) is not None
                   and e.find(tag(NS_MAM, "result")).get("queryid") == qid]
        for e in results:
            c.pending.remove(e)
            inner = e.find("%s/%s/%s" % (tag(NS_MAM, "result"), tag(NS_FORWARD, "forwarded"),
                                         tag(NS_CLIENT, "message")))
            assert inner is not None, "MAM result without a forwarded message: " + show(e)
            n = number_of(inner)
            if n is not None:
                got.append(n)
        fin = reply.find(tag(NS_MAM, "fin"))
        assert fin is not None, "MAM result without <fin/>: " + show(reply)
        last = fin.find("%s/%s" % (tag(NS_RSM, "set"), tag(NS_RSM, "last")))
        if fin.get("complete") in ("true", "1") or not results or last is None:
            return got
        after = last.text
    raise AssertionError("MAM paging did not end after 100 pages")


def test_restart_between_resume_fails_messages_in_offline_and_archive(make_server):
    server = make_server({"smacks": {"resume_timeout": 60}})
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    acked, _ = break_while_flowing(bob, alice, 100, 15, 30)
    bob.assert_ping()  # every message has reached alice's waiting session
    server.restart()  # graceful (SIGTERM)

    c = sm_connect(server, "alice", name="alice-after-restart")
    check_failed(c.resume(alice.sm_id, alice.sm_in), "item-not-found",
                 "<resume/> after a restart")
    # Bind instead, on the same stream.
    assert c.bind("desk") == alice.jid
    c.enable(resume=True)
    c.send("<presence/>")
    expected = [n for n in range(100) if n not in acked]
    got = offline_numbers(c, len(expected), "an unacknowledged message from offline")
    c.expect_nothing(0.7, pred=lambda e: number_of(e) is not None)
    check_all_once(got, expected, "offline after the restart")
    check_all_once(acked + got, range(100), "acknowledged + offline")

    # Everything is in alice's archive, once.
    info = c.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to="alice@localhost")
    features = [f.get("var") for f in info.iter(tag(NS_DISCO_INFO, "feature"))]
    assert NS_MAM in features, "no %s in the account's disco#info: %s" % (NS_MAM, show(info))
    check_all_once(mam_numbers(c), range(100), "alice's archive")
    c.assert_ping()
    server.assert_alive()


def test_restart_with_the_client_connected_stores_what_it_did_not_acknowledge(make_server):
    """SIGTERM ends a live SM session as well: what the client had not
    acknowledged is in offline storage after the restart."""
    server = make_server({"smacks": {"resume_timeout": 60}})
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    alice.auto_ack = False
    alice.recv_size = 512
    send_numbers(bob, alice.jid, range(60))
    alice.read_until(lambda: len(alice.numbers()) >= 10, what="10 messages")
    alice.ack()
    alice.assert_ping()
    acked = alice.numbers(upto=alice.acked)
    bob.assert_ping()
    # The harness closes its clients cleanly before a restart; alice stays
    # connected and sees the server go.
    server.clients.remove(alice)
    server.restart()
    alice._wait(lambda: True if (alice.eof or alice.stream_closed) else None, None,
                "the server closing alice's stream at shutdown")
    alice.close()
    fresh = login_to(server, "alice", "desk")
    fresh.send("<presence/>")
    expected = [n for n in range(60) if n not in acked]
    got = offline_numbers(fresh, len(expected), "an unacknowledged message from offline")
    fresh.expect_nothing(0.7, pred=lambda e: number_of(e) is not None)
    check_all_once(got, expected, "offline after a restart with alice connected")
    check_all_once(acked + got, range(60), "acknowledged + offline")
    server.assert_alive()


def test_iq_for_a_session_that_ends_unresumed_is_answered_with_an_error(make_server):
    """RFC 6120 8.2.3: an IQ request gets a reply. One queued for a
    waiting session that then ends is treated like one for an unavailable
    resource (XEP-0198 section 5): the server answers it with an error."""
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout}})
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    kill_tcp(alice)
    bob.assert_ping()
    bob.send("<iq type='get' id='to-gone' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
             % alice.jid)
    reply = bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("id") == "to-gone",
                         timeout=timeout + 5, what="an answer to the IQ for alice's session")
    assert reply.get("type") == "error", show(reply)
    assert reply.get("from") == alice.jid, show(reply)
    bob.assert_ping()
    server.assert_alive()


# --------------------------------------------------------------------------
# 6. queue bound


def test_client_that_never_acknowledges_is_disconnected_and_loses_nothing(make_server):
    timeout = 2
    server = make_server({"smacks": {"resume_timeout": timeout, "max_queue": 10}})
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    alice.auto_ack = False
    send_numbers(bob, alice.jid, range(30))
    cond = alice.expect_stream_error(timeout=15)
    assert cond == "policy-violation", "expected <policy-violation/>, got <%s/>" % cond
    assert alice.requests > 0, "disconnected without ever being asked (<r/>)"
    assert alice.acked == 0
    server.assert_alive()
    bob.assert_ping()
    # Nothing was acknowledged: all 30 come back, once, in order, after
    # the session's end (at once or after resume_timeout).
    time.sleep(timeout + 1.0)
    fresh = login_to(server, "alice", "desk")
    fresh.send("<presence/>")
    got = offline_numbers(fresh, 30, "an unacknowledged message from offline")
    fresh.expect_nothing(0.7, pred=lambda e: number_of(e) is not None)
    check_all_once(got, range(30), "offline after policy-violation")
    bob.assert_ping()
    server.assert_alive()


def test_client_that_acknowledges_gets_more_than_max_queue(make_server):
    """max_queue bounds what is unacknowledged, not what is sent: 60
    messages in batches of 5, each acknowledged, with max_queue = 10."""
    server = make_server({"smacks": {"resume_timeout": 3, "max_queue": 10}})
    bob = login_to(server, "bob", "phone")
    alice = sm_login(server, "alice", "desk")
    go_online(alice)
    for first in range(0, 60, 5):
        send_numbers(bob, alice.jid, range(first, first + 5))
        alice.read_until(lambda: len(alice.numbers()) == first + 5,
                         what="messages %d to %d" % (first, first + 4))
        alice.ack()
        alice.assert_ping()
    assert alice.numbers() == list(range(60))
    alice.ack()
    alice.expect_nothing(0.3, pred=lambda e: e.tag == tag(NS_STREAM, "error"))
    alice.assert_ping()
    bob.assert_ping()
    server.assert_alive()


# --------------------------------------------------------------------------
# 7. resumption refused


def test_resume_refused_for_wrong_or_foreign_id_and_without_auth(make_server):
    server = make_server({"smacks": {"resume_timeout": 30}})
    bob = sm_login(server, "bob", "phone")
    go_online(bob)
    kill_tcp(bob)  # bob's session waits for him

    wrong = sm_connect(server, "alice", name="alice-wrong-id")
    check_failed(wrong.resume(bob.sm_id + "x", 0), "item-not-found", "an unknown id")
    # The stream goes on: bind normally.
    assert wrong.bind("desk") == "alice@localhost/desk"
    wrong.assert_ping()

    foreign = sm_connect(server, "alice", name="alice-bobs-id")
    check_failed(foreign.resume(bob.sm_id, bob.sm_in), "item-not-found", "bob's id as alice")
    assert foreign.bind("laptop") == "alice@localhost/laptop"
    foreign.assert_ping()

    anon = SmClient.connect(server.starttls_port, name="unauthenticated", timeout=CLIENT_TIMEOUT)
    server.clients.append(anon)
    anon.open_stream()
    anon.starttls()
    anon.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (NS_SM, bob.sm_id, bob.sm_in))
    assert anon.expect_stream_error() == "not-authorized"

    # bob's session survived all of it: a message queued for it arrives
    # after bob resumes.
    carol = login_to(server, "carol", "home")
    carol.send("<message to='%s' type='chat' id='w1'><body>while away</body></message>"
               % bob.jid)
    carol.assert_ping()
    new = resume_on_new_connection(server, bob)
    el = new.wait_message(lambda e: e.get("id") == "w1", what="carol's message")
    assert body_of(el) == "while away" and el.get("from") == carol.jid, show(el)
    new.assert_ping()
    for c in (wrong, foreign, carol):
        c.assert_ping()
    server.assert_alive()


def test_zero_resume_timeout_means_no_resumption(make_server):
    """[smacks] resume_timeout = 0: <enabled/> without an id even when
    resumption is asked for; a broken connection ends the session at once
    and what was not acknowledged goes to offline storage."""
    server = make_server({"smacks": {"resume_timeout": 0}})
    bob = login_to(server, "bob", "phone")
    alice = sm_connect(server, "alice")
    alice.bind("desk")
    enabled = alice.enable(resume=True)
    assert enabled.get("id") is None and enabled.get("resume") not in ("true", "1"), \
        "<enabled/> offers resumption with resume_timeout = 0: " + show(enabled)
    subscribe(bob, "bob", alice, "alice")
    bob.send("<presence/>")
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("from") == alice.jid
                 and e.get("type") is None, what="alice's presence")
    alice.auto_ack = False
    send_numbers(bob, alice.jid, range(5))
    alice.read_until(lambda: len(alice.numbers()) == 5, what="5 messages")
    kill_tcp(alice)
    bob.wait_for(is_unavailable_from(alice.jid), timeout=5,
                 what="alice's unavailable presence at once")
    fresh = login_to(server, "alice", "desk")
    fresh.send("<presence/>")
    check_all_once(offline_numbers(fresh, 5, "an unacknowledged message"), range(5),
                   "offline after a break without resumption")
    fresh.expect_nothing(0.5, pred=lambda e: number_of(e) is not None)
    server.assert_alive()


def test_clean_close_ends_the_session_for_good(make_server):
    server = make_server({"smacks": {"resume_timeout": 30}})
    bob, alice = online_pair(server)
    alice.send("</stream:stream>")
    alice._wait(lambda: True if (alice.eof or alice.stream_closed) else None, None,
                "the server's </stream:stream>")
    # Gone at once, not after resume_timeout.
    bob.wait_for(is_unavailable_from(alice.jid), timeout=10,
                 what="alice's unavailable presence after a clean close")
    again = sm_connect(server, "alice", name="alice-again")
    check_failed(again.resume(alice.sm_id, alice.sm_in), "item-not-found",
                 "the id of a cleanly closed session")
    assert again.bind("desk") == alice.jid
    again.assert_ping()
    bob.assert_ping()
    server.assert_alive()
