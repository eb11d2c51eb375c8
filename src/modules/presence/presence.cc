// Presence (RFC 6121 §3-4): subscriptions driven by the state machine of
// subscription.h over the roster's store, presence broadcast to contacts
// and own resources, probes and their answers, directed presence, and
// unavailable presence when a stream ends.
//
// Subscription stanzas from a session are handled in kOutbound (the
// account's side, then re-sent from its bare JID with ctx.send) and
// arrive at the contact in kInbound, after the firewall hooks (blocking).
#include <algorithm>
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "modules/module.h"
#include "modules/presence/subscription.h"
#include "modules/roster/roster.h"
#include "xml/fragment.h"
#include "xmpp/router.h"

namespace hearth::modules {

namespace {

constexpr std::string_view kNsPreApproval = "urn:xmpp:features:pre-approval";
constexpr size_t kMaxStoredRequest = 4096;

// RFC 6121 §4.7.2.3: an integer from -128 to +127; absent means 0.
bool parse_priority(const xml::Element& presence, int* out) {
  *out = 0;
  const xml::Element* p = presence.child("priority", xml::kNsClient);
  if (p == nullptr) return true;
  std::string text = p->text();
  size_t b = text.find_first_not_of(" \t\r\n");
  size_t e = text.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return false;
  std::string_view v(text.data() + b, e - b + 1);
  if (!v.empty() && v[0] == '+') v.remove_prefix(1);
  int value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (ec != std::errc() || end != v.data() + v.size() || value < -128 || value > 127) return false;
  *out = value;
  return true;
}

class PresenceModule final : public Module, public PresenceService {
 public:
  explicit PresenceModule(Context& ctx) : ctx_(ctx) {
    ctx.on_stanza(Kind::kPresence, Phase::kOutbound, kPriorityDefault,
                  [this](StanzaEvent& ev) { return on_outbound(ev); });
    ctx.on_stanza(Kind::kPresence, Phase::kInbound, kPriorityDefault,
                  [this](StanzaEvent& ev) { return on_inbound(ev); });
    ctx.on_session(SessionEvent::kClosed, kPriorityDefault,
                   [this](xmpp::Session& s) { on_closed(s); });
    ctx.on_stream_features([](std::string& features) {
      features.append("<sub xmlns='");
      features.append(kNsPreApproval);
      features.append("'/>");
    });
    ctx.provide<PresenceService>(this);
  }

  // ---- PresenceService ----
  void send_current_presence(std::string_view user, const xmpp::Jid& contact) override {
    send_current(user, contact.full());
  }

  void send_unavailable(std::string_view user, const xmpp::Jid& contact) override {
    if (!is_local(contact.domain())) return;
    xml::Arena& arena = ctx_.scratch();
    for (xmpp::Session* s : sessions_of(bare_of(user))) {
      if (!s->available()) continue;
      xml::Element* p = arena.make_element("presence", xml::kNsClient);
      p->set_attr("from", s->jid().full());
      p->set_attr("to", contact.full());
      p->set_attr("type", "unavailable");
      ctx_.send(*p);
    }
  }

 private:
  RosterStore& store() const { return *ctx_.find<RosterStore>(); }
  // A copy: a delivery may end a stream and change the router's list.
  std::vector<xmpp::Session*> sessions_of(std::string_view bare) const {
    return ctx_.router().resources(bare);
  }
  bool is_local(std::string_view domain) const { return domain == ctx_.domain(); }
  std::string bare_of(std::string_view user) const {
    std::string b(user);
    b.push_back('@');
    b.append(ctx_.domain());
    return b;
  }

  // ---- from the account's sessions ----

  HookResult on_outbound(StanzaEvent& ev) {
    if (ev.origin == nullptr) return HookResult::kPass;
    xmpp::Session& origin = *ev.origin;
    std::string_view type = ev.stanza.attr("type");
    if (ev.stanza.attr("to").empty()) {
      if (type.empty()) {
        own_available(ev, origin);
      } else if (type == "unavailable") {
        if (origin.available()) own_unavailable(ev.stanza, origin, false);
      }
      // Anything else without an address means nothing: dropped.
      return HookResult::kHandled;
    }
    SubType sub;
    if (parse_sub_type(type, &sub)) return outbound_sub(ev, origin, sub);
    if (type.empty() || type == "unavailable") track_directed(ev, origin, type.empty());
    return HookResult::kPass;
  }

