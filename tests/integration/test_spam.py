"""Abuse resistance (issue 6 items 2 and 6) against the real server.

- The server-wide block list ([spam] block, [spam] block_file in the
  JabberSPAM format, re-read on SIGHUP): nothing from a listed JID reaches a
  local account (not delivered, not stored offline, not archived); what a
  local user sends to a listed JID or domain is refused with <not-allowed/>.
  Without s2s a listed remote sender cannot be tested end to end: the unit
  test (SpamModuleTest) drives that through a real module host; here a
  listed LOCAL account plays the spammer.
- Per-account budgets: subscription requests and messages to strangers
  (JIDs not in the roster) per minute; over budget <policy-violation/>
  type 'wait', contacts unaffected, budgets refill.
- New accounts may only message contacts for new_account_strangers_after.
- XEP-0377 reports inside a XEP-0191 block: stored with the archived
  messages, admins get a chat message, malformed reports get
  <bad-request/> and block nothing.
"""

import os
import signal
import subprocess
import time

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, XmppClient, body_of, show,
                        stanza_error_condition, subscribe, tag)

NS_BLOCKING = "urn:xmpp:blocking"
NS_REPORTING = "urn:xmpp:reporting:1"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_ROSTER = "jabber:iq:roster"
SPAM = "urn:xmpp:reporting:spam"
ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
MALLORY = "mallory@" + DOMAIN
USERS_M = dict(USERS, mallory="velvet-anchor-sprocket-5")


# --------------------------------------------------------------------------
# helpers


def is_message(el):
    return el.tag == tag(NS_CLIENT, "message")


def is_presence(el):
    return el.tag == tag(NS_CLIENT, "presence")


def is_error(el):
    return el.get("type") == "error"


def login(server, user, resource=None):
    c = XmppClient.login(server, user, USERS_M[user], resource)
    server.clients.append(c)
    return c


def online(server, user, resource=None):
    """Logged in, roster asked, initially available."""
    c = login(server, user, resource)
    c.iq("get", "<query xmlns='%s'/>" % NS_ROSTER)
    c.send("<presence/>")
    # RFC 6121 section 4.2.2: our own presence comes back first.
    c.wait_for(lambda e: is_presence(e) and e.get("from") == c.jid, what="own presence")
    c.assert_ping()
    return c


def error_of(el):
    """(error type, condition, text) of an error stanza."""
    err = el.find(tag(NS_CLIENT, "error"))
    assert err is not None, "no <error/>: %s" % show(el)
    text = err.find(tag(NS_STANZAS, "text"))
    return err.get("type"), stanza_error_condition(el), (text.text if text is not None else "")


def wait_error(c, stanza_id, what):
    return c.wait_for(lambda e: e.get("id") == stanza_id and is_error(e), what=what)


