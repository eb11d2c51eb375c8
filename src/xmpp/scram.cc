#include "xmpp/scram.h"

// wolfSSL wants its generated options before any of its headers.
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <sodium.h>

#include <array>
#include <climits>
#include <cstring>

#include "core/base64.h"
#include "core/unicode.h"

namespace hearth::xmpp {
namespace {

constexpr size_t kMaxHashSize = 32;

int wolf_hash_type(ScramHash h) {
  return h == ScramHash::kSha1 ? static_cast<int>(WC_HASH_TYPE_SHA)
                               : static_cast<int>(WC_HASH_TYPE_SHA256);
}

const byte* as_bytes(std::string_view s) {
  return reinterpret_cast<const byte*>(s.data());
}

// HMAC into `out` (hash size bytes).
bool hmac_into(ScramHash h, std::string_view key, std::string_view data, unsigned char* out) {
  Hmac hmac;
  if (wc_HmacInit(&hmac, nullptr, INVALID_DEVID) != 0) return false;
  static const byte kEmpty = 0;
  const byte* key_ptr = key.empty() ? &kEmpty : as_bytes(key);
  bool ok =
      wc_HmacSetKey(&hmac, wolf_hash_type(h), key_ptr, static_cast<word32>(key.size())) == 0 &&
      wc_HmacUpdate(&hmac, as_bytes(data), static_cast<word32>(data.size())) == 0 &&
      wc_HmacFinal(&hmac, out) == 0;
  wc_HmacFree(&hmac);
  // The context holds the key's inner/outer pads.
  sodium_memzero(&hmac, sizeof hmac);
  return ok;
}

bool hash_into(ScramHash h, std::string_view data, unsigned char* out) {
  if (h == ScramHash::kSha1) {
    return wc_ShaHash(as_bytes(data), static_cast<word32>(data.size()), out) == 0;
  }
  return wc_Sha256Hash(as_bytes(data), static_cast<word32>(data.size()), out) == 0;
}

std::string_view view(const unsigned char* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}

// Wipes a fixed buffer of key material when it goes out of scope.
struct SecretBuf {
  std::array<unsigned char, kMaxHashSize> b{};
  ~SecretBuf() { sodium_memzero(b.data(), b.size()); }
  unsigned char* data() { return b.data(); }
};

// SaltedPassword = Hi(password, salt, i) = PBKDF2-HMAC-H with dkLen = hash size.
bool salted_password(ScramHash h, std::string_view password, std::string_view salt,
                     uint32_t iterations, unsigned char* out) {
  if (iterations < kScramMinIterations || iterations > kScramMaxIterations) return false;
  if (password.size() > INT_MAX || salt.size() > INT_MAX) return false;
  static const byte kEmpty = 0;
  return wc_PBKDF2(out, password.empty() ? &kEmpty : as_bytes(password),
                   static_cast<int>(password.size()), salt.empty() ? &kEmpty : as_bytes(salt),
                   static_cast<int>(salt.size()), static_cast<int>(iterations),
                   static_cast<int>(scram_hash_size(h)), wolf_hash_type(h)) == 0;
}

// Decodes one code point from valid UTF-8 at s[*i], advancing *i.
uint32_t next_code_point(std::string_view s, size_t* i) {
  auto c = static_cast<unsigned char>(s[*i]);
  int extra = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
  uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k <= extra; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[*i + k]) & 0x3F);
  }
  *i += 1 + extra;
  return cp;
}

