#include "xmpp/sasl.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base64.h"
#include "fake_account_store.h"
#include "xmpp/account_store.h"
#include "xmpp/auth.h"
#include "xmpp/scram.h"

namespace hearth::xmpp {
namespace {

using Kind = SaslReply::Kind;

constexpr uint32_t kTestIterations = 64;

std::string unb64(std::string_view s) {
  auto r = base64_decode(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? r.value() : std::string();
}

// In-memory AccountStore: credentials derived like the real one would.
using testing::FakeAccountStore;

ChannelBindings tls_only() {
  ChannelBindings cb;
  cb.tls = true;
  cb.domain = "example.org";
  return cb;
}

ChannelBindings tls_with_bindings() {
  ChannelBindings cb = tls_only();
  cb.tls_exporter = std::string(32, '\x5a');
  cb.tls_server_end_point = std::string(32, '\xa5');
  return cb;
}

ScramHash hash_of(SaslMechanism m) {
  return m == SaslMechanism::kScramSha1 || m == SaslMechanism::kScramSha1Plus ? ScramHash::kSha1
                                                                              : ScramHash::kSha256;
}

// A SCRAM client built from the RFC formulas (scram_client_final).
struct TestClient {
  ScramHash hash = ScramHash::kSha256;
  std::string gs2 = "n,,";
  std::string user = "juliet";
  std::string password = "r0m30myr0m30";
  std::string cb_data;
  std::string nonce = "clientNONCEclientNONCE";

  std::string first() const { return gs2 + "n=" + scram_escape_saslname(user) + ",r=" + nonce; }
  ScramClientFinal final_for(const std::string& server_first) const {
    auto f = scram_client_final(hash, password, first(), server_first, cb_data);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    return f.ok() ? f.value() : ScramClientFinal{};
  }
};

// Runs a full exchange; the replies in order.
std::vector<SaslReply> run_scram(SaslServer& server, const TestClient& client,
                                 std::string* expected_server_final = nullptr) {
  std::vector<SaslReply> replies;
  replies.push_back(server.step(client.first()));
  if (replies.back().kind != Kind::kChallenge) return replies;
  ScramClientFinal f = client.final_for(replies.back().data);
  if (expected_server_final) *expected_server_final = f.server_final;
  replies.push_back(server.step(f.message));
  return replies;
}

// Attribute `name` of a server-first message.
std::string attr(const std::string& msg, char name) {
  std::string key = std::string(1, name) + "=";
  size_t pos = msg.rfind(key, 0) == 0 ? 0 : msg.find("," + key);
  if (pos == std::string::npos) return "";
  if (pos != 0) ++pos;
  size_t end = msg.find(',', pos);
  return msg.substr(pos + 2, end == std::string::npos ? std::string::npos : end - pos - 2);
}

class SaslServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.create("juliet", "r0m30myr0m30", kTestIterations).ok());
  }

  std::unique_ptr<SaslServer> make(SaslMechanism m, const ChannelBindings& cb,
                                   std::string nonce = "") {
    SaslServerOptions opts;
    opts.fake_iterations = kTestIterations;
    opts.server_nonce_for_testing = std::move(nonce);
    FakeAccountStore* store = &store_;
    return make_sasl_server(
        m, cb, [store](std::string_view u) { return store->get(u); }, opts);
  }

  FakeAccountStore store_;
};

// --- RFC examples through the server state machine ---

struct RfcCase {
  SaslMechanism mechanism;
  const char* salt_b64;
  const char* server_nonce;
  const char* client_first;
  const char* server_first;
  const char* client_final;
  const char* server_final;
};

