// Offline messages (XEP-0160): a chat/normal message for an account with no
// available resource of priority >= 0 is stored in the "offline" table with
// a XEP-0203 <delay/> and delivered, in order, to the first resource that
// sends initial presence with priority >= 0; then it is deleted.
//
// Keys (all under user_key(localpart), so account deletion removes them):
//   localpart \0 'c'                -> Meta: u8 version, u64 next_seq, u32 count,
//                                      u64 bytes
//   localpart \0 'm' u64 BE seq     -> Message: u8 version, u64 stamp, bytes xml
// The big-endian sequence keeps LMDB's byte order equal to arrival order.
//
// What is stored (XEP-0160 §3, XEP-0085 §5.5, XEP-0334 §4):
//   - type chat, normal or none: stored if it carries any content; a message
//     with nothing but chat states, <thread/> and hints is dropped silently
//     (a typing notification is worthless later, and an error for it is noise);
//     a <store/> hint stores it anyway; a <no-store/> hint passes it on, so the
//     core answers service-unavailable as for a server without offline storage.
//   - headline, groupchat, error: never stored (the core drops or bounces).
//   - [offline] max_messages = 0: nothing is stored (service-unavailable);
//     a full queue answers <resource-constraint/> of type 'wait'. The queue is
//     also full at kMaxStoredBytes: all of it is sent at once at login and must
//     fit well within a connection's output buffer (net::Connection::kMaxBuffered,
//     4 MiB, beyond which the stream is closed and the messages would be lost);
//     it also bounds what one sender can make a small board's disk hold.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "storage/env.h"
#include "xml/element.h"

namespace hearth::modules::offline {

inline constexpr std::string_view kTable = "offline";
inline constexpr std::string_view kNsDelay = "urn:xmpp:delay";
inline constexpr std::string_view kNsHints = "urn:xmpp:hints";
inline constexpr std::string_view kNsChatStates = "http://jabber.org/protocol/chatstates";
inline constexpr uint8_t kMetaVersion = 1;
inline constexpr uint8_t kMessageVersion = 1;
inline constexpr uint64_t kMaxStoredBytes = uint64_t{2} << 20;  // per account

// ---- keys and values ----
std::string meta_key(std::string_view user);
std::string message_prefix(std::string_view user);
std::string message_key(std::string_view user, uint64_t seq);

struct Meta {
  uint64_t next_seq = 0;  // sequence number of the next stored message
  uint32_t count = 0;     // messages stored now
  uint64_t bytes = 0;     // their serialised size
  bool operator==(const Meta&) const = default;
};
std::string encode_meta(const Meta& meta);
Result<Meta> decode_meta(std::string_view value);

struct StoredMessage {
  uint64_t stamp = 0;    // seconds since the epoch when it was stored
  std::string_view xml;  // the stanza with its <delay/>, as serialised
};
std::string encode_message(uint64_t stamp, std::string_view xml);
Result<StoredMessage> decode_message(std::string_view value);

// XEP-0082 DateTime in UTC with a 'Z': 2002-09-10T23:08:25Z.
std::string format_stamp(int64_t unix_seconds);

// ---- policy ----
enum class Verdict {
  kStore,  // store it
  kDrop,   // consume it without storing (nothing worth keeping)
  kPass,   // not ours: the core drops or bounces it (RFC 6121 §8.5.2.2)
};
Verdict classify(const xml::Element& message);

// The stanza serialised with <delay xmlns='urn:xmpp:delay' from=domain
// stamp=.../> appended; `message` is left as it was.
std::string serialize_with_delay(xml::Element& message, std::string_view domain,
                                 int64_t unix_seconds);

// ---- storage ----
enum class StoreOutcome { kStored, kFull };
// Appends one message for `user` unless `max_messages` are stored already
// or it would take the stored XML over `max_bytes`. Committed durably when it
// returns kStored.
Result<StoreOutcome> store(storage::Env& env, storage::Dbi dbi, std::string_view user,
                           std::string_view xml, uint64_t stamp, uint32_t max_messages,
                           uint64_t max_bytes = kMaxStoredBytes);
// Every stored message of `user` in arrival order (XML only), deleted in the
// same committed transaction. Undecodable records are deleted and skipped.
Result<std::vector<std::string>> take_all(storage::Env& env, storage::Dbi dbi,
                                          std::string_view user);
// How many are stored (from the meta record).
Result<uint32_t> count(storage::Env& env, storage::Dbi dbi, std::string_view user);

}  // namespace hearth::modules::offline
