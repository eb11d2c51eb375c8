// Non-ASCII expectations were computed with Python's unicodedata (Unicode
// 14.0): width mapping, str.lower(), unicodedata.normalize('NFC').
#include "xmpp/jid.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

namespace hearth::xmpp {
namespace {

std::string full_of(std::string_view in) {
  auto j = Jid::parse(in);
  return j ? j->full() : "ERROR: " + j.error().message;
}

void expect_invalid(std::string_view in, std::string_view needle) {
  auto j = Jid::parse(in);
  ASSERT_FALSE(j.ok()) << "accepted: " << in << " -> " << j->full();
  EXPECT_NE(j.error().message.find(needle), std::string::npos)
      << "error for [" << in << "] was: " << j.error().message << " (wanted " << needle << ")";
}

TEST(JidTest, ParsesPartsPerRfc7622Section31) {
  auto j = Jid::parse("juliet@example.com/balcony");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->local(), "juliet");
  EXPECT_EQ(j->domain(), "example.com");
  EXPECT_EQ(j->resource(), "balcony");
  EXPECT_TRUE(j->has_local());
  EXPECT_TRUE(j->has_resource());

  // Resource is everything after the first '/', '@' and '/' included.
  j = Jid::parse("a.example.com/b@example.net/c");
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->has_local());
  EXPECT_EQ(j->domain(), "a.example.com");
  EXPECT_EQ(j->resource(), "b@example.net/c");

  j = Jid::parse("example.com");
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(j->has_local());
  EXPECT_FALSE(j->has_resource());
}

TEST(JidTest, CaseFolding) {
  EXPECT_EQ(full_of("Juliet@Example.COM/Balcony"), "juliet@example.com/Balcony");
  EXPECT_EQ(full_of("ROMEO@MONTAGUE.LIT"), "romeo@montague.lit");
  // Greek: final sigma as str.lower() does it; U+0130 maps to "i" + U+0307.
  EXPECT_EQ(full_of("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@example.com"),
            "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@example.com");
  EXPECT_EQ(full_of("\u0130@example.com"), "i\u0307@example.com");
  EXPECT_EQ(full_of("M\u00dcNCHEN.DE"), "m\u00fcnchen.de");
}

TEST(JidTest, WidthMapping) {
  EXPECT_EQ(full_of("\uff2a\uff55\uff4c\uff49\uff45\uff54@example.com"), "juliet@example.com");
  // Halfwidth katakana -> katakana in the localpart.
  EXPECT_EQ(full_of("\uff76@example.com"), "\u30ab@example.com");
  // Domain: fullwidth letters and FULLWIDTH FULL STOP, ideographic full stop.
  EXPECT_EQ(full_of("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"),
            "example.com");
  EXPECT_EQ(full_of("example\u3002com"), "example.com");
  // Resources are not width-mapped (OpaqueString) but stay valid.
  EXPECT_EQ(full_of("example.com/\uff21"), "example.com/\uff21");
}

TEST(JidTest, NfcInEveryPart) {
  EXPECT_EQ(full_of("CAFE\u0301@example.com"), "caf\u00e9@example.com");
  EXPECT_EQ(full_of("caf\u00e9@example.com"), "caf\u00e9@example.com");
  EXPECT_EQ(full_of("\u212b@example.com"), "\u00e5@example.com");  // ANGSTROM SIGN
  EXPECT_EQ(full_of("A\u030a\u0301@example.com"), "\u01fb@example.com");
  EXPECT_EQ(full_of("\u1112\u1161\u11ab@example.com"), "\ud55c@example.com");  // Hangul
  EXPECT_EQ(full_of("CAFE\u0301.example"), "caf\u00e9.example");
  EXPECT_EQ(full_of("example.com/E\u0301"), "example.com/\u00c9");  // case kept
  EXPECT_EQ(full_of("example.com/a\u0323\u0302"), "example.com/\u1ead");
  EXPECT_EQ(full_of("example.com/a\u0302\u0323"), "example.com/\u1ead");
}

