// A bound client session as the router and the modules see it. The stream
// (c2s.h) implements the I/O; the state below belongs to the IM modules
// (presence, roster) and lives here so that no per-session map is needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xml/element.h"
#include "xmpp/jid.h"

namespace hearth::xmpp {

class Session {
 public:
  virtual ~Session() = default;
  virtual const Jid& jid() const = 0;  // the bound full JID
  // Serialise and send a stanza to this session's client.
  virtual void deliver(const xml::Element& stanza) = 0;
  // Send an already serialised stanza (stored offline messages).
  virtual void deliver_raw(std::string_view xml) = 0;
  // Close the stream with a stream error (e.g. "conflict").
  virtual void kick(std::string_view condition, std::string_view text) = 0;

  // RFC 6121 §4.2: the session has sent initial presence and not yet
  // unavailable presence. Priority of its last available presence.
  bool available() const { return available_; }
  int priority() const { return priority_; }
  void set_presence(bool available, int priority) {
    available_ = available;
    priority_ = priority;
  }
  // RFC 6121 §2.1.6: the client asked for the roster, so it gets pushes.
  bool interested() const { return interested_; }
  void set_interested(bool interested) { interested_ = interested; }
  // The last available presence broadcast, serialised without 'to' and
  // 'from' (presence module; answers probes and greets new contacts).
  std::string& last_presence() { return last_presence_; }
  // RFC 6121 §4.6: JIDs this session sent directed presence to while
  // available, outside its subscriptions; they get its unavailable presence.
  std::vector<std::string>& directed() { return directed_; }
  // XEP-0280: the client enabled carbons (carbons module).
  bool carbons() const { return carbons_; }
  void set_carbons(bool on) { carbons_ = on; }

 private:
  bool available_ = false;
  bool interested_ = false;
  bool carbons_ = false;
  int priority_ = 0;
  std::string last_presence_;
  std::vector<std::string> directed_;
};

}  // namespace hearth::xmpp
