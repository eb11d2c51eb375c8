#include "modules/presence/subscription.h"

namespace hearth::modules {

namespace {

Subscription add_to(Subscription s) {
  return has_from(s) ? Subscription::kBoth : Subscription::kTo;
}
Subscription add_from(Subscription s) {
  return has_to(s) ? Subscription::kBoth : Subscription::kFrom;
}
Subscription drop_to(Subscription s) {
  return has_from(s) ? Subscription::kFrom : Subscription::kNone;
}
Subscription drop_from(Subscription s) {
  return has_to(s) ? Subscription::kTo : Subscription::kNone;
}

// What a roster push shows changed, or the item is new.
bool visible_change(const SubState& a, const SubState& b) {
  if (!b.in_roster) return false;
  return !a.in_roster || a.sub != b.sub || a.pending_out != b.pending_out ||
         a.approved != b.approved;
}

SubOutcome finish(const SubState& before, SubOutcome o) {
  o.push = visible_change(before, o.next);
  return o;
}

}  // namespace

bool parse_sub_type(std::string_view type, SubType* out) {
  if (type == "subscribe") {
    *out = SubType::kSubscribe;
  } else if (type == "subscribed") {
    *out = SubType::kSubscribed;
  } else if (type == "unsubscribe") {
    *out = SubType::kUnsubscribe;
  } else if (type == "unsubscribed") {
    *out = SubType::kUnsubscribed;
  } else {
    return false;
  }
  return true;
}

SubOutcome outbound_subscription(const SubState& s, SubType type) {
  SubOutcome o;
  o.next = s;
  switch (type) {
    case SubType::kSubscribe:
      // A.2.1: pending out unless already subscribed; always routed (the
      // contact's server answers a repeated request itself, §3.1.3).
      o.next.in_roster = true;
      if (!has_to(s.sub)) o.next.pending_out = true;
      o.forward = true;
      break;
    case SubType::kSubscribed:
      if (s.pending_in) {
        // A.2.2: approve the request.
        o.next.sub = add_from(s.sub);
        o.next.pending_in = false;
        o.next.approved = false;
        o.next.in_roster = true;
        o.forward = true;
        o.send_presence = true;
      } else if (!has_from(s.sub)) {
        // §3.4.1: pre-approval, kept and not routed.
        o.next.approved = true;
        o.next.in_roster = true;
      }
      break;
    case SubType::kUnsubscribe:
      // A.2.3; §3.3.2: routed in any case.
      o.next.sub = drop_to(s.sub);
      o.next.pending_out = false;
      o.forward = true;
      break;
    case SubType::kUnsubscribed:
      // A.2.4: cancels a subscription, denies a request, withdraws a
      // pre-approval (§3.4.1); routed in any case (§3.2.2).
      o.next.sub = drop_from(s.sub);
      o.next.pending_in = false;
      o.next.approved = false;
      o.forward = true;
      o.send_unavailable = has_from(s.sub);
      break;
  }
  return finish(s, o);
}

SubOutcome inbound_subscription(const SubState& s, SubType type) {
  SubOutcome o;
  o.next = s;
  switch (type) {
    case SubType::kSubscribe:
      if (has_from(s.sub)) {
        o.auto_subscribed = true;  // §3.1.3: already subscribed
      } else if (s.approved) {
        // §3.4.2: pre-approved: subscribed for the account.
        o.next.sub = add_from(s.sub);
        o.next.approved = false;
        o.auto_subscribed = true;
        o.send_presence = true;
      } else if (!s.pending_in) {
        // A.3.1: a new request: kept and delivered.
        o.next.pending_in = true;
        o.forward = true;
      }
      break;
    case SubType::kSubscribed:
      // A.3.2: only an answer to our request counts (§3.1.6).
      if (s.pending_out) {
        o.next.sub = add_to(s.sub);
        o.next.pending_out = false;
        o.forward = true;
      }
      break;
    case SubType::kUnsubscribe:
      // A.3.3: the contact stops receiving our presence (§3.3.3).
      if (has_from(s.sub) || s.pending_in) {
        o.next.sub = drop_from(s.sub);
        o.next.pending_in = false;
        o.forward = true;
        o.send_unavailable = has_from(s.sub);
      }
      break;
    case SubType::kUnsubscribed:
      // A.3.4: our subscription (or request) is cancelled or denied.
      if (has_to(s.sub) || s.pending_out) {
        o.next.sub = drop_to(s.sub);
        o.next.pending_out = false;
        o.forward = true;
      }
      break;
  }
  return finish(s, o);
}

}  // namespace hearth::modules
