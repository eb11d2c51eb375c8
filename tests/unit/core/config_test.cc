#include "core/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>

namespace hearth::config {
namespace {

constexpr const char* kMinimal = "[server]\ndomain = example.org\n";

// The error message for `text`, or "(parsed)".
std::string error_of(std::string_view text) {
  Result<Config> r = parse(text, "hearth.ini");
  return r.ok() ? "(parsed)" : r.error().message;
}

// kMinimal followed by `tail`, whose first line is line 3.
std::string error_after_minimal(const std::string& tail) {
  return error_of(std::string(kMinimal) + tail);
}

Config parse_ok(std::string_view text) {
  Result<Config> r = parse(text, "hearth.ini");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r.value() : Config{};
}

// ---------------------------------------------------------------- defaults

TEST(ConfigTest, Defaults) {
  Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.domain, "example.org");
  EXPECT_EQ(c.data_dir, "/var/lib/hearth");
  EXPECT_TRUE(c.admins.empty());
  EXPECT_EQ(c.certificate, "");
  EXPECT_EQ(c.key, "");
  EXPECT_EQ(c.interfaces, (std::vector<std::string>{"*"}));
  EXPECT_EQ(c.port, 5222);
  EXPECT_EQ(c.direct_tls_port, 5223);
  EXPECT_EQ(c.max_stanza_size, 262144u);
  EXPECT_EQ(c.pre_auth_timeout, 30u);
  EXPECT_EQ(c.scram_iterations, 10000u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.user, "hearth");
  EXPECT_FALSE(c.sandbox_log);
  EXPECT_EQ(c.certificate_path(), "/var/lib/hearth/self-signed.crt");
  EXPECT_EQ(c.key_path(), "/var/lib/hearth/self-signed.key");
  EXPECT_EQ(c.accounts_path(), "/var/lib/hearth/accounts.mdb");
  EXPECT_EQ(c.data_path(), "/var/lib/hearth/data.mdb");
}

TEST(ConfigTest, SchemaDefaultsMatchStructInitialisers) {
  Config parsed = parse_ok(kMinimal);
  Config plain;
  EXPECT_EQ(parsed.port, plain.port);
  EXPECT_EQ(parsed.direct_tls_port, plain.direct_tls_port);
  EXPECT_EQ(parsed.max_stanza_size, plain.max_stanza_size);
  EXPECT_EQ(parsed.pre_auth_timeout, plain.pre_auth_timeout);
  EXPECT_EQ(parsed.scram_iterations, plain.scram_iterations);
  EXPECT_EQ(parsed.log_level, plain.log_level);
  EXPECT_EQ(parsed.user, plain.user);
  EXPECT_EQ(parsed.sandbox_log, plain.sandbox_log);
}

TEST(ConfigTest, ServiceUserAndSandboxMode) {
  Config c = parse_ok(std::string(kMinimal) + "user = _hearth-1\n[sandbox]\nmode = log\n");
  EXPECT_EQ(c.user, "_hearth-1");
  EXPECT_TRUE(c.sandbox_log);
  EXPECT_FALSE(parse_ok(std::string(kMinimal) + "[sandbox]\nmode = enforce\n").sandbox_log);
}

TEST(ConfigErrorTest, ServiceUserAndSandboxMode) {
  EXPECT_EQ(error_after_minimal("user = hearth user\n"),
            "hearth.ini:3: 'user' must be a system user name (letters, digits, '_', '-', '.'), "
            "got 'hearth user'; write e.g. user = hearth");
  EXPECT_EQ(error_after_minimal("[sandbox]\nmode = off\n"),
            "hearth.ini:4: 'mode' must be enforce or log, got 'off'; write e.g. mode = enforce");
}

TEST(ConfigTest, SchemaListsEveryKeyInOrder) {
  std::vector<std::string> got;
  for (const KeyInfo& k : schema())
    got.push_back(std::string(k.section) + "." + k.name);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "server.domain",
                     "server.data_dir",
                     "server.admins",
                     "server.user",
                     "server.expose_version",
                     "tls.certificate",
                     "tls.key",
                     "c2s.interfaces",
                     "c2s.port",
                     "c2s.direct_tls_port",
                     "c2s.max_stanza_size",
                     "c2s.pre_auth_timeout",
                     "c2s.ping_interval",
                     "c2s.ping_timeout",
                     "auth.scram_iterations",
                     "auth.min_password_length",
                     "auth.max_failures",
                     "auth.failure_window",
                     "auth.ban_time",
                     "sandbox.mode",
                     "log.level",
                     "log.audit_file",
                     "modules.disabled",
                     "roster.max_items",
                     "offline.max_messages",
                     "vcard.max_size",
                     "private.max_size",
                     "register.logout_on_password_change",
                     "smacks.resume_timeout",
                     "smacks.max_queue",
                     "archive.expires_after",
                     "archive.default",
                     "csi.max_held",
                     "pep.max_items",
                     "pep.max_nodes",
                     "pep.max_item_size",
                     "limits.max_per_ip",
                     "limits.max_connections",
                     "limits.trusted_networks",
                     "limits.trust_loopback",
                     "limits.connect_rate",
                     "limits.tls_handshake_timeout",
                     "limits.preauth_idle_timeout",
                     "limits.c2s_rate",
                     "limits.c2s_burst",
                     "limits.s2s_rate",
                     "limits.s2s_burst",
                     "limits.subscriptions_per_minute",
                     "limits.stranger_messages_per_minute",
                     "registration.mode",
                     "registration.max_per_ip_per_hour",
                     "registration.notify_admins",
                     "registration.invite_expires",
                     "registration.allow_user_invites",
                     "spam.block",
                     "spam.block_file",
                     "spam.new_account_strangers_after",
                     "contact.abuse",
                     "contact.admin",
                     "contact.feedback",
                     "contact.sales",
                     "contact.security",
                     "contact.support",
                 }));
  for (const KeyInfo& k : schema()) {
    EXPECT_NE(std::string(k.doc), "") << k.name;
    EXPECT_EQ(std::string(k.doc).find('\n'), std::string::npos) << k.name;
    // Required keys have no default; every other key has one that parses
    // (checked by Defaults above).
    if (k.required) {
      EXPECT_STREQ(k.default_value, "") << k.name;
    }
  }
  EXPECT_EQ(schema()[8].type, KeyType::kInt);
  EXPECT_EQ(schema()[2].type, KeyType::kList);
  EXPECT_EQ(schema()[4].type, KeyType::kBool);
  EXPECT_EQ(schema()[15].type, KeyType::kInt);   // auth.min_password_length
  EXPECT_EQ(schema()[19].type, KeyType::kEnum);  // sandbox.mode
  EXPECT_EQ(schema()[20].type, KeyType::kEnum);  // log.level
  EXPECT_EQ(schema()[0].type, KeyType::kString);
  EXPECT_TRUE(schema()[0].required);
}

