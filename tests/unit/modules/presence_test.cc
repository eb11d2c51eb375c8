// The RFC 6121 Appendix A subscription tables, state by state.
#include "modules/presence/subscription.h"

#include <gtest/gtest.h>

namespace hearth::modules {
namespace {

using S = Subscription;

SubState st(S sub, bool out = false, bool in = false, bool approved = false,
            bool in_roster = true) {
  SubState s;
  s.sub = sub;
  s.pending_out = out;
  s.pending_in = in;
  s.approved = approved;
  s.in_roster = in_roster;
  return s;
}

TEST(PresenceSubscription, ParsesTheFourTypesOnly) {
  SubType t;
  EXPECT_TRUE(parse_sub_type("subscribe", &t));
  EXPECT_EQ(t, SubType::kSubscribe);
  EXPECT_TRUE(parse_sub_type("unsubscribed", &t));
  EXPECT_EQ(t, SubType::kUnsubscribed);
  EXPECT_FALSE(parse_sub_type("probe", &t));
  EXPECT_FALSE(parse_sub_type("", &t));
  EXPECT_FALSE(parse_sub_type("Subscribe", &t));
}

// A.2.1 outbound subscribe.
TEST(PresenceSubscription, OutboundSubscribe) {
  struct Row {
    SubState in, out;
    bool push;
  } rows[] = {
      {st(S::kNone, false, false, false, false), st(S::kNone, true), true},  // new item
      {st(S::kNone), st(S::kNone, true), true},
      {st(S::kNone, true), st(S::kNone, true), false},
      {st(S::kNone, false, true), st(S::kNone, true, true), true},
      {st(S::kTo), st(S::kTo), false},
      {st(S::kFrom), st(S::kFrom, true), true},
      {st(S::kBoth), st(S::kBoth), false},
  };
  for (const Row& r : rows) {
    SubOutcome o = outbound_subscription(r.in, SubType::kSubscribe);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.push, r.push);
    EXPECT_TRUE(o.forward);  // always routed
    EXPECT_FALSE(o.send_presence);
  }
}

// A.2.2 outbound subscribed: approval, or pre-approval (§3.4).
TEST(PresenceSubscription, OutboundSubscribed) {
  SubOutcome o = outbound_subscription(st(S::kNone, false, true), SubType::kSubscribed);
  EXPECT_EQ(o.next, st(S::kFrom));
  EXPECT_TRUE(o.forward);
  EXPECT_TRUE(o.send_presence);
  EXPECT_TRUE(o.push);

  o = outbound_subscription(st(S::kNone, true, true), SubType::kSubscribed);
  EXPECT_EQ(o.next, st(S::kFrom, true));
  o = outbound_subscription(st(S::kTo, false, true), SubType::kSubscribed);
  EXPECT_EQ(o.next, st(S::kBoth));

  // Pending-in without a roster item: the item is created.
  o = outbound_subscription(st(S::kNone, false, true, false, false), SubType::kSubscribed);
  EXPECT_EQ(o.next, st(S::kFrom));
  EXPECT_TRUE(o.push);

  // Already subscribed: nothing, not routed.
  for (S s : {S::kFrom, S::kBoth}) {
    o = outbound_subscription(st(s), SubType::kSubscribed);
    EXPECT_EQ(o.next, st(s));
    EXPECT_FALSE(o.forward);
    EXPECT_FALSE(o.push);
  }
  // No request: pre-approval, kept (item created) and not routed.
  o = outbound_subscription(st(S::kNone, false, false, false, false), SubType::kSubscribed);
  EXPECT_EQ(o.next, st(S::kNone, false, false, true));
  EXPECT_FALSE(o.forward);
  EXPECT_TRUE(o.push);
  o = outbound_subscription(st(S::kTo, false, false, true), SubType::kSubscribed);
  EXPECT_FALSE(o.push);  // already pre-approved
  EXPECT_FALSE(o.forward);
}

// A.2.3 outbound unsubscribe.
TEST(PresenceSubscription, OutboundUnsubscribe) {
  struct Row {
    SubState in, out;
  } rows[] = {
      {st(S::kNone), st(S::kNone)},
      {st(S::kNone, true), st(S::kNone)},
      {st(S::kNone, true, true), st(S::kNone, false, true)},
      {st(S::kTo), st(S::kNone)},
      {st(S::kTo, false, true), st(S::kNone, false, true)},
      {st(S::kFrom), st(S::kFrom)},
      {st(S::kFrom, true), st(S::kFrom)},
      {st(S::kBoth), st(S::kFrom)},
  };
  for (const Row& r : rows) {
    SubOutcome o = outbound_subscription(r.in, SubType::kUnsubscribe);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.push, !(r.in == r.out));
    EXPECT_TRUE(o.forward);
    EXPECT_FALSE(o.send_unavailable);
  }
}

