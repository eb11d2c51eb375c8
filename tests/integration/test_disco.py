"""Service discovery (XEP-0030), entity capabilities in the stream features
(XEP-0115) and server contact addresses (XEP-0157)."""

import asyncio
import base64
import hashlib
import os
import signal
import time

import pytest

from conftest import USERS
from hearthtest import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, XmppClient, bare_jid, show,
                        stanza_error_condition, tag)
from test_login import TIMEOUT, loop, make_xmpp, start_session, stop  # noqa: F401 (loop: fixture)
import hearthtest

NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_CAPS = "http://jabber.org/protocol/caps"
NS_DATA = "jabber:x:data"
NS_XML = "http://www.w3.org/XML/1998/namespace"
SERVERINFO = "http://jabber.org/network/serverinfo"

# Namespaces the compiled-in modules of issue 4 answer on the server.
SERVER_FEATURES = {NS_DISCO_INFO, NS_DISCO_ITEMS, "urn:xmpp:ping", "urn:xmpp:time",
                   "jabber:iq:version", "jabber:iq:last", "jabber:iq:register"}


def info(client, to=DOMAIN, node=None):
    node_attr = " node='%s'" % node if node is not None else ""
    return client.iq("get", "<query xmlns='%s'%s/>" % (NS_DISCO_INFO, node_attr), to=to)


def items(client, to=DOMAIN, node=None):
    node_attr = " node='%s'" % node if node is not None else ""
    return client.iq("get", "<query xmlns='%s'%s/>" % (NS_DISCO_ITEMS, node_attr), to=to)


def result_query(reply, ns=NS_DISCO_INFO):
    assert reply.get("type") == "result", show(reply)
    q = reply.find(tag(ns, "query"))
    assert q is not None, show(reply)
    return q


def assert_error(reply, condition, type_=None):
    assert reply.get("type") == "error", show(reply)
    assert stanza_error_condition(reply) == condition, show(reply)
    if type_ is not None:
        assert reply.find(tag(NS_CLIENT, "error")).get("type") == type_, show(reply)


def identities(q):
    return [(i.get("category"), i.get("type"), i.get(tag(NS_XML, "lang"), ""), i.get("name", ""))
            for i in q.findall(tag(NS_DISCO_INFO, "identity"))]


def features(q):
    return [f.get("var") for f in q.findall(tag(NS_DISCO_INFO, "feature"))]


def forms(q):
    """{FORM_TYPE: {var: [values]}} of the result forms."""
    out = {}
    for x in q.findall(tag(NS_DATA, "x")):
        fields = {}
        form_type = None
        for f in x.findall(tag(NS_DATA, "field")):
            values = [v.text or "" for v in f.findall(tag(NS_DATA, "value"))]
            if f.get("var") == "FORM_TYPE":
                assert f.get("type") == "hidden", show(x)
                form_type = values[0]
            else:
                fields[f.get("var")] = values
        out[form_type] = fields
    return out


def caps_ver(q):
    """XEP-0115 section 5.1 (with 5.4 for forms): base64(SHA-1(S))."""
    ids = sorted(identities(q))
    feats = features(q)
    # 5.4: duplicates make the response ill-formed.
    assert len(set(ids)) == len(ids), "duplicate identities: %s" % show(q)
    assert len(set(feats)) == len(feats), "duplicate features: %s" % show(q)
    s = "".join("%s/%s/%s/%s<" % i for i in ids)
    s += "".join(f + "<" for f in sorted(feats))
    for form_type, fields in sorted(forms(q).items()):
        s += form_type + "<"
        for var in sorted(fields):
            s += var + "<" + "".join(v + "<" for v in sorted(fields[var]))
    return base64.b64encode(hashlib.sha1(s.encode("utf-8")).digest()).decode()


