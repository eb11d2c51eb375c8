// The router's session table: the bound local sessions by full and bare JID.
// Where a stanza goes (RFC 6120 §10, RFC 6121 §8) is the module host's
// pipeline (modules/host.h), which looks sessions up here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xml/element.h"
#include "xmpp/jid.h"
#include "xmpp/session.h"

namespace hearth::xmpp {

inline constexpr std::string_view kNsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr std::string_view kNsPing = "urn:xmpp:ping";
inline constexpr std::string_view kNsDiscoInfo = "http://jabber.org/protocol/disco#info";
inline constexpr std::string_view kNsDiscoItems = "http://jabber.org/protocol/disco#items";
inline constexpr std::string_view kNsSession = "urn:ietf:params:xml:ns:xmpp-session";

class Router {
 public:
  explicit Router(std::string domain);

  const std::string& domain() const { return domain_; }

  // Registers a bound session. If another session has the same full JID it
  // is unregistered and returned (the caller kicks it with <conflict/>).
  Session* bind(Session* session);
  void unbind(Session* session);
  Session* find(std::string_view full_jid) const;
  // Sessions of one account (bare JID); empty if none.
  const std::vector<Session*>& resources(std::string_view bare_jid) const;
  size_t session_count() const { return count_; }
  std::vector<Session*> all_sessions() const;

  // Sends an error reply to `origin` for `stanza` (never for type='error').
  void reply_error(const xml::Element& stanza, Session& origin, std::string_view type,
                   std::string_view condition, std::string_view text = {});

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  xml::Element* make_reply(const xml::Element& stanza, std::string_view type);

  std::string domain_;
  std::unordered_map<std::string, std::vector<Session*>, Hash, std::equal_to<>> by_bare_;
  size_t count_ = 0;
  xml::Arena arena_;  // replies built by the router, reset after each route()
};

}  // namespace hearth::xmpp
