// Message Carbons (XEP-0280, urn:xmpp:carbons:2): a client enables carbons
// with an IQ set; then it gets a <sent/> copy of what the account's other
// resources send and a <received/> copy of what they receive, so every
// device sees both sides of every conversation.
//
// What this module does (Prosody's rules where XEP-0280 leaves a choice):
//   - <enable/>/<disable/> (IQ set, to the server or no 'to'): sets
//     Session::carbons(); repeated requests are fine (§8.1). Any other
//     element of the namespace is <bad-request/>.
//   - Sent copies (kOutbound, after mam archived the message): to every
//     carbons-enabled session of the sender except the sending one. With an
//     archive id from mam, the forwarded message carries the sender's
//     <stanza-id/> (XEP-0359), so the other devices can dedupe with MAM.
//   - Received copies (after delivery): to every carbons-enabled session of
//     the recipient that did not get the message itself (§6).
//   - Copies go to enabled sessions whether or not they sent initial
//     presence (as Prosody: the client asked for them).
//   - A message from one resource to the same account (own bare or full
//     JID, or no 'to') is copied only after delivery, as a <sent/> copy, to
//     the enabled sessions that neither sent nor got it: every session sees
//     it at most once.
//   - <private xmlns='urn:xmpp:carbons:2'/> (§7) or <no-copy xmlns=
//     'urn:xmpp:hints'/> (XEP-0334): no copies; <private/> is removed from
//     the delivered message (§7: the receiving server SHOULD remove it).
//   - Copies of copies are never made: a message that carries <sent/> or
//     <received/> of this namespace is not eligible.
#pragma once

#include <cstdint>
#include <string_view>

#include "xml/element.h"

namespace hearth::modules::carbons {

inline constexpr std::string_view kNs = "urn:xmpp:carbons:2";
inline constexpr std::string_view kNsForward = "urn:xmpp:forward:0";
inline constexpr std::string_view kNsHints = "urn:xmpp:hints";
inline constexpr std::string_view kNsSid = "urn:xmpp:sid:0";
inline constexpr std::string_view kNsMucUser = "http://jabber.org/protocol/muc#user";

enum class Direction : uint8_t { kSent, kReceived };

// XEP-0280 §6.1: is `message` worth copying to the other resources of
// `account_bare` (the sender's account for kSent, the recipient's for
// kReceived)? Eligible: type chat; type error; type normal (or none) with a
// <body/> or an IM payload (chat states, receipts, chat markers, Jingle
// Message Initiation, OMEMO/OpenPGP encryption) or, received, a stanza-id
// by the account's archive. Never: groupchat, headline, <private/>,
// <no-copy/>, a carbon itself, or a received MUC private message (a full-JID
// message with muc#user <x/>, as Prosody).
bool eligible(const xml::Element& message, Direction dir, std::string_view account_bare);

// True if `message` carries a <sent/> or <received/> of urn:xmpp:carbons:2.
bool is_carbon(const xml::Element& message);

// Removes every <private xmlns='urn:xmpp:carbons:2'/> child; true if it
// removed one.
bool strip_private(xml::Element& message);

// The copy for the other resources (without 'to'; set it per session):
//   <message from=account_bare type=…><sent|received xmlns=carbons>
//   <forwarded xmlns=forward>ORIGINAL</forwarded></…></message>
// ORIGINAL is `original` itself (shared, not copied), or with a non-empty
// `archive_id`, a shallow copy that also carries <stanza-id xmlns=
// 'urn:xmpp:sid:0' by=account_bare id=archive_id/>.
xml::Element* wrap(const xml::Element& original, Direction dir, std::string_view account_bare,
                   std::string_view archive_id, xml::Arena& arena);

}  // namespace hearth::modules::carbons
