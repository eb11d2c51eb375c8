#!/usr/bin/python3
"""make bench-compare: Hearth and Prosody side by side, measured by hearth-bench.

Runs, one after the other on loopback only:
  - hearth        the built binary with its default module set (MAM, carbons,
                  SM, limits, sandbox), a temp INI and data dir;
  - prosody       Debian's Prosody 0.12, minimal (roster, TLS, SCRAM, disco, ping);
  - prosody-mam   the same plus mam, carbons, smacks, csi, blocklist, vcard,
                  private, pep, time, version, last activity (about Hearth's set);
each with the same self-signed EC P-256 certificate, the same users and
passwords (SCRAM-SHA-256, 4096 iterations), STARTTLS, and the same
hearth-bench scenarios. Then prints every figure side by side and the ratios
Hearth / Prosody. Headline figures: server CPU per message and KiB per session
(at 10 000 sessions by default).

A reference row comes from `hearth-bench echo-server`, a bare wolfSSL TLS
relay driven by the `messages` load (scenario `echo`): the CPU a message costs
any TLS server before it does any XMPP.

With --runs N every server (and the echo reference) is started afresh N times
and each figure is the median of the N runs.

Prosody is installed from Debian when missing (as root: apt-get install -y
prosody; Debian's policy-rc.d or a missing init keeps the system service from
starting). It runs as our own process with its own config file, data dir and
pidfile in a temp dir; /etc/prosody is never touched.

  /usr/bin/python3 tests/bench/compare.py --hearth build/hearth --bench build-bench/hearth-bench
"""

import argparse
import hashlib
import statistics
import hmac
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DOMAIN = "localhost"
USER_PATTERN = "bench%d"
# 10+ characters, without the user name or the domain (Hearth's policy).
PASSWORD_PATTERN = "bench-pass-%d-xq"
ITERATIONS = 4096

PROSODY_MINIMAL = ["roster", "saslauth", "tls", "disco", "ping", "posix"]
PROSODY_FULL = PROSODY_MINIMAL + ["mam", "carbons", "smacks", "csi_simple", "blocklist",
                                  "vcard_legacy", "private", "pep", "time", "version",
                                  "lastactivity"]

# (metric, label, lower is better) for the headline section.
HEADLINE = [
    ("messages.cpu_per_message", "server CPU per routed chat message (us)"),
    ("footprint.s{big}_pss_per_session", "KiB per TLS session, PSS ({big} sessions)"),
    ("footprint.s{big}_private_dirty_per_session",
     "KiB per TLS session, private dirty ({big} sessions)"),
    ("footprint.s{big}_rss_per_session", "KiB per TLS session, RSS ({big} sessions)"),
    ("footprint.idle_pss", "idle PSS, all processes (KiB)"),
    ("footprint.idle_private_dirty", "idle private dirty, all processes (KiB)"),
    ("footprint.idle_rss", "idle RSS, all processes (KiB)"),
    ("logins.cpu_per_login", "server CPU per full login (ms)"),
    ("presence.cpu_per_recipient", "server CPU per presence recipient (us)"),
]
# Reference rows from the bare wolfSSL TLS relay (hearth-bench echo-server).
ECHO_ROWS = [
    ("echo.cpu_per_message", "bare wolfSSL TLS echo CPU per message (us)"),
    ("echo.s{big}_pss_per_connection", "bare wolfSSL TLS session, PSS KiB ({big} idle)"),
    ("echo.s{big}_private_dirty_per_connection",
     "bare wolfSSL TLS session, private dirty KiB ({big})"),
]
LABEL_WIDTH = 52


def log(msg):
    print("bench-compare: " + msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stream_answers(port):
    """True once a stream header on `port` gets <stream:features>."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                      b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            s.settimeout(1.0)
            got = b""
            deadline = time.monotonic() + 1.0
            while b"features" not in got and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            return b"features" in got
    except OSError:
        return False


def wait_ready(proc, port, what, log_path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not stream_answers(port):
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s:\n%s"
                               % (what, proc.returncode, log_path, tail(log_path)))
        if time.monotonic() > deadline:
            raise RuntimeError("%s does not answer on port %d; see %s:\n%s"
                               % (what, port, log_path, tail(log_path)))
        time.sleep(0.1)


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(proc, timeout=15.0):
    """SIGTERM the process group we started, then SIGKILL what is left."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except OSError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(5)


def snapshot_dir(path):
    """Keeps a copy of a stopped server's data (accounts only) for later runs."""
    subprocess.run(["cp", "-a", path, path + ".pristine"], check=True)


def restore_dir(path):
    """Puts the data back as snapshot_dir() found it: each run starts alike.
    The copy is written back to disk before the server starts: pages of a
    file still dirty from cp, once a server maps the file (Hearth's LMDB),
    count as that process's private dirty memory."""
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["cp", "-a", path + ".pristine", path], check=True)
    os.sync()


