#include "modules/carbons/carbons.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/host.h"
#include "xml/fragment.h"

namespace hearth::modules {

extern const ModuleDef kModule_carbons;

namespace carbons {
namespace {

class CarbonsRules : public ::testing::Test {
 protected:
  const xml::Element& parse(std::string_view text) {
    auto e = xml::parse_fragment(text, arena_);
    EXPECT_TRUE(e.ok()) << text;
    return *e.value();
  }
  bool sent(std::string_view text) {
    return eligible(parse(text), Direction::kSent, "alice@example.org");
  }
  bool received(std::string_view text) {
    return eligible(parse(text), Direction::kReceived, "alice@example.org");
  }
  xml::Arena arena_;
};

TEST_F(CarbonsRules, ChatIsEligibleWithOrWithoutBody) {
  EXPECT_TRUE(sent("<message type='chat' to='bob@example.org'><body>hi</body></message>"));
  EXPECT_TRUE(received("<message type='chat'><body>hi</body></message>"));
  // A chat state alone is still part of the conversation (§8.2).
  EXPECT_TRUE(sent(
      "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
}

TEST_F(CarbonsRules, NormalNeedsABodyOrAnImPayload) {
  EXPECT_TRUE(sent("<message><body>x</body></message>"));
  EXPECT_TRUE(sent("<message type='normal'><body>x</body></message>"));
  EXPECT_FALSE(sent("<message type='normal'/>"));
  EXPECT_FALSE(sent("<message type='normal'><thread>t</thread></message>"));
  EXPECT_FALSE(sent("<message><x xmlns='urn:example:custom'/></message>"));
  EXPECT_TRUE(sent("<message><active xmlns='http://jabber.org/protocol/chatstates'/></message>"));
  EXPECT_TRUE(received("<message><received xmlns='urn:xmpp:receipts' id='a'/></message>"));
  EXPECT_TRUE(received("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='a'/></message>"));
  EXPECT_TRUE(received("<message><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>"));
  EXPECT_TRUE(received("<message><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>"));
}

TEST_F(CarbonsRules, ArchivedByTheAccountCountsOnlyWhenReceivedAndOnlyForThatAccount) {
  const char* own =
      "<message><stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='1'/>"
      "</message>";
  const char* other =
      "<message><stanza-id xmlns='urn:xmpp:sid:0' by='bob@example.org' id='1'/>"
      "</message>";
  EXPECT_TRUE(received(own));
  EXPECT_FALSE(received(other));
  EXPECT_FALSE(sent(own));
}

TEST_F(CarbonsRules, GroupchatHeadlineAreNeverCopiedErrorIs) {
  EXPECT_FALSE(sent("<message type='groupchat'><body>x</body></message>"));
  EXPECT_FALSE(received("<message type='groupchat'><body>x</body></message>"));
  EXPECT_FALSE(sent("<message type='headline'><body>x</body></message>"));
  EXPECT_FALSE(received("<message type='headline'><body>x</body></message>"));
  EXPECT_TRUE(received("<message type='error'><error type='cancel'/></message>"));
  EXPECT_FALSE(received("<message type='bogus'><body>x</body></message>"));
}

TEST_F(CarbonsRules, PrivateAndNoCopyAndCarbonsOfCarbonsAreNotEligible) {
  EXPECT_FALSE(
      sent("<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/>"
           "</message>"));
  EXPECT_FALSE(
      received("<message type='chat'><body>x</body>"
               "<no-copy xmlns='urn:xmpp:hints'/></message>"));
  // Other hints do not matter.
  EXPECT_TRUE(
      received("<message type='chat'><body>x</body>"
               "<no-store xmlns='urn:xmpp:hints'/></message>"));
  EXPECT_FALSE(received("<message type='chat'><received xmlns='urn:xmpp:carbons:2'/></message>"));
  EXPECT_FALSE(sent("<message type='chat'><sent xmlns='urn:xmpp:carbons:2'/></message>"));
  // The same names in another namespace are fine.
  EXPECT_TRUE(received("<message type='chat'><private xmlns='urn:example'/></message>"));
  EXPECT_TRUE(is_carbon(parse("<message><sent xmlns='urn:xmpp:carbons:2'/></message>")));
  EXPECT_TRUE(is_carbon(parse("<message><received xmlns='urn:xmpp:carbons:2'/></message>")));
  EXPECT_FALSE(is_carbon(parse("<message><private xmlns='urn:xmpp:carbons:2'/></message>")));
  EXPECT_FALSE(is_carbon(parse("<message><received xmlns='urn:xmpp:receipts'/></message>")));
}

TEST_F(CarbonsRules, ReceivedMucPrivateMessagesToAFullJidAreNotCopied) {
  const char* pm_full =
      "<message type='chat' to='alice@example.org/phone' from='room@muc.example.org/nick'>"
      "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>";
  const char* pm_bare =
      "<message type='chat' to='alice@example.org' from='room@muc.example.org/nick'>"
      "<body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>";
  EXPECT_FALSE(received(pm_full));
  EXPECT_TRUE(received(pm_bare));
  // What the user sends to an occupant is copied to the user's devices.
  EXPECT_TRUE(
      sent("<message type='chat' to='room@muc.example.org/nick'><body>psst</body>"
           "<x xmlns='http://jabber.org/protocol/muc#user'/></message>"));
}

TEST_F(CarbonsRules, StripPrivateRemovesOnlyThePrivateElement) {
  xml::Element& m = const_cast<xml::Element&>(
      parse("<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/>"
            "<private xmlns='urn:example'/></message>"));
  EXPECT_TRUE(strip_private(m));
  std::string out;
  xml::serialize(m, &out);
  EXPECT_EQ(out, "<message type='chat'><body>x</body><private xmlns='urn:example'/></message>");
  EXPECT_FALSE(strip_private(m));
}

TEST_F(CarbonsRules, WrapSharesTheOriginalOrAddsTheSendersStanzaId) {
  const xml::Element& m = parse(
      "<message from='alice@example.org/a' to='bob@example.org' type='chat' id='m1'>"
      "<body>hi</body></message>");
  xml::Element* w = wrap(m, Direction::kReceived, "alice@example.org", {}, arena_);
  w->set_attr("to", "alice@example.org/b");
  std::string out;
  xml::serialize(*w, &out);
  EXPECT_EQ(out,
            "<message from='alice@example.org' type='chat' to='alice@example.org/b'>"
            "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
            "<message xmlns='jabber:client' from='alice@example.org/a' to='bob@example.org' "
            "type='chat' id='m1'><body>hi</body></message></forwarded></received></message>");

  // A forged stanza-id of the sender's archive is replaced, the original
  // stays untouched.
  const xml::Element& f = parse(
      "<message to='bob@example.org'><body>x</body>"
      "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='forged'/></message>");
  xml::Element* s = wrap(f, Direction::kSent, "alice@example.org", "A1", arena_);
  out.clear();
  xml::serialize(*s, &out);
  EXPECT_EQ(out,
            "<message from='alice@example.org'><sent xmlns='urn:xmpp:carbons:2'>"
            "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
            "to='bob@example.org'><body>x</body>"
            "<stanza-id xmlns='urn:xmpp:sid:0' id='A1' by='alice@example.org'/></message>"
            "</forwarded></sent></message>");
  out.clear();
  xml::serialize(f, &out);
  EXPECT_NE(out.find("forged"), std::string::npos);
  EXPECT_EQ(out.find("A1"), std::string::npos);
}

// ---- the module on the real host pipeline ----

using test::FakeSession;

class CarbonsModuleTest : public test::HostFixture {
 protected:
  void SetUp() override {
    modules_ = {&kModule_carbons};
    ASSERT_NO_FATAL_FAILURE(start_host());
    raw_ = host_.get();
    host_->set_users({"alice", "bob"});
    for (FakeSession* s : {&a_, &b_, &c_, &bob_})
      router_.bind(s);
    a_.set_presence(true, 5);
    b_.set_presence(true, 1);
    c_.set_presence(true, 1);
    bob_.set_presence(true, 0);
    a_.set_carbons(true);
    b_.set_carbons(true);
  }
  void TearDown() override { raw_ = nullptr; }
  xml::Element& message(std::string_view from, std::string_view to, std::string_view extra = {}) {
    std::string text = "<message type='chat' id='m" + std::to_string(++seq_) + "' from='" +
                       std::string(from) + "'";
    if (!to.empty()) text += " to='" + std::string(to) + "'";
    text += "><body>hi</body>" + std::string(extra) + "</message>";
    return parse(text);
  }
  size_t total(const FakeSession& s) const { return s.received.size(); }

  Host* raw_ = nullptr;
  int seq_ = 0;
  FakeSession a_{"alice@example.org/a", &raw_}, b_{"alice@example.org/b", &raw_},
      c_{"alice@example.org/c", &raw_}, bob_{"bob@example.org/pc", &raw_};
};

TEST_F(CarbonsModuleTest, BareMessageGoesToTheTopResourceOthersWithCarbonsGetOneReceivedCopy) {
  host_->route(message("bob@example.org/pc", "alice@example.org"), bob_);
  ASSERT_EQ(total(a_), 1u);
  EXPECT_EQ(a_.received[0].rfind("<message type='chat'", 0), 0u) << a_.received[0];
  ASSERT_EQ(total(b_), 1u);
  EXPECT_EQ(
      b_.received[0].rfind("<message from='alice@example.org' type='chat' "
                           "to='alice@example.org/b'><received xmlns='urn:xmpp:carbons:2'>"
                           "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'",
                           0),
      0u)
      << b_.received[0];
  EXPECT_EQ(total(c_), 0u);  // carbons not enabled
  EXPECT_EQ(total(bob_), 0u);
}

TEST_F(CarbonsModuleTest, SentMessageIsCopiedToTheOtherEnabledResourcesOnly) {
  host_->route(message("alice@example.org/a", "bob@example.org"), a_);
  EXPECT_EQ(total(bob_), 1u);
  EXPECT_EQ(total(a_), 0u);
  ASSERT_EQ(total(b_), 1u);
  EXPECT_EQ(b_.count("<sent xmlns='urn:xmpp:carbons:2'>"), 1u) << b_.received[0];
  EXPECT_EQ(b_.count("from='alice@example.org/a' to='bob@example.org'"), 1u) << b_.received[0];
  EXPECT_EQ(total(c_), 0u);
}

TEST_F(CarbonsModuleTest, PrivateIsNeitherCopiedNorDelivered) {
  host_->route(
      message("alice@example.org/a", "bob@example.org", "<private xmlns='urn:xmpp:carbons:2'/>"),
      a_);
  ASSERT_EQ(total(bob_), 1u);
  EXPECT_EQ(bob_.count("private"), 0u) << bob_.received[0];
  EXPECT_EQ(total(b_), 0u);
  host_->route(
      message("bob@example.org/pc", "alice@example.org", "<private xmlns='urn:xmpp:carbons:2'/>"),
      bob_);
  ASSERT_EQ(total(a_), 1u);
  EXPECT_EQ(a_.count("private"), 0u);
  EXPECT_EQ(total(b_), 0u);
  // The mark does not leak to the next message.
  host_->route(message("bob@example.org/pc", "alice@example.org"), bob_);
  EXPECT_EQ(total(b_), 1u);
}

TEST_F(CarbonsModuleTest, OwnMessageBetweenResourcesReachesEachSessionOnce) {
  c_.set_carbons(true);
  host_->route(message("alice@example.org/a", "alice@example.org/b"), a_);
  EXPECT_EQ(total(a_), 0u);
  ASSERT_EQ(total(b_), 1u);
  EXPECT_EQ(b_.count("carbons"), 0u);  // the message itself
  ASSERT_EQ(total(c_), 1u);
  EXPECT_EQ(c_.count("<sent xmlns='urn:xmpp:carbons:2'>"), 1u) << c_.received[0];
  // No 'to': the own bare JID; the top resource (a, the sender) gets it.
  host_->route(message("alice@example.org/b", ""), b_);
  EXPECT_EQ(total(a_), 1u);
  EXPECT_EQ(total(b_), 1u);
  ASSERT_EQ(total(c_), 2u);
  EXPECT_NE(c_.received[1].find("to='alice@example.org'"), std::string::npos) << c_.received[1];
}

TEST_F(CarbonsModuleTest, DisabledSessionsGetNothing) {
  b_.set_carbons(false);
  host_->route(message("bob@example.org/pc", "alice@example.org"), bob_);
  host_->route(message("alice@example.org/a", "bob@example.org"), a_);
  EXPECT_EQ(total(b_), 0u);
  EXPECT_EQ(total(c_), 0u);
}

}  // namespace
}  // namespace carbons
}  // namespace hearth::modules
