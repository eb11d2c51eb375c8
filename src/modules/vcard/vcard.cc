// XEP-0054 vcard-temp: a user sets their own vCard, anyone on the server
// may read it. Stored serialised (table "vcard", key user_key(user)) and
// parsed back into the reply with xml::parse_fragment.
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "modules/module.h"
#include "storage/codec.h"
#include "xml/fragment.h"

namespace hearth::modules {

namespace {

constexpr std::string_view kNsVcard = "vcard-temp";
constexpr std::string_view kTable = "vcard";
constexpr uint8_t kValueVersion = 1;

class VcardModule : public Module {
 public:
  explicit VcardModule(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsVcard, "get,set", kIqSelf | kIqAccount | kIqHost,
              [this](IqEvent& ev) { on_iq(ev); });
  }

 private:
  void on_iq(IqEvent& ev) {
    if (ev.payload.name != "vCard") {
      return ctx_.error(ev, "modify", "bad-request", "expected <vCard xmlns='vcard-temp'/>");
    }
    if (ev.is_set()) {
      // Only one's own vCard can be changed (nobody edits the server's).
      if (ev.target != kIqSelf) return ctx_.error(ev, "auth", "forbidden");
      return set(ev);
    }
    if (ev.target == kIqHost) {
      // The server has no vCard; as Prosody, item-not-found (XEP-0054 §3.1).
      return ctx_.error(ev, "cancel", "item-not-found");
    }
    const std::string& user = ev.target == kIqSelf ? ev.from.local() : ev.to.local();
    get(ev, user);
  }

  void get(IqEvent& ev, const std::string& user) {
    auto txn = ctx_.db().read();
    if (!txn) return internal(ev, txn.error().message);
    auto v = txn->get(ctx_.table(kTable), user_key(user));
    if (!v) return internal(ev, v.error().message);
    if (!v->has_value()) {
      // XEP-0054 §3.1 allows an empty vCard or item-not-found; empty it is.
      return ctx_.result(ev, ev.arena.make_element("vCard", kNsVcard));
    }
    storage::Reader r(**v);
    uint8_t version = 0;
    std::string_view xml;
    r.u8(&version);
    r.bytes(&xml);
    if (Status s = r.finish(); !s || version != kValueVersion) {
      return internal(ev, "undecodable stored vCard of " + user);
    }
    auto card = xml::parse_fragment(xml, ev.arena);
    if (!card) return internal(ev, "stored vCard of " + user + ": " + card.error().message);
    ctx_.result(ev, *card);
  }

  void set(IqEvent& ev) {
    const std::string& user = ev.from.local();
    std::string xml;
    xml::serialize(ev.payload, &xml);
    const uint32_t max = ctx_.config().vcard.max_size;
    if (xml.size() > max) {
      return ctx_.error(ev, "modify", "not-acceptable",
                        "the vCard is larger than " + std::to_string(max) + " bytes");
    }
    const bool empty = ev.payload.children.empty();
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      const storage::Dbi db = ctx_.table(kTable);
      if (empty) {
        t.del(db, user_key(user));  // an empty vCard reads back the same
      } else {
        storage::Writer w;
        w.u8(kValueVersion).bytes(xml);
        t.put(db, user_key(user), w.view());
      }
      return t.status();
    });
    if (!s) return internal(ev, s.error().message);
    ctx_.result(ev);
  }

  void internal(IqEvent& ev, const std::string& why) {
    HEARTH_ERROR("vcard", "%s", why.c_str());
    ctx_.error(ev, "wait", "internal-server-error");
  }

  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<VcardModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_vcard;
const ModuleDef kModule_vcard = {"vcard", "XEP-0054 vcard-temp", {{"vcard"}}, {}, &create};

}  // namespace hearth::modules
