#include "modules/mam/archive.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/module.h"
#include "storage/codec.h"
#include "xml/fragment.h"

namespace hearth::modules::mam {
namespace {

using namespace std::string_literals;

// ---- ids and keys ----

TEST(MamId, RoundTripsAndIsOpaqueHex) {
  ArchiveId id{Position{0x0102030405060708ULL, 0x0A0B0C0D}, 0xDEADBEEF};
  std::string text = format_id(id);
  EXPECT_EQ(text,
            "0102030405060708"
            "0a0b0c0d"
            "deadbeef");
  auto back = parse_id(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, id);
  ArchiveId zero{};
  EXPECT_EQ(parse_id(format_id(zero)), zero);
  ArchiveId max{Position{UINT64_MAX, UINT32_MAX}, UINT32_MAX};
  EXPECT_EQ(parse_id(format_id(max)), max);
}

TEST(MamId, RejectsGarbage) {
  const std::string good = format_id(ArchiveId{Position{12345, 6}, 7});
  EXPECT_FALSE(parse_id(""));
  EXPECT_FALSE(parse_id("nonsense"));
  EXPECT_FALSE(parse_id(good.substr(1)));            // too short
  EXPECT_FALSE(parse_id(good + "0"));                // too long
  EXPECT_FALSE(parse_id(good.substr(0, 31) + "g"));  // not hex
  EXPECT_FALSE(parse_id(good.substr(0, 31) + "A"));  // upper case is not ours
  EXPECT_FALSE(parse_id(" " + good.substr(1)));      // spaces
  EXPECT_FALSE(parse_id(good.substr(0, 16) + "\0"s + good.substr(17)));
}

TEST(MamKeys, LayoutAndOrder) {
  Position p{0x0102030405060708ULL, 9};
  EXPECT_EQ(encode_position(p), "\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\x09"s);
  EXPECT_EQ(decode_position(encode_position(p)), p);
  EXPECT_FALSE(decode_position("short"));
  EXPECT_EQ(message_key("al", p), "al\0m"s + encode_position(p));
  EXPECT_EQ(with_key("al", "bob@x", p), "al\0wbob@x\0"s + encode_position(p));
  // Every key is under the user's key (account deletion finds them all).
  EXPECT_EQ(message_key("al", p).rfind(user_key("al"), 0), 0u);
  EXPECT_EQ(with_key("al", "b@x", p).rfind(user_key("al"), 0), 0u);
  EXPECT_NE(message_key("alice", p).rfind(message_prefix("al"), 0), 0u);
  // Bytewise order is (time, sequence) order, whatever the host's endianness.
  const Position ordered[] = {{0, 0},          {0, 1},
                              {0, 256},        {1, 0},
                              {255, 7},        {256, 0},
                              {0xFFFFFFFF, 0}, {0x100000000ULL, 0},
                              {UINT64_MAX, 0}, {UINT64_MAX, UINT32_MAX}};
  for (size_t i = 1; i < std::size(ordered); ++i) {
    EXPECT_LT(message_key("u", ordered[i - 1]), message_key("u", ordered[i])) << i;
    EXPECT_LT(with_key("u", "c@d", ordered[i - 1]), with_key("u", "c@d", ordered[i])) << i;
    EXPECT_LT(format_id({ordered[i - 1], 0xFFFFFFFF}), format_id({ordered[i], 0})) << i;
  }
  // One contact's index never runs into another's that extends its JID.
  EXPECT_NE(with_key("u", "bob@x.org", p).rfind(with_prefix("u", "bob@x"), 0), 0u);
}

TEST(MamKeys, NextPositionNeverGoesBack) {
  EXPECT_EQ(next_position({100, 5}, 200), (Position{200, 0}));
  EXPECT_EQ(next_position({100, 5}, 100), (Position{100, 6}));
  EXPECT_EQ(next_position({100, 5}, 50), (Position{100, 6}));  // clock stepped back
  EXPECT_EQ(next_position({100, UINT32_MAX}, 100), (Position{101, 0}));
}

TEST(MamRow, RoundTripsAndIsExact) {
  Row row{Direction::kOutgoing, 0x01020304, "bob@x/r", "<message/>"};
  std::string v = encode_row(row);
  EXPECT_EQ(v,
            "\x01\x01\x01\x02\x03\x04\0\0\0\x07"
            "bob@x/r"
            "\0\0\0\x0a<message/>"s);
  auto back = decode_row(v);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->direction, Direction::kOutgoing);
  EXPECT_EQ(back->tag, 0x01020304u);
  EXPECT_EQ(back->with, "bob@x/r");
  EXPECT_EQ(back->xml, "<message/>");
  EXPECT_FALSE(decode_row(v.substr(0, v.size() - 1)));
  EXPECT_FALSE(decode_row(v + "x"));
  std::string bad = v;
  bad[0] = 2;
  EXPECT_FALSE(decode_row(bad));
  bad = v;
  bad[1] = 2;
  EXPECT_FALSE(decode_row(bad));
}

// ---- time ----

TEST(MamTime, FormatsUtcWithMicroseconds) {
  EXPECT_EQ(format_time(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_time(1709251199123456ULL), "2024-02-29T23:59:59.123456Z");
  // After 2038 (32-bit time_t would wrap).
  EXPECT_EQ(format_time(4102444800000001ULL), "2100-01-01T00:00:00.000001Z");
}

TEST(MamTime, ParsesXep0082) {
  EXPECT_EQ(parse_time("1970-01-01T00:00:00Z"), 0u);
  EXPECT_EQ(parse_time("2024-02-29T23:59:59.123456Z"), 1709251199123456ULL);
  EXPECT_EQ(parse_time("2024-02-29T23:59:59.1Z"), 1709251199100000ULL);
  // Digits past microseconds are dropped.
  EXPECT_EQ(parse_time("2024-02-29T23:59:59.12345678Z"), 1709251199123456ULL);
  // Offsets: local time minus the offset.
  EXPECT_EQ(parse_time("2024-03-01T01:59:59+02:00"), 1709251199000000ULL);
  EXPECT_EQ(parse_time("2024-02-29T20:29:59-03:30"), 1709251199000000ULL);
  EXPECT_EQ(parse_time("2100-01-01T00:00:00Z"), 4102444800000000ULL);
  // Round trip.
  for (uint64_t t : {0ULL, 1ULL, 951782400000000ULL, 1709251199123456ULL, 4102444800000001ULL})
    EXPECT_EQ(parse_time(format_time(t)), t) << t;
}

TEST(MamTime, RejectsMalformed) {
  for (const char* bad :
       {"", "yesterday", "2024-02-29", "2024-02-29T23:59:59",  // no zone
        "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00+2:00",
        "2024-01-01T00:00:00+02:60", "2024-01-01 00:00:00Z", "1969-12-31T23:59:59Z",
        "+2024-01-01T00:00:00Z", "2024-01-01T00:00:00+02:00x"})
    EXPECT_FALSE(parse_time(bad)) << bad;
}

// ---- eligibility ----

bool eligible_xml(std::string_view xml) {
  xml::Arena arena;
  auto e = xml::parse_fragment(xml, arena);
  EXPECT_TRUE(e) << xml;
  return e && eligible(**e);
}

TEST(MamEligible, ChatAndNormalWithABody) {
  EXPECT_TRUE(eligible_xml("<message type='chat'><body>x</body></message>"));
  EXPECT_TRUE(eligible_xml("<message type='normal'><body>x</body></message>"));
  EXPECT_TRUE(eligible_xml("<message><body/></message>"));
  EXPECT_TRUE(eligible_xml(
      "<message type='chat'><body>x</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
      "</message>"));
  EXPECT_TRUE(eligible_xml(
      "<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><header/>"
      "<payload>x</payload></encrypted></message>"));
  EXPECT_TRUE(eligible_xml(
      "<message type='chat'><store xmlns='urn:xmpp:hints'/><received xmlns='urn:xmpp:receipts' "
      "id='1'/></message>"));
}

TEST(MamEligible, NeverTheseTypesOrHints) {
  for (const char* type : {"error", "groupchat", "headline", "bogus"})
    EXPECT_FALSE(eligible_xml("<message type='"s + type + "'><body>x</body></message>")) << type;
  EXPECT_FALSE(eligible_xml(
      "<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
  EXPECT_FALSE(eligible_xml("<message type='chat'><thread>t</thread></message>"));
  EXPECT_FALSE(eligible_xml("<message type='chat'/>"));
  EXPECT_FALSE(eligible_xml(
      "<message type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>"));
  EXPECT_FALSE(eligible_xml(
      "<message type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>"));
  // no-store beats store.
  EXPECT_FALSE(eligible_xml(
      "<message><store xmlns='urn:xmpp:hints'/><no-store xmlns='urn:xmpp:hints'/><body>x</body>"
      "</message>"));
  // A body in another namespace is not a body; OMEMO key transport is not content.
  EXPECT_FALSE(eligible_xml("<message type='chat'><body xmlns='urn:other'>x</body></message>"));
  EXPECT_FALSE(eligible_xml(
      "<message type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><header/>"
      "</encrypted></message>"));
}

// ---- preferences ----

TEST(MamPrefs, ModesAndLists) {
  Prefs p;
  p.default_mode = Mode::kAlways;
  EXPECT_TRUE(should_archive(p, "a@x", false));
  p.default_mode = Mode::kNever;
  EXPECT_FALSE(should_archive(p, "a@x", true));
  p.default_mode = Mode::kRoster;
  EXPECT_TRUE(should_archive(p, "a@x", true));
  EXPECT_FALSE(should_archive(p, "a@x", false));
  p.always = {"a@x"};
  p.never = {"b@x"};
  EXPECT_TRUE(should_archive(p, "a@x", false));
  EXPECT_FALSE(should_archive(p, "b@x", true));
  EXPECT_FALSE(should_archive(p, "c@x", false));
  EXPECT_TRUE(listed(p, "a@x"));
  EXPECT_TRUE(listed(p, "b@x"));
  EXPECT_FALSE(listed(p, "c@x"));
  p.default_mode = Mode::kNever;
  EXPECT_TRUE(should_archive(p, "a@x", false));
  // In both lists: never wins.
  p.always.push_back("b@x");
  EXPECT_FALSE(should_archive(p, "b@x", true));
  p.default_mode = Mode::kAlways;
  EXPECT_FALSE(should_archive(p, "b@x", true));
}

TEST(MamPrefs, ModeNamesAndCodec) {
  for (Mode m : {Mode::kAlways, Mode::kNever, Mode::kRoster})
    EXPECT_EQ(parse_mode(mode_name(m)), m);
  EXPECT_FALSE(parse_mode("Always"));
  EXPECT_FALSE(parse_mode(""));
  Prefs p{Mode::kRoster, {"a@x", "b@y"}, {"c@z"}};
  std::string v = encode_prefs(p);
  EXPECT_EQ(v,
            "\x01\x02\0\0\0\x02\0\0\0\x03"
            "a@x"
            "\0\0\0\x03"
            "b@y"
            "\0\0\0\x01\0\0\0\x03"
            "c@z"s);
  auto back = decode_prefs(v);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, p);
  EXPECT_FALSE(decode_prefs(v.substr(0, v.size() - 1)));
  EXPECT_FALSE(decode_prefs(v + "x"));
  std::string bad = v;
  bad[1] = 3;
  EXPECT_FALSE(decode_prefs(bad));
  // A huge count is refused before anything is reserved.
  EXPECT_FALSE(decode_prefs("\x01\x00\xff\xff\xff\xff"s));
  EXPECT_EQ(decode_prefs(encode_prefs(Prefs{})).value(), Prefs{});
}

// ---- storage: append, query, sweep ----

class MamStore : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(
        env_.open("hearth-mam", {std::string(kTable), std::string(kPrefsTable)}, 4 << 20));
    dbi_ = env_->db(kTable).value();
  }
  ArchiveId add(std::string_view user, std::string_view with, std::string_view body,
                uint64_t micros) {
    std::string xml = "<message><body>" + std::string(body) + "</body></message>";
    Row row{Direction::kIncoming, static_cast<uint32_t>(micros * 7 + 1), with, xml};
    std::string bare(with.substr(0, with.find('/')));
    auto r = append(*env_, dbi_, user, bare, row, micros, &last_);
    EXPECT_TRUE(r) << r.error().message;
    return r ? r->id : ArchiveId{};
  }
  std::vector<std::string> bodies(const Query& q, bool* complete = nullptr) {
    auto txn = env_->read();
    auto page = query(*txn, dbi_, q);
    EXPECT_TRUE(page) << page.error().message;
    std::vector<std::string> out;
    if (!page) return out;
    for (const Item& i : page->items) {
      size_t a = i.xml.find("<body>") + 6;
      out.push_back(i.xml.substr(a, i.xml.find("</body>") - a));
    }
    if (complete) *complete = page->complete;
    return out;
  }
  size_t keys() {
    auto txn = env_->read();
    size_t n = 0;
    (void)txn->for_each(dbi_, "", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    return n;
  }
  test::TempEnv env_;
  storage::Dbi dbi_ = 0;
  Position last_;
};

using V = std::vector<std::string>;

TEST_F(MamStore, SameMicrosecondKeepsArrivalOrder) {
  ArchiveId a = add("al", "b@x/r", "1", 1000);
  ArchiveId b = add("al", "b@x/r", "2", 1000);
  ArchiveId c = add("al", "b@x/r", "3", 999);  // clock stepped back
  EXPECT_LT(a.pos, b.pos);
  EXPECT_LT(b.pos, c.pos);
  Query q;
  q.user = "al";
  EXPECT_EQ(bodies(q), (V{"1", "2", "3"}));
  // A fresh process (last_ reset) at the same microsecond takes a free slot.
  last_ = Position{};
  ArchiveId d = add("al", "b@x/r", "4", 1000);
  EXPECT_NE(d.pos, a.pos);
  EXPECT_EQ(bodies(q).size(), 4u);
}

TEST_F(MamStore, PagesFiltersAndBounds) {
  for (int i = 0; i < 10; ++i)
    add("al", i % 2 ? "c@x/r" : "b@x/r", std::to_string(i), 1000 + static_cast<uint64_t>(i) * 10);
  add("bo", "al@x", "other user", 1005);
  Query q;
  q.user = "al";
  q.max = 3;
  bool complete = true;
  EXPECT_EQ(bodies(q, &complete), (V{"0", "1", "2"}));
  EXPECT_FALSE(complete);
  q.backward = true;
  EXPECT_EQ(bodies(q, &complete), (V{"7", "8", "9"}));
  EXPECT_FALSE(complete);
  // Time range [1020, 1050]: inclusive end is position (1051, 0) exclusive.
  q = Query{};
  q.user = "al";
  q.has_lower = true;
  q.lower = {1020, 0};
  q.has_upper = true;
  q.upper = {1051, 0};
  EXPECT_EQ(bodies(q, &complete), (V{"2", "3", "4", "5"}));
  EXPECT_TRUE(complete);
  // With a bare JID (index) and a full JID.
  q.with_bare = "c@x";
  EXPECT_EQ(bodies(q), (V{"3", "5"}));
  q.with_full = "c@x/other";
  EXPECT_EQ(bodies(q), V{});
  // after an id (exclusive).
  q = Query{};
  q.user = "al";
  q.has_lower = true;
  q.lower = {1030, 0};
  q.lower_exclusive = true;
  q.max = 2;
  EXPECT_EQ(bodies(q), (V{"4", "5"}));
  // Exactly max left: complete.
  q.lower = {1070, 0};
  EXPECT_EQ(bodies(q, &complete), (V{"8", "9"}));
  EXPECT_TRUE(complete);

  auto txn = env_->read();
  auto b = bounds(*txn, dbi_, "al");
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->first.pos, (Position{1000, 0}));
  EXPECT_EQ((*b)->last.pos, (Position{1090, 0}));
  auto none = bounds(*txn, dbi_, "nobody");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  Query all;
  all.user = "al";
  EXPECT_EQ(count(*txn, dbi_, all).value(), 10u);
}

TEST_F(MamStore, IdsMustMatchTheirTag) {
  ArchiveId a = add("al", "b@x", "a", 10);
  ArchiveId b = add("al", "b@x", "b", 20);
  auto txn = env_->read();
  EXPECT_TRUE(exists(*txn, dbi_, "al", a).value());
  ArchiveId forged = a;
  forged.tag ^= 1;
  EXPECT_FALSE(exists(*txn, dbi_, "al", forged).value());
  EXPECT_FALSE(exists(*txn, dbi_, "bo", a).value());
  bool missing = false;
  auto page = fetch_ids(*txn, dbi_, "al", {b, a, b}, &missing);
  ASSERT_TRUE(page);
  EXPECT_FALSE(missing);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, a);
  EXPECT_EQ(page->items[1].id, b);
  page = fetch_ids(*txn, dbi_, "al", {a, forged}, &missing);
  EXPECT_TRUE(missing);
}

