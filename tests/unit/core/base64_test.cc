#include "core/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth {
namespace {

// RFC 4648 §10 test vectors.
TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(decoded.value(), plain);
  }
}

TEST(Base64Test, RoundTripsAllByteValuesAndLengths) {
  std::string bytes;
  for (int i = 0; i < 256; ++i)
    bytes.push_back(static_cast<char>(255 - i));
  for (size_t len = 0; len <= bytes.size(); ++len) {
    std::string in = bytes.substr(0, len);
    std::string enc = base64_encode(in);
    EXPECT_EQ(enc.size(), (len + 2) / 3 * 4);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec.ok()) << len;
    EXPECT_EQ(dec.value(), in);
  }
}

TEST(Base64Test, UsesStandardAlphabet) {
  EXPECT_EQ(base64_encode(std::string("\xfb\xff\xbf", 3)), "+/+/");
  auto dec = base64_decode("+/+/");
  ASSERT_TRUE(dec.ok());
  EXPECT_EQ(dec.value(), std::string("\xfb\xff\xbf", 3));
}

TEST(Base64Test, RejectsMalformedInput) {
  const char* kBad[] = {
      "Zg",        // missing padding
      "Zg=",       // short padding
      "Zm9",       // length not a multiple of 4
      "Zg===",     // too much padding
      "=Zg=",      // padding first
      "Z===",      // three pad characters
      "====",      // only padding
      "Zg==Zg==",  // padding in the middle
      "Zm=v",      // padding inside a group
      "Zm9v\n",    // trailing newline
      "Zm 9v",     // space
      " Zm9v",     // leading space
      "Zm9v\r\nYg==",
      "Zm9-",  // base64url character
      "Zm9_",  // base64url character
      "Zm9*",  // outside any alphabet
      "Zh==",  // non-zero pad bits (one byte)
      "Zm9=",  // non-zero pad bits (two bytes)
  };
  for (const char* text : kBad) {
    EXPECT_FALSE(base64_decode(text).ok()) << text;
  }
  EXPECT_FALSE(base64_decode("Zm+=").ok());  // non-zero pad bits (two bytes)
  EXPECT_TRUE(base64_decode("Zm8=").ok());
  EXPECT_FALSE(base64_decode(std::string("Zm9v\0\0\0\0", 8)).ok());
}

}  // namespace
}  // namespace hearth
