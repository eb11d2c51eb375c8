#include "storage/txn.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/codec.h"
#include "storage/env.h"

namespace hearth::storage {
namespace {

using namespace std::string_literals;

class StorageTxn : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-txn-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    EnvOptions o;
    o.map_size = 1 << 20;
    o.dbs = {"t", "other"};
    auto env = Env::open(dir_ + "/data.mdb", o);
    ASSERT_TRUE(env.ok()) << env.error().message;
    env_ = std::move(env).value();
    db_ = env_->db("t").value();
  }
  void TearDown() override {
    env_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::optional<std::string> read(std::string_view key) {
    auto txn = env_->read();
    if (!txn) return std::nullopt;
    auto v = txn->get(db_, key);
    if (!v || !v->has_value()) return std::nullopt;
    return std::string(**v);
  }

  std::vector<std::pair<std::string, std::string>> walk(std::string_view prefix,
                                                        size_t stop_after = SIZE_MAX) {
    std::vector<std::pair<std::string, std::string>> out;
    auto txn = env_->read();
    EXPECT_TRUE(txn.ok());
    Status s = txn->for_each(db_, prefix, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return out.size() < stop_after;
    });
    EXPECT_TRUE(s.ok());
    return out;
  }

  std::string dir_;
  std::unique_ptr<Env> env_;
  Dbi db_ = 0;
};

TEST_F(StorageTxn, PutGetDelete) {
  auto w = env_->begin_write();
  ASSERT_TRUE(w.ok());
  w->put(db_, "a", "1");
  w->put(db_, "b", "2"s + '\0' + "binary");
  auto own = w->get(db_, "a");  // a write txn sees its own writes
  ASSERT_TRUE(own.ok() && own->has_value());
  EXPECT_EQ(**own, "1");
  ASSERT_TRUE(w->commit().ok());
  EXPECT_FALSE(w->active());

  EXPECT_EQ(read("a"), "1");
  EXPECT_EQ(read("b"), "2\0binary"s);
  EXPECT_EQ(read("c"), std::nullopt);

  Status s = env_->write([&](WriteTxn& txn) -> Status {
    EXPECT_TRUE(txn.del(db_, "a"));
    EXPECT_FALSE(txn.del(db_, "never"));
    txn.put(db_, "b", "overwritten");
    return {};
  });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(read("a"), std::nullopt);
  EXPECT_EQ(read("b"), "overwritten");
}

TEST_F(StorageTxn, DatabasesAreSeparate) {
  Dbi other = env_->db("other").value();
  ASSERT_TRUE(env_->write([&](WriteTxn& txn) -> Status {
                    txn.put(other, "k", "in-other");
                    return {};
                  })
                  .ok());
  EXPECT_EQ(read("k"), std::nullopt);
}

TEST_F(StorageTxn, DestructorAborts) {
  {
    auto w = env_->begin_write();
    ASSERT_TRUE(w.ok());
    w->put(db_, "lost", "x");
  }
  EXPECT_EQ(read("lost"), std::nullopt);
  // The writer lock was released: another write works.
  auto w = env_->begin_write();
  ASSERT_TRUE(w.ok()) << w.error().message;
  w->put(db_, "kept", "y");
  w->abort();
  EXPECT_FALSE(w->commit().ok());  // nothing left to commit
  EXPECT_EQ(read("kept"), std::nullopt);
}

TEST_F(StorageTxn, FailingWriteFunctionWritesNothing) {
  Status s = env_->write([&](WriteTxn& txn) -> Status {
    txn.put(db_, "partial", "x");
    return make_error("changed my mind");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "changed my mind");
  EXPECT_EQ(read("partial"), std::nullopt);
}

TEST_F(StorageTxn, MoveTransfersOwnership) {
  auto w = env_->begin_write();
  ASSERT_TRUE(w.ok());
  WriteTxn a = std::move(*w);
  EXPECT_FALSE(w->active());
  a.put(db_, "moved", "1");
  WriteTxn b = std::move(a);
  EXPECT_FALSE(a.active());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  ASSERT_TRUE(b.commit().ok());
  EXPECT_EQ(read("moved"), "1");
}

TEST_F(StorageTxn, StickyErrorSkipsLaterWritesAndFailsCommit) {
  auto w = env_->begin_write();
  ASSERT_TRUE(w.ok());
  w->put(db_, "before", "1");
  w->put(db_, "", "empty keys are invalid in LMDB");
  ASSERT_FALSE(w->status().ok());
  const std::string first = w->status().error().message;
  EXPECT_NE(first.find("mdb_put"), std::string::npos) << first;
  w->put(db_, "after", "2");
  EXPECT_FALSE(w->del(db_, "before"));
  EXPECT_FALSE(w->get(db_, "before").ok());
  Status c = w->commit();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, first);  // the first error, not a later one
  EXPECT_FALSE(w->active());
  EXPECT_EQ(read("before"), std::nullopt);
  EXPECT_EQ(read("after"), std::nullopt);
}

