#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "modules/pep/node.h"
#include "storage/codec.h"
#include "xml/element.h"

namespace hearth::modules::pep {
namespace {

// A submitted form with the given (var, value) fields.
xml::Element* form(xml::Arena& arena, std::vector<std::pair<std::string, std::string>> fields,
                   std::string_view type = "submit") {
  xml::Element* x = arena.make_element("x", kNsData);
  if (!type.empty()) x->set_attr("type", type);
  for (const auto& [var, value] : fields) {
    xml::Element* f = x->add_child("field", kNsData);
    f->set_attr("var", var);
    f->add_child("value", kNsData)->add_text(value);
  }
  return x;
}

TEST(PepConfigTest, DefaultsAreThoseOfXep0163) {
  NodeConfig c;
  EXPECT_EQ(c.access, AccessModel::kPresence);
  EXPECT_EQ(c.max_items, 1u);
  EXPECT_TRUE(c.persist_items);
  EXPECT_EQ(c.send_last, SendLast::kOnSubAndPresence);
}

TEST(PepConfigTest, BookmarksPublishOptionsApply) {
  xml::Arena arena;
  NodeConfig c;
  ASSERT_TRUE(apply_form(*form(arena, {{"FORM_TYPE", std::string(kFormPublishOptions)},
                                       {"pubsub#persist_items", "true"},
                                       {"pubsub#max_items", "max"},
                                       {"pubsub#send_last_published_item", "never"},
                                       {"pubsub#access_model", "whitelist"}}),
                         256, &c));
  EXPECT_EQ(c.access, AccessModel::kWhitelist);
  EXPECT_EQ(c.max_items, kMaxItemsMax);
  EXPECT_EQ(c.send_last, SendLast::kNever);
  EXPECT_EQ(c.effective_max(256), 256u);
  EXPECT_EQ(c.effective_max(10), 10u);
}

TEST(PepConfigTest, InvalidValuesFailAndLeaveTheConfigAlone) {
  xml::Arena arena;
  const std::vector<std::pair<std::string, std::string>> bad[] = {
      {{"pubsub#access_model", "authorize"}}, {{"pubsub#max_items", "0"}},
      {{"pubsub#max_items", "12x"}},          {{"pubsub#max_items", "257"}},
      {{"pubsub#persist_items", "yes"}},      {{"pubsub#send_last_published_item", "always"}},
      {{"pubsub#publish_model", "open"}},     {{"pubsub#deliver_notifications", "0"}},
      {{"FORM_TYPE", "urn:example:other"}},
  };
  for (const auto& fields : bad) {
    NodeConfig c;
    c.title = "before";
    Status s = apply_form(*form(arena, {{"pubsub#title", "changed"}, fields[0]}), 256, &c);
    EXPECT_FALSE(s) << fields[0].first << "=" << fields[0].second;
    EXPECT_EQ(c.title, "before");
  }
  NodeConfig c;
  EXPECT_FALSE(apply_form(*form(arena, {}, "form"), 256, &c));
  EXPECT_FALSE(apply_form(*arena.make_element("x", "urn:other"), 256, &c));
}

TEST(PepConfigTest, UnknownFieldsAreIgnored) {
  xml::Arena arena;
  NodeConfig c;
  ASSERT_TRUE(
      apply_form(*form(arena, {{"pubsub#type", "urn:x"}, {"pubsub#max_items", "5"}}), 256, &c));
  EXPECT_EQ(c.max_items, 5u);
}

TEST(PepConfigTest, PreconditionsCompareWithTheExistingNode) {
  xml::Arena arena;
  NodeConfig existing;
  existing.access = AccessModel::kOpen;
  EXPECT_TRUE(preconditions_met(*form(arena, {{"pubsub#access_model", "open"}}), 256, existing));
  EXPECT_FALSE(
      preconditions_met(*form(arena, {{"pubsub#access_model", "presence"}}), 256, existing));
  EXPECT_FALSE(preconditions_met(*form(arena, {{"pubsub#max_items", "max"}}), 256, existing));
  // An invalid form is never met.
  EXPECT_FALSE(preconditions_met(*form(arena, {{"pubsub#access_model", "x"}}), 256, existing));
}

TEST(PepConfigTest, TransientNodeKeepsOnlyTheLastItem) {
  NodeConfig c;
  c.max_items = 50;
  EXPECT_EQ(c.effective_max(256), 50u);
  c.persist_items = false;
  EXPECT_EQ(c.effective_max(256), 1u);
}

TEST(PepConfigTest, ConfigFormRoundTrips) {
  xml::Arena arena;
  NodeConfig c;
  c.access = AccessModel::kWhitelist;
  c.max_items = kMaxItemsMax;
  c.send_last = SendLast::kNever;
  c.notify_retract = false;
  c.title = "Bookmarks";
  xml::Element* x = config_form(c, arena);
  EXPECT_EQ(x->attr("type"), "form");
  x->set_attr("type", "submit");  // a client submits what it got back
  NodeConfig back;
  ASSERT_TRUE(apply_form(*x, 256, &back));
  EXPECT_EQ(back, c);
}

TEST(PepAccessTest, Decisions) {
  // The owner reads everything.
  for (AccessModel m : {AccessModel::kPresence, AccessModel::kOpen, AccessModel::kWhitelist})
    EXPECT_EQ(check_access(m, true, Subscription::kNone), Access::kAllowed);
  EXPECT_EQ(check_access(AccessModel::kOpen, false, Subscription::kNone), Access::kAllowed);
  EXPECT_EQ(check_access(AccessModel::kPresence, false, Subscription::kFrom), Access::kAllowed);
  EXPECT_EQ(check_access(AccessModel::kPresence, false, Subscription::kBoth), Access::kAllowed);
  // 'to' only: the owner sees the contact's presence, not the other way.
  EXPECT_EQ(check_access(AccessModel::kPresence, false, Subscription::kTo),
            Access::kPresenceRequired);
  EXPECT_EQ(check_access(AccessModel::kPresence, false, Subscription::kNone),
            Access::kPresenceRequired);
  EXPECT_EQ(check_access(AccessModel::kWhitelist, false, Subscription::kBoth), Access::kClosed);
}

TEST(PepNotifyTest, NotifyNodesFromFeatures) {
  std::vector<std::string> nodes =
      notify_nodes({"http://jabber.org/protocol/disco#info", "urn:xmpp:avatar:metadata+notify",
                    "eu.siacs.conversations.axolotl.devicelist+notify", "+notify",
                    "urn:xmpp:avatar:metadata+notify", "http://jabber.org/protocol/nick"});
  EXPECT_EQ(nodes, (std::vector<std::string>{"eu.siacs.conversations.axolotl.devicelist",
                                             "urn:xmpp:avatar:metadata"}));
  EXPECT_TRUE(wants(nodes, "urn:xmpp:avatar:metadata"));
  EXPECT_TRUE(wants(nodes, "eu.siacs.conversations.axolotl.devicelist"));
  EXPECT_FALSE(wants(nodes, "http://jabber.org/protocol/nick"));
  EXPECT_FALSE(wants(nodes, "urn:xmpp:avatar"));
  EXPECT_FALSE(wants({}, "urn:xmpp:avatar:metadata"));
}

TEST(PepStorageTest, NodeRecordRoundTripsAndRejectsGarbage) {
  NodeRecord n;
  n.config.access = AccessModel::kOpen;
  n.config.max_items = kMaxItemsMax;
  n.config.persist_items = false;
  n.config.send_last = SendLast::kOnSub;
  n.config.notify_retract = false;
  n.config.title = "t";
  n.next_seq = 0x0102030405060708ull;
  n.item_count = 7;
  std::string v = encode_node(n);
  auto back = decode_node(v);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->config, n.config);
  EXPECT_EQ(back->next_seq, n.next_seq);
  EXPECT_EQ(back->item_count, 7u);
  EXPECT_FALSE(decode_node(v.substr(0, v.size() - 1)));
  EXPECT_FALSE(decode_node(v + "x"));
  std::string bad_access = v;
  bad_access[1] = 9;
  EXPECT_FALSE(decode_node(bad_access));
}

TEST(PepStorageTest, ItemRecordRoundTrips) {
  std::string v = encode_item("current", "<list xmlns='urn:x'/>", 1700000000);
  auto back = decode_item(v);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, "current");
  EXPECT_EQ(back->payload, "<list xmlns='urn:x'/>");
  EXPECT_EQ(back->published, 1700000000u);
  EXPECT_FALSE(decode_item(v.substr(0, 5)));
}

