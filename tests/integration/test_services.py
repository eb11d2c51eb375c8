"""Entity Time (XEP-0202), Software Version (XEP-0092), Last Activity
(XEP-0012) and XMPP Ping (XEP-0199), incl. the server's pings to silent
clients."""

import calendar
import os
import re
import time

import pytest

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_PING, NS_STREAM, XmppClient, bare_jid, show,
                        stanza_error_condition, tag)
import hearthtest

NS_TIME = "urn:xmpp:time"
NS_VERSION = "jabber:iq:version"
NS_LAST = "jabber:iq:last"


def assert_error(reply, condition, type_=None):
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == condition, show(reply)
    if type_ is not None:
        assert reply.find(tag(NS_CLIENT, "error")).get("type") == type_, show(reply)


# ---------------------------------------------------------------- time


def test_time(server, login):
    alice = login("alice")
    before = time.time()
    r = alice.iq("get", "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN)
    after = time.time()
    assert r.get("type") == "result" and r.get("from") == DOMAIN, show(r)
    t = r.find(tag(NS_TIME, "time"))
    assert t is not None, show(r)
    assert t.findtext(tag(NS_TIME, "tzo")) == "+00:00"
    utc = t.findtext(tag(NS_TIME, "utc"))
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z", utc or "")
    assert m, "utc %r is not a XEP-0082 DateTime" % utc
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    assert before - 2 <= secs <= after + 1, (utc, before, after)
    server.assert_alive()


def test_time_malformed(server, login):
    alice = login("alice")
    assert_error(alice.iq("get", "<query xmlns='%s'/>" % NS_TIME, to=DOMAIN), "bad-request",
                 "modify")
    # Not a get: nobody handles a set.
    r = alice.iq("set", "<time xmlns='%s'/>" % NS_TIME, to=DOMAIN)
    assert r.get("type") == "error", show(r)
    alice.assert_ping()
    server.assert_alive()


# ---------------------------------------------------------------- version


def version_query(client):
    r = client.iq("get", "<query xmlns='%s'/>" % NS_VERSION, to=DOMAIN)
    assert r.get("type") == "result", show(r)
    q = r.find(tag(NS_VERSION, "query"))
    assert q is not None, show(r)
    return q


def test_version_name_only_by_default(server, login):
    q = version_query(login("alice"))
    assert q.findtext(tag(NS_VERSION, "name")) == "Hearth"
    assert q.find(tag(NS_VERSION, "version")) is None, show(q)
    assert q.find(tag(NS_VERSION, "os")) is None, show(q)
    server.assert_alive()


def test_version_exposed(make_server):
    server = make_server({"server": {"expose_version": "true"}})
    alice = XmppClient.login(server, "alice", USERS["alice"])
    server.clients.append(alice)
    q = version_query(alice)
    assert q.findtext(tag(NS_VERSION, "name")) == "Hearth"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", q.findtext(tag(NS_VERSION, "version")) or ""), show(q)
    # The OS name only: no host name, no kernel release.
    assert q.findtext(tag(NS_VERSION, "os")) == os.uname().sysname, show(q)
    server.assert_alive()


def test_version_malformed(server, login):
    alice = login("alice")
    assert_error(alice.iq("get", "<version xmlns='%s'/>" % NS_VERSION, to=DOMAIN), "bad-request",
                 "modify")
    alice.assert_ping()
    server.assert_alive()


# ---------------------------------------------------------------- last


def last_query(client, to):
    return client.iq("get", "<query xmlns='%s'/>" % NS_LAST, to=to)


def last_seconds(reply):
    assert reply.get("type") == "result", show(reply)
    q = reply.find(tag(NS_LAST, "query"))
    assert q is not None and re.fullmatch(r"\d+", q.get("seconds") or ""), show(reply)
    return int(q.get("seconds")), (q.text or "")


def test_last_server_uptime(server, login):
    alice = login("alice")
    s1, text = last_seconds(last_query(alice, DOMAIN))
    assert 0 <= s1 < 60 and text == ""
    time.sleep(2.1)
    s2, _ = last_seconds(last_query(alice, DOMAIN))
    assert s2 >= s1 + 2, (s1, s2)
    server.assert_alive()


def test_last_account(server, login):
    alice = login("alice", "desk")
    bob = login("bob")
    carol = login("carol")
    hearthtest.subscribe(bob, "bob", alice, "alice")  # alice's roster: bob with 'from'
    bob.send("<presence/>")  # bob gets alice's presence from now on
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("type") is None
                 and e.get("from") == bare_jid("alice") + "/desk", what="alice's presence (probe)")

    # Online: 0 (XEP-0012 section 4).
    assert last_seconds(last_query(bob, bare_jid("alice"))) == (0, "")
    # Own account, no 'to' or to the own bare JID.
    assert last_seconds(last_query(alice, None)) == (0, "")
    # Not allowed to see alice's presence.
    assert_error(last_query(carol, bare_jid("alice")), "forbidden", "auth")

    # A second resource that is not available does not count as online.
    alice2 = login("alice", "phone")
    alice.send("<presence type='unavailable'><status>gone fishing</status></presence>")
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("type") == "unavailable"
                 and e.get("from", "").startswith(bare_jid("alice")), what="alice's unavailable")
    secs, text = last_seconds(last_query(bob, bare_jid("alice")))
    assert secs <= 2 and text == "gone fishing", (secs, text)
    alice.close()
    alice2.close()
    time.sleep(2.1)
    secs, text = last_seconds(last_query(bob, bare_jid("alice")))
    assert 2 <= secs <= 10 and text == "gone fishing", (secs, text)

    # Back online and then the stream simply ends: the time is the close,
    # without a status.
    alice = login("alice", "desk")
    alice.send("<presence/>")
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("type") is None
                 and e.get("from") == bare_jid("alice") + "/desk", what="alice's presence")
    assert last_seconds(last_query(bob, bare_jid("alice"))) == (0, "")
    alice.close()
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("type") == "unavailable"
                 and e.get("from") == bare_jid("alice") + "/desk", what="alice's unavailable")
    secs, text = last_seconds(last_query(bob, bare_jid("alice")))
    assert secs <= 2 and text == "", (secs, text)
    bob.assert_ping()
    server.assert_alive()


