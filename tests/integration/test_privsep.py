"""Privilege separation (ARCHITECTURE.md section 1): the monitor starts the
reactor, the keyholder and the auth worker; each child runs under its own
seccomp filter as the service user; the reactor never holds the TLS private
key or a password verifier; a worker that dies is back within a second and
only the requests it had in flight fail."""

import base64
import hashlib
import hmac
import os
import pwd
import re
import signal
import socket
import ssl
import threading
import time

import pytest

from conftest import USERS
from hearthtest import (NS_SASL, SERVICE_USER, HearthServer, XmppClient, client_context,
                        forbidden_syscall_hook, scram_server_first,
                        sasl_failure_condition, show, tag)

ROLES = ("reactor", "keyholder", "auth")


def children(server):
    """{role: pid} of the monitor's live children."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[-1].split()
        if rest[0] == "Z" or int(rest[1]) != server.proc.pid:
            continue
        for arg in cmdline:
            if arg.startswith(b"--role="):
                out[arg[7:].decode()] = int(entry)
    return out


def wait_children(server, roles=ROLES, exclude=None, timeout=5.0):
    """Waits until every role has a live child (not one of `exclude`)."""
    deadline = time.monotonic() + timeout
    while True:
        kids = children(server)
        if all(r in kids and kids[r] != (exclude or {}).get(r) for r in roles):
            return kids
        if time.monotonic() > deadline:
            raise AssertionError("roles %s not all running (have %s); log:\n%s"
                                 % (roles, kids, server.log_tail()))
        time.sleep(0.01)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_every_child_is_sandboxed_and_unprivileged(server):
    kids = wait_children(server)
    for role in ROLES:
        st = proc_status(kids[role])
        assert st["Seccomp"].strip() == "2", (role, st["Seccomp"])
        assert st["NoNewPrivs"].strip() == "1", (role, st["NoNewPrivs"])
        if os.geteuid() == 0:
            uid = pwd.getpwnam(SERVICE_USER).pw_uid
            assert st["Uid"].split() == [str(uid)] * 4, (role, st["Uid"])
    if os.geteuid() == 0:
        uid = pwd.getpwnam(SERVICE_USER).pw_uid
        assert proc_status(server.proc.pid)["Uid"].split() == [str(uid)] * 4, "monitor"
    # The processes that hold secrets cannot be dumped or ptrace-attached by
    # the service user.
    for role in ("keyholder", "auth"):
        with open("/proc/%d/limits" % kids[role]) as f:
            core = [l for l in f if l.startswith("Max core file size")][0]
        assert core.split()[4] == "0", (role, core)


def _readable_memory(pid):
    """Every readable mapping of `pid` as one bytes object per region."""
    regions = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1]:
                continue
            path = fields[5] if len(fields) > 5 else ""
            if path.startswith("/usr/") or path == "[vvar]" or path == "[vsyscall]":
                continue  # shared libraries' text: no secrets there
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                regions.append(mem.read(end - start))
            except (OSError, ValueError, OverflowError):
                continue
    return regions


def _contains(regions, needle):
    return any(needle in r for r in regions)


def _ec_private_scalar(key_pem_path):
    """The 32-byte private scalar of a P-256 key in SEC1 or PKCS#8 PEM."""
    with open(key_pem_path) as f:
        b64 = "".join(l for l in f.read().splitlines() if l and not l.startswith("-----"))
    der = base64.b64decode(b64)
    # SEC1 ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING privateKey, ... },
    # alone or inside PKCS#8: the first "02 01 01 04 20" marks it either way.
    i = der.find(b"\x02\x01\x01\x04\x20")
    assert i >= 0, "no EC private key in %s" % key_pem_path
    return der[i + 5:i + 37]


def _scram_keys(server, user, password, mechanism):
    """StoredKey and ServerKey of an account, from its salt and iteration
    count as the server announces them."""
    hname = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
    attrs = scram_server_first(server, user, mechanism)
    salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hname).digest()
    stored = hashlib.new(hname, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hname).digest()
    return stored, server_key