def wait_tcp(proc, port, what, log_path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s; see %s:\n%s"
                               % (what, proc.returncode, log_path, tail(log_path)))
        if time.monotonic() > deadline:
            raise RuntimeError("%s does not listen on port %d" % (what, port))
        time.sleep(0.1)


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30", "-subj",
                    "/CN=" + DOMAIN, "-addext", "subjectAltName=DNS:" + DOMAIN,
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)  # read by the servers' own users; a throw-away key
    return cert, key


# --------------------------------------------------------------------------
# Hearth


class Hearth:
    label = "hearth"

    def __init__(self, binary, root, cert, key, users, max_sessions):
        self.binary = os.path.abspath(binary)
        self.dir = os.path.join(root, "hearth")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.ini = os.path.join(self.dir, "hearth.ini")
        self.log_path = os.path.join(self.dir, "hearth.log")
        self.port = free_port()
        self.users = users
        self.proc = None
        settings = {
            "server": {"domain": DOMAIN, "data_dir": os.path.join(self.dir, "data")},
            "tls": {"certificate": cert, "key": key},
            "c2s": {"interfaces": "127.0.0.1", "port": self.port, "direct_tls_port": free_port()},
            "auth": {"scram_iterations": ITERATIONS},
            "log": {"level": "warn"},  # Prosody logs at warn too
            # The per-IP and per-account limits guard against abuse; a load
            # generator on loopback is that on purpose, so lift them.
            "limits": {"max_connections": max(2000, max_sessions * 2 + 100),
                       "max_per_ip": 100000, "connect_rate": 100000,
                       "c2s_rate": 100000000, "c2s_burst": 100000000,
                       "subscriptions_per_minute": 100000,
                       "stranger_messages_per_minute": 100000},
        }
        if os.geteuid() == 0:
            settings["server"]["user"] = "nobody"
        with open(self.ini, "w") as f:
            for section, keys in settings.items():
                f.write("[%s]\n" % section)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def create_users(self):
        t0 = time.monotonic()
        pwdir = tempfile.mkdtemp(prefix="pw-", dir=self.dir)

        def add(i):
            path = os.path.join(pwdir, "%d" % i)
            with open(path, "w") as f:
                f.write(PASSWORD_PATTERN % i + "\n")
            r = subprocess.run([self.binary, "user", "add", "%s@%s" % (USER_PATTERN % i, DOMAIN),
                                "--password-file", path, "-c", self.ini],
                               capture_output=True, text=True)
            os.unlink(path)
            if r.returncode != 0 and "exists" not in (r.stdout + r.stderr):
                raise RuntimeError("hearth user add %d: %s %s" % (i, r.stdout, r.stderr))

        add(0)  # creates the database alone first
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(add, range(1, self.users)))
        os.rmdir(pwdir)
        log("hearth: %d accounts in %.1f s" % (self.users, time.monotonic() - t0))

    def snapshot(self):
        snapshot_dir(os.path.join(self.dir, "data"))

    def restore(self):
        restore_dir(os.path.join(self.dir, "data"))

    def start(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "run", "-c", self.ini], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        wait_ready(self.proc, self.port, "hearth", self.log_path)
        return self.proc.pid

    def stop(self):
        stop(self.proc)


# --------------------------------------------------------------------------
# Prosody


_PROSODY_RECORDS = {}


