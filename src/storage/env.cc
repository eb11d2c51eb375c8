#include "storage/env.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "core/log.h"
#include "storage/codec.h"

namespace hearth::storage {
namespace {

constexpr unsigned kOpenFlags = MDB_NOSUBDIR | MDB_NOTLS;
constexpr mdb_mode_t kFileMode = 0600;

size_t round_to_pages(size_t n) {
  long page = sysconf(_SC_PAGESIZE);
  size_t p = page > 0 ? static_cast<size_t>(page) : 4096;
  return (n + p - 1) / p * p;
}

std::string_view base_name(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

Result<std::unique_ptr<Env>> Env::open(const std::string& path, const EnvOptions& options) {
  if (options.map_size == 0 || options.max_map_size < options.map_size) {
    return make_error(path + ": invalid map size options");
  }
  MDB_env* raw = nullptr;
  int rc = mdb_env_create(&raw);
  if (rc != 0) return make_error(path + ": mdb_env_create: " + mdb_strerror(rc));
  // From here the Env owns `raw` and closes it on every error path.
  std::unique_ptr<Env> env(new Env(raw, path, options));

  unsigned max_dbs = std::max(options.max_dbs, static_cast<unsigned>(options.dbs.size() + 1));
  if ((rc = mdb_env_set_mapsize(raw, round_to_pages(options.map_size))) != 0) {
    return env->mdb_error("mdb_env_set_mapsize", rc);
  }
  if ((rc = mdb_env_set_maxreaders(raw, options.max_readers)) != 0) {
    return env->mdb_error("mdb_env_set_maxreaders", rc);
  }
  if ((rc = mdb_env_set_maxdbs(raw, max_dbs)) != 0) {
    return env->mdb_error("mdb_env_set_maxdbs", rc);
  }
  if ((rc = mdb_env_open(raw, path.c_str(), kOpenFlags, kFileMode)) != 0) {
    return env->mdb_error("mdb_env_open", rc);
  }
  // Reader slots of processes that died (kill -9, crash) would otherwise pin
  // old pages until the lock file is recreated.
  int dead = 0;
  if ((rc = mdb_reader_check(raw, &dead)) != 0) return env->mdb_error("mdb_reader_check", rc);
  if (dead > 0) HEARTH_WARN("storage", "%s: cleared %d stale reader slot(s)", path.c_str(), dead);

  if (Status s = env->init_databases(); !s) return s.error();
  return env;
}

Env::~Env() {
  // Transactions must be gone by now (they hold a pointer to us).
  if (live_txns_ != 0) {
    HEARTH_ERROR("storage", "%s: closed with %d open transaction(s)", path_.c_str(), live_txns_);
    abort();
  }
  mdb_env_close(env_);
}

Status Env::init_databases() {
  // The handles are opened once, in a write transaction that commits, and
  // are then valid in every later transaction of this Env.
  return write([this](WriteTxn& txn) -> Status {
    dbs_.clear();
    std::vector<std::string> names;
    names.emplace_back(kMetaDb);
    for (const std::string& name : options_.dbs) {
      if (name == kMetaDb || name.empty())
        return make_error(path_ + ": invalid db name '" + name + "'");
      names.push_back(name);
    }
    for (const std::string& name : names) {
      Dbi dbi = 0;
      int rc = mdb_dbi_open(txn.txn_, name.c_str(), MDB_CREATE, &dbi);
      if (rc != 0) return mdb_error(("mdb_dbi_open(" + name + ")").c_str(), rc);
      dbs_.emplace_back(name, dbi);
    }
    return check_schema(txn);
  });
}

Status Env::check_schema(WriteTxn& txn) {
  Dbi meta = dbs_.front().second;
  auto stored = txn.get(meta, kSchemaVersionKey);
  if (!stored) return stored.error();
  const std::string name(base_name(path_));
  const uint32_t current = options_.schema_version;
  if (!stored->has_value()) {
    std::string v;
    append_u32(v, current);
    txn.put(meta, kSchemaVersionKey, v);
    schema_version_ = current;
    return txn.status();
  }
  std::optional<uint32_t> version = decode_u32(**stored);
  if (!version) return make_error(name + ": malformed schema version record");
  if (*version > current) {
    return make_error(name + " has schema version " + std::to_string(*version) +
                      ", this hearth knows up to " + std::to_string(current) + "; upgrade hearth");
  }
  if (*version < current) {
    if (!options_.migrate) {
      return make_error(name + " has schema version " + std::to_string(*version) + ", older than " +
                        std::to_string(current) + ", and no migration is known");
    }
    if (Status s = options_.migrate(*this, txn, *version); !s) {
      return make_error(name + ": migration from schema version " + std::to_string(*version) +
                        " failed: " + s.error().message);
    }
    std::string v;
    append_u32(v, current);
    txn.put(meta, kSchemaVersionKey, v);
    HEARTH_INFO("storage", "%s: migrated schema version %u -> %u", path_.c_str(), *version,
                current);
  }
  schema_version_ = current;
  return txn.status();
}

Result<Dbi> Env::db(std::string_view name) const {
  for (const auto& [n, dbi] : dbs_) {
    if (n == name) return dbi;
  }
  return make_error(path_ + ": no database '" + std::string(name) + "' declared");
}

Result<MDB_txn*> Env::begin(unsigned flags) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  if (rc == MDB_MAP_RESIZED && live_txns_ == 0) {
    // Another process grew the map beyond ours: adopt its size and retry.
    if ((rc = mdb_env_set_mapsize(env_, 0)) != 0) return mdb_error("mdb_env_set_mapsize", rc);
    rc = mdb_txn_begin(env_, nullptr, flags, &txn);
  }
  if (rc == MDB_READERS_FULL) {
    // Slots left by processes killed mid-read (e.g. a `hearth user` run).
    int dead = 0;
    if (mdb_reader_check(env_, &dead) == 0 && dead > 0) {
      HEARTH_WARN("storage", "%s: cleared %d stale reader slot(s)", path_.c_str(), dead);
      rc = mdb_txn_begin(env_, nullptr, flags, &txn);
    }
  }
  if (rc != 0) return mdb_error("mdb_txn_begin", rc);
  ++live_txns_;
  return txn;
}

Result<ReadTxn> Env::read() {
  auto txn = begin(MDB_RDONLY);
  if (!txn) return txn.error();
  return ReadTxn(this, *txn);
}

Result<WriteTxn> Env::begin_write() {
  if (write_active_) return make_error(path_ + ": a write transaction is already open");
  auto txn = begin(0);
  if (!txn) return txn.error();
  write_active_ = true;
  return WriteTxn(this, *txn);
}

Status Env::write(const std::function<Status(WriteTxn&)>& fn) {
  for (int attempt = 0;; ++attempt) {
    auto txn = begin_write();
    if (!txn) return txn.error();
    Status s = fn(*txn);
    if (s) s = txn->commit();
    // A failed fn may report the sticky error or its own; MAP_FULL shows in
    // the transaction either way.
    bool full = txn->map_full();
    txn->abort();
    if (s) return s;
    if (!full || attempt > 0) return s;
    if (Status g = grow(); !g) return g;
  }
}

Status Env::grow() {
  if (live_txns_ != 0) {
    return make_error(path_ + ": database map is full and cannot grow while a transaction is open");
  }
  size_t current = map_size();
  if (current >= options_.max_map_size) {
    return make_error(path_ + ": database is full (map size " + std::to_string(current) +
                      " bytes is the configured maximum)");
  }
  size_t next = current > options_.max_map_size / 2 ? options_.max_map_size : current * 2;
  next = round_to_pages(next);
  int rc = mdb_env_set_mapsize(env_, next);
  if (rc != 0) return mdb_error("mdb_env_set_mapsize", rc);
  HEARTH_INFO("storage", "%s: map grown from %zu to %zu bytes", path_.c_str(), current, map_size());
  return {};
}

size_t Env::map_size() const {
  MDB_envinfo info;
  if (mdb_env_info(env_, &info) != 0) return 0;
  return info.me_mapsize;
}

size_t Env::max_key_size() const {
  return static_cast<size_t>(mdb_env_get_maxkeysize(env_));
}

void Env::txn_ended(bool write) {
  --live_txns_;
  if (write) write_active_ = false;
}

Error Env::mdb_error(const char* op, int rc) const {
  return make_error(path_ + ": " + op + ": " + mdb_strerror(rc));
}

}  // namespace hearth::storage