TEST(PepStorageTest, ItemKeysSortInPublishOrderWithinTheirNode) {
  const std::string prefix = items_prefix("alice", "n");
  EXPECT_EQ(prefix, std::string("alice\0n\0", 8));
  std::string k1 = item_key("alice", "n", 1);
  std::string k255 = item_key("alice", "n", 255);
  std::string k256 = item_key("alice", "n", 256);
  std::string kbig = item_key("alice", "n", 0x0100000000000000ull);
  EXPECT_LT(k1, k255);
  EXPECT_LT(k255, k256);  // big-endian: numeric order is byte order
  EXPECT_LT(k256, kbig);
  for (const std::string& k : {k1, k255, k256, kbig})
    EXPECT_EQ(k.compare(0, prefix.size(), prefix), 0);
  EXPECT_EQ(item_seq(k256, prefix.size()), 256u);
  EXPECT_EQ(item_seq(kbig, prefix.size()), 0x0100000000000000ull);
  EXPECT_FALSE(item_seq(k256 + "x", prefix.size()));
  // Another node whose name starts with this one's is not under the prefix.
  EXPECT_NE(item_key("alice", "nn", 1).compare(0, prefix.size(), prefix), 0);
  EXPECT_EQ(node_key("alice", "n"), std::string("alice\0n", 7));
  EXPECT_EQ(id_key("alice", "n", "x"), std::string("alice\0n\0x", 9));
}

TEST(PepStorageTest, DelayStampIsXep0082Utc) {
  EXPECT_EQ(format_stamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_stamp(1700000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(format_stamp(951782400), "2000-02-29T00:00:00Z");
}

TEST(PepStorageTest, GeneratedItemIdsAreHexAndDiffer) {
  std::string a = new_item_id(), b = new_item_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace hearth::modules::pep