def prosody_account(i):
    """Prosody's internal_hashed record for user i (SCRAM-SHA-256)."""
    if i in _PROSODY_RECORDS:
        return _PROSODY_RECORDS[i]
    password = (PASSWORD_PATTERN % i).encode()
    salt = str(uuid.uuid4())
    salted = hashlib.pbkdf2_hmac("sha256", password, salt.encode(), ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).hexdigest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).hexdigest()
    record = ('return {\n\t["iteration_count"] = %d;\n\t["salt"] = "%s";\n'
              '\t["server_key"] = "%s";\n\t["stored_key"] = "%s";\n};\n'
              % (ITERATIONS, salt, server_key, stored_key))
    _PROSODY_RECORDS[i] = record
    return record


def lua_encode(name):
    """Prosody's datamanager file-name encoding."""
    return "".join(c if c.isalnum() else "%%%02x" % ord(c) for c in name)


class Prosody:
    def __init__(self, root, cert, key, users, modules, label, max_sessions):
        self.label = label
        self.dir = os.path.join(root, label)
        os.makedirs(os.path.join(self.dir, "data"))
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.port = free_port()
        self.users = users
        self.proc = None
        with open(self.cfg, "w") as f:
            f.write("""-- hearth bench-compare: a throw-away Prosody on loopback
run_as_root = true
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
admin_socket = "{d}/prosody.sock"
log = {{ {{ levels = {{ min = "warn" }}, to = "file", filename = "{d}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {dport} }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
component_ports = {{ }}
modules_enabled = {{ {mods} }}
modules_disabled = {{ "s2s" }}
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = {iters}
storage = "internal"
c2s_require_encryption = true
allow_registration = false
archive_expires_after = "1w"
default_archive_policy = true
max_archive_query_results = 50
certificates = "{certdir}"
ssl = {{ certificate = "{cert}", key = "{key}" }}
VirtualHost "{domain}"
  ssl = {{ certificate = "{cert}", key = "{key}" }}
""".format(d=self.dir, port=self.port, dport=free_port(),
           mods=", ".join('"%s"' % m for m in modules), iters=ITERATIONS, cert=cert,
           key=key, domain=DOMAIN, certdir=os.path.dirname(cert)))

    def create_users(self):
        t0 = time.monotonic()
        accounts = os.path.join(self.dir, "data", lua_encode(DOMAIN), "accounts")
        os.makedirs(accounts)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            records = list(pool.map(prosody_account, range(self.users)))  # PBKDF2 drops the GIL
        for i, record in enumerate(records):
            with open(os.path.join(accounts, lua_encode(USER_PATTERN % i) + ".dat"), "w") as f:
                f.write(record)
        log("%s: %d accounts in %.1f s" % (self.label, self.users, time.monotonic() - t0))

    def snapshot(self):
        snapshot_dir(os.path.join(self.dir, "data"))

    def restore(self):
        restore_dir(os.path.join(self.dir, "data"))

    def start(self):
        logf = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(["prosody", "-F", "--config", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        wait_ready(self.proc, self.port, "prosody", os.path.join(self.dir, "stdout.log"))
        return self.proc.pid

    def stop(self):
        stop(self.proc)


class EchoServer:
    """hearth-bench echo-server: the bare wolfSSL TLS relay (reference row)."""
    label = "echo"

    def __init__(self, bench, root, cert, key):
        self.bench = os.path.abspath(bench)
        self.dir = os.path.join(root, "echo")
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "echo.log")
        self.port = free_port()
        self.cert, self.key = cert, key
        self.proc = None

    def start(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.bench, "echo-server", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--cert", self.cert, "--key", self.key],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        wait_tcp(self.proc, self.port, "hearth-bench echo-server", self.log_path)
        return self.proc.pid

    def stop(self):
        stop(self.proc)


def ensure_packages(need_prosody):
    """Prosody (and openssl, for the shared certificate) from Debian."""
    missing = [pkg for pkg, cmd in (("prosody", "prosody"), ("openssl", "openssl"))
               if (need_prosody or pkg != "prosody") and not shutil.which(cmd)]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit("bench-compare: missing %s; install as root: apt-get install -y %s"
                 % (", ".join(missing), " ".join(missing)))
    log("installing %s from Debian (apt-get install -y)" % " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y"] + missing, check=True, env=env,
                   stdout=subprocess.DEVNULL)
    for pkg in missing:
        if not shutil.which(pkg):
            sys.exit("bench-compare: %s is still missing after apt-get install" % pkg)


# --------------------------------------------------------------------------


def run_bench(args, server, pid, scenarios, out_json):
    cmd = [args.bench, "--host", "127.0.0.1", "--port", str(server.port), "--domain", DOMAIN,
           "--user-pattern", USER_PATTERN, "--password-pattern", PASSWORD_PATTERN,
           "--users", str(server.users), "--tls", "starttls", "--mech", "SCRAM-SHA-256",
           "--pid", str(pid), "--steps", args.steps, "--logins", str(args.logins),
           "--pairs", str(args.pairs), "--duration", str(args.duration),
           "--roster", str(args.roster), "--rounds", str(args.rounds),
           "--mam-fill", str(args.mam_fill), "--mam-queries", str(args.mam_queries),
           "--settle", str(args.settle), "--json", out_json, "--label", server.label] + scenarios
    log("%s: %s" % (server.label, " ".join(cmd)))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        log("%s: hearth-bench exited with %d (figures that were measured are kept)"
            % (server.label, r.returncode))
    try:
        with open(out_json) as f:
            return json.load(f)["metrics"]
    except (OSError, ValueError):
        return {}


def run_echo(args, server, pid, out_json):
    cmd = [args.bench, "--host", "127.0.0.1", "--port", str(server.port), "--pid", str(pid),
           "--pairs", str(args.pairs), "--duration", str(args.duration), "--steps",
           str(max(int(x) for x in args.steps.split(","))),
           "--json", out_json, "--label", server.label, "echo"]
    log("echo: %s" % " ".join(cmd))
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        log("echo: hearth-bench exited with %d" % r.returncode)
    try:
        with open(out_json) as f:
            return json.load(f)["metrics"]
    except (OSError, ValueError):
        return {}


def median_metrics(runs):
    """Per figure, the median over the runs that measured it."""
    keys = []
    for metrics in runs:
        for k in metrics:
            if k not in keys:
                keys.append(k)
    out = {}
    for k in keys:
        values = [m[k]["value"] for m in runs if k in m and m[k].get("value") is not None]
        unit = next(m[k].get("unit", "") for m in runs if k in m)
        out[k] = {"value": statistics.median(values) if values else None, "unit": unit}
    return out


def raise_nofile(want):
    """Descriptors for `want` connections here and in the servers we start (inherited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(want, hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        log("warning: RLIMIT_NOFILE is %d, %d wanted" % (soft, want))


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)


def print_table(results, order, big, echo=None):
    labels = [label for label, _ in results]
    data = dict(results)
    keys = []
    for _, metrics in results:
        for k in metrics:
            if k not in keys:
                keys.append(k)
    units = {}
    for _, metrics in results:
        for k, m in metrics.items():
            units[k] = m.get("unit", "")

    def val(label, key):
        m = data.get(label, {}).get(key)
        return None if m is None else m.get("value")

    others = [lab for lab in labels if lab != "hearth"]
    head = "%-*s %-5s" % (LABEL_WIDTH, "figure", "unit") + "".join(" %12s" % lab for lab in labels)
    head += "".join(" %12s" % ("H/" + ("P" if lab == "prosody" else "P+MAM"
                                         if lab == "prosody-mam" else lab)) for lab in others)
    print()
    print("== Headline (lower is better; ratio < 1 means Hearth is cheaper)")
    print(head)
    for key, what in HEADLINE:
        key = key.format(big=big)
        line = "%-*s %-5s" % (LABEL_WIDTH, what.format(big=big)[:LABEL_WIDTH], "")
        line += "".join(" %12s" % fmt(val(lab, key)) for lab in labels)
        line += "".join(" %12s" % ratio(val("hearth", key), val(lab, key)) for lab in others)
        print(line)
    if echo is not None:
        print()
        print("== Reference: a bare wolfSSL TLS relay (hearth-bench echo-server), same load;")
        print("   the ratios are each server's figure over it")
        short = {"hearth": "H", "prosody": "P", "prosody-mam": "P+MAM"}
        print("%-*s %-5s %12s" % (LABEL_WIDTH, "figure", "", "echo")
              + "".join(" %12s" % ("%s/echo" % short.get(lab, lab))[:12] for lab in labels))
        per_server = ["messages.cpu_per_message", "footprint.s{big}_pss_per_session",
                      "footprint.s{big}_private_dirty_per_session"]
        for (key, what), mine in zip(ECHO_ROWS, per_server):
            e = (echo.get(key.format(big=big)) or {}).get("value")
            line = "%-*s %-5s %12s" % (LABEL_WIDTH, what.format(big=big)[:LABEL_WIDTH], "", fmt(e))
            line += "".join(" %12s" % ratio(val(lab, mine.format(big=big)), e) for lab in labels)
            print(line)
    print()
    print("== All figures")
    print(head)
    for key in keys:
        line = "%-*s %-5s" % (LABEL_WIDTH, key[:LABEL_WIDTH], units.get(key, "")[:5])
        line += "".join(" %12s" % fmt(val(lab, key)) for lab in labels)
        line += "".join(" %12s" % ratio(val("hearth", key), val(lab, key)) for lab in others)
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hearth", default=os.path.join(REPO, "build", "hearth"))
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "hearth-bench"))
    ap.add_argument("--servers", default="hearth,prosody,prosody-mam")
    ap.add_argument("--scenarios", default="footprint,logins,messages,presence,mam")
    ap.add_argument("--steps", default="100,1000,10000")
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--roster", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--mam-fill", type=int, default=2000)
    ap.add_argument("--mam-queries", type=int, default=20)
    ap.add_argument("--settle", type=float, default=12.0,
                    help="seconds of quiet before each memory reading, idle and after the "
                    "last login of a footprint step (what a server keeps once it has nothing "
                    "to do: Hearth releases a quiet stream's XML parser after 5-10 s and its "
                    "keyholder's signing table after 3 s)")
    ap.add_argument("--runs", type=int, default=1,
                    help="start each server afresh N times; report each figure's median")
    ap.add_argument("--no-echo", action="store_true",
                    help="skip the bare wolfSSL TLS echo reference")
    ap.add_argument("--json", help="write every server's figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = ap.parse_args()

    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for path, what in ((args.bench, "hearth-bench"), (args.hearth, "hearth")):
        if "hearth" in servers or what == "hearth-bench":
            if not os.access(path, os.X_OK):
                sys.exit("bench-compare: no %s at %s (build it first)" % (what, path))
    ensure_packages(any(s.startswith("prosody") for s in servers))
    steps = sorted(int(x) for x in args.steps.split(","))
    big = steps[-1]
    users = max(big, 2 * args.pairs, args.roster + 1, 2)
    runs = max(1, args.runs)
    raise_nofile(big + 1024)  # per process: hearth-bench or a server, one at a time

    root = tempfile.mkdtemp(prefix="hearth-bench-compare-")
    os.chmod(root, 0o755)
    results = []
    echo = None
    try:
        cert, key = make_cert(root)
        for name in servers:
            if name == "hearth":
                server = Hearth(args.hearth, root, cert, key, users, big)
                todo = scenarios
            elif name == "prosody":
                server = Prosody(root, cert, key, users, PROSODY_MINIMAL, name, big)
                todo = [s for s in scenarios if s != "mam"]  # no mod_mam in the minimal set
            elif name == "prosody-mam":
                server = Prosody(root, cert, key, users, PROSODY_FULL, name, big)
                todo = scenarios
            else:
                sys.exit("bench-compare: unknown server %s" % name)
            server.create_users()
            server.snapshot()
            measured = []
            for run in range(runs):
                if run > 0:
                    server.restore()
                try:
                    pid = server.start()
                    time.sleep(1.0)  # let start-up settle before the idle reading
                    measured.append(run_bench(args, server, pid, todo,
                                              os.path.join(root, "%s-%d.json" % (name, run))))
                finally:
                    server.stop()
            results.append((name, median_metrics(measured)))
        if not args.no_echo:
            server = EchoServer(args.bench, root, cert, key)
            measured = []
            for run in range(runs):
                try:
                    pid = server.start()
                    time.sleep(0.5)
                    measured.append(run_echo(args, server, pid,
                                             os.path.join(root, "echo-%d.json" % run)))
                finally:
                    server.stop()
            echo = median_metrics(measured)
    finally:
        if args.keep:
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        out = dict(results)
        if echo is not None:
            out["echo"] = echo
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    print_table(results, servers, big, echo)


if __name__ == "__main__":
    main()
