#include "storage/env.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/codec.h"

namespace hearth::storage {
namespace {

using namespace std::string_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-env-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

EnvOptions test_options() {
  EnvOptions o;
  o.map_size = 1 << 20;
  o.dbs = {"things"};
  return o;
}

std::unique_ptr<Env> open_ok(const std::string& path, const EnvOptions& o) {
  auto env = Env::open(path, o);
  if (!env) ADD_FAILURE() << env.error().message;
  return env ? std::move(env).value() : nullptr;
}

Status put_one(Env& env, std::string_view db, std::string key, std::string value) {
  auto dbi = env.db(db);
  if (!dbi) return dbi.error();
  return env.write([&](WriteTxn& txn) -> Status {
    txn.put(*dbi, key, value);
    return {};
  });
}

std::optional<std::string> get_one(Env& env, std::string_view db, std::string_view key) {
  auto dbi = env.db(db);
  auto txn = env.read();
  if (!dbi || !txn) return std::nullopt;
  auto v = txn->get(*dbi, key);
  if (!v || !v->has_value()) return std::nullopt;
  return std::string(**v);
}

TEST(StorageEnv, CreatesFileAndLockWithMode0600) {
  TempDir dir;
  const std::string path = dir.file("accounts.mdb");
  auto env = open_ok(path, test_options());
  ASSERT_TRUE(env);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((path + "-lock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(StorageEnv, ReopenKeepsData) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  {
    auto env = open_ok(path, test_options());
    ASSERT_TRUE(env);
    ASSERT_TRUE(put_one(*env, "things", "k", "v").ok());
  }
  auto env = open_ok(path, test_options());
  ASSERT_TRUE(env);
  EXPECT_EQ(get_one(*env, "things", "k"), "v");
}

TEST(StorageEnv, OpenFailsWithPathInMessage) {
  TempDir dir;
  const std::string path = dir.file("missing-dir/data.mdb");
  auto env = Env::open(path, test_options());
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().message.find(path), std::string::npos) << env.error().message;
}

TEST(StorageEnv, UnknownDatabaseIsAnError) {
  TempDir dir;
  auto env = open_ok(dir.file("data.mdb"), test_options());
  ASSERT_TRUE(env);
  EXPECT_TRUE(env->db("things").ok());
  EXPECT_TRUE(env->db(kMetaDb).ok());
  EXPECT_FALSE(env->db("nope").ok());
}

TEST(StorageEnv, SchemaVersionIsWrittenBigEndian) {
  TempDir dir;
  EnvOptions o = test_options();
  o.schema_version = 0x01020304;
  auto env = open_ok(dir.file("data.mdb"), o);
  ASSERT_TRUE(env);
  EXPECT_EQ(env->schema_version(), 0x01020304u);
  EXPECT_EQ(get_one(*env, kMetaDb, kSchemaVersionKey), "\x01\x02\x03\x04"s);
}

TEST(StorageEnv, NewerSchemaVersionIsRefused) {
  TempDir dir;
  const std::string path = dir.file("accounts.mdb");
  EnvOptions o = test_options();
  o.schema_version = 3;
  ASSERT_TRUE(open_ok(path, o));
  o.schema_version = 2;
  auto env = Env::open(path, o);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.error().message,
            "accounts.mdb has schema version 3, this hearth knows up to 2; upgrade hearth");
  // Refusing must not have rewritten the version.
  o.schema_version = 3;
  auto again = open_ok(path, o);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->schema_version(), 3u);
}

TEST(StorageEnv, OlderSchemaVersionNeedsMigration) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  EnvOptions o = test_options();
  o.schema_version = 1;
  {
    auto env = open_ok(path, o);
    ASSERT_TRUE(env);
    ASSERT_TRUE(put_one(*env, "things", "old", "1").ok());
  }
  o.schema_version = 2;
  auto refused = Env::open(path, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("no migration"), std::string::npos);

  uint32_t migrated_from = 0;
  o.migrate = [&](Env& env, WriteTxn& txn, uint32_t from) -> Status {
    migrated_from = from;
    auto dbi = env.db("things");
    if (!dbi) return dbi.error();
    auto old = txn.get(*dbi, "old");
    if (!old) return old.error();
    if (!old->has_value()) return make_error("old record missing");
    txn.put(*dbi, "new", std::string(**old) + "-migrated");
    return {};
  };
  auto env = open_ok(path, o);
  ASSERT_TRUE(env);
  EXPECT_EQ(migrated_from, 1u);
  EXPECT_EQ(env->schema_version(), 2u);
  EXPECT_EQ(get_one(*env, kMetaDb, kSchemaVersionKey), "\x00\x00\x00\x02"s);
  EXPECT_EQ(get_one(*env, "things", "new"), "1-migrated");
}

