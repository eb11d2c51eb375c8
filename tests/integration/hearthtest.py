"""Harness for the Hearth integration tests.

HearthServer starts the real `hearth` binary (HEARTH_BIN) on loopback with
ephemeral ports in its own temp dir; XmppClient is a small synchronous,
scripted XMPP client (raw socket, STARTTLS / direct TLS, SASL SCRAM incl.
-PLUS with tls-server-end-point, PLAIN, bind) that checks the protocol
exactly. Every read has a deadline so a silent server fails a test instead
of hanging it.
"""

import base64
import contextlib
import hashlib
import hmac
import itertools
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET

DOMAIN = "localhost"
SERVICE_USER = "nobody"
TIMEOUT = 8.0  # default seconds for any single expected reply

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_SASL_CB = "urn:xmpp:sasl-cb:0"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Lines in the server log that mean a crash, whatever else happened.
CRASH_PATTERNS = re.compile(
    r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer"
    r"|runtime error:|Segmentation fault|SIGSEGV|SIGSYS|SIGABRT|SIGBUS"
    r"|stack smashing|double free|terminate called|sandbox violation"
)


def tag(ns, name):
    return "{%s}%s" % (ns, name)


def local(el_tag):
    return el_tag.rsplit("}", 1)[-1]


def ns_of(el_tag):
    return el_tag[1:].split("}", 1)[0] if el_tag.startswith("{") else ""


def show(el):
    """An element as text for assertion messages."""
    if el is None:
        return "<nothing>"
    try:
        return ET.tostring(el, encoding="unicode")
    except Exception:  # pragma: no cover - diagnostics only
        return repr(el)


def hearth_bin():
    path = os.environ.get("HEARTH_BIN")
    if path:
        return path
    for cand in ("build/hearth", "build-itest/hearth"):
        full = os.path.join(REPO, cand)
        if os.access(full, os.X_OK):
            return full
    raise AssertionError("HEARTH_BIN is not set and no built hearth binary was found")


def bare_jid(user):
    return user if "@" in user else "%s@%s" % (user, DOMAIN)


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


# --------------------------------------------------------------------------
# The server under test