TEST(JidTest, ResourceSpacesMappedToAscii) {
  EXPECT_EQ(full_of("example.com/a\u00a0b"), "example.com/a b");
  EXPECT_EQ(full_of("example.com/a\u3000b\u2003c"), "example.com/a b c");
  EXPECT_EQ(full_of("example.com/ lead and trail "), "example.com/ lead and trail ");
}

TEST(JidTest, TrailingDotStripped) {
  EXPECT_EQ(full_of("juliet@example.com."), "juliet@example.com");
  EXPECT_EQ(full_of("example.com./res"), "example.com/res");
  EXPECT_EQ(full_of("1.2.3.4."), "1.2.3.4");
  expect_invalid("example.com..", "empty label");
  expect_invalid(".", "empty");
}

TEST(JidTest, IpLiterals) {
  EXPECT_EQ(full_of("juliet@192.168.0.1/r"), "juliet@192.168.0.1/r");
  EXPECT_EQ(full_of("[2001:DB8::1]"), "[2001:db8::1]");
  EXPECT_EQ(full_of("juliet@[::1]/r"), "juliet@[::1]/r");
  EXPECT_EQ(full_of("[::ffff:192.0.2.1]"), "[::ffff:192.0.2.1]");
  expect_invalid("1.2.3.256", "IPv4");
  expect_invalid("1.2.3", "IPv4");
  expect_invalid("01.2.3.4", "IPv4");
  expect_invalid("[zzz]", "IPv6");
  expect_invalid("[::1", "IPv6");
  expect_invalid("[]", "IPv6");
  expect_invalid("[192.168.0.1]", "IPv6");
  expect_invalid("[fe80::1%eth0]", "IPv6");
}

TEST(JidTest, Rfc7622Section35Valid) {
  EXPECT_EQ(full_of("juliet@example.com"), "juliet@example.com");
  EXPECT_EQ(full_of("juliet@example.com/foo"), "juliet@example.com/foo");
  EXPECT_EQ(full_of("juliet@example.com/foo bar"), "juliet@example.com/foo bar");
  EXPECT_EQ(full_of("juliet@example.com/foo@bar"), "juliet@example.com/foo@bar");
  EXPECT_EQ(full_of("foo\\20bar@example.com"), "foo\\20bar@example.com");
  EXPECT_EQ(full_of("fussball@example.com"), "fussball@example.com");
  EXPECT_EQ(full_of("fu\u00dfball@example.com"), "fu\u00dfball@example.com");
  EXPECT_EQ(full_of("\u03c0@example.com"), "\u03c0@example.com");
  EXPECT_EQ(full_of("\u03a3@example.com/foo"), "\u03c3@example.com/foo");
  EXPECT_EQ(full_of("\u03c3@example.com/foo"), "\u03c3@example.com/foo");
  EXPECT_EQ(full_of("\u03c2@example.com/foo"), "\u03c2@example.com/foo");
  EXPECT_EQ(full_of("king@example.com/\u265a"), "king@example.com/\u265a");
  EXPECT_EQ(full_of("example.com"), "example.com");
  EXPECT_EQ(full_of("example.com/foobar"), "example.com/foobar");
  EXPECT_EQ(full_of("a.example.com/b@example.net"), "a.example.com/b@example.net");
}

TEST(JidTest, Rfc7622Section35Invalid) {
  expect_invalid("\"juliet\"@example.com", "forbidden character '\"'");
  expect_invalid("foo bar@example.com", "U+0020");
  expect_invalid("juliet@example.com/", "resourcepart is empty");
  expect_invalid("@example.com/", "localpart is empty");
  // ROMAN NUMERAL FOUR; the check runs after case mapping, hence the small form.
  expect_invalid("henry\u2163@example.com", "U+2173");
  expect_invalid("\u265a@example.com", "U+265A");  // BLACK CHESS KING
  expect_invalid("juliet@", "domainpart is empty");
  expect_invalid("/foobar", "domainpart is empty");
}

