// A small XML element tree for one stanza. Nodes live in an Arena
// (std::pmr monotonic buffer) that is reset after each stanza, so parsing and
// dispatching a stanza does not touch the general heap per node.
#pragma once

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::xml {

inline constexpr std::string_view kNsClient = "jabber:client";
inline constexpr std::string_view kNsStream = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kNsXml = "http://www.w3.org/XML/1998/namespace";

class Element;

struct Attr {
  std::pmr::string ns;  // empty for unqualified attributes; kNsXml for xml:lang
  std::pmr::string name;
  std::pmr::string value;
};

// Either a child element or a run of character data.
struct Node {
  Element* element = nullptr;  // non-null for an element
  std::pmr::string text;       // character data when element == nullptr
};

class Element {
 public:
  explicit Element(std::pmr::memory_resource* mr) : name(mr), ns(mr), attrs(mr), children(mr) {}

  std::pmr::string name;  // local name
  std::pmr::string ns;    // namespace URI
  std::pmr::vector<Attr> attrs;
  std::pmr::vector<Node> children;

  std::pmr::memory_resource* resource() const { return name.get_allocator().resource(); }

  // Unqualified attribute value, or "" if absent. has_attr tells them apart.
  std::string_view attr(std::string_view attr_name) const;
  bool has_attr(std::string_view attr_name) const;
  void set_attr(std::string_view attr_name, std::string_view value);
  void remove_attr(std::string_view attr_name);

  // First child element with this name (and namespace, if not empty).
  Element* child(std::string_view child_name, std::string_view child_ns = {}) const;
  // First child element of any name.
  Element* first_child() const;
  // Concatenated character data of the direct text children.
  std::string text() const;

  Element* add_child(std::string_view child_name, std::string_view child_ns);
  void add_text(std::string_view data);
};

// Owns the memory of the elements of one stanza (or one reply being built).
class Arena {
 public:
  explicit Arena(size_t initial = 4096);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  Element* make_element(std::string_view name, std::string_view ns);
  std::pmr::memory_resource* resource() { return &resource_; }
  // Frees every element made since the last reset (no destructors run:
  // everything they own came from this arena).
  void reset();
  // Bytes currently taken from the heap beyond the initial buffer (so a
  // parser can cap what one stanza costs in memory, not only in bytes).
  size_t heap_bytes() const { return upstream_.bytes(); }

 private:
  // Counts what the monotonic resource takes from the heap.
  class CountingResource : public std::pmr::memory_resource {
   public:
    size_t bytes() const { return bytes_; }

   private:
    void* do_allocate(size_t n, size_t align) override;
    void do_deallocate(void* p, size_t n, size_t align) override;
    bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
      return this == &o;
    }
    size_t bytes_ = 0;
  };

  // Declared in this order: the resource uses the other two.
  CountingResource upstream_;
  std::unique_ptr<std::byte[]> buffer_;  // reused after every reset()
  std::pmr::monotonic_buffer_resource resource_;
};

// Serialise `e` as XML. Namespace declarations are emitted only where an
// element's namespace differs from `parent_ns` (the stream's default
// namespace for a top-level stanza). Text and attribute values are escaped.
void serialize(const Element& e, std::string* out, std::string_view parent_ns = kNsClient);

// Escape character data (<, >, &) or an attribute value (also ' and ").
void append_escaped(std::string* out, std::string_view text, bool attribute);

}  // namespace hearth::xml