TEST_F(SaslServerTest, ReproducesRfcExamples) {
  const RfcCase kCases[] = {
      // RFC 5802 §5
      {SaslMechanism::kScramSha1, "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j",
       "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
       "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
       "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
       "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="},
      // RFC 7677 §3
      {SaslMechanism::kScramSha256, "W22ZaJ0SNY7soEsUEjb6gQ==", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
       "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
       "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
       "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
       "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
       "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
  };
  AccountRecord rec;
  rec.username = "user";
  auto sha1 = scram_derive(ScramHash::kSha1, "pencil", unb64(kCases[0].salt_b64), 4096);
  auto sha256 = scram_derive(ScramHash::kSha256, "pencil", unb64(kCases[1].salt_b64), 4096);
  ASSERT_TRUE(sha1.ok() && sha256.ok());
  rec.sha1 = sha1.value();
  rec.sha256 = sha256.value();
  store_.accounts["user"] = rec;

  for (const RfcCase& c : kCases) {
    SCOPED_TRACE(std::string(sasl_mechanism_name(c.mechanism)));
    auto server = make(c.mechanism, tls_only(), c.server_nonce);
    SaslReply first = server->step(c.client_first);
    ASSERT_EQ(first.kind, Kind::kChallenge) << first.condition;
    EXPECT_EQ(first.data, c.server_first);
    SaslReply last = server->step(c.client_final);
    ASSERT_EQ(last.kind, Kind::kSuccess) << last.condition;
    EXPECT_EQ(last.data, c.server_final);
    EXPECT_EQ(last.username, "user");
    EXPECT_TRUE(server->finished());
  }
}

// --- Mechanism lists ---

TEST(SaslMechanismsTest, NothingBeforeTls) {
  ChannelBindings cb;
  cb.tls_exporter = "x";  // ignored without TLS
  EXPECT_TRUE(sasl_mechanisms(cb).empty());
  SaslSelection s = sasl_select("SCRAM-SHA-256", cb);
  EXPECT_FALSE(s.mechanism);
  EXPECT_EQ(s.condition, "encryption-required");
  EXPECT_EQ(sasl_select("NOPE", cb).condition, "encryption-required");
}

TEST(SaslMechanismsTest, PlusOnlyWithBindingData) {
  EXPECT_EQ(sasl_mechanisms(tls_only()),
            (std::vector<std::string>{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}));
  EXPECT_EQ(sasl_mechanisms(tls_with_bindings()),
            (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                                      "SCRAM-SHA-1", "PLAIN"}));
  ChannelBindings only_endpoint = tls_only();
  only_endpoint.tls_server_end_point = "h";
  EXPECT_EQ(sasl_mechanisms(only_endpoint).size(), 5u);
}

TEST(SaslMechanismsTest, SelectChecksTheOfferedList) {
  EXPECT_EQ(sasl_select("SCRAM-SHA-256-PLUS", tls_only()).condition, "invalid-mechanism");
  EXPECT_EQ(sasl_select("DIGEST-MD5", tls_with_bindings()).condition, "invalid-mechanism");
  EXPECT_EQ(sasl_select("scram-sha-256", tls_with_bindings()).condition, "invalid-mechanism");
  EXPECT_EQ(sasl_select("", tls_with_bindings()).condition, "invalid-mechanism");
  for (const std::string& name : sasl_mechanisms(tls_with_bindings())) {
    SaslSelection s = sasl_select(name, tls_with_bindings());
    ASSERT_TRUE(s.mechanism) << name;
    EXPECT_EQ(sasl_mechanism_name(*s.mechanism), name);
  }
}

// --- Full SCRAM exchanges ---

struct ScramCase {
  SaslMechanism mechanism;
  const char* gs2;
  bool exporter;  // else tls-server-end-point data for p=
};

TEST_F(SaslServerTest, SuccessfulExchanges) {
  const ScramCase kCases[] = {
      {SaslMechanism::kScramSha1, "n,,", false},
      {SaslMechanism::kScramSha256, "n,,", false},
      {SaslMechanism::kScramSha256Plus, "p=tls-exporter,,", true},
      {SaslMechanism::kScramSha1Plus, "p=tls-exporter,,", true},
      {SaslMechanism::kScramSha256Plus, "p=tls-server-end-point,,", false},
      {SaslMechanism::kScramSha1Plus, "p=tls-server-end-point,,", false},
      {SaslMechanism::kScramSha256Plus, "p=tls-exporter,a=juliet,", true},
      {SaslMechanism::kScramSha256, "n,a=juliet@example.org,", false},
  };
  for (const ScramCase& c : kCases) {
    SCOPED_TRACE(std::string(sasl_mechanism_name(c.mechanism)) + " " + c.gs2);
    ChannelBindings cb = tls_with_bindings();
    auto server = make(c.mechanism, cb);
    TestClient client;
    client.hash = hash_of(c.mechanism);
    client.gs2 = c.gs2;
    if (client.gs2[0] == 'p')
      client.cb_data = c.exporter ? cb.tls_exporter : cb.tls_server_end_point;
    std::string expected_final;
    auto replies = run_scram(*server, client, &expected_final);
    ASSERT_EQ(replies.size(), 2u);
    const SaslReply& first = replies[0];
    EXPECT_EQ(attr(first.data, 's'), base64_encode(client.hash == ScramHash::kSha1
                                                       ? store_.accounts["juliet"].sha1.salt
                                                       : store_.accounts["juliet"].sha256.salt));
    EXPECT_EQ(attr(first.data, 'i'), std::to_string(kTestIterations));
    // Our nonce part: 24 random bytes, base64.
    std::string r = attr(first.data, 'r');
    ASSERT_EQ(r.substr(0, client.nonce.size()), client.nonce);
    EXPECT_EQ(unb64(r.substr(client.nonce.size())).size(), 24u);
    EXPECT_EQ(replies[1].kind, Kind::kSuccess) << replies[1].condition;
    EXPECT_EQ(replies[1].data, expected_final);
    EXPECT_EQ(replies[1].username, "juliet");
  }
}

