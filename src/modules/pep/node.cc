#include "modules/pep/node.h"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "modules/module.h"
#include "storage/codec.h"

namespace hearth::modules::pep {

namespace {

constexpr uint8_t kNodeVersion = 1;
constexpr uint8_t kItemVersion = 1;
constexpr std::string_view kNotifySuffix = "+notify";

// XEP-0004 §3.3 boolean: "0"/"false" or "1"/"true".
bool parse_bool(std::string_view v, bool* out) {
  if (v == "1" || v == "true") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "false") {
    *out = false;
    return true;
  }
  return false;
}

std::string field_value(const xml::Element& field) {
  const xml::Element* v = field.child("value", kNsData);
  if (v == nullptr) return {};
  std::string text = v->text();
  size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = text.find_last_not_of(" \t\r\n");
  return text.substr(b, e - b + 1);
}

Status bad_field(std::string_view var, std::string_view why) {
  std::string m(var);
  m.append(": ");
  m.append(why);
  return make_error(std::move(m));
}

void add_field(xml::Element* form, std::string_view var, std::string_view type,
               std::string_view label, std::string_view value) {
  xml::Element* f = form->add_child("field", kNsData);
  f->set_attr("var", var);
  if (!type.empty()) f->set_attr("type", type);
  if (!label.empty()) f->set_attr("label", label);
  f->add_child("value", kNsData)->add_text(value);
}

void add_options(xml::Element* field, std::initializer_list<std::string_view> options) {
  for (std::string_view o : options)
    field->add_child("option", kNsData)->add_child("value", kNsData)->add_text(o);
}

}  // namespace

uint32_t NodeConfig::effective_max(uint32_t cap) const {
  if (!persist_items) return 1;
  uint32_t n = max_items == kMaxItemsMax ? cap : std::min(max_items, cap);
  return std::max<uint32_t>(n, 1);
}

std::string_view access_name(AccessModel m) {
  switch (m) {
    case AccessModel::kOpen:
      return "open";
    case AccessModel::kWhitelist:
      return "whitelist";
    case AccessModel::kPresence:
      break;
  }
  return "presence";
}

std::string_view send_last_name(SendLast s) {
  switch (s) {
    case SendLast::kNever:
      return "never";
    case SendLast::kOnSub:
      return "on_sub";
    case SendLast::kOnSubAndPresence:
      break;
  }
  return "on_sub_and_presence";
}

Status apply_form(const xml::Element& x, uint32_t cap, NodeConfig* config) {
  if (x.name != "x" || x.ns != kNsData) return make_error("expected a jabber:x:data form");
  std::string_view type = x.attr("type");
  if (!type.empty() && type != "submit") return make_error("the form must be of type 'submit'");
  NodeConfig c = *config;
  for (const xml::Node& n : x.children) {
    const xml::Element* f = n.element;
    if (f == nullptr || f->name != "field" || f->ns != kNsData) continue;
    std::string_view var = f->attr("var");
    std::string v = field_value(*f);
    if (var == "FORM_TYPE") {
      if (!v.empty() && v != kFormNodeConfig && v != kFormPublishOptions) {
        return bad_field(var, "unknown form type");
      }
    } else if (var == "pubsub#access_model") {
      if (v == "presence") {
        c.access = AccessModel::kPresence;
      } else if (v == "open") {
        c.access = AccessModel::kOpen;
      } else if (v == "whitelist") {
        c.access = AccessModel::kWhitelist;
      } else {
        return bad_field(var, "supported: presence, open, whitelist");
      }
    } else if (var == "pubsub#max_items") {
      if (v == "max") {
        c.max_items = kMaxItemsMax;
      } else {
        uint32_t m = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), m);
        if (ec != std::errc() || end != v.data() + v.size() || m == 0) {
          return bad_field(var, "a positive integer or 'max'");
        }
        if (m > cap) return bad_field(var, "at most " + std::to_string(cap) + " (or 'max')");
        c.max_items = m;
      }
    } else if (var == "pubsub#persist_items") {
      if (!parse_bool(v, &c.persist_items)) return bad_field(var, "a boolean");
    } else if (var == "pubsub#notify_retract") {
      if (!parse_bool(v, &c.notify_retract)) return bad_field(var, "a boolean");
    } else if (var == "pubsub#send_last_published_item") {
      if (v == "never") {
        c.send_last = SendLast::kNever;
      } else if (v == "on_sub") {
        c.send_last = SendLast::kOnSub;
      } else if (v == "on_sub_and_presence") {
        c.send_last = SendLast::kOnSubAndPresence;
      } else {
        return bad_field(var, "never, on_sub or on_sub_and_presence");
      }
    } else if (var == "pubsub#publish_model") {
      // Only the owner publishes to a PEP node.
      if (v != "publishers") return bad_field(var, "only 'publishers' (the owner)");
    } else if (var == "pubsub#title") {
      if (v.size() > 1024) return bad_field(var, "at most 1024 bytes");
      c.title = v;
    } else if (var == "pubsub#deliver_payloads" || var == "pubsub#deliver_notifications" ||
               var == "pubsub#notify_delete" || var == "pubsub#presence_based_delivery") {
      // Fixed behaviour: always on.
      bool b = false;
      if (!parse_bool(v, &b)) return bad_field(var, "a boolean");
      if (!b) return bad_field(var, "cannot be switched off");
    }
    // Anything else is not modelled and ignored.
  }
  *config = std::move(c);
  return {};
}

