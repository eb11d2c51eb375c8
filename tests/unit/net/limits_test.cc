#include "net/limits.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "core/loop.h"
#include "net/connection.h"

namespace hearth::net {
namespace {

IpAddress ip(const char* text) {
  std::optional<IpAddress> a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

Cidr cidr(const char* text) {
  Result<Cidr> c = Cidr::parse(text);
  EXPECT_TRUE(c.ok()) << text << ": " << (c.ok() ? "" : c.error().message);
  return c.ok() ? c.value() : Cidr{};
}

// ---- TokenBucket ----

TEST(TokenBucket, StartsFullAndRefillsAtTheRate) {
  TokenBucket b(10000, 1000, 25000, 1000);  // 10000/s, burst 25000
  EXPECT_EQ(b.available(1000), 25000u);
  EXPECT_EQ(b.take_up_to(30000, 1000), 25000u);
  EXPECT_EQ(b.available(1000), 0u);
  EXPECT_EQ(b.available(1001), 10u);  // 10 per millisecond
  EXPECT_EQ(b.available(1100), 1000u);
  EXPECT_EQ(b.available(2000), 10000u);
  EXPECT_TRUE(b.try_take(10000, 2000));
  EXPECT_FALSE(b.try_take(1, 2000));
  EXPECT_EQ(b.available(2000), 0u);
}

TEST(TokenBucket, FractionsAreKeptNotLost) {
  TokenBucket b(30, 60000, 30, 0);  // 30 per minute: one per 2000 ms
  EXPECT_EQ(b.take_up_to(30, 0), 30u);
  // Refills of 1 ms each add up to whole tokens without rounding loss.
  uint64_t t = 0;
  for (int i = 0; i < 1999; ++i)
    EXPECT_EQ(b.available(++t), 0u);
  EXPECT_EQ(b.available(++t), 1u);
  EXPECT_EQ(b.available(t + 4000), 3u);
}

TEST(TokenBucket, BurstCapsTheRefill) {
  TokenBucket b(1000, 1000, 5000, 0);
  EXPECT_TRUE(b.try_take(5000, 0));
  EXPECT_EQ(b.available(1000000), 5000u);
  EXPECT_TRUE(b.full(1000000));
  // A very long pause at a huge rate does not overflow.
  TokenBucket big(100000000, 1000, 100000000, 0);
  EXPECT_EQ(big.take_up_to(100000000, 0), 100000000u);
  EXPECT_EQ(big.available(UINT64_MAX / 2), 100000000u);
}

TEST(TokenBucket, TimeGoingBackwardsAddsNothing) {
  TokenBucket b(1000, 1000, 1000, 10000);
  EXPECT_EQ(b.take_up_to(1000, 10000), 1000u);
  EXPECT_EQ(b.available(5000), 0u);  // the clock stepped back 5 s
  EXPECT_EQ(b.available(5000), 0u);
  // From the earlier time on it refills normally (no wait for 10000 again).
  EXPECT_EQ(b.available(5500), 500u);
  EXPECT_EQ(b.available(0), 500u);  // back again: tokens stay, none added
  EXPECT_EQ(b.available(100), 600u);
}

TEST(TokenBucket, MsUntil) {
  TokenBucket b(10000, 1000, 25000, 0);
  EXPECT_EQ(b.ms_until(1000, 0), 0u);
  b.take_up_to(25000, 0);
  EXPECT_EQ(b.ms_until(1000, 0), 100u);
  EXPECT_EQ(b.ms_until(1, 0), 1u);
  EXPECT_EQ(b.ms_until(100000, 0), 2500u);  // capped at the burst
  EXPECT_EQ(b.ms_until(1000, 50), 50u);
  TokenBucket minute(30, 60000, 30, 0);
  minute.take_up_to(30, 0);
  EXPECT_EQ(minute.ms_until(1, 0), 2000u);
}

TEST(TokenBucket, ReconfigureKeepsTokensUnderTheNewBurst) {
  TokenBucket b(100, 1000, 1000, 0);
  b.take_up_to(400, 0);  // 600 left
  b.reconfigure(100, 1000, 500, 0);
  EXPECT_EQ(b.available(0), 500u);
  b.reconfigure(1000, 1000, 5000, 0);
  EXPECT_EQ(b.available(0), 500u);
  EXPECT_EQ(b.available(1000), 1500u);
}

// ---- IpAddress ----

TEST(IpAddress, ParsesBothFamiliesAndPeers) {
  EXPECT_FALSE(ip("192.0.2.1").v6);
  EXPECT_EQ(ip("192.0.2.1").to_string(), "192.0.2.1");
  EXPECT_TRUE(ip("2001:db8::1").v6);
  EXPECT_EQ(ip("[2001:db8::1]").to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::from_peer("192.0.2.1:5222")->to_string(), "192.0.2.1");
  EXPECT_EQ(IpAddress::from_peer("[2001:db8::7]:5222")->to_string(), "2001:db8::7");
  EXPECT_FALSE(IpAddress::parse("").has_value());
  EXPECT_FALSE(IpAddress::parse("example.org").has_value());
  EXPECT_FALSE(IpAddress::parse("192.0.2.256").has_value());
  EXPECT_FALSE(IpAddress::from_peer("[::1:5222").has_value());
}

TEST(IpAddress, V4MappedIsV4) {
  IpAddress m = ip("::ffff:192.0.2.1");
  EXPECT_FALSE(m.v6);
  EXPECT_EQ(m, ip("192.0.2.1"));
  EXPECT_EQ(IpAddress::from_peer("[::ffff:127.0.0.1]:40000")->to_string(), "127.0.0.1");
  // ::192.0.2.1 (the deprecated IPv4-compatible form) is IPv6.
  EXPECT_TRUE(ip("::192.0.2.1").v6);
}

TEST(IpAddress, Loopback) {
  EXPECT_TRUE(ip("127.0.0.1").is_loopback());
  EXPECT_TRUE(ip("127.255.0.3").is_loopback());
  EXPECT_TRUE(ip("::1").is_loopback());
  EXPECT_TRUE(ip("::ffff:127.0.0.2").is_loopback());
  EXPECT_FALSE(ip("128.0.0.1").is_loopback());
  EXPECT_FALSE(ip("::2").is_loopback());
  EXPECT_FALSE(ip("::").is_loopback());
}

TEST(IpAddress, LimitKeyIsTheAddressOrTheV6Slash64) {
  EXPECT_EQ(ip("192.0.2.1").limit_key(), ip("192.0.2.1"));
  EXPECT_FALSE(ip("192.0.2.1").limit_key() == ip("192.0.2.2").limit_key());
  EXPECT_EQ(ip("2001:db8:1:2:aaaa::1").limit_key(), ip("2001:db8:1:2::"));
  EXPECT_EQ(ip("2001:db8:1:2:aaaa::1").limit_key(), ip("2001:db8:1:2:ffff::9").limit_key());
  EXPECT_FALSE(ip("2001:db8:1:2::1").limit_key() == ip("2001:db8:1:3::1").limit_key());
}

// ---- Cidr ----

TEST(Cidr, V4Prefixes) {
  Cidr lan = cidr("192.168.1.0/24");
  EXPECT_TRUE(lan.contains(ip("192.168.1.0")));
  EXPECT_TRUE(lan.contains(ip("192.168.1.255")));
  EXPECT_FALSE(lan.contains(ip("192.168.2.1")));
  EXPECT_FALSE(lan.contains(ip("192.168.0.255")));
  EXPECT_FALSE(lan.contains(ip("::ffff:c0a8:0201")));  // 192.168.2.1 mapped
  EXPECT_TRUE(lan.contains(ip("::ffff:192.168.1.9")));
  EXPECT_FALSE(lan.contains(ip("2001:db8::1")));

  Cidr all = cidr("0.0.0.0/0");
  EXPECT_TRUE(all.contains(ip("1.2.3.4")));
  EXPECT_TRUE(all.contains(ip("255.255.255.255")));
  EXPECT_FALSE(all.contains(ip("::1")));

  Cidr host = cidr("10.1.2.3/32");
  EXPECT_TRUE(host.contains(ip("10.1.2.3")));
  EXPECT_FALSE(host.contains(ip("10.1.2.2")));
  EXPECT_FALSE(host.contains(ip("10.1.2.4")));
  Cidr bare = cidr("10.1.2.3");
  EXPECT_EQ(bare.prefix(), 32u);
  EXPECT_TRUE(bare.contains(ip("10.1.2.3")));
  EXPECT_FALSE(bare.contains(ip("10.1.2.7")));

  // Host bits in the network are cleared; odd prefixes work bit by bit.
  Cidr odd = cidr("10.1.2.3/13");
  EXPECT_EQ(odd.network().to_string(), "10.0.0.0");
  EXPECT_TRUE(odd.contains(ip("10.7.255.255")));
  EXPECT_FALSE(odd.contains(ip("10.8.0.0")));
  Cidr loop = cidr("127.0.0.0/8");
  EXPECT_TRUE(loop.contains(ip("127.0.0.3")));
  EXPECT_FALSE(loop.contains(ip("126.255.255.255")));
}

TEST(Cidr, V6Prefixes) {
  Cidr ula = cidr("fd00::/8");
  EXPECT_TRUE(ula.contains(ip("fd12:3456::1")));
  EXPECT_FALSE(ula.contains(ip("fe80::1")));
  EXPECT_FALSE(ula.contains(ip("10.0.0.1")));

  Cidr all = cidr("::/0");
  EXPECT_TRUE(all.contains(ip("2001:db8::1")));
  EXPECT_TRUE(all.contains(ip("::1")));
  EXPECT_FALSE(all.contains(ip("1.2.3.4")));  // IPv4 clients are IPv4

  Cidr host = cidr("2001:db8::1/128");
  EXPECT_TRUE(host.contains(ip("2001:db8::1")));
  EXPECT_FALSE(host.contains(ip("2001:db8::2")));
  EXPECT_FALSE(host.contains(ip("2001:db8::")));
  EXPECT_EQ(cidr("::1").prefix(), 128u);

  Cidr p65 = cidr("2001:db8:0:0:8000::/65");
  EXPECT_TRUE(p65.contains(ip("2001:db8::8000:0:0:1")));
  EXPECT_FALSE(p65.contains(ip("2001:db8::7fff:0:0:1")));
}

TEST(Cidr, V4MappedNetworks) {
  Cidr m = cidr("::ffff:10.0.0.0/104");  // = 10.0.0.0/8
  EXPECT_FALSE(m.network().v6);
  EXPECT_EQ(m.prefix(), 8u);
  EXPECT_TRUE(m.contains(ip("10.200.0.1")));
  EXPECT_TRUE(m.contains(ip("::ffff:10.9.9.9")));
  EXPECT_FALSE(m.contains(ip("11.0.0.1")));
  Cidr all4 = cidr("::ffff:0.0.0.0/96");
  EXPECT_TRUE(all4.contains(ip("8.8.8.8")));
  EXPECT_FALSE(all4.contains(ip("2001:db8::1")));
  Cidr one = cidr("::ffff:127.0.0.2/128");
  EXPECT_TRUE(one.contains(ip("127.0.0.2")));
  EXPECT_FALSE(one.contains(ip("127.0.0.3")));
}

TEST(Cidr, RejectsGarbage) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x",
                          "10.0.0.0/-1", "host.example/8", "10.0.0.0/0008"}) {
    EXPECT_FALSE(Cidr::parse(bad).ok()) << bad;
  }
}

