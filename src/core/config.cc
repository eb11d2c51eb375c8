#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "core/ini.h"

namespace hearth::config {
namespace {

constexpr size_t kMaxFileSize = 1 << 20;

struct Row;
// Fills a Config field from the raw (trimmed, still quoted) value. Returns ""
// or "what is wrong; what to write instead" without the file:line prefix.
using Setter = std::string (*)(const Row& row, std::string_view raw, Config* config);

// One key: the public KeyInfo plus what only the loader needs.
struct Row {
  KeyInfo info;
  int64_t min;          // kInt only
  int64_t max;          // kInt only
  const char* example;  // value used in "write e.g." hints when there is no default
  Setter set;
};

std::string name_of(const Row& row) {
  return "'" + std::string(row.info.name) + "'";
}

// "write e.g. port = 5222", using the default or, failing that, the example.
std::string hint(const Row& row) {
  const char* value = row.info.default_value[0] != '\0' ? row.info.default_value : row.example;
  return "write e.g. " + std::string(row.info.name) + " = " + value;
}

std::string string_value(const Row& row, std::string_view raw, std::string* out) {
  Result<std::string> value = ini::unquote(raw, row.info.name);
  if (!value) return value.error().message;
  *out = std::move(value.value());
  return {};
}

std::string list_value(const Row& row, std::string_view raw, std::vector<std::string>* out) {
  Result<std::vector<std::string>> items = ini::split_list(raw, row.info.name);
  if (!items) return items.error().message;
  *out = std::move(items.value());
  return {};
}

std::string int_value(const Row& row, std::string_view raw, int64_t* out) {
  std::string text;
  if (std::string err = string_value(row, raw, &text); !err.empty()) return err;
  int64_t v = 0;
  if (!ini::parse_int(text, &v) || v < row.min || v > row.max) {
    return name_of(row) + " must be an integer between " + std::to_string(row.min) + " and " +
           std::to_string(row.max) + ", got " + ini::quoted(text) + "; " + hint(row);
  }
  *out = v;
  return {};
}

void ascii_lower(std::string* s) {
  for (char& c : *s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

// Well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool is_ip(const std::string& s, int family) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(family, s.c_str(), buf) == 1;
}

// Checks a normalised (lowercase, no trailing dot) domain; returns why it is
// not acceptable, or "".
std::string domain_problem(const std::string& d) {
  if (d.empty()) return "it is empty";
  if (d.size() > 253) return "it is longer than 253 bytes";
  if (d.find(' ') != std::string::npos || d.find('\t') != std::string::npos) {
    return "it contains a space";
  }
  if (d.find('@') != std::string::npos) return "it contains '@': give only the part after it";
  if (d.find('/') != std::string::npos) return "it contains '/'";
  if (d.front() == '[' && d.back() == ']' && d.size() > 2) {
    if (is_ip(d.substr(1, d.size() - 2), AF_INET6)) return {};
    return "it is not a valid IPv6 address in brackets";
  }
  if (is_ip(d, AF_INET)) return {};
  if (is_ip(d, AF_INET6)) return "an IPv6 address must be in brackets, e.g. [::1]";
  if (!valid_utf8(d)) return "it is not valid UTF-8";
  size_t start = 0;
  while (start <= d.size()) {
    size_t dot = d.find('.', start);
    if (dot == std::string::npos) dot = d.size();
    size_t len = dot - start;
    if (len == 0) return "it has an empty label (two dots in a row, or a leading dot)";
    if (len > 63) return "a label is longer than 63 bytes";
    for (size_t i = start; i < dot; ++i) {
      char c = d[i];
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                static_cast<unsigned char>(c) >= 0x80;
      if (!ok) return "character '" + std::string(1, c) + "' is not allowed";
    }
    start = dot + 1;
  }
  return {};
}

std::string set_domain(const Row& row, std::string_view raw, Config* config) {
  std::string d;
  if (std::string err = string_value(row, raw, &d); !err.empty()) return err;
  std::string normal = d;
  ascii_lower(&normal);
  if (!normal.empty() && normal.back() == '.') normal.pop_back();
  if (std::string why = domain_problem(normal); !why.empty()) {
    return name_of(row) + " must be a domain name or IP address, got " + ini::quoted(d) + " (" +
           why + "); write e.g. domain = example.org";
  }
  config->domain = std::move(normal);
  return {};
}

std::string set_data_dir(const Row& row, std::string_view raw, Config* config) {
  std::string dir;
  if (std::string err = string_value(row, raw, &dir); !err.empty()) return err;
  if (dir.empty() || dir.front() != '/') {
    return name_of(row) + " must be an absolute path, got " + ini::quoted(dir) + "; " + hint(row);
  }
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  config->data_dir = std::move(dir);
  return {};
}

std::string set_admins(const Row& row, std::string_view raw, Config* config) {
  std::vector<std::string> jids;
  if (std::string err = list_value(row, raw, &jids); !err.empty()) return err;
  for (std::string& jid : jids) {
    size_t at = jid.find('@');
    const char* why = nullptr;
    if (at == std::string::npos) {
      why = "it has no '@'";
    } else if (jid.find('@', at + 1) != std::string::npos) {
      why = "it has more than one '@'";
    } else if (jid.find('/') != std::string::npos) {
      why = "a bare JID has no '/resource'";
    } else if (at == 0 || at + 1 == jid.size()) {
      why = "the part before or after '@' is empty";
    } else if (jid.find(' ') != std::string::npos) {
      why = "it contains a space";
    }
    if (why != nullptr) {
      return name_of(row) + " entry " + ini::quoted(jid) + " is not a bare JID local@domain (" +
             why + "); " + hint(row);
    }
    ascii_lower(&jid);
  }
  config->admins = std::move(jids);
  return {};
}

std::string set_user(const Row& row, std::string_view raw, Config* config) {
  std::string name;
  if (std::string err = string_value(row, raw, &name); !err.empty()) return err;
  bool ok = !name.empty() && name.size() <= 32;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) ok = false;
  if (!ok) {
    return name_of(row) + " must be a system user name (letters, digits, '_', '-', '.'), got " +
           ini::quoted(name) + "; " + hint(row);
  }
  config->user = std::move(name);
  return {};
}

std::string set_sandbox_mode(const Row& row, std::string_view raw, Config* config) {
  std::string text;
  if (std::string err = string_value(row, raw, &text); !err.empty()) return err;
  if (text != "enforce" && text != "log") {
    return name_of(row) + " must be enforce or log, got " + ini::quoted(text) + "; " + hint(row);
  }
  config->sandbox_log = text == "log";
  return {};
}

std::string set_certificate(const Row& row, std::string_view raw, Config* config) {
  return string_value(row, raw, &config->certificate);
}

std::string set_key(const Row& row, std::string_view raw, Config* config) {
  return string_value(row, raw, &config->key);
}

std::string set_interfaces(const Row& row, std::string_view raw, Config* config) {
  std::vector<std::string> addrs;
  if (std::string err = list_value(row, raw, &addrs); !err.empty()) return err;
  if (addrs.empty()) {
    return name_of(row) + " must name at least one address; " + hint(row) +
           " to listen on all addresses";
  }
  for (const std::string& a : addrs) {
    if (a != "*" && !is_ip(a, AF_INET) && !is_ip(a, AF_INET6)) {
      return name_of(row) + " entry " + ini::quoted(a) +
             " must be * or an IPv4/IPv6 address (no brackets, no names); write e.g. "
             "interfaces = 127.0.0.1, ::1";
    }
  }
  config->interfaces = std::move(addrs);
  return {};
}

template <class T, T Config::*field>
std::string set_int(const Row& row, std::string_view raw, Config* config) {
  int64_t v = 0;
  if (std::string err = int_value(row, raw, &v); !err.empty()) return err;
  config->*field = static_cast<T>(v);  // bounds (checked above) fit T
  return {};
}

std::string set_log_level(const Row& row, std::string_view raw, Config* config) {
  std::string text;
  if (std::string err = string_value(row, raw, &text); !err.empty()) return err;
  LogLevel level;
  // log_parse_level also takes "warning"; the INI takes exactly the documented names.
  bool listed = text == "debug" || text == "info" || text == "warn" || text == "error";
  if (!listed || !log_parse_level(text, &level)) {
    return name_of(row) + " must be one of debug, info, warn, error, got " + ini::quoted(text) +
           "; " + hint(row);
  }
  config->log_level = level;
  return {};
}

// Defined below (the rows use them).
std::string join(const std::vector<std::string_view>& items, std::string_view prefix,
                 std::string_view suffix);
std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates);

std::string bool_value(const Row& row, std::string_view raw, bool* out) {
  std::string text;
  if (std::string err = string_value(row, raw, &text); !err.empty()) return err;
  if (!ini::parse_bool(text, out)) {
    return name_of(row) + " must be true or false, got " + ini::quoted(text) + "; " + hint(row);
  }
  return {};
}

std::string u32_value(const Row& row, std::string_view raw, uint32_t* out) {
  int64_t v = 0;
  if (std::string err = int_value(row, raw, &v); !err.empty()) return err;
  *out = static_cast<uint32_t>(v);  // bounds (checked above) fit
  return {};
}

std::string set_disabled_modules(const Row& row, std::string_view raw, Config* config) {
  std::vector<std::string> names;
  if (std::string err = list_value(row, raw, &names); !err.empty()) return err;
  const std::vector<std::string_view>& known = compiled_module_names();
  for (const std::string& n : names) {
    if (std::find(known.begin(), known.end(), n) == known.end()) {
      std::string list = join(known, "", "");
      std::string_view guess = closest(n, known);
      std::string out = name_of(row) + " names " + ini::quoted(n) +
                        ", which is not a module of "
                        "this build; ";
      if (!guess.empty()) out += "did you mean '" + std::string(guess) + "'? ";
      return out + "(modules: " + list + ")";
    }
  }
  config->disabled_modules = std::move(names);
  return {};
}

// A duration in the INI (parse_duration()).
std::string duration_value(const Row& row, std::string_view raw, uint64_t* out) {
  std::string text;
  if (std::string err = string_value(row, raw, &text); !err.empty()) return err;
  std::optional<uint64_t> seconds = parse_duration(text);
  if (!seconds) {
    return name_of(row) + " must be a duration like 30d, 1w, 12h, 90m or 3600s, or never, got " +
           ini::quoted(text) + "; " + hint(row);
  }
  *out = *seconds;
  return {};
}

// "10.0.0.0/8", "fd00::/8", or a single address.
std::string cidr_list(const Row& row, std::string_view raw, std::vector<std::string>* out) {
  std::vector<std::string> nets;
  if (std::string err = list_value(row, raw, &nets); !err.empty()) return err;
  for (const std::string& n : nets) {
    size_t slash = n.find('/');
    std::string addr = n.substr(0, slash);
    bool v4 = is_ip(addr, AF_INET), v6 = is_ip(addr, AF_INET6);
    bool ok = v4 || v6;
    if (ok && slash != std::string::npos) {
      std::string bits = n.substr(slash + 1);
      int max = v4 ? 32 : 128;
      ok = !bits.empty() && bits.size() <= 3 &&
           bits.find_first_not_of("0123456789") == std::string::npos && std::stoi(bits) <= max;
    }
    if (!ok) {
      return name_of(row) + " entry " + ini::quoted(n) +
             " is not an address or network like 192.168.1.0/24 or fd00::/8; " + hint(row);
    }
  }
  *out = std::move(nets);
  return {};
}

// JIDs or domains for the server-wide block list.
std::string jid_or_domain_list(const Row& row, std::string_view raw,
                               std::vector<std::string>* out) {
  std::vector<std::string> items;
  if (std::string err = list_value(row, raw, &items); !err.empty()) return err;
  for (std::string& j : items) {
    if (j.find_first_of(" \t/\"'<>") != std::string::npos || j.front() == '@' || j.back() == '@') {
      return name_of(row) + " entry " + ini::quoted(j) +
             " is not a JID or a domain; write e.g. block = spam.example, bot@example.org";
    }
    ascii_lower(&j);
  }
  *out = std::move(items);
  return {};
}

// XEP-0157 addresses are URIs: mailto:, xmpp:, https:, http:, tel:, sip:.
std::string contact_list(const Row& row, std::string_view raw, std::vector<std::string>* out) {
  std::vector<std::string> uris;
  if (std::string err = list_value(row, raw, &uris); !err.empty()) return err;
  for (const std::string& u : uris) {
    bool ok = false;
    for (std::string_view scheme : {"mailto:", "xmpp:", "https://", "http://", "tel:", "sip:"})
      if (u.size() > scheme.size() && u.compare(0, scheme.size(), scheme) == 0) ok = true;
    if (!ok || u.find(' ') != std::string::npos) {
      return name_of(row) + " entry " + ini::quoted(u) +
             " is not a URI starting with mailto:, xmpp:, https://, http://, tel: or sip:; "
             "write e.g. " +
             row.info.name + " = mailto:" + row.info.name +
             "@example.org, "
             "xmpp:" +
             row.info.name + "@example.org";
    }
  }
  *out = std::move(uris);
  return {};
}

// The schema. Order is the order of config/hearth.ini; the bounds are
// repeated in the docs because the reference file is read by people.
const std::vector<Row>& rows() {
  static const std::vector<Row> kRows = {
      {{"server", "domain", KeyType::kString, "", true,
        "The XMPP domain this server hosts: accounts are name@domain. Required."},
       0,
       0,
       "example.org",
       &set_domain},
      {{"server", "data_dir", KeyType::kString, "/var/lib/hearth", false,
        "Directory (absolute path) for the account and message databases and the "
        "self-signed certificate."},
       0,
       0,
       "",
       &set_data_dir},
      {{"server", "admins", KeyType::kList, "", false,
        "Comma-separated bare JIDs (name@domain) allowed to administer the server; empty "
        "means none."},
       0,
       0,
       "alice@example.org",
       &set_admins},
      {{"server", "user", KeyType::kString, "hearth", false,
        "System user every process switches to when started as root (not root); "
        "ignored when started as another user."},
       0,
       0,
       "",
       &set_user},
      {{"server", "expose_version", KeyType::kBool, "false", false,
        "Answer software-version queries (XEP-0092) with the version and OS too, not just the "
        "name."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return bool_value(r, v, &c->expose_version);
       }},
      {{"tls", "certificate", KeyType::kString, "", false,
        "PEM certificate chain; empty means a self-signed certificate generated in "
        "data_dir. Set together with key."},
       0,
       0,
       "/etc/hearth/fullchain.pem",
       &set_certificate},
      {{"tls", "key", KeyType::kString, "", false,
        "PEM private key for certificate; empty when certificate is empty."},
       0,
       0,
       "/etc/hearth/privkey.pem",
       &set_key},
      {{"c2s", "interfaces", KeyType::kList, "*", false,
        "Comma-separated IPv4/IPv6 addresses to listen on for clients; * means all of them."},
       0,
       0,
       "",
       &set_interfaces},
      {{"c2s", "port", KeyType::kInt, "5222", false,
        "Client port with STARTTLS (RFC 6120), 0 to 65535; 0 picks a free port (tests only)."},
       0,
       65535,
       "",
       &set_int<uint16_t, &Config::port>},
      {{"c2s", "direct_tls_port", KeyType::kInt, "5223", false,
        "Client port with TLS from the first byte (XEP-0368), 0 to 65535; 0 picks a free "
        "port (tests only)."},
       0,
       65535,
       "",
       &set_int<uint16_t, &Config::direct_tls_port>},
      {{"c2s", "max_stanza_size", KeyType::kInt, "262144", false,
        "Largest stanza a client may send, in bytes (10000 to 16777216); a larger one "
        "closes the stream."},
       10000,
       16777216,
       "",
       &set_int<uint32_t, &Config::max_stanza_size>},
      {{"c2s", "pre_auth_timeout", KeyType::kInt, "30", false,
        "Seconds a new connection may take to log in before it is closed (5 to 3600)."},
       5,
       3600,
       "",
       &set_int<uint32_t, &Config::pre_auth_timeout>},
      {{"c2s", "ping_interval", KeyType::kInt, "300", false,
        "Seconds a client may stay silent before the server pings it (XEP-0199), 0 to 86400; 0 "
        "never pings."},
       0,
       86400,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->ping_interval);
       }},
      {{"c2s", "ping_timeout", KeyType::kInt, "60", false,
        "Seconds a pinged client has to answer before its stream is closed (5 to 3600)."},
       5,
       3600,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->ping_timeout);
       }},
      {{"auth", "scram_iterations", KeyType::kInt, "10000", false,
        "PBKDF2 iterations for newly set passwords (4096 to 10000000); more is slower to "
        "guess and slower to log in."},
       4096,
       10000000,
       "",
       &set_int<uint32_t, &Config::scram_iterations>},
      {{"auth", "min_password_length", KeyType::kInt, "10", false,
        "Fewest characters a new password may have (1 to 1024); passwords that contain the "
        "user name or the domain, or are among the most common ones, are refused too."},
       1,
       1024,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->min_password_length);
       }},
      {{"auth", "max_failures", KeyType::kInt, "5", false,
        "Failed logins allowed per account and per IP address within failure_window before the "
        "IP address is banned for ban_time (1 to 1000)."},
       1,
       1000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->max_failures);
       }},
      {{"auth", "failure_window", KeyType::kString, "5m", false,
        "How long a failed login counts: a duration like 5m, 1h or 300s."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         std::string err = duration_value(r, v, &c->failure_window);
         if (err.empty() && c->failure_window == 0) return name_of(r) + " cannot be never";
         return err;
       }},
      {{"auth", "ban_time", KeyType::kString, "1h", false,
        "How long an IP address that reached max_failures is refused: a duration like 15m, 1h or "
        "1d."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         std::string err = duration_value(r, v, &c->ban_time);
         if (err.empty() && c->ban_time == 0) return name_of(r) + " cannot be never";
         return err;
       }},
      {{"sandbox", "mode", KeyType::kEnum, "enforce", false,
        "enforce: a process that makes a system call outside its allow-list is killed; "
        "log: it is only logged (debugging)."},
       0,
       0,
       "",
       &set_sandbox_mode},
      {{"log", "level", KeyType::kEnum, "info", false,
        "Least severe messages to log (to stderr): debug, info, warn or error."},
       0,
       0,
       "",
       &set_log_level},
      {{"log", "audit_file", KeyType::kString, "", false,
        "File for the audit log: one JSON object per line per security event (failed logins, "
        "bans, registrations, invites, admin actions); empty: audit.log in data_dir."},
       0,
       0,
       "/var/log/hearth/audit.log",
       [](const Row& r, std::string_view v, Config* c) {
         return string_value(r, v, &c->audit_file);
       }},
      {{"modules", "disabled", KeyType::kList, "", false,
        "Comma-separated compiled-in modules to switch off (see hearth check config); empty: all "
        "on."},
       0,
       0,
       "vcard, private",
       &set_disabled_modules},
      {{"roster", "max_items", KeyType::kInt, "1000", false,
        "Most contacts one account may have in its roster (1 to 100000)."},
       1,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->roster.max_items);
       }},
      {{"offline", "max_messages", KeyType::kInt, "1000", false,
        "Most messages stored for one offline account (XEP-0160), 0 to 100000; more are bounced."},
       0,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->offline.max_messages);
       }},
      {{"vcard", "max_size", KeyType::kInt, "65536", false,
        "Largest vCard (XEP-0054) an account may store, in bytes (1024 to 16777216)."},
       1024,
       16777216,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->vcard.max_size);
       }},
      {{"private", "max_size", KeyType::kInt, "65536", false,
        "Largest private XML item (XEP-0049) an account may store, in bytes (1024 to 16777216)."},
       1024,
       16777216,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->private_storage.max_size);
       }},
      {{"register", "logout_on_password_change", KeyType::kBool, "true", false,
        "After a password change (XEP-0077) close the account's other sessions."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return bool_value(r, v, &c->account.logout_on_password_change);
       }},
      {{"smacks", "resume_timeout", KeyType::kInt, "300", false,
        "Seconds a session whose connection broke waits for its client to resume it (XEP-0198), "
        "0 to 86400; 0 disables resumption. Messages not acknowledged by then go to offline "
        "storage."},
       0,
       86400,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->smacks.resume_timeout);
       }},
      {{"smacks", "max_queue", KeyType::kInt, "1000", false,
        "Stanzas sent to a client and not yet acknowledged before its stream is closed with "
        "policy-violation (XEP-0198), 10 to 100000."},
       10,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->smacks.max_queue);
       }},
      {{"archive", "expires_after", KeyType::kString, "1w", false,
        "How long archived messages (XEP-0313) are kept: a duration like 30d, 1w, 12h, or never."},
       0,
       0,
       "4w",
       [](const Row& r, std::string_view v, Config* c) {
         return duration_value(r, v, &c->archive.expires_after);
       }},
      {{"archive", "default", KeyType::kEnum, "always", false,
        "Which messages are archived for accounts that set no preference: always, roster (only "
        "with contacts in the roster) or never."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         std::string text;
         if (std::string err = string_value(r, v, &text); !err.empty()) return err;
         if (text != "always" && text != "roster" && text != "never")
           return name_of(r) + " must be always, roster or never, got " + ini::quoted(text);
         c->archive.default_mode = text;
         return std::string();
       }},
      {{"csi", "max_held", KeyType::kInt, "500", false,
        "Stanzas held back for a client that said it is inactive (XEP-0352) before they are "
        "sent anyway, 10 to 100000."},
       10,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->csi.max_held);
       }},
      {{"pep", "max_items", KeyType::kInt, "256", false,
        "Most items one personal eventing node keeps (XEP-0163), 1 to 10000."},
       1,
       10000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->pep.max_items);
       }},
      {{"pep", "max_nodes", KeyType::kInt, "100", false,
        "Most personal eventing nodes one account may create, 1 to 10000."},
       1,
       10000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->pep.max_nodes);
       }},
      {{"pep", "max_item_size", KeyType::kInt, "65536", false,
        "Largest item one may publish to a personal eventing node, in bytes (1024 to 16777216); "
        "avatars (XEP-0084) need room."},
       1024,
       16777216,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->pep.max_item_size);
       }},
      {{"limits", "max_per_ip", KeyType::kInt, "10", false,
        "Concurrent connections one IP address (an IPv6 /64) may hold (1 to 100000); loopback and "
        "trusted_networks are exempt."},
       1,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.max_per_ip);
       }},
      {{"limits", "max_connections", KeyType::kInt, "2000", false,
        "Concurrent connections in all (10 to 1000000); more are refused at once."},
       10,
       1000000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.max_connections);
       }},
      {{"limits", "trusted_networks", KeyType::kList, "", false,
        "Comma-separated addresses or networks (CIDR) exempt from the per-IP limits, besides "
        "loopback; e.g. your LAN."},
       0,
       0,
       "192.168.1.0/24, fd00::/8",
       [](const Row& r, std::string_view v, Config* c) {
         return cidr_list(r, v, &c->limits.trusted_networks);
       }},
      {{"limits", "trust_loopback", KeyType::kBool, "true", false,
        "Exempt loopback (127.0.0.0/8, ::1) from the per-IP limits; set false when clients arrive "
        "through a local proxy or a Tor onion service, where loopback is everyone."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return bool_value(r, v, &c->limits.trust_loopback);
       }},
      {{"limits", "connect_rate", KeyType::kInt, "30", false,
        "New connections one IP address (an IPv6 /64) may open per minute (1 to 100000); more are "
        "closed at once."},
       1,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.connect_rate);
       }},
      {{"limits", "tls_handshake_timeout", KeyType::kInt, "10", false,
        "Seconds a new connection has to finish its TLS handshake (2 to 300)."},
       2,
       300,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.tls_handshake_timeout);
       }},
      {{"limits", "preauth_idle_timeout", KeyType::kInt, "10", false,
        "Seconds a connection that has not logged in yet may stay silent (2 to 300)."},
       2,
       300,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.preauth_idle_timeout);
       }},
      {{"limits", "c2s_rate", KeyType::kInt, "10000", false,
        "Bytes per second read from a client, counted as received (TLS included) from the first "
        "byte (1000 to 100000000); above it the server stops reading from that socket for a "
        "while."},
       1000,
       100000000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.c2s_rate);
       }},
      {{"limits", "c2s_burst", KeyType::kInt, "25000", false,
        "Bytes a logged-in client may send at once above c2s_rate (1000 to 100000000)."},
       1000,
       100000000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.c2s_burst);
       }},
      {{"limits", "s2s_rate", KeyType::kInt, "30000", false,
        "Bytes per second read from another server (1000 to 100000000)."},
       1000,
       100000000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.s2s_rate);
       }},
      {{"limits", "s2s_burst", KeyType::kInt, "100000", false,
        "Bytes another server may send at once above s2s_rate (1000 to 100000000)."},
       1000,
       100000000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.s2s_burst);
       }},
      {{"limits", "subscriptions_per_minute", KeyType::kInt, "30", false,
        "Presence subscription requests one account may send per minute (1 to 100000); more are "
        "refused."},
       1,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.subscriptions_per_minute);
       }},
      {{"limits", "stranger_messages_per_minute", KeyType::kInt, "60", false,
        "Messages one account may send per minute to JIDs that are not in its roster (1 to "
        "100000); more are refused."},
       1,
       100000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->limits.stranger_messages_per_minute);
       }},
      {{"registration", "mode", KeyType::kEnum, "invite", false,
        "Who may create an account from a client: closed (only hearth user add), invite (with an "
        "invite from hearth invite or an admin) or open (anyone; warned about)."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         std::string text;
         if (std::string err = string_value(r, v, &text); !err.empty()) return err;
         if (text != "closed" && text != "invite" && text != "open")
           return name_of(r) + " must be closed, invite or open, got " + ini::quoted(text);
         c->registration.mode = text;
         return std::string();
       }},
      {{"registration", "max_per_ip_per_hour", KeyType::kInt, "1", false,
        "In open mode: accounts one IP address may register per hour (1 to 1000)."},
       1,
       1000,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return u32_value(r, v, &c->registration.max_per_ip_per_hour);
       }},
      {{"registration", "notify_admins", KeyType::kBool, "true", false,
        "Send the admins a chat message about each new account."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return bool_value(r, v, &c->registration.notify_admins);
       }},
      {{"registration", "invite_expires", KeyType::kString, "7d", false,
        "How long an invite is valid unless hearth invite --expires says otherwise: a duration "
        "like 1d or 7d."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         std::string err = duration_value(r, v, &c->registration.invite_expires);
         if (err.empty() && c->registration.invite_expires == 0)
           return name_of(r) + " cannot be never";
         return err;
       }},
      {{"registration", "allow_user_invites", KeyType::kBool, "false", false,
        "Let every account create invites for new accounts (ad-hoc command "
        "urn:xmpp:invite#invite); "
        "false: only admins. Read at start."},
       0,
       0,
       "",
       [](const Row& r, std::string_view v, Config* c) {
         return bool_value(r, v, &c->registration.allow_user_invites);
       }},
      {{"spam", "block", KeyType::kList, "", false,
        "Comma-separated JIDs and domains whose stanzas the server refuses, for every account."},
       0,
       0,
       "spam.example, bot@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return jid_or_domain_list(r, v, &c->spam.block);
       }},
      {{"spam", "block_file", KeyType::kString, "", false,
        "File with one blocked JID or domain per line (# comments; the JabberSPAM list format), "
        "read at start and on reload."},
       0,
       0,
       "/etc/hearth/blocklist.txt",
       [](const Row& r, std::string_view v, Config* c) {
         return string_value(r, v, &c->spam.block_file);
       }},
      {{"spam", "new_account_strangers_after", KeyType::kString, "never", false,
        "How long a new account may only message its contacts (a duration like 1d), or never to "
        "not restrict new accounts."},
       0,
       0,
       "1d",
       [](const Row& r, std::string_view v, Config* c) {
         std::string err = duration_value(r, v, &c->spam.new_account_strangers_after);
         return err;
       }},
      {{"contact", "abuse", KeyType::kList, "", false,
        "Comma-separated abuse contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:abuse@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.abuse);
       }},
      {{"contact", "admin", KeyType::kList, "", false,
        "Comma-separated admin contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:admin@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.admin);
       }},
      {{"contact", "feedback", KeyType::kList, "", false,
        "Comma-separated feedback contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:feedback@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.feedback);
       }},
      {{"contact", "sales", KeyType::kList, "", false,
        "Comma-separated sales contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:sales@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.sales);
       }},
      {{"contact", "security", KeyType::kList, "", false,
        "Comma-separated security contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:security@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.security);
       }},
      {{"contact", "support", KeyType::kList, "", false,
        "Comma-separated support contact URIs published in service discovery (XEP-0157)."},
       0,
       0,
       "mailto:support@example.org",
       [](const Row& r, std::string_view v, Config* c) {
         return contact_list(r, v, &c->contact.support);
       }},
  };
  return kRows;
}

