// The INI configuration: one schema row per key (type, default, bounds, doc),
// parsed into a typed Config. A bad file stops start-up with
// "file:line: what is wrong, what to write instead".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace hearth::config {

struct Config {
  // [server]
  std::string domain;               // required; normalised (lowercase, no trailing dot)
  std::string data_dir;             // default /var/lib/hearth
  std::vector<std::string> admins;  // bare JIDs
  std::string user = "hearth";      // service user when started as root
  // [tls]
  std::string certificate;  // empty: self-signed in data_dir
  std::string key;
  // [c2s]
  std::vector<std::string> interfaces;  // addresses to bind; "*" = all (dual-stack)
  uint16_t port = 5222;                 // STARTTLS; 0 = ephemeral (tests)
  uint16_t direct_tls_port = 5223;      // XEP-0368; 0 = ephemeral (tests)
  uint32_t max_stanza_size = 262144;
  uint32_t pre_auth_timeout = 30;  // seconds until a stream must have authenticated
  // [auth]
  uint32_t scram_iterations = 10000;
  // [sandbox]
  bool sandbox_log = false;  // mode = log: violations are logged, not fatal (debugging)
  // [log]
  LogLevel log_level = LogLevel::kInfo;

  // Where files live once data_dir is known.
  std::string accounts_path() const { return data_dir + "/accounts.mdb"; }
  std::string data_path() const { return data_dir + "/data.mdb"; }
  std::string certificate_path() const;  // configured or data_dir/self-signed.crt
  std::string key_path() const;          // configured or data_dir/self-signed.key
};

enum class KeyType { kString, kInt, kBool, kList, kEnum };

// One row of the schema. `set` fills the Config field from a validated value
// and returns an error message (without file:line) when the value is bad.
struct KeyInfo {
  const char* section;
  const char* name;
  KeyType type;
  const char* default_value;  // as written in the INI; "" for none
  bool required;
  const char* doc;  // one line
};

// All keys, in the order config/hearth.ini documents them.
const std::vector<KeyInfo>& schema();

// Parse INI text. `filename` only labels error messages.
Result<Config> parse(std::string_view text, std::string_view filename);
// `text_out`, if given, receives the file's text when it parses.
Result<Config> load_file(const std::string& path, std::string* text_out = nullptr);

// The default path: $HEARTH_CONFIG, else /etc/hearth/hearth.ini.
std::string default_path();

}  // namespace hearth::config
