// AccountStore on LMDB: accounts.mdb, database "accounts", key = normalised
// username, value = a versioned record:
//
//   u8  version (1)
//   u64 created (unix seconds)
//   for SHA-1, then SHA-256:
//     bytes salt, u32 iterations, bytes stored_key, bytes server_key
//
// (bytes = u32 big-endian length + bytes; see storage/codec.h.)
//
// Database "auth_failures": the failed-login counters, keys and values as
// auth_limits.h describes (big-endian, versioned).
#include "xmpp/account_store.h"

#include <sodium.h>

#include <ctime>

#include "core/log.h"
#include "storage/codec.h"
#include "storage/env.h"
#include "xmpp/auth_limits.h"

namespace hearth::xmpp {
namespace {

constexpr std::string_view kAccountsDb = "accounts";
constexpr std::string_view kFailuresDb = "auth_failures";
constexpr uint32_t kSchemaVersion = 1;
constexpr uint8_t kRecordVersion = 1;
constexpr size_t kSaltSize = 16;
constexpr size_t kInitialMapSize = size_t{16} << 20;

void wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
}

void wipe(ScramCredentials& c) {
  wipe(c.stored_key);
  wipe(c.server_key);
}

void encode_credentials(storage::Writer& w, const ScramCredentials& c) {
  w.bytes(c.salt).u32(c.iterations).bytes(c.stored_key).bytes(c.server_key);
}

std::string encode_record(const AccountRecord& r) {
  std::string out;
  out.reserve(256);  // no reallocation: no stray copies of the keys on the heap
  storage::Writer w(std::move(out));
  w.u8(kRecordVersion).u64(r.created);
  encode_credentials(w, r.sha1);
  encode_credentials(w, r.sha256);
  return w.take();
}

bool decode_credentials(storage::Reader& r, ScramHash h, ScramCredentials* out) {
  std::string_view salt, stored, server;
  uint32_t iterations = 0;
  if (!r.bytes(&salt) || !r.u32(&iterations) || !r.bytes(&stored) || !r.bytes(&server)) {
    return false;
  }
  const size_t n = scram_hash_size(h);
  if (salt.empty() || iterations < kScramMinIterations || iterations > kScramMaxIterations ||
      stored.size() != n || server.size() != n) {
    return false;
  }
  out->salt = std::string(salt);
  out->iterations = iterations;
  out->stored_key = std::string(stored);
  out->server_key = std::string(server);
  return true;
}

Result<AccountRecord> decode_record(std::string_view username, std::string_view value) {
  auto corrupt = [&](const std::string& why) {
    return make_error("account '" + std::string(username) + "': corrupt record (" + why + ")");
  };
  storage::Reader r(value);
  uint8_t version = 0;
  if (!r.u8(&version)) return corrupt("empty");
  if (version != kRecordVersion) return corrupt("unknown version " + std::to_string(version));
  AccountRecord rec;
  rec.username = std::string(username);
  if (!r.u64(&rec.created) || !decode_credentials(r, ScramHash::kSha1, &rec.sha1) ||
      !decode_credentials(r, ScramHash::kSha256, &rec.sha256)) {
    wipe(rec.sha1);
    wipe(rec.sha256);
    return corrupt("bad or truncated credentials");
  }
  if (Status s = r.finish(); !s) {
    wipe(rec.sha1);
    wipe(rec.sha256);
    return corrupt(s.error().message);
  }
  return rec;
}

class LmdbFailureTable final : public FailureTable {
 public:
  LmdbFailureTable(storage::Env* env, storage::Dbi db) : env_(env), db_(db) {}

  Result<std::optional<FailureRecord>> get(std::string_view key) override {
    auto txn = env_->read();
    if (!txn) return txn.error();
    auto value = txn->get(db_, key);
    if (!value) return value.error();
    if (!value->has_value()) return std::optional<FailureRecord>();
    auto rec = decode_failure_record(**value);
    if (!rec) return std::optional<FailureRecord>();  // unreadable: start afresh
    return std::optional<FailureRecord>(*rec);
  }

  Status put(std::string_view key, const FailureRecord& r) override {
    if (key.size() > env_->max_key_size()) return make_error("failure counter key too long");
    std::string value = encode_failure_record(r);
    return env_->write([&](storage::WriteTxn& txn) -> Status {
      txn.put(db_, key, value);
      return {};
    });
  }

  Status remove(std::string_view key) override {
    return env_->write([&](storage::WriteTxn& txn) -> Status {
      txn.del(db_, key);
      return txn.status();
    });
  }

  Status for_each(const EntryFn& fn) override {
    auto txn = env_->read();
    if (!txn) return txn.error();
    return txn->for_each(db_, "", [&](std::string_view key, std::string_view value) {
      auto rec = decode_failure_record(value);
      fn(key, rec.ok() ? std::optional<FailureRecord>(*rec) : std::nullopt);
      return true;
    });
  }

  Status remove_all(const std::vector<std::string>& keys) override {
    return env_->write([&](storage::WriteTxn& txn) -> Status {
      for (const std::string& k : keys)
        txn.del(db_, k);
      return txn.status();
    });
  }

 private:
  storage::Env* env_;
  storage::Dbi db_;
};

class LmdbAccountStore final : public AccountStore {
 public:
  LmdbAccountStore(std::unique_ptr<storage::Env> env, storage::Dbi db, storage::Dbi failures_db)
      : env_(std::move(env)), db_(db), failures_(env_.get(), failures_db) {}

  FailureTable* failures() override { return &failures_; }

