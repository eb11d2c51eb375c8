// XEP-0191 Blocking Command: the blocklist IQs on the account, pushes to the
// resources that asked for the list, and the firewall hooks that keep
// stanzas from blocked entities away from the user and the user's stanzas
// (including presence the server sends on the user's behalf) away from
// them.
#include "modules/blocking/blocking.h"

#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/log.h"
#include "modules/module.h"
#include "modules/services.h"
#include "storage/codec.h"
#include "xmpp/router.h"

namespace hearth::modules {

namespace blocking {

namespace {

constexpr uint8_t kValueVersion = 1;

std::string value() {
  storage::Writer w;
  w.u8(kValueVersion);
  return w.take();
}

}  // namespace

std::vector<std::string> match_candidates(const xmpp::Jid& jid) {
  std::vector<std::string> out;
  if (jid.domain().empty()) return out;
  if (jid.has_resource()) out.push_back(jid.full());
  if (jid.has_local()) {
    out.push_back(jid.bare());
    if (jid.has_resource()) out.push_back(jid.domain() + "/" + jid.resource());
  }
  // The domain, then each parent domain ("a.b.c" → "b.c" → "c").
  std::string_view d = jid.domain();
  while (!d.empty()) {
    out.emplace_back(d);
    size_t dot = d.find('.');
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return out;
}

Result<std::optional<ReportRequest>> parse_report(const xml::Element& item) {
  std::optional<ReportRequest> out;
  for (const xml::Node& n : item.children) {
    if (n.element == nullptr || n.element->name != "report" || n.element->ns != kNsReporting) {
      continue;  // other extensions of the item are not ours
    }
    const xml::Element& report = *n.element;
    if (out) return make_error("one <report/> per <item/>");
    std::string_view reason = report.attr("reason");
    if (reason != kReasonSpam && reason != kReasonAbuse) {
      return make_error("a <report/> needs reason='" + std::string(kReasonSpam) + "' or '" +
                        std::string(kReasonAbuse) + "'");
    }
    ReportRequest r;
    r.reason = std::string(reason);
    bool have_text = false;
    for (const xml::Node& c : report.children) {
      if (c.element == nullptr || c.element->name != "text" || c.element->ns != kNsReporting)
        continue;
      std::string text = c.element->text();
      if (text.size() > kMaxReportText) {
        return make_error("the report's <text/> is limited to " + std::to_string(kMaxReportText) +
                          " bytes");
      }
      // Several texts differ only in xml:lang: the first one is kept.
      if (!have_text) r.text = std::move(text);
      have_text = true;
    }
    out = std::move(r);
  }
  return out;
}

bool Blocklist::matches(std::string_view user, const xmpp::Jid& jid) const {
  auto txn = env_.read();
  if (!txn) {
    HEARTH_ERROR("blocking", "read transaction: %s", txn.error().message.c_str());
    return false;
  }
  // Most users block nobody: one cursor step answers that.
  bool any = false;
  Status s = txn->for_each(db_, user_key(user), [&](std::string_view, std::string_view) {
    any = true;
    return false;
  });
  if (!s || !any) return false;
  for (const std::string& c : match_candidates(jid)) {
    auto v = txn->get(db_, user_key(user, c));
    if (v && v->has_value()) return true;
  }
  return false;
}

Result<std::vector<std::string>> Blocklist::items(std::string_view user) const {
  auto txn = env_.read();
  if (!txn) return txn.error();
  std::vector<std::string> out;
  const std::string prefix = user_key(user);
  Status s = txn->for_each(db_, prefix, [&](std::string_view key, std::string_view) {
    out.emplace_back(key.substr(prefix.size()));
    return true;
  });
  if (!s) return s.error();
  return out;
}

Status Blocklist::add(std::string_view user, const std::vector<std::string>& jids, size_t max_items,
                      std::vector<std::string>* added, bool* full) {
  *full = false;
  return env_.write([&](storage::WriteTxn& t) -> Status {
    added->clear();
    size_t count = 0;
    Status s = t.for_each(db_, user_key(user), [&](std::string_view, std::string_view) {
      ++count;
      return true;
    });
    if (!s) return s;
    for (const std::string& jid : jids) {
      const std::string key = user_key(user, jid);
      auto v = t.get(db_, key);
      if (!v) return v.error();
      if (v->has_value()) continue;
      added->push_back(jid);
    }
    if (count + added->size() > max_items) {
      *full = true;
      return make_error("blocklist full");
    }
    const std::string val = value();
    for (const std::string& jid : *added)
      t.put(db_, user_key(user, jid), val);
    return t.status();
  });
}

Status Blocklist::remove(std::string_view user, const std::vector<std::string>& jids,
                         std::vector<std::string>* removed) {
  return env_.write([&](storage::WriteTxn& t) -> Status {
    removed->clear();
    for (const std::string& jid : jids) {
      if (t.del(db_, user_key(user, jid))) removed->push_back(jid);
    }
    return t.status();
  });
}

Status Blocklist::clear(std::string_view user, std::vector<std::string>* removed) {
  return env_.write([&](storage::WriteTxn& t) -> Status {
    removed->clear();
    const std::string prefix = user_key(user);
    Status s = t.for_each(db_, prefix, [&](std::string_view key, std::string_view) {
      removed->emplace_back(key.substr(prefix.size()));
      return true;
    });
    if (!s) return s;
    for (const std::string& jid : *removed)
      t.del(db_, user_key(user, jid));
    return t.status();
  });
}

}  // namespace blocking

namespace {

using blocking::kNsBlocking;
using blocking::kNsBlockingErrors;

class BlockingModule : public Module, public BlockingService {
 public:
  explicit BlockingModule(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsBlocking, "get,set", kIqSelf, [this](IqEvent& ev) { on_iq(ev); });
    // XEP-0191 §3.1: clients discover support on the server.
    ctx.add_disco_feature(DiscoTarget::kServer, std::string(kNsBlocking));
    for (Kind kind : {Kind::kMessage, Kind::kPresence, Kind::kIq}) {
      ctx.on_stanza(kind, Phase::kInbound, kPriorityFirewall,
                    [this, kind](StanzaEvent& ev) { return inbound(kind, ev); });
      ctx.on_stanza(kind, Phase::kOutbound, kPriorityFirewall,
                    [this, kind](StanzaEvent& ev) { return outbound(kind, ev); });
    }
    ctx.on_session(SessionEvent::kClosed, kPriorityDefault,
                   [this](xmpp::Session& s) { interested_.erase(&s); });
    ctx.provide<BlockingService>(this);
    load_blockers();
  }