TEST_F(SaslServerTest, ServerNoncesDiffer) {
  auto a = make(SaslMechanism::kScramSha256, tls_only());
  auto b = make(SaslMechanism::kScramSha256, tls_only());
  TestClient client;
  SaslReply ra = a->step(client.first());
  SaslReply rb = b->step(client.first());
  ASSERT_EQ(ra.kind, Kind::kChallenge);
  ASSERT_EQ(rb.kind, Kind::kChallenge);
  EXPECT_NE(attr(ra.data, 'r'), attr(rb.data, 'r'));
}

TEST_F(SaslServerTest, NormalisesAndUnescapesTheUsername) {
  ASSERT_TRUE(store_.create("a,b=c", "pw-with-commas", kTestIterations).ok());
  TestClient client;
  client.user = "a,b=c";
  client.password = "pw-with-commas";
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  auto replies = run_scram(*server, client);
  ASSERT_EQ(replies.back().kind, Kind::kSuccess) << replies.back().condition;
  EXPECT_EQ(replies.back().username, "a,b=c");

  client = TestClient();
  client.user = "JULIET";
  server = make(SaslMechanism::kScramSha256, tls_only());
  replies = run_scram(*server, client);
  ASSERT_EQ(replies.back().kind, Kind::kSuccess) << replies.back().condition;
  EXPECT_EQ(replies.back().username, "juliet");
}

TEST_F(SaslServerTest, WrongPasswordFailsAtClientFinal) {
  for (SaslMechanism m : {SaslMechanism::kScramSha1, SaslMechanism::kScramSha256}) {
    TestClient client;
    client.hash = hash_of(m);
    client.password = "wrong";
    auto server = make(m, tls_only());
    auto replies = run_scram(*server, client);
    ASSERT_EQ(replies.size(), 2u);
    EXPECT_EQ(replies[0].kind, Kind::kChallenge);
    EXPECT_EQ(replies[1].kind, Kind::kFailure);
    EXPECT_EQ(replies[1].condition, "not-authorized");
    EXPECT_TRUE(replies[1].data.empty());
    EXPECT_TRUE(replies[1].username.empty());
  }
}

TEST_F(SaslServerTest, UnknownUserLooksLikeWrongPassword) {
  TestClient known;
  known.password = "wrong";
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  auto wrong = run_scram(*server, known);

  TestClient unknown;
  unknown.user = "romeo";
  server = make(SaslMechanism::kScramSha256, tls_only());
  auto replies = run_scram(*server, unknown);

  ASSERT_EQ(replies.size(), wrong.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    EXPECT_EQ(replies[i].kind, wrong[i].kind) << i;
    EXPECT_EQ(replies[i].condition, wrong[i].condition) << i;
  }
  EXPECT_EQ(replies[1].condition, "not-authorized");
  // Fake salt: 16 bytes, stable per name, different between names; the
  // configured count.
  std::string salt = attr(replies[0].data, 's');
  EXPECT_EQ(unb64(salt).size(), 16u);
  EXPECT_EQ(attr(replies[0].data, 'i'), std::to_string(kTestIterations));
  server = make(SaslMechanism::kScramSha256, tls_only());
  EXPECT_EQ(attr(server->step(unknown.first()).data, 's'), salt);
  // Real accounts have one random salt per hash; so do fake ones.
  server = make(SaslMechanism::kScramSha1, tls_only());
  unknown.hash = ScramHash::kSha1;
  std::string salt1 = attr(server->step(unknown.first()).data, 's');
  EXPECT_EQ(unb64(salt1).size(), 16u);
  EXPECT_NE(salt1, salt);
  server = make(SaslMechanism::kScramSha1Plus, tls_with_bindings());
  unknown.gs2 = "p=tls-exporter,,";
  EXPECT_EQ(attr(server->step(unknown.first()).data, 's'), salt1);
  TestClient other;
  other.user = "mercutio";
  server = make(SaslMechanism::kScramSha256, tls_only());
  EXPECT_NE(attr(server->step(other.first()).data, 's'), salt);
}

TEST_F(SaslServerTest, AccountWithoutCredentialsForTheHashFailsLikeWrongPassword) {
  store_.accounts["juliet"].sha1 = ScramCredentials{};
  TestClient client;
  client.hash = ScramHash::kSha1;
  auto server = make(SaslMechanism::kScramSha1, tls_only());
  auto replies = run_scram(*server, client);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1].condition, "not-authorized");
}

