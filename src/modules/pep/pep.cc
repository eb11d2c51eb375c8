// Personal Eventing Protocol (XEP-0163) on a subset of XEP-0060: every
// account is a pubsub service at its bare JID. The owner publishes,
// retracts, purges, deletes and configures nodes (auto-created on first
// publish, XEP-0060 §7.1.5 publish-options with preconditions); contacts
// read them as the access model allows (presence, open, whitelist).
//
// Notifications go to the owner's available resources and to the available
// resources of contacts the access model allows, but only to a resource
// whose entity capabilities (XEP-0115) list "NODE+notify" (XEP-0163 §4).
// The caps come from each session's own presence; unknown 'ver's are asked
// of the client (disco#info) and cached when the hash verifies. There are
// no stored subscriptions: interest is what the caps say, per session.
//
// Storage: see node.h.
#include <algorithm>
#include <charconv>
#include <ctime>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "modules/disco/caps.h"
#include "modules/module.h"
#include "modules/pep/node.h"
#include "modules/roster/roster.h"
#include "storage/codec.h"
#include "xml/fragment.h"
#include "xmpp/router.h"

namespace hearth::modules {

namespace {

using pep::Access;
using pep::NodeConfig;
using pep::NodeRecord;

constexpr std::string_view kNsCaps = "http://jabber.org/protocol/caps";
constexpr std::string_view kNsDiscoInfo = "http://jabber.org/protocol/disco#info";
constexpr std::string_view kNsDiscoItems = "http://jabber.org/protocol/disco#items";
constexpr std::string_view kNodesTable = "pep_nodes";
constexpr std::string_view kItemsTable = "pep_items";
constexpr std::string_view kIdsTable = "pep_item_ids";
// Verified caps kept in memory (a few dozen client versions in practice).
constexpr size_t kMaxCachedCaps = 1000;
constexpr uint32_t kCapsQueryTimeoutMs = 30000;

// XEP-0060 features we implement (disco#info of the account, XEP-0163 §6).
constexpr std::string_view kFeatures[] = {
    "access-open",      "access-presence", "access-whitelist",
    "auto-create",      "config-node",     "create-nodes",
    "delete-items",     "delete-nodes",    "filtered-notifications",
    "item-ids",         "last-published",  "multi-items",
    "persistent-items", "publish",         "publish-options",
    "purge-nodes",      "retract-items",   "retrieve-default",
    "retrieve-items",
};

using NodeList = std::shared_ptr<const std::vector<std::string>>;

// What one session told us about itself (XEP-0115).
struct SessionCaps {
  uint64_t token = 0;  // tells a reply for this session from one for a reused address
  std::string hash, ver;
  NodeList notify;  // the +notify nodes; null until known
};

// An error answer in the making: stanza error plus pubsub#errors condition.
struct Refusal {
  std::string_view type, condition, app;
  std::string text;
};

class PepModule final : public Module {
 public:
  explicit PepModule(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(pep::kNsPubsub, "get,set", kIqSelf | kIqAccount,
              [this](IqEvent& ev) { on_pubsub(ev); });
    ctx.on_iq(pep::kNsOwner, "get,set", kIqSelf, [this](IqEvent& ev) { on_owner(ev); });
    ctx.add_disco_identity(DiscoTarget::kAccount, {"pubsub", "pep", ""});
    for (std::string_view f : kFeatures) {
      std::string var(pep::kNsPubsub);
      var.push_back('#');
      var.append(f);
      ctx.add_disco_feature(DiscoTarget::kAccount, std::move(var));
    }
    ctx.add_disco_items(
        DiscoTarget::kAccount,
        [this](const xmpp::Jid& requester, const xmpp::Jid& target, std::string_view node,
               xml::Element& query) { return disco_items(requester, target, node, query); });
    ctx.add_disco_node_info(
        DiscoTarget::kAccount,
        [this](const xmpp::Jid& requester, const xmpp::Jid& target, std::string_view node,
               xml::Element& query) { return disco_node_info(requester, target, node, query); });
    // Before the presence module takes (and rewrites) the stanza.
    ctx.on_stanza(Kind::kPresence, Phase::kOutbound, kPriorityDefault + 10,
                  [this](StanzaEvent& ev) { return on_own_presence(ev); });
    ctx.on_session(SessionEvent::kClosed, kPriorityDefault,
                   [this](xmpp::Session& s) { sessions_.erase(&s); });
  }

 private:
  // ---- helpers ----

  uint32_t cap() const { return std::max<uint32_t>(ctx_.config().pep.max_items, 1); }
  std::string bare_of(std::string_view user) const {
    std::string b(user);
    b.push_back('@');
    b.append(ctx_.domain());
    return b;
  }
  storage::Dbi nodes_db() const { return ctx_.table(kNodesTable); }
  storage::Dbi items_db() const { return ctx_.table(kItemsTable); }
  storage::Dbi ids_db() const { return ctx_.table(kIdsTable); }

  Subscription owner_sub(std::string_view owner, std::string_view requester_bare) const {
    const RosterService* roster = ctx_.find<RosterService>();
    return roster == nullptr ? Subscription::kNone : roster->subscription(owner, requester_bare);
  }
  Access access_of(const NodeConfig& c, std::string_view owner, const xmpp::Jid& requester) const {
    bool is_owner = requester.local() == owner && requester.domain() == ctx_.domain();
    return pep::check_access(c.access, is_owner, owner_sub(owner, requester.bare()));
  }

