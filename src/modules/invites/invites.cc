// In-band registration before authentication (XEP-0077 §3.1) gated by
// [registration] mode, invites (XEP-0401, XEP-0379) and the admin role
// that admin invites give. See invite.h for the tables.
//
// The flow Conversations uses (XEP-0401 §5):
//   <iq type='set'><preauth xmlns='urn:xmpp:pars:0' token='T'/></iq>  -> result (token kept)
//   <iq type='get'><query xmlns='jabber:iq:register'/></iq>           -> the fields
//   <iq type='set'><query ...><username/><password/></query></iq>     -> account created
// then SASL on the same stream. The token may also come in the register
// query itself (a <preauth/> child, or a 'token' field of a XEP-0004 form).
// An invite is consumed only once its account exists.
#include <sodium.h>
#include <time.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/audit.h"
#include "core/log.h"
#include "ipc/messages.h"
#include "modules/adhoc/adhoc.h"
#include "modules/invites/invite.h"
#include "modules/module.h"
#include "modules/services.h"
#include "storage/codec.h"
#include "xmpp/jid.h"
#include "xmpp/password_policy.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr std::string_view kNodeCreateAccount = "urn:xmpp:invite#create-account";
constexpr std::string_view kNodeInvite = "urn:xmpp:invite#invite";
constexpr uint64_t kSweepMs = 3600 * 1000;
constexpr uint64_t kHour = 3600;
constexpr size_t kMaxTrackedIps = 10000;
constexpr uint32_t kMaxUses = 1000;
constexpr size_t kTokenLogChars = 6;

uint64_t now_s() {
  return static_cast<uint64_t>(::time(nullptr));
}