  bool is_blocked(std::string_view user, const xmpp::Jid& jid) const override {
    // Most accounts block nobody: they cost no read transaction (this runs
    // several times per routed stanza).
    if (blockers_.find(user) == blockers_.end()) return false;
    return list().matches(user, jid);
  }

 private:
  blocking::Blocklist list() const {
    return blocking::Blocklist(ctx_.db(), ctx_.table(blocking::kTable));
  }

  // The accounts whose blocklist is not empty, read once at start; this
  // module is the table's only writer while the server runs (account
  // deletion only removes keys, which leaves a harmless extra name here).
  void load_blockers() {
    auto txn = ctx_.db().read();
    if (!txn) {
      HEARTH_ERROR("blocking", "read transaction: %s", txn.error().message.c_str());
      return;
    }
    Status s = txn->for_each(ctx_.table(blocking::kTable), {},
                             [&](std::string_view key, std::string_view) {
                               size_t zero = key.find('\0');
                               if (zero != std::string_view::npos)
                                 blockers_.emplace(key.substr(0, zero));
                               return true;
                             });
    if (!s) HEARTH_ERROR("blocking", "reading the blocklists: %s", s.error().message.c_str());
  }

  void note_blocker(const std::string& user) {
    auto items = list().items(user);
    if (items && items->empty()) {
      blockers_.erase(user);
    } else {
      blockers_.insert(user);
    }
  }

  static bool same_account(const xmpp::Jid& a, const xmpp::Jid& b) {
    return a.local() == b.local() && a.domain() == b.domain();
  }
  // Our own domain (the server itself) is never a blocked peer: blocking it
  // must not cut the user off from the server's own services.
  bool is_server(const xmpp::Jid& j) const {
    return !j.has_local() && !j.has_resource() && j.domain() == ctx_.domain();
  }

  // ---- enforcement ----

  // To a local account: drop or refuse what a blocked entity sends the user
  // (XEP-0191 §3.3: presence silently, messages and IQ get/set with
  // <service-unavailable/>, so the user looks offline), and drop what the
  // server would deliver from the user to someone the user blocked (e.g.
  // presence broadcasts).
  HookResult inbound(Kind kind, StanzaEvent& ev) {
    const xmpp::Jid& from = ev.from;
    const xmpp::Jid& to = ev.to;
    if (from.domain().empty() || !to.has_local() || same_account(from, to)) {
      return HookResult::kPass;
    }
    if (!is_server(from) && is_blocked(to.local(), from)) {
      const std::string_view type = ev.stanza.attr("type");
      bool refuse = false;
      if (kind == Kind::kMessage) {
        // As Prosody: chat/normal get the error, headline/groupchat are dropped.
        refuse = type.empty() || type == "chat" || type == "normal";
      } else if (kind == Kind::kIq) {
        refuse = type == "get" || type == "set";
      }
      HEARTH_DEBUG("blocking", "%s from %s to %s blocked by the recipient", ev.stanza.name.c_str(),
                   from.full().c_str(), to.full().c_str());
      if (refuse) ctx_.bounce(ev.stanza, "cancel", "service-unavailable");
      return HookResult::kHandled;
    }
    if (from.has_local() && from.domain() == ctx_.domain() && !bypass_sender_block_ &&
        is_blocked(from.local(), to)) {
      HEARTH_DEBUG("blocking", "%s from %s to %s blocked by the sender", ev.stanza.name.c_str(),
                   from.full().c_str(), to.full().c_str());
      return HookResult::kHandled;
    }
    return HookResult::kPass;
  }

