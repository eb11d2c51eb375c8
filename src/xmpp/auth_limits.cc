#include "xmpp/auth_limits.h"

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <utility>

#include "core/audit.h"
#include "core/log.h"
#include "storage/codec.h"

namespace hearth::xmpp {
namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr uint8_t kKeyIpv4 = 1;
constexpr uint8_t kKeyIpv6 = 2;
constexpr uint8_t kKeyOther = 3;
constexpr uint8_t kKeyAccount = 16;
constexpr size_t kMaxOtherIp = 64;

std::string iso_time(uint64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

class MemoryFailureTable final : public FailureTable {
 public:
  Result<std::optional<FailureRecord>> get(std::string_view key) override {
    auto it = entries_.find(std::string(key));
    if (it == entries_.end()) return std::optional<FailureRecord>();
    return std::optional<FailureRecord>(it->second);
  }
  Status put(std::string_view key, const FailureRecord& r) override {
    entries_[std::string(key)] = r;
    return {};
  }
  Status remove(std::string_view key) override {
    entries_.erase(std::string(key));
    return {};
  }
  Status for_each(const EntryFn& fn) override {
    for (const auto& [k, v] : entries_)
      fn(k, v);
    return {};
  }
  Status remove_all(const std::vector<std::string>& keys) override {
    for (const auto& k : keys)
      entries_.erase(k);
    return {};
  }

 private:
  std::map<std::string, FailureRecord> entries_;
};

}  // namespace

std::string encode_failure_record(const FailureRecord& r) {
  storage::Writer w;
  w.u8(kRecordVersion).u32(r.failures).u64(r.last_failure_ms).u64(r.banned_until_ms);
  return w.take();
}

Result<FailureRecord> decode_failure_record(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0;
  FailureRecord rec;
  if (!r.u8(&version) || version != kRecordVersion) return make_error("failure record: version");
  if (!r.u32(&rec.failures) || !r.u64(&rec.last_failure_ms) || !r.u64(&rec.banned_until_ms))
    return make_error("failure record: truncated");
  if (Status s = r.finish(); !s) return make_error("failure record: " + s.error().message);
  return rec;
}

std::string failure_ip_key(std::string_view ip) {
  std::string text(ip);
  unsigned char addr[16];
  std::string key;
  if (inet_pton(AF_INET, text.c_str(), addr) == 1) {
    key.push_back(static_cast<char>(kKeyIpv4));
    key.append(reinterpret_cast<const char*>(addr), 4);
    return key;
  }
  if (inet_pton(AF_INET6, text.c_str(), addr) == 1) {
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(addr, addr + 12, kMapped)) {
      key.push_back(static_cast<char>(kKeyIpv4));
      key.append(reinterpret_cast<const char*>(addr + 12), 4);
      return key;
    }
    key.push_back(static_cast<char>(kKeyIpv6));
    key.append(reinterpret_cast<const char*>(addr), 8);  // the /64
    return key;
  }
  key.push_back(static_cast<char>(kKeyOther));
  key.append(text.substr(0, kMaxOtherIp));
  return key;
}

std::string failure_account_key(std::string_view username) {
  std::string key(1, static_cast<char>(kKeyAccount));
  key.append(username);
  return key;
}

std::string failure_key_text(std::string_view key) {
  if (key.empty()) return "";
  uint8_t kind = static_cast<uint8_t>(key[0]);
  std::string_view rest = key.substr(1);
  char buf[INET6_ADDRSTRLEN];
  if (kind == kKeyIpv4 && rest.size() == 4) {
    if (inet_ntop(AF_INET, rest.data(), buf, sizeof buf)) return buf;
  } else if (kind == kKeyIpv6 && rest.size() == 8) {
    unsigned char addr[16] = {};
    std::copy(rest.begin(), rest.end(), addr);
    if (inet_ntop(AF_INET6, addr, buf, sizeof buf)) return std::string(buf) + "/64";
  } else if (kind == kKeyOther || kind == kKeyAccount) {
    return std::string(rest);
  }
  return "?";
}

std::unique_ptr<FailureTable> make_memory_failure_table() {
  return std::make_unique<MemoryFailureTable>();
}

uint64_t wall_clock_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

AuthLimiter::AuthLimiter(FailureTable* table, const AuthLimitOptions& options, Clock clock)
    : table_(table), options_(options), clock_(std::move(clock)) {
  if (options_.max_failures == 0) options_.max_failures = 1;
}

uint64_t AuthLimiter::delay_for(uint32_t n) const {
  if (n == 0) return 0;
  uint64_t d = options_.first_delay_ms;
  for (uint32_t i = 1; i < n && d < options_.max_delay_ms; ++i)
    d *= 2;
  return std::min(d, options_.max_delay_ms);
}

bool AuthLimiter::expired(const FailureRecord& r, uint64_t now) const {
  bool counting = r.failures > 0 && now < r.last_failure_ms + options_.failure_window_ms;
  bool banned = r.banned_until_ms > now;
  return !counting && !banned;
}

FailureRecord AuthLimiter::load(const std::string& key) {
  auto r = table_->get(key);
  if (!r.ok()) {
    // Fail open on a storage error (the log says so): refusing every login
    // because a disk is full would be the worse outage.
    HEARTH_WARN("auth", "failure counters: %s", r.error().message.c_str());
    return {};
  }
  return r->value_or(FailureRecord{});
}

void AuthLimiter::store(const std::string& key, const FailureRecord& r) {
  if (Status s = table_->put(key, r); !s)
    HEARTH_WARN("auth", "failure counters: %s", s.error().message.c_str());
}

uint64_t AuthLimiter::banned_until_ms(std::string_view ip) {
  FailureRecord r = load(failure_ip_key(ip));
  return r.banned_until_ms > clock_() ? r.banned_until_ms : 0;
}

