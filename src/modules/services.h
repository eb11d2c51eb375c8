// What one module offers the others, found with Context::find<T>(). A
// module that uses a service copes with it being absent (its module
// disabled) unless it lists that module in ModuleDef::requires_modules.
#pragma once

#include <string>
#include <string_view>

#include "xmpp/jid.h"

namespace hearth::modules {

// RFC 6121 §2.1.2.5 subscription states as the roster stores them.
enum class Subscription : uint8_t { kNone = 0, kTo = 1, kFrom = 2, kBoth = 3 };

inline bool has_from(Subscription s) {
  return s == Subscription::kFrom || s == Subscription::kBoth;
}
inline bool has_to(Subscription s) {
  return s == Subscription::kTo || s == Subscription::kBoth;
}

// Provided by the roster module.
class RosterService {
 public:
  static constexpr std::string_view kServiceName = "roster";
  virtual ~RosterService() = default;
  // The subscription `user` (a localpart) has with `contact` (a bare JID);
  // kNone when the contact is not in the roster.
  virtual Subscription subscription(std::string_view user, std::string_view contact) const = 0;
  // Is `contact` (bare JID) an item of `user`'s roster at all?
  virtual bool has_item(std::string_view user, std::string_view contact) const = 0;
};

// Provided by the presence module.
class PresenceService {
 public:
  static constexpr std::string_view kServiceName = "presence";
  virtual ~PresenceService() = default;
  // Sends the current presence of each available resource of `user`
  // (localpart) to `contact` (XEP-0191 §3.4: after an unblock, when the
  // subscription includes 'from').
  virtual void send_current_presence(std::string_view user, const xmpp::Jid& contact) = 0;
  // Sends unavailable presence from each available resource of `user` to
  // `contact` (XEP-0191 §3.3: on block).
  virtual void send_unavailable(std::string_view user, const xmpp::Jid& contact) = 0;
};

// Provided by the blocking module.
class BlockingService {
 public:
  static constexpr std::string_view kServiceName = "blocking";
  virtual ~BlockingService() = default;
  // Has `user` (localpart) blocked `jid` (XEP-0191 §3.1 matching: the
  // blocklist item is a full JID, bare JID or domain)?
  virtual bool is_blocked(std::string_view user, const xmpp::Jid& jid) const = 0;
};

}  // namespace hearth::modules