def _group_members(pgid):
    """PIDs (not zombies) in process group pgid, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[-1].split()
        # rest: state ppid pgrp ...
        if len(rest) >= 3 and int(rest[2]) == pgid and rest[0] != "Z":
            pids.append(int(entry))
    return pids


class HearthServer:
    """One `hearth run` in its own temp dir with its own INI."""

    def __init__(self, overrides=None, log_level="debug", name="hearth"):
        self.dir = tempfile.mkdtemp(prefix="hearth-itest-%s-" % name)
        self.data_dir = os.path.join(self.dir, "data")
        self.ini_path = os.path.join(self.dir, "hearth.ini")
        self.log_path = os.path.join(self.dir, "hearth.log")
        self.settings = {
            "server": {"domain": DOMAIN, "data_dir": self.data_dir},
            "c2s": {"interfaces": "127.0.0.1", "port": "0", "direct_tls_port": "0"},
            "auth": {"scram_iterations": "4096"},
            "log": {"level": log_level},
            # Throughput the tests need. The per-client byte rate (10 kB/s)
            # and the anti-spam budgets (60 messages a minute to strangers,
            # 30 subscription requests) are tested at their defaults and at
            # other values by test_limits.py and test_spam.py, which set
            # them; other tests send thousands of stanzas between accounts
            # that are not contacts.
            "limits": {"c2s_rate": "100000000", "c2s_burst": "100000000",
                       "stranger_messages_per_minute": "100000",
                       "subscriptions_per_minute": "100000"},
        }
        if os.geteuid() == 0:
            # As root, hearth switches to the service user: an unprivileged
            # one that exists on every Debian system. It must reach data_dir.
            self.settings["server"]["user"] = SERVICE_USER
            os.chmod(self.dir, 0o755)
        for section, keys in (overrides or {}).items():
            sect = self.settings.setdefault(section, {})
            for key, value in keys.items():
                if value is None:
                    sect.pop(key, None)
                else:
                    sect[key] = str(value)
        self.write_config()
        self.proc = None
        self.pgid = None
        self.starttls_port = None
        self.direct_tls_port = None
        self.fingerprint = None
        self._log_file = None
        self.returncode = None

    # -- configuration

    def write_config(self):
        lines = []
        for section, keys in self.settings.items():
            lines.append("[%s]" % section)
            for key, value in keys.items():
                lines.append("%s = %s" % (key, value))
            lines.append("")
        with open(self.ini_path, "w") as f:
            f.write("\n".join(lines))

    # -- process

    def start(self, timeout=20.0):
        assert self.proc is None, "server already started"
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [hearth_bin(), "run", "-c", self.ini_path],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=self._log_file,
            start_new_session=True)
        self.pgid = self.proc.pid
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if "server: ready" in text:
                break
            if self.proc.poll() is not None:
                raise AssertionError("hearth run exited with %s before 'server: ready'; log:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise AssertionError("no 'server: ready' within %.0f s; log:\n%s"
                                     % (timeout, self.log_tail()))
            time.sleep(0.02)
        m = re.search(r"listening c2s-starttls on 127\.0\.0\.1:(\d+)", text)
        assert m, "no 'listening c2s-starttls on 127.0.0.1:PORT' line; log:\n" + self.log_tail()
        self.starttls_port = int(m.group(1))
        m = re.search(r"listening c2s-direct-tls on 127\.0\.0\.1:(\d+)", text)
        assert m, "no 'listening c2s-direct-tls on 127.0.0.1:PORT' line; log:\n" + self.log_tail()
        self.direct_tls_port = int(m.group(1))
        assert self.starttls_port > 0 and self.direct_tls_port > 0
        m = re.search(r"certificate fingerprint SHA-256 ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31})", text)
        self.fingerprint = m.group(1).upper() if m else None
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "hearth exited (code %s); log:\n%s" % (
            self.proc.returncode if self.proc else None, self.log_tail())
        crash = self.crash_lines()
        assert not crash, "crash in server log:\n" + "\n".join(crash)

    def send_sigterm(self):
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("hearth did not exit within %.0f s after SIGTERM; log:\n%s"
                                 % (timeout, self.log_tail()))
        return self.returncode

    def stop(self, timeout=10.0):
        """SIGTERM; assert a clean exit (code 0, no crash, no stray workers)."""
        if self.proc is None:
            return
        self.send_sigterm()
        rc = self.wait_exit(timeout)
        stray = self._wait_group_empty(5.0)
        self._close_log()
        assert rc == 0, "hearth exited with code %s after SIGTERM; log:\n%s" % (rc, self.log_tail())
        crash = self.crash_lines()
        assert not crash, "crash in server log:\n" + "\n".join(crash)
        assert not stray, "worker processes %s still running after hearth exited" % stray

    def _wait_group_empty(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            members = _group_members(self.pgid)
            if not members or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if members:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        return members

    def restart(self, kill=False):
        """Stops the server (SIGTERM; with kill=True SIGKILL of every process,
        as a power cut would) and starts a new `hearth run` on the same
        data_dir and INI. Clients in self.clients are closed first. The old
        log moves aside, so start() waits for the new 'server: ready'."""
        clients = getattr(self, "clients", [])
        for c in clients:
            c.close()
        clients.clear()
        if kill:
            self.kill()
            assert not self.alive()
        else:
            self.stop()
        self._close_log()
        self.runs = getattr(self, "runs", 0) + 1
        os.replace(self.log_path, "%s.%d" % (self.log_path, self.runs))
        self.proc = None
        self.pgid = None
        self.returncode = None
        self.start()

    def kill(self):
        """Last-resort cleanup of our own process group."""
        if self.pgid is not None and _group_members(self.pgid):
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._close_log()

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def cleanup(self):
        self.kill()
        if not os.environ.get("HEARTH_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- log

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=200):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def crash_lines(self):
        return [l for l in self.log_text().splitlines() if CRASH_PATTERNS.search(l)]

    # -- CLI

    def cli(self, *args, input=None, timeout=30.0):
        """Run `hearth ARGS -c INI`; returns CompletedProcess (text)."""
        cmd = [hearth_bin()] + list(args) + ["-c", self.ini_path]
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout)

    def _cli_ok(self, *args, input=None):
        r = self.cli(*args, input=input)
        assert r.returncode == 0, "hearth %s failed (%s): stdout=%r stderr=%r" % (
            " ".join(args), r.returncode, r.stdout, r.stderr)
        return r

    def add_user(self, user, password):
        return self._cli_ok("user", "add", bare_jid(user), "--password", password)

    def passwd(self, user, password):
        return self._cli_ok("user", "passwd", bare_jid(user), "--password", password)

    def del_user(self, user):
        return self._cli_ok("user", "del", bare_jid(user))

    def list_users(self):
        r = self._cli_ok("user", "list")
        return [l.strip() for l in r.stdout.splitlines() if l.strip()]


# --------------------------------------------------------------------------
# TLS helpers


def client_context(min_version=None, max_version=None, ciphers=None, alpn=None):
    """A client SSLContext with verification off (the cert is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated in Python; the tests offer them on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _der_read(data, pos):
    """One DER TLV at pos -> (tag, value_start, value_end)."""
    t = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return t, pos, pos + length


def _oid_text(raw):
    first = raw[0]
    parts = [first // 40, first % 40]
    value = 0
    for b in raw[1:]:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


_SIG_HASHES = {
    "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
}


def server_end_point(der_cert):
    """RFC 5929 section 4.1 tls-server-end-point data for a DER certificate:
    the certificate hashed with its signature hash, SHA-256 for MD5/SHA-1/
    SHA-256 (and anything unknown)."""
    _, start, _ = _der_read(der_cert, 0)  # Certificate SEQUENCE
    _, _, tbs_end = _der_read(der_cert, start)  # tbsCertificate
    _, alg_start, _ = _der_read(der_cert, tbs_end)  # signatureAlgorithm SEQUENCE
    t, oid_start, oid_end = _der_read(der_cert, alg_start)
    assert t == 0x06, "certificate signatureAlgorithm has no OID"
    name = _SIG_HASHES.get(_oid_text(der_cert[oid_start:oid_end]), "sha256")
    return hashlib.new(name, der_cert).digest()


# --------------------------------------------------------------------------
# The scripted client


class StreamClosed(AssertionError):
    pass


def _saslname(name):
    return name.replace("=", "=3D").replace(",", "=2C")


class XmppClient:
    """A synchronous scripted XMPP c2s client.

    Elements the server sends at stream level (depth 1 children) are queued;
    next() takes the first, wait_for() the first that matches (the others stay
    queued). Everything received is kept in `received` for failure messages.
    """

    _ids = itertools.count(1)

    def __init__(self, sock, timeout=TIMEOUT, name="client"):
        self.sock = sock
        self.recv_size = 65536  # bytes per read (smaller leaves data unread in the kernel)
        self.timeout = timeout
        self.name = name
        self.received = bytearray()
        self.pending = []
        self.stream_attrs = None
        self.stream_closed = False  # server sent </stream:stream>
        self.eof = False  # transport closed by the server
        self.tls_error = None
        self.features = None
        self.jid = None
        self.authenticated = False
        self._new_parser()

    # -- connecting

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=TIMEOUT, name="client"):
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, timeout=timeout, name=name)

    @classmethod
    def connect_direct_tls(cls, port, ctx=None, alpn=("xmpp-client",), server_hostname=DOMAIN,
                           host="127.0.0.1", timeout=TIMEOUT, name="client"):
        if ctx is None:
            ctx = client_context(alpn=alpn)
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock = ctx.wrap_socket(raw, server_hostname=server_hostname)
        except BaseException:
            raw.close()
            raise
        return cls(sock, timeout=timeout, name=name)

    @classmethod
    def login(cls, server, user, password, resource=None, mechanism="SCRAM-SHA-256",
              direct_tls=False, timeout=TIMEOUT, name=None):
        """Connect, TLS, authenticate, bind. Returns the bound client."""
        name = name or user
        if direct_tls:
            c = cls.connect_direct_tls(server.direct_tls_port, timeout=timeout, name=name)
            c.open_stream()
        else:
            c = cls.connect(server.starttls_port, timeout=timeout, name=name)
            c.open_stream()
            c.starttls()
        c.authenticate(user, password, mechanism=mechanism)
        c.bind(resource)
        return c

    # -- diagnostics

    def transcript(self, limit=3000):
        text = bytes(self.received[-limit:]).decode("utf-8", "replace")
        return "[%s] server sent (last %d bytes): %s" % (self.name, limit, text)

    def fail(self, what):
        raise AssertionError("%s\n%s" % (what, self.transcript()))

    # -- raw I/O

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_flood(self, data, chunk=16384, settle=0.01):
        """Send a large payload in chunks, stopping as soon as the server has
        answered or closed (so its stream error is not lost to a reset).
        Returns the number of bytes sent."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        sent = 0
        self.sock.settimeout(self.timeout)
        while sent < len(data):
            try:
                self.sock.sendall(data[sent:sent + chunk])
            except (OSError, ssl.SSLError):
                break
            sent += min(chunk, len(data) - sent)
            if self._readable(settle):
                break
        return sent

    def _readable(self, wait):
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        r, _, _ = select.select([self.sock], [], [], wait)
        return bool(r)

    def _read_some(self, deadline):
        """Read once; returns False at EOF. Raises on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(self.recv_size)
        except socket.timeout:
            raise
        except ssl.SSLError as e:
            self.tls_error = e
            data = b""
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.received += data
        self._feed(data)
        return True

    # -- XML

    def _new_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root = None
        self.stream_attrs = None
        self.stream_closed = False

    def _feed(self, data):
        try:
            self.parser.feed(data)
            for event, el in self.parser.read_events():
                if event == "start":
                    self.depth += 1
                    if self.depth == 1:
                        if el.tag != tag(NS_STREAM, "stream"):
                            self.fail("server stream does not start with <stream:stream>: %s"
                                      % el.tag)
                        self.root = el
                        self.stream_attrs = dict(el.attrib)
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.pending.append(el)
                        self.root.remove(el)
                    elif self.depth == 0:
                        self.stream_closed = True
        except ET.ParseError as e:
            self.fail("server sent XML that is not well-formed (%s)" % e)

    def _wait(self, cond, timeout, what):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            result = cond()
            if result is not None:
                return result
            if self.eof:
                raise StreamClosed("connection closed while waiting for %s\n%s"
                                   % (what, self.transcript()))
            try:
                self._read_some(deadline)
            except socket.timeout:
                self.fail("timed out waiting for %s" % what)

    def next(self, timeout=None, what="a stanza"):
        """The next top-level element from the server."""
        def take():
            if self.pending:
                return self.pending.pop(0)
            if self.stream_closed:
                raise StreamClosed("stream closed while waiting for %s\n%s"
                                   % (what, self.transcript()))
            return None
        return self._wait(take, timeout, what)

    def wait_for(self, pred, timeout=None, what="a matching stanza"):
        """The first queued or arriving element for which pred(el) is true."""
        def take():
            for i, el in enumerate(self.pending):
                if pred(el):
                    return self.pending.pop(i)
            if self.stream_closed:
                raise StreamClosed("stream closed while waiting for %s\n%s"
                                   % (what, self.transcript()))
            return None
        return self._wait(take, timeout, what)

    def expect_nothing(self, wait=0.5, pred=lambda el: True):
        """Assert no matching element arrives within `wait` seconds."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.eof and not self.stream_closed:
            try:
                self._read_some(deadline)
            except socket.timeout:
                break
        bad = [el for el in self.pending if pred(el)]
        assert not bad, "unexpected from server: %s" % "".join(show(e) for e in bad)

    def wait_header(self, timeout=None):
        return self._wait(lambda: self.stream_attrs, timeout, "the server's stream header")

    def expect_stream_error(self, timeout=None):
        """Wait for <stream:error/>, then for </stream:stream>; answer with our
        closing tag and expect the transport to close. Returns the condition."""
        err = self.wait_for(lambda e: e.tag == tag(NS_STREAM, "error"), timeout,
                            "a <stream:error/>")
        cond = stream_error_condition(err)
        if cond is None:
            self.fail("stream error without a condition: %s" % show(err))
        self.expect_close(timeout)
        return cond

    def expect_close(self, timeout=None):
        """The server closes the stream (</stream:stream>) and then the transport."""
        self._wait(lambda: True if (self.stream_closed or self.eof) else None, timeout,
                   "</stream:stream>")
        if not self.stream_closed:
            self.fail("transport closed without </stream:stream>")
        try:
            self.send("</stream:stream>")
        except (OSError, ssl.SSLError):
            pass
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                self._read_some(deadline)
            except socket.timeout:
                self.fail("transport still open %.0f s after </stream:stream>"
                          % (self.timeout if timeout is None else timeout))
            except AssertionError:
                # Bytes after the closing tag; the stream is over anyway.
                pass

    def close(self):
        try:
            if not self.eof and not self.stream_closed:
                self.sock.settimeout(1.0)
                self.sock.sendall(b"</stream:stream>")
        except (OSError, ssl.SSLError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- stream

    def stream_header(self, to=DOMAIN, declaration=True):
        decl = "<?xml version='1.0'?>" if declaration else ""
        to_attr = " to='%s'" % to if to is not None else ""
        return ("%s<stream:stream%s version='1.0' xml:lang='en' xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams'>" % (decl, to_attr))

    def open_stream(self, to=DOMAIN, declaration=True, timeout=None):
        """Send our header, check the server's, return its <stream:features/>."""
        self._new_parser()
        self.send(self.stream_header(to, declaration))
        attrs = self.wait_header(timeout)
        if attrs.get("version") != "1.0":
            self.fail("server stream header version is %r, not '1.0'" % attrs.get("version"))
        if not attrs.get("id"):
            self.fail("server stream header has no id")
        if to is not None and attrs.get("from") != to:
            self.fail("server stream header from=%r, expected %r" % (attrs.get("from"), to))
        self.features = self.next(timeout, "<stream:features/>")
        if self.features.tag != tag(NS_STREAM, "features"):
            self.fail("expected <stream:features/>, got %s" % show(self.features))
        return self.features

    def feature(self, ns, name):
        return None if self.features is None else self.features.find(tag(ns, name))

    def mechanisms(self):
        mechs = self.feature(NS_SASL, "mechanisms")
        if mechs is None:
            return []
        return [m.text.strip() for m in mechs.findall(tag(NS_SASL, "mechanism")) if m.text]

    def starttls(self, ctx=None, server_hostname=DOMAIN, reopen=True):
        """<starttls/>, expect <proceed/>, handshake, reopen the stream."""
        self.send("<starttls xmlns='%s'/>" % NS_TLS)
        el = self.next(what="<proceed/>")
        if el.tag != tag(NS_TLS, "proceed"):
            self.fail("expected <proceed/>, got %s" % show(el))
        if self.pending:
            self.fail("server sent data after <proceed/> before the TLS handshake")
        ctx = ctx or client_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        if reopen:
            return self.open_stream()
        return None

    # -- SASL

    def authenticate(self, user, password, mechanism="SCRAM-SHA-256"):
        """Authenticate and restart the stream; asserts success."""
        result = self.sasl(user, password, mechanism)
        if result.tag != tag(NS_SASL, "success"):
            self.fail("SASL %s as %s failed: %s" % (mechanism, user, show(result)))
        feats = self.open_stream()
        if feats.find(tag(NS_BIND, "bind")) is None:
            self.fail("no <bind/> in the features after SASL: %s" % show(feats))
        return feats

    def sasl(self, user, password, mechanism="SCRAM-SHA-256", **kw):
        """Run one SASL exchange; returns the final <success/> or <failure/>."""
        if mechanism == "PLAIN":
            return self.auth_plain(user, password)
        if mechanism.startswith("SCRAM-"):
            return self.auth_scram(user, password, mechanism, **kw)
        raise ValueError(mechanism)

    def _sasl_final(self, what):
        el = self.next(what=what)
        if el.tag not in (tag(NS_SASL, "success"), tag(NS_SASL, "failure"),
                          tag(NS_SASL, "challenge")):
            self.fail("expected a SASL element, got %s" % show(el))
        return el

    def auth_plain(self, user, password, authzid=""):
        msg = ("%s\0%s\0%s" % (authzid, user, password)).encode("utf-8")
        self.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>"
                  % (NS_SASL, base64.b64encode(msg).decode()))
        el = self._sasl_final("the PLAIN result")
        if el.tag == tag(NS_SASL, "challenge"):
            self.fail("unexpected challenge for PLAIN: %s" % show(el))
        self.authenticated = el.tag == tag(NS_SASL, "success")
        return el

    def auth_scram(self, user, password, mechanism="SCRAM-SHA-256", gs2_flag=None,
                   cb_data=None):
        """SCRAM (RFC 5802 / 7677). For -PLUS the channel binding is
        tls-server-end-point unless cb_data overrides the bytes. gs2_flag
        overrides the GS2 header flag ('n', 'y' or 'p=...')."""
        plus = mechanism.endswith("-PLUS")
        hname = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[
            mechanism[:-5] if plus else mechanism]
        if gs2_flag is None:
            gs2_flag = "p=tls-server-end-point" if plus else "n"
        gs2 = gs2_flag + ",,"
        if gs2_flag.startswith("p="):
            if cb_data is None:
                cb_data = server_end_point(self.sock.getpeercert(binary_form=True))
        else:
            cb_data = b""
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (_saslname(user), cnonce)
        self.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (
            NS_SASL, mechanism, base64.b64encode((gs2 + first_bare).encode()).decode()))
        el = self._sasl_final("the SCRAM server-first-message")
        if el.tag != tag(NS_SASL, "challenge"):
            self.authenticated = el.tag == tag(NS_SASL, "success")
            if self.authenticated:
                self.fail("SCRAM succeeded without a challenge")
            return el
        server_first = base64.b64decode(el.text or "").decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(",") if "=" in kv)
        nonce, salt, iters = attrs.get("r", ""), attrs.get("s", ""), attrs.get("i", "0")
        if not nonce.startswith(cnonce) or len(nonce) <= len(cnonce):
            self.fail("server nonce %r does not extend our nonce %r" % (nonce, cnonce))
        salted = hashlib.pbkdf2_hmac(hname, password.encode("utf-8"), base64.b64decode(salt),
                                     int(iters))
        client_key = hmac.new(salted, b"Client Key", hname).digest()
        stored_key = hashlib.new(hname, client_key).digest()
        without_proof = "c=%s,r=%s" % (base64.b64encode(gs2.encode() + cb_data).decode(), nonce)
        auth_message = ",".join((first_bare, server_first, without_proof)).encode()
        signature = hmac.new(stored_key, auth_message, hname).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        final = "%s,p=%s" % (without_proof, base64.b64encode(proof).decode())
        self.send("<response xmlns='%s'>%s</response>"
                  % (NS_SASL, base64.b64encode(final.encode()).decode()))
        el = self._sasl_final("the SCRAM outcome")
        server_key = hmac.new(salted, b"Server Key", hname).digest()
        expected_v = base64.b64encode(hmac.new(server_key, auth_message, hname).digest()).decode()
        if el.tag == tag(NS_SASL, "challenge"):
            # RFC 6120 6.4.6 allows the additional data in a challenge.
            data = base64.b64decode(el.text or "").decode()
            if data != "v=" + expected_v:
                self.fail("bad SCRAM server signature %r" % data)
            self.send("<response xmlns='%s'/>" % NS_SASL)
            el = self._sasl_final("the SCRAM success")
            if el.tag == tag(NS_SASL, "success") and (el.text or "").strip():
                self.fail("<success/> carries data again after the challenge")
        elif el.tag == tag(NS_SASL, "success"):
            data = base64.b64decode(el.text or "").decode()
            if data != "v=" + expected_v:
                self.fail("bad or missing SCRAM server signature in <success/>: %r" % data)
        self.authenticated = el.tag == tag(NS_SASL, "success")
        return el

    # -- stanzas

    @classmethod
    def new_id(cls, prefix="t"):
        return "%s%d" % (prefix, next(cls._ids))

    def iq(self, type_, payload="", to=None, timeout=None, iq_id=None):
        """Send an IQ and return the reply with the same id."""
        iq_id = iq_id or self.new_id("iq")
        to_attr = " to='%s'" % xml_escape(to) if to is not None else ""
        self.send("<iq type='%s' id='%s'%s>%s</iq>" % (type_, iq_id, to_attr, payload))
        return self.wait_for(
            lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("id") == iq_id
            and e.get("type") in ("result", "error"), timeout, "the reply to iq %s" % iq_id)

    def bind_request(self, resource=None):
        inner = "<resource>%s</resource>" % xml_escape(resource) if resource else ""
        return self.iq("set", "<bind xmlns='%s'>%s</bind>" % (NS_BIND, inner))

    def bind(self, resource=None):
        reply = self.bind_request(resource)
        if reply.get("type") != "result":
            self.fail("bind failed: %s" % show(reply))
        jid_el = reply.find("%s/%s" % (tag(NS_BIND, "bind"), tag(NS_BIND, "jid")))
        if jid_el is None or not jid_el.text:
            self.fail("bind result without <jid/>: %s" % show(reply))
        self.jid = jid_el.text.strip()
        return self.jid

    def ping(self, to=DOMAIN, timeout=None):
        return self.iq("get", "<ping xmlns='%s'/>" % NS_PING, to=to, timeout=timeout)

    def assert_ping(self, to=DOMAIN, timeout=None):
        reply = self.ping(to, timeout)
        if reply.get("type") != "result":
            self.fail("ping to %s did not return a result: %s" % (to, show(reply)))
        return reply

    def message(self, to, body, type_="chat", msg_id=None):
        msg_id = msg_id or self.new_id("m")
        self.send("<message to='%s' type='%s' id='%s'><body>%s</body></message>"
                  % (xml_escape(to), type_, msg_id, xml_escape(body)))
        return msg_id

    def wait_message(self, pred=lambda e: True, timeout=None, what="a message"):
        return self.wait_for(lambda e: e.tag == tag(NS_CLIENT, "message") and pred(e),
                             timeout, what)


