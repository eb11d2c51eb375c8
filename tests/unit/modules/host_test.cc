#include "modules/host.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "module_fixture.h"

namespace hearth::modules {
namespace {

using test::FakeSession;

// What the test module saw; it registers through the real Context API.
struct Seen {
  std::vector<std::string> log;
  HookResult inbound = HookResult::kPass;
  HookResult offline = HookResult::kPass;
};
Seen* g_seen = nullptr;

class TestModule : public Module {
 public:
  explicit TestModule(Context& ctx) {
    ctx.on_iq("urn:test:self", "get", kIqSelf, [&ctx](IqEvent& ev) {
      g_seen->log.push_back("self " + ev.to.full());
      ctx.result(ev);
    });
    ctx.on_iq("urn:test:host", "get,set", kIqHost, [&ctx](IqEvent& ev) {
      g_seen->log.push_back("host " + ev.to.full());
      ctx.error(ev, "modify", "not-acceptable", "nope");
    });
    ctx.on_iq(
        "urn:test:account", "get", kIqAccount,
        [&ctx](IqEvent& ev) {
          g_seen->log.push_back("account " + ev.to.full());
          ctx.result(ev);
        },
        false);
    ctx.on_stanza(Kind::kMessage, Phase::kInbound, kPriorityDefault, [](StanzaEvent& ev) {
      g_seen->log.push_back("inbound " + ev.to.full());
      return g_seen->inbound;
    });
    ctx.on_stanza(Kind::kMessage, Phase::kInbound, kPriorityFirewall, [](StanzaEvent& ev) {
      g_seen->log.push_back("firewall " + ev.to.full());
      return HookResult::kPass;
    });
    ctx.on_stanza(Kind::kMessage, Phase::kOffline, kPriorityDefault, [](StanzaEvent& ev) {
      g_seen->log.push_back("offline " + ev.to.full());
      return g_seen->offline;
    });
    ctx.on_account(AccountEvent::kDeleted, 0, [](std::string_view user) {
      g_seen->log.push_back("deleted " + std::string(user));
    });
    ctx.on_session(SessionEvent::kClosed, 0,
                   [](xmpp::Session& s) { g_seen->log.push_back("closed " + s.jid().full()); });
  }
};

std::unique_ptr<Module> create_test(Context& ctx) {
  return std::make_unique<TestModule>(ctx);
}

const ModuleDef kTestModule = {"test", "test module", {}, {}, &create_test};

class FakeAccounts : public AccountBackend {
 public:
  void set_password(const std::string& user, std::string,
                    std::function<void(Status)> done) override {
    calls.push_back("passwd " + user);
    done(Status{});
  }
  void remove(const std::string& user, std::function<void(Status)> done) override {
    calls.push_back("remove " + user);
    done(Status{});
  }
  void create(const std::string& user, std::string, std::function<void(Status)> done) override {
    calls.push_back("create " + user);
    done(Status{});
  }
  std::vector<std::string> calls;
};

class HostTest : public test::HostFixture {
 protected:
  void SetUp() override {
    g_seen = &seen_;
    modules_ = {&kTestModule};
    ASSERT_NO_FATAL_FAILURE(start_host(&accounts_));
    host_->set_users({"alice", "bob"});
  }
  xml::Element* stanza(std::string_view name, std::string_view from, std::string_view to,
                       std::string_view type = {}) {
    xml::Element* e = arena_.make_element(name, xml::kNsClient);
    e->set_attr("from", from);
    if (!to.empty()) e->set_attr("to", to);
    if (!type.empty()) e->set_attr("type", type);
    e->set_attr("id", "x1");
    return e;
  }
  xml::Element* iq(std::string_view from, std::string_view to, std::string_view type,
                   std::string_view ns) {
    xml::Element* e = stanza("iq", from, to, type);
    e->add_child("query", ns);
    return e;
  }

