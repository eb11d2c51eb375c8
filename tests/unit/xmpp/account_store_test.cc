#include "xmpp/account_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "storage/codec.h"
#include "storage/env.h"
#include "xmpp/scram.h"

namespace hearth::xmpp {
namespace {

using namespace std::string_literals;

constexpr uint32_t kIterations = 64;  // small: the derivation is not under test here

class AccountStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-acct-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/accounts.mdb";
    reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void reopen() {
    store_.reset();
    auto s = AccountStore::open(path_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }

  AccountRecord get_ok(std::string_view user) {
    auto r = store_->get(user);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no account " << user;
      return {};
    }
    return **r;
  }

  // Raw access to accounts.mdb with the store closed (one LMDB handle per
  // file per process at a time).
  void with_raw_db(const std::function<void(storage::WriteTxn&, storage::Dbi)>& fn) {
    store_.reset();
    {
      storage::EnvOptions o;
      o.dbs = {"accounts"};
      auto env = storage::Env::open(path_, o);
      ASSERT_TRUE(env.ok()) << env.error().message;
      storage::Dbi db = (*env)->db("accounts").value();
      Status s = (*env)->write([&](storage::WriteTxn& txn) -> Status {
        fn(txn, db);
        return {};
      });
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
    reopen();
  }

  std::string raw_record(std::string_view user) {
    std::string out;
    with_raw_db([&](storage::WriteTxn& txn, storage::Dbi db) {
      auto v = txn.get(db, user);
      ASSERT_TRUE(v.ok() && v->has_value());
      out = std::string(**v);
    });
    return out;
  }

  std::string dir_, path_;
  std::unique_ptr<AccountStore> store_;
};

// The credentials must be exactly what SCRAM derives from the password and
// the stored salt, so a login with that password will succeed.
void expect_credentials_for(const ScramCredentials& c, ScramHash h, std::string_view password,
                            uint32_t iterations) {
  EXPECT_EQ(c.salt.size(), 16u);
  EXPECT_EQ(c.iterations, iterations);
  auto prepared = prepare_password(password);
  ASSERT_TRUE(prepared.ok());
  auto expected = scram_derive(h, *prepared, c.salt, iterations);
  ASSERT_TRUE(expected.ok()) << expected.error().message;
  EXPECT_EQ(c.stored_key, expected->stored_key);
  EXPECT_EQ(c.server_key, expected->server_key);
  EXPECT_EQ(c.stored_key.size(), scram_hash_size(h));
}

TEST_F(AccountStoreTest, CreateThenGet) {
  const uint64_t before = static_cast<uint64_t>(time(nullptr));
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  const uint64_t after = static_cast<uint64_t>(time(nullptr));
  AccountRecord r = get_ok("alice");
  EXPECT_EQ(r.username, "alice");
  EXPECT_GE(r.created, before);
  EXPECT_LE(r.created, after);
  expect_credentials_for(r.sha1, ScramHash::kSha1, "pencil", kIterations);
  expect_credentials_for(r.sha256, ScramHash::kSha256, "pencil", kIterations);
  EXPECT_NE(r.sha1.salt, r.sha256.salt);
  // Not derivable from a different password.
  auto other = scram_derive(ScramHash::kSha256, "pencil2", r.sha256.salt, kIterations);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->stored_key, r.sha256.stored_key);
}

TEST_F(AccountStoreTest, SaltsAreFreshPerAccount) {
  ASSERT_TRUE(store_->create("a", "same password", kIterations).ok());
  ASSERT_TRUE(store_->create("b", "same password", kIterations).ok());
  AccountRecord a = get_ok("a"), b = get_ok("b");
  EXPECT_NE(a.sha256.salt, b.sha256.salt);
  EXPECT_NE(a.sha256.stored_key, b.sha256.stored_key);
}

TEST_F(AccountStoreTest, MissingAccountIsEmptyNotError) {
  auto r = store_->get("nobody");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(AccountStoreTest, DuplicateCreateFailsAndKeepsCredentials) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  AccountRecord first = get_ok("alice");
  Status s = store_->create("alice", "other", kIterations);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "account 'alice' already exists");
  AccountRecord now = get_ok("alice");
  EXPECT_EQ(now.sha256.stored_key, first.sha256.stored_key);
  EXPECT_EQ(now.sha1.salt, first.sha1.salt);
}