def body_of(el):
    b = el.find(tag(NS_CLIENT, "body"))
    return None if b is None else (b.text or "")


def stanza_error_condition(el):
    err = el.find(tag(NS_CLIENT, "error"))
    if err is None:
        return None
    for child in err:
        if ns_of(child.tag) == NS_STANZA_ERRORS and local(child.tag) != "text":
            return local(child.tag)
    return None


def stream_error_condition(el):
    for child in el:
        if ns_of(child.tag) == NS_STREAM_ERRORS and local(child.tag) != "text":
            return local(child.tag)
    return None


def sasl_failure_condition(el):
    for child in el:
        if ns_of(child.tag) == NS_SASL and local(child.tag) != "text":
            return local(child.tag)
    return None


def scram_server_first(server, user, mechanism):
    """The SCRAM server-first-message the server sends for `user`, as a dict
    (r, s, i), from a fresh STARTTLS connection that is then closed."""
    c = XmppClient.connect(server.starttls_port)
    try:
        c.open_stream()
        c.starttls()
        first = "n,,n=%s,r=fixednonce0123456789" % _saslname(user)
        c.send("<auth xmlns='%s' mechanism='%s'>%s</auth>"
               % (NS_SASL, mechanism, base64.b64encode(first.encode()).decode()))
        el = c.next(what="the SCRAM challenge")
        if el.tag != tag(NS_SASL, "challenge"):
            c.fail("expected a SCRAM challenge, got %s" % show(el))
        text = base64.b64decode(el.text).decode()
        return dict(kv.split("=", 1) for kv in text.split(","))
    finally:
        c.close()


