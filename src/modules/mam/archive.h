// Message Archive Management (XEP-0313 urn:xmpp:mam:2 and #extended): the
// per-user archive in LMDB, its ids, the archiving rules and the queries.
// The module glue (hooks, IQs, the retention timer) is in mam.cc.
//
// Table "archive" (every key under user_key(localpart)):
//   user \0 'm' pos                    -> Row: u8 version, u8 direction, u32 tag,
//                                         bytes with (full JID), bytes xml
//   user \0 'w' with-bare \0 pos       -> "" (index: the rows with one contact)
// where pos = u64 BE microseconds since the epoch, u32 BE sequence: byte
// order is arrival order on every target, so a time range or a page after
// or before an id is one cursor seek. A JID never contains \0, so the
// index prefix of one contact never extends another's.
// The index costs one more key per message (its size is about the key:
// user + contact + 14 bytes, plus LMDB's 8-byte node header); with it a
// query 'with' a rare contact reads only that contact's rows.
//
// Table "archive_prefs": user \0 -> Prefs (u8 version, u8 default mode,
// u32 count + bytes per JID of 'always', then of 'never').
//
// The public id of a row is 32 lowercase hex digits: the 12 bytes of pos
// and a 4-byte random tag stored in the row (XEP-0313 §3: ids must be
// unpredictable). An id that does not decode, or whose tag does not match
// the row, is item-not-found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "storage/env.h"
#include "xml/element.h"