  void fail(IqEvent& ev, const Refusal& r) {
    xml::Element* app = nullptr;
    if (!r.app.empty()) {
      std::string_view name = r.app;
      std::string_view feature;
      if (size_t sp = name.find(' '); sp != std::string_view::npos) {
        feature = name.substr(sp + 1);
        name = name.substr(0, sp);
      }
      app = ev.arena.make_element(name, pep::kNsErrors);
      if (!feature.empty()) app->set_attr("feature", feature);
    }
    ctx_.error(ev, r.type, r.condition, r.text, app);
  }
  void internal(IqEvent& ev, const std::string& why) {
    HEARTH_ERROR("pep", "%s", why.c_str());
    ctx_.error(ev, "wait", "internal-server-error");
  }
  static Refusal unsupported(std::string_view feature_app) {
    return {"cancel", "feature-not-implemented", feature_app, {}};
  }

  // The one element child of `parent` (nullptr if none or several).
  static const xml::Element* only_child(const xml::Element& parent, int* count) {
    const xml::Element* found = nullptr;
    *count = 0;
    for (const xml::Node& n : parent.children) {
      if (n.element == nullptr) continue;
      if (++*count == 1) found = n.element;
    }
    return *count == 1 ? found : nullptr;
  }

  // Checks a node name given in a request; empty refusal type = fine. The
  // longest key (owner, node, item id) must fit LMDB's key size.
  Refusal check_node_name(std::string_view owner, std::string_view node, bool given) const {
    if (!given || node.empty()) return {"modify", "bad-request", "nodeid-required", {}};
    const size_t fixed = owner.size() + 2 + pep::kMaxItemId;
    const size_t max_key = ctx_.db().max_key_size();
    const size_t limit = fixed >= max_key ? 0 : std::min(pep::kMaxNodeName, max_key - fixed);
    if (node.size() > limit) {
      return {"modify",
              "not-acceptable",
              {},
              "node names are at most " + std::to_string(limit) + " bytes here"};
    }
    return {};
  }

  template <class T>
  Result<std::optional<NodeRecord>> load_node(T& txn, std::string_view user,
                                              std::string_view node) {
    auto v = txn.get(nodes_db(), pep::node_key(user, node));
    if (!v) return v.error();
    if (!v->has_value()) return std::optional<NodeRecord>();
    auto rec = pep::decode_node(**v);
    if (!rec) return rec.error();
    return std::optional<NodeRecord>(std::move(rec.value()));
  }

  struct StoredItem {
    uint64_t seq;
    std::string id, payload;
    uint64_t published;
  };
  // Items of a node in publish order: all, or only the `newest` n (one
  // reverse cursor walk from the node's end).
  template <class T>
  Result<std::vector<StoredItem>> load_items(T& txn, std::string_view user, std::string_view node,
                                             size_t newest = 0) {
    std::vector<StoredItem> out;
    const std::string prefix = pep::items_prefix(user, node);
    bool bad = false;
    auto take = [&](std::string_view k, std::string_view v) {
      auto seq = pep::item_seq(k, prefix.size());
      auto item = pep::decode_item(v);
      if (!seq || !item) {
        bad = true;
        return false;
      }
      out.push_back({*seq, std::move(item->id), std::move(item->payload), item->published});
      return newest == 0 || out.size() < newest;
    };
    Status s = newest == 0 ? txn.for_each(items_db(), prefix, take)
                           : txn.range(items_db(), prefix, storage::prefix_end(prefix), true, take);
    if (!s) return s.error();
    if (bad) return make_error("undecodable PEP item of " + std::string(user));
    if (newest != 0) std::reverse(out.begin(), out.end());
    return out;
  }

  // The items with these ids, in the order asked (unknown ids are skipped).
  template <class T>
  Result<std::vector<StoredItem>> load_by_id(T& txn, std::string_view user, std::string_view node,
                                             const std::vector<std::string>& ids) {
    std::vector<StoredItem> out;
    for (const std::string& id : ids) {
      auto seq_bytes = txn.get(ids_db(), pep::id_key(user, node, id));
      if (!seq_bytes) return seq_bytes.error();
      if (!seq_bytes->has_value()) continue;
      auto seq = storage::decode_u64(**seq_bytes);
      if (!seq) return make_error("bad PEP item id record");
      auto v = txn.get(items_db(), pep::item_key(user, node, *seq));
      if (!v) return v.error();
      if (!v->has_value()) continue;
      auto item = pep::decode_item(**v);
      if (!item) return item.error();
      out.push_back({*seq, std::move(item->id), std::move(item->payload), item->published});
    }
    return out;
  }

  // The last item (nullopt if the node has none).
  template <class T>
  Result<std::optional<StoredItem>> last_item(T& txn, std::string_view user,
                                              std::string_view node) {
    auto items = load_items(txn, user, node, 1);
    if (!items) return items.error();
    if (items->empty()) return std::optional<StoredItem>();
    return std::optional<StoredItem>(std::move(items->back()));
  }

  void delete_item(storage::WriteTxn& t, std::string_view user, std::string_view node,
                   const StoredItem& item) {
    t.del(items_db(), pep::item_key(user, node, item.seq));
    t.del(ids_db(), pep::id_key(user, node, item.id));
  }

