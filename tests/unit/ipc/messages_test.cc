#include "ipc/messages.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <vector>

#include "storage/codec.h"

namespace hearth::ipc {
namespace {

SaslStart sample_start() {
  SaslStart m;
  m.mechanism = "SCRAM-SHA-256-PLUS";
  m.initial_response = std::string("p=tls-exporter,,n=juliet,r=abc\0x", 32);
  m.cb.tls = true;
  m.cb.tls_exporter = std::string(32, '\x01');
  m.cb.tls_server_end_point = std::string(48, '\x02');
  m.cb.domain = "example.org";
  m.cb.peer_ip = "2001:db8::1";
  return m;
}

SaslStep sample_step() {
  SaslStep m;
  m.exchange = 0x0102030405060708ull;
  m.response = "c=biws,r=abc,p=proof";
  return m;
}

SaslAbort sample_abort() {
  SaslAbort m;
  m.exchange = 77;
  return m;
}

SaslReply sample_reply() {
  SaslReply m;
  m.exchange = 0xfffffffffffffffeull;
  m.kind = SaslReply::Kind::kSuccess;
  m.data = "v=signature";
  m.condition = "";
  m.username = "juliet";
  return m;
}

AccountRequest sample_account_request() {
  AccountRequest m;
  m.op = AccountRequest::Op::kSetPassword;
  m.username = "romeo";
  m.password = "correct horse";
  m.iterations = 4096;
  return m;
}

AccountReply sample_account_reply() {
  AccountReply m;
  m.ok = true;
  m.names = {"alice", "bob", ""};
  m.more = true;
  return m;
}

SignRequest sample_sign_request() {
  SignRequest m;
  m.algorithm = SignRequest::Algorithm::kRsaPss;
  m.hash = SignRequest::Hash::kSha384;
  m.digest = std::string(48, '\xab');
  return m;
}

SignReply sample_sign_reply() {
  SignReply m;
  m.ok = false;
  m.signature = "";
  m.error = "no key";
  return m;
}

bool same(const SaslStart& a, const SaslStart& b) {
  return a.mechanism == b.mechanism && a.initial_response == b.initial_response &&
         a.cb.tls == b.cb.tls && a.cb.tls_exporter == b.cb.tls_exporter &&
         a.cb.tls_server_end_point == b.cb.tls_server_end_point && a.cb.domain == b.cb.domain &&
         a.cb.peer_ip == b.cb.peer_ip;
}
bool same(const SaslStep& a, const SaslStep& b) {
  return a.exchange == b.exchange && a.response == b.response;
}
bool same(const SaslAbort& a, const SaslAbort& b) {
  return a.exchange == b.exchange;
}
bool same(const SaslReply& a, const SaslReply& b) {
  return a.exchange == b.exchange && a.kind == b.kind && a.data == b.data &&
         a.condition == b.condition && a.username == b.username;
}
bool same(const AccountRequest& a, const AccountRequest& b) {
  return a.op == b.op && a.username == b.username && a.password == b.password &&
         a.iterations == b.iterations;
}
bool same(const AccountReply& a, const AccountReply& b) {
  return a.ok == b.ok && a.error == b.error && a.names == b.names && a.more == b.more;
}
bool same(const SignRequest& a, const SignRequest& b) {
  return a.algorithm == b.algorithm && a.hash == b.hash && a.digest == b.digest;
}
bool same(const SignReply& a, const SignReply& b) {
  return a.ok == b.ok && a.signature == b.signature && a.error == b.error;
}

// Every message type through the same checks.
template <class T>
struct Sample;
template <>
struct Sample<SaslStart> {
  static SaslStart make() { return sample_start(); }
};
template <>
struct Sample<SaslStep> {
  static SaslStep make() { return sample_step(); }
};
template <>
struct Sample<SaslAbort> {
  static SaslAbort make() { return sample_abort(); }
};
template <>
struct Sample<SaslReply> {
  static SaslReply make() { return sample_reply(); }
};
template <>
struct Sample<AccountRequest> {
  static AccountRequest make() { return sample_account_request(); }
};
template <>
struct Sample<AccountReply> {
  static AccountReply make() { return sample_account_reply(); }
};
template <>
struct Sample<SignRequest> {
  static SignRequest make() { return sample_sign_request(); }
};
template <>
struct Sample<SignReply> {
  static SignReply make() { return sample_sign_reply(); }
};

template <class T>
class IpcMessageTest : public ::testing::Test {};
using AllMessages = ::testing::Types<SaslStart, SaslStep, SaslAbort, SaslReply, AccountRequest,
                                     AccountReply, SignRequest, SignReply>;
TYPED_TEST_SUITE(IpcMessageTest, AllMessages);

TYPED_TEST(IpcMessageTest, RoundTrips) {
  TypeParam m = Sample<TypeParam>::make();
  auto d = TypeParam::decode(m.encode());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(same(m, d.value()));
  // Default-constructed (empty) values too.
  TypeParam empty;
  if constexpr (std::is_same_v<TypeParam, SignRequest>) empty.digest.assign(32, '\0');
  auto e = TypeParam::decode(empty.encode());
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_TRUE(same(empty, e.value()));
}

TYPED_TEST(IpcMessageTest, LeftoverBytesRefused) {
  std::string wire = Sample<TypeParam>::make().encode();
  for (std::string extra : {std::string(1, '\0'), std::string("x"), std::string(8, '\0')}) {
    auto d = TypeParam::decode(wire + extra);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("unexpected bytes"), std::string::npos) << d.error().message;
  }
}

TYPED_TEST(IpcMessageTest, EveryTruncationRefused) {
  std::string wire = Sample<TypeParam>::make().encode();
  for (size_t len = 0; len < wire.size(); ++len)
    EXPECT_FALSE(TypeParam::decode(std::string_view(wire).substr(0, len)).ok()) << len;
}

// Builds payloads by hand to reach values encode() never produces.
std::string bytes_field(size_t n, char c = 'a') {
  storage::Writer w;
  w.bytes(std::string(n, c));
  return w.take();
}

TEST(IpcMessageLimitsTest, SaslStartFields) {
  auto payload = [](size_t mech, size_t ir, uint8_t tls, size_t exp, size_t ep, size_t dom,
                    size_t ip = 0) {
    storage::Writer w;
    w.bytes(std::string(mech, 'M')).bytes(std::string(ir, 'r')).u8(tls);
    w.bytes(std::string(exp, 'e')).bytes(std::string(ep, 'p')).bytes(std::string(dom, 'd'));
    w.bytes(std::string(ip, '1'));
    return w.take();
  };
  EXPECT_TRUE(SaslStart::decode(payload(32, 8192, 1, 64, 64, 1023, 64)).ok());
  // The client's IP: at most kMaxPeerIp bytes.
  EXPECT_FALSE(SaslStart::decode(payload(5, 0, 1, 0, 0, 0, 65)).ok());
  auto long_ip = SaslStart::decode(payload(5, 0, 1, 0, 0, 0, 65));
  EXPECT_NE(long_ip.error().message.find("peer ip"), std::string::npos) << long_ip.error().message;
  EXPECT_FALSE(SaslStart::decode(payload(33, 0, 1, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslStart::decode(payload(5, 8193, 1, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslStart::decode(payload(5, 0, 2, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslStart::decode(payload(5, 0, 1, 65, 0, 0)).ok());
  EXPECT_FALSE(SaslStart::decode(payload(5, 0, 1, 0, 65, 0)).ok());
  EXPECT_FALSE(SaslStart::decode(payload(5, 0, 1, 0, 0, 1024)).ok());
  auto d = SaslStart::decode(payload(33, 0, 1, 0, 0, 0));
  EXPECT_NE(d.error().message.find("mechanism"), std::string::npos) << d.error().message;
}

TEST(IpcMessageLimitsTest, SaslStepAndReply) {
  storage::Writer ok_step;
  ok_step.u64(1).raw(bytes_field(8192));
  EXPECT_TRUE(SaslStep::decode(ok_step.view()).ok());
  storage::Writer long_step;
  long_step.u64(1).raw(bytes_field(8193));
  EXPECT_FALSE(SaslStep::decode(long_step.view()).ok());

  auto reply = [](uint8_t kind, size_t data, size_t cond, size_t user) {
    storage::Writer w;
    w.u64(1).u8(kind).raw(bytes_field(data)).raw(bytes_field(cond)).raw(bytes_field(user));
    return w.take();
  };
  EXPECT_TRUE(SaslReply::decode(reply(0, 8192, 64, 1023)).ok());
  EXPECT_TRUE(SaslReply::decode(reply(2, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslReply::decode(reply(3, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslReply::decode(reply(255, 0, 0, 0)).ok());
  EXPECT_FALSE(SaslReply::decode(reply(0, 8193, 0, 0)).ok());
  EXPECT_FALSE(SaslReply::decode(reply(0, 0, 65, 0)).ok());
  EXPECT_FALSE(SaslReply::decode(reply(1, 0, 0, 1024)).ok());
}

TEST(IpcMessageLimitsTest, Accounts) {
  auto request = [](uint8_t op, size_t user, size_t pass) {
    storage::Writer w;
    w.u8(op).raw(bytes_field(user)).raw(bytes_field(pass)).u32(10);
    return w.take();
  };
  EXPECT_TRUE(AccountRequest::decode(request(3, 1023, 1024)).ok());
  EXPECT_FALSE(AccountRequest::decode(request(4, 1, 1)).ok());
  EXPECT_FALSE(AccountRequest::decode(request(0, 1024, 1)).ok());
  EXPECT_FALSE(AccountRequest::decode(request(0, 1, 1025)).ok());

  storage::Writer huge_count;  // a count the message cannot hold
  huge_count.u8(1).bytes("").u32(0xffffffff).u8(0);
  EXPECT_FALSE(AccountReply::decode(huge_count.view()).ok());
  storage::Writer long_name;
  long_name.u8(1).bytes("").u32(1).raw(bytes_field(1024)).u8(0);
  EXPECT_FALSE(AccountReply::decode(long_name.view()).ok());
  storage::Writer bad_flag;
  bad_flag.u8(2).bytes("").u32(0).u8(0);
  EXPECT_FALSE(AccountReply::decode(bad_flag.view()).ok());
  storage::Writer long_error;
  long_error.u8(0).raw(bytes_field(1025)).u32(0).u8(0);
  EXPECT_FALSE(AccountReply::decode(long_error.view()).ok());
}

TEST(IpcMessageLimitsTest, Keyholder) {
  auto request = [](uint8_t alg, uint8_t hash, size_t digest) {
    storage::Writer w;
    w.u8(alg).u8(hash).raw(bytes_field(digest));
    return w.take();
  };
  EXPECT_TRUE(SignRequest::decode(request(3, 5, 64)).ok());
  EXPECT_TRUE(SignRequest::decode(request(1, 1, 20)).ok());
  EXPECT_TRUE(SignRequest::decode(request(2, 2, 28)).ok());
  EXPECT_TRUE(SignRequest::decode(request(1, 3, 32)).ok());
  EXPECT_TRUE(SignRequest::decode(request(1, 4, 48)).ok());
  EXPECT_FALSE(SignRequest::decode(request(0, 3, 32)).ok());
  EXPECT_FALSE(SignRequest::decode(request(4, 3, 32)).ok());
  EXPECT_FALSE(SignRequest::decode(request(1, 0, 32)).ok());
  EXPECT_FALSE(SignRequest::decode(request(1, 6, 32)).ok());
  // The digest must be exactly the hash's size.
  EXPECT_FALSE(SignRequest::decode(request(1, 3, 31)).ok());
  EXPECT_FALSE(SignRequest::decode(request(1, 3, 33)).ok());
  EXPECT_FALSE(SignRequest::decode(request(1, 5, 65)).ok());
  EXPECT_FALSE(SignRequest::decode(request(1, 1, 0)).ok());
  auto mismatch = SignRequest::decode(request(1, 3, 20));
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("digest"), std::string::npos);
  // The wire values match net::SignRequest's (tls.h).
  EXPECT_EQ(static_cast<int>(SignRequest::Algorithm::kEcdsa), 1);
  EXPECT_EQ(static_cast<int>(SignRequest::Algorithm::kRsaPss), 3);
  EXPECT_EQ(static_cast<int>(SignRequest::Hash::kSha1), 1);
  EXPECT_EQ(static_cast<int>(SignRequest::Hash::kSha512), 5);
  EXPECT_EQ(sign_digest_size(SignRequest::Hash::kSha224), 28u);
  EXPECT_EQ(sign_digest_size(static_cast<SignRequest::Hash>(9)), 0u);

  auto reply = [](uint8_t ok, size_t sig, size_t err) {
    storage::Writer w;
    w.u8(ok).raw(bytes_field(sig)).raw(bytes_field(err));
    return w.take();
  };
  EXPECT_TRUE(SignReply::decode(reply(1, 1024, 0)).ok());
  EXPECT_FALSE(SignReply::decode(reply(1, 1025, 0)).ok());
  EXPECT_FALSE(SignReply::decode(reply(2, 64, 0)).ok());
  EXPECT_FALSE(SignReply::decode(reply(0, 0, 1025)).ok());
}

TEST(IpcMessageLimitsTest, LengthBeyondTheInputFailsWithoutAllocating) {
  storage::Writer w;
  w.u64(1).u32(0xfffffff0);  // claims 4 GiB of response
  EXPECT_FALSE(SaslStep::decode(w.view()).ok());
}

TEST(IpcMessageTypesTest, NamesAndConversions) {
  EXPECT_EQ(msg_type_name(static_cast<uint16_t>(MsgType::kSaslStart)), "SaslStart");
  EXPECT_EQ(msg_type_name(static_cast<uint16_t>(MsgType::kSignReply)), "SignReply");
  EXPECT_EQ(msg_type_name(0xffff), "unknown");

  xmpp::SaslReply r;
  r.kind = xmpp::SaslReply::Kind::kChallenge;
  r.data = "r=x,s=y,i=1";
  SaslReply m = SaslReply::from(9, r);
  EXPECT_EQ(m.exchange, 9u);
  EXPECT_EQ(m.kind, SaslReply::Kind::kChallenge);
  xmpp::SaslReply back = m.to_sasl();
  EXPECT_EQ(back.kind, xmpp::SaslReply::Kind::kChallenge);
  EXPECT_EQ(back.data, r.data);
}

TEST(IpcMessageSecretsTest, WipeClearsSecrets) {
  SaslStart s = sample_start();
  s.wipe();
  EXPECT_TRUE(s.initial_response.empty());
  EXPECT_EQ(s.mechanism, "SCRAM-SHA-256-PLUS");
  SaslStep st = sample_step();
  st.wipe();
  EXPECT_TRUE(st.response.empty());
  AccountRequest a = sample_account_request();
  a.wipe();
  EXPECT_TRUE(a.password.empty());
  EXPECT_EQ(a.username, "romeo");
}

}  // namespace
}  // namespace hearth::ipc
