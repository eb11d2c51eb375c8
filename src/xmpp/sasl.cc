#include "xmpp/sasl.h"

#include <sodium.h>

#include <array>
#include <cstdlib>
#include <utility>

#include "core/base64.h"
#include "core/unicode.h"
#include "xmpp/jid.h"
#include "xmpp/scram.h"

namespace hearth::xmpp {
namespace {

constexpr size_t kServerNonceBytes = 24;
constexpr size_t kFakeSaltBytes = 16;
constexpr size_t kPlainMaxField = 255;  // RFC 4616 §2

constexpr const char kMalformed[] = "malformed-request";
constexpr const char kNotAuthorized[] = "not-authorized";
constexpr const char kInvalidAuthzid[] = "invalid-authzid";
constexpr const char kTemporaryFailure[] = "temporary-auth-failure";

struct MechanismInfo {
  SaslMechanism mechanism;
  const char* name;
};
// Preference order of sasl_mechanisms().
constexpr MechanismInfo kMechanisms[] = {
    {SaslMechanism::kScramSha256Plus, "SCRAM-SHA-256-PLUS"},
    {SaslMechanism::kScramSha1Plus, "SCRAM-SHA-1-PLUS"},
    {SaslMechanism::kScramSha256, "SCRAM-SHA-256"},
    {SaslMechanism::kScramSha1, "SCRAM-SHA-1"},
    {SaslMechanism::kPlain, "PLAIN"},
};

bool is_plus(SaslMechanism m) {
  return m == SaslMechanism::kScramSha256Plus || m == SaslMechanism::kScramSha1Plus;
}

void ensure_sodium() {
  // Idempotent; fails only if the system has no randomness source.
  if (sodium_init() < 0) abort();
}

// Per-process secrets behind the fake credentials of unknown users.
struct FakeSecrets {
  std::array<unsigned char, 32> salt_key;
  std::array<unsigned char, 32> stored_key;
  std::array<unsigned char, 32> server_key;
};

const FakeSecrets& fake_secrets() {
  static const FakeSecrets secrets = [] {
    ensure_sodium();
    FakeSecrets s;
    randombytes_buf(s.salt_key.data(), s.salt_key.size());
    randombytes_buf(s.stored_key.data(), s.stored_key.size());
    randombytes_buf(s.server_key.data(), s.server_key.size());
    return s;
  }();
  return secrets;
}

std::string_view view(const std::array<unsigned char, 32>& a, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(a.data()), n);
}

// Credentials for a user that does not exist: a salt that is stable for the
// name (asking twice must not tell), and keys no proof can match. The store
// draws one salt per hash, so the fake salts differ per hash too.
Result<ScramCredentials> fake_credentials(ScramHash h, std::string_view username,
                                          uint32_t iterations) {
  const FakeSecrets& f = fake_secrets();
  std::string input = h == ScramHash::kSha1 ? "SHA-1" : "SHA-256";
  input.push_back('\0');
  input.append(username);
  auto mac = scram_hmac(ScramHash::kSha256, view(f.salt_key, f.salt_key.size()), input);
  if (!mac.ok()) return mac.error();
  ScramCredentials c;
  c.salt = mac->substr(0, kFakeSaltBytes);
  c.iterations = iterations;
  c.stored_key = std::string(view(f.stored_key, scram_hash_size(h)));
  c.server_key = std::string(view(f.server_key, scram_hash_size(h)));
  return c;
}

bool usable(ScramHash h, const ScramCredentials& c) {
  return !c.salt.empty() && c.iterations >= kScramMinIterations &&
         c.iterations <= kScramMaxIterations && c.stored_key.size() == scram_hash_size(h) &&
         c.server_key.size() == scram_hash_size(h);
}

// The authzid may only name the authenticating user (we do not let one
// account act as another): its bare JID on this host, or the username.
bool authzid_allowed(std::string_view authzid, const std::string& username,
                     const std::string& domain) {
  auto local = normalize_localpart(authzid);
  if (local.ok() && local.value() == username) return true;
  if (domain.empty()) return false;
  auto jid = Jid::parse(authzid);
  return jid.ok() && jid->has_local() && !jid->has_resource() && jid->local() == username &&
         jid->domain() == domain;
}

// Splits `s` at the first comma: returns the part before, leaves the rest
// (without the comma) in *s; nullopt-like empty optional if no comma.
std::optional<std::string_view> take_field(std::string_view* s) {
  size_t comma = s->find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  std::string_view field = s->substr(0, comma);
  *s = s->substr(comma + 1);
  return field;
}

// Splits a comma-separated attribute list (empty fields kept, so "a,,b"
// yields an empty middle element the callers then reject).
std::vector<std::string_view> split_attrs(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    size_t comma = s.find(',');
    out.push_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s = s.substr(comma + 1);
  }
  return out;
}

