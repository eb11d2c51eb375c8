#include "xml/fragment.h"

#include "xml/parser.h"

namespace hearth::xml {
namespace {

constexpr std::string_view kOpen =
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "version='1.0'>";

class Collector : public StreamParser::Handler {
 public:
  explicit Collector(Arena* arena) : arena_(arena) {}
  void on_stream_start(const Element&) override {}
  void on_stanza(Element& stanza) override {
    if (result_ == nullptr && error_.empty()) {
      result_ = clone(stanza, *arena_);
    } else {
      error_ = "more than one element";
    }
  }
  void on_stream_end() override {}
  void on_stream_error(StreamError error, std::string_view text) override {
    error_ = std::string(stream_error_name(error));
    if (!text.empty()) error_ += ": " + std::string(text);
  }
  Element* result_ = nullptr;
  std::string error_;

 private:
  Arena* arena_;
};

void copy_into(const Element& from, Element* to) {
  to->attrs.reserve(from.attrs.size());
  for (const Attr& a : from.attrs) {
    Attr& b = to->attrs.emplace_back(Attr{std::pmr::string(to->resource()),
                                          std::pmr::string(to->resource()),
                                          std::pmr::string(to->resource())});
    b.ns = a.ns;
    b.name = a.name;
    b.value = a.value;
  }
  for (const Node& n : from.children) {
    if (n.element != nullptr) {
      copy_into(*n.element, to->add_child(n.element->name, n.element->ns));
    } else {
      to->add_text(n.text);
    }
  }
}

}  // namespace

Element* clone(const Element& e, Arena& arena) {
  Element* out = arena.make_element(e.name, e.ns);
  copy_into(e, out);
  return out;
}

Result<Element*> parse_fragment(std::string_view xml, Arena& arena) {
  Collector collector(&arena);
  ParserLimits limits;
  limits.max_stanza_size = xml.size() + 1;
  StreamParser parser(&collector, limits);
  bool ok = parser.feed(kOpen) && parser.feed(xml) && parser.feed("</stream:stream>");
  if (!ok || !collector.error_.empty())
    return make_error("stored XML: " +
                      (collector.error_.empty() ? std::string("malformed") : collector.error_));
  if (collector.result_ == nullptr) return make_error("stored XML: no element");
  return collector.result_;
}

}  // namespace hearth::xml
