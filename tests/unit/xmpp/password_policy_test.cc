#include "xmpp/password_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::xmpp {
namespace {

constexpr std::string_view kShort = "the password is too short: use at least ";
constexpr std::string_view kUser = "the password must not contain the username";
constexpr std::string_view kDomain = "the password must not contain the domain";
constexpr std::string_view kCommon = "the password is one of the most common passwords";

// The reason, or "" when accepted.
std::string reason(std::string_view pw, std::string_view user = "alice",
                   std::string_view domain = "example.org", size_t min = kDefaultMinLength) {
  Status s = check_password(pw, user, domain, min);
  return s.ok() ? std::string() : s.error().message;
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

TEST(PasswordPolicy, AcceptsAGoodPassword) {
  EXPECT_EQ(reason("correct horse battery"), "");
  EXPECT_EQ(reason("Tr0ub4dor&3xq"), "");
}

TEST(PasswordPolicy, LengthBoundaries) {
  EXPECT_EQ(reason("kq3-vz8-w"), std::string(kShort) + "10 characters");  // 9
  EXPECT_EQ(reason("kq3-vz8-wp"), "");                                    // 10
  EXPECT_EQ(reason("kq3-vz8-wp", "alice", "example.org", 11),
            std::string(kShort) + "11 characters");
  EXPECT_EQ(reason("kq3", "alice", "example.org", 3), "");
  EXPECT_EQ(reason("kq", "alice", "example.org", 3), std::string(kShort) + "3 characters");
  EXPECT_EQ(reason("k", "alice", "example.org", kMinLengthLowest), "");
  std::string longest(kMinLengthHighest, 'q');
  EXPECT_EQ(reason(longest, "alice", "example.org", kMinLengthHighest), "");
  EXPECT_TRUE(
      starts_with(reason(longest.substr(1), "alice", "example.org", kMinLengthHighest), kShort));
}

TEST(PasswordPolicy, EmptyIsRefusedWithAReason) {
  std::string r = reason("");
  EXPECT_FALSE(r.empty());
  EXPECT_NE(r.find("empty"), std::string::npos) << r;
  EXPECT_FALSE(reason("", "alice", "example.org", 1).empty());
}

TEST(PasswordPolicy, LengthCountsCodePointsNotBytes) {
  // Nine two-byte characters: 18 bytes, 9 characters.
  std::string nine;
  for (int i = 0; i < 9; ++i)
    nine += "\xc3\xa9";  // é
  EXPECT_EQ(reason(nine), std::string(kShort) + "10 characters");
  EXPECT_EQ(reason(nine + "\xc3\xa9"), "");
  // Four-byte characters (U+1F512): 10 of them are 40 bytes and 10 characters.
  std::string locks;
  for (int i = 0; i < 9; ++i)
    locks += "\xf0\x9f\x94\x92";
  EXPECT_TRUE(starts_with(reason(locks), kShort));
  EXPECT_EQ(reason(locks + "\xf0\x9f\x94\x92"), "");
}

TEST(PasswordPolicy, LengthIsTakenAfterNormalisation) {
  // "e" + COMBINING ACUTE ACCENT is stored as one "é" (NFC): ten of them
  // are twenty code points as sent but ten characters as stored.
  std::string decomposed;
  for (int i = 0; i < 9; ++i)
    decomposed += "e\xcc\x81";
  EXPECT_EQ(reason(decomposed), std::string(kShort) + "10 characters");
  EXPECT_EQ(reason(decomposed + "e\xcc\x81"), "");
}

TEST(PasswordPolicy, InvalidUtf8IsRefused) {
  for (std::string_view bad : {std::string_view("abcdefghij\xff"),
                               std::string_view("abcdefghij\xc3"),          // truncated
                               std::string_view("abcdefghij\xc0\xaf"),      // overlong
                               std::string_view("abcdefghij\xed\xa0\x80"),  // surrogate
                               std::string_view("abcdefghij\x80")}) {
    EXPECT_EQ(reason(bad), "the password is not valid UTF-8");
  }
}

TEST(PasswordPolicy, ControlCharactersAreRefused) {
  std::string r = reason(std::string_view("abcdefghij\x01k", 12));
  EXPECT_NE(r.find("control character"), std::string::npos) << r;
}

TEST(PasswordPolicy, UsernameInsideIsRefusedWhateverTheCase) {
  EXPECT_EQ(reason("alice-secret-1"), kUser);
  EXPECT_EQ(reason("my-ALICE-pass"), kUser);
  EXPECT_EQ(reason("xx-AlIcE-xxxx"), kUser);
  EXPECT_EQ(reason("zz9-ali-ce-xx"), "");  // not one piece
  // Non-ASCII usernames are lower-cased too.
  EXPECT_EQ(reason("my ÉLODIE pass", "élodie"), kUser);
  EXPECT_EQ(reason("Σοφία-2024-xyz", "σοφία"), kUser);
  // The username as given (normalised localparts are already lower-case).
  EXPECT_EQ(reason("my-alice-pass", "Alice"), kUser);
}

TEST(PasswordPolicy, ShortUsernamesAreNotLookedFor) {
  EXPECT_EQ(reason("kq3-vz8-wp-jo", "jo"), "");
  EXPECT_EQ(reason("kq3-vz8-wp-j", "j"), "");
  EXPECT_EQ(reason("kq3-vz8-wp-joe", "joe"), kUser);  // 3 is enough
}

TEST(PasswordPolicy, DomainInsideIsRefused) {
  EXPECT_EQ(reason("EXAMPLE.ORG-rocks"), kDomain);
  EXPECT_EQ(reason("i-love-Example-99"), kDomain);  // the first label
  EXPECT_EQ(reason("i-love-org-99xx"), "");         // not the top-level domain
  EXPECT_EQ(reason("we-chat-here-1", "bob", "chat.smith.family"), kDomain);
  EXPECT_EQ(reason("smiths-forever", "bob", "chat.smith.family"), kDomain);
  EXPECT_EQ(reason("family-values-x", "bob", "chat.smith.family"), "");
  EXPECT_EQ(reason("my-localhost-pw", "bob", "localhost"), kDomain);
  EXPECT_EQ(reason("hello-münchen-1", "bob", "MÜNCHEN.example"), kDomain);
}

TEST(PasswordPolicy, ShortLabelsAreNotLookedFor) {
  EXPECT_EQ(reason("meet-me-at-noon", "bob", "me.example"), "");
  EXPECT_EQ(reason("the-xyz-is-here", "bob", "xyz.example"), "");
  EXPECT_EQ(reason("whole-xyz.example-here", "bob", "xyz.example"), kDomain);
  EXPECT_EQ(reason("i-like-home-x", "bob", "home.example"), kDomain);  // 4 is enough
}

TEST(PasswordPolicy, CommonPasswordsAreRefused) {
  for (std::string_view pw :
       {"1234567890", "qwertyuiop", "basketball", "Basketball", "QWERTYUIOP", "winniethepooh",
        "password123", "Password123", "qwerty12345", "1q2w3e4r5t", "iloveyou12", "letmein123"})
    EXPECT_EQ(reason(pw), kCommon) << pw;
  // Shorter ones when the minimum allows them.
  for (std::string_view pw : {"123456", "password", "Password1", "letmein", "dragon"})
    EXPECT_EQ(reason(pw, "alice", "example.org", 1), kCommon) << pw;
  // The length rule speaks first.
  EXPECT_TRUE(starts_with(reason("123456"), kShort));
}

TEST(PasswordPolicy, UncommonPasswordsAreNotOnTheList) {
  for (std::string_view pw : {"basketball!", "1234567890x", "qwertyuiop7", "xbasketball",
                              "b4sketball", "w7#Jq-2mPz", "élodie", "aaaaaaaaaaaaaaaaaaaaaaaaa"})
    EXPECT_FALSE(is_common_password(pw)) << pw;
  EXPECT_FALSE(is_common_password(""));
  EXPECT_FALSE(is_common_password("\xff\xfe"));
  EXPECT_TRUE(is_common_password("PassWord"));
}

TEST(PasswordPolicy, ListIsSortedUniqueLowerCaseAscii) {
  ASSERT_GT(common_password_count(), 8000u);
  std::string_view prev;
  size_t bytes = 0;
  for (size_t i = 0; i < common_password_count(); ++i) {
    std::string_view e = common_password(i);
    ASSERT_FALSE(e.empty()) << i;
    bytes += e.size();
    for (char c : e) {
      EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << e;
      EXPECT_FALSE(c >= 'A' && c <= 'Z') << e;
    }
    if (i > 0) {
      // Strictly increasing in (length, bytes): sorted and no duplicates.
      EXPECT_TRUE(prev.size() < e.size() || (prev.size() == e.size() && prev < e))
          << prev << " then " << e;
    }
    prev = e;
  }
  EXPECT_TRUE(common_password(common_password_count()).empty());
  EXPECT_LT(bytes, 96u * 1024u);  // the binary cost stays small
}

TEST(PasswordPolicy, EveryEntryIsFoundInAnyCase) {
  for (size_t i = 0; i < common_password_count(); ++i) {
    std::string e(common_password(i));
    EXPECT_TRUE(is_common_password(e)) << e;
    std::string upper = e;
    for (char& c : upper)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    EXPECT_TRUE(is_common_password(upper)) << upper;
    // Neither username nor domain checked (too short / empty): the list decides.
    EXPECT_EQ(reason(upper, "", "", 1), kCommon) << e;
    // One more character and it is not on the list (unless that is an entry too).
    std::string longer = e + "\x7f";  // DEL: never in the list
    EXPECT_FALSE(is_common_password(longer)) << e;
  }
}

}  // namespace
}  // namespace hearth::xmpp
