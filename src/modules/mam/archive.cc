#include "modules/mam/archive.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "core/log.h"
#include "modules/module.h"
#include "storage/codec.h"

namespace hearth::modules::mam {
namespace {

constexpr char kMessageTag = 'm';
constexpr char kWithTag = 'w';
constexpr std::string_view kNsOmemoLegacy = "eu.siacs.conversations.axolotl";
constexpr std::string_view kNsOmemo2 = "urn:xmpp:omemo:2";
constexpr uint64_t kMicrosPerSecond = 1000000;
constexpr int64_t kSecondsPerDay = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// algorithm), and back: no time_t, so 32-bit targets are not limited to 2038.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool digits(std::string_view s, size_t pos, size_t n, unsigned* out) {
  if (pos + n > s.size()) return false;
  unsigned v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
  }
  *out = v;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string_view bare_of(std::string_view jid) {
  return jid.substr(0, jid.find('/'));
}

bool contains(const std::vector<std::string>& list, std::string_view jid) {
  return std::find(list.begin(), list.end(), jid) != list.end();
}

std::string prefs_key(std::string_view user) {
  return user_key(user);
}

// The key prefix and bounds of a query's walk.
struct Walk {
  std::string prefix, lower, upper;
  bool indexed = false;
};

Walk walk_of(const Query& q) {
  Walk w;
  w.indexed = !q.with_bare.empty();
  w.prefix = w.indexed ? with_prefix(q.user, q.with_bare) : message_prefix(q.user);
  w.lower = w.prefix;
  if (q.has_lower) {
    w.lower += encode_position(q.lower);
    // The smallest key after lower's own (all positions are 12 bytes).
    if (q.lower_exclusive) w.lower.push_back('\0');
  }
  w.upper = q.has_upper ? w.prefix + encode_position(q.upper) : storage::prefix_end(w.prefix);
  return w;
}

}  // namespace

// ---- positions, keys, ids ----

std::string encode_position(Position pos) {
  std::string out;
  out.reserve(kPositionSize);
  storage::append_u64(out, pos.micros);
  storage::append_u32(out, pos.seq);
  return out;
}

std::optional<Position> decode_position(std::string_view bytes) {
  if (bytes.size() != kPositionSize) return std::nullopt;
  storage::Reader r(bytes);
  Position pos;
  r.u64(&pos.micros);
  r.u32(&pos.seq);
  if (!r.finish()) return std::nullopt;
  return pos;
}

Position next_position(Position last, uint64_t now_micros) {
  if (now_micros > last.micros) return Position{now_micros, 0};
  if (last.seq == UINT32_MAX) return Position{last.micros + 1, 0};
  return Position{last.micros, last.seq + 1};
}

std::string message_prefix(std::string_view user) {
  return user_key(user, std::string_view(&kMessageTag, 1));
}

std::string message_key(std::string_view user, Position pos) {
  return message_prefix(user) + encode_position(pos);
}

std::string with_prefix(std::string_view user, std::string_view with_bare) {
  std::string key = user_key(user, std::string_view(&kWithTag, 1));
  key.append(with_bare);
  key.push_back('\0');
  return key;
}

std::string with_key(std::string_view user, std::string_view with_bare, Position pos) {
  return with_prefix(user, with_bare) + encode_position(pos);
}

std::string format_id(const ArchiveId& id) {
  std::string bytes = encode_position(id.pos);
  storage::append_u32(bytes, id.tag);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::optional<ArchiveId> parse_id(std::string_view text) {
  if (text.size() != 2 * (kPositionSize + 4)) return std::nullopt;
  std::string bytes;
  bytes.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(hi << 4 | lo));
  }
  storage::Reader r(bytes);
  ArchiveId id;
  r.u64(&id.pos.micros);
  r.u32(&id.pos.seq);
  r.u32(&id.tag);
  if (!r.finish()) return std::nullopt;
  return id;
}

// ---- rows ----

std::string encode_row(const Row& row) {
  return storage::Writer()
      .u8(kRowVersion)
      .u8(static_cast<uint8_t>(row.direction))
      .u32(row.tag)
      .bytes(row.with)
      .bytes(row.xml)
      .take();
}

Result<Row> decode_row(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0, direction = 0;
  Row row;
  r.u8(&version);
  r.u8(&direction);
  r.u32(&row.tag);
  r.bytes(&row.with);
  r.bytes(&row.xml);
  if (Status s = r.finish(); !s) return s.error();
  if (version != kRowVersion) return make_error("unknown archive row version");
  if (direction > 1) return make_error("bad archive row direction");
  row.direction = static_cast<Direction>(direction);
  return row;
}

// ---- time ----

