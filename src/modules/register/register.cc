// In-band registration (XEP-0077) with registration closed: an account
// changes its password (§3.3) or removes itself (§3.2). New accounts are
// made with `hearth user add`; there is no pre-authentication stream
// feature.
#include <sodium.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "ipc/messages.h"
#include "modules/module.h"
#include "xmpp/jid.h"
#include "xmpp/password_policy.h"
#include "xmpp/router.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsRegister = "jabber:iq:register";

// Overwrites the character data of `e` (a password in the stanza's arena).
void wipe_text(xml::Element& e) {
  for (xml::Node& n : e.children) {
    if (n.element == nullptr && !n.text.empty()) sodium_memzero(n.text.data(), n.text.size());
  }
}

class Register final : public Module {
 public:
  explicit Register(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsRegister, "get,set", kIqHost | kIqSelf, [this](IqEvent& ev) { on_iq(ev); });
  }

 private:
  void on_iq(IqEvent& ev) {
    if (ev.payload.name != "query" || ev.origin == nullptr || !ev.from.has_local()) {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    if (!ev.is_set()) {
      // §3.1: already registered.
      xml::Element* q = ev.arena.make_element("query", kNsRegister);
      q->add_child("registered", kNsRegister);
      q->add_child("username", kNsRegister)->add_text(ev.from.local());
      ctx_.result(ev, q);
      return;
    }
    xml::Element* remove = nullptr;
    xml::Element* username = nullptr;
    xml::Element* password = nullptr;
    size_t others = 0;
    for (xml::Node& n : ev.payload.children) {
      xml::Element* e = n.element;
      if (e == nullptr) continue;
      if (e->ns == kNsRegister && e->name == "remove" && remove == nullptr) {
        remove = e;
      } else if (e->ns == kNsRegister && e->name == "username" && username == nullptr) {
        username = e;
      } else if (e->ns == kNsRegister && e->name == "password" && password == nullptr) {
        password = e;
      } else {
        ++others;
      }
    }
    if (remove != nullptr) {
      // §3.2: <remove/> must be the only child.
      if (username != nullptr || password != nullptr || others != 0) {
        if (password != nullptr) wipe_text(*password);
        ctx_.error(ev, "modify", "bad-request");
        return;
      }
      remove_account(ev);
      return;
    }
    if (username == nullptr || password == nullptr || others != 0) {
      if (password != nullptr) wipe_text(*password);
      ctx_.error(ev, "modify", "bad-request");  // §3.3: both are required
      return;
    }
    std::string secret = password->text();
    wipe_text(*password);
    auto name = xmpp::normalize_localpart(username->text());
    if (!name || *name != ev.from.local()) {
      // Only the account's own password (as Prosody: bad-request).
      sodium_memzero(secret.data(), secret.size());
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    if (secret.empty()) {
      ctx_.error(ev, "modify", "not-acceptable", "The password must not be empty");
      return;
    }
    // The auth worker refuses (and dies on) a longer one.
    if (secret.size() > ipc::kMaxPassword) {
      sodium_memzero(secret.data(), secret.size());
      ctx_.error(ev, "modify", "not-acceptable", "The password is too long");
      return;
    }
    // §3.3: a password the server does not accept is not-acceptable; the
    // text says why.
    if (Status s = xmpp::check_password(secret, ev.from.local(), ctx_.domain(),
                                        ctx_.config().min_password_length);
        !s.ok()) {
      sodium_memzero(secret.data(), secret.size());
      ctx_.error(ev, "modify", "not-acceptable", s.error().message);
      return;
    }
    IqReply reply = Context::reply_to(ev);
    std::string keep = ev.from.full();
    ctx_.set_password(ev.from.local(), std::string(secret),
                      [this, reply, keep, user = ev.from.local()](Status s) {
                        password_changed(reply, user, keep, s);
                      });
    sodium_memzero(secret.data(), secret.size());
  }

  void password_changed(const IqReply& reply, const std::string& user, const std::string& keep,
                        const Status& s) {
    if (!s) {
      HEARTH_WARN("register", "password change for %s failed: %s", user.c_str(),
                  s.error().message.c_str());
      ctx_.error(reply, "wait", "internal-server-error");
      return;
    }
    ctx_.result(reply);
    if (!ctx_.config().account.logout_on_password_change) return;
    // The other sessions authenticated with the old password.
    std::vector<xmpp::Session*> sessions = ctx_.router().resources(user + "@" + ctx_.domain());
    for (xmpp::Session* other : sessions) {
      if (other->jid().full() != keep) other->kick("not-authorized", "password changed");
    }
  }

  void remove_account(IqEvent& ev) {
    IqReply reply = Context::reply_to(ev);
    std::string user = ev.from.local();
    ctx_.remove_account(user, [this, reply, user](Status s) {
      if (!s) {
        HEARTH_WARN("register", "removing %s failed: %s", user.c_str(), s.error().message.c_str());
        ctx_.error(reply, "wait", "internal-server-error");
        return;
      }
      // §3.2: the result, then the stream closes (the core closes every
      // session of the removed account).
      ctx_.result(reply);
    });
  }

  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Register>(ctx);
}

}  // namespace

extern const ModuleDef kModule_register;
const ModuleDef kModule_register = {
    "register",
    "password change and account removal (XEP-0077), registration closed",
    {},
    {},
    &create};

}  // namespace hearth::modules
