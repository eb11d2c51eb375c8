"""The audit log (issue 6 item 7): the monitor opens [log] audit_file
(default data_dir/audit.log) with mode 0600 before dropping privileges and
passes it to every child; security events are JSON lines written by the
process that saw them."""

import json
import os
import pwd
import signal
import stat
import time

from conftest import USERS
from hearthtest import (SERVICE_USER, HearthServer, XmppClient, forbidden_syscall_hook,
                        sasl_failure_condition)


def read_events(path):
    with open(path) as f:
        text = f.read()
    assert text == "" or text.endswith("\n"), "a partial line: %r" % text[-200:]
    events = [json.loads(line) for line in text.splitlines()]
    for e in events:
        assert isinstance(e.get("ts"), str) and e["ts"].endswith("Z"), e
        assert e.get("proc") in ("monitor", "reactor", "auth", "keyholder"), e
        assert isinstance(e.get("event"), str), e
    return events


def wait_for_event(path, pred, n=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in read_events(path) if pred(e)]
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def failed_login(server, user, password):
    c = XmppClient.connect(server.starttls_port)
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    el = c.sasl(user, password, "PLAIN")
    c.close()
    return sasl_failure_condition(el)


def test_audit_log_file_and_events(make_server):
    server = make_server({"auth": {"max_failures": 2}})
    path = os.path.join(server.data_dir, "audit.log")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    if os.geteuid() == 0:
        assert st.st_uid == pwd.getpwnam(SERVICE_USER).pw_uid, st.st_uid

    assert failed_login(server, "alice", "definitely-wrong-1") == "not-authorized"
    fails = wait_for_event(path, lambda e: e["event"] == "auth_failure")
    assert len(fails) == 1, fails
    e = fails[0]
    assert (e["proc"], e["ip"], e["user"], e["mechanism"], e["count"]) == (
        "auth", "127.0.0.1", "alice", "PLAIN", 1), e

    assert failed_login(server, "nosuchuser", "definitely-wrong-2") == "not-authorized"
    bans = wait_for_event(path, lambda e: e["event"] == "ip_banned")
    assert len(bans) == 1, bans
    assert (bans[0]["proc"], bans[0]["ip"], bans[0]["failures"]) == ("auth", "127.0.0.1", 2)

    # Administration through the running server (the control socket).
    server.add_user("dave", "saffron-lantern-mill-8")
    server.passwd("dave", "copper-meadow-sparrow-5")
    server.del_user("dave")
    admin = wait_for_event(path, lambda e: e["event"] == "admin_action" and e["user"] == "dave",
                           n=3)
    assert [(e["proc"], e["action"], e["ok"]) for e in admin] == [
        ("auth", "user_add", "true"), ("auth", "user_passwd", "true"),
        ("auth", "user_del", "true")], admin

    # Never a password.
    text = open(path).read()
    for secret in ("definitely-wrong", "saffron-lantern", "copper-meadow", USERS["alice"]):
        assert secret not in text

    # `hearth audit` prints the same lines.
    r = server.cli("audit")
    assert r.returncode == 0, r.stderr
    assert [json.loads(l) for l in r.stdout.splitlines()] == read_events(path)


def test_audit_file_setting_and_sandbox_violation(tmp_path):
    """A configured audit_file; a child killed by its filter is reported by
    the monitor (test builds: SIGUSR2 makes the process try execve)."""
    audit = str(tmp_path / "custom-audit.log")
    srv = HearthServer(overrides={"log": {"audit_file": audit}}, name="audit-sigsys")
    if os.geteuid() == 0:
        os.chmod(str(tmp_path), 0o755)
    with forbidden_syscall_hook(srv, "execve"):
        srv.add_user("alice", USERS["alice"])
        srv.start()
        assert stat.S_IMODE(os.stat(audit).st_mode) == 0o600
        assert not os.path.exists(os.path.join(srv.data_dir, "audit.log"))
        from test_privsep import wait_children
        kids = wait_children(srv)
        os.kill(kids["keyholder"], signal.SIGUSR2)
        found = wait_for_event(audit, lambda e: e["event"] == "sandbox_violation")
        assert len(found) == 1, found
        assert (found[0]["proc"], found[0]["role"], found[0]["pid"]) == (
            "monitor", "keyholder", kids["keyholder"]), found
        # The restarted keyholder serves again.
        wait_children(srv, roles=("keyholder",), exclude={"keyholder": kids["keyholder"]})
        c = XmppClient.login(srv, "alice", USERS["alice"])
        c.close()
