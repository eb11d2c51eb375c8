// LMDB transactions: move-only, aborted by the destructor unless committed.
// A write transaction keeps the first error it meets (sticky): later writes
// are skipped and commit() reports it, so a sequence of puts needs one check.
#pragma once

#include <lmdb.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace hearth::storage {

class Env;
using Dbi = MDB_dbi;

// The smallest key greater than every key that starts with `prefix` (the
// prefix with its last byte incremented, 0xff bytes dropped first); empty
// when there is none (the prefix is empty or all 0xff). Suits Txn::range's
// `upper` for a walk over one prefix.
std::string prefix_end(std::string_view prefix);

// One record of a cursor walk; return false to stop the walk.
using RecordFn = std::function<bool(std::string_view key, std::string_view value)>;

class Txn {
 public:
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&& other) noexcept;
  ~Txn() { abort(); }

  // nullopt if absent. The view points into the map: valid until the
  // transaction ends (in a write transaction: until the next write).
  Result<std::optional<std::string_view>> get(Dbi db, std::string_view key);
  // Every record whose key starts with `prefix` (all records if empty), in
  // key order (bytewise).
  Status for_each(Dbi db, std::string_view prefix, const RecordFn& fn);
  // Every record with lower <= key < upper (no upper bound when `upper` is
  // empty), in key order, or with `reverse` in descending order starting
  // at the last key below `upper`. One cursor seek, then a walk: a page
  // of a large range costs its own size, not the range's.
  Status range(Dbi db, std::string_view lower, std::string_view upper, bool reverse,
               const RecordFn& fn);

  bool active() const { return txn_ != nullptr; }
  // Ends the transaction without writing anything. Idempotent.
  void abort();

 protected:
  Txn(Env* env, MDB_txn* txn, bool write) : env_(env), txn_(txn), write_(write) {}
  void end();  // tells the env that txn_ is gone
  Status check_usable() const;
  Status mdb_failure(int rc, const char* op);

  Env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
  bool write_ = false;
  // Sticky error of a write transaction (always ok in a read transaction).
  int rc_ = 0;
  Status status_;
};

class ReadTxn : public Txn {
 private:
  friend class Env;
  ReadTxn(Env* env, MDB_txn* txn) : Txn(env, txn, false) {}
};

class WriteTxn : public Txn {
 public:
  // Insert or overwrite. An error is kept and reported by commit().
  void put(Dbi db, std::string_view key, std::string_view value);
  // True if the key existed and is now deleted; false if absent or on error
  // (kept and reported by commit()).
  bool del(Dbi db, std::string_view key);
  // The sticky error so far (ok if none).
  const Status& status() const { return status_; }
  // Writes everything, or nothing and the first error. Ends the transaction.
  Status commit();
  // The sticky error (or a failed commit) was MDB_MAP_FULL: Env::write grows
  // the map and retries.
  bool map_full() const { return rc_ == MDB_MAP_FULL; }

 private:
  friend class Env;
  WriteTxn(Env* env, MDB_txn* txn) : Txn(env, txn, true) {}
};

}  // namespace hearth::storage
