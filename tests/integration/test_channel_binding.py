"""SCRAM-*-PLUS channel binding end to end (RFC 5802, RFC 5929, RFC 9266,
XEP-0440), driven through tests/tools/scram_plus_client (C++, wolfSSL).

Python's ssl module cannot export keying material, so the RFC 9266
tls-exporter binding is exercised with the C++ client: it logs in over
direct TLS (XEP-0368) and STARTTLS, checks the advertised mechanisms and
XEP-0440 binding types, runs SCRAM with the binding data of its own TLS
session, verifies the server signature, restarts the stream, binds and pings.

An independent implementation checks the wolfSSL one: `openssl s_client
-keymatexport` computes the exporter with OpenSSL over its own TLS 1.3
session, and the scripted Python client logs in through it with that value.

TLS 1.2: RFC 9266 section 4.2 allows tls-exporter under TLS 1.2 only with the
extended master secret (RFC 7627); without it the exporter is not unique to
the connection. wolfSSL offers EMS by default, so a TLS 1.2 client gets
tls-exporter; with EMS switched off (--no-ems) the server must not advertise
it and must refuse a login that uses it anyway.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import USERS
from hearthtest import NS_SASL, REPO, XmppClient, sasl_failure_condition, show, tag

TOOL = "scram_plus_client"


def tool_path():
    """The built client. Missing is a failure, never a skip: these tests are
    the only end-to-end proof of tls-exporter."""
    tools_dir = os.environ.get("HEARTH_TOOLS_DIR")
    if tools_dir:
        path = os.path.join(tools_dir, TOOL)
    else:
        # Local runs without CTest: the default build directory.
        path = os.path.join(REPO, "build", TOOL)
    assert os.access(path, os.X_OK), (
        "%s not found or not executable at %s (HEARTH_TOOLS_DIR=%r); build the "
        "'%s' target" % (TOOL, path, tools_dir, TOOL))
    return path


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def line(self, prefix):
        """The first stdout line starting with prefix, or None."""
        for l in self.out.splitlines():
            if l.startswith(prefix):
                return l
        return None

    def channel_binding_types(self):
        l = self.line("features: ")
        assert l is not None, "the client printed no features line:\n" + self.text()
        m = re.search(r"channel-binding=\[([^\]]*)\]", l)
        assert m, l
        return set(m.group(1).split())

    def mechanisms(self):
        l = self.line("features: ")
        assert l is not None, "the client printed no features line:\n" + self.text()
        m = re.search(r"mechanisms=\[([^\]]*)\]", l)
        assert m, l
        return set(m.group(1).split())

    def text(self):
        return "exit %s\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.out, self.err)


def run_client(server, transport, mech="SCRAM-SHA-256-PLUS", cb="tls-exporter", tls=None,
               user="alice", password=None, extra=()):
    port = server.direct_tls_port if transport == "direct-tls" else server.starttls_port
    args = [tool_path(), "--port", str(port), "--" + transport, "--user", user,
            "--password", password or USERS[user], "--mech", mech, "--cb", cb]
    if tls is not None:
        args.append("--" + tls)
    args.extend(extra)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return Run(proc)


def assert_logged_in(r, mech, cb, version, transport, user="alice"):
    assert r.rc == 0, "login failed:\n" + r.text()
    tls = r.line("tls: ")
    assert tls is not None and tls.split()[1] == version, (
        "expected %s:\n%s" % (version, r.text()))
    if transport == "direct-tls":
        assert r.line("alpn: xmpp-client") is not None, r.text()
    else:
        assert r.line("starttls: <proceed/>") is not None, r.text()
    assert mech in r.mechanisms(), r.text()
    assert cb in r.channel_binding_types(), r.text()
    assert r.line("cb: %s " % cb) is not None, r.text()
    assert r.line("sasl: <success/>, server signature verified") is not None, r.text()
    assert r.line("bind: %s@localhost/plus" % user) is not None, r.text()
    assert r.line("ping: result from localhost") is not None, r.text()
    assert r.line("OK logged in with %s using %s" % (mech, cb)) is not None, r.text()


def assert_refused(r):
    assert r.rc == 0, "authentication was not refused as expected:\n" + r.text()
    fail = r.line("sasl: <failure/> condition ")
    assert fail is not None, r.text()
    assert "condition not-authorized" in fail, "unexpected SASL condition:\n" + r.text()
    assert r.line("sasl: <success/>") is None, r.text()
    assert r.line("bind: ") is None, r.text()


# -- tls-exporter, TLS 1.3


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
def test_tls_exporter_tls13(server, transport, mech):
    r = run_client(server, transport, mech=mech, cb="tls-exporter", tls="tls13")
    assert_logged_in(r, mech, "tls-exporter", "TLSv1.3", transport)
    server.assert_alive()


def test_tls_exporter_default_version_is_tls13(server):
    # Without a version pin the client offers TLS 1.2 and 1.3; the server
    # must pick 1.3 and bind to its exporter.
    r = run_client(server, "direct-tls", cb="tls-exporter")
    assert_logged_in(r, "SCRAM-SHA-256-PLUS", "tls-exporter", "TLSv1.3", "direct-tls")
    server.assert_alive()


def test_tls_exporter_differs_per_connection(server):
    # The binding must be unique to the TLS session (RFC 9266 section 1).
    a = run_client(server, "direct-tls", cb="tls-exporter", tls="tls13")
    b = run_client(server, "direct-tls", cb="tls-exporter", tls="tls13")
    assert a.rc == 0 and b.rc == 0, a.text() + b.text()
    assert a.line("cb: ") != b.line("cb: "), "same exporter on two connections:\n%s\n%s" % (
        a.line("cb: "), b.line("cb: "))
    server.assert_alive()


# -- tls-server-end-point through the C++ client


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
@pytest.mark.parametrize("tls", ["tls13", "tls12"])
def test_tls_server_end_point(server, transport, tls):
    r = run_client(server, transport, cb="tls-server-end-point", tls=tls, user="bob")
    assert_logged_in(r, "SCRAM-SHA-256-PLUS", "tls-server-end-point",
                     "TLSv1.3" if tls == "tls13" else "TLSv1.2", transport, user="bob")
    server.assert_alive()


def test_tls_server_end_point_sha1_plus(server):
    r = run_client(server, "starttls", mech="SCRAM-SHA-1-PLUS", cb="tls-server-end-point",
                   tls="tls13")
    assert_logged_in(r, "SCRAM-SHA-1-PLUS", "tls-server-end-point", "TLSv1.3", "starttls")
    server.assert_alive()


# -- TLS 1.2 (RFC 9266 section 4.2: only with the extended master secret)


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
def test_tls12_with_ems_tls_exporter(server, transport, mech):
    r = run_client(server, transport, mech=mech, cb="tls-exporter", tls="tls12")
    assert_logged_in(r, mech, "tls-exporter", "TLSv1.2", transport)
    server.assert_alive()


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
def test_tls12_without_ems_no_tls_exporter(server, transport):
    # Without EMS the TLS 1.2 exporter is open to the triple handshake
    # attack (RFC 7627), so RFC 9266 section 4.2 forbids tls-exporter: the
    # server must not advertise it, and must refuse a client that uses it
    # anyway.
    r = run_client(server, transport, cb="tls-exporter", tls="tls12",
                   extra=["--no-ems", "--expect-refused"])
    assert r.line("tls: TLSv1.2 ") is not None, r.text()
    types = r.channel_binding_types()
    assert "tls-exporter" not in types, "tls-exporter advertised on TLS 1.2 without EMS:\n" + r.text()
    assert "tls-server-end-point" in types, r.text()
    assert r.line("features: tls-exporter not advertised; trying it anyway") is not None, r.text()
    assert r.rc == 0 and r.line("OK authentication refused as expected") is not None, (
        "tls-exporter accepted on TLS 1.2 without EMS:\n" + r.text())
    fail = r.line("sasl: <failure/> condition ")
    assert fail is not None and "<success" not in r.out, r.text()
    server.assert_alive()


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
def test_tls12_without_ems_server_end_point_still_works(server, transport):
    r = run_client(server, transport, cb="tls-server-end-point", tls="tls12", extra=["--no-ems"])
    assert_logged_in(r, "SCRAM-SHA-256-PLUS", "tls-server-end-point", "TLSv1.2", transport)
    server.assert_alive()


# -- wrong binding data


@pytest.mark.parametrize("cb,tls", [("tls-exporter", "tls13"), ("tls-exporter", "tls12"),
                                    ("tls-server-end-point", "tls13")])
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
def test_wrong_binding_data_refused(server, cb, tls, mech):
    r = run_client(server, "direct-tls", mech=mech, cb=cb, tls=tls, extra=["--wrong-cb"])
    assert r.line("cb: %s " % cb) is not None and "bit flipped" in r.line("cb: "), r.text()
    assert_refused(r)
    server.assert_alive()
    # The refusal was about the binding, not the account: the same login
    # with the right data still works.
    ok = run_client(server, "direct-tls", mech=mech, cb=cb, tls=tls)
    assert_logged_in(ok, mech, cb, "TLSv1.3" if tls == "tls13" else "TLSv1.2", "direct-tls")
    server.assert_alive()


def test_wrong_password_refused(server):
    # A control for the tool itself: it reports a refusal, never a login.
    r = run_client(server, "starttls", cb="tls-exporter", password="not-the-password",
                   extra=["--expect-refused"])
    assert_refused(r)
    r = run_client(server, "starttls", cb="tls-exporter", password="not-the-password")
    assert r.rc == 1 and r.line("FAIL authentication refused") is not None, r.text()
    server.assert_alive()


# -- cross-check with OpenSSL's exporter (independent of wolfSSL)


class OpenSslTransport:
    """`openssl s_client` as the TLS layer: it prints the RFC 9266 exporter of
    its session, then relays stdin/stdout; a socketpair bridges that to an
    XmppClient."""

    def __init__(self, port, starttls, version="-tls1_3", timeout=10.0):
        openssl = shutil.which("openssl")
        assert openssl, "the openssl command-line tool is needed for the cross-check"
        args = [openssl, "s_client", "-connect", "127.0.0.1:%d" % port, version,
                "-servername", "localhost", "-nocommands", "-no_ign_eof",
                "-keymatexport", "EXPORTER-Channel-Binding", "-keymatexportlen", "32"]
        if starttls:
            args += ["-starttls", "xmpp", "-xmpphost", "localhost"]
        else:
            args += ["-alpn", "xmpp-client"]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.banner = b""
        self.exporter = None
        deadline = time.monotonic() + timeout
        # The session summary ends with the exporter and a "---" line; the
        # server sends nothing more until we open the stream.
        while True:
            m = re.search(rb"Keying material: ([0-9A-Fa-f]{64})\r?\n---\r?\n", self.banner)
            if m:
                self.exporter = bytes.fromhex(m.group(1).decode())
                rest = self.banner[m.end():]
                break
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            chunk = os.read(self.proc.stdout.fileno(), 65536) if r else b""
            if not chunk:
                self.close()
                raise AssertionError("openssl s_client printed no exporter:\n%s\n%s" % (
                    self.banner.decode(errors="replace"),
                    self.proc.stderr.read().decode(errors="replace")))
            self.banner += chunk
        assert not rest, "data before our stream header: %r" % rest
        self.version = re.search(rb"New, (TLSv[0-9.]+),", self.banner).group(1).decode()
        self.ours, theirs = socket.socketpair()
        self.theirs = theirs
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_in, daemon=True).start()

    def _pump_out(self):  # server -> client
        try:
            while True:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    break
                self.theirs.sendall(data)
        except OSError:
            pass
        try:
            self.theirs.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _pump_in(self):  # client -> server
        try:
            while True:
                data = self.theirs.recv(65536)
                if not data:
                    break
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for s in (getattr(self, "ours", None), getattr(self, "theirs", None)):
            if s is not None:
                s.close()


@pytest.fixture
def openssl_transport():
    made = []

    def make(*args, **kw):
        t = OpenSslTransport(*args, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


@pytest.mark.parametrize("transport", ["direct-tls", "starttls"])
@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
def test_tls_exporter_from_openssl_tls13(server, openssl_transport, transport, mech):
    t = openssl_transport(server.direct_tls_port if transport == "direct-tls"
                          else server.starttls_port, starttls=transport == "starttls")
    assert t.version == "TLSv1.3", t.banner.decode(errors="replace")
    c = XmppClient(t.ours, name="openssl")
    c.open_stream()
    types = {e.get("type") for e in c.features.iter() if e.get("type")}
    assert "tls-exporter" in types, show(c.features)
    el = c.auth_scram("carol", USERS["carol"], mech, gs2_flag="p=tls-exporter",
                      cb_data=t.exporter)
    assert el.tag == tag(NS_SASL, "success"), (
        "login with OpenSSL's tls-exporter refused: %s" % show(el))
    c.open_stream()
    assert c.bind("openssl") == "carol@localhost/openssl"
    c.assert_ping()
    c.close()
    server.assert_alive()


def test_tls_exporter_from_openssl_wrong_data_refused(server, openssl_transport):
    t = openssl_transport(server.starttls_port, starttls=True)
    c = XmppClient(t.ours, name="openssl")
    c.open_stream()
    wrong = bytes([t.exporter[0] ^ 0x80]) + t.exporter[1:]
    el = c.auth_scram("carol", USERS["carol"], "SCRAM-SHA-256-PLUS", gs2_flag="p=tls-exporter",
                      cb_data=wrong)
    assert el.tag == tag(NS_SASL, "failure"), "wrong exporter accepted: " + show(el)
    assert sasl_failure_condition(el) == "not-authorized", show(el)
    c.close()
    server.assert_alive()
