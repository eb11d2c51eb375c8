// Accounts: SCRAM salted credentials per hash in accounts.mdb, never a
// password or a reversible form. Usable from several processes at once
// (LMDB), so `hearth user ...` works while the server runs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "xmpp/scram.h"

namespace hearth::xmpp {

class FailureTable;

struct AccountRecord {
  std::string username;  // normalised localpart
  ScramCredentials sha1;
  ScramCredentials sha256;
  uint64_t created = 0;  // unix seconds
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;
  // Opens (creating if needed) accounts.mdb at `path` (a file, MDB_NOSUBDIR).
  static Result<std::unique_ptr<AccountStore>> open(const std::string& path);

  // `username` must already be normalised (normalize_localpart).
  virtual Result<std::optional<AccountRecord>> get(std::string_view username) = 0;
  // Derives credentials for both hashes (password prepared per RFC 8265
  // OpaqueString). Fails if the account exists.
  virtual Status create(std::string_view username, std::string_view password,
                        uint32_t iterations) = 0;
  // Fails if the account does not exist.
  virtual Status set_password(std::string_view username, std::string_view password,
                              uint32_t iterations) = 0;
  virtual Status remove(std::string_view username) = 0;
  virtual Result<std::vector<std::string>> list() = 0;
  // The failed-login counters (auth_limits.h) kept beside the accounts, so
  // that they survive restarts; null when this store keeps none.
  virtual FailureTable* failures() { return nullptr; }
};

}  // namespace hearth::xmpp
