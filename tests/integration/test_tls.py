"""TLS and SASL on the c2s ports (RFC 6120 sections 5 and 6, XEP-0368,
XEP-0440, RFC 5802/7677, RFC 5929)."""

import base64 as b64
import hashlib
import ssl

import pytest

from conftest import USERS
from hearthtest import (NS_BIND, NS_SASL, NS_SASL_CB, NS_SESSION, NS_TLS, XmppClient,
                        client_context, sasl_failure_condition, scram_server_first, show, tag)

ALL_MECHS = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
WEAK_MECHS = {"ANONYMOUS", "DIGEST-MD5", "CRAM-MD5", "LOGIN", "X-OAUTH2"}

GCM_12 = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384")
CHACHA_12 = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
CBC_12 = ("ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
          "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
          "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:AES128-SHA256:AES256-SHA256:"
          "AES128-SHA:AES256-SHA:@SECLEVEL=0")

# Errors that mean our own client refused to try, i.e. a broken test.
CLIENT_SIDE = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH")


def assert_tls_features(c):
    """Post-TLS features: the SASL mechanisms and XEP-0440 types, no starttls."""
    feats = c.features
    assert c.feature(NS_TLS, "starttls") is None, "starttls offered again after TLS: " + show(feats)
    mechs = set(c.mechanisms())
    assert ALL_MECHS <= mechs, "mechanisms %s lack %s" % (sorted(mechs), sorted(ALL_MECHS - mechs))
    assert not (mechs & WEAK_MECHS), "weak mechanisms offered: %s" % sorted(mechs & WEAK_MECHS)
    cb = c.feature(NS_SASL_CB, "sasl-channel-binding")
    assert cb is not None, "no XEP-0440 <sasl-channel-binding/>: " + show(feats)
    types = {e.get("type") for e in cb.findall(tag(NS_SASL_CB, "channel-binding"))}
    assert {"tls-server-end-point", "tls-exporter"} <= types, "channel-binding types: %s" % types
    assert c.feature(NS_BIND, "bind") is None, "bind offered before authentication"


def handshake_refused(server, ctx):
    """STARTTLS with ctx; returns the SSLError/OSError the handshake ended with."""
    c = XmppClient.connect(server.starttls_port)
    try:
        c.open_stream()
        with pytest.raises((ssl.SSLError, OSError)) as info:
            c.starttls(ctx=ctx)
        err = info.value
        assert not any(s in str(err) for s in CLIENT_SIDE), (
            "our client never offered the protocol (test setup broken): %s" % err)
        return err
    finally:
        c.close()


# -- before TLS


def test_features_before_tls_require_starttls(server, connect):
    c = connect()
    feats = c.open_stream()
    st = c.feature(NS_TLS, "starttls")
    assert st is not None, "no <starttls/>: " + show(feats)
    assert st.find(tag(NS_TLS, "required")) is not None, "<starttls/> not <required/>: " + show(feats)
    assert c.feature(NS_SASL, "mechanisms") is None, "mechanisms offered before TLS: " + show(feats)
    assert c.feature(NS_BIND, "bind") is None
    assert c.feature(NS_SESSION, "session") is None


def test_stream_without_xml_declaration(server, connect):
    c = connect()
    c.open_stream(declaration=False)
    assert c.feature(NS_TLS, "starttls") is not None


def test_auth_before_tls_is_refused(server, connect):
    c = connect()
    c.open_stream()
    c.send("<auth xmlns='%s' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXNlY3JldC0x</auth>" % NS_SASL)
    cond = c.expect_stream_error()
    assert cond in ("policy-violation", "not-authorized"), "stream error %s" % cond
    assert not any(e.tag == tag(NS_SASL, "success") for e in c.pending)
    server.assert_alive()


def test_iq_before_tls_is_refused(server, connect):
    c = connect()
    c.open_stream()
    c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    c.expect_stream_error()
    assert not any(e.get("type") == "result" for e in c.pending), "iq answered before TLS"
    server.assert_alive()


def test_message_before_tls_is_refused(server, connect):
    c = connect()
    c.open_stream()
    c.send("<message to='bob@localhost' type='chat'><body>plaintext</body></message>")
    c.expect_stream_error()
    server.assert_alive()


# -- protocol versions and suites


def test_tls11_refused(server):
    ctx = client_context(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="ALL:@SECLEVEL=0")
    handshake_refused(server, ctx)
    server.assert_alive()


def test_tls10_refused_on_direct_tls(server):
    ctx = client_context(min_version=ssl.TLSVersion.TLSv1, max_version=ssl.TLSVersion.TLSv1,
                         ciphers="ALL:@SECLEVEL=0", alpn=["xmpp-client"])
    with pytest.raises((ssl.SSLError, OSError)) as info:
        XmppClient.connect_direct_tls(server.direct_tls_port, ctx=ctx).close()
    assert not any(s in str(info.value) for s in CLIENT_SIDE), str(info.value)
    server.assert_alive()


def test_tls12_cbc_only_refused(server):
    ctx = client_context(min_version=ssl.TLSVersion.TLSv1_2, max_version=ssl.TLSVersion.TLSv1_2,
                         ciphers=CBC_12)
    handshake_refused(server, ctx)
    server.assert_alive()


@pytest.mark.parametrize("ciphers,marker", [(GCM_12, "GCM"), (CHACHA_12, "CHACHA20")],
                         ids=["aes-gcm", "chacha20-poly1305"])
