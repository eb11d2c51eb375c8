// The INI configuration: one schema row per key (type, default, bounds, doc),
// parsed into a typed Config. A bad file stops start-up with
// "file:line: what is wrong, what to write instead".
#pragma once

#include <cstdint>
#include <optional>
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
  bool expose_version = false;      // XEP-0092: also tell the version and OS
  // [tls]
  std::string certificate;  // empty: self-signed in data_dir
  std::string key;
  // [c2s]
  std::vector<std::string> interfaces;  // addresses to bind; "*" = all (dual-stack)
  uint16_t port = 5222;                 // STARTTLS; 0 = ephemeral (tests)
  uint16_t direct_tls_port = 5223;      // XEP-0368; 0 = ephemeral (tests)
  uint32_t max_stanza_size = 262144;
  uint32_t pre_auth_timeout = 30;  // seconds until a stream must have authenticated
  uint32_t ping_interval = 300;    // seconds of silence before the server pings (0: never)
  uint32_t ping_timeout = 60;      // seconds to answer anything before the stream is closed
  // [auth]
  uint32_t scram_iterations = 10000;
  uint32_t min_password_length = 10;  // characters (Unicode code points)
  uint32_t max_failures = 5;          // failed logins per account or IP within failure_window
  uint64_t failure_window = 300;      // seconds
  uint64_t ban_time = 3600;           // seconds an IP is refused after max_failures
  // [sandbox]
  bool sandbox_log = false;  // mode = log: violations are logged, not fatal (debugging)
  // [log]
  LogLevel log_level = LogLevel::kInfo;
  std::string audit_file;  // JSON lines of security events; "" = data_dir/audit.log
  // [modules]
  std::vector<std::string> disabled_modules;  // names of compiled-in modules switched off
  // Module sections.
  struct {
    uint32_t max_items = 1000;
  } roster;
  struct {
    uint32_t max_messages = 1000;
  } offline;
  struct {
    uint32_t max_size = 65536;
  } vcard;
  struct {
    uint32_t max_size = 65536;
  } private_storage;  // [private]
  struct {
    bool logout_on_password_change = true;
  } account;  // [register]
  struct {
    uint32_t resume_timeout = 300;  // seconds a XEP-0198 session waits for its client
    uint32_t max_queue = 1000;      // unacknowledged stanzas before the stream is closed
  } smacks;
  struct {
    uint64_t expires_after = 604800;      // seconds a message stays archived (0: never expires)
    std::string default_mode = "always";  // XEP-0313 default preference: always, roster, never
  } archive;                              // [archive], the mam module
  struct {
    uint32_t max_held = 500;  // stanzas held for an inactive client before a flush
  } csi;
  struct {
    uint32_t max_items = 256;        // items one node keeps at most (XEP-0060 max_items cap)
    uint32_t max_nodes = 100;        // nodes one account may create
    uint32_t max_item_size = 65536;  // bytes of one published item
  } pep;
  struct {
    uint32_t max_per_ip = 10;                   // concurrent connections from one IP address
    uint32_t max_connections = 2000;            // concurrent connections in all
    std::vector<std::string> trusted_networks;  // CIDRs exempt from per-IP limits
    bool trust_loopback = true;  // 127.0.0.0/8 and ::1 are exempt too (not behind Tor/a proxy)
    uint32_t connect_rate = 30;  // new connections per IP per minute
    uint32_t tls_handshake_timeout = 10;  // seconds from connect to a finished TLS handshake
    uint32_t preauth_idle_timeout = 10;   // seconds without a byte before authentication
    uint32_t c2s_rate = 10000;            // bytes/s read from an authenticated client
    uint32_t c2s_burst = 25000;
    uint32_t s2s_rate = 30000;  // bytes/s read from a server
    uint32_t s2s_burst = 100000;
    uint32_t subscriptions_per_minute = 30;      // presence subscription requests per account
    uint32_t stranger_messages_per_minute = 60;  // messages to JIDs outside the roster
  } limits;
  struct {
    std::string mode = "invite";       // closed, invite or open
    uint32_t max_per_ip_per_hour = 1;  // open mode: registrations per IP address
    bool notify_admins = true;         // a chat message to the admins per registration
    uint64_t invite_expires = 604800;  // seconds an invite stays valid by default
    bool allow_user_invites = false;   // any account may invite (not only admins)
  } registration;
  struct {
    std::vector<std::string> block;            // JIDs and domains refused server-wide
    std::string block_file;                    // one JID or domain per line (JabberSPAM format)
    uint64_t new_account_strangers_after = 0;  // seconds before a new account may message strangers
  } spam;
  struct {  // XEP-0157 addresses (URIs)
    std::vector<std::string> abuse, admin, feedback, sales, security, support;
  } contact;

  bool module_enabled(std::string_view name) const;

  // Where files live once data_dir is known.
  std::string accounts_path() const { return data_dir + "/accounts.mdb"; }
  std::string data_path() const { return data_dir + "/data.mdb"; }
  std::string audit_path() const {
    return audit_file.empty() ? data_dir + "/audit.log" : audit_file;
  }
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

// A duration as the INI writes it: a number with a unit s, m, h, d or w (a
// bare number is seconds; at most 9 digits, not 0), or "never" (0).
// nullopt when it is none of these.
std::optional<uint64_t> parse_duration(std::string_view text);

// Parse INI text. `filename` only labels error messages.
Result<Config> parse(std::string_view text, std::string_view filename);
// `text_out`, if given, receives the file's text when it parses.
Result<Config> load_file(const std::string& path, std::string* text_out = nullptr);

// Names of the compiled-in modules (generated by CMake, modules/registry).
const std::vector<std::string_view>& compiled_module_names();

// The default path: $HEARTH_CONFIG, else /etc/hearth/hearth.ini.
std::string default_path();

}  // namespace hearth::config
