#include "modules/host.h"

#include <stdlib.h>

#include <algorithm>
#include <charconv>

#include <sodium.h>

#include "core/log.h"
#include "modules/registry.h"
#include "modules/services.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

int kind_index(std::string_view name) {
  if (name == "message") return static_cast<int>(Kind::kMessage);
  if (name == "presence") return static_cast<int>(Kind::kPresence);
  return static_cast<int>(Kind::kIq);
}

template <class H>
void insert_sorted(std::vector<H>& list, H hook) {
  // Higher priority first; equal priorities keep registration order.
  auto pos = std::find_if(list.begin(), list.end(),
                          [&](const H& h) { return h.priority < hook.priority; });
  list.insert(pos, std::move(hook));
}

int parse_priority(const xml::Element& presence) {
  const xml::Element* p = presence.child("priority");
  if (p == nullptr) return 0;
  std::string text = p->text();
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc() && end == text.data() + text.size() && value >= -128 && value <= 127)
    return value;
  return 0;
}

}  // namespace

IqReply Context::reply_to(const IqEvent& ev) {
  IqReply r;
  r.id = std::string(ev.iq.attr("id"));
  r.to = ev.from.full();
  r.from = std::string(ev.iq.attr("to"));
  return r;
}

Host::Host(const Deps& deps)
    : config_(deps.config),
      loop_(deps.loop),
      router_(deps.router),
      db_(deps.db),
      accounts_(deps.accounts),
      event_arena_(4096),
      scratch_(1024) {
  domain_jid_ = xmpp::Jid::parse(config_->domain).value();
}

Host::~Host() {
  for (auto& [id, p] : pending_iq_)
    loop_->cancel_timer(p.timer);
  pending_iq_.clear();
  // Modules may hold services of each other: destroy in reverse order.
  while (!modules_.empty())
    modules_.pop_back();
}

std::vector<const ModuleDef*> Host::enabled_modules(const config::Config& config) {
  std::vector<const ModuleDef*> out;
  for (const ModuleDef* m : all_modules())
    if (config.module_enabled(m->name)) out.push_back(m);
  return out;
}

std::vector<std::string> Host::all_tables() {
  std::vector<std::string> out;
  for (const ModuleDef* m : all_modules())
    for (const TableDef& t : m->tables)
      out.emplace_back(t.name);
  return out;
}

Result<std::unique_ptr<Host>> Host::create(const Deps& deps) {
  std::unique_ptr<Host> host(new Host(deps));
  if (deps.db != nullptr) {
    for (const std::string& name : all_tables()) {
      Result<storage::Dbi> dbi = deps.db->db(name);
      if (!dbi.ok()) return dbi.error();
      host->tables_.emplace(name, dbi.value());
    }
  }
  std::vector<const ModuleDef*> enabled =
      deps.modules != nullptr ? *deps.modules : enabled_modules(*deps.config);
  for (const ModuleDef* m : enabled) {
    for (const char* need : m->requires_modules) {
      bool on = std::any_of(enabled.begin(), enabled.end(),
                            [&](const ModuleDef* e) { return std::string_view(e->name) == need; });
      if (!on) {
        return hearth::make_error(
            std::string("module '") + m->name + "' needs module '" + need +
            "', which [modules] disabled switches off; enable it or disable '" + m->name + "' too");
      }
    }
  }
  for (const ModuleDef* m : enabled) {
    host->creating_ = m->name;
    host->modules_.push_back(m->create(*host));
  }
  host->creating_.clear();
  return host;
}

// ---- registration ----

void Host::on_stanza(Kind kind, Phase phase, int priority, StanzaHandler handler) {
  insert_sorted(stanza_hooks_[static_cast<int>(kind)][static_cast<int>(phase)],
                Hook<StanzaHandler>{priority, std::move(handler)});
}