TEST(JidTest, LocalpartForbiddenCharacters) {
  for (const char* bad : {"a\"b", "a&b", "a'b", "a/b", "a:b", "a<b", "a>b", "a@b"}) {
    auto r = normalize_localpart(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("localpart"), std::string::npos);
    EXPECT_NE(r.error().message.find("forbidden character '"), std::string::npos)
        << r.error().message;
  }
  auto r = normalize_localpart("a@b");
  EXPECT_NE(r.error().message.find("contains forbidden character '@'"), std::string::npos);
  // Fullwidth forms map onto forbidden ASCII: still forbidden.
  EXPECT_FALSE(normalize_localpart("a\uff20b").ok());  // FULLWIDTH COMMERCIAL AT
  EXPECT_FALSE(normalize_localpart("a\uff1ab").ok());  // FULLWIDTH COLON
  // Other ASCII punctuation is PVALID in IdentifierClass.
  EXPECT_EQ(normalize_localpart("a.b_c-d+e!#$%*=?^`{|}~\\").value(), "a.b_c-d+e!#$%*=?^`{|}~\\");
}

TEST(JidTest, LocalpartIdentifierClassRejections) {
  struct Case {
    const char* in;
    const char* needle;
  };
  const Case cases[] = {
      {"a\x01"
       "b",
       "control"},  // Cc
      {"a\x7f"
       "b",
       "control"},                      // DEL
      {"a\tb", "control"},              // tab
      {"a\u0085b", "control"},          // C1 control
      {"a\u00a0b", "U+00A0"},           // NBSP: space / HasCompat
      {"a\u2003b", "U+2003"},           // EM SPACE
      {"a\u200bb", "U+200B"},           // ZERO WIDTH SPACE (Cf)
      {"a\u00adb", "U+00AD"},           // SOFT HYPHEN (ignorable)
      {"a\u2028b", "U+2028"},           // LINE SEPARATOR
      {"a\u0378b", "unassigned"},       // Cn
      {"a\ue000b", "private-use"},      // Co
      {"a\U000f0000b", "private-use"},  // plane 15 private use
      {"a\ufdd0b", "noncharacter"},     // noncharacter
      {"a\uffffb", "noncharacter"},
      {"a\ufb01b", "U+FB01"},       // LATIN SMALL LIGATURE FI (HasCompat)
      {"a\u00bdb", "U+00BD"},       // VULGAR FRACTION ONE HALF
      {"\u2460", "U+2460"},         // CIRCLED DIGIT ONE
      {"a\u20acb", "U+20AC"},       // EURO SIGN (symbol)
      {"a\u00a7b", "U+00A7"},       // SECTION SIGN (punctuation)
      {"a\U0001f600b", "U+1F600"},  // emoji (symbol)
      {"a\u0640b", "U+0640"},       // ARABIC TATWEEL (exception: disallowed)
      {"a\u200db", "context"},      // ZWJ without virama
      {"a\u00b7b", "context"},      // MIDDLE DOT not between l and l
      {"\u1100", "U+1100"},         // lone old Hangul jamo (no syllable)
      {"\u05d0a", "Bidi"},          // L in an RTL string
  };
  for (const Case& c : cases) {
    auto r = normalize_localpart(c.in);
    ASSERT_FALSE(r.ok()) << c.in << " -> " << r.value();
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.in << ": " << r.error().message;
  }
  // ... and their valid neighbours.
  EXPECT_TRUE(normalize_localpart("l\u00b7l").ok());
  EXPECT_TRUE(normalize_localpart("\u0915\u094d\u200d\u0937").ok());
  EXPECT_TRUE(normalize_localpart("\u05d0\u05d1").ok());
  EXPECT_TRUE(normalize_localpart("\u05d0\u05d1\u0031").ok());
  EXPECT_TRUE(normalize_localpart("\u0628\u0627\u0628").ok());
  EXPECT_TRUE(normalize_localpart("\u6f22\u5b57").ok());
}