// ------------------------------------------------------- every type parsed

TEST(ConfigTest, EveryKeySet) {
  Config c = parse_ok(
      "[server]\n"
      "domain = Chat.Example.ORG.\n"
      "data_dir = /srv/hearth/\n"
      "admins = Alice@Example.org, bob@example.org\n"
      "[tls]\n"
      "certificate = /etc/ssl/chain.pem\n"
      "key = /etc/ssl/key.pem\n"
      "[c2s]\n"
      "interfaces = 127.0.0.1, ::1, *\n"
      "port = 0\n"
      "direct_tls_port = 65535\n"
      "max_stanza_size = 16777216\n"
      "pre_auth_timeout = 5\n"
      "[auth]\n"
      "scram_iterations = 4096\n"
      "[log]\n"
      "level = debug\n");
  EXPECT_EQ(c.domain, "chat.example.org");
  EXPECT_EQ(c.data_dir, "/srv/hearth");
  EXPECT_EQ(c.admins, (std::vector<std::string>{"alice@example.org", "bob@example.org"}));
  EXPECT_EQ(c.certificate, "/etc/ssl/chain.pem");
  EXPECT_EQ(c.key, "/etc/ssl/key.pem");
  EXPECT_EQ(c.certificate_path(), "/etc/ssl/chain.pem");
  EXPECT_EQ(c.key_path(), "/etc/ssl/key.pem");
  EXPECT_EQ(c.interfaces, (std::vector<std::string>{"127.0.0.1", "::1", "*"}));
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.direct_tls_port, 65535);
  EXPECT_EQ(c.max_stanza_size, 16777216u);
  EXPECT_EQ(c.pre_auth_timeout, 5u);
  EXPECT_EQ(c.scram_iterations, 4096u);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.accounts_path(), "/srv/hearth/accounts.mdb");
}

TEST(ConfigTest, IntBoundsInclusive) {
  struct Case {
    const char* section;
    const char* key;
    const char* value;
    uint32_t want;
  };
  for (const Case& t : std::vector<Case>{{"c2s", "max_stanza_size", "10000", 10000},
                                         {"c2s", "pre_auth_timeout", "3600", 3600},
                                         {"auth", "scram_iterations", "10000000", 10000000},
                                         {"c2s", "port", "65535", 65535}}) {
    Config c =
        parse_ok(std::string(kMinimal) + "[" + t.section + "]\n" + t.key + " = " + t.value + "\n");
    uint32_t got = std::string(t.key) == "max_stanza_size"    ? c.max_stanza_size
                   : std::string(t.key) == "pre_auth_timeout" ? c.pre_auth_timeout
                   : std::string(t.key) == "port"             ? c.port
                                                              : c.scram_iterations;
    EXPECT_EQ(got, t.want) << t.key;
  }
}

TEST(ConfigTest, LogLevels) {
  std::pair<const char*, LogLevel> cases[] = {{"debug", LogLevel::kDebug},
                                              {"info", LogLevel::kInfo},
                                              {"warn", LogLevel::kWarn},
                                              {"error", LogLevel::kError}};
  for (auto [text, level] : cases) {
    Config c = parse_ok(std::string(kMinimal) + "[log]\nlevel = " + text + "\n");
    EXPECT_EQ(c.log_level, level) << text;
  }
}