  Seen seen_;
  FakeAccounts accounts_;
};

TEST_F(HostTest, MessageToFullJidIsDeliveredAfterInboundHooksInPriorityOrder) {
  FakeSession a("alice@example.org/phone"), b("bob@example.org/pc");
  router_.bind(&a);
  router_.bind(&b);
  xml::Element* m = stanza("message", "alice@example.org/phone", "Bob@Example.org/pc", "chat");
  m->add_child("body", xml::kNsClient)->add_text("hi");
  host_->route(*m, a);
  ASSERT_EQ(b.received.size(), 1u);
  EXPECT_TRUE(b.got("<body>hi</body>"));
  EXPECT_TRUE(b.got("to='bob@example.org/pc'"));
  EXPECT_TRUE(a.received.empty());
  EXPECT_EQ(seen_.log, (std::vector<std::string>{"firewall bob@example.org/pc",
                                                 "inbound bob@example.org/pc"}));
}

TEST_F(HostTest, HandledInboundHookStopsDelivery) {
  FakeSession a("alice@example.org/phone"), b("bob@example.org/pc");
  router_.bind(&a);
  router_.bind(&b);
  seen_.inbound = HookResult::kHandled;
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org/pc", "chat"), a);
  EXPECT_TRUE(b.received.empty());
  EXPECT_TRUE(a.received.empty());
}

TEST_F(HostTest, BareMessageGoesToHighestNonNegativePriority) {
  FakeSession a("alice@example.org/phone"), b1("bob@example.org/one"), b2("bob@example.org/two"),
      b3("bob@example.org/three"), b4("bob@example.org/four");
  for (auto* s : {&a, &b1, &b2, &b3, &b4})
    router_.bind(s);
  b1.set_presence(true, 5);
  b2.set_presence(true, 1);
  b3.set_presence(true, 5);
  // b4 never sent presence
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "chat"), a);
  EXPECT_EQ(b1.received.size(), 1u);
  EXPECT_TRUE(b2.received.empty());
  EXPECT_EQ(b3.received.size(), 1u);
  EXPECT_TRUE(b4.received.empty());
  // A headline goes to every non-negative resource.
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "headline"), a);
  EXPECT_EQ(b1.received.size(), 2u);
  EXPECT_EQ(b2.received.size(), 1u);
  EXPECT_TRUE(a.received.empty());
}

TEST_F(HostTest, UndeliverableMessageGoesToOfflineHooksThenBounces) {
  FakeSession a("alice@example.org/phone"), b("bob@example.org/neg");
  router_.bind(&a);
  router_.bind(&b);
  b.set_presence(true, -1);
  seen_.offline = HookResult::kHandled;
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "chat"), a);
  EXPECT_TRUE(b.received.empty());
  EXPECT_TRUE(a.received.empty());  // stored: the sender hears nothing
  EXPECT_EQ(seen_.log.back(), "offline bob@example.org");
  seen_.offline = HookResult::kPass;
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org/gone", "chat"), a);
  ASSERT_EQ(a.received.size(), 1u);
  EXPECT_TRUE(a.got("<service-unavailable"));
  // Headlines and errors are dropped, groupchat is refused.
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "headline"), a);
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "error"), a);
  EXPECT_EQ(a.received.size(), 1u);
  host_->route(*stanza("message", "alice@example.org/phone", "bob@example.org", "groupchat"), a);
  ASSERT_EQ(a.received.size(), 2u);
  EXPECT_TRUE(a.got("<service-unavailable", 1));
}

TEST_F(HostTest, UnknownAccountAndBadAddresses) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  host_->route(*stanza("message", "alice@example.org/phone", "carol@example.org/x", "chat"), a);
  host_->route(*stanza("presence", "alice@example.org/phone", "carol@example.org", "subscribe"), a);
  host_->route(*stanza("message", "alice@example.org/phone", "@bad", "chat"), a);
  host_->route(*stanza("message", "alice@example.org/phone", "bob@elsewhere.net", "chat"), a);
  host_->route(*stanza("message", "alice@example.org/phone", "carol@example.org", "error"), a);
  ASSERT_EQ(a.received.size(), 3u);
  EXPECT_TRUE(a.got("<service-unavailable", 0));
  EXPECT_TRUE(a.got("from='carol@example.org/x'", 0));
  EXPECT_TRUE(a.got("<jid-malformed", 1));
  EXPECT_TRUE(a.got("<remote-server-not-found", 2));
  EXPECT_TRUE(seen_.log.empty());  // no hook saw a stanza for a missing account
}

TEST_F(HostTest, IqTargetsSelfHostAccountAndNobody) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  host_->route(*iq("alice@example.org/phone", "", "get", "urn:test:self"), a);
  host_->route(*iq("alice@example.org/phone", "alice@example.org", "get", "urn:test:self"), a);
  host_->route(*iq("alice@example.org/phone", "", "get", "urn:test:host"), a);  // falls back
  host_->route(*iq("alice@example.org/phone", "example.org", "set", "urn:test:host"), a);
  host_->route(*iq("alice@example.org/phone", "bob@example.org", "get", "urn:test:account"), a);
  host_->route(*iq("alice@example.org/phone", "bob@example.org", "get", "urn:test:self"), a);
  host_->route(*iq("alice@example.org/phone", "example.org", "get", "urn:test:none"), a);
  host_->route(*iq("alice@example.org/phone", "carol@example.org", "get", "urn:test:account"), a);
  host_->route(*iq("alice@example.org/phone", "bob@example.org/gone", "get", "urn:test:x"), a);
  host_->route(*iq("alice@example.org/phone", "example.org", "result", "urn:test:host"), a);
  EXPECT_EQ(seen_.log, (std::vector<std::string>{"self alice@example.org", "self alice@example.org",
                                                 "host example.org", "host example.org",
                                                 "account bob@example.org"}));
  ASSERT_EQ(a.received.size(), 9u);
  EXPECT_EQ(a.received[0], "<iq to='alice@example.org/phone' id='x1' type='result'/>");
  EXPECT_EQ(a.received[1],
            "<iq from='alice@example.org' to='alice@example.org/phone' id='x1' type='result'/>");
  EXPECT_TRUE(a.got("<not-acceptable", 2));
  EXPECT_TRUE(a.got("<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nope</text>", 3));
  EXPECT_TRUE(a.got("type='result'", 4));
  for (size_t i = 5; i < 9; ++i)
    EXPECT_TRUE(a.got("<service-unavailable", i)) << a.received[i];
}