def subscribe(requester, requester_user, contact, contact_user):
    """requester subscribes to contact's presence and contact approves
    (RFC 6121 section 3.1), over the wire. Both resources ask for the roster
    (interested, section 2.1.6); the contact becomes available."""
    for c in (requester, contact):
        c.iq("get", "<query xmlns='jabber:iq:roster'/>")
    contact.send("<presence/>")
    requester.send("<presence type='subscribe' to='%s'/>" % bare_jid(contact_user))
    contact.wait_for(lambda e: e.tag == tag(NS_CLIENT, "presence") and e.get("type") == "subscribe"
                     and e.get("from") == bare_jid(requester_user), what="the subscription request")
    contact.send("<presence type='subscribed' to='%s'/>" % bare_jid(requester_user))
    # The roster push to the requester (section 3.1.6) says it is done.
    requester.wait_for(lambda e: e.tag == tag(NS_CLIENT, "iq") and e.get("type") == "set" and any(
        i.get("jid") == bare_jid(contact_user) and i.get("subscription") in ("to", "both")
        for i in e.iter("{jabber:iq:roster}item")), what="the roster push of the approval")


@contextlib.contextmanager
def forbidden_syscall_hook(srv, call):
    """Test builds (HEARTH_TEST_HOOKS): a process that gets SIGUSR2 tries the
    system call HEARTH_TEST_SYSCALL names. Sets it for the servers started
    inside the block; afterwards restores the environment and stops and
    removes `srv`."""
    old = os.environ.get("HEARTH_TEST_SYSCALL")
    os.environ["HEARTH_TEST_SYSCALL"] = call
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HEARTH_TEST_SYSCALL", None)
        else:
            os.environ["HEARTH_TEST_SYSCALL"] = old
        srv.send_sigterm()
        srv.wait_exit(15)
        srv.cleanup()
