#include "xmpp/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../modules/module_fixture.h"

namespace hearth::xmpp {
namespace {

using modules::test::FakeSession;  // records what the router delivers

class RouterTest : public ::testing::Test {
 protected:
  xml::Element* stanza(std::string_view name, std::string_view from, std::string_view to,
                       std::string_view type = {}) {
    xml::Element* e = arena_.make_element(name, xml::kNsClient);
    e->set_attr("from", from);
    if (!to.empty()) e->set_attr("to", to);
    if (!type.empty()) e->set_attr("type", type);
    e->set_attr("id", "x1");
    return e;
  }
  Router router_{"example.org"};
  xml::Arena arena_;
};

TEST_F(RouterTest, BindReplacesTheSameFullJidAndKeepsOthers) {
  FakeSession a("alice@example.org/phone"), b("alice@example.org/laptop"),
      a2("alice@example.org/phone");
  EXPECT_EQ(router_.bind(&a), nullptr);
  EXPECT_EQ(router_.bind(&b), nullptr);
  EXPECT_EQ(router_.bind(&a2), &a);
  EXPECT_EQ(router_.session_count(), 2u);
  EXPECT_EQ(router_.find("alice@example.org/phone"), &a2);
  router_.unbind(&a2);
  router_.unbind(&b);
  EXPECT_EQ(router_.session_count(), 0u);
  EXPECT_TRUE(router_.resources("alice@example.org").empty());
}

}  // namespace
}  // namespace hearth::xmpp
