#include "net/limits.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

#include <algorithm>

namespace hearth::net {

// ---- TokenBucket ----

TokenBucket::TokenBucket(uint64_t amount, uint64_t period_ms, uint64_t burst, uint64_t now_ms) {
  amount_ = amount;
  period_ms_ = std::max<uint64_t>(period_ms, 1);
  burst_ = burst;
  scaled_ = burst_ * period_ms_;
  last_ms_ = now_ms;
}

void TokenBucket::reconfigure(uint64_t amount, uint64_t period_ms, uint64_t burst,
                              uint64_t now_ms) {
  uint64_t tokens = available(now_ms);
  amount_ = amount;
  period_ms_ = std::max<uint64_t>(period_ms, 1);
  burst_ = burst;
  scaled_ = std::min(tokens, burst_) * period_ms_;
  last_ms_ = now_ms;
}

void TokenBucket::refill(uint64_t now_ms) {
  if (now_ms <= last_ms_) {
    // Backwards (or no) time: nothing to add. Remember the earlier time,
    // so that the refill resumes from there instead of waiting for the
    // clock to catch up with a future it has left.
    last_ms_ = now_ms;
    return;
  }
  uint64_t elapsed = now_ms - last_ms_;
  last_ms_ = now_ms;
  uint64_t cap = burst_ * period_ms_;
  if (scaled_ >= cap || amount_ == 0) return;
  uint64_t missing = cap - scaled_;
  // elapsed * amount_ could overflow after a long idle time: compare first.
  if (elapsed >= missing / amount_ + 1) {
    scaled_ = cap;
  } else {
    scaled_ += elapsed * amount_;
    if (scaled_ > cap) scaled_ = cap;
  }
}

uint64_t TokenBucket::available(uint64_t now_ms) {
  refill(now_ms);
  return scaled_ / period_ms_;
}

bool TokenBucket::try_take(uint64_t n, uint64_t now_ms) {
  if (available(now_ms) < n) return false;
  scaled_ -= n * period_ms_;
  return true;
}

uint64_t TokenBucket::take_up_to(uint64_t n, uint64_t now_ms) {
  uint64_t got = std::min(n, available(now_ms));
  scaled_ -= got * period_ms_;
  return got;
}

uint64_t TokenBucket::ms_until(uint64_t n, uint64_t now_ms) {
  n = std::min(n, burst_);
  refill(now_ms);
  uint64_t want = n * period_ms_;
  if (scaled_ >= want) return 0;
  if (amount_ == 0) return UINT64_MAX;
  return (want - scaled_ + amount_ - 1) / amount_;
}

bool TokenBucket::full(uint64_t now_ms) {
  refill(now_ms);
  return scaled_ >= burst_ * period_ms_;
}

// ---- IpAddress ----

namespace {
constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= 64) return std::nullopt;
  char buf[64];
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  unsigned char raw[16];
  if (inet_pton(AF_INET, buf, raw) == 1) {
    memcpy(ip.bytes.data(), raw, 4);
    return ip;
  }
  if (inet_pton(AF_INET6, buf, raw) == 1) {
    if (memcmp(raw, kMappedPrefix, 12) == 0) {
      memcpy(ip.bytes.data(), raw + 12, 4);
      return ip;
    }
    ip.v6 = true;
    memcpy(ip.bytes.data(), raw, 16);
    return ip;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_peer(std::string_view peer) {
  if (!peer.empty() && peer.front() == '[') {
    size_t close = peer.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return parse(peer.substr(1, close - 1));
  }
  size_t colon = peer.rfind(':');
  return parse(colon == std::string_view::npos ? peer : peer.substr(0, colon));
}

bool IpAddress::is_loopback() const {
  if (!v6) return bytes[0] == 127;
  static const std::array<uint8_t, 16> kLoop = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes == kLoop;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddress IpAddress::limit_key() const {
  IpAddress k = *this;
  if (v6) std::fill(k.bytes.begin() + 8, k.bytes.end(), 0);
  return k;
}

// ---- Cidr ----

namespace {
void clear_host_bits(IpAddress* ip, unsigned prefix) {
  size_t bits = ip->size() * 8;
  for (size_t i = prefix; i < bits; ++i)
    ip->bytes[i / 8] &= static_cast<uint8_t>(~(0x80u >> (i % 8)));
}
}  // namespace

Result<Cidr> Cidr::parse(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  // Parse the raw family first: "::ffff:10.0.0.0/104" counts bits of IPv6.
  bool written_v6 = addr.find(':') != std::string_view::npos;
  std::optional<IpAddress> ip = IpAddress::parse(addr);
  if (!ip) return make_error("'" + std::string(text) + "' is not an IP address or network");
  unsigned max = written_v6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view bits = text.substr(slash + 1);
    if (bits.empty() || bits.size() > 3)
      return make_error("bad prefix length in '" + std::string(text) + "'");
    prefix = 0;
    for (char c : bits) {
      if (c < '0' || c > '9') return make_error("bad prefix length in '" + std::string(text) + "'");
      prefix = prefix * 10 + static_cast<unsigned>(c - '0');
    }
    if (prefix > max)
      return make_error("prefix length over " + std::to_string(max) + " in '" + std::string(text) +
                        "'");
  }
  if (written_v6 && !ip->v6) {
    // An IPv4-mapped network: its IPv4 part, if the prefix reaches it.
    if (prefix < 96) {
      // ::ffff:0:0/95 and shorter also cover real IPv6 addresses; keep it
      // as the IPv6 network it says (mapped clients are IPv4 here).
      IpAddress six;
      six.v6 = true;
      memcpy(six.bytes.data(), kMappedPrefix, 12);
      memcpy(six.bytes.data() + 12, ip->bytes.data(), 4);
      ip = six;
    } else {
      prefix -= 96;
    }
  }
  Cidr c;
  c.net_ = *ip;
  c.prefix_ = prefix;
  clear_host_bits(&c.net_, prefix);
  return c;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.v6 != net_.v6) return false;
  unsigned whole = prefix_ / 8;
  if (memcmp(ip.bytes.data(), net_.bytes.data(), whole) != 0) return false;
  unsigned rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFFu << (8 - rest));
  return (ip.bytes[whole] & mask) == net_.bytes[whole];
}