TEST_F(AccountStoreTest, SetPasswordChangesCredentialsKeepsCreated) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  AccountRecord old = get_ok("alice");
  ASSERT_TRUE(store_->set_password("alice", "correct horse", kIterations * 2).ok());
  AccountRecord now = get_ok("alice");
  EXPECT_EQ(now.created, old.created);
  EXPECT_NE(now.sha1.stored_key, old.sha1.stored_key);
  EXPECT_NE(now.sha256.salt, old.sha256.salt);
  expect_credentials_for(now.sha1, ScramHash::kSha1, "correct horse", kIterations * 2);
  expect_credentials_for(now.sha256, ScramHash::kSha256, "correct horse", kIterations * 2);
}

TEST_F(AccountStoreTest, SetPasswordOfMissingAccountFails) {
  Status s = store_->set_password("bob", "pw", kIterations);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "no such account 'bob'");
  auto r = store_->get("bob");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(AccountStoreTest, BadPasswordOrIterationsCreateNothing) {
  EXPECT_FALSE(store_->create("alice", "", kIterations).ok());
  EXPECT_FALSE(store_->create("alice", "bell\x07", kIterations).ok());
  EXPECT_FALSE(store_->create("alice", "\xff\xfe", kIterations).ok());
  EXPECT_FALSE(store_->create("alice", "pencil", 0).ok());
  auto names = store_->list();
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(AccountStoreTest, UnicodePasswordIsPrepared) {
  // RFC 8265 OpaqueString: U+00A0 (no-break space) maps to U+0020, so both
  // spellings give the same credentials.
  ASSERT_TRUE(store_
                  ->create("u",
                           "a\xc2\xa0"
                           "b",
                           kIterations)
                  .ok());
  AccountRecord r = get_ok("u");
  expect_credentials_for(r.sha256, ScramHash::kSha256, "a b", kIterations);
}

TEST_F(AccountStoreTest, InvalidUsernamesAreErrors) {
  EXPECT_FALSE(store_->create("", "pw", kIterations).ok());
  Status s = store_->create(std::string(2000, 'x'), "pw", kIterations);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("longer than"), std::string::npos);
  EXPECT_FALSE(store_->get(std::string(2000, 'x')).ok());
}

TEST_F(AccountStoreTest, RemoveThenGone) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  ASSERT_TRUE(store_->remove("alice").ok());
  auto r = store_->get("alice");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  Status again = store_->remove("alice");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "no such account 'alice'");
  // The name can be taken again.
  EXPECT_TRUE(store_->create("alice", "new", kIterations).ok());
}

TEST_F(AccountStoreTest, ListIsSorted) {
  auto empty = store_->list();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  for (const char* u : {"carol", "alice", "bob", "al", "\xc3\xa9lodie", "zed"}) {
    ASSERT_TRUE(store_->create(u, "pw", kIterations).ok()) << u;
  }
  ASSERT_TRUE(store_->remove("zed").ok());
  auto names = store_->list();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"al", "alice", "bob", "carol", "\xc3\xa9lodie"}));
}

TEST_F(AccountStoreTest, PersistsAcrossReopen) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  AccountRecord before = get_ok("alice");
  reopen();
  AccountRecord after = get_ok("alice");
  EXPECT_EQ(after.sha256.stored_key, before.sha256.stored_key);
  EXPECT_EQ(after.created, before.created);
}

TEST_F(AccountStoreTest, RecordLayoutIsVersionedBigEndian) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  AccountRecord r = get_ok("alice");
  const std::string raw = raw_record("alice");
  // u8 version, u64 created, then per hash: salt, u32 iterations, keys.
  ASSERT_EQ(raw.size(), 1u + 8 + (4 + 16 + 4 + 4 + 20 + 4 + 20) + (4 + 16 + 4 + 4 + 32 + 4 + 32));
  EXPECT_EQ(raw[0], '\x01');
  std::string created;
  storage::append_u64(created, r.created);
  EXPECT_EQ(raw.substr(1, 8), created);
  EXPECT_EQ(raw.substr(9, 4), "\x00\x00\x00\x10"s);
  EXPECT_EQ(raw.substr(13, 16), r.sha1.salt);
  EXPECT_EQ(raw.substr(29, 4), "\x00\x00\x00\x40"s);  // 64 iterations
  EXPECT_EQ(raw.substr(33, 4), "\x00\x00\x00\x14"s);  // 20-byte StoredKey
  EXPECT_EQ(raw.substr(37, 20), r.sha1.stored_key);
  EXPECT_EQ(raw.substr(57, 4), "\x00\x00\x00\x14"s);
  EXPECT_EQ(raw.substr(61, 20), r.sha1.server_key);
  EXPECT_EQ(raw.substr(81, 4), "\x00\x00\x00\x10"s);
  EXPECT_EQ(raw.substr(101, 4), "\x00\x00\x00\x40"s);
  EXPECT_EQ(raw.substr(105, 4), "\x00\x00\x00\x20"s);  // 32-byte StoredKey
  EXPECT_EQ(raw.substr(109, 32), r.sha256.stored_key);
}

