// Txn::range (bounded forward and reverse cursor walks) and prefix_end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/env.h"
#include "storage/txn.h"

namespace hearth::storage {
namespace {

using namespace std::string_literals;

class StorageRange : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-range-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    EnvOptions o;
    o.map_size = 1 << 20;
    o.dbs = {"t"};
    auto env = Env::open(dir_ + "/data.mdb", o);
    ASSERT_TRUE(env.ok()) << env.error().message;
    env_ = std::move(env).value();
    db_ = env_->db("t").value();
    Status s = env_->write([&](WriteTxn& t) -> Status {
      for (const char* k : {"a", "b", "b\x01", "c", "d", "e"})
        t.put(db_, k, std::string("v") + k);
      t.put(db_, "x\xff"s, "ff");
      return {};
    });
    ASSERT_TRUE(s) << s.error().message;
  }
  void TearDown() override {
    env_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Keys visited, stopping after `limit`.
  std::vector<std::string> walk(std::string_view lower, std::string_view upper, bool reverse,
                                size_t limit = 100) {
    auto txn = env_->read();
    EXPECT_TRUE(txn.ok());
    std::vector<std::string> keys;
    Status s = txn->range(db_, lower, upper, reverse, [&](std::string_view k, std::string_view v) {
      EXPECT_EQ(v, k == "x\xff"s ? "ff"s : "v" + std::string(k));
      keys.emplace_back(k);
      return keys.size() < limit;
    });
    EXPECT_TRUE(s) << s.error().message;
    return keys;
  }

  std::string dir_;
  std::unique_ptr<Env> env_;
  Dbi db_ = 0;
};

using V = std::vector<std::string>;

TEST_F(StorageRange, ForwardIsHalfOpen) {
  EXPECT_EQ(walk("b", "d", false), (V{"b", "b\x01", "c"}));
  EXPECT_EQ(walk("b\x01", "c", false), (V{"b\x01"}));
  // Bounds need not exist.
  EXPECT_EQ(walk("bb", "cc", false), (V{"c"}));
  EXPECT_EQ(walk("", "b", false), (V{"a"}));
  EXPECT_EQ(walk("d", "", false), (V{"d", "e", "x\xff"s}));
}

TEST_F(StorageRange, ReverseStartsBelowUpper) {
  EXPECT_EQ(walk("b", "d", true), (V{"c", "b\x01", "b"}));
  EXPECT_EQ(walk("bb", "cc", true), (V{"c"}));
  // Upper beyond the last key: from the last key.
  EXPECT_EQ(walk("d", "z", true), (V{"x\xff"s, "e", "d"}));
  EXPECT_EQ(walk("d", "", true), (V{"x\xff"s, "e", "d"}));
  EXPECT_EQ(walk("", "a", true), V{});
  EXPECT_EQ(walk("", "", true, 2), (V{"x\xff"s, "e"}));
}

TEST_F(StorageRange, EmptyAndInvertedRangesVisitNothing) {
  EXPECT_EQ(walk("c", "c", false), V{});
  EXPECT_EQ(walk("c", "c", true), V{});
  EXPECT_EQ(walk("d", "b", false), V{});
  EXPECT_EQ(walk("d", "b", true), V{});
  EXPECT_EQ(walk("y", "", false), V{});
  EXPECT_EQ(walk("y", "", true), V{});
}

TEST_F(StorageRange, StopsWhenTheCallbackSaysSo) {
  EXPECT_EQ(walk("a", "", false, 2), (V{"a", "b"}));
  EXPECT_EQ(walk("a", "e", true, 1), (V{"d"}));
}

TEST_F(StorageRange, EmptyTable) {
  Status s = env_->write([&](WriteTxn& t) -> Status {
    for (const char* k : {"a", "b", "b\x01", "c", "d", "e"})
      t.del(db_, k);
    t.del(db_, "x\xff"s);
    return {};
  });
  ASSERT_TRUE(s);
  EXPECT_EQ(walk("", "", false), V{});
  EXPECT_EQ(walk("", "", true), V{});
  EXPECT_EQ(walk("a", "z", true), V{});
}

TEST_F(StorageRange, WorksInAWriteTransaction) {
  std::vector<std::string> keys;
  Status s = env_->write([&](WriteTxn& t) -> Status {
    keys.clear();
    return t.range(db_, "b", "e", true, [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return true;
    });
  });
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(keys, (V{"d", "c", "b\x01", "b"}));
}

TEST(StoragePrefixEnd, IncrementsTheLastByteThatCan) {
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end("a\0"s), "a\x01");
  EXPECT_EQ(prefix_end("a\xff\xff"s), "b");
  EXPECT_EQ(prefix_end("\xff"s), "");
  EXPECT_EQ(prefix_end(""), "");
  // Every key with the prefix sorts below its end, and the end is above.
  std::string p = "al\0m"s;
  EXPECT_LT(p + "\xff\xff\xff"s, prefix_end(p));
  EXPECT_GT(std::string("al\0n"s), p);
  EXPECT_LE(prefix_end(p), std::string("al\0n"s));
}

}  // namespace
}  // namespace hearth::storage
