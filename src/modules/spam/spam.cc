// Abuse resistance (issue 6 items 2 and 6), see spam.h for the rules:
//
// - The server-wide block list at the firewall (before blocking, archive,
//   offline storage and delivery). From a listed JID or domain to a local
//   account: chat/normal messages and IQ get/set are refused with
//   <policy-violation/> (the sender learns why; a legitimate sender whose
//   server was listed by mistake can ask), presence and everything else is
//   dropped; nothing is archived or stored offline. From a local session to
//   a listed JID or domain (or from a listed local account to anyone but
//   itself and the server): <not-allowed/>, presence dropped.
// - Per-account budgets, in memory, at kOutbound after the blocking
//   module: presence subscription requests (type 'subscribe') and messages
//   to strangers (a bare JID not in the sender's roster; groupchat and
//   error messages are not counted). Over budget: <policy-violation/> type
//   'wait' with a text, nothing routed. Kept simple: a reply to a stranger
//   who wrote first is a message to a stranger too (the budget is generous
//   for a human). Admins ([server] admins and admin invites) are exempt.
// - New accounts ([spam] new_account_strangers_after): the creation time
//   is recorded on AccountEvent::kCreated; until it is that old, messages to
//   strangers get <policy-violation/> type 'wait' saying from when. Accounts
//   without a record (older than this feature) are not restricted.
// - XEP-0377 reports from the blocking module: stored with the last
//   kReportMessages archived messages with the reported JID (mam's
//   ArchiveService), audited (spam_report) and sent to the admins as a chat
//   message from the server's domain.
//
// block_file and the sandbox: the reactor opens the file at start (before
// its sandbox closes the file system) and keeps the descriptor; a reload
// (SIGHUP) reads that descriptor again from the start. Write a new list
// into the same file (e.g. `cat new.txt > blocklist.txt` or `cp`); a file
// replaced by rename is noticed (logged) but read only at the next start.
#include "modules/spam/spam.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/audit.h"
#include "core/log.h"
#include "modules/module.h"
#include "modules/services.h"
#include "storage/codec.h"

