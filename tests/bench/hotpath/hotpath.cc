// The hot path of one chat message, in memory (issue 7, item 3): a client's
// serialised <message/> is fed to an xml::StreamParser as a bound c2s stream
// would, checked and stamped as C2sStream::handle_stanza does, routed through
// a real modules::Host with the configured module set (roster, presence,
// offline, blocking, carbons, mam on an LMDB file in a temporary directory,
// csi, pep, spam, ...) to a fake bound recipient session, which runs the CSI
// output filter and serialises the stanza into a buffer (ClientSession::
// deliver minus TLS and the socket). The loop's turn end (Host::end_turn:
// mam commits the turn's archive rows in one LMDB transaction) runs after
// every --batch messages (default 1: each message is its own turn, as on a
// quiet server).
//
//   hotpath --iterations N [--batch B] [--no-mam] [--warmup W] [--presence R]
//
// With --presence R, each iteration is instead one available presence of
// alice broadcast to R contacts (each with one bound session, subscribed
// to her), turn end included; collect hearth_hotpath_presence and divide
// by N * R for the cost per presence recipient.
//
// prints the wall time per message. Under callgrind, collect only
// hearth_hotpath_message (one call = one routed message, turn end included
// when it falls on that message):
//
//   valgrind --tool=callgrind --collect-atstart=no
//            --toggle-collect=hearth_hotpath_message hotpath --iterations 2000
//
// tests/bench/hotpath.sh does that and prints Ir per message.
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/loop.h"
#include "modules/host.h"
#include "storage/env.h"
#include "xml/element.h"
#include "xml/parser.h"
#include "xmpp/jid.h"
#include "xmpp/router.h"
#include "xmpp/session.h"

namespace hearth::bench {
namespace {

constexpr std::string_view kDomain = "example.org";
constexpr std::string_view kStreamHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>";
constexpr std::string_view kMessage =
    "<message to='bob@example.org' type='chat' id='m1'><body>hello</body></message>";

// A bound session whose client is a string: deliver() is what
// ClientSession::deliver does before the bytes go to TLS.
class MemorySession : public xmpp::Session {
 public:
  MemorySession(std::string_view full, modules::Host** host)
      : jid_(xmpp::Jid::parse(full).value()), host_(host) {}
  const xmpp::Jid& jid() const override { return jid_; }
  void deliver(const xml::Element& stanza) override {
    if (*host_ != nullptr && (*host_)->filter_output(*this, stanza)) return;
    out_.clear();
    xml::serialize(stanza, &out_);
    bytes_ += out_.size();
    ++delivered_;
  }
  void deliver_raw(std::string_view xml) override {
    bytes_ += xml.size();
    ++delivered_;
  }
  void kick(std::string_view, std::string_view) override {}

  const std::string& last() const { return out_; }
  uint64_t delivered() const { return delivered_; }
  uint64_t bytes() const { return bytes_; }

 private:
  xmpp::Jid jid_;
  modules::Host** host_;
  std::string out_;  // reused, like the reactor's g_out
  uint64_t delivered_ = 0;
  uint64_t bytes_ = 0;
};

// The c2s stream of one bound client: parser callbacks to Host::route, with
// C2sStream::handle_stanza's 'from' stamping and type check.
class MemoryStream : public xml::StreamParser::Handler {
 public:
  MemoryStream(MemorySession* session, modules::Host** host)
      : session_(session), host_(host), parser_(this, xml::ParserLimits{}) {}

  bool feed(std::string_view bytes) { return parser_.feed(bytes) && !failed_; }
  uint64_t routed() const { return routed_; }

  void on_stream_start(const xml::Element&) override {}
  void on_stream_end() override { failed_ = true; }
  void on_stream_error(xml::StreamError error, std::string_view text) override {
    std::fprintf(stderr, "hotpath: stream error %s: %.*s\n", xml::stream_error_name(error),
                 static_cast<int>(text.size()), text.data());
    failed_ = true;
  }
  void on_stanza(xml::Element& st) override {
    if (st.ns != xml::kNsClient) return;
    const xmpp::Jid& jid = session_->jid();
    std::string full = jid.full();
    std::string_view from = st.attr("from");
    if (!from.empty()) {
      Result<xmpp::Jid> f = xmpp::Jid::parse(from);
      if (!f.ok() || (f.value() != jid && f.value() != jid.bare_jid())) {
        failed_ = true;
        return;
      }
    }
    st.set_attr("from", full);
    std::string_view type = st.attr("type");
    if (st.name == "message" && !type.empty() && type != "chat" && type != "normal" &&
        type != "groupchat" && type != "headline" && type != "error") {
      failed_ = true;
      return;
    }
    ++routed_;
    (*host_)->route(st, *session_);
  }