bool preconditions_met(const xml::Element& x, uint32_t cap, const NodeConfig& existing) {
  NodeConfig c = existing;
  if (!apply_form(x, cap, &c)) return false;
  return c == existing;
}

xml::Element* config_form(const NodeConfig& config, xml::Arena& arena) {
  xml::Element* x = arena.make_element("x", kNsData);
  x->set_attr("type", "form");
  add_field(x, "FORM_TYPE", "hidden", {}, kFormNodeConfig);
  add_field(x, "pubsub#title", "text-single", "A friendly name for the node", config.title);
  add_field(x, "pubsub#access_model", "list-single", "Who may subscribe and retrieve items",
            access_name(config.access));
  add_options(x->children.back().element, {"open", "presence", "whitelist"});
  add_field(
      x, "pubsub#max_items", "text-single", "Max # of items to persist",
      config.max_items == kMaxItemsMax ? std::string("max") : std::to_string(config.max_items));
  add_field(x, "pubsub#persist_items", "boolean", "Persist items to storage",
            config.persist_items ? "1" : "0");
  add_field(x, "pubsub#send_last_published_item", "list-single",
            "When to send the last published item", send_last_name(config.send_last));
  add_options(x->children.back().element, {"never", "on_sub", "on_sub_and_presence"});
  add_field(x, "pubsub#notify_retract", "boolean", "Notify subscribers when items are removed",
            config.notify_retract ? "1" : "0");
  add_field(x, "pubsub#publish_model", "list-single", "Who may publish", "publishers");
  add_options(x->children.back().element, {"publishers"});
  add_field(x, "pubsub#deliver_payloads", "boolean", "Deliver payloads with event notifications",
            "1");
  add_field(x, "pubsub#deliver_notifications", "boolean", "Deliver event notifications", "1");
  return x;
}

Access check_access(AccessModel model, bool requester_is_owner, Subscription owner_sub) {
  if (requester_is_owner) return Access::kAllowed;
  switch (model) {
    case AccessModel::kOpen:
      return Access::kAllowed;
    case AccessModel::kPresence:
      return has_from(owner_sub) ? Access::kAllowed : Access::kPresenceRequired;
    case AccessModel::kWhitelist:
      break;
  }
  return Access::kClosed;
}