// Section names in schema order, each once.
std::vector<std::string_view> sections() {
  std::vector<std::string_view> out;
  for (const Row& row : rows())
    if (std::find(out.begin(), out.end(), row.info.section) == out.end())
      out.push_back(row.info.section);
  return out;
}

const Row* find_row(std::string_view section, std::string_view name) {
  for (const Row& row : rows())
    if (section == row.info.section && name == row.info.name) return &row;
  return nullptr;
}

// The closest candidate within two edits, or "" (ties go to the first).
std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view c : candidates) {
    size_t d = ini::edit_distance(word, c);
    if (d < best_distance) best = c, best_distance = d;
  }
  return best;
}

std::string join(const std::vector<std::string_view>& items, std::string_view prefix,
                 std::string_view suffix) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + std::string(item) + std::string(suffix);
  }
  return out;
}

std::string unknown_section(std::string_view name) {
  std::vector<std::string_view> all = sections();
  std::string list = join(all, "[", "]");
  std::string_view guess = closest(name, all);
  std::string out = "unknown section [" + std::string(name) + "]; ";
  if (!guess.empty())
    return out + "did you mean [" + std::string(guess) + "]? (sections: " + list + ")";
  return out + "sections are: " + list;
}

std::string unknown_key(std::string_view section, std::string_view name) {
  std::string out = "unknown key " + ini::quoted(name) + " in [" + std::string(section) + "]; ";
  for (const Row& row : rows()) {
    if (name == row.info.name) {
      return out + "'" + std::string(name) + "' belongs in [" + row.info.section + "]";
    }
  }
  std::vector<std::string_view> keys;
  for (const Row& row : rows())
    if (section == row.info.section) keys.push_back(row.info.name);
  std::string list = "keys in [" + std::string(section) + "]: " + join(keys, "", "");
  std::string_view guess = closest(name, keys);
  if (!guess.empty()) return out + "did you mean '" + std::string(guess) + "'? (" + list + ")";
  return out + list;
}