TEST(JidTest, ResourcepartRejections) {
  struct Case {
    const char* in;
    const char* needle;
  };
  const Case cases[] = {
      {"a\x01"
       "b",
       "control"},
      {"a\x7f"
       "b",
       "control"},
      {"a\nb", "control"},
      {"a\u0085b", "control"},
      {"a\u0378b", "unassigned"},
      {"a\ue000b", "private-use"},
      {"a\ufdd0b", "noncharacter"},
      {"a\u200bb", "U+200B"},
      {"a\u2028b", "U+2028"},
      {"a\u200db", "context"},
  };
  for (const Case& c : cases) {
    auto r = normalize_resourcepart(c.in);
    ASSERT_FALSE(r.ok()) << c.in << " -> " << r.value();
    EXPECT_NE(r.error().message.find("resourcepart"), std::string::npos);
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.in << ": " << r.error().message;
  }
  // FreeformClass admits what IdentifierClass refuses.
  EXPECT_EQ(normalize_resourcepart("Caf\u00e9 \u265a \u00bd \ufb01 \u20ac \U0001f600").value(),
            "Caf\u00e9 \u265a \u00bd \ufb01 \u20ac \U0001f600");
  EXPECT_EQ(normalize_resourcepart("\"&'/:<>@").value(), "\"&'/:<>@");
}

TEST(JidTest, DomainpartRejections) {
  struct Case {
    const char* in;
    const char* needle;
  };
  const Case cases[] = {
      {"exa_mple.com", "forbidden character '_'"},
      {"exa mple.com", "control or space U+0020"},
      {"exa\tmple.com", "control or space U+0009"},
      {"exa!mple.com", "forbidden character '!'"},
      {"user@host@example.com", "forbidden character '@'"},
      {"-example.com", "'-'"},
      {"example-.com", "'-'"},
      {"exa..mple", "empty label"},
      {".example.com", "empty label"},
      {"ex\u265a.com", "U+265A"},
      {"ex\u00a0ample.com", "U+00A0"},
      {"ex\u200bample.com", "U+200B"},
      {"\u0301a.com", "combining mark"},
      {"ex\ue000.com", "private-use"},
      {"\u05d0\u05d1.1com", "Bidi"},
  };
  for (const Case& c : cases) {
    auto r = Jid::parse(c.in);
    ASSERT_FALSE(r.ok()) << c.in << " -> " << r->full();
    EXPECT_NE(r.error().message.find("domainpart"), std::string::npos);
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos)
        << c.in << ": " << r.error().message;
  }
  EXPECT_EQ(normalize_domainpart("xn--mnchen-3ya.de").value(), "xn--mnchen-3ya.de");
  EXPECT_EQ(normalize_domainpart("\u05d0\u05d1.com").value(), "\u05d0\u05d1.com");
  EXPECT_EQ(normalize_domainpart("localhost").value(), "localhost");
  EXPECT_EQ(normalize_domainpart("a-b.c0").value(), "a-b.c0");
}

