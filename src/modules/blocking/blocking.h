// XEP-0191 Blocking Command: the blocklist as stored in the "blocklist"
// table (key user_key(user, item JID), value a format byte) and the JID
// matching of XEP-0191 §3.1 / XEP-0016. The module itself (IQ handlers,
// enforcement hooks, pushes) is in blocking.cc.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "storage/env.h"
#include "xml/element.h"
#include "xmpp/jid.h"

namespace hearth::modules::blocking {

inline constexpr std::string_view kNsBlocking = "urn:xmpp:blocking";
inline constexpr std::string_view kNsBlockingErrors = "urn:xmpp:blocking:errors";
inline constexpr std::string_view kTable = "blocklist";
// XEP-0377: a <report/> inside a <block/> item, handed to the spam module
// (SpamReportService) once the block is stored.
inline constexpr std::string_view kNsReporting = "urn:xmpp:reporting:1";
inline constexpr std::string_view kReasonSpam = "urn:xmpp:reporting:spam";
inline constexpr std::string_view kReasonAbuse = "urn:xmpp:reporting:abuse";
// Bytes of a report's text; longer is a bad request.
inline constexpr size_t kMaxReportText = 4096;
// A blocklist is for people and spam domains, not a data store: a cap keeps
// one account from filling data.mdb.
inline constexpr size_t kMaxItems = 10000;

// The stored item strings that block `jid`, in XEP-0191 §3.1 order:
// full JID, bare JID, domain/resource, then the domain and each parent
// domain (a domain item also matches its subdomains).
std::vector<std::string> match_candidates(const xmpp::Jid& jid);

// A XEP-0377 report of one <item/>.
struct ReportRequest {
  std::string reason;  // kReasonSpam or kReasonAbuse
  std::string text;    // the first <text/>, may be empty
};
// Reads the <report/> children of a block <item/>: nullopt-like empty
// `reason` when there is none; an error text (for <bad-request/>) when a
// report is malformed: more than one, no or an unknown 'reason', text too
// long.
Result<std::optional<ReportRequest>> parse_report(const xml::Element& item);

// The blocklists of all users in one table. Every call uses its own
// transaction, so it always sees the newest commit.
class Blocklist {
 public:
  Blocklist(storage::Env& env, storage::Dbi db) : env_(env), db_(db) {}

  // Is any item of `user` matching `jid`? (A read error counts as "no".)
  bool matches(std::string_view user, const xmpp::Jid& jid) const;
  // The items of `user` in key order.
  Result<std::vector<std::string>> items(std::string_view user) const;

  // Adds the items (normalised JID strings); `added` receives those that
  // were not blocked before. Fails without writing anything if the list
  // would exceed `max_items` (`*full` is then true).
  Status add(std::string_view user, const std::vector<std::string>& jids, size_t max_items,
             std::vector<std::string>* added, bool* full);
  // Removes the items; `removed` receives those that were blocked.
  Status remove(std::string_view user, const std::vector<std::string>& jids,
                std::vector<std::string>* removed);
  // Removes every item; `removed` receives them.
  Status clear(std::string_view user, std::vector<std::string>* removed);

 private:
  storage::Env& env_;
  storage::Dbi db_;
};

}  // namespace hearth::modules::blocking