TEST_F(SaslServerTest, StoreErrorIsTemporaryFailure) {
  store_.fail = true;
  TestClient client;
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  SaslReply r = server->step(client.first());
  EXPECT_EQ(r.kind, Kind::kFailure);
  EXPECT_EQ(r.condition, "temporary-auth-failure");
}

// --- Channel binding ---

TEST_F(SaslServerTest, DowngradeYWhilePlusOfferedFails) {
  TestClient client;
  client.gs2 = "y,,";
  auto server = make(SaslMechanism::kScramSha256, tls_with_bindings());
  SaslReply r = server->step(client.first());
  EXPECT_EQ(r.kind, Kind::kFailure);
  EXPECT_EQ(r.condition, "not-authorized");

  // Without binding data to offer, "y" is an honest answer.
  server = make(SaslMechanism::kScramSha256, tls_only());
  auto replies = run_scram(*server, client);
  EXPECT_EQ(replies.back().kind, Kind::kSuccess) << replies.back().condition;
}

TEST_F(SaslServerTest, PlusFlagOnPlainScramFails) {
  TestClient client;
  client.gs2 = "p=tls-exporter,,";
  client.cb_data = tls_with_bindings().tls_exporter;
  auto server = make(SaslMechanism::kScramSha256, tls_with_bindings());
  SaslReply r = server->step(client.first());
  EXPECT_EQ(r.kind, Kind::kFailure);
  EXPECT_EQ(r.condition, "malformed-request");
}

TEST_F(SaslServerTest, PlusNeedsAnAvailableBindingType) {
  ChannelBindings exporter_only = tls_only();
  exporter_only.tls_exporter = std::string(32, '\x11');
  const char* kBad[] = {
      "n,,", "y,,", "p=tls-unique,,", "p=tls-server-end-point,,", "p=,,", "p=tls_exporter,,"};
  for (const char* gs2 : kBad) {
    TestClient client;
    client.gs2 = gs2;
    auto server = make(SaslMechanism::kScramSha256Plus, exporter_only);
    SaslReply r = server->step(client.first());
    EXPECT_EQ(r.kind, Kind::kFailure) << gs2;
    EXPECT_EQ(r.condition, "malformed-request") << gs2;
  }
}

TEST_F(SaslServerTest, WrongChannelBindingDataFails) {
  ChannelBindings cb = tls_with_bindings();
  struct {
    const char* gs2;
    std::string cb_data;
  } kCases[] = {
      {"p=tls-exporter,,", cb.tls_server_end_point},    // other type's data
      {"p=tls-exporter,,", std::string(32, '\0')},      // another channel
      {"p=tls-exporter,,", cb.tls_exporter.substr(1)},  // truncated
      {"p=tls-server-end-point,,", cb.tls_exporter},    // other type's data
  };
  for (const auto& c : kCases) {
    TestClient client;
    client.gs2 = c.gs2;
    client.cb_data = c.cb_data;
    auto server = make(SaslMechanism::kScramSha256Plus, cb);
    auto replies = run_scram(*server, client);
    ASSERT_EQ(replies.size(), 2u) << c.gs2;
    EXPECT_EQ(replies[1].kind, Kind::kFailure);
    EXPECT_EQ(replies[1].condition, "not-authorized");
  }
}

// Sends client-first, then a client-final built by hand from the pieces.
SaslReply final_with(SaslServer& server, const TestClient& client, const std::string& c_attr,
                     const std::string& nonce_suffix, bool replace_nonce = false) {
  SaslReply first = server.step(client.first());
  EXPECT_EQ(first.kind, Kind::kChallenge);
  std::string nonce = attr(first.data, 'r');
  nonce = replace_nonce ? nonce_suffix : nonce + nonce_suffix;
  std::string without_proof = "c=" + c_attr + ",r=" + nonce;
  std::string bare = client.first().substr(client.gs2.size());
  std::string auth_message = bare + "," + first.data + "," + without_proof;
  auto salt = base64_decode(attr(first.data, 's'));
  auto proof = scram_client_proof(client.hash, client.password, salt.value(),
                                  std::stoul(attr(first.data, 'i')), auth_message);
  EXPECT_TRUE(proof.ok());
  return server.step(without_proof + ",p=" + base64_encode(proof->client_proof));
}

TEST_F(SaslServerTest, HandBuiltFinalSucceedsOnlyWhenConsistent) {
  TestClient client;
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  EXPECT_EQ(final_with(*server, client, "biws", "").kind, Kind::kSuccess);
}

TEST_F(SaslServerTest, Gs2HeaderMustBeRepeated) {
  TestClient client;  // "n,," but c= claims "y,,"
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  SaslReply r = final_with(*server, client, base64_encode("y,,"), "");
  EXPECT_EQ(r.condition, "not-authorized");
}