// A.2.4 outbound unsubscribed: cancel, deny, withdraw a pre-approval.
TEST(PresenceSubscription, OutboundUnsubscribed) {
  struct Row {
    SubState in, out;
    bool unavailable;
  } rows[] = {
      {st(S::kNone), st(S::kNone), false},
      {st(S::kNone, false, true), st(S::kNone), false},
      {st(S::kNone, true, true), st(S::kNone, true), false},
      {st(S::kTo, false, true), st(S::kTo), false},
      {st(S::kFrom), st(S::kNone), true},
      {st(S::kFrom, true), st(S::kNone, true), true},
      {st(S::kBoth), st(S::kTo), true},
      {st(S::kNone, false, false, true), st(S::kNone), false},
  };
  for (const Row& r : rows) {
    SubOutcome o = outbound_subscription(r.in, SubType::kUnsubscribed);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.send_unavailable, r.unavailable);
    EXPECT_TRUE(o.forward);
  }
  // Pending-in only (no item): nothing to push.
  SubOutcome o =
      outbound_subscription(st(S::kNone, false, true, false, false), SubType::kUnsubscribed);
  EXPECT_FALSE(o.push);
  EXPECT_FALSE(o.next.pending_in);
}

// A.3.1 inbound subscribe.
TEST(PresenceSubscription, InboundSubscribe) {
  SubOutcome o =
      inbound_subscription(st(S::kNone, false, false, false, false), SubType::kSubscribe);
  EXPECT_TRUE(o.next.pending_in);
  EXPECT_FALSE(o.next.in_roster);  // no roster item for a request
  EXPECT_TRUE(o.forward);
  EXPECT_FALSE(o.push);
  EXPECT_FALSE(o.auto_subscribed);

  o = inbound_subscription(st(S::kTo, true), SubType::kSubscribe);
  EXPECT_EQ(o.next, st(S::kTo, true, true));
  EXPECT_TRUE(o.forward);

  // Already pending: not delivered again.
  o = inbound_subscription(st(S::kNone, false, true), SubType::kSubscribe);
  EXPECT_FALSE(o.forward);
  EXPECT_EQ(o.next, st(S::kNone, false, true));

  // Already subscribed: the server answers.
  for (S s : {S::kFrom, S::kBoth}) {
    o = inbound_subscription(st(s), SubType::kSubscribe);
    EXPECT_TRUE(o.auto_subscribed);
    EXPECT_FALSE(o.forward);
    EXPECT_EQ(o.next, st(s));
  }
  // Pre-approved (§3.4.2).
  o = inbound_subscription(st(S::kTo, false, false, true), SubType::kSubscribe);
  EXPECT_EQ(o.next, st(S::kBoth));
  EXPECT_TRUE(o.auto_subscribed);
  EXPECT_TRUE(o.send_presence);
  EXPECT_TRUE(o.push);
  EXPECT_FALSE(o.forward);
}

