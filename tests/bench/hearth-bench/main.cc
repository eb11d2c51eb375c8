// hearth-bench: an XMPP load generator for any standards-compliant server.
//
//   hearth-bench --port 5222 --domain localhost --user-pattern bench%d
//       --password-pattern bench-pass-%d-xq --pid $(pidof hearth)
//       footprint logins messages presence mam
//   hearth-bench echo-server --port 5299 --cert cert.pem --key key.pem
//   hearth-bench --port 5299 --pid $(pidof hearth-bench-echo) echo
//
// One thread and one epoll loop drive every connection. Server memory and
// CPU are read from /proc for --pid and all its descendants.
#include <getopt.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.h"
#include "echo.h"
#include "procstat.h"

namespace {

using hearth::bench::Bench;
using hearth::bench::Mech;
using hearth::bench::Settings;
using hearth::bench::TlsMode;

void usage(FILE* out) {
  fprintf(out,
          "usage: hearth-bench [options] SCENARIO...   (footprint logins messages presence mam, "
          "or all; echo)\n"
          "       hearth-bench echo-server [--host ADDR] --port N --cert PEM --key PEM\n"
          "  echo-server: a bare wolfSSL TLS relay (lines from connection 2k go to 2k+1);\n"
          "  the echo scenario runs the messages load against it (--port, --pid, --pairs)\n"
          "server:\n"
          "  --host ADDR            numeric address (127.0.0.1)\n"
          "  --port N               c2s port (5222; the direct TLS port with --tls direct)\n"
          "  --domain D             XMPP domain (localhost)\n"
          "  --user-pattern P       user names, %%d is the index (bench%%d)\n"
          "  --password PW          one password for every user, or\n"
          "  --password-pattern P   per-user passwords with %%d\n"
          "  --users N              accounts 0..N-1 exist (100); logins cycle through them\n"
          "  --tls starttls|direct  (starttls)\n"
          "  --mech SCRAM-SHA-1|SCRAM-SHA-256|auto   (auto: SHA-256 when offered)\n"
          "  --pid PID              server process to measure (with its children)\n"
          "  --stat-cpu             CPU from /proc/PID/stat ticks, not schedstat\n"
          "scenarios:\n"
          "  --steps N,N,...        footprint session counts (100,1000)\n"
          "  --concurrency N        logins in flight while setting up sessions (50)\n"
          "  --logins N             logins scenario: logins per phase (200)\n"
          "  --login-concurrency N  concurrent phase: logins in flight (20)\n"
          "  --pairs N              messages: sender/receiver pairs (20)\n"
          "  --duration S           messages: seconds of sending (5); logins cap: 4x this\n"
          "  --max-messages N       messages: cap on messages sent (1000000)\n"
          "  --window N             messages in flight per sender (8)\n"
          "  --roster N             presence: online contacts of the broadcaster (200)\n"
          "  --rounds N             presence: broadcasts (20)\n"
          "  --mam-fill N           mam: archive size (2000)\n"
          "  --mam-queries N        mam: queries per position (20)\n"
          "  --timeout S            cap on any single wait (60)\n"
          "  --settle S             pause before a memory reading (1)\n"
          "output:\n"
          "  --json FILE            also write the results as JSON\n"
          "  --label NAME           name of this server in the output\n"
          "  -v                     print each figure as it is measured\n");
}

bool parse_steps(const char* s, std::vector<int>* out) {
  out->clear();
  std::string v(s);
  size_t i = 0;
  while (i <= v.size()) {
    size_t e = v.find(',', i);
    if (e == std::string::npos) e = v.size();
    std::string tok = v.substr(i, e - i);
    tok.erase(std::remove(tok.begin(), tok.end(), ' '), tok.end());
    int n = atoi(tok.c_str());
    if (n <= 0) return false;
    out->push_back(n);
    i = e + 1;
  }
  std::sort(out->begin(), out->end());
  return !out->empty();
}

void raise_nofile(int need) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rlim_t want = static_cast<rlim_t>(need);
  if (rl.rlim_cur >= want) return;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  if (rl.rlim_max < want) {
    rlimit up{want, want};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return;  // root may raise the hard limit
  }
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want) {
    fprintf(stderr, "hearth-bench: warning: RLIMIT_NOFILE is %llu, %d wanted\n",
            static_cast<unsigned long long>(rl.rlim_cur), need);
  }
}