 private:
  MemorySession* session_;
  modules::Host** host_;
  xml::StreamParser parser_;
  bool failed_ = false;
  uint64_t routed_ = 0;
};

struct Options {
  uint64_t iterations = 10000;
  uint64_t warmup = 200;
  uint64_t batch = 1;
  bool mam = true;
  // --presence R: instead of messages, one available presence of a hub
  // broadcast to R contacts' sessions per iteration.
  uint64_t presence = 0;
};

bool parse_args(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto number = [&](uint64_t* v) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      *v = std::strtoull(argv[++i], &end, 10);
      return end != nullptr && *end == '\0';
    };
    if (a == "--iterations") {
      if (!number(&o->iterations) || o->iterations == 0) return false;
    } else if (a == "--warmup") {
      if (!number(&o->warmup)) return false;
    } else if (a == "--batch") {
      if (!number(&o->batch) || o->batch == 0) return false;
    } else if (a == "--presence") {
      if (!number(&o->presence) || o->presence == 0) return false;
    } else if (a == "--no-mam") {
      o->mam = false;
    } else {
      return false;
    }
  }
  return true;
}

// Everything the reactor holds for two bound clients.
class Bench {
 public:
  ~Bench() {
    raw_ = nullptr;
    host_.reset();
    env_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  Status open(const Options& o) {
    batch_ = o.batch;
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-hotpath-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return make_error("mkdtemp failed");
    dir_ = tmpl;
    config_.domain = std::string(kDomain);
    config_.data_dir = dir_;
    if (!o.mam) config_.disabled_modules.push_back("mam");
    storage::EnvOptions eo;
    eo.dbs = modules::Host::all_tables();
    Result<std::unique_ptr<storage::Env>> env = storage::Env::open(config_.data_path(), eo);
    if (!env.ok()) return env.error();
    env_ = std::move(env.value());
    Result<std::unique_ptr<core::Loop>> loop = core::Loop::create();
    if (!loop.ok()) return loop.error();
    loop_ = std::move(loop.value());
    modules::Host::Deps deps;
    deps.config = &config_;
    deps.loop = loop_.get();
    deps.router = &router_;
    deps.db = env_.get();
    Result<std::unique_ptr<modules::Host>> host = modules::Host::create(deps);
    if (!host.ok()) return host.error();
    host_ = std::move(host.value());
    raw_ = host_.get();
    host_->set_users({"alice", "bob"});
    for (MemorySession* s : {&alice_, &bob_}) {
      router_.bind(s);
      host_->session_bound(*s);
    }
    // Contacts with a mutual subscription, both online, roster fetched and
    // carbons enabled: what two ordinary clients look like.
    const char* setup[][2] = {
        {"a", "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>"},
        {"b", "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>"},
        {"a", "<iq type='set' id='c0'><enable xmlns='urn:xmpp:carbons:2'/></iq>"},
        {"b", "<iq type='set' id='c0'><enable xmlns='urn:xmpp:carbons:2'/></iq>"},
        {"a", "<presence/>"},
        {"b", "<presence/>"},
        {"a", "<presence to='bob@example.org' type='subscribe'/>"},
        {"b", "<presence to='alice@example.org' type='subscribed'/>"},
        {"b", "<presence to='alice@example.org' type='subscribe'/>"},
        {"a", "<presence to='bob@example.org' type='subscribed'/>"},
    };
    if (!alice_stream_.feed(kStreamHeader) || !bob_stream_.feed(kStreamHeader))
      return make_error("stream header refused");
    for (auto& [who, xml] : setup) {
      MemoryStream& s = who[0] == 'a' ? alice_stream_ : bob_stream_;
      if (!s.feed(xml)) return make_error(std::string("setup stanza refused: ") + xml);
      host_->end_turn();
    }
    if (!alice_.carbons() || !bob_.carbons() || !alice_.available() || !bob_.available())
      return make_error("setup: the sessions are not available with carbons on");
    if (o.presence > 0) return open_contacts(o.presence);
    return {};
  }

  // R contacts of alice, each online with one session, subscribed to
  // alice's presence (alice's roster: subscription 'from' for each).
  Status open_contacts(uint64_t r) {
    std::vector<std::string> names{"alice", "bob"};
    for (uint64_t i = 0; i < r; ++i)
      names.push_back("c" + std::to_string(i));
    host_->set_users(names);
    for (uint64_t i = 0; i < r; ++i) {
      auto session =
          std::make_unique<MemorySession>("c" + std::to_string(i) + "@example.org/pc", &raw_);
      auto stream = std::make_unique<MemoryStream>(session.get(), &raw_);
      router_.bind(session.get());
      host_->session_bound(*session);
      if (!stream->feed(kStreamHeader) || !stream->feed("<presence/>"))
        return make_error("contact setup refused");
      host_->end_turn();
      if (!stream->feed("<presence to='alice@example.org' type='subscribe'/>"))
        return make_error("contact subscribe refused");
      host_->end_turn();
      std::string ok = "<presence to='c" + std::to_string(i) + "@example.org' type='subscribed'/>";
      if (!alice_stream_.feed(ok)) return make_error("subscribed refused");
      host_->end_turn();
      contacts_.push_back(std::move(session));
      contact_streams_.push_back(std::move(stream));
    }
    return {};
  }

  // One broadcast of alice's available presence to her R contacts (and
  // her own sessions), then the turn end.
  bool presence() {
    std::string p = "<presence><status>round " + std::to_string(++round_) + "</status></presence>";
    bool ok = alice_stream_.feed(p);
    host_->end_turn();
    return ok;
  }
  uint64_t contact_deliveries() const {
    uint64_t n = 0;
    for (const auto& c : contacts_)
      n += c->delivered();
    return n;
  }
  const MemorySession& contact(size_t i) const { return *contacts_[i]; }

  // One message: parse, route, deliver (serialise); the turn end after
  // every batch_ messages.
  bool message() {
    bool ok = alice_stream_.feed(kMessage);
    if (++in_turn_ == batch_) {
      host_->end_turn();
      in_turn_ = 0;
    }
    return ok;
  }
  void finish_turn() {
    if (in_turn_ != 0) host_->end_turn();
    in_turn_ = 0;
  }

  const MemorySession& bob() const { return bob_; }
  uint64_t routed() const { return alice_stream_.routed(); }

  uint64_t archived() {
    if (!config_.module_enabled("mam")) return 0;
    // Rows only (user \0 'm' pos), not the index keys ('w').
    Result<storage::Dbi> dbi = env_->db("archive");
    if (!dbi.ok()) return 0;
    Result<storage::ReadTxn> txn = env_->read();
    if (!txn.ok()) return 0;
    uint64_t n = 0;
    (void)txn->for_each(dbi.value(), "", [&](std::string_view key, std::string_view) {
      size_t z = key.find('\0');
      if (z != std::string_view::npos && z + 1 < key.size() && key[z + 1] == 'm') ++n;
      return true;
    });
    return n;
  }

 private:
  std::string dir_;
  config::Config config_;
  std::unique_ptr<storage::Env> env_;
  std::unique_ptr<core::Loop> loop_;
  xmpp::Router router_{std::string(kDomain)};
  std::unique_ptr<modules::Host> host_;
  modules::Host* raw_ = nullptr;
  MemorySession alice_{"alice@example.org/a", &raw_};
  MemorySession bob_{"bob@example.org/pc", &raw_};
  MemoryStream alice_stream_{&alice_, &raw_};
  MemoryStream bob_stream_{&bob_, &raw_};
  uint64_t batch_ = 1;
  uint64_t in_turn_ = 0;
  uint64_t round_ = 0;
  std::vector<std::unique_ptr<MemorySession>> contacts_;
  std::vector<std::unique_ptr<MemoryStream>> contact_streams_;
};

Bench* g_bench = nullptr;

}  // namespace
}  // namespace hearth::bench