bool AuthLimiter::allowed(std::string_view ip) {
  std::string key = failure_ip_key(ip);
  FailureRecord r = load(key);
  if (r.banned_until_ms == 0) return true;
  uint64_t now = clock_();
  if (r.banned_until_ms > now) return false;
  // The ban is over: the IP starts afresh.
  audit::event("ip_unbanned", {{"ip", failure_key_text(key)}});
  if (Status s = table_->remove(key); !s)
    HEARTH_WARN("auth", "failure counters: %s", s.error().message.c_str());
  return true;
}

AuthLimiter::Failure AuthLimiter::failure(std::string_view ip, std::string_view username,
                                          std::string_view mechanism) {
  uint64_t now = clock_();
  Failure out;
  auto bump = [&](const std::string& key) {
    FailureRecord r = load(key);
    if (r.failures == 0 || now >= r.last_failure_ms + options_.failure_window_ms) {
      r.failures = 0;  // a quiet window forgets
    }
    if (r.failures < UINT32_MAX) ++r.failures;
    r.last_failure_ms = now;
    return r;
  };

  std::string ip_key = failure_ip_key(ip);
  FailureRecord ip_rec = bump(ip_key);
  out.ip_failures = ip_rec.failures;
  if (ip_rec.failures >= options_.max_failures && ip_rec.banned_until_ms <= now) {
    ip_rec.banned_until_ms = now + options_.ban_time_ms;
    out.banned_now = true;
  }
  store(ip_key, ip_rec);

  if (!username.empty()) {
    std::string account_key = failure_account_key(username);
    FailureRecord acc = bump(account_key);
    out.account_failures = acc.failures;
    store(account_key, acc);
  }
  out.delay_ms = delay_for(std::max(out.ip_failures, out.account_failures));

  std::string ip_text(ip);
  std::string count = std::to_string(out.ip_failures);
  std::string account_count = std::to_string(out.account_failures);
  std::string delay = std::to_string(out.delay_ms);
  audit::event("auth_failure", {{"ip", ip_text},
                                {"user", username},
                                {"mechanism", mechanism},
                                {"count", count, true},
                                {"account_count", account_count, true},
                                {"delay_ms", delay, true}});
  if (out.banned_now) {
    std::string secs = std::to_string(options_.ban_time_ms / 1000);
    audit::event("ip_banned", {{"ip", ip_text},
                               {"until", iso_time(ip_rec.banned_until_ms)},
                               {"failures", count, true},
                               {"ban_seconds", secs, true}});
    HEARTH_WARN("auth", "%s banned for %s s after %u failed logins", ip_text.c_str(), secs.c_str(),
                out.ip_failures);
  }
  if (out.account_failures == options_.max_failures) {
    // Many failures for one account, from whatever IPs: its failures are
    // answered slowly from now on (never a lock-out; logged once per run).
    audit::event("throttled", {{"user", username},
                               {"ip", ip_text},
                               {"failures", account_count, true},
                               {"delay_ms", delay, true}});
  }

  if (++since_prune_ >= options_.prune_every) prune();
  return out;
}

uint32_t AuthLimiter::success(std::string_view ip, std::string_view username,
                              std::string_view mechanism) {
  std::string key = failure_ip_key(ip);
  FailureRecord r = load(key);
  uint64_t now = clock_();
  uint32_t had =
      r.failures > 0 && now < r.last_failure_ms + options_.failure_window_ms ? r.failures : 0;
  if (r.failures == 0) return 0;
  if (had > 0) {
    std::string count = std::to_string(had);
    audit::event("auth_success", {{"ip", std::string(ip)},
                                  {"user", username},
                                  {"mechanism", mechanism},
                                  {"failures", count, true}});
  }
  // A ban stays (a success cannot happen while banned anyway).
  if (r.banned_until_ms > now) {
    r.failures = 0;
    store(key, r);
  } else if (Status s = table_->remove(key); !s) {
    HEARTH_WARN("auth", "failure counters: %s", s.error().message.c_str());
  }
  return had;
}

void AuthLimiter::prune() {
  since_prune_ = 0;
  uint64_t now = clock_();
  std::vector<std::string> drop;
  // (expiry, key) of what stays, to trim the table to max_entries.
  std::vector<std::pair<std::pair<bool, uint64_t>, std::string>> live;
  Status s = table_->for_each([&](std::string_view key, const std::optional<FailureRecord>& r) {
    if (!r || expired(*r, now)) {
      if (r && r->banned_until_ms != 0 && key.size() > 0 &&
          static_cast<uint8_t>(key[0]) != kKeyAccount)
        audit::event("ip_unbanned", {{"ip", failure_key_text(key)}});
      drop.emplace_back(key);
      return;
    }
    bool banned = r->banned_until_ms > now;
    uint64_t expiry = std::max(r->banned_until_ms, r->last_failure_ms + options_.failure_window_ms);
    live.push_back({{banned, expiry}, std::string(key)});
  });
  if (!s) {
    HEARTH_WARN("auth", "failure counters: %s", s.error().message.c_str());
    return;
  }
  if (live.size() > options_.max_entries) {
    // Counters before bans, and among them those that expire first.
    std::sort(live.begin(), live.end());
    size_t excess = live.size() - options_.max_entries;
    HEARTH_WARN("auth", "failure counters: %zu entries over the limit of %zu; dropping", excess,
                options_.max_entries);
    for (size_t i = 0; i < excess; ++i)
      drop.push_back(std::move(live[i].second));
  }
  if (drop.empty()) return;
  if (Status r = table_->remove_all(drop); !r)
    HEARTH_WARN("auth", "failure counters: %s", r.error().message.c_str());
}

}  // namespace hearth::xmpp
