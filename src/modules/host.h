// The module host: the hook registry, the enabled module instances and the
// stanza pipeline between the c2s streams and the router's session table
// (ARCHITECTURE.md §2-3). It implements Context for the modules.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "modules/module.h"
#include "xmpp/router.h"

namespace hearth::modules {

// Account operations that only the auth worker may perform.
class AccountBackend {
 public:
  virtual ~AccountBackend() = default;
  virtual void set_password(const std::string& localpart, std::string password,
                            std::function<void(Status)> done) = 0;
  virtual void remove(const std::string& localpart, std::function<void(Status)> done) = 0;
  virtual void create(const std::string& localpart, std::string password,
                      std::function<void(Status)> done) = 0;
};

// One IQ registration, for `hearth check` and the disco test.
struct IqRegistration {
  std::string ns;
  std::string type;  // "get" or "set"
  unsigned targets;
  bool advertised;
  std::string module;
};

class Host final : public Context {
 public:
  struct Deps {
    const config::Config* config = nullptr;
    core::Loop* loop = nullptr;
    xmpp::Router* router = nullptr;
    storage::Env* db = nullptr;
    AccountBackend* accounts = nullptr;
    // Tests: exactly these modules instead of the registry's enabled ones.
    const std::vector<const ModuleDef*>* modules = nullptr;
  };
  // Creates the modules that the configuration enables, in registry order.
  // Fails when an enabled module requires a disabled one.
  static Result<std::unique_ptr<Host>> create(const Deps& deps);
  ~Host() override;

  // Names of every table of every compiled-in module (enabled or not: data
  // of a module switched off is still deleted with its account).
  static std::vector<std::string> all_tables();
  // Deletes every key of `localpart` from every table of `db` (which must
  // have all_tables() open). Used here and by `hearth user del` offline.
  static Status wipe_user(storage::Env& db, std::string_view localpart);
  static Status wipe_user(storage::Env& db, std::string_view localpart,
                          const std::vector<std::string>& tables);
  // The modules the configuration enables, for `hearth check`.
  static std::vector<const ModuleDef*> enabled_modules(const config::Config& config);

  // ---- from the streams ----
  // A stanza from a bound session, 'from' stamped and types checked.
  void route(xml::Element& stanza, xmpp::Session& origin) override;
  void session_bound(xmpp::Session& session);
  // Before the session is unbound (its stream is ending).
  void session_closed(xmpp::Session& session);
  // XEP-0198: the session continues on a new connection.
  void session_resumed(xmpp::Session& session);
  void stream_features(std::string& out);
  // Session::deliver() asks before it writes: true if a module held or
  // dropped the stanza (CSI).
  bool filter_output(xmpp::Session& session, const xml::Element& stanza);
  // A nonza from a bound session: true if a module took it.
  bool nonza(xmpp::Session& session, const xml::Element& element);
  // Pre-authentication: features to offer, and an IQ (true if taken).
  void preauth_features(std::string& out);
  bool preauth_iq(PreauthStream& stream, xml::Element& iq);
  void set_preauth_lookup(std::function<PreauthStream*(uint64_t)> lookup) {
    preauth_lookup_ = std::move(lookup);
  }
  // XEP-0198 §5: a message the client never acknowledged before its
  // session ended; `stanza` was addressed to `session_jid`. Delivered again
  // to the account's bare JID (another resource, else offline storage),
  // without the inbound hooks (it was archived and filtered once already).
  void redeliver_unacked(xml::Element& stanza, const xmpp::Jid& session_jid);

  // ---- from the reactor ----
  void set_users(std::vector<std::string> names);
  void user_created(const std::string& localpart);
  // The account is gone from accounts.mdb (XEP-0077 or `hearth user del`).
  void account_removed(const std::string& localpart);
  void reload(const config::Config& config);
  void end_turn();

  const std::vector<IqRegistration>& iq_registrations() const { return iq_list_; }
  size_t user_count() const { return users_.size(); }

