// Byte codecs for LMDB keys and values (and anything else that is stored or
// sent): big-endian integers so that byte order, and therefore LMDB key
// order, is the same on every target; byte strings with a u32 big-endian
// length prefix. Values are built byte by byte: no struct memcpy, no
// unaligned loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"

namespace hearth::storage {

void append_u8(std::string& out, uint8_t v);
void append_u16(std::string& out, uint16_t v);
void append_u32(std::string& out, uint32_t v);
void append_u64(std::string& out, uint64_t v);
// u32 big-endian length, then the bytes. A string longer than 4 GiB - 1 is
// a broken invariant and aborts.
void append_bytes(std::string& out, std::string_view bytes);

// Decode a value that must be exactly the integer's width (e.g. an LMDB value
// holding one counter); nullopt when the size is wrong.
std::optional<uint16_t> decode_u16(std::string_view in);
std::optional<uint32_t> decode_u32(std::string_view in);
std::optional<uint64_t> decode_u64(std::string_view in);

// Appends to a std::string it owns. take() hands the bytes over.
class Writer {
 public:
  Writer() = default;
  explicit Writer(std::string initial) : out_(std::move(initial)) {}

  Writer& u8(uint8_t v);
  Writer& u16(uint16_t v);
  Writer& u32(uint32_t v);
  Writer& u64(uint64_t v);
  Writer& bytes(std::string_view b);  // u32 BE length prefix, then the bytes
  Writer& raw(std::string_view b);    // the bytes only

  std::string_view view() const { return out_; }
  size_t size() const { return out_.size(); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads from a string_view it does not own. Every read checks the remaining
// length; a failed read leaves its output untouched, and makes every later
// read fail too, so a decoder can read all fields and check once:
//
//   Reader r(value);
//   uint8_t version; uint64_t created; std::string_view salt;
//   r.u8(&version); r.u64(&created); r.bytes(&salt);
//   if (Status s = r.finish(); !s) return s.error();
//
// Views returned by bytes()/raw() point into the input.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool u8(uint8_t* out);
  bool u16(uint16_t* out);
  bool u32(uint32_t* out);
  bool u64(uint64_t* out);
  bool bytes(std::string_view* out);          // u32 BE length prefix, then bytes
  bool raw(size_t n, std::string_view* out);  // exactly n bytes, no prefix
  // Everything not read yet (and consumes it).
  std::string_view rest();

  size_t remaining() const { return in_.size() - pos_; }
  bool failed() const { return failed_; }
  // Fails if any read failed (truncated input) or bytes are left over.
  Status finish() const;

 private:
  bool take(size_t n, std::string_view* out);

  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace hearth::storage
