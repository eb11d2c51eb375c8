#include "modules/blocking/blocking.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "module_fixture.h"
#include "modules/module.h"
#include "storage/env.h"

namespace hearth::modules::blocking {
namespace {

using test::jid;
using test::Strings;

TEST(BlockingMatch, FullJidInXep0191Order) {
  EXPECT_EQ(match_candidates(jid("Romeo@Montague.net/Orchard")),
            (Strings{"romeo@montague.net/Orchard", "romeo@montague.net", "montague.net/Orchard",
                     "montague.net", "net"}));
}

TEST(BlockingMatch, BareJidAndDomains) {
  EXPECT_EQ(match_candidates(jid("iago@shakespeare.lit")),
            (Strings{"iago@shakespeare.lit", "shakespeare.lit", "lit"}));
  EXPECT_EQ(match_candidates(jid("localhost")), (Strings{"localhost"}));
  EXPECT_EQ(match_candidates(jid("a.b.example/res")),
            (Strings{"a.b.example/res", "a.b.example", "b.example", "example"}));
  EXPECT_TRUE(match_candidates(xmpp::Jid()).empty());
}

class BlockingStore : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(env_.open("hearth-block", {std::string(kTable)}, 1 << 20));
    list_ = std::make_unique<Blocklist>(*env_, env_->db(kTable).value());
  }
  void TearDown() override { list_.reset(); }

  Strings items(std::string_view user) {
    auto r = list_->items(user);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : Strings{};
  }

  test::TempEnv env_;
  std::unique_ptr<Blocklist> list_;
};

TEST_F(BlockingStore, AddReportsOnlyNewItemsAndKeysAreUserPrefixed) {
  Strings added;
  bool full = true;
  ASSERT_TRUE(list_->add("alice", {"bob@localhost", "evil.example"}, 100, &added, &full).ok());
  EXPECT_FALSE(full);
  EXPECT_EQ(added, (Strings{"bob@localhost", "evil.example"}));
  ASSERT_TRUE(list_->add("alice", {"bob@localhost", "carol@localhost"}, 100, &added, &full).ok());
  EXPECT_EQ(added, (Strings{"carol@localhost"}));
  EXPECT_EQ(items("alice"), (Strings{"bob@localhost", "carol@localhost", "evil.example"}));
  EXPECT_TRUE(items("bob").empty());
  // Account deletion reaches every item through the user_key prefix.
  auto txn = env_->read();
  ASSERT_TRUE(txn.ok());
  auto v = txn->get(env_->db(kTable).value(), user_key("alice", "bob@localhost"));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->has_value());
}

TEST_F(BlockingStore, MatchesFullBareAndDomainItems) {
  Strings added;
  bool full = false;
  ASSERT_TRUE(list_
                  ->add("alice",
                        {"bob@localhost", "carol@localhost/phone", "evil.example", "host.org/bot"},
                        100, &added, &full)
                  .ok());
  EXPECT_TRUE(list_->matches("alice", jid("bob@localhost")));
  EXPECT_TRUE(list_->matches("alice", jid("bob@localhost/any")));
  EXPECT_TRUE(list_->matches("alice", jid("carol@localhost/phone")));
  EXPECT_FALSE(list_->matches("alice", jid("carol@localhost/laptop")));
  EXPECT_FALSE(list_->matches("alice", jid("carol@localhost")));
  EXPECT_TRUE(list_->matches("alice", jid("evil.example")));
  EXPECT_TRUE(list_->matches("alice", jid("spammer@evil.example/x")));
  EXPECT_TRUE(list_->matches("alice", jid("muc.evil.example")));
  EXPECT_FALSE(list_->matches("alice", jid("notevil.example")));
  EXPECT_TRUE(list_->matches("alice", jid("host.org/bot")));
  EXPECT_TRUE(list_->matches("alice", jid("x@host.org/bot")));
  EXPECT_FALSE(list_->matches("alice", jid("x@host.org/human")));
  // Another user's list is not alice's.
  EXPECT_FALSE(list_->matches("bob", jid("bob@localhost")));
  EXPECT_FALSE(list_->matches("alic", jid("bob@localhost")));
}

TEST_F(BlockingStore, CapRefusesTheWholeBlockWithoutWriting) {
  Strings added;
  bool full = false;
  ASSERT_TRUE(list_->add("alice", {"a@x", "b@x"}, 3, &added, &full).ok());
  Status s = list_->add("alice", {"c@x", "d@x"}, 3, &added, &full);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(full);
  EXPECT_EQ(items("alice"), (Strings{"a@x", "b@x"}));
  // Re-blocking what is there does not count against the cap.
  ASSERT_TRUE(list_->add("alice", {"a@x", "c@x"}, 3, &added, &full).ok());
  EXPECT_FALSE(full);
  EXPECT_EQ(added, (Strings{"c@x"}));
}

TEST_F(BlockingStore, RemoveAndClear) {
  Strings changed;
  bool full = false;
  ASSERT_TRUE(list_->add("alice", {"a@x", "b@x", "c@x"}, 100, &changed, &full).ok());
  ASSERT_TRUE(list_->add("bob", {"a@x"}, 100, &changed, &full).ok());
  ASSERT_TRUE(list_->remove("alice", {"b@x", "zz@x"}, &changed).ok());
  EXPECT_EQ(changed, (Strings{"b@x"}));
  EXPECT_EQ(items("alice"), (Strings{"a@x", "c@x"}));
  ASSERT_TRUE(list_->clear("alice", &changed).ok());
  EXPECT_EQ(changed, (Strings{"a@x", "c@x"}));
  EXPECT_TRUE(items("alice").empty());
  EXPECT_FALSE(list_->matches("alice", jid("a@x")));
  EXPECT_EQ(items("bob"), (Strings{"a@x"}));
}

}  // namespace
}  // namespace hearth::modules::blocking
