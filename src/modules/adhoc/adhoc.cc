// XEP-0050 ad-hoc commands on the server's JID (see adhoc.h).
#include "modules/adhoc/adhoc.h"

#include <sodium.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/loop.h"
#include "modules/module.h"

namespace hearth::modules {

std::string_view FormValues::get(std::string_view var, std::string_view fallback) const {
  auto it = fields.find(var);
  if (it == fields.end() || it->second.empty()) return fallback;
  return it->second.front();
}

bool parse_form(const xml::Element& x, FormValues* out) {
  if (x.name != "x" || x.ns != kNsDataForms) return false;
  std::string_view type = x.attr("type");
  if (type != "submit" && type != "form" && type != "result") return false;
  out->fields.clear();
  for (const xml::Node& n : x.children) {
    const xml::Element* f = n.element;
    if (f == nullptr || f->name != "field" || f->ns != kNsDataForms) continue;
    std::string_view var = f->attr("var");
    if (var.empty()) return false;  // XEP-0004 §3.2: a submitted field has a var
    std::vector<std::string>& values = out->fields[std::string(var)];
    for (const xml::Node& v : f->children)
      if (v.element != nullptr && v.element->name == "value" && v.element->ns == kNsDataForms)
        values.push_back(v.element->text());
  }
  return true;
}

bool form_bool(std::string_view value, bool* out) {
  if (value == "1" || value == "true") {
    *out = true;
    return true;
  }
  if (value == "0" || value == "false") {
    *out = false;
    return true;
  }
  return false;
}

xml::Element* make_form(xml::Arena& arena, std::string_view type, std::string_view title,
                        std::string_view instructions) {
  xml::Element* x = arena.make_element("x", kNsDataForms);
  x->set_attr("type", type);
  if (!title.empty()) x->add_child("title", kNsDataForms)->add_text(title);
  if (!instructions.empty()) x->add_child("instructions", kNsDataForms)->add_text(instructions);
  return x;
}

xml::Element* add_field(xml::Element& form, std::string_view var, std::string_view type,
                        std::string_view label, std::string_view value, bool required) {
  xml::Element* f = form.add_child("field", kNsDataForms);
  f->set_attr("var", var);
  if (!type.empty()) f->set_attr("type", type);
  if (!label.empty()) f->set_attr("label", label);
  if (required) f->add_child("required", kNsDataForms);
  if (!value.empty()) f->add_child("value", kNsDataForms)->add_text(value);
  return f;
}

namespace {

constexpr uint64_t kSessionTimeoutMs = 10 * 60 * 1000;
constexpr size_t kMaxSessions = 256;
constexpr size_t kMaxSessionsPerRequester = 8;

class Adhoc final : public Module, public AdhocService {
 public:
  explicit Adhoc(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsCommands, "set", kIqHost, [this](IqEvent& ev) { on_command(ev); });
    ctx.add_disco_items(DiscoTarget::kServer,
                        [this](const xmpp::Jid& requester, const xmpp::Jid&, std::string_view node,
                               xml::Element& query) { return items(requester, node, query); });
    ctx.add_disco_node_info(
        DiscoTarget::kServer,
        [this](const xmpp::Jid& requester, const xmpp::Jid&, std::string_view node,
               xml::Element& query) { return node_info(requester, node, query); });
    ctx.provide<AdhocService>(this);
  }

  void add_command(AdhocCommand command) override {
    for (AdhocCommand& c : commands_) {
      if (c.node == command.node) {
        c = std::move(command);
        return;
      }
    }
    commands_.push_back(std::move(command));
  }

 private:
  struct Session {
    std::string node;
    std::string requester;  // full JID
    uint64_t started_ms = 0;
  };

  const AdhocCommand* find(std::string_view node) const {
    for (const AdhocCommand& c : commands_)
      if (c.node == node) return &c;
    return nullptr;
  }

  bool may_run(const AdhocCommand& c, const xmpp::Jid& requester) const {
    if (requester.domain() != ctx_.domain() || !requester.has_local()) return false;
    return !c.admin_only || ctx_.is_admin(requester);
  }

  bool items(const xmpp::Jid& requester, std::string_view node, xml::Element& query) {
    if (node != kNsCommands) return false;
    for (const AdhocCommand& c : commands_) {
      if (!may_run(c, requester)) continue;
      xml::Element* item = query.add_child("item", query.ns);
      item->set_attr("jid", ctx_.domain());
      item->set_attr("node", c.node);
      item->set_attr("name", c.name);
    }
    return true;
  }

  // XEP-0050 §2.3: disco#info of a command node.
  bool node_info(const xmpp::Jid& requester, std::string_view node, xml::Element& query) {
    const AdhocCommand* c = find(node);
    if (c == nullptr || !may_run(*c, requester)) return false;
    xml::Element* id = query.add_child("identity", query.ns);
    id->set_attr("category", "automation");
    id->set_attr("type", "command-node");
    id->set_attr("name", c->name);
    query.add_child("feature", query.ns)->set_attr("var", kNsCommands);
    query.add_child("feature", query.ns)->set_attr("var", kNsDataForms);
    return true;
  }

