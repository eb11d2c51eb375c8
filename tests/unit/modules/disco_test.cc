#include <gtest/gtest.h>

#include <string>

#include "modules/disco/caps.h"
#include "xml/element.h"

namespace hearth::modules::disco {
namespace {

constexpr std::string_view kInfo = "http://jabber.org/protocol/disco#info";
constexpr std::string_view kData = "jabber:x:data";

// XEP-0115 §5.2, simple generation example.
TEST(DiscoCapsTest, SimpleExampleFromStructures) {
  std::string s = caps_string(
      {{"client", "pc", "", "Exodus 0.9.1"}},
      {"http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps",
       "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/disco#info"},
      {});
  EXPECT_EQ(s,
            "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
            "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
            "http://jabber.org/protocol/muc<");
  EXPECT_EQ(caps_hash(s), "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

std::vector<CapsForm> softwareinfo() {
  // Fields and values deliberately out of order.
  return {{"urn:xmpp:dataforms:softwareinfo",
           {{"software_version", {"0.11"}},
            {"os", {"Mac"}},
            {"ip_version", {"ipv6", "ipv4"}},
            {"software", {"Psi"}},
            {"os_version", {"10.5.1"}}}}};
}

constexpr std::string_view kComplexS =
    "client/pc/el/\xce\xa8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<"
    "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
    "http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<"
    "os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<";

// XEP-0115 §5.3, complex generation example (identities with xml:lang and an
// extended form).
TEST(DiscoCapsTest, ComplexExampleFromStructures) {
  std::string s =
      caps_string({{"client", "pc", "en", "Psi 0.11"}, {"client", "pc", "el", "\xce\xa8 0.11"}},
                  {"http://jabber.org/protocol/muc", "http://jabber.org/protocol/disco#items",
                   "http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info"},
                  softwareinfo());
  EXPECT_EQ(s, kComplexS);
  EXPECT_EQ(caps_hash(s), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
}

xml::Element* add_field(xml::Element* form, std::string_view var, std::vector<std::string> values,
                        std::string_view type = {}) {
  xml::Element* f = form->add_child("field", kData);
  f->set_attr("var", var);
  if (!type.empty()) f->set_attr("type", type);
  for (const std::string& v : values)
    f->add_child("value", kData)->add_text(v);
  return f;
}

xml::Element* complex_query(xml::Arena& arena) {
  xml::Element* q = arena.make_element("query", kInfo);
  for (auto [lang, name] : {std::pair{"en", "Psi 0.11"}, std::pair{"el", "\xce\xa8 0.11"}}) {
    xml::Element* id = q->add_child("identity", kInfo);
    id->set_attr("category", "client");
    id->set_attr("type", "pc");
    id->set_attr("name", name);
    id->attrs.push_back({std::pmr::string(xml::kNsXml, arena.resource()),
                         std::pmr::string("lang", arena.resource()),
                         std::pmr::string(lang, arena.resource())});
  }
  for (const char* f :
       {"http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc"}) {
    q->add_child("feature", kInfo)->set_attr("var", f);
  }
  xml::Element* x = q->add_child("x", kData);
  x->set_attr("type", "result");
  add_field(x, "FORM_TYPE", {"urn:xmpp:dataforms:softwareinfo"}, "hidden");
  add_field(x, "ip_version", {"ipv4", "ipv6"});
  add_field(x, "os", {"Mac"});
  add_field(x, "os_version", {"10.5.1"});
  add_field(x, "software", {"Psi"});
  add_field(x, "software_version", {"0.11"});
  return q;
}

TEST(DiscoCapsTest, ComplexExampleFromElement) {
  xml::Arena arena;
  xml::Element* q = complex_query(arena);
  EXPECT_EQ(caps_string(*q), kComplexS);
  EXPECT_EQ(caps_hash(caps_string(*q)), "q07IKJEyjvHSyhy//CH0CxmKi8w=");
}

// §5.4: a form whose FORM_TYPE is not hidden does not count; other
// children (a node attribute, unknown elements) do not either.
TEST(DiscoCapsTest, FormWithoutHiddenFormTypeIsIgnored) {
  xml::Arena arena;
  xml::Element* q = complex_query(arena);
  q->set_attr("node", "http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w=");
  xml::Element* x = q->add_child("x", kData);
  x->set_attr("type", "result");
  add_field(x, "FORM_TYPE", {"urn:example:visible"});
  add_field(x, "a", {"b"});
  q->add_child("junk", "urn:example");
  EXPECT_EQ(caps_string(*q), kComplexS);
}

// Changing any hashed item changes the string (so the test can fail).
TEST(DiscoCapsTest, EveryPartCounts) {
  std::string base = caps_string({{"server", "im", "", "Hearth"}}, {"a", "b"}, {});
  EXPECT_EQ(base, "server/im//Hearth<a<b<");
  EXPECT_NE(caps_string({{"server", "im", "", "Hearth"}}, {"a"}, {}), base);
  EXPECT_NE(caps_string({{"server", "pc", "", "Hearth"}}, {"a", "b"}, {}), base);
  EXPECT_NE(caps_string({{"server", "im", "", "Hearth"}}, {"a", "b"}, {{"t", {}}}), base);
  EXPECT_EQ(caps_string({{"server", "im", "", "Hearth"}}, {"b", "a"}, {{"t", {{"f", {"2", "1"}}}}}),
            "server/im//Hearth<a<b<t<f<1<2<");
  EXPECT_NE(caps_hash("server/im//Hearth<a<b<"), caps_hash("server/im//Hearth<a<"));
}

}  // namespace
}  // namespace hearth::modules::disco
