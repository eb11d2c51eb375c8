// Roster item records, XEP-0237 version parsing and the RFC 6121 §2.3.3
// checks of a roster set's <item/>.
#include "modules/roster/roster.h"

#include <gtest/gtest.h>

#include <string>

#include "xml/fragment.h"

namespace hearth::modules {
namespace {

RosterItem sample() {
  RosterItem it;
  it.jid = "bob@localhost";
  it.name = "Bob";
  it.groups = {"Friends", "Work"};
  it.subscription = Subscription::kBoth;
  it.ask = true;
  it.approved = false;
  it.version = 0x0102030405060708ULL;
  return it;
}

TEST(RosterItemCodec, RoundTrips) {
  RosterItem it = sample();
  std::string v = encode_item(it);
  Result<RosterItem> back = decode_item("bob@localhost", v);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value(), it);
}

TEST(RosterItemCodec, BigEndianVersionAndFlags) {
  RosterItem it = sample();
  std::string v = encode_item(it);
  ASSERT_GE(v.size(), 11u);
  EXPECT_EQ(static_cast<uint8_t>(v[0]), 1);  // format
  EXPECT_EQ(static_cast<uint8_t>(v[1]), 3);  // both
  EXPECT_EQ(static_cast<uint8_t>(v[2]), 1);  // ask
  EXPECT_EQ(static_cast<uint8_t>(v[3]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(v[10]), 0x08);
}

TEST(RosterItemCodec, RejectsTruncatedTrailingAndBadValues) {
  std::string v = encode_item(sample());
  for (size_t n = 0; n < v.size(); ++n)
    EXPECT_FALSE(decode_item("bob@localhost", v.substr(0, n)).ok()) << n;
  EXPECT_FALSE(decode_item("bob@localhost", v + "x").ok());
  std::string bad_sub = v;
  bad_sub[1] = 4;
  EXPECT_FALSE(decode_item("bob@localhost", bad_sub).ok());
  std::string bad_format = v;
  bad_format[0] = 2;
  EXPECT_FALSE(decode_item("bob@localhost", bad_format).ok());
}

TEST(RosterVersion, OnlyKnownNumbers) {
  EXPECT_EQ(parse_version("0", 5), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_version("5", 5), std::optional<uint64_t>(5));
  EXPECT_EQ(parse_version("3", 5), std::optional<uint64_t>(3));
  EXPECT_FALSE(parse_version("6", 5));  // from the future: not ours
  EXPECT_FALSE(parse_version("", 5));
  EXPECT_FALSE(parse_version("abc", 5));
  EXPECT_FALSE(parse_version("3x", 5));
  EXPECT_FALSE(parse_version("-1", 5));
  EXPECT_FALSE(parse_version("99999999999999999999999", 5));
}

ItemCheck check(const std::string& xml, std::vector<std::string>* groups) {
  static xml::Arena arena;
  Result<xml::Element*> e = xml::parse_fragment(xml, arena);
  EXPECT_TRUE(e.ok()) << xml;
  if (!e.ok()) return {"x", "x", "x"};
  return check_item_fields(**e, groups);
}

TEST(RosterSetChecks, AcceptsGroupsAndName) {
  std::vector<std::string> groups;
  ItemCheck c = check(
      "<item xmlns='jabber:iq:roster' jid='a@b' name='A'><group>x</group>"
      "<group>y</group></item>",
      &groups);
  EXPECT_TRUE(c.type.empty()) << c.condition;
  EXPECT_EQ(groups, (std::vector<std::string>{"x", "y"}));
}

TEST(RosterSetChecks, Rfc6121Conditions) {
  std::vector<std::string> groups;
  EXPECT_EQ(check("<item xmlns='jabber:iq:roster' jid='a@b'><group/></item>", &groups).condition,
            "not-acceptable");
  EXPECT_EQ(check("<item xmlns='jabber:iq:roster' jid='a@b'><group>x</group><group>x</group>"
                  "</item>",
                  &groups)
                .condition,
            "bad-request");
  std::string long_name(kMaxNameBytes + 1, 'n');
  EXPECT_EQ(check("<item xmlns='jabber:iq:roster' jid='a@b' name='" + long_name + "'/>", &groups)
                .condition,
            "not-acceptable");
  std::string ok_name(kMaxNameBytes, 'n');
  EXPECT_TRUE(check("<item xmlns='jabber:iq:roster' jid='a@b' name='" + ok_name + "'/>", &groups)
                  .type.empty());
  std::string many = "<item xmlns='jabber:iq:roster' jid='a@b'>";
  for (size_t i = 0; i <= kMaxGroups; ++i)
    many += "<group>g" + std::to_string(i) + "</group>";
  many += "</item>";
  EXPECT_EQ(check(many, &groups).condition, "not-acceptable");
}

TEST(RosterItemXml, AttributesAsRfc6121) {
  xml::Arena arena;
  xml::Element* q = arena.make_element("query", kNsRoster);
  add_item_element(*q, sample());
  RosterItem pre;
  pre.jid = "carol@localhost";
  pre.approved = true;
  add_item_element(*q, pre);
  add_item_element(*q, pre, true);
  std::string out;
  xml::serialize(*q, &out);
  EXPECT_EQ(out,
            "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob' "
            "subscription='both' ask='subscribe'><group>Friends</group><group>Work</group>"
            "</item><item jid='carol@localhost' subscription='none' approved='true'/>"
            "<item jid='carol@localhost' subscription='remove'/></query>");
}

}  // namespace
}  // namespace hearth::modules