  // Drops the oldest items beyond what the node keeps.
  Status trim(storage::WriteTxn& t, std::string_view user, std::string_view node, NodeRecord* rec) {
    uint32_t keep = rec->config.effective_max(cap());
    if (rec->item_count <= keep) return t.status();
    auto items = load_items(t, user, node);
    if (!items) return items.error();
    size_t drop = items->size() > keep ? items->size() - keep : 0;
    for (size_t i = 0; i < drop; ++i)
      delete_item(t, user, node, (*items)[i]);
    rec->item_count = static_cast<uint32_t>(items->size() - drop);
    return t.status();
  }

  Result<size_t> count_nodes(storage::WriteTxn& t, std::string_view user) {
    size_t n = 0;
    Status s = t.for_each(nodes_db(), user_key(user), [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    if (!s) return s.error();
    return n;
  }

  // ---- notifications ----

  // Sessions to notify about `node` of `owner`: the owner's own, then the
  // contacts' that the access model lets in, each only if available and
  // +notify for the node.
  std::vector<xmpp::Session*> recipients(std::string_view owner, std::string_view node,
                                         const NodeConfig& config) {
    std::vector<xmpp::Session*> out;
    auto add_sessions = [&](std::string_view bare) {
      for (xmpp::Session* s : ctx_.router().resources(bare)) {
        if (s->available() && wants(*s, node)) out.push_back(s);
      }
    };
    add_sessions(bare_of(owner));
    if (config.access == pep::AccessModel::kWhitelist) return out;
    const RosterStore* store = ctx_.find<RosterStore>();
    if (store == nullptr) return out;
    for (const RosterItem& it : store->items(owner)) {
      // Contacts that receive the owner's presence (open nodes too: PEP
      // notifies only the owner's contacts, XEP-0163 §4.3).
      if (!has_from(it.subscription)) continue;
      Result<xmpp::Jid> j = xmpp::Jid::parse(it.jid);
      if (!j || j->domain() != ctx_.domain() || !j->has_local()) continue;
      add_sessions(it.jid);
    }
    return out;
  }

  bool wants(const xmpp::Session& s, std::string_view node) const {
    auto it = sessions_.find(&s);
    return it != sessions_.end() && it->second.notify && pep::wants(*it->second.notify, node);
  }

  // <message type='headline'><event xmlns='pubsub#event'>…</event></message>
  // from the owner; returns the <event/> to fill.
  static xml::Element* event_message(xml::Arena& arena, std::string_view owner_bare,
                                     xml::Element** message) {
    xml::Element* m = arena.make_element("message", xml::kNsClient);
    m->set_attr("from", owner_bare);
    m->set_attr("type", "headline");
    m->set_attr("id", pep::new_item_id());
    *message = m;
    return m->add_child("event", pep::kNsEvent);
  }

  static void send_to(xml::Element& message, const std::vector<xmpp::Session*>& to) {
    for (xmpp::Session* s : to) {
      message.set_attr("to", s->jid().full());
      s->deliver(message);
    }
  }

  static void attach(xml::Element& parent, xml::Element* child) {
    parent.children.push_back(xml::Node{child, std::pmr::string(parent.resource())});
  }

  // An <item id=…>payload</item> notification for one item.
  void notify_item(xml::Arena& arena, std::string_view owner, std::string_view node,
                   std::string_view id, xml::Element* payload,
                   const std::vector<xmpp::Session*>& to, uint64_t delayed_since = 0) {
    if (to.empty()) return;
    xml::Element* message = nullptr;
    xml::Element* event = event_message(arena, bare_of(owner), &message);
    xml::Element* items = event->add_child("items", pep::kNsEvent);
    items->set_attr("node", node);
    xml::Element* item = items->add_child("item", pep::kNsEvent);
    item->set_attr("id", id);
    if (payload != nullptr) attach(*item, payload);
    if (delayed_since != 0) {
      // XEP-0060 §6.1.7: the last published item, sent later, says when.
      xml::Element* delay = message->add_child("delay", "urn:xmpp:delay");
      delay->set_attr("stamp", pep::format_stamp(delayed_since));
    }
    send_to(*message, to);
  }

  // ---- pubsub (owner and contacts) ----

  void on_pubsub(IqEvent& ev) {
    if (ev.payload.name != "pubsub") {
      return fail(ev, {"modify", "bad-request", {}, "expected <pubsub/>"});
    }
    const std::string owner = ev.to.has_local() ? ev.to.local() : ev.from.local();
    const bool is_owner = ev.target == kIqSelf;
    // <publish/> may come with <publish-options/>, <create/> with
    // <configure/>; anything else is one element.
    const xml::Element* action = nullptr;
    const xml::Element* options = nullptr;
    int actions = 0;
    for (const xml::Node& n : ev.payload.children) {
      const xml::Element* e = n.element;
      if (e == nullptr) continue;
      if (e->ns != pep::kNsPubsub) {
        return fail(ev, {"modify", "bad-request", {}, "unexpected element in <pubsub/>"});
      }
      if (e->name == "publish-options" || e->name == "configure") {
        if (options != nullptr) return fail(ev, {"modify", "bad-request", {}, "two option sets"});
        options = e;
      } else {
        action = e;
        ++actions;
      }
    }
    if (actions != 1) {
      return fail(ev, {"modify", "bad-request", {}, "<pubsub/> needs exactly one request"});
    }
    std::string_view name = action->name;
    if (ev.is_set()) {
      if (name == "publish" || name == "retract" || name == "create") {
        if (!is_owner) {
          return fail(ev, {"auth", "forbidden", {}, "only the owner publishes to a PEP node"});
        }
        if (options != nullptr && !((name == "publish" && options->name == "publish-options") ||
                                    (name == "create" && options->name == "configure"))) {
          return fail(ev, {"modify", "bad-request", {}, "options do not fit the request"});
        }
        if (name == "publish") return publish(ev, owner, *action, options);
        if (name == "retract") return retract(ev, owner, *action);
        return create(ev, owner, *action, options);
      }
      if (name == "subscribe" || name == "unsubscribe") {
        // PEP interest is the presence subscription plus +notify.
        return fail(ev, unsupported("unsupported subscribe"));
      }
      if (name == "options") return fail(ev, unsupported("unsupported subscription-options"));
      return fail(ev, {"modify", "bad-request", {}, "unknown pubsub request"});
    }
    if (options != nullptr) return fail(ev, {"modify", "bad-request", {}, "options in a get"});
    if (name == "items") return items(ev, owner, *action);
    if (name == "subscriptions") return fail(ev, unsupported("unsupported retrieve-subscriptions"));
    if (name == "affiliations") return fail(ev, unsupported("unsupported retrieve-affiliations"));
    if (name == "options") return fail(ev, unsupported("unsupported subscription-options"));
    return fail(ev, {"modify", "bad-request", {}, "unknown pubsub request"});
  }

  void publish(IqEvent& ev, const std::string& owner, const xml::Element& publish,
               const xml::Element* options) {
    std::string node(publish.attr("node"));
    if (Refusal r = check_node_name(owner, node, publish.has_attr("node")); !r.type.empty()) {
      return fail(ev, r);
    }
    int count = 0;
    const xml::Element* item = only_child(publish, &count);
    if (count == 0) return fail(ev, {"modify", "bad-request", "item-required", {}});
    if (item == nullptr || item->name != "item" || item->ns != pep::kNsPubsub) {
      return fail(ev, {"modify", "bad-request", "invalid-payload", "exactly one <item/>"});
    }
    const xml::Element* payload = only_child(*item, &count);
    if (count == 0) return fail(ev, {"modify", "bad-request", "payload-required", {}});
    if (payload == nullptr) {
      return fail(ev, {"modify", "bad-request", "invalid-payload", "one payload element per item"});
    }
    std::string id(item->attr("id"));
    if (id.empty()) id = pep::new_item_id();
    if (id.size() > pep::kMaxItemId) {
      return fail(ev, {"modify",
                       "not-acceptable",
                       {},
                       "item ids are at most " + std::to_string(pep::kMaxItemId) + " bytes"});
    }
    std::string xml;
    xml::serialize(*payload, &xml);
    const uint32_t max_size = ctx_.config().pep.max_item_size;
    if (xml.size() > max_size) {
      return fail(ev, {"modify", "not-acceptable", "payload-too-big",
                       "an item is at most " + std::to_string(max_size) + " bytes"});
    }
    const xml::Element* form = options != nullptr ? options->child("x", pep::kNsData) : nullptr;
    if (options != nullptr && form == nullptr && options->first_child() != nullptr) {
      return fail(ev, {"modify", "bad-request", {}, "publish-options need a data form"});
    }

    Refusal refused;
    NodeConfig config;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      refused = {};
      auto existing = load_node(t, owner, node);
      if (!existing) return existing.error();
      NodeRecord rec;
      if (existing->has_value()) {
        rec = std::move(**existing);
        if (form != nullptr && !pep::preconditions_met(*form, cap(), rec.config)) {
          refused = {"cancel", "conflict", "precondition-not-met",
                     "the node's configuration differs from the publish-options"};
          return {};
        }
      } else {
        auto n = count_nodes(t, owner);
        if (!n) return n.error();
        if (*n >= ctx_.config().pep.max_nodes) {
          refused = {
              "wait",
              "resource-constraint",
              {},
              "at most " + std::to_string(ctx_.config().pep.max_nodes) + " PEP nodes per account"};
          return {};
        }
        if (form != nullptr) {
          if (Status f = pep::apply_form(*form, cap(), &rec.config); !f) {
            refused = {"cancel", "conflict", "precondition-not-met", f.error().message};
            return {};
          }
        }
      }
      // The same id replaces the old item, which moves to the end.
      auto old = t.get(ids_db(), pep::id_key(owner, node, id));
      if (!old) return old.error();
      if (old->has_value()) {
        auto seq = storage::decode_u64(**old);
        if (!seq) return make_error("bad PEP item id record");
        t.del(items_db(), pep::item_key(owner, node, *seq));
        if (rec.item_count > 0) --rec.item_count;
      }
      uint64_t seq = rec.next_seq++;
      t.put(items_db(), pep::item_key(owner, node, seq),
            pep::encode_item(id, xml, static_cast<uint64_t>(std::time(nullptr))));
      std::string seq_bytes;
      storage::append_u64(seq_bytes, seq);
      t.put(ids_db(), pep::id_key(owner, node, id), seq_bytes);
      ++rec.item_count;
      if (Status tr = trim(t, owner, node, &rec); !tr) return tr;
      t.put(nodes_db(), pep::node_key(owner, node), pep::encode_node(rec));
      config = rec.config;
      return t.status();
    });
    if (!s) return internal(ev, "publish: " + s.error().message);
    if (!refused.type.empty()) return fail(ev, refused);

    xml::Element* reply = ev.arena.make_element("pubsub", pep::kNsPubsub);
    xml::Element* p = reply->add_child("publish", pep::kNsPubsub);
    p->set_attr("node", node);
    p->add_child("item", pep::kNsPubsub)->set_attr("id", id);
    ctx_.result(ev, reply);
    notify_item(ev.arena, owner, node, id, const_cast<xml::Element*>(payload),
                recipients(owner, node, config));
  }

