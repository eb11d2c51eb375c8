"""Quiet streams give back their XML parser (issue 7).

A bound stream that stays silent for a whole quiet period (5 s) releases
its expat parser and stanza arena; the next byte re-creates them with the
stream's namespaces. These tests let three sessions go quiet until the
server logs the release, then check that everything a stream can carry
still parses exactly as before: stanzas split across reads, a stanza
started before and finished after a pause, XML errors (a clear stream
error, the server and the other users unaffected) and the closing tag.
"""

import time

import pytest

from hearthtest import HearthServer, XmppClient, body_of, show

USERS = {"alice": "plum-orbit-kettle-42", "bob": "cedar-lamp-river-77",
         "carol": "quartz-meadow-sail-19"}
QUIET_WAIT = 14.0  # the timer fires 5-10 s after the last byte


@pytest.fixture(scope="module")
def server():
    srv = HearthServer(name="quiet")
    srv.start()
    for user, password in USERS.items():
        srv.add_user(user, password)
    yield srv
    srv.stop()
    srv.cleanup()


def login(server, user):
    c = XmppClient.login(server, user, USERS[user], resource="q")
    c.send("<presence/>")
    c.assert_ping()
    return c


def wait_released(server, count, timeout=QUIET_WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.log_text().count("quiet, parser released") >= count:
            return
        time.sleep(0.5)
    raise AssertionError("only %d of %d streams released their parser:\n%s"
                         % (server.log_text().count("quiet, parser released"), count,
                            server.log_tail(40)))


def expect_body(c, msg_id, sender, body):
    el = c.wait_message(lambda e: e.get("id") == msg_id, what="message %s" % msg_id)
    assert el.get("from") == sender, show(el)
    assert body_of(el) == body, show(el)


def test_streams_work_after_their_parser_was_released(server):
    alice = login(server, "alice")
    bob = login(server, "bob")
    carol = login(server, "carol")
    before = server.log_text().count("quiet, parser released")
    wait_released(server, before + 3)

    # A stanza in three reads, the first of them ending inside a start tag.
    msg = ("<message to='bob@localhost' type='chat' id='q1'>"
           "<body>after the pause \u00e9\u00e8</body></message>")
    alice.send(msg[:5])
    time.sleep(0.2)
    alice.send(msg[5:40])
    time.sleep(0.2)
    alice.send(msg[40:])
    expect_body(bob, "q1", alice.jid, "after the pause \u00e9\u00e8")

    # Bob's first bytes after his release: a reply and an IQ in one read.
    bob.send("<message to='%s' type='chat' id='q2'><body>got it</body></message>"
             "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
             % alice.jid)
    expect_body(alice, "q2", bob.jid, "got it")
    pong = bob.wait_for(lambda e: e.get("id") == "p1", what="the ping result")
    assert pong.get("type") == "result", show(pong)

    # Quiet again, this time with half a stanza sent before the pause: the
    # stream must keep its parser (it holds the start of the stanza), and
    # the rest completes it. Bob, quiet meanwhile, is released again.
    alice_line = "127.0.0.1:%d: quiet, parser released" % alice.sock.getsockname()[1]
    bob_line = "127.0.0.1:%d: quiet, parser released" % bob.sock.getsockname()[1]
    alice_before = server.log_text().count(alice_line)
    bob_before = server.log_text().count(bob_line)
    alice.send("<message to='bob@localhost' type='chat' id='q3'><body>held ")
    time.sleep(QUIET_WAIT)
    assert server.log_text().count(alice_line) == alice_before, \
        "a stream with half a stanza released its parser"
    assert server.log_text().count(bob_line) == bob_before + 1, \
        "bob's quiet stream was not released again:\n" + server.log_tail(40)
    alice.send("across the pause</body></message>")
    expect_body(bob, "q3", alice.jid, "held across the pause")
    alice.assert_ping()

    # Bad XML after a release: a stream error for carol only.
    carol.send("<message to='bob@localhost'><body>x</bod></message>")
    err = carol.expect_stream_error()
    assert err == "not-well-formed", err
    bob.assert_ping()
    alice.assert_ping()

    # The closing tag after a release: a clean close.
    bob.send("</stream:stream>")
    bob.expect_close()
    server.assert_alive()
    alice.send("</stream:stream>")
    alice.expect_close()