// printable = %x21-2B / %x2D-7E (RFC 5802 §7)
bool valid_nonce(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  }
  return true;
}

// attr-val = ALPHA "=" value, value = 1*value-char. "m" is reserved for
// mandatory extensions we do not know and must fail (RFC 5802 §5.1).
bool valid_extension(std::string_view attr) {
  if (attr.size() < 3 || attr[1] != '=') return false;
  char a = attr[0];
  if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || a == 'm') return false;
  std::string_view value = attr.substr(2);
  for (char c : value) {
    if (c == '\0') return false;
  }
  return unicode::valid_utf8(value);
}

bool valid_cb_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool equal_secret(std::string_view a, std::string_view b) {
  // Lengths are public (they follow from the cb type); contents are compared
  // in constant time.
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

void wipe(std::string* s) {
  sodium_memzero(s->data(), s->size());
  s->clear();
}

// The verifiers are secrets too (ServerKey lets one pose as the server).
void wipe(std::optional<AccountRecord>* rec) {
  if (!*rec) return;
  for (ScramCredentials* c : {&(*rec)->sha1, &(*rec)->sha256}) {
    wipe(&c->stored_key);
    wipe(&c->server_key);
  }
}

class ScramServer final : public SaslServer {
 public:
  ScramServer(ScramHash hash, bool plus, ChannelBindings cb, CredentialLookup lookup,
              SaslServerOptions options)
      : hash_(hash),
        plus_(plus),
        cb_(std::move(cb)),
        lookup_(std::move(lookup)),
        options_(std::move(options)) {}
  ~ScramServer() override {
    wipe(&creds_.stored_key);
    wipe(&creds_.server_key);
  }

 protected:
  SaslReply do_step(std::string_view message) override {
    switch (state_) {
      case State::kInitial:
        if (message.empty()) {
          // No initial response: an empty challenge asks for client-first.
          state_ = State::kFirst;
          return sasl_challenge("");
        }
        return client_first(message);
      case State::kFirst:
        return client_first(message);
      case State::kFinal:
        return client_final(message);
    }
    return sasl_failure(kMalformed);
  }

 private:
  enum class State { kInitial, kFirst, kFinal };

  SaslReply client_first(std::string_view m) {
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    std::string_view rest = m;
    auto flag = take_field(&rest);
    auto authz_field = flag ? take_field(&rest) : std::nullopt;
    if (!flag || !authz_field) return sasl_failure(kMalformed);
    gs2_header_ = std::string(m.substr(0, m.size() - rest.size()));

    char cbind = 0;
    std::string_view cb_name;
    if (*flag == "n" || *flag == "y") {
      cbind = (*flag)[0];
    } else if (flag->substr(0, 2) == "p=" && valid_cb_name(flag->substr(2))) {
      cbind = 'p';
      cb_name = flag->substr(2);
    } else {
      return sasl_failure(kMalformed);
    }

    std::optional<std::string> authzid;
    if (!authz_field->empty()) {
      if (authz_field->substr(0, 2) != "a=") return sasl_failure(kMalformed);
      auto a = scram_unescape_saslname(authz_field->substr(2));
      if (!a.ok()) return sasl_failure(kMalformed);
      authzid = std::move(a.value());
    }

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    std::vector<std::string_view> attrs = split_attrs(rest);
    if (attrs.size() < 2 || attrs[0].substr(0, 2) != "n=" || attrs[1].substr(0, 2) != "r=") {
      return sasl_failure(kMalformed);  // includes a leading "m="
    }
    for (size_t i = 2; i < attrs.size(); ++i) {
      if (!valid_extension(attrs[i])) return sasl_failure(kMalformed);
    }
    auto name = scram_unescape_saslname(attrs[0].substr(2));
    std::string_view client_nonce = attrs[1].substr(2);
    if (!name.ok() || !valid_nonce(client_nonce)) return sasl_failure(kMalformed);
    client_first_bare_ = std::string(rest);

    // Channel binding (RFC 5802 §6, RFC 9266).
    if (plus_) {
      if (cbind != 'p') return sasl_failure(kMalformed);
      if (cb_name == "tls-exporter") {
        cb_data_ = cb_.tls_exporter;
      } else if (cb_name == "tls-server-end-point") {
        cb_data_ = cb_.tls_server_end_point;
      }
      if (cb_data_.empty()) return sasl_failure(kMalformed);  // type unknown or unavailable
    } else {
      if (cbind == 'p') return sasl_failure(kMalformed);
      // "y": the client could bind but thinks we cannot. We offered -PLUS, so
      // someone removed it on the way: a downgrade attack.
      if (cbind == 'y' && cb_.any()) return sasl_failure(kNotAuthorized);
    }

    auto username = normalize_localpart(name.value());
    if (!username.ok()) return sasl_failure(kNotAuthorized);
    username_ = std::move(username.value());
    set_claimed_username(username_);
    if (authzid && !authzid_allowed(*authzid, username_, cb_.domain)) {
      return sasl_failure(kInvalidAuthzid);
    }

    auto record = lookup_(username_);
    if (!record.ok()) return sasl_failure(kTemporaryFailure);
    std::optional<AccountRecord>& rec = record.value();
    if (rec) {
      const ScramCredentials& c = hash_ == ScramHash::kSha1 ? rec->sha1 : rec->sha256;
      if (usable(hash_, c)) {
        creds_ = c;
        known_ = true;
      }
      wipe(&rec);
    }
    if (!known_) {
      // Unknown user (or no credentials for this hash): carry on with fake
      // credentials so the exchange looks and costs the same, and fail at
      // the proof like a wrong password.
      auto fake = fake_credentials(hash_, username_, options_.fake_iterations);
      if (!fake.ok()) return sasl_failure(kTemporaryFailure);
      creds_ = std::move(fake.value());
    }

    std::string server_nonce = options_.server_nonce_for_testing;
    if (server_nonce.empty()) {
      ensure_sodium();
      std::array<unsigned char, kServerNonceBytes> raw;
      randombytes_buf(raw.data(), raw.size());
      server_nonce =
          base64_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
    }
    nonce_ = std::string(client_nonce) + server_nonce;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(creds_.salt) +
                    ",i=" + std::to_string(creds_.iterations);
    state_ = State::kFinal;
    return sasl_challenge(server_first_);
  }

  SaslReply client_final(std::string_view m) {
    // client-final-message = without-proof "," proof; proof is last.
    size_t last = m.rfind(',');
    if (last == std::string_view::npos || m.substr(last + 1, 2) != "p=") {
      return sasl_failure(kMalformed);
    }
    std::string_view without_proof = m.substr(0, last);
    std::vector<std::string_view> attrs = split_attrs(without_proof);
    if (attrs.size() < 2 || attrs[0].substr(0, 2) != "c=" || attrs[1].substr(0, 2) != "r=") {
      return sasl_failure(kMalformed);
    }
    for (size_t i = 2; i < attrs.size(); ++i) {
      if (!valid_extension(attrs[i])) return sasl_failure(kMalformed);
    }
    auto cbind = base64_decode(attrs[0].substr(2));
    auto proof = base64_decode(m.substr(last + 3));
    if (!cbind.ok() || !proof.ok() || proof->size() != scram_hash_size(hash_)) {
      return sasl_failure(kMalformed);
    }

    // c= must repeat our gs2 header and carry this channel's binding data.
    std::string expected = gs2_header_ + cb_data_;
    bool cb_ok = equal_secret(cbind.value(), expected);
    wipe(&expected);
    if (!cb_ok) return sasl_failure(kNotAuthorized);
    if (attrs[1].substr(2) != nonce_) return sasl_failure(kNotAuthorized);

    std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
    bool proof_ok = scram_verify_proof(hash_, creds_.stored_key, auth_message, proof.value());
    if (!proof_ok || !known_) return sasl_failure(kNotAuthorized);
    auto signature = scram_server_signature(hash_, creds_.server_key, auth_message);
    if (!signature.ok()) return sasl_failure(kTemporaryFailure);
    return sasl_success("v=" + base64_encode(signature.value()), username_);
  }

  ScramHash hash_;
  bool plus_;
  ChannelBindings cb_;
  CredentialLookup lookup_;
  SaslServerOptions options_;
  State state_ = State::kInitial;

  std::string gs2_header_;
  std::string cb_data_;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;
  std::string username_;
  ScramCredentials creds_;
  bool known_ = false;
};

// PLAIN (RFC 4616): message = [authzid] NUL authcid NUL passwd.
class PlainServer final : public SaslServer {
 public:
  PlainServer(ChannelBindings cb, CredentialLookup lookup, SaslServerOptions options)
      : cb_(std::move(cb)), lookup_(std::move(lookup)), options_(std::move(options)) {}

 protected:
  SaslReply do_step(std::string_view message) override {
    if (message.empty() && !asked_) {
      asked_ = true;
      return sasl_challenge("");
    }
    size_t nul1 = message.find('\0');
    size_t nul2 = nul1 == std::string_view::npos ? nul1 : message.find('\0', nul1 + 1);
    if (nul2 == std::string_view::npos || message.find('\0', nul2 + 1) != std::string_view::npos) {
      return sasl_failure(kMalformed);
    }
    std::string_view authzid = message.substr(0, nul1);
    std::string_view authcid = message.substr(nul1 + 1, nul2 - nul1 - 1);
    std::string_view passwd = message.substr(nul2 + 1);
    if (authzid.size() > kPlainMaxField || authcid.empty() || authcid.size() > kPlainMaxField ||
        passwd.empty() || passwd.size() > kPlainMaxField || !unicode::valid_utf8(authzid) ||
        !unicode::valid_utf8(authcid) || !unicode::valid_utf8(passwd)) {
      return sasl_failure(kMalformed);
    }

    auto username = normalize_localpart(authcid);
    if (!username.ok()) return sasl_failure(kNotAuthorized);
    set_claimed_username(username.value());
    if (!authzid.empty() && !authzid_allowed(authzid, username.value(), cb_.domain)) {
      return sasl_failure(kInvalidAuthzid);
    }
    auto prepared = prepare_password(passwd);
    if (!prepared.ok()) return sasl_failure(kNotAuthorized);
    std::string password = std::move(prepared.value());
    SaslReply reply = check(username.value(), password);
    wipe(&password);
    return reply;
  }

 private:
  SaslReply check(const std::string& username, const std::string& password) {
    auto record = lookup_(username);
    if (!record.ok()) return sasl_failure(kTemporaryFailure);
    ScramCredentials creds;
    bool known = record.value() && usable(ScramHash::kSha256, record.value()->sha256);
    if (known) {
      creds = record.value()->sha256;
      wipe(&record.value());
    } else {
      // Same PBKDF2 work for an unknown user as for a known one.
      auto fake = fake_credentials(ScramHash::kSha256, username, options_.fake_iterations);
      if (!fake.ok()) return sasl_failure(kTemporaryFailure);
      creds = std::move(fake.value());
    }
    auto derived = scram_derive(ScramHash::kSha256, password, creds.salt, creds.iterations);
    if (!derived.ok()) return sasl_failure(kTemporaryFailure);
    bool match = equal_secret(derived->stored_key, creds.stored_key);
    wipe(&derived->stored_key);
    wipe(&derived->server_key);
    wipe(&creds.stored_key);
    wipe(&creds.server_key);
    if (!match || !known) return sasl_failure(kNotAuthorized);
    return sasl_success("", username);
  }

  ChannelBindings cb_;
  CredentialLookup lookup_;
  SaslServerOptions options_;
  bool asked_ = false;
};

}  // namespace