void Host::on_iq(std::string_view ns, std::string_view types, unsigned targets, IqHandler handler,
                 bool advertise) {
  for (std::string_view type : {std::string_view("get"), std::string_view("set")}) {
    if (types.find(type) == std::string_view::npos) continue;
    std::string key = std::string(ns) + " " + std::string(type);
    IqHandlers& h = iq_[key];
    auto claim = [&](unsigned bit, IqHandler& slot) {
      if ((targets & bit) == 0) return;
      if (slot) {
        // Two modules claiming one IQ is a build error, found at start-up.
        HEARTH_ERROR("modules", "IQ %s claimed twice (module %s)", key.c_str(), creating_.c_str());
        abort();
      }
      slot = handler;
    };
    claim(kIqHost, h.host);
    claim(kIqSelf, h.self);
    claim(kIqAccount, h.account);
    iq_list_.push_back({std::string(ns), std::string(type), targets, advertise, creating_});
  }
  if (advertise) {
    if (targets & kIqHost) add_disco_feature(DiscoTarget::kServer, std::string(ns));
    if (targets & (kIqSelf | kIqAccount)) add_disco_feature(DiscoTarget::kAccount, std::string(ns));
  }
}

void Host::on_session(SessionEvent event, int priority, SessionHandler handler) {
  insert_sorted(session_hooks_[static_cast<int>(event)],
                Hook<SessionHandler>{priority, std::move(handler)});
}

void Host::on_account(AccountEvent event, int priority, AccountHandler handler) {
  insert_sorted(account_hooks_[static_cast<int>(event)],
                Hook<AccountHandler>{priority, std::move(handler)});
}

void Host::on_stream_features(std::function<void(std::string& features)> fn) {
  feature_fns_.push_back(std::move(fn));
}

void Host::add_disco_feature(DiscoTarget target, std::string var) {
  std::vector<std::string>& list = features_[static_cast<int>(target)];
  if (std::find(list.begin(), list.end(), var) == list.end()) list.push_back(std::move(var));
}

void Host::add_disco_identity(DiscoTarget target, DiscoIdentity identity) {
  identities_[static_cast<int>(target)].push_back(std::move(identity));
}

void Host::add_disco_extension(DiscoTarget target, DiscoExtender extender) {
  extenders_[static_cast<int>(target)].push_back(std::move(extender));
}

void Host::add_disco_items(DiscoTarget target, DiscoItemsProvider provider) {
  items_[static_cast<int>(target)].push_back(std::move(provider));
}

void Host::add_disco_node_info(DiscoTarget target, DiscoNodeInfo provider) {
  node_info_[static_cast<int>(target)].push_back(std::move(provider));
}

void Host::on_delivered(int priority, DeliveredHandler handler) {
  insert_sorted(delivered_hooks_, Hook<DeliveredHandler>{priority, std::move(handler)});
}

void Host::on_output(int priority, OutputFilter filter) {
  insert_sorted(output_filters_, Hook<OutputFilter>{priority, std::move(filter)});
}

void Host::on_nonza(std::string_view ns, NonzaHandler handler) {
  if (nonzas_.count(ns) != 0) {
    HEARTH_ERROR("modules", "nonza namespace %.*s claimed twice (module %s)",
                 static_cast<int>(ns.size()), ns.data(), creating_.c_str());
    abort();
  }
  nonzas_.emplace(std::string(ns), std::move(handler));
}

bool Host::disco_items(DiscoTarget target, const xmpp::Jid& requester, const xmpp::Jid& entity,
                       std::string_view node, xml::Element& query) const {
  bool known = node.empty();
  for (const DiscoItemsProvider& p : items_[static_cast<int>(target)])
    if (p(requester, entity, node, query)) known = true;
  return known;
}

bool Host::disco_node_info(DiscoTarget target, const xmpp::Jid& requester, const xmpp::Jid& entity,
                           std::string_view node, xml::Element& query) const {
  for (const DiscoNodeInfo& p : node_info_[static_cast<int>(target)])
    if (p(requester, entity, node, query)) return true;
  return false;
}

const std::vector<std::string>& Host::disco_features(DiscoTarget target) const {
  return features_[static_cast<int>(target)];
}

const std::vector<DiscoIdentity>& Host::disco_identities(DiscoTarget target) const {
  return identities_[static_cast<int>(target)];
}

