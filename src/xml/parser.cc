// The stream parser. Design notes:
//
// - Input is handed to expat in slices of at most kSliceSize bytes. After
//   every slice the bytes not yet accounted for (a stanza still open, a start
//   tag still incomplete, a stream header still incomplete) are checked
//   against the limits, so an oversized stanza is refused while it arrives,
//   after at most one slice more than the limit, never after buffering it.
// - Byte positions are kept in our own 64-bit counters. XML_Index is a 32-bit
//   `long` on 32-bit ARM with Debian's expat (no XML_LARGE_SIZE), so expat's
//   index is only used as a short distance back from the end of the input,
//   computed in wrapping unsigned arithmetic.
// - Expat keeps per-document tables of every element and attribute name it
//   has seen; over a long stream an attacker could grow them without bound.
//   Every kRotateBytes of input, at a stanza boundary, the expat parser is
//   reset and re-primed (with callbacks muted) with a synthetic stream header
//   carrying the same namespace declarations, so the tables start afresh.
// - Expat's memory is counted (custom allocator) and capped, as is the tree
//   of the stanza being built. Character data and child lists are gathered in
//   scratch buffers and copied into the arena once complete, at their exact
//   size: growing them in a monotonic arena would waste every old copy.
// - An idle stream holds no parser (hibernate()): at a stanza boundary with
//   nothing buffered, expat (about 10 KB per stream), the arena (4 KB) and
//   the scratch buffers are freed; the next feed() re-creates expat and
//   re-primes it with the synthetic header, as a rotation does. That costs
//   about two chat messages' worth of parsing (a new parser's hash tables,
//   its salt, the header's namespace bindings), so it is done when the caller
//   says the stream is idle, not at every stanza boundary.
// - Expat >= 2.6 (and Debian's 2.5.0 with its security backports) defers
//   re-parsing of an incomplete token until enough new bytes arrive; that
//   would hold back a complete stanza until the next read. It is disabled.
#include "xml/parser.h"

#include <expat.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hearth::xml {

static_assert(std::is_same_v<XML_Char, char>, "expat must be built with UTF-8 XML_Char");

namespace {

// Separates namespace URI, local name and prefix in the names expat reports.
// U+0001 cannot occur in a name or (XML 1.0) in a namespace URI.
constexpr char kSep = '\x01';
constexpr size_t kSliceSize = 4096;
constexpr uint64_t kRotateBytes = 64 * 1024;
constexpr size_t kArenaSize = 4096;

// --- Counting allocator for expat ----------------------------------------
// Expat's memory-handling suite has no user pointer, so the counter to charge
// is taken from a thread-local set around every expat call that allocates,
// and remembered in a header in front of each block (so frees and reallocs
// charge the right counter whatever thread-local is current).

struct MemHeader {
  size_t* counter;
  size_t size;
};
constexpr size_t kHeaderSize = (sizeof(MemHeader) + alignof(std::max_align_t) - 1) /
                               alignof(std::max_align_t) * alignof(std::max_align_t);

thread_local size_t* t_counter = nullptr;

void* counted_malloc(size_t size) {
  if (size > SIZE_MAX - kHeaderSize) return nullptr;
  auto* raw = static_cast<unsigned char*>(std::malloc(size + kHeaderSize));
  if (raw == nullptr) return nullptr;
  MemHeader h{t_counter, size};
  std::memcpy(raw, &h, sizeof h);
  if (h.counter != nullptr) *h.counter += size;
  return raw + kHeaderSize;
}

void* counted_realloc(void* ptr, size_t size) {
  if (ptr == nullptr) return counted_malloc(size);
  if (size > SIZE_MAX - kHeaderSize) return nullptr;
  unsigned char* raw = static_cast<unsigned char*>(ptr) - kHeaderSize;
  MemHeader h;
  std::memcpy(&h, raw, sizeof h);
  auto* moved = static_cast<unsigned char*>(std::realloc(raw, size + kHeaderSize));
  if (moved == nullptr) return nullptr;
  if (h.counter != nullptr) *h.counter = *h.counter - h.size + size;
  h.size = size;
  std::memcpy(moved, &h, sizeof h);
  return moved + kHeaderSize;
}

void counted_free(void* ptr) {
  if (ptr == nullptr) return;
  unsigned char* raw = static_cast<unsigned char*>(ptr) - kHeaderSize;
  MemHeader h;
  std::memcpy(&h, raw, sizeof h);
  if (h.counter != nullptr) *h.counter -= h.size;
  std::free(raw);
}

const XML_Memory_Handling_Suite kMemSuite = {counted_malloc, counted_realloc, counted_free};

class ChargeTo {
 public:
  explicit ChargeTo(size_t* counter) : saved_(t_counter) { t_counter = counter; }
  ~ChargeTo() { t_counter = saved_; }
  ChargeTo(const ChargeTo&) = delete;
  ChargeTo& operator=(const ChargeTo&) = delete;