TEST_F(SaslServerTest, NonceMismatchFails) {
  TestClient client;
  for (auto [suffix, replace] : {std::pair<const char*, bool>{"x", false},
                                 {"clientNONCEclientNONCE", true},
                                 {"someoneelsesnonceXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", true}}) {
    auto server = make(SaslMechanism::kScramSha256, tls_only());
    SaslReply r = final_with(*server, client, "biws", suffix, replace);
    EXPECT_EQ(r.kind, Kind::kFailure) << suffix;
    EXPECT_EQ(r.condition, "not-authorized") << suffix;
  }
}

// --- Malformed messages ---

TEST_F(SaslServerTest, MalformedClientFirst) {
  const std::string kBad[] = {
      "n",
      "n,",
      "n,,",
      "x,,n=juliet,r=abc",
      "N,,n=juliet,r=abc",
      "nn,,n=juliet,r=abc",
      "n,b=juliet,n=juliet,r=abc",  // authzid field not "a="
      "n,a=,n=juliet,r=abc",        // empty authzid
      "n,a=ju=liet,n=juliet,r=abc",
      "n,,m=ext,n=juliet,r=abc",  // reserved mandatory extension
      "n,,n=juliet,r=abc,m=ext",
      "n,,n=,r=abc",
      "n,,n=jul=2cet,r=abc",  // lowercase escape
      "n,,n=jul=41et,r=abc",  // other escape
      "n,,n=juliet=,r=abc",
      "n,,n=juliet",
      "n,,n=juliet,r=",
      "n,,n=juliet,r=ab c",  // space is not printable here
      "n,,n=juliet,r=ab\x7f",
      "n,,r=abc,n=juliet",  // order
      "n,,n=juliet,,r=abc",
      "n,,n=juliet,r=abc,",
      "n,,n=juliet,r=abc,x",
      "n,,n=juliet,r=abc,1=x",
      "n,,n=juli\xff"
      "et,r=abc",  // not UTF-8
      std::string("n,,n=jul\0iet,r=abc", 18),
      "p=tls exporter,,n=juliet,r=abc",
      " n,,n=juliet,r=abc",
      "n,,n=juliet,r=abc" + std::string(kSaslMaxMessage, 'x'),  // too long
  };
  for (const std::string& msg : kBad) {
    auto server = make(SaslMechanism::kScramSha256, tls_only());
    SaslReply r = server->step(msg);
    EXPECT_EQ(r.kind, Kind::kFailure) << msg;
    EXPECT_EQ(r.condition, "malformed-request") << msg;
    EXPECT_TRUE(server->finished());
  }
  EXPECT_EQ(store_.gets, 0);  // refused before touching the store
}

TEST_F(SaslServerTest, IgnoresWellFormedOptionalExtensions) {
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  SaslReply r = server->step("n,,n=juliet,r=abc,x=whatever");
  EXPECT_EQ(r.kind, Kind::kChallenge) << r.condition;
}

TEST_F(SaslServerTest, InvalidUsernameIsNotAuthorized) {
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  SaslReply r = server->step("n,,n=jul iet@home,r=abc");
  EXPECT_EQ(r.kind, Kind::kFailure);
  EXPECT_EQ(r.condition, "not-authorized");
}

TEST_F(SaslServerTest, MalformedClientFinal) {
  TestClient client;
  const std::string kBad[] = {
      "",
      "c=biws",
      "c=biws,r=@N@",
      "r=@N@,c=biws,p=@P@",
      "c=biws,r=@N@,p=@P@,x=y",  // proof not last
      "c=biws,r=@N@,m=x,p=@P@",
      "c=biws,r=@N@,,p=@P@",
      "c=bi ws,r=@N@,p=@P@",
      "c=biw,r=@N@,p=@P@",
      "c=biws,r=@N@,p=",
      "c=biws,r=@N@,p=AAAA",  // proof of the wrong size
      "c=biws,r=@N@,p=@P@=",
      "c=biws,r=@N@,p=@P@" + std::string(kSaslMaxMessage, 'A'),
  };
  for (std::string msg : kBad) {
    auto server = make(SaslMechanism::kScramSha256, tls_only());
    SaslReply first = server->step(client.first());
    ASSERT_EQ(first.kind, Kind::kChallenge);
    ScramClientFinal good = client.final_for(first.data);
    std::string proof = good.message.substr(good.message.rfind(",p=") + 3);
    for (auto [from, to] :
         {std::pair<std::string, std::string>{"@N@", attr(first.data, 'r')}, {"@P@", proof}}) {
      for (size_t pos; (pos = msg.find(from)) != std::string::npos;)
        msg.replace(pos, from.size(), to);
    }
    SaslReply r = server->step(msg);
    EXPECT_EQ(r.kind, Kind::kFailure) << msg;
    EXPECT_EQ(r.condition, "malformed-request") << msg;
  }
}

