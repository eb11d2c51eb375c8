#include "modules/invites/invite.h"

#include <sodium.h>

#include "core/config.h"
#include "modules/module.h"
#include "storage/codec.h"

namespace hearth::modules {
namespace {

constexpr uint8_t kInviteFormat = 1;
constexpr uint8_t kFlagAdmin = 1;
constexpr size_t kMinTokenChars = 16;
constexpr size_t kMaxTokenChars = 64;

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

}  // namespace

std::string new_invite_token() {
  unsigned char raw[kTokenBytes];
  randombytes_buf(raw, sizeof raw);
  char out[sodium_base64_ENCODED_LEN(kTokenBytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  return out;
}

bool invite_token_well_formed(std::string_view token) {
  if (token.size() < kMinTokenChars || token.size() > kMaxTokenChars) return false;
  for (char c : token)
    if (!base64url_char(c)) return false;
  return true;
}

std::string invite_key(std::string_view token) {
  return user_key("", token);
}

std::string encode_invite(const Invite& invite) {
  storage::Writer w;
  w.u8(kInviteFormat);
  w.u8(invite.admin ? kFlagAdmin : 0);
  w.u32(invite.uses_left);
  w.u64(invite.created);
  w.u64(invite.expires);
  w.bytes(invite.inviter);
  w.bytes(invite.username);
  w.bytes(invite.creator);
  return w.take();
}

Result<Invite> decode_invite(std::string_view token, std::string_view value) {
  storage::Reader r(value);
  uint8_t format = 0, flags = 0;
  Invite out;
  std::string_view inviter, username, creator;
  r.u8(&format);
  r.u8(&flags);
  r.u32(&out.uses_left);
  r.u64(&out.created);
  r.u64(&out.expires);
  r.bytes(&inviter);
  r.bytes(&username);
  r.bytes(&creator);
  if (Status s = r.finish(); !s) return s.error();
  if (format != kInviteFormat) return make_error("unknown invite format " + std::to_string(format));
  if ((flags & ~kFlagAdmin) != 0) return make_error("unknown invite flags");
  out.token.assign(token);
  out.admin = (flags & kFlagAdmin) != 0;
  out.inviter.assign(inviter);
  out.username.assign(username);
  out.creator.assign(creator);
  return out;
}

InviteState invite_state(const Invite& invite, uint64_t now) {
  if (invite.uses_left == 0) return InviteState::kUsedUp;
  if (invite.expires != 0 && now >= invite.expires) return InviteState::kExpired;
  return InviteState::kUsable;
}

std::string_view invite_state_text(InviteState state) {
  switch (state) {
    case InviteState::kExpired:
      return "the invite has expired";
    case InviteState::kUsedUp:
      return "the invite has been used";
    case InviteState::kUsable:
      break;
  }
  return "the invite is valid";
}

std::string percent_encode(std::string_view in, std::string_view allowed) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (unreserved(c) || allowed.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      unsigned char b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

std::string invite_uri(const Invite& invite, std::string_view domain) {
  // RFC 5122 §2.3: nodeallow = "!" / "$" / "(" / ")" / "*" / "+" / "," / ";" / "="
  // (and the unreserved characters); a host is reg-name (unreserved,
  // sub-delims). Everything else is percent-encoded.
  constexpr std::string_view kNodeAllow = "!$()*+,;=";
  constexpr std::string_view kHostAllow = "!$&'()*+,;=";
  std::string out = "xmpp:";
  std::string_view node = !invite.inviter.empty() ? std::string_view(invite.inviter)
                                                  : std::string_view(invite.username);
  if (!node.empty()) {
    out += percent_encode(node, kNodeAllow);
    out += '@';
  }
  out += percent_encode(domain, kHostAllow);
  out += invite.inviter.empty() ? "?register;preauth=" : "?roster;preauth=";
  // XEP-0147 key=value pairs: a value escapes ';', '=', '&' and '#'.
  out += percent_encode(invite.token);
  if (!invite.inviter.empty()) out += ";ibr=y";
  return out;
}

Result<uint64_t> parse_invite_duration(std::string_view text) {
  // The INI's durations (config::parse_duration), with the CLI's message.
  std::optional<uint64_t> seconds = config::parse_duration(text);
  if (!seconds) {
    return make_error("'" + std::string(text) +
                      "' is not a duration like 7d, 2w, 12h, 90m or 3600s (or never)");
  }
  return *seconds;
}

Result<std::optional<Invite>> load_invite(storage::Env& db, storage::Dbi table,
                                          std::string_view token) {
  if (!invite_token_well_formed(token)) return std::optional<Invite>();
  Result<storage::ReadTxn> txn = db.read();
  if (!txn) return txn.error();
  auto got = txn->get(table, invite_key(token));
  if (!got) return got.error();
  if (!got.value()) return std::optional<Invite>();
  Result<Invite> inv = decode_invite(token, **got);
  if (!inv) return inv.error();
  return std::optional<Invite>(std::move(inv.value()));
}

Status store_invite(storage::Env& db, storage::Dbi table, const Invite& invite) {
  return db.write([&](storage::WriteTxn& t) -> Status {
    t.put(table, invite_key(invite.token), encode_invite(invite));
    return t.status();
  });
}

}  // namespace hearth::modules