namespace hearth::modules::mam {

inline constexpr std::string_view kTable = "archive";
inline constexpr std::string_view kPrefsTable = "archive_prefs";
inline constexpr std::string_view kNsMam = "urn:xmpp:mam:2";
inline constexpr std::string_view kNsMamExtended = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view kNsSid = "urn:xmpp:sid:0";
inline constexpr std::string_view kNsRsm = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view kNsForward = "urn:xmpp:forward:0";
inline constexpr std::string_view kNsDelay = "urn:xmpp:delay";
inline constexpr std::string_view kNsHints = "urn:xmpp:hints";
inline constexpr std::string_view kNsData = "jabber:x:data";

// XEP-0059 page size when the client gives no <max/>, and the cap.
inline constexpr uint32_t kDefaultPage = 50;
inline constexpr uint32_t kMaxPage = 250;
// JIDs in each of the 'always' and 'never' preference lists.
inline constexpr size_t kMaxPrefJids = 1000;
inline constexpr uint8_t kRowVersion = 1;
inline constexpr uint8_t kPrefsVersion = 1;

// ---- positions, keys, ids ----
struct Position {
  uint64_t micros = 0;  // when it was archived, microseconds since the epoch
  uint32_t seq = 0;     // tie-breaker within one microsecond
  auto operator<=>(const Position&) const = default;
};
inline constexpr size_t kPositionSize = 12;
std::string encode_position(Position pos);
std::optional<Position> decode_position(std::string_view bytes);  // exactly 12 bytes
// The position after `last` for a clock reading of `now_micros`: never
// before `last`, so archive order is arrival order even if the clock steps
// back.
Position next_position(Position last, uint64_t now_micros);

std::string message_prefix(std::string_view user);
std::string message_key(std::string_view user, Position pos);
std::string with_prefix(std::string_view user, std::string_view with_bare);
std::string with_key(std::string_view user, std::string_view with_bare, Position pos);

struct ArchiveId {
  Position pos;
  uint32_t tag = 0;
  bool operator==(const ArchiveId&) const = default;
};
std::string format_id(const ArchiveId& id);
std::optional<ArchiveId> parse_id(std::string_view text);

// ---- rows ----
enum class Direction : uint8_t { kIncoming = 0, kOutgoing = 1 };
struct Row {
  Direction direction = Direction::kIncoming;
  uint32_t tag = 0;
  std::string_view with;  // the other party's JID as in the stanza (full or bare)
  std::string_view xml;   // the stanza as archived
};
std::string encode_row(const Row& row);
Result<Row> decode_row(std::string_view value);

// ---- time (XEP-0082) ----
// 2024-05-01T10:20:30.123456Z
std::string format_time(uint64_t micros);
// A XEP-0082 DateTime (fraction and offset optional, Z or +hh:mm/-hh:mm) as
// microseconds since the epoch; nullopt when malformed or before 1970.
std::optional<uint64_t> parse_time(std::string_view text);

// ---- what is archived (XEP-0313 §5.1.1, XEP-0334, XEP-0085) ----
// chat, normal or no type, with a <body/> (or an OMEMO payload) or a
// <store/> hint; never with <no-store/> or <no-permanent-store/>; never
// error, groupchat or headline; never chat states alone.
bool eligible(const xml::Element& message);

enum class Mode : uint8_t { kAlways = 0, kNever = 1, kRoster = 2 };
std::optional<Mode> parse_mode(std::string_view text);
std::string_view mode_name(Mode mode);

struct Prefs {
  Mode default_mode = Mode::kAlways;
  std::vector<std::string> always;  // bare JIDs, normalised
  std::vector<std::string> never;
  bool operator==(const Prefs&) const = default;
};
std::string encode_prefs(const Prefs& prefs);
Result<Prefs> decode_prefs(std::string_view value);
// XEP-0441 (the preferences of urn:xmpp:mam:2) leaves a JID in both lists
// open; here 'never' wins (the private choice),
// then the lists, then the default;
// `in_roster` only matters for kRoster.
bool should_archive(const Prefs& prefs, std::string_view with_bare, bool in_roster);
// Whether `with_bare` is in either list (so the roster need not be asked).
bool listed(const Prefs& prefs, std::string_view with_bare);

// ---- storage ----
struct Stored {
  ArchiveId id;
};
// Appends one row for `user` at the first free position from
// next_position(*last, now) and records the index key; updates *last.
Result<Stored> append(storage::Env& env, storage::Dbi dbi, std::string_view user,
                      std::string_view with_bare, const Row& row, uint64_t now_micros,
                      Position* last);

// The first free position at or after `start` in `user`'s archive (a
// clock that stepped back across a restart must not overwrite rows).
Result<Position> free_position(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                               Position start);
// Writes a row (encode_row()) and its index key at `pos` (from free_position()).
void put_row(storage::WriteTxn& txn, storage::Dbi dbi, std::string_view user,
             std::string_view with_bare, std::string_view encoded_row, Position pos);

struct Query {
  std::string user;
  std::string with_bare;  // empty: every contact
  std::string with_full;  // non-empty: only rows whose 'with' is exactly this
  // Positions: lower inclusive, upper exclusive (nullopt: unbounded).
  Position lower{};
  bool has_lower = false;
  bool lower_exclusive = false;  // lower itself is excluded (after-id)
  Position upper{};
  bool has_upper = false;
  bool backward = false;  // the last page of the range (RSM <before/>)
  uint32_t max = kDefaultPage;
};
struct Item {
  ArchiveId id;
  Direction direction = Direction::kIncoming;
  std::string with;
  std::string xml;
};
struct Page {
  std::vector<Item> items;  // chronological order
  bool complete = false;    // nothing further in the direction of paging
};
Result<Page> query(storage::Txn& txn, storage::Dbi dbi, const Query& q);
// The rows with these ids (those that exist, with a matching tag), in
// chronological order; `missing` is set if any does not.
Result<Page> fetch_ids(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                       const std::vector<ArchiveId>& ids, bool* missing);
// Does the row exist with this tag?
Result<bool> exists(storage::Txn& txn, storage::Dbi dbi, std::string_view user,
                    const ArchiveId& id);
// Number of rows in the query's range (RSM <max>0</max>).
Result<uint64_t> count(storage::Txn& txn, storage::Dbi dbi, const Query& q);
// First and last row of the archive (XEP-0313 metadata); nullopt if empty.
struct Bounds {
  ArchiveId first, last;
};
Result<std::optional<Bounds>> bounds(storage::Txn& txn, storage::Dbi dbi, std::string_view user);

// Retention: deletes rows (and their index keys) older than
// `cutoff_micros`, user by user with one seek each (the users' prefixes are
// found by seeking past each user's keys, the expired rows are a prefix of
// each user's rows), at most `budget` rows per call. `resume` is the
// localpart to continue with ("" = from the first user); it is set to where
// the next call should continue, or cleared when the sweep is complete.
struct SweepOutcome {
  uint64_t deleted = 0;
  bool more = false;  // budget reached: call again with `resume`
};
Result<SweepOutcome> sweep(storage::Env& env, storage::Dbi dbi, uint64_t cutoff_micros,
                           size_t budget, std::string* resume);

Result<std::optional<Prefs>> load_prefs(storage::Txn& txn, storage::Dbi dbi, std::string_view user);
Status store_prefs(storage::Env& env, storage::Dbi dbi, std::string_view user, const Prefs& prefs);

}  // namespace hearth::modules::mam
