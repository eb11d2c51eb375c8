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

}  // namespace hearth::xmpp
