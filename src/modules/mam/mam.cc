// The mam module: archives one-to-one messages in both directions
// (kOutbound: the sender's archive; kInbound: the recipient's, stamping
// XEP-0359 <stanza-id/>), answers XEP-0313 queries, metadata and
// preferences for the account itself, and expires old rows
// ([archive] expires_after) on a timer. Storage and rules: archive.h.
//
// Queries: a data form (with, start, end, before-id, after-id, ids) and
// XEP-0059 RSM (max: default 50, capped at 250; after; before, empty =
// the last page; no index). Results go straight to the requesting session
// in chronological order (<flip-page/> reverses the page), then the IQ
// result <fin/> with <first/>/<last/>; <count/> only for <max>0</max>
// (counting costs a walk over the whole range, and clients ignore it).
// An id that does not decode or is not in the archive: item-not-found;
// an unknown field or a bad date or JID: bad-request. Another account's
// archive: no handler, so service-unavailable (as Prosody).
//
// Retention: the first sweep runs a few seconds after start, then every
// expires_after / 4 (at least 1 s, at most 1 h); each transaction deletes
// at most kSweepBudget rows and the rest follows 50 ms later.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/log.h"
#include "modules/mam/archive.h"
#include "modules/module.h"
#include "modules/services.h"
#include "xml/fragment.h"