  // From the user's session to a blocked entity: never routed; XEP-0191
  // §3.3 <not-acceptable/> with <blocked/> (errors and IQ results dropped).
  HookResult outbound(Kind kind, StanzaEvent& ev) {
    const xmpp::Jid& from = ev.from;
    const xmpp::Jid& to = ev.to;
    if (ev.origin == nullptr || to.domain().empty() || !from.has_local() ||
        same_account(from, to) || is_server(to)) {
      return HookResult::kPass;
    }
    if (!is_blocked(from.local(), to)) return HookResult::kPass;
    const std::string_view type = ev.stanza.attr("type");
    bool refuse = type != "error";
    if (kind == Kind::kIq) refuse = type == "get" || type == "set";
    HEARTH_DEBUG("blocking", "%s from %s to blocked %s refused", ev.stanza.name.c_str(),
                 from.full().c_str(), to.full().c_str());
    if (refuse) {
      xml::Element* blocked = ev.arena.make_element("blocked", kNsBlockingErrors);
      ctx_.bounce(ev.stanza, "cancel", "not-acceptable", "You have blocked this JID", blocked);
    }
    return HookResult::kHandled;
  }

  // ---- the IQs ----

  void on_iq(IqEvent& ev) {
    const xml::Element& p = ev.payload;
    if (!ev.is_set()) {
      if (p.name != "blocklist") {
        return ctx_.error(ev, "modify", "bad-request", "expected <blocklist/> in an IQ get");
      }
      return get_blocklist(ev);
    }
    if (p.name == "block") return edit(ev, true);
    if (p.name == "unblock") return edit(ev, false);
    ctx_.error(ev, "modify", "bad-request", "expected <block/> or <unblock/> in an IQ set");
  }

  void get_blocklist(IqEvent& ev) {
    auto items = list().items(ev.from.local());
    if (!items) {
      HEARTH_ERROR("blocking", "reading the blocklist: %s", items.error().message.c_str());
      return ctx_.error(ev, "wait", "internal-server-error");
    }
    xml::Element* reply = ev.arena.make_element("blocklist", kNsBlocking);
    for (const std::string& jid : *items) {
      reply->add_child("item", kNsBlocking)->set_attr("jid", jid);
    }
    // XEP-0191 §3.2/§3.3: this resource now gets the pushes.
    if (ev.origin != nullptr) interested_.insert(ev.origin);
    ctx_.result(ev, reply);
  }