  void prune(uint64_t now) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (now - it->second.started_ms > kSessionTimeoutMs) {
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }

  static std::string new_session_id() {
    unsigned char raw[12];
    randombytes_buf(raw, sizeof raw);
    char hex[sizeof raw * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    return hex;
  }

  // XEP-0050 §4.6: an error with a commands-specific condition.
  void fail(IqEvent& ev, std::string_view type, std::string_view condition,
            std::string_view specific) {
    xml::Element* app = ev.arena.make_element(specific, kNsCommands);
    ctx_.error(ev, type, condition, {}, app);
  }

  xml::Element* reply(IqEvent& ev, std::string_view node, std::string_view sessionid,
                      std::string_view status) {
    xml::Element* cmd = ev.arena.make_element("command", kNsCommands);
    cmd->set_attr("node", node);
    cmd->set_attr("sessionid", sessionid);
    cmd->set_attr("status", status);
    return cmd;
  }

  void on_command(IqEvent& ev) {
    std::string_view node = ev.payload.attr("node");
    if (ev.payload.name != "command" || node.empty()) {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    const AdhocCommand* command = find(node);
    if (command == nullptr) {
      ctx_.error(ev, "cancel", "item-not-found");
      return;
    }
    if (!may_run(*command, ev.from)) {
      ctx_.error(ev, "cancel", "forbidden");
      return;
    }
    std::string_view action = ev.payload.has_attr("action") ? ev.payload.attr("action") : "execute";
    std::string_view sessionid = ev.payload.attr("sessionid");
    uint64_t now = core::Loop::now_ms();
    prune(now);
    std::string requester = ev.from.full();
    if (!sessionid.empty()) {
      auto it = sessions_.find(std::string(sessionid));
      if (it == sessions_.end() || it->second.node != node || it->second.requester != requester) {
        fail(ev, "modify", "bad-request", "bad-sessionid");
        return;
      }
    }
    if (action == "cancel") {
      if (sessionid.empty()) {
        fail(ev, "modify", "bad-request", "bad-sessionid");
        return;
      }
      sessions_.erase(std::string(sessionid));
      ctx_.result(ev, reply(ev, node, sessionid, "canceled"));
      return;
    }
    if (action != "execute" && action != "complete") {
      // Single-stage commands: no prev/next.
      fail(ev, "modify", "bad-request", "bad-action");
      return;
    }
    const xml::Element* x = ev.payload.child("x", kNsDataForms);
    if (x == nullptr && command->form && action == "execute") {
      // Show the form and keep a session for the answer.
      if (sessionid.empty()) {
        size_t mine = 0;
        for (const auto& [id, s] : sessions_)
          if (s.requester == requester) ++mine;
        if (sessions_.size() >= kMaxSessions || mine >= kMaxSessionsPerRequester) {
          ctx_.error(ev, "wait", "resource-constraint", "too many open command sessions");
          return;
        }
        std::string id = new_session_id();
        sessions_[id] = Session{std::string(node), requester, now};
        sessionid = sessions_.find(id)->first;
      }
      xml::Element* cmd = reply(ev, node, sessionid, "executing");
      xml::Element* actions = cmd->add_child("actions", kNsCommands);
      actions->set_attr("execute", "complete");
      actions->add_child("complete", kNsCommands);
      xml::Element* form = command->form(ev.arena, ev.from);
      if (form != nullptr)
        cmd->children.push_back(xml::Node{form, std::pmr::string(cmd->resource())});
      ctx_.result(ev, cmd);
      return;
    }
    FormValues values;
    if (x != nullptr) {
      if (x->attr("type") == "cancel") {
        if (!sessionid.empty()) sessions_.erase(std::string(sessionid));
        ctx_.result(ev, reply(ev, node, sessionid, "canceled"));
        return;
      }
      if (!parse_form(*x, &values)) {
        fail(ev, "modify", "bad-request", "bad-payload");
        return;
      }
    } else if (command->form) {
      // complete without the form filled in
      fail(ev, "modify", "bad-request", "bad-payload");
      return;
    }
    std::string id = sessionid.empty() ? new_session_id() : std::string(sessionid);
    sessions_.erase(id);
    AdhocOutcome out = command->run(ev.from, values, ev.arena);
    if (!out.error_condition.empty()) {
      ctx_.error(ev, out.error_type, out.error_condition, out.text);
      return;
    }
    xml::Element* cmd = reply(ev, node, id, "completed");
    if (!out.text.empty()) {
      xml::Element* note = cmd->add_child("note", kNsCommands);
      note->set_attr("type", "info");
      note->add_text(out.text);
    }
    if (out.result_form != nullptr)
      cmd->children.push_back(xml::Node{out.result_form, std::pmr::string(cmd->resource())});
    ctx_.result(ev, cmd);
  }

  Context& ctx_;
  std::vector<AdhocCommand> commands_;
  std::unordered_map<std::string, Session> sessions_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Adhoc>(ctx);
}

}  // namespace

extern const ModuleDef kModule_adhoc;
const ModuleDef kModule_adhoc = {
    "adhoc", "ad-hoc commands (XEP-0050) on the server's JID", {}, {}, &create};

}  // namespace hearth::modules
