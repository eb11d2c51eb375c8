// An in-memory AccountStore for the SASL and IPC tests.
#pragma once

#include <unistd.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "xmpp/account_store.h"
#include "xmpp/scram.h"

namespace hearth::xmpp::testing {

class FakeAccountStore : public AccountStore {
 public:
  Result<std::optional<AccountRecord>> get(std::string_view username) override {
    ++gets;
    if (!slow_user.empty() && username == slow_user) sleep(10);  // a request left in flight
    if (fail) return make_error("store failure");
    auto it = accounts.find(std::string(username));
    if (it == accounts.end()) return std::optional<AccountRecord>();
    return std::optional<AccountRecord>(it->second);
  }
  Status create(std::string_view username, std::string_view password,
                uint32_t iterations) override {
    if (accounts.count(std::string(username))) return make_error("exists");
    return set(username, password, iterations);
  }
  Status set_password(std::string_view username, std::string_view password,
                      uint32_t iterations) override {
    if (!accounts.count(std::string(username))) return make_error("no such account");
    return set(username, password, iterations);
  }
  Status remove(std::string_view username) override {
    if (!accounts.erase(std::string(username))) return make_error("no such account");
    return {};
  }
  Result<std::vector<std::string>> list() override {
    std::vector<std::string> out;
    for (const auto& [name, rec] : accounts)
      out.push_back(name);
    return out;
  }

  std::map<std::string, AccountRecord> accounts;
  bool fail = false;      // get() fails
  int gets = 0;           // get() calls
  std::string slow_user;  // get() of this name takes 10 s

 private:
  Status set(std::string_view username, std::string_view password, uint32_t iterations) {
    auto prepared = prepare_password(password);
    if (!prepared.ok()) return prepared.error();
    AccountRecord rec;
    rec.username = std::string(username);
    auto s1 = scram_derive(ScramHash::kSha1, *prepared, "salt1-" + rec.username, iterations);
    auto s256 = scram_derive(ScramHash::kSha256, *prepared, "salt256-" + rec.username, iterations);
    if (!s1.ok() || !s256.ok()) return make_error("derive failed");
    rec.sha1 = s1.value();
    rec.sha256 = s256.value();
    accounts[rec.username] = rec;
    return {};
  }
};

}  // namespace hearth::xmpp::testing