TEST_F(SaslServerTest, EmptyInitialResponseAsksForClientFirst) {
  TestClient client;
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  SaslReply r = server->step("");
  ASSERT_EQ(r.kind, Kind::kChallenge);
  EXPECT_EQ(r.data, "");
  auto replies = run_scram(*server, client);
  EXPECT_EQ(replies.back().kind, Kind::kSuccess) << replies.back().condition;

  // A second empty message is not a client-first.
  server = make(SaslMechanism::kScramSha256, tls_only());
  ASSERT_EQ(server->step("").kind, Kind::kChallenge);
  EXPECT_EQ(server->step("").condition, "malformed-request");
}

TEST_F(SaslServerTest, StepAfterCompletionIsMalformed) {
  TestClient client;
  auto server = make(SaslMechanism::kScramSha256, tls_only());
  auto replies = run_scram(*server, client);
  ASSERT_EQ(replies.back().kind, Kind::kSuccess);
  SaslReply again = server->step("c=biws");
  EXPECT_EQ(again.kind, Kind::kFailure);
  EXPECT_EQ(again.condition, "malformed-request");

  server = make(SaslMechanism::kScramSha256, tls_only());
  EXPECT_EQ(server->step("garbage").condition, "malformed-request");
  EXPECT_EQ(server->step(client.first()).condition, "malformed-request");
}

// --- authzid ---

TEST_F(SaslServerTest, AuthzidMustNameTheUser) {
  struct {
    std::string gs2;
    std::string domain;
    const char* condition;  // "" for success
  } kCases[] = {
      {"n,a=juliet,", "example.org", ""},
      {"n,a=Juliet,", "example.org", ""},
      {"n,a=juliet@example.org,", "example.org", ""},
      {"n,a=juliet@EXAMPLE.org,", "example.org", ""},
      {"n,a=romeo,", "example.org", "invalid-authzid"},
      {"n,a=romeo@example.org,", "example.org", "invalid-authzid"},
      {"n,a=juliet@example.com,", "example.org", "invalid-authzid"},
      {"n,a=juliet@example.org/balcony,", "example.org", "invalid-authzid"},
      {"n,a=example.org,", "example.org", "invalid-authzid"},
      {"n,a=juliet@example.org,", "", "invalid-authzid"},
      {"n,a=juliet,", "", ""},
  };
  for (const auto& c : kCases) {
    ChannelBindings cb = tls_only();
    cb.domain = c.domain;
    TestClient client;
    client.gs2 = c.gs2;
    auto server = make(SaslMechanism::kScramSha256, cb);
    auto replies = run_scram(*server, client);
    if (*c.condition == '\0') {
      EXPECT_EQ(replies.back().kind, Kind::kSuccess) << c.gs2 << " " << replies.back().condition;
    } else {
      ASSERT_EQ(replies.size(), 1u) << c.gs2;
      EXPECT_EQ(replies.back().condition, c.condition) << c.gs2;
    }
  }
}

// --- PLAIN ---

std::string plain(std::string_view authzid, std::string_view authcid, std::string_view pw) {
  std::string m(authzid);
  m.push_back('\0');
  m.append(authcid);
  m.push_back('\0');
  m.append(pw);
  return m;
}

TEST_F(SaslServerTest, PlainSuccessAndFailure) {
  auto server = make(SaslMechanism::kPlain, tls_only());
  SaslReply ok = server->step(plain("", "juliet", "r0m30myr0m30"));
  EXPECT_EQ(ok.kind, Kind::kSuccess) << ok.condition;
  EXPECT_EQ(ok.username, "juliet");
  EXPECT_EQ(ok.data, "");

  server = make(SaslMechanism::kPlain, tls_only());
  ok = server->step(plain("juliet@example.org", "Juliet", "r0m30myr0m30"));
  EXPECT_EQ(ok.kind, Kind::kSuccess) << ok.condition;
  EXPECT_EQ(ok.username, "juliet");

  const std::pair<std::string, const char*> kFail[] = {
      {plain("", "juliet", "r0m30myr0m31"), "not-authorized"},
      {plain("", "juliet", "r0m30myr0m30 "), "not-authorized"},
      {plain("", "romeo", "r0m30myr0m30"), "not-authorized"},  // unknown user
      {plain("", "juliet", "tab\tpw"), "not-authorized"},      // not a valid password
      {plain("", "jul iet", "r0m30myr0m30"), "not-authorized"},
      {plain("romeo", "juliet", "r0m30myr0m30"), "invalid-authzid"},
      {plain("juliet@example.com", "juliet", "r0m30myr0m30"), "invalid-authzid"},
  };
  for (const auto& [msg, condition] : kFail) {
    server = make(SaslMechanism::kPlain, tls_only());
    SaslReply r = server->step(msg);
    EXPECT_EQ(r.kind, Kind::kFailure);
    EXPECT_EQ(r.condition, condition);
  }
}

