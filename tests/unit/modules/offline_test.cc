#include "modules/offline/offline.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/module.h"
#include "storage/codec.h"
#include "xml/fragment.h"

namespace hearth::modules::offline {
namespace {

using namespace std::string_literals;

TEST(OfflineKeys, LayoutIsLocalpartZeroTagThenBigEndianSequence) {
  EXPECT_EQ(meta_key("al"), "al\0c"s);
  EXPECT_EQ(message_prefix("al"), "al\0m"s);
  EXPECT_EQ(message_key("al", 0x0102030405060708ULL), "al\0m\x01\x02\x03\x04\x05\x06\x07\x08"s);
  EXPECT_EQ(message_key("al", 0), "al\0m\0\0\0\0\0\0\0\0"s);
}

TEST(OfflineKeys, ByteOrderIsArrivalOrder) {
  // LMDB compares keys bytewise: the big-endian sequence must sort numerically.
  const uint64_t seqs[] = {0, 1, 255, 256, 65535, 65536, 0xFFFFFFFFULL, 0x100000000ULL};
  for (size_t i = 1; i < std::size(seqs); ++i) {
    EXPECT_LT(message_key("bob", seqs[i - 1]), message_key("bob", seqs[i])) << seqs[i];
  }
  // The meta record sorts before the messages and stays under the user's key.
  EXPECT_LT(meta_key("bob"), message_key("bob", 0));
  EXPECT_EQ(meta_key("bob").rfind(user_key("bob"), 0), 0u);
  EXPECT_EQ(message_key("bob", 7).rfind(user_key("bob"), 0), 0u);
  // A user whose name extends another's never shares its prefix.
  EXPECT_NE(message_key("alice", 1).rfind(message_prefix("al"), 0), 0u);
}

TEST(OfflineCodec, MetaRoundTripsAndIsExact) {
  Meta m{0x1122334455667788ULL, 0xA0B0C0D0u, 0x0102030405060708ULL};
  std::string v = encode_meta(m);
  EXPECT_EQ(v,
            "\x01\x11\x22\x33\x44\x55\x66\x77\x88\xA0\xB0\xC0\xD0"
            "\x01\x02\x03\x04\x05\x06\x07\x08"s);
  auto back = decode_meta(v);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, m);
}

TEST(OfflineCodec, MetaRejectsTruncatedTrailingAndUnknownVersion) {
  std::string v = encode_meta(Meta{5, 3, 100});
  EXPECT_FALSE(decode_meta(v.substr(0, v.size() - 1)));
  EXPECT_FALSE(decode_meta(v + "x"));
  EXPECT_FALSE(decode_meta(""));
  std::string other = v;
  other[0] = 2;
  EXPECT_FALSE(decode_meta(other));
}

TEST(OfflineCodec, MessageRoundTripsWithAnyBytes) {
  const std::string xml = "<message to='b@x'><body>h\xC3\xA9llo \0 end</body></message>"s;
  std::string v = encode_message(1700000000, xml);
  std::string expected = "\x01"s;
  storage::append_u64(expected, 1700000000);
  storage::append_u32(expected, static_cast<uint32_t>(xml.size()));
  expected += xml;
  EXPECT_EQ(v, expected);
  auto back = decode_message(v);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->stamp, 1700000000u);
  EXPECT_EQ(back->xml, xml);
}

TEST(OfflineCodec, MessageRejectsBadInput) {
  std::string v = encode_message(1, "<message/>");
  EXPECT_FALSE(decode_message(v.substr(0, v.size() - 1)));
  EXPECT_FALSE(decode_message(v + "\0"s));
  std::string other = v;
  other[0] = 9;
  EXPECT_FALSE(decode_message(other));
  // A length prefix larger than the rest.
  std::string lying = "\x01"s;
  storage::append_u64(lying, 1);
  storage::append_u32(lying, 1000);
  lying += "<m/>";
  EXPECT_FALSE(decode_message(lying));
}

TEST(OfflineStamp, Xep0082UtcWithZ) {
  EXPECT_EQ(format_stamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_stamp(1032917305), "2002-09-25T01:28:25Z");
  EXPECT_EQ(format_stamp(1700000000), "2023-11-14T22:13:20Z");
}

class OfflineXml : public ::testing::Test {
 protected:
  xml::Element& parse(std::string_view text) {
    auto e = xml::parse_fragment(text, arena_);
    if (!e) {
      ADD_FAILURE() << e.error().message << " in " << text;
      return *arena_.make_element("message", xml::kNsClient);
    }
    return **e;
  }
  Verdict verdict(std::string_view text) { return classify(parse(text)); }

