// Last Activity (XEP-0012): the server's uptime (§5) and, for an account
// with no available resource, the time since its last resource went
// unavailable and the status it left with (§4). Stored in table "last"
// under user_key(user): u8 version, u64 unix seconds, bytes status.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "modules/module.h"
#include "modules/services.h"
#include "storage/codec.h"
#include "xmpp/router.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsLast = "jabber:iq:last";
constexpr std::string_view kTable = "last";
constexpr uint8_t kFormat = 1;
// A status longer than this is cut (at a UTF-8 boundary): it is a note,
// not a document.
constexpr size_t kMaxStatus = 1024;

uint64_t unix_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

uint64_t steady_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string_view cut_utf8(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return s.substr(0, n);
}

class Last final : public Module {
 public:
  explicit Last(Context& ctx) : ctx_(ctx), started_(steady_now()) {
    ctx.on_iq(kNsLast, "get", kIqHost | kIqSelf | kIqAccount, [this](IqEvent& ev) { on_get(ev); });
    // Own unavailable presence of an available resource; runs before the
    // presence module takes it (and changes the session's state).
    ctx.on_stanza(Kind::kPresence, Phase::kOutbound, kPriorityFirewall - 1,
                  [this](StanzaEvent& ev) {
                    if (ev.origin != nullptr && ev.to.domain().empty() &&
                        ev.stanza.attr("type") == "unavailable" && ev.origin->available()) {
                      const xml::Element* status = ev.stanza.child("status");
                      went_away(*ev.origin, status ? status->text() : std::string());
                    }
                    return HookResult::kPass;
                  });
    // A stream that ends while available (before the presence module sends
    // the unavailable presence for it).
    ctx.on_session(SessionEvent::kClosed, kPriorityFirewall, [this](xmpp::Session& s) {
      if (s.available()) went_away(s, {});
    });
  }

 private:
  // Records the time when the account's last available resource goes.
  void went_away(xmpp::Session& session, const std::string& status) {
    const std::string bare = session.jid().bare();
    for (const xmpp::Session* other : ctx_.router().resources(bare)) {
      if (other != &session && other->available()) return;
    }
    std::string value =
        storage::Writer().u8(kFormat).u64(unix_now()).bytes(cut_utf8(status, kMaxStatus)).take();
    std::string key = user_key(session.jid().local());
    storage::Dbi dbi = ctx_.table(kTable);
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      t.put(dbi, key, value);
      return {};
    });
    if (!s) HEARTH_WARN("last", "cannot store last activity: %s", s.error().message.c_str());
  }

  void on_get(IqEvent& ev) {
    if (ev.payload.name != "query") {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    xml::Element* q = ev.arena.make_element("query", kNsLast);
    if (ev.target == kIqHost) {  // §5: uptime
      q->set_attr("seconds", std::to_string(steady_now() - started_));
      ctx_.result(ev, q);
      return;
    }
    const std::string& user = ev.to.local();
    // §4: only for those allowed to see the user's presence.
    if (ev.target != kIqSelf) {
      const RosterService* roster = ctx_.find<RosterService>();
      if (roster == nullptr || !has_from(roster->subscription(user, ev.from.bare()))) {
        ctx_.error(ev, "auth", "forbidden");
        return;
      }
    }
    // §4: an available resource means the user is here now.
    for (const xmpp::Session* s : ctx_.router().resources(ev.to.bare())) {
      if (s->available()) {
        q->set_attr("seconds", "0");
        ctx_.result(ev, q);
        return;
      }
    }
    auto txn = ctx_.db().read();
    if (!txn) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    auto value = txn->get(ctx_.table(kTable), user_key(user));
    if (!value) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    if (!value->has_value()) {
      // Never seen: nothing to tell (as ejabberd does).
      ctx_.error(ev, "cancel", "service-unavailable");
      return;
    }
    storage::Reader r(**value);
    uint8_t format = 0;
    uint64_t when = 0;
    std::string_view status;
    r.u8(&format);
    r.u64(&when);
    r.bytes(&status);
    if (!r.finish() || format != kFormat) {
      HEARTH_WARN("last", "bad record for %s", user.c_str());
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    uint64_t now = unix_now();
    q->set_attr("seconds", std::to_string(now > when ? now - when : 0));
    if (!status.empty()) q->add_text(status);
    ctx_.result(ev, q);
  }

  Context& ctx_;
  uint64_t started_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Last>(ctx);
}

}  // namespace

extern const ModuleDef kModule_last;
const ModuleDef kModule_last = {
    "last",
    "Last Activity (XEP-0012): server uptime, time since an account was last online",
    {{"last"}},
    {},
    &create};

}  // namespace hearth::modules