TEST_F(SaslServerTest, PlainMalformed) {
  const std::string kBad[] = {
      "juliet",
      std::string("juliet\0r0m30myr0m30", 19),
      plain("", "juliet", "r0m30myr0m30") + std::string(1, '\0'),
      plain("", "", "r0m30myr0m30"),
      plain("", "juliet", ""),
      plain("", std::string(256, 'j'), "r0m30myr0m30"),
      plain(std::string(256, 'j'), "juliet", "r0m30myr0m30"),
      plain("", "juliet", std::string(256, 'p')),
      plain("", "juliet", "pw\xff"),
      plain("", "jul\xc3", "r0m30myr0m30"),
  };
  for (const std::string& msg : kBad) {
    auto server = make(SaslMechanism::kPlain, tls_only());
    SaslReply r = server->step(msg);
    EXPECT_EQ(r.kind, Kind::kFailure);
    EXPECT_EQ(r.condition, "malformed-request") << msg;
  }
}

TEST_F(SaslServerTest, PlainWithoutInitialResponseAndStoreErrors) {
  auto server = make(SaslMechanism::kPlain, tls_only());
  SaslReply r = server->step("");
  ASSERT_EQ(r.kind, Kind::kChallenge);
  EXPECT_EQ(r.data, "");
  EXPECT_EQ(server->step(plain("", "juliet", "r0m30myr0m30")).kind, Kind::kSuccess);
  EXPECT_EQ(server->step(plain("", "juliet", "r0m30myr0m30")).condition, "malformed-request");

  store_.fail = true;
  server = make(SaslMechanism::kPlain, tls_only());
  EXPECT_EQ(server->step(plain("", "juliet", "r0m30myr0m30")).condition, "temporary-auth-failure");
}

TEST_F(SaslServerTest, PlainAcceptsUnicodePasswordsInPreparedForm) {
  // Stored from "café" in decomposed form; NBSP typed for a space.
  ASSERT_TRUE(store_
                  .create("romeo",
                          "caf"
                          "e\xcc\x81 x",
                          kTestIterations)
                  .ok());
  auto server = make(SaslMechanism::kPlain, tls_only());
  SaslReply r = server->step(plain("", "romeo", "caf\xc3\xa9\xc2\xa0x"));
  EXPECT_EQ(r.kind, Kind::kSuccess) << r.condition;
}

// --- The Authenticator ---

class FakeLoop {
 public:
  Poster poster() {
    return [this](std::function<void()> f) { queue_.push_back(std::move(f)); };
  }
  size_t run() {
    size_t n = 0;
    while (!queue_.empty()) {
      auto f = std::move(queue_.front());
      queue_.pop_front();
      f();
      ++n;
    }
    return n;
  }
  size_t pending() const { return queue_.size(); }

 private:
  std::deque<std::function<void()>> queue_;
};

class LocalAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(store_.create("juliet", "r0m30myr0m30", kTestIterations).ok());
    LocalAuthOptions opts;
    opts.fake_iterations = 777;
    auth_ = make_local_authenticator(&store_, loop_.poster(), opts);
  }

  // Records the replies a callback receives.
  SaslCallback record() {
    return [this](SaslReply r) { replies_.push_back(std::move(r)); };
  }

  FakeAccountStore store_;
  FakeLoop loop_;
  std::unique_ptr<Authenticator> auth_;
  std::vector<SaslReply> replies_;
};

TEST_F(LocalAuthenticatorTest, MechanismsFollowTheStream) {
  EXPECT_TRUE(auth_->mechanisms(ChannelBindings{}).empty());
  EXPECT_EQ(auth_->mechanisms(tls_with_bindings()), sasl_mechanisms(tls_with_bindings()));
}

TEST_F(LocalAuthenticatorTest, FullExchangeWithAsynchronousCallbacks) {
  ChannelBindings cb = tls_with_bindings();
  TestClient client;
  client.gs2 = "p=tls-exporter,,";
  client.cb_data = cb.tls_exporter;
  uint64_t id = auth_->start("SCRAM-SHA-256-PLUS", client.first(), cb, record());
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(replies_.empty());  // never from inside start()
  EXPECT_EQ(loop_.run(), 1u);
  ASSERT_EQ(replies_.size(), 1u);
  ASSERT_EQ(replies_[0].kind, Kind::kChallenge) << replies_[0].condition;

  ScramClientFinal f = client.final_for(replies_[0].data);
  auth_->step(id, f.message, record());
  EXPECT_EQ(replies_.size(), 1u);  // never from inside step()
  loop_.run();
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[1].kind, Kind::kSuccess) << replies_[1].condition;
  EXPECT_EQ(replies_[1].data, f.server_final);
  EXPECT_EQ(replies_[1].username, "juliet");

  // The exchange is gone once finished.
  auth_->step(id, "c=biws", record());
  EXPECT_EQ(replies_.size(), 2u);
  loop_.run();
  ASSERT_EQ(replies_.size(), 3u);
  EXPECT_EQ(replies_[2].condition, "malformed-request");
}

