"""Input limits and restricted XML (RFC 6120 sections 4.9.3 and 11): a bad
stream is closed with the right stream error and nothing else notices."""

import time

import pytest

from conftest import USERS
from hearthtest import NS_TLS, XmppClient, body_of


# The stanza-size tests send hundreds of kB; at the default [limits]
# c2s_rate (10000 B/s) that alone takes half a minute. They are about size,
# not rate: @full_speed gives them a server that reads at full speed.
FULL_SPEED = {"limits": {"c2s_rate": 100000000, "c2s_burst": 100000000}}


def full_speed(fn):
    fn.full_speed = True
    return fn


@pytest.fixture
def server(make_server, request):
    """The conftest server, or one without the input rate for @full_speed."""
    if getattr(request.function, "full_speed", False):
        return make_server(overrides=FULL_SPEED)
    return make_server()


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


@full_speed
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


@full_speed
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


@full_speed
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


# --------------------------------------------------------------------------
# Connection and traffic limits ([limits], issue 6). Clients bind their
# sockets to other loopback addresses (127.0.0.2, .3, ...) to be different
# IPs; the server listens on 127.0.0.1. trust_loopback = false makes
# loopback subject to the per-IP limits.

import json
import os
import select
import signal
import socket
import ssl
import threading

from hearthtest import DOMAIN, NS_CLIENT, client_context, tag