std::string_view sasl_mechanism_name(SaslMechanism m) {
  for (const auto& info : kMechanisms) {
    if (info.mechanism == m) return info.name;
  }
  return "";
}

std::optional<SaslMechanism> sasl_mechanism_from_name(std::string_view name) {
  for (const auto& info : kMechanisms) {
    if (name == info.name) return info.mechanism;
  }
  return std::nullopt;
}

std::vector<std::string> sasl_mechanisms(const ChannelBindings& cb) {
  std::vector<std::string> out;
  if (!cb.tls) return out;
  for (const auto& info : kMechanisms) {
    if (is_plus(info.mechanism) && !cb.any()) continue;
    out.emplace_back(info.name);
  }
  return out;
}

SaslSelection sasl_select(std::string_view name, const ChannelBindings& cb) {
  SaslSelection s;
  if (!cb.tls) {
    s.condition = "encryption-required";
    return s;
  }
  auto m = sasl_mechanism_from_name(name);
  if (!m || (is_plus(*m) && !cb.any())) {
    s.condition = "invalid-mechanism";
    return s;
  }
  s.mechanism = m;
  return s;
}

SaslReply SaslServer::step(std::string_view message) {
  if (finished_) return sasl_failure(kMalformed);
  SaslReply reply = message.size() > kSaslMaxMessage ? sasl_failure(kMalformed) : do_step(message);
  if (reply.kind != SaslReply::Kind::kChallenge) finished_ = true;
  return reply;
}