std::string format_time(uint64_t micros) {
  const uint64_t secs = micros / kMicrosPerSecond;
  const int64_t days = static_cast<int64_t>(secs / kSecondsPerDay);
  const unsigned rem = static_cast<unsigned>(secs % kSecondsPerDay);
  int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, &y, &m, &d);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", static_cast<long long>(y),
                m, d, rem / 3600, rem / 60 % 60, rem % 60,
                static_cast<unsigned>(micros % kMicrosPerSecond));
  return buf;
}

std::optional<uint64_t> parse_time(std::string_view s) {
  // CCYY-MM-DDThh:mm:ss[.sss]TZD (XEP-0082 §3.2).
  unsigned year, mon, day, hh, mm, ss;
  if (!digits(s, 0, 4, &year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, &mon) ||
      s[7] != '-' || !digits(s, 8, 2, &day) || s[10] != 'T' || !digits(s, 11, 2, &hh) ||
      s[13] != ':' || !digits(s, 14, 2, &mm) || s[16] != ':' || !digits(s, 17, 2, &ss))
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[mon - 1] || (mon == 2 && day == 29 && !leap)) return std::nullopt;
  if (ss == 60) ss = 59;  // a leap second: as the second before it
  size_t pos = 19;
  uint64_t frac = 0;
  if (s[pos] == '.') {
    ++pos;
    size_t start = pos;
    uint64_t scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac += static_cast<uint64_t>(s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset = 0;  // seconds east of UTC
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    unsigned oh, om;
    if (!digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, &om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = static_cast<int64_t>(oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t secs = days_from_civil(year, mon, day) * kSecondsPerDay + hh * 3600 + mm * 60 +
                       static_cast<int64_t>(ss) - offset;
  if (secs < 0) return std::nullopt;
  return static_cast<uint64_t>(secs) * kMicrosPerSecond + frac;
}

// ---- policy ----

bool eligible(const xml::Element& message) {
  std::string_view type = message.attr("type");
  // XEP-0313 §5.1.1 (user archives hold one-to-one messages); headline,
  // groupchat (a MUC archives its own) and error are not.
  if (!(type.empty() || type == "normal" || type == "chat")) return false;
  bool content = false, store = false;
  for (const xml::Node& n : message.children) {
    if (n.element == nullptr) continue;
    const xml::Element& c = *n.element;
    if (c.ns == kNsHints) {
      // XEP-0334 §4: no-store and no-permanent-store forbid archiving.
      if (c.name == "no-store" || c.name == "no-permanent-store") return false;
      if (c.name == "store") store = true;
    } else if (c.name == "body" && c.ns == xml::kNsClient) {
      content = true;
    } else if (c.name == "encrypted" && (c.ns == kNsOmemoLegacy || c.ns == kNsOmemo2) &&
               c.child("payload") != nullptr) {
      // An OMEMO message (XEP-0384) whose body is encrypted; key transport
      // elements without a payload are not conversation.
      content = true;
    }
  }
  // Chat states (XEP-0085), receipts, markers alone: no content.
  return content || store;
}

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "always") return Mode::kAlways;
  if (text == "never") return Mode::kNever;
  if (text == "roster") return Mode::kRoster;
  return std::nullopt;
}

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::kAlways:
      return "always";
    case Mode::kNever:
      return "never";
    case Mode::kRoster:
      return "roster";
  }
  return "always";
}

std::string encode_prefs(const Prefs& prefs) {
  storage::Writer w;
  w.u8(kPrefsVersion).u8(static_cast<uint8_t>(prefs.default_mode));
  w.u32(static_cast<uint32_t>(prefs.always.size()));
  for (const std::string& j : prefs.always)
    w.bytes(j);
  w.u32(static_cast<uint32_t>(prefs.never.size()));
  for (const std::string& j : prefs.never)
    w.bytes(j);
  return w.take();
}

Result<Prefs> decode_prefs(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0, mode = 0;
  Prefs prefs;
  r.u8(&version);
  r.u8(&mode);
  for (std::vector<std::string>* list : {&prefs.always, &prefs.never}) {
    uint32_t n = 0;
    if (!r.u32(&n)) break;
    // Each entry takes at least its 4-byte length: a count beyond what is
    // left is corrupt (and must not make us reserve gigabytes).
    if (n > r.remaining() / 4) return make_error("archive prefs: bad list length");
    for (uint32_t i = 0; i < n; ++i) {
      std::string_view j;
      if (!r.bytes(&j)) break;
      list->emplace_back(j);
    }
  }
  if (Status s = r.finish(); !s) return s.error();
  if (version != kPrefsVersion) return make_error("unknown archive prefs version");
  if (mode > 2) return make_error("bad archive prefs mode");
  prefs.default_mode = static_cast<Mode>(mode);
  return prefs;
}