 private:
  size_t* saved_;
};

// --- Reparse deferral -------------------------------------------------------
// XML_SetReparseDeferralEnabled exists from expat 2.6.0 and in some patched
// 2.5.0 builds (Debian 12), whose version macros do not tell. The fallback
// below is a worse match than the real function, which argument-dependent
// lookup finds through XML_Parser (a pointer to a global struct) if declared.
namespace compat {
struct AnyArg {
  template <class T>
  AnyArg(T) {}  // NOLINT
};
[[maybe_unused]] inline XML_Bool XML_SetReparseDeferralEnabled(AnyArg, AnyArg) {
  return XML_FALSE;
}
}  // namespace compat

void disable_reparse_deferral(XML_Parser p) {
  using namespace compat;  // NOLINT
  XML_SetReparseDeferralEnabled(p, XML_FALSE);
}

struct QName {
  std::string_view ns;
  std::string_view local;
  std::string_view prefix;
};

// Expat (namespace processing, triplets on) reports "uri SEP local SEP
// prefix", "uri SEP local" (default namespace) or "local" (no namespace).
QName split_name(const XML_Char* raw) {
  std::string_view s(raw);
  size_t a = s.find(kSep);
  if (a == std::string_view::npos) return {{}, s, {}};
  std::string_view rest = s.substr(a + 1);
  size_t b = rest.find(kSep);
  if (b == std::string_view::npos) return {s.substr(0, a), rest, {}};
  return {s.substr(0, a), rest.substr(0, b), rest.substr(b + 1)};
}

bool is_xml_space(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

const char* stream_error_name(StreamError e) {
  switch (e) {
    case StreamError::kNone:
      return "undefined-condition";
    case StreamError::kBadFormat:
      return "bad-format";
    case StreamError::kInvalidNamespace:
      return "invalid-namespace";
    case StreamError::kNotWellFormed:
      return "not-well-formed";
    case StreamError::kPolicyViolation:
      return "policy-violation";
    case StreamError::kRestrictedXml:
      return "restricted-xml";
    case StreamError::kUnsupportedEncoding:
      return "unsupported-encoding";
  }
  return "undefined-condition";
}

struct StreamParser::Impl {
  using UIndex = std::make_unsigned_t<XML_Index>;

  // Expat and the arena are created by the first feed(), so a connection
  // that never sends anything costs neither.
  explicit Impl(StreamParser* o) : owner(o) {}
  ~Impl() { free_parser(); }

  StreamParser* owner;
  XML_Parser p = nullptr;  // null before the first feed() and while hibernating
  size_t expat_bytes = 0;  // heap held by expat
  // The working set for building stanzas; absent while hibernating.
  struct Work {
    Arena arena{kArenaSize};
    std::vector<Element*> stack;      // open elements of the current stanza
    std::vector<Node> pending;        // children of the open elements, innermost last
    std::vector<size_t> level_start;  // where each open element's children begin in `pending`
    std::string text_buf;             // character data not yet placed in `pending`
  };
  std::unique_ptr<Work> w;
  unsigned depth = 0;  // open elements, the stream element included

  // Positions in bytes of real input since the stream (re)started.
  uint64_t fed = 0;             // handed to expat, the current slice included
  UIndex expat_total = 0;       // handed to this expat document (wraps), synthetic header included
  uint64_t boundary = 0;        // end of the last complete thing at depth 1
  uint64_t stanza_start = 0;    // start tag of the open top-level child
  uint64_t instance_start = 0;  // where the current expat document began

  unsigned pending_ns_decls = 0;  // xmlns declarations of the element being started
  bool in_parse = false;
  bool muted = false;    // no more callbacks to the handler in this parse
  bool restart = false;  // reset() was called inside a callback
  bool ended = false;    // </stream:stream> seen
  bool replaying = false;
  bool rotate_due = false;
  uint64_t rotate_at = 0;

  // While the header is parsed: its namespace declarations (" xmlns:p='u'").
  // From on_stream_start on: the synthetic start tag that re-opens the
  // stream element, with the same declarations, in a fresh expat document.
  std::string synthetic;
  std::string default_ns;

  const ParserLimits& limits() const { return owner->limits_; }

  // A tree costs far more than its bytes on the wire (an Element is ~150
  // bytes, `<a/>` is 4): a dense but realistic stanza (a roster of
  // attribute-heavy items) costs about 16 times its size; the worst case,
  // about 80 times, is cut at 32.
  size_t tree_cap() const { return 32 * limits().max_stanza_size + 65536; }
  size_t expat_cap() const { return 4 * limits().max_stanza_size + 262144; }

  void configure() {
    XML_SetUserData(p, this);
    XML_SetReturnNSTriplet(p, XML_TRUE);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    disable_reparse_deferral(p);
    XML_SetElementHandler(p, &Impl::on_start, &Impl::on_end);
    XML_SetCharacterDataHandler(p, &Impl::on_text);
    XML_SetStartNamespaceDeclHandler(p, &Impl::on_ns_decl);
    XML_SetXmlDeclHandler(p, &Impl::on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p, &Impl::on_doctype);
    XML_SetEntityDeclHandler(p, &Impl::on_entity_decl);
    XML_SetProcessingInstructionHandler(p, &Impl::on_pi);
    XML_SetCommentHandler(p, &Impl::on_comment);
    XML_SetSkippedEntityHandler(p, &Impl::on_skipped_entity);
  }

  void create_parser() {
    {
      ChargeTo charge(&expat_bytes);
      p = XML_ParserCreate_MM("UTF-8", &kMemSuite, &kSep);
    }
    if (p == nullptr) std::abort();  // out of memory, as operator new would
    configure();
    if (!w) w = std::make_unique<Work>();
  }

  void free_parser() {
    if (p == nullptr) return;
    ChargeTo charge(&expat_bytes);
    XML_ParserFree(p);
    p = nullptr;
  }

  // Starts a new expat document and forgets all stream state.
  void reset_all() {
    if (p != nullptr) {
      {
        ChargeTo charge(&expat_bytes);
        XML_ParserReset(p, "UTF-8");
      }
      configure();
    }
    clear_tree();
    depth = 0;
    fed = 0;
    expat_total = 0;
    boundary = 0;
    stanza_start = 0;
    instance_start = 0;
    pending_ns_decls = 0;
    muted = false;
    restart = false;
    ended = false;
    replaying = false;
    rotate_due = false;
    std::string().swap(synthetic);
    default_ns.clear();
    owner->failed_ = false;
  }

  // Starts a new expat document in the middle of the stream, at a stanza
  // boundary: the stream element is re-opened (callbacks muted) with the
  // namespace declarations of the real header.
  bool rotate() {
    {
      ChargeTo charge(&expat_bytes);
      XML_ParserReset(p, "UTF-8");
    }
    configure();
    return prime(rotate_at);
  }

  // Before the first feed() after hibernate() (or ever): a new expat parser,
  // and if the stream element is open, re-opened as by a rotation.
  bool wake() {
    create_parser();
    if (depth == 0) return true;
    return prime(fed);
  }

  // Feeds the synthetic header to a fresh expat document (callbacks muted);
  // real input continues at absolute position `at`.
  bool prime(uint64_t at) {
    replaying = true;
    expat_total = static_cast<UIndex>(synthetic.size());
    XML_Status st;
    {
      ChargeTo charge(&expat_bytes);
      in_parse = true;
      st = XML_Parse(p, synthetic.data(), static_cast<int>(synthetic.size()), XML_FALSE);
      in_parse = false;
    }
    replaying = false;
    muted = false;
    rotate_due = false;
    instance_start = at;
    return st == XML_STATUS_OK && depth == 1;
  }

  // Between stanzas with every byte fed so far reported (nothing held by
  // expat: no partial tag, no trailing CR or partial UTF-8 sequence), or
  // before any byte of a (re)started stream.
  bool can_hibernate() const {
    if (in_parse || rotate_due || restart) return false;
    if (owner->failed_ || ended) return true;  // input is ignored until reset()
    if (depth == 0) return fed == 0;
    return depth == 1 && boundary == fed;
  }

  void hibernate() {
    free_parser();
    w.reset();
  }

  // Absolute position of the start of the current expat event.
  uint64_t event_pos() const {
    UIndex back = expat_total - static_cast<UIndex>(XML_GetCurrentByteIndex(p));
    return fed - back;
  }
  uint64_t event_end() const {
    return event_pos() + static_cast<uint64_t>(XML_GetCurrentByteCount(p));
  }

  void fail(StreamError error, std::string_view text) {
    if (owner->failed_ || muted) return;
    owner->failed_ = true;
    muted = true;
    if (in_parse) XML_StopParser(p, XML_FALSE);
    owner->handler_->on_stream_error(error, text);
  }

  bool check_stanza_size(uint64_t end) {
    if (end - stanza_start > limits().max_stanza_size) {
      fail(StreamError::kPolicyViolation, "stanza too large");
      return false;
    }
    return true;
  }

  size_t tree_bytes() const {
    // An empty std::string's capacity is its inline buffer, not heap.
    if (!w) return 0;
    size_t text_heap =
        w->text_buf.capacity() > std::string().capacity() ? w->text_buf.capacity() : 0;
    return w->arena.heap_bytes() + w->pending.capacity() * sizeof(Node) + text_heap;
  }

  bool check_tree() {
    if (tree_bytes() > tree_cap()) {
      fail(StreamError::kPolicyViolation, "stanza too complex");
      return false;
    }
    return true;
  }

  void flush_text() {
    if (w->text_buf.empty()) return;
    w->pending.push_back(Node{nullptr, std::pmr::string(w->text_buf, w->arena.resource())});
    w->text_buf.clear();
  }

  // Drops the stanza tree; scratch buffers grown by a large stanza are
  // returned so an idle connection does not keep them.
  void clear_tree() {
    if (!w) return;
    w->stack.clear();
    w->pending.clear();
    w->level_start.clear();
    w->text_buf.clear();
    w->arena.reset();
    if (w->pending.capacity() > 256) std::vector<Node>().swap(w->pending);
    if (w->text_buf.capacity() > 4096) std::string().swap(w->text_buf);
  }

  // Limits on what expat holds but has not reported yet; after each slice.
  bool check_pending() {
    const ParserLimits& l = limits();
    if (depth == 0) {
      if (fed > l.max_header_size) {
        fail(StreamError::kPolicyViolation, "stream header too large");
        return false;
      }
    } else if (depth == 1) {
      if (fed - boundary > l.max_stanza_size) {
        fail(StreamError::kPolicyViolation, "stanza too large");
        return false;
      }
    } else if (!check_stanza_size(fed)) {
      return false;
    }
    if (expat_bytes > expat_cap()) {
      fail(StreamError::kPolicyViolation, "parser memory limit");
      return false;
    }
    return true;
  }

  // Copies expat's attribute list onto `e`, enforcing the attribute limits.
  bool add_attrs(Element* e, const XML_Char** atts, unsigned ns_decls) {
    size_t n = 0;
    while (atts[2 * n] != nullptr)
      ++n;
    if (n + ns_decls > limits().max_attributes) {
      fail(StreamError::kPolicyViolation, "too many attributes");
      return false;
    }
    std::pmr::memory_resource* mr = w->arena.resource();
    e->attrs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      std::string_view value(atts[2 * i + 1]);
      if (value.size() > limits().max_attribute_size) {
        fail(StreamError::kPolicyViolation, "attribute value too large");
        return false;
      }
      QName q = split_name(atts[2 * i]);
      e->attrs.push_back(Attr{std::pmr::string(q.ns, mr), std::pmr::string(q.local, mr),
                              std::pmr::string(value, mr)});
    }
    return true;
  }

  void stream_start(const QName& q, const XML_Char** atts, unsigned ns_decls) {
    if (q.ns != kNsStream) {
      fail(StreamError::kInvalidNamespace, "stream element not in the streams namespace");
      return;
    }
    if (q.local != "stream") {
      fail(StreamError::kBadFormat, "root element is not stream");
      return;
    }
    uint64_t end = event_end();
    if (end > limits().max_header_size) {
      fail(StreamError::kPolicyViolation, "stream header too large");
      return;
    }
    Element* header = w->arena.make_element("stream", kNsStream);
    if (!add_attrs(header, atts, ns_decls)) return;
    std::string decls = std::move(synthetic);
    synthetic = q.prefix.empty() ? "<stream" : "<" + std::string(q.prefix) + ":stream";
    synthetic += decls;
    synthetic += '>';
    synthetic.shrink_to_fit();  // kept for the life of the stream
    depth = 1;
    boundary = end;
    owner->handler_->on_stream_start(*header);
    w->arena.reset();
  }

  void start(const XML_Char* name, const XML_Char** atts) {
    if (replaying) {
      depth = 1;
      return;
    }
    if (muted) return;
    unsigned ns_decls = pending_ns_decls;
    pending_ns_decls = 0;
    QName q = split_name(name);
    if (depth == 0) {
      stream_start(q, atts, ns_decls);
      return;
    }
    if (depth == 1) {
      stanza_start = event_pos();
      clear_tree();
    }
    if (!check_stanza_size(event_end())) return;
    if (depth >= limits().max_depth + 1) {
      fail(StreamError::kPolicyViolation, "elements nested too deeply");
      return;
    }
    ++depth;
    Element* e = w->arena.make_element(q.local, q.ns);
    if (!w->stack.empty()) {
      flush_text();
      w->pending.push_back(Node{e, std::pmr::string(w->arena.resource())});
    }
    w->stack.push_back(e);
    w->level_start.push_back(w->pending.size());
    if (!add_attrs(e, atts, ns_decls)) return;
    check_tree();
  }

  void end() {
    if (muted || replaying) return;
    if (depth == 1) {
      depth = 0;
      ended = true;
      muted = true;
      XML_StopParser(p, XML_FALSE);
      owner->handler_->on_stream_end();
      return;
    }
    if (depth < 2) return;
    --depth;
    Element* e = w->stack.back();
    w->stack.pop_back();
    flush_text();
    size_t from = w->level_start.back();
    w->level_start.pop_back();
    e->children.reserve(w->pending.size() - from);
    for (size_t i = from; i < w->pending.size(); ++i)
      e->children.push_back(std::move(w->pending[i]));
    w->pending.resize(from);
    if (!check_tree() || depth > 1) return;
    uint64_t stanza_end = event_end();
    if (!check_stanza_size(stanza_end)) return;
    boundary = stanza_end;
    owner->handler_->on_stanza(*e);
    clear_tree();
    if (!muted && stanza_end - instance_start >= kRotateBytes) {
      rotate_due = true;
      rotate_at = stanza_end;
      muted = true;
      XML_StopParser(p, XML_FALSE);
    }
  }

  void text(std::string_view s) {
    if (muted || replaying) return;
    if (depth >= 2) {
      if (!check_stanza_size(event_end())) return;
      w->text_buf.append(s);
      check_tree();
    } else if (depth == 1) {
      if (!is_xml_space(s)) {
        fail(StreamError::kBadFormat, "text between stanzas");
        return;
      }
      boundary = event_end();
    }
  }

  void ns_decl(const XML_Char* prefix, const XML_Char* uri) {
    if (muted || replaying) return;
    ++pending_ns_decls;
    if (depth == 0) {
      std::string_view pre = prefix != nullptr ? prefix : "";
      std::string_view u = uri != nullptr ? uri : "";
      synthetic += " xmlns";
      if (!pre.empty()) {
        synthetic += ':';
        synthetic += pre;
      }
      synthetic += "='";
      append_escaped(&synthetic, u, true);
      synthetic += '\'';
      if (pre.empty()) default_ns.assign(u);
    }
  }

  static Impl* self(void* user) { return static_cast<Impl*>(user); }

  static void on_start(void* u, const XML_Char* name, const XML_Char** atts) {
    self(u)->start(name, atts);
  }
  static void on_end(void* u, const XML_Char*) { self(u)->end(); }
  static void on_text(void* u, const XML_Char* s, int len) {
    self(u)->text(std::string_view(s, static_cast<size_t>(len)));
  }
  static void on_ns_decl(void* u, const XML_Char* prefix, const XML_Char* uri) {
    self(u)->ns_decl(prefix, uri);
  }
  static void on_xml_decl(void* u, const XML_Char*, const XML_Char* encoding, int) {
    Impl* i = self(u);
    if (i->muted || encoding == nullptr || iequals_ascii(encoding, "UTF-8")) return;
    i->fail(StreamError::kUnsupportedEncoding, encoding);
  }
  static void on_doctype(void* u, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    self(u)->fail(StreamError::kRestrictedXml, "DTD");
  }
  static void on_entity_decl(void* u, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                             const XML_Char*, const XML_Char*, const XML_Char*) {
    self(u)->fail(StreamError::kRestrictedXml, "entity declaration");
  }
  static void on_pi(void* u, const XML_Char*, const XML_Char*) {
    self(u)->fail(StreamError::kRestrictedXml, "processing instruction");
  }
  static void on_comment(void* u, const XML_Char*) {
    self(u)->fail(StreamError::kRestrictedXml, "comment");
  }
  static void on_skipped_entity(void* u, const XML_Char*, int) {
    self(u)->fail(StreamError::kRestrictedXml, "entity reference");
  }
};

StreamParser::StreamParser(Handler* handler, const ParserLimits& limits)
    : impl_(new Impl(this)), handler_(handler), limits_(limits) {}

StreamParser::~StreamParser() {
  delete impl_;
}

bool StreamParser::feed(std::string_view data) {
  Impl& s = *impl_;
  if (failed_ || s.in_parse) return false;
  if (s.ended) return true;
  // Expat honours a UTF-16 byte order mark even when told the input is
  // UTF-8. No UTF-8 document has 0x00, 0xFE or 0xFF among its first two
  // bytes (RFC 6120 §11.6: UTF-8 only).
  for (size_t i = 0; s.fed + i < 2 && i < data.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(data[i]);
    if (c == 0x00 || c == 0xFE || c == 0xFF) {
      s.fail(StreamError::kUnsupportedEncoding, "not UTF-8");
      return false;
    }
  }
  if (data.empty()) return true;
  if (s.p == nullptr && !s.wake()) {
    s.fail(StreamError::kNotWellFormed, "parser restart failed");
    return false;
  }
  size_t off = 0;
  while (off < data.size()) {
    size_t n = data.size() - off < kSliceSize ? data.size() - off : kSliceSize;
    uint64_t slice_start = s.fed;
    s.fed += n;
    s.expat_total += static_cast<Impl::UIndex>(n);
    XML_Status st;
    {
      ChargeTo charge(&s.expat_bytes);
      s.in_parse = true;
      st = XML_Parse(s.p, data.data() + off, static_cast<int>(n), XML_FALSE);
      s.in_parse = false;
    }
    if (s.restart) {
      bool had_error = failed_;
      s.reset_all();
      return !had_error;
    }
    if (failed_) return false;
    if (s.ended) return true;
    if (s.rotate_due) {
      // Everything up to the end of the last stanza was consumed; the rest
      // of this slice goes to the fresh expat document.
      size_t consumed = static_cast<size_t>(s.rotate_at - slice_start);
      s.fed = s.rotate_at;
      if (!s.rotate()) {
        s.fail(StreamError::kNotWellFormed, "parser restart failed");
        return false;
      }
      off += consumed;
      continue;
    }
    if (st != XML_STATUS_OK) {
      s.fail(StreamError::kNotWellFormed, XML_ErrorString(XML_GetErrorCode(s.p)));
      return false;
    }
    if (!s.check_pending()) return false;
    off += n;
  }
  return true;
}

void StreamParser::reset() {
  Impl& s = *impl_;
  if (s.in_parse) {
    s.restart = true;
    s.muted = true;
    XML_StopParser(s.p, XML_FALSE);
    return;
  }
  s.reset_all();
}

std::string_view StreamParser::default_ns() const {
  return impl_->default_ns;
}

size_t StreamParser::memory_usage() const {
  const Impl& s = *impl_;
  size_t work = 0;
  if (s.w) {
    work = sizeof(Impl::Work) + kArenaSize + s.w->stack.capacity() * sizeof(Element*) +
           s.w->level_start.capacity() * sizeof(size_t);
  }
  return s.expat_bytes + s.tree_bytes() + work;
}

bool StreamParser::hibernate() {
  Impl& s = *impl_;
  if (!s.can_hibernate()) return false;
  s.hibernate();
  ++hibernations_;
  return true;
}

bool StreamParser::hibernating() const {
  return impl_->p == nullptr;
}

}  // namespace hearth::xml
