"""XEP-0077 with registration closed: password change and account removal
(incl. `hearth user del` while logged in)."""

import subprocess
import time

import pytest

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_SASL, XmppClient, bare_jid, sasl_failure_condition,
                        show, stanza_error_condition, tag)
import hearthtest

NS_REGISTER = "jabber:iq:register"


def assert_error(reply, condition, type_=None):
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == condition, show(reply)
    if type_ is not None:
        assert reply.find(tag(NS_CLIENT, "error")).get("type") == type_, show(reply)


def register_set(client, inner, to=None):
    return client.iq("set", "<query xmlns='%s'>%s</query>" % (NS_REGISTER, inner), to=to)


def change_password(client, user, password, to=None):
    return register_set(client, "<username>%s</username><password>%s</password>"
                        % (user, password), to=to)


def assert_login_fails(server, user, password):
    c = XmppClient.connect(server.starttls_port, name=user + "-refused")
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    r = c.sasl(user, password)
    assert r.tag == tag(NS_SASL, "failure"), show(r)
    assert sasl_failure_condition(r) == "not-authorized", show(r)
    c.close()


def login(server, user, password=None, resource=None):
    c = XmppClient.login(server, user, password or USERS[user], resource)
    server.clients.append(c)
    return c


def dump_tables(server):
    """{table: [(key, value)]} of every named database in data.mdb."""
    r = subprocess.run(["mdb_dump", "-n", "-a", server.data_dir + "/data.mdb"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    tables = {}
    current = None
    pending_key = None
    for line in r.stdout.splitlines():
        if line.startswith("database="):
            current = line.split("=", 1)[1]
            tables[current] = []
            pending_key = None
        elif line.startswith(" ") and current is not None:
            data = bytes.fromhex(line.strip())
            if pending_key is None:
                pending_key = data
            else:
                tables[current].append((pending_key, data))
                pending_key = None
    return tables


def records_mentioning(tables, needle):
    return [(t, k, v) for t, recs in tables.items() for k, v in recs if needle in k or needle in v]


def left_behind(tables, user):
    """Records of `user` after its removal. Another account's message archive
    (XEP-0313) keeps its own history with the removed account, as in
    Prosody: that is the other user's data, not this one's."""
    own = user.encode() + b"\0"
    return [(t, k, v) for t, k, v in records_mentioning(tables, user.encode())
            if not (t == "archive" and not k.startswith(own))]


# ---------------------------------------------------------------- get


@pytest.mark.parametrize("to", [None, DOMAIN])
def test_register_get_says_registered(server, to):
    alice = login(server, "alice")
    r = alice.iq("get", "<query xmlns='%s'/>" % NS_REGISTER, to=to)
    assert r.get("type") == "result", show(r)
    q = r.find(tag(NS_REGISTER, "query"))
    assert q is not None and q.find(tag(NS_REGISTER, "registered")) is not None, show(r)
    assert q.findtext(tag(NS_REGISTER, "username")) == "alice"
    assert q.find(tag(NS_REGISTER, "password")) is None or not q.findtext(
        tag(NS_REGISTER, "password")), "the password must never be returned: %s" % show(r)
    server.assert_alive()


def test_no_inband_registration_before_auth_when_closed(make_server):
    # The default mode is invite (test_invites.py); closed offers nothing.
    server = make_server({"registration": {"mode": "closed"}})
    c = XmppClient.connect(server.starttls_port)
    server.clients.append(c)
    c.open_stream()
    feats = c.starttls()
    assert feats.find(tag("http://jabber.org/features/iq-register", "register")) is None


# ---------------------------------------------------------------- password


@pytest.mark.parametrize("to", [None, DOMAIN])
def test_password_change_kicks_other_sessions(server, to):
    a1 = login(server, "alice", resource="one")
    a2 = login(server, "alice", resource="two")
    bob = login(server, "bob")
    r = change_password(a1, "alice", "new-secret-for-her", to=to)
    assert r.get("type") == "result" and len(r) == 0, show(r)
    assert a2.expect_stream_error() == "not-authorized"
    a1.assert_ping()  # the session that changed it stays
    bob.assert_ping()
    assert_login_fails(server, "alice", USERS["alice"])
    a3 = login(server, "alice", "new-secret-for-her", resource="three")
    a3.assert_ping()
    a1.assert_ping()
    server.assert_alive()


def test_password_of_1024_bytes_is_accepted(server):
    alice = login(server, "alice")
    pw = "\u00e9" * 512  # 1024 bytes of UTF-8
    r = change_password(alice, "alice", pw)
    assert r.get("type") == "result", show(r)
    login(server, "alice", pw).assert_ping()
    server.assert_alive()


def test_password_change_keeps_sessions_when_configured(make_server):
    server = make_server({"register": {"logout_on_password_change": "false"}})
    a1 = login(server, "alice", resource="one")
    a2 = login(server, "alice", resource="two")
    r = change_password(a1, "alice", "other-secret")
    assert r.get("type") == "result", show(r)
    a2.expect_nothing(0.5)
    a2.assert_ping()
    assert_login_fails(server, "alice", USERS["alice"])
    login(server, "alice", "other-secret").assert_ping()
    server.assert_alive()


def test_password_change_errors(server):
    alice = login(server, "alice")
    bob = login(server, "bob")
    cases = [
        ("<username>bob</username><password>x-secret</password>", "bad-request"),  # not hers
        ("<username>alice</username>", "bad-request"),
        ("<password>x-secret</password>", "bad-request"),
        ("<username>alice</username><password></password>", "not-acceptable"),
        ("<username>alice</username><password/>", "not-acceptable"),
        # Longer than the auth worker takes (1024 bytes): refused before it.
        ("<username>alice</username><password>%s</password>" % ("p" * 1025), "not-acceptable"),
        ("<username>alice</username><password>x</password><email>a@b</email>", "bad-request"),
        ("<remove/><username>alice</username>", "bad-request"),
        ("", "bad-request"),
    ]
    for inner, cond in cases:
        assert_error(register_set(alice, inner), cond, "modify")
    assert_error(alice.iq("set", "<register xmlns='%s'/>" % NS_REGISTER), "bad-request", "modify")
    assert_error(alice.iq("get", "<register xmlns='%s'/>" % NS_REGISTER), "bad-request", "modify")
    # Registration of another account is not answered for bob's bare JID.
    r = change_password(alice, "alice", "x-secret", to=bare_jid("bob"))
    assert r.get("type") == "error", show(r)
    alice.assert_ping()
    bob.assert_ping()
    # Nothing changed, and the auth worker never died.
    assert "exited" not in server.log_text(), server.log_tail()
    login(server, "alice").assert_ping()
    login(server, "bob").assert_ping()
    server.assert_alive()


# ---------------------------------------------------------------- removal


def fill_data(alice, bob):
    """Data in every module's tables that concerns alice."""
    ok = lambda r: r.get("type") == "result" or pytest.fail(show(r))  # noqa: E731
    ok(alice.iq("set", "<query xmlns='jabber:iq:roster'><item jid='carol@%s' name='Carol'>"
                       "<group>alice-friends</group></item></query>" % DOMAIN))
    ok(alice.iq("set", "<vCard xmlns='vcard-temp'><FN>Alice Alicesdottir</FN>"
                       "<NICKNAME>alice</NICKNAME></vCard>"))
    ok(alice.iq("set", "<query xmlns='jabber:iq:private'><note xmlns='urn:example:alice'>"
                       "alice private note</note></query>"))
    ok(alice.iq("set", "<block xmlns='urn:xmpp:blocking'><item jid='spammer@example.org'/>"
                       "</block>"))
    # Offline messages: alice is connected but not available.
    alice.send("<presence type='unavailable'><status>alice away</status></presence>")
    alice.assert_ping()
    for i in range(3):
        bob.message(bare_jid("alice"), "offline message %d for alice" % i)
    bob.assert_ping()


def test_remove_account_deletes_everything(server):
    alice = login(server, "alice", resource="one")
    alice2 = login(server, "alice", resource="two")
    bob = login(server, "bob")
    bob.iq("get", "<query xmlns='jabber:iq:roster'/>")
    hearthtest.subscribe(bob, "bob", alice, "alice")
    hearthtest.subscribe(alice, "alice", bob, "bob")
    fill_data(alice, bob)
    time.sleep(0.2)

    before = dump_tables(server)
    tables_with_alice = {t for t, _, _ in records_mentioning(before, b"alice")}
    # The test can fail: alice's data is really there, in several tables.
    assert {"roster", "offline", "vcard", "private", "blocklist", "last"} <= tables_with_alice, \
        tables_with_alice

    r = register_set(alice, "<remove/>")
    assert r.get("type") == "result" and len(r) == 0, show(r)
    # XEP-0077 section 3.2: the result, then every session of the account ends.
    assert alice.expect_stream_error() == "not-authorized"
    assert alice2.expect_stream_error() == "not-authorized"

    # bob's subscriptions with alice are over.
    pres = lambda type_: (lambda e: e.tag == tag(NS_CLIENT, "presence")  # noqa: E731
                          and e.get("type") == type_ and e.get("from") == bare_jid("alice"))
    bob.wait_for(pres("unsubscribed"), what="unsubscribed from alice")
    bob.wait_for(pres("unsubscribe"), what="unsubscribe from alice")
    r = bob.iq("get", "<query xmlns='jabber:iq:roster'/>")
    assert r.get("type") == "result", show(r)
    assert all(i.get("jid") != bare_jid("alice")
               for i in r.iter("{jabber:iq:roster}item")), show(r)

    assert_login_fails(server, "alice", USERS["alice"])
    assert "alice@%s" % DOMAIN not in server.list_users()

    time.sleep(0.2)
    left = left_behind(dump_tables(server), "alice")
    assert left == [], "alice's data left in data.mdb: %r" % left
    bob.assert_ping()
    server.assert_alive()


def test_remove_to_domain_and_malformed_remove(server):
    alice = login(server, "alice")
    assert_error(register_set(alice, "<remove/><password>x</password>"), "bad-request", "modify")
    assert_error(register_set(alice, "<remove/><foo xmlns='urn:example'/>"), "bad-request",
                 "modify")
    alice.assert_ping()
    r = register_set(alice, "<remove/>", to=DOMAIN)
    assert r.get("type") == "result", show(r)
    assert alice.expect_stream_error() == "not-authorized"
    assert_login_fails(server, "alice", USERS["alice"])
    server.assert_alive()


def test_cli_user_del_kicks_logged_in_user(server):
    alice = login(server, "alice")
    bob = login(server, "bob")
    hearthtest.subscribe(bob, "bob", alice, "alice")
    fill_data(alice, bob)
    assert records_mentioning(dump_tables(server), b"alice")
    server.del_user("alice")
    assert alice.expect_stream_error() == "not-authorized"
    assert_login_fails(server, "alice", USERS["alice"])
    # bob is interested but not available: a roster push removes alice.
    bob.wait_for(lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("type") == "set" and any(
        i.get("jid") == bare_jid("alice") and i.get("subscription") == "remove"
        for i in e.iter("{jabber:iq:roster}item")), what="the roster push removing alice")
    time.sleep(0.2)
    left = left_behind(dump_tables(server), "alice")
    assert left == [], "alice's data left in data.mdb: %r" % left
    bob.assert_ping()
    server.assert_alive()
