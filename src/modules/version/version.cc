// Software Version (XEP-0092): the name always; the version and the
// operating system only with [server] expose_version = true (§5: they help
// an attacker pick an exploit).
#include <memory>
#include <string_view>

#include "modules/module.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsVersion = "jabber:iq:version";

// uname()'s sysname, fixed at build time: the sandboxed reactor may not
// call uname(2), and a kernel release or host name would say too much.
constexpr std::string_view kOs =
#if defined(__linux__)
    "Linux";
#elif defined(__FreeBSD__)
    "FreeBSD";
#elif defined(__OpenBSD__)
    "OpenBSD";
#elif defined(__NetBSD__)
    "NetBSD";
#elif defined(__APPLE__)
    "Darwin";
#else
    "";
#endif

class Version final : public Module {
 public:
  explicit Version(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsVersion, "get", kIqHost, [this](IqEvent& ev) {
      if (ev.payload.name != "query") {
        ctx_.error(ev, "modify", "bad-request");
        return;
      }
      xml::Element* q = ev.arena.make_element("query", kNsVersion);
      q->add_child("name", kNsVersion)->add_text("Hearth");
      if (ctx_.config().expose_version) {
        q->add_child("version", kNsVersion)->add_text(HEARTH_VERSION);
        if (!kOs.empty()) q->add_child("os", kNsVersion)->add_text(kOs);
      }
      ctx_.result(ev, q);
    });
  }

 private:
  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Version>(ctx);
}

}  // namespace

extern const ModuleDef kModule_version;
const ModuleDef kModule_version = {
    "version",
    "Software Version (XEP-0092): name; version and OS with expose_version",
    {},
    {},
    &create};

}  // namespace hearth::modules