TEST(JidTest, LengthLimits) {
  const std::string l1023(1023, 'a'), l1024(1024, 'a');
  EXPECT_TRUE(normalize_localpart(l1023).ok());
  EXPECT_FALSE(normalize_localpart(l1024).ok());
  EXPECT_TRUE(Jid::parse(l1023 + "@example.com").ok());
  EXPECT_FALSE(Jid::parse(l1024 + "@example.com").ok());
  EXPECT_TRUE(normalize_resourcepart(l1023).ok());
  EXPECT_FALSE(normalize_resourcepart(l1024).ok());
  EXPECT_TRUE(Jid::parse("example.com/" + l1023).ok());
  EXPECT_FALSE(Jid::parse("example.com/" + l1024).ok());

  // Non-ASCII: 511 x U+00E9 + 'a' = 1023 bytes; one more 'a' is too long.
  std::string e511;
  for (int i = 0; i < 511; ++i)
    e511 += "\u00e9";
  EXPECT_EQ(normalize_localpart(e511 + "a").value().size(), 1023u);
  EXPECT_FALSE(normalize_localpart(e511 + "aa").ok());
  EXPECT_EQ(normalize_resourcepart(e511 + "a").value().size(), 1023u);
  EXPECT_FALSE(normalize_resourcepart(e511 + "aa").ok());
  // The limit applies after mapping: 1023 fullwidth letters (3069 bytes)
  // become 1023 ASCII bytes; decomposed input composes first.
  std::string wide;
  for (int i = 0; i < 1023; ++i)
    wide += "\uff41";
  EXPECT_EQ(normalize_localpart(wide).value(), l1023);
  std::string decomposed;
  for (int i = 0; i < 511; ++i)
    decomposed += "e\u0301";
  EXPECT_EQ(normalize_resourcepart(decomposed + "a").value(), e511 + "a");
  // Far too long raw input is refused before any work.
  EXPECT_FALSE(normalize_localpart(std::string(5000, 'a')).ok());

  // Labels: 63 ok, 64 not. ASCII names: 253 ok, 254 not.
  const std::string label63(63, 'a');
  EXPECT_TRUE(normalize_domainpart(label63 + ".com").ok());
  EXPECT_FALSE(normalize_domainpart(label63 + "a.com").ok());
  std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(name253.size(), 253u);
  EXPECT_TRUE(normalize_domainpart(name253).ok());
  EXPECT_TRUE(normalize_domainpart(name253 + ".").ok());  // trailing dot does not count
  EXPECT_FALSE(normalize_domainpart(name253 + "b").ok());
  // Non-ASCII domain: 16 labels of 31 x U+00E9 (62 bytes) = 1007 bytes with
  // the dots; a final ASCII label of 15 makes 1023, of 16 makes 1024.
  std::string e31;
  for (int i = 0; i < 31; ++i)
    e31 += "\u00e9";
  std::string idn;
  for (int i = 0; i < 16; ++i)
    idn += e31 + ".";
  EXPECT_EQ(normalize_domainpart(idn + std::string(15, 'x')).value().size(), 1023u);
  EXPECT_FALSE(normalize_domainpart(idn + std::string(16, 'x')).ok());
}

// ASCII domainparts take a fast path (routing parses JIDs for every
// stanza): every short name over letters, digits, '-', '.' and one
// forbidden character must come out as the DNS rules say, lowercased.
TEST(JidTest, AsciiDomainpartsFollowTheDnsRules) {
  const std::string alphabet = "aZ0-._";
  auto expected = [](std::string in) -> std::string {
    if (!in.empty() && in.back() == '.') in.pop_back();
    if (in.empty()) return "";
    if (in.find_first_not_of("0123456789.") == std::string::npos) {
      unsigned char addr[4];
      return inet_pton(AF_INET, in.c_str(), addr) == 1 ? in : "";
    }
    size_t start = 0;
    while (true) {
      size_t dot = in.find('.', start);
      std::string label = in.substr(start, dot == std::string::npos ? dot : dot - start);
      if (label.empty() || label.front() == '-' || label.back() == '-') return "";
      for (char c : label)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return "";
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    for (char& c : in)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return in;
  };
  std::vector<std::string> names{""};
  for (size_t len = 1; len <= 5; ++len) {
    std::vector<std::string> longer;
    for (const std::string& n : names)
      if (n.size() == len - 1)
        for (char c : alphabet)
          longer.push_back(n + c);
    names.insert(names.end(), longer.begin(), longer.end());
  }
  ASSERT_GT(names.size(), 9000u);
  for (const std::string& n : names) {
    std::string want = expected(n);
    Result<std::string> got = normalize_domainpart(n);
    if (want.empty()) {
      EXPECT_FALSE(got.ok()) << "accepted '" << n << "' as '" << got.value() << "'";
    } else {
      ASSERT_TRUE(got.ok()) << "refused '" << n << "': " << got.error().message;
      EXPECT_EQ(got.value(), want) << n;
    }
  }
  // The same through Jid::parse, with a localpart and resource.
  EXPECT_EQ(full_of("Juliet@Example.COM./Balcony"), "juliet@example.com/Balcony");
  EXPECT_EQ(full_of("a@1.2.3.4"), "a@1.2.3.4");
  expect_invalid("a@-example.com", "domainpart");
  expect_invalid("a@exa_mple.com", "forbidden character '_'");
}

TEST(JidTest, InvalidUtf8InEveryPart) {
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    const std::string b = bad;
    auto l = Jid::parse("a" + b + "@example.com");
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.error().message.find("localpart"), std::string::npos);
    EXPECT_NE(l.error().message.find("UTF-8"), std::string::npos);
    auto d = Jid::parse("a@exam" + b + "ple.com");
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("domainpart"), std::string::npos);
    EXPECT_NE(d.error().message.find("UTF-8"), std::string::npos);
    auto r = Jid::parse("a@example.com/r" + b);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("resourcepart"), std::string::npos);
    EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos);
  }
}