TEST(ConfigTest, DomainForms) {
  auto domain = [](const std::string& v) {
    return parse_ok("[server]\ndomain = " + v + "\n").domain;
  };
  EXPECT_EQ(domain("EXAMPLE.org"), "example.org");
  EXPECT_EQ(domain("example.org."), "example.org");
  EXPECT_EQ(domain("localhost"), "localhost");
  EXPECT_EQ(domain("xn--mnchen-3ya.example"), "xn--mnchen-3ya.example");
  EXPECT_EQ(domain("m\xC3\xBCnchen.example"), "m\xC3\xBCnchen.example");  // UTF-8 accepted
  EXPECT_EQ(domain("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(domain("[2001:db8::1]"), "[2001:db8::1]");
  EXPECT_EQ(domain(std::string(63, 'a') + ".org"), std::string(63, 'a') + ".org");
  std::string longest = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                        std::string(63, 'c') + "." + std::string(61, 'd');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_EQ(domain(longest), longest);
  EXPECT_EQ(domain(longest + "."), longest);  // the trailing dot does not count
}

TEST(ConfigTest, EmptyListsAndQuotedItems) {
  Config c = parse_ok("[server]\ndomain = example.org\nadmins =\n");
  EXPECT_TRUE(c.admins.empty());
  c = parse_ok("[server]\ndomain = example.org\nadmins = \"a@example.org\" , b@example.org\n");
  EXPECT_EQ(c.admins, (std::vector<std::string>{"a@example.org", "b@example.org"}));
}

TEST(ConfigTest, CommentsQuotesAndWhitespace) {
  Config c = parse_ok(
      "\xEF\xBB\xBF# leading comment\r\n"
      "; another\r\n"
      "\r\n"
      "   [ server ]   \r\n"
      "\t# indented comment\r\n"
      "  domain\t=   example.org   \r\n"
      "data_dir = \"/srv/my hearth # not a comment ; neither\"\r\n"
      "[tls]\n"
      "certificate = /etc/x#1;2.pem\n"
      "key = \"  /etc/spaced.key  \"\n"
      "[c2s]\n"
      "port = \"6000\"\n"
      "[log]\n"
      "level=warn");  // no final newline
  EXPECT_EQ(c.domain, "example.org");
  EXPECT_EQ(c.data_dir, "/srv/my hearth # not a comment ; neither");
  EXPECT_EQ(c.certificate, "/etc/x#1;2.pem");
  EXPECT_EQ(c.key, "  /etc/spaced.key  ");
  EXPECT_EQ(c.port, 6000);
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
}

TEST(ConfigTest, RepeatedSectionIsAllowed) {
  Config c =
      parse_ok("[server]\ndomain = example.org\n[c2s]\nport = 6000\n[server]\ndata_dir = /srv/h\n");
  EXPECT_EQ(c.port, 6000);
  EXPECT_EQ(c.data_dir, "/srv/h");
}

TEST(ConfigTest, ZeroPortsMayBeEqual) {
  Config c = parse_ok(std::string(kMinimal) + "[c2s]\nport = 0\ndirect_tls_port = 0\n");
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.direct_tls_port, 0);
}

// ------------------------------------------------------------------ errors

TEST(ConfigErrorTest, Syntax) {
  EXPECT_EQ(error_after_minimal("port 5222\n"),
            "hearth.ini:3: 'port 5222' is not a key = value line, a [section] or a comment; "
            "write key = value, or start the line with # to comment it out");
  EXPECT_EQ(error_after_minimal("[c2s\n"),
            "hearth.ini:3: section header '[c2s' has no closing ']'; write it as [c2s]");
  EXPECT_EQ(error_after_minimal("[]\n"),
            "hearth.ini:3: empty section header '[]'; write a section name, e.g. [server]");
  EXPECT_EQ(error_after_minimal("= 5\n"),
            "hearth.ini:3: '= 5' has no key before '='; write key = value");
  EXPECT_EQ(error_of("[server]\ndomain = exa\x01mple.org\n"),
            "hearth.ini:2: line contains a control character (byte 0x01); remove it");
}

TEST(ConfigErrorTest, KeyBeforeAnySection) {
  EXPECT_EQ(error_of("domain = example.org\n[server]\n"),
            "hearth.ini:1: key 'domain' comes before any [section]; put it under [server]");
  EXPECT_EQ(error_of("# c\n\nfoo = 1\n"),
            "hearth.ini:3: key 'foo' comes before any [section]; start the file with a section "
            "header, e.g. [server]");
}

TEST(ConfigErrorTest, UnknownSection) {
  EXPECT_EQ(error_after_minimal("[cs2]\n"),
            "hearth.ini:3: unknown section [cs2]; did you mean [c2s]? (sections: [server], "
            "[tls], [c2s], [auth], [sandbox], [log], [modules], [roster], [offline], [vcard], "
            "[private], [register], [smacks], [archive], [csi], [pep], [limits], [registration], "
            "[spam], [contact])");
  EXPECT_EQ(error_after_minimal("\n[storage]\n"),
            "hearth.ini:4: unknown section [storage]; sections are: [server], [tls], [c2s], "
            "[auth], [sandbox], [log], [modules], [roster], [offline], [vcard], [private], "
            "[register], [smacks], [archive], [csi], [pep], [limits], [registration], [spam], "
            "[contact]");
  // Section names are case-sensitive like keys.
  EXPECT_EQ(error_of("[Server]\n"),
            "hearth.ini:1: unknown section [Server]; did you mean [server]? (sections: [server], "
            "[tls], [c2s], [auth], [sandbox], [log], [modules], [roster], [offline], [vcard], "
            "[private], [register], [smacks], [archive], [csi], [pep], [limits], [registration], "
            "[spam], [contact])");
}

TEST(ConfigErrorTest, UnknownKeyWithTypoSuggestion) {
  EXPECT_EQ(error_after_minimal("[c2s]\ninterfaces = *\n\n\nprot = 5222\n"),
            "hearth.ini:7: unknown key 'prot' in [c2s]; did you mean 'port'? (keys in [c2s]: "
            "interfaces, port, direct_tls_port, max_stanza_size, pre_auth_timeout, ping_interval, "
            "ping_timeout)");
  EXPECT_EQ(error_of("[server]\ndomian = example.org\n"),
            "hearth.ini:2: unknown key 'domian' in [server]; did you mean 'domain'? (keys in "
            "[server]: domain, data_dir, admins, user, expose_version)");
  EXPECT_EQ(error_after_minimal("[auth]\nscram_iteration = 5000\n"),
            "hearth.ini:4: unknown key 'scram_iteration' in [auth]; did you mean "
            "'scram_iterations'? (keys in [auth]: scram_iterations, min_password_length, "
            "max_failures, failure_window, ban_time)");
}

TEST(ConfigErrorTest, UnknownKeyWithoutSuggestion) {
  EXPECT_EQ(error_after_minimal("[c2s]\nwebsocket = yes\n"),
            "hearth.ini:4: unknown key 'websocket' in [c2s]; keys in [c2s]: interfaces, port, "
            "direct_tls_port, max_stanza_size, pre_auth_timeout, ping_interval, ping_timeout");
}

TEST(ConfigErrorTest, KnownKeyInWrongSection) {
  EXPECT_EQ(error_after_minimal("[c2s]\nlevel = debug\n"),
            "hearth.ini:4: unknown key 'level' in [c2s]; 'level' belongs in [log]");
}

TEST(ConfigErrorTest, DuplicateKey) {
  EXPECT_EQ(error_of("[server]\ndomain = a.org\n\n[server]\ndomain = b.org\n"),
            "hearth.ini:5: duplicate key 'domain' in [server], first set on line 2; keep only "
            "one of them");
  EXPECT_EQ(error_after_minimal("[c2s]\nport = 1\nport = 1\n"),
            "hearth.ini:5: duplicate key 'port' in [c2s], first set on line 4; keep only one of "
            "them");
}

TEST(ConfigErrorTest, BadInts) {
  auto port = [](const std::string& v) { return error_after_minimal("[c2s]\nport = " + v + "\n"); };
  EXPECT_EQ(port("abc"),
            "hearth.ini:4: 'port' must be an integer between 0 and 65535, got 'abc'; write e.g. "
            "port = 5222");
  EXPECT_EQ(port("65536"),
            "hearth.ini:4: 'port' must be an integer between 0 and 65535, got '65536'; write e.g. "
            "port = 5222");
  EXPECT_EQ(port("-1"),
            "hearth.ini:4: 'port' must be an integer between 0 and 65535, got '-1'; write e.g. "
            "port = 5222");
  EXPECT_EQ(port(""),
            "hearth.ini:4: 'port' must be an integer between 0 and 65535, got ''; write e.g. "
            "port = 5222");
  for (const char* bad : {"+5", "0x10", "52 22", "5222.0", "99999999999999999999999"}) {
    EXPECT_EQ(port(bad), std::string("hearth.ini:4: 'port' must be an integer between 0 and "
                                     "65535, got '") +
                             bad + "'; write e.g. port = 5222");
  }
  EXPECT_EQ(error_after_minimal("[c2s]\ndirect_tls_port = 70000\n"),
            "hearth.ini:4: 'direct_tls_port' must be an integer between 0 and 65535, got "
            "'70000'; write e.g. direct_tls_port = 5223");
  EXPECT_EQ(error_after_minimal("[c2s]\nmax_stanza_size = 9999\n"),
            "hearth.ini:4: 'max_stanza_size' must be an integer between 10000 and 16777216, got "
            "'9999'; write e.g. max_stanza_size = 262144");
  EXPECT_EQ(error_after_minimal("[c2s]\nmax_stanza_size = 16777217\n"),
            "hearth.ini:4: 'max_stanza_size' must be an integer between 10000 and 16777216, got "
            "'16777217'; write e.g. max_stanza_size = 262144");
  EXPECT_EQ(error_after_minimal("[c2s]\npre_auth_timeout = 4\n"),
            "hearth.ini:4: 'pre_auth_timeout' must be an integer between 5 and 3600, got '4'; "
            "write e.g. pre_auth_timeout = 30");
  EXPECT_EQ(error_after_minimal("[c2s]\npre_auth_timeout = 3601\n"),
            "hearth.ini:4: 'pre_auth_timeout' must be an integer between 5 and 3600, got "
            "'3601'; write e.g. pre_auth_timeout = 30");
  EXPECT_EQ(error_after_minimal("[auth]\nscram_iterations = 4095\n"),
            "hearth.ini:4: 'scram_iterations' must be an integer between 4096 and 10000000, got "
            "'4095'; write e.g. scram_iterations = 10000");
  EXPECT_EQ(error_after_minimal("[auth]\nscram_iterations = 10000001\n"),
            "hearth.ini:4: 'scram_iterations' must be an integer between 4096 and 10000000, got "
            "'10000001'; write e.g. scram_iterations = 10000");
}

TEST(ConfigErrorTest, BadEnum) {
  for (const char* bad : {"verbose", "warning", "INFO", ""}) {
    EXPECT_EQ(error_after_minimal(std::string("[log]\nlevel = ") + bad + "\n"),
              std::string("hearth.ini:4: 'level' must be one of debug, info, warn, error, got '") +
                  bad + "'; write e.g. level = info");
  }
}

TEST(ConfigErrorTest, BadDomain) {
  auto domain = [](const std::string& v) { return error_of("[server]\ndomain = " + v + "\n"); };
  auto msg = [](const std::string& shown, const std::string& why) {
    return "hearth.ini:2: 'domain' must be a domain name or IP address, got '" + shown + "' (" +
           why + "); write e.g. domain = example.org";
  };
  EXPECT_EQ(domain(""), msg("", "it is empty"));
  EXPECT_EQ(domain("."), msg(".", "it is empty"));
  EXPECT_EQ(domain("ex ample.org"), msg("ex ample.org", "it contains a space"));
  EXPECT_EQ(domain("alice@example.org"),
            msg("alice@example.org", "it contains '@': give only the part after it"));
  EXPECT_EQ(domain("example.org/res"), msg("example.org/res", "it contains '/'"));
  EXPECT_EQ(domain("a..b"), msg("a..b",
                                "it has an empty label (two dots in a row, or a leading "
                                "dot)"));
  EXPECT_EQ(domain(".example.org"),
            msg(".example.org", "it has an empty label (two dots in a row, or a leading dot)"));
  // Only one trailing dot is stripped.
  EXPECT_EQ(domain("example.org.."),
            msg("example.org..", "it has an empty label (two dots in a row, or a leading dot)"));
  EXPECT_EQ(domain("exa_mple.org"), msg("exa_mple.org", "character '_' is not allowed"));
  EXPECT_EQ(domain("example.org:5222"), msg("example.org:5222", "character ':' is not allowed"));
  EXPECT_EQ(domain("::1"), msg("::1", "an IPv6 address must be in brackets, e.g. [::1]"));
  EXPECT_EQ(domain("[nope]"), msg("[nope]", "it is not a valid IPv6 address in brackets"));
  EXPECT_EQ(domain("caf\xC3.org"), msg("caf\xC3.org", "it is not valid UTF-8"));
  std::string label64 = std::string(64, 'a') + ".org";
  EXPECT_EQ(domain(label64), msg(std::string(60, 'a') + "...", "a label is longer than 63 bytes"));
  std::string too_long = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                         std::string(63, 'c') + "." + std::string(62, 'd');
  ASSERT_EQ(too_long.size(), 254u);
  EXPECT_EQ(domain(too_long), msg(std::string(60, 'a') + "...", "it is longer than 253 bytes"));
}

TEST(ConfigErrorTest, DataDirMustBeAbsolute) {
  EXPECT_EQ(error_after_minimal("data_dir = var/lib/hearth\n"),
            "hearth.ini:3: 'data_dir' must be an absolute path, got 'var/lib/hearth'; write e.g. "
            "data_dir = /var/lib/hearth");
  EXPECT_EQ(error_after_minimal("data_dir =\n"),
            "hearth.ini:3: 'data_dir' must be an absolute path, got ''; write e.g. data_dir = "
            "/var/lib/hearth");
}

TEST(ConfigErrorTest, BadAdmins) {
  auto admins = [](const std::string& v) { return error_after_minimal("admins = " + v + "\n"); };
  auto msg = [](const std::string& jid, const std::string& why) {
    return "hearth.ini:3: 'admins' entry '" + jid + "' is not a bare JID local@domain (" + why +
           "); write e.g. admins = alice@example.org";
  };
  EXPECT_EQ(admins("alice"), msg("alice", "it has no '@'"));
  EXPECT_EQ(admins("ok@example.org, a@b@c"), msg("a@b@c", "it has more than one '@'"));
  EXPECT_EQ(admins("alice@example.org/phone"),
            msg("alice@example.org/phone", "a bare JID has no '/resource'"));
  EXPECT_EQ(admins("@example.org"), msg("@example.org", "the part before or after '@' is empty"));
  EXPECT_EQ(admins("alice@"), msg("alice@", "the part before or after '@' is empty"));
  EXPECT_EQ(admins("\"al ice@example.org\""), msg("al ice@example.org", "it contains a space"));
  EXPECT_EQ(admins("a@example.org, , b@example.org"),
            "hearth.ini:3: 'admins' has an empty item in 'a@example.org, , b@example.org'; "
            "separate items with single commas and leave no trailing comma");
  EXPECT_EQ(admins("a@example.org,"),
            "hearth.ini:3: 'admins' has an empty item in 'a@example.org,'; separate items with "
            "single commas and leave no trailing comma");
}

TEST(ConfigErrorTest, BadInterfaces) {
  EXPECT_EQ(error_after_minimal("[c2s]\ninterfaces =\n"),
            "hearth.ini:4: 'interfaces' must name at least one address; write e.g. interfaces = "
            "* to listen on all addresses");
  for (const char* bad : {"localhost", "[::1]", "127.0.0.256", "0.0.0.0:5222"}) {
    EXPECT_EQ(error_after_minimal(std::string("[c2s]\ninterfaces = 127.0.0.1, ") + bad + "\n"),
              std::string("hearth.ini:4: 'interfaces' entry '") + bad +
                  "' must be * or an IPv4/IPv6 address (no brackets, no names); write e.g. "
                  "interfaces = 127.0.0.1, ::1");
  }
}

TEST(ConfigErrorTest, BadQuotes) {
  EXPECT_EQ(error_of("[server]\ndomain = \"example.org\n"),
            "hearth.ini:2: 'domain' has an unterminated quote in '\"example.org'; end the value "
            "with \"");
  EXPECT_EQ(error_of("[server]\ndomain = \"example.org\" x\n"),
            "hearth.ini:2: 'domain' has text after the closing quote in '\"example.org\" x'; put "
            "the whole value inside the quotes");
  EXPECT_EQ(error_after_minimal("[c2s]\nport = \"5222\n"),
            "hearth.ini:4: 'port' has an unterminated quote in '\"5222'; end the value with \"");
}

TEST(ConfigErrorTest, TlsNeedsBothOrNeither) {
  EXPECT_EQ(error_after_minimal("[tls]\n\ncertificate = /etc/ssl/chain.pem\n"),
            "hearth.ini:5: 'certificate' is set but 'key' is not; set both certificate and key "
            "in [tls], or neither to use a self-signed certificate");
  EXPECT_EQ(error_after_minimal("[tls]\nkey = /etc/ssl/key.pem\n"),
            "hearth.ini:4: 'key' is set but 'certificate' is not; set both certificate and key "
            "in [tls], or neither to use a self-signed certificate");
}

TEST(ConfigErrorTest, PortsMustDiffer) {
  EXPECT_EQ(error_after_minimal("[c2s]\nport = 6000\ndirect_tls_port = 6000\n"),
            "hearth.ini:5: 'port' and 'direct_tls_port' are both 6000; give them different "
            "ports, e.g. port = 5222 and direct_tls_port = 5223");
  // Against a default: the line is the one that was set.
  EXPECT_EQ(error_after_minimal("[c2s]\nport = 5223\n"),
            "hearth.ini:4: 'port' and 'direct_tls_port' are both 5223; give them different "
            "ports, e.g. port = 5222 and direct_tls_port = 5223");
}

TEST(ConfigErrorTest, MissingRequiredKey) {
  EXPECT_EQ(error_of(""),
            "hearth.ini: missing required key 'domain' in [server]; add: [server] domain = "
            "example.org");
  EXPECT_EQ(error_of("[server]\ndata_dir = /srv\n[c2s]\nport = 1\n"),
            "hearth.ini: missing required key 'domain' in [server]; add: [server] domain = "
            "example.org");
}

TEST(ConfigErrorTest, ModuleKeys) {
  Result<Config> ok = parse(
      "[server]\ndomain = example.org\nexpose_version = true\n[roster]\nmax_items = 50\n"
      "[register]\nlogout_on_password_change = no\n[contact]\nabuse = mailto:a@example.org, "
      "xmpp:abuse@example.org\n",
      "hearth.ini");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->expose_version);
  EXPECT_EQ(ok->roster.max_items, 50u);
  EXPECT_EQ(ok->offline.max_messages, 1000u);
  EXPECT_FALSE(ok->account.logout_on_password_change);
  EXPECT_EQ(ok->contact.abuse,
            (std::vector<std::string>{"mailto:a@example.org", "xmpp:abuse@example.org"}));
  EXPECT_EQ(error_after_minimal("[server]\n[contact]\nsupport = support@example.org\n"),
            "hearth.ini:5: 'support' entry 'support@example.org' is not a URI starting with "
            "mailto:, xmpp:, https://, http://, tel: or sip:; write e.g. support = "
            "mailto:support@example.org, xmpp:support@example.org");
  EXPECT_EQ(error_after_minimal("[roster]\nmax_items = 0\n"),
            "hearth.ini:4: 'max_items' must be an integer between 1 and 100000, got '0'; write "
            "e.g. max_items = 1000");
  EXPECT_EQ(error_of("[server]\ndomain = example.org\nexpose_version = maybe\n"),
            "hearth.ini:3: 'expose_version' must be true or false, got 'maybe'; write e.g. "
            "expose_version = false");
  // [modules] disabled names only modules of this build.
  Result<Config> bad =
      parse("[server]\ndomain = example.org\n[modules]\ndisabled = nosuch\n", "hearth.ini");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("hearth.ini:4: 'disabled' names 'nosuch', which is not a "
                                      "module of this build; ",
                                      0),
            0u)
      << bad.error().message;
  for (std::string_view name : compiled_module_names()) {
    Result<Config> off =
        parse("[server]\ndomain = example.org\n[modules]\ndisabled = " + std::string(name) + "\n",
              "hearth.ini");
    ASSERT_TRUE(off.ok()) << off.error().message;
    EXPECT_FALSE(off->module_enabled(name));
  }
}