int echo_server_main(int argc, char** argv) {
  hearth::bench::EchoServerOptions o;
  static const option kOpts[] = {
      {"host", required_argument, nullptr, 'H'},
      {"port", required_argument, nullptr, 'p'},
      {"cert", required_argument, nullptr, 'c'},
      {"key", required_argument, nullptr, 'k'},
      {nullptr, 0, nullptr, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", kOpts, nullptr)) != -1) {
    switch (c) {
      case 'H':
        o.host = optarg;
        break;
      case 'p':
        o.port = atoi(optarg);
        break;
      case 'c':
        o.cert = optarg;
        break;
      case 'k':
        o.key = optarg;
        break;
      default:
        usage(stderr);
        return 2;
    }
  }
  if (o.port <= 0 || o.cert.empty() || o.key.empty()) {
    fprintf(stderr, "hearth-bench echo-server: give --port, --cert and --key\n");
    return 2;
  }
  rlimit rl{};  // one descriptor per connection: take the hard limit
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  return hearth::bench::run_echo_server(o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "echo-server") == 0) return echo_server_main(argc - 1, argv + 1);
  Settings s;
  std::string json, label = "server";
  enum {
    kHost = 1000,
    kPort,
    kDomain,
    kUserPattern,
    kPassword,
    kPasswordPattern,
    kUsers,
    kTls,
    kMech,
    kPid,
    kStatCpu,
    kSteps,
    kConcurrency,
    kLogins,
    kLoginConcurrency,
    kPairs,
    kDuration,
    kMaxMessages,
    kWindow,
    kRoster,
    kRounds,
    kMamFill,
    kMamQueries,
    kTimeout,
    kSettle,
    kJson,
    kLabel,
    kHelp
  };
  static const option kOpts[] = {
      {"host", required_argument, nullptr, kHost},
      {"port", required_argument, nullptr, kPort},
      {"domain", required_argument, nullptr, kDomain},
      {"user-pattern", required_argument, nullptr, kUserPattern},
      {"password", required_argument, nullptr, kPassword},
      {"password-pattern", required_argument, nullptr, kPasswordPattern},
      {"users", required_argument, nullptr, kUsers},
      {"tls", required_argument, nullptr, kTls},
      {"mech", required_argument, nullptr, kMech},
      {"pid", required_argument, nullptr, kPid},
      {"stat-cpu", no_argument, nullptr, kStatCpu},
      {"steps", required_argument, nullptr, kSteps},
      {"concurrency", required_argument, nullptr, kConcurrency},
      {"logins", required_argument, nullptr, kLogins},
      {"login-concurrency", required_argument, nullptr, kLoginConcurrency},
      {"pairs", required_argument, nullptr, kPairs},
      {"duration", required_argument, nullptr, kDuration},
      {"max-messages", required_argument, nullptr, kMaxMessages},
      {"window", required_argument, nullptr, kWindow},
      {"roster", required_argument, nullptr, kRoster},
      {"rounds", required_argument, nullptr, kRounds},
      {"mam-fill", required_argument, nullptr, kMamFill},
      {"mam-queries", required_argument, nullptr, kMamQueries},
      {"timeout", required_argument, nullptr, kTimeout},
      {"settle", required_argument, nullptr, kSettle},
      {"json", required_argument, nullptr, kJson},
      {"label", required_argument, nullptr, kLabel},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "vh", kOpts, nullptr)) != -1) {
    switch (c) {
      case kHost:
        s.server.host = optarg;
        break;
      case kPort:
        s.server.port = atoi(optarg);
        break;
      case kDomain:
        s.server.domain = optarg;
        break;
      case kUserPattern:
        s.server.user_pattern = optarg;
        break;
      case kPassword:
        s.server.password = optarg;
        break;
      case kPasswordPattern:
        s.server.password_pattern = optarg;
        break;
      case kUsers:
        s.users = atoi(optarg);
        break;
      case kTls:
        if (strcmp(optarg, "starttls") == 0)
          s.server.tls = TlsMode::kStartTls;
        else if (strcmp(optarg, "direct") == 0)
          s.server.tls = TlsMode::kDirect;
        else {
          fprintf(stderr, "hearth-bench: --tls starttls or direct\n");
          return 2;
        }
        break;
      case kMech:
        if (strcmp(optarg, "SCRAM-SHA-1") == 0)
          s.server.mech = Mech::kScramSha1;
        else if (strcmp(optarg, "SCRAM-SHA-256") == 0)
          s.server.mech = Mech::kScramSha256;
        else if (strcmp(optarg, "auto") == 0)
          s.server.mech = Mech::kAuto;
        else {
          fprintf(stderr, "hearth-bench: --mech SCRAM-SHA-1, SCRAM-SHA-256 or auto\n");
          return 2;
        }
        break;
      case kPid:
        s.pid = static_cast<pid_t>(atoi(optarg));
        break;
      case kStatCpu:
        hearth::bench::g_use_schedstat = false;
        break;
      case kSteps:
        if (!parse_steps(optarg, &s.steps)) {
          fprintf(stderr, "hearth-bench: --steps wants positive numbers like 100,1000\n");
          return 2;
        }
        break;
      case kConcurrency:
        s.concurrency = std::max(1, atoi(optarg));
        break;
      case kLogins:
        s.logins = std::max(1, atoi(optarg));
        break;
      case kLoginConcurrency:
        s.login_concurrency = std::max(1, atoi(optarg));
        break;
      case kPairs:
        s.pairs = std::max(1, atoi(optarg));
        break;
      case kDuration:
        s.duration = std::max(0.1, atof(optarg));
        break;
      case kMaxMessages:
        s.max_messages = std::max(1L, atol(optarg));
        break;
      case kWindow:
        s.window = std::max(1, atoi(optarg));
        break;
      case kRoster:
        s.roster = std::max(1, atoi(optarg));
        break;
      case kRounds:
        s.rounds = std::max(1, atoi(optarg));
        break;
      case kMamFill:
        s.mam_fill = std::max(100, atoi(optarg));
        break;
      case kMamQueries:
        s.mam_queries = std::max(1, atoi(optarg));
        break;
      case kTimeout:
        s.timeout = std::max(1.0, atof(optarg));
        break;
      case kSettle:
        s.settle = std::max(0.0, atof(optarg));
        break;
      case kJson:
        json = optarg;
        break;
      case kLabel:
        label = optarg;
        break;
      case 'v':
        s.verbose = true;
        break;
      case 'h':
      case kHelp:
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return 2;
    }
  }
  std::vector<std::string> scenarios;
  for (int i = optind; i < argc; ++i) {
    if (strcmp(argv[i], "all") == 0) {
      scenarios = {"footprint", "logins", "messages", "presence", "mam"};
    } else {
      scenarios.push_back(argv[i]);
    }
  }
  if (scenarios.empty()) {
    usage(stderr);
    return 2;
  }
  bool xmpp = std::any_of(scenarios.begin(), scenarios.end(),
                          [](const std::string& sc) { return sc != "echo"; });
  if (xmpp && s.server.password.empty() && s.server.password_pattern.empty()) {
    fprintf(stderr, "hearth-bench: give --password or --password-pattern\n");
    return 2;
  }
  int need = std::max({s.steps.back(), 2 * s.pairs, s.roster + 1, s.logins});
  raise_nofile(need + 256);
  if (!hearth::bench::tls_init()) {
    fprintf(stderr, "hearth-bench: wolfSSL initialisation failed\n");
    return 2;
  }
  Bench bench(s);
  int failed = 0;
  for (const std::string& sc : scenarios)
    failed += bench.run(sc) ? 0 : 1;
  bench.print_table(label);
  if (!json.empty() && !bench.write_json(json, label)) {
    fprintf(stderr, "hearth-bench: cannot write %s\n", json.c_str());
    return 2;
  }
  return failed == 0 ? 0 : 1;
}
