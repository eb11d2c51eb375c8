// An LMDB environment: one file (MDB_NOSUBDIR, lock file "<path>-lock"
// beside it), mode 0600, its named databases opened once at open time, and a
// schema version in the "meta" database. Several processes may open the same
// file (the server and `hearth user ...`): LMDB serialises writers, and each
// read transaction sees the newest commit at the time it starts, so start a
// fresh ReadTxn per request instead of keeping one open.
//
// An Env is used from one thread. It must outlive its transactions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "storage/txn.h"

namespace hearth::storage {

class Env;

inline constexpr std::string_view kMetaDb = "meta";
inline constexpr std::string_view kSchemaVersionKey = "schema_version";

struct EnvOptions {
  // Initial map size; doubled on MDB_MAP_FULL up to max_map_size. The file
  // only takes the space its data needs.
  size_t map_size = size_t{16} << 20;
  // (A 32-bit process has little address space to spare.)
  size_t max_map_size =
      sizeof(void*) >= 8 ? static_cast<size_t>(uint64_t{64} << 30) : size_t{1} << 30;
  unsigned max_readers = 126;
  // Named databases to create/open besides "meta". max_dbs 0 means exactly
  // these; more leaves room for tables opened later.
  std::vector<std::string> dbs;
  unsigned max_dbs = 0;
  // The schema version this code writes. A file without one gets it; a file
  // with a newer one is refused; an older one goes through `migrate` (called
  // inside the opening write transaction, where env.db() already works) or
  // is refused if there is none.
  uint32_t schema_version = 1;
  std::function<Status(Env& env, WriteTxn& txn, uint32_t from_version)> migrate;
};

class Env {
 public:
  static Result<std::unique_ptr<Env>> open(const std::string& path, const EnvOptions& options);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  // A database declared in EnvOptions::dbs, or kMetaDb.
  Result<Dbi> db(std::string_view name) const;

  Result<ReadTxn> read();
  // Only one write transaction at a time per Env (a second one would wait
  // on LMDB's writer lock held by ourselves forever, so it is refused).
  Result<WriteTxn> begin_write();
  // Runs `fn` in a write transaction and commits. On MDB_MAP_FULL (from a
  // put or the commit) the map is doubled and `fn` runs once more in a new
  // transaction, so `fn` must have no effect outside the transaction. If
  // `fn` fails, nothing is written and its error is returned.
  Status write(const std::function<Status(WriteTxn&)>& fn);

  const std::string& path() const { return path_; }
  size_t map_size() const;
  // Longest key LMDB accepts (511 bytes in a default build).
  size_t max_key_size() const;
  uint32_t schema_version() const { return schema_version_; }  // as stored

 private:
  friend class Txn;
  Env(MDB_env* env, std::string path, EnvOptions options)
      : env_(env), path_(std::move(path)), options_(std::move(options)) {}
  Status init_databases();
  Status check_schema(WriteTxn& txn);
  Result<MDB_txn*> begin(unsigned flags);
  Status grow();
  void txn_ended(bool write);
  Error mdb_error(const char* op, int rc) const;

  MDB_env* env_ = nullptr;
  std::string path_;
  EnvOptions options_;
  std::vector<std::pair<std::string, Dbi>> dbs_;
  uint32_t schema_version_ = 0;
  int live_txns_ = 0;
  bool write_active_ = false;
};

}  // namespace hearth::storage
