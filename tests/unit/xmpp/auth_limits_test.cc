#include "xmpp/auth_limits.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "core/audit.h"
#include "xmpp/account_store.h"

namespace hearth::xmpp {
namespace {

constexpr uint64_t kStart = 1'800'000'000'000ull;  // unix ms, 2027

class AuthLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.max_failures = 5;
    options_.failure_window_ms = 300'000;
    options_.ban_time_ms = 3'600'000;
    options_.first_delay_ms = 500;
    options_.max_delay_ms = 5000;
    table_ = make_memory_failure_table();
    make_limiter();
  }
  void make_limiter() {
    limiter_ = std::make_unique<AuthLimiter>(table_.get(), options_, [this] { return now_; });
  }
  size_t entries() {
    size_t n = 0;
    EXPECT_TRUE(table_->for_each([&](std::string_view, const auto&) { ++n; }).ok());
    return n;
  }

  AuthLimitOptions options_;
  std::unique_ptr<FailureTable> table_;
  std::unique_ptr<AuthLimiter> limiter_;
  uint64_t now_ = kStart;
};

TEST_F(AuthLimiterTest, BackoffDoublesAndIsCapped) {
  EXPECT_EQ(limiter_->delay_for(0), 0u);
  EXPECT_EQ(limiter_->delay_for(1), 500u);
  EXPECT_EQ(limiter_->delay_for(2), 1000u);
  EXPECT_EQ(limiter_->delay_for(3), 2000u);
  EXPECT_EQ(limiter_->delay_for(4), 4000u);
  EXPECT_EQ(limiter_->delay_for(5), 5000u);
  EXPECT_EQ(limiter_->delay_for(4'000'000'000u), 5000u);
}

TEST_F(AuthLimiterTest, BanAfterMaxFailuresWithinTheWindowAndItsEnd) {
  for (uint32_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(limiter_->allowed("192.0.2.1"));
    AuthLimiter::Failure f = limiter_->failure("192.0.2.1", "alice", "PLAIN");
    EXPECT_EQ(f.ip_failures, i);
    EXPECT_FALSE(f.banned_now);
    EXPECT_EQ(f.delay_ms, limiter_->delay_for(i));
    now_ += 10'000;
  }
  AuthLimiter::Failure fifth = limiter_->failure("192.0.2.1", "alice", "PLAIN");
  EXPECT_TRUE(fifth.banned_now);
  EXPECT_FALSE(limiter_->allowed("192.0.2.1"));
  EXPECT_EQ(limiter_->banned_until_ms("192.0.2.1"), now_ + options_.ban_time_ms);
  // Other IPs are not affected, nor the account.
  EXPECT_TRUE(limiter_->allowed("192.0.2.2"));
  now_ += options_.ban_time_ms - 1;
  EXPECT_FALSE(limiter_->allowed("192.0.2.1"));
  now_ += 1;
  EXPECT_TRUE(limiter_->allowed("192.0.2.1"));
  // After the ban the IP starts afresh.
  EXPECT_EQ(limiter_->failure("192.0.2.1", "bob", "PLAIN").ip_failures, 1u);
}

TEST_F(AuthLimiterTest, AQuietWindowForgetsTheCount) {
  for (int i = 0; i < 4; ++i)
    limiter_->failure("192.0.2.1", "alice", "PLAIN");
  now_ += options_.failure_window_ms - 1;  // still counting
  EXPECT_EQ(limiter_->failure("192.0.2.1", "carol", "PLAIN").ip_failures, 5u);
  EXPECT_FALSE(limiter_->allowed("192.0.2.1"));

  for (int i = 0; i < 4; ++i)
    limiter_->failure("198.51.100.7", "alice", "PLAIN");
  now_ += options_.failure_window_ms;  // a whole quiet window
  AuthLimiter::Failure f = limiter_->failure("198.51.100.7", "alice", "PLAIN");
  EXPECT_EQ(f.ip_failures, 1u);
  EXPECT_FALSE(f.banned_now);
  EXPECT_TRUE(limiter_->allowed("198.51.100.7"));
}

TEST_F(AuthLimiterTest, SuccessResetsTheIpButNotABanNorTheAccount) {
  for (int i = 0; i < 3; ++i)
    limiter_->failure("192.0.2.1", "alice", "PLAIN");
  EXPECT_EQ(limiter_->success("192.0.2.1", "alice", "PLAIN"), 3u);
  EXPECT_EQ(limiter_->success("192.0.2.1", "alice", "PLAIN"), 0u);
  AuthLimiter::Failure f = limiter_->failure("192.0.2.1", "bob", "PLAIN");
  EXPECT_EQ(f.ip_failures, 1u);
  // alice's own count stays (3 before): the next failure for her is the 4th.
  EXPECT_EQ(limiter_->failure("192.0.2.9", "alice", "PLAIN").account_failures, 4u);

  for (int i = 0; i < 5; ++i)
    limiter_->failure("203.0.113.5", "x", "PLAIN");
  ASSERT_FALSE(limiter_->allowed("203.0.113.5"));
  limiter_->success("203.0.113.5", "alice", "PLAIN");  // cannot happen, and would not lift it
  EXPECT_FALSE(limiter_->allowed("203.0.113.5"));
}

TEST_F(AuthLimiterTest, AccountCounterSlowsButNeverBans) {
  // Twenty IPs, one guess each, all against alice.
  AuthLimiter::Failure last;
  for (int i = 1; i <= 20; ++i) {
    std::string ip = "10.0.0." + std::to_string(i);
    last = limiter_->failure(ip, "alice", "SCRAM-SHA-256");
    EXPECT_EQ(last.ip_failures, 1u);
    EXPECT_EQ(last.account_failures, static_cast<uint32_t>(i));
    EXPECT_FALSE(last.banned_now);
    EXPECT_TRUE(limiter_->allowed(ip));
  }
  EXPECT_EQ(last.delay_ms, options_.max_delay_ms);  // from the account's count
  // Another IP still gets in (and its success is never delayed).
  EXPECT_TRUE(limiter_->allowed("10.0.1.1"));
  EXPECT_EQ(limiter_->success("10.0.1.1", "alice", "SCRAM-SHA-256"), 0u);
  // Unknown names are counted the same way as real ones.
  EXPECT_EQ(limiter_->failure("10.0.0.1", "nobody-here", "PLAIN").account_failures, 1u);
  // The account's count also ends with a quiet window.
  now_ += options_.failure_window_ms;
  EXPECT_EQ(limiter_->failure("10.0.2.1", "alice", "PLAIN").account_failures, 1u);
}

TEST_F(AuthLimiterTest, Ipv6CountsPerSlash64AndMappedIpv4AsIpv4) {
  for (int i = 1; i <= 5; ++i)
    limiter_->failure("2001:db8:1:2::" + std::to_string(i), "", "PLAIN");
  EXPECT_FALSE(limiter_->allowed("2001:db8:1:2:ffff::1"));
  EXPECT_TRUE(limiter_->allowed("2001:db8:1:3::1"));
  for (int i = 0; i < 5; ++i)
    limiter_->failure("::ffff:192.0.2.77", "", "PLAIN");
  EXPECT_FALSE(limiter_->allowed("192.0.2.77"));
}

TEST_F(AuthLimiterTest, PruneDropsExpiredEntriesAndBoundsTheTable) {
  limiter_->failure("192.0.2.1", "alice", "PLAIN");
  for (int i = 0; i < 5; ++i)
    limiter_->failure("192.0.2.2", "bob", "PLAIN");
  EXPECT_EQ(entries(), 4u);  // two IPs, two accounts
  now_ += options_.failure_window_ms;
  limiter_->prune();
  EXPECT_EQ(entries(), 1u);  // the ban of 192.0.2.2
  now_ += options_.ban_time_ms;
  limiter_->prune();
  EXPECT_EQ(entries(), 0u);

  options_.max_entries = 10;
  options_.prune_every = 1000;
  make_limiter();
  for (int i = 0; i < 5; ++i)
    limiter_->failure("192.0.2.200", "", "PLAIN");  // banned
  for (int i = 0; i < 30; ++i) {
    now_ += 1;
    limiter_->failure("10.1.0." + std::to_string(i), "", "PLAIN");
  }
  limiter_->prune();
  EXPECT_EQ(entries(), 10u);
  // The ban is kept, and the newest counters rather than the oldest.
  EXPECT_FALSE(limiter_->allowed("192.0.2.200"));
  auto newest = table_->get(failure_ip_key("10.1.0.29"));
  ASSERT_TRUE(newest.ok());
  EXPECT_TRUE(newest->has_value());
  auto oldest = table_->get(failure_ip_key("10.1.0.0"));
  ASSERT_TRUE(oldest.ok());
  EXPECT_FALSE(oldest->has_value());
}

TEST(AuthLimitsEncodingTest, RecordIsVersionedBigEndian) {
  FailureRecord r;
  r.failures = 0x01020304;
  r.last_failure_ms = 0x1112131415161718ull;
  r.banned_until_ms = 0x2122232425262728ull;
  std::string v = encode_failure_record(r);
  EXPECT_EQ(v, std::string("\x01"
                           "\x01\x02\x03\x04"
                           "\x11\x12\x13\x14\x15\x16\x17\x18"
                           "\x21\x22\x23\x24\x25\x26\x27\x28",
                           21));
  auto back = decode_failure_record(v);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r);
  EXPECT_FALSE(decode_failure_record(v.substr(0, 20)).ok());
  EXPECT_FALSE(decode_failure_record(v + "x").ok());
  std::string v2 = v;
  v2[0] = 2;
  EXPECT_FALSE(decode_failure_record(v2).ok());
}

TEST(AuthLimitsEncodingTest, Keys) {
  EXPECT_EQ(failure_ip_key("192.0.2.1"), std::string("\x01\xc0\x00\x02\x01", 5));
  EXPECT_EQ(failure_ip_key("::ffff:192.0.2.1"), failure_ip_key("192.0.2.1"));
  EXPECT_EQ(failure_ip_key("2001:db8::1"), std::string("\x02\x20\x01\x0d\xb8\0\0\0\0", 9));
  EXPECT_EQ(failure_ip_key("2001:db8::1"), failure_ip_key("2001:db8:0:0:ffff::2"));
  EXPECT_EQ(failure_ip_key("not an ip"), std::string("\x03not an ip"));
  EXPECT_EQ(failure_account_key("alice"), std::string("\x10"
                                                      "alice"));
  EXPECT_EQ(failure_key_text(failure_ip_key("192.0.2.1")), "192.0.2.1");
  EXPECT_EQ(failure_key_text(failure_ip_key("2001:db8:1:2::9")), "2001:db8:1:2::/64");
  EXPECT_EQ(failure_key_text(failure_account_key("alice")), "alice");
}

// The counters live in accounts.mdb: a second open (a restart) sees them.
TEST(AuthLimitsStoreTest, CountersSurviveReopening) {
  char dir[] = "/tmp/hearth-auth-limits-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/accounts.mdb";
  AuthLimitOptions options;
  uint64_t now = kStart;
  {
    auto store = AccountStore::open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    ASSERT_NE((*store)->failures(), nullptr);
    AuthLimiter limiter((*store)->failures(), options, [&] { return now; });
    for (int i = 0; i < 5; ++i)
      limiter.failure("192.0.2.1", "alice", "PLAIN");
    limiter.failure("192.0.2.2", "alice", "PLAIN");
  }
  {
    auto store = AccountStore::open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    AuthLimiter limiter((*store)->failures(), options, [&] { return now; });
    EXPECT_FALSE(limiter.allowed("192.0.2.1"));
    AuthLimiter::Failure f = limiter.failure("192.0.2.2", "alice", "PLAIN");
    EXPECT_EQ(f.ip_failures, 2u);
    EXPECT_EQ(f.account_failures, 7u);
    // Accounts are untouched by the counters (a separate table).
    auto names = (*store)->list();
    ASSERT_TRUE(names.ok());
    EXPECT_TRUE(names->empty());
  }
  unlink(path.c_str());
  unlink((path + "-lock").c_str());
  rmdir(dir);
}

// The events go to the audit log as JSON lines.
TEST(AuthLimitsAuditTest, FailureAndBanAreAudited) {
  char path[] = "/tmp/hearth-audit-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  int old_fd = audit::fd();
  audit::set_fd(fd);
  auto table = make_memory_failure_table();
  AuthLimitOptions options;
  options.max_failures = 2;
  uint64_t now = kStart;
  AuthLimiter limiter(table.get(), options, [&] { return now; });
  limiter.failure("192.0.2.1", "alice", "PLAIN");
  limiter.failure("192.0.2.1", "alice", "PLAIN");
  audit::set_fd(old_fd);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0)
    text.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  EXPECT_NE(text.find("\"event\":\"auth_failure\",\"ip\":\"192.0.2.1\",\"user\":\"alice\","
                      "\"mechanism\":\"PLAIN\",\"count\":1"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("\"event\":\"ip_banned\",\"ip\":\"192.0.2.1\",\"until\":\"2027-01-15T09:00:00Z\""),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\"failures\":2"), std::string::npos) << text;
  EXPECT_NE(text.find("\"event\":\"throttled\",\"user\":\"alice\""), std::string::npos) << text;
}

}  // namespace
}  // namespace hearth::xmpp