namespace hearth::modules {

namespace spam {

namespace {

constexpr uint8_t kCreatedVersion = 1;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

void put_be64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

bool valid_reason(std::string_view reason) {
  return reason == kReasonSpam || reason == kReasonAbuse;
}

std::string_view reason_name(std::string_view reason) {
  if (reason == kReasonSpam) return "spam";
  if (reason == kReasonAbuse) return "abuse";
  return "unknown";
}

// ---- BlockList ----

Status BlockList::add(std::string_view entry) {
  entry = trim(entry);
  if (entry.empty()) return make_error("empty entry");
  bool wildcard = false;
  if (entry.substr(0, 2) == "*.") {
    wildcard = true;
    entry.remove_prefix(2);
  }
  if (entry.find('*') != std::string_view::npos)
    return make_error("'*' is only allowed as a leading '*.' (subdomains)");
  Result<xmpp::Jid> jid = xmpp::Jid::parse(entry);
  if (!jid.ok()) return make_error("not a JID or a domain: " + jid.error().message);
  if (jid->has_resource()) return make_error("a full JID; write the bare JID or the domain");
  if (jid->has_local()) {
    if (wildcard) return make_error("'*.' goes only before a domain");
    jids_.insert(jid->bare());
    return {};
  }
  const std::string& d = jid->domain();
  if (!own_domain_.empty() &&
      (own_domain_ == d || (own_domain_.size() > d.size() &&
                            own_domain_.compare(own_domain_.size() - d.size(), d.size(), d) == 0 &&
                            own_domain_[own_domain_.size() - d.size() - 1] == '.'))) {
    return make_error("would block this server's own domain " + own_domain_);
  }
  domains_.insert(d);
  return {};
}

void BlockList::add_text(std::string_view text, std::vector<std::string>* warnings) {
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (Status s = add(line); !s.ok() && warnings != nullptr) {
      warnings->push_back("line " + std::to_string(line_no) + ": '" + std::string(line) +
                          "': " + s.error().message);
    }
  }
}

const std::string* BlockList::match(const xmpp::Jid& jid) const {
  if (jid.domain().empty()) return nullptr;
  if (jid.has_local() && !jids_.empty()) {
    auto it = jids_.find(jid.bare());
    if (it != jids_.end()) return &*it;
  }
  if (domains_.empty()) return nullptr;
  // The domain, then each parent ("a.b.c" -> "b.c" -> "c").
  std::string_view d = jid.domain();
  while (!d.empty()) {
    auto it = domains_.find(std::string(d));
    if (it != domains_.end()) return &*it;
    size_t dot = d.find('.');
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return nullptr;
}

// ---- TokenBucket ----

namespace {
// A token is 60 000 units: refilling per_minute tokens per 60 000 ms adds
// exactly per_minute units per millisecond, with nothing to round.
constexpr uint64_t kUnitsPerToken = 60000;
}  // namespace

TokenBucket::TokenBucket(uint32_t per_minute, uint64_t now_ms)
    : units_(static_cast<uint64_t>(per_minute) * kUnitsPerToken), last_ms_(now_ms) {}

uint64_t TokenBucket::refilled(uint32_t per_minute, uint64_t now_ms) const {
  const uint64_t cap = static_cast<uint64_t>(per_minute) * kUnitsPerToken;
  uint64_t elapsed = now_ms > last_ms_ ? now_ms - last_ms_ : 0;
  // A minute refills the whole bucket; capped before multiplying, so no
  // overflow after a long idle time.
  if (elapsed >= 60000) return cap;
  return std::min(units_ + elapsed * per_minute, cap);
}

bool TokenBucket::take(uint32_t per_minute, uint64_t now_ms) {
  if (per_minute == 0) return true;
  units_ = refilled(per_minute, now_ms);
  if (now_ms > last_ms_) last_ms_ = now_ms;
  if (units_ < kUnitsPerToken) return false;
  units_ -= kUnitsPerToken;
  return true;
}

bool TokenBucket::full(uint32_t per_minute, uint64_t now_ms) const {
  return refilled(per_minute, now_ms) >= static_cast<uint64_t>(per_minute) * kUnitsPerToken;
}

uint64_t TokenBucket::wait_ms(uint32_t per_minute, uint64_t now_ms) const {
  if (per_minute == 0) return 0;
  uint64_t have = refilled(per_minute, now_ms);
  if (have >= kUnitsPerToken) return 0;
  return (kUnitsPerToken - have + per_minute - 1) / per_minute;
}

// ---- the new-account restriction ----

std::optional<uint64_t> restricted_until(std::optional<uint64_t> created, uint64_t after,
                                         uint64_t now) {
  if (!created || after == 0) return std::nullopt;
  uint64_t until = *created + after;
  if (until < *created) return std::nullopt;  // overflow: treat as off
  if (now >= until) return std::nullopt;
  return until;
}

std::string encode_created(uint64_t unix_seconds) {
  storage::Writer w;
  w.u8(kCreatedVersion).u64(unix_seconds);
  return w.take();
}

Result<uint64_t> decode_created(std::string_view value) {
  storage::Reader r(value);
  uint8_t version = 0;
  uint64_t t = 0;
  r.u8(&version);
  r.u64(&t);
  if (Status s = r.finish(); !s.ok()) return s.error();
  if (version != kCreatedVersion) return make_error("unknown account record version");
  return t;
}

// ---- reports ----

std::string encode_report(const Report& report) {
  storage::Writer w;
  w.u8(kReportVersion)
      .u64(report.micros)
      .bytes(report.reporter)
      .bytes(report.reported)
      .bytes(report.reason)
      .bytes(report.text)
      .u32(static_cast<uint32_t>(report.stanzas.size()));
  for (const std::string& s : report.stanzas)
    w.bytes(s);
  return w.take();
}

Result<Report> decode_report(std::string_view value) {
  storage::Reader r(value);
  Report out;
  uint8_t version = 0;
  std::string_view reporter, reported, reason, text;
  uint32_t n = 0;
  r.u8(&version);
  r.u64(&out.micros);
  r.bytes(&reporter);
  r.bytes(&reported);
  r.bytes(&reason);
  r.bytes(&text);
  r.u32(&n);
  if (r.failed()) return make_error("truncated report");
  if (version != kReportVersion) return make_error("unknown report version");
  // Each stanza needs at least its 4-byte length: a corrupt count cannot
  // make us reserve much.
  if (n > r.remaining() / 4) return make_error("bad stanza count in report");
  out.stanzas.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view s;
    if (!r.bytes(&s)) break;
    out.stanzas.emplace_back(s);
  }
  if (Status s = r.finish(); !s.ok()) return s.error();
  out.reporter = std::string(reporter);
  out.reported = std::string(reported);
  out.reason = std::string(reason);
  out.text = std::string(text);
  return out;
}

std::string report_prefix(std::string_view reporter_local) {
  return user_key(reporter_local, "r");
}

std::string report_key(std::string_view reporter_local, uint64_t micros) {
  std::string key = report_prefix(reporter_local);
  put_be64(&key, micros);
  return key;
}

std::string format_utc(uint64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[32];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return std::string(buf, n);
}

std::string format_duration(uint64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + " s";
  std::string out;
  uint64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60;
  auto part = [&](uint64_t v, const char* unit) {
    if (v == 0) return;
    if (!out.empty()) out += ' ';
    out += std::to_string(v) + " " + unit;
  };
  part(d, "d");
  part(h, "h");
  part(m, "min");
  if (out.empty()) out = std::to_string(seconds) + " s";
  return out;
}

}  // namespace spam

namespace {

using spam::BlockList;
using spam::TokenBucket;

// blocked_stanza / throttled events: at most this many per minute; the
// number left out goes with the next one.
constexpr uint32_t kAuditPerMinute = 30;
// Admin notifications per reporter (a report is stored even when its
// notification is left out).
constexpr uint32_t kNotificationsPerHour = 10;
// A block_file larger than this is refused (the JabberSPAM list is ~20 kB).
constexpr size_t kMaxBlockFile = 16u << 20;
// Accounts with budgets in memory before the full (idle) ones are dropped.
constexpr size_t kMaxTracked = 4096;

uint64_t now_ms() {
  return core::Loop::now_ms();
}

uint64_t unix_micros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// At most `max` bytes of UTF-8 text, never cutting a character in two.
std::string_view utf8_prefix(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80)
    --n;
  return text.substr(0, n);
}

bool same_account(const xmpp::Jid& a, const xmpp::Jid& b) {
  return a.local() == b.local() && a.domain() == b.domain();
}

// Reads the whole file behind `fd` from its start.
Result<std::string> read_fd(int fd) {
  std::string out;
  char buf[8192];
  off_t pos = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("read: ") + strerror(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    pos += n;
    if (out.size() > kMaxBlockFile) return make_error("larger than 16 MiB");
  }
  return out;
}

class SpamModule : public Module, public SpamReportService {
 public:
  explicit SpamModule(Context& ctx)
      : ctx_(ctx), list_(ctx.domain()), audit_bucket_(kAuditPerMinute, now_ms()) {
    open_block_file(ctx.config().spam.block_file);
    rebuild(ctx.config());
    // Before the blocking module (kPriorityFirewall) and everything else:
    // a server-wide block needs no lookup in the user's list.
    for (Kind kind : {Kind::kMessage, Kind::kPresence, Kind::kIq}) {
      ctx.on_stanza(kind, Phase::kInbound, kPriorityFirewall + 10,
                    [this, kind](StanzaEvent& ev) { return inbound(kind, ev); });
      ctx.on_stanza(kind, Phase::kOutbound, kPriorityFirewall + 10,
                    [this, kind](StanzaEvent& ev) { return outbound_block(kind, ev); });
    }
    // After the user's own blocklist (a stanza it refuses costs no
    // budget), before the archive.
    ctx.on_stanza(Kind::kMessage, Phase::kOutbound, kPriorityFirewall - 10,
                  [this](StanzaEvent& ev) { return outbound_message(ev); });
    ctx.on_stanza(Kind::kPresence, Phase::kOutbound, kPriorityFirewall - 10,
                  [this](StanzaEvent& ev) { return outbound_presence(ev); });
    ctx.on_account(AccountEvent::kCreated, kPriorityDefault,
                   [this](std::string_view user) { account_created(user); });
    ctx.on_account(AccountEvent::kDeleted, kPriorityDefault,
                   [this](std::string_view user) { budgets_.erase(std::string(user)); });
    // XEP-0377 §2: with the blocking command, on the server and the account.
    for (DiscoTarget t : {DiscoTarget::kServer, DiscoTarget::kAccount}) {
      ctx.add_disco_feature(t, std::string(spam::kNsReporting));
      ctx.add_disco_feature(t, std::string(spam::kFeatureReasonSpam));
      ctx.add_disco_feature(t, std::string(spam::kFeatureReasonAbuse));
    }
    ctx.provide<SpamReportService>(this);
  }

