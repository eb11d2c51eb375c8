#include "xmpp/scram.h"

#include <gtest/gtest.h>

#include <string>

#include "core/base64.h"

namespace hearth::xmpp {
namespace {

std::string b64(std::string_view s) {
  return base64_encode(s);
}
std::string unb64(std::string_view s) {
  auto r = base64_decode(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? r.value() : std::string();
}

// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256).
struct RfcExample {
  ScramHash hash;
  const char* salt_b64;
  const char* client_first;
  const char* server_first;
  const char* client_final;
  const char* server_final;
  // StoredKey/ServerKey for "pencil" with that salt and i=4096, computed
  // independently with Python's hashlib.pbkdf2_hmac and hmac.
  const char* stored_key_b64;
  const char* server_key_b64;
};

const RfcExample kRfc5802 = {
    ScramHash::kSha1,
    "QSXCR+Q6sek8bf92",
    "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    "6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
    "D+CSWLOshSulAsxiupA+qs2/fTE=",
};

const RfcExample kRfc7677 = {
    ScramHash::kSha256,
    "W22ZaJ0SNY7soEsUEjb6gQ==",
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
};

class ScramRfcTest : public ::testing::TestWithParam<RfcExample> {};

TEST_P(ScramRfcTest, DerivesStoredAndServerKey) {
  const RfcExample& ex = GetParam();
  auto creds = scram_derive(ex.hash, "pencil", unb64(ex.salt_b64), 4096);
  ASSERT_TRUE(creds.ok()) << creds.error().message;
  EXPECT_EQ(creds->salt, unb64(ex.salt_b64));
  EXPECT_EQ(creds->iterations, 4096u);
  EXPECT_EQ(creds->stored_key.size(), scram_hash_size(ex.hash));
  EXPECT_EQ(b64(creds->stored_key), ex.stored_key_b64);
  EXPECT_EQ(b64(creds->server_key), ex.server_key_b64);
}

TEST_P(ScramRfcTest, ClientProducesTheRfcMessages) {
  const RfcExample& ex = GetParam();
  auto final_msg = scram_client_final(ex.hash, "pencil", ex.client_first, ex.server_first, "");
  ASSERT_TRUE(final_msg.ok()) << final_msg.error().message;
  EXPECT_EQ(final_msg->message, ex.client_final);
  EXPECT_EQ(final_msg->server_final, ex.server_final);
}

TEST_P(ScramRfcTest, ServerSideChecksTheRfcProof) {
  const RfcExample& ex = GetParam();
  auto creds = scram_derive(ex.hash, "pencil", unb64(ex.salt_b64), 4096);
  ASSERT_TRUE(creds.ok());
  std::string client_final = ex.client_final;
  size_t p = client_final.rfind(",p=");
  std::string without_proof = client_final.substr(0, p);
  std::string proof = unb64(client_final.substr(p + 3));
  std::string auth_message =
      std::string(ex.client_first).substr(3) + "," + ex.server_first + "," + without_proof;
  EXPECT_TRUE(scram_verify_proof(ex.hash, creds->stored_key, auth_message, proof));
  auto sig = scram_server_signature(ex.hash, creds->server_key, auth_message);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ("v=" + b64(sig.value()), ex.server_final);

  // Any flipped bit in the proof, or a different AuthMessage, fails.
  for (size_t i = 0; i < proof.size(); ++i) {
    std::string bad = proof;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(scram_verify_proof(ex.hash, creds->stored_key, auth_message, bad)) << i;
  }
  EXPECT_FALSE(scram_verify_proof(ex.hash, creds->stored_key, auth_message + "x", proof));
  EXPECT_FALSE(scram_verify_proof(ex.hash, creds->stored_key, auth_message, proof.substr(1)));
  EXPECT_FALSE(scram_verify_proof(ex.hash, creds->server_key, auth_message, proof));
}

// Named, so that CTest can run each case by a stable name (the default name
// of a struct parameter is its bytes, addresses included).
std::string rfc_name(const ::testing::TestParamInfo<RfcExample>& p) {
  return p.index == 0 ? "Rfc5802Sha1" : "Rfc7677Sha256";
}
INSTANTIATE_TEST_SUITE_P(Rfc, ScramRfcTest, ::testing::Values(kRfc5802, kRfc7677), rfc_name);

TEST(ScramTest, HashSizes) {
  EXPECT_EQ(scram_hash_size(ScramHash::kSha1), 20u);
  EXPECT_EQ(scram_hash_size(ScramHash::kSha256), 32u);
  auto h1 = scram_hash(ScramHash::kSha1, "abc");
  auto h256 = scram_hash(ScramHash::kSha256, "abc");
  ASSERT_TRUE(h1.ok() && h256.ok());
  // FIPS 180-2 "abc" test vectors.
  EXPECT_EQ(b64(h1.value()), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  EXPECT_EQ(b64(h256.value()), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
}

TEST(ScramTest, HmacMatchesRfc4231Case2) {
  // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
  auto mac = scram_hmac(ScramHash::kSha256, "Jefe", "what do ya want for nothing?");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(b64(mac.value()), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

TEST(ScramTest, DeriveRejectsBadParameters) {
  EXPECT_FALSE(scram_derive(ScramHash::kSha256, "", "salt", 4096).ok());
  EXPECT_FALSE(scram_derive(ScramHash::kSha256, "pw", "", 4096).ok());
  EXPECT_FALSE(scram_derive(ScramHash::kSha256, "pw", "salt", 0).ok());
  EXPECT_FALSE(scram_derive(ScramHash::kSha256, "pw", "salt", kScramMaxIterations + 1).ok());
  EXPECT_TRUE(scram_derive(ScramHash::kSha256, "pw", "salt", 1).ok());
}

TEST(ScramTest, DifferentPasswordsSaltsAndCountsGiveDifferentKeys) {
  auto a = scram_derive(ScramHash::kSha256, "pencil", "salt", 10);
  auto b = scram_derive(ScramHash::kSha256, "pencil2", "salt", 10);
  auto c = scram_derive(ScramHash::kSha256, "pencil", "salT", 10);
  auto d = scram_derive(ScramHash::kSha256, "pencil", "salt", 11);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  EXPECT_NE(a->stored_key, b->stored_key);
  EXPECT_NE(a->stored_key, c->stored_key);
  EXPECT_NE(a->stored_key, d->stored_key);
  EXPECT_NE(a->stored_key, a->server_key);
}

TEST(ScramTest, ClientRejectsBadServerFirst) {
  const char* first = "n,,n=user,r=abcdef";
  const char* kBad[] = {
      "r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",     // nonce not extended
      "r=abXdefXX,s=QSXCR+Q6sek8bf92,i=4096",   // nonce not ours
      "r=abcdefXX,s=QSXCR+Q6sek8bf9,i=4096",    // bad base64 salt
      "r=abcdefXX,s=QSXCR+Q6sek8bf92,i=0",      // zero iterations
      "r=abcdefXX,s=QSXCR+Q6sek8bf92,i=40x96",  // not a number
      "r=abcdefXX,s=QSXCR+Q6sek8bf92",          // no count
      "s=QSXCR+Q6sek8bf92,r=abcdefXX,i=4096",   // wrong order
      "m=x,r=abcdefXX,s=QSXCR+Q6sek8bf92,i=4096",
  };
  for (const char* s : kBad) {
    EXPECT_FALSE(scram_client_final(ScramHash::kSha1, "pencil", first, s, "").ok()) << s;
  }
}

TEST(ScramTest, ClientBindsGs2HeaderAndChannelData) {
  auto f = scram_client_final(ScramHash::kSha256, "pencil", "p=tls-exporter,,n=user,r=abc",
                              "r=abcdef,s=QSXCR+Q6sek8bf92,i=4", "CBDATA");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->message.substr(0, f->message.find(',')), "c=" + b64("p=tls-exporter,,CBDATA"));
  auto y = scram_client_final(ScramHash::kSha256, "pencil", "y,a=user,n=user,r=abc",
                              "r=abcdef,s=QSXCR+Q6sek8bf92,i=4", "");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->message.substr(0, y->message.find(',')), "c=" + b64("y,a=user,"));
}

TEST(ScramTest, SaslnameEscaping) {
  EXPECT_EQ(scram_escape_saslname("a,b=c"), "a=2Cb=3Dc");
  EXPECT_EQ(scram_escape_saslname("plain"), "plain");
  auto u = scram_unescape_saslname("a=2Cb=3Dc");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.value(), "a,b=c");
  const char* kBad[] = {"", "a=2c", "a=", "a=2", "a=41", "a,b", "=3", "a==3D"};
  for (const char* s : kBad)
    EXPECT_FALSE(scram_unescape_saslname(s).ok()) << s;
  EXPECT_FALSE(scram_unescape_saslname(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(scram_unescape_saslname("a\xff").ok());
}

TEST(PreparePasswordTest, AsciiPrintablePassesUnchanged) {
  std::string all;
  for (char c = 0x20; c < 0x7f; ++c)
    all.push_back(c);
  for (std::string pw : {std::string("pencil"), std::string(" spaced out "), all}) {
    auto p = prepare_password(pw);
    ASSERT_TRUE(p.ok()) << pw;
    EXPECT_EQ(p.value(), pw);
  }
}

TEST(PreparePasswordTest, RejectsEmptyAndControls) {
  EXPECT_FALSE(prepare_password("").ok());
  EXPECT_FALSE(prepare_password("tab\there").ok());
  EXPECT_FALSE(prepare_password("nl\n").ok());
  EXPECT_FALSE(prepare_password("del\x7f").ok());
  EXPECT_FALSE(prepare_password(std::string("nul\0x", 5)).ok());
  EXPECT_FALSE(prepare_password("c1\xc2\x85").ok());  // U+0085 NEL (Cc)
  EXPECT_FALSE(prepare_password("bad\xc3").ok());     // truncated UTF-8
  EXPECT_FALSE(prepare_password("\xc0\xafx").ok());   // overlong
}

TEST(PreparePasswordTest, MapsNonAsciiSpacesAndNormalises) {
  // U+00A0 NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE -> U+0020.
  auto p = prepare_password(
      "a\xc2\xa0"
      "b\xe3\x80\x80"
      "c");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value(), "a b c");
  // e + U+0301 COMBINING ACUTE -> U+00E9 (NFC).
  auto e = prepare_password(
      "caf"
      "e\xcc\x81");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value(), "caf\xc3\xa9");
  // Already NFC, non-ASCII, not a space: unchanged.
  auto s = prepare_password("\xc3\x9f\xe2\x82\xac");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value(), "\xc3\x9f\xe2\x82\xac");
}

}  // namespace
}  // namespace hearth::xmpp