std::vector<std::string> notify_nodes(const std::vector<std::string>& features) {
  std::vector<std::string> nodes;
  for (const std::string& f : features) {
    if (f.size() <= kNotifySuffix.size()) continue;
    if (f.compare(f.size() - kNotifySuffix.size(), kNotifySuffix.size(), kNotifySuffix) != 0) {
      continue;
    }
    nodes.emplace_back(f, 0, f.size() - kNotifySuffix.size());
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

bool wants(const std::vector<std::string>& sorted_nodes, std::string_view node) {
  auto it = std::lower_bound(sorted_nodes.begin(), sorted_nodes.end(), node,
                             [](const std::string& a, std::string_view b) { return a < b; });
  return it != sorted_nodes.end() && *it == node;
}

std::string encode_node(const NodeRecord& node) {
  storage::Writer w;
  const NodeConfig& c = node.config;
  w.u8(kNodeVersion)
      .u8(static_cast<uint8_t>(c.access))
      .u32(c.max_items)
      .u8(c.persist_items ? 1 : 0)
      .u8(static_cast<uint8_t>(c.send_last))
      .u8(c.notify_retract ? 1 : 0)
      .bytes(c.title)
      .u64(node.next_seq)
      .u32(node.item_count);
  return w.take();
}

Result<NodeRecord> decode_node(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0, access = 0, persist = 0, send_last = 0, notify_retract = 0;
  NodeRecord n;
  std::string_view title;
  r.u8(&version);
  r.u8(&access);
  r.u32(&n.config.max_items);
  r.u8(&persist);
  r.u8(&send_last);
  r.u8(&notify_retract);
  r.bytes(&title);
  r.u64(&n.next_seq);
  r.u32(&n.item_count);
  if (Status s = r.finish(); !s) return s.error();
  if (version != kNodeVersion || access > 2 || persist > 1 || send_last > 2 || notify_retract > 1 ||
      n.config.max_items == 0) {
    return make_error("bad PEP node record");
  }
  n.config.access = static_cast<AccessModel>(access);
  n.config.persist_items = persist == 1;
  n.config.send_last = static_cast<SendLast>(send_last);
  n.config.notify_retract = notify_retract == 1;
  n.config.title = title;
  return n;
}

std::string encode_item(std::string_view id, std::string_view payload, uint64_t published) {
  storage::Writer w;
  w.u8(kItemVersion).bytes(id).bytes(payload).u64(published);
  return w.take();
}

Result<ItemRecord> decode_item(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0;
  std::string_view id, payload;
  uint64_t published = 0;
  r.u8(&version);
  r.bytes(&id);
  r.bytes(&payload);
  r.u64(&published);
  if (Status s = r.finish(); !s) return s.error();
  if (version != kItemVersion) return make_error("bad PEP item record");
  return ItemRecord{std::string(id), std::string(payload), published};
}

std::string node_key(std::string_view user, std::string_view node) {
  return user_key(user, node);
}

std::string items_prefix(std::string_view user, std::string_view node) {
  std::string k = user_key(user, node);
  k.push_back('\0');
  return k;
}

std::string item_key(std::string_view user, std::string_view node, uint64_t seq) {
  std::string k = items_prefix(user, node);
  storage::append_u64(k, seq);
  return k;
}

std::string id_key(std::string_view user, std::string_view node, std::string_view id) {
  std::string k = items_prefix(user, node);
  k.append(id);
  return k;
}

std::optional<uint64_t> item_seq(std::string_view key, size_t prefix_size) {
  if (key.size() != prefix_size + 8) return std::nullopt;
  return storage::decode_u64(key.substr(prefix_size));
}

std::string format_stamp(uint64_t unix_seconds) {
  // time_t may be 32 bits (older 32-bit ARM libcs): clamp rather than wrap.
  time_t t = static_cast<time_t>(unix_seconds);
  if (static_cast<uint64_t>(t) != unix_seconds) t = 0;
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string new_item_id() {
  unsigned char raw[16];
  randombytes_buf(raw, sizeof raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(32);
  for (unsigned char b : raw) {
    id.push_back(kHex[b >> 4]);
    id.push_back(kHex[b & 15]);
  }
  return id;
}

}  // namespace hearth::modules::pep
