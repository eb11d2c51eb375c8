// The presence subscription state machine of RFC 6121 Appendix A, as pure
// functions: what a subscription stanza does to the state one account keeps
// about one contact, and what the server must do besides (route, deliver,
// answer, send presence).
#pragma once

#include <cstdint>
#include <string_view>

#include "modules/services.h"

namespace hearth::modules {

// RFC 6121 §2.1.2.5 / Appendix A: the subscription, pending-out ('ask'),
// pending-in (a stored inbound request) and pre-approval (§3.4); whether a
// roster item exists at all (pending-in alone creates none).
struct SubState {
  Subscription sub = Subscription::kNone;
  bool pending_out = false;
  bool pending_in = false;
  bool approved = false;
  bool in_roster = false;

  bool operator==(const SubState&) const = default;
};

enum class SubType : uint8_t { kSubscribe, kSubscribed, kUnsubscribe, kUnsubscribed };

// "subscribe" etc.; false for any other type.
bool parse_sub_type(std::string_view type, SubType* out);

struct SubOutcome {
  SubState next;
  // The roster item is created or its visible state (subscription, ask,
  // approved) changed: store it and push it (RFC 6121 §2.1.6).
  bool push = false;
  // Outbound: route the stanza to the contact. Inbound: deliver it to the
  // account's available resources (a subscribe is also stored).
  bool forward = false;
  // Inbound subscribe that the server answers for the account with
  // 'subscribed' (§3.1.3: already subscribed or pre-approved).
  bool auto_subscribed = false;
  // The contact now receives the account's presence: send it the current
  // presence of each available resource (§3.1.5, §3.4).
  bool send_presence = false;
  // The contact no longer receives the account's presence: send it
  // unavailable from each available resource (§3.2.2, §3.3.3).
  bool send_unavailable = false;
};

// The account sends `type` to the contact (RFC 6121 Appendix A.2).
SubOutcome outbound_subscription(const SubState& state, SubType type);
// The account receives `type` from the contact (RFC 6121 Appendix A.3).
SubOutcome inbound_subscription(const SubState& state, SubType type);

}  // namespace hearth::modules