bool listed(const Prefs& prefs, std::string_view with_bare) {
  return contains(prefs.never, with_bare) || contains(prefs.always, with_bare);
}

bool should_archive(const Prefs& prefs, std::string_view with_bare, bool in_roster) {
  if (contains(prefs.never, with_bare)) return false;
  if (contains(prefs.always, with_bare)) return true;
  switch (prefs.default_mode) {
    case Mode::kAlways:
      return true;
    case Mode::kNever:
      return false;
    case Mode::kRoster:
      return in_roster;
  }
  return false;
}

// ---- storage ----

Result<Stored> append(storage::Env& env, storage::Dbi dbi, std::string_view user,
                      std::string_view with_bare, const Row& row, uint64_t now_micros,
                      Position* last) {
  const Position start = next_position(*last, now_micros);
  Stored stored;
  Status s = env.write([&](storage::WriteTxn& t) -> Status {
    Position pos = start;
    // Positions are unique per archive even across restarts with a clock
    // that stepped back: take the next free one.
    for (;;) {
      auto v = t.get(dbi, message_key(user, pos));
      if (!v) return v.error();
      if (!v->has_value()) break;
      pos = next_position(pos, 0);
    }
    t.put(dbi, message_key(user, pos), encode_row(row));
    t.put(dbi, with_key(user, with_bare, pos), {});
    stored.id = ArchiveId{pos, row.tag};
    return {};
  });
  if (!s) return s.error();
  *last = stored.id.pos;
  return stored;
}

Result<Position> free_position(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                               Position start) {
  Position pos = start;
  for (;;) {
    auto v = txn.get(dbi, message_key(user, pos));
    if (!v) return v.error();
    if (!v->has_value()) return pos;
    pos = next_position(pos, 0);
  }
}

void put_row(storage::WriteTxn& txn, storage::Dbi dbi, std::string_view user,
             std::string_view with_bare, std::string_view encoded_row, Position pos) {
  txn.put(dbi, message_key(user, pos), encoded_row);
  txn.put(dbi, with_key(user, with_bare, pos), {});
}

Result<Page> query(storage::Txn& txn, storage::Dbi dbi, const Query& q) {
  const Walk w = walk_of(q);
  Page page;
  bool more = false;
  Status inner;
  Status s = txn.range(dbi, w.lower, w.upper, q.backward,
                       [&](std::string_view key, std::string_view value) {
                         std::optional<Position> pos = decode_position(key.substr(w.prefix.size()));
                         if (!pos) return true;  // not a row key of this walk
                         std::string_view row_value = value;
                         if (w.indexed) {
                           auto v = txn.get(dbi, message_key(q.user, *pos));
                           if (!v) {
                             inner = v.error();
                             return false;
                           }
                           if (!v->has_value()) return true;  // a stale index key
                           row_value = **v;
                         }
                         Result<Row> row = decode_row(row_value);
                         if (!row) {
                           HEARTH_WARN("mam", "skipping an unreadable archive row of %s: %s",
                                       q.user.c_str(), row.error().message.c_str());
                           return true;
                         }
                         if (!q.with_full.empty() && row->with != q.with_full) return true;
                         if (page.items.size() >= q.max) {
                           more = true;
                           return false;
                         }
                         page.items.push_back(Item{ArchiveId{*pos, row->tag}, row->direction,
                                                   std::string(row->with), std::string(row->xml)});
                         return true;
                       });
  if (!s) return s.error();
  if (!inner) return inner.error();
  if (q.backward) std::reverse(page.items.begin(), page.items.end());
  page.complete = !more;
  return page;
}

Result<Page> fetch_ids(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                       const std::vector<ArchiveId>& ids, bool* missing) {
  Page page;
  *missing = false;
  std::vector<ArchiveId> sorted = ids;
  std::sort(sorted.begin(), sorted.end(),
            [](const ArchiveId& a, const ArchiveId& b) { return a.pos < b.pos; });
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const ArchiveId& id : sorted) {
    auto v = txn.get(dbi, message_key(user, id.pos));
    if (!v) return v.error();
    Result<Row> row = v->has_value() ? decode_row(**v) : Result<Row>(make_error("absent"));
    if (!row || row->tag != id.tag) {
      *missing = true;
      continue;
    }
    page.items.push_back(Item{id, row->direction, std::string(row->with), std::string(row->xml)});
  }
  page.complete = true;
  return page;
}