std::unique_ptr<SaslServer> make_sasl_server(SaslMechanism mechanism, const ChannelBindings& cb,
                                             CredentialLookup lookup,
                                             const SaslServerOptions& options) {
  switch (mechanism) {
    case SaslMechanism::kScramSha256Plus:
      return std::make_unique<ScramServer>(ScramHash::kSha256, true, cb, std::move(lookup),
                                           options);
    case SaslMechanism::kScramSha1Plus:
      return std::make_unique<ScramServer>(ScramHash::kSha1, true, cb, std::move(lookup), options);
    case SaslMechanism::kScramSha256:
      return std::make_unique<ScramServer>(ScramHash::kSha256, false, cb, std::move(lookup),
                                           options);
    case SaslMechanism::kScramSha1:
      return std::make_unique<ScramServer>(ScramHash::kSha1, false, cb, std::move(lookup), options);
    case SaslMechanism::kPlain:
      return std::make_unique<PlainServer>(cb, std::move(lookup), options);
  }
  return nullptr;
}

SaslReply sasl_challenge(std::string data) {
  SaslReply r;
  r.kind = SaslReply::Kind::kChallenge;
  r.data = std::move(data);
  return r;
}

SaslReply sasl_failure(std::string condition) {
  SaslReply r;
  r.kind = SaslReply::Kind::kFailure;
  r.condition = std::move(condition);
  return r;
}

SaslReply sasl_success(std::string data, std::string username) {
  SaslReply r;
  r.kind = SaslReply::Kind::kSuccess;
  r.data = std::move(data);
  r.username = std::move(username);
  return r;
}

}  // namespace hearth::xmpp