def mdb_dump(server, table):
    """The table's records as printable text (mdb_dump -p)."""
    path = os.path.join(server.data_dir, "data.mdb")
    r = subprocess.run(["mdb_dump", "-n", "-p", "-s", table, path], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, "mdb_dump failed: %s %s" % (r.stdout, r.stderr)
    return r.stdout.split("HEADER=END", 1)[1]


def records(server, table):
    data = mdb_dump(server, table)
    return sum(1 for line in data.splitlines() if line.startswith(" ")) // 2


def audit_text(server):
    """Audit events: in the audit file once the monitor wires it, in the log
    ("audit: {...}") until then."""
    text = server.log_text()
    path = os.path.join(server.data_dir, "audit.log")
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            text += f.read()
    return text


def wait_log(server, needle, count=1, timeout=8.0):
    deadline = time.monotonic() + timeout
    while server.log_text().count(needle) < count:
        assert time.monotonic() < deadline, "no %r (x%d) in the log:\n%s" % (
            needle, count, server.log_tail())
        time.sleep(0.02)


def send_message(c, to, body, type_="chat"):
    return c.message(to, body, type_)


def block_with_report(c, jid, report_xml):
    return c.iq("set", "<block xmlns='%s'><item jid='%s'>%s</item></block>"
                % (NS_BLOCKING, jid, report_xml))


def blocklist(c):
    r = c.iq("get", "<blocklist xmlns='%s'/>" % NS_BLOCKING)
    assert r.get("type") == "result", show(r)
    return [i.get("jid") for i in r.iter(tag(NS_BLOCKING, "item"))]


# --------------------------------------------------------------------------
# the server-wide block list


def test_blocked_local_jid_never_reaches_alice_nor_her_storage(make_server):
    server = make_server({"spam": {"block": "Mallory@localhost"}}, users=USERS_M)
    mallory = online(server, "mallory")
    # alice is offline: a message would be stored (offline) and archived.
    mid = send_message(mallory, ALICE, "buy now")
    type_, cond, text = error_of(wait_error(mallory, mid, "the refusal"))
    assert (type_, cond) == ("cancel", "not-allowed"), text
    mallory.send("<presence type='subscribe' to='%s'/>" % ALICE)
    mallory.send("<presence to='%s'/>" % ALICE)
    mallory.assert_ping()
    assert records(server, "offline") == 0
    assert "mallory" not in mdb_dump(server, "archive")

    alice = online(server, "alice")
    mid = send_message(mallory, ALICE, "buy now, online")
    assert error_of(wait_error(mallory, mid, "the refusal"))[1] == "not-allowed"
    mallory.send("<presence to='%s'/>" % ALICE)
    mallory.send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>"
                 % alice.jid)
    r = wait_error(mallory, "v1", "the refused IQ")
    assert error_of(r)[1] == "not-allowed"
    alice.expect_nothing(0.5)
    # alice cannot reach mallory either.
    mid = send_message(alice, MALLORY, "hello?")
    assert error_of(wait_error(alice, mid, "the refusal"))[:2] == ("cancel", "not-allowed")
    mallory.expect_nothing(0.3, pred=is_message)
    # Nothing stored, nothing archived; mallory's own account still works.
    assert records(server, "offline") == 0
    assert "mallory" not in mdb_dump(server, "archive")
    mallory.assert_ping()
    assert '"event":"blocked_stanza"' in audit_text(server)
    server.assert_alive()


def test_outbound_to_a_blocked_domain_and_its_subdomains_is_not_allowed(make_server):
    server = make_server({"spam": {"block": "spam.example, bot@other.example"}})
    alice = online(server, "alice")
    for to in ("x@spam.example", "room@muc.SPAM.example/nick", "spam.example", "bot@other.example"):
        mid = send_message(alice, to, "hi")
        el = wait_error(alice, mid, "the refusal for %s" % to)
        assert error_of(el)[:2] == ("cancel", "not-allowed"), show(el)
    r = alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="spam.example")
    assert error_of(r)[:2] == ("cancel", "not-allowed"), show(r)
    # Not listed: the normal answer without s2s.
    for to in ("x@notspam.example", "human@other.example"):
        mid = send_message(alice, to, "hi")
        el = wait_error(alice, mid, "the error for %s" % to)
        assert error_of(el)[1] == "remote-server-not-found", show(el)
    # Presence to a listed domain is dropped without an answer.
    alice.send("<presence type='subscribe' to='x@spam.example'/>")
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=is_presence)
    server.assert_alive()


def test_block_file_is_read_at_start_and_again_on_sighup(make_server):
    server = make_server(start=False)
    path = os.path.join(server.dir, "blocklist.txt")
    with open(path, "w") as f:
        f.write("# JabberSPAM-style list\n\nfoo.example   # a comment\n*.Bar.example\n"
                "not a valid entry\n")
    os.chmod(path, 0o644)
    server.settings["spam"] = {"block_file": path}
    server.write_config()
    server.start()
    alice = online(server, "alice")

    def condition(to):
        mid = send_message(alice, to, "hi")
        return error_of(wait_error(alice, mid, "the answer for %s" % to))[1]

    assert condition("x@foo.example") == "not-allowed"
    assert condition("x@sub.bar.example") == "not-allowed"
    assert condition("x@baz.example") == "remote-server-not-found"
    assert "line 5" in server.log_text()  # the bad line is reported with its number
    # A new list written into the same file (as cp or > do), then SIGHUP.
    with open(path, "w") as f:
        f.write("baz.example\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_log(server, "configuration reloaded")
    assert condition("x@baz.example") == "not-allowed"
    assert condition("x@foo.example") == "remote-server-not-found"
    assert condition("x@sub.bar.example") == "remote-server-not-found"
    server.assert_alive()


# --------------------------------------------------------------------------
# budgets


def test_subscription_requests_are_limited_per_minute_and_recover(make_server):
    server = make_server({"limits": {"subscriptions_per_minute": "20"}})
    alice = online(server, "alice")
    bob = online(server, "bob")
    alice.send("<presence type='subscribe' to='%s'/>" % BOB)
    bob.wait_for(lambda e: is_presence(e) and e.get("type") == "subscribe"
                 and e.get("from") == ALICE, what="the first request")
    for i in range(19):
        alice.send("<presence type='subscribe' to='u%d@localhost' id='s%d'/>" % (i, i))
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=lambda e: is_presence(e) and is_error(e))
    alice.send("<presence type='subscribe' to='%s' id='over'/>" % CAROL)
    el = wait_error(alice, "over", "the refused request")
    assert is_presence(el), show(el)
    type_, cond, text = error_of(el)
    assert (type_, cond) == ("wait", "policy-violation"), show(el)
    assert "at most 20 per minute" in text, text
    # 20 per minute: one more after 3 s.
    time.sleep(3.3)
    alice.send("<presence type='subscribe' to='%s' id='later'/>" % CAROL)
    alice.assert_ping()
    alice.expect_nothing(0.3, pred=lambda e: is_error(e) and e.get("id") == "later")
    assert '"limit":"subscriptions_per_minute"' in audit_text(server)
    server.assert_alive()


