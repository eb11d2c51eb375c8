// Client side of SASL SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677),
// without channel binding ("n,,"), hashing with wolfCrypt.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace hearth::bench {

enum class ScramHash { kSha1, kSha256 };

std::string base64_encode(std::string_view in);
// False on characters outside the alphabet.
bool base64_decode(std::string_view in, std::string* out);

// SaltedPassword values already computed, so a user logging in again costs
// the load generator no PBKDF2 (the server's work is what we measure).
class SaltCache {
 public:
  const std::string* find(const std::string& key) const;
  void put(const std::string& key, std::string value);
  ~SaltCache();

 private:
  std::map<std::string, std::string> map_;
};

class ScramClient {
 public:
  ScramClient(ScramHash hash, std::string user, std::string password, SaltCache* cache);
  ~ScramClient();
  // client-first-message (with the GS2 header), to base64 into <auth/>.
  std::string first();
  // Answers server-first-message with client-final-message; false on a bad challenge.
  bool final(std::string_view server_first, std::string* client_final, std::string* error);
  // Checks server-final-message (v=...).
  bool verify(std::string_view server_final) const;

 private:
  ScramHash hash_;
  std::string user_;
  std::string password_;
  std::string cnonce_;
  std::string first_bare_;
  std::string server_signature_;
  SaltCache* cache_;
};

}  // namespace hearth::bench
