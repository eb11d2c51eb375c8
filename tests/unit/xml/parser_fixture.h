// What the StreamParser tests share: a client stream header and a parser
// wired to a test's own recording handler.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "xml/parser.h"

namespace hearth::xml::test {

inline constexpr char kHeader[] =
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    " to='example.com' version='1.0' xml:lang='en'>";

// The base of a test's recording handler: keeps the stream error. An
// override of on_stream_error() calls this one.
class ErrorRecorder : public StreamParser::Handler {
 public:
  void on_stream_error(StreamError e, std::string_view text) override {
    error = e;
    error_text = std::string(text);
  }

  StreamError error = StreamError::kNone;
  std::string error_text;
};

// A parser that reports to `rec`.
template <typename Recorder>
struct ParserFixture {
  explicit ParserFixture(ParserLimits limits = {}) : parser(&rec, limits) {}
  Recorder rec;
  StreamParser parser;
};

// <message id='N'>INNER<body>bbb…</body></message> for N = 0, 1, … until
// the text holds `total` bytes or more, with `body_bytes` b's and INNER
// from inner(N) (nothing if null). *count gets how many stanzas.
inline std::string numbered_messages(size_t total, size_t body_bytes, size_t* count,
                                     std::string (*inner)(size_t) = nullptr) {
  std::string all;
  size_t n = 0;
  while (all.size() < total) {
    all += "<message id='" + std::to_string(n) + "'>" + (inner ? inner(n) : std::string()) +
           "<body>" + std::string(body_bytes, 'b') + "</body></message>";
    ++n;
  }
  *count = n;
  return all;
}

}  // namespace hearth::xml::test
