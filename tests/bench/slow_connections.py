#!/usr/bin/env python3
"""Slow-connection benchmark for the [limits] of issue 6 (run on demand).

Holds N slow connections (default 500: 50 loopback IPs x 10, each IP within
max_per_ip and connect_rate) that never finish logging in: half on the
direct-TLS port sending a ClientHello one byte every few seconds, half on
the STARTTLS port sending a stream header and then a space every few
seconds. With --hold (default) the timeouts are raised to their maximum so
the connections stay; the report is what holding them costs:
  - CPU time (utime + stime of every hearth process, /proc/PID/stat) over
    the measuring window, and per connection;
  - RSS of the reactor and of all processes, idle and with the connections;
  - how many connections one IP can hold (it tries 3 x max_per_ip).
With --defaults the timeouts stay at their defaults and the report says how
many of the connections are left after 5, 12 and 35 seconds.
Numbers only; no pass/fail thresholds.
"""

import argparse
import os
import select
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import hearthtest  # noqa: E402

HEADER = ("<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
          "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>").encode()


def client_hello():
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = hearthtest.client_context().wrap_bio(bio_in, bio_out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return bio_out.read()


def group_pids(pgid):
    return hearthtest._group_members(pgid)


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                rest = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        total += int(rest[11]) + int(rest[12])  # utime, stime
    return total


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reactor_pid(pgid):
    for pid in group_pids(pgid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"--role=reactor" in f.read():
                    return pid
        except OSError:
            pass
    return None


class Slow:
    """One slow connection: a socket and what it trickles."""

    def __init__(self, source, port, direct, hello):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.direct = direct
        self.hello = hello
        self.pos = 0
        self.closed = False
        if direct:
            self.trickle(10)
        else:
            self.send(HEADER)

    def send(self, data):
        try:
            self.sock.send(data)
        except OSError:
            self.closed = True

    def trickle(self, n=1):
        if self.direct:
            # Never the whole ClientHello: the handshake must not finish.
            if self.pos + n < len(self.hello) - 1:
                self.send(self.hello[self.pos:self.pos + n])
                self.pos += n
        else:
            self.send(b" ")

    def poll_closed(self):
        if self.closed:
            return True
        r, _, _ = select.select([self.sock], [], [], 0)
        if r:
            try:
                while True:
                    data = self.sock.recv(65536)
                    if not data:
                        self.closed = True
                        break
            except BlockingIOError:
                pass
            except OSError:
                self.closed = True
        return self.closed

    def close(self):
        self.sock.close()


def open_slow(server, ips, per_ip, hello):
    conns = []
    for i in range(ips):
        source = "127.0.%d.%d" % (1 + i // 200, 2 + i % 200)
        for j in range(per_ip):
            direct = (j % 2 == 0)
            port = server.direct_tls_port if direct else server.starttls_port
            conns.append(Slow(source, port, direct, hello))
    return conns


def keep_alive(conns, seconds, every):
    """Trickles a byte on each connection every `every` seconds, spread out."""
    end = time.monotonic() + seconds
    n = len(conns)
    i = 0
    while time.monotonic() < end:
        step = every / max(n, 1)
        c = conns[i % n]
        if not c.closed:
            c.trickle()
        i += 1
        time.sleep(step)


def count_open(conns):
    return sum(1 for c in conns if not c.poll_closed())


def per_ip_capacity(server, max_per_ip, hello):
    conns = []
    for j in range(3 * max_per_ip):
        try:
            conns.append(Slow("127.1.0.1", server.direct_tls_port, True, hello))
        except OSError:
            pass
    time.sleep(0.5)
    held = count_open(conns)
    for c in conns:
        c.close()
    return held, 3 * max_per_ip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ips", type=int, default=50)
    ap.add_argument("--per-ip", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    ap.add_argument("--every", type=float, default=3.0, help="seconds between bytes")
    ap.add_argument("--defaults", action="store_true",
                    help="keep the default timeouts and report how the connections are cut")
    args = ap.parse_args()

    limits = {"trust_loopback": "false", "max_per_ip": args.per_ip}
    c2s = {}
    if not args.defaults:
        limits.update({"tls_handshake_timeout": 300, "preauth_idle_timeout": 300})
        c2s["pre_auth_timeout"] = 3600
    server = hearthtest.HearthServer(overrides={"limits": limits, "c2s": c2s},
                                     log_level="info", name="bench-slow")
    hello = client_hello()
    conns = []
    try:
        server.start()
        time.sleep(0.5)
        reactor = reactor_pid(server.pgid)
        pids = group_pids(server.pgid)
        idle_rss = rss_kib(reactor)
        idle_total = sum(rss_kib(p) for p in pids)
        hz = os.sysconf("SC_CLK_TCK")
        print("hearth %s; %d IPs x %d slow connections (half direct TLS with a trickling "
              "ClientHello, half STARTTLS streams sending a space), a byte every %.0f s"
              % (hearthtest.hearth_bin(), args.ips, args.per_ip, args.every))
        t0 = time.monotonic()
        conns = open_slow(server, args.ips, args.per_ip, hello)
        print("opened %d connections in %.2f s" % (len(conns), time.monotonic() - t0))
        if args.defaults:
            start = time.monotonic()
            for mark in (5, 12, 35):
                keep_alive(conns, max(0.0, start + mark - time.monotonic()), args.every)
                print("  after %2d s: %d of %d still open" % (mark, count_open(conns), len(conns)))
        else:
            keep_alive(conns, 2.0, args.every)  # settle
            held = count_open(conns)
            ticks0 = cpu_ticks(group_pids(server.pgid))
            w0 = time.monotonic()
            keep_alive(conns, args.seconds, args.every)
            wall = time.monotonic() - w0
            ticks = cpu_ticks(group_pids(server.pgid)) - ticks0
            still = count_open(conns)
            rss = rss_kib(reactor)
            total = sum(rss_kib(p) for p in group_pids(server.pgid))
            cpu = ticks / hz
            print("held %d at the start, %d at the end of %.0f s" % (held, still, wall))
            print("CPU time of all hearth processes: %.2f s in %.0f s (%.2f%% of one core), "
                  "%.1f us per connection per second"
                  % (cpu, wall, 100.0 * cpu / wall, 1e6 * cpu / wall / max(still, 1)))
            print("RSS reactor: %d KiB idle, %d KiB with the connections (+%.1f KiB each)"
                  % (idle_rss, rss, (rss - idle_rss) / max(still, 1)))
            print("RSS all processes: %d KiB idle, %d KiB with the connections"
                  % (idle_total, total))
        for c in conns:
            c.close()
        conns = []
        time.sleep(0.5)
        held, tried = per_ip_capacity(server, args.per_ip, hello)
        print("one IP (127.1.0.1) tried %d connections and holds %d (max_per_ip = %d)"
              % (tried, held, args.per_ip))
        server.assert_alive()
        server.stop()
    finally:
        for c in conns:
            c.close()
        server.cleanup()


if __name__ == "__main__":
    main()