def test_reactor_memory_holds_no_private_key_and_no_verifier(server, login):
    alice = login("alice")
    login("bob", mechanism="SCRAM-SHA-1")
    login("carol", mechanism="PLAIN")
    canary = "canary-%s" % base64.b32encode(os.urandom(10)).decode()
    alice.send("<message to='alice@localhost/nobody-here' type='chat'><body>%s</body></message>"
               % canary)
    alice.ping()
    secrets = {"TLS private key": _ec_private_scalar(
        os.path.join(server.data_dir, "self-signed.key"))}
    for user in ("alice", "bob", "carol"):
        for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
            stored, skey = _scram_keys(server, user, USERS[user], mech)
            secrets["%s StoredKey (%s)" % (user, mech)] = stored
            secrets["%s ServerKey (%s)" % (user, mech)] = skey
    kids = wait_children(server)
    reactor = _readable_memory(kids["reactor"])
    # The scan does see the reactor's heap: the message we just sent is there.
    assert _contains(reactor, canary.encode()), "memory scan found nothing: the test is broken"
    found = [name for name, value in secrets.items() if _contains(reactor, value)]
    assert not found, "the reactor's memory holds: %s" % ", ".join(found)


# The client's next step arrives at once, while the worker is down (before
# its restart after 100 ms), or after the new worker is attached.
@pytest.mark.parametrize("delay", [0.0, 0.04, 0.4], ids=["at-once", "while-down", "after-restart"])
def test_auth_worker_killed_mid_exchange(server, login, delay):
    bob = login("bob")
    kids = wait_children(server)
    c = XmppClient.connect(server.starttls_port)
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    first = "n,,n=alice,r=0123456789abcdef"
    c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
           % (NS_SASL, base64.b64encode(first.encode()).decode()))
    el = c.next(what="SCRAM challenge")
    assert el.tag == tag(NS_SASL, "challenge"), show(el)
    os.kill(kids["auth"], signal.SIGKILL)
    t0 = time.monotonic()
    time.sleep(delay)
    # The exchange died with the worker: the login fails cleanly, not hangs.
    final = "c=biws,r=%s,p=%s" % ("0123456789abcdef" + "x" * 8,
                                   base64.b64encode(b"\0" * 32).decode())
    c.send("<response xmlns='%s'>%s</response>"
           % (NS_SASL, base64.b64encode(final.encode()).decode()))
    el = c.next(what="SASL outcome")
    assert el.tag == tag(NS_SASL, "failure"), show(el)
    assert sasl_failure_condition(el) == "temporary-auth-failure", show(el)
    new = wait_children(server, roles=("auth",), exclude={"auth": kids["auth"]}, timeout=1.0)
    assert time.monotonic() - t0 < 1.5
    assert new["auth"] != kids["auth"]
    # The next login goes to the new worker; bob never noticed.
    login("alice")
    bob.ping()
    assert children(server)["reactor"] == kids["reactor"]
    server.assert_alive()


def test_auth_worker_killed_with_request_in_flight(server, login):
    """A SASL request in flight when the worker dies fails with
    <temporary-auth-failure/> (RFC 6120 6.5.10)."""
    kids = wait_children(server)
    os.kill(kids["auth"], signal.SIGSTOP)  # the request will wait in its socket
    try:
        c = XmppClient.connect(server.starttls_port)
        server.clients.append(c)
        c.open_stream()
        c.starttls()
        first = "n,,n=alice,r=0123456789abcdef"
        c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-256'>%s</auth>"
               % (NS_SASL, base64.b64encode(first.encode()).decode()))
        time.sleep(0.2)
    finally:
        os.kill(kids["auth"], signal.SIGKILL)
    el = c.next(what="SASL outcome")
    assert el.tag == tag(NS_SASL, "failure"), show(el)
    assert sasl_failure_condition(el) == "temporary-auth-failure", show(el)
    wait_children(server, roles=("auth",), exclude={"auth": kids["auth"]}, timeout=1.0)
    login("alice")