TEST(ConfigErrorTest, StopsAtFirstError) {
  EXPECT_EQ(error_of("[server]\ndomain = example.org\nprot = 1\n[nope]\n"),
            "hearth.ini:3: unknown key 'prot' in [server]; keys in [server]: domain, data_dir, "
            "admins, user, expose_version");
}

TEST(ConfigErrorTest, FileNameLabelsMessages) {
  Result<Config> r = parse("[c2s]\nport = x\n", "/etc/hearth/other.ini");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "/etc/hearth/other.ini:2: 'port' must be an integer between 0 and 65535, got 'x'; "
            "write e.g. port = 5222");
}

// ------------------------------------------------------- files and paths

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const std::string& f : files_)
      unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(ConfigFileTest, LoadsAFile) {
  std::string path = write("h.ini", "[server]\ndomain = example.org\n[c2s]\nport = 7000\n");
  Result<Config> r = load_file(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->port, 7000);
}

TEST_F(ConfigFileTest, ErrorsNameThePath) {
  std::string path = write("h.ini", "[server]\ndomain = example.org\n[c2s]\nprot = 7000\n");
  Result<Config> r = load_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.error().message,
      path +
          ":4: unknown key 'prot' in [c2s]; did you mean 'port'? (keys in [c2s]: "
          "interfaces, port, direct_tls_port, max_stanza_size, pre_auth_timeout, ping_interval, "
          "ping_timeout)");
}