// ---- ConnectionSlot ----

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = o.owner_;
    key_ = o.key_;
    per_ip_ = o.per_ip_;
    o.owner_ = nullptr;
  }
  return *this;
}

void ConnectionSlot::release() {
  if (owner_ == nullptr) return;
  ConnectionLimiter* owner = owner_;
  owner_ = nullptr;
  owner->release(key_, per_ip_);
}

// ---- ConnectionLimiter ----

size_t ConnectionLimiter::KeyHash::operator()(const IpAddress& ip) const {
  // Keyed (SipHash): addresses are chosen by whoever attacks the table.
  unsigned char in[17];
  in[0] = ip.v6 ? 6 : 4;
  memcpy(in + 1, ip.bytes.data(), 16);
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, in, sizeof in, key);
  size_t h = 0;
  for (size_t i = 0; i < sizeof h && i < sizeof out; ++i)
    h = (h << 8) | out[i];
  return h;
}

ConnectionLimiter::ConnectionLimiter() : table_(16, KeyHash{}) {
  KeyHash h;
  randombytes_buf(h.key, sizeof h.key);
  table_ = std::unordered_map<IpAddress, Entry, KeyHash>(16, h);
}

void ConnectionLimiter::configure(ConnectionLimits limits, uint64_t now_ms) {
  limits_ = std::move(limits);
  for (auto& [key, e] : table_)
    e.connects.reconfigure(limits_.connect_rate, 60000, limits_.connect_rate, now_ms);
}

