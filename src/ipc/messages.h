// The typed messages of the worker protocols. Each is declared once here,
// encoded with storage::Writer and decoded with storage::Reader whose
// finish() refuses leftover bytes; every variable-length field has a maximum
// checked on decode and every enum-like byte is range-checked. A decode
// error from a peer is a protocol violation: fatal for a worker, a broken
// channel for the reactor (STYLE.md "Processes and IPC").
//
// Every request gets exactly one reply carrying its id (frame.h):
//   auth:      SaslStart / SaslStep / SaslAbort -> SaslReply
//              AccountRequest                   -> AccountReply
//   keyholder: SignRequest                      -> SignReply
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "xmpp/auth.h"

namespace hearth::ipc {

enum class MsgType : uint16_t {
  // auth protocol (requests 0x01xx, replies 0x01xx | 0x80)
  kSaslStart = 0x0101,
  kSaslStep = 0x0102,
  kSaslAbort = 0x0103,
  kAccountRequest = 0x0104,
  // auth -> reactor notice (frame id 0): an AccountRequest without password
  // saying what `hearth user` changed (kCreate or kRemove).
  kAccountEvent = 0x0105,
  kSaslReply = 0x0181,
  kAccountReply = 0x0184,
  // keyholder protocol
  kSignRequest = 0x0201,
  kSignReply = 0x0281,
};

// "SaslStart" etc. for logs; "unknown" for anything else.
std::string_view msg_type_name(uint16_t type);

// Field limits (bytes), enforced on decode. encode() does not check them:
// a sender that exceeds one has its message refused by the receiver.
inline constexpr size_t kMaxMechanism = 32;
inline constexpr size_t kMaxSaslData = 8192;  // initial response, response, challenge
inline constexpr size_t kMaxUsername = 1023;  // a localpart (RFC 7622 §3.3.1)
inline constexpr size_t kMaxPassword = 1024;
inline constexpr size_t kMaxChannelBinding = 64;
inline constexpr size_t kMaxDomain = 1023;
// The client's IP address as text (an IPv6 address with a zone fits).
inline constexpr size_t kMaxPeerIp = 64;
inline constexpr size_t kMaxCondition = 64;
inline constexpr size_t kMaxErrorText = 1024;
// The digest to sign: exactly the hash's size (20 for SHA-1 .. 64 for
// SHA-512); the keyholder builds any DigestInfo itself.
inline constexpr size_t kMaxDigest = 64;
inline constexpr size_t kMaxSignature = 1024;  // RSA-8192

// ---- auth protocol ----

// Starts a SASL exchange. Holds the initial response (a PLAIN password):
// wiped on destruction.
struct SaslStart {
  std::string mechanism;
  std::string initial_response;  // decoded bytes, "" if absent
  xmpp::ChannelBindings cb;

  SaslStart() = default;
  SaslStart(const SaslStart&) = default;
  SaslStart(SaslStart&&) = default;
  SaslStart& operator=(const SaslStart&) = default;
  SaslStart& operator=(SaslStart&&) = default;
  ~SaslStart() { wipe(); }
  void wipe();

  std::string encode() const;
  static Result<SaslStart> decode(std::string_view payload);
};

// The next client message of exchange `exchange` (the worker's id from the
// first SaslReply). Wiped on destruction (PLAIN without initial response).
struct SaslStep {
  uint64_t exchange = 0;
  std::string response;

  SaslStep() = default;
  SaslStep(const SaslStep&) = default;
  SaslStep(SaslStep&&) = default;
  SaslStep& operator=(const SaslStep&) = default;
  SaslStep& operator=(SaslStep&&) = default;
  ~SaslStep() { wipe(); }
  void wipe();

  std::string encode() const;
  static Result<SaslStep> decode(std::string_view payload);
};

// Forget an exchange. Answered with a SaslReply (failure, "aborted").
struct SaslAbort {
  uint64_t exchange = 0;

  std::string encode() const;
  static Result<SaslAbort> decode(std::string_view payload);
};

struct SaslReply {
  enum class Kind : uint8_t { kChallenge = 0, kSuccess = 1, kFailure = 2 };
  // The worker's exchange id; 0 when the start failed before an exchange
  // existed. After a success or failure the exchange is gone.
  uint64_t exchange = 0;
  Kind kind = Kind::kFailure;
  std::string data;
  std::string condition;
  std::string username;

  static SaslReply from(uint64_t exchange, const xmpp::SaslReply& r);
  xmpp::SaslReply to_sasl() const;

  std::string encode() const;
  static Result<SaslReply> decode(std::string_view payload);
};

// Account administration (reactor: registration; CLI: hearth user ...).
// Holds a password: wiped on destruction.
struct AccountRequest {
  enum class Op : uint8_t { kCreate = 0, kSetPassword = 1, kRemove = 2, kList = 3 };
  Op op = Op::kList;
  // The (normalised) account; for kList the name to continue after ("" from
  // the start), see AccountReply::more.
  std::string username;
  std::string password;  // kCreate / kSetPassword
  uint32_t iterations = 0;

  AccountRequest() = default;
  AccountRequest(const AccountRequest&) = default;
  AccountRequest(AccountRequest&&) = default;
  AccountRequest& operator=(const AccountRequest&) = default;
  AccountRequest& operator=(AccountRequest&&) = default;
  ~AccountRequest() { wipe(); }
  void wipe();

  std::string encode() const;
  static Result<AccountRequest> decode(std::string_view payload);
};

struct AccountReply {
  bool ok = false;
  std::string error;               // when !ok
  std::vector<std::string> names;  // kList: sorted
  // kList: the names did not all fit one message; ask again with the last
  // one as AccountRequest::username.
  bool more = false;

  std::string encode() const;
  static Result<AccountReply> decode(std::string_view payload);
};

// ---- keyholder protocol ----

// Wire values are those of net::SignRequest (net/tls.h), so the keyholder
// and the TLS sign callbacks convert with a cast.
struct SignRequest {
  enum class Algorithm : uint8_t { kEcdsa = 1, kRsaPkcs1 = 2, kRsaPss = 3 };
  enum class Hash : uint8_t { kSha1 = 1, kSha224 = 2, kSha256 = 3, kSha384 = 4, kSha512 = 5 };
  Algorithm algorithm = Algorithm::kEcdsa;
  Hash hash = Hash::kSha256;
  std::string digest;  // exactly sign_digest_size(hash) bytes, checked on decode

  std::string encode() const;
  static Result<SignRequest> decode(std::string_view payload);
};

// Bytes of a `hash` digest; 0 for a value outside the enum.
size_t sign_digest_size(SignRequest::Hash hash);

struct SignReply {
  bool ok = false;
  std::string signature;
  std::string error;

  std::string encode() const;
  static Result<SignReply> decode(std::string_view payload);
};

}  // namespace hearth::ipc
