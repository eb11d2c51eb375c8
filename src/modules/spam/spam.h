// Abuse resistance (issue 6): the server-wide block list ([spam] block and
// block_file), per-account stanza budgets ([limits] subscriptions_per_minute,
// stranger_messages_per_minute), the new-account restriction ([spam]
// new_account_strangers_after) and XEP-0377 reports (which the blocking
// module hands over with a XEP-0191 block). This header holds the pure
// pieces (list parsing and matching, token buckets, the restriction clock,
// the stored records); the module is in spam.cc.
//
// Block list semantics. An entry is a bare JID (user@domain) or a domain.
// The JabberSPAM list (https://github.com/JabberSPAM/blacklist) is a list of
// server domains that send spam or host spam accounts; a server that hosts
// spammers controls its subdomains too (muc.spam.example,
// upload.spam.example), so a domain entry matches the domain and every
// subdomain, exactly as a XEP-0191 domain item does. A leading "*." is
// accepted and means the same ("*.spam.example" = "spam.example"). Entries
// are case-insensitive (normalised like JIDs). An entry naming the server's
// own domain or a parent of it would cut every local account off and is
// refused; single local accounts (mallory@our.domain) may be listed.
//
// Tables (keys under user_key(localpart), so account deletion removes them):
//   "spam_accounts": user \0 "created" -> u8 version, u64 unix seconds
//   "spam_reports":  user \0 'r' u64 BE microseconds -> Report (below),
//                    keyed by the REPORTER.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "xmpp/jid.h"

namespace hearth::modules::spam {

inline constexpr std::string_view kNsReporting = "urn:xmpp:reporting:1";
inline constexpr std::string_view kReasonSpam = "urn:xmpp:reporting:spam";
inline constexpr std::string_view kReasonAbuse = "urn:xmpp:reporting:abuse";
// Older disco features of XEP-0377 that clients (Conversations, Dino)
// still look for next to urn:xmpp:reporting:1 (as Prosody advertises them).
inline constexpr std::string_view kFeatureReasonSpam = "urn:xmpp:reporting:reason:spam:0";
inline constexpr std::string_view kFeatureReasonAbuse = "urn:xmpp:reporting:reason:abuse:0";

inline constexpr std::string_view kAccountsTable = "spam_accounts";
inline constexpr std::string_view kReportsTable = "spam_reports";

// Archived messages kept with a report.
inline constexpr size_t kReportMessages = 20;
// Bytes of a report's <text/>; a longer one is a bad request.
inline constexpr size_t kMaxReportText = 4096;
// Reports kept per reporter; the oldest go first.
inline constexpr size_t kMaxReportsPerUser = 100;

// Is `reason` one of the XEP-0377 reason URIs?
bool valid_reason(std::string_view reason);
// "spam" or "abuse" (for messages and the audit log).
std::string_view reason_name(std::string_view reason);

// ---- the server-wide block list ----

class BlockList {
 public:
  // Entries that would block `own_domain` itself are refused.
  explicit BlockList(std::string own_domain = {}) : own_domain_(std::move(own_domain)) {}

  // One entry: "user@domain", "domain" or "*.domain"; normalised. An error
  // says what is wrong with it.
  Status add(std::string_view entry);
  // The JabberSPAM format: one entry per line; '#' starts a comment (whole
  // line or after the entry); blank lines and surrounding spaces ignored.
  // A bad line is skipped and described in `warnings` ("line 3: ...").
  void add_text(std::string_view text, std::vector<std::string>* warnings);

  // The entry that blocks `jid` (its bare JID, its domain or a parent
  // domain of it), or nullptr.
  const std::string* match(const xmpp::Jid& jid) const;
  bool matches(const xmpp::Jid& jid) const { return match(jid) != nullptr; }
  size_t size() const { return jids_.size() + domains_.size(); }
  bool empty() const { return size() == 0; }

 private:
  std::string own_domain_;
  std::unordered_set<std::string> jids_;     // bare JIDs
  std::unordered_set<std::string> domains_;  // domains (and their subdomains)
};

// ---- stanza budgets ----

// A token bucket of `per_minute` tokens that refills continuously
// (per_minute per 60 s), full at the start. Exact integer arithmetic (a
// token is 60 000 units), so every platform counts alike and frequent
// calls lose no refill.
class TokenBucket {
 public:
  TokenBucket(uint32_t per_minute, uint64_t now_ms);
  // Takes one token if there is one. `per_minute` may change between calls
  // (a reload); 0 means unlimited.
  bool take(uint32_t per_minute, uint64_t now_ms);
  // Would the bucket be full now (nothing to remember)?
  bool full(uint32_t per_minute, uint64_t now_ms) const;
  // Milliseconds until one token is there (0 if there is one now).
  uint64_t wait_ms(uint32_t per_minute, uint64_t now_ms) const;

 private:
  uint64_t refilled(uint32_t per_minute, uint64_t now_ms) const;
  uint64_t units_;    // tokens * 60 000
  uint64_t last_ms_;  // when milli_ was right
};

// ---- the new-account restriction ----

// Until when (unix seconds) an account created at `created` may only
// message its contacts, or nullopt when it is not restricted now: no record
// (created before the restriction existed), `after` == 0 (off), or the time
// is over.
std::optional<uint64_t> restricted_until(std::optional<uint64_t> created, uint64_t after,
                                         uint64_t now);

std::string encode_created(uint64_t unix_seconds);
Result<uint64_t> decode_created(std::string_view value);
inline constexpr std::string_view kCreatedKey = "created";

// ---- reports ----

struct Report {
  std::string reporter;              // bare JID
  std::string reported;              // JID as in the <item/>
  std::string reason;                // the reason URI
  std::string text;                  // the user's words (may be empty)
  uint64_t micros = 0;               // when, microseconds since the epoch
  std::vector<std::string> stanzas;  // archived messages with `reported`, oldest first
  bool operator==(const Report&) const = default;
};
inline constexpr uint8_t kReportVersion = 1;
std::string encode_report(const Report& report);
Result<Report> decode_report(std::string_view value);
// user \0 'r' u64 BE micros: one reporter's reports in time order.
std::string report_key(std::string_view reporter_local, uint64_t micros);
std::string report_prefix(std::string_view reporter_local);

// XEP-0082 UTC time "2026-11-22T00:59:01Z" of unix seconds.
std::string format_utc(uint64_t unix_seconds);
// "1 h 5 min", "45 s": a short duration for a human.
std::string format_duration(uint64_t seconds);

}  // namespace hearth::modules::spam
