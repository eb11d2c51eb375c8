// XMPP Ping (XEP-0199): the server answers pings to itself and, on the
// account's behalf, to the sender's own bare JID.
#include <memory>
#include <string_view>

#include "modules/module.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsPing = "urn:xmpp:ping";

class Ping final : public Module {
 public:
  explicit Ping(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsPing, "get", kIqHost | kIqSelf, [this](IqEvent& ev) {
      if (ev.payload.name != "ping") {
        ctx_.error(ev, "modify", "bad-request");
        return;
      }
      ctx_.result(ev);  // §4: an empty result
    });
  }

 private:
  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Ping>(ctx);
}

}  // namespace

extern const ModuleDef kModule_ping;
const ModuleDef kModule_ping = {"ping", "XMPP Ping (XEP-0199) to the server", {}, {}, &create};

}  // namespace hearth::modules
