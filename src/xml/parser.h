// The XML stream parser: expat fed with bytes as they arrive, limits enforced
// while the bytes arrive (stanza size, depth, attribute count and size), and
// XML that XMPP forbids refused (RFC 6120 §11.1: no DTD, no entity
// declarations, no processing instructions, no comments).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xml/element.h"

namespace hearth::xml {

// RFC 6120 §4.9.3 stream error conditions the parser can raise.
enum class StreamError {
  kNone,
  kBadFormat,
  kInvalidNamespace,
  kNotWellFormed,
  kPolicyViolation,
  kRestrictedXml,
  kUnsupportedEncoding,
};
const char* stream_error_name(StreamError e);  // "not-well-formed", ...

struct ParserLimits {
  size_t max_stanza_size = 262144;   // bytes of one top-level child, start tag to end tag
  unsigned max_depth = 32;           // element nesting below the stream element
  unsigned max_attributes = 32;      // per element
  size_t max_attribute_size = 8192;  // bytes of one attribute value
  size_t max_header_size = 4096;     // bytes of the stream header and of text between stanzas
};

class StreamParser {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // <stream:stream ...> seen. `header` has the attributes (to, from,
    // version, xml:lang, id). Its namespace was checked.
    virtual void on_stream_start(const Element& header) = 0;
    // One complete top-level child of the stream. The element and its arena
    // are valid only during the call.
    virtual void on_stanza(Element& stanza) = 0;
    // </stream:stream> seen.
    virtual void on_stream_end() = 0;
    // The stream must be closed with this error; no more callbacks follow.
    virtual void on_stream_error(StreamError error, std::string_view text) = 0;
  };

  StreamParser(Handler* handler, const ParserLimits& limits);
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // Feed bytes. Returns false once an error has been reported (then ignores
  // further input until reset()).
  bool feed(std::string_view data);

  // Stream restart (RFC 6120 §4.3.3, after STARTTLS and SASL). May be called
  // from inside a Handler callback: parsing of the current chunk stops there,
  // its remaining bytes are discarded, and the next feed() starts a new
  // stream.
  void reset();

  void set_max_stanza_size(size_t n) { limits_.max_stanza_size = n; }
  bool failed() const { return failed_; }

  // The default namespace declared on the stream header ("jabber:client",
  // "jabber:server", ...; empty if none was declared). Valid from
  // on_stream_start until reset().
  std::string_view default_ns() const;

  // Heap bytes held by expat, the stanza arena and the scratch buffers (for
  // tests and metrics). The parser keeps this bounded: expat's per-document
  // tables are dropped periodically (see parser.cc). 0 while hibernating.
  size_t memory_usage() const;

  // Frees the expat parser, the stanza arena and the scratch buffers if the
  // stream is between stanzas with nothing buffered (every byte fed so far
  // was reported; no partial tag, no partial character), so an idle stream
  // costs (almost) no heap. The next feed() re-creates them and re-opens the
  // stream element silently with the header's namespace declarations; limits,
  // byte counters, default_ns() and the stream state carry over unchanged.
  // Waking costs about as much as parsing two chat messages, so call this
  // when the connection has been idle for a while, not after every read.
  // Returns false (and changes nothing) when it cannot hibernate now: in the
  // middle of a stanza or a partial token, or inside a Handler callback.
  bool hibernate();
  // How many times any parser in this process has hibernated (the reactor
  // trims the heap only after memory was given back).
  static uint64_t hibernations() { return hibernations_; }
  // True while no expat parser is held: hibernating, or never fed.
  bool hibernating() const;

  // Do not destroy the parser from inside a Handler callback; defer it.

 private:
  static inline uint64_t hibernations_ = 0;
  struct Impl;
  Impl* impl_;
  Handler* handler_;
  ParserLimits limits_;
  bool failed_ = false;
};

}  // namespace hearth::xml