TEST_F(ConfigFileTest, MissingFile) {
  std::string path = dir_ + "/absent.ini";
  Result<Config> r = load_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot read " + path + ": No such file or directory; create it or pass -c FILE");
}

TEST_F(ConfigFileTest, DirectoryIsNotAFile) {
  Result<Config> r = load_file(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot read " + dir_ + ": Is a directory; create it or pass -c FILE");
}

TEST_F(ConfigFileTest, RejectsFilesOverOneMiB) {
  std::string base = kMinimal;
  std::string exact = base + std::string((1 << 20) - base.size() - 1, '#') + "\n";
  ASSERT_EQ(exact.size(), 1u << 20);
  Result<Config> ok = load_file(write("exact.ini", exact));
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  std::string path = write("big.ini", exact + "\n");
  Result<Config> r = load_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, path +
                                   ": file is larger than 1 MiB; a hearth.ini is a few KiB, check "
                                   "the path or pass -c FILE");
}

TEST(ConfigPathTest, DefaultPathFollowsEnvironment) {
  const char* old = getenv("HEARTH_CONFIG");
  std::string saved = old ? old : "";
  unsetenv("HEARTH_CONFIG");
  EXPECT_EQ(default_path(), "/etc/hearth/hearth.ini");
  setenv("HEARTH_CONFIG", "", 1);
  EXPECT_EQ(default_path(), "/etc/hearth/hearth.ini");
  setenv("HEARTH_CONFIG", "/tmp/x.ini", 1);
  EXPECT_EQ(default_path(), "/tmp/x.ini");
  if (old) {
    setenv("HEARTH_CONFIG", saved.c_str(), 1);
  } else {
    unsetenv("HEARTH_CONFIG");
  }
}

