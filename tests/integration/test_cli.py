"""The `hearth` subcommands: user management against a RUNNING server,
config checking, version."""

import os
import re
import subprocess

from conftest import USERS
from hearthtest import NS_SASL, REPO, XmppClient, hearth_bin, sasl_failure_condition, show, tag


def try_login(server, user, password, mech="SCRAM-SHA-256"):
    """Returns the SASL outcome element of a fresh connection."""
    c = XmppClient.connect(server.starttls_port, name=user)
    try:
        c.open_stream()
        c.starttls()
        return c.sasl(user, password, mech)
    finally:
        c.close()


def assert_login_ok(server, user, password):
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"):
        el = try_login(server, user, password, mech)
        assert el.tag == tag(NS_SASL, "success"), "%s login as %s failed: %s" % (mech, user, show(el))


def assert_login_refused(server, user, password):
    for mech in ("SCRAM-SHA-256", "PLAIN"):
        el = try_login(server, user, password, mech)
        assert el.tag == tag(NS_SASL, "failure"), "%s login as %s accepted" % (mech, user)
        assert sasl_failure_condition(el) == "not-authorized", show(el)


def test_user_add_on_running_server(server):
    assert_login_refused(server, "dave", "tulip-anvil-route-4")
    server.add_user("dave", "tulip-anvil-route-4")
    assert_login_ok(server, "dave", "tulip-anvil-route-4")
    c = XmppClient.login(server, "dave", "tulip-anvil-route-4", "r")
    try:
        assert c.jid == "dave@localhost/r"
        c.assert_ping()
    finally:
        c.close()


def test_user_add_password_file_and_stdin(server, tmp_path):
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-a-file-plain-9\n")
    r = server.cli("user", "add", "erin@localhost", "--password-file", str(pw_file))
    assert r.returncode == 0, r.stderr
    assert_login_ok(server, "erin", "from-a-file-plain-9")
    r = server.cli("user", "add", "frank@localhost", input="from-stdin-lines-8\n")
    assert r.returncode == 0, r.stderr
    assert_login_ok(server, "frank", "from-stdin-lines-8")


def test_user_add_existing_fails(server):
    r = server.cli("user", "add", "alice@localhost", "--password", "other-strong-pass-6")
    assert r.returncode != 0, "adding an existing user succeeded: %r" % r.stdout
    assert r.stderr.strip(), "no message on stderr"
    assert_login_ok(server, "alice", USERS["alice"])


def test_user_passwd_on_running_server(server):
    assert_login_ok(server, "alice", USERS["alice"])
    server.passwd("alice", "a-brand-new-one")
    assert_login_refused(server, "alice", USERS["alice"])
    assert_login_ok(server, "alice", "a-brand-new-one")


def test_user_passwd_unknown_user_fails(server):
    r = server.cli("user", "passwd", "nobody@localhost", "--password", "x-y-z-unknown-1")
    assert r.returncode != 0
    assert r.stderr.strip()


def test_user_del_on_running_server(server):
    assert_login_ok(server, "bob", USERS["bob"])
    server.del_user("bob")
    assert_login_refused(server, "bob", USERS["bob"])
    assert "bob@localhost" not in server.list_users()
    r = server.cli("user", "del", "bob@localhost")
    assert r.returncode != 0, "deleting a missing user succeeded"


def test_user_list(server):
    assert sorted(server.list_users()) == ["alice@localhost", "bob@localhost", "carol@localhost"]
    server.add_user("dave", "tulip-anvil-route-4")
    assert "dave@localhost" in server.list_users()


def test_user_add_invalid_jid_fails(server):
    for jid in ("@localhost", "a b@localhost", "someone@elsewhere.example"):
        r = server.cli("user", "add", jid, "--password", "pw-123456")
        assert r.returncode != 0, "user add %r succeeded" % jid
        assert r.stderr.strip()


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check_config(path):
    return subprocess.run([hearth_bin(), "check", "config", "-c", path], capture_output=True,
                          text=True, timeout=30)


def test_check_config_good(tmp_path):
    (tmp_path / "data").mkdir()
    path = _write(tmp_path, "good.ini", "[server]\ndomain = localhost\ndata_dir = %s\n"
                  "[c2s]\ninterfaces = 127.0.0.1\nport = 0\ndirect_tls_port = 0\n"
                  "[log]\nlevel = info\n" % (tmp_path / "data"))
    r = check_config(path)
    assert r.returncode == 0, r.stderr
    assert "config OK" in r.stdout + r.stderr


def test_check_config_unknown_key(tmp_path):
    path = _write(tmp_path, "bad.ini", "[server]\ndomain = localhost\n\n[c2s]\nprot = 5222\n")
    r = check_config(path)
    assert r.returncode != 0
    assert (path + ":5:") in r.stderr, r.stderr


def test_check_config_bad_value(tmp_path):
    path = _write(tmp_path, "bad.ini", "[server]\ndomain = localhost\n[c2s]\n"
                  "max_stanza_size = lots\n")
    r = check_config(path)
    assert r.returncode != 0
    assert (path + ":4:") in r.stderr, r.stderr


def test_check_config_unknown_section(tmp_path):
    path = _write(tmp_path, "bad.ini", "[server]\ndomain = localhost\n[nonsense]\nx = 1\n")
    r = check_config(path)
    assert r.returncode != 0
    assert (path + ":3:") in r.stderr, r.stderr


def test_run_refuses_bad_config(tmp_path):
    path = _write(tmp_path, "bad.ini", "[server]\ndomain = localhost\ndata_dir = %s\n"
                  "[c2s]\nport = 0\nbogus = 1\n" % (tmp_path / "data"))
    r = subprocess.run([hearth_bin(), "run", "-c", path], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert (path + ":6:") in r.stderr, r.stderr


def test_version():
    r = subprocess.run([hearth_bin(), "version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        m = re.search(r"project\(hearth VERSION ([0-9.]+)", f.read())
    assert m, "no project version in CMakeLists.txt"
    assert m.group(1) in r.stdout, "version %r not in %r" % (m.group(1), r.stdout)


def test_user_commands_go_through_the_auth_worker_while_running(server):
    """While the server runs, `hearth user` hands its request to the auth
    worker (which owns accounts.mdb) over the control socket; stopped, it
    works on the file itself."""
    server.add_user("dave", "cobalt-fig-lane-4")
    assert "auth: hearth user: create dave" in server.log_text(), server.log_tail()
    XmppClient.login(server, "dave", "cobalt-fig-lane-4").close()
    server.passwd("dave", "cobalt-fig-lane-5")
    assert "auth: hearth user: set password of dave" in server.log_text()
    names = server.list_users()
    assert "dave@localhost" in names
    server.stop()
    assert not os.path.exists(os.path.join(server.data_dir, "control.sock"))
    server.del_user("dave")
    assert "dave@localhost" not in server.list_users()
