// What the module tests share: a recording client session, an LMDB
// environment in a temporary directory, and a fixture that runs the modules
// under test on a real Host.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/loop.h"
#include "modules/host.h"
#include "storage/env.h"
#include "xml/fragment.h"
#include "xmpp/jid.h"
#include "xmpp/router.h"
#include "xmpp/session.h"

namespace hearth::modules::test {

using Strings = std::vector<std::string>;

// A JID the test spells out; one that does not parse fails the test.
inline xmpp::Jid jid(std::string_view text) {
  auto j = xmpp::Jid::parse(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : xmpp::Jid();
}

// A client session that records what reaches it. Given the address of a
// Host pointer, it first runs that host's output filters, as a C2S stream
// does; while the pointer is null everything is recorded.
class FakeSession : public xmpp::Session {
 public:
  explicit FakeSession(std::string full, Host** host = nullptr)
      : jid_(xmpp::Jid::parse(full).value()), host_(host) {}
  const xmpp::Jid& jid() const override { return jid_; }
  void deliver(const xml::Element& stanza) override {
    if (host_ != nullptr && *host_ != nullptr && (*host_)->filter_output(*this, stanza)) return;
    std::string out;
    xml::serialize(stanza, &out);
    received.push_back(out);
  }
  void deliver_raw(std::string_view xml) override { received.emplace_back(xml); }
  void kick(std::string_view condition, std::string_view) override {
    kicked = std::string(condition);
  }
  // Whether the i-th recorded stanza contains needle.
  bool got(std::string_view needle, size_t i = 0) const {
    return i < received.size() && received[i].find(needle) != std::string::npos;
  }
  // How many recorded stanzas contain needle.
  size_t count(std::string_view needle) const {
    size_t n = 0;
    for (const std::string& r : received)
      if (r.find(needle) != std::string::npos) ++n;
    return n;
  }
  std::string last() const { return received.empty() ? std::string() : received.back(); }

  std::vector<std::string> received;
  std::string kicked;

 private:
  xmpp::Jid jid_;
  Host** host_;
};

// An LMDB environment in a fresh temporary directory. Closing it (reset()
// or the destructor) removes the directory with everything in it.
class TempEnv {
 public:
  TempEnv() = default;
  TempEnv(const TempEnv&) = delete;
  TempEnv& operator=(const TempEnv&) = delete;
  ~TempEnv() { reset(); }

  // Opens data.mdb with the tables `dbs` in a new directory named after
  // `prefix`; map_size 0 keeps the default. Fails the test (fatally: wrap
  // the call in ASSERT_NO_FATAL_FAILURE) when either step fails.
  void open(std::string_view prefix, std::vector<std::string> dbs, size_t map_size = 0) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    storage::EnvOptions o;
    if (map_size != 0) o.map_size = map_size;
    o.dbs = std::move(dbs);
    auto env = storage::Env::open(dir_ + "/data.mdb", o);
    ASSERT_TRUE(env.ok()) << env.error().message;
    env_ = std::move(env).value();
  }
  void reset() {
    env_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    dir_.clear();
  }

  const std::string& dir() const { return dir_; }
  storage::Env* get() const { return env_.get(); }
  storage::Env* operator->() const { return env_.get(); }
  storage::Env& operator*() const { return *env_; }

 private:
  std::string dir_;
  std::unique_ptr<storage::Env> env_;
};

// Runs modules_ (or, left empty, the registry's enabled modules) on a real
// Host for example.org, with env_ as its database once a test opens it.
// Members are declared so that the host goes before what it points to.
class HostFixture : public ::testing::Test {
 protected:
  HostFixture() { config_.domain = "example.org"; }

  // Creates host_ (and the loop, the first time). Wrap the call in
  // ASSERT_NO_FATAL_FAILURE.
  void start_host(AccountBackend* accounts = nullptr) {
    if (loop_ == nullptr) {
      auto loop = core::Loop::create();
      ASSERT_TRUE(loop.ok());
      loop_ = std::move(loop.value());
    }
    Host::Deps deps;
    deps.config = &config_;
    deps.loop = loop_.get();
    deps.router = &router_;
    deps.db = env_.get();
    deps.accounts = accounts;
    if (!modules_.empty()) deps.modules = &modules_;
    auto host = Host::create(deps);
    ASSERT_TRUE(host.ok()) << host.error().message;
    host_ = std::move(host.value());
  }
  // Parses a stanza into arena_; one that does not parse fails the test.
  xml::Element& parse(std::string_view text) {
    auto e = xml::parse_fragment(text, arena_);
    EXPECT_TRUE(e.ok()) << text;
    return *e.value();
  }

  TempEnv env_;
  config::Config config_;
  std::unique_ptr<core::Loop> loop_;
  xmpp::Router router_{"example.org"};
  std::vector<const ModuleDef*> modules_;
  std::unique_ptr<Host> host_;
  xml::Arena arena_;
};

}  // namespace hearth::modules::test
