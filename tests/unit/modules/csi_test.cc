#include "modules/csi/csi.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/host.h"
#include "xml/fragment.h"

namespace hearth::modules {

extern const ModuleDef kModule_csi;

namespace csi {
namespace {

class CsiClassify : public ::testing::Test {
 protected:
  Verdict of(std::string_view text) {
    auto e = xml::parse_fragment(text, arena_);
    EXPECT_TRUE(e.ok()) << text;
    return e.ok() ? classify(*e.value()) : Verdict::kHold;
  }
  xml::Arena arena_;
};

TEST_F(CsiClassify, PresenceUpdatesCollapseSubscriptionsFlush) {
  EXPECT_EQ(of("<presence from='bob@x/pc'/>"), Verdict::kCollapse);
  EXPECT_EQ(of("<presence from='bob@x/pc'><show>away</show></presence>"), Verdict::kCollapse);
  EXPECT_EQ(of("<presence from='bob@x/pc' type='unavailable'/>"), Verdict::kCollapse);
  for (const char* t : {"subscribe", "subscribed", "unsubscribe", "unsubscribed"}) {
    EXPECT_EQ(of(std::string("<presence from='bob@x' type='") + t + "'/>"), Verdict::kFlush) << t;
  }
  EXPECT_EQ(of("<presence from='bob@x' type='error'/>"), Verdict::kHold);
}

TEST_F(CsiClassify, IqAlwaysFlushes) {
  EXPECT_EQ(of("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"), Verdict::kFlush);
  EXPECT_EQ(of("<iq type='result' id='1'/>"), Verdict::kFlush);
  EXPECT_EQ(of("<iq type='set' id='2'><query xmlns='jabber:iq:roster'/></iq>"), Verdict::kFlush);
}

TEST_F(CsiClassify, ChatStateOnlyMessagesAreDropped) {
  EXPECT_EQ(of("<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/>"
               "</message>"),
            Verdict::kDrop);
  EXPECT_EQ(of("<message type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/>"
               "<thread>t1</thread><no-store xmlns='urn:xmpp:hints'/>"
               "<origin-id xmlns='urn:xmpp:sid:0' id='o'/></message>"),
            Verdict::kDrop);
  // A chat state next to a body is a message.
  EXPECT_EQ(of("<message type='chat'><body>hi</body>"
               "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            Verdict::kFlush);
  // A chat state next to something else is held, not dropped.
  EXPECT_EQ(of("<message><active xmlns='http://jabber.org/protocol/chatstates'/>"
               "<received xmlns='urn:xmpp:receipts' id='r'/></message>"),
            Verdict::kHold);
  // Nothing at all is not a chat state.
  EXPECT_EQ(of("<message type='chat'/>"), Verdict::kHold);
}

TEST_F(CsiClassify, ImportantMessagesFlush) {
  EXPECT_EQ(of("<message><body>x</body></message>"), Verdict::kFlush);
  EXPECT_EQ(of("<message type='groupchat'><subject>s</subject></message>"), Verdict::kFlush);
  EXPECT_EQ(
      of("<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>"),
      Verdict::kFlush);
  EXPECT_EQ(of("<message type='chat'><encrypted xmlns='urn:xmpp:omemo:2'/></message>"),
            Verdict::kFlush);
  EXPECT_EQ(of("<message><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>"),
            Verdict::kFlush);
  EXPECT_EQ(of("<message><x xmlns='jabber:x:conference' jid='room@muc.x'/></message>"),
            Verdict::kFlush);
  EXPECT_EQ(of("<message><x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@x'/>"
               "</x></message>"),
            Verdict::kFlush);
  EXPECT_EQ(of("<message><x xmlns='http://jabber.org/protocol/muc#user'/></message>"),
            Verdict::kHold);
}

TEST_F(CsiClassify, CarbonsCountAsWhatTheyCarry) {
  const std::string head =
      "<message from='a@x' type='chat'><received xmlns='urn:xmpp:carbons:2'>"
      "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' type='chat'>";
  const std::string tail = "</message></forwarded></received></message>";
  EXPECT_EQ(of(head + "<body>hi</body>" + tail), Verdict::kFlush);
  EXPECT_EQ(of(head + "<gone xmlns='http://jabber.org/protocol/chatstates'/>" + tail),
            Verdict::kDrop);
  EXPECT_EQ(of(head + "<displayed xmlns='urn:xmpp:chat-markers:0' id='1'/>" + tail),
            Verdict::kHold);
  EXPECT_EQ(of("<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
               "<message xmlns='jabber:client'><body>b</body></message></forwarded></sent>"
               "</message>"),
            Verdict::kFlush);
  // A carbon without a forwarded message is held, whatever else it says.
  EXPECT_EQ(of("<message><sent xmlns='urn:xmpp:carbons:2'/><body>x</body></message>"),
            Verdict::kHold);
}

TEST_F(CsiClassify, HeadlinesAndErrorsAreHeld) {
  EXPECT_EQ(of("<message type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/>"
               "</message>"),
            Verdict::kHold);
  EXPECT_EQ(of("<message type='headline'><body>news</body></message>"), Verdict::kHold);
  EXPECT_EQ(of("<message type='error'><body>x</body><error type='cancel'/></message>"),
            Verdict::kHold);
  EXPECT_EQ(of("<message><received xmlns='urn:xmpp:receipts' id='r'/></message>"), Verdict::kHold);
}

// ---- the module on the real host ----

using test::FakeSession;

class CsiModuleTest : public test::HostFixture {
 protected:
  void SetUp() override {
    config_.csi.max_held = 4;
    modules_ = {&kModule_csi};
    ASSERT_NO_FATAL_FAILURE(start_host());
    raw_ = host_.get();
  }
  void TearDown() override { raw_ = nullptr; }
  void nonza(std::string_view name) {
    std::string text = "<" + std::string(name) + " xmlns='urn:xmpp:csi:0'/>";
    EXPECT_TRUE(host_->nonza(s_, parse(text)));
  }
  void give(std::string_view text) { s_.deliver(parse(text)); }

  Host* raw_ = nullptr;
  FakeSession s_{"alice@example.org/phone", &raw_};
};

TEST_F(CsiModuleTest, AdvertisesTheStreamFeature) {
  std::string f;
  host_->stream_features(f);
  EXPECT_EQ(f, "<csi xmlns='urn:xmpp:csi:0'/>");
}

TEST_F(CsiModuleTest, ActiveSessionGetsEverythingAtOnce) {
  give("<presence from='bob@example.org/pc'/>");
  give("<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
  EXPECT_EQ(s_.received.size(), 2u);
}

TEST_F(CsiModuleTest, InactiveHoldsNewestPresenceDropsChatStatesFlushesOnBody) {
  nonza("inactive");
  give("<presence from='bob@example.org/pc'><show>away</show></presence>");
  give("<presence from='carol@example.org/x'/>");
  give("<presence from='bob@example.org/pc'><show>xa</show></presence>");
  give("<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
  EXPECT_TRUE(s_.received.empty());
  give("<message type='chat' id='m'><body>wake up</body></message>");
  ASSERT_EQ(s_.received.size(), 3u);
  EXPECT_EQ(s_.received[0], "<presence from='carol@example.org/x'/>");
  EXPECT_EQ(s_.received[1], "<presence from='bob@example.org/pc'><show>xa</show></presence>");
  EXPECT_EQ(s_.received[2], "<message type='chat' id='m'><body>wake up</body></message>");
  // Still inactive: the next update is held again.
  give("<presence from='bob@example.org/pc'/>");
  EXPECT_EQ(s_.received.size(), 3u);
  nonza("active");
  ASSERT_EQ(s_.received.size(), 4u);
  EXPECT_EQ(s_.received[3], "<presence from='bob@example.org/pc'/>");
  // Active again: nothing is held or dropped.
  give("<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
  EXPECT_EQ(s_.received.size(), 5u);
}

TEST_F(CsiModuleTest, MoreThanMaxHeldFlushesInOrder) {
  nonza("inactive");
  for (int i = 0; i < 4; ++i)
    give("<message type='headline' id='h" + std::to_string(i) + "'/>");
  EXPECT_TRUE(s_.received.empty());
  give("<message type='headline' id='h4'/>");
  ASSERT_EQ(s_.received.size(), 5u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(s_.received[i], "<message type='headline' id='h" + std::to_string(i) + "'/>");
}

TEST_F(CsiModuleTest, IqAndSubscriptionFlushFirstUnknownNonzaIsIgnored) {
  nonza("inactive");
  nonza("whatever");
  give("<presence from='bob@example.org/pc'/>");
  give("<iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>");
  ASSERT_EQ(s_.received.size(), 2u);
  EXPECT_EQ(s_.received[0], "<presence from='bob@example.org/pc'/>");
  EXPECT_EQ(s_.received[1].rfind("<iq", 0), 0u);
  give("<presence from='bob@example.org/pc' type='unavailable'/>");
  give("<presence from='dave@example.org' type='subscribe'/>");
  ASSERT_EQ(s_.received.size(), 4u);
  EXPECT_EQ(s_.received[2], "<presence from='bob@example.org/pc' type='unavailable'/>");
  EXPECT_EQ(s_.received[3], "<presence from='dave@example.org' type='subscribe'/>");
}

TEST_F(CsiModuleTest, ResumeFlushesCloseForgets) {
  nonza("inactive");
  give("<presence from='bob@example.org/pc'/>");
  host_->session_resumed(s_);
  ASSERT_EQ(s_.received.size(), 1u);
  give("<message type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/></message>");
  EXPECT_EQ(s_.received.size(), 2u);  // active after resumption
  nonza("inactive");
  give("<presence from='bob@example.org/pc'/>");
  host_->session_closed(s_);
  give("<presence from='bob@example.org/pc'/>");  // forgotten: the session is active again
  ASSERT_EQ(s_.received.size(), 3u);
}

}  // namespace
}  // namespace csi
}  // namespace hearth::modules