std::string key_outside_section(std::string_view name) {
  std::string out = "key " + ini::quoted(name) + " comes before any [section]; ";
  for (const Row& row : rows()) {
    if (name == row.info.name) {
      return out + "put it under [" + row.info.section + "]";
    }
  }
  return out + "start the file with a section header, e.g. [server]";
}

std::string at(std::string_view filename, int line) {
  return std::string(filename) + ":" + std::to_string(line) + ": ";
}

}  // namespace

std::optional<uint64_t> parse_duration(std::string_view text) {
  if (text == "never") return uint64_t{0};
  if (text.empty()) return std::nullopt;
  uint64_t unit = 1;
  std::string_view digits = text;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 604800;
      break;
    default:
      unit = 0;  // a bare number of seconds, or garbage (checked below)
  }
  if (unit != 0) {
    digits.remove_suffix(1);
  } else {
    unit = 1;
  }
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  uint64_t n = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (n == 0) return std::nullopt;
  return n * unit;
}

bool Config::module_enabled(std::string_view name) const {
  return std::find(disabled_modules.begin(), disabled_modules.end(), name) ==
         disabled_modules.end();
}

std::string Config::certificate_path() const {
  return certificate.empty() ? data_dir + "/self-signed.crt" : certificate;
}

std::string Config::key_path() const {
  return key.empty() ? data_dir + "/self-signed.key" : key;
}