// A.3.2 inbound subscribed.
TEST(PresenceSubscription, InboundSubscribed) {
  struct Row {
    SubState in, out;
    bool forward;
  } rows[] = {
      {st(S::kNone), st(S::kNone), false},
      {st(S::kNone, true), st(S::kTo), true},
      {st(S::kNone, true, true), st(S::kTo, false, true), true},
      {st(S::kFrom, true), st(S::kBoth), true},
      {st(S::kTo), st(S::kTo), false},
      {st(S::kFrom), st(S::kFrom), false},
      {st(S::kBoth), st(S::kBoth), false},
  };
  for (const Row& r : rows) {
    SubOutcome o = inbound_subscription(r.in, SubType::kSubscribed);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.forward, r.forward);
    EXPECT_EQ(o.push, r.forward);
  }
}

// A.3.3 inbound unsubscribe.
TEST(PresenceSubscription, InboundUnsubscribe) {
  struct Row {
    SubState in, out;
    bool forward, unavailable;
  } rows[] = {
      {st(S::kNone), st(S::kNone), false, false},
      {st(S::kNone, true), st(S::kNone, true), false, false},
      {st(S::kNone, false, true), st(S::kNone), true, false},
      {st(S::kNone, true, true), st(S::kNone, true), true, false},
      {st(S::kTo), st(S::kTo), false, false},
      {st(S::kTo, false, true), st(S::kTo), true, false},
      {st(S::kFrom), st(S::kNone), true, true},
      {st(S::kFrom, true), st(S::kNone, true), true, true},
      {st(S::kBoth), st(S::kTo), true, true},
  };
  for (const Row& r : rows) {
    SubOutcome o = inbound_subscription(r.in, SubType::kUnsubscribe);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.forward, r.forward);
    EXPECT_EQ(o.send_unavailable, r.unavailable);
  }
}

// A.3.4 inbound unsubscribed.
TEST(PresenceSubscription, InboundUnsubscribed) {
  struct Row {
    SubState in, out;
    bool forward;
  } rows[] = {
      {st(S::kNone), st(S::kNone), false},
      {st(S::kNone, true), st(S::kNone), true},
      {st(S::kNone, true, true), st(S::kNone, false, true), true},
      {st(S::kTo), st(S::kNone), true},
      {st(S::kTo, false, true), st(S::kNone, false, true), true},
      {st(S::kFrom), st(S::kFrom), false},
      {st(S::kFrom, true), st(S::kFrom), true},
      {st(S::kBoth), st(S::kFrom), true},
  };
  for (const Row& r : rows) {
    SubOutcome o = inbound_subscription(r.in, SubType::kUnsubscribed);
    EXPECT_EQ(o.next, r.out);
    EXPECT_EQ(o.forward, r.forward);
    EXPECT_EQ(o.push, r.forward);
    EXPECT_FALSE(o.auto_subscribed);
  }
}

// A full handshake run through both sides' tables ends in 'both'.
TEST(PresenceSubscription, MutualHandshakeEndsInBoth) {
  SubState alice = st(S::kNone, false, false, false, false);
  SubState bob = alice;
  alice = outbound_subscription(alice, SubType::kSubscribe).next;  // alice -> bob
  bob = inbound_subscription(bob, SubType::kSubscribe).next;
  bob = outbound_subscription(bob, SubType::kSubscribed).next;  // bob approves
  alice = inbound_subscription(alice, SubType::kSubscribed).next;
  EXPECT_EQ(alice, st(S::kTo));
  EXPECT_EQ(bob, st(S::kFrom));
  bob = outbound_subscription(bob, SubType::kSubscribe).next;  // and back
  SubOutcome auto_reply = inbound_subscription(alice, SubType::kSubscribe);
  EXPECT_FALSE(auto_reply.auto_subscribed);
  alice = auto_reply.next;
  alice = outbound_subscription(alice, SubType::kSubscribed).next;
  bob = inbound_subscription(bob, SubType::kSubscribed).next;
  EXPECT_EQ(alice, st(S::kBoth));
  EXPECT_EQ(bob, st(S::kBoth));
}

}  // namespace
}  // namespace hearth::modules