  void edit(IqEvent& ev, bool block) {
    const std::string& user = ev.from.local();
    std::vector<std::string> jids;
    // XEP-0377 reports (block only): item JID, reason, text.
    std::vector<std::pair<xmpp::Jid, blocking::ReportRequest>> reports;
    for (const xml::Node& n : ev.payload.children) {
      if (n.element == nullptr) continue;  // whitespace
      const xml::Element& item = *n.element;
      if (item.name != "item" || item.ns != kNsBlocking) {
        return ctx_.error(ev, "modify", "bad-request", "only <item/> elements are allowed");
      }
      // As Prosody: a missing or unparseable 'jid' is jid-malformed.
      auto jid = xmpp::Jid::parse(item.attr("jid"));
      if (!item.has_attr("jid") || !jid) {
        return ctx_.error(ev, "modify", "jid-malformed", "an <item/> needs a valid 'jid'");
      }
      std::string text = jid->full();
      if (user_key(user, text).size() > ctx_.db().max_key_size()) {
        return ctx_.error(ev, "modify", "not-acceptable", "JID too long to be stored");
      }
      if (block) {
        auto report = blocking::parse_report(item);
        if (!report) return ctx_.error(ev, "modify", "bad-request", report.error().message);
        if (report->has_value()) reports.emplace_back(*jid, std::move(**report));
      }
      bool dup = false;
      for (const std::string& j : jids)
        dup = dup || j == text;
      if (!dup) jids.push_back(std::move(text));
    }
    if (block && jids.empty()) {
      // XEP-0191 §3.3.
      return ctx_.error(ev, "modify", "bad-request", "<block/> needs at least one <item/>");
    }

    blocking::Blocklist bl = list();
    std::vector<std::string> changed;
    Status s;
    if (block) {
      bool full = false;
      s = bl.add(user, jids, blocking::kMaxItems, &changed, &full);
      if (full) {
        return ctx_.error(
            ev, "modify", "policy-violation",
            "the blocklist is limited to " + std::to_string(blocking::kMaxItems) + " items");
      }
    } else if (jids.empty()) {
      s = bl.clear(user, &changed);
    } else {
      s = bl.remove(user, jids, &changed);
    }
    note_blocker(user);
    if (!s) {
      HEARTH_ERROR("blocking", "writing the blocklist: %s", s.error().message.c_str());
      return ctx_.error(ev, "wait", "internal-server-error");
    }
    ctx_.result(ev);

    // Pushes to every resource that asked for the list, the requester too.
    xml::Element* iq = ev.arena.make_element("iq", xml::kNsClient);
    iq->set_attr("type", "set");
    iq->set_attr("id", "blocklist-push-" + std::to_string(++push_id_));
    xml::Element* cmd = iq->add_child(block ? "block" : "unblock", kNsBlocking);
    for (const std::string& jid : jids) {
      cmd->add_child("item", kNsBlocking)->set_attr("jid", jid);
    }
    // A copy: a delivery may end a stream and change the router's list.
    const std::vector<xmpp::Session*> sessions = ctx_.router().resources(ev.from.bare());
    for (xmpp::Session* s2 : sessions) {
      if (interested_.count(s2) == 0) continue;
      iq->set_attr("to", s2->jid().full());
      s2->deliver(*iq);
    }

    if (block && !reports.empty()) {
      // Reported even if the JID was blocked before (a second report with
      // new words); ignored when the spam module is switched off.
      if (auto* reporting = ctx_.find<SpamReportService>()) {
        for (const auto& [jid, report] : reports)
          reporting->report(ev.from, jid, report.reason, report.text);
      }
    }
    if (block) {
      after_block(user, changed);
    } else {
      after_unblock(user, changed);
    }
  }

  // XEP-0191 §3.3: the contact gets unavailable presence from the user,
  // if it was allowed to see the user's presence (subscription 'from', or
  // directed presence).
  void after_block(const std::string& user, const std::vector<std::string>& added) {
    auto* presence = ctx_.find<PresenceService>();
    if (presence == nullptr) return;
    const auto* roster = ctx_.find<RosterService>();
    const std::string bare = user + "@" + ctx_.domain();
    for (const std::string& text : added) {
      auto jid = xmpp::Jid::parse(text);
      if (!jid || !jid->has_local()) continue;  // domains: no list of contacts to walk
      const std::string contact = jid->bare();
      bool sees = roster != nullptr && has_from(roster->subscription(user, contact));
      for (xmpp::Session* s : ctx_.router().resources(bare)) {
        for (const std::string& d : s->directed()) {
          sees = sees || d == text || d == contact;
        }
      }
      if (!sees) continue;
      // Our own inbound hook would drop it now that the block is stored.
      bypass_sender_block_ = true;
      presence->send_unavailable(user, *jid);
      bypass_sender_block_ = false;
    }
  }

  // XEP-0191 §3.4: the contact gets the user's current presence again if
  // its subscription allows it (the hooks still drop it if another item,
  // e.g. the domain, keeps the contact blocked).
  void after_unblock(const std::string& user, const std::vector<std::string>& removed) {
    auto* presence = ctx_.find<PresenceService>();
    const auto* roster = ctx_.find<RosterService>();
    if (presence == nullptr || roster == nullptr) return;
    for (const std::string& text : removed) {
      auto jid = xmpp::Jid::parse(text);
      if (!jid || !jid->has_local()) continue;
      if (!has_from(roster->subscription(user, jid->bare()))) continue;
      presence->send_current_presence(user, *jid);
    }
  }

  Context& ctx_;
  // Sessions that asked for the blocklist (XEP-0191 §3.2); removed when
  // they close, so no pointer outlives its session.
  std::unordered_set<xmpp::Session*> interested_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_set<std::string, Hash, std::equal_to<>> blockers_;
  uint64_t push_id_ = 0;
  bool bypass_sender_block_ = false;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<BlockingModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_blocking;
const ModuleDef kModule_blocking = {
    "blocking", "XEP-0191 blocking command", {{"blocklist"}}, {}, &create};

}  // namespace hearth::modules