Result<bool> exists(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                    const ArchiveId& id) {
  auto v = txn.get(dbi, message_key(user, id.pos));
  if (!v) return v.error();
  if (!v->has_value()) return false;
  Result<Row> row = decode_row(**v);
  return row && row->tag == id.tag;
}

Result<uint64_t> count(storage::Txn& txn, storage::Dbi dbi, const Query& q) {
  Query all = q;
  all.max = UINT32_MAX;
  if (q.with_full.empty()) {
    // Keys only: no row needs decoding.
    const Walk w = walk_of(q);
    uint64_t n = 0;
    Status s = txn.range(dbi, w.lower, w.upper, false, [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    if (!s) return s.error();
    return n;
  }
  Result<Page> page = query(txn, dbi, all);
  if (!page) return page.error();
  return static_cast<uint64_t>(page->items.size());
}

Result<std::optional<Bounds>> bounds(storage::Txn& txn, storage::Dbi dbi, std::string_view user) {
  const std::string prefix = message_prefix(user);
  const std::string end = storage::prefix_end(prefix);
  std::optional<ArchiveId> ends[2];
  for (int i = 0; i < 2; ++i) {
    Status s = txn.range(dbi, prefix, end, i == 1, [&](std::string_view key, std::string_view v) {
      std::optional<Position> pos = decode_position(key.substr(prefix.size()));
      Result<Row> row = decode_row(v);
      if (!pos || !row) return true;
      ends[i] = ArchiveId{*pos, row->tag};
      return false;
    });
    if (!s) return s.error();
  }
  if (!ends[0] || !ends[1]) return std::optional<Bounds>();
  return std::optional<Bounds>(Bounds{*ends[0], *ends[1]});
}

Result<SweepOutcome> sweep(storage::Env& env, storage::Dbi dbi, uint64_t cutoff_micros,
                           size_t budget, std::string* resume) {
  SweepOutcome out;
  std::string next;
  std::string cutoff;
  storage::append_u64(cutoff, cutoff_micros);
  Status s = env.write([&](storage::WriteTxn& t) -> Status {
    out = {};  // `fn` may run twice (map growth)
    next.clear();
    std::string start = resume->empty() ? std::string() : user_key(*resume);
    for (;;) {
      // The next user: the first key at or after `start`.
      std::string user;
      bool found = false;
      Status w = t.range(dbi, start, {}, false, [&](std::string_view key, std::string_view) {
        user.assign(key.substr(0, key.find('\0')));
        found = true;
        return false;
      });
      if (!w) return w;
      if (!found) break;
      // Its expired rows: a prefix of its rows, since positions start with
      // the time.
      const std::string prefix = message_prefix(user);
      struct Expired {
        std::string key, with_bare;
      };
      std::vector<Expired> expired;
      bool hit_budget = false;
      w = t.range(dbi, prefix, prefix + cutoff, false,
                  [&](std::string_view key, std::string_view value) {
                    if (out.deleted + expired.size() >= budget) {
                      hit_budget = true;
                      return false;
                    }
                    Result<Row> row = decode_row(value);
                    expired.push_back(
                        Expired{std::string(key), row ? std::string(bare_of(row->with)) : ""});
                    return true;
                  });
      if (!w) return w;
      for (const Expired& e : expired) {
        t.del(dbi, e.key);
        std::optional<Position> pos =
            decode_position(std::string_view(e.key).substr(prefix.size()));
        if (pos && !e.with_bare.empty()) t.del(dbi, with_key(user, e.with_bare, *pos));
      }
      out.deleted += expired.size();
      if (hit_budget) {
        out.more = true;
        next = user;
        break;
      }
      // Past every key of this user: "user\x01" sorts after "user\0...".
      start = user;
      start.push_back('\x01');
    }
    return t.status();
  });
  if (!s) return s.error();
  *resume = out.more ? next : std::string();
  return out;
}

Result<std::optional<Prefs>> load_prefs(storage::Txn& txn, storage::Dbi dbi,
                                        std::string_view user) {
  auto v = txn.get(dbi, prefs_key(user));
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<Prefs>();
  Result<Prefs> prefs = decode_prefs(**v);
  if (!prefs) {
    HEARTH_WARN("mam", "unreadable archive prefs of %.*s (%s): using the default",
                static_cast<int>(user.size()), user.data(), prefs.error().message.c_str());
    return std::optional<Prefs>();
  }
  return std::optional<Prefs>(std::move(*prefs));
}

Status store_prefs(storage::Env& env, storage::Dbi dbi, std::string_view user, const Prefs& prefs) {
  return env.write([&](storage::WriteTxn& t) -> Status {
    t.put(dbi, prefs_key(user), encode_prefs(prefs));
    return {};
  });
}

}  // namespace hearth::modules::mam
