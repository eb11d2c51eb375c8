// Just enough XML for a load generator: split an XMPP stream into its
// top-level elements (children of <stream:stream>) and read names,
// attributes and child text out of one element's text. Not a validating
// parser; the servers under test are trusted to send well-formed XML.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::bench {

class StreamSplitter {
 public:
  enum class Event { kHeader, kElement, kClosed };
  struct Item {
    Event event;
    std::string text;  // the header's start tag, or the whole element
  };

  void reset();
  // Appends bytes; complete items are added to `out`. False on garbage.
  bool feed(std::string_view data, std::vector<Item>* out);

 private:
  std::string buf_;
  size_t pos_ = 0;         // next byte to scan
  size_t elem_start_ = 0;  // start of the depth-1 element being read
  int depth_ = 0;
};

// Local name of the element ("stream:features" -> "features").
std::string_view local_name(std::string_view el);
// Attribute value (unescaped) of the element's start tag; empty if absent.
std::string attr(std::string_view el, std::string_view name);
bool has_attr(std::string_view el, std::string_view name);
// Text of the first descendant with this local name, unescaped; empty if none.
std::string child_text(std::string_view el, std::string_view name);
// True if a descendant start tag with this local name exists.
bool has_child(std::string_view el, std::string_view name);
// The texts of every descendant <name>...</name>.
std::vector<std::string> children_text(std::string_view el, std::string_view name);
std::string xml_escape(std::string_view s);
std::string xml_unescape(std::string_view s);

}  // namespace hearth::bench
