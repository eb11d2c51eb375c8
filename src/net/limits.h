// Connection and traffic limits, the parts without I/O: a token bucket,
// IP addresses and CIDR networks, and the per-IP connection table the
// server consults at accept (issue 6). Times are milliseconds on the
// monotonic clock, passed in so that tests control them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace hearth::net {

// Tokens refill at `amount` per `period_ms`, up to `burst`; a new bucket is
// full. Integer arithmetic in 1/period_ms token units, so nothing drifts.
// A clock that goes backwards refills nothing (and does not underflow).
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(uint64_t amount, uint64_t period_ms, uint64_t burst, uint64_t now_ms);

  // New parameters; the tokens held stay, capped at the new burst.
  void reconfigure(uint64_t amount, uint64_t period_ms, uint64_t burst, uint64_t now_ms);

  // Whole tokens available at `now_ms`.
  uint64_t available(uint64_t now_ms);
  // Takes `n` if that many are there.
  bool try_take(uint64_t n, uint64_t now_ms);
  // Takes up to `n`; returns how many it took.
  uint64_t take_up_to(uint64_t n, uint64_t now_ms);
  // Milliseconds until `n` tokens (at most burst) are available; 0 if now.
  uint64_t ms_until(uint64_t n, uint64_t now_ms);
  // No token is missing (an idle entry holds no information).
  bool full(uint64_t now_ms);

  uint64_t burst() const { return burst_; }

 private:
  void refill(uint64_t now_ms);
  uint64_t amount_ = 0;
  uint64_t period_ms_ = 1;
  uint64_t burst_ = 0;
  uint64_t scaled_ = 0;  // tokens * period_ms_
  uint64_t last_ms_ = 0;
};

// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what
// a dual-stack socket reports for an IPv4 client) are IPv4.
struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // IPv4: the first 4, network order

  // "192.0.2.1", "2001:db8::1", "[2001:db8::1]".
  static std::optional<IpAddress> parse(std::string_view text);
  // A peer as format_sockaddr() prints it: "192.0.2.1:5", "[::1]:5".
  static std::optional<IpAddress> from_peer(std::string_view peer);

  size_t size() const { return v6 ? 16 : 4; }
  bool is_loopback() const;
  std::string to_string() const;
  // What counts as "one IP" for the per-IP limits: the address for IPv4,
  // its /64 for IPv6 (one host or one home network gets a whole /64).
  IpAddress limit_key() const;
  bool operator==(const IpAddress& o) const { return v6 == o.v6 && bytes == o.bytes; }
};

// "10.0.0.0/8", "fd00::/8", "192.0.2.7" (a host). "::ffff:10.0.0.0/104"
// is the IPv4 network 10.0.0.0/8.
class Cidr {
 public:
  static Result<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  const IpAddress& network() const { return net_; }
  unsigned prefix() const { return prefix_; }

 private:
  IpAddress net_;  // host bits cleared
  unsigned prefix_ = 0;
};

struct ConnectionLimits {
  uint32_t max_per_ip = 10;
  uint32_t max_connections = 2000;
  uint32_t connect_rate = 30;  // per IP per minute
  bool trust_loopback = true;
  std::vector<Cidr> trusted;  // exempt from the per-IP limits
};

class ConnectionLimiter;

// One admitted connection's place in the limiter; gives it back when
// destroyed or released. Move-only. The limiter must outlive it.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& o) noexcept { *this = std::move(o); }
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept;
  ~ConnectionSlot() { release(); }
  void release();
  bool held() const { return owner_ != nullptr; }

 private:
  friend class ConnectionLimiter;
  ConnectionLimiter* owner_ = nullptr;
  IpAddress key_;
  bool per_ip_ = false;  // counted in the per-IP table (not exempt)
};

// The accept-time decision. One entry per IP (IPv6: per /64) that has a
// connection open or used part of its connect_rate recently; an entry that
// holds nothing (no connection, bucket full, no recent audit event) is
// dropped, so the table stays small and bounded (max_connections + kSpare
// entries; past that a new IP is refused until entries expire).
class ConnectionLimiter {
 public:
  enum class Verdict { kAccept, kPerIp, kRate, kGlobal, kTable };
  static constexpr size_t kSpare = 8192;
  static constexpr uint64_t kAuditEveryMs = 60000;

  ConnectionLimiter();
  void configure(ConnectionLimits limits, uint64_t now_ms);
  const ConnectionLimits& limits() const { return limits_; }

  // Decides for a new connection from `ip`; on kAccept fills *slot.
  Verdict admit(const IpAddress& ip, uint64_t now_ms, ConnectionSlot* slot);
  bool exempt(const IpAddress& ip) const;

  // A refusal from `ip` may be written to the audit log: the first for an
  // IP within kAuditEveryMs. *suppressed gets how many refusals from it
  // were not logged since its last event.
  bool audit_refusal(const IpAddress& ip, uint64_t now_ms, uint64_t* suppressed);

  // Drops entries that hold nothing; the server calls it now and then.
  void expire(uint64_t now_ms);

  size_t open() const { return open_; }
  size_t entries() const { return table_.size(); }
  uint32_t open_from(const IpAddress& ip) const;

  static const char* reason(Verdict v);

 private:
  friend class ConnectionSlot;
  struct Entry {
    uint32_t open = 0;
    TokenBucket connects;
    uint64_t audited_ms = 0;  // last audit event (0: none)
    uint64_t unlogged = 0;    // refusals since then, not logged
    bool audit_window(uint64_t now_ms) const {
      return audited_ms != 0 && now_ms - audited_ms < kAuditEveryMs;
    }
  };
  struct KeyHash {
    unsigned char key[16];
    size_t operator()(const IpAddress& ip) const;
  };
  void release(const IpAddress& key, bool per_ip);
  Entry* find_or_add(const IpAddress& key, uint64_t now_ms);
  size_t max_entries() const { return limits_.max_connections + kSpare; }

  ConnectionLimits limits_;
  size_t open_ = 0;
  uint64_t last_expire_ms_ = 0;
  std::unordered_map<IpAddress, Entry, KeyHash> table_;
};

}  // namespace hearth::net