std::string iso8601(uint64_t t) {
  if (t == 0) return {};
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Only the start of a token goes into logs (issue 6 audit rules).
std::string_view token_prefix(std::string_view token) {
  return token.substr(0, kTokenLogChars);
}

void wipe_text(xml::Element& e) {
  for (xml::Node& n : e.children)
    if (n.element == nullptr && !n.text.empty()) sodium_memzero(n.text.data(), n.text.size());
}

std::string duration_text(uint64_t seconds) {
  if (seconds == 0) return "never";
  if (seconds % (7 * 86400) == 0) return std::to_string(seconds / (7 * 86400)) + "w";
  if (seconds % 86400 == 0) return std::to_string(seconds / 86400) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

class Invites final : public Module, public RoleService {
 public:
  explicit Invites(Context& ctx) : ctx_(ctx) {
    invites_ = ctx.table(kInvitesTable);
    roles_ = ctx.table(kRolesTable);
    ctx.on_preauth_features([this](std::string& features) {
      if (mode() == Mode::kClosed) return;
      features.append("<register xmlns='http://jabber.org/features/iq-register'/>");
      // What Prosody offers for XEP-0401 clients (Conversations looks for them).
      features.append("<register xmlns='urn:xmpp:invite'/>");
      features.append("<register xmlns='urn:xmpp:ibr-token:0'/>");
    });
    ctx.on_preauth_iq(kNsPars, [this](PreauthStream& s, xml::Element& iq) { on_preauth(s, iq); });
    ctx.on_preauth_iq(kNsIqRegister,
                      [this](PreauthStream& s, xml::Element& iq) { on_register(s, iq); });
    ctx.provide<RoleService>(this);
    if (AdhocService* adhoc = ctx.find<AdhocService>()) add_commands(*adhoc);
    was_open_ = mode() == Mode::kOpen;
    if (was_open_) HEARTH_WARN("invites", "open registration: anyone can create accounts");
    sweep();
    sweep_timer_ = ctx.loop().add_timer(kSweepMs, [this] { periodic_sweep(); });
  }

  ~Invites() override {
    if (sweep_timer_ != 0) ctx_.loop().cancel_timer(sweep_timer_);
  }

  // A reload (SIGHUP) may open registration: say so again.
  void apply_config(const config::Config& config) override {
    if (config.registration.mode == "open" && !was_open_)
      HEARTH_WARN("invites", "open registration: anyone can create accounts");
    was_open_ = config.registration.mode == "open";
  }

  // ---- RoleService ----
  bool is_admin(std::string_view localpart) const override {
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return false;
    auto got = txn->get(roles_, user_key(localpart, "admin"));
    return got && got.value();
  }

 private:
  enum class Mode { kClosed, kInvite, kOpen };
  Mode mode() const {
    const std::string& m = ctx_.config().registration.mode;
    if (m == "open") return Mode::kOpen;
    if (m == "closed") return Mode::kClosed;
    return Mode::kInvite;
  }

  // ---- replies on a pre-authentication stream ----
  xml::Element* reply(const xml::Element& iq, std::string_view type) {
    xml::Element* r = ctx_.scratch().make_element("iq", xml::kNsClient);
    if (iq.has_attr("id")) r->set_attr("id", iq.attr("id"));
    r->set_attr("type", type);
    return r;
  }
  void send_result(PreauthStream& stream, const xml::Element& iq, xml::Element* payload = nullptr) {
    xml::Element* r = reply(iq, "result");
    if (payload != nullptr)
      r->children.push_back(xml::Node{payload, std::pmr::string(r->resource())});
    stream.send(*r);
  }
  static void send_error(PreauthStream& stream, xml::Arena& arena, std::string_view id,
                         std::string_view type, std::string_view condition, std::string_view text) {
    xml::Element* r = arena.make_element("iq", xml::kNsClient);
    if (!id.empty()) r->set_attr("id", id);
    r->set_attr("type", "error");
    xml::Element* e = r->add_child("error", xml::kNsClient);
    e->set_attr("type", type);
    e->add_child(condition, kNsStanzas);
    if (!text.empty()) e->add_child("text", kNsStanzas)->add_text(text);
    stream.send(*r);
  }
  void send_error(PreauthStream& stream, const xml::Element& iq, std::string_view type,
                  std::string_view condition, std::string_view text = {}) {
    send_error(stream, ctx_.scratch(), iq.attr("id"), type, condition, text);
  }

  // A usable invite for `token`, or the reason there is none.
  Result<Invite> find_invite(std::string_view token) {
    Result<std::optional<Invite>> got = load_invite(ctx_.db(), invites_, token);
    if (!got) {
      HEARTH_WARN("invites", "reading an invite: %s", got.error().message.c_str());
      return make_error("the invite cannot be read now");
    }
    if (!got.value()) return make_error("the invite is not valid");
    Invite& inv = *got.value();
    InviteState state = invite_state(inv, now_s());
    if (state != InviteState::kUsable) return make_error(std::string(invite_state_text(state)));
    // Registrations in flight count as uses until they end.
    auto it = in_flight_uses_.find(inv.token);
    if (it != in_flight_uses_.end() && it->second >= inv.uses_left)
      return make_error(std::string(invite_state_text(InviteState::kUsedUp)));
    return std::move(inv);
  }

  void refused(const PreauthStream& stream, std::string_view token, std::string_view reason) {
    audit::event("invite_refused",
                 {{"ip", stream.peer_ip()}, {"invite", token_prefix(token)}, {"reason", reason}});
  }

  // XEP-0401 §5: <preauth/> before registration.
  void on_preauth(PreauthStream& stream, xml::Element& iq) {
    std::string_view type = iq.attr("type");
    if (type == "result" || type == "error") return;
    xml::Element* p = iq.first_child();
    if (type != "set" || p == nullptr || p->name != "preauth" || !p->has_attr("token")) {
      send_error(stream, iq, "modify", "bad-request");
      return;
    }
    if (mode() == Mode::kClosed) {
      send_error(stream, iq, "cancel", "service-unavailable", "registration is closed");
      return;
    }
    std::string token(p->attr("token"));
    Result<Invite> inv = find_invite(token);
    if (!inv) {
      refused(stream, token, inv.error().message);
      send_error(stream, iq, "cancel", "item-not-found", inv.error().message);
      return;
    }
    stream.preauth_token() = token;
    send_result(stream, iq);
  }

  void on_register(PreauthStream& stream, xml::Element& iq) {
    std::string_view type = iq.attr("type");
    if (type == "result" || type == "error") return;
    xml::Element* q = iq.first_child();
    if ((type != "get" && type != "set") || q == nullptr || q->name != "query") {
      send_error(stream, iq, "modify", "bad-request");
      return;
    }
    if (mode() == Mode::kClosed) {
      // XEP-0077 §3.1: the server offers no in-band registration.
      if (xml::Element* pw = q->child("password", kNsIqRegister)) wipe_text(*pw);
      send_error(stream, iq, "cancel", "service-unavailable", "registration is closed");
      return;
    }
    if (type == "get") {
      registration_form(stream, iq);
      return;
    }
    register_account(stream, iq, *q);
  }

  // XEP-0077 §3.1: what to fill in.
  void registration_form(PreauthStream& stream, const xml::Element& iq) {
    xml::Element* q = ctx_.scratch().make_element("query", kNsIqRegister);
    std::string reserved;
    std::string text = "Choose a username and password for use with this service.";
    if (!stream.preauth_token().empty()) {
      if (Result<Invite> inv = find_invite(stream.preauth_token()); inv) reserved = inv->username;
    } else if (mode() == Mode::kInvite) {
      text += " Registration is by invitation only: open your invite link first.";
    }
    q->add_child("instructions", kNsIqRegister)->add_text(text);
    xml::Element* u = q->add_child("username", kNsIqRegister);
    if (!reserved.empty()) u->add_text(reserved);
    q->add_child("password", kNsIqRegister);
    send_result(stream, iq, q);
  }

  // Per-IP limit of open registration (in memory).
  bool ip_over_limit(const std::string& ip, uint64_t now) {
    auto it = per_ip_.find(ip);
    if (it == per_ip_.end()) return false;
    std::deque<uint64_t>& times = it->second;
    while (!times.empty() && now - times.front() >= kHour)
      times.pop_front();
    if (times.empty()) {
      per_ip_.erase(it);
      return false;
    }
    return times.size() >= ctx_.config().registration.max_per_ip_per_hour;
  }
  bool count_ip(const std::string& ip, uint64_t now) {
    if (per_ip_.size() >= kMaxTrackedIps && per_ip_.find(ip) == per_ip_.end()) {
      for (auto it = per_ip_.begin(); it != per_ip_.end();) {
        while (!it->second.empty() && now - it->second.front() >= kHour)
          it->second.pop_front();
        it = it->second.empty() ? per_ip_.erase(it) : std::next(it);
      }
      if (per_ip_.size() >= kMaxTrackedIps) return false;
    }
    per_ip_[ip].push_back(now);
    return true;
  }
  void uncount_ip(const std::string& ip) {
    auto it = per_ip_.find(ip);
    if (it == per_ip_.end() || it->second.empty()) return;
    it->second.pop_back();
    if (it->second.empty()) per_ip_.erase(it);
  }

  struct Pending {
    uint64_t stream = 0;
    std::string iq_id;
    std::string user;
    std::string ip;
    std::string token;  // empty: open registration
    bool counted_ip = false;
  };

  void register_account(PreauthStream& stream, xml::Element& iq, xml::Element& q) {
    xml::Element* username = nullptr;
    xml::Element* password = nullptr;
    bool remove = false;
    std::string token;
    std::string form_user;
    std::string secret;
    for (xml::Node& n : q.children) {
      xml::Element* e = n.element;
      if (e == nullptr) continue;
      if (e->ns == kNsIqRegister && e->name == "username" && username == nullptr) {
        username = e;
      } else if (e->ns == kNsIqRegister && e->name == "password" && password == nullptr) {
        password = e;
      } else if (e->ns == kNsIqRegister && e->name == "remove") {
        remove = true;
      } else if (e->ns == kNsPars && e->name == "preauth") {
        token = e->attr("token");
      } else if (e->ns == kNsDataForms && e->name == "x") {
        FormValues values;
        if (parse_form(*e, &values)) {
          form_user = values.get("username");
          if (values.has("token")) token = values.get("token");
          if (values.has("password")) secret = values.get("password");
        }
        // The password in the form's <value/> is wiped with the stanza's
        // other character data below.
        for (xml::Node& f : e->children)
          if (f.element != nullptr)
            for (xml::Node& v : f.element->children)
              if (v.element != nullptr) wipe_text(*v.element);
      }
    }
    if (password != nullptr) {
      secret = password->text();
      wipe_text(*password);
    }
    std::string_view iq_id = iq.attr("id");
    xml::Arena& arena = ctx_.scratch();
    auto fail = [&](std::string_view type, std::string_view cond, std::string_view text) {
      sodium_memzero(secret.data(), secret.size());
      send_error(stream, arena, iq_id, type, cond, text);
    };
    if (remove) {
      fail("cancel", "not-allowed", "not registered");
      return;
    }
    std::string name_in = username != nullptr ? username->text() : form_user;
    if (name_in.empty() || secret.empty()) {
      fail("modify", "not-acceptable", "a username and a password are required");
      return;
    }
    Result<std::string> name = xmpp::normalize_localpart(name_in);
    if (!name) {
      fail("modify", "not-acceptable", "that username is not allowed");
      return;
    }
    if (token.empty()) token = stream.preauth_token();
    std::optional<Invite> invite;
    if (!token.empty()) {
      Result<Invite> inv = find_invite(token);
      if (!inv) {
        refused(stream, token, inv.error().message);
        fail("cancel", "not-allowed", inv.error().message);
        return;
      }
      invite = std::move(inv.value());
    } else if (mode() == Mode::kInvite) {
      refused(stream, {}, "no invite");
      fail("cancel", "not-allowed", "registration on this server is by invitation only");
      return;
    }
    uint64_t now = now_s();
    if (!invite && ip_over_limit(stream.peer_ip(), now)) {
      audit::event("throttled", {{"ip", stream.peer_ip()}, {"what", "registration"}});
      fail("wait", "resource-constraint",
           "too many accounts were registered from your address; try again later");
      return;
    }
    if (invite && !invite->username.empty() && invite->username != *name) {
      fail("modify", "not-acceptable", "this invite is for the username " + invite->username);
      return;
    }
    if (ctx_.user_exists(*name) || creating_.count(*name) != 0) {
      fail("cancel", "conflict", "that username is taken");
      return;
    }
    if (secret.size() > ipc::kMaxPassword) {
      fail("modify", "not-acceptable", "the password is too long");
      return;
    }
    if (Status s =
            xmpp::check_password(secret, *name, ctx_.domain(), ctx_.config().min_password_length);
        !s) {
      fail("modify", "not-acceptable", s.error().message);
      return;
    }
    Pending p;
    p.stream = stream.id();
    p.iq_id = std::string(iq_id);
    p.user = *name;
    p.ip = stream.peer_ip();
    if (invite) {
      p.token = invite->token;
      ++in_flight_uses_[p.token];
    } else {
      if (!count_ip(p.ip, now)) {
        fail("wait", "resource-constraint", "too many registrations; try again later");
        return;
      }
      p.counted_ip = true;
    }
    creating_.insert(p.user);
    std::string user = p.user;
    ctx_.create_account(user, std::move(secret),
                        [this, p = std::move(p)](Status s) { created(p, s); });
  }

  void created(const Pending& p, const Status& s) {
    creating_.erase(p.user);
    if (!p.token.empty()) {
      auto it = in_flight_uses_.find(p.token);
      if (it != in_flight_uses_.end() && --it->second == 0) in_flight_uses_.erase(it);
    }
    PreauthStream* stream = ctx_.preauth_stream(p.stream);
    if (!s) {
      if (p.counted_ip) uncount_ip(p.ip);
      HEARTH_WARN("invites", "registering %s failed: %s", p.user.c_str(),
                  s.error().message.c_str());
      if (stream != nullptr) {
        bool taken = s.error().message.find("already exists") != std::string::npos;
        send_error(*stream, ctx_.scratch(), p.iq_id, taken ? "cancel" : "wait",
                   taken ? "conflict" : "internal-server-error", {});
      }
      return;
    }
    std::optional<Invite> used;
    if (!p.token.empty()) used = consume(p.token, p.user);
    // Who invited whom, and the admin role of an admin invite.
    if (used && (used->admin || !used->inviter.empty())) {
      Status w = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
        if (used->admin) t.put(roles_, user_key(p.user, "admin"), "");
        if (!used->inviter.empty()) t.put(roles_, user_key(p.user, "inviter"), used->inviter);
        return t.status();
      });
      if (!w)
        HEARTH_WARN("invites", "recording the invite of %s: %s", p.user.c_str(),
                    w.error().message.c_str());
    }
    // XEP-0379: the inviter and the new account see each other.
    if (used && !used->inviter.empty() && used->inviter != p.user &&
        ctx_.user_exists(used->inviter)) {
      if (auto* mutual = ctx_.find<MutualSubscriptionService>()) {
        if (Status m = mutual->subscribe_both(used->inviter, p.user); !m)
          HEARTH_WARN("invites", "subscribing %s and %s: %s", used->inviter.c_str(), p.user.c_str(),
                      m.error().message.c_str());
      }
    }
    audit::event("registered", {{"user", p.user},
                                {"ip", p.ip},
                                {"invite", token_prefix(p.token)},
                                {"inviter", used ? std::string_view(used->inviter) : ""},
                                {"admin", used && used->admin ? "true" : "false"}});
    HEARTH_INFO("invites", "registered %s from %s%s", p.user.c_str(), p.ip.c_str(),
                used ? " with an invite" : "");
    if (stream != nullptr) {
      if (stream->preauth_token() == p.token) stream->preauth_token().clear();
      xml::Element* r = ctx_.scratch().make_element("iq", xml::kNsClient);
      r->set_attr("id", p.iq_id);
      r->set_attr("type", "result");
      stream->send(*r);
    }
    if (ctx_.config().registration.notify_admins) notify_admins(p, used);
  }

  // One use of the invite; the last use deletes it.
  std::optional<Invite> consume(const std::string& token, const std::string& user) {
    std::optional<Invite> used;
    std::string key = invite_key(token);
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      used.reset();
      auto got = t.get(invites_, key);
      if (!got) return got.error();
      if (!got.value()) return {};
      Result<Invite> inv = decode_invite(token, **got);
      if (!inv) return inv.error();
      used = *inv;
      if (inv->uses_left <= 1) {
        t.del(invites_, key);
      } else {
        --inv->uses_left;
        t.put(invites_, key, encode_invite(*inv));
      }
      return t.status();
    });
    if (!s) {
      HEARTH_WARN("invites", "using invite %.*s: %s", static_cast<int>(token_prefix(token).size()),
                  token.data(), s.error().message.c_str());
    }
    if (!used) {
      // Deleted meanwhile (e.g. by an admin): the account exists anyway.
      HEARTH_WARN("invites", "the invite that %s registered with is gone", user.c_str());
      return std::nullopt;
    }
    uint32_t left = used->uses_left > 0 ? used->uses_left - 1 : 0;
    std::string left_text = std::to_string(left);
    audit::event("invite_used",
                 {{"invite", token_prefix(token)}, {"user", user}, {"uses_left", left_text, true}});
    return used;
  }

  std::vector<std::string> admin_jids() const {
    std::vector<std::string> out = ctx_.config().admins;
    Result<storage::ReadTxn> txn = ctx_.db().read();
    if (!txn) return out;
    Status s = txn->for_each(roles_, {}, [&](std::string_view key, std::string_view) {
      size_t zero = key.find('\0');
      if (zero != std::string_view::npos && key.substr(zero + 1) == "admin") {
        std::string jid = std::string(key.substr(0, zero)) + "@" + ctx_.domain();
        if (std::find(out.begin(), out.end(), jid) == out.end()) out.push_back(std::move(jid));
      }
      return true;
    });
    (void)s;
    return out;
  }

  void notify_admins(const Pending& p, const std::optional<Invite>& used) {
    std::string jid = p.user + "@" + ctx_.domain();
    std::string text = "New account " + jid + " registered (";
    if (!used) {
      text += "open registration";
    } else if (!used->inviter.empty()) {
      text += "invite from " + used->inviter;
    } else if (used->admin) {
      text += "admin invite";
    } else {
      text += "invite";
    }
    text += ", IP " + p.ip + ")";
    for (const std::string& admin : admin_jids()) {
      if (admin == jid) continue;
      xml::Element* m = ctx_.scratch().make_element("message", xml::kNsClient);
      m->set_attr("from", ctx_.domain());
      m->set_attr("to", admin);
      m->set_attr("type", "chat");
      m->set_attr("id", "registered-" + std::to_string(++message_seq_));
      m->add_child("body", xml::kNsClient)->add_text(text);
      ctx_.send(*m);
    }
  }

  // Expired and used-up invites go.
  void sweep() {
    std::vector<std::string> gone;
    uint64_t now = now_s();
    {
      Result<storage::ReadTxn> txn = ctx_.db().read();
      if (!txn) return;
      std::string prefix = user_key("");
      Status s = txn->for_each(invites_, prefix, [&](std::string_view key, std::string_view value) {
        std::string_view token = key.substr(prefix.size());
        Result<Invite> inv = decode_invite(token, value);
        if (inv && invite_state(*inv, now) != InviteState::kUsable) gone.emplace_back(key);
        return true;
      });
      (void)s;
    }
    if (gone.empty()) return;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      for (const std::string& k : gone)
        t.del(invites_, k);
      return t.status();
    });
    if (!s) HEARTH_WARN("invites", "removing expired invites: %s", s.error().message.c_str());
  }

  void periodic_sweep() {
    sweep();
    sweep_timer_ = ctx_.loop().add_timer(kSweepMs, [this] { periodic_sweep(); });
  }

  // ---- ad-hoc commands (XEP-0401 §6 as Prosody's mod_invites_adhoc) ----
  void add_commands(AdhocService& adhoc) {
    AdhocCommand create;
    create.node = std::string(kNodeCreateAccount);
    create.name = "Create new account invite";
    create.admin_only = true;
    create.form = [this](xml::Arena& arena, const xmpp::Jid&) {
      xml::Element* x = make_form(arena, "form", "Create new account invite",
                                  "An invite link with which someone can register an account.");
      add_field(*x, "uses", "text-single", "Number of accounts it can create", "1");
      add_field(*x, "expires", "text-single", "Valid for (e.g. 7d, 12h; never)",
                duration_text(ctx_.config().registration.invite_expires));
      add_field(*x, "admin", "boolean", "The new account is an admin", "0");
      add_field(*x, "username", "text-single", "Reserve this username (optional)");
      return x;
    };
    create.run = [this](const xmpp::Jid& requester, const FormValues& v, xml::Arena& arena) {
      return create_account_invite(requester, v, arena);
    };
    adhoc.add_command(std::move(create));

    AdhocCommand invite;
    invite.node = std::string(kNodeInvite);
    invite.name = "Invite someone to join you here";
    // As Prosody's allow_user_invites: by default only admins invite.
    invite.admin_only = !ctx_.config().registration.allow_user_invites;
    invite.run = [this](const xmpp::Jid& requester, const FormValues&, xml::Arena& arena) {
      Invite inv;
      inv.inviter = requester.local();
      inv.creator = requester.bare();
      uint64_t expires = ctx_.config().registration.invite_expires;
      return make_invite(std::move(inv), expires, arena);
    };
    adhoc.add_command(std::move(invite));
  }

  AdhocOutcome create_account_invite(const xmpp::Jid& requester, const FormValues& v,
                                     xml::Arena& arena) {
    AdhocOutcome bad;
    bad.error_condition = "bad-request";
    Invite inv;
    inv.creator = requester.bare();
    std::string_view uses = v.get("uses", "1");
    uint64_t n = 0;
    for (char c : uses) {
      if (c < '0' || c > '9' || n > kMaxUses) {
        n = 0;
        break;
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (n == 0 || n > kMaxUses) {
      bad.text = "uses must be a number from 1 to " + std::to_string(kMaxUses);
      return bad;
    }
    inv.uses_left = static_cast<uint32_t>(n);
    uint64_t expires = ctx_.config().registration.invite_expires;
    if (v.has("expires") && !v.get("expires").empty()) {
      Result<uint64_t> d = parse_invite_duration(v.get("expires"));
      if (!d) {
        bad.text = d.error().message;
        return bad;
      }
      expires = *d;
    }
    if (!v.get("admin").empty() && !form_bool(v.get("admin"), &inv.admin)) {
      bad.text = "admin must be true or false";
      return bad;
    }
    if (!v.get("username").empty()) {
      Result<std::string> name = xmpp::normalize_localpart(v.get("username"));
      if (!name) {
        bad.text = "that username is not allowed";
        return bad;
      }
      if (ctx_.user_exists(*name)) {
        bad.error_type = "cancel";
        bad.error_condition = "conflict";
        bad.text = "the account " + *name + " exists";
        return bad;
      }
      inv.username = std::move(*name);
    }
    return make_invite(std::move(inv), expires, arena);
  }

  AdhocOutcome make_invite(Invite inv, uint64_t valid_for, xml::Arena& arena) {
    AdhocOutcome out;
    if (mode() == Mode::kClosed) {
      out.error_type = "cancel";
      out.error_condition = "not-allowed";
      out.text = "registration is closed on this server";
      return out;
    }
    inv.token = new_invite_token();
    inv.created = now_s();
    inv.expires = valid_for == 0 ? 0 : inv.created + valid_for;
    if (Status s = store_invite(ctx_.db(), invites_, inv); !s) {
      HEARTH_WARN("invites", "storing an invite: %s", s.error().message.c_str());
      out.error_type = "wait";
      out.error_condition = "internal-server-error";
      return out;
    }
    std::string uses = std::to_string(inv.uses_left);
    audit::event("invite_created", {{"invite", token_prefix(inv.token)},
                                    {"by", inv.creator},
                                    {"inviter", inv.inviter},
                                    {"username", inv.username},
                                    {"uses", uses, true},
                                    {"admin", inv.admin ? "true" : "false"}});
    std::string uri = invite_uri(inv, ctx_.domain());
    xml::Element* x = make_form(arena, "result", "Invite created");
    add_field(*x, "uri", "text-single", "Invite URI", uri);
    add_field(*x, "token", "text-single", "Token", inv.token);
    add_field(*x, "expire", "text-single", "Valid until", iso8601(inv.expires));
    out.result_form = x;
    out.text = "Invite created: " + uri;
    return out;
  }

  Context& ctx_;
  storage::Dbi invites_ = 0;
  storage::Dbi roles_ = 0;
  core::Loop::TimerId sweep_timer_ = 0;
  std::unordered_map<std::string, std::deque<uint64_t>> per_ip_;
  std::unordered_map<std::string, uint32_t> in_flight_uses_;
  std::unordered_set<std::string> creating_;
  uint64_t message_seq_ = 0;
  bool was_open_ = false;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Invites>(ctx);
}

}  // namespace

extern const ModuleDef kModule_invites;
const ModuleDef kModule_invites = {
    "invites",
    "invite-only registration (XEP-0401, XEP-0379) and in-band registration (XEP-0077)",
    {{kInvitesTable}, {kRolesTable}},
    {"roster", "adhoc"},
    &create};

}  // namespace hearth::modules
