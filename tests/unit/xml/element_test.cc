#include "xml/element.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::xml {
namespace {

std::string to_xml(const Element& e, std::string_view parent_ns = kNsClient) {
  std::string out;
  serialize(e, &out, parent_ns);
  return out;
}

TEST(ElementTest, AttributesGetSetRemove) {
  Arena arena;
  Element* e = arena.make_element("message", kNsClient);
  EXPECT_EQ(e->name, "message");
  EXPECT_EQ(e->ns, kNsClient);
  EXPECT_FALSE(e->has_attr("to"));
  EXPECT_EQ(e->attr("to"), "");

  e->set_attr("to", "a@b");
  e->set_attr("type", "");
  EXPECT_TRUE(e->has_attr("to"));
  EXPECT_EQ(e->attr("to"), "a@b");
  EXPECT_TRUE(e->has_attr("type"));  // present but empty
  EXPECT_EQ(e->attr("type"), "");

  e->set_attr("to", "c@d");  // replaces, does not duplicate
  EXPECT_EQ(e->attr("to"), "c@d");
  EXPECT_EQ(e->attrs.size(), 2u);

  e->remove_attr("to");
  EXPECT_FALSE(e->has_attr("to"));
  EXPECT_EQ(e->attrs.size(), 1u);
  e->remove_attr("absent");  // no effect
  EXPECT_EQ(e->attrs.size(), 1u);
}

TEST(ElementTest, NamespacedAttributesAreNotUnqualified) {
  Arena arena;
  Element* e = arena.make_element("stream", kNsStream);
  e->attrs.push_back(Attr{std::pmr::string(kNsXml, arena.resource()),
                          std::pmr::string("lang", arena.resource()),
                          std::pmr::string("en", arena.resource())});
  EXPECT_FALSE(e->has_attr("lang"));
  EXPECT_EQ(e->attr("lang"), "");
  e->set_attr("lang", "de");  // a different, unqualified attribute
  EXPECT_EQ(e->attrs.size(), 2u);
  EXPECT_EQ(e->attrs[0].value, "en");
  e->remove_attr("lang");
  ASSERT_EQ(e->attrs.size(), 1u);
  EXPECT_EQ(e->attrs[0].ns, kNsXml);
}

TEST(ElementTest, ChildrenAndText) {
  Arena arena;
  Element* iq = arena.make_element("iq", kNsClient);
  EXPECT_EQ(iq->first_child(), nullptr);
  iq->add_text("lead ");
  Element* q = iq->add_child("query", "jabber:iq:roster");
  Element* b = iq->add_child("body", kNsClient);
  iq->add_text("a");
  iq->add_text("b");  // merged with the previous text node
  EXPECT_EQ(iq->children.size(), 4u);
  EXPECT_EQ(iq->first_child(), q);
  EXPECT_EQ(iq->child("query"), q);
  EXPECT_EQ(iq->child("query", "jabber:iq:roster"), q);
  EXPECT_EQ(iq->child("query", "jabber:iq:private"), nullptr);
  EXPECT_EQ(iq->child("body", kNsClient), b);
  EXPECT_EQ(iq->child("missing"), nullptr);
  EXPECT_EQ(iq->text(), "lead ab");
  EXPECT_EQ(q->text(), "");
  iq->add_text("");  // no empty nodes
  EXPECT_EQ(iq->children.size(), 4u);
  // Children use the parent's arena.
  EXPECT_EQ(q->resource(), arena.resource());
  EXPECT_EQ(iq->children.back().text.get_allocator().resource(), arena.resource());
}

TEST(ElementTest, ArenaReusesItsBufferAfterReset) {
  Arena arena(4096);
  for (int round = 0; round < 3; ++round) {
    Element* e = arena.make_element("message", kNsClient);
    e->add_child("body", kNsClient)->add_text("hello");
    EXPECT_EQ(arena.heap_bytes(), 0u) << "small stanza fits the initial buffer";
    arena.reset();
  }
  Element* big = arena.make_element("message", kNsClient);
  big->add_text(std::string(100000, 'x'));
  EXPECT_GE(arena.heap_bytes(), 100000u);
  arena.reset();
  EXPECT_EQ(arena.heap_bytes(), 0u);
}

TEST(SerializeTest, SelfClosingAndNesting) {
  Arena arena;
  Element* iq = arena.make_element("iq", kNsClient);
  iq->set_attr("type", "get");
  iq->set_attr("id", "r1");
  iq->add_child("query", "jabber:iq:roster");
  EXPECT_EQ(to_xml(*iq), "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
  Element* empty = arena.make_element("presence", kNsClient);
  EXPECT_EQ(to_xml(*empty), "<presence/>");
}

TEST(SerializeTest, NamespaceEmittedOnlyWhereItChanges) {
  Arena arena;
  Element* m = arena.make_element("message", kNsClient);
  Element* body = m->add_child("body", kNsClient);
  body->add_text("hi");
  Element* x = m->add_child("x", "jabber:x:data");
  x->add_child("field", "jabber:x:data");
  x->add_child("plain", "");  // no namespace inside a namespaced parent
  EXPECT_EQ(to_xml(*m),
            "<message><body>hi</body><x xmlns='jabber:x:data'><field/><plain xmlns=''/></x>"
            "</message>");
  // As the top level of a server stream the default namespace differs.
  EXPECT_EQ(to_xml(*body, "jabber:server"), "<body xmlns='jabber:client'>hi</body>");
  EXPECT_EQ(to_xml(*body, ""), "<body xmlns='jabber:client'>hi</body>");
}

TEST(SerializeTest, Escaping) {
  Arena arena;
  Element* m = arena.make_element("message", kNsClient);
  m->set_attr("id", "a'b\"c<d>e&f");
  m->add_child("body", kNsClient)->add_text("1 < 2 && 3 > 2 'q' \"d\"");
  EXPECT_EQ(to_xml(*m),
            "<message id='a&apos;b&quot;c&lt;d&gt;e&amp;f'>"
            "<body>1 &lt; 2 &amp;&amp; 3 &gt; 2 'q' \"d\"</body></message>");
}

TEST(SerializeTest, WhitespaceThatAReaderWouldNormaliseIsEscaped) {
  std::string out;
  append_escaped(&out, "a\tb\nc\rd", true);
  EXPECT_EQ(out, "a&#9;b&#10;c&#13;d");
  out.clear();
  append_escaped(&out, "a\tb\nc\rd", false);
  EXPECT_EQ(out, "a\tb\nc&#13;d");
  out.clear();
  append_escaped(&out, "plain", true);
  EXPECT_EQ(out, "plain");
  out.clear();
  append_escaped(&out, "", false);
  EXPECT_EQ(out, "");
}

TEST(SerializeTest, QualifiedAttributes) {
  Arena arena;
  std::pmr::memory_resource* mr = arena.resource();
  Element* m = arena.make_element("message", kNsClient);
  m->attrs.push_back(
      Attr{std::pmr::string(kNsXml, mr), std::pmr::string("lang", mr), std::pmr::string("en", mr)});
  m->attrs.push_back(
      Attr{std::pmr::string("urn:a", mr), std::pmr::string("one", mr), std::pmr::string("1", mr)});
  m->attrs.push_back(
      Attr{std::pmr::string("urn:b", mr), std::pmr::string("two", mr), std::pmr::string("2", mr)});
  m->attrs.push_back(Attr{std::pmr::string("urn:a", mr), std::pmr::string("three", mr),
                          std::pmr::string("3", mr)});
  EXPECT_EQ(to_xml(*m),
            "<message xml:lang='en' xmlns:a0='urn:a' a0:one='1' xmlns:a1='urn:b' a1:two='2'"
            " a0:three='3'/>");
}

}  // namespace
}  // namespace hearth::xml
