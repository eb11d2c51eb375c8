#include "modules/offline/offline.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <utility>

#include "core/log.h"
#include "modules/module.h"
#include "storage/codec.h"

namespace hearth::modules {
namespace offline {
namespace {

constexpr char kMetaTag = 'c';
constexpr char kMessageTag = 'm';

// The meta record rebuilt from the message records (missing or unreadable).
Result<Meta> scan_meta(storage::Txn& txn, storage::Dbi dbi, std::string_view user) {
  Meta meta;
  const std::string prefix = message_prefix(user);
  Status s = txn.for_each(dbi, prefix, [&](std::string_view key, std::string_view value) {
    ++meta.count;
    Result<StoredMessage> m = decode_message(value);
    meta.bytes += m ? m->xml.size() : value.size();
    if (key.size() == prefix.size() + 8) {
      std::optional<uint64_t> seq = storage::decode_u64(key.substr(prefix.size()));
      if (seq && *seq >= meta.next_seq) meta.next_seq = *seq + 1;
    }
    return true;
  });
  if (!s) return s.error();
  return meta;
}

Result<Meta> load_meta(storage::Txn& txn, storage::Dbi dbi, std::string_view user) {
  auto value = txn.get(dbi, meta_key(user));
  if (!value) return value.error();
  if (value->has_value()) {
    Result<Meta> meta = decode_meta(**value);
    if (meta) return meta;
    HEARTH_WARN("offline", "unreadable meta record of %.*s (%s): rebuilt",
                static_cast<int>(user.size()), user.data(), meta.error().message.c_str());
  }
  return scan_meta(txn, dbi, user);
}

}  // namespace

std::string meta_key(std::string_view user) {
  return user_key(user, std::string_view(&kMetaTag, 1));
}

std::string message_prefix(std::string_view user) {
  return user_key(user, std::string_view(&kMessageTag, 1));
}

std::string message_key(std::string_view user, uint64_t seq) {
  std::string key = message_prefix(user);
  storage::append_u64(key, seq);
  return key;
}

std::string encode_meta(const Meta& meta) {
  return storage::Writer()
      .u8(kMetaVersion)
      .u64(meta.next_seq)
      .u32(meta.count)
      .u64(meta.bytes)
      .take();
}

Result<Meta> decode_meta(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0;
  Meta meta;
  r.u8(&version);
  r.u64(&meta.next_seq);
  r.u32(&meta.count);
  r.u64(&meta.bytes);
  if (Status s = r.finish(); !s) return s.error();
  if (version != kMetaVersion) return make_error("unknown offline meta version");
  return meta;
}

std::string encode_message(uint64_t stamp, std::string_view xml) {
  return storage::Writer().u8(kMessageVersion).u64(stamp).bytes(xml).take();
}

Result<StoredMessage> decode_message(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0;
  StoredMessage m;
  r.u8(&version);
  r.u64(&m.stamp);
  r.bytes(&m.xml);
  if (Status s = r.finish(); !s) return s.error();
  if (version != kMessageVersion) return make_error("unknown offline message version");
  return m;
}

std::string format_stamp(int64_t unix_seconds) {
  // time_t may be 32 bits (older 32-bit ARM libcs); clamp rather than wrap.
  time_t t = static_cast<time_t>(unix_seconds);
  if (static_cast<int64_t>(t) != unix_seconds) t = 0;
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

Verdict classify(const xml::Element& message) {
  std::string_view type = message.attr("type");
  // XEP-0160 §3: headline, groupchat and error are not stored.
  if (!(type.empty() || type == "normal" || type == "chat")) return Verdict::kPass;
  bool content = false, store_hint = false, no_store_hint = false;
  for (const xml::Node& n : message.children) {
    if (n.element == nullptr) continue;  // whitespace between children
    const xml::Element& c = *n.element;
    if (c.ns == kNsHints) {
      if (c.name == "no-store") no_store_hint = true;
      if (c.name == "store") store_hint = true;
      continue;
    }
    // XEP-0085 §5.5: standalone chat states are not stored; a <thread/> alone
    // carries nothing either.
    if (c.ns == kNsChatStates) continue;
    if (c.name == "thread" && c.ns == xml::kNsClient) continue;
    content = true;
  }
  // XEP-0334 §4: <no-store/> forbids temporary storage too.
  if (no_store_hint) return Verdict::kPass;
  if (store_hint || content) return Verdict::kStore;
  return Verdict::kDrop;
}

std::string serialize_with_delay(xml::Element& message, std::string_view domain,
                                 int64_t unix_seconds) {
  // XEP-0203 §3 / XEP-0160 §2: the server says when it stored the message.
  xml::Element* delay = message.add_child("delay", kNsDelay);
  delay->set_attr("from", domain);
  delay->set_attr("stamp", format_stamp(unix_seconds));
  std::string out;
  xml::serialize(message, &out);
  message.children.pop_back();
  return out;
}

Result<StoreOutcome> store(storage::Env& env, storage::Dbi dbi, std::string_view user,
                           std::string_view xml, uint64_t stamp, uint32_t max_messages,
                           uint64_t max_bytes) {
  StoreOutcome outcome = StoreOutcome::kStored;
  Status s = env.write([&](storage::WriteTxn& txn) -> Status {
    Result<Meta> meta = load_meta(txn, dbi, user);
    if (!meta) return meta.error();
    if (meta->count >= max_messages || xml.size() > max_bytes ||
        meta->bytes > max_bytes - xml.size()) {
      outcome = StoreOutcome::kFull;
      return {};
    }
    outcome = StoreOutcome::kStored;
    txn.put(dbi, message_key(user, meta->next_seq), encode_message(stamp, xml));
    ++meta->next_seq;
    ++meta->count;
    meta->bytes += xml.size();
    txn.put(dbi, meta_key(user), encode_meta(*meta));
    return {};
  });
  if (!s) return s.error();
  return outcome;
}

Result<std::vector<std::string>> take_all(storage::Env& env, storage::Dbi dbi,
                                          std::string_view user) {
  const std::string prefix = message_prefix(user);
  // Most logins find nothing: look in a read transaction first so that they
  // do not take LMDB's writer lock.
  {
    auto rtxn = env.read();
    if (!rtxn) return rtxn.error();
    bool any = false;
    Status s = rtxn->for_each(dbi, user_key(user), [&](std::string_view, std::string_view) {
      any = true;
      return false;
    });
    if (!s) return s.error();
    if (!any) return std::vector<std::string>{};
  }

  std::vector<std::string> out;
  Status s = env.write([&](storage::WriteTxn& txn) -> Status {
    out.clear();  // `fn` may run twice (map growth)
    std::vector<std::string> keys;
    Status walk = txn.for_each(dbi, prefix, [&](std::string_view key, std::string_view value) {
      keys.emplace_back(key);
      Result<StoredMessage> m = decode_message(value);
      if (m) {
        out.emplace_back(m->xml);
      } else {
        HEARTH_WARN("offline", "dropping an unreadable stored message of %.*s (%s)",
                    static_cast<int>(user.size()), user.data(), m.error().message.c_str());
      }
      return true;
    });
    if (!walk) return walk;
    for (const std::string& key : keys)
      txn.del(dbi, key);
    txn.del(dbi, meta_key(user));
    return {};
  });
  if (!s) return s.error();
  return out;
}

Result<uint32_t> count(storage::Env& env, storage::Dbi dbi, std::string_view user) {
  auto txn = env.read();
  if (!txn) return txn.error();
  Result<Meta> meta = load_meta(*txn, dbi, user);
  if (!meta) return meta.error();
  return meta->count;
}

namespace {

class OfflineModule : public Module {
 public:
  explicit OfflineModule(Context& ctx) : ctx_(ctx) {
    // Late: storing is the last resort after any other kOffline handler.
    ctx.on_stanza(Kind::kMessage, Phase::kOffline, kPriorityLate,
                  [this](StanzaEvent& ev) { return on_offline(ev); });
    ctx.on_session(SessionEvent::kAvailable, kPriorityDefault,
                   [this](xmpp::Session& session) { on_available(session); });
    ctx.add_disco_feature(DiscoTarget::kServer, "msgoffline");  // XEP-0160 §4
  }

 private:
  HookResult on_offline(StanzaEvent& ev) {
    const uint32_t max = ctx_.config().offline.max_messages;
    const std::string& user = ev.to.local();
    if (max == 0 || user.empty()) return HookResult::kPass;
    switch (classify(ev.stanza)) {
      case Verdict::kPass:
        return HookResult::kPass;
      case Verdict::kDrop:
        return HookResult::kHandled;
      case Verdict::kStore:
        break;
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const std::string xml = serialize_with_delay(ev.stanza, ctx_.domain(), now);
    Result<StoreOutcome> r =
        store(ctx_.db(), ctx_.table(kTable), user, xml, static_cast<uint64_t>(now), max);
    if (!r) {
      // Not stored: the core answers service-unavailable, so the sender knows.
      HEARTH_WARN("offline", "storing a message for %s failed: %s", user.c_str(),
                  r.error().message.c_str());
      return HookResult::kPass;
    }
    if (*r == StoreOutcome::kFull) {
      HEARTH_DEBUG("offline", "offline storage of %s is full (%" PRIu32 ")", user.c_str(), max);
      ctx_.bounce(ev.stanza, "wait", "resource-constraint", "offline storage is full");
    }
    return HookResult::kHandled;
  }

  void on_available(xmpp::Session& session) {
    // XEP-0160 §2: delivered to the first resource with non-negative priority.
    if (!session.available() || session.priority() < 0) return;
    const std::string& user = session.jid().local();
    Result<std::vector<std::string>> messages = take_all(ctx_.db(), ctx_.table(kTable), user);
    if (!messages) {
      HEARTH_WARN("offline", "reading the offline messages of %s failed: %s", user.c_str(),
                  messages.error().message.c_str());
      return;
    }
    if (messages->empty()) return;
    HEARTH_DEBUG("offline", "delivering %zu offline messages to %s", messages->size(),
                 session.jid().full().c_str());
    for (const std::string& xml : *messages)
      session.deliver_raw(xml);
  }

  Context& ctx_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<OfflineModule>(ctx);
}

}  // namespace
}  // namespace offline

extern const ModuleDef kModule_offline;
const ModuleDef kModule_offline = {
    "offline",
    "Stores messages for offline accounts and delivers them at login (XEP-0160)",
    {{"offline"}},
    {},
    &offline::create};

}  // namespace hearth::modules