void Host::disco_extend(DiscoTarget target, xml::Element& query) const {
  for (const DiscoExtender& e : extenders_[static_cast<int>(target)])
    e(query);
}

void Host::provide_raw(std::string_view name, void* service) {
  services_[std::string(name)] = service;
}

void* Host::find_raw(std::string_view name) const {
  auto it = services_.find(name);
  return it == services_.end() ? nullptr : it->second;
}

storage::Dbi Host::table(std::string_view name) const {
  auto it = tables_.find(name);
  if (it == tables_.end()) {
    HEARTH_ERROR("modules", "table %.*s is not declared by any module",
                 static_cast<int>(name.size()), name.data());
    abort();
  }
  return it->second;
}

// ---- accounts ----

void Host::set_users(std::vector<std::string> names) {
  users_.clear();
  for (std::string& n : names)
    users_.insert(std::move(n));
}

void Host::user_created(const std::string& localpart) {
  bool fresh = users_.insert(localpart).second;
  if (!fresh) return;
  for (auto& h : account_hooks_[static_cast<int>(AccountEvent::kCreated)])
    h.fn(localpart);
}

void Host::create_account(const std::string& localpart, std::string password,
                          std::function<void(Status)> done) {
  if (accounts_ == nullptr) {
    sodium_memzero(password.data(), password.size());
    done(hearth::make_error("no account backend"));
    return;
  }
  accounts_->create(localpart, std::move(password),
                    [this, localpart, done = std::move(done)](Status s) {
                      if (s.ok()) user_created(localpart);
                      done(std::move(s));
                    });
}

PreauthStream* Host::preauth_stream(uint64_t id) {
  return preauth_lookup_ ? preauth_lookup_(id) : nullptr;
}

void Host::on_preauth_iq(std::string_view ns, PreauthIqHandler handler) {
  if (preauth_iq_.count(ns) != 0) {
    HEARTH_ERROR("modules", "pre-auth IQ %.*s claimed twice (module %s)",
                 static_cast<int>(ns.size()), ns.data(), creating_.c_str());
    abort();
  }
  preauth_iq_.emplace(std::string(ns), std::move(handler));
}

void Host::on_preauth_features(std::function<void(std::string& features)> fn) {
  preauth_features_.push_back(std::move(fn));
}

void Host::preauth_features(std::string& out) {
  for (auto& fn : preauth_features_)
    fn(out);
}

bool Host::preauth_iq(PreauthStream& stream, xml::Element& iq) {
  xml::Element* payload = iq.first_child();
  if (payload == nullptr) return false;
  auto it = preauth_iq_.find(std::string_view(payload->ns));
  if (it == preauth_iq_.end()) return false;
  ++depth_;
  it->second(stream, iq);
  if (--depth_ == 0) event_arena_.reset();
  return true;
}

bool Host::user_exists(std::string_view localpart) const {
  return users_.find(localpart) != users_.end();
}

bool Host::is_admin(const xmpp::Jid& jid) const {
  std::string bare = jid.bare();
  const std::vector<std::string>& admins = config_->admins;
  if (std::find(admins.begin(), admins.end(), bare) != admins.end()) return true;
  // Accounts made admins by an admin invite (issue 6).
  if (jid.domain() != config_->domain || !jid.has_local()) return false;
  const RoleService* roles = find<RoleService>();
  return roles != nullptr && roles->is_admin(jid.local());
}

void Host::set_password(const std::string& localpart, std::string password,
                        std::function<void(Status)> done) {
  if (accounts_ == nullptr) {
    done(hearth::make_error("no account backend"));
    return;
  }
  accounts_->set_password(localpart, std::move(password), std::move(done));
}

void Host::remove_account(const std::string& localpart, std::function<void(Status)> done) {
  if (accounts_ == nullptr) {
    done(hearth::make_error("no account backend"));
    return;
  }
  accounts_->remove(localpart, [this, localpart, done = std::move(done)](Status s) {
    bool ok = s.ok();
    // The requester hears of it first (XEP-0077 §3.2), then its sessions close.
    done(std::move(s));
    if (ok) account_removed(localpart);
  });
}