  ~SpamModule() override {
    if (file_fd_ >= 0) close(file_fd_);
  }

  void apply_config(const config::Config& config) override {
    if (config.spam.block_file != file_path_) {
      if (file_fd_ >= 0) {
        HEARTH_WARN("spam",
                    "[spam] block_file changed from %s to %s: the sandboxed server cannot open a "
                    "new file; still reading %s until a restart",
                    file_path_.c_str(), config.spam.block_file.c_str(), file_path_.c_str());
      } else if (!config.spam.block_file.empty()) {
        HEARTH_WARN("spam", "[spam] block_file %s is read at the next start",
                    config.spam.block_file.c_str());
      }
    }
    rebuild(config);
  }

  // ---- SpamReportService ----

  void report(const xmpp::Jid& reporter, const xmpp::Jid& reported, std::string_view reason,
              std::string_view text) override {
    spam::Report r;
    r.reporter = reporter.bare();
    r.reported = reported.full();
    r.reason = std::string(reason);
    r.text = std::string(utf8_prefix(text, spam::kMaxReportText));
    r.micros = std::max(unix_micros(), last_report_micros_ + 1);
    last_report_micros_ = r.micros;
    if (const auto* archive = ctx_.find<ArchiveService>())
      r.stanzas = archive->recent(reporter.local(), reported.bare(), spam::kReportMessages);
    Status s = store_report(reporter.local(), r);
    if (!s.ok()) {
      HEARTH_ERROR("spam", "storing the report of %s: %s", r.reporter.c_str(),
                   s.error().message.c_str());
    }
    const std::string n = std::to_string(r.stanzas.size());
    audit::event("spam_report", {{"reporter", r.reporter},
                                 {"reported", r.reported},
                                 {"reason", spam::reason_name(r.reason)},
                                 {"messages", n, true}});
    HEARTH_INFO("spam", "%s reported %s for %.*s (%s messages kept)", r.reporter.c_str(),
                r.reported.c_str(), static_cast<int>(spam::reason_name(r.reason).size()),
                spam::reason_name(r.reason).data(), n.c_str());
    notify_admins(r);
  }