  void create(IqEvent& ev, const std::string& owner, const xml::Element& create,
              const xml::Element* configure) {
    std::string node(create.attr("node"));
    if (!create.has_attr("node") || node.empty()) {
      // XEP-0060 §8.1.2 instant nodes make no sense for PEP.
      return fail(ev, {"modify", "not-acceptable", "nodeid-required", {}});
    }
    if (Refusal r = check_node_name(owner, node, true); !r.type.empty()) return fail(ev, r);
    NodeRecord rec;
    if (configure != nullptr) {
      if (const xml::Element* form = configure->child("x", pep::kNsData)) {
        if (Status f = pep::apply_form(*form, cap(), &rec.config); !f) {
          return fail(ev, {"modify", "not-acceptable", {}, f.error().message});
        }
      }
    }
    Refusal refused;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      refused = {};
      auto existing = load_node(t, owner, node);
      if (!existing) return existing.error();
      if (existing->has_value()) {
        refused = {"cancel", "conflict", {}, "the node exists"};
        return {};
      }
      auto n = count_nodes(t, owner);
      if (!n) return n.error();
      if (*n >= ctx_.config().pep.max_nodes) {
        refused = {
            "wait",
            "resource-constraint",
            {},
            "at most " + std::to_string(ctx_.config().pep.max_nodes) + " PEP nodes per account"};
        return {};
      }
      t.put(nodes_db(), pep::node_key(owner, node), pep::encode_node(rec));
      return t.status();
    });
    if (!s) return internal(ev, "create: " + s.error().message);
    if (!refused.type.empty()) return fail(ev, refused);
    ctx_.result(ev);
  }

