"""Failed-login limits (issue 6 item 3): per-IP and per-account counters in
accounts.mdb, exponential back-off, a temporary ban after [auth]
max_failures; a banned client learns nothing about accounts; other IPs log
in as usual; everything lands in the audit log.

Loopback has a whole /8, so each test plays several clients: the attacker
binds its source address to 127.0.0.3, the legitimate user to 127.0.0.2.
"""

import json
import os
import socket
import time
import xml.etree.ElementTree as ET

from conftest import USERS
from hearthtest import (NS_BIND, NS_SASL, TIMEOUT, XmppClient, sasl_failure_condition, show,
                        tag)

ATTACKER = "127.0.0.3"
FRIEND = "127.0.0.2"


def connect_from(server, source_ip, name=None):
    """A STARTTLS client whose TCP source address is `source_ip`."""
    sock = socket.create_connection(("127.0.0.1", server.starttls_port), timeout=TIMEOUT,
                                    source_address=(source_ip, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = XmppClient(sock, name=name or source_ip)
    server.clients.append(c)
    c.open_stream()
    c.starttls()
    return c


def attempt(server, source_ip, user, password, mechanism="SCRAM-SHA-256"):
    """One login attempt on a fresh connection: (outcome element, seconds)."""
    c = connect_from(server, source_ip)
    t0 = time.monotonic()
    el = c.sasl(user, password, mechanism)
    took = time.monotonic() - t0
    c.close()
    return el, took


def login_from(server, source_ip, user):
    c = connect_from(server, source_ip, name=user)
    c.authenticate(user, USERS[user])
    c.bind()
    c.assert_ping()
    return c


def is_failure(el):
    return el.tag == tag(NS_SASL, "failure") and sasl_failure_condition(el) == "not-authorized"


def canonical(el):
    return ET.tostring(el)


def audit_events(server, event=None):
    path = os.path.join(server.data_dir, "audit.log")
    with open(path) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return [e for e in lines if event is None or e["event"] == event]


def wait_events(server, event, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = audit_events(server, event)
        if len(found) >= n or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_brute_force_is_banned_and_learns_nothing(make_server):
    server = make_server({"auth": {"max_failures": 3, "failure_window": "5m", "ban_time": "1h"}})
    # Back-off: each failure answered later (0.5 s, 1 s, 2 s).
    wrong = []
    for i, minimum in enumerate((0.5, 1.0, 2.0)):
        el, took = attempt(server, ATTACKER, "alice", "guess-number-%d" % i)
        assert is_failure(el), show(el)
        assert took >= minimum * 0.9, "failure %d answered after %.2f s" % (i + 1, took)
        wrong.append(el)
    # Banned: the right password fails like a wrong one, at once, and so
    # does an account that does not exist, with either mechanism.
    for user, password, mech in (("alice", USERS["alice"], "SCRAM-SHA-256"),
                                 ("alice", USERS["alice"], "PLAIN"),
                                 ("nosuchuser", "whatever-it-is-1", "SCRAM-SHA-256"),
                                 ("nosuchuser", "whatever-it-is-1", "PLAIN")):
        el, took = attempt(server, ATTACKER, user, password, mech)
        assert canonical(el) == canonical(wrong[0]), (show(el), show(wrong[0]))
        assert took < 0.5, "a banned attempt took %.2f s" % took
    # Everyone else logs in as usual, to the very account under attack.
    t0 = time.monotonic()
    friend = login_from(server, FRIEND, "alice")
    assert time.monotonic() - t0 < 2.0
    friend.close()
    login_from(server, "127.0.0.1", "bob").close()

    failures = [e for e in audit_events(server, "auth_failure") if e["ip"] == ATTACKER]
    assert [e["count"] for e in failures] == [1, 2, 3], failures
    assert all(e["user"] == "alice" and e["mechanism"] == "SCRAM-SHA-256" for e in failures)
    assert all(e["proc"] == "auth" for e in failures)
    bans = audit_events(server, "ip_banned")
    assert len(bans) == 1 and bans[0]["ip"] == ATTACKER and bans[0]["failures"] == 3, bans
    assert bans[0]["until"].endswith("Z") and bans[0]["ban_seconds"] == 3600, bans
    for e in audit_events(server):
        assert USERS["alice"] not in json.dumps(e), e

    # The ban is in accounts.mdb: it outlives a restart.
    server.restart()
    el, _ = attempt(server, ATTACKER, "alice", USERS["alice"])
    assert canonical(el) == canonical(wrong[0]), show(el)
    login_from(server, FRIEND, "alice").close()


def test_ban_ends_after_ban_time(make_server):
    server = make_server({"auth": {"max_failures": 2, "ban_time": "3s"}})
    for i in range(2):
        el, _ = attempt(server, ATTACKER, "bob", "not-bobs-password-%d" % i, "PLAIN")
        assert is_failure(el), show(el)
    banned_at = time.monotonic()
    el, _ = attempt(server, ATTACKER, "bob", USERS["bob"], "PLAIN")
    assert is_failure(el), "not banned: " + show(el)
    time.sleep(max(0.0, 3.3 - (time.monotonic() - banned_at)))
    c = login_from(server, ATTACKER, "bob")
    c.close()
    unbanned = wait_events(server, "ip_unbanned", 1)
    assert [e["ip"] for e in unbanned] == [ATTACKER], unbanned


def test_counters_survive_a_restart(make_server):
    server = make_server({"auth": {"max_failures": 3}})
    for i in range(2):
        assert is_failure(attempt(server, ATTACKER, "carol", "bad-guess-%d" % i)[0])
    server.restart()
    assert is_failure(attempt(server, ATTACKER, "carol", "bad-guess-3")[0])
    el, _ = attempt(server, ATTACKER, "carol", USERS["carol"])
    assert is_failure(el), "the third failure (one after the restart) did not ban: " + show(el)
    bans = wait_events(server, "ip_banned", 1)
    assert bans and bans[0]["failures"] == 3, bans


def test_success_resets_the_ip_count(make_server):
    server = make_server({"auth": {"max_failures": 3}})
    for i in range(2):
        assert is_failure(attempt(server, ATTACKER, "alice", "typo-number-%d" % i)[0])
    login_from(server, ATTACKER, "alice").close()
    ok = wait_events(server, "auth_success", 1)
    assert ok and ok[0]["ip"] == ATTACKER and ok[0]["failures"] == 2 and ok[0]["user"] == "alice"
    for i in range(2):
        assert is_failure(attempt(server, ATTACKER, "alice", "another-typo-%d" % i)[0])
    login_from(server, ATTACKER, "alice").close()  # 2 < 3 since the success: not banned
    assert not audit_events(server, "ip_banned")


def test_account_under_attack_from_many_ips_is_slowed_not_locked(make_server):
    server = make_server({"auth": {"max_failures": 3}})
    for n in range(10, 15):
        el, took = attempt(server, "127.0.0.%d" % n, "alice", "distributed-guess-%d" % n)
        assert is_failure(el), show(el)
    # The fifth failure for alice waited on her count (0.5 s * 2^4, capped at
    # 5 s), although it was its IP's first.
    assert took >= 4.5, took
    assert not audit_events(server, "ip_banned")
    throttled = audit_events(server, "throttled")
    assert throttled and throttled[0]["user"] == "alice" and throttled[0]["failures"] == 3
    t0 = time.monotonic()
    c = login_from(server, FRIEND, "alice")
    assert time.monotonic() - t0 < 2.0
    c.close()


def test_guess_rate_per_ip(make_server):
    """Scaled down (failure_window 3 s, ban_time 4 s, max_failures 3): how
    many guesses one IP gets checked. A paced attacker stays under the ban
    with max_failures - 1 guesses per quiet window; a greedy one gets
    max_failures per ban. At the defaults (5, 5 min, 1 h) that is at most
    4 per 300 s = 48 guesses per hour."""
    window, ban, maxf = 3.0, 4.0, 3
    server = make_server({"auth": {"max_failures": maxf, "failure_window": "3s",
                                   "ban_time": "4s"}})
    # Greedy: guesses as fast as the server answers, for 10 s.
    t_end = time.monotonic() + 10.0
    while time.monotonic() < t_end:
        attempt(server, "127.0.0.5", "alice", "greedy-guess", "PLAIN")
        time.sleep(0.05)
    greedy = [e for e in audit_events(server, "auth_failure") if e["ip"] == "127.0.0.5"]
    # At most max_failures per (ban_time + back-off) period, plus one start.
    assert len(greedy) <= maxf * (1 + int(10.0 / ban)), len(greedy)
    # Paced: max_failures - 1 quick guesses, then a quiet window.
    t_start = time.monotonic()
    t_end = t_start + 10.0
    cycles = 0
    while time.monotonic() < t_end:
        for i in range(maxf - 1):
            attempt(server, "127.0.0.6", "alice", "paced-guess", "PLAIN")
        cycles += 1
        time.sleep(window + 0.1)
    paced = [e for e in audit_events(server, "auth_failure") if e["ip"] == "127.0.0.6"]
    assert not [e for e in audit_events(server, "ip_banned") if e["ip"] == "127.0.0.6"]
    per_cycle = len(paced) / cycles
    assert per_cycle <= maxf - 1, per_cycle
    # At the defaults one cycle is a quiet 300 s plus the back-off of its
    # guesses (0.5 + 1 + 2 s after the first three).
    backoff = sum(min(0.5 * 2 ** (n - 1), 5.0) for n in range(1, 5 - 1))
    print("greedy: %d guesses in 10 s (max_failures %d, ban %g s); paced: %.1f guesses per "
          "quiet window, never banned; at the defaults: %.0f per hour (paced), %.0f (greedy)"
          % (len(greedy), maxf, ban, per_cycle, per_cycle / (maxf - 1) * 4 * 3600 / (300 + backoff),
             5 * 3600 / (3600 + backoff + 4.0)))
