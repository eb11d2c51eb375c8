#!/usr/bin/env python3
"""MAM (XEP-0313) benchmark, run on demand (not part of `make test`).

Starts the real binary on loopback, fills alice's archive with N messages
from bob (default 100 000; bob's own archive is switched off with prefs
'never' so that only alice's rows are written), then reports:
  - the fill rate (messages archived and delivered per second),
  - the latency of a 50-message page at the END of the archive (RSM
    <before/>, the page a client asks for first) and in the MIDDLE (form
    field after-id = the id of the middle message): p50 and p99 over
    --queries round trips, measured on the client from sending the IQ to the
    last byte of the IQ result (the 50 <result/> messages come before it);
  - the size of data.mdb.
Numbers only; no thresholds.

  HEARTH_BIN=build-mam/hearth /usr/bin/python3 tests/bench/mam_bench.py [-n 100000]
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import hearthtest  # noqa: E402

NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
USERS = {"alice": "bench-secret-1", "bob": "bench-secret-2"}


def body_of(el):
    b = el.find(hearthtest.tag(hearthtest.NS_CLIENT, "body"))
    return None if b is None else b.text or ""


def drain(c, got, wait):
    if c._readable(wait):
        c._read_some(time.monotonic() + 10)
    for el in c.pending:
        b = body_of(el)
        if b is not None:
            sid = el.find(hearthtest.tag(NS_SID, "stanza-id"))
            got[b] = sid.get("id") if sid is not None else None
    c.pending.clear()
    c.received.clear()


def fill(sender, receiver, to, n):
    """Pipelines n messages in batches, keeping at most `window` in flight so
    that the server's output buffer to the receiver stays well under its
    limit (a slow reader would be disconnected)."""
    got = {}
    batch, window = 500, 3000
    sender.sock.settimeout(60)
    deadline = time.monotonic() + 1200
    for start in range(0, n, batch):
        while start - len(got) > window:
            drain(receiver, got, 0.5)
            if time.monotonic() > deadline:
                raise SystemExit("only %d of %d messages arrived" % (len(got), n))
        sender.sock.sendall("".join(
            "<message to='%s' type='chat' id='b%d'><body>m%07d</body></message>"
            % (to, i, i) for i in range(start, min(n, start + batch))).encode())
        drain(receiver, got, 0)
    while len(got) < n:
        if time.monotonic() > deadline:
            raise SystemExit("only %d of %d messages arrived" % (len(got), n))
        drain(receiver, got, 1.0)
    return got


def timed_query(c, payload, qn):
    """Round trip of one IQ set; returns (seconds, raw bytes received)."""
    iq_id = "bench%d" % qn
    marker = iq_id.encode()
    c.sock.settimeout(30)
    t0 = time.perf_counter()
    c.sock.sendall(("<iq type='set' id='%s'>%s</iq>" % (iq_id, payload)).encode())
    buf = bytearray()
    while True:
        chunk = c.sock.recv(262144)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
        i = buf.find(marker)
        if i >= 0 and buf.find(b"</iq>", i) >= 0:
            break
    return time.perf_counter() - t0, bytes(buf)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--messages", type=int, default=100000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--page", type=int, default=50)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()

    server = hearthtest.HearthServer(log_level="info", name="mam-bench")
    try:
        for user, pw in USERS.items():
            server.add_user(user, pw)
        server.start()
        alice = hearthtest.XmppClient.login(server, "alice", USERS["alice"], "bench")
        bob = hearthtest.XmppClient.login(server, "bob", USERS["bob"], "bench")
        alice.send("<presence/>")
        alice.assert_ping()
        r = bob.iq("set", "<prefs xmlns='%s' default='never'/>" % NS_MAM)
        assert r.get("type") == "result", hearthtest.show(r)

        t0 = time.monotonic()
        ids = fill(bob, alice, "alice@localhost", args.messages)
        fill_s = time.monotonic() - t0
        assert all(ids.values()), "a message came without a stanza-id"
        mid_body = "m%07d" % (args.messages // 2)
        mid_id = ids[mid_body]

        end_q = ("<query xmlns='%s' queryid='e'><set xmlns='http://jabber.org/protocol/rsm'>"
                 "<max>%d</max><before/></set></query>" % (NS_MAM, args.page))
        mid_q = ("<query xmlns='%s' queryid='m'><x xmlns='jabber:x:data' type='submit'>"
                 "<field var='FORM_TYPE'><value>%s</value></field><field var='after-id'>"
                 "<value>%s</value></field></x><set xmlns='http://jabber.org/protocol/rsm'>"
                 "<max>%d</max></set></query>" % (NS_MAM, NS_MAM, mid_id, args.page))
        # Check once that each returns a full page of the right messages.
        for q, first in ((end_q, "m%07d" % (args.messages - args.page)),
                         (mid_q, "m%07d" % (args.messages // 2 + 1))):
            _, raw = timed_query(alice, q, 0)
            assert raw.count(b"<result ") == args.page, raw[:500]
            assert ("<body>%s</body>" % first).encode() in raw, raw[:500]
        lat = {"end": [], "middle": []}
        for i in range(args.queries):
            lat["end"].append(timed_query(alice, end_q, 2 * i + 1)[0])
            lat["middle"].append(timed_query(alice, mid_q, 2 * i + 2)[0])

        size = os.path.getsize(server.settings["server"]["data_dir"] + "/data.mdb")
        print("mam bench: %d messages, page of %d, %d queries each"
              % (args.messages, args.page, args.queries))
        print("  fill: %.1f s, %.0f messages/s (archived + delivered, one write each)"
              % (fill_s, args.messages / fill_s))
        for name in ("end", "middle"):
            v = lat[name]
            print("  page at the %-6s p50 %.2f ms  p99 %.2f ms  (min %.2f, mean %.2f)"
                  % (name + ":", pct(v, 50) * 1e3, pct(v, 99) * 1e3, min(v) * 1e3,
                     statistics.mean(v) * 1e3))
        print("  data.mdb: %.1f MiB (%.0f bytes per message)"
              % (size / 1048576.0, size / float(args.messages)))
        alice.close()
        bob.close()
        server.stop()
    finally:
        if args.keep:
            print("kept", server.dir)
        else:
            server.cleanup()


if __name__ == "__main__":
    main()