void Host::account_removed(const std::string& localpart) {
  users_.erase(localpart);
  HEARTH_INFO("modules", "account %s removed: closing its sessions and deleting its data",
              localpart.c_str());
  std::string bare = localpart + "@" + config_->domain;
  std::vector<xmpp::Session*> sessions = router_->resources(bare);  // a copy: kick unbinds
  for (xmpp::Session* s : sessions)
    s->kick("not-authorized", "the account has been removed");
  for (auto& h : account_hooks_[static_cast<int>(AccountEvent::kDeleted)])
    h.fn(localpart);
  if (db_ != nullptr) {
    if (Status st = wipe_user(*db_, localpart); !st.ok())
      HEARTH_ERROR("modules", "deleting the data of %s: %s", localpart.c_str(),
                   st.error().message.c_str());
  }
}

Status Host::wipe_user(storage::Env& db, std::string_view localpart) {
  return wipe_user(db, localpart, all_tables());
}

Status Host::wipe_user(storage::Env& db, std::string_view localpart,
                       const std::vector<std::string>& tables) {
  std::string prefix = user_key(localpart);
  return db.write([&](storage::WriteTxn& txn) -> Status {
    for (const std::string& name : tables) {
      Result<storage::Dbi> dbi = db.db(name);
      if (!dbi.ok()) return dbi.error();
      std::vector<std::string> keys;
      Status s = txn.for_each(dbi.value(), prefix, [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return true;
      });
      if (!s.ok()) return s;
      for (const std::string& k : keys)
        txn.del(dbi.value(), k);
    }
    return txn.status();
  });
}

void Host::reload(const config::Config& config) {
  config_ = &config;
  for (auto& m : modules_)
    m->apply_config(config);
}

void Host::end_turn() {
  for (auto& fn : turn_end_)
    fn();
  scratch_.reset();
}

// ---- sessions ----

void Host::session_bound(xmpp::Session& session) {
  notify(SessionEvent::kBound, session);
}

