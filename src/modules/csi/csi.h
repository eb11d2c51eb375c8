// Client State Indication (XEP-0352, urn:xmpp:csi:0): a client that says
// <inactive/> (a phone with its screen off) gets only what matters now;
// the rest waits until it says <active/> or something important arrives.
//
// While a session is inactive, every stanza on its way to it is classified
// (classify() below):
//   - kFlush: an IQ, a message with a <body/> or <subject/>, a carbon copy
//     of such a message, an encrypted message (OMEMO, OpenPGP), a call
//     (XEP-0353 Jingle Message Initiation), a MUC invitation, a subscription
//     request or answer. Everything held is sent first, in order, then it.
//   - kDrop: a message with nothing but chat states (XEP-0085) besides
//     hints, ids and <thread/> (also inside a carbon): worthless later.
//   - kCollapse: an available or unavailable presence: held, only the newest
//     per sender full JID is kept; a newer one replaces the held one and
//     moves to the end (its new position), so the order of what is flushed
//     follows the newest information.
//   - kHold: anything else (PEP event headlines, receipts, markers, error
//     messages and error presence), held in order.
// More than [csi] max_held held stanzas, or more than kMaxHeldBytes of them,
// flush everything. <active/> and a XEP-0198 resumption flush too; the end
// of the session forgets what was held. Held stanzas are kept serialised,
// and only for inactive sessions. Other elements of the namespace are
// ignored (as Prosody does), not a stream error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "xml/element.h"

namespace hearth::modules::csi {

inline constexpr std::string_view kNs = "urn:xmpp:csi:0";
// What one inactive session may hold (bytes of serialised stanzas).
inline constexpr size_t kMaxHeldBytes = size_t{128} << 10;

enum class Verdict : uint8_t { kFlush, kDrop, kCollapse, kHold };

Verdict classify(const xml::Element& stanza);

}  // namespace hearth::modules::csi