def tcp_from(source, port, timeout=5.0):
    """A TCP connection to the server from the loopback address `source`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionResetError:
        pass  # refused so fast that connect() saw the reset: closed_by_server() says so
    return s


def login_from(server, source, user, resource=None):
    """XmppClient.login over a socket bound to `source`."""
    c = XmppClient(tcp_from(source, server.starttls_port, timeout=8.0), name="%s@%s" % (user, source))
    c.open_stream()
    c.starttls()
    c.authenticate(user, USERS[user])
    c.bind(resource)
    server.clients.append(c)
    return c


def closed_by_server(sock, wait=0.0):
    """True when the server has closed the socket (EOF or reset) within `wait`
    seconds; bytes it sent before closing are read and skipped."""
    deadline = time.monotonic() + wait
    while True:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except (BlockingIOError, socket.timeout):
            return False
        except OSError:  # reset (or never connected: reset during connect)
            return True


def accepted_stream(sock, wait=3.0):
    """Sends a stream header; True if the server answers with its own
    header and features (the connection was accepted), False if it closes."""
    hdr = ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams'>" % DOMAIN)
    try:
        sock.sendall(hdr.encode())
    except OSError:
        return False
    got = b""
    deadline = time.monotonic() + wait
    while b"</stream:features>" not in got:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            raise AssertionError("no answer to a stream header within %.1f s: %r" % (wait, got))
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            return False
        if not data:
            return False
        got += data
    return True

def open_accepted(ip, port, n, socks):
    """Opens n connections from ip; each must be accepted (kept in socks)."""
    for i in range(n):
        s = tcp_from(ip, port)
        socks.append(s)
        assert accepted_stream(s), "connection %d of %d from %s was refused" % (i + 1, n, ip)


def open_refused(ip, port, socks, what="the connection was not closed"):
    """Opens one more connection from ip; the server must close it."""
    s = tcp_from(ip, port)
    socks.append(s)
    assert closed_by_server(s, 1.0), what


def client_hello():
    """The bytes of a real TLS ClientHello."""
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(bio_in, bio_out, server_hostname=DOMAIN)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = bio_out.read()
    assert len(hello) > 100 and hello[0] == 0x16, hello[:10]
    return hello


def audit_events(server, event):
    """conn_refused & co. from the audit log file, or from the normal log
    ("audit: {...}") while no audit file is wired."""
    lines = server.log_text().splitlines()
    path = os.path.join(server.data_dir, "audit.log")
    if os.path.exists(path):
        with open(path, errors="replace") as f:
            lines += f.read().splitlines()
    found = []
    for line in lines:
        i = line.find('{"ts"')
        if i < 0:
            continue
        try:
            obj = json.loads(line[i:])
        except ValueError:
            continue
        if obj.get("event") == event:
            found.append(obj)
    return found


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def test_slow_tls_connections_capped_per_ip_and_timed_out(make_server):
    """200 connections from one IP that never finish TLS: max_per_ip are
    kept, the rest are closed at once (before any TLS work), the kept ones
    go at tls_handshake_timeout; a client from another IP logs in throughout."""
    server = make_server(overrides={
        "limits": {"trust_loopback": "false", "max_per_ip": 10, "connect_rate": 100000,
                   "tls_handshake_timeout": 2, "preauth_idle_timeout": 30},
        "c2s": {"pre_auth_timeout": 60}})
    alice = login_from(server, "127.0.0.2", "alice", "steady")
    hello = client_hello()
    attackers = []
    try:
        t0 = time.monotonic()
        for i in range(200):
            s = tcp_from("127.0.0.3", server.direct_tls_port)
            attackers.append(s)
            if i % 2:
                try:
                    s.sendall(hello[:len(hello) // 2])  # a partial ClientHello
                except OSError:
                    pass  # already refused
        opened = time.monotonic() - t0
        assert opened < 1.2, "opening 200 connections took %.1f s" % opened
        time.sleep(0.3)
        closed = [closed_by_server(s) for s in attackers]
        still_open = [i for i, c in enumerate(closed) if not c]
        assert time.monotonic() - t0 < 1.8, "the count came after the handshake timeout"
        assert still_open == list(range(10)), "kept: %s" % still_open
        # Another IP is not affected: a new login and the old session work.
        bob = login_from(server, "127.0.0.2", "bob", "during")
        bob.assert_ping()
        alice.assert_ping()
        # tls_handshake_timeout = 2 closes the kept ones.
        kept = attackers[:10]
        deadline = t0 + 6.0
        while not all(closed_by_server(s) for s in kept):
            assert time.monotonic() < deadline, "slow handshakes still open after 6 s"
            time.sleep(0.05)
        gone = time.monotonic() - t0
        assert 1.8 <= gone <= 4.0, "slow handshakes closed after %.1f s, not ~2 s" % gone
        assert server.log_text().count("TLS handshake not finished") >= 10
        # Their slots are free again: 10 more, not 11.
        again = [tcp_from("127.0.0.3", server.direct_tls_port) for _ in range(11)]
        attackers += again
        time.sleep(0.3)
        assert [closed_by_server(s) for s in again] == [False] * 10 + [True]
        alice.assert_ping()
    finally:
        close_all(attackers)
    carol = login_from(server, "127.0.0.2", "carol")
    carol.assert_ping()
    # The refusals are audited, but at most once per IP per minute.
    refused = [e for e in audit_events(server, "conn_refused") if e.get("ip") == "127.0.0.3"]
    assert len(refused) == 1, refused
    assert refused[0]["reason"] == "max_per_ip"
    assert not [e for e in audit_events(server, "conn_refused") if e.get("ip") == "127.0.0.2"]
    server.assert_alive()


def test_flood_is_read_at_c2s_rate_and_others_are_served(make_server):
    """A client pushing 150 kB is read at c2s_rate after its burst (the
    server stops reading; nothing is dropped) while another user's messages
    arrive without delay."""
    rate, burst = 10000, 25000
    # alice and bob are strangers: the spam limit on messages to strangers
    # is lifted so that every flood message is delivered.
    server = make_server(overrides={"limits": {"c2s_rate": rate, "c2s_burst": burst,
                                               "stranger_messages_per_minute": 100000}})
    sink = XmppClient.login(server, "bob", USERS["bob"], "sink")
    talk = XmppClient.login(server, "bob", USERS["bob"], "talk")
    carol = XmppClient.login(server, "carol", USERS["carol"], "chat")
    alice = XmppClient.login(server, "alice", USERS["alice"], "flood", timeout=60)
    server.clients.extend([sink, talk, carol, alice])
    count = 150
    flood = "".join("<message to='bob@localhost/sink' type='chat' id='f%d'><body>%s</body>"
                    "</message>" % (i, "x" * 900) for i in range(count))
    flood += "<iq type='get' id='flood-end'><ping xmlns='urn:xmpp:ping'/></iq>"
    flood = flood.encode()
    total = len(flood)
    assert total > 140000
    result = {}

    def drain():
        got = []
        deadline = time.monotonic() + 30
        try:
            while len(got) < count and time.monotonic() < deadline - 1:
                sink._read_some(deadline)
                for el in list(sink.pending):
                    if el.tag == tag(NS_CLIENT, "message") and el.get("id", "").startswith("f"):
                        got.append(el.get("id"))
                sink.pending.clear()
        except Exception as e:  # reported by the main thread
            result["drain_error"] = repr(e)
        result["got"] = got

    def push():
        try:
            start = time.monotonic()
            alice.sock.sendall(flood)
            result["sent"] = time.monotonic() - start
            alice.wait_for(lambda e: e.get("id") == "flood-end", timeout=80, what="the last stanza")
            result["done"] = time.monotonic() - start
        except Exception as e:
            result["push_error"] = repr(e)

    drainer = threading.Thread(target=drain)
    pusher = threading.Thread(target=push)
    drainer.start()
    pusher.start()
    latencies = []
    n = 0
    while pusher.is_alive():
        n += 1
        start = time.monotonic()
        mid = carol.message("bob@localhost/talk", "still fast %d" % n)
        talk.wait_message(lambda e, mid=mid: e.get("id") == mid, timeout=5)
        latencies.append(time.monotonic() - start)
        time.sleep(0.25)
    pusher.join()
    drainer.join(100)
    assert "push_error" not in result, result
    assert "drain_error" not in result, (len(result["got"]), result["got"][-3:], result)
    # Nothing dropped, nothing reordered.
    assert result["got"] == ["f%d" % i for i in range(count)], result["got"][:5]
    expected = (total - burst) / rate
    done = result["done"]
    assert done >= 0.9 * expected, "read in %.1f s; at %d B/s it takes >= %.1f s" % (
        done, rate, expected)
    assert done <= 1.3 * expected + 2, "read in %.1f s, expected about %.1f s" % (done, expected)
    assert len(latencies) >= 10, latencies
    assert max(latencies) < 0.5, "another user waited %.2f s during the flood" % max(latencies)
    alice.assert_ping()
    server.assert_alive()


def test_connect_rate_per_ip(make_server):
    server = make_server(overrides={
        "limits": {"trust_loopback": "false", "max_per_ip": 100, "connect_rate": 5}})
    socks = []
    try:
        open_accepted("127.0.0.4", server.starttls_port, 5, socks)
        open_refused("127.0.0.4", server.starttls_port, socks,
                     "the 6th connection in a minute was not closed")
        # A rate, not a cap: closing one does not give a connection back.
        socks[0].close()
        time.sleep(0.2)
        open_refused("127.0.0.4", server.starttls_port, socks)
        # Another IP has its own budget.
        other = tcp_from("127.0.0.5", server.starttls_port)
        socks.append(other)
        assert accepted_stream(other)
    finally:
        close_all(socks)
    refused = [e for e in audit_events(server, "conn_refused") if e.get("ip") == "127.0.0.4"]
    assert len(refused) == 1 and refused[0]["reason"] == "connect_rate", refused
    server.assert_alive()


def test_max_connections_global_cap(make_server):
    # Loopback is trusted (the default): only the global cap applies.
    server = make_server(overrides={"limits": {"max_connections": 10}})
    socks = []
    try:
        open_accepted("127.0.0.1", server.starttls_port, 10, socks)
        open_refused("127.0.0.7", server.starttls_port, socks, "the 11th connection was not closed")
        socks.pop(0).close()
        deadline = time.monotonic() + 3
        while True:  # the server notices the close within a turn
            s = tcp_from("127.0.0.1", server.starttls_port)
            socks.append(s)
            if accepted_stream(s):
                break
            assert time.monotonic() < deadline, "a freed slot was not given to a new connection"
            time.sleep(0.1)
        open_refused("127.0.0.1", server.starttls_port, socks)
    finally:
        close_all(socks)
    assert "refusing new connections: [limits] max_connections reached" in server.log_text()
    time.sleep(0.3)
    assert_server_fine(server)


def read_until_closed(sock, buf):
    """Reads what is there into `buf` (a bytearray); True once the server
    has closed the connection."""
    while True:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            return True
        except (BlockingIOError, socket.timeout, ssl.SSLWantReadError):
            return False
        if not data:
            return True
        buf += data


def test_preauth_idle_and_starttls_handshake_timeouts(make_server):
    """preauth_idle_timeout closes a silent stream (with <connection-timeout/>)
    and a silent direct-TLS socket; bytes keep a stream alive; a STARTTLS
    handshake that trickles in is cut at tls_handshake_timeout after
    <starttls/>; a logged-in client may be silent."""
    server = make_server(overrides={
        "limits": {"preauth_idle_timeout": 2, "tls_handshake_timeout": 3},
        "c2s": {"pre_auth_timeout": 60}})
    alice = XmppClient.login(server, "alice", USERS["alice"], "quiet")
    server.clients.append(alice)
    hello = client_hello()
    socks = {}
    silent = tcp_from("127.0.0.1", server.starttls_port)
    silent_tls = tcp_from("127.0.0.1", server.direct_tls_port)
    chatty = tcp_from("127.0.0.1", server.starttls_port)
    assert accepted_stream(chatty)
    slow = tcp_from("127.0.0.1", server.starttls_port)
    assert accepted_stream(slow)
    slow.sendall(("<starttls xmlns='%s'/>" % NS_TLS).encode())
    # Bytes sent with <starttls/> would be dropped (no pipelining into TLS).
    proceed = b""
    while b"<proceed" not in proceed:
        proceed += slow.recv(1000)
    start = time.monotonic()
    socks = {"silent": silent, "silent_tls": silent_tls, "chatty": chatty, "slow": slow}
    data = {name: bytearray() for name in socks}
    closed_at = {}
    sent = 0
    last_chat = start
    try:
        while time.monotonic() - start < 8 and len(closed_at) < len(socks):
            now = time.monotonic()
            if now - start < 4.5:
                # A byte every 0.5 s: whitespace on a stream, and the
                # ClientHello two bytes at a time after <proceed/>.
                chatty.sendall(b" ")
                last_chat = now
                if "slow" not in closed_at and sent < len(hello):
                    try:
                        slow.sendall(hello[sent:sent + 2])
                    except OSError:
                        pass
                    sent += 2
            for name, sock in socks.items():
                if name not in closed_at and read_until_closed(sock, data[name]):
                    closed_at[name] = time.monotonic()
            time.sleep(0.5 if now - start < 4.5 else 0.05)
    finally:
        close_all(socks.values())
    assert set(closed_at) == set(socks), "still open after 8 s: %s" % (set(socks) - set(closed_at))
    t = {name: at - start for name, at in closed_at.items()}
    assert 1.7 <= t["silent"] <= 3.5, t
    assert b"connection-timeout" in data["silent"], bytes(data["silent"])
    assert 1.7 <= t["silent_tls"] <= 3.5, t
    assert 2.7 <= t["slow"] <= 4.0, "trickling handshake cut after %.1f s (timeout 3): %s" % (
        t["slow"], t)
    assert t["chatty"] > 4.5, "a stream that kept talking was closed: %s" % t
    quiet = closed_at["chatty"] - last_chat
    assert 1.5 <= quiet <= 3.5, quiet
    assert b"connection-timeout" in data["chatty"]
    # An authenticated session is not subject to it.
    alice.assert_ping()
    log = server.log_text()
    assert "silent for" in log and "TLS handshake not finished" in log
    server.assert_alive()


def test_trusted_networks_exempt_and_reload(make_server):
    server = make_server(overrides={
        "limits": {"trust_loopback": "false", "max_per_ip": 2, "connect_rate": 3,
                   "trusted_networks": "127.0.0.4/30, ::1"}})
    socks = []
    try:
        # 127.0.0.6 is in 127.0.0.4/30: no per-IP cap, no rate.
        open_accepted("127.0.0.6", server.starttls_port, 8, socks)
        # 127.0.0.9 is not.
        open_accepted("127.0.0.9", server.starttls_port, 2, socks)
        open_refused("127.0.0.9", server.starttls_port, socks)
        # SIGHUP: without the trusted network, new connections from .6 are
        # limited; the open ones stay.
        server.settings["limits"]["trusted_networks"] = "10.0.0.0/8"
        server.write_config()
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "configuration reloaded" not in server.log_text():
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.02)
        # Connections opened while exempt are not counted: two more fit.
        open_accepted("127.0.0.6", server.starttls_port, 2, socks)
        open_refused("127.0.0.6", server.starttls_port, socks,
                     "the reload did not apply to new connections")
        assert not closed_by_server(socks[0], 0)
    finally:
        close_all(socks)
    server.assert_alive()
