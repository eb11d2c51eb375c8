// jabber:iq:roster (RFC 6121 §2) with XEP-0237 versioning. Each change of a
// user's roster gets the next version number; an item records the version
// of its last change and a removal leaves a tombstone with its version, so
// a client that knows version V gets exactly the changes after V as pushes.
// Tombstones are capped; the oldest version a delta can start from ("f")
// moves up when one is dropped, and an older 'ver' gets the full roster.
#include "modules/roster/roster.h"

#include <algorithm>
#include <charconv>
#include <memory>
#include <utility>

#include "core/log.h"
#include "modules/module.h"
#include "storage/codec.h"
#include "xmpp/router.h"

namespace hearth::modules {

namespace {

constexpr uint8_t kItemFormat = 1;
constexpr uint8_t kFlagAsk = 1;
constexpr uint8_t kFlagApproved = 2;
constexpr size_t kMaxTombstones = 256;

const char* kRosterTable = "roster";
const char* kMetaTable = "roster_meta";
const char* kPendingTable = "roster_pending";

std::string meta_key(std::string_view user, std::string_view what) {
  return user_key(user, what);
}
std::string tombstone_key(std::string_view user, std::string_view contact) {
  std::string rest = "t";
  rest.append(contact);
  return user_key(user, rest);
}

}  // namespace

std::string_view subscription_name(Subscription s) {
  switch (s) {
    case Subscription::kTo:
      return "to";
    case Subscription::kFrom:
      return "from";
    case Subscription::kBoth:
      return "both";
    case Subscription::kNone:
      break;
  }
  return "none";
}

std::string encode_item(const RosterItem& item) {
  storage::Writer w;
  w.u8(kItemFormat);
  w.u8(static_cast<uint8_t>(item.subscription));
  w.u8(static_cast<uint8_t>((item.ask ? kFlagAsk : 0) | (item.approved ? kFlagApproved : 0)));
  w.u64(item.version);
  w.bytes(item.name);
  w.u32(static_cast<uint32_t>(item.groups.size()));
  for (const std::string& g : item.groups)
    w.bytes(g);
  return w.take();
}

Result<RosterItem> decode_item(std::string_view contact, std::string_view value) {
  storage::Reader r(value);
  uint8_t format = 0, sub = 0, flags = 0;
  uint64_t version = 0;
  std::string_view name;
  uint32_t ngroups = 0;
  r.u8(&format);
  r.u8(&sub);
  r.u8(&flags);
  r.u64(&version);
  r.bytes(&name);
  r.u32(&ngroups);
  if (r.failed() || format != kItemFormat || sub > 3 || ngroups > r.remaining() / 4)
    return make_error("bad roster item record");
  RosterItem item;
  item.jid.assign(contact);
  item.subscription = static_cast<Subscription>(sub);
  item.ask = (flags & kFlagAsk) != 0;
  item.approved = (flags & kFlagApproved) != 0;
  item.version = version;
  item.name.assign(name);
  for (uint32_t i = 0; i < ngroups; ++i) {
    std::string_view g;
    if (!r.bytes(&g)) break;
    item.groups.emplace_back(g);
  }
  if (Status s = r.finish(); !s) return s.error();
  return item;
}

void add_item_element(xml::Element& query, const RosterItem& item, bool removed) {
  xml::Element* e = query.add_child("item", kNsRoster);
  e->set_attr("jid", item.jid);
  if (removed) {
    e->set_attr("subscription", "remove");
    return;
  }
  if (!item.name.empty()) e->set_attr("name", item.name);
  e->set_attr("subscription", subscription_name(item.subscription));
  if (item.ask) e->set_attr("ask", "subscribe");
  if (item.approved) e->set_attr("approved", "true");
  for (const std::string& g : item.groups)
    e->add_child("group", kNsRoster)->add_text(g);
}

ItemCheck check_item_fields(const xml::Element& item, std::vector<std::string>* groups) {
  if (item.attr("name").size() > kMaxNameBytes)
    return {"modify", "not-acceptable", "the name is too long"};
  groups->clear();
  for (const xml::Node& n : item.children) {
    if (n.element == nullptr) continue;
    const xml::Element& g = *n.element;
    if (g.name != "group" || g.ns != kNsRoster) continue;
    std::string text = g.text();
    if (text.empty()) return {"modify", "not-acceptable", "empty group name"};
    if (text.size() > kMaxGroupBytes) return {"modify", "not-acceptable", "group name too long"};
    if (std::find(groups->begin(), groups->end(), text) != groups->end())
      return {"modify", "bad-request", "duplicate group"};
    if (groups->size() >= kMaxGroups) return {"modify", "not-acceptable", "too many groups"};
    groups->push_back(std::move(text));
  }
  return {};
}

std::optional<uint64_t> parse_version(std::string_view ver, uint64_t current) {
  if (ver.empty() || ver.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(ver.data(), ver.data() + ver.size(), v);
  if (ec != std::errc() || end != ver.data() + ver.size() || v > current) return std::nullopt;
  return v;
}

namespace {

class RosterModule final : public Module,
                           public RosterService,
                           public RosterStore,
                           public MutualSubscriptionService {
 public:
  explicit RosterModule(Context& ctx) : ctx_(ctx) {
    roster_ = ctx.table(kRosterTable);
    meta_ = ctx.table(kMetaTable);
    pending_ = ctx.table(kPendingTable);
    ctx.on_iq(kNsRoster, "get,set", kIqSelf, [this](IqEvent& ev) { on_roster_iq(ev); });
    ctx.on_stream_features([](std::string& features) {
      features.append("<ver xmlns='");
      features.append(kNsRosterVer);
      features.append("'/>");
    });
    ctx.on_account(AccountEvent::kDeleted, kPriorityDefault,
                   [this](std::string_view user) { on_account_deleted(user); });
    ctx.provide<RosterService>(this);
    ctx.provide<RosterStore>(this);
    ctx.provide<MutualSubscriptionService>(this);
  }

  // ---- MutualSubscriptionService (XEP-0379, invites) ----
  Status subscribe_both(std::string_view a, std::string_view b) override {
    if (a == b) return make_error("an account cannot subscribe to itself");
    std::string a_bare = std::string(a) + "@" + ctx_.domain();
    std::string b_bare = std::string(b) + "@" + ctx_.domain();
    if (Status s = make_both(a, b_bare); !s) return s;
    if (Status s = make_both(b, a_bare); !s) return s;
    // RFC 6121 §3.1.6: the approved subscriber gets the contact's current
    // presence; both are subscribers here. (The presence module, created
    // after this one, is looked up now.)
    if (PresenceService* presence = ctx_.find<PresenceService>()) {
      Result<xmpp::Jid> ja = xmpp::Jid::parse(a_bare);
      Result<xmpp::Jid> jb = xmpp::Jid::parse(b_bare);
      if (ja && jb) {
        presence->send_current_presence(a, *jb);
        presence->send_current_presence(b, *ja);
      }
    }
    return {};
  }

  // ---- RosterService ----
  Subscription subscription(std::string_view user, std::string_view contact) const override {
    std::optional<RosterItem> it = item(user, contact);
    return it ? it->subscription : Subscription::kNone;
  }
  bool has_item(std::string_view user, std::string_view contact) const override {
    // Asked for every message (spam's stranger check): the key is enough.
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return false;
    auto got = txn->get(roster_, user_key(user, contact));
    return got && got.value();
  }

  // ---- RosterStore ----
  std::optional<RosterItem> item(std::string_view user, std::string_view contact) const override {
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return std::nullopt;
    auto got = txn->get(roster_, user_key(user, contact));
    if (!got || !got.value()) return std::nullopt;
    Result<RosterItem> it = decode_item(contact, **got);
    if (!it) {
      HEARTH_WARN("roster", "unreadable roster item of %.*s: %s", static_cast<int>(user.size()),
                  user.data(), it.error().message.c_str());
      return std::nullopt;
    }
    return std::move(it.value());
  }

  std::vector<RosterItem> items(std::string_view user) const override {
    std::vector<RosterItem> out;
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return out;
    std::string prefix = user_key(user);
    Status s = txn->for_each(roster_, prefix, [&](std::string_view key, std::string_view value) {
      std::string_view contact = key.substr(prefix.size());
      Result<RosterItem> it = decode_item(contact, value);
      if (it) out.push_back(std::move(it.value()));
      return true;
    });
    (void)s;
    return out;
  }

  Status update(std::string_view user, const RosterItem& in) override {
    RosterItem item = in;
    bool exists = has_item(user, item.jid);
    if (!exists && count_items(user) >= ctx_.config().roster.max_items)
      return make_error("roster full");
    uint64_t version = 0;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      Result<uint64_t> v = bump_version(t, user);
      if (!v) return v.error();
      version = *v;
      item.version = version;
      t.put(roster_, user_key(user, item.jid), encode_item(item));
      t.del(meta_, tombstone_key(user, item.jid));
      return t.status();
    });
    if (!s) return s;
    push(user, item, false);
    return {};
  }

  Status remove(std::string_view user, std::string_view contact) override {
    return remove_item(user, contact, true);
  }

  // `user`'s item for `contact` with subscription 'both' (name and groups
  // kept if it exists), no pending request either way; pushed.
  Status make_both(std::string_view user, std::string_view contact) {
    RosterItem it;
    if (std::optional<RosterItem> old = item(user, contact)) {
      it = std::move(*old);
    } else {
      it.jid.assign(contact);
    }
    it.subscription = Subscription::kBoth;
    it.ask = false;
    it.approved = false;
    if (pending_in(user, contact)) {
      if (Status s = clear_pending_in(user, contact); !s) return s;
    }
    return update(user, it);
  }

  // Without a tombstone (the contact's account is gone and no key may name
  // it any more), a delta cannot tell the removal: deltas from before it
  // get the full roster instead ("f").
  Status remove_item(std::string_view user, std::string_view contact, bool tombstone) {
    RosterItem gone;
    gone.jid.assign(contact);
    bool existed = false;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      existed = t.del(roster_, user_key(user, contact));
      if (!existed) return t.status();
      Result<uint64_t> v = bump_version(t, user);
      if (!v) return v.error();
      gone.version = *v;
      storage::Writer w;
      w.u64(*v);
      if (!tombstone) {
        t.put(meta_, meta_key(user, "f"), w.view());
        return t.status();
      }
      t.put(meta_, tombstone_key(user, contact), w.view());
      if (Status p = prune_tombstones(t, user); !p) return p;
      return t.status();
    });
    if (!s) return s;
    if (existed) push(user, gone, true);
    return {};
  }

  bool pending_in(std::string_view user, std::string_view contact) const override {
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return false;
    auto got = txn->get(pending_, user_key(user, contact));
    return got && got.value();
  }

  Status set_pending_in(std::string_view user, std::string_view contact,
                        std::string_view stanza_xml) override {
    return ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      t.put(pending_, user_key(user, contact), stanza_xml);
      return t.status();
    });
  }

  Status clear_pending_in(std::string_view user, std::string_view contact) override {
    return ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      t.del(pending_, user_key(user, contact));
      return t.status();
    });
  }

  std::vector<std::pair<std::string, std::string>> pending_requests(
      std::string_view user) const override {
    std::vector<std::pair<std::string, std::string>> out;
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return out;
    std::string prefix = user_key(user);
    Status s = txn->for_each(pending_, prefix, [&](std::string_view key, std::string_view value) {
      out.emplace_back(std::string(key.substr(prefix.size())), std::string(value));
      return true;
    });
    (void)s;
    return out;
  }

 private:
  size_t count_items(std::string_view user) const {
    size_t n = 0;
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return 0;
    Status s = txn->for_each(roster_, user_key(user), [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    (void)s;
    return n;
  }

  uint64_t current_version(std::string_view user) const {
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return 0;
    auto got = txn->get(meta_, meta_key(user, "v"));
    if (!got || !got.value()) return 0;
    return storage::decode_u64(**got).value_or(0);
  }

  uint64_t floor_version(storage::Txn& t, std::string_view user) const {
    auto got = t.get(meta_, meta_key(user, "f"));
    if (!got || !got.value()) return 0;
    return storage::decode_u64(**got).value_or(0);
  }

  Result<uint64_t> bump_version(storage::WriteTxn& t, std::string_view user) {
    auto got = t.get(meta_, meta_key(user, "v"));
    if (!got) return got.error();
    uint64_t v = 0;
    if (got.value()) v = storage::decode_u64(**got).value_or(0);
    ++v;
    storage::Writer w;
    w.u64(v);
    t.put(meta_, meta_key(user, "v"), w.view());
    return v;
  }

  // Keeps at most kMaxTombstones; a delta older than the newest dropped one
  // cannot be answered any more ("f").
  Status prune_tombstones(storage::WriteTxn& t, std::string_view user) {
    std::string prefix = user_key(user, "t");
    std::vector<std::pair<uint64_t, std::string>> stones;
    Status s = t.for_each(meta_, prefix, [&](std::string_view key, std::string_view value) {
      stones.emplace_back(storage::decode_u64(value).value_or(0), std::string(key));
      return true;
    });
    if (!s) return s;
    if (stones.size() <= kMaxTombstones) return {};
    std::sort(stones.begin(), stones.end());
    uint64_t floor = floor_version(t, user);
    size_t drop = stones.size() - kMaxTombstones;
    for (size_t i = 0; i < drop; ++i) {
      floor = std::max(floor, stones[i].first);
      t.del(meta_, stones[i].second);
    }
    storage::Writer w;
    w.u64(floor);
    t.put(meta_, meta_key(user, "f"), w.view());
    return t.status();
  }

  xml::Element* make_push(xml::Arena& arena, const xmpp::Session& to, const RosterItem& item,
                          bool removed) {
    xml::Element* iq = arena.make_element("iq", xml::kNsClient);
    iq->set_attr("type", "set");
    iq->set_attr("id", "push" + std::to_string(++push_id_));
    iq->set_attr("to", to.jid().full());
    xml::Element* query = iq->add_child("query", kNsRoster);
    query->set_attr("ver", std::to_string(item.version));
    add_item_element(*query, item, removed);
    return iq;
  }

  // RFC 6121 §2.1.6: to every interested resource of the user.
  void push(std::string_view user, const RosterItem& item, bool removed) {
    std::string bare = std::string(user) + "@" + ctx_.domain();
    xml::Arena& arena = ctx_.scratch();
    std::vector<xmpp::Session*> sessions = ctx_.router().resources(bare);  // a copy
    for (xmpp::Session* s : sessions) {
      if (!s->interested()) continue;
      s->deliver(*make_push(arena, *s, item, removed));
    }
  }

  void on_roster_iq(IqEvent& ev) {
    if (ev.payload.name != "query") {
      ctx_.error(ev, "cancel", "service-unavailable");
      return;
    }
    const std::string& user = ev.from.local();
    if (!ev.is_set()) {
      on_get(ev, user);
      return;
    }
    on_set(ev, user);
  }

  void on_get(IqEvent& ev, const std::string& user) {
    if (ev.origin != nullptr) ev.origin->set_interested(true);
    uint64_t current = current_version(user);
    if (ev.payload.has_attr("ver")) {
      std::optional<uint64_t> known = parse_version(ev.payload.attr("ver"), current);
      if (known && *known == current) {
        ctx_.result(ev);  // XEP-0237 §2.4: nothing changed
        return;
      }
      if (known && send_delta(ev, user, *known)) return;
    }
    xml::Element* query = ev.arena.make_element("query", kNsRoster);
    query->set_attr("ver", std::to_string(current));
    for (const RosterItem& it : items(user))
      add_item_element(*query, it);
    ctx_.result(ev, query);
  }

  // XEP-0237 §2.4: an empty result, then one push per change since `known`.
  bool send_delta(IqEvent& ev, const std::string& user, uint64_t known) {
    if (ev.origin == nullptr) return false;
    std::vector<std::pair<RosterItem, bool>> changes;
    {
      Result<storage::ReadTxn> txn = ctx_.db().read();
      if (!txn) return false;
      if (known < floor_version(*txn, user)) return false;
      std::string prefix = user_key(user, "t");
      Status s = txn->for_each(meta_, prefix, [&](std::string_view key, std::string_view value) {
        uint64_t v = storage::decode_u64(value).value_or(0);
        if (v > known) {
          RosterItem gone;
          gone.jid.assign(key.substr(prefix.size()));
          gone.version = v;
          changes.emplace_back(std::move(gone), true);
        }
        return true;
      });
      if (!s) return false;
    }
    for (RosterItem& it : items(user))
      if (it.version > known) changes.emplace_back(std::move(it), false);
    std::sort(changes.begin(), changes.end(),
              [](const auto& a, const auto& b) { return a.first.version < b.first.version; });
    ctx_.result(ev);
    for (const auto& [it, removed] : changes)
      ev.origin->deliver(*make_push(ev.arena, *ev.origin, it, removed));
    return true;
  }

  void on_set(IqEvent& ev, const std::string& user) {
    // RFC 6121 §2.3.3: exactly one <item/>.
    const xml::Element* el = nullptr;
    int elements = 0;
    for (const xml::Node& n : ev.payload.children) {
      if (n.element == nullptr) continue;
      ++elements;
      if (n.element->name == "item" && n.element->ns == kNsRoster) el = n.element;
    }
    if (elements != 1 || el == nullptr) {
      ctx_.error(ev, "modify", "bad-request", "a roster set carries exactly one <item/>");
      return;
    }
    if (!el->has_attr("jid")) {
      ctx_.error(ev, "modify", "bad-request", "the item has no jid");
      return;
    }
    Result<xmpp::Jid> jid = xmpp::Jid::parse(el->attr("jid"));
    if (!jid) {
      ctx_.error(ev, "modify", "jid-malformed", "the item's jid is not a valid JID");
      return;
    }
    if (jid->has_resource()) {
      ctx_.error(ev, "modify", "bad-request", "the item's jid must be a bare JID");
      return;
    }
    std::string contact = jid->bare();
    if (contact == ev.from.bare()) {
      ctx_.error(ev, "cancel", "not-allowed", "your own JID is not a roster item");
      return;
    }
    if (el->attr("subscription") == "remove") {
      on_remove(ev, user, contact);
      return;
    }
    std::vector<std::string> groups;
    ItemCheck check = check_item_fields(*el, &groups);
    if (!check.type.empty()) {
      ctx_.error(ev, check.type, check.condition, check.text);
      return;
    }
    // RFC 6121 §2.1.2.5: 'subscription' (other than remove) and 'ask' in a
    // set are ignored; the state is the server's.
    RosterItem next;
    if (std::optional<RosterItem> old = item(user, contact)) next = std::move(*old);
    next.jid = contact;
    next.name.assign(el->attr("name"));
    next.groups = std::move(groups);
    Status s = update(user, next);
    if (!s) {
      if (s.error().message == "roster full") {
        std::string text = "roster is full (at most " +
                           std::to_string(ctx_.config().roster.max_items) + " contacts)";
        ctx_.error(ev, "wait", "resource-constraint", text);
      } else {
        HEARTH_WARN("roster", "roster set for %s failed: %s", user.c_str(),
                    s.error().message.c_str());
        ctx_.error(ev, "wait", "internal-server-error");
      }
      return;
    }
    ctx_.result(ev);
  }

  // RFC 6121 §2.5.2: cancel the subscriptions both ways, then remove.
  void on_remove(IqEvent& ev, const std::string& user, const std::string& contact) {
    std::optional<RosterItem> old = item(user, contact);
    if (!old) {
      ctx_.error(ev, "cancel", "item-not-found");
      return;
    }
    bool had_pending_in = pending_in(user, contact);
    if (Status s = remove(user, contact); !s) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    if (had_pending_in) (void)clear_pending_in(user, contact);
    ctx_.result(ev);
    std::string bare = ev.from.bare();
    xml::Arena& arena = ctx_.scratch();
    if (has_from(old->subscription)) {
      // The contact loses our presence: tell it we are gone first.
      if (PresenceService* presence = ctx_.find<PresenceService>()) {
        Result<xmpp::Jid> cj = xmpp::Jid::parse(contact);
        if (cj) presence->send_unavailable(user, *cj);
      }
    }
    if (has_to(old->subscription) || old->ask) send_presence(arena, bare, contact, "unsubscribe");
    if (has_from(old->subscription) || had_pending_in)
      send_presence(arena, bare, contact, "unsubscribed");
  }

  void send_presence(xml::Arena& arena, std::string_view from, std::string_view to,
                     std::string_view type) {
    Result<xmpp::Jid> to_jid = xmpp::Jid::parse(to);
    if (!to_jid || to_jid->domain() != ctx_.domain()) return;  // no s2s yet
    xml::Element* p = arena.make_element("presence", xml::kNsClient);
    p->set_attr("from", from);
    p->set_attr("to", to);
    p->set_attr("type", type);
    ctx_.send(*p);
  }

  // The account is gone: nobody keeps it in a roster or a pending request.
  void on_account_deleted(std::string_view user) {
    std::string gone = std::string(user) + "@" + ctx_.domain();
    struct Ref {
      std::string owner;
      RosterItem item;
    };
    std::vector<Ref> refs;
    std::vector<std::string> pending_owners;
    std::vector<std::pair<std::string, uint64_t>> stones;  // (owner, version)
    std::string stone_rest = "t" + gone;
    {
      Result<storage::ReadTxn> txn = ctx_.db().read();
      if (!txn) return;
      Status s = txn->for_each(roster_, {}, [&](std::string_view key, std::string_view value) {
        size_t zero = key.find('\0');
        if (zero == std::string_view::npos || key.substr(zero + 1) != gone) return true;
        std::string_view owner = key.substr(0, zero);
        if (owner == user) return true;
        Result<RosterItem> it = decode_item(gone, value);
        if (it) refs.push_back({std::string(owner), std::move(it.value())});
        return true;
      });
      (void)s;
      s = txn->for_each(meta_, {}, [&](std::string_view key, std::string_view value) {
        size_t zero = key.find('\0');
        if (zero != std::string_view::npos && key.substr(zero + 1) == stone_rest &&
            key.substr(0, zero) != user)
          stones.emplace_back(std::string(key.substr(0, zero)),
                              storage::decode_u64(value).value_or(0));
        return true;
      });
      (void)s;
      s = txn->for_each(pending_, {}, [&](std::string_view key, std::string_view) {
        size_t zero = key.find('\0');
        if (zero != std::string_view::npos && key.substr(zero + 1) == gone)
          pending_owners.emplace_back(key.substr(0, zero));
        return true;
      });
      (void)s;
    }
    for (const std::string& owner : pending_owners)
      (void)clear_pending_in(owner, gone);
    for (const auto& stone : stones) {
      const std::string& owner = stone.first;
      Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
        t.del(meta_, tombstone_key(owner, gone));
        uint64_t floor = std::max(floor_version(t, owner), stone.second);
        storage::Writer w;
        w.u64(floor);
        t.put(meta_, meta_key(owner, "f"), w.view());
        return t.status();
      });
      (void)s;
    }
    xml::Arena& arena = ctx_.scratch();
    for (const Ref& r : refs) {
      if (Status s = remove_item(r.owner, gone, false); !s) {
        HEARTH_WARN("roster", "removing %s from %s's roster failed: %s", gone.c_str(),
                    r.owner.c_str(), s.error().message.c_str());
        continue;
      }
      // Tell the owner's clients the subscriptions are over (RFC 6121
      // §3.2/§3.3 as if the deleted account had cancelled them).
      std::string owner_bare = r.owner + "@" + ctx_.domain();
      std::vector<xmpp::Session*> sessions = ctx_.router().resources(owner_bare);
      for (xmpp::Session* s : sessions) {
        if (!s->available()) continue;
        if (has_to(r.item.subscription) || r.item.ask) {
          xml::Element* p = arena.make_element("presence", xml::kNsClient);
          p->set_attr("from", gone);
          p->set_attr("to", owner_bare);
          p->set_attr("type", "unsubscribed");
          s->deliver(*p);
        }
        if (has_from(r.item.subscription)) {
          xml::Element* p = arena.make_element("presence", xml::kNsClient);
          p->set_attr("from", gone);
          p->set_attr("to", owner_bare);
          p->set_attr("type", "unsubscribe");
          s->deliver(*p);
        }
        if (has_to(r.item.subscription)) {
          xml::Element* p = arena.make_element("presence", xml::kNsClient);
          p->set_attr("from", gone);
          p->set_attr("to", s->jid().full());
          p->set_attr("type", "unavailable");
          s->deliver(*p);
        }
      }
    }
  }

  Context& ctx_;
  storage::Dbi roster_ = 0;
  storage::Dbi meta_ = 0;
  storage::Dbi pending_ = 0;
  uint64_t push_id_ = 0;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<RosterModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_roster;
const ModuleDef kModule_roster = {"roster",
                                  "contact lists (RFC 6121 §2) with versioning (XEP-0237)",
                                  {{kRosterTable}, {kMetaTable}, {kPendingTable}},
                                  {},
                                  &create};

}  // namespace hearth::modules