TEST_F(MamStore, SweepDeletesOnlyExpiredRowsAndTheirIndex) {
  for (uint64_t t = 1; t <= 10; ++t) {
    add("al", "b@x/r", "al" + std::to_string(t), t * 100);
    add("bo", "c@x", "bo" + std::to_string(t), t * 100 + 50);
  }
  add("ca", "b@x", "ca", 5000);
  ASSERT_EQ(keys(), 42u);  // row + index each
  std::string resume;
  // Cutoff 500: rows at 100..400 of al, 150..450 of bo go; 500 stays.
  auto r = sweep(*env_, dbi_, 500, 1000, &resume);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->deleted, 8u);
  EXPECT_FALSE(r->more);
  EXPECT_EQ(resume, "");
  EXPECT_EQ(keys(), 42u - 16u);
  Query q;
  q.user = "al";
  EXPECT_EQ(bodies(q).front(), "al5");
  q.with_bare = "b@x";
  EXPECT_EQ(bodies(q).front(), "al5");  // the index has no dangling keys
  q.user = "bo";
  q.with_bare = "c@x";
  EXPECT_EQ(bodies(q).front(), "bo5");
  // A small budget continues where it stopped.
  uint64_t total = 0;
  int calls = 0;
  do {
    r = sweep(*env_, dbi_, 1000, 3, &resume);
    ASSERT_TRUE(r);
    total += r->deleted;
    ++calls;
  } while (r->more && calls < 20);
  EXPECT_EQ(total, 10u);  // al 500..900, bo 550..950
  EXPECT_GE(calls, 4);
  q = Query{};
  q.user = "al";
  EXPECT_EQ(bodies(q), (V{"al10"}));
  q.user = "ca";
  EXPECT_EQ(bodies(q), (V{"ca"}));
  EXPECT_EQ(keys(), 6u);
}

}  // namespace
}  // namespace hearth::modules::mam