  void retract(IqEvent& ev, const std::string& owner, const xml::Element& retract) {
    std::string node(retract.attr("node"));
    if (Refusal r = check_node_name(owner, node, retract.has_attr("node")); !r.type.empty()) {
      return fail(ev, r);
    }
    std::vector<std::string> ids;
    for (const xml::Node& n : retract.children) {
      if (n.element == nullptr) continue;
      if (n.element->name != "item" || n.element->ns != pep::kNsPubsub ||
          n.element->attr("id").empty()) {
        return fail(ev, {"modify", "bad-request", "item-required", "<item id='…'/> expected"});
      }
      ids.emplace_back(n.element->attr("id"));
    }
    if (ids.empty()) return fail(ev, {"modify", "bad-request", "item-required", {}});
    Refusal refused;
    NodeConfig config;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      refused = {};
      auto existing = load_node(t, owner, node);
      if (!existing) return existing.error();
      if (!existing->has_value()) {
        refused = {"cancel", "item-not-found", {}, "no such node"};
        return {};
      }
      NodeRecord rec = std::move(**existing);
      config = rec.config;
      for (const std::string& id : ids) {
        const std::string ik = pep::id_key(owner, node, id);
        auto v = t.get(ids_db(), ik);
        if (!v) return v.error();
        if (!v->has_value()) {
          refused = {"cancel", "item-not-found", {}, "no item " + id};
          return {};
        }
        auto seq = storage::decode_u64(**v);
        if (!seq) return make_error("bad PEP item id record");
        t.del(items_db(), pep::item_key(owner, node, *seq));
        t.del(ids_db(), ik);
        if (rec.item_count > 0) --rec.item_count;
      }
      t.put(nodes_db(), pep::node_key(owner, node), pep::encode_node(rec));
      return t.status();
    });
    if (!s) return internal(ev, "retract: " + s.error().message);
    if (!refused.type.empty()) return fail(ev, refused);
    ctx_.result(ev);
    std::string_view notify = retract.attr("notify");
    if (!(notify == "true" || notify == "1" || config.notify_retract)) return;
    std::vector<xmpp::Session*> to = recipients(owner, node, config);
    if (to.empty()) return;
    xml::Element* message = nullptr;
    xml::Element* event = event_message(ev.arena, bare_of(owner), &message);
    xml::Element* items = event->add_child("items", pep::kNsEvent);
    items->set_attr("node", node);
    for (const std::string& id : ids)
      items->add_child("retract", pep::kNsEvent)->set_attr("id", id);
    send_to(*message, to);
  }

  void items(IqEvent& ev, const std::string& owner, const xml::Element& request) {
    std::string node(request.attr("node"));
    if (Refusal r = check_node_name(owner, node, request.has_attr("node")); !r.type.empty()) {
      return fail(ev, r);
    }
    uint32_t max = 0;
    if (request.has_attr("max_items")) {
      std::string_view v = request.attr("max_items");
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), max);
      if (ec != std::errc() || end != v.data() + v.size() || max == 0) {
        return fail(ev, {"modify", "bad-request", {}, "max_items must be a positive integer"});
      }
    }
    std::vector<std::string> wanted;
    for (const xml::Node& n : request.children) {
      if (n.element == nullptr) continue;
      if (n.element->name != "item" || n.element->ns != pep::kNsPubsub ||
          n.element->attr("id").empty()) {
        return fail(ev, {"modify", "bad-request", {}, "<item id='…'/> expected"});
      }
      wanted.emplace_back(n.element->attr("id"));
    }
    auto txn = ctx_.db().read();
    if (!txn) return internal(ev, txn.error().message);
    auto rec = load_node(*txn, owner, node);
    if (!rec) return internal(ev, rec.error().message);
    if (!rec->has_value()) return fail(ev, {"cancel", "item-not-found", {}, {}});
    switch (access_of((*rec)->config, owner, ev.from)) {
      case Access::kAllowed:
        break;
      case Access::kPresenceRequired:
        return fail(ev, {"auth", "not-authorized", "presence-subscription-required", {}});
      case Access::kClosed:
        return fail(ev, {"cancel", "not-allowed", "closed-node", {}});
    }
    auto chosen =
        wanted.empty() ? load_items(*txn, owner, node, max) : load_by_id(*txn, owner, node, wanted);
    if (!chosen) return internal(ev, chosen.error().message);
    xml::Element* reply = ev.arena.make_element("pubsub", pep::kNsPubsub);
    xml::Element* list = reply->add_child("items", pep::kNsPubsub);
    list->set_attr("node", node);
    for (const StoredItem& it : *chosen) {
      auto payload = xml::parse_fragment(it.payload, ev.arena);
      if (!payload) return internal(ev, "stored PEP item: " + payload.error().message);
      xml::Element* item = list->add_child("item", pep::kNsPubsub);
      item->set_attr("id", it.id);
      attach(*item, *payload);
    }
    ctx_.result(ev, reply);
  }

  // ---- pubsub#owner (the owner only) ----

  void on_owner(IqEvent& ev) {
    if (ev.payload.name != "pubsub") {
      return fail(ev, {"modify", "bad-request", {}, "expected <pubsub/>"});
    }
    int count = 0;
    const xml::Element* action = only_child(ev.payload, &count);
    if (action == nullptr || action->ns != pep::kNsOwner) {
      return fail(ev, {"modify", "bad-request", {}, "<pubsub/> needs exactly one request"});
    }
    const std::string owner = ev.from.local();
    std::string_view name = action->name;
    if (name == "default") {
      if (ev.is_set()) return fail(ev, {"modify", "bad-request", {}, "default is a get"});
      xml::Element* reply = ev.arena.make_element("pubsub", pep::kNsOwner);
      xml::Element* d = reply->add_child("default", pep::kNsOwner);
      attach(*d, pep::config_form(NodeConfig{}, ev.arena));
      return ctx_.result(ev, reply);
    }
    if (name != "configure" && name != "purge" && name != "delete") {
      if (name == "affiliations") return fail(ev, unsupported("unsupported modify-affiliations"));
      if (name == "subscriptions") return fail(ev, unsupported("unsupported manage-subscriptions"));
      return fail(ev, {"modify", "bad-request", {}, "unknown pubsub#owner request"});
    }
    std::string node(action->attr("node"));
    if (Refusal r = check_node_name(owner, node, action->has_attr("node")); !r.type.empty()) {
      return fail(ev, r);
    }
    if (name == "configure") {
      if (ev.is_set()) return configure(ev, owner, node, *action);
      auto txn = ctx_.db().read();
      if (!txn) return internal(ev, txn.error().message);
      auto rec = load_node(*txn, owner, node);
      if (!rec) return internal(ev, rec.error().message);
      if (!rec->has_value()) return fail(ev, {"cancel", "item-not-found", {}, {}});
      xml::Element* reply = ev.arena.make_element("pubsub", pep::kNsOwner);
      xml::Element* c = reply->add_child("configure", pep::kNsOwner);
      c->set_attr("node", node);
      attach(*c, pep::config_form((*rec)->config, ev.arena));
      return ctx_.result(ev, reply);
    }
    if (!ev.is_set()) return fail(ev, {"modify", "bad-request", {}, "purge and delete are sets"});
    purge_or_delete(ev, owner, node, name == "delete");
  }

  void configure(IqEvent& ev, const std::string& owner, const std::string& node,
                 const xml::Element& configure) {
    const xml::Element* form = configure.child("x", pep::kNsData);
    if (form == nullptr) return fail(ev, {"modify", "bad-request", {}, "a data form is needed"});
    if (form->attr("type") == "cancel") return ctx_.result(ev);
    Refusal refused;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      refused = {};
      auto existing = load_node(t, owner, node);
      if (!existing) return existing.error();
      if (!existing->has_value()) {
        refused = {"cancel", "item-not-found", {}, {}};
        return {};
      }
      NodeRecord rec = std::move(**existing);
      if (Status f = pep::apply_form(*form, cap(), &rec.config); !f) {
        refused = {"modify", "not-acceptable", {}, f.error().message};
        return {};
      }
      if (Status tr = trim(t, owner, node, &rec); !tr) return tr;
      t.put(nodes_db(), pep::node_key(owner, node), pep::encode_node(rec));
      return t.status();
    });
    if (!s) return internal(ev, "configure: " + s.error().message);
    if (!refused.type.empty()) return fail(ev, refused);
    ctx_.result(ev);
  }

  void purge_or_delete(IqEvent& ev, const std::string& owner, const std::string& node,
                       bool remove) {
    bool missing = false;
    NodeConfig config;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      missing = false;
      auto existing = load_node(t, owner, node);
      if (!existing) return existing.error();
      if (!existing->has_value()) {
        missing = true;
        return {};
      }
      NodeRecord rec = std::move(**existing);
      config = rec.config;
      auto items = load_items(t, owner, node);
      if (!items) return items.error();
      for (const StoredItem& it : *items)
        delete_item(t, owner, node, it);
      if (remove) {
        t.del(nodes_db(), pep::node_key(owner, node));
      } else {
        rec.item_count = 0;
        t.put(nodes_db(), pep::node_key(owner, node), pep::encode_node(rec));
      }
      return t.status();
    });
    if (!s) return internal(ev, (remove ? "delete: " : "purge: ") + s.error().message);
    if (missing) return fail(ev, {"cancel", "item-not-found", {}, {}});
    ctx_.result(ev);
    // XEP-0060 §8.4.3 / §8.5.3: subscribers (here: +notify resources) learn it.
    std::vector<xmpp::Session*> to = recipients(owner, node, config);
    if (to.empty()) return;
    xml::Element* message = nullptr;
    xml::Element* event = event_message(ev.arena, bare_of(owner), &message);
    event->add_child(remove ? "delete" : "purge", pep::kNsEvent)->set_attr("node", node);
    send_to(*message, to);
  }

  // ---- disco (XEP-0163 §7.1, XEP-0030) ----

  bool disco_items(const xmpp::Jid& requester, const xmpp::Jid& target, std::string_view node,
                   xml::Element& query) {
    if (!target.has_local()) return false;
    const std::string& owner = target.local();
    const std::string owner_bare = target.bare();
    auto txn = ctx_.db().read();
    if (!txn) return false;
    if (node.empty()) {
      const std::string prefix = user_key(owner);
      Status s = txn->for_each(nodes_db(), prefix, [&](std::string_view k, std::string_view v) {
        auto rec = pep::decode_node(v);
        if (!rec || access_of(rec->config, owner, requester) != Access::kAllowed) return true;
        xml::Element* item = query.add_child("item", kNsDiscoItems);
        item->set_attr("jid", owner_bare);
        item->set_attr("node", k.substr(prefix.size()));
        if (!rec->config.title.empty()) item->set_attr("name", rec->config.title);
        return true;
      });
      (void)s;
      return true;
    }
    auto rec = load_node(*txn, owner, node);
    if (!rec || !rec->has_value()) return false;
    if (access_of((*rec)->config, owner, requester) != Access::kAllowed) return false;
    auto all = load_items(*txn, owner, node);
    if (!all) return false;
    for (const StoredItem& it : *all) {
      xml::Element* item = query.add_child("item", kNsDiscoItems);
      item->set_attr("jid", owner_bare);
      item->set_attr("name", it.id);
    }
    return true;
  }

  bool disco_node_info(const xmpp::Jid& requester, const xmpp::Jid& target, std::string_view node,
                       xml::Element& query) {
    if (!target.has_local() || node.empty()) return false;
    auto txn = ctx_.db().read();
    if (!txn) return false;
    auto rec = load_node(*txn, target.local(), node);
    if (!rec || !rec->has_value()) return false;
    const NodeConfig& c = (*rec)->config;
    if (access_of(c, target.local(), requester) != Access::kAllowed) return false;
    xml::Element* id = query.add_child("identity", kNsDiscoInfo);
    id->set_attr("category", "pubsub");
    id->set_attr("type", "leaf");
    query.add_child("feature", kNsDiscoInfo)->set_attr("var", pep::kNsPubsub);
    // XEP-0060 §5.4 node meta-data.
    xml::Element* x = query.add_child("x", pep::kNsData);
    x->set_attr("type", "result");
    auto field = [&](std::string_view var, std::string_view value, std::string_view type = {}) {
      xml::Element* f = x->add_child("field", pep::kNsData);
      f->set_attr("var", var);
      if (!type.empty()) f->set_attr("type", type);
      f->add_child("value", pep::kNsData)->add_text(value);
    };
    field("FORM_TYPE", "http://jabber.org/protocol/pubsub#meta-data", "hidden");
    field("pubsub#access_model", pep::access_name(c.access));
    field("pubsub#owner", target.bare());
    field("pubsub#title", c.title);
    field("pubsub#type", "leaf");
    return true;
  }

  // ---- entity caps and last-item delivery ----

  HookResult on_own_presence(StanzaEvent& ev) {
    if (ev.origin == nullptr || !ev.stanza.attr("to").empty() || !ev.stanza.attr("type").empty()) {
      return HookResult::kPass;
    }
    xmpp::Session& s = *ev.origin;
    auto [it, fresh] = sessions_.try_emplace(&s);
    SessionCaps& state = it->second;
    if (fresh) state.token = ++next_token_;
    const xml::Element* c = ev.stanza.child("c", kNsCaps);
    if (c == nullptr) {
      // No caps: no +notify (a later presence with caps fixes that).
      if (!fresh && state.ver.empty() && state.notify) return HookResult::kPass;
      state.hash.clear();
      state.ver.clear();
      set_notify(s, std::make_shared<const std::vector<std::string>>());
      return HookResult::kPass;
    }
    std::string hash(c->attr("hash"));
    std::string ver(c->attr("ver"));
    if (!fresh && state.ver == ver && state.hash == hash && state.notify) return HookResult::kPass;
    state.hash = hash;
    state.ver = ver;
    if (ver.empty()) {
      set_notify(s, std::make_shared<const std::vector<std::string>>());
      return HookResult::kPass;
    }
    if (hash == "sha-1") {
      if (auto cached = cache_.find(ver); cached != cache_.end()) {
        set_notify(s, cached->second);
        return HookResult::kPass;
      }
    }
    query_caps(s, state.token, std::string(c->attr("node")), hash, ver);
    return HookResult::kPass;
  }

  // XEP-0115 §6.3: ask the client for the disco#info behind node#ver.
  void query_caps(xmpp::Session& s, uint64_t token, const std::string& node,
                  const std::string& hash, const std::string& ver) {
    xml::Arena& arena = ctx_.scratch();
    xml::Element* iq = arena.make_element("iq", xml::kNsClient);
    iq->set_attr("type", "get");
    iq->set_attr("to", s.jid().full());
    iq->set_attr("from", s.jid().bare());
    xml::Element* q = iq->add_child("query", kNsDiscoInfo);
    q->set_attr("node", node + "#" + ver);
    xmpp::Session* sp = &s;
    ctx_.send_iq(
        *iq,
        [this, sp, token, hash, ver](const xml::Element* reply) {
          auto it = sessions_.find(sp);
          if (it == sessions_.end() || it->second.token != token || it->second.ver != ver ||
              it->second.hash != hash) {
            return;  // gone, or its caps changed meanwhile
          }
          std::vector<std::string> features;
          const xml::Element* query = reply != nullptr && reply->attr("type") == "result"
                                          ? reply->child("query", kNsDiscoInfo)
                                          : nullptr;
          if (query != nullptr) {
            for (const xml::Node& n : query->children) {
              if (n.element != nullptr && n.element->name == "feature" &&
                  n.element->ns == kNsDiscoInfo) {
                features.emplace_back(n.element->attr("var"));
              }
            }
          }
          auto nodes =
              std::make_shared<const std::vector<std::string>>(pep::notify_nodes(features));
          // Only a verified answer may serve other sessions (§5.4, §8.4).
          if (query != nullptr && hash == "sha-1" &&
              disco::caps_hash(disco::caps_string(*query)) == ver) {
            remember(ver, nodes);
          }
          set_notify(*sp, nodes);
        },
        kCapsQueryTimeoutMs);
  }

  void remember(const std::string& ver, NodeList nodes) {
    if (cache_.count(ver) != 0) return;
    if (cache_.size() >= kMaxCachedCaps) {
      cache_.erase(cache_order_.front());
      cache_order_.pop_front();
    }
    cache_.emplace(ver, std::move(nodes));
    cache_order_.push_back(ver);
  }

  // The session's +notify set is now `nodes`: it gets the last item of each
  // node that it did not want before (all of them the first time).
  void set_notify(xmpp::Session& s, NodeList nodes) {
    SessionCaps& state = sessions_[&s];
    NodeList old = std::move(state.notify);
    state.notify = nodes;
    std::vector<std::string> fresh;
    for (const std::string& n : *nodes) {
      if (!old || !pep::wants(*old, n)) fresh.push_back(n);
    }
    if (!fresh.empty()) send_last_items(s, fresh);
  }

  // XEP-0163 §4.3.? last published item of each wanted node: the account's
  // own and those of the contacts it is subscribed to, as their access
  // models allow.
  void send_last_items(xmpp::Session& s, const std::vector<std::string>& nodes) {
    auto txn = ctx_.db().read();
    if (!txn) return;
    xml::Arena& arena = ctx_.scratch();
    const std::string user = s.jid().local();
    std::vector<xmpp::Session*> to = {&s};
    auto send_from = [&](const std::string& owner) {
      for (const std::string& node : nodes) {
        auto rec = load_node(*txn, owner, node);
        if (!rec || !rec->has_value()) continue;
        const NodeConfig& c = (*rec)->config;
        if (c.send_last == pep::SendLast::kNever) continue;
        if (access_of(c, owner, s.jid()) != Access::kAllowed) continue;
        auto last = last_item(*txn, owner, node);
        if (!last || !last->has_value()) continue;
        auto payload = xml::parse_fragment((*last)->payload, arena);
        if (!payload) continue;
        notify_item(arena, owner, node, (*last)->id, *payload, to, (*last)->published);
      }
    };
    send_from(user);
    const RosterStore* store = ctx_.find<RosterStore>();
    if (store == nullptr) return;
    for (const RosterItem& it : store->items(user)) {
      if (!has_to(it.subscription)) continue;
      Result<xmpp::Jid> j = xmpp::Jid::parse(it.jid);
      if (!j || j->domain() != ctx_.domain() || !j->has_local()) continue;
      if (!ctx_.user_exists(j->local()) || j->local() == user) continue;
      send_from(j->local());
    }
  }

  Context& ctx_;
  std::unordered_map<const xmpp::Session*, SessionCaps> sessions_;
  uint64_t next_token_ = 0;
  std::unordered_map<std::string, NodeList> cache_;  // verified sha-1 ver → +notify nodes
  std::deque<std::string> cache_order_;              // oldest first
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<PepModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_pep;
const ModuleDef kModule_pep = {"pep",
                               "XEP-0163 personal eventing (XEP-0060 subset)",
                               {{"pep_nodes"}, {"pep_items"}, {"pep_item_ids"}},
                               {"roster", "presence", "disco"},
                               &create};

}  // namespace hearth::modules