namespace hearth::modules {
namespace mam {
namespace {

constexpr size_t kSweepBudget = 2000;
constexpr uint64_t kSweepContinueMs = 50;
constexpr uint64_t kFirstSweepMs = 3000;
constexpr size_t kMaxQueryIdSize = 256;

uint64_t now_micros() {
  auto d = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us > 0 ? static_cast<uint64_t>(us) : 0;
}

// How often the retention sweep runs for a given expiry.
uint64_t sweep_interval_ms(uint64_t expires_after) {
  uint64_t ms = expires_after * 1000 / 4;
  return std::clamp<uint64_t>(ms, 1000, 3600 * 1000);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<uint32_t> parse_uint(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 9) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

// A refusal while parsing a request.
struct Refusal {
  const char* type;
  const char* condition;
  std::string text;
};

class MamModule : public Module, public ArchiveService {
 public:
  explicit MamModule(Context& ctx) : ctx_(ctx) {
    // After blocking (firewall), before carbons and delivery: every copy of
    // an inbound message carries the stanza-id, and carbons knows the
    // sender's id.
    ctx.on_stanza(Kind::kMessage, Phase::kOutbound, kPriorityArchive,
                  [this](StanzaEvent& ev) { return on_outbound(ev); });
    ctx.on_stanza(Kind::kMessage, Phase::kInbound, kPriorityArchive,
                  [this](StanzaEvent& ev) { return on_inbound(ev); });
    // Own archive only (kIqSelf): urn:xmpp:mam:2 is advertised on the account.
    ctx.on_iq(kNsMam, "get,set", kIqSelf, [this](IqEvent& ev) { on_iq(ev); });
    ctx.add_disco_feature(DiscoTarget::kAccount, std::string(kNsMamExtended));
    ctx.add_disco_feature(DiscoTarget::kAccount, std::string(kNsSid));
    ctx.provide<ArchiveService>(this);
    // ARCHITECTURE.md §4: the rows of one loop turn are committed together,
    // before the turn's output (which carries their stanza-ids) is sent.
    ctx.on_turn_end([this] { flush(); });
    ctx.on_account(AccountEvent::kDeleted, kPriorityDefault, [this](std::string_view user) {
      // Rows not yet written must not bring the account's keys back.
      std::erase_if(pending_, [&](const PendingRow& p) { return p.user == user; });
    });
    expires_after_ = ctx.config().archive.expires_after;
    if (expires_after_ != 0) schedule(std::min(kFirstSweepMs, sweep_interval_ms(expires_after_)));
  }

  ~MamModule() override {
    if (timer_ != 0) ctx_.loop().cancel_timer(timer_);
  }

  // ArchiveService (spam reports, XEP-0377): the newest `max` rows with
  // `with` from the per-contact index, oldest first; unreadable rows and
  // read errors give fewer (or none).
  std::vector<std::string> recent(std::string_view user, std::string_view with,
                                  size_t max) const override {
    const_cast<MamModule*>(this)->flush();
    std::vector<std::string> out;
    if (max == 0 || with.empty()) return out;
    auto txn = ctx_.db().read();
    if (!txn) {
      HEARTH_ERROR("mam", "read transaction: %s", txn.error().message.c_str());
      return out;
    }
    Query q;
    q.user = std::string(user);
    q.with_bare = std::string(with);
    q.backward = true;  // the last page of the range
    q.max = static_cast<uint32_t>(std::min<size_t>(max, kMaxPage));
    Result<Page> page = query(*txn, ctx_.table(kTable), q);
    if (!page) {
      HEARTH_ERROR("mam", "reading the archive of %.*s: %s", static_cast<int>(user.size()),
                   user.data(), page.error().message.c_str());
      return out;
    }
    out.reserve(page->items.size());
    for (Item& item : page->items)
      out.push_back(std::move(item.xml));
    return out;
  }

  void apply_config(const config::Config& config) override {
    if (config.archive.expires_after == expires_after_) return;
    expires_after_ = config.archive.expires_after;
    if (timer_ != 0) ctx_.loop().cancel_timer(timer_);
    timer_ = 0;
    sweep_resume_.clear();
    if (expires_after_ != 0) schedule(std::min(kFirstSweepMs, sweep_interval_ms(expires_after_)));
  }

 private:
  // ---- archiving ----

  // XEP-0359 §3.1: a <stanza-id/> by= the account can only come from its
  // archive; one that arrives from elsewhere (or from the client itself) is
  // a forgery.
  static void strip_stanza_ids(xml::Element& stanza, std::string_view by) {
    auto& kids = stanza.children;
    kids.erase(std::remove_if(kids.begin(), kids.end(),
                              [&](const xml::Node& n) {
                                return n.element != nullptr && n.element->name == "stanza-id" &&
                                       n.element->ns == kNsSid && n.element->attr("by") == by;
                              }),
               kids.end());
  }

  HookResult on_outbound(StanzaEvent& ev) {
    // Neither kept in the sender's archive nor copied to its other
    // resources (carbons adds the real one).
    strip_stanza_ids(ev.stanza, ev.from.bare());
    if (!eligible(ev.stanza)) return HookResult::kPass;
    const xmpp::Jid& to = ev.to;
    // To oneself (or no 'to'): the inbound hook archives it once.
    if (!to.has_local() && to.domain().empty()) return HookResult::kPass;
    if (to.local() == ev.from.local() && to.domain() == ev.from.domain()) return HookResult::kPass;
    // To the server itself, or to a local account that does not exist
    // (bounced): nothing was said to anybody.
    if (to.domain() == ctx_.domain() && (!to.has_local() || !ctx_.user_exists(to.local())))
      return HookResult::kPass;
    std::optional<std::string> id =
        archive(ev.from.local(), to.bare(), to.full(), Direction::kOutgoing, ev.stanza);
    if (id) {
      sender_id_ = std::move(*id);
      ev.sender_archive_id = sender_id_;
    }
    return HookResult::kPass;
  }

  HookResult on_inbound(StanzaEvent& ev) {
    const std::string owner = ev.to.bare();
    strip_stanza_ids(ev.stanza, owner);
    if (!eligible(ev.stanza)) return HookResult::kPass;
    std::optional<std::string> id =
        archive(ev.to.local(), ev.from.bare(), ev.from.full(), Direction::kIncoming, ev.stanza);
    if (id) {
      xml::Element* sid = ev.stanza.add_child("stanza-id", kNsSid);
      sid->set_attr("by", owner);
      sid->set_attr("id", *id);
    }
    return HookResult::kPass;
  }

  Prefs prefs_of(storage::Txn& txn, std::string_view user) {
    Result<std::optional<Prefs>> stored = load_prefs(txn, ctx_.table(kPrefsTable), user);
    if (stored && stored->has_value()) return std::move(**stored);
    Prefs prefs;
    prefs.default_mode = parse_mode(ctx_.config().archive.default_mode).value_or(Mode::kAlways);
    return prefs;
  }

  // Archives `stanza` in `user`'s archive if the preferences allow it;
  // returns the id.
  std::optional<std::string> archive(std::string_view user, const std::string& with_bare,
                                     const std::string& with_full, Direction direction,
                                     const xml::Element& stanza) {
    if (user.empty()) return std::nullopt;
    // One read transaction for the preferences and the free position (two
    // of these run for every message between two local accounts).
    auto txn = ctx_.db().read();
    if (!txn) {
      HEARTH_WARN("mam", "archive read failed: %s", txn.error().message.c_str());
      return std::nullopt;
    }
    Prefs prefs = prefs_of(*txn, user);
    bool in_roster = false;
    if (prefs.default_mode == Mode::kRoster && !listed(prefs, with_bare)) {
      if (auto* roster = ctx_.find<RosterService>()) in_roster = roster->has_item(user, with_bare);
    }
    if (!should_archive(prefs, with_bare, in_roster)) return std::nullopt;
    std::string xml;
    xml::serialize(stanza, &xml);
    Row row{direction, randombytes_random(), with_full, xml};
    // The row is written at the end of the turn with the others (flush());
    // its position is taken now, so the id can go out with the message.
    Result<Position> pos =
        free_position(*txn, ctx_.table(kTable), user, next_position(last_, now_micros()));
    if (!pos) {
      HEARTH_WARN("mam", "archiving a message of %.*s failed: %s", static_cast<int>(user.size()),
                  user.data(), pos.error().message.c_str());
      return std::nullopt;
    }
    last_ = *pos;
    ArchiveId id{*pos, row.tag};
    // Row points into `xml` and `with_full`: keep the encoded bytes.
    pending_.push_back(PendingRow{std::string(user), with_bare, encode_row(row), *pos});
    return format_id(id);
  }

  // Commits the rows archived during this turn in one transaction.
  void flush() {
    if (pending_.empty()) return;
    storage::Dbi dbi = ctx_.table(kTable);
    Status s = ctx_.db().write([&](storage::WriteTxn& t) -> Status {
      for (const PendingRow& p : pending_)
        put_row(t, dbi, p.user, p.with_bare, p.value, p.pos);
      return t.status();
    });
    if (!s) {
      HEARTH_ERROR("mam", "writing %zu archived messages failed: %s", pending_.size(),
                   s.error().message.c_str());
    }
    pending_.clear();
    if (pending_.capacity() > 256) std::vector<PendingRow>().swap(pending_);
  }

  // ---- IQs ----

  void on_iq(IqEvent& ev) {
    const xml::Element& p = ev.payload;
    if (p.name == "query") {
      if (ev.is_set()) {
        run_query(ev);
      } else {
        query_form(ev);
      }
    } else if (p.name == "metadata") {
      if (ev.is_set()) {
        ctx_.error(ev, "modify", "bad-request", "metadata is retrieved with get");
      } else {
        metadata(ev);
      }
    } else if (p.name == "prefs") {
      if (ev.is_set()) {
        set_prefs(ev);
      } else {
        get_prefs(ev);
      }
    } else {
      ctx_.error(ev, "cancel", "feature-not-implemented");
    }
  }

  void query_form(IqEvent& ev) {
    xml::Element* q = ev.arena.make_element("query", kNsMam);
    xml::Element* x = q->add_child("x", kNsData);
    x->set_attr("type", "form");
    xml::Element* ft = x->add_child("field", kNsData);
    ft->set_attr("type", "hidden");
    ft->set_attr("var", "FORM_TYPE");
    ft->add_child("value", kNsData)->add_text(kNsMam);
    static constexpr std::pair<const char*, const char*> kFields[] = {
        {"with", "jid-single"},       {"start", "text-single"},    {"end", "text-single"},
        {"before-id", "text-single"}, {"after-id", "text-single"}, {"ids", "text-multi"},
    };
    for (const auto& [var, type] : kFields) {
      xml::Element* f = x->add_child("field", kNsData);
      f->set_attr("type", type);
      f->set_attr("var", var);
    }
    ctx_.result(ev, q);
  }

  // Narrows the query's lower bound to `pos` (exclusive: after it).
  static void raise_lower(Query& q, Position pos, bool exclusive) {
    if (!q.has_lower || pos > q.lower || (pos == q.lower && exclusive)) {
      q.lower = pos;
      q.lower_exclusive = exclusive;
      q.has_lower = true;
    }
  }
  static void lower_upper(Query& q, Position pos) {
    if (!q.has_upper || pos < q.upper) {
      q.upper = pos;
      q.has_upper = true;
    }
  }

  // An id named by the client: it must decode and be in the archive.
  std::optional<Refusal> known_id(storage::Txn& txn, const std::string& user, std::string_view text,
                                  ArchiveId* out) {
    std::optional<ArchiveId> id = parse_id(trim(text));
    if (!id) return Refusal{"cancel", "item-not-found", "no such archive id"};
    Result<bool> found = exists(txn, ctx_.table(kTable), user, *id);
    if (!found) return Refusal{"wait", "internal-server-error", ""};
    if (!*found) return Refusal{"cancel", "item-not-found", "no such archive id"};
    *out = *id;
    return std::nullopt;
  }

  struct Request {
    Query q;
    bool has_ids = false;
    std::vector<ArchiveId> ids;
    bool flip = false;
    bool empty_range = false;  // start after end: nothing, but not an error
  };

  std::optional<Refusal> parse_request(storage::Txn& txn, const xml::Element& p,
                                       const xmpp::Jid& owner, Request* r) {
    Query& q = r->q;
    q.user = owner.local();
    if (const xml::Element* x = p.child("x", kNsData)) {
      std::string_view type = x->attr("type");
      if (!type.empty() && type != "submit")
        return Refusal{"modify", "bad-request", "the form must be of type submit"};
      std::optional<uint64_t> start, end;
      for (const xml::Node& n : x->children) {
        if (n.element == nullptr || n.element->name != "field" || n.element->ns != kNsData)
          continue;
        const xml::Element& f = *n.element;
        std::string_view var = f.attr("var");
        std::vector<std::string> values;
        for (const xml::Node& v : f.children)
          if (v.element != nullptr && v.element->name == "value" && v.element->ns == kNsData)
            values.emplace_back(trim(v.element->text()));
        std::string value = values.empty() ? std::string() : values.front();
        if (var == "FORM_TYPE") {
          if (value != kNsMam) return Refusal{"modify", "bad-request", "FORM_TYPE is not mam:2"};
        } else if (var == "with") {
          if (value.empty()) continue;
          Result<xmpp::Jid> jid = xmpp::Jid::parse(value);
          if (!jid) return Refusal{"modify", "bad-request", "'with' is not a JID"};
          q.with_bare = jid->bare();
          if (jid->has_resource()) q.with_full = jid->full();
        } else if (var == "start" || var == "end") {
          if (value.empty()) continue;
          std::optional<uint64_t> t = parse_time(value);
          if (!t) return Refusal{"modify", "bad-request", "not a XEP-0082 date and time"};
          (var == "start" ? start : end) = t;
        } else if (var == "after-id" || var == "before-id") {
          if (value.empty()) continue;
          ArchiveId id;
          if (auto bad = known_id(txn, q.user, value, &id)) return bad;
          if (var == "after-id") {
            raise_lower(q, id.pos, true);
          } else {
            lower_upper(q, id.pos);
          }
        } else if (var == "ids") {
          r->has_ids = true;
          if (values.size() > kMaxPage)
            return Refusal{"modify", "policy-violation", "too many ids"};
          for (const std::string& v : values) {
            std::optional<ArchiveId> id = parse_id(v);
            if (!id) return Refusal{"cancel", "item-not-found", "no such archive id"};
            r->ids.push_back(*id);
          }
        } else {
          // XEP-0313 §4.1.1: a field the server does not know.
          return Refusal{"modify", "bad-request", "unknown field '" + std::string(var) + "'"};
        }
      }
      if (start) raise_lower(q, Position{*start, 0}, false);
      if (end) {
        // 'end' is inclusive: up to the last position of that microsecond.
        if (*end == UINT64_MAX) {
          // No upper bound needed.
        } else {
          lower_upper(q, Position{*end + 1, 0});
        }
      }
      if (start && end && *start > *end) r->empty_range = true;
    }
    if (const xml::Element* set = p.child("set", kNsRsm)) {
      if (set->child("index", kNsRsm) != nullptr)
        return Refusal{"cancel", "feature-not-implemented", "RSM index is not supported"};
      if (const xml::Element* max = set->child("max", kNsRsm)) {
        std::optional<uint32_t> m = parse_uint(max->text());
        if (!m) return Refusal{"modify", "bad-request", "<max/> is not a number"};
        q.max = std::min(*m, kMaxPage);
      }
      if (const xml::Element* after = set->child("after", kNsRsm)) {
        ArchiveId id;
        if (auto bad = known_id(txn, q.user, after->text(), &id)) return bad;
        raise_lower(q, id.pos, true);
      }
      if (const xml::Element* before = set->child("before", kNsRsm)) {
        q.backward = true;
        std::string text = before->text();
        if (!trim(text).empty()) {
          ArchiveId id;
          if (auto bad = known_id(txn, q.user, text, &id)) return bad;
          lower_upper(q, id.pos);
        }
      }
    }
    r->flip = p.child("flip-page", kNsMam) != nullptr;
    return std::nullopt;
  }

  void run_query(IqEvent& ev) {
    flush();  // what this turn archived is part of the answer
    std::string_view queryid = ev.payload.attr("queryid");
    if (queryid.size() > kMaxQueryIdSize) {
      ctx_.error(ev, "modify", "bad-request", "queryid is too long");
      return;
    }
    auto txn = ctx_.db().read();
    if (!txn) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    Request r;
    if (std::optional<Refusal> bad = parse_request(*txn, ev.payload, ev.to, &r)) {
      ctx_.error(ev, bad->type, bad->condition, bad->text);
      return;
    }
    const storage::Dbi dbi = ctx_.table(kTable);
    Page page;
    std::optional<uint64_t> total;
    if (r.has_ids) {
      bool missing = false;
      Result<Page> got = fetch_ids(*txn, dbi, r.q.user, r.ids, &missing);
      if (!got) {
        ctx_.error(ev, "wait", "internal-server-error");
        return;
      }
      if (missing) {
        ctx_.error(ev, "cancel", "item-not-found", "no such archive id");
        return;
      }
      page = std::move(*got);
    } else if (r.empty_range) {
      page.complete = true;
    } else if (r.q.max == 0) {
      // XEP-0059 §2.7: only the count.
      Result<uint64_t> n = count(*txn, dbi, r.q);
      if (!n) {
        ctx_.error(ev, "wait", "internal-server-error");
        return;
      }
      total = *n;
      page.complete = *n == 0;
    } else {
      Result<Page> got = query(*txn, dbi, r.q);
      if (!got) {
        HEARTH_WARN("mam", "archive query of %s failed: %s", r.q.user.c_str(),
                    got.error().message.c_str());
        ctx_.error(ev, "wait", "internal-server-error");
        return;
      }
      page = std::move(*got);
    }
    txn->abort();
    if (r.flip) std::reverse(page.items.begin(), page.items.end());

    const std::string owner = ev.to.bare();
    const std::string requester = ev.from.full();
    std::vector<std::string> sent_ids;
    for (const Item& item : page.items) {
      Result<xml::Element*> inner = xml::parse_fragment(item.xml, ev.arena);
      if (!inner) {
        HEARTH_WARN("mam", "skipping an unparsable archived stanza of %s", r.q.user.c_str());
        continue;
      }
      std::string id = format_id(item.id);
      xml::Element* msg = ev.arena.make_element("message", xml::kNsClient);
      msg->set_attr("from", owner);
      msg->set_attr("to", requester);
      xml::Element* result = msg->add_child("result", kNsMam);
      if (ev.payload.has_attr("queryid")) result->set_attr("queryid", queryid);
      result->set_attr("id", id);
      xml::Element* fwd = result->add_child("forwarded", kNsForward);
      xml::Element* delay = fwd->add_child("delay", kNsDelay);
      delay->set_attr("stamp", format_time(item.id.pos.micros));
      fwd->children.push_back(xml::Node{*inner, std::pmr::string(fwd->resource())});
      if (ev.origin != nullptr) ev.origin->deliver(*msg);
      sent_ids.push_back(std::move(id));
    }

    xml::Element* fin = ev.arena.make_element("fin", kNsMam);
    if (page.complete) fin->set_attr("complete", "true");
    xml::Element* set = fin->add_child("set", kNsRsm);
    if (!sent_ids.empty()) {
      set->add_child("first", kNsRsm)->add_text(sent_ids.front());
      set->add_child("last", kNsRsm)->add_text(sent_ids.back());
    }
    if (total) set->add_child("count", kNsRsm)->add_text(std::to_string(*total));
    ctx_.result(ev, fin);
  }

  void metadata(IqEvent& ev) {
    flush();  // what this turn archived is part of the answer
    auto txn = ctx_.db().read();
    if (!txn) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    Result<std::optional<Bounds>> b = bounds(*txn, ctx_.table(kTable), ev.to.local());
    if (!b) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    xml::Element* m = ev.arena.make_element("metadata", kNsMam);
    if (b->has_value()) {
      for (auto [name, id] : {std::pair<const char*, ArchiveId>{"start", (*b)->first},
                              std::pair<const char*, ArchiveId>{"end", (*b)->last}}) {
        xml::Element* e = m->add_child(name, kNsMam);
        e->set_attr("id", format_id(id));
        e->set_attr("timestamp", format_time(id.pos.micros));
      }
    }
    ctx_.result(ev, m);
  }

  xml::Element* prefs_element(const Prefs& prefs, xml::Arena& arena) {
    xml::Element* e = arena.make_element("prefs", kNsMam);
    e->set_attr("default", mode_name(prefs.default_mode));
    for (auto [name, list] :
         {std::pair<const char*, const std::vector<std::string>*>{"always", &prefs.always},
          {"never", &prefs.never}}) {
      xml::Element* l = e->add_child(name, kNsMam);
      for (const std::string& j : *list)
        l->add_child("jid", kNsMam)->add_text(j);
    }
    return e;
  }

  void get_prefs(IqEvent& ev) {
    auto txn = ctx_.db().read();
    if (!txn) {
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    Prefs prefs = prefs_of(*txn, ev.to.local());
    txn->abort();
    ctx_.result(ev, prefs_element(prefs, ev.arena));
  }

  void set_prefs(IqEvent& ev) {
    const xml::Element& p = ev.payload;
    std::optional<Mode> mode = parse_mode(p.attr("default"));
    if (!mode) {
      ctx_.error(ev, "modify", "bad-request", "default must be always, never or roster");
      return;
    }
    Prefs prefs;
    prefs.default_mode = *mode;
    for (auto [name, list] :
         {std::pair<const char*, std::vector<std::string>*>{"always", &prefs.always},
          {"never", &prefs.never}}) {
      const xml::Element* l = p.child(name, kNsMam);
      if (l == nullptr) continue;
      for (const xml::Node& n : l->children) {
        if (n.element == nullptr) continue;
        if (n.element->name != "jid" || n.element->ns != kNsMam) {
          ctx_.error(ev, "modify", "bad-request", "only <jid/> in a preference list");
          return;
        }
        Result<xmpp::Jid> jid = xmpp::Jid::parse(trim(n.element->text()));
        if (!jid) {
          ctx_.error(ev, "modify", "jid-malformed");
          return;
        }
        std::string bare = jid->bare();
        if (std::find(list->begin(), list->end(), bare) == list->end())
          list->push_back(std::move(bare));
        if (list->size() > kMaxPrefJids) {
          ctx_.error(ev, "modify", "policy-violation", "too many JIDs in a preference list");
          return;
        }
      }
    }
    Status s = store_prefs(ctx_.db(), ctx_.table(kPrefsTable), ev.to.local(), prefs);
    if (!s) {
      HEARTH_WARN("mam", "storing archive prefs of %s failed: %s", ev.to.local().c_str(),
                  s.error().message.c_str());
      ctx_.error(ev, "wait", "internal-server-error");
      return;
    }
    ctx_.result(ev, prefs_element(prefs, ev.arena));
  }

  // ---- retention ----

  void schedule(uint64_t delay_ms) {
    timer_ = ctx_.loop().add_timer(delay_ms, [this] {
      timer_ = 0;
      run_sweep();
    });
  }

  void run_sweep() {
    flush();
    if (expires_after_ == 0) return;
    const uint64_t now = now_micros();
    const uint64_t window = expires_after_ * 1000000;
    if (window / 1000000 != expires_after_ || now <= window) {
      schedule(sweep_interval_ms(expires_after_));  // nothing can be that old
      return;
    }
    Result<SweepOutcome> r =
        sweep(ctx_.db(), ctx_.table(kTable), now - window, kSweepBudget, &sweep_resume_);
    if (!r) {
      HEARTH_WARN("mam", "archive retention sweep failed: %s", r.error().message.c_str());
      sweep_resume_.clear();
      schedule(sweep_interval_ms(expires_after_));
      return;
    }
    if (r->deleted > 0)
      HEARTH_DEBUG("mam", "retention: deleted %" PRIu64 " archived messages", r->deleted);
    schedule(r->more ? kSweepContinueMs : sweep_interval_ms(expires_after_));
  }

  struct PendingRow {
    std::string user, with_bare;
    std::string value;  // encode_row()
    Position pos;
  };

  Context& ctx_;
  std::vector<PendingRow> pending_;  // archived this turn, written by flush()
  std::string sender_id_;            // ev.sender_archive_id of the current outbound event
  Position last_;                    // last position given out (archive order = arrival order)
  uint64_t expires_after_ = 0;
  core::Loop::TimerId timer_ = 0;
  std::string sweep_resume_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<MamModule>(ctx);
}

}  // namespace
}  // namespace mam

extern const ModuleDef kModule_mam;
const ModuleDef kModule_mam = {
    "mam",
    "Message archive (XEP-0313 with RSM, stanza-id XEP-0359, preferences, retention)",
    {{"archive"}, {"archive_prefs"}},
    {"roster"},
    &mam::create};

}  // namespace hearth::modules