  void own_available(StanzaEvent& ev, xmpp::Session& origin) {
    int priority = 0;
    if (!parse_priority(ev.stanza, &priority)) {
      ctx_.bounce(ev.stanza, "modify", "bad-request",
                  "<priority/> must be an integer from -128 to 127");
      return;
    }
    bool initial = !origin.available();
    bool was_negative = origin.available() && origin.priority() < 0;
    origin.set_presence(true, priority);
    ev.stanza.remove_attr("to");
    ev.stanza.remove_attr("from");
    origin.last_presence().clear();
    xml::serialize(ev.stanza, &origin.last_presence());

    std::string user = origin.jid().local();
    std::string full = origin.jid().full();
    std::vector<RosterItem> roster = store().items(user);
    // RFC 6121 §4.2.1 / §4.4.1: to every contact subscribed to us.
    for (const RosterItem& it : roster) {
      if (!has_from(it.subscription)) continue;
      send_copy(ev.stanza, full, it.jid);
    }
    // ... and to our own available resources, this one included (§4.2.2).
    for (xmpp::Session* s : sessions_of(origin.jid().bare())) {
      if (!s->available()) continue;
      ev.stanza.set_attr("from", full);
      ev.stanza.set_attr("to", s->jid().full());
      s->deliver(ev.stanza);
    }
    if (!initial) {
      // A resource that raises a negative priority can now take messages
      // for the bare JID (RFC 6121 §8.5.2.1.1): tell the modules, as on
      // initial presence (offline messages wait for it).
      if (was_negative && priority >= 0) ctx_.notify(SessionEvent::kAvailable, origin);
      return;
    }
    // The new resource learns about the account's other available ones.
    for (xmpp::Session* s : sessions_of(origin.jid().bare())) {
      if (s == &origin || !s->available() || s->last_presence().empty()) continue;
      Result<xml::Element*> p = xml::parse_fragment(s->last_presence(), ctx_.scratch());
      if (!p) continue;
      (*p)->set_attr("from", s->jid().full());
      (*p)->set_attr("to", full);
      origin.deliver(**p);
    }
    // §4.2.1: probe the contacts we are subscribed to; their answers come
    // to this resource.
    xml::Arena& arena = ctx_.scratch();
    for (const RosterItem& it : roster) {
      if (!has_to(it.subscription)) continue;
      Result<xmpp::Jid> cj = xmpp::Jid::parse(it.jid);
      if (!cj || !is_local(cj->domain())) continue;
      xml::Element* probe = arena.make_element("presence", xml::kNsClient);
      probe->set_attr("from", full);
      probe->set_attr("to", it.jid);
      probe->set_attr("type", "probe");
      ctx_.send(*probe);
    }
    // §3.1.3: requests that came while we were away, on every initial
    // presence until they are answered.
    // (Not from someone blocked since: the firewall hooks saw the request
    // when it came, not now.)
    const BlockingService* blocking = ctx_.find<BlockingService>();
    for (const auto& [contact, xml_text] : store().pending_requests(user)) {
      Result<xmpp::Jid> cj = xmpp::Jid::parse(contact);
      if (blocking != nullptr && cj && blocking->is_blocked(user, *cj)) continue;
      origin.deliver_raw(xml_text);
    }
    ctx_.notify(SessionEvent::kAvailable, origin);
  }

  // §4.5: unavailable to contacts, own resources and directed recipients.
  void own_unavailable(xml::Element& stanza, xmpp::Session& origin, bool closing) {
    origin.set_presence(false, 0);
    origin.last_presence().clear();
    stanza.remove_attr("to");
    std::string full = origin.jid().full();
    std::string user = origin.jid().local();
    std::vector<std::string> sent;
    for (const RosterItem& it : store().items(user)) {
      if (!has_from(it.subscription)) continue;
      send_copy(stanza, full, it.jid);
      sent.push_back(it.jid);
    }
    for (const std::string& to : origin.directed()) {
      Result<xmpp::Jid> j = xmpp::Jid::parse(to);
      if (!j) continue;
      // A contact's bare JID already got it (its resources all did).
      if (!j->has_resource() && std::find(sent.begin(), sent.end(), to) != sent.end()) continue;
      send_copy(stanza, full, to);
    }
    origin.directed().clear();
    for (xmpp::Session* s : sessions_of(origin.jid().bare())) {
      if (s == &origin ? closing : !s->available()) continue;
      stanza.set_attr("from", full);
      stanza.set_attr("to", s->jid().full());
      s->deliver(stanza);
    }
  }