bool ConnectionLimiter::exempt(const IpAddress& ip) const {
  if (limits_.trust_loopback && ip.is_loopback()) return true;
  for (const Cidr& c : limits_.trusted)
    if (c.contains(ip)) return true;
  return false;
}

ConnectionLimiter::Entry* ConnectionLimiter::find_or_add(const IpAddress& key, uint64_t now_ms) {
  auto it = table_.find(key);
  if (it != table_.end()) return &it->second;
  if (table_.size() >= max_entries()) {
    expire(now_ms);
    if (table_.size() >= max_entries()) return nullptr;
  }
  Entry e;
  e.connects = TokenBucket(limits_.connect_rate, 60000, limits_.connect_rate, now_ms);
  return &table_.emplace(key, std::move(e)).first->second;
}

ConnectionLimiter::Verdict ConnectionLimiter::admit(const IpAddress& ip, uint64_t now_ms,
                                                    ConnectionSlot* slot) {
  // Entries are swept at most every few seconds, on the accept path only:
  // no timer wakes an idle server.
  if (now_ms - last_expire_ms_ >= 10000 || now_ms < last_expire_ms_) expire(now_ms);
  bool per_ip = !exempt(ip);
  IpAddress key = ip.limit_key();
  Entry* e = nullptr;
  if (per_ip) {
    e = find_or_add(key, now_ms);
    if (e == nullptr) return Verdict::kTable;
  }
  if (open_ >= limits_.max_connections) return Verdict::kGlobal;
  if (e != nullptr) {
    if (e->open >= limits_.max_per_ip) return Verdict::kPerIp;
    // A refused connection takes no token: the cap, not the rate, refused it.
    if (!e->connects.try_take(1, now_ms)) return Verdict::kRate;
    ++e->open;
  }
  ++open_;
  slot->release();
  slot->owner_ = this;
  slot->key_ = key;
  slot->per_ip_ = per_ip;
  return Verdict::kAccept;
}

void ConnectionLimiter::release(const IpAddress& key, bool per_ip) {
  if (open_ > 0) --open_;
  if (!per_ip) return;
  auto it = table_.find(key);
  if (it != table_.end() && it->second.open > 0) --it->second.open;
}

bool ConnectionLimiter::audit_refusal(const IpAddress& ip, uint64_t now_ms, uint64_t* suppressed) {
  *suppressed = 0;
  IpAddress key = ip.limit_key();
  auto it = table_.find(key);
  if (it == table_.end()) {
    // Exempt addresses (refused by the global cap) have no entry; make
    // one if there is room, so that they are rate-limited too.
    if (table_.size() >= max_entries()) return false;
    Entry e;
    e.connects = TokenBucket(limits_.connect_rate, 60000, limits_.connect_rate, now_ms);
    it = table_.emplace(key, std::move(e)).first;
  }
  Entry& e = it->second;
  if (e.audit_window(now_ms)) {
    ++e.unlogged;
    return false;
  }
  *suppressed = e.unlogged;
  e.unlogged = 0;
  e.audited_ms = now_ms == 0 ? 1 : now_ms;
  return true;
}

void ConnectionLimiter::expire(uint64_t now_ms) {
  last_expire_ms_ = now_ms;
  for (auto it = table_.begin(); it != table_.end();) {
    Entry& e = it->second;
    if (e.open == 0 && !e.audit_window(now_ms) && e.connects.full(now_ms)) {
      it = table_.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t ConnectionLimiter::open_from(const IpAddress& ip) const {
  auto it = table_.find(ip.limit_key());
  return it == table_.end() ? 0 : it->second.open;
}

const char* ConnectionLimiter::reason(Verdict v) {
  switch (v) {
    case Verdict::kAccept:
      return "accepted";
    case Verdict::kPerIp:
      return "max_per_ip";
    case Verdict::kRate:
      return "connect_rate";
    case Verdict::kGlobal:
      return "max_connections";
    case Verdict::kTable:
      return "ip_table_full";
  }
  return "?";
}

}  // namespace hearth::net