// The measured unit: callgrind's --toggle-collect names this function. Not
// inlined and not in a namespace, so its symbol is exactly this name.
extern "C" __attribute__((noinline)) bool hearth_hotpath_message() {
  return hearth::bench::g_bench->message();
}

// One presence broadcast to --presence R contacts (callgrind:
// --toggle-collect=hearth_hotpath_presence; Ir / R per recipient).
extern "C" __attribute__((noinline)) bool hearth_hotpath_presence() {
  return hearth::bench::g_bench->presence();
}

namespace hearth::bench {
namespace {

int run_presence(Bench& bench, const Options& o) {
  for (uint64_t i = 0; i < o.warmup; ++i) {
    if (!bench.presence()) return 1;
  }
  const uint64_t before = bench.contact_deliveries();
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  };
  const double c0 = cpu_now();
  for (uint64_t i = 0; i < o.iterations; ++i) {
    if (!hearth_hotpath_presence()) {
      std::fprintf(stderr, "hotpath: broadcast %llu refused\n", static_cast<unsigned long long>(i));
      return 1;
    }
  }
  const double cpu_ns = cpu_now() - c0;
  const uint64_t delivered = bench.contact_deliveries() - before;
  const uint64_t expected = o.iterations * o.presence;
  std::printf("broadcasts: %llu  contacts: %llu  mam: %s\n",
              static_cast<unsigned long long>(o.iterations),
              static_cast<unsigned long long>(o.presence), o.mam ? "on" : "off");
  std::printf("delivered to contacts: %llu\n", static_cast<unsigned long long>(delivered));
  std::printf("last delivered: %s\n", bench.contact(0).last().c_str());
  std::printf("CPU time per presence recipient: %.2f us\n",
              cpu_ns / 1000.0 / static_cast<double>(expected));
  if (delivered != expected) {
    std::fprintf(stderr, "hotpath: contacts received %llu of %llu presences\n",
                 static_cast<unsigned long long>(delivered),
                 static_cast<unsigned long long>(expected));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace hearth::bench

int main(int argc, char** argv) {
  using namespace hearth::bench;
  Options o;
  if (!parse_args(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: hotpath [--iterations N] [--batch B] [--warmup W] [--no-mam]\n"
                 "               [--presence R]\n"
                 "  routes N chat messages alice -> bob in memory; the turn end (mam's\n"
                 "  LMDB commit) runs after every B messages\n"
                 "  --presence R: N broadcasts of alice's presence to R subscribed contacts\n");
    return 2;
  }
  auto bench = std::make_unique<Bench>();
  if (hearth::Status s = bench->open(o); !s.ok()) {
    std::fprintf(stderr, "hotpath: %s\n", s.error().message.c_str());
    return 1;
  }
  g_bench = bench.get();
  if (o.presence > 0) {
    int rc = run_presence(*bench, o);
    g_bench = nullptr;
    return rc;
  }
  // Warm-up (caches, hash tables, the arenas' first blocks): not measured.
  for (uint64_t i = 0; i < o.warmup; ++i) {
    if (!bench->message()) return 1;
  }
  bench->finish_turn();
  const uint64_t before = bench->bob().delivered();
  const uint64_t archived_before = bench->archived();

  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  };
  const double c0 = cpu_now();
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < o.iterations; ++i) {
    if (!hearth_hotpath_message()) {
      std::fprintf(stderr, "hotpath: message %llu refused\n", static_cast<unsigned long long>(i));
      return 1;
    }
  }
  bench->finish_turn();
  auto t1 = std::chrono::steady_clock::now();
  const double cpu_ns = cpu_now() - c0;