def test_tls12_ecdhe_aead_accepted(server, connect, ciphers, marker):
    c = connect()
    c.open_stream()
    ctx = client_context(min_version=ssl.TLSVersion.TLSv1_2, max_version=ssl.TLSVersion.TLSv1_2,
                         ciphers=ciphers)
    c.starttls(ctx=ctx)
    assert c.sock.version() == "TLSv1.2"
    name = c.sock.cipher()[0]
    assert name.startswith("ECDHE-") and marker in name, name
    assert_tls_features(c)
    c.authenticate("alice", USERS["alice"], "SCRAM-SHA-256-PLUS")
    c.bind()
    c.assert_ping()


def test_tls13_accepted(server, connect):
    c = connect()
    c.open_stream()
    c.starttls(ctx=client_context(min_version=ssl.TLSVersion.TLSv1_3))
    assert c.sock.version() == "TLSv1.3"
    assert_tls_features(c)


def test_certificate_matches_logged_fingerprint(server, connect):
    assert server.fingerprint, "no 'certificate fingerprint SHA-256' line in the log"
    c = connect()
    c.open_stream()
    c.starttls()
    der = c.sock.getpeercert(binary_form=True)
    fp = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
    assert fp == server.fingerprint


# -- direct TLS (XEP-0368)


def test_direct_tls_alpn_and_features(server, connect):
    c = connect(direct_tls=True)
    assert c.sock.selected_alpn_protocol() == "xmpp-client"
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    c.open_stream()
    assert_tls_features(c)
    c.authenticate("alice", USERS["alice"], "SCRAM-SHA-256-PLUS")
    c.bind()
    c.assert_ping()


def test_direct_tls_without_alpn_accepted(server, connect):
    c = connect(direct_tls=True, alpn=None)
    assert c.sock.selected_alpn_protocol() is None
    c.open_stream()
    assert_tls_features(c)


def test_direct_tls_foreign_alpn_refused(server):
    with pytest.raises((ssl.SSLError, OSError)):
        XmppClient.connect_direct_tls(server.direct_tls_port, alpn=["h2"]).close()
    server.assert_alive()


# -- SASL


def test_channel_binding_types_advertised(server, connect):
    c = connect()
    c.open_stream()
    c.starttls()
    assert_tls_features(c)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                                  "SCRAM-SHA-1", "PLAIN"])
def test_sasl_mechanism_succeeds(server, connect, mech):
    c = connect()
    c.open_stream()
    c.starttls()
    feats = c.authenticate("bob", USERS["bob"], mech)
    assert feats.find(tag(NS_SASL, "mechanisms")) is None, "mechanisms offered again: " + show(feats)
    assert c.bind("sasl") == "bob@localhost/sasl"
    c.assert_ping()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_scram_plus_on_direct_tls(server, version):
    ctx = client_context(min_version=version, max_version=version, alpn=["xmpp-client"],
                         ciphers=GCM_12 if version == ssl.TLSVersion.TLSv1_2 else None)
    c = XmppClient.connect_direct_tls(server.direct_tls_port, ctx=ctx)
    server.clients.append(c)
    c.open_stream()
    c.authenticate("carol", USERS["carol"], "SCRAM-SHA-256-PLUS")
    c.bind()
    c.assert_ping()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"])
def test_wrong_password_not_authorized(server, connect, mech):
    c = connect()
    c.open_stream()
    c.starttls()
    el = c.sasl("alice", "not-the-password", mech)
    assert el.tag == tag(NS_SASL, "failure"), show(el)
    assert sasl_failure_condition(el) == "not-authorized", show(el)


def test_scram_plus_wrong_binding_refused(server, connect):
    c = connect()
    c.open_stream()
    c.starttls()
    el = c.auth_scram("alice", USERS["alice"], "SCRAM-SHA-256-PLUS", cb_data=b"\0" * 32)
    assert el.tag == tag(NS_SASL, "failure"), "wrong channel binding accepted: " + show(el)


def test_scram_y_flag_refused_when_plus_offered(server, connect):
    # RFC 5802 section 6: 'y' says the client thinks the server cannot bind;
    # the server advertises -PLUS, so this is a downgrade and MUST fail.
    c = connect()
    c.open_stream()
    c.starttls()
    el = c.auth_scram("alice", USERS["alice"], "SCRAM-SHA-256", gs2_flag="y")
    assert el.tag == tag(NS_SASL, "failure"), "'y' accepted although -PLUS is offered: " + show(el)


def test_scram_plus_unsupported_binding_type_refused(server, connect):
    c = connect()
    c.open_stream()
    c.starttls()
    el = c.auth_scram("alice", USERS["alice"], "SCRAM-SHA-256-PLUS", gs2_flag="p=tls-unique",
                      cb_data=b"\0" * 12)
    assert el.tag == tag(NS_SASL, "failure"), "tls-unique accepted: " + show(el)


def test_retry_after_failure_succeeds(server, connect):
    c = connect()
    c.open_stream()
    c.starttls()
    el = c.sasl("alice", "wrong", "SCRAM-SHA-256")
    assert el.tag == tag(NS_SASL, "failure"), show(el)
    c.authenticate("alice", USERS["alice"], "SCRAM-SHA-256")
    assert c.bind().startswith("alice@localhost/")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_unknown_user_looks_like_a_real_account(server, mechanism):
    """RFC 5802 9: the server-first-message for an unknown name must not give
    it away: same iteration count and salt size as a real account, and the
    same salt every time for the same name (a random one would betray it)."""
    real = scram_server_first(server, "alice", mechanism)
    ghost1 = scram_server_first(server, "nobody", mechanism)
    ghost2 = scram_server_first(server, "nobody", mechanism)
    assert ghost1["i"] == real["i"] == "4096"
    assert len(b64.b64decode(ghost1["s"])) == len(b64.b64decode(real["s"]))
    assert ghost1["s"] == ghost2["s"]
    assert scram_server_first(server, "somebody-else", mechanism)["s"] != ghost1["s"]
    server.assert_alive()
