// Entity Time (XEP-0202): the server's clock in UTC.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>

#include "modules/module.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsTime = "urn:xmpp:time";

// XEP-0082 DateTime in UTC with milliseconds, e.g. 2026-11-21T22:20:12.345Z.
std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(ms % 1000));
  return buf;
}

class Time final : public Module {
 public:
  explicit Time(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsTime, "get", kIqHost, [this](IqEvent& ev) {
      if (ev.payload.name != "time") {
        ctx_.error(ev, "modify", "bad-request");
        return;
      }
      xml::Element* t = ev.arena.make_element("time", kNsTime);
      // The server keeps UTC (the sandbox reads no zone files); so does
      // Prosody.
      t->add_child("tzo", kNsTime)->add_text("+00:00");
      t->add_child("utc", kNsTime)->add_text(utc_now());
      ctx_.result(ev, t);
    });
  }

 private:
  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Time>(ctx);
}

}  // namespace

extern const ModuleDef kModule_time;
const ModuleDef kModule_time = {"time", "Entity Time (XEP-0202) of the server", {}, {}, &create};

}  // namespace hearth::modules