// ---- ConnectionLimiter ----

ConnectionLimits limits(uint32_t per_ip, uint32_t all, uint32_t rate) {
  ConnectionLimits l;
  l.max_per_ip = per_ip;
  l.max_connections = all;
  l.connect_rate = rate;
  l.trust_loopback = false;
  return l;
}

using V = ConnectionLimiter::Verdict;

TEST(ConnectionLimiter, PerIpCapCountsAndReleases) {
  ConnectionLimiter lim;
  lim.configure(limits(3, 100, 1000), 0);
  IpAddress a = ip("192.0.2.1"), b = ip("192.0.2.2");
  ConnectionSlot s[5];
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(lim.admit(a, 0, &s[i]), V::kAccept);
  EXPECT_EQ(lim.admit(a, 0, &s[3]), V::kPerIp);
  EXPECT_FALSE(s[3].held());
  EXPECT_EQ(lim.admit(b, 0, &s[4]), V::kAccept);  // another IP is not affected
  EXPECT_EQ(lim.open_from(a), 3u);
  EXPECT_EQ(lim.open(), 4u);
  s[0].release();
  s[0].release();  // twice is once
  EXPECT_EQ(lim.open_from(a), 2u);
  EXPECT_EQ(lim.open(), 3u);
  EXPECT_EQ(lim.admit(a, 0, &s[3]), V::kAccept);
  EXPECT_EQ(lim.open_from(a), 3u);
}

