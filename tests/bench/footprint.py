#!/usr/bin/env python3
"""hearth footprint benchmark (run on demand: `make bench`).

Reports, for the real binary on loopback:
  - binary size (stripped),
  - time from `hearth run` to accepting connections (the 'server: ready' line
    and a successful TCP connect), best and median of several starts,
  - RSS idle, and RSS with N clients logged in (TLS + SCRAM + bind) and
    available, and the RSS cost per client.
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


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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


def startup_ms(rounds):
    """Time from spawning `hearth run` until a TCP connect to its STARTTLS
    port succeeds (polled every 0.5 ms). The first start generates the
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
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--starts", type=int, default=5)
    args = ap.parse_args()
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
            srv.add_user("u%d" % i, "pw-%d" % i)
        time.sleep(0.2)
        idle = rss_kib(srv.proc.pid)
        print("RSS idle: %d KiB" % idle)
        t0 = time.monotonic()
        for i in range(args.clients):
            c = hearthtest.XmppClient.login(srv, "u%d" % i, "pw-%d" % i, resource="bench")
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
        srv.assert_alive()
    finally:
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        srv.stop()
        srv.cleanup()


if __name__ == "__main__":
    main()