TEST(JidTest, ErrorsEchoAtMost64Bytes) {
  const std::string longbad = std::string(3000, 'x') + "@" + std::string(3000, 'y') + "!";
  auto r = Jid::parse(longbad);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 200u) << r.error().message;
  EXPECT_NE(r.error().message.find("..."), std::string::npos);
  // Non-printable bytes are escaped, never copied raw.
  auto c = normalize_resourcepart(std::string("a\x1b[2Jb", 6));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.find('\x1b'), std::string::npos);
  auto o = normalize_resourcepart("a\u202eb\x01");  // RIGHT-TO-LEFT OVERRIDE, control
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error().message.find("\u202e"), std::string::npos) << o.error().message;
  EXPECT_NE(o.error().message.find("\\u{202E}"), std::string::npos) << o.error().message;
  auto u = normalize_localpart("a\xff");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message.find('\xff'), std::string::npos);
  EXPECT_FALSE(Jid::parse(std::string(20000, 'a')).ok());
}

TEST(JidTest, BareFullFromParts) {
  auto j = Jid::parse("Juliet@Example.com/Balcony");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->bare(), "juliet@example.com");
  EXPECT_EQ(j->full(), "juliet@example.com/Balcony");
  const Jid b = j->bare_jid();
  EXPECT_EQ(b.full(), "juliet@example.com");
  EXPECT_FALSE(b.has_resource());
  EXPECT_EQ(b.local(), "juliet");

  auto p = Jid::from_parts("JULIET", "EXAMPLE.com.", "Balcony");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, *j);
  auto d = Jid::from_parts("", "example.com", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->bare(), "example.com");
  EXPECT_EQ(d->full(), "example.com");
  auto dr = Jid::from_parts("", "example.com", "r/x@y");
  ASSERT_TRUE(dr.ok());
  EXPECT_EQ(dr->full(), "example.com/r/x@y");
  EXPECT_FALSE(Jid::from_parts("a@b", "example.com", "").ok());
  EXPECT_FALSE(Jid::from_parts("a/b", "example.com", "").ok());
  EXPECT_FALSE(Jid::from_parts("a", "", "").ok());
  EXPECT_FALSE(Jid::from_parts("a", "exa/mple.com", "").ok());
  EXPECT_FALSE(Jid::from_parts("a", "example.com", "a\nb").ok());
  EXPECT_NE(Jid::parse("a@example.com/x").value(), Jid::parse("a@example.com/X").value());
  EXPECT_EQ(Jid::parse("A@example.com").value(), Jid::parse("a@EXAMPLE.com").value());
}

TEST(JidTest, NormalisationIsIdempotent) {
  for (const char* in :
       {"Juliet@Example.COM/Balcony", "\u039f\u0394\u03a5\u03a3@example.com/\u00c9",
        "\u0130\u212b@caf\u00e9.example/a\u00a0b", "\uff2a@\uff45\uff58.com",
        "\u1112\u1161\u11ab@[2001:DB8::1]/\u265a", "\u05d0\u05d1@\u05d0\u05d1.com"}) {
    auto once = Jid::parse(in);
    ASSERT_TRUE(once.ok()) << in << ": " << once.error().message;
    auto twice = Jid::parse(once->full());
    ASSERT_TRUE(twice.ok()) << once->full();
    EXPECT_EQ(*twice, *once);
    EXPECT_EQ(twice->full(), once->full());
  }
}

}  // namespace
}  // namespace hearth::xmpp
