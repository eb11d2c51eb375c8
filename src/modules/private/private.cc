// XEP-0049 Private XML Storage: one element per (namespace, name) per
// user, only for the user themself. Stored serialised (table "private",
// key user_key(user, namespace '\0' name)).
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "modules/module.h"
#include "storage/codec.h"
#include "xml/fragment.h"

namespace hearth::modules {

namespace {

constexpr std::string_view kNsPrivate = "jabber:iq:private";
constexpr std::string_view kTable = "private";
constexpr uint8_t kValueVersion = 1;
// Items per account (Prosody has no limit; clients use a handful).
constexpr size_t kMaxItems = 256;

// XEP-0049 §3: namespaces that are not storage. An element without its own
// namespace inherits jabber:iq:private.
bool reserved(std::string_view ns) {
  return ns.empty() || ns == kNsPrivate || ns == xml::kNsClient || ns == "jabber:server" ||
         ns == xml::kNsStream;
}

std::string storage_key(std::string_view user, const xml::Element& e) {
  std::string rest(e.ns);
  rest.push_back('\0');
  rest.append(e.name);
  return user_key(user, rest);
}

class PrivateModule : public Module {
 public:
  explicit PrivateModule(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsPrivate, "get,set", kIqSelf | kIqAccount, [this](IqEvent& ev) { on_iq(ev); });
  }

 private:
  void on_iq(IqEvent& ev) {
    if (ev.payload.name != "query") {
      return ctx_.error(ev, "modify", "bad-request", "expected <query xmlns='jabber:iq:private'/>");
    }
    // XEP-0049 §3: another user's data is forbidden.
    if (ev.target != kIqSelf) return ctx_.error(ev, "auth", "forbidden");
    const xml::Element* child = nullptr;
    int count = 0;
    for (const xml::Node& n : ev.payload.children) {
      if (n.element == nullptr) continue;
      child = n.element;
      ++count;
    }
    // As Prosody: exactly one element per request.
    if (count != 1) {
      return ctx_.error(ev, "modify", "bad-request", "<query/> needs exactly one child element");
    }
    if (reserved(child->ns)) {
      return ctx_.error(ev, "modify", "not-acceptable", "this namespace cannot be stored");
    }
    const std::string key = storage_key(ev.from.local(), *child);
    if (key.size() > ctx_.db().max_key_size()) {
      return ctx_.error(ev, "modify", "not-acceptable", "namespace too long");
    }
    if (ev.is_set()) return set(ev, key, *child);
    get(ev, key, *child);
  }

  void get(IqEvent& ev, const std::string& key, const xml::Element& asked) {
    auto txn = ctx_.db().read();
    if (!txn) return internal(ev, txn.error().message);
    auto v = txn->get(ctx_.table(kTable), key);
    if (!v) return internal(ev, v.error().message);
    xml::Element* query = ev.arena.make_element("query", kNsPrivate);
    xml::Element* data = nullptr;
    if (v->has_value()) {
      storage::Reader r(**v);
      uint8_t version = 0;
      std::string_view xml;
      r.u8(&version);
      r.bytes(&xml);
      if (Status s = r.finish(); !s || version != kValueVersion) {
        return internal(ev, "undecodable stored private XML");
      }
      auto parsed = xml::parse_fragment(xml, ev.arena);
      if (!parsed) return internal(ev, "stored private XML: " + parsed.error().message);
      data = *parsed;
    } else {
      data = ev.arena.make_element(asked.name, asked.ns);  // nothing stored: empty
    }
    xml::Node node;
    node.element = data;
    query->children.push_back(std::move(node));
    ctx_.result(ev, query);
  }

  void set(IqEvent& ev, const std::string& key, const xml::Element& data) {
    std::string xml;
    xml::serialize(data, &xml);
    const uint32_t max = ctx_.config().private_storage.max_size;
    if (xml.size() > max) {
      return ctx_.error(ev, "modify", "not-acceptable",
                        "private XML larger than " + std::to_string(max) + " bytes");
    }
    const bool empty = data.children.empty() && data.attrs.empty();
    bool full = false;
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      const storage::Dbi db = ctx_.table(kTable);
      full = false;
      if (!empty) {
        // Each item is capped in size; their number is capped too, so one
        // account cannot fill a small board's disk with namespaces.
        Result<std::optional<std::string_view>> existing = t.get(db, key);
        if (!existing) return existing.error();
        if (!existing->has_value()) {
          size_t count = 0;
          Status c =
              t.for_each(db, user_key(ev.from.local()),
                         [&](std::string_view, std::string_view) { return ++count < kMaxItems; });
          if (!c) return c;
          if (count >= kMaxItems) {
            full = true;
            return {};
          }
        }
      }
      if (empty) {
        t.del(db, key);  // an empty element reads back the same
      } else {
        storage::Writer w;
        w.u8(kValueVersion).bytes(xml);
        t.put(db, key, w.view());
      }
      return t.status();
    });
    if (!s) return internal(ev, s.error().message);
    if (full) {
      return ctx_.error(ev, "wait", "resource-constraint",
                        "at most " + std::to_string(kMaxItems) + " private XML items per account");
    }
    ctx_.result(ev);
  }

  void internal(IqEvent& ev, const std::string& why) {
    HEARTH_ERROR("private", "%s", why.c_str());
    ctx_.error(ev, "wait", "internal-server-error");
  }

  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<PrivateModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_private;
const ModuleDef kModule_private = {
    "private", "XEP-0049 private XML storage", {{"private"}}, {}, &create};

}  // namespace hearth::modules