def test_messages_to_strangers_are_limited_contacts_are_not(make_server):
    server = make_server({"limits": {"stranger_messages_per_minute": "5"}})
    alice = online(server, "alice")
    bob = online(server, "bob")
    carol = online(server, "carol")
    subscribe(alice, "alice", bob, "bob")
    for i in range(5):
        send_message(alice, CAROL, "stranger %d" % i)
    for i in range(5):
        el = carol.wait_message(lambda e: body_of(e) == "stranger %d" % i)
        assert el.get("from") == alice.jid
    mid = send_message(alice, CAROL, "one too many")
    el = wait_error(alice, mid, "the refusal")
    type_, cond, text = error_of(el)
    assert (type_, cond) == ("wait", "policy-violation"), show(el)
    assert "not in your roster" in text and "at most 5 per minute" in text, text
    carol.expect_nothing(0.3, pred=lambda e: is_message(e) and body_of(e) == "one too many")
    # A contact: no budget.
    for i in range(12):
        send_message(alice, BOB, "friend %d" % i)
    for i in range(12):
        bob.wait_message(lambda e: body_of(e) == "friend %d" % i)
    alice.expect_nothing(0.3, pred=is_error)
    # Each account has its own budget: carol's is untouched.
    for i in range(5):
        send_message(carol, ALICE, "carol %d" % i)
    for i in range(5):
        alice.wait_message(lambda e: body_of(e) == "carol %d" % i)
    carol.expect_nothing(0.3, pred=is_error)
    server.assert_alive()


def test_new_accounts_may_only_message_contacts_at_first(make_server):
    server = make_server({"spam": {"new_account_strangers_after": "1h"}})
    server.add_user("dave", "tangerine-lamp-cobalt-9")
    wait_log(server, "account dave created")  # the reactor hears of it (AccountEvent::kCreated)
    dave = XmppClient.login(server, "dave", "tangerine-lamp-cobalt-9")
    server.clients.append(dave)
    alice = online(server, "alice")
    mid = send_message(dave, ALICE, "hello stranger")
    el = wait_error(dave, mid, "the refusal")
    type_, cond, text = error_of(el)
    assert (type_, cond) == ("wait", "policy-violation"), show(el)
    assert "first 1 h" in text and "you may message others from" in text, text
    alice.expect_nothing(0.3, pred=is_message)
    # A contact may be messaged.
    r = dave.iq("set", "<query xmlns='%s'><item jid='%s'/></query>" % (NS_ROSTER, ALICE))
    assert r.get("type") == "result", show(r)
    send_message(dave, ALICE, "hello contact")
    el = alice.wait_message(lambda e: body_of(e) == "hello contact")
    assert el.get("from", "").startswith("dave@localhost/")
    # Accounts made before the server started have no record: not restricted.
    bob = online(server, "bob")
    send_message(bob, ALICE, "from an old account")
    alice.wait_message(lambda e: body_of(e) == "from an old account")
    bob.expect_nothing(0.3, pred=is_error)
    server.assert_alive()


# --------------------------------------------------------------------------
# XEP-0377 reports


