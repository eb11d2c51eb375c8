// The roster (RFC 6121 §2) with XEP-0237 versioning, and the store of the
// subscription state that the presence module drives (RFC 6121 §3).
//
// Tables (every key starts with user_key(owner)):
//   roster          owner \0 contact-bare-JID   -> encoded RosterItem
//   roster_meta     owner \0 "v"                -> u64 current roster version
//                   owner \0 "f"                -> u64 oldest version a delta can start from
//                   owner \0 "t" contact        -> u64 version of the contact's removal
//   roster_pending  owner \0 contact-bare-JID   -> stored inbound subscribe (XML), RFC 6121 §3.1.3
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "modules/services.h"
#include "xml/element.h"

namespace hearth::modules {

inline constexpr std::string_view kNsRoster = "jabber:iq:roster";
inline constexpr std::string_view kNsRosterVer = "urn:xmpp:features:rosterver";

struct RosterItem {
  std::string jid;  // bare JID of the contact (normalised)
  std::string name;
  std::vector<std::string> groups;
  Subscription subscription = Subscription::kNone;
  bool ask = false;       // pending out: a subscribe was sent and not answered
  bool approved = false;  // RFC 6121 §3.4 pre-approval
  uint64_t version = 0;   // roster version of the item's last change

  bool operator==(const RosterItem&) const = default;
};

// Value encoding of a roster item (version byte first; Reader::finish checks).
std::string encode_item(const RosterItem& item);
Result<RosterItem> decode_item(std::string_view contact, std::string_view value);

std::string_view subscription_name(Subscription s);

// Appends <item/> for `item` to `query` (subscription 'remove' when `removed`).
void add_item_element(xml::Element& query, const RosterItem& item, bool removed = false);

// RFC 6121 §2.3.3 checks of the <item/> of a roster set, after the JID.
inline constexpr size_t kMaxNameBytes = 1023;
inline constexpr size_t kMaxGroupBytes = 1023;
inline constexpr size_t kMaxGroups = 64;
struct ItemCheck {
  std::string_view type;  // empty: acceptable
  std::string_view condition;
  std::string_view text;
};
ItemCheck check_item_fields(const xml::Element& item, std::vector<std::string>* groups);

// XEP-0237: the client's 'ver' as a version number we can answer with a
// delta; nullopt when unknown (not ours, newer than current, malformed).
std::optional<uint64_t> parse_version(std::string_view ver, uint64_t current);

// What the presence module needs beyond RosterService (same module, so
// always there when presence runs: presence requires roster).
class RosterStore {
 public:
  static constexpr std::string_view kServiceName = "roster.store";
  virtual ~RosterStore() = default;
  virtual std::optional<RosterItem> item(std::string_view user, std::string_view contact) const = 0;
  virtual std::vector<RosterItem> items(std::string_view user) const = 0;
  // Creates or replaces the item, bumps the version and pushes it. Fails (with
  // "roster full") when a new item would exceed config.roster.max_items.
  virtual Status update(std::string_view user, const RosterItem& item) = 0;
  virtual Status remove(std::string_view user, std::string_view contact) = 0;
  // Inbound subscription requests kept until answered (RFC 6121 §3.1.3).
  virtual bool pending_in(std::string_view user, std::string_view contact) const = 0;
  virtual Status set_pending_in(std::string_view user, std::string_view contact,
                                std::string_view stanza_xml) = 0;
  virtual Status clear_pending_in(std::string_view user, std::string_view contact) = 0;
  // (contact, stored stanza) for every pending request of `user`.
  virtual std::vector<std::pair<std::string, std::string>> pending_requests(
      std::string_view user) const = 0;
};

}  // namespace hearth::modules