const std::vector<KeyInfo>& schema() {
  static const std::vector<KeyInfo> kSchema = [] {
    std::vector<KeyInfo> out;
    for (const Row& row : rows())
      out.push_back(row.info);
    return out;
  }();
  return kSchema;
}

Result<Config> parse(std::string_view text, std::string_view filename) {
  Result<std::vector<ini::Entry>> entries = ini::tokenize(text, filename);
  if (!entries) return entries.error();

  const std::vector<Row>& all = rows();
  Config config;
  for (const Row& row : all) {
    if (row.info.required) continue;
    // The schema's defaults are the only defaults: a bad one is a bug here.
    std::string err = row.set(row, row.info.default_value, &config);
    if (!err.empty()) return make_error("internal: default of " + name_of(row) + ": " + err);
  }

  // Line on which each row was set; 0 = not set.
  std::vector<int> set_on(all.size(), 0);
  std::string_view section;
  bool in_section = false;
  for (const ini::Entry& e : entries.value()) {
    if (e.kind == ini::Entry::Kind::kSection) {
      std::vector<std::string_view> known = sections();
      if (std::find(known.begin(), known.end(), e.name) == known.end()) {
        return make_error(at(filename, e.line) + unknown_section(e.name));
      }
      section = e.name;
      in_section = true;
      continue;
    }
    if (!in_section) return make_error(at(filename, e.line) + key_outside_section(e.name));
    const Row* row = find_row(section, e.name);
    if (row == nullptr) return make_error(at(filename, e.line) + unknown_key(section, e.name));
    size_t index = static_cast<size_t>(row - all.data());
    if (set_on[index] != 0) {
      return make_error(at(filename, e.line) + "duplicate key '" + row->info.name + "' in [" +
                        row->info.section + "], first set on line " +
                        std::to_string(set_on[index]) + "; keep only one of them");
    }
    if (std::string err = row->set(*row, e.value, &config); !err.empty()) {
      return make_error(at(filename, e.line) + err);
    }
    set_on[index] = e.line;
  }

  for (size_t i = 0; i < all.size(); ++i) {
    const KeyInfo& k = all[i].info;
    if (k.required && set_on[i] == 0) {
      return make_error(std::string(filename) + ": missing required key '" + k.name + "' in [" +
                        k.section + "]; add: [" + k.section + "] " + k.name + " = " +
                        all[i].example);
    }
  }

  auto line_of = [&](std::string_view section_name, std::string_view name) {
    return set_on[static_cast<size_t>(find_row(section_name, name) - all.data())];
  };
  if (config.certificate.empty() != config.key.empty()) {
    bool cert_set = !config.certificate.empty();
    int line = line_of("tls", cert_set ? "certificate" : "key");
    return make_error(at(filename, line) +
                      (cert_set ? "'certificate' is set but 'key' is not"
                                : "'key' is set but 'certificate' is not") +
                      "; set both certificate and key in [tls], or neither to use a "
                      "self-signed certificate");
  }
  if (config.port != 0 && config.port == config.direct_tls_port) {
    int line = std::max(line_of("c2s", "port"), line_of("c2s", "direct_tls_port"));
    return make_error(at(filename, line) + "'port' and 'direct_tls_port' are both " +
                      std::to_string(config.port) +
                      "; give them different ports, e.g. port = 5222 and direct_tls_port = 5223");
  }
  return config;
}

Result<Config> load_file(const std::string& path, std::string* text_out) {
  auto fail = [&](int err) {
    return make_error("cannot read " + path + ": " + strerror(err) + "; create it or pass -c FILE");
  };
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return fail(err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) {
      close(fd);
      return make_error(path +
                        ": file is larger than 1 MiB; a hearth.ini is a few KiB, check "
                        "the path or pass -c FILE");
    }
  }
  close(fd);
  Result<Config> config = parse(text, path);
  if (config.ok() && text_out != nullptr) *text_out = std::move(text);
  return config;
}

std::string default_path() {
  const char* env = getenv("HEARTH_CONFIG");
  if (env != nullptr && env[0] != '\0') return env;
  return "/etc/hearth/hearth.ini";
}

}  // namespace hearth::config
