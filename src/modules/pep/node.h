// The pure parts of PEP (XEP-0163 on a XEP-0060 subset): node
// configuration and its data forms, access decisions, +notify filtering
// from entity caps (XEP-0115), and the LMDB key/value codecs.
//
// Tables (every key starts with user_key(owner)):
//   pep_nodes     owner \0 node                   -> NodeRecord
//   pep_items     owner \0 node \0 u64 BE seq     -> ItemRecord (id + payload XML)
//   pep_item_ids  owner \0 node \0 item id        -> u64 BE seq
// Node names and item ids are XML attribute values and cannot hold a zero
// byte, so "node \0" is an exact prefix of that node's keys. The sequence
// grows with every publish, so key order is publish order: the last key is
// the last item and trimming to max_items deletes from the front.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "modules/services.h"
#include "xml/element.h"

namespace hearth::modules::pep {

inline constexpr std::string_view kNsPubsub = "http://jabber.org/protocol/pubsub";
inline constexpr std::string_view kNsOwner = "http://jabber.org/protocol/pubsub#owner";
inline constexpr std::string_view kNsEvent = "http://jabber.org/protocol/pubsub#event";
inline constexpr std::string_view kNsErrors = "http://jabber.org/protocol/pubsub#errors";
inline constexpr std::string_view kNsData = "jabber:x:data";
inline constexpr std::string_view kFormNodeConfig = "http://jabber.org/protocol/pubsub#node_config";
inline constexpr std::string_view kFormPublishOptions =
    "http://jabber.org/protocol/pubsub#publish-options";

enum class AccessModel : uint8_t { kPresence = 0, kOpen = 1, kWhitelist = 2 };
enum class SendLast : uint8_t { kNever = 0, kOnSub = 1, kOnSubAndPresence = 2 };

// pubsub#max_items = "max": as many as the server allows ([pep] max_items).
inline constexpr uint32_t kMaxItemsMax = 0xffffffffu;

struct NodeConfig {
  AccessModel access = AccessModel::kPresence;
  // XEP-0163 §4.3 / Prosody: a PEP node keeps its last item by default.
  uint32_t max_items = 1;
  bool persist_items = true;
  SendLast send_last = SendLast::kOnSubAndPresence;
  bool notify_retract = true;
  std::string title;

  bool operator==(const NodeConfig&) const = default;

  // Items the node keeps: max_items capped by the server's limit; a
  // transient node (persist_items false) keeps only the last one, for
  // last-item delivery.
  uint32_t effective_max(uint32_t cap) const;
};

std::string_view access_name(AccessModel m);
std::string_view send_last_name(SendLast s);

// Applies the fields of a submitted data form (pubsub#node_config or
// pubsub#publish-options) to `config`. Unknown fields are ignored (clients
// send fields we do not model, e.g. pubsub#deliver_payloads); a known field
// with a value we cannot honour fails with a message naming it. max_items
// above `cap` fails (the client asked for more than the server keeps; "max"
// is the way to ask for the cap).
Status apply_form(const xml::Element& x, uint32_t cap, NodeConfig* config);

// XEP-0060 §7.1.5: the options are met by an existing node when applying
// them changes nothing. False also when the form is invalid.
bool preconditions_met(const xml::Element& x, uint32_t cap, const NodeConfig& existing);

// The pubsub#node_config form (type "form" for configure/default get).
xml::Element* config_form(const NodeConfig& config, xml::Arena& arena);

// ---- access ----

enum class Access : uint8_t {
  kAllowed,
  kPresenceRequired,  // not-authorized + presence-subscription-required
  kClosed,            // not-allowed + closed-node
};
// `owner_sub` is the subscription the node's owner has with the requester
// (the owner's roster item for the requester): 'from'/'both' means the
// requester receives the owner's presence.
Access check_access(AccessModel model, bool requester_is_owner, Subscription owner_sub);

// ---- entity caps ----

// The +notify features of a disco#info feature list: the node names, sorted
// and unique (XEP-0163 §4: "NODE+notify").
std::vector<std::string> notify_nodes(const std::vector<std::string>& features);
bool wants(const std::vector<std::string>& sorted_nodes, std::string_view node);

// ---- storage ----

inline constexpr size_t kMaxNodeName = 256;
inline constexpr size_t kMaxItemId = 128;

struct NodeRecord {
  NodeConfig config;
  uint64_t next_seq = 1;
  uint32_t item_count = 0;
};
std::string encode_node(const NodeRecord& node);
Result<NodeRecord> decode_node(std::string_view value);

struct ItemRecord {
  std::string id;
  std::string payload;     // one serialised element
  uint64_t published = 0;  // Unix seconds
};
std::string encode_item(std::string_view id, std::string_view payload, uint64_t published);
Result<ItemRecord> decode_item(std::string_view value);

std::string node_key(std::string_view user, std::string_view node);
std::string items_prefix(std::string_view user, std::string_view node);
std::string item_key(std::string_view user, std::string_view node, uint64_t seq);
std::string id_key(std::string_view user, std::string_view node, std::string_view id);
// The sequence number at the end of an item key of `prefix_size` bytes of
// prefix; nullopt if the key is not prefix + 8 bytes.
std::optional<uint64_t> item_seq(std::string_view key, size_t prefix_size);

// XEP-0082 DateTime in UTC ("2026-01-02T03:04:05Z") for a <delay/> stamp.
std::string format_stamp(uint64_t unix_seconds);

// A random item id (XEP-0060 §7.1.2: the service generates one when the
// publisher gives none): 32 hex digits.
std::string new_item_id();

}  // namespace hearth::modules::pep
