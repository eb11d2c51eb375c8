#include "ipc/messages.h"

#include <utility>

#include "ipc/frame.h"
#include "storage/codec.h"

namespace hearth::ipc {
namespace {

// storage::Reader plus the checks every message needs: string limits, flags
// that are 0 or 1, enums within range. The first problem wins; finish()
// reports it, or the Reader's own truncation / leftover-bytes error.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : r_(in) {}

  void u32(uint32_t* out) { r_.u32(out); }
  void u64(uint64_t* out) { r_.u64(out); }

  void str(std::string* out, size_t max, const char* name) {
    std::string_view v;
    if (!r_.bytes(&v)) return;
    // Checked before anything is copied.
    if (v.size() > max) {
      fail(std::string(name) + " is " + std::to_string(v.size()) + " bytes, at most " +
           std::to_string(max) + " allowed");
      return;
    }
    out->assign(v);
  }

  void flag(bool* out, const char* name) {
    uint8_t v = 0;
    if (!r_.u8(&v)) return;
    if (v > 1) {
      fail(std::string(name) + " is not 0 or 1");
      return;
    }
    *out = v == 1;
  }

  // An enum stored as u8 with values min..max.
  template <class E>
  void enumerated(E* out, uint8_t min, uint8_t max, const char* name) {
    uint8_t v = 0;
    if (!r_.u8(&v)) return;
    if (v < min || v > max) {
      fail(std::string(name) + " " + std::to_string(v) + " out of range");
      return;
    }
    *out = static_cast<E>(v);
  }

  // Counts that size an allocation must be possible in what is left: each
  // element needs at least `min_each` bytes.
  bool count(uint32_t* out, size_t min_each, const char* name) {
    if (!r_.u32(out)) return false;
    if (static_cast<uint64_t>(*out) * min_each > r_.remaining()) {
      fail(std::string(name) + " count exceeds the message");
      return false;
    }
    return true;
  }

  bool ok() const { return error_.empty() && !r_.failed(); }
  void fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }

  Status finish(const char* message) const {
    if (!error_.empty()) return make_error(std::string(message) + ": " + error_);
    if (Status s = r_.finish(); !s)
      return make_error(std::string(message) + ": " + s.error().message);
    return {};
  }

 private:
  storage::Reader r_;
  std::string error_;
};

}  // namespace

std::string_view msg_type_name(uint16_t type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::kSaslStart:
      return "SaslStart";
    case MsgType::kSaslStep:
      return "SaslStep";
    case MsgType::kSaslAbort:
      return "SaslAbort";
    case MsgType::kAccountRequest:
      return "AccountRequest";
    case MsgType::kAccountEvent:
      return "AccountEvent";
    case MsgType::kSaslReply:
      return "SaslReply";
    case MsgType::kAccountReply:
      return "AccountReply";
    case MsgType::kSignRequest:
      return "SignRequest";
    case MsgType::kSignReply:
      return "SignReply";
  }
  return "unknown";
}

// ---- SaslStart ----

void SaslStart::wipe() {
  wipe_string(initial_response);
}

std::string SaslStart::encode() const {
  storage::Writer w;
  w.bytes(mechanism).bytes(initial_response);
  w.u8(cb.tls ? 1 : 0).bytes(cb.tls_exporter).bytes(cb.tls_server_end_point).bytes(cb.domain);
  w.bytes(cb.peer_ip);
  return w.take();
}

Result<SaslStart> SaslStart::decode(std::string_view payload) {
  SaslStart m;
  Decoder d(payload);
  d.str(&m.mechanism, kMaxMechanism, "mechanism");
  d.str(&m.initial_response, kMaxSaslData, "initial response");
  d.flag(&m.cb.tls, "tls flag");
  d.str(&m.cb.tls_exporter, kMaxChannelBinding, "tls-exporter");
  d.str(&m.cb.tls_server_end_point, kMaxChannelBinding, "tls-server-end-point");
  d.str(&m.cb.domain, kMaxDomain, "domain");
  d.str(&m.cb.peer_ip, kMaxPeerIp, "peer ip");
  if (Status s = d.finish("SaslStart"); !s) return s.error();
  return m;
}

// ---- SaslStep ----

void SaslStep::wipe() {
  wipe_string(response);
}

std::string SaslStep::encode() const {
  storage::Writer w;
  w.u64(exchange).bytes(response);
  return w.take();
}

Result<SaslStep> SaslStep::decode(std::string_view payload) {
  SaslStep m;
  Decoder d(payload);
  d.u64(&m.exchange);
  d.str(&m.response, kMaxSaslData, "response");
  if (Status s = d.finish("SaslStep"); !s) return s.error();
  return m;
}

// ---- SaslAbort ----

std::string SaslAbort::encode() const {
  storage::Writer w;
  w.u64(exchange);
  return w.take();
}

Result<SaslAbort> SaslAbort::decode(std::string_view payload) {
  SaslAbort m;
  Decoder d(payload);
  d.u64(&m.exchange);
  if (Status s = d.finish("SaslAbort"); !s) return s.error();
  return m;
}

// ---- SaslReply ----

