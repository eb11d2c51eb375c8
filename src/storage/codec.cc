#include "storage/codec.h"

#include <cstdlib>

#include "core/log.h"

namespace hearth::storage {
namespace {

template <class T>
void append_be(std::string& out, T v) {
  for (int shift = static_cast<int>(sizeof(T) * 8) - 8; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(v >> shift)));
  }
}

template <class T>
T load_be(std::string_view in) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v = static_cast<T>((v << 8) | static_cast<uint8_t>(in[i]));
  }
  return v;
}

template <class T>
std::optional<T> decode_exact(std::string_view in) {
  if (in.size() != sizeof(T)) return std::nullopt;
  return load_be<T>(in);
}

}  // namespace

void append_u8(std::string& out, uint8_t v) {
  out.push_back(static_cast<char>(v));
}
void append_u16(std::string& out, uint16_t v) {
  append_be(out, v);
}
void append_u32(std::string& out, uint32_t v) {
  append_be(out, v);
}
void append_u64(std::string& out, uint64_t v) {
  append_be(out, v);
}

void append_bytes(std::string& out, std::string_view bytes) {
  if (bytes.size() > UINT32_MAX) {
    HEARTH_ERROR("storage", "append_bytes: %zu bytes do not fit a u32 length", bytes.size());
    abort();
  }
  append_u32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

std::optional<uint16_t> decode_u16(std::string_view in) {
  return decode_exact<uint16_t>(in);
}
std::optional<uint32_t> decode_u32(std::string_view in) {
  return decode_exact<uint32_t>(in);
}
std::optional<uint64_t> decode_u64(std::string_view in) {
  return decode_exact<uint64_t>(in);
}

Writer& Writer::u8(uint8_t v) {
  append_u8(out_, v);
  return *this;
}
Writer& Writer::u16(uint16_t v) {
  append_u16(out_, v);
  return *this;
}
Writer& Writer::u32(uint32_t v) {
  append_u32(out_, v);
  return *this;
}
Writer& Writer::u64(uint64_t v) {
  append_u64(out_, v);
  return *this;
}
Writer& Writer::bytes(std::string_view b) {
  append_bytes(out_, b);
  return *this;
}
Writer& Writer::raw(std::string_view b) {
  out_.append(b);
  return *this;
}

bool Reader::take(size_t n, std::string_view* out) {
  if (failed_ || n > remaining()) {
    failed_ = true;
    return false;
  }
  *out = in_.substr(pos_, n);
  pos_ += n;
  return true;
}

bool Reader::u8(uint8_t* out) {
  std::string_view b;
  if (!take(1, &b)) return false;
  *out = static_cast<uint8_t>(b[0]);
  return true;
}

bool Reader::u16(uint16_t* out) {
  std::string_view b;
  if (!take(2, &b)) return false;
  *out = load_be<uint16_t>(b);
  return true;
}

bool Reader::u32(uint32_t* out) {
  std::string_view b;
  if (!take(4, &b)) return false;
  *out = load_be<uint32_t>(b);
  return true;
}

bool Reader::u64(uint64_t* out) {
  std::string_view b;
  if (!take(8, &b)) return false;
  *out = load_be<uint64_t>(b);
  return true;
}

bool Reader::bytes(std::string_view* out) {
  // A length beyond the input fails here, before anything is allocated.
  uint32_t len = 0;
  return u32(&len) && take(len, out);
}

bool Reader::raw(size_t n, std::string_view* out) {
  return take(n, out);
}

std::string_view Reader::rest() {
  if (failed_) return {};
  std::string_view r = in_.substr(pos_);
  pos_ = in_.size();
  return r;
}

Status Reader::finish() const {
  if (failed_) return make_error("truncated input");
  if (remaining() != 0) {
    return make_error(std::to_string(remaining()) + " unexpected bytes after the end");
  }
  return {};
}

}  // namespace hearth::storage