  void on_closed(xmpp::Session& session) {
    if (!session.available()) return;
    xml::Element* p = ctx_.scratch().make_element("presence", xml::kNsClient);
    p->set_attr("type", "unavailable");
    own_unavailable(*p, session, true);
  }

  // §4.6: directed presence outside the subscriptions is remembered so
  // that the recipient learns when we go offline.
  void track_directed(StanzaEvent& ev, xmpp::Session& origin, bool available) {
    std::string to(ev.stanza.attr("to"));
    std::vector<std::string>& list = origin.directed();
    auto pos = std::find(list.begin(), list.end(), to);
    if (!available) {
      if (pos != list.end()) list.erase(pos);
      return;
    }
    if (!origin.available() || pos != list.end()) return;
    std::string bare = ev.to.bare();
    if (bare == origin.jid().bare()) return;
    if (has_from(store().item(origin.jid().local(), bare).value_or(RosterItem{}).subscription))
      return;
    list.push_back(std::move(to));
  }

  SubState load(std::string_view user, std::string_view contact) const {
    SubState s;
    if (std::optional<RosterItem> it = store().item(user, contact)) {
      s.in_roster = true;
      s.sub = it->subscription;
      s.pending_out = it->ask;
      s.approved = it->approved;
    }
    s.pending_in = store().pending_in(user, contact);
    return s;
  }

  // Stores what changed; false when the roster is full.
  bool save(std::string_view user, std::string_view contact, const SubState& before,
            const SubOutcome& o, std::string_view request_xml = {}) {
    if (o.push) {
      RosterItem item;
      if (std::optional<RosterItem> old = store().item(user, contact)) item = std::move(*old);
      item.jid.assign(contact);
      item.subscription = o.next.sub;
      item.ask = o.next.pending_out;
      item.approved = o.next.approved;
      if (Status s = store().update(user, item); !s) return false;
    }
    if (before.pending_in && !o.next.pending_in) {
      (void)store().clear_pending_in(user, contact);
    } else if (!before.pending_in && o.next.pending_in) {
      if (Status s = store().set_pending_in(user, contact, request_xml); !s) return false;
    }
    return true;
  }

  HookResult outbound_sub(StanzaEvent& ev, xmpp::Session& origin, SubType type) {
    std::string user = origin.jid().local();
    std::string user_bare = origin.jid().bare();
    std::string contact = ev.to.bare();
    if (contact == user_bare) return HookResult::kHandled;  // with oneself: meaningless
    SubState before = load(user, contact);
    SubOutcome o = outbound_subscription(before, type);
    if (!save(user, contact, before, o)) {
      ctx_.bounce(ev.stanza, "wait", "resource-constraint",
                  "roster is full (at most " + std::to_string(ctx_.config().roster.max_items) +
                      " contacts)");
      return HookResult::kHandled;
    }
    if (o.send_unavailable) {
      if (Result<xmpp::Jid> cj = xmpp::Jid::parse(contact); cj) send_unavailable(user, *cj);
    }
    if (o.forward) {
      // §3.1.2 etc.: subscription stanzas carry bare JIDs.
      ev.stanza.set_attr("from", user_bare);
      ev.stanza.set_attr("to", contact);
      if (!is_local(ev.to.domain())) return HookResult::kPass;  // the core answers (no s2s)
      ctx_.send(*xml::clone(ev.stanza, ev.arena));
    }
    if (o.send_presence) send_current(user, contact);
    return HookResult::kHandled;
  }

  // ---- to an account of ours ----

  HookResult on_inbound(StanzaEvent& ev) {
    std::string_view type = ev.stanza.attr("type");
    if (type == "probe") {
      answer_probe(ev);
      return HookResult::kHandled;  // §4.3.2: never delivered to clients
    }
    if (type == "error") {
      // The sender cannot take our presence: stop sending it directed
      // presence (RFC 6121 §4.6.2).
      std::string full = ev.from.full();
      std::string bare = ev.from.bare();
      for (xmpp::Session* s : sessions_of(ev.to.bare())) {
        std::vector<std::string>& d = s->directed();
        d.erase(std::remove_if(d.begin(), d.end(),
                               [&](const std::string& j) { return j == full || j == bare; }),
                d.end());
      }
      return HookResult::kPass;
    }
    SubType sub;
    if (!parse_sub_type(type, &sub)) return HookResult::kPass;
    inbound_sub(ev, sub);
    return HookResult::kHandled;
  }