TEST(ConnectionLimiter, SlotsReleaseWhenDestroyedOrMoved) {
  ConnectionLimiter lim;
  lim.configure(limits(2, 100, 1000), 0);
  IpAddress a = ip("198.51.100.1");
  {
    ConnectionSlot s1;
    EXPECT_EQ(lim.admit(a, 0, &s1), V::kAccept);
    ConnectionSlot s2 = std::move(s1);
    EXPECT_FALSE(s1.held());
    EXPECT_TRUE(s2.held());
    EXPECT_EQ(lim.open_from(a), 1u);
  }
  EXPECT_EQ(lim.open_from(a), 0u);
  EXPECT_EQ(lim.open(), 0u);
}

TEST(ConnectionLimiter, V6CountsPerSlash64) {
  ConnectionLimiter lim;
  lim.configure(limits(2, 100, 1000), 0);
  ConnectionSlot s[4];
  EXPECT_EQ(lim.admit(ip("2001:db8:0:1::1"), 0, &s[0]), V::kAccept);
  EXPECT_EQ(lim.admit(ip("2001:db8:0:1::2"), 0, &s[1]), V::kAccept);
  EXPECT_EQ(lim.admit(ip("2001:db8:0:1:ffff::3"), 0, &s[2]), V::kPerIp);
  EXPECT_EQ(lim.admit(ip("2001:db8:0:2::1"), 0, &s[3]), V::kAccept);
}