def test_server_info_identity_features_and_caps(server, login):
    alice = login("alice")
    q = result_query(info(alice))
    assert ("server", "im", "", "Hearth") in identities(q)
    feats = features(q)
    assert SERVER_FEATURES <= set(feats), "missing: %s" % (SERVER_FEATURES - set(feats))
    assert feats == sorted(set(feats)), "features not sorted/unique: %s" % feats
    # No account-only namespace leaks into the server's features.
    assert "jabber:iq:roster" not in feats
    assert forms(q) == {}, "no [contact] configured, but: %s" % show(q)
    assert q.get("node") is None
    # The caps in the features after authentication hash exactly this.
    c = alice.features.find(tag(NS_CAPS, "c"))
    assert c is not None, show(alice.features)
    assert c.get("hash") == "sha-1"
    assert c.get("node") == "https://hearth.im"
    assert c.get("ver") == caps_ver(q), show(q)
    # Every connection gets the same.
    bob = login("bob")
    assert bob.features.find(tag(NS_CAPS, "c")).get("ver") == c.get("ver")
    server.assert_alive()


def test_server_info_without_to_is_own_account_and_to_domain_is_server(login):
    alice = login("alice")
    q = result_query(info(alice, to=None))
    assert ("account", "registered", "", "") in identities(q)
    assert ("server", "im", "", "Hearth") not in identities(q)
    q = result_query(info(alice, to=DOMAIN))
    assert ("server", "im", "", "Hearth") in identities(q)