 private:
  // ---- the block list ----

  void open_block_file(const std::string& path) {
    file_path_ = path;
    if (path.empty()) return;
    file_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file_fd_ < 0) {
      HEARTH_ERROR("spam", "[spam] block_file %s: %s; only [spam] block applies", path.c_str(),
                   strerror(errno));
    }
  }

  void rebuild(const config::Config& config) {
    BlockList next(ctx_.domain());
    for (const std::string& e : config.spam.block) {
      if (Status s = next.add(e); !s.ok())
        HEARTH_WARN("spam", "[spam] block entry '%s' ignored: %s", e.c_str(),
                    s.error().message.c_str());
    }
    size_t from_config = next.size();
    if (file_fd_ >= 0) {
      struct stat st;
      if (fstat(file_fd_, &st) == 0 && st.st_nlink == 0) {
        HEARTH_WARN("spam",
                    "[spam] block_file %s was replaced or removed since the start; reading the "
                    "file opened then (write new lists into the same file, or restart)",
                    file_path_.c_str());
      }
      Result<std::string> text = read_fd(file_fd_);
      if (!text.ok()) {
        HEARTH_ERROR("spam", "[spam] block_file %s: %s; keeping the previous list",
                     file_path_.c_str(), text.error().message.c_str());
        return;
      }
      std::vector<std::string> warnings;
      next.add_text(text.value(), &warnings);
      for (const std::string& w : warnings)
        HEARTH_WARN("spam", "%s:%s", file_path_.c_str(), w.c_str());
    }
    list_ = std::move(next);
    HEARTH_INFO("spam", "server-wide block list: %zu entries (%zu from [spam] block)", list_.size(),
                from_config);
  }

  bool is_server(const xmpp::Jid& j) const {
    return !j.has_local() && !j.has_resource() && j.domain() == ctx_.domain();
  }

