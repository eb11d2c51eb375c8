#include "modules/carbons/carbons.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "modules/module.h"
#include "xmpp/router.h"

namespace hearth::modules {
namespace carbons {
namespace {

// Payloads that make a bodiless type-normal message part of a conversation.
bool im_payload(const xml::Element& c) {
  static constexpr std::string_view kIm[] = {
      "http://jabber.org/protocol/chatstates",  // XEP-0085
      "urn:xmpp:receipts",                      // XEP-0184
      "urn:xmpp:chat-markers:0",                // XEP-0333
      "urn:xmpp:jingle-message:0",              // XEP-0353
      "urn:xmpp:jingle-message:1",
      "eu.siacs.conversations.axolotl",  // OMEMO (XEP-0384 0.3)
      "urn:xmpp:omemo:2",
      "urn:xmpp:openpgp:0",  // XEP-0373
  };
  return std::find(std::begin(kIm), std::end(kIm), std::string_view(c.ns)) != std::end(kIm);
}

// A message to a full JID: the resource part follows the first '/'
// (neither a localpart nor a domain may contain one, RFC 7622).
bool to_full_jid(const xml::Element& message) {
  return message.attr("to").find('/') != std::string_view::npos;
}

}  // namespace

bool is_carbon(const xml::Element& message) {
  for (const xml::Node& n : message.children) {
    if (n.element == nullptr || n.element->ns != kNs) continue;
    if (n.element->name == "sent" || n.element->name == "received") return true;
  }
  return false;
}

bool eligible(const xml::Element& message, Direction dir, std::string_view account_bare) {
  if (message.name != "message") return false;
  std::string_view type = message.attr("type");
  if (type == "groupchat" || type == "headline") return false;
  bool body = false, im = false, muc = false, archived = false;
  for (const xml::Node& n : message.children) {
    if (n.element == nullptr) continue;
    const xml::Element& c = *n.element;
    if (c.ns == kNs) {
      // <private/> (§7), or a carbon: never copied again.
      if (c.name == "private" || c.name == "sent" || c.name == "received") return false;
      continue;
    }
    if (c.ns == kNsHints && c.name == "no-copy") return false;  // XEP-0334 §4
    if (c.name == "body" && c.ns == xml::kNsClient) body = true;
    if (c.name == "x" && c.ns == kNsMucUser) muc = true;
    // XEP-0359 by the account's own archive (mam stamps it on arrival;
    // a forged one was removed by mam before): it is part of the history.
    if (dir == Direction::kReceived && c.name == "stanza-id" && c.ns == kNsSid &&
        c.attr("by") == account_bare)
      archived = true;
    if (im_payload(c)) im = true;
  }
  // MUC private messages reach the one occupant's full JID; the room
  // distributes them itself (XEP-0280 §6.1, Prosody).
  if (dir == Direction::kReceived && muc && to_full_jid(message)) return false;
  if (type == "chat" || type == "error") return true;
  if (type.empty() || type == "normal") return body || im || archived;
  return false;
}

bool strip_private(xml::Element& message) {
  auto& ch = message.children;
  auto end = std::remove_if(ch.begin(), ch.end(), [](const xml::Node& n) {
    return n.element != nullptr && n.element->ns == kNs && n.element->name == "private";
  });
  if (end == ch.end()) return false;
  ch.erase(end, ch.end());
  return true;
}

xml::Element* wrap(const xml::Element& original, Direction dir, std::string_view account_bare,
                   std::string_view archive_id, xml::Arena& arena) {
  xml::Element* m = arena.make_element("message", xml::kNsClient);
  m->set_attr("from", account_bare);
  std::string_view type = original.attr("type");
  if (!type.empty()) m->set_attr("type", type);
  xml::Element* forwarded = m->add_child(dir == Direction::kSent ? "sent" : "received", kNs)
                                ->add_child("forwarded", kNsForward);
  std::pmr::memory_resource* mr = forwarded->resource();
  if (archive_id.empty()) {
    // Shared, not copied: serialised while the original is still alive.
    forwarded->children.push_back(
        xml::Node{const_cast<xml::Element*>(&original), std::pmr::string(mr)});
    return m;
  }
  // The original goes to its recipient without the sender's stanza-id, so
  // the copy is a new element that shares the original's children.
  xml::Element* copy = forwarded->add_child(original.name, original.ns);
  for (const xml::Attr& a : original.attrs) {
    xml::Attr& b = copy->attrs.emplace_back(
        xml::Attr{std::pmr::string(mr), std::pmr::string(mr), std::pmr::string(mr)});
    b.ns = a.ns;
    b.name = a.name;
    b.value = a.value;
  }
  for (const xml::Node& n : original.children) {
    // A client's own stanza-id claiming our archive is not repeated.
    if (n.element != nullptr && n.element->name == "stanza-id" && n.element->ns == kNsSid &&
        n.element->attr("by") == account_bare)
      continue;
    copy->children.push_back(xml::Node{n.element, std::pmr::string(n.text, mr)});
  }
  xml::Element* sid = copy->add_child("stanza-id", kNsSid);
  sid->set_attr("id", archive_id);
  sid->set_attr("by", account_bare);
  return m;
}

namespace {

// XEP-0280 §4 / §5.
class Carbons final : public Module {
 public:
  explicit Carbons(Context& ctx) : ctx_(ctx) {
    // kIqHost: the disco#info of the server lists the feature (§3); an IQ
    // without 'to' falls back to the host handler.
    ctx.on_iq(kNs, "set", kIqHost, [this](IqEvent& ev) { on_toggle(ev); });
    ctx.on_stanza(Kind::kMessage, Phase::kOutbound, kPriorityDefault,
                  [this](StanzaEvent& ev) { return on_outbound(ev); });
    ctx.on_stanza(Kind::kMessage, Phase::kInbound, kPriorityDefault,
                  [this](StanzaEvent& ev) { return on_inbound(ev); });
    ctx.on_stanza(Kind::kMessage, Phase::kOffline, kPriorityFirewall, [this](StanzaEvent& ev) {
      forget_private(&ev.stanza);
      return HookResult::kPass;
    });
    ctx.on_delivered(kPriorityDefault,
                     [this](StanzaEvent& ev, const std::vector<xmpp::Session*>& recipients) {
                       on_delivered(ev, recipients);
                     });
  }