  // ---- Context ----
  void on_stanza(Kind kind, Phase phase, int priority, StanzaHandler handler) override;
  void on_iq(std::string_view ns, std::string_view types, unsigned targets, IqHandler handler,
             bool advertise) override;
  void on_session(SessionEvent event, int priority, SessionHandler handler) override;
  void on_account(AccountEvent event, int priority, AccountHandler handler) override;
  void on_stream_features(std::function<void(std::string& features)> fn) override;
  void add_disco_feature(DiscoTarget target, std::string var) override;
  void add_disco_identity(DiscoTarget target, DiscoIdentity identity) override;
  void add_disco_extension(DiscoTarget target, DiscoExtender extender) override;
  void add_disco_items(DiscoTarget target, DiscoItemsProvider provider) override;
  void add_disco_node_info(DiscoTarget target, DiscoNodeInfo provider) override;
  void on_delivered(int priority, DeliveredHandler handler) override;
  void on_output(int priority, OutputFilter filter) override;
  void on_nonza(std::string_view ns, NonzaHandler handler) override;
  void on_preauth_iq(std::string_view ns, PreauthIqHandler handler) override;
  void on_turn_end(std::function<void()> fn) override { turn_end_.push_back(std::move(fn)); }
  void on_preauth_features(std::function<void(std::string& features)> fn) override;
  void create_account(const std::string& localpart, std::string password,
                      std::function<void(Status)> done) override;
  PreauthStream* preauth_stream(uint64_t id) override;
  bool disco_items(DiscoTarget target, const xmpp::Jid& requester, const xmpp::Jid& entity,
                   std::string_view node, xml::Element& query) const override;
  bool disco_node_info(DiscoTarget target, const xmpp::Jid& requester, const xmpp::Jid& entity,
                       std::string_view node, xml::Element& query) const override;
  void send_iq(xml::Element& iq, std::function<void(const xml::Element* reply)> done,
               uint32_t timeout_ms) override;
  const std::vector<std::string>& disco_features(DiscoTarget target) const override;
  const std::vector<DiscoIdentity>& disco_identities(DiscoTarget target) const override;
  void disco_extend(DiscoTarget target, xml::Element& query) const override;
  const config::Config& config() const override { return *config_; }
  const std::string& domain() const override { return config_->domain; }
  core::Loop& loop() override { return *loop_; }
  xmpp::Router& router() override { return *router_; }
  storage::Env& db() override { return *db_; }
  storage::Dbi table(std::string_view name) const override;
  bool user_exists(std::string_view localpart) const override;
  bool is_admin(const xmpp::Jid& jid) const override;
  xml::Arena& scratch() override { return scratch_; }
  void send(xml::Element& stanza) override;
  void notify(SessionEvent event, xmpp::Session& session) override;
  void result(const IqEvent& ev, const xml::Element* payload) override;
  void error(const IqEvent& ev, std::string_view type, std::string_view condition,
             std::string_view text, const xml::Element* app) override;
  void result(const IqReply& to, const xml::Element* payload) override;
  void error(const IqReply& to, std::string_view type, std::string_view condition,
             std::string_view text) override;
  void bounce(const xml::Element& stanza, std::string_view type, std::string_view condition,
              std::string_view text, const xml::Element* app) override;
  void set_password(const std::string& localpart, std::string password,
                    std::function<void(Status)> done) override;
  void remove_account(const std::string& localpart, std::function<void(Status)> done) override;

 protected:
  void provide_raw(std::string_view name, void* service) override;
  void* find_raw(std::string_view name) const override;

 private:
  explicit Host(const Deps& deps);

