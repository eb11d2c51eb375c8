#include "scram.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>

#include <cstring>
#include <vector>

namespace hearth::bench {
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t hash_size(ScramHash h) {
  return h == ScramHash::kSha1 ? 20 : 32;
}
int wolf_type(ScramHash h) {
  return h == ScramHash::kSha1 ? static_cast<int>(WC_HASH_TYPE_SHA)
                               : static_cast<int>(WC_HASH_TYPE_SHA256);
}
const byte* bytes(std::string_view s) {
  return reinterpret_cast<const byte*>(s.data());
}

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
  unsigned char out[32];
  Hmac ctx;
  static const byte kZero = 0;
  bool ok = wc_HmacInit(&ctx, nullptr, INVALID_DEVID) == 0 &&
            wc_HmacSetKey(&ctx, wolf_type(h), key.empty() ? &kZero : bytes(key),
                          static_cast<word32>(key.size())) == 0 &&
            wc_HmacUpdate(&ctx, bytes(data), static_cast<word32>(data.size())) == 0 &&
            wc_HmacFinal(&ctx, out) == 0;
  wc_HmacFree(&ctx);
  if (!ok) return {};
  return std::string(reinterpret_cast<char*>(out), hash_size(h));
}

std::string digest(ScramHash h, std::string_view data) {
  unsigned char out[32];
  int r = h == ScramHash::kSha1 ? wc_ShaHash(bytes(data), static_cast<word32>(data.size()), out)
                                : wc_Sha256Hash(bytes(data), static_cast<word32>(data.size()), out);
  if (r != 0) return {};
  return std::string(reinterpret_cast<char*>(out), hash_size(h));
}

std::string saslname(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '=')
      out += "=3D";
    else if (c == ',')
      out += "=2C";
    else
      out += c;
  }
  return out;
}

// Value of "k=" in a comma-separated SCRAM message.
std::string field(std::string_view msg, char k) {
  size_t i = 0;
  while (i < msg.size()) {
    size_t e = msg.find(',', i);
    if (e == std::string_view::npos) e = msg.size();
    if (e - i >= 2 && msg[i] == k && msg[i + 1] == '=')
      return std::string(msg.substr(i + 2, e - i - 2));
    i = e + 1;
  }
  return {};
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    const char* p = strchr(kB64, c);
    if (p == nullptr || c == 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

const std::string* SaltCache::find(const std::string& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

void SaltCache::put(const std::string& key, std::string value) {
  map_[key] = std::move(value);
}

SaltCache::~SaltCache() {
  for (auto& [k, v] : map_)
    std::fill(v.begin(), v.end(), '\0');
}

ScramClient::ScramClient(ScramHash hash, std::string user, std::string password, SaltCache* cache)
    : hash_(hash), user_(std::move(user)), password_(std::move(password)), cache_(cache) {}

ScramClient::~ScramClient() {
  std::fill(password_.begin(), password_.end(), '\0');
}

std::string ScramClient::first() {
  unsigned char raw[18];
  static WC_RNG rng;
  static bool rng_ok = wc_InitRng(&rng) == 0;
  if (!rng_ok || wc_RNG_GenerateBlock(&rng, raw, sizeof raw) != 0) memset(raw, 0x5a, sizeof raw);
  cnonce_ = base64_encode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  first_bare_ = "n=" + saslname(user_) + ",r=" + cnonce_;
  return "n,," + first_bare_;
}

bool ScramClient::final(std::string_view server_first, std::string* client_final,
                        std::string* error) {
  std::string nonce = field(server_first, 'r');
  std::string salt_b64 = field(server_first, 's');
  std::string iter = field(server_first, 'i');
  if (nonce.compare(0, cnonce_.size(), cnonce_) != 0 || nonce.size() <= cnonce_.size()) {
    *error = "server nonce does not extend ours";
    return false;
  }
  std::string salt;
  if (salt_b64.empty() || !base64_decode(salt_b64, &salt)) {
    *error = "bad salt";
    return false;
  }
  int iterations = atoi(iter.c_str());
  if (iterations < 1 || iterations > 10000000) {
    *error = "bad iteration count";
    return false;
  }
  std::string key = std::to_string(static_cast<int>(hash_)) + '\0' + user_ + '\0' + salt + '\0' +
                    iter + '\0' + password_;
  std::string salted;
  if (const std::string* hit = cache_->find(key)) {
    salted = *hit;
  } else {
    salted.resize(hash_size(hash_));
    if (wc_PBKDF2(reinterpret_cast<byte*>(salted.data()), bytes(password_),
                  static_cast<int>(password_.size()), bytes(salt), static_cast<int>(salt.size()),
                  iterations, static_cast<int>(hash_size(hash_)), wolf_type(hash_)) != 0) {
      *error = "PBKDF2 failed";
      return false;
    }
    cache_->put(key, salted);
  }
  std::string without_proof = "c=biws,r=" + nonce;
  std::string auth_message = first_bare_ + "," + std::string(server_first) + "," + without_proof;
  std::string client_key = hmac(hash_, salted, "Client Key");
  std::string stored_key = digest(hash_, client_key);
  std::string signature = hmac(hash_, stored_key, auth_message);
  std::string proof = client_key;
  for (size_t i = 0; i < proof.size(); ++i)
    proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  std::string server_key = hmac(hash_, salted, "Server Key");
  server_signature_ = hmac(hash_, server_key, auth_message);
  std::fill(salted.begin(), salted.end(), '\0');
  *client_final = without_proof + ",p=" + base64_encode(proof);
  return true;
}

bool ScramClient::verify(std::string_view server_final) const {
  std::string v = field(server_final, 'v');
  std::string got;
  return !v.empty() && base64_decode(v, &got) && got == server_signature_;
}

}  // namespace hearth::bench