def test_caps_node_query_answers_like_plain(server, login):
    alice = login("alice")
    ver = alice.features.find(tag(NS_CAPS, "c")).get("ver")
    plain = result_query(info(alice))
    node = "https://hearth.im#" + ver
    q = result_query(info(alice, node=node))
    assert q.get("node") == node
    assert identities(q) == identities(plain)
    assert features(q) == features(plain)
    assert caps_ver(q) == ver
    # A stale or unknown node does not exist.
    assert_error(info(alice, node="https://hearth.im#AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                 "item-not-found", "cancel")
    assert_error(info(alice, node="urn:example:nothing"), "item-not-found", "cancel")
    assert_error(items(alice, node="urn:example:nothing"), "item-not-found", "cancel")
    alice.assert_ping()
    server.assert_alive()


def test_contact_addresses_form(make_server):
    server = make_server({"contact": {
        "abuse": "mailto:abuse@example.org",
        "support": "xmpp:support@localhost, mailto:help@example.org",
        "security": "https://example.org/security"}})
    alice = XmppClient.login(server, "alice", USERS["alice"])
    server.clients.append(alice)
    q = result_query(info(alice))
    f = forms(q)
    assert f == {SERVERINFO: {
        "abuse-addresses": ["mailto:abuse@example.org"],
        "support-addresses": ["xmpp:support@localhost", "mailto:help@example.org"],
        "security-addresses": ["https://example.org/security"]}}, show(q)
    # The form is part of the caps hash (5.4).
    ver = alice.features.find(tag(NS_CAPS, "c")).get("ver")
    assert ver == caps_ver(q)
    plain = caps_ver(q)
    q.remove(q.find(tag(NS_DATA, "x")))
    assert caps_ver(q) != plain
    server.assert_alive()


def test_reload_changes_contact_form_and_caps(server, login):
    """SIGHUP with new [contact] addresses: the disco#info and the caps of new
    streams change together."""
    alice = login("alice")
    old_ver = alice.features.find(tag(NS_CAPS, "c")).get("ver")
    server.settings["contact"] = {"feedback": "https://example.org/feedback"}
    server.write_config()
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in server.log_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.02)
    bob = login("bob")
    q = result_query(info(bob))
    assert forms(q) == {SERVERINFO: {"feedback-addresses": ["https://example.org/feedback"]}}
    new_ver = bob.features.find(tag(NS_CAPS, "c")).get("ver")
    assert new_ver != old_ver and new_ver == caps_ver(q)
    # The old node#ver is no longer known.
    assert_error(info(bob, node="https://hearth.im#" + old_ver), "item-not-found", "cancel")
    server.assert_alive()


def test_server_items_empty(login):
    alice = login("alice")
    q = result_query(items(alice), NS_DISCO_ITEMS)
    assert list(q) == [], show(q)


def test_account_info_self_contact_stranger(server, login):
    alice = login("alice")
    bob = login("bob")
    carol = login("carol")
    # bob subscribes to alice: alice's roster has bob with 'from'.
    hearthtest.subscribe(bob, "bob", alice, "alice")

    q = result_query(info(alice, to=bare_jid("alice")))
    # The account itself, and its personal eventing service (XEP-0163 §6).
    assert identities(q) == [("account", "registered", "", ""), ("pubsub", "pep", "", "")], show(q)
    feats = features(q)
    assert {NS_DISCO_INFO, NS_DISCO_ITEMS} <= set(feats)
    assert feats == sorted(set(feats))
    assert "jabber:iq:version" not in feats  # a server-only namespace

    q2 = result_query(info(bob, to=bare_jid("alice")))
    assert identities(q2) == identities(q) and features(q2) == feats

    # Not subscribed: as if there were nothing (Prosody: service-unavailable).
    assert_error(info(carol, to=bare_jid("alice")), "service-unavailable", "cancel")
    assert_error(items(carol, to=bare_jid("alice")), "service-unavailable", "cancel")
    # alice has no 'from' subscription in bob's roster.
    assert_error(info(alice, to=bare_jid("bob")), "service-unavailable", "cancel")
    # Unknown account.
    r = info(alice, to=bare_jid("nobody"))
    assert r.get("type") == "error", show(r)

    # Items: no resources are listed, to anyone.
    for who in (alice, bob):
        qi = result_query(items(who, to=bare_jid("alice")), NS_DISCO_ITEMS)
        assert list(qi) == [], show(qi)
    # A node on an account does not exist.
    assert_error(info(alice, to=bare_jid("alice"), node="urn:example:x"), "item-not-found")
    for c in (alice, bob, carol):
        c.assert_ping()
    server.assert_alive()


@pytest.mark.parametrize("ns", [NS_DISCO_INFO, NS_DISCO_ITEMS])
@pytest.mark.parametrize("to", [DOMAIN, None])
def test_malformed_disco_query(server, login, ns, to):
    alice = login("alice")
    r = alice.iq("get", "<items xmlns='%s'/>" % ns, to=to)
    assert_error(r, "bad-request", "modify")
    r = alice.iq("get", "<query xmlns='%s'><junk/></query>" % ns, to=to)
    assert r.get("type") == "result", show(r)  # unknown children are ignored
    alice.assert_ping()
    server.assert_alive()


def test_slixmpp_verifies_caps_and_queries_services(make_server, loop):  # noqa: F811
    """slixmpp checks the server's caps ver (from the stream features) against
    the node#ver disco#info, with a XEP-0157 form in it, and uses the
    XEP-0092/0199/0202/0012 plugins."""
    server = make_server({"contact": {"admin": "xmpp:admin@localhost",
                                      "abuse": "mailto:abuse@example.org"}})

    async def run():
        x = make_xmpp("alice@localhost/slix", USERS["alice"])
        for plugin in ("xep_0004", "xep_0030", "xep_0115", "xep_0092", "xep_0199", "xep_0202",
                       "xep_0012"):
            x.register_plugin(plugin)
        try:
            assert await start_session(x, server.starttls_port) == "session"
            ver = None
            for _ in range(100):
                ver = await x["xep_0115"].get_verstring(DOMAIN)
                if ver:
                    break
                await asyncio.sleep(0.05)
            assert ver, "slixmpp did not accept the server's caps (hash mismatch?)"
            info = await x["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT)
            assert ("server", "im", None, "Hearth") in info["disco_info"]["identities"]
            assert "http://jabber.org/protocol/disco#info" in info["disco_info"]["features"]
            form = info["disco_info"]["form"]
            admin = form.get_fields()["admin-addresses"].get_value(convert=False)
            assert admin in ("xmpp:admin@localhost", ["xmpp:admin@localhost"]), str(info)
            version = await x["xep_0092"].get_version(DOMAIN, timeout=TIMEOUT)
            assert version["software_version"]["name"] == "Hearth", str(version)
            assert not version["software_version"]["version"], str(version)
            rtt = await x["xep_0199"].ping(DOMAIN, timeout=TIMEOUT)
            assert rtt >= 0
            t = await x["xep_0202"].get_entity_time(DOMAIN, timeout=TIMEOUT)
            # (slixmpp's stanza parses neither <tzo/> nor a <utc/> with its
            # mandatory 'Z': read the XML.)
            utc = t.xml.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
            assert utc.endswith("Z") and utc[:4] == time.strftime("%Y", time.gmtime()), str(t)
            last = await x["xep_0012"].get_last_activity(DOMAIN, timeout=TIMEOUT)
            assert int(last["last_activity"]["seconds"]) >= 0, str(last)
        finally:
            await stop(x)

    loop.run_until_complete(run())
    server.assert_alive()