  void audit_blocked(std::string_view direction, const StanzaEvent& ev, const std::string& entry) {
    if (!audit_bucket_.take(kAuditPerMinute, now_ms())) {
      ++audit_suppressed_;
      return;
    }
    std::string suppressed = std::to_string(audit_suppressed_);
    audit_suppressed_ = 0;
    std::string from = ev.from.full(), to = ev.to.full();
    audit::event("blocked_stanza", {{"direction", direction},
                                    {"stanza", std::string_view(ev.stanza.name)},
                                    {"from", from},
                                    {"to", to},
                                    {"entry", entry},
                                    {"suppressed", suppressed, true}});
  }

  // To a local account from a listed JID/domain (or from anyone to a
  // listed local account, e.g. presence the server sends on a user's
  // behalf).
  HookResult inbound(Kind kind, StanzaEvent& ev) {
    if (list_.empty()) return HookResult::kPass;
    const xmpp::Jid& from = ev.from;
    const xmpp::Jid& to = ev.to;
    if (from.domain().empty() || same_account(from, to) || is_server(from))
      return HookResult::kPass;
    const std::string_view type = ev.stanza.attr("type");
    if (const std::string* entry = list_.match(from)) {
      bool refuse = false;
      if (kind == Kind::kMessage) refuse = type.empty() || type == "chat" || type == "normal";
      if (kind == Kind::kIq) refuse = type == "get" || type == "set";
      HEARTH_DEBUG("spam", "%s from %s to %s: server-wide block (%s)", ev.stanza.name.c_str(),
                   from.full().c_str(), to.full().c_str(), entry->c_str());
      audit_blocked("in", ev, *entry);
      if (refuse) {
        ctx_.bounce(ev.stanza, "cancel", "policy-violation",
                    "This server does not accept stanzas from this address (server-wide block "
                    "list)");
      }
      return HookResult::kHandled;
    }
    if (const std::string* entry = list_.match(to)) {
      HEARTH_DEBUG("spam", "%s from %s to blocked %s dropped", ev.stanza.name.c_str(),
                   from.full().c_str(), to.full().c_str());
      audit_blocked("in", ev, *entry);
      return HookResult::kHandled;
    }
    return HookResult::kPass;
  }

  // From a local session to a listed JID/domain, or from a listed local
  // account to anyone else.
  HookResult outbound_block(Kind kind, StanzaEvent& ev) {
    if (list_.empty() || ev.origin == nullptr) return HookResult::kPass;
    const xmpp::Jid& from = ev.from;
    const xmpp::Jid& to = ev.to;
    if (to.domain().empty() || same_account(from, to) || is_server(to)) return HookResult::kPass;
    const std::string* entry = list_.match(to);
    if (entry == nullptr) entry = list_.match(from);
    if (entry == nullptr) return HookResult::kPass;
    const std::string_view type = ev.stanza.attr("type");
    bool refuse = kind == Kind::kMessage && type != "error";
    if (kind == Kind::kIq) refuse = type == "get" || type == "set";
    HEARTH_DEBUG("spam", "%s from %s to %s refused: server-wide block (%s)", ev.stanza.name.c_str(),
                 from.full().c_str(), to.full().c_str(), entry->c_str());
    audit_blocked("out", ev, *entry);
    if (refuse) {
      ctx_.bounce(ev.stanza, "cancel", "not-allowed",
                  "This server does not exchange stanzas with this address (server-wide block "
                  "list)");
    }
    return HookResult::kHandled;
  }

  // ---- budgets ----

  struct Budgets {
    Budgets(const config::Config& c, uint64_t now)
        : subscriptions(c.limits.subscriptions_per_minute, now),
          strangers(c.limits.stranger_messages_per_minute, now) {}
    TokenBucket subscriptions;
    TokenBucket strangers;
  };

  Budgets& budgets(const std::string& user, uint64_t now) {
    auto it = budgets_.find(user);
    if (it != budgets_.end()) return it->second;
    if (budgets_.size() >= kMaxTracked) {
      // Full buckets carry no information.
      const config::Config& c = ctx_.config();
      for (auto i = budgets_.begin(); i != budgets_.end();) {
        if (i->second.subscriptions.full(c.limits.subscriptions_per_minute, now) &&
            i->second.strangers.full(c.limits.stranger_messages_per_minute, now)) {
          i = budgets_.erase(i);
        } else {
          ++i;
        }
      }
    }
    return budgets_.emplace(user, Budgets(ctx_.config(), now)).first->second;
  }