TEST_F(StorageTxn, OversizedKeyIsAnErrorNotACrash) {
  Status s = env_->write([&](WriteTxn& txn) -> Status {
    txn.put(db_, std::string(4096, 'k'), "v");
    return {};
  });
  EXPECT_FALSE(s.ok());
  auto r = env_->read();
  ASSERT_TRUE(r.ok());
  auto v = r->get(db_, std::string(4096, 'k'));
  EXPECT_TRUE(!v.ok() || !v->has_value());
}

TEST_F(StorageTxn, NestedWriteIsRefusedNotDeadlocked) {
  auto w = env_->begin_write();
  ASSERT_TRUE(w.ok());
  auto second = env_->begin_write();
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("already open"), std::string::npos);
  Status nested = env_->write([](WriteTxn&) -> Status { return {}; });
  EXPECT_FALSE(nested.ok());
  w->abort();
  EXPECT_TRUE(env_->begin_write().ok());
}

TEST_F(StorageTxn, ReadTxnKeepsItsSnapshot) {
  ASSERT_TRUE(env_->write([&](WriteTxn& txn) -> Status {
                    txn.put(db_, "k", "old");
                    return {};
                  })
                  .ok());
  auto r = env_->read();
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(env_->write([&](WriteTxn& txn) -> Status {
                    txn.put(db_, "k", "new");
                    return {};
                  })
                  .ok());
  auto v = r->get(db_, "k");
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ(**v, "old");
  EXPECT_EQ(read("k"), "new");
  r->abort();
  EXPECT_FALSE(r->get(db_, "k").ok());  // ended
}

TEST_F(StorageTxn, ForEachPrefixInKeyOrder) {
  ASSERT_TRUE(env_->write([&](WriteTxn& txn) -> Status {
                    for (const char* k : {"b", "abd", "a", "ac", "abc", "ab", "\xff", "\xff\x01"}) {
                      txn.put(db_, k, std::string("v:") + k);
                    }
                    return {};
                  })
                  .ok());
  using KV = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(walk("ab"), (KV{{"ab", "v:ab"}, {"abc", "v:abc"}, {"abd", "v:abd"}}));
  EXPECT_EQ(walk("abc"), (KV{{"abc", "v:abc"}}));
  EXPECT_EQ(walk("aa"), KV{});
  EXPECT_EQ(walk("zz"), KV{});
  EXPECT_EQ(walk("\xff"), (KV{{"\xff", "v:\xff"}, {"\xff\x01", "v:\xff\x01"}}));
  EXPECT_EQ(walk("\xff\xff"), KV{});
  KV all = walk("");
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all.front().first, "a");
  EXPECT_EQ(all.back().first, "\xff\x01");
  // Stopping early.
  EXPECT_EQ(walk("a", 2), (KV{{"a", "v:a"}, {"ab", "v:ab"}}));
}

TEST_F(StorageTxn, BigEndianKeysIterateInNumericOrder) {
  const std::string user = "alice";
  ASSERT_TRUE(env_->write([&](WriteTxn& txn) -> Status {
                    for (uint64_t ts : {300u, 2u, 256u, 1u, 70000u}) {
                      std::string key;
                      append_bytes(key, user);
                      append_u64(key, ts);
                      txn.put(db_, key, std::to_string(ts));
                    }
                    std::string other;
                    append_bytes(other, "alicf");
                    append_u64(other, 0);
                    txn.put(db_, other, "other user");
                    return {};
                  })
                  .ok());
  std::string prefix;
  append_bytes(prefix, user);
  std::vector<std::string> seen;
  for (const auto& [k, v] : walk(prefix)) {
    Reader r(k);
    std::string_view name;
    uint64_t ts = 0;
    ASSERT_TRUE(r.bytes(&name) && r.u64(&ts) && r.finish().ok());
    EXPECT_EQ(std::to_string(ts), v);
    seen.push_back(v);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "256", "300", "70000"}));
}

}  // namespace
}  // namespace hearth::storage