TEST_F(AccountStoreTest, CorruptRecordsAreErrorsNotCrashes) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  const std::string good = raw_record("alice");
  std::vector<std::pair<std::string, std::string>> bad;
  bad.emplace_back("empty", "");
  bad.emplace_back("version2", "\x02" + good.substr(1));
  bad.emplace_back("trailing", good + "x");
  std::string short_key = good;
  short_key[36] = '\x13';  // SHA-1 StoredKey length 19
  bad.emplace_back("shortkey", short_key);
  std::string zero_iter = good;
  zero_iter.replace(29, 4, "\x00\x00\x00\x00"s);
  bad.emplace_back("zeroiter", zero_iter);
  std::string huge_len = good;
  huge_len.replace(9, 4, "\xff\xff\xff\xff"s);
  bad.emplace_back("hugelen", huge_len);
  for (size_t n = 1; n < good.size(); ++n) {
    bad.emplace_back("trunc" + std::to_string(n), good.substr(0, n));
  }
  with_raw_db([&](storage::WriteTxn& txn, storage::Dbi db) {
    for (const auto& [user, value] : bad)
      txn.put(db, user, value);
  });
  for (const auto& [user, value] : bad) {
    auto r = store_->get(user);
    ASSERT_FALSE(r.ok()) << user;
    EXPECT_NE(r.error().message.find("corrupt record"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(user), std::string::npos);
  }
  // The good one is still fine, and a corrupt one can be repaired or removed.
  get_ok("alice");
  ASSERT_TRUE(store_->set_password("version2", "fixed", kIterations).ok());
  expect_credentials_for(get_ok("version2").sha256, ScramHash::kSha256, "fixed", kIterations);
  EXPECT_TRUE(store_->remove("trunc5").ok());
  EXPECT_FALSE(store_->create("empty", "pw", kIterations).ok());  // exists, even if corrupt
}

TEST_F(AccountStoreTest, AnotherProcessChangesAreSeen) {
  // The server holds the store open while `hearth user add/passwd/del` runs
  // in another process.
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  AccountRecord before = get_ok("alice");
  pid_t pid = fork();
  if (pid == 0) {
    auto cli = AccountStore::open(path_);
    if (!cli) _exit(10);
    if (!(*cli)->create("dave", "pw", kIterations).ok()) _exit(11);
    if (!(*cli)->set_password("alice", "changed", kIterations).ok()) _exit(12);
    if ((*cli)->create("alice", "x", kIterations).ok()) _exit(13);
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  get_ok("dave");
  AccountRecord after = get_ok("alice");
  EXPECT_NE(after.sha256.stored_key, before.sha256.stored_key);
  expect_credentials_for(after.sha256, ScramHash::kSha256, "changed", kIterations);
  auto names = store_->list();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"alice", "dave"}));
  ASSERT_TRUE(store_->remove("dave").ok());
}

TEST_F(AccountStoreTest, OpenFailsOnNewerSchema) {
  ASSERT_TRUE(store_->create("alice", "pencil", kIterations).ok());
  store_.reset();
  {
    storage::EnvOptions o;
    o.dbs = {"accounts"};
    auto env = storage::Env::open(path_, o);
    ASSERT_TRUE(env.ok());
    storage::Dbi meta = (*env)->db(storage::kMetaDb).value();
    ASSERT_TRUE((*env)
                    ->write([&](storage::WriteTxn& txn) -> Status {
                      txn.put(meta, storage::kSchemaVersionKey, "\x00\x00\x00\x07"s);
                      return {};
                    })
                    .ok());
  }
  auto s = AccountStore::open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message,
            "accounts.mdb has schema version 7, this hearth knows up to 1; upgrade hearth");
  // Refused, not damaged: with the version restored the account is there.
  {
    storage::EnvOptions o;
    o.dbs = {"accounts"};
    o.schema_version = 7;
    auto env = storage::Env::open(path_, o);
    ASSERT_TRUE(env.ok());
    storage::Dbi meta = (*env)->db(storage::kMetaDb).value();
    ASSERT_TRUE((*env)
                    ->write([&](storage::WriteTxn& txn) -> Status {
                      txn.put(meta, storage::kSchemaVersionKey, "\x00\x00\x00\x01"s);
                      return {};
                    })
                    .ok());
  }
  reopen();
  get_ok("alice");
}

}  // namespace
}  // namespace hearth::xmpp