  Result<std::optional<AccountRecord>> get(std::string_view username) override {
    if (Status s = check_username(username); !s) return s.error();
    // A fresh read transaction per call: sees what `hearth user` committed.
    auto txn = env_->read();
    if (!txn) return txn.error();
    auto value = txn->get(db_, username);
    if (!value) return value.error();
    if (!value->has_value()) return std::optional<AccountRecord>();
    auto rec = decode_record(username, **value);
    if (!rec) return rec.error();
    return std::optional<AccountRecord>(std::move(rec).value());
  }

  Status create(std::string_view username, std::string_view password,
                uint32_t iterations) override {
    if (Status s = check_username(username); !s) return s;
    // Cheap refusal before the expensive derivation; the write below checks
    // again because another process may create the account meanwhile.
    auto existing = exists(username);
    if (!existing) return existing.error();
    if (*existing) return already_exists(username);

    AccountRecord rec;
    rec.username = std::string(username);
    rec.created = static_cast<uint64_t>(time(nullptr));
    if (Status s = derive(password, iterations, &rec); !s) return s;
    std::string value = encode_record(rec);
    wipe(rec.sha1);
    wipe(rec.sha256);

    Status s = env_->write([&](storage::WriteTxn& txn) -> Status {
      auto old = txn.get(db_, username);
      if (!old) return old.error();
      if (old->has_value()) return already_exists(username);
      txn.put(db_, username, value);
      return {};
    });
    wipe(value);
    return s;
  }

  Status set_password(std::string_view username, std::string_view password,
                      uint32_t iterations) override {
    if (Status s = check_username(username); !s) return s;
    auto existing = exists(username);
    if (!existing) return existing.error();
    if (!*existing) return no_such_account(username);

    AccountRecord rec;
    rec.username = std::string(username);
    if (Status s = derive(password, iterations, &rec); !s) return s;

    Status s = env_->write([&](storage::WriteTxn& txn) -> Status {
      auto old = txn.get(db_, username);
      if (!old) return old.error();
      if (!old->has_value()) return no_such_account(username);
      // Keep the creation time. A record we cannot read is replaced: setting
      // a new password is how an administrator repairs it.
      auto old_rec = decode_record(username, **old);
      if (old_rec) {
        rec.created = old_rec->created;
        wipe(old_rec->sha1);
        wipe(old_rec->sha256);
      } else {
        HEARTH_WARN("accounts", "%s; replacing it", old_rec.error().message.c_str());
        rec.created = static_cast<uint64_t>(time(nullptr));
      }
      std::string value = encode_record(rec);
      txn.put(db_, username, value);
      wipe(value);
      return {};
    });
    wipe(rec.sha1);
    wipe(rec.sha256);
    return s;
  }

  Status remove(std::string_view username) override {
    if (Status s = check_username(username); !s) return s;
    return env_->write([&](storage::WriteTxn& txn) -> Status {
      if (txn.del(db_, username)) return {};
      if (!txn.status()) return txn.status();
      return no_such_account(username);
    });
  }

  Result<std::vector<std::string>> list() override {
    auto txn = env_->read();
    if (!txn) return txn.error();
    std::vector<std::string> names;
    // LMDB keeps keys in bytewise order, which is std::string's order.
    Status s = txn->for_each(db_, "", [&](std::string_view key, std::string_view) {
      names.emplace_back(key);
      return true;
    });
    if (!s) return s.error();
    return names;
  }

 private:
  Status check_username(std::string_view username) const {
    if (username.empty()) return make_error("empty username");
    if (username.size() > env_->max_key_size()) {
      return make_error("username longer than " + std::to_string(env_->max_key_size()) + " bytes");
    }
    return {};
  }

  Result<bool> exists(std::string_view username) {
    auto txn = env_->read();
    if (!txn) return txn.error();
    auto value = txn->get(db_, username);
    if (!value) return value.error();
    return value->has_value();
  }

  // Fresh random salts (one per hash) and both credentials for `password`.
  static Status derive(std::string_view password, uint32_t iterations, AccountRecord* rec) {
    auto prepared = prepare_password(password);
    if (!prepared) return prepared.error();
    Status result;
    for (ScramHash h : {ScramHash::kSha1, ScramHash::kSha256}) {
      std::string salt(kSaltSize, '\0');
      randombytes_buf(salt.data(), salt.size());
      auto creds = scram_derive(h, *prepared, salt, iterations);
      if (!creds) {
        result = creds.error();
        break;
      }
      (h == ScramHash::kSha1 ? rec->sha1 : rec->sha256) = std::move(creds).value();
    }
    wipe(*prepared);
    if (!result) {
      wipe(rec->sha1);
      wipe(rec->sha256);
    }
    return result;
  }

  static Error already_exists(std::string_view username) {
    return make_error("account '" + std::string(username) + "' already exists");
  }
  static Error no_such_account(std::string_view username) {
    return make_error("no such account '" + std::string(username) + "'");
  }

  std::unique_ptr<storage::Env> env_;
  storage::Dbi db_;
  LmdbFailureTable failures_;
};

}  // namespace

Result<std::unique_ptr<AccountStore>> AccountStore::open(const std::string& path) {
  if (sodium_init() < 0) return make_error("libsodium initialisation failed");
  storage::EnvOptions options;
  options.map_size = kInitialMapSize;
  // A file made before the counters existed gets their table here.
  options.dbs = {std::string(kAccountsDb), std::string(kFailuresDb)};
  options.schema_version = kSchemaVersion;
  auto env = storage::Env::open(path, options);
  if (!env) return env.error();
  auto db = (*env)->db(kAccountsDb);
  if (!db) return db.error();
  auto failures = (*env)->db(kFailuresDb);
  if (!failures) return failures.error();
  return std::unique_ptr<AccountStore>(
      std::make_unique<LmdbAccountStore>(std::move(env).value(), *db, *failures));
}

}  // namespace hearth::xmpp