  bool exempt(const StanzaEvent& ev) const { return exempt_route(ev) || ctx_.is_admin(ev.from); }
  // What exempt() says without asking whether the sender is an admin (a
  // read transaction): enough for a message to a contact, which passes
  // anyway.
  static bool exempt_route(const StanzaEvent& ev) {
    if (ev.origin == nullptr || !ev.from.has_local() || ev.to.domain().empty()) return true;
    return same_account(ev.from, ev.to) || !ev.to.has_local();
  }

  void refuse_throttled(StanzaEvent& ev, std::string_view limit, const std::string& text) {
    HEARTH_DEBUG("spam", "%s from %s to %s refused: %s", ev.stanza.name.c_str(),
                 ev.from.full().c_str(), ev.to.full().c_str(), text.c_str());
    if (audit_bucket_.take(kAuditPerMinute, now_ms())) {
      std::string user = ev.from.bare();
      std::string suppressed = std::to_string(audit_suppressed_);
      audit_suppressed_ = 0;
      audit::event("throttled",
                   {{"user", user}, {"limit", limit}, {"suppressed", suppressed, true}});
    } else {
      ++audit_suppressed_;
    }
    ctx_.bounce(ev.stanza, "wait", "policy-violation", text);
  }

  HookResult outbound_presence(StanzaEvent& ev) {
    if (ev.stanza.attr("type") != "subscribe" || exempt(ev)) return HookResult::kPass;
    const uint32_t per_minute = ctx_.config().limits.subscriptions_per_minute;
    const uint64_t now = now_ms();
    Budgets& b = budgets(ev.from.local(), now);
    if (b.subscriptions.take(per_minute, now)) return HookResult::kPass;
    uint64_t wait = (b.subscriptions.wait_ms(per_minute, now) + 999) / 1000;
    refuse_throttled(ev, "subscriptions_per_minute",
                     "Too many subscription requests: at most " + std::to_string(per_minute) +
                         " per minute; try again in " + spam::format_duration(wait));
    return HookResult::kHandled;
  }

  HookResult outbound_message(StanzaEvent& ev) {
    const std::string_view type = ev.stanza.attr("type");
    if (type == "error" || type == "groupchat" || exempt_route(ev)) return HookResult::kPass;
    const std::string& user = ev.from.local();
    const auto* roster = ctx_.find<RosterService>();
    if (roster != nullptr && roster->has_item(user, ev.to.bare())) return HookResult::kPass;
    if (ctx_.is_admin(ev.from)) return HookResult::kPass;
    // A stranger.
    const config::Config& c = ctx_.config();
    if (c.spam.new_account_strangers_after != 0) {
      const uint64_t now_s = unix_micros() / 1000000;
      if (auto until =
              spam::restricted_until(created(user), c.spam.new_account_strangers_after, now_s)) {
        refuse_throttled(ev, "new_account_strangers_after",
                         "New accounts may message only their contacts for the first " +
                             spam::format_duration(c.spam.new_account_strangers_after) +
                             "; you may message others from " + spam::format_utc(*until) + " (in " +
                             spam::format_duration(*until - now_s) + ")");
        return HookResult::kHandled;
      }
    }
    const uint32_t per_minute = c.limits.stranger_messages_per_minute;
    const uint64_t now = now_ms();
    Budgets& b = budgets(user, now);
    if (b.strangers.take(per_minute, now)) return HookResult::kPass;
    uint64_t wait = (b.strangers.wait_ms(per_minute, now) + 999) / 1000;
    refuse_throttled(ev, "stranger_messages_per_minute",
                     "Too many messages to JIDs that are not in your roster: at most " +
                         std::to_string(per_minute) + " per minute; try again in " +
                         spam::format_duration(wait));
    return HookResult::kHandled;
  }

  // ---- account creation times ----

