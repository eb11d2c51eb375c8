// XEP-0198 Stream Management: the server's record of the stanzas it sent
// and the client has not acknowledged yet (§4, §5). Counters are modulo
// 2^32 (§4: "h" wraps to 0 after 2^32 - 1). The stanzas are kept
// serialised back to back in one buffer, so a session that is acknowledged
// regularly holds one small allocation, and an idle one none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::xmpp {

inline constexpr std::string_view kNsSm = "urn:xmpp:sm:3";

class SmQueue {
 public:
  // `start` is the counter value of the first stanza minus one (0 for a
  // new stream; tests start near 2^32 to cross the wrap).
  explicit SmQueue(uint32_t start = 0) : sent_(start), acked_(start) {}

  // The server sent one more stanza. `mark` is the sender's note about it
  // (c2s: "another session of the account got this message too").
  void push(std::string_view xml, bool mark = false);

  enum class Ack {
    kOk,
    kStale,    // h is behind what was already acknowledged: ignored
    kTooHigh,  // h acknowledges stanzas that were never sent (§4 handled-count-too-high)
  };
  // The client says it handled `h` stanzas in total (mod 2^32).
  Ack ack(uint32_t h);

  uint32_t sent() const { return sent_; }
  uint32_t acked() const { return acked_; }
  size_t size() const { return ends_.size() - head_; }
  bool empty() const { return size() == 0; }
  size_t bytes() const { return data_.size() - head_offset_; }
  // The i-th unacknowledged stanza, oldest first, and its mark.
  std::string_view at(size_t i) const;
  bool marked(size_t i) const { return marks_[head_ + i] != 0; }
  void clear();
  // Bytes held, allocation included (for the footprint report).
  size_t capacity() const {
    return data_.capacity() + ends_.capacity() * sizeof(uint32_t) + marks_.capacity();
  }

 private:
  void compact();

  uint32_t sent_;
  uint32_t acked_;
  std::string data_;            // serialised stanzas, oldest first
  std::vector<uint32_t> ends_;  // end offset in data_ of each stanza
  std::vector<uint8_t> marks_;  // push()'s mark of each stanza
  size_t head_ = 0;             // index in ends_ of the oldest unacknowledged stanza
  size_t head_offset_ = 0;      // its start offset in data_
};

}  // namespace hearth::xmpp