void Host::session_closed(xmpp::Session& session) {
  notify(SessionEvent::kClosed, session);
  // Nobody will answer the server's questions to this session any more.
  std::string full = session.jid().full();
  std::vector<std::function<void(const xml::Element*)>> failed;
  for (auto it = pending_iq_.begin(); it != pending_iq_.end();) {
    if (it->second.to == full) {
      loop_->cancel_timer(it->second.timer);
      failed.push_back(std::move(it->second.done));
      it = pending_iq_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& done : failed)
    done(nullptr);
}

void Host::session_resumed(xmpp::Session& session) {
  notify(SessionEvent::kResumed, session);
}

bool Host::filter_output(xmpp::Session& session, const xml::Element& stanza) {
  for (auto& f : output_filters_)
    if (f.fn(session, stanza) == HookResult::kHandled) return true;
  return false;
}

bool Host::nonza(xmpp::Session& session, const xml::Element& element) {
  auto it = nonzas_.find(std::string_view(element.ns));
  if (it == nonzas_.end()) return false;
  ++depth_;
  it->second(session, element);
  if (--depth_ == 0) event_arena_.reset();
  return true;
}

void Host::send_iq(xml::Element& iq, std::function<void(const xml::Element* reply)> done,
                   uint32_t timeout_ms) {
  std::string to(iq.attr("to"));
  xmpp::Session* target = router_->find(to);
  if (target == nullptr) {
    done(nullptr);
    return;
  }
  std::string id = "hearth-q" + std::to_string(++iq_seq_);
  iq.set_attr("id", id);
  PendingIq& p = pending_iq_[id];
  p.to = to;
  p.done = std::move(done);
  p.timer = loop_->add_timer(timeout_ms, [this, id] {
    auto it = pending_iq_.find(id);
    if (it == pending_iq_.end()) return;
    auto fn = std::move(it->second.done);
    pending_iq_.erase(it);
    fn(nullptr);
  });
  target->deliver(iq);
}

bool Host::answer_pending(const xml::Element& iq, const xmpp::Jid& from) {
  auto it = pending_iq_.find(iq.attr("id"));
  if (it == pending_iq_.end() || it->second.to != from.full()) return false;
  loop_->cancel_timer(it->second.timer);
  auto fn = std::move(it->second.done);
  pending_iq_.erase(it);
  fn(&iq);
  return true;
}

void Host::delivered(StanzaEvent& ev, const std::vector<xmpp::Session*>& recipients) {
  for (auto& h : delivered_hooks_)
    h.fn(ev, recipients);
}

void Host::redeliver_unacked(xml::Element& stanza, const xmpp::Jid& session_jid) {
  if (stanza.name != "message") return;
  Result<xmpp::Jid> from = xmpp::Jid::parse(stanza.attr("from"));
  if (!from.ok() || !user_exists(session_jid.local())) return;
  ++depth_;
  xmpp::Jid bare = session_jid.bare_jid();
  stanza.set_attr("to", bare.full());
  deliver_bare_message(stanza, from.value(), bare, nullptr, false);
  if (--depth_ == 0) event_arena_.reset();
}

void Host::notify(SessionEvent event, xmpp::Session& session) {
  ++depth_;
  for (auto& h : session_hooks_[static_cast<int>(event)])
    h.fn(session);
  if (--depth_ == 0) event_arena_.reset();
}

void Host::stream_features(std::string& out) {
  for (auto& fn : feature_fns_)
    fn(out);
}

// ---- the pipeline ----

HookResult Host::run_hooks(Kind kind, Phase phase, StanzaEvent& ev) {
  for (auto& h : stanza_hooks_[static_cast<int>(kind)][static_cast<int>(phase)])
    if (h.fn(ev) == HookResult::kHandled) return HookResult::kHandled;
  return HookResult::kPass;
}

void Host::route(xml::Element& stanza, xmpp::Session& origin) {
  ++depth_;
  const xmpp::Jid& from = origin.jid();
  std::string_view to_attr = stanza.attr("to");
  bool has_to = !to_attr.empty();
  xmpp::Jid to;
  bool ok = true;
  if (has_to) {
    Result<xmpp::Jid> parsed = xmpp::Jid::parse(to_attr);
    if (!parsed.ok()) {
      refuse(stanza, &origin, "modify", "jid-malformed");
      ok = false;
    } else {
      to = std::move(parsed.value());
      std::string full = to.full();
      stanza.set_attr("to", full);  // deliver with the normalised address
    }
  }
  Kind kind = static_cast<Kind>(kind_index(stanza.name));
  if (ok) {
    StanzaEvent ev{stanza, &origin, from, to, arena()};
    if (run_hooks(kind, Phase::kOutbound, ev) == HookResult::kHandled) ok = false;
  }
  if (ok) {
    if (kind == Kind::kIq) {
      route_iq(stanza, origin, to, has_to);
    } else if (!has_to) {
      if (kind == Kind::kPresence) {
        // Own presence with no presence module: track availability only.
        std::string_view type = stanza.attr("type");
        if (type.empty()) {
          origin.set_presence(true, parse_priority(stanza));
        } else if (type == "unavailable") {
          origin.set_presence(false, 0);
        }
      } else {
        // RFC 6120 §10.3.1: a message without 'to' is for the account itself.
        xmpp::Jid self = from.bare_jid();
        deliver_local(stanza, from, self, &origin);
      }
    } else if (to.domain() != config_->domain) {
      // Federation (s2s) arrives with its own issue.
      if (kind != Kind::kPresence) refuse(stanza, &origin, "cancel", "remote-server-not-found");
    } else if (!to.has_local()) {
      // Messages and presence to the server itself: nothing consumes them.
      if (to.has_resource() && kind == Kind::kMessage)
        refuse(stanza, &origin, "cancel", "service-unavailable");
    } else {
      deliver_local(stanza, from, to, &origin);
    }
  }
  if (--depth_ == 0) event_arena_.reset();
}

const IqHandler* Host::find_iq(std::string_view ns, std::string_view type, IqTarget target) const {
  std::string key;
  key.reserve(ns.size() + 1 + type.size());
  key.append(ns).append(" ").append(type);
  auto it = iq_.find(key);
  if (it == iq_.end()) return nullptr;
  const IqHandler* h = target == kIqHost   ? &it->second.host
                       : target == kIqSelf ? &it->second.self
                                           : &it->second.account;
  return *h ? h : nullptr;
}

void Host::route_iq(xml::Element& iq, xmpp::Session& origin, const xmpp::Jid& to, bool has_to) {
  std::string_view type = iq.attr("type");
  const xmpp::Jid& from = origin.jid();
  if (type != "get" && type != "set") {
    // Results and errors: only a full JID has someone waiting for them,
    // or the server (or an account's service, e.g. PEP) for send_iq().
    if ((!has_to || !to.has_resource()) && answer_pending(iq, from)) return;
    if (has_to && to.domain() == config_->domain && to.has_local() && to.has_resource())
      deliver_local(iq, from, to, &origin);
    return;
  }
  if (has_to && to.domain() != config_->domain) {
    refuse(iq, &origin, "cancel", "remote-server-not-found");
    return;
  }
  if (has_to && to.has_resource()) {
    if (to.has_local()) {
      deliver_local(iq, from, to, &origin);
    } else {
      refuse(iq, &origin, "cancel", "service-unavailable");
    }
    return;
  }
  xml::Element* payload = iq.first_child();
  if (payload == nullptr) {
    refuse(iq, &origin, "modify", "bad-request");
    return;
  }
  const IqHandler* handler = nullptr;
  IqTarget target = kIqHost;
  xmpp::Jid target_jid;
  if (!has_to || (to.has_local() && to.local() == from.local())) {
    target_jid = from.bare_jid();
    handler = find_iq(payload->ns, type, kIqSelf);
    target = kIqSelf;
    if (handler == nullptr) {
      handler = find_iq(payload->ns, type, kIqHost);
      target = kIqHost;
      target_jid = domain_jid_;
    }
  } else if (!to.has_local()) {
    handler = find_iq(payload->ns, type, kIqHost);
    target_jid = domain_jid_;
  } else {
    // RFC 6121 §8.5.2.1.3 / §8.5.1: the server answers for the account.
    if (!user_exists(to.local())) {
      refuse(iq, &origin, "cancel", "service-unavailable");
      return;
    }
    StanzaEvent ev{iq, &origin, from, to, arena()};
    if (run_hooks(Kind::kIq, Phase::kInbound, ev) == HookResult::kHandled) return;
    handler = find_iq(payload->ns, type, kIqAccount);
    target = kIqAccount;
    target_jid = to;
  }
  if (handler == nullptr) {
    // RFC 6120 §8.4: an IQ nobody handles.
    refuse(iq, &origin, "cancel", "service-unavailable");
    return;
  }
  IqEvent ev{iq, *payload, &origin, from, target_jid, target, arena()};
  (*handler)(ev);
}

void Host::send(xml::Element& stanza) {
  Result<xmpp::Jid> to = xmpp::Jid::parse(stanza.attr("to"));
  // A broadcast sends one stanza to many contacts from one address: its
  // 'from' is parsed once.
  std::string_view from_attr = stanza.attr("from");
  if (!send_from_ok_ || from_attr != send_from_text_) {
    Result<xmpp::Jid> from = xmpp::Jid::parse(from_attr);
    send_from_ok_ = from.ok();
    send_from_text_.assign(from_attr);
    if (send_from_ok_) send_from_ = std::move(from.value());
  }
  if (!to.ok() || !send_from_ok_ || to->domain() != config_->domain || !to->has_local()) {
    HEARTH_DEBUG("modules", "dropped a generated <%s/> for '%.*s'", stanza.name.c_str(),
                 static_cast<int>(stanza.attr("to").size()), stanza.attr("to").data());
    return;
  }
  ++depth_;
  const xmpp::Jid from = send_from_;  // a copy: a nested send() may change the cache
  deliver_local(stanza, from, to.value(), nullptr);
  if (--depth_ == 0) event_arena_.reset();
}

void Host::deliver_local(xml::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                         xmpp::Session* origin) {
  Kind kind = static_cast<Kind>(kind_index(stanza.name));
  std::string_view type = stanza.attr("type");
  bool request = kind == Kind::kIq && (type == "get" || type == "set");
  if (!user_exists(to.local())) {
    // RFC 6121 §8.5.1: no such account.
    if (origin != nullptr && ((kind == Kind::kMessage && type != "error") || request))
      refuse(stanza, origin, "cancel", "service-unavailable");
    return;
  }
  StanzaEvent ev{stanza, origin, from, to, arena()};
  if (run_hooks(kind, Phase::kInbound, ev) == HookResult::kHandled) return;
  if (to.has_resource()) {
    std::string full = to.full();
    if (xmpp::Session* target = router_->find(full)) {
      target->deliver(stanza);
      if (kind == Kind::kMessage) {
        std::vector<xmpp::Session*> one{target};
        delivered(ev, one);
      }
      return;
    }
    // RFC 6121 §8.5.3.2: no such resource.
    if (kind == Kind::kMessage) {
      if (type.empty() || type == "normal" || type == "chat") {
        xmpp::Jid bare = to.bare_jid();
        stanza.set_attr("to", bare.full());
        deliver_bare_message(stanza, from, bare, origin, true);
      } else if (type == "groupchat" && origin != nullptr) {
        refuse(stanza, origin, "cancel", "service-unavailable");
      }
    } else if (request && origin != nullptr) {
      refuse(stanza, origin, "cancel", "service-unavailable");
    }
    return;  // presence to an unavailable resource is dropped
  }
  if (kind == Kind::kPresence) {
    // RFC 6121 §4.6.3 etc.: to the account's available resources.
    for (xmpp::Session* s : router_->resources(to.bare()))
      if (s->available()) s->deliver(stanza);
    return;
  }
  if (kind == Kind::kIq) {
    if (request && origin != nullptr) refuse(stanza, origin, "cancel", "service-unavailable");
    return;
  }
  deliver_bare_message(stanza, from, to, origin, true);
}

void Host::deliver_bare_message(xml::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                                xmpp::Session* origin, bool copies) {
  std::string_view type = stanza.attr("type");
  if (type == "error") return;  // RFC 6121 §8.5.2.1.1: silently ignored
  if (type == "groupchat") {
    if (origin != nullptr) refuse(stanza, origin, "cancel", "service-unavailable");
    return;
  }
  const std::vector<xmpp::Session*>& sessions = router_->resources(to.bare());
  std::vector<xmpp::Session*> got;
  if (type == "headline") {
    // RFC 6121 §8.5.2.1.1: every available resource with non-negative priority.
    for (xmpp::Session* s : sessions)
      if (s->available() && s->priority() >= 0) got.push_back(s);
  } else {
    // normal and chat: the available resources of highest (non-negative)
    // priority, all of them on a tie (as Prosody does).
    int best = -1;
    for (xmpp::Session* s : sessions)
      if (s->available() && s->priority() > best) best = s->priority();
    if (best >= 0) {
      for (xmpp::Session* s : sessions)
        if (s->available() && s->priority() == best) got.push_back(s);
    }
  }
  StanzaEvent ev{stanza, origin, from, to, arena()};
  if (!got.empty()) {
    for (xmpp::Session* s : got)
      s->deliver(stanza);
    if (copies) delivered(ev, got);
    return;
  }
  if (run_hooks(Kind::kMessage, Phase::kOffline, ev) == HookResult::kHandled) return;
  // RFC 6121 §8.5.2.2.1: no storage: chat/normal bounce, headline is dropped.
  if (type != "headline" && origin != nullptr)
    refuse(stanza, origin, "cancel", "service-unavailable");
}

// ---- replies ----

xml::Element* Host::error_reply(const xml::Element& stanza, std::string_view type,
                                std::string_view condition, std::string_view text,
                                const xml::Element* app, xml::Arena& a) {
  xml::Element* reply = a.make_element(stanza.name, xml::kNsClient);
  std::string_view to = stanza.attr("to");
  reply->set_attr("from", to.empty() ? std::string_view(config_->domain) : to);
  reply->set_attr("to", stanza.attr("from"));
  if (stanza.has_attr("id")) reply->set_attr("id", stanza.attr("id"));
  reply->set_attr("type", "error");
  xml::Element* error = reply->add_child("error", xml::kNsClient);
  error->set_attr("type", type);
  error->add_child(condition, kNsStanzas);
  if (!text.empty()) error->add_child("text", kNsStanzas)->add_text(text);
  if (app != nullptr) {
    xml::Element* copy = error->add_child(app->name, app->ns);
    for (const xml::Attr& at : app->attrs)
      if (at.ns.empty()) copy->set_attr(at.name, at.value);
  }
  return reply;
}

void Host::refuse(const xml::Element& stanza, xmpp::Session* origin, std::string_view type,
                  std::string_view condition) {
  // RFC 6120 §8.3.1: an error is never answered with an error, and a
  // result needs no answer.
  std::string_view t = stanza.attr("type");
  if (t == "error" || (stanza.name == "iq" && t == "result")) return;
  deliver_reply(*error_reply(stanza, type, condition, {}, nullptr, arena()), origin);
}

void Host::deliver_reply(xml::Element& reply, xmpp::Session* origin) {
  std::string_view to = reply.attr("to");
  if (origin != nullptr && to == origin->jid().full()) {
    origin->deliver(reply);
    return;
  }
  if (xmpp::Session* s = router_->find(to)) s->deliver(reply);
}

void Host::bounce(const xml::Element& stanza, std::string_view type, std::string_view condition,
                  std::string_view text, const xml::Element* app) {
  if (stanza.attr("type") == "error") return;  // RFC 6120 §8.3.1
  if (stanza.name == "iq" && stanza.attr("type") == "result") return;
  deliver_reply(*error_reply(stanza, type, condition, text, app, arena()), nullptr);
}

void Host::result(const IqEvent& ev, const xml::Element* payload) {
  xml::Element* reply = ev.arena.make_element("iq", xml::kNsClient);
  if (ev.iq.has_attr("to")) reply->set_attr("from", ev.iq.attr("to"));
  reply->set_attr("to", ev.iq.attr("from"));
  reply->set_attr("id", ev.iq.attr("id"));
  reply->set_attr("type", "result");
  if (payload != nullptr) {
    // Serialised as a child: the tree is shared, not copied.
    reply->children.push_back(
        xml::Node{const_cast<xml::Element*>(payload), std::pmr::string(reply->resource())});
  }
  deliver_reply(*reply, ev.origin);
}

void Host::error(const IqEvent& ev, std::string_view type, std::string_view condition,
                 std::string_view text, const xml::Element* app) {
  deliver_reply(*error_reply(ev.iq, type, condition, text, app, ev.arena), ev.origin);
}

void Host::result(const IqReply& to, const xml::Element* payload) {
  xml::Element* reply = scratch_.make_element("iq", xml::kNsClient);
  if (!to.from.empty()) reply->set_attr("from", to.from);
  reply->set_attr("to", to.to);
  reply->set_attr("id", to.id);
  reply->set_attr("type", "result");
  if (payload != nullptr)
    reply->children.push_back(
        xml::Node{const_cast<xml::Element*>(payload), std::pmr::string(reply->resource())});
  deliver_reply(*reply, nullptr);
}

void Host::error(const IqReply& to, std::string_view type, std::string_view condition,
                 std::string_view text) {
  xml::Element* reply = scratch_.make_element("iq", xml::kNsClient);
  reply->set_attr("from",
                  to.from.empty() ? std::string_view(config_->domain) : std::string_view(to.from));
  reply->set_attr("to", to.to);
  reply->set_attr("id", to.id);
  reply->set_attr("type", "error");
  xml::Element* error = reply->add_child("error", xml::kNsClient);
  error->set_attr("type", type);
  error->add_child(condition, kNsStanzas);
  if (!text.empty()) error->add_child("text", kNsStanzas)->add_text(text);
  deliver_reply(*reply, nullptr);
}

}  // namespace hearth::modules