def test_last_never_online(server, login):
    bob = login("bob")
    carol = login("carol")
    # carol pre-approves bob (RFC 6121 section 3.4) without ever being
    # available, then bob subscribes.
    carol.send("<presence type='subscribed' to='%s'/>" % bare_jid("bob"))
    carol.assert_ping()
    bob.iq("get", "<query xmlns='jabber:iq:roster'/>")
    bob.send("<presence type='subscribe' to='%s'/>" % bare_jid("carol"))
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("type") == "set" and any(
        i.get("jid") == bare_jid("carol") and i.get("subscription") == "to"
        for i in e.iter("{jabber:iq:roster}item")), what="the pre-approved subscription")
    carol.close()
    time.sleep(0.3)
    assert_error(last_query(bob, bare_jid("carol")), "service-unavailable", "cancel")
    bob.assert_ping()
    server.assert_alive()


def test_last_malformed(server, login):
    alice = login("alice")
    for to in (DOMAIN, None, bare_jid("bob")):
        assert_error(alice.iq("get", "<last xmlns='%s'/>" % NS_LAST, to=to), "bad-request",
                     "modify")
    alice.assert_ping()
    server.assert_alive()


# ---------------------------------------------------------------- ping


@pytest.mark.parametrize("to", [DOMAIN, None, "alice@" + DOMAIN])
def test_ping(server, login, to):
    alice = login("alice")
    r = alice.ping(to=to)
    assert r.get("type") == "result" and len(r) == 0, show(r)
    server.assert_alive()


def test_ping_malformed(server, login):
    alice = login("alice")
    assert_error(alice.iq("get", "<pong xmlns='%s'/>" % NS_PING, to=DOMAIN), "bad-request",
                 "modify")
    alice.assert_ping()
    server.assert_alive()


def is_server_ping(el):
    return (el.tag == tag(NS_CLIENT, "iq") and el.get("type") == "get"
            and el.find(tag(NS_PING, "ping")) is not None)


def test_server_pings_dead_client_timeout(make_server):
    """[c2s] ping_interval=1, ping_timeout=5: a client that does not answer is
    closed with <connection-timeout/>; one that answers stays."""
    server = make_server({"c2s": {"ping_interval": "1", "ping_timeout": "5"}})
    dead = XmppClient.login(server, "alice", USERS["alice"], "dead")
    live = XmppClient.login(server, "bob", USERS["bob"], "live")
    server.clients.extend([dead, live])
    start = time.monotonic()
    answered = 0
    checked_early = False
    while time.monotonic() - start < 8.5:
        if not checked_early and time.monotonic() - start > 4.0:
            # Before ping_interval + ping_timeout the silent one is still there.
            dead.expect_nothing(0.05, pred=lambda e: e.tag == tag(NS_STREAM, "error"))
            assert not dead.stream_closed and not dead.eof, dead.transcript()
            checked_early = True
        try:
            limit = 4.0 if not checked_early else 8.5
            ping = live.wait_for(is_server_ping,
                                 timeout=max(0.1, limit - (time.monotonic() - start)))
        except AssertionError:
            if not checked_early:
                continue
            break
        assert ping.get("from") == DOMAIN and ping.get("to") == live.jid, show(ping)
        live.send("<iq type='result' id='%s' to='%s'/>" % (ping.get("id"), DOMAIN))
        answered += 1
    assert answered >= 2 and checked_early
    # The dead one was pinged too, then closed.
    cond = dead.expect_stream_error(timeout=3)
    assert cond == "connection-timeout", cond
    assert any(is_server_ping(e) for e in dead.pending), dead.transcript()
    assert not live.stream_closed and not live.eof
    live.assert_ping()
    server.assert_alive()

