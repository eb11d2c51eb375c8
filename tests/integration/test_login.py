"""Log in with slixmpp (Debian python3-slixmpp 1.8.3), a real third-party
client, over STARTTLS and direct TLS, and exchange messages.

slixmpp 1.8.3 only knows the tls-unique channel binding. When it has one
(always on TLS) and is told to use plain SCRAM-SHA-256, it sends the GS2 flag
'y' ("I could bind, I think you cannot"), which RFC 5802 section 6 requires a
server that offers -PLUS to refuse as a downgrade. So these tests configure
slixmpp as a client without channel binding (GS2 flag 'n'); the 'y' rule is
tested in test_tls.py with the scripted client.
"""

import asyncio
import ssl

import pytest
import slixmpp

from conftest import USERS
from hearthtest import NS_SASL, XmppClient, sasl_failure_condition, show, tag

TIMEOUT = 10


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    # slixmpp leaves its filter task running after disconnect: cancel it so
    # closing the loop is clean.
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.set_event_loop(None)
    loop.close()


def slixmpp_client(jid, password, mech="SCRAM-SHA-256", alpn=None):
    """A slixmpp client for the test server: its self-signed certificate
    accepted, SASL `mech`, and no channel binding (slixmpp's -PLUS support
    is tested separately with our own client)."""
    x = slixmpp.ClientXMPP(jid, password,
                           plugin_config={"feature_mechanisms": {"use_mech": mech}})
    x.ssl_context.check_hostname = False
    x.ssl_context.verify_mode = ssl.CERT_NONE
    if alpn:
        x.ssl_context.set_alpn_protocols(alpn)
    mechanisms = x["feature_mechanisms"]
    default_credentials = mechanisms.sasl_callback

    def no_channel_binding(required, optional):
        creds = default_credentials(required, optional)
        if "channel_binding" in creds:
            creds["channel_binding"] = None
        return creds

    mechanisms.sasl_callback = no_channel_binding
    return x


def make_xmpp(jid, password, mech="SCRAM-SHA-256", alpn=None):
    x = slixmpp_client(jid, password, mech, alpn)
    x.test_events = []
    for name in ("failed_auth", "failed_all_auth", "connection_failed", "disconnected",
                 "stream_error", "ssl_invalid_chain"):
        x.add_event_handler(name, lambda ev=None, name=name: x.test_events.append((name, ev)))
    return x


async def start_session(x, port, use_ssl=False):
    """Connect and wait for session_start; returns 'session' or the failure."""
    fut = asyncio.get_running_loop().create_future()

    def done(value):
        if not fut.done():
            fut.set_result(value)

    x.add_event_handler("session_start", lambda _: done("session"))
    x.add_event_handler("failed_auth", lambda st: done(("failed_auth", st["condition"])))
    x.add_event_handler("connection_failed", lambda e: done(("connection_failed", str(e))))
    x.add_event_handler("disconnected", lambda e: done(("disconnected", str(e))))
    x.add_event_handler("stream_error", lambda e: done(("stream_error", str(e))))
    x.connect(("127.0.0.1", port), use_ssl=use_ssl)
    try:
        return await asyncio.wait_for(fut, TIMEOUT)
    except asyncio.TimeoutError:
        return ("timeout", x.test_events)


async def stop(*clients):
    for x in clients:
        x.disconnect()
    for x in clients:
        try:
            await asyncio.wait_for(x.disconnected, 5)
        except asyncio.TimeoutError:
            pass


def message_waiter(x, pred=lambda m: True):
    fut = asyncio.get_running_loop().create_future()
    x.test_errors = []

    def on_message(msg):
        if msg["type"] == "error":
            x.test_errors.append(str(msg))
        elif pred(msg) and not fut.done():
            fut.set_result(msg)

    x.add_event_handler("message", on_message)
    return fut


