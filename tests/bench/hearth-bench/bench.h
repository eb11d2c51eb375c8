// The scenarios of hearth-bench and the report they fill.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client.h"
#include "loop.h"
#include "scram.h"

namespace hearth::bench {

struct Settings {
  ServerConfig server;
  int users = 100;                    // accounts 0..users-1 exist (logins cycle through them)
  pid_t pid = 0;                      // server to measure (0: client-side figures only)
  std::vector<int> steps{100, 1000};  // footprint session counts
  int concurrency = 50;               // logins in flight at once
  int logins = 200;                   // logins scenario: count per phase
  int login_concurrency = 20;
  int pairs = 20;         // messages scenario
  double duration = 5.0;  // seconds of sending (messages), cap for logins
  long max_messages = 1000000;
  int window = 8;    // messages in flight per sender
  int roster = 200;  // presence scenario: contacts
  int rounds = 20;   // presence broadcasts
  int mam_fill = 2000;
  int mam_queries = 20;
  double timeout = 60.0;  // cap of any one wait
  double settle = 1.0;    // seconds before a memory reading
  bool verbose = false;
};

struct Metric {
  std::string key;  // scenario.name
  double value;
  std::string unit;
};

class Bench {
 public:
  explicit Bench(Settings s);
  // Runs one scenario by name; false if it could not run (reason printed).
  bool run(const std::string& scenario);
  const std::vector<Metric>& metrics() const { return metrics_; }
  void print_table(const std::string& label) const;
  bool write_json(const std::string& file, const std::string& label) const;

 private:
  bool footprint();
  bool logins();
  bool messages();
  bool presence();
  bool mam();
  bool echo();

  std::unique_ptr<Client> make(int user, const std::string& resource, bool presence);
  // Logs in `cs` with at most `concurrency` in flight; latencies in ms.
  // Returns the number that failed.
  int login_all(const std::vector<Client*>& cs, int concurrency, std::vector<double>* lat_ms,
                bool close_when_ready);
  // What a run of traffic took: wall clock (ns) and server CPU (us) from
  // its start to its end, and whether all that was sent arrived.
  struct Burst {
    int64_t t0, t1;
    long long cpu0, cpu1;
    bool drained;
  };
  // Puts --window sends in flight for each of `pairs` (send_one(pair)), runs
  // the loop while the handlers keep sending, for --duration or until
  // `sent` reaches --max-messages, then clears *sending and waits up to
  // 10 s for arrived().
  Burst burst(int pairs, const std::function<void(int)>& send_one, const long& sent, bool* sending,
              const std::function<bool()>& arrived);
  // Runs the loop until pred() or `timeout` seconds; returns pred().
  bool run_until(const std::function<bool()>& pred, double timeout);
  void pump(double seconds);
  // Pumps until the server's CPU use falls quiet (what a previous scenario
  // left, like closing 10 000 sessions, must not count for the next).
  void quiesce();
  long long cpu_us() const;
  void add(const std::string& key, double value, const std::string& unit);
  void add_percentiles(const std::string& key, std::vector<double> v, const std::string& unit,
                       bool p999);

  Settings s_;
  Loop loop_;
  SaltCache salts_;
  std::vector<Metric> metrics_;
};

}  // namespace hearth::bench