SaslReply SaslReply::from(uint64_t exchange, const xmpp::SaslReply& r) {
  SaslReply m;
  m.exchange = exchange;
  switch (r.kind) {
    case xmpp::SaslReply::Kind::kChallenge:
      m.kind = Kind::kChallenge;
      break;
    case xmpp::SaslReply::Kind::kSuccess:
      m.kind = Kind::kSuccess;
      break;
    case xmpp::SaslReply::Kind::kFailure:
      m.kind = Kind::kFailure;
      break;
  }
  m.data = r.data;
  m.condition = r.condition;
  m.username = r.username;
  return m;
}

xmpp::SaslReply SaslReply::to_sasl() const {
  xmpp::SaslReply r;
  switch (kind) {
    case Kind::kChallenge:
      r.kind = xmpp::SaslReply::Kind::kChallenge;
      break;
    case Kind::kSuccess:
      r.kind = xmpp::SaslReply::Kind::kSuccess;
      break;
    case Kind::kFailure:
      r.kind = xmpp::SaslReply::Kind::kFailure;
      break;
  }
  r.data = data;
  r.condition = condition;
  r.username = username;
  return r;
}

std::string SaslReply::encode() const {
  storage::Writer w;
  w.u64(exchange).u8(static_cast<uint8_t>(kind)).bytes(data).bytes(condition).bytes(username);
  return w.take();
}

Result<SaslReply> SaslReply::decode(std::string_view payload) {
  SaslReply m;
  Decoder d(payload);
  d.u64(&m.exchange);
  d.enumerated(&m.kind, 0, static_cast<uint8_t>(Kind::kFailure), "kind");
  d.str(&m.data, kMaxSaslData, "data");
  d.str(&m.condition, kMaxCondition, "condition");
  d.str(&m.username, kMaxUsername, "username");
  if (Status s = d.finish("SaslReply"); !s) return s.error();
  return m;
}

// ---- AccountRequest ----

void AccountRequest::wipe() {
  wipe_string(password);
}

std::string AccountRequest::encode() const {
  storage::Writer w;
  w.u8(static_cast<uint8_t>(op)).bytes(username).bytes(password).u32(iterations);
  return w.take();
}

Result<AccountRequest> AccountRequest::decode(std::string_view payload) {
  AccountRequest m;
  Decoder d(payload);
  d.enumerated(&m.op, 0, static_cast<uint8_t>(Op::kList), "op");
  d.str(&m.username, kMaxUsername, "username");
  d.str(&m.password, kMaxPassword, "password");
  d.u32(&m.iterations);
  if (Status s = d.finish("AccountRequest"); !s) return s.error();
  return m;
}

// ---- AccountReply ----

std::string AccountReply::encode() const {
  storage::Writer w;
  w.u8(ok ? 1 : 0).bytes(error).u32(static_cast<uint32_t>(names.size()));
  for (const auto& n : names)
    w.bytes(n);
  w.u8(more ? 1 : 0);
  return w.take();
}

Result<AccountReply> AccountReply::decode(std::string_view payload) {
  AccountReply m;
  Decoder d(payload);
  d.flag(&m.ok, "ok flag");
  d.str(&m.error, kMaxErrorText, "error");
  uint32_t count = 0;
  // Each name takes at least its 4-byte length.
  if (d.count(&count, 4, "names")) {
    m.names.resize(count);
    for (auto& n : m.names)
      d.str(&n, kMaxUsername, "name");
  }
  d.flag(&m.more, "more flag");
  if (Status s = d.finish("AccountReply"); !s) return s.error();
  return m;
}

// ---- SignRequest ----

size_t sign_digest_size(SignRequest::Hash hash) {
  switch (hash) {
    case SignRequest::Hash::kSha1:
      return 20;
    case SignRequest::Hash::kSha224:
      return 28;
    case SignRequest::Hash::kSha256:
      return 32;
    case SignRequest::Hash::kSha384:
      return 48;
    case SignRequest::Hash::kSha512:
      return 64;
  }
  return 0;
}

std::string SignRequest::encode() const {
  storage::Writer w;
  w.u8(static_cast<uint8_t>(algorithm)).u8(static_cast<uint8_t>(hash)).bytes(digest);
  return w.take();
}

Result<SignRequest> SignRequest::decode(std::string_view payload) {
  SignRequest m;
  Decoder d(payload);
  d.enumerated(&m.algorithm, static_cast<uint8_t>(Algorithm::kEcdsa),
               static_cast<uint8_t>(Algorithm::kRsaPss), "algorithm");
  d.enumerated(&m.hash, static_cast<uint8_t>(Hash::kSha1), static_cast<uint8_t>(Hash::kSha512),
               "hash");
  d.str(&m.digest, kMaxDigest, "digest");
  if (d.ok() && m.digest.size() != sign_digest_size(m.hash)) {
    d.fail("digest of " + std::to_string(m.digest.size()) + " bytes for a " +
           std::to_string(sign_digest_size(m.hash)) + "-byte hash");
  }
  if (Status s = d.finish("SignRequest"); !s) return s.error();
  return m;
}

// ---- SignReply ----

std::string SignReply::encode() const {
  storage::Writer w;
  w.u8(ok ? 1 : 0).bytes(signature).bytes(error);
  return w.take();
}

Result<SignReply> SignReply::decode(std::string_view payload) {
  SignReply m;
  Decoder d(payload);
  d.flag(&m.ok, "ok flag");
  d.str(&m.signature, kMaxSignature, "signature");
  d.str(&m.error, kMaxErrorText, "error");
  if (Status s = d.finish("SignReply"); !s) return s.error();
  return m;
}

}  // namespace hearth::ipc