TEST_F(HostTest, AdvertisedIqNamespacesBecomeDiscoFeatures) {
  const auto& server = host_->disco_features(DiscoTarget::kServer);
  const auto& account = host_->disco_features(DiscoTarget::kAccount);
  EXPECT_NE(std::find(server.begin(), server.end(), "urn:test:host"), server.end());
  EXPECT_NE(std::find(account.begin(), account.end(), "urn:test:self"), account.end());
  EXPECT_EQ(std::find(account.begin(), account.end(), "urn:test:account"), account.end());
  // One registration row per (namespace, type).
  EXPECT_EQ(host_->iq_registrations().size(), 4u);
}

TEST_F(HostTest, OwnPresenceWithoutModuleTracksAvailability) {
  FakeSession a("alice@example.org/one");
  router_.bind(&a);
  xml::Element* p = stanza("presence", "alice@example.org/one", "");
  p->add_child("priority", xml::kNsClient)->add_text("5");
  host_->route(*p, a);
  EXPECT_TRUE(a.available());
  EXPECT_EQ(a.priority(), 5);
  host_->route(*stanza("presence", "alice@example.org/one", "", "unavailable"), a);
  EXPECT_FALSE(a.available());
}

TEST_F(HostTest, RemovedAccountIsKickedAnnouncedAndForgotten) {
  FakeSession a("alice@example.org/one"), b("bob@example.org/pc");
  router_.bind(&a);
  router_.bind(&b);
  bool done = false;
  host_->remove_account("alice", [&](Status s) {
    EXPECT_TRUE(s.ok());
    done = true;
  });
  EXPECT_TRUE(done);
  EXPECT_EQ(accounts_.calls, (std::vector<std::string>{"remove alice"}));
  EXPECT_EQ(a.kicked, "not-authorized");
  EXPECT_TRUE(b.kicked.empty());
  EXPECT_EQ(seen_.log.back(), "deleted alice");
  EXPECT_FALSE(host_->user_exists("alice"));
  EXPECT_TRUE(host_->user_exists("bob"));
}

TEST_F(HostTest, AdminsFromTheIniAreRecognisedByBareJid) {
  config_.admins = {"alice@example.org"};
  EXPECT_TRUE(host_->is_admin(xmpp::Jid::parse("Alice@example.org/phone").value()));
  EXPECT_TRUE(host_->is_admin(xmpp::Jid::parse("alice@example.org").value()));
  EXPECT_FALSE(host_->is_admin(xmpp::Jid::parse("bob@example.org/pc").value()));
  EXPECT_FALSE(host_->is_admin(xmpp::Jid::parse("example.org").value()));
}

TEST(HostWipe, DeletesEveryKeyOfTheUserAndNothingElse) {
  test::TempEnv env;
  ASSERT_NO_FATAL_FAILURE(env.open("hearth-host", {"t1", "t2"}));
  storage::Env& db = *env;
  ASSERT_TRUE(db.write([&](storage::WriteTxn& txn) -> Status {
                  for (const char* t : {"t1", "t2"}) {
                    storage::Dbi d = db.db(t).value();
                    txn.put(d, user_key("al", "x"), "1");
                    txn.put(d, user_key("al"), "2");
                    txn.put(d, user_key("alice", "x"), "3");  // a longer name, same start
                    txn.put(d, user_key("bob", "al"), "4");
                  }
                  return txn.status();
                }).ok());
  ASSERT_TRUE(Host::wipe_user(db, "al", {"t1", "t2"}).ok());
  Result<storage::ReadTxn> txn = db.read();
  ASSERT_TRUE(txn.ok());
  for (const char* t : {"t1", "t2"}) {
    std::vector<std::string> keys;
    ASSERT_TRUE(txn->for_each(db.db(t).value(), "",
                              [&](std::string_view k, std::string_view) {
                                keys.emplace_back(k);
                                return true;
                              })
                    .ok());
    EXPECT_EQ(keys, (std::vector<std::string>{user_key("alice", "x"), user_key("bob", "al")}));
  }
  txn->abort();
}

}  // namespace
}  // namespace hearth::modules