def test_report_is_stored_with_the_messages_and_the_admin_is_told(make_server):
    server = make_server({"server": {"admins": "carol@localhost"}}, users=USERS_M)
    alice = login(server, "alice")
    for to in (DOMAIN, ALICE):
        r = alice.iq("get", "<query xmlns='%s'/>" % NS_DISCO_INFO, to=to)
        feats = {f.get("var") for f in r.iter(tag(NS_DISCO_INFO, "feature"))}
        assert {NS_REPORTING, "urn:xmpp:reporting:reason:spam:0",
                "urn:xmpp:reporting:reason:abuse:0"} <= feats, (to, feats)
    carol = online(server, "carol")
    bob = online(server, "bob")
    mallory = online(server, "mallory")
    for body in ("spam one", "spam two"):
        send_message(mallory, BOB, body)
        bob.wait_message(lambda e, b=body: body_of(e) == b)
    r = block_with_report(bob, MALLORY, "<report xmlns='%s' reason='%s'><text>Unsolicited "
                          "ads &amp; links</text></report>" % (NS_REPORTING, SPAM))
    assert r.get("type") == "result", show(r)
    assert blocklist(bob) == [MALLORY]
    note = carol.wait_message(lambda e: e.get("from") == DOMAIN, what="the admin notice")
    assert note.get("type") == "chat"
    assert body_of(note) == ("bob@localhost reported mallory@localhost for spam: Unsolicited ads "
                             "& links (2 messages kept)"), show(note)
    dump = mdb_dump(server, "spam_reports")
    assert records(server, "spam_reports") == 1, dump
    for needle in ("bob@localhost", "mallory@localhost", SPAM, "Unsolicited ads", "spam one",
                   "spam two"):
        assert needle in dump, (needle, dump)
    assert '"event":"spam_report"' in audit_text(server)
    # Not an admin: no notice for mallory or alice.
    mallory.expect_nothing(0.2, pred=lambda e: is_message(e) and e.get("from") == DOMAIN)
    server.assert_alive()


def test_malformed_reports_are_bad_requests_and_block_nothing(make_server):
    server = make_server({"server": {"admins": "carol@localhost"}}, users=USERS_M)
    bob = online(server, "bob")
    carol = online(server, "carol")
    bad = [
        "<report xmlns='%s'/>" % NS_REPORTING,
        "<report xmlns='%s' reason='spam'/>" % NS_REPORTING,
        "<report xmlns='%s' reason='urn:xmpp:reporting:other'/>" % NS_REPORTING,
        "<report xmlns='%s' reason='%s'/><report xmlns='%s' reason='%s'/>"
        % (NS_REPORTING, SPAM, NS_REPORTING, SPAM),
        "<report xmlns='%s' reason='%s'><text>%s</text></report>"
        % (NS_REPORTING, SPAM, "x" * 5000),
    ]
    for payload in bad:
        r = block_with_report(bob, MALLORY, payload)
        assert r.get("type") == "error", show(r)
        assert error_of(r)[:2] == ("modify", "bad-request"), show(r)
    assert blocklist(bob) == []
    assert records(server, "spam_reports") == 0
    carol.expect_nothing(0.3, pred=is_message)
    # The stream is fine, and a valid abuse report without text works.
    r = block_with_report(bob, MALLORY, "<report xmlns='%s' reason='urn:xmpp:reporting:abuse'/>"
                          % NS_REPORTING)
    assert r.get("type") == "result", show(r)
    note = carol.wait_message(lambda e: e.get("from") == DOMAIN, what="the admin notice")
    assert body_of(note) == ("bob@localhost reported mallory@localhost for abuse "
                             "(0 messages kept)"), show(note)
    assert records(server, "spam_reports") == 1
    server.assert_alive()


def test_block_entries_change_on_sighup(make_server):
    """[spam] block is reloadable like the file: the list is rebuilt on SIGHUP."""
    server = make_server({"spam": {"block": "old.example"}})
    alice = online(server, "alice")

    def condition(to):
        mid = send_message(alice, to, "hi")
        return error_of(wait_error(alice, mid, "the answer for %s" % to))[1]

    assert condition("x@old.example") == "not-allowed"
    server.settings["spam"]["block"] = "new.example"
    server.write_config()
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_log(server, "configuration reloaded")
    assert condition("x@new.example") == "not-allowed"
    assert condition("x@old.example") == "remote-server-not-found"
    server.assert_alive()