  void inbound_sub(StanzaEvent& ev, SubType type) {
    std::string user = ev.to.local();
    std::string user_bare = ev.to.bare();
    std::string contact = ev.from.bare();
    if (contact == user_bare || user.empty()) return;
    ev.stanza.set_attr("from", contact);
    ev.stanza.set_attr("to", user_bare);
    SubState before = load(user, contact);
    SubOutcome o = inbound_subscription(before, type);
    std::string request;
    if (type == SubType::kSubscribe && o.next.pending_in) {
      xml::serialize(ev.stanza, &request);
      if (request.size() > kMaxStoredRequest) {
        // Kept durably for every new session: the request, not a payload.
        request.clear();
        xml::Element* bare_req = ev.arena.make_element("presence", xml::kNsClient);
        bare_req->set_attr("from", contact);
        bare_req->set_attr("to", user_bare);
        bare_req->set_attr("type", "subscribe");
        xml::serialize(*bare_req, &request);
      }
    }
    if (!save(user, contact, before, o, request)) {
      // Out of room for the request: the contact learns it was refused.
      reply(user_bare, contact, "unsubscribed");
      return;
    }
    if (o.auto_subscribed) reply(user_bare, contact, "subscribed");
    if (o.send_presence) send_current(user, contact);
    if (o.send_unavailable) {
      if (Result<xmpp::Jid> cj = xmpp::Jid::parse(contact); cj) send_unavailable(user, *cj);
    }
    if (o.forward) {
      // A request goes to the available resources (§3.1.3); the state
      // changes (subscribed, unsubscribe, unsubscribed) to every interested
      // resource too, alongside their roster push (§3.1.6, §3.2.3, §3.3.3).
      bool request_only = type == SubType::kSubscribe;
      for (xmpp::Session* s : sessions_of(user_bare))
        if (s->available() || (!request_only && s->interested())) s->deliver(ev.stanza);
    }
  }

  void reply(const std::string& from, const std::string& to, std::string_view type) {
    Result<xmpp::Jid> j = xmpp::Jid::parse(to);
    if (!j || !is_local(j->domain())) return;
    xml::Element* p = ctx_.scratch().make_element("presence", xml::kNsClient);
    p->set_attr("from", from);
    p->set_attr("to", to);
    p->set_attr("type", type);
    ctx_.send(*p);
  }

  // §4.3.2: only a subscriber (or the account itself) learns our presence.
  void answer_probe(StanzaEvent& ev) {
    std::string user = ev.to.local();
    std::string user_bare = ev.to.bare();
    std::string prober_bare = ev.from.bare();
    if (user.empty()) return;
    if (prober_bare != user_bare &&
        !has_from(store().item(user, prober_bare).value_or(RosterItem{}).subscription))
      return;
    std::string to = ev.from.full();
    if (send_current(user, to) == 0) {
      if (!is_local(ev.from.domain())) return;
      xml::Element* p = ev.arena.make_element("presence", xml::kNsClient);
      p->set_attr("from", user_bare);
      p->set_attr("to", to);
      p->set_attr("type", "unavailable");
      ctx_.send(*p);
    }
  }

  // The last presence of each available resource of `user`, to `to`.
  size_t send_current(std::string_view user, const std::string& to) {
    Result<xmpp::Jid> j = xmpp::Jid::parse(to);
    if (!j || !is_local(j->domain())) return 0;
    size_t n = 0;
    xml::Arena& arena = ctx_.scratch();
    for (xmpp::Session* s : sessions_of(bare_of(user))) {
      if (!s->available() || s->last_presence().empty()) continue;
      Result<xml::Element*> p = xml::parse_fragment(s->last_presence(), arena);
      if (!p) continue;
      (*p)->set_attr("from", s->jid().full());
      (*p)->set_attr("to", to);
      ctx_.send(**p);
      ++n;
    }
    return n;
  }

  // `to` is normalised (a roster item, or an address the router
  // normalised): its domain is read off, not parsed (once per contact of
  // a broadcast).
  void send_copy(xml::Element& stanza, const std::string& from, const std::string& to) {
    std::string_view head = std::string_view(to).substr(0, to.find('/'));
    size_t at = head.find('@');
    if (!is_local(at == std::string_view::npos ? head : head.substr(at + 1))) return;  // no s2s
    stanza.set_attr("from", from);
    stanza.set_attr("to", to);
    ctx_.send(stanza);
  }

  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<PresenceModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_presence;
const ModuleDef kModule_presence = {
    "presence", "presence and subscriptions (RFC 6121 §3-4)", {}, {"roster"}, &create};

}  // namespace hearth::modules
