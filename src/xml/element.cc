#include "xml/element.h"

#include <new>
#include <vector>

namespace hearth::xml {

namespace {

// Places an Element whose strings and vectors all draw from `mr`.
Element* new_element(std::pmr::memory_resource* mr, std::string_view name, std::string_view ns) {
  void* p = mr->allocate(sizeof(Element), alignof(Element));
  Element* e = new (p) Element(mr);
  e->name.assign(name);
  e->ns.assign(ns);
  return e;
}

void append_attr(std::string* out, std::string_view qname, std::string_view value) {
  out->push_back(' ');
  out->append(qname);
  out->append("='");
  append_escaped(out, value, true);
  out->push_back('\'');
}

void serialize_into(const Element& e, std::string* out, std::string_view parent_ns) {
  out->push_back('<');
  out->append(e.name);
  if (e.ns != parent_ns) append_attr(out, "xmlns", e.ns);

  // Namespaced attributes other than xml:* get a prefix declared on this
  // element: a0, a1, ... one per distinct namespace.
  std::vector<std::string_view> prefixed_ns;  // allocates only if used
  for (const Attr& a : e.attrs) {
    if (a.ns.empty()) {
      append_attr(out, a.name, a.value);
    } else if (a.ns == kNsXml) {
      out->append(" xml:");
      out->append(a.name);
      out->append("='");
      append_escaped(out, a.value, true);
      out->push_back('\'');
    } else {
      size_t i = 0;
      while (i < prefixed_ns.size() && prefixed_ns[i] != a.ns)
        ++i;
      std::string prefix = "a" + std::to_string(i);
      if (i == prefixed_ns.size()) {
        prefixed_ns.push_back(a.ns);
        append_attr(out, "xmlns:" + prefix, a.ns);
      }
      append_attr(out, prefix + ":" + std::string(a.name), a.value);
    }
  }

  if (e.children.empty()) {
    out->append("/>");
    return;
  }
  out->push_back('>');
  for (const Node& n : e.children) {
    if (n.element != nullptr) {
      serialize_into(*n.element, out, e.ns);
    } else {
      append_escaped(out, n.text, false);
    }
  }
  out->append("</");
  out->append(e.name);
  out->push_back('>');
}

}  // namespace

std::string_view Element::attr(std::string_view attr_name) const {
  for (const Attr& a : attrs) {
    if (a.ns.empty() && a.name == attr_name) return a.value;
  }
  return {};
}

bool Element::has_attr(std::string_view attr_name) const {
  for (const Attr& a : attrs) {
    if (a.ns.empty() && a.name == attr_name) return true;
  }
  return false;
}

void Element::set_attr(std::string_view attr_name, std::string_view value) {
  for (Attr& a : attrs) {
    if (a.ns.empty() && a.name == attr_name) {
      a.value.assign(value);
      return;
    }
  }
  std::pmr::memory_resource* mr = resource();
  attrs.push_back(
      Attr{std::pmr::string(mr), std::pmr::string(attr_name, mr), std::pmr::string(value, mr)});
}

void Element::remove_attr(std::string_view attr_name) {
  for (auto it = attrs.begin(); it != attrs.end(); ++it) {
    if (it->ns.empty() && it->name == attr_name) {
      attrs.erase(it);
      return;
    }
  }
}

Element* Element::child(std::string_view child_name, std::string_view child_ns) const {
  for (const Node& n : children) {
    if (n.element != nullptr && n.element->name == child_name &&
        (child_ns.empty() || n.element->ns == child_ns)) {
      return n.element;
    }
  }
  return nullptr;
}

Element* Element::first_child() const {
  for (const Node& n : children) {
    if (n.element != nullptr) return n.element;
  }
  return nullptr;
}

std::string Element::text() const {
  std::string out;
  for (const Node& n : children) {
    if (n.element == nullptr) out.append(n.text);
  }
  return out;
}

Element* Element::add_child(std::string_view child_name, std::string_view child_ns) {
  std::pmr::memory_resource* mr = resource();
  Element* c = new_element(mr, child_name, child_ns);
  // Build the node with the arena's allocator so the move into the vector
  // keeps it (Node is not allocator-aware).
  children.push_back(Node{c, std::pmr::string(mr)});
  return c;
}

void Element::add_text(std::string_view data) {
  if (data.empty()) return;
  if (!children.empty() && children.back().element == nullptr) {
    children.back().text.append(data);
    return;
  }
  children.push_back(Node{nullptr, std::pmr::string(data, resource())});
}

Arena::Arena(size_t initial)
    : buffer_(new std::byte[initial < 64 ? 64 : initial]),
      resource_(buffer_.get(), initial < 64 ? 64 : initial, &upstream_) {}

Element* Arena::make_element(std::string_view name, std::string_view ns) {
  return new_element(&resource_, name, ns);
}

void Arena::reset() {
  resource_.release();
}

void* Arena::CountingResource::do_allocate(size_t n, size_t align) {
  void* p = std::pmr::new_delete_resource()->allocate(n, align);
  bytes_ += n;
  return p;
}

void Arena::CountingResource::do_deallocate(void* p, size_t n, size_t align) {
  std::pmr::new_delete_resource()->deallocate(p, n, align);
  bytes_ -= n;
}

void serialize(const Element& e, std::string* out, std::string_view parent_ns) {
  serialize_into(e, out, parent_ns);
}

void append_escaped(std::string* out, std::string_view text, bool attribute) {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char* rep = nullptr;
    switch (text[i]) {
      case '&':
        rep = "&amp;";
        break;
      case '<':
        rep = "&lt;";
        break;
      case '>':
        rep = "&gt;";
        break;
      // A literal CR would be normalised away by the reader; keep it.
      case '\r':
        rep = "&#13;";
        break;
      case '\'':
        rep = attribute ? "&apos;" : nullptr;
        break;
      case '"':
        rep = attribute ? "&quot;" : nullptr;
        break;
      // Attribute values are whitespace-normalised by the reader.
      case '\t':
        rep = attribute ? "&#9;" : nullptr;
        break;
      case '\n':
        rep = attribute ? "&#10;" : nullptr;
        break;
      default:
        break;
    }
    if (rep == nullptr) continue;
    out->append(text.substr(start, i - start));
    out->append(rep);
    start = i + 1;
  }
  out->append(text.substr(start));
}

}  // namespace hearth::xml
