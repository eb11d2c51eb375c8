#include "xmpp/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hearth::xmpp {
namespace {

class FakeSession : public Session {
 public:
  explicit FakeSession(std::string full) : jid_(Jid::parse(full).value()) {}
  const Jid& jid() const override { return jid_; }
  void deliver(const xml::Element& stanza) override {
    std::string out;
    xml::serialize(stanza, &out);
    received.push_back(out);
  }
  void deliver_raw(std::string_view xml) override { received.emplace_back(xml); }
  void kick(std::string_view condition, std::string_view) override {
    kicked = std::string(condition);
  }
  std::vector<std::string> received;
  std::string kicked;

 private:
  Jid jid_;
};

class RouterTest : public ::testing::Test {
 protected:
  xml::Element* stanza(std::string_view name, std::string_view from, std::string_view to,
                       std::string_view type = {}) {
    xml::Element* e = arena_.make_element(name, xml::kNsClient);
    e->set_attr("from", from);
    if (!to.empty()) e->set_attr("to", to);
    if (!type.empty()) e->set_attr("type", type);
    e->set_attr("id", "x1");
    return e;
  }
  Router router_{"example.org"};
  xml::Arena arena_;
};

TEST_F(RouterTest, BindReplacesTheSameFullJidAndKeepsOthers) {
  FakeSession a("alice@example.org/phone"), b("alice@example.org/laptop"),
      a2("alice@example.org/phone");
  EXPECT_EQ(router_.bind(&a), nullptr);
  EXPECT_EQ(router_.bind(&b), nullptr);
  EXPECT_EQ(router_.bind(&a2), &a);
  EXPECT_EQ(router_.session_count(), 2u);
  EXPECT_EQ(router_.find("alice@example.org/phone"), &a2);
  router_.unbind(&a2);
  router_.unbind(&b);
  EXPECT_EQ(router_.session_count(), 0u);
  EXPECT_TRUE(router_.resources("alice@example.org").empty());
}

TEST_F(RouterTest, MessageToFullJidIsDelivered) {
  FakeSession a("alice@example.org/phone"), b("bob@example.org/pc");
  router_.bind(&a);
  router_.bind(&b);
  xml::Element* m = stanza("message", "alice@example.org/phone", "Bob@Example.org/pc", "chat");
  m->add_child("body", xml::kNsClient)->add_text("hi");
  router_.route(*m, a);
  ASSERT_EQ(b.received.size(), 1u);
  EXPECT_NE(b.received[0].find("<body>hi</body>"), std::string::npos);
  EXPECT_NE(b.received[0].find("to='bob@example.org/pc'"), std::string::npos);
  EXPECT_TRUE(a.received.empty());
}

TEST_F(RouterTest, MessageToBareJidGoesToAvailableNonNegativeResources) {
  FakeSession a("alice@example.org/phone"), b1("bob@example.org/one"), b2("bob@example.org/two"),
      b3("bob@example.org/three");
  for (auto* s : {&a, &b1, &b2, &b3})
    router_.bind(s);
  b1.set_presence(true, 0);
  b2.set_presence(true, -1);
  // b3 never sent presence
  router_.route(*stanza("message", "alice@example.org/phone", "bob@example.org", "chat"), a);
  EXPECT_EQ(b1.received.size(), 1u);
  EXPECT_TRUE(b2.received.empty());
  EXPECT_TRUE(b3.received.empty());
  EXPECT_TRUE(a.received.empty());
}

TEST_F(RouterTest, MessageToOfflineAccountBouncesServiceUnavailable) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  router_.route(*stanza("message", "alice@example.org/phone", "carol@example.org/x", "chat"), a);
  ASSERT_EQ(a.received.size(), 1u);
  EXPECT_NE(a.received[0].find("type='error'"), std::string::npos);
  EXPECT_NE(a.received[0].find("<service-unavailable"), std::string::npos);
  EXPECT_NE(a.received[0].find("from='carol@example.org/x'"), std::string::npos);
}

TEST_F(RouterTest, ErrorsAreNeverAnsweredWithErrors) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  router_.route(*stanza("message", "alice@example.org/phone", "carol@example.org", "error"), a);
  router_.route(*stanza("iq", "alice@example.org/phone", "carol@example.org/r", "error"), a);
  EXPECT_TRUE(a.received.empty());
}

TEST_F(RouterTest, MalformedAndRemoteAddressesGetErrors) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  router_.route(*stanza("message", "alice@example.org/phone", "@bad", "chat"), a);
  router_.route(*stanza("message", "alice@example.org/phone", "bob@elsewhere.net", "chat"), a);
  ASSERT_EQ(a.received.size(), 2u);
  EXPECT_NE(a.received[0].find("<jid-malformed"), std::string::npos);
  EXPECT_NE(a.received[1].find("<remote-server-not-found"), std::string::npos);
}

TEST_F(RouterTest, ServerAnswersPingDiscoAndRefusesUnknownIq) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  xml::Element* ping = stanza("iq", "alice@example.org/phone", "example.org", "get");
  ping->add_child("ping", kNsPing);
  router_.route(*ping, a);
  xml::Element* disco = stanza("iq", "alice@example.org/phone", "example.org", "get");
  disco->add_child("query", kNsDiscoInfo);
  router_.route(*disco, a);
  xml::Element* unknown = stanza("iq", "alice@example.org/phone", "example.org", "get");
  unknown->add_child("query", "urn:example:nothing");
  router_.route(*unknown, a);
  ASSERT_EQ(a.received.size(), 3u);
  EXPECT_EQ(a.received[0],
            "<iq from='example.org' to='alice@example.org/phone' id='x1' type='result'/>");
  EXPECT_NE(a.received[1].find("category='server'"), std::string::npos);
  EXPECT_NE(a.received[1].find("var='urn:xmpp:ping'"), std::string::npos);
  EXPECT_NE(a.received[2].find("<service-unavailable"), std::string::npos);
}

TEST_F(RouterTest, IqToMissingResourceIsServiceUnavailable) {
  FakeSession a("alice@example.org/phone");
  router_.bind(&a);
  xml::Element* iq = stanza("iq", "alice@example.org/phone", "bob@example.org/gone", "get");
  iq->add_child("query", "jabber:iq:version");
  router_.route(*iq, a);
  ASSERT_EQ(a.received.size(), 1u);
  EXPECT_NE(a.received[0].find("<service-unavailable"), std::string::npos);
}

TEST_F(RouterTest, InitialPresenceIsBroadcastToOwnResourcesAndSetsPriority) {
  FakeSession a1("alice@example.org/one"), a2("alice@example.org/two");
  router_.bind(&a1);
  router_.bind(&a2);
  a2.set_presence(true, 0);
  xml::Element* p = stanza("presence", "alice@example.org/one", "");
  p->add_child("priority", xml::kNsClient)->add_text("5");
  router_.route(*p, a1);
  EXPECT_TRUE(a1.available());
  EXPECT_EQ(a1.priority(), 5);
  EXPECT_EQ(a1.received.size(), 1u);
  EXPECT_EQ(a2.received.size(), 1u);
  xml::Element* u = stanza("presence", "alice@example.org/one", "", "unavailable");
  router_.route(*u, a1);
  EXPECT_FALSE(a1.available());
  EXPECT_EQ(a2.received.size(), 2u);
}

}  // namespace
}  // namespace hearth::xmpp