  template <class F>
  struct Hook {
    int priority;
    F fn;
  };
  struct IqHandlers {
    IqHandler host, self, account;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  HookResult run_hooks(Kind kind, Phase phase, StanzaEvent& ev);
  void route_iq(xml::Element& iq, xmpp::Session& origin, const xmpp::Jid& to, bool has_to);
  // A message/presence/iq for a local JID (account exists or not).
  void deliver_local(xml::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                     xmpp::Session* origin);
  // `copies`: run the on_delivered hooks (carbons) after delivery.
  void deliver_bare_message(xml::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                            xmpp::Session* origin, bool copies);
  // Answers `stanza` with a stanza error (never an error or a result).
  void refuse(const xml::Element& stanza, xmpp::Session* origin, std::string_view type,
              std::string_view condition);
  // Sends a reply built by the server to its (local, full) 'to'.
  void deliver_reply(xml::Element& reply, xmpp::Session* origin);
  xml::Element* error_reply(const xml::Element& stanza, std::string_view type,
                            std::string_view condition, std::string_view text,
                            const xml::Element* app, xml::Arena& arena);
  const IqHandler* find_iq(std::string_view ns, std::string_view type, IqTarget target) const;
  // A result/error to the server or an account's bare JID: true if it
  // answered a send_iq() request.
  bool answer_pending(const xml::Element& iq, const xmpp::Jid& from);
  void delivered(StanzaEvent& ev, const std::vector<xmpp::Session*>& recipients);
  xml::Arena& arena() { return depth_ > 0 ? event_arena_ : scratch_; }

  const config::Config* config_;
  core::Loop* loop_;
  xmpp::Router* router_;
  storage::Env* db_;
  AccountBackend* accounts_;
  xmpp::Jid domain_jid_;
  std::string creating_;  // module being created (for registrations)

  std::vector<Hook<StanzaHandler>> stanza_hooks_[3][3];                    // [kind][phase]
  std::unordered_map<std::string, IqHandlers, Hash, std::equal_to<>> iq_;  // "ns type"
  std::vector<IqRegistration> iq_list_;
  std::vector<Hook<SessionHandler>> session_hooks_[4];
  std::vector<Hook<DeliveredHandler>> delivered_hooks_;
  std::vector<Hook<OutputFilter>> output_filters_;
  std::unordered_map<std::string, NonzaHandler, Hash, std::equal_to<>> nonzas_;
  std::vector<DiscoItemsProvider> items_[2];
  std::vector<DiscoNodeInfo> node_info_[2];
  struct PendingIq {
    std::string to;  // the full JID asked
    std::function<void(const xml::Element*)> done;
    core::Loop::TimerId timer = 0;
  };
  std::unordered_map<std::string, PendingIq, Hash, std::equal_to<>> pending_iq_;  // by id
  uint64_t iq_seq_ = 0;
  std::vector<Hook<AccountHandler>> account_hooks_[2];
  std::unordered_map<std::string, PreauthIqHandler, Hash, std::equal_to<>> preauth_iq_;
  std::vector<std::function<void(std::string&)>> preauth_features_;
  std::function<PreauthStream*(uint64_t)> preauth_lookup_;
  std::vector<std::function<void()>> turn_end_;
  std::vector<std::function<void(std::string&)>> feature_fns_;
  std::vector<std::string> features_[2];
  std::vector<DiscoIdentity> identities_[2];
  std::vector<DiscoExtender> extenders_[2];
  std::unordered_map<std::string, void*, Hash, std::equal_to<>> services_;
  std::unordered_map<std::string, storage::Dbi, Hash, std::equal_to<>> tables_;
  std::unordered_set<std::string, Hash, std::equal_to<>> users_;
  std::vector<std::unique_ptr<Module>> modules_;

  // send(): the last 'from' parsed, and its JID.
  std::string send_from_text_;
  xmpp::Jid send_from_;
  bool send_from_ok_ = false;

  int depth_ = 0;           // nesting of route()/send() calls
  xml::Arena event_arena_;  // replies built while handling a stanza
  xml::Arena scratch_;      // reset at the end of the turn
};

}  // namespace hearth::modules