TEST(StorageEnv, FailedMigrationLeavesVersion) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  EnvOptions o = test_options();
  ASSERT_TRUE(open_ok(path, o));
  o.schema_version = 2;
  o.migrate = [](Env&, WriteTxn&, uint32_t) -> Status { return make_error("boom"); };
  auto env = Env::open(path, o);
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().message.find("boom"), std::string::npos);
  o.schema_version = 1;
  o.migrate = nullptr;
  auto v1 = open_ok(path, o);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->schema_version(), 1u);
}

TEST(StorageEnv, MalformedSchemaVersionIsRefused) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  {
    auto env = open_ok(path, test_options());
    ASSERT_TRUE(env);
    ASSERT_TRUE(put_one(*env, kMetaDb, std::string(kSchemaVersionKey), "\x01"s).ok());
  }
  auto env = Env::open(path, test_options());
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().message.find("malformed"), std::string::npos);
}

TEST(StorageEnv, MapGrowsWhenFull) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  EnvOptions o = test_options();
  o.map_size = 64 << 10;
  const size_t kRecords = 60;
  const std::string value(10000, 'v');  // ~600 KB in all: ten times the map
  {
    auto env = open_ok(path, o);
    ASSERT_TRUE(env);
    const size_t initial = env->map_size();
    auto dbi = env->db("things");
    ASSERT_TRUE(dbi);
    for (size_t i = 0; i < kRecords; ++i) {
      std::string key;
      append_u32(key, static_cast<uint32_t>(i));
      Status s = env->write([&](WriteTxn& txn) -> Status {
        txn.put(*dbi, key, value + std::to_string(i));
        return {};
      });
      ASSERT_TRUE(s.ok()) << "record " << i << ": " << s.error().message;
    }
    EXPECT_GT(env->map_size(), initial);
    // One transaction bigger than the current map also fits after one
    // doubling.
    Status big = env->write([&](WriteTxn& txn) -> Status {
      txn.put(*dbi, "big", std::string(env->map_size() / 4, 'b'));
      return {};
    });
    EXPECT_TRUE(big.ok()) << big.error().message;
  }
  auto env = open_ok(path, o);  // small configured map; file is larger
  ASSERT_TRUE(env);
  auto dbi = env->db("things");
  auto txn = env->read();
  ASSERT_TRUE(dbi && txn);
  for (size_t i = 0; i < kRecords; ++i) {
    std::string key;
    append_u32(key, static_cast<uint32_t>(i));
    auto v = txn->get(*dbi, key);
    ASSERT_TRUE(v.ok() && v->has_value()) << i;
    EXPECT_EQ(**v, value + std::to_string(i));
  }
}

TEST(StorageEnv, FullAtMaximumFailsCleanly) {
  TempDir dir;
  EnvOptions o = test_options();
  o.map_size = 64 << 10;
  o.max_map_size = 128 << 10;
  auto env = open_ok(dir.file("data.mdb"), o);
  ASSERT_TRUE(env);
  ASSERT_TRUE(put_one(*env, "things", "keep", "me").ok());
  Status s;
  for (int i = 0; i < 200 && s.ok(); ++i) {
    s = put_one(*env, "things", "k" + std::to_string(i), std::string(2000, 'x'));
  }
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("full"), std::string::npos) << s.error().message;
  EXPECT_EQ(env->map_size(), size_t{128} << 10);
  EXPECT_EQ(get_one(*env, "things", "keep"), "me");
  // Still usable: a delete frees room.
  Status del = env->write([&](WriteTxn& txn) -> Status {
    EXPECT_TRUE(txn.del(env->db("things").value(), "k0"));
    return {};
  });
  EXPECT_TRUE(del.ok());
}