// General category Zs other than U+0020 (Unicode 15).
bool is_non_ascii_space(uint32_t cp) {
  return cp == 0x00A0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// General category Cc.
bool is_control(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

}  // namespace

size_t scram_hash_size(ScramHash h) {
  return h == ScramHash::kSha1 ? 20 : 32;
}

Result<std::string> scram_hash(ScramHash h, std::string_view data) {
  std::array<unsigned char, kMaxHashSize> out{};
  if (!hash_into(h, data, out.data())) return make_error("scram: hash failed");
  return std::string(view(out.data(), scram_hash_size(h)));
}

Result<std::string> scram_hmac(ScramHash h, std::string_view key, std::string_view data) {
  std::array<unsigned char, kMaxHashSize> out{};
  if (!hmac_into(h, key, data, out.data())) return make_error("scram: hmac failed");
  return std::string(view(out.data(), scram_hash_size(h)));
}

Result<ScramCredentials> scram_derive(ScramHash h, std::string_view password, std::string_view salt,
                                      uint32_t iterations) {
  if (password.empty()) return make_error("scram: empty password");
  if (salt.empty()) return make_error("scram: empty salt");
  if (iterations < kScramMinIterations || iterations > kScramMaxIterations) {
    return make_error("scram: iteration count out of range");
  }
  const size_t n = scram_hash_size(h);
  SecretBuf sp, client_key;
  std::array<unsigned char, kMaxHashSize> stored{}, server{};
  if (!salted_password(h, password, salt, iterations, sp.data()) ||
      !hmac_into(h, view(sp.data(), n), "Client Key", client_key.data()) ||
      !hash_into(h, view(client_key.data(), n), stored.data()) ||
      !hmac_into(h, view(sp.data(), n), "Server Key", server.data())) {
    return make_error("scram: key derivation failed");
  }
  ScramCredentials c;
  c.salt = std::string(salt);
  c.iterations = iterations;
  c.stored_key = std::string(view(stored.data(), n));
  c.server_key = std::string(view(server.data(), n));
  sodium_memzero(server.data(), server.size());
  return c;
}

Result<std::string> prepare_password(std::string_view password) {
  if (unicode::is_ascii(password)) {
    // ASCII is its own NFC and has no non-ASCII spaces: only the checks remain.
    for (char ch : password) {
      if (is_control(static_cast<unsigned char>(ch))) {
        return make_error("password contains a control character");
      }
    }
    if (password.empty()) return make_error("password is empty");
    return std::string(password);
  }
  if (!unicode::valid_utf8(password)) return make_error("password is not valid UTF-8");
  // RFC 8265 §4.2.1: additional mapping rule, non-ASCII spaces to U+0020.
  std::string mapped;
  mapped.reserve(password.size());
  for (size_t i = 0; i < password.size();) {
    size_t start = i;
    uint32_t cp = next_code_point(password, &i);
    if (is_non_ascii_space(cp)) {
      mapped.push_back(' ');
    } else {
      mapped.append(password.substr(start, i - start));
    }
  }
  auto normalized = unicode::nfc(mapped);
  sodium_memzero(mapped.data(), mapped.size());
  if (!normalized.ok()) return make_error("password cannot be normalised");
  std::string out = std::move(normalized.value());
  for (size_t i = 0; i < out.size();) {
    if (is_control(next_code_point(out, &i))) {
      sodium_memzero(out.data(), out.size());
      return make_error("password contains a control character");
    }
  }
  if (out.empty()) return make_error("password is empty");
  return out;
}

bool scram_verify_proof(ScramHash h, std::string_view stored_key, std::string_view auth_message,
                        std::string_view client_proof) {
  const size_t n = scram_hash_size(h);
  if (stored_key.size() != n || client_proof.size() != n) return false;
  SecretBuf signature, client_key, computed;
  if (!hmac_into(h, stored_key, auth_message, signature.data())) return false;
  for (size_t i = 0; i < n; ++i) {
    client_key.b[i] = static_cast<unsigned char>(client_proof[i]) ^ signature.b[i];
  }
  if (!hash_into(h, view(client_key.data(), n), computed.data())) return false;
  return sodium_memcmp(computed.data(), stored_key.data(), n) == 0;
}

Result<std::string> scram_server_signature(ScramHash h, std::string_view server_key,
                                           std::string_view auth_message) {
  if (server_key.size() != scram_hash_size(h)) return make_error("scram: bad ServerKey size");
  return scram_hmac(h, server_key, auth_message);
}

std::string scram_escape_saslname(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::string> scram_unescape_saslname(std::string_view saslname) {
  if (saslname.empty()) return make_error("saslname: empty");
  std::string out;
  out.reserve(saslname.size());
  for (size_t i = 0; i < saslname.size(); ++i) {
    char c = saslname[i];
    if (c == '\0' || c == ',') return make_error("saslname: forbidden character");
    if (c != '=') {
      out.push_back(c);
      continue;
    }
    std::string_view esc = saslname.substr(i + 1, 2);
    if (esc == "2C") {
      out.push_back(',');
    } else if (esc == "3D") {
      out.push_back('=');
    } else {
      return make_error("saslname: bad escape");
    }
    i += 2;
  }
  if (!unicode::valid_utf8(out)) return make_error("saslname: not UTF-8");
  return out;
}

Result<ScramClientProof> scram_client_proof(ScramHash h, std::string_view password,
                                            std::string_view salt, uint32_t iterations,
                                            std::string_view auth_message) {
  const size_t n = scram_hash_size(h);
  SecretBuf sp, client_key, stored, signature, server_key, server_sig;
  if (!salted_password(h, password, salt, iterations, sp.data()) ||
      !hmac_into(h, view(sp.data(), n), "Client Key", client_key.data()) ||
      !hash_into(h, view(client_key.data(), n), stored.data()) ||
      !hmac_into(h, view(stored.data(), n), auth_message, signature.data()) ||
      !hmac_into(h, view(sp.data(), n), "Server Key", server_key.data()) ||
      !hmac_into(h, view(server_key.data(), n), auth_message, server_sig.data())) {
    return make_error("scram: client proof computation failed");
  }
  ScramClientProof p;
  p.client_proof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    p.client_proof[i] = static_cast<char>(client_key.b[i] ^ signature.b[i]);
  }
  p.server_signature = std::string(view(server_sig.data(), n));
  return p;
}

Result<ScramClientFinal> scram_client_final(ScramHash h, std::string_view password,
                                            std::string_view client_first,
                                            std::string_view server_first,
                                            std::string_view cb_data) {
  // gs2-header is everything up to and including the second comma.
  size_t c1 = client_first.find(',');
  size_t c2 = c1 == std::string_view::npos ? c1 : client_first.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return make_error("scram client: bad client-first");
  std::string_view gs2_header = client_first.substr(0, c2 + 1);
  std::string_view bare = client_first.substr(c2 + 1);
  size_t rpos = bare.find(",r=");
  if (rpos == std::string_view::npos) return make_error("scram client: no client nonce");
  std::string_view client_nonce = bare.substr(rpos + 3);
  client_nonce = client_nonce.substr(0, client_nonce.find(','));

  // server-first: r=<nonce>,s=<salt>,i=<count>
  std::string_view nonce, salt_b64, iter_text;
  std::string_view rest = server_first;
  for (int field = 0; field < 3; ++field) {
    size_t comma = rest.find(',');
    std::string_view attr = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    static constexpr const char* kNames[] = {"r=", "s=", "i="};
    if (attr.substr(0, 2) != kNames[field]) return make_error("scram client: bad server-first");
    (field == 0 ? nonce : field == 1 ? salt_b64 : iter_text) = attr.substr(2);
  }
  if (nonce.size() <= client_nonce.size() || nonce.substr(0, client_nonce.size()) != client_nonce) {
    return make_error("scram client: server nonce does not extend ours");
  }
  auto salt = base64_decode(salt_b64);
  if (!salt.ok() || salt->empty()) return make_error("scram client: bad salt");
  if (iter_text.empty() || iter_text.size() > 9) return make_error("scram client: bad count");
  uint32_t iterations = 0;
  for (char c : iter_text) {
    if (c < '0' || c > '9') return make_error("scram client: bad count");
    iterations = iterations * 10 + static_cast<uint32_t>(c - '0');
  }

  std::string cbind_input(gs2_header);
  cbind_input.append(cb_data);
  std::string without_proof = "c=" + base64_encode(cbind_input) + ",r=" + std::string(nonce);
  std::string auth_message =
      std::string(bare) + "," + std::string(server_first) + "," + without_proof;
  auto proof = scram_client_proof(h, password, salt.value(), iterations, auth_message);
  if (!proof.ok()) return proof.error();
  ScramClientFinal out;
  out.message = without_proof + ",p=" + base64_encode(proof->client_proof);
  out.server_final = "v=" + base64_encode(proof->server_signature);
  return out;
}

}  // namespace hearth::xmpp