  void account_created(std::string_view user) {
    const std::string key = user_key(user, spam::kCreatedKey);
    const std::string value = spam::encode_created(unix_micros() / 1000000);
    const storage::Dbi dbi = ctx_.table(spam::kAccountsTable);
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      t.put(dbi, key, value);
      return t.status();
    });
    HEARTH_DEBUG("spam", "account %.*s created: recorded for [spam] new_account_strangers_after",
                 static_cast<int>(user.size()), user.data());
    if (!s.ok()) {
      HEARTH_ERROR("spam", "recording the creation of %.*s: %s", static_cast<int>(user.size()),
                   user.data(), s.error().message.c_str());
    }
  }

  std::optional<uint64_t> created(std::string_view user) const {
    auto txn = ctx_.db().read();
    if (!txn) return std::nullopt;
    auto v = txn->get(ctx_.table(spam::kAccountsTable), user_key(user, spam::kCreatedKey));
    if (!v || !v->has_value()) return std::nullopt;
    Result<uint64_t> t = spam::decode_created(**v);
    if (!t.ok()) return std::nullopt;
    return t.value();
  }

  // ---- reports ----

  Status store_report(std::string_view reporter, const spam::Report& r) {
    const storage::Dbi dbi = ctx_.table(spam::kReportsTable);
    const std::string key = spam::report_key(reporter, r.micros);
    const std::string value = spam::encode_report(r);
    if (key.size() > ctx_.db().max_key_size()) return make_error("key too long");
    return ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      std::vector<std::string> keys;
      Status s =
          t.for_each(dbi, spam::report_prefix(reporter), [&](std::string_view k, std::string_view) {
            keys.emplace_back(k);
            return true;
          });
      if (!s.ok()) return s;
      // Oldest first (keys are in time order): keep the newest ones.
      for (size_t i = 0; i + spam::kMaxReportsPerUser <= keys.size(); ++i)
        t.del(dbi, keys[i]);
      t.put(dbi, key, value);
      return t.status();
    });
  }

  void notify_admins(const spam::Report& r) {
    // kNotificationsPerHour per hour: a per-minute bucket on a clock that
    // runs 60 times slower.
    const uint64_t slow_now = now_ms() / 60;
    auto it = notify_budget_.find(r.reporter);
    if (it == notify_budget_.end()) {
      if (notify_budget_.size() >= kMaxTracked) notify_budget_.clear();
      it = notify_budget_.emplace(r.reporter, TokenBucket(kNotificationsPerHour, slow_now)).first;
    }
    if (!it->second.take(kNotificationsPerHour, slow_now)) {
      HEARTH_INFO("spam", "report by %s stored; admins not notified (too many reports)",
                  r.reporter.c_str());
      return;
    }
    std::string body =
        r.reporter + " reported " + r.reported + " for " + std::string(spam::reason_name(r.reason));
    if (!r.text.empty()) body += ": " + std::string(utf8_prefix(r.text, 1000));
    body += " (" + std::to_string(r.stanzas.size()) + " messages kept)";
    for (const std::string& admin : ctx_.config().admins) {
      Result<xmpp::Jid> jid = xmpp::Jid::parse(admin);
      if (!jid.ok() || jid->domain() != ctx_.domain() || !jid->has_local() ||
          !ctx_.user_exists(jid->local())) {
        continue;
      }
      xml::Arena& a = ctx_.scratch();
      xml::Element* m = a.make_element("message", xml::kNsClient);
      m->set_attr("from", ctx_.domain());
      m->set_attr("to", jid->bare());
      m->set_attr("type", "chat");
      m->set_attr("id", "spam-report-" + std::to_string(++notice_seq_));
      m->add_child("body", xml::kNsClient)->add_text(body);
      ctx_.send(*m);
    }
  }

  Context& ctx_;
  BlockList list_;
  std::string file_path_;
  int file_fd_ = -1;
  std::unordered_map<std::string, Budgets> budgets_;
  std::unordered_map<std::string, TokenBucket> notify_budget_;
  TokenBucket audit_bucket_;
  uint64_t audit_suppressed_ = 0;
  uint64_t last_report_micros_ = 0;
  uint64_t notice_seq_ = 0;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<SpamModule>(ctx);
}

}  // namespace

extern const ModuleDef kModule_spam;
const ModuleDef kModule_spam = {
    "spam",
    "Abuse resistance: server-wide block list, stanza budgets, new-account restriction, XEP-0377 "
    "reports",
    {{"spam_accounts"}, {"spam_reports"}},
    {"roster"},
    &create};

}  // namespace hearth::modules
