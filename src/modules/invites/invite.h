// Invites (XEP-0401 Easy User Onboarding, XEP-0379 Pre-Authenticated Roster
// Subscription) and in-band registration (XEP-0077) before authentication.
//
// [registration] mode: closed (no registration from clients), invite (only
// with a valid invite token; the default) or open (anyone, at most
// max_per_ip_per_hour accounts per IP address, counted in memory: a restart
// forgets the counts).
//
// Tables (every key starts with a localpart and a zero byte, user_key()):
//   invites  "" \0 token       -> encoded Invite. An invite belongs to the
//                                 server, not to an account: its localpart is
//                                 empty, which no account has, so deleting an
//                                 account never touches it. Written by the
//                                 server and by `hearth invite` (a second
//                                 process on the same data.mdb).
//   roles    user \0 "admin"   -> "" : the account came from an admin invite
//            user \0 "inviter" -> inviter's localpart (who invited whom)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "storage/env.h"

namespace hearth::modules {

inline constexpr const char* kInvitesTable = "invites";
inline constexpr const char* kRolesTable = "roles";

inline constexpr std::string_view kNsPars = "urn:xmpp:pars:0";  // XEP-0379 / XEP-0401 <preauth/>
inline constexpr std::string_view kNsIqRegister = "jabber:iq:register";

// Random bytes in a token: 192 bits, 32 characters of base64url.
inline constexpr size_t kTokenBytes = 24;
inline constexpr size_t kTokenChars = 32;

struct Invite {
  std::string token;
  std::string inviter;   // localpart; empty: no roster subscription (XEP-0379)
  std::string username;  // reserved localpart for the new account; empty: any
  std::string creator;   // who made it ("cli" or an admin's bare JID), for the audit log
  uint32_t uses_left = 1;
  uint64_t created = 0;  // Unix seconds
  uint64_t expires = 0;  // Unix seconds; 0: never
  bool admin = false;    // the new account becomes an admin

  bool operator==(const Invite&) const = default;
};

// A fresh token: kTokenBytes from the system CSPRNG, base64url without
// padding (RFC 4648 §5), so it needs no escaping in a URI.
std::string new_invite_token();
// Could `token` be one of ours? (base64url characters, 16..64 of them.)
// Anything else is refused before it reaches the database.
bool invite_token_well_formed(std::string_view token);

// The database key of an invite: user_key("", token).
std::string invite_key(std::string_view token);

// Value codec (version byte first, big-endian; decode fails on leftovers).
std::string encode_invite(const Invite& invite);
Result<Invite> decode_invite(std::string_view token, std::string_view value);

enum class InviteState { kUsable, kExpired, kUsedUp };
InviteState invite_state(const Invite& invite, uint64_t now);
std::string_view invite_state_text(InviteState state);

// RFC 3986 percent-encoding: every byte outside `unreserved` and `allowed`
// becomes %XX (upper-case hex).
std::string percent_encode(std::string_view in, std::string_view allowed = {});
// The XEP-0401 §3 URI of an invite on `domain`:
//   inviter:        xmpp:INVITER@DOMAIN?roster;preauth=TOKEN;ibr=y
//   reserved name:  xmpp:USERNAME@DOMAIN?register;preauth=TOKEN
//   otherwise:      xmpp:DOMAIN?register;preauth=TOKEN
// Node and domain are percent-encoded as RFC 5122 §2.3 says.
std::string invite_uri(const Invite& invite, std::string_view domain);

// "7d", "12h", "90m", "3600s", "2w", a bare number of seconds, or "never"
// (0). Fails on anything else and on 0.
Result<uint64_t> parse_invite_duration(std::string_view text);

// Reading and writing invites (server and CLI).
Result<std::optional<Invite>> load_invite(storage::Env& db, storage::Dbi table,
                                          std::string_view token);
Status store_invite(storage::Env& db, storage::Dbi table, const Invite& invite);

}  // namespace hearth::modules
