"""Password policy (issue 6, item 5): `hearth user add|passwd` and the
XEP-0077 password change refuse a weak password and say why; a strong one is
accepted; the server stays up."""

import pytest

from hearthtest import (DOMAIN, NS_CLIENT, NS_SASL, NS_STANZA_ERRORS, XmppClient, bare_jid,
                        sasl_failure_condition, show, stanza_error_condition, tag, xml_escape)

NS_REGISTER = "jabber:iq:register"

# Passwords that pass the policy (none contains its user or "localhost").
STRONG = {"alice": "plum-orbit-kettle-42", "bob": "violet-harbour-cinder-7"}

TOO_SHORT = "too short: use at least 10 characters"
HAS_USER = "must not contain the username"
HAS_DOMAIN = "must not contain the domain"
COMMON = "one of the most common passwords"

# (password, reason) for the account "dave".
WEAK_FOR_DAVE = [
    ("x7#kq-2", TOO_SHORT),
    ("\u00e9" * 9, TOO_SHORT),  # 18 bytes, 9 characters
    ("dave-rocks-2024", HAS_USER),
    ("I-am-DAVE-here", HAS_USER),
    ("my-LocalHost-pw", HAS_DOMAIN),
    ("1234567890", COMMON),
    ("Basketball", COMMON),
    ("QWERTYUIOP", COMMON),
]


@pytest.fixture
def server(make_server):
    return make_server(users=STRONG)


def assert_refused(r, reason, password):
    assert r.returncode != 0, "weak password %r accepted: %r" % (password, r.stdout)
    assert reason in r.stderr, "reason %r not in %r" % (reason, r.stderr)
    assert password not in r.stderr and password not in r.stdout, "the password was echoed"


def login(server, user, password, resource=None):
    c = XmppClient.login(server, user, password, resource)
    server.clients.append(c)
    return c


def assert_login_fails(server, user, password):
    c = XmppClient.connect(server.starttls_port, name=user + "-refused")
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    r = c.sasl(user, password)
    assert r.tag == tag(NS_SASL, "failure"), show(r)
    assert sasl_failure_condition(r) == "not-authorized", show(r)
    c.close()


def change_password(client, user, password):
    return client.iq("set", "<query xmlns='%s'><username>%s</username><password>%s</password>"
                     "</query>" % (NS_REGISTER, user, xml_escape(password)))


# ---------------------------------------------------------------- CLI


def test_cli_add_refuses_weak_passwords_with_the_reason(server):
    for password, reason in WEAK_FOR_DAVE:
        r = server.cli("user", "add", bare_jid("dave"), "--password", password)
        assert_refused(r, reason, password)
    assert bare_jid("dave") not in server.list_users()
    for password, _ in WEAK_FOR_DAVE:
        assert password not in server.log_text()
    server.add_user("dave", "copper-lantern-mist-9")
    assert bare_jid("dave") in server.list_users()
    login(server, "dave", "copper-lantern-mist-9").assert_ping()
    server.assert_alive()


def test_cli_passwd_refuses_weak_passwords_and_keeps_the_old_one(server):
    for password, reason in [("alice-2024-spring", HAS_USER), ("short-1", TOO_SHORT),
                             ("localhost-rules", HAS_DOMAIN), ("0123456789", COMMON)]:
        r = server.cli("user", "passwd", bare_jid("alice"), "--password", password)
        assert_refused(r, reason, password)
    login(server, "alice", STRONG["alice"]).assert_ping()
    server.passwd("alice", "granite-meadow-owl-3")
    assert_login_fails(server, "alice", STRONG["alice"])
    login(server, "alice", "granite-meadow-owl-3").assert_ping()
    server.assert_alive()


def test_cli_refuses_weak_passwords_while_the_server_is_stopped(make_server, tmp_path):
    server = make_server(users=STRONG, start=False)
    pw_file = tmp_path / "pw"
    pw_file.write_text("Password123\n")  # 11 characters, on the list
    r = server.cli("user", "add", bare_jid("erin"), "--password-file", str(pw_file))
    assert_refused(r, COMMON, "Password123")
    r = server.cli("user", "add", bare_jid("erin"), input="erin-2-the-rescue\n")
    assert_refused(r, HAS_USER, "erin-2-the-rescue")
    assert bare_jid("erin") not in server.list_users()
    server.start()
    login(server, "bob", STRONG["bob"]).assert_ping()


# ---------------------------------------------------------------- XEP-0077


def error_text(reply):
    err = reply.find(tag(NS_CLIENT, "error"))
    assert err is not None, show(reply)
    return err.findtext(tag(NS_STANZA_ERRORS, "text")) or ""


def test_xep0077_weak_password_is_not_acceptable_with_the_reason(server):
    alice = login(server, "alice", STRONG["alice"], "one")
    other = login(server, "alice", STRONG["alice"], "two")
    cases = [
        ("x7#kq-2", TOO_SHORT),
        ("\u00e9" * 9, TOO_SHORT),
        ("Alice-in-wonderland", HAS_USER),
        ("hello-LOCALHOST-1", HAS_DOMAIN),
        ("qwertyuiop", COMMON),
        ("1234567890", COMMON),
    ]
    for password, reason in cases:
        r = change_password(alice, "alice", password)
        assert r.get("type") == "error", show(r)
        assert stanza_error_condition(r) == "not-acceptable", show(r)
        assert r.find(tag(NS_CLIENT, "error")).get("type") == "modify", show(r)
        assert reason in error_text(r), show(r)
        assert password not in error_text(r)
    # Nothing changed: the other session stays, the old password works.
    other.assert_ping()
    login(server, "alice", STRONG["alice"], "three").assert_ping()
    for password, _ in cases:
        assert xml_escape(password) not in server.log_text()

    # A strong one is accepted (and kicks the other session as before).
    r = change_password(alice, "alice", "saffron-tundra-bell-8")
    assert r.get("type") == "result", show(r)
    alice.assert_ping()
    assert_login_fails(server, "alice", STRONG["alice"])
    login(server, "alice", "saffron-tundra-bell-8").assert_ping()
    login(server, "bob", STRONG["bob"]).assert_ping()
    assert "exited" not in server.log_text(), server.log_tail()
    server.assert_alive()
    assert DOMAIN == "localhost"  # the HAS_DOMAIN cases above rely on it


def test_min_password_length_is_configurable(make_server):
    server = make_server({"auth": {"min_password_length": "16"}}, users=STRONG)
    r = server.cli("user", "add", bare_jid("dave"), "--password", "copper-lantern-9")  # 16
    assert r.returncode == 0, r.stderr
    r = server.cli("user", "add", bare_jid("erin"), "--password", "copper-lantern9")  # 15
    assert_refused(r, "too short: use at least 16 characters", "copper-lantern9")
    alice = login(server, "alice", STRONG["alice"])
    r = change_password(alice, "alice", "saffron-tundra9")
    assert stanza_error_condition(r) == "not-acceptable", show(r)
    assert "use at least 16 characters" in error_text(r), show(r)

    short = make_server({"auth": {"min_password_length": "6"}}, users=STRONG)
    r = short.cli("user", "add", bare_jid("dave"), "--password", "x7#kq-2")
    assert r.returncode == 0, r.stderr
    r = short.cli("user", "add", bare_jid("erin"), "--password", "dragon")  # 6, on the list
    assert_refused(r, COMMON, "dragon")
    login(short, "dave", "x7#kq-2").assert_ping()
    server.assert_alive()
    short.assert_alive()
