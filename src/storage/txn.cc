#include "storage/txn.h"

#include <string>
#include <utility>

#include "storage/env.h"

namespace hearth::storage {
namespace {

MDB_val to_val(std::string_view s) {
  // LMDB does not write through mv_data for keys and values we pass in.
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view from_val(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

// Closes a cursor on every path out of for_each.
struct CursorCloser {
  MDB_cursor* cursor;
  ~CursorCloser() { mdb_cursor_close(cursor); }
};

}  // namespace

Txn::Txn(Txn&& other) noexcept
    : env_(std::exchange(other.env_, nullptr)),
      txn_(std::exchange(other.txn_, nullptr)),
      write_(other.write_),
      rc_(other.rc_),
      status_(std::move(other.status_)) {}

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    abort();
    env_ = std::exchange(other.env_, nullptr);
    txn_ = std::exchange(other.txn_, nullptr);
    write_ = other.write_;
    rc_ = other.rc_;
    status_ = std::move(other.status_);
  }
  return *this;
}

void Txn::abort() {
  if (txn_ == nullptr) return;
  mdb_txn_abort(txn_);
  end();
}

void Txn::end() {
  txn_ = nullptr;
  env_->txn_ended(write_);
}

Status Txn::check_usable() const {
  if (!status_) return status_;
  if (txn_ == nullptr) return make_error("lmdb: transaction already ended");
  return {};
}

Status Txn::mdb_failure(int rc, const char* op) {
  Error e = env_->mdb_error(op, rc);
  if (write_ && status_) {
    rc_ = rc;
    status_ = e;
  }
  return e;
}

Result<std::optional<std::string_view>> Txn::get(Dbi db, std::string_view key) {
  if (Status s = check_usable(); !s) return s.error();
  MDB_val k = to_val(key);
  MDB_val v;
  int rc = mdb_get(txn_, db, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string_view>();
  if (rc != 0) return mdb_failure(rc, "mdb_get").error();
  return std::optional<std::string_view>(from_val(v));
}

Status Txn::for_each(Dbi db, std::string_view prefix, const RecordFn& fn) {
  if (Status s = check_usable(); !s) return s;
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc != 0) return mdb_failure(rc, "mdb_cursor_open");
  CursorCloser closer{cursor};

  MDB_val k = to_val(prefix);
  MDB_val v;
  // MDB_SET_RANGE: the first key >= prefix, which is where keys starting
  // with prefix begin in bytewise order.
  rc = mdb_cursor_get(cursor, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key = from_val(k);
    if (!key.starts_with(prefix)) return {};
    if (!fn(key, from_val(v))) return {};
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) return mdb_failure(rc, "mdb_cursor_get");
  return {};
}

Status Txn::range(Dbi db, std::string_view lower, std::string_view upper, bool reverse,
                  const RecordFn& fn) {
  if (Status s = check_usable(); !s) return s;
  if (!upper.empty() && upper <= lower) return {};
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, db, &cursor);
  if (rc != 0) return mdb_failure(rc, "mdb_cursor_open");
  CursorCloser closer{cursor};

  MDB_val k, v;
  if (!reverse) {
    k = to_val(lower);
    rc = mdb_cursor_get(cursor, &k, &v, lower.empty() ? MDB_FIRST : MDB_SET_RANGE);
    while (rc == 0) {
      std::string_view key = from_val(k);
      if (!upper.empty() && key >= upper) return {};
      if (!fn(key, from_val(v))) return {};
      rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
    }
  } else {
    if (upper.empty()) {
      rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
    } else {
      // The first key >= upper, then one step back; none >= upper: the last.
      k = to_val(upper);
      rc = mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
      if (rc == 0) {
        rc = mdb_cursor_get(cursor, &k, &v, MDB_PREV);
      } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cursor, &k, &v, MDB_LAST);
      }
    }
    while (rc == 0) {
      std::string_view key = from_val(k);
      if (key < lower) return {};
      if (!fn(key, from_val(v))) return {};
      rc = mdb_cursor_get(cursor, &k, &v, MDB_PREV);
    }
  }
  if (rc != MDB_NOTFOUND) return mdb_failure(rc, "mdb_cursor_get");
  return {};
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff)
    end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

void WriteTxn::put(Dbi db, std::string_view key, std::string_view value) {
  if (!check_usable()) return;
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  int rc = mdb_put(txn_, db, &k, &v, 0);
  if (rc != 0) (void)mdb_failure(rc, "mdb_put");
}

bool WriteTxn::del(Dbi db, std::string_view key) {
  if (!check_usable()) return false;
  MDB_val k = to_val(key);
  int rc = mdb_del(txn_, db, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) {
    (void)mdb_failure(rc, "mdb_del");
    return false;
  }
  return true;
}

Status WriteTxn::commit() {
  if (Status s = check_usable(); !s) {
    abort();
    return s;
  }
  int rc = mdb_txn_commit(txn_);
  // mdb_txn_commit frees the transaction whether or not it succeeded.
  end();
  if (rc != 0) return mdb_failure(rc, "mdb_txn_commit");
  return {};
}

}  // namespace hearth::storage
