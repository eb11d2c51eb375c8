#include "modules/csi/csi.h"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.h"
#include "modules/module.h"

namespace hearth::modules {
namespace csi {
namespace {

constexpr std::string_view kNsCarbons = "urn:xmpp:carbons:2";
constexpr std::string_view kNsForward = "urn:xmpp:forward:0";
constexpr std::string_view kNsChatStates = "http://jabber.org/protocol/chatstates";

bool urgent_payload(const xml::Element& c) {
  static constexpr std::string_view kUrgent[] = {
      "eu.siacs.conversations.axolotl",  // OMEMO <encrypted/> (XEP-0384 0.3)
      "urn:xmpp:omemo:2",                // OMEMO 2
      "urn:xmpp:openpgp:0",              // XEP-0373
      "jabber:x:encrypted",              // XEP-0027
      "urn:xmpp:jingle-message:0",       // XEP-0353: a call is ringing
      "urn:xmpp:jingle-message:1",
      "jabber:x:conference",  // XEP-0249 invitation
  };
  if (std::find(std::begin(kUrgent), std::end(kUrgent), std::string_view(c.ns)) !=
      std::end(kUrgent))
    return true;
  // XEP-0045 §7.8.2: a mediated invitation.
  return c.name == "x" && c.ns == "http://jabber.org/protocol/muc#user" &&
         c.child("invite") != nullptr;
}

// Children that carry nothing on their own next to a chat state.
bool incidental(const xml::Element& c) {
  if (c.ns == "urn:xmpp:hints" || c.ns == "urn:xmpp:sid:0") return true;  // XEP-0334, XEP-0359
  if (c.ns == "urn:xmpp:delay") return true;
  return c.ns == xml::kNsClient && c.name == "thread";
}

Verdict classify_message(const xml::Element& m, int depth) {
  // A carbon copy (XEP-0280) counts as what it carries.
  if (depth == 0) {
    for (const xml::Node& n : m.children) {
      const xml::Element* c = n.element;
      if (c == nullptr || c->ns != kNsCarbons || (c->name != "sent" && c->name != "received"))
        continue;
      const xml::Element* fwd = c->child("forwarded", kNsForward);
      const xml::Element* inner = fwd != nullptr ? fwd->child("message", xml::kNsClient) : nullptr;
      return inner != nullptr ? classify_message(*inner, 1) : Verdict::kHold;
    }
  }
  std::string_view type = m.attr("type");
  bool chat_state = false, other = false;
  for (const xml::Node& n : m.children) {
    const xml::Element* c = n.element;
    if (c == nullptr) continue;
    if (c->ns == xml::kNsClient && (c->name == "body" || c->name == "subject")) {
      // Headlines are ephemeral even with a body (PEP events, news).
      if (type != "headline" && type != "error") return Verdict::kFlush;
      other = true;
      continue;
    }
    if (urgent_payload(*c) && type != "error") return Verdict::kFlush;
    if (c->ns == kNsChatStates) {
      chat_state = true;
    } else if (!incidental(*c)) {
      other = true;
    }
  }
  if (chat_state && !other) return Verdict::kDrop;
  return Verdict::kHold;
}

}  // namespace

Verdict classify(const xml::Element& stanza) {
  if (stanza.name == "iq") return Verdict::kFlush;  // someone waits for it
  if (stanza.name == "presence") {
    std::string_view type = stanza.attr("type");
    if (type.empty() || type == "unavailable") return Verdict::kCollapse;
    if (type == "error") return Verdict::kHold;
    return Verdict::kFlush;  // subscription requests and answers need the user
  }
  if (stanza.name == "message") return classify_message(stanza, 0);
  return Verdict::kFlush;
}

namespace {

class Csi final : public Module {
 public:
  explicit Csi(Context& ctx) : ctx_(ctx) {
    ctx.on_stream_features([](std::string& f) { f += "<csi xmlns='urn:xmpp:csi:0'/>"; });
    ctx.on_nonza(kNs, [this](xmpp::Session& s, const xml::Element& e) { on_nonza(s, e); });
    ctx.on_output(kPriorityDefault, [this](xmpp::Session& s, const xml::Element& stanza) {
      return on_output(s, stanza);
    });
    ctx.on_session(SessionEvent::kResumed, kPriorityDefault,
                   [this](xmpp::Session& s) { activate(s); });
    ctx.on_session(SessionEvent::kClosed, kPriorityDefault,
                   [this](xmpp::Session& s) { inactive_.erase(&s); });
  }

 private:
  struct Held {
    std::string xml;
    std::string from;  // the sender, for kCollapse; empty otherwise
  };
  struct State {
    std::vector<Held> held;
    size_t bytes = 0;
  };

  void on_nonza(xmpp::Session& s, const xml::Element& e) {
    if (e.name == "inactive") {
      inactive_.try_emplace(&s);
      HEARTH_DEBUG("csi", "%s is inactive", s.jid().full().c_str());
    } else if (e.name == "active") {
      activate(s);
      HEARTH_DEBUG("csi", "%s is active", s.jid().full().c_str());
    }
    // Other names: ignored, as Prosody does (XEP-0352 defines only these two).
  }

  void activate(xmpp::Session& s) {
    auto it = inactive_.find(&s);
    if (it == inactive_.end()) return;
    State state = std::move(it->second);
    inactive_.erase(it);
    flush(s, state);
  }

  static void flush(xmpp::Session& s, State& state) {
    std::vector<Held> held = std::move(state.held);
    state.held.clear();
    state.bytes = 0;
    // deliver_raw() bypasses the filters: nothing comes back here.
    for (const Held& h : held)
      s.deliver_raw(h.xml);
  }

  HookResult on_output(xmpp::Session& s, const xml::Element& stanza) {
    auto it = inactive_.find(&s);
    if (it == inactive_.end()) return HookResult::kPass;
    State& state = it->second;
    Verdict v = classify(stanza);
    if (v == Verdict::kDrop) return HookResult::kHandled;
    if (v == Verdict::kFlush) {
      flush(s, state);
      return HookResult::kPass;
    }
    Held h;
    xml::serialize(stanza, &h.xml);
    if (v == Verdict::kCollapse) {
      h.from = std::string(stanza.attr("from"));
      auto old = std::find_if(state.held.begin(), state.held.end(),
                              [&](const Held& o) { return !o.from.empty() && o.from == h.from; });
      if (old != state.held.end()) {
        state.bytes -= old->xml.size();
        state.held.erase(old);
      }
    }
    state.bytes += h.xml.size();
    state.held.push_back(std::move(h));
    if (state.held.size() > ctx_.config().csi.max_held || state.bytes > kMaxHeldBytes) {
      HEARTH_DEBUG("csi", "%s: %zu stanzas held, flushing", s.jid().full().c_str(),
                   state.held.size());
      flush(s, state);
    }
    return HookResult::kHandled;
  }

  Context& ctx_;
  // Only inactive sessions have an entry.
  std::unordered_map<const xmpp::Session*, State> inactive_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Csi>(ctx);
}

}  // namespace
}  // namespace csi

extern const ModuleDef kModule_csi;
const ModuleDef kModule_csi = {
    "csi",
    "Client State Indication (XEP-0352): holds presence and drops chat states for idle clients",
    {},
    {},
    &csi::create};

}  // namespace hearth::modules
