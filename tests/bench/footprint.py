#!/usr/bin/env python3
"""hearth footprint benchmark (run on demand: `make bench`).

Reports, for the real binary on loopback:
  - binary size (stripped),
  - time from `hearth run` to accepting connections (the 'server: ready' line
    and a successful TCP connect), best and median of several starts,
  - RSS and PSS idle per process (monitor, reactor, keyholder, auth), and
    with N clients logged in (TLS + SCRAM + bind) and available, and the RSS
    cost per client,
  - login latency: the median of 200 sequential logins,
  - RSS with 1000 users logged in and available, each with 50 roster items
    (issue 4's figure; --roster-users/--roster-items change it),
  - the memory a XEP-0198 session holds while it waits for its client to
    resume it (--sm-sessions; issue 5's figure).
Numbers only; no pass/fail thresholds (these machines are noisy).
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import hearthtest  # noqa: E402


def rollup(pid):
    """(RSS, PSS) in KiB of one process."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                out[parts[0][:-1]] = int(parts[1])
    return out["Rss"], out["Pss"]


def processes(monitor_pid):
    """[(name, pid)]: the monitor and its children (by --role=), if any."""
    procs = [("monitor", monitor_pid)]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[-1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if ppid != monitor_pid:
            continue
        for a in args:
            if a.startswith(b"--role="):
                procs.append((a[7:].decode(), int(entry)))
    return procs


def rss_kib(monitor_pid):
    """Total RSS of the server's processes."""
    return sum(rollup(pid)[0] for _, pid in processes(monitor_pid))


def report_processes(monitor_pid, label):
    total_rss = total_pss = 0
    for name, pid in processes(monitor_pid):
        rss, pss = rollup(pid)
        total_rss += rss
        total_pss += pss
        print("  %-10s RSS %6d KiB  PSS %6d KiB  (%s)" % (name, rss, pss, label))
    print("  %-10s RSS %6d KiB  PSS %6d KiB  (%s)" % ("total", total_rss, total_pss, label))


def login_latency_ms(srv, count):
    """Sequential logins (TCP, STARTTLS, SCRAM-SHA-256, bind) timed one by one."""
    times = []
    for i in range(count):
        t0 = time.monotonic()
        c = hearthtest.XmppClient.login(srv, "u0", "bench-0-qk7w-long", resource="lat%d" % i)
        times.append((time.monotonic() - t0) * 1000.0)
        c.close()
    return times


def stripped_size(binary):
    tmp = tempfile.mktemp(prefix="hearth-stripped-")
    try:
        subprocess.run(["strip", "-o", tmp, binary], check=True)
        return os.path.getsize(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def stream_answers(port):
    """True once the server answers a stream header on `port` (the listening
    socket alone, bound by the monitor, is not yet a working server)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                      b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
            s.settimeout(0.2)
            return b"<stream:features>" in s.recv(4096)
    except OSError:
        return False


def startup_ms(rounds):
    """Time from spawning `hearth run` until the server answers a stream
    header with its features (polled every 0.5 ms). The first start generates the
    certificate; later ones reuse it."""
    times = []
    srv = hearthtest.HearthServer(log_level="info", name="bench-start")
    try:
        for _ in range(rounds):
            port = free_port()
            srv.settings["c2s"]["port"] = str(port)
            srv.write_config()
            log = open(srv.log_path, "wb")
            t0 = time.monotonic()
            proc = subprocess.Popen([hearthtest.hearth_bin(), "run", "-c", srv.ini_path],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            while not stream_answers(port):
                if proc.poll() is not None or time.monotonic() - t0 > 20:
                    raise RuntimeError("hearth did not start; see " + srv.log_path)
                time.sleep(0.0005)
            times.append((time.monotonic() - t0) * 1000.0)
            proc.terminate()
            proc.wait(10)
            log.close()
    finally:
        srv.cleanup()
    return times


def roster_footprint(users, items):
    """RSS with `users` accounts logged in, each with `items` roster items."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < users + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, users + 200), hard))
    srv = hearthtest.HearthServer(overrides={"auth": {"scram_iterations": "4096"}},
                                  log_level="info", name="bench-roster")
    clients = []
    try:
        srv.start()
        t0 = time.monotonic()
        for i in range(users):
            srv.add_user("r%d" % i, "bench-%d-qk7w-long" % i)
        print("created %d accounts in %.1f s" % (users, time.monotonic() - t0))
        time.sleep(0.2)
        idle = rss_kib(srv.proc.pid)
        t0 = time.monotonic()
        for i in range(users):
            c = hearthtest.XmppClient.login(srv, "r%d" % i, "bench-%d-qk7w-long" % i, resource="bench")
            clients.append(c)
            sets = []
            for k in range(1, items + 1):
                contact = "r%d@%s" % ((i + k) % users, hearthtest.DOMAIN)
                sets.append("<iq type='set' id='r%d'><query xmlns='jabber:iq:roster'>"
                            "<item jid='%s' name='Contact %d'><group>Bench</group></item>"
                            "</query></iq>" % (k, contact, k))
            c.send("".join(sets))
            for k in range(1, items + 1):
                c.wait_for(lambda el, k=k: el.get("id") == "r%d" % k and el.get("type") == "result",
                           what="roster set result r%d" % k)
            c.send("<presence/>")
        t1 = time.monotonic()
        for c in clients:
            c.wait_for(lambda el: hearthtest.local(el.tag) == "presence", what="own presence")
        time.sleep(0.5)
        loaded = rss_kib(srv.proc.pid)
        print("%d users logged in and available, %d roster items each (%d items), set up in "
              "%.1f s: RSS %d KiB in all (%.1f KiB per user over idle %d KiB)"
              % (users, items, users * items, t1 - t0, loaded,
                 (loaded - idle) / float(users), idle))
        report_processes(srv.proc.pid, "%d users x %d items" % (users, items))
        data = os.path.join(srv.data_dir, "data.mdb")
        if os.path.exists(data):
            print("data.mdb: %d KiB on disk" % (os.path.getsize(data) // 1024))
        srv.assert_alive()
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        srv.stop()
        srv.cleanup()


def pid_of_role(monitor_pid, role):
    for name, pid in processes(monitor_pid):
        if name == role:
            return pid
    raise AssertionError("no %s process" % role)


def sm_detached_footprint(sessions, queued):
    """Reactor RSS per XEP-0198 session waiting for resumption.

    Each client logs in, enables resumable SM, sends initial presence, gets
    `queued` messages it does not acknowledge, then drops its TCP connection
    without closing the stream. One at a time, so the TLS state of each
    connection is freed before the next: the RSS that stays is what the
    detached sessions hold (session, SM queue, module state)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1024), hard))
    srv = hearthtest.HearthServer(overrides={"auth": {"scram_iterations": "4096"},
                                             "smacks": {"resume_timeout": "3600"}},
                                  log_level="info", name="bench-sm")
    try:
        srv.start()
        for i in range(sessions + 1):
            srv.add_user("s%d" % i, "bench-%d-qk7w-long" % i)
        srv.add_user("sender", "bench-qk7w-from-it")
        sender = hearthtest.XmppClient.login(srv, "sender", "bench-qk7w-from-it", resource="bench")
        reactor = pid_of_role(srv.proc.pid, "reactor")

        def one(i):
            c = hearthtest.XmppClient.login(srv, "s%d" % i, "bench-%d-qk7w-long" % i, resource="phone")
            c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/><presence/>")
            c.wait_for(lambda el: hearthtest.local(el.tag) == "enabled", what="<enabled/>")
            c.wait_for(lambda el: hearthtest.local(el.tag) == "presence", what="own presence")
            if queued:
                body = "".join("<message to='s%d@%s/phone' type='chat' id='q%d'><body>queued "
                               "message number %d for the phone</body></message>"
                               % (i, hearthtest.DOMAIN, k, k) for k in range(queued))
                sender.send(body)
                c.wait_for(lambda el: el.get("id") == "q%d" % (queued - 1), what="last message")
            c.sock.close()  # no </stream:stream>: the session waits for a resume

        one(sessions)  # warm-up: allocator pools, first TLS session
        time.sleep(0.3)
        before = rollup(reactor)[0]
        t0 = time.monotonic()
        for i in range(sessions):
            one(i)
        sender.send("<iq type='get' id='settle'><ping xmlns='urn:xmpp:ping'/></iq>")
        sender.wait_for(lambda el: el.get("id") == "settle", what="ping result")
        time.sleep(0.5)
        after = rollup(reactor)[0]
        print("%d detached XEP-0198 sessions, %d unacknowledged messages each, made in %.1f s: "
              "reactor RSS %d -> %d KiB, %.2f KiB per waiting session"
              % (sessions, queued, time.monotonic() - t0, before, after,
                 (after - before) / float(sessions)))
        srv.assert_alive()
        sender.close()
    finally:
        srv.stop()
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--logins", type=int, default=200)
    ap.add_argument("--roster-users", type=int, default=1000)
    ap.add_argument("--roster-items", type=int, default=50)
    ap.add_argument("--only-roster", action="store_true")
    ap.add_argument("--sm-sessions", type=int, default=1000)
    ap.add_argument("--sm-queued", type=int, default=0)
    ap.add_argument("--only-sm", action="store_true")
    args = ap.parse_args()
    if args.only_sm:
        sm_detached_footprint(args.sm_sessions, args.sm_queued)
        return
    if args.only_roster:
        roster_footprint(args.roster_users, args.roster_items)
        return
    binary = hearthtest.hearth_bin()
    print("binary: %s" % binary)
    print("binary size: %d bytes unstripped, %d bytes stripped"
          % (os.path.getsize(binary), stripped_size(binary)))
    t = startup_ms(args.starts)
    later = t[1:] or t
    print("start to accepting connections: %.1f ms on first start (generates the "
          "certificate); later starts best %.1f ms, median %.1f ms over %d"
          % (t[0], min(later), statistics.median(later), len(later)))

    srv = hearthtest.HearthServer(log_level="info", name="bench-rss")
    clients = []
    try:
        srv.start()
        for i in range(args.clients):
            srv.add_user("u%d" % i, "bench-%d-qk7w-long" % i)
        time.sleep(0.2)
        idle = rss_kib(srv.proc.pid)
        print("RSS idle: %d KiB (all processes)" % idle)
        report_processes(srv.proc.pid, "idle")
        lat = sorted(login_latency_ms(srv, args.logins))
        print("login latency over %d sequential logins (STARTTLS + SCRAM-SHA-256 + bind): "
              "median %.2f ms, p90 %.2f ms"
              % (len(lat), statistics.median(lat), lat[int(len(lat) * 0.9)]))
        t0 = time.monotonic()
        for i in range(args.clients):
            c = hearthtest.XmppClient.login(srv, "u%d" % i, "bench-%d-qk7w-long" % i, resource="bench")
            c.send("<presence/>")
            clients.append(c)
        t1 = time.monotonic()
        # Everyone got their own presence back: the server has settled.
        for c in clients:
            c.wait_for(lambda el: hearthtest.local(el.tag) == "presence", what="own presence")
        loaded = rss_kib(srv.proc.pid)
        print("logins: %d clients in %.2f s (%.1f ms each, SCRAM-SHA-256 over STARTTLS)"
              % (args.clients, t1 - t0, (t1 - t0) * 1000.0 / args.clients))
        print("RSS with %d clients logged in: %d KiB (%.1f KiB per client)"
              % (args.clients, loaded, (loaded - idle) / float(args.clients)))
        report_processes(srv.proc.pid, "%d clients" % args.clients)
        srv.assert_alive()
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        srv.stop()
        srv.cleanup()
    if args.roster_users > 0:
        roster_footprint(args.roster_users, args.roster_items)
    if args.sm_sessions > 0:
        sm_detached_footprint(args.sm_sessions, args.sm_queued)


if __name__ == "__main__":
    main()
