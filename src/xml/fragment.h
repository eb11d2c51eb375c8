// Parsing one stored XML element back into a tree (vCards, private XML,
// stored presence): the same expat limits as a stream, in a caller's arena.
#pragma once

#include <string_view>

#include "core/result.h"
#include "xml/element.h"

namespace hearth::xml {

// `xml` is one serialised element as xml::serialize() writes it (its
// default namespace, if not declared, is jabber:client). Fails on anything
// else: more than one element, text around it, a DTD, bad UTF-8.
Result<Element*> parse_fragment(std::string_view xml, Arena& arena);

}  // namespace hearth::xml

namespace hearth::xml {

// A deep copy of `e` in `arena`.
Element* clone(const Element& e, Arena& arena);

}  // namespace hearth::xml
