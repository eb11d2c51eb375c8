#include "bench.h"

#include <sys/time.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "echo.h"
#include "procstat.h"
#include "xml.h"

namespace hearth::bench {
namespace {

double ms_between(int64_t a, int64_t b) {
  return static_cast<double>(b - a) / 1e6;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return NAN;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

// "hb SEQ T_NS" in a body -> T_NS; -1 otherwise.
int64_t body_stamp(const std::string& body, const char* prefix) {
  size_t n = strlen(prefix);
  if (body.compare(0, n, prefix) != 0) return -1;
  const char* p = strchr(body.c_str() + n, ' ');
  if (p == nullptr) return -1;
  return strtoll(p + 1, nullptr, 10);
}

std::string bare(const std::string& jid) {
  return jid.substr(0, jid.find('/'));
}

double wall_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

std::string iso8601(time_t t) {
  char buf[32];
  tm u{};
  gmtime_r(&t, &u);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &u);
  return buf;
}

}  // namespace

Bench::Bench(Settings s) : s_(std::move(s)) {}

void Bench::add(const std::string& key, double value, const std::string& unit) {
  metrics_.push_back({key, value, unit});
  if (s_.verbose) fprintf(stderr, "  %s = %.3f %s\n", key.c_str(), value, unit.c_str());
}

void Bench::add_percentiles(const std::string& key, std::vector<double> v, const std::string& unit,
                            bool p999) {
  std::sort(v.begin(), v.end());
  add(key + "_p50", percentile(v, 0.50), unit);
  add(key + "_p99", percentile(v, 0.99), unit);
  if (p999) add(key + "_p999", percentile(v, 0.999), unit);
}

long long Bench::cpu_us() const {
  return s_.pid > 0 ? tree_cpu_us(s_.pid) : 0;
}

std::unique_ptr<Client> Bench::make(int user, const std::string& resource, bool presence) {
  return std::make_unique<Client>(&loop_, &s_.server, &salts_, user, resource, presence);
}

bool Bench::run_until(const std::function<bool()>& pred, double timeout) {
  int64_t deadline = now_ns() + static_cast<int64_t>(timeout * 1e9);
  while (!pred()) {
    if (now_ns() > deadline) return false;
    loop_.run_once(5);
  }
  return true;
}

Bench::Burst Bench::burst(int pairs, const std::function<void(int)>& send_one, const long& sent,
                          bool* sending, const std::function<bool()>& arrived) {
  Burst b{};
  b.cpu0 = cpu_us();
  b.t0 = now_ns();
  for (int i = 0; i < pairs; ++i)
    for (int w = 0; w < s_.window; ++w)
      send_one(i);
  int64_t stop = b.t0 + static_cast<int64_t>(s_.duration * 1e9);
  run_until([&] { return now_ns() >= stop || sent >= s_.max_messages; }, s_.duration + 1);
  *sending = false;
  b.drained = run_until(arrived, 10.0);
  b.t1 = now_ns();
  b.cpu1 = cpu_us();
  return b;
}

void Bench::pump(double seconds) {
  int64_t end = now_ns() + static_cast<int64_t>(seconds * 1e9);
  while (now_ns() < end)
    loop_.run_once(5);
}

void Bench::quiesce() {
  if (s_.pid <= 0) return;
  int64_t cap = now_ns() + static_cast<int64_t>(s_.timeout * 1e9);
  int quiet = 0;
  long long prev = cpu_us();
  while (quiet < 2 && now_ns() < cap) {
    pump(0.1);
    long long cur = cpu_us();
    quiet = cur - prev < 5000 ? quiet + 1 : 0;  // under 5 % of one core
    prev = cur;
  }
}

int Bench::login_all(const std::vector<Client*>& cs, int concurrency, std::vector<double>* lat_ms,
                     bool close_when_ready) {
  size_t next = 0;
  int failed = 0;
  std::vector<Client*> inflight;
  // A stall, not a batch, times out: --timeout s without any login finishing.
  int64_t deadline = now_ns() + static_cast<int64_t>(s_.timeout * 1e9);
  auto reap = [&] {
    for (size_t i = 0; i < inflight.size();) {
      Client* c = inflight[i];
      if (!c->done()) {
        ++i;
        continue;
      }
      if (c->ready()) {
        if (lat_ms != nullptr) lat_ms->push_back(ms_between(c->started_ns(), c->ready_ns()));
        if (close_when_ready) c->close();
      } else {
        if (failed == 0) {
          fprintf(stderr, "hearth-bench: login of %s failed: %s\n",
                  s_.server.bare_jid(c->user_index()).c_str(), c->error().c_str());
        }
        ++failed;
      }
      inflight[i] = inflight.back();
      inflight.pop_back();
      deadline = now_ns() + static_cast<int64_t>(s_.timeout * 1e9);
    }
  };
  while (next < cs.size() || !inflight.empty()) {
    while (next < cs.size() && static_cast<int>(inflight.size()) < concurrency) {
      cs[next]->start();
      inflight.push_back(cs[next++]);
    }
    reap();
    if (inflight.empty() && next >= cs.size()) break;
    loop_.run_once(5);
    reap();
    if (now_ns() > deadline) {
      fprintf(stderr,
              "hearth-bench: no login finished for %.0f s (%zu in flight, %zu not started)\n",
              s_.timeout, inflight.size(), cs.size() - next);
      failed += static_cast<int>(inflight.size() + (cs.size() - next));
      for (Client* c : inflight)
        c->close();
      break;
    }
  }
  return failed;
}

bool Bench::run(const std::string& scenario) {
  fprintf(stderr, "hearth-bench: %s ...\n", scenario.c_str());
  quiesce();
  int64_t t0 = now_ns();
  bool ok;
  if (scenario == "footprint")
    ok = footprint();
  else if (scenario == "logins")
    ok = logins();
  else if (scenario == "messages")
    ok = messages();
  else if (scenario == "presence")
    ok = presence();
  else if (scenario == "mam")
    ok = mam();
  else if (scenario == "echo")
    ok = echo();
  else {
    fprintf(stderr, "hearth-bench: unknown scenario '%s'\n", scenario.c_str());
    return false;
  }
  fprintf(stderr, "hearth-bench: %s %s in %.1f s\n", scenario.c_str(), ok ? "done" : "FAILED",
          ms_between(t0, now_ns()) / 1000.0);
  pump(0.3);  // let the server finish closing what the scenario opened
  return ok;
}

// N concurrent logged-in TLS sessions with initial presence; the server's
// RSS and PSS (all its processes) at idle and at each step.
bool Bench::footprint() {
  if (s_.pid <= 0) {
    fprintf(stderr, "hearth-bench: footprint needs --pid\n");
    return false;
  }
  pump(s_.settle);
  Memory idle = tree_memory(s_.pid);
  add("footprint.idle_rss", static_cast<double>(idle.rss_kib), "KiB");
  add("footprint.idle_pss", static_cast<double>(idle.pss_kib), "KiB");
  add("footprint.idle_private_dirty", static_cast<double>(idle.private_dirty_kib), "KiB");
  add("footprint.processes", idle.processes, "");
  for (const ProcessMemory& pm : tree_memory_detail(s_.pid)) {
    add("footprint.idle_pss." + pm.name, static_cast<double>(pm.memory.pss_kib), "KiB");
    add("footprint.idle_private_dirty." + pm.name, static_cast<double>(pm.memory.private_dirty_kib),
        "KiB");
  }
  std::vector<std::unique_ptr<Client>> clients;
  bool ok = true;
  for (int step : s_.steps) {
    std::vector<Client*> batch;
    while (static_cast<int>(clients.size()) < step) {
      clients.push_back(make(static_cast<int>(clients.size()), "fp", true));
      batch.push_back(clients.back().get());
    }
    int64_t t0 = now_ns();
    int failed = login_all(batch, s_.concurrency, nullptr, false);
    double secs = ms_between(t0, now_ns()) / 1000.0;
    if (failed > 0) {
      fprintf(stderr, "hearth-bench: footprint: %d of %zu logins failed at step %d\n", failed,
              batch.size(), step);
      ok = false;
      break;
    }
    pump(s_.settle);
    int alive = 0;
    for (auto& c : clients)
      alive += c->ready() ? 1 : 0;
    Memory m = tree_memory(s_.pid);
    std::string k = "footprint.s" + std::to_string(step);
    add(k + "_rss", static_cast<double>(m.rss_kib), "KiB");
    add(k + "_pss", static_cast<double>(m.pss_kib), "KiB");
    add(k + "_rss_per_session", static_cast<double>(m.rss_kib - idle.rss_kib) / step, "KiB");
    add(k + "_pss_per_session", static_cast<double>(m.pss_kib - idle.pss_kib) / step, "KiB");
    add(k + "_private_dirty_per_session",
        static_cast<double>(m.private_dirty_kib - idle.private_dirty_kib) / step, "KiB");
    add(k + "_bench_rss", static_cast<double>(self_rss_kib()), "KiB");
    fprintf(stderr, "  %d sessions (%d alive) logged in in %.1f s: RSS %ld KiB, PSS %ld KiB\n",
            step, alive, secs, m.rss_kib, m.pss_kib);
    if (alive != step) {
      fprintf(stderr, "hearth-bench: footprint: only %d of %d sessions still open\n", alive, step);
      ok = false;
      break;
    }
  }
  for (auto& c : clients)
    c->close();
  return ok;
}

// Full logins (TCP + TLS + SASL + bind), one after another, then many at once.
bool Bench::logins() {
  int users = std::max(1, s_.users);
  // Sequential.
  std::vector<double> lat;
  long long cpu0 = cpu_us();
  int64_t t0 = now_ns();
  int64_t cap = t0 + static_cast<int64_t>(s_.duration * 4 * 1e9);
  int n = 0;
  int failed = 0;
  for (; n < s_.logins && now_ns() < cap; ++n) {
    auto c = make(n % users, "lg" + std::to_string(n), false);
    std::vector<Client*> one{c.get()};
    failed += login_all(one, 1, &lat, true);
    if (failed > 0) break;
  }
  double secs = ms_between(t0, now_ns()) / 1000.0;
  long long cpu1 = cpu_us();
  if (failed > 0 || lat.empty()) return false;
  add("logins.sequential_count", static_cast<double>(lat.size()), "");
  add("logins.sequential_rate", static_cast<double>(lat.size()) / secs, "/s");
  add_percentiles("logins.sequential_latency", lat, "ms", false);
  if (s_.pid > 0)
    add("logins.cpu_per_login_seq", static_cast<double>(cpu1 - cpu0) / lat.size() / 1000.0, "ms");
  pump(0.2);
  // Concurrent.
  std::vector<std::unique_ptr<Client>> owned;
  std::vector<Client*> cs;
  for (int i = 0; i < s_.logins; ++i) {
    owned.push_back(make(i % users, "lc" + std::to_string(i), false));
    cs.push_back(owned.back().get());
  }
  lat.clear();
  cpu0 = cpu_us();
  t0 = now_ns();
  failed = login_all(cs, s_.login_concurrency, &lat, true);
  secs = ms_between(t0, now_ns()) / 1000.0;
  cpu1 = cpu_us();
  if (failed > 0 || lat.empty()) return false;
  add("logins.concurrent_count", static_cast<double>(lat.size()), "");
  add("logins.concurrent_rate", static_cast<double>(lat.size()) / secs, "/s");
  add_percentiles("logins.concurrent_latency", lat, "ms", false);
  if (s_.pid > 0)
    add("logins.cpu_per_login", static_cast<double>(cpu1 - cpu0) / lat.size() / 1000.0, "ms");
  return true;
}

// P sender/receiver pairs; each sender keeps `window` chat messages in flight.
bool Bench::messages() {
  int p = s_.pairs;
  std::vector<std::unique_ptr<Client>> senders, receivers;
  std::vector<Client*> all;
  for (int i = 0; i < p; ++i) {
    senders.push_back(make(i, "tx", true));
    receivers.push_back(make(p + i, "rx", true));
    senders.back()->tag = i;
    receivers.back()->tag = i;
    all.push_back(senders.back().get());
    all.push_back(receivers.back().get());
  }
  if (login_all(all, s_.concurrency, nullptr, false) > 0) return false;
  std::vector<int> inflight(p, 0);
  std::vector<std::string> to(p);
  for (int i = 0; i < p; ++i)
    to[i] = xml_escape(receivers[i]->jid());
  long sent = 0, delivered = 0, errors = 0;
  bool sending = true;
  std::vector<double> lat;
  lat.reserve(200000);
  auto send_one = [&](int i) {
    char buf[64];
    snprintf(buf, sizeof buf, "hb %ld %" PRId64, sent, now_ns());
    senders[i]->send("<message to='" + to[i] + "' type='chat' id='m" + std::to_string(sent) +
                     "'><body>" + buf + "</body></message>");
    ++inflight[i];
    ++sent;
  };
  for (int i = 0; i < p; ++i) {
    receivers[i]->on_stanza = [&](Client& c, std::string_view el) {
      if (local_name(el) != "message") return;
      if (attr(el, "type") == "error") {
        ++errors;
        return;
      }
      int64_t t = body_stamp(child_text(el, "body"), "hb ");
      if (t < 0) return;
      lat.push_back(ms_between(t, now_ns()));
      ++delivered;
      --inflight[c.tag];
      if (sending && sent < s_.max_messages) send_one(c.tag);
    };
    senders[i]->on_stanza = [&](Client& c, std::string_view el) {
      if (local_name(el) == "message" && attr(el, "type") == "error") {
        if (errors == 0) {
          fprintf(stderr, "hearth-bench: message error: %.300s\n", std::string(el).c_str());
        }
        ++errors;
        --inflight[c.tag];
      }
    };
  }
  auto [t0, t1, cpu0, cpu1, drained] =
      burst(p, send_one, sent, &sending, [&] { return delivered + errors >= sent; });
  int lost = 0;
  for (auto& c : senders)
    lost += c->ready() ? 0 : 1;
  for (auto& c : receivers)
    lost += c->ready() ? 0 : 1;
  for (auto& c : senders)
    c->close();
  for (auto& c : receivers)
    c->close();
  if (!drained)
    fprintf(stderr, "hearth-bench: %ld of %ld messages never arrived\n", sent - delivered - errors,
            sent);
  if (lost > 0) fprintf(stderr, "hearth-bench: %d clients lost their connection\n", lost);
  if (delivered == 0) return false;
  double secs = ms_between(t0, t1) / 1000.0;
  add("messages.delivered", static_cast<double>(delivered), "");
  add("messages.errors", static_cast<double>(errors + (sent - delivered - errors)), "");
  add("messages.rate", static_cast<double>(delivered) / secs, "/s");
  add_percentiles("messages.latency", lat, "ms", true);
  if (s_.pid > 0) {
    double cpu = static_cast<double>(cpu1 - cpu0);
    add("messages.cpu_per_1000", cpu / static_cast<double>(delivered), "ms");
    add("messages.cpu_per_message", cpu / static_cast<double>(delivered), "us");
  }
  return drained && errors == 0 && lost == 0;
}

// A hub whose roster holds R online contacts (subscription from) broadcasts
// presence; time until all R got it, server CPU per recipient.
bool Bench::presence() {
  int r = s_.roster;
  auto hub = make(0, "hub", true);
  std::vector<std::unique_ptr<Client>> contacts;
  std::vector<Client*> all{hub.get()};
  for (int i = 1; i <= r; ++i) {
    contacts.push_back(make(i, "pc", true));
    contacts.back()->tag = i - 1;
    all.push_back(contacts.back().get());
  }
  if (login_all(all, s_.concurrency, nullptr, false) > 0) return false;
  std::string hub_bare = bare(hub->jid());
  hub->on_stanza = [&](Client& c, std::string_view el) {
    if (local_name(el) == "presence" && attr(el, "type") == "subscribe") {
      c.send("<presence type='subscribed' to='" + xml_escape(bare(attr(el, "from"))) + "'/>");
    }
  };
  std::vector<char> subscribed(r, 0);
  std::vector<int> round_seen(r, 0);
  std::vector<int64_t> arrival(r, 0);
  int n_subscribed = 0;
  int current = 0;
  int got = 0;
  for (auto& c : contacts) {
    c->on_stanza = [&](Client& cl, std::string_view el) {
      if (local_name(el) != "presence" || bare(attr(el, "from")) != hub_bare) return;
      std::string type = attr(el, "type");
      int i = cl.tag;
      if ((type.empty() || type == "subscribed") && !subscribed[i]) {
        subscribed[i] = 1;
        ++n_subscribed;
      }
      if (!type.empty() || current == 0) return;
      if (child_text(el, "status") == "round " + std::to_string(current) &&
          round_seen[i] != current) {
        round_seen[i] = current;
        arrival[i] = now_ns();
        ++got;
      }
    };
  }
  for (auto& c : contacts)
    c->send("<presence type='subscribe' to='" + xml_escape(hub_bare) + "'/>");
  if (!run_until([&] { return n_subscribed == r; }, s_.timeout)) {
    fprintf(stderr, "hearth-bench: presence: only %d of %d contacts subscribed\n", n_subscribed, r);
    return false;
  }
  pump(s_.settle);
  std::vector<double> fanout;
  long long cpu_total = 0;
  bool ok = true;
  for (int k = 1; k <= s_.rounds; ++k) {
    current = k;
    got = 0;
    long long cpu0 = cpu_us();
    int64_t t0 = now_ns();
    hub->send("<presence><status>round " + std::to_string(k) + "</status></presence>");
    if (!run_until([&] { return got == r; }, s_.timeout)) {
      fprintf(stderr, "hearth-bench: presence: round %d reached %d of %d contacts\n", k, got, r);
      ok = false;
      break;
    }
    cpu_total += cpu_us() - cpu0;
    fanout.push_back(ms_between(t0, *std::max_element(arrival.begin(), arrival.end())));
    pump(0.05);
  }
  hub->close();
  for (auto& c : contacts)
    c->close();
  if (fanout.empty()) return false;
  add("presence.contacts", r, "");
  add_percentiles("presence.fanout", fanout, "ms", false);
  if (s_.pid > 0) {
    add("presence.cpu_per_recipient",
        static_cast<double>(cpu_total) / (static_cast<double>(fanout.size()) * r), "us");
  }
  return ok;
}

// Query latency on an archive of `mam_fill` messages: the last page (RSM
// <before/>) and a page from the middle (form field start).
bool Bench::mam() {
  auto owner = make(0, "mam", true);
  auto sender = make(1, "mamtx", true);
  std::vector<Client*> both{owner.get(), sender.get()};
  if (login_all(both, 2, nullptr, false) > 0) return false;
  std::string to = xml_escape(owner->jid());
  long sent = 0, delivered = 0, limit = 0;
  int inflight = 0;
  std::string query_id;
  int results = 0;
  bool answered = false;
  std::string answer_type;
  auto send_one = [&] {
    sender->send("<message to='" + to + "' type='chat' id='f" + std::to_string(sent) +
                 "'><body>archived message " + std::to_string(sent) + "</body></message>");
    ++sent;
    ++inflight;
  };
  owner->on_stanza = [&](Client&, std::string_view el) {
    std::string_view name = local_name(el);
    if (name == "message") {
      if (!query_id.empty() && has_child(el, "result") &&
          (el.find("queryid='" + query_id + "'") != std::string_view::npos ||
           el.find("queryid=\"" + query_id + "\"") != std::string_view::npos)) {
        ++results;
        return;
      }
      if (child_text(el, "body").compare(0, 17, "archived message ") == 0) {
        ++delivered;
        --inflight;
        if (sent < limit) send_one();
      }
    } else if (name == "iq" && attr(el, "id") == query_id) {
      answered = true;
      answer_type = attr(el, "type");
      if (answer_type != "result")
        fprintf(stderr, "hearth-bench: MAM query failed: %.300s\n", std::string(el).c_str());
    }
  };
  auto fill = [&](long upto) {
    limit = upto;
    while (inflight < s_.window && sent < limit)
      send_one();
    return run_until([&] { return delivered >= limit; }, s_.timeout);
  };
  int64_t t0 = now_ns();
  if (!fill(s_.mam_fill / 2)) return false;
  // The middle: the first whole second after the first half was archived.
  double w = wall_now();
  time_t middle = static_cast<time_t>(std::floor(w)) + 1;
  pump(static_cast<double>(middle) - w + 0.05);
  double paused = static_cast<double>(middle) - w + 0.05;
  if (!fill(s_.mam_fill)) return false;
  double fill_secs = ms_between(t0, now_ns()) / 1000.0 - paused;
  add("mam.archive_size", static_cast<double>(s_.mam_fill), "msgs");
  add("mam.fill_rate", static_cast<double>(s_.mam_fill) / fill_secs, "/s");
  pump(0.3);
  std::vector<double> end_lat, mid_lat;
  int short_pages = 0;
  auto query = [&](const std::string& id, const std::string& form, const std::string& rsm) {
    query_id = id;
    results = 0;
    answered = false;
    int64_t q0 = now_ns();
    owner->send("<iq type='set' id='" + id + "'><query xmlns='urn:xmpp:mam:2' queryid='" + id +
                "'>" + form + "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>" + rsm +
                "</set></query></iq>");
    if (!run_until([&] { return answered; }, s_.timeout) || answer_type != "result") return -1.0;
    if (results != 50) {
      if (short_pages == 0)
        fprintf(stderr, "hearth-bench: MAM page %s had %d results, not 50\n", id.c_str(), results);
      ++short_pages;
    }
    return ms_between(q0, now_ns());
  };
  std::string form =
      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
      "<value>urn:xmpp:mam:2</value></field><field var='start'><value>" +
      iso8601(middle) + "</value></field></x>";
  for (int q = 0; q < s_.mam_queries; ++q) {
    double a = query("qe" + std::to_string(q), "", "<before/>");
    double b = query("qm" + std::to_string(q), form, "");
    if (a < 0 || b < 0) return false;
    end_lat.push_back(a);
    mid_lat.push_back(b);
  }
  owner->close();
  sender->close();
  add_percentiles("mam.query_end", end_lat, "ms", false);
  add_percentiles("mam.query_middle", mid_lat, "ms", false);
  add("mam.short_pages", short_pages, "");
  return short_pages == 0;
}

// The floor: `messages` against `hearth-bench echo-server` (a bare wolfSSL
// TLS relay), same pairs, window and duration; each message is a
// kEchoLineBytes line from connection 2k, relayed to 2k+1.
bool Bench::echo() {
  int p = s_.pairs;
  // Idle connections first, up to the largest footprint step, so the memory
  // of a bare wolfSSL session is a figure too; the first 2p then carry the
  // messages.
  int total = std::max(2 * p, s_.steps.back());
  Memory idle;
  if (s_.pid > 0) idle = tree_memory(s_.pid);
  std::vector<std::unique_ptr<EchoClient>> cs;
  for (int i = 0; i < total; ++i)
    cs.push_back(std::make_unique<EchoClient>(&loop_, &s_.server, i));
  size_t next = 0;
  size_t checked = 0;  // cs[0..checked) are ready
  int64_t deadline = now_ns() + static_cast<int64_t>(s_.timeout * 1e9);
  while (checked < cs.size()) {
    int in_flight = 0;
    for (size_t i = checked; i < next; ++i) {
      if (!cs[i]->done()) {
        ++in_flight;
      } else if (!cs[i]->ready()) {
        fprintf(stderr, "hearth-bench: echo: connection %zu: %s\n", i, cs[i]->error().c_str());
        return false;
      } else if (i == checked) {
        ++checked;
        deadline = now_ns() + static_cast<int64_t>(s_.timeout * 1e9);
      }
    }
    while (next < cs.size() && in_flight < s_.concurrency) {
      cs[next++]->start();
      ++in_flight;
    }
    if (now_ns() > deadline) {
      fprintf(stderr, "hearth-bench: echo: connections not ready after %.0f s\n", s_.timeout);
      return false;
    }
    loop_.run_once(5);
  }
  if (s_.pid > 0) {
    pump(s_.settle);
    Memory m = tree_memory(s_.pid);
    std::string k = "echo.s" + std::to_string(total);
    add(k + "_pss_per_connection", static_cast<double>(m.pss_kib - idle.pss_kib) / total, "KiB");
    add(k + "_private_dirty_per_connection",
        static_cast<double>(m.private_dirty_kib - idle.private_dirty_kib) / total, "KiB");
    fprintf(stderr, "  %d idle TLS connections: PSS %ld KiB, private dirty %ld KiB\n", total,
            m.pss_kib, m.private_dirty_kib);
  }
  std::vector<int> inflight(p, 0);
  long sent = 0, delivered = 0;
  bool sending = true;
  std::vector<double> lat;
  lat.reserve(200000);
  auto send_one = [&](int i) {
    char buf[kEchoLineBytes + 1];
    int n = snprintf(buf, sizeof buf, "hb %ld %" PRId64 " ", sent, now_ns());
    memset(buf + n, 'x', static_cast<size_t>(kEchoLineBytes - 1 - n));
    buf[kEchoLineBytes - 1] = '\n';
    cs[2 * i]->send(std::string_view(buf, kEchoLineBytes));
    ++inflight[i];
    ++sent;
  };
  for (int i = 0; i < p; ++i) {
    cs[2 * i + 1]->on_line = [&](EchoClient& c, std::string_view line) {
      int64_t t = body_stamp(std::string(line), "hb ");
      if (t < 0) return;
      lat.push_back(ms_between(t, now_ns()));
      ++delivered;
      int pair = c.id() / 2;
      --inflight[pair];
      if (sending && sent < s_.max_messages) send_one(pair);
    };
  }
  auto [t0, t1, cpu0, cpu1, drained] =
      burst(p, send_one, sent, &sending, [&] { return delivered >= sent; });
  int lost = 0;
  for (auto& c : cs) {
    lost += c->ready() ? 0 : 1;
    c->close();
  }
  if (!drained)
    fprintf(stderr, "hearth-bench: echo: %ld of %ld lines never arrived\n", sent - delivered, sent);
  if (lost > 0) fprintf(stderr, "hearth-bench: echo: %d connections lost\n", lost);
  if (delivered == 0) return false;
  double secs = ms_between(t0, t1) / 1000.0;
  add("echo.delivered", static_cast<double>(delivered), "");
  add("echo.rate", static_cast<double>(delivered) / secs, "/s");
  add_percentiles("echo.latency", lat, "ms", true);
  if (s_.pid > 0) {
    add("echo.cpu_per_message", static_cast<double>(cpu1 - cpu0) / static_cast<double>(delivered),
        "us");
  }
  return drained && lost == 0;
}

void Bench::print_table(const std::string& label) const {
  printf("%-44s %14s  %s\n", ("hearth-bench: " + label).c_str(), "value", "unit");
  for (const Metric& m : metrics_) {
    printf("%-44s %14.3f  %s\n", m.key.c_str(), m.value, m.unit.c_str());
  }
}

bool Bench::write_json(const std::string& file, const std::string& label) const {
  FILE* f = fopen(file.c_str(), "w");
  if (f == nullptr) return false;
  fprintf(f,
          "{\n  \"label\": \"%s\",\n  \"server\": \"%s:%d\",\n  \"mechanism\": \"%s\",\n  "
          "\"metrics\": {",
          label.c_str(), s_.server.host.c_str(), s_.server.port,
          s_.server.mech == Mech::kScramSha1     ? "SCRAM-SHA-1"
          : s_.server.mech == Mech::kScramSha256 ? "SCRAM-SHA-256"
                                                 : "auto");
  for (size_t i = 0; i < metrics_.size(); ++i) {
    const Metric& m = metrics_[i];
    if (std::isfinite(m.value)) {
      fprintf(f, "%s\n    \"%s\": {\"value\": %.6g, \"unit\": \"%s\"}", i ? "," : "", m.key.c_str(),
              m.value, m.unit.c_str());
    } else {
      fprintf(f, "%s\n    \"%s\": {\"value\": null, \"unit\": \"%s\"}", i ? "," : "", m.key.c_str(),
              m.unit.c_str());
    }
  }
  fprintf(f, "\n  }\n}\n");
  return fclose(f) == 0;
}

}  // namespace hearth::bench