TEST(ConnectionLimiter, ConnectRatePerMinute) {
  ConnectionLimiter lim;
  lim.configure(limits(100, 1000, 5), 0);
  IpAddress a = ip("203.0.113.9");
  for (int i = 0; i < 5; ++i) {
    ConnectionSlot s;  // closed right away: the rate still counts
    EXPECT_EQ(lim.admit(a, 1000, &s), V::kAccept) << i;
  }
  ConnectionSlot s;
  EXPECT_EQ(lim.admit(a, 1000, &s), V::kRate);
  EXPECT_EQ(lim.admit(ip("203.0.113.10"), 1000, &s), V::kAccept);
  s.release();
  // One token per 12 s comes back.
  EXPECT_EQ(lim.admit(a, 12999, &s), V::kRate);
  EXPECT_EQ(lim.admit(a, 13000, &s), V::kAccept);
  s.release();
  EXPECT_EQ(lim.admit(a, 13000, &s), V::kRate);
}

TEST(ConnectionLimiter, GlobalCapIncludesExemptAddresses) {
  ConnectionLimiter lim;
  ConnectionLimits l = limits(1, 3, 1000);
  l.trust_loopback = true;
  lim.configure(l, 0);
  ConnectionSlot s[5];
  EXPECT_EQ(lim.admit(ip("127.0.0.1"), 0, &s[0]), V::kAccept);
  EXPECT_EQ(lim.admit(ip("127.0.0.1"), 0, &s[1]), V::kAccept);  // exempt from max_per_ip
  EXPECT_EQ(lim.entries(), 0u);                                 // and not in the table
  EXPECT_EQ(lim.admit(ip("192.0.2.1"), 0, &s[2]), V::kAccept);
  EXPECT_EQ(lim.admit(ip("192.0.2.2"), 0, &s[3]), V::kGlobal);
  EXPECT_EQ(lim.admit(ip("::1"), 0, &s[3]), V::kGlobal);
  s[0].release();
  EXPECT_EQ(lim.admit(ip("192.0.2.2"), 0, &s[3]), V::kAccept);
}