// --------------------------------------- the reference file and the schema

TEST(ConfigReferenceTest, ReferenceFileMatchesSchema) {
  const std::string path = std::string(HEARTH_SOURCE_DIR) + "/config/hearth.ini";

  // (a) It parses.
  Result<Config> parsed = load_file(path);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;

  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);

  // Every line that sets a key, commented out or not, under its section.
  struct Seen {
    size_t index;
    bool commented;
    std::string value;
  };
  const std::regex section_re(R"(^\[([a-z0-9_]+)\]$)");
  const std::regex key_re(R"(^(#\s*)?([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$)");
  std::map<std::pair<std::string, std::string>, Seen> seen;
  std::string section;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    if (std::regex_match(lines[i], m, section_re)) {
      section = m[1];
      continue;
    }
    if (!std::regex_match(lines[i], m, key_re)) continue;
    auto where = std::make_pair(section, std::string(m[2]));
    EXPECT_EQ(seen.count(where), 0u)
        << "line " << i + 1 << ": [" << section << "] " << m[2] << " appears twice";
    seen[where] = Seen{i, m[1].matched, m[3]};
  }

  // (b) Every schema key, under its section, with its doc line and default.
  std::set<std::pair<std::string, std::string>> known;
  for (const KeyInfo& k : schema()) {
    auto where = std::make_pair(std::string(k.section), std::string(k.name));
    known.insert(where);
    auto it = seen.find(where);
    if (it == seen.end()) {
      ADD_FAILURE() << "[" << k.section << "] " << k.name << " is missing from " << path;
      continue;
    }
    const Seen& s = it->second;
    ASSERT_GT(s.index, 0u);
    EXPECT_EQ(lines[s.index - 1], std::string("# ") + k.doc)
        << "line " << s.index << ": doc line of [" << k.section << "] " << k.name;
    if (k.required) {
      EXPECT_FALSE(s.commented) << k.name << " is required and must be uncommented";
      EXPECT_NE(s.value, "") << k.name << " needs an example value";
    } else {
      EXPECT_TRUE(s.commented) << k.name << " must be commented out at its default";
      EXPECT_EQ(s.value, k.default_value) << "default of [" << k.section << "] " << k.name;
    }
  }

  // (c) Nothing that the schema does not know.
  for (const auto& [where, s] : seen) {
    EXPECT_EQ(known.count(where), 1u) << "line " << s.index + 1 << ": [" << where.first << "] "
                                      << where.second << " is not in the schema";
  }

  // And the schema order is the file order.
  size_t last = 0;
  for (const KeyInfo& k : schema()) {
    auto it = seen.find({k.section, k.name});
    if (it == seen.end()) continue;
    EXPECT_GT(it->second.index, last) << k.name << " is out of schema order";
    last = it->second.index;
  }
}

}  // namespace
}  // namespace hearth::config