TEST(StorageEnv, CannotGrowWhileReadTxnOpen) {
  TempDir dir;
  EnvOptions o = test_options();
  o.map_size = 64 << 10;
  auto env = open_ok(dir.file("data.mdb"), o);
  ASSERT_TRUE(env);
  auto reader = env->read();
  ASSERT_TRUE(reader);
  Status s;
  for (int i = 0; i < 100 && s.ok(); ++i) {
    s = put_one(*env, "things", "k" + std::to_string(i), std::string(2000, 'x'));
  }
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("transaction is open"), std::string::npos) << s.error().message;
  reader->abort();
  EXPECT_TRUE(put_one(*env, "things", "after", std::string(2000, 'x')).ok());
}

// Runs `body` in a child process (a stand-in for `hearth user ...` next to
// the server) and returns its exit status; the child must not touch the
// parent's Env (LMDB handles do not survive fork).
int run_child(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(StorageEnv, TwoProcessesSeeEachOthersCommits) {
  TempDir dir;
  const std::string path = dir.file("accounts.mdb");
  auto env = open_ok(path, test_options());
  ASSERT_TRUE(env);
  ASSERT_TRUE(put_one(*env, "things", "from-server", "1").ok());
  auto old_snapshot = env->read();
  ASSERT_TRUE(old_snapshot);

  int rc = run_child([&]() -> int {
    auto cli = Env::open(path, test_options());
    if (!cli) return 10;
    if (get_one(**cli, "things", "from-server") != "1") return 11;
    if (!put_one(**cli, "things", "from-cli", "2").ok()) return 12;
    return 0;
  });
  ASSERT_EQ(rc, 0);

  auto dbi = env->db("things");
  ASSERT_TRUE(dbi);
  // A transaction that started before the commit keeps its snapshot...
  auto stale = old_snapshot->get(*dbi, "from-cli");
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->has_value());
  old_snapshot->abort();
  // ...a fresh one sees it.
  EXPECT_EQ(get_one(*env, "things", "from-cli"), "2");

  // And the other way round, with the child opening after our write.
  ASSERT_TRUE(put_one(*env, "things", "from-server-2", "3").ok());
  rc = run_child([&]() -> int {
    auto cli = Env::open(path, test_options());
    if (!cli) return 10;
    return get_one(**cli, "things", "from-server-2") == "3" ? 0 : 11;
  });
  EXPECT_EQ(rc, 0);
}

TEST(StorageEnv, ReaderSlotsOfDeadProcessesAreReclaimed) {
  TempDir dir;
  const std::string path = dir.file("accounts.mdb");
  EnvOptions o = test_options();
  o.max_readers = 8;  // LMDB rounds the table up to fill its lock-file page
  auto env = open_ok(path, o);
  ASSERT_TRUE(env);
  ASSERT_TRUE(put_one(*env, "things", "k", "v").ok());
  // A process that dies (kill -9) holding every reader slot.
  int rc = run_child([&]() -> int {
    auto cli = Env::open(path, o);
    if (!cli) return 10;
    std::vector<ReadTxn> held;
    for (int i = 0; i < 10000; ++i) {
      auto txn = (*cli)->read();
      if (!txn) {
        if (held.empty()) return 11;
        _exit(0);  // slots exhausted: die without releasing them
      }
      held.push_back(std::move(txn).value());
    }
    return 12;
  });
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(get_one(*env, "things", "k"), "v");
}

TEST(StorageEnv, AdoptsMapGrownByAnotherProcess) {
  TempDir dir;
  const std::string path = dir.file("data.mdb");
  EnvOptions o = test_options();
  o.map_size = 64 << 10;
  auto env = open_ok(path, o);
  ASSERT_TRUE(env);
  const size_t kRecords = 40;
  int rc = run_child([&]() -> int {
    auto cli = Env::open(path, o);
    if (!cli) return 10;
    for (size_t i = 0; i < kRecords; ++i) {
      if (!put_one(**cli, "things", "k" + std::to_string(i), std::string(10000, 'c')).ok()) {
        return 11;
      }
    }
    return (*cli)->map_size() > o.map_size ? 0 : 12;
  });
  ASSERT_EQ(rc, 0);
  // Our map is still the small one; the data is beyond it.
  for (size_t i = 0; i < kRecords; ++i) {
    EXPECT_EQ(get_one(*env, "things", "k" + std::to_string(i)), std::string(10000, 'c')) << i;
  }
  EXPECT_TRUE(put_one(*env, "things", "more", std::string(2000, 'p')).ok());
  EXPECT_EQ(get_one(*env, "things", "more"), std::string(2000, 'p'));
}

}  // namespace
}  // namespace hearth::storage