  const uint64_t delivered = bench->bob().delivered() - before;
  const uint64_t archived = bench->archived() - archived_before;
  double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  std::printf("messages: %llu  batch: %llu  mam: %s\n",
              static_cast<unsigned long long>(o.iterations),
              static_cast<unsigned long long>(o.batch), o.mam ? "on" : "off");
  std::printf("delivered to bob: %llu  archive rows added: %llu\n",
              static_cast<unsigned long long>(delivered),
              static_cast<unsigned long long>(archived));
  std::printf("last delivered: %s\n", bench->bob().last().c_str());
  // Wall time includes waiting for LMDB's fsync of each commit; CPU time
  // (user + system) is what the server spends.
  std::printf("wall time per routed message: %.2f us\n", ns / 1000.0 / o.iterations);
  std::printf("CPU time per routed message: %.2f us\n", cpu_ns / 1000.0 / o.iterations);
  if (delivered != o.iterations) {
    std::fprintf(stderr, "hotpath: bob received %llu of %llu messages\n",
                 static_cast<unsigned long long>(delivered),
                 static_cast<unsigned long long>(o.iterations));
    return 1;
  }
  if (o.mam && archived != 2 * o.iterations) {
    std::fprintf(stderr, "hotpath: %llu archive rows for %llu messages (expected two each)\n",
                 static_cast<unsigned long long>(archived),
                 static_cast<unsigned long long>(o.iterations));
    return 1;
  }
  g_bench = nullptr;
  return 0;
}
