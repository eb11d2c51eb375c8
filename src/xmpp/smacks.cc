#include "xmpp/smacks.h"

namespace hearth::xmpp {

void SmQueue::push(std::string_view xml, bool mark) {
  ++sent_;  // unsigned: wraps modulo 2^32 as §4 requires
  data_.append(xml);
  ends_.push_back(static_cast<uint32_t>(data_.size()));
  marks_.push_back(mark ? 1 : 0);
}

SmQueue::Ack SmQueue::ack(uint32_t h) {
  uint32_t handled = h - acked_;  // modulo 2^32
  if (handled > 0x80000000u) return Ack::kStale;
  if (handled > size()) return Ack::kTooHigh;
  if (handled == 0) return Ack::kOk;
  head_ += handled;
  head_offset_ = ends_[head_ - 1];
  acked_ = h;
  if (head_ == ends_.size()) {
    // Everything is acknowledged: keep the buffers only if they are small.
    data_.clear();
    ends_.clear();
    marks_.clear();
    head_ = head_offset_ = 0;
    if (data_.capacity() > 4096) std::string().swap(data_);
    if (ends_.capacity() > 64) std::vector<uint32_t>().swap(ends_);
    if (marks_.capacity() > 64) std::vector<uint8_t>().swap(marks_);
  } else if (head_offset_ > data_.size() / 2) {
    compact();
  }
  return Ack::kOk;
}

std::string_view SmQueue::at(size_t i) const {
  size_t index = head_ + i;
  size_t begin = index == 0 ? 0 : ends_[index - 1];
  if (index == head_) begin = head_offset_;
  return std::string_view(data_).substr(begin, ends_[index] - begin);
}

void SmQueue::compact() {
  data_.erase(0, head_offset_);
  for (size_t i = head_; i < ends_.size(); ++i)
    ends_[i - head_] = ends_[i] - static_cast<uint32_t>(head_offset_);
  ends_.resize(ends_.size() - head_);
  marks_.erase(marks_.begin(), marks_.begin() + static_cast<std::ptrdiff_t>(head_));
  head_ = 0;
  head_offset_ = 0;
}

void SmQueue::clear() {
  acked_ = sent_;
  std::string().swap(data_);
  std::vector<uint32_t>().swap(ends_);
  std::vector<uint8_t>().swap(marks_);
  head_ = head_offset_ = 0;
}

}  // namespace hearth::xmpp