TEST(ConnectionLimiter, TrustedNetworksAndLoopbackSwitch) {
  ConnectionLimiter lim;
  ConnectionLimits l = limits(1, 100, 1);
  l.trusted.push_back(cidr("10.0.0.0/8"));
  l.trusted.push_back(cidr("2001:db8::/32"));
  lim.configure(l, 0);
  EXPECT_TRUE(lim.exempt(ip("10.9.8.7")));
  EXPECT_TRUE(lim.exempt(ip("::ffff:10.9.8.7")));
  EXPECT_TRUE(lim.exempt(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(lim.exempt(ip("11.0.0.1")));
  EXPECT_FALSE(lim.exempt(ip("127.0.0.1")));  // trust_loopback = false
  ConnectionSlot s[6];
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(lim.admit(ip("10.0.0.1"), 0, &s[i]), V::kAccept);
  EXPECT_EQ(lim.admit(ip("127.0.0.1"), 0, &s[5]), V::kAccept);
  s[5].release();
  EXPECT_EQ(lim.admit(ip("127.0.0.1"), 0, &s[5]), V::kRate);  // connect_rate 1
  l.trust_loopback = true;
  lim.configure(l, 0);
  EXPECT_EQ(lim.admit(ip("127.0.0.1"), 0, &s[5]), V::kAccept);
}

TEST(ConnectionLimiter, IdleEntriesExpire) {
  ConnectionLimiter lim;
  lim.configure(limits(10, 100, 6), 0);  // one token per 10 s
  IpAddress a = ip("192.0.2.1"), b = ip("192.0.2.2");
  ConnectionSlot sa, sb;
  EXPECT_EQ(lim.admit(a, 0, &sa), V::kAccept);
  EXPECT_EQ(lim.admit(b, 0, &sb), V::kAccept);
  EXPECT_EQ(lim.entries(), 2u);
  sb.release();
  lim.expire(5000);  // b's bucket is still missing a token
  EXPECT_EQ(lim.entries(), 2u);
  lim.expire(10000);  // b is full and has nothing open: gone; a stays (open)
  EXPECT_EQ(lim.entries(), 1u);
  EXPECT_EQ(lim.open_from(a), 1u);
  EXPECT_EQ(lim.open_from(b), 0u);
  sa.release();
  lim.expire(1000000);
  EXPECT_EQ(lim.entries(), 0u);
}

TEST(ConnectionLimiter, AdmitSweepsOnItsOwn) {
  ConnectionLimiter lim;
  lim.configure(limits(10, 100, 60), 0);
  for (int i = 0; i < 50; ++i) {
    ConnectionSlot s;
    std::string a = "192.0.2." + std::to_string(i + 1);
    EXPECT_EQ(lim.admit(ip(a.c_str()), 0, &s), V::kAccept);
  }
  EXPECT_EQ(lim.entries(), 50u);
  ConnectionSlot s;
  EXPECT_EQ(lim.admit(ip("198.51.100.1"), 20000, &s), V::kAccept);
  EXPECT_EQ(lim.entries(), 1u);  // the 50 refilled and were swept
}

TEST(ConnectionLimiter, TableIsBounded) {
  ConnectionLimiter lim;
  lim.configure(limits(10, 10, 1), 0);  // room for 10 + kSpare entries
  size_t room = 10 + ConnectionLimiter::kSpare;
  for (size_t i = 0; i < room; ++i) {
    IpAddress a;
    a.v6 = true;
    a.bytes[0] = 0x20;
    a.bytes[6] = static_cast<uint8_t>(i >> 8);
    a.bytes[7] = static_cast<uint8_t>(i);
    ConnectionSlot s;
    ASSERT_EQ(lim.admit(a, 0, &s), V::kAccept) << i;  // used its one token
  }
  EXPECT_EQ(lim.entries(), room);
  IpAddress fresh = ip("2001:db8:ffff:ffff::1");
  ConnectionSlot s;
  EXPECT_EQ(lim.admit(fresh, 1, &s), V::kTable);
  EXPECT_EQ(lim.entries(), room);
  // A minute later every entry is full again and may go.
  EXPECT_EQ(lim.admit(fresh, 60001, &s), V::kAccept);
  EXPECT_EQ(lim.entries(), 1u);
}

TEST(ConnectionLimiter, AuditOncePerIpPerMinute) {
  ConnectionLimiter lim;
  lim.configure(limits(1, 100, 100), 0);
  IpAddress a = ip("192.0.2.1"), b = ip("192.0.2.2");
  uint64_t suppressed = 99;
  EXPECT_TRUE(lim.audit_refusal(a, 1000, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 7; ++i)
    EXPECT_FALSE(lim.audit_refusal(a, 2000 + i, &suppressed));
  EXPECT_TRUE(lim.audit_refusal(b, 2000, &suppressed));  // per IP
  EXPECT_FALSE(lim.audit_refusal(a, 60999, &suppressed));
  EXPECT_TRUE(lim.audit_refusal(a, 61000, &suppressed));
  EXPECT_EQ(suppressed, 8u);
  // The entry lives while its audit window is open, then goes.
  lim.expire(61999);
  EXPECT_EQ(lim.entries(), 2u);
  lim.expire(62000);
  EXPECT_EQ(lim.entries(), 1u);  // b's window closed; a's is still open
  EXPECT_FALSE(lim.audit_refusal(a, 62000, &suppressed));
  lim.expire(121000);
  EXPECT_EQ(lim.entries(), 0u);
}

TEST(ConnectionLimiter, ReconfigureAppliesToExistingEntries) {
  ConnectionLimiter lim;
  lim.configure(limits(1, 100, 100), 0);
  IpAddress a = ip("192.0.2.1");
  ConnectionSlot s1, s2;
  EXPECT_EQ(lim.admit(a, 0, &s1), V::kAccept);
  EXPECT_EQ(lim.admit(a, 0, &s2), V::kPerIp);
  lim.configure(limits(2, 100, 100), 0);
  EXPECT_EQ(lim.admit(a, 0, &s2), V::kAccept);
  s1.release();
  s2.release();
  lim.configure(limits(5, 100, 2), 0);  // 98 tokens left, capped at 2
  EXPECT_EQ(lim.admit(a, 0, &s1), V::kAccept);
  EXPECT_EQ(lim.admit(a, 0, &s2), V::kAccept);
  s1.release();
  EXPECT_EQ(lim.admit(a, 0, &s1), V::kRate);
}

// ---- the input limit of a Connection ----

struct Collector : ConnectionHandler {
  std::string got;
  uint64_t last_ms = 0;
  bool closed = false;
  void on_data(std::string_view data) override {
    got.append(data);
    last_ms = core::Loop::now_ms();
  }
  void on_tls_ready() override {}
  void on_closed(std::string_view) override { closed = true; }
};

TEST(ConnectionInputLimit, ReadsAtTheRateAndDropsNothing) {
  auto loop = core::Loop::create();
  ASSERT_TRUE(loop.ok());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  Connection conn(loop.value().get(), sv[0], "pair", nullptr, false);
  conn.set_input_limit({20000, 5000});  // 20 kB/s, 5 kB burst
  Collector h;
  ASSERT_TRUE(conn.start(&h).ok());
  std::string data;
  for (int i = 0; data.size() < 25000; ++i)
    data += std::to_string(i) + ",";
  ASSERT_EQ(write(sv[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  uint64_t start = core::Loop::now_ms();
  bool saw_pause = false;
  size_t max_ahead = 0;  // bytes read beyond what the rate allows
  std::function<void()> watch = [&] {
    if (conn.input_paused()) saw_pause = true;
    uint64_t elapsed = core::Loop::now_ms() - start;
    size_t allowed = 5000 + static_cast<size_t>(elapsed * 20);
    if (h.got.size() > allowed) max_ahead = std::max(max_ahead, h.got.size() - allowed);
    if (h.got.size() >= data.size() || elapsed > 5000) {
      loop.value()->stop();
      return;
    }
    loop.value()->add_timer(5, watch);
  };
  loop.value()->add_timer(5, watch);
  loop.value()->run();
  EXPECT_EQ(h.got, data);  // every byte, in order
  EXPECT_TRUE(saw_pause);
  EXPECT_EQ(max_ahead, 0u);
  uint64_t took = h.last_ms - start;
  // (data - burst) / rate = about 1 s.
  double expected = (static_cast<double>(data.size()) - 5000) / 20.0;
  EXPECT_GE(took, expected * 0.9);
  EXPECT_LE(took, expected * 1.5 + 100);
  EXPECT_FALSE(h.closed);
  close(sv[1]);
}

TEST(ConnectionInputLimit, NoLimitReadsAtOnce) {
  auto loop = core::Loop::create();
  ASSERT_TRUE(loop.ok());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  Connection conn(loop.value().get(), sv[0], "pair", nullptr, false);
  Collector h;
  ASSERT_TRUE(conn.start(&h).ok());
  std::string data(60000, 'y');
  ASSERT_EQ(write(sv[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  uint64_t start = core::Loop::now_ms();
  std::function<void()> watch = [&] {
    if (h.got.size() >= data.size() || core::Loop::now_ms() - start > 2000) {
      loop.value()->stop();
      return;
    }
    loop.value()->add_timer(1, watch);
  };
  loop.value()->add_timer(1, watch);
  loop.value()->run();
  EXPECT_EQ(h.got.size(), data.size());
  EXPECT_FALSE(conn.input_paused());
  EXPECT_LT(h.last_ms - start, 500u);
  close(sv[1]);
}

}  // namespace
}  // namespace hearth::net
