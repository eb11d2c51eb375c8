// What one module offers the others, found with Context::find<T>(). A
// module that uses a service copes with it being absent (its module
// disabled) unless it lists that module in ModuleDef::requires_modules.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
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

// Provided by the roster module (XEP-0379 pre-approved subscriptions for
// invites): makes local accounts `a` and `b` (localparts) subscribed to
// each other ('both' on both rosters), with roster pushes to their
// interested sessions and presence exchanged if they are online.
class MutualSubscriptionService {
 public:
  static constexpr std::string_view kServiceName = "mutual-subscription";
  virtual ~MutualSubscriptionService() = default;
  virtual Status subscribe_both(std::string_view a, std::string_view b) = 0;
};

// Provided by the invites module: accounts given the admin role by an
// admin invite (`hearth invite --admin`), besides [server] admins.
class RoleService {
 public:
  static constexpr std::string_view kServiceName = "roles";
  virtual ~RoleService() = default;
  virtual bool is_admin(std::string_view localpart) const = 0;
};

// Provided by the mam module: the newest archived messages of `user`
// (localpart) exchanged with `with` (a bare JID), oldest first, serialised;
// for spam reports (XEP-0377).
class ArchiveService {
 public:
  static constexpr std::string_view kServiceName = "archive";
  virtual ~ArchiveService() = default;
  virtual std::vector<std::string> recent(std::string_view user, std::string_view with,
                                          size_t max) const = 0;
};

// Provided by the spam module: a XEP-0377 report that came with a XEP-0191
// block (`reason` is the reason URI, `text` the user's words, may be empty).
class SpamReportService {
 public:
  static constexpr std::string_view kServiceName = "spam-report";
  virtual ~SpamReportService() = default;
  virtual void report(const xmpp::Jid& reporter, const xmpp::Jid& reported, std::string_view reason,
                      std::string_view text) = 0;
};

}  // namespace hearth::modules