namespace hearth::config {
namespace {

// --------------------------------------- issue 5 keys: durations and modes

TEST(ConfigTest, MultiDeviceDefaults) {
  Config c = parse_ok(kMinimal);
  Config plain;
  EXPECT_EQ(c.smacks.resume_timeout, 300u);
  EXPECT_EQ(c.smacks.max_queue, 1000u);
  EXPECT_EQ(c.archive.expires_after, 7u * 86400u);
  EXPECT_EQ(c.archive.default_mode, "always");
  EXPECT_EQ(c.csi.max_held, 500u);
  EXPECT_EQ(c.pep.max_items, 256u);
  EXPECT_EQ(c.smacks.resume_timeout, plain.smacks.resume_timeout);
  EXPECT_EQ(c.smacks.max_queue, plain.smacks.max_queue);
  EXPECT_EQ(c.archive.expires_after, plain.archive.expires_after);
  EXPECT_EQ(c.archive.default_mode, plain.archive.default_mode);
  EXPECT_EQ(c.csi.max_held, plain.csi.max_held);
  EXPECT_EQ(c.pep.max_items, plain.pep.max_items);
  EXPECT_EQ(c.pep.max_nodes, plain.pep.max_nodes);
  EXPECT_EQ(c.pep.max_item_size, plain.pep.max_item_size);
}

TEST(ConfigTest, ArchiveDurations) {
  auto expires = [](const std::string& v) {
    return parse_ok(std::string(kMinimal) + "[archive]\nexpires_after = " + v + "\n")
        .archive.expires_after;
  };
  EXPECT_EQ(expires("never"), 0u);
  EXPECT_EQ(expires("2s"), 2u);
  EXPECT_EQ(expires("90"), 90u);
  EXPECT_EQ(expires("15m"), 900u);
  EXPECT_EQ(expires("12h"), 43200u);
  EXPECT_EQ(expires("30d"), 30u * 86400u);
  EXPECT_EQ(expires("4w"), 4u * 604800u);
  for (const char* bad : {"0", "0d", "1y", "w", "-1d", "1.5d", "never!", "1000000000d"}) {
    std::string err = error_after_minimal(std::string("[archive]\nexpires_after = ") + bad + "\n");
    EXPECT_NE(err.find("'expires_after' must be a duration"), std::string::npos)
        << bad << ": " << err;
  }
  EXPECT_NE(error_after_minimal("[archive]\ndefault = sometimes\n")
                .find("must be always, roster or never"),
            std::string::npos);
  EXPECT_EQ(parse_ok(std::string(kMinimal) + "[archive]\ndefault = roster\n").archive.default_mode,
            "roster");
}

}  // namespace
}  // namespace hearth::config