def test_keyholder_killed_during_handshakes(server, login):
    bob = login("bob")
    kids = wait_children(server)
    outcomes = []

    def handshake():
        try:
            raw = socket.create_connection(("127.0.0.1", server.direct_tls_port), timeout=5)
            ctx = client_context()
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.do_handshake()
            outcomes.append("ok")
        except (OSError, ssl.SSLError) as e:
            outcomes.append(type(e).__name__)

    threads = [threading.Thread(target=handshake) for _ in range(30)]
    for i, t in enumerate(threads):
        t.start()
        if i == 10:
            os.kill(kids["keyholder"], signal.SIGKILL)
    for t in threads:
        t.join(10)
    assert len(outcomes) == 30, "a handshake hung"
    new = wait_children(server, roles=("keyholder",), exclude={"keyholder": kids["keyholder"]},
                        timeout=1.0)
    assert new["keyholder"] != kids["keyholder"]
    # New handshakes sign through the new keyholder; bob never noticed.
    login("alice", direct_tls=True)
    login("carol")
    bob.ping()
    assert children(server)["reactor"] == kids["reactor"]
    server.assert_alive()


@pytest.mark.parametrize("role,call", [("reactor", "execve"), ("reactor", "socket"),
                                       ("reactor", "open"), ("keyholder", "socket"),
                                       ("keyholder", "execve"), ("keyholder", "open"),
                                       ("auth", "socket"), ("auth", "open"),
                                       ("auth", "execve")])
def test_forbidden_syscall_kills_the_process(role, call):
    """Test builds (HEARTH_TEST_HOOKS) make a process perform the syscall
    named by HEARTH_TEST_SYSCALL when it gets SIGUSR2; its filter must kill
    it with SIGSYS, and the monitor restarts it."""
    srv = HearthServer(name="sigsys-%s-%s" % (role, call))
    with forbidden_syscall_hook(srv, call):
        srv.add_user("alice", USERS["alice"])
        srv.start()
        kids = wait_children(srv)
        os.kill(kids[role], signal.SIGUSR2)
        wait_children(srv, roles=(role,), exclude={role: kids[role]}, timeout=3.0)
        if call == "open":
            # A file probe is refused with EACCES (STYLE.md: file probes get
            # EACCES, everything else kills); the hook then exits with 4.
            pattern = r"%s \(pid %d\) exited with status 4" % (role, kids[role])
        else:
            pattern = r"%s \(pid %d\) killed by signal %d \(sandbox violation\)" % (
                role, kids[role], signal.SIGSYS)
        assert re.search(pattern, srv.log_text()), srv.log_tail()
        if role == "reactor":
            wait_children(srv)
            time.sleep(0.3)
        c = XmppClient.login(srv, "alice", USERS["alice"])
        c.ping()
        c.close()


def test_check_lists_processes_and_filters(server):
    r = server.cli("check", "config")
    assert r.returncode == 0, r.stderr
    for role in ROLES:
        assert re.search(r"^%s: seccomp enforce; landlock " % role, r.stdout, re.M), r.stdout
        assert re.search(r"^  %s: seccomp allows \d+ syscalls" % role, r.stdout, re.M), r.stdout
    # Log mode is for debugging and says so loudly.
    server.settings["sandbox"] = {"mode": "log"}
    server.write_config()
    r = server.cli("check", "config")
    assert r.returncode == 0, r.stderr
    assert "LOG ONLY" in r.stdout and "WARNING" in r.stderr, (r.stdout, r.stderr)


def test_sighup_reloads_and_a_bad_file_is_refused(server, login):
    """SIGHUP at the monitor: it re-reads the INI, validates it and hands it
    to the reactor; a bad file keeps the running configuration."""
    bob = login("bob")
    server.settings["c2s"]["max_stanza_size"] = "20000"
    server.write_config()
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.02)
    c = login("alice")
    c.send_flood("<message to='bob@localhost'><body>%s</body></message>" % ("x" * 30000))
    assert c.expect_stream_error() == "policy-violation"
    with open(server.ini_path, "a") as f:
        f.write("\n[c2s]\nno_such_key = 1\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload refused" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.02)
    bob.ping()
    server.assert_alive()
    # Restore a valid file so that the teardown's clean stop is judged fairly.
    server.write_config()
