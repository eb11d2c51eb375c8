#include "xmpp/router.h"

#include <algorithm>
#include <charconv>

#include "core/log.h"

namespace hearth::xmpp {
namespace {
const std::vector<Session*> kNoSessions;

bool is_error(const xml::Element& st) {
  return st.attr("type") == "error";
}
}  // namespace

Router::Router(std::string domain) : domain_(std::move(domain)), arena_(2048) {}

Session* Router::bind(Session* session) {
  const Jid& jid = session->jid();
  std::vector<Session*>& list = by_bare_[jid.bare()];
  Session* replaced = nullptr;
  for (auto it = list.begin(); it != list.end(); ++it) {
    if ((*it)->jid().resource() == jid.resource()) {
      replaced = *it;
      list.erase(it);
      --count_;
      break;
    }
  }
  list.push_back(session);
  ++count_;
  return replaced;
}

void Router::unbind(Session* session) {
  auto it = by_bare_.find(session->jid().bare());
  if (it == by_bare_.end()) return;
  auto& list = it->second;
  auto pos = std::find(list.begin(), list.end(), session);
  if (pos == list.end()) return;
  list.erase(pos);
  --count_;
  if (list.empty()) by_bare_.erase(it);
}

Session* Router::find(std::string_view full_jid) const {
  size_t slash = full_jid.find('/');
  if (slash == std::string_view::npos) return nullptr;
  auto it = by_bare_.find(full_jid.substr(0, slash));
  if (it == by_bare_.end()) return nullptr;
  std::string_view resource = full_jid.substr(slash + 1);
  for (Session* s : it->second)
    if (s->jid().resource() == resource) return s;
  return nullptr;
}

const std::vector<Session*>& Router::resources(std::string_view bare_jid) const {
  auto it = by_bare_.find(bare_jid);
  return it == by_bare_.end() ? kNoSessions : it->second;
}

std::vector<Session*> Router::all_sessions() const {
  std::vector<Session*> out;
  out.reserve(count_);
  for (auto& [bare, list] : by_bare_)
    out.insert(out.end(), list.begin(), list.end());
  return out;
}

xml::Element* Router::make_reply(const xml::Element& stanza, std::string_view type) {
  xml::Element* reply = arena_.make_element(stanza.name, xml::kNsClient);
  std::string_view to = stanza.attr("to");
  reply->set_attr("from", to.empty() ? std::string_view(domain_) : to);
  reply->set_attr("to", stanza.attr("from"));
  if (stanza.has_attr("id")) reply->set_attr("id", stanza.attr("id"));
  reply->set_attr("type", type);
  return reply;
}

void Router::reply_error(const xml::Element& stanza, Session& origin, std::string_view type,
                         std::string_view condition, std::string_view text) {
  if (is_error(stanza)) return;  // RFC 6120 §8.3.1: never answer an error with an error
  if (stanza.name == "iq" && stanza.attr("type") == "result") return;
  xml::Element* reply = make_reply(stanza, "error");
  xml::Element* error = reply->add_child("error", xml::kNsClient);
  error->set_attr("type", type);
  error->add_child(condition, kNsStanzas);
  if (!text.empty()) error->add_child("text", kNsStanzas)->add_text(text);
  origin.deliver(*reply);
}

void Router::route(xml::Element& stanza, Session& origin) {
  std::string_view to_attr = stanza.attr("to");
  if (to_attr.empty()) {
    // RFC 6120 §10.3: no 'to' means the account itself (for a message,
    // the user's bare JID) or the server on its behalf.
    if (stanza.name == "message") {
      std::string bare = origin.jid().bare();
      deliver_to_bare(stanza, bare, origin);
    } else {
      route_to_server(stanza, origin);
    }
    arena_.reset();
    return;
  }
  Result<Jid> to = Jid::parse(to_attr);
  if (!to.ok()) {
    reply_error(stanza, origin, "modify", "jid-malformed");
    arena_.reset();
    return;
  }
  if (to->domain() != domain_) {
    // Federation (s2s) arrives with its own issue.
    reply_error(stanza, origin, "cancel", "remote-server-not-found");
  } else if (!to->has_local()) {
    if (to->has_resource()) {
      reply_error(stanza, origin, "cancel", "service-unavailable");
    } else {
      route_to_server(stanza, origin);
    }
  } else {
    // Normalise the address we deliver with.
    std::string full = to->full();
    stanza.set_attr("to", full);
    route_to_local(stanza, *to, origin);
  }
  arena_.reset();
}

void Router::route_to_server(xml::Element& stanza, Session& origin) {
  if (stanza.name == "presence") {
    // Presence to the server (no 'to'): own presence broadcast.
    if (stanza.attr("to").empty()) broadcast_own_presence(stanza, origin);
    return;
  }
  if (stanza.name == "message") return;  // nothing on the server consumes messages yet
  std::string_view type = stanza.attr("type");
  if (type != "get" && type != "set") return;  // results and errors end here
  const xml::Element* payload = stanza.first_child();
  if (!payload) {
    reply_error(stanza, origin, "modify", "bad-request");
    return;
  }
  bool to_server = stanza.attr("to").empty() || stanza.attr("to") == domain_;
  if (type == "get" && payload->ns == kNsPing && payload->name == "ping") {
    // XEP-0199 §4.2 (server) and §4.3 (account, no 'to').
    origin.deliver(*make_reply(stanza, "result"));
    return;
  }
  if (type == "set" && payload->ns == kNsSession && payload->name == "session") {
    // RFC 3921 legacy session establishment, advertised as optional.
    origin.deliver(*make_reply(stanza, "result"));
    return;
  }
  if (to_server && type == "get" && payload->ns == kNsDiscoInfo && payload->name == "query") {
    if (!payload->attr("node").empty()) {
      reply_error(stanza, origin, "cancel", "item-not-found");
      return;
    }
    xml::Element* reply = make_reply(stanza, "result");
    xml::Element* query = reply->add_child("query", kNsDiscoInfo);
    xml::Element* identity = query->add_child("identity", kNsDiscoInfo);
    identity->set_attr("category", "server");
    identity->set_attr("type", "im");
    identity->set_attr("name", "Hearth");
    for (std::string_view f : {kNsDiscoInfo, kNsDiscoItems, kNsPing})
      query->add_child("feature", kNsDiscoInfo)->set_attr("var", f);
    origin.deliver(*reply);
    return;
  }
  if (to_server && type == "get" && payload->ns == kNsDiscoItems && payload->name == "query") {
    xml::Element* reply = make_reply(stanza, "result");
    reply->add_child("query", kNsDiscoItems);
    origin.deliver(*reply);
    return;
  }
  // RFC 6120 §8.4: an IQ nobody handles gets service-unavailable.
  reply_error(stanza, origin, "cancel", "service-unavailable");
}

void Router::route_to_local(xml::Element& stanza, const Jid& to, Session& origin) {
  std::string_view type = stanza.attr("type");
  if (to.has_resource()) {
    if (Session* target = find(stanza.attr("to"))) {
      target->deliver(stanza);
      return;
    }
    // RFC 6121 §8.5.3.2: no such resource.
    if (stanza.name == "message") {
      if (type == "groupchat") {
        reply_error(stanza, origin, "cancel", "service-unavailable");
      } else if (type == "" || type == "normal" || type == "chat") {
        std::string bare = to.bare();
        deliver_to_bare(stanza, bare, origin);
      }
      return;  // headline and error: silently dropped
    }
    if (stanza.name == "iq") reply_error(stanza, origin, "cancel", "service-unavailable");
    return;  // presence to an unavailable resource is dropped
  }
  std::string bare = to.bare();
  if (stanza.name == "iq") {
    if (bare == origin.jid().bare()) {
      route_to_server(stanza, origin);  // the account's own bare JID: handled for it
    } else if (type == "get" || type == "set") {
      // RFC 6121 §8.5.2.1.3: the server answers on behalf of the account.
      reply_error(stanza, origin, "cancel", "service-unavailable");
    }
    return;
  }
  deliver_to_bare(stanza, bare, origin);
}

void Router::deliver_to_bare(xml::Element& stanza, std::string_view bare, Session& origin) {
  const std::vector<Session*>& sessions = resources(bare);
  if (stanza.name == "presence") {
    // Directed presence to an account goes to its available resources.
    for (Session* s : sessions)
      if (s->available()) s->deliver(stanza);
    return;
  }
  std::string_view type = stanza.attr("type");
  if (type == "error") return;
  if (type == "groupchat") {
    reply_error(stanza, origin, "cancel", "service-unavailable");
    return;
  }
  // RFC 6121 §8.5.2.1.1: to every available resource with non-negative
  // priority.
  bool delivered = false;
  for (Session* s : sessions) {
    if (s->available() && s->priority() >= 0) {
      s->deliver(stanza);
      delivered = true;
    }
  }
  if (delivered || type == "headline") return;
  // No offline storage yet (it arrives with the IM core): tell the sender.
  reply_error(stanza, origin, "cancel", "service-unavailable");
}

void Router::broadcast_own_presence(xml::Element& presence, Session& origin) {
  std::string_view type = presence.attr("type");
  if (type.empty()) {
    int priority = 0;
    if (const xml::Element* p = presence.child("priority")) {
      std::string text = p->text();
      int value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size() && value >= -128 && value <= 127)
        priority = value;
    }
    origin.set_presence(true, priority);
  } else if (type == "unavailable") {
    if (!origin.available()) return;
    origin.set_presence(false, 0);
  } else {
    return;  // subscription management arrives with the roster
  }
  // RFC 6121 §4.2.2: to all of the account's available resources, the
  // sender included.
  std::string bare = origin.jid().bare();
  for (Session* s : resources(bare)) {
    if (s->available() || s == &origin) {
      presence.set_attr("to", s->jid().full());
      s->deliver(presence);
    }
  }
}

}  // namespace hearth::xmpp
