#include "storage/codec.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::storage {
namespace {

using namespace std::string_literals;

TEST(StorageCodec, IntegersAreBigEndianByteForByte) {
  std::string out;
  append_u8(out, 0xAB);
  append_u16(out, 0x0102);
  append_u32(out, 0x03040506);
  append_u64(out, 0x0708090A0B0C0D0EULL);
  EXPECT_EQ(out, "\xAB\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0A\x0B\x0C\x0D\x0E"s);
}

TEST(StorageCodec, BytesHaveU32BigEndianLengthPrefix) {
  std::string out;
  append_bytes(out, "abc");
  EXPECT_EQ(out,
            "\x00\x00\x00\x03"
            "abc"s);
  out.clear();
  append_bytes(out, "");
  EXPECT_EQ(out, "\x00\x00\x00\x00"s);
  out.clear();
  append_bytes(out, std::string(0x0102, 'x'));
  ASSERT_EQ(out.size(), 4u + 0x0102);
  EXPECT_EQ(out.substr(0, 4), "\x00\x00\x01\x02"s);
}

TEST(StorageCodec, BigEndianKeysSortNumerically) {
  // The reason for big-endian keys: bytewise order equals numeric order.
  std::string a, b;
  append_u64(a, 255);
  append_u64(b, 256);
  EXPECT_LT(a, b);
}

TEST(StorageCodec, WriterReaderRoundTrip) {
  Writer w;
  w.u8(0).u16(0xFFFF).u32(0xDEADBEEF).u64(UINT64_MAX).bytes("hello\0world"s).raw("tail");
  std::string data = w.take();

  Reader r(data);
  uint8_t a = 1;
  uint16_t b = 0;
  uint32_t c = 0;
  uint64_t d = 0;
  std::string_view e, f;
  EXPECT_TRUE(r.u8(&a));
  EXPECT_TRUE(r.u16(&b));
  EXPECT_TRUE(r.u32(&c));
  EXPECT_TRUE(r.u64(&d));
  EXPECT_TRUE(r.bytes(&e));
  EXPECT_TRUE(r.raw(4, &f));
  EXPECT_TRUE(r.finish().ok());
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0xFFFF);
  EXPECT_EQ(c, 0xDEADBEEFu);
  EXPECT_EQ(d, UINT64_MAX);
  EXPECT_EQ(e, "hello\0world"s);
  EXPECT_EQ(f, "tail");
}

TEST(StorageCodec, ReaderDecodesLiteralBytes) {
  std::string data = "\x12\x34\x00\x00\x00\x02hi\x80\x00\x00\x00\x00\x00\x00\x01"s;
  Reader r(data);
  uint16_t a = 0;
  std::string_view s;
  uint64_t b = 0;
  ASSERT_TRUE(r.u16(&a));
  ASSERT_TRUE(r.bytes(&s));
  ASSERT_TRUE(r.u64(&b));
  EXPECT_TRUE(r.finish().ok());
  EXPECT_EQ(a, 0x1234);
  EXPECT_EQ(s, "hi");
  EXPECT_EQ(b, 0x8000000000000001ULL);
}

TEST(StorageCodec, EveryTruncationFails) {
  Writer w;
  w.u8(7).u16(1).u32(2).u64(3).bytes("payload");
  const std::string full = w.take();
  for (size_t n = 0; n < full.size(); ++n) {
    Reader r(std::string_view(full).substr(0, n));
    uint8_t a;
    uint16_t b;
    uint32_t c;
    uint64_t d;
    std::string_view e;
    bool all = r.u8(&a) && r.u16(&b) && r.u32(&c) && r.u64(&d) && r.bytes(&e);
    EXPECT_FALSE(all) << "prefix of " << n << " bytes";
    EXPECT_TRUE(r.failed());
    EXPECT_FALSE(r.finish().ok());
  }
}

TEST(StorageCodec, FailureIsStickyAndLeavesOutputUntouched) {
  std::string data = "\x01\x02\x03"s;
  Reader r(data);
  uint32_t v = 42;
  EXPECT_FALSE(r.u32(&v));
  EXPECT_EQ(v, 42u);
  uint8_t small = 9;
  // Enough bytes remain for a u8, but the reader has already failed.
  EXPECT_FALSE(r.u8(&small));
  EXPECT_EQ(small, 9);
  EXPECT_EQ(r.finish().error().message, "truncated input");
}

TEST(StorageCodec, LengthPrefixBeyondInputFails) {
  // Claims 4 GiB - 1 bytes; must fail without allocating or reading past.
  std::string data =
      "\xFF\xFF\xFF\xFF"
      "abc"s;
  Reader r(data);
  std::string_view s = "untouched";
  EXPECT_FALSE(r.bytes(&s));
  EXPECT_EQ(s, "untouched");
  EXPECT_FALSE(r.finish().ok());
}

TEST(StorageCodec, LeftoverBytesFailFinish) {
  std::string data = "\x00\x01\x02"s;
  Reader r(data);
  uint16_t v = 0;
  ASSERT_TRUE(r.u16(&v));
  EXPECT_EQ(r.remaining(), 1u);
  Status s = r.finish();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("1 unexpected byte"), std::string::npos) << s.error().message;
  uint8_t last = 0;
  ASSERT_TRUE(r.u8(&last));
  EXPECT_EQ(last, 2);
  EXPECT_TRUE(r.finish().ok());
}

TEST(StorageCodec, RestConsumesRemainder) {
  std::string data = "\x05xyz"s;
  Reader r(data);
  uint8_t v = 0;
  ASSERT_TRUE(r.u8(&v));
  EXPECT_EQ(r.rest(), "xyz");
  EXPECT_TRUE(r.finish().ok());
}

TEST(StorageCodec, DecodeExactWidth) {
  EXPECT_EQ(decode_u16("\x01\x02"s), 0x0102);
  EXPECT_EQ(decode_u32("\x00\x00\x00\x01"s), 1u);
  EXPECT_EQ(decode_u64("\x01\x00\x00\x00\x00\x00\x00\x00"s), 0x0100000000000000ULL);
  EXPECT_FALSE(decode_u32("\x00\x00\x01"s).has_value());
  EXPECT_FALSE(decode_u32("\x00\x00\x00\x00\x01"s).has_value());
  EXPECT_FALSE(decode_u16("").has_value());
}

}  // namespace
}  // namespace hearth::storage