namespace hearth::config {
namespace {

// --------------------------------------- issue 6 keys

TEST(ConfigTest, AbuseResistanceDefaults) {
  Config c = parse_ok(kMinimal);
  Config plain;
  EXPECT_EQ(c.max_failures, 5u);
  EXPECT_EQ(c.failure_window, 300u);
  EXPECT_EQ(c.ban_time, 3600u);
  EXPECT_EQ(c.limits.max_per_ip, 10u);
  EXPECT_EQ(c.limits.c2s_rate, 10000u);
  EXPECT_EQ(c.limits.c2s_burst, 25000u);
  EXPECT_EQ(c.limits.s2s_rate, 30000u);
  EXPECT_EQ(c.limits.s2s_burst, 100000u);
  EXPECT_EQ(c.registration.mode, "invite");
  EXPECT_EQ(c.registration.invite_expires, 7u * 86400u);
  EXPECT_EQ(c.spam.new_account_strangers_after, 0u);
  EXPECT_EQ(c.audit_path(), "/var/lib/hearth/audit.log");
  EXPECT_EQ(c.failure_window, plain.failure_window);
  EXPECT_EQ(c.ban_time, plain.ban_time);
  EXPECT_EQ(c.limits.max_connections, plain.limits.max_connections);
  EXPECT_EQ(c.limits.connect_rate, plain.limits.connect_rate);
  EXPECT_EQ(c.limits.tls_handshake_timeout, plain.limits.tls_handshake_timeout);
  EXPECT_EQ(c.limits.preauth_idle_timeout, plain.limits.preauth_idle_timeout);
  EXPECT_EQ(c.limits.subscriptions_per_minute, plain.limits.subscriptions_per_minute);
  EXPECT_EQ(c.limits.stranger_messages_per_minute, plain.limits.stranger_messages_per_minute);
  EXPECT_EQ(c.registration.max_per_ip_per_hour, plain.registration.max_per_ip_per_hour);
  EXPECT_EQ(c.registration.notify_admins, plain.registration.notify_admins);
}

TEST(ConfigTest, AbuseResistanceValues) {
  Config c = parse_ok(std::string(kMinimal) +
                      "[limits]\ntrusted_networks = 192.168.1.0/24, fd00::/8, 10.1.2.3\n"
                      "[spam]\nblock = Spam.Example, bot@example.org\n"
                      "new_account_strangers_after = 1d\n"
                      "[registration]\nmode = open\n");
  EXPECT_EQ(c.limits.trusted_networks,
            (std::vector<std::string>{"192.168.1.0/24", "fd00::/8", "10.1.2.3"}));
  EXPECT_EQ(c.spam.block, (std::vector<std::string>{"spam.example", "bot@example.org"}));
  EXPECT_EQ(c.spam.new_account_strangers_after, 86400u);
  EXPECT_EQ(c.registration.mode, "open");
  for (const char* bad : {"192.168.1.0/33", "10.0.0.0/", "example.org", "fd00::/129", "1.2.3/8"}) {
    std::string err =
        error_after_minimal(std::string("[limits]\ntrusted_networks = ") + bad + "\n");
    EXPECT_NE(err.find("is not an address or network"), std::string::npos) << bad << ": " << err;
  }
  EXPECT_NE(error_after_minimal("[registration]\nmode = maybe\n").find("closed, invite or open"),
            std::string::npos);
  EXPECT_NE(error_after_minimal("[auth]\nban_time = never\n").find("cannot be never"),
            std::string::npos);
  EXPECT_NE(error_after_minimal("[spam]\nblock = a b\n").find("is not a JID or a domain"),
            std::string::npos);
}

}  // namespace
}  // namespace hearth::config