  xml::Arena arena_;
};

TEST_F(OfflineXml, ChatAndNormalWithContentAreStored) {
  EXPECT_EQ(verdict("<message type='chat'><body>hi</body></message>"), Verdict::kStore);
  EXPECT_EQ(verdict("<message type='normal'><body>hi</body></message>"), Verdict::kStore);
  EXPECT_EQ(verdict("<message><subject>s</subject></message>"), Verdict::kStore);
  // Receipts and other extensions are content.
  EXPECT_EQ(verdict("<message><received xmlns='urn:xmpp:receipts' id='x'/></message>"),
            Verdict::kStore);
  // Body plus chat state: stored.
  EXPECT_EQ(verdict("<message type='chat'><body>b</body>"
                    "<active xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            Verdict::kStore);
}

TEST_F(OfflineXml, OtherTypesAreNotOurs) {
  for (const char* t : {"headline", "groupchat", "error"}) {
    EXPECT_EQ(verdict("<message type='"s + t + "'><body>x</body></message>"), Verdict::kPass) << t;
  }
}

TEST_F(OfflineXml, StandaloneChatStatesAreDropped) {
  EXPECT_EQ(verdict("<message type='chat'>"
                    "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            Verdict::kDrop);
  EXPECT_EQ(verdict("<message type='chat'> <thread>t1</thread>\n"
                    "<paused xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            Verdict::kDrop);
  EXPECT_EQ(verdict("<message type='chat'/>"), Verdict::kDrop);
  // Unless the sender asks for storage (XEP-0334).
  EXPECT_EQ(verdict("<message type='chat'><store xmlns='urn:xmpp:hints'/>"
                    "<gone xmlns='http://jabber.org/protocol/chatstates'/></message>"),
            Verdict::kStore);
  // A chat state in another namespace is content.
  EXPECT_EQ(verdict("<message type='chat'><composing xmlns='urn:example'/></message>"),
            Verdict::kStore);
}

TEST_F(OfflineXml, NoStoreHintPasses) {
  EXPECT_EQ(verdict("<message type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/>"
                    "</message>"),
            Verdict::kPass);
  EXPECT_EQ(verdict("<message><no-store xmlns='urn:xmpp:hints'/><body>x</body>"
                    "<store xmlns='urn:xmpp:hints'/></message>"),
            Verdict::kPass);
}

TEST_F(OfflineXml, DelayIsAppendedToTheCopyOnly) {
  xml::Element& m = parse(
      "<message from='a@d/r' to='b@d' type='chat' id='i1'>"
      "<body>a &amp; b</body></message>");
  std::string before;
  xml::serialize(m, &before);
  std::string out = serialize_with_delay(m, "d", 1032917305);
  EXPECT_EQ(out,
            "<message from='a@d/r' to='b@d' type='chat' id='i1'><body>a &amp; b</body>"
            "<delay xmlns='urn:xmpp:delay' from='d' stamp='2002-09-25T01:28:25Z'/></message>");
  std::string after;
  xml::serialize(m, &after);
  EXPECT_EQ(after, before);
  // What is stored parses back (the core hands it to deliver_raw as is).
  xml::Arena other;
  auto back = xml::parse_fragment(out, other);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_NE((*back)->child("delay", kNsDelay), nullptr);
  EXPECT_EQ((*back)->child("delay", kNsDelay)->attr("from"), "d");
}

class OfflineStore : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(env_.open("hearth-offline", {std::string(kTable)}, 1 << 20));
    auto dbi = env_->db(kTable);
    ASSERT_TRUE(dbi) << dbi.error().message;
    dbi_ = *dbi;
  }
  StoreOutcome put(std::string_view user, std::string_view xml, uint32_t max = 100) {
    auto r = store(*env_, dbi_, user, xml, 42, max);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : StoreOutcome::kFull;
  }
  std::vector<std::string> take(std::string_view user) {
    auto r = take_all(*env_, dbi_, user);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<std::string>{};
  }
  uint32_t stored(std::string_view user) {
    auto r = count(*env_, dbi_, user);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : 9999;
  }
  size_t records() {
    auto txn = env_->read();
    size_t n = 0;
    EXPECT_TRUE(txn->for_each(dbi_, "", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    }));
    return n;
  }

  test::TempEnv env_;
  storage::Dbi dbi_ = 0;
};

TEST_F(OfflineStore, KeepsOrderAndDeletesOnTake) {
  std::vector<std::string> sent;
  for (int i = 0; i < 260; ++i) {  // past 255 and 256: byte order must hold
    sent.push_back("<message><body>" + std::to_string(i) + "</body></message>");
    EXPECT_EQ(put("bob", sent.back(), 1000), StoreOutcome::kStored);
  }
  EXPECT_EQ(stored("bob"), 260u);
  EXPECT_EQ(take("bob"), sent);
  EXPECT_EQ(stored("bob"), 0u);
  EXPECT_EQ(records(), 0u);
  EXPECT_TRUE(take("bob").empty());
}

TEST_F(OfflineStore, CapRefusesBeyondMaxAndKeepsTheStoredOnes) {
  EXPECT_EQ(put("bob", "<m1/>", 2), StoreOutcome::kStored);
  EXPECT_EQ(put("bob", "<m2/>", 2), StoreOutcome::kStored);
  EXPECT_EQ(put("bob", "<m3/>", 2), StoreOutcome::kFull);
  EXPECT_EQ(put("bob", "<m4/>", 0), StoreOutcome::kFull);
  EXPECT_EQ(stored("bob"), 2u);
  EXPECT_EQ(take("bob"), (std::vector<std::string>{"<m1/>", "<m2/>"}));
  EXPECT_EQ(put("bob", "<m5/>", 2), StoreOutcome::kStored);
  EXPECT_EQ(take("bob"), (std::vector<std::string>{"<m5/>"}));
}

TEST_F(OfflineStore, CapRefusesBeyondMaxBytes) {
  const std::string ten(10, 'x');
  EXPECT_EQ(store(*env_, dbi_, "bob", ten, 1, 100, 25).value(), StoreOutcome::kStored);
  EXPECT_EQ(store(*env_, dbi_, "bob", ten, 1, 100, 25).value(), StoreOutcome::kStored);
  EXPECT_EQ(store(*env_, dbi_, "bob", ten, 1, 100, 25).value(), StoreOutcome::kFull);
  EXPECT_EQ(store(*env_, dbi_, "bob", "12345", 1, 100, 25).value(), StoreOutcome::kStored);
  EXPECT_EQ(store(*env_, dbi_, "bob", "1", 1, 100, 25).value(), StoreOutcome::kFull);
  // One message larger than the whole budget never fits.
  EXPECT_EQ(store(*env_, dbi_, "eve", std::string(26, 'y'), 1, 100, 25).value(),
            StoreOutcome::kFull);
  EXPECT_EQ(take("bob"), (std::vector<std::string>{ten, ten, "12345"}));
  EXPECT_EQ(store(*env_, dbi_, "bob", std::string(25, 'z'), 1, 100, 25).value(),
            StoreOutcome::kStored);
}

TEST_F(OfflineStore, UsersAreSeparate) {
  put("al", "<a1/>");
  put("alice", "<b1/>");
  put("al", "<a2/>");
  EXPECT_EQ(take("al"), (std::vector<std::string>{"<a1/>", "<a2/>"}));
  EXPECT_EQ(stored("alice"), 1u);
  EXPECT_EQ(take("alice"), (std::vector<std::string>{"<b1/>"}));
}

TEST_F(OfflineStore, BrokenMetaIsRebuiltFromTheMessages) {
  put("bob", "<m1/>");
  put("bob", "<m2/>");
  ASSERT_TRUE(env_->write([&](storage::WriteTxn& t) -> Status {
    t.put(dbi_, meta_key("bob"), "junk");
    return {};
  }));
  EXPECT_EQ(stored("bob"), 2u);
  // The rebuilt byte count is the messages' size (2 x 5): 7 bytes left of 17.
  EXPECT_EQ(store(*env_, dbi_, "bob", "<m3/>", 1, 100, 17).value(), StoreOutcome::kStored);
  EXPECT_EQ(store(*env_, dbi_, "bob", "<m4/>", 1, 100, 17).value(), StoreOutcome::kFull);
  // ... and must not overwrite sequence 0 or 1.
  EXPECT_EQ(take("bob"), (std::vector<std::string>{"<m1/>", "<m2/>", "<m3/>"}));
}

TEST_F(OfflineStore, UnreadableRecordsAreSkippedAndDeleted) {
  put("bob", "<m1/>");
  ASSERT_TRUE(env_->write([&](storage::WriteTxn& t) -> Status {
    t.put(dbi_, message_key("bob", 5), "\x07garbage");
    return {};
  }));
  put("bob", "<m3/>");
  EXPECT_EQ(take("bob"), (std::vector<std::string>{"<m1/>", "<m3/>"}));
  EXPECT_EQ(records(), 0u);
}

}  // namespace
}  // namespace hearth::modules::offline