async def expect_message(x, fut, what):
    try:
        return await asyncio.wait_for(fut, TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError("%s: no message within %d s (errors: %s)"
                             % (what, TIMEOUT, getattr(x, "test_errors", [])))


def test_slixmpp_login_starttls(server, loop):
    async def run():
        x = make_xmpp("alice@localhost/slix", USERS["alice"])
        x.register_plugin("xep_0199", {"keepalive": False})
        result = await start_session(x, server.starttls_port)
        try:
            assert result == "session", result
            assert str(x.boundjid) == "alice@localhost/slix"
            # send_ping raises IqError on an error reply (ping() would not).
            await x["xep_0199"].send_ping("localhost", timeout=TIMEOUT)
        finally:
            await stop(x)

    loop.run_until_complete(run())


def test_slixmpp_login_direct_tls(server, loop):
    async def run():
        x = make_xmpp("bob@localhost", USERS["bob"], alpn=["xmpp-client"])
        result = await start_session(x, server.direct_tls_port, use_ssl=True)
        try:
            assert result == "session", result
            assert x.boundjid.bare == "bob@localhost"
            assert x.boundjid.resource, "no resource bound"
        finally:
            await stop(x)

    loop.run_until_complete(run())


def test_slixmpp_scram_sha1_and_plain(server, loop):
    async def run():
        for mech in ("SCRAM-SHA-1", "PLAIN"):
            x = make_xmpp("carol@localhost", USERS["carol"], mech=mech)
            result = await start_session(x, server.starttls_port)
            await stop(x)
            assert result == "session", (mech, result)

    loop.run_until_complete(run())


def test_slixmpp_message_both_ways(server, loop):
    async def run():
        alice = make_xmpp("alice@localhost/a", USERS["alice"])
        bob = make_xmpp("bob@localhost/b", USERS["bob"], alpn=["xmpp-client"])
        try:
            assert await start_session(alice, server.starttls_port) == "session"
            assert await start_session(bob, server.direct_tls_port, use_ssl=True) == "session"
            bob_inbox = message_waiter(bob, lambda m: m["body"] == "hi bob")
            alice_inbox = message_waiter(alice, lambda m: m["body"] == "hi alice")
            alice.send_message(mto=bob.boundjid.full, mbody="hi bob", mtype="chat")
            got = await expect_message(bob, bob_inbox, "alice -> bob")
            assert got["from"] == alice.boundjid
            bob.send_message(mto=alice.boundjid.full, mbody="hi alice", mtype="chat")
            got = await expect_message(alice, alice_inbox, "bob -> alice")
            assert got["from"] == bob.boundjid
        finally:
            await stop(alice, bob)

    loop.run_until_complete(run())


def test_slixmpp_message_to_bare_jid(server, loop):
    async def run():
        alice = make_xmpp("alice@localhost/a", USERS["alice"])
        bob = make_xmpp("bob@localhost/b", USERS["bob"])
        try:
            assert await start_session(alice, server.starttls_port) == "session"
            assert await start_session(bob, server.starttls_port) == "session"
            bob.send_presence()
            alice.send_presence()
            await asyncio.sleep(0.2)
            bob_inbox = message_waiter(bob, lambda m: m["body"] == "bare")
            alice.send_message(mto="bob@localhost", mbody="bare", mtype="chat")
            got = await expect_message(bob, bob_inbox, "alice -> bob@localhost")
            assert got["from"] == alice.boundjid
        finally:
            await stop(alice, bob)

    loop.run_until_complete(run())


@pytest.mark.parametrize("user,password", [("alice", "wrong-password"),
                                           ("nobody", "whatever-1")],
                         ids=["wrong-password", "unknown-user"])
def test_slixmpp_refused(server, loop, user, password):
    async def run():
        x = make_xmpp("%s@localhost" % user, password)
        try:
            return await start_session(x, server.starttls_port)
        finally:
            await stop(x)

    result = loop.run_until_complete(run())
    assert result == ("failed_auth", "not-authorized"), result
    # The scripted client sees the exact SASL failure.
    c = XmppClient.connect(server.starttls_port)
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    el = c.sasl(user, password, "SCRAM-SHA-256")
    assert el.tag == tag(NS_SASL, "failure"), show(el)
    assert sasl_failure_condition(el) == "not-authorized", show(el)
    server.assert_alive()
