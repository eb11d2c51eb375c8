// Failed-login limits (issue 6, [auth] max_failures / failure_window /
// ban_time): counters per IP address and per account, kept in a table of
// accounts.mdb so that a restart forgets nothing.
//
// The rules:
// - A failure counts while failure_window has not passed since the previous
//   failure of the same IP (or account); a quiet failure_window forgets the
//   count. (Stricter than a sliding window: whatever sliding window holds
//   max_failures failures, this count holds them too.)
// - The failure that brings an IP to max_failures bans it for ban_time:
//   every exchange it starts (or continues) fails at once with the same
//   <not-authorized/>, before any account lookup or password hashing, so a
//   banned client learns nothing about accounts.
// - Back-off: each failure is answered after first_delay * 2^(n-1), capped
//   at max_delay, where n is the larger of the IP's and the account's count.
//   The account's count never bans and never delays a success: a correct
//   login from another IP works while an account is under attack.
// - Unknown accounts are counted like real ones (no existence oracle).
// - A success resets its IP's count (not a ban, not the account's count:
//   the owner logging in must not speed up an attacker elsewhere).
// - IPv6 addresses count per /64 (one host usually owns the whole /64);
//   IPv4-mapped IPv6 addresses count as the IPv4 address.
// - Bounded: expired entries are pruned; above max_entries the entries that
//   would expire first go (bans last).
//
// Guesses per IP: at most max_failures - 1 per failure_window without a
// ban (48 per hour with the defaults), or max_failures per ban_time with it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace hearth::xmpp {

struct AuthLimitOptions {
  uint32_t max_failures = 5;
  uint64_t failure_window_ms = 300 * 1000;
  uint64_t ban_time_ms = 3600 * 1000;
  uint64_t first_delay_ms = 500;
  uint64_t max_delay_ms = 5000;  // below the reactor's auth request timeout
  size_t max_entries = 50000;    // IPs + accounts kept (about 40 bytes each)
  uint32_t prune_every = 64;     // failures between two pruning passes
};

// One counter. Times are unix milliseconds (wall clock: they survive a
// restart; a clock stepped back makes entries count a little longer).
struct FailureRecord {
  uint32_t failures = 0;
  uint64_t last_failure_ms = 0;
  uint64_t banned_until_ms = 0;  // 0: not banned
  bool operator==(const FailureRecord&) const = default;
};

// Value: u8 version (1), u32 failures, u64 last_failure_ms,
// u64 banned_until_ms, all big-endian.
std::string encode_failure_record(const FailureRecord& r);
Result<FailureRecord> decode_failure_record(std::string_view value);

// Keys: u8 kind, then
//   1 (IPv4):        4 address bytes
//   2 (IPv6 /64):    the first 8 address bytes
//   3 (other text):  the text as given (not an IP address; never from c2s)
//   16 (account):    the normalised username
std::string failure_ip_key(std::string_view ip);
std::string failure_account_key(std::string_view username);
// "192.0.2.1", "2001:db8:1:2::/64", "alice" for logs.
std::string failure_key_text(std::string_view key);

// Where the counters live: accounts.mdb (AccountStore::failures()) or memory.
class FailureTable {
 public:
  virtual ~FailureTable() = default;
  virtual Result<std::optional<FailureRecord>> get(std::string_view key) = 0;
  virtual Status put(std::string_view key, const FailureRecord& r) = 0;
  virtual Status remove(std::string_view key) = 0;
  // Every entry (a record that does not decode is passed as nullopt).
  using EntryFn = std::function<void(std::string_view key, const std::optional<FailureRecord>&)>;
  virtual Status for_each(const EntryFn& fn) = 0;
  // Removes the keys in one transaction.
  virtual Status remove_all(const std::vector<std::string>& keys) = 0;
};

std::unique_ptr<FailureTable> make_memory_failure_table();

// Unix milliseconds now.
uint64_t wall_clock_ms();

// The state machine. It writes the audit events (core/audit.h) itself:
// auth_failure, auth_success (after failures), ip_banned, ip_unbanned,
// throttled (an account reached max_failures from any IPs).
class AuthLimiter {
 public:
  using Clock = std::function<uint64_t()>;  // unix milliseconds
  AuthLimiter(FailureTable* table, const AuthLimitOptions& options, Clock clock = wall_clock_ms);

  // May `ip` authenticate now? false while banned. A ban found expired is
  // lifted here (ip_unbanned).
  bool allowed(std::string_view ip);
  uint64_t banned_until_ms(std::string_view ip);

  struct Failure {
    uint32_t ip_failures = 0;       // within the window, this one included
    uint32_t account_failures = 0;  // the same for the account (0: no account name)
    bool banned_now = false;        // this failure banned the IP
    uint64_t delay_ms = 0;          // wait this long before the reply
  };
  // A failed guess (a wrong password or proof, for a known or unknown
  // `username`; "" when the client sent no usable name).
  Failure failure(std::string_view ip, std::string_view username, std::string_view mechanism);
  // A success: resets the IP's count; returns the count it had.
  uint32_t success(std::string_view ip, std::string_view username, std::string_view mechanism);

  // first_delay * 2^(n-1), capped; 0 for n = 0.
  uint64_t delay_for(uint32_t n) const;

  // Drops expired entries (and, above max_entries, those expiring first).
  void prune();

 private:
  bool expired(const FailureRecord& r, uint64_t now) const;
  FailureRecord load(const std::string& key);
  void store(const std::string& key, const FailureRecord& r);

  FailureTable* table_;
  AuthLimitOptions options_;
  Clock clock_;
  uint32_t since_prune_ = 0;
};

}  // namespace hearth::xmpp