 private:
  void on_toggle(IqEvent& ev) {
    if (ev.origin == nullptr) {
      ctx_.error(ev, "cancel", "not-allowed");
      return;
    }
    if (ev.payload.name == "enable") {
      ev.origin->set_carbons(true);
    } else if (ev.payload.name == "disable") {
      ev.origin->set_carbons(false);
    } else {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    HEARTH_DEBUG("carbons", "%s %sd carbons", ev.origin->jid().full().c_str(),
                 ev.payload.name.c_str());
    ctx_.result(ev);
  }

  // §6: copies of what a resource sends, to the account's other resources.
  HookResult on_outbound(StanzaEvent& ev) {
    if (ev.origin == nullptr) return HookResult::kPass;
    std::string account = ev.from.bare();
    // To the own account: copied after delivery (on_delivered), where it is
    // known which sessions got it.
    if (!ev.to.has_local() && ev.to.domain().empty()) return HookResult::kPass;
    if (ev.to.has_local() && ev.to.bare() == account) return HookResult::kPass;
    if (!eligible(ev.stanza, Direction::kSent, account)) return HookResult::kPass;
    send_copies(ev.stanza, Direction::kSent, account, ev.sender_archive_id, ev.arena,
                [&](const xmpp::Session* s) { return s != ev.origin; });
    return HookResult::kPass;
  }

  // §7: the receiving server removes <private/> and makes no copies of it.
  HookResult on_inbound(StanzaEvent& ev) {
    forget_private(&ev.stanza);
    if (strip_private(ev.stanza)) {
      if (private_.size() >= kMaxPrivate) private_.erase(private_.begin());
      private_.push_back(&ev.stanza);
    }
    return HookResult::kPass;
  }

  // §5: copies for the recipient's resources that did not get it.
  void on_delivered(StanzaEvent& ev, const std::vector<xmpp::Session*>& recipients) {
    if (forget_private(&ev.stanza)) return;
    std::string account = ev.to.bare();
    // A message between two resources of one account is the user's own:
    // the other devices see it as sent (one copy each), never the sender.
    bool own = ev.origin != nullptr && ev.origin->jid().bare() == account;
    Direction dir = own ? Direction::kSent : Direction::kReceived;
    if (!eligible(ev.stanza, dir, account)) return;
    if (own && !ev.stanza.has_attr("to")) ev.stanza.set_attr("to", account);
    send_copies(ev.stanza, dir, account, {}, ev.arena, [&](const xmpp::Session* s) {
      return s != ev.origin &&
             std::find(recipients.begin(), recipients.end(), s) == recipients.end();
    });
  }

  template <class Pred>
  void send_copies(const xml::Element& message, Direction dir, const std::string& account,
                   std::string_view archive_id, xml::Arena& arena, Pred wanted) {
    xml::Element* copy = nullptr;
    // A copy of the list: deliver() may close a stream whose output buffer
    // overflowed, which unbinds its session from the router.
    std::vector<xmpp::Session*> sessions = ctx_.router().resources(account);
    for (xmpp::Session* s : sessions) {
      if (!s->carbons() || !wanted(s)) continue;
      if (copy == nullptr) copy = wrap(message, dir, account, archive_id, arena);
      copy->set_attr("to", s->jid().full());
      s->deliver(*copy);  // through the output filters (CSI)
    }
  }

  // True if `stanza` was marked private (and forgets the mark).
  bool forget_private(const xml::Element* stanza) {
    auto it = std::find(private_.begin(), private_.end(), stanza);
    if (it == private_.end()) return false;
    private_.erase(it);
    return true;
  }

  // Messages whose <private/> was removed on the way in (kInbound) and that
  // are not delivered yet. Only pointers to stanzas being routed now: a
  // mark is dropped at delivery, at offline storage, or when another
  // message arrives at the same address; the cap bounds what is left by a
  // message that a later hook consumed.
  static constexpr size_t kMaxPrivate = 16;
  std::vector<const xml::Element*> private_;
  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Carbons>(ctx);
}

}  // namespace
}  // namespace carbons

extern const ModuleDef kModule_carbons;
const ModuleDef kModule_carbons = {
    "carbons",
    "Message Carbons (XEP-0280): copies of sent and received messages to the other resources",
    {},
    {},
    &carbons::create};

}  // namespace hearth::modules