TEST_F(LocalAuthenticatorTest, IdsAreDistinct) {
  uint64_t a = auth_->start("PLAIN", "", tls_only(), record());
  uint64_t b = auth_->start("PLAIN", "", tls_only(), record());
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
  EXPECT_NE(a, b);
}

TEST_F(LocalAuthenticatorTest, StartFailuresAreDeliveredLater) {
  auth_->start("SCRAM-SHA-256", "n,,n=juliet,r=abc", ChannelBindings{}, record());
  auth_->start("SCRAM-SHA-256-PLUS", "n,,n=juliet,r=abc", tls_only(), record());
  auth_->start("CRAM-MD5", "", tls_only(), record());
  EXPECT_TRUE(replies_.empty());
  loop_.run();
  ASSERT_EQ(replies_.size(), 3u);
  EXPECT_EQ(replies_[0].condition, "encryption-required");
  EXPECT_EQ(replies_[1].condition, "invalid-mechanism");
  EXPECT_EQ(replies_[2].condition, "invalid-mechanism");
  for (const auto& r : replies_)
    EXPECT_EQ(r.kind, Kind::kFailure);
}

TEST_F(LocalAuthenticatorTest, AbortSuppressesThePendingCallback) {
  TestClient client;
  uint64_t id = auth_->start("SCRAM-SHA-256", client.first(), tls_only(), record());
  auth_->abort(id);
  loop_.run();
  EXPECT_TRUE(replies_.empty());
  auth_->step(id, "c=biws,r=x,p=AAAA", record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 1u);
  EXPECT_EQ(replies_[0].condition, "malformed-request");

  // Also for a failure computed at start, and for a step in flight.
  replies_.clear();
  id = auth_->start("NOPE", "", tls_only(), record());
  auth_->abort(id);
  loop_.run();
  EXPECT_TRUE(replies_.empty());
  id = auth_->start("SCRAM-SHA-256", client.first(), tls_only(), record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 1u);
  auth_->step(id, client.final_for(replies_[0].data).message, record());
  auth_->abort(id);
  loop_.run();
  EXPECT_EQ(replies_.size(), 1u);
  auth_->abort(12345);  // unknown ids are fine
}

TEST_F(LocalAuthenticatorTest, CallbacksAfterDestructionAreDropped) {
  auth_->start("PLAIN", plain("", "juliet", "r0m30myr0m30"), tls_only(), record());
  EXPECT_EQ(loop_.pending(), 1u);
  auth_.reset();
  loop_.run();
  EXPECT_TRUE(replies_.empty());
}

TEST_F(LocalAuthenticatorTest, PlainThroughTheAuthenticator) {
  auth_->start("PLAIN", plain("", "juliet", "r0m30myr0m30"), tls_only(), record());
  auth_->start("PLAIN", plain("", "juliet", "nope"), tls_only(), record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[0].kind, Kind::kSuccess);
  EXPECT_EQ(replies_[0].username, "juliet");
  EXPECT_EQ(replies_[1].condition, "not-authorized");
}

TEST_F(LocalAuthenticatorTest, FakeIterationCountIsConfigurable) {
  TestClient client;
  client.user = "nobody";
  auth_->start("SCRAM-SHA-1", client.first(), tls_only(), record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 1u);
  ASSERT_EQ(replies_[0].kind, Kind::kChallenge);
  EXPECT_EQ(attr(replies_[0].data, 'i'), "777");
}

TEST_F(LocalAuthenticatorTest, LookupErrorsAreTemporaryFailures) {
  store_.fail = true;
  TestClient client;
  auth_->start("SCRAM-SHA-256", client.first(), tls_only(), record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 1u);
  EXPECT_EQ(replies_[0].condition, "temporary-auth-failure");

  auto no_store = make_local_authenticator(nullptr, loop_.poster());
  no_store->start("SCRAM-SHA-256", client.first(), tls_only(), record());
  loop_.run();
  ASSERT_EQ(replies_.size(), 2u);
  EXPECT_EQ(replies_[1].condition, "temporary-auth-failure");
}

}  // namespace
}  // namespace hearth::xmpp
