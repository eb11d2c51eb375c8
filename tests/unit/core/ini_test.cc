#include "core/ini.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::config::ini {
namespace {

using Kind = Entry::Kind;

TEST(IniTest, TokenizeSectionsKeysCommentsAndBlankLines) {
  auto r = tokenize(
      "# comment\n"
      "; other comment\n"
      "\n"
      "  [ c2s ]  \n"
      "   # indented comment\n"
      "port   =   5222   \n"
      "empty =\n"
      "hash = a # b ; c\n"
      "last=1",
      "f.ini");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& e = r.value();
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].kind, Kind::kSection);
  EXPECT_EQ(e[0].name, "c2s");
  EXPECT_EQ(e[0].line, 4);
  EXPECT_EQ(e[1].kind, Kind::kKeyValue);
  EXPECT_EQ(e[1].name, "port");
  EXPECT_EQ(e[1].value, "5222");
  EXPECT_EQ(e[1].line, 6);
  EXPECT_EQ(e[2].name, "empty");
  EXPECT_EQ(e[2].value, "");
  EXPECT_EQ(e[3].value, "a # b ; c");  // comments are whole-line only
  EXPECT_EQ(e[4].name, "last");
  EXPECT_EQ(e[4].value, "1");
  EXPECT_EQ(e[4].line, 9);
}

TEST(IniTest, TokenizeCrlfAndBom) {
  auto r = tokenize("\xEF\xBB\xBF[log]\r\nlevel = debug\r\n", "f.ini");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().size(), 2u);
  EXPECT_EQ(r.value()[0].name, "log");
  EXPECT_EQ(r.value()[1].value, "debug");
  EXPECT_EQ(r.value()[1].line, 2);
}

TEST(IniTest, TokenizeSplitsAtFirstEquals) {
  auto r = tokenize("[a]\nk = x=y\n", "f.ini");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()[1].name, "k");
  EXPECT_EQ(r.value()[1].value, "x=y");
}

TEST(IniTest, TokenizeErrors) {
  EXPECT_EQ(tokenize("[a]\n[b\n", "f.ini").error().message,
            "f.ini:2: section header '[b' has no closing ']'; write it as [b]");
  EXPECT_EQ(tokenize("[]\n", "f.ini").error().message,
            "f.ini:1: empty section header '[]'; write a section name, e.g. [server]");
  EXPECT_EQ(tokenize("\n\nnonsense\n", "f.ini").error().message,
            "f.ini:3: 'nonsense' is not a key = value line, a [section] or a comment; write key "
            "= value, or start the line with # to comment it out");
  EXPECT_EQ(tokenize("=1\n", "f.ini").error().message,
            "f.ini:1: '=1' has no key before '='; write key = value");
  EXPECT_EQ(tokenize(std::string("a = b\0c\n", 8), "f.ini").error().message,
            "f.ini:1: line contains a control character (byte 0x00); remove it");
  EXPECT_EQ(tokenize("a = b\rc\n", "f.ini").error().message,
            "f.ini:1: line contains a control character (byte 0x0d); remove it");
  EXPECT_EQ(tokenize("a = \x7f\n", "f.ini").error().message,
            "f.ini:1: line contains a control character (byte 0x7f); remove it");
  EXPECT_TRUE(tokenize("a =\tb\n", "f.ini").ok());  // tabs are whitespace
}

TEST(IniTest, Unquote) {
  EXPECT_EQ(unquote("plain", "k").value(), "plain");
  EXPECT_EQ(unquote("\"  spaced # ; , \"", "k").value(), "  spaced # ; , ");
  EXPECT_EQ(unquote("\"\"", "k").value(), "");
  EXPECT_EQ(unquote("\"a\"b\"", "k").value(), "a\"b");  // literal, no escapes
  EXPECT_EQ(unquote("a\"", "k").value(), "a\"");
  EXPECT_EQ(unquote("\"", "k").error().message,
            "'k' has an unterminated quote in '\"'; end the value with \"");
  EXPECT_EQ(unquote("\"abc", "k").error().message,
            "'k' has an unterminated quote in '\"abc'; end the value with \"");
  EXPECT_EQ(unquote("\"a\" b", "k").error().message,
            "'k' has text after the closing quote in '\"a\" b'; put the whole value inside the "
            "quotes");
}

TEST(IniTest, SplitList) {
  EXPECT_TRUE(split_list("", "k").value().empty());
  EXPECT_TRUE(split_list("   ", "k").value().empty());
  EXPECT_EQ(split_list("a", "k").value(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(split_list(" a ,b,  c ", "k").value(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_list("\"a, b\", c", "k").value(), (std::vector<std::string>{"a, b", "c"}));
  EXPECT_EQ(split_list("a,,b", "k").error().message,
            "'k' has an empty item in 'a,,b'; separate items with single commas and leave no "
            "trailing comma");
  EXPECT_FALSE(split_list("a,", "k").ok());
  EXPECT_FALSE(split_list(",a", "k").ok());
  EXPECT_EQ(split_list("\"a, b", "k").error().message,
            "'k' has an unterminated quote in '\"a, b'; end the value with \"");
}

TEST(IniTest, ParseBool) {
  bool b = false;
  for (const char* t : {"true", "yes", "on"}) {
    b = false;
    EXPECT_TRUE(parse_bool(t, &b)) << t;
    EXPECT_TRUE(b) << t;
  }
  for (const char* f : {"false", "no", "off"}) {
    b = true;
    EXPECT_TRUE(parse_bool(f, &b)) << f;
    EXPECT_FALSE(b) << f;
  }
  for (const char* bad : {"", "1", "0", "True", "y", "enabled", "true "}) {
    EXPECT_FALSE(parse_bool(bad, &b)) << bad;
  }
}

TEST(IniTest, ParseInt) {
  int64_t v = 0;
  EXPECT_TRUE(parse_int("0", &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_int("5222", &v));
  EXPECT_EQ(v, 5222);
  EXPECT_TRUE(parse_int("-7", &v));
  EXPECT_EQ(v, -7);
  EXPECT_TRUE(parse_int("9223372036854775807", &v));
  EXPECT_EQ(v, INT64_MAX);
  for (const char* bad : {"", "+5", " 5", "5 ", "5a", "0x10", "1e3", "9223372036854775808",
                          "99999999999999999999", "-", "1.0"}) {
    EXPECT_FALSE(parse_int(bad, &v)) << bad;
  }
}

TEST(IniTest, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("port", "port"), 0u);
  EXPECT_EQ(edit_distance("prot", "port"), 1u);  // transposition
  EXPECT_EQ(edit_distance("pot", "port"), 1u);
  EXPECT_EQ(edit_distance("ports", "port"), 1u);
  EXPECT_EQ(edit_distance("prt", "port"), 1u);
  EXPECT_EQ(edit_distance("domian", "domain"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
}

TEST(IniTest, QuotedShortensLongValues) {
  EXPECT_EQ(ini::quoted(""), "''");
  EXPECT_EQ(ini::quoted("abc"), "'abc'");
  EXPECT_EQ(ini::quoted(std::string(60, 'x')), "'" + std::string(60, 'x') + "'");
  EXPECT_EQ(ini::quoted(std::string(61, 'x')), "'" + std::string(60, 'x') + "...'");
  // A two-byte character straddling the cut is dropped whole.
  std::string s = std::string(59, 'x') + "\xC3\xA9" + "yyy";
  EXPECT_EQ(ini::quoted(s), "'" + std::string(59, 'x') + "...'");
}

}  // namespace
}  // namespace hearth::config::ini
