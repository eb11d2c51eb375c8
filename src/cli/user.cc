#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/loop.h"
#include "ipc/frame.h"
#include "ipc/messages.h"
#include "modules/host.h"
#include "proc/privdrop.h"
#include "proc/proc.h"
#include "storage/env.h"
#include "xmpp/account_store.h"
#include "xmpp/jid.h"
#include "xmpp/password_policy.h"
#include "xmpp/router.h"

namespace hearth::cli {
namespace {

// Wipes itself: passwords never outlive their use.
struct Secret {
  std::string value;
  ~Secret() { sodium_memzero(value.data(), value.size()); }
};

constexpr size_t kMaxPassword = 1024;

// One line from fd, without the newline.
Result<std::string> read_line(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    if (line.size() >= kMaxPassword) {
      sodium_memzero(line.data(), line.size());
      return make_error("password longer than 1024 bytes");
    }
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> prompt_password(const char* prompt) {
  fputs(prompt, stderr);
  fflush(stderr);
  struct termios old, quiet;
  bool tty = tcgetattr(0, &old) == 0;
  if (tty) {
    quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(0, TCSAFLUSH, &quiet);
  }
  Result<std::string> line = read_line(0);
  if (tty) {
    tcsetattr(0, TCSAFLUSH, &old);
    fputs("\n", stderr);
  }
  return line;
}

// --password PASS | --password-file FILE | stdin (asked twice on a terminal).
Status get_password(const std::vector<std::string>& options, Secret* out) {
  for (size_t i = 0; i < options.size(); ++i) {
    if (options[i] == "--password") {
      if (i + 1 >= options.size()) return make_error("--password needs a value");
      out->value = options[i + 1];
      return {};
    }
    if (options[i] == "--password-file") {
      if (i + 1 >= options.size()) return make_error("--password-file needs a file name");
      int fd = open(options[i + 1].c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return make_error("cannot read " + options[i + 1] + ": " + strerror(errno));
      Result<std::string> line = read_line(fd);
      close(fd);
      if (!line.ok()) return line.error();
      out->value = std::move(line.value());
      return {};
    }
  }
  if (isatty(0)) {
    Result<std::string> first = prompt_password("Password: ");
    if (!first.ok()) return first.error();
    Secret a{std::move(first.value())};
    Result<std::string> second = prompt_password("Again: ");
    if (!second.ok()) return second.error();
    Secret b{std::move(second.value())};
    if (a.value.size() != b.value.size() ||
        sodium_memcmp(a.value.data(), b.value.data(), a.value.size()) != 0)
      return make_error("the passwords differ");
    out->value = a.value;
    return {};
  }
  Result<std::string> line = read_line(0);
  if (!line.ok()) return line.error();
  out->value = std::move(line.value());
  return {};
}

// The options after JID must be password options only.
Status check_options(const std::vector<std::string>& rest, size_t from, bool password_allowed) {
  for (size_t i = from; i < rest.size(); ++i) {
    if (password_allowed && (rest[i] == "--password" || rest[i] == "--password-file")) {
      ++i;
      continue;
    }
    return make_error("unexpected argument '" + rest[i] + "'");
  }
  return {};
}

// Sends `request` to the running server's control socket. Returns false
// when no server listens there (then the caller works on the file itself).
// For a list, follows AccountReply::more and collects every name.
Result<bool> ask_server(const std::string& path, ipc::AccountRequest* request,
                        std::vector<std::string>* names) {
  for (;;) {
    struct sockaddr_un addr {};
    if (path.size() >= sizeof addr.sun_path) return false;
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(std::string("socket: ") + strerror(errno));
    if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
      int e = errno;
      close(fd);
      if (e == ENOENT || e == ECONNREFUSED) return false;  // no server running
      return make_error("cannot reach the server at " + path + ": " + strerror(e));
    }
    ipc::Frame f;
    f.type = static_cast<uint16_t>(ipc::MsgType::kAccountRequest);
    f.id = 1;
    f.payload = request->encode();
    Result<ipc::Frame> reply = ipc::call(fd, f, 15000);
    f.wipe_payload();
    close(fd);
    if (!reply.ok())
      return make_error("the server did not answer (" + reply.error().message +
                        "); is it starting or stopping? try again");
    Result<ipc::AccountReply> r = ipc::AccountReply::decode(reply->payload);
    if (!r.ok()) return r.error();
    if (!r->ok) return make_error(r->error);
    names->insert(names->end(), r->names.begin(), r->names.end());
    if (!r->more || r->names.empty()) return true;
    request->username = r->names.back();  // the next page starts after it
  }
}

}  // namespace

// The server is not running: do what its reactor would do when an account
// is removed. The modules clean up after the user (e.g. the contacts'
// rosters), then every key of the user goes from every table of data.mdb.
Status forget_user(const config::Config& cfg, xmpp::AccountStore& accounts,
                   const std::string& username) {
  storage::EnvOptions options;
  options.dbs = modules::Host::all_tables();
  Result<std::unique_ptr<storage::Env>> db = storage::Env::open(cfg.data_path(), options);
  if (!db.ok()) return db.error();
  Result<std::unique_ptr<core::Loop>> loop = core::Loop::create();
  if (!loop.ok()) return loop.error();
  xmpp::Router router(cfg.domain);
  modules::Host::Deps deps;
  deps.config = &cfg;
  deps.loop = loop->get();
  deps.router = &router;
  deps.db = db->get();
  Result<std::unique_ptr<modules::Host>> host = modules::Host::create(deps);
  if (!host.ok()) return host.error();
  Result<std::vector<std::string>> names = accounts.list();
  if (!names.ok()) return names.error();
  (*host)->set_users(std::move(names.value()));
  (*host)->account_removed(username);
  return {};
}

int cmd_user(const std::string& action, const Args& args) {
  bool needs_jid = action == "add" || action == "passwd" || action == "del";
  if (!needs_jid && action != "list")
    return usage_error("unknown user action '" + action + "'; use add, passwd, del or list");
  Result<config::Config> cfg = config::load_file(args.config_path);
  if (!cfg.ok()) return fail(cfg.error().message);

  std::string username;
  if (needs_jid) {
    if (args.rest.empty())
      return usage_error("user " + action + " needs a JID (user@" + cfg->domain + ")");
    Result<xmpp::Jid> jid = xmpp::Jid::parse(args.rest[0]);
    if (!jid.ok()) return fail("invalid JID '" + args.rest[0] + "': " + jid.error().message);
    if (!jid->has_local() || jid->has_resource())
      return fail("'" + args.rest[0] + "' is not an account JID; write user@" + cfg->domain);
    if (jid->domain() != cfg->domain)
      return fail("this server serves " + cfg->domain + ", not " + jid->domain());
    username = jid->local();
    if (Status s = check_options(args.rest, 1, action != "del"); !s.ok())
      return usage_error(s.error().message);
  } else if (Status s = check_options(args.rest, 0, false); !s.ok()) {
    return usage_error(s.error().message);
  }

  // Read the password first: --password-file may be readable only by us.
  Secret password;
  if (action == "add" || action == "passwd") {
    if (Status s = get_password(args.rest, &password); !s.ok()) return fail(s.error().message);
  }
  // As root, work as the service user, so that accounts.mdb belongs to the
  // auth worker that opens it.
  Result<proc::ServiceUser> user = proc::resolve_service_user(cfg->user);
  if (!user.ok()) return fail(user.error().message);
  if (Status s = proc::prepare_data_dir(cfg->data_dir, user.value()); !s.ok())
    return fail(s.error().message);
  if (Status s = proc::drop_privileges(user.value()); !s.ok()) return fail(s.error().message);
  if ((action == "add" || action == "passwd") && password.value.empty())
    return fail("empty password");
  if (action == "add" || action == "passwd") {
    Status s =
        xmpp::check_password(password.value, username, cfg->domain, cfg->min_password_length);
    if (!s.ok()) return fail(s.error().message);
  }
  std::string jid = username + "@" + cfg->domain;

  ipc::AccountRequest request;
  request.op = action == "add"      ? ipc::AccountRequest::Op::kCreate
               : action == "passwd" ? ipc::AccountRequest::Op::kSetPassword
               : action == "del"    ? ipc::AccountRequest::Op::kRemove
                                    : ipc::AccountRequest::Op::kList;
  request.username = username;
  request.password = password.value;
  request.iterations = cfg->scram_iterations;

  std::vector<std::string> names;
  // While the server runs, its auth worker does the work (it owns the
  // accounts); otherwise we open accounts.mdb ourselves.
  Result<bool> remote = ask_server(proc::control_socket_path(cfg->data_dir), &request, &names);
  if (!remote.ok()) return fail(remote.error().message);
  if (!remote.value()) {
    Result<std::unique_ptr<xmpp::AccountStore>> store =
        xmpp::AccountStore::open(cfg->accounts_path());
    if (!store.ok()) return fail(store.error().message);
    xmpp::AccountStore& accounts = *store.value();
    Status s;
    if (action == "list") {
      Result<std::vector<std::string>> all = accounts.list();
      if (!all.ok()) return fail(all.error().message);
      names = std::move(all.value());
    } else if (action == "del") {
      s = accounts.remove(username);
      if (s.ok()) s = forget_user(*cfg, accounts, username);
    } else if (action == "add") {
      s = accounts.create(username, password.value, cfg->scram_iterations);
    } else {
      s = accounts.set_password(username, password.value, cfg->scram_iterations);
    }
    if (!s.ok()) return fail(s.error().message);
  }
  if (action == "list") {
    for (const std::string& n : names)
      printf("%s@%s\n", n.c_str(), cfg->domain.c_str());
  } else if (action == "del") {
    printf("deleted %s\n", jid.c_str());
  } else {
    printf(action == "add" ? "created %s\n" : "password changed for %s\n", jid.c_str());
  }
  return 0;
}

}  // namespace hearth::cli
