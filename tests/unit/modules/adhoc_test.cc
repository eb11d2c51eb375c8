#include "modules/adhoc/adhoc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/host.h"

namespace hearth::modules {

extern const ModuleDef kModule_adhoc;

namespace {

// ---- data forms ----

TEST(DataForms, ParseSubmittedValues) {
  xml::Arena arena;
  xml::Element* x = make_form(arena, "submit");
  add_field(*x, "uses", "text-single", {}, "3");
  xml::Element* multi = add_field(*x, "groups", "list-multi");
  multi->add_child("value", kNsDataForms)->add_text("a");
  multi->add_child("value", kNsDataForms)->add_text("b");
  add_field(*x, "empty", "text-single");
  FormValues v;
  ASSERT_TRUE(parse_form(*x, &v));
  EXPECT_EQ(v.get("uses"), "3");
  EXPECT_EQ(v.fields.at("groups"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(v.has("empty"));
  EXPECT_EQ(v.get("empty", "dflt"), "dflt");
  EXPECT_FALSE(v.has("missing"));
  EXPECT_EQ(v.get("missing", "x"), "x");
}

TEST(DataForms, RefusesOtherElementsAndFieldsWithoutVar) {
  xml::Arena arena;
  FormValues v;
  EXPECT_FALSE(parse_form(*arena.make_element("x", "urn:other"), &v));
  xml::Element* cancel = make_form(arena, "cancel");
  EXPECT_FALSE(parse_form(*cancel, &v));
  xml::Element* x = make_form(arena, "submit");
  x->add_child("field", kNsDataForms)->add_child("value", kNsDataForms)->add_text("1");
  EXPECT_FALSE(parse_form(*x, &v));
}

TEST(DataForms, Booleans) {
  bool b = false;
  EXPECT_TRUE(form_bool("1", &b));
  EXPECT_TRUE(b);
  EXPECT_TRUE(form_bool("false", &b));
  EXPECT_FALSE(b);
  EXPECT_TRUE(form_bool("true", &b));
  EXPECT_TRUE(b);
  EXPECT_TRUE(form_bool("0", &b));
  EXPECT_FALSE(b);
  EXPECT_FALSE(form_bool("yes", &b));
  EXPECT_FALSE(form_bool("", &b));
}

TEST(DataForms, BuildsXep0004Markup) {
  xml::Arena arena;
  xml::Element* x = make_form(arena, "form", "Title", "Do it");
  add_field(*x, "admin", "boolean", "Admin?", "0", true);
  std::string out;
  xml::serialize(*x, &out);
  EXPECT_EQ(out,
            "<x xmlns='jabber:x:data' type='form'><title>Title</title>"
            "<instructions>Do it</instructions><field var='admin' type='boolean' "
            "label='Admin?'><required/><value>0</value></field></x>");
}

// ---- the command flow through a real Host ----

using test::FakeSession;

std::vector<std::string>* g_runs = nullptr;

// Registers one form command and one immediate admin command.
class Commands : public Module {
 public:
  explicit Commands(Context& ctx) {
    AdhocService* adhoc = ctx.find<AdhocService>();
    AdhocCommand greet;
    greet.node = "urn:test:greet";
    greet.name = "Greet";
    greet.form = [](xml::Arena& arena, const xmpp::Jid&) {
      xml::Element* x = make_form(arena, "form");
      add_field(*x, "name", "text-single");
      return x;
    };
    greet.run = [](const xmpp::Jid& who, const FormValues& v, xml::Arena& arena) {
      g_runs->push_back("greet " + who.bare() + " " + std::string(v.get("name")));
      AdhocOutcome out;
      if (v.get("name").empty()) {
        out.error_condition = "bad-request";
        out.text = "name?";
        return out;
      }
      out.text = "hello";
      out.result_form = make_form(arena, "result");
      add_field(*out.result_form, "greeting", "text-single", {},
                "hi " + std::string(v.get("name")));
      return out;
    };
    adhoc->add_command(std::move(greet));
    AdhocCommand secret;
    secret.node = "urn:test:secret";
    secret.name = "Secret";
    secret.admin_only = true;
    secret.run = [](const xmpp::Jid& who, const FormValues&, xml::Arena&) {
      g_runs->push_back("secret " + who.bare());
      return AdhocOutcome{};
    };
    adhoc->add_command(std::move(secret));
  }
};

std::unique_ptr<Module> create_commands(Context& ctx) {
  return std::make_unique<Commands>(ctx);
}
const ModuleDef kCommands = {"commands", "test commands", {}, {"adhoc"}, &create_commands};

class AdhocTest : public test::HostFixture {
 protected:
  void SetUp() override {
    g_runs = &runs_;
    config_.admins = {"admin@example.org"};
    modules_ = {&kModule_adhoc, &kCommands};
    ASSERT_NO_FATAL_FAILURE(start_host());
    host_->set_users({"admin", "user"});
  }
  std::string command(FakeSession& from, std::string_view node, std::string_view action = {},
                      std::string_view sessionid = {}, const char* name_value = nullptr) {
    xml::Element* iq = arena_.make_element("iq", xml::kNsClient);
    iq->set_attr("type", "set");
    iq->set_attr("id", "c1");
    iq->set_attr("to", "example.org");
    iq->set_attr("from", from.jid().full());
    xml::Element* cmd = iq->add_child("command", kNsCommands);
    cmd->set_attr("node", node);
    if (!action.empty()) cmd->set_attr("action", action);
    if (!sessionid.empty()) cmd->set_attr("sessionid", sessionid);
    if (name_value != nullptr) {
      xml::Element* x = cmd->add_child("x", kNsDataForms);
      x->set_attr("type", "submit");
      add_field(*x, "name", {}, {}, name_value);
    }
    host_->route(*iq, from);
    return from.last();
  }
  static std::string attr(const std::string& xml, const std::string& name) {
    size_t at = xml.find(" " + name + "='");
    if (at == std::string::npos) return {};
    at += name.size() + 3;
    return xml.substr(at, xml.find('\'', at) - at);
  }

  std::vector<std::string> runs_;
  FakeSession admin_{"admin@example.org/a"};
  FakeSession user_{"user@example.org/u"};
};

TEST_F(AdhocTest, ExecuteShowsTheFormThenCompleteRunsIt) {
  std::string r = command(user_, "urn:test:greet");
  EXPECT_NE(r.find("status='executing'"), std::string::npos) << r;
  EXPECT_NE(r.find("<actions execute='complete'><complete/></actions>"), std::string::npos) << r;
  EXPECT_NE(r.find("<field var='name' type='text-single'/>"), std::string::npos) << r;
  std::string sid = attr(r, "sessionid");
  ASSERT_EQ(sid.size(), 24u) << r;
  EXPECT_TRUE(runs_.empty());
  r = command(user_, "urn:test:greet", "complete", sid, "Ann");
  EXPECT_NE(r.find("status='completed'"), std::string::npos) << r;
  EXPECT_EQ(attr(r, "sessionid"), sid);
  EXPECT_NE(r.find("<note type='info'>hello</note>"), std::string::npos) << r;
  EXPECT_NE(r.find("<value>hi Ann</value>"), std::string::npos) << r;
  EXPECT_EQ(runs_, std::vector<std::string>{"greet user@example.org Ann"});
  // The session is over.
  r = command(user_, "urn:test:greet", "complete", sid, "Ann");
  EXPECT_NE(r.find("<bad-request"), std::string::npos) << r;
  EXPECT_NE(r.find("<bad-sessionid xmlns='http://jabber.org/protocol/commands'/>"),
            std::string::npos)
      << r;
  EXPECT_EQ(runs_.size(), 1u);
}

TEST_F(AdhocTest, SessionsBelongToTheirRequesterAndCanBeCanceled) {
  std::string sid = attr(command(user_, "urn:test:greet"), "sessionid");
  FakeSession other("user@example.org/other");
  std::string r = command(other, "urn:test:greet", "complete", sid, "X");
  EXPECT_NE(r.find("bad-sessionid"), std::string::npos) << r;
  r = command(user_, "urn:test:greet", "cancel", sid);
  EXPECT_NE(r.find("status='canceled'"), std::string::npos) << r;
  r = command(user_, "urn:test:greet", "complete", sid, "X");
  EXPECT_NE(r.find("bad-sessionid"), std::string::npos) << r;
  r = command(user_, "urn:test:greet", "next");
  EXPECT_NE(r.find("bad-action"), std::string::npos) << r;
  EXPECT_TRUE(runs_.empty());
}

TEST_F(AdhocTest, ErrorsOfACommandAreStanzaErrors) {
  std::string r = command(user_, "urn:test:greet", "execute", {}, "");
  EXPECT_NE(r.find("type='error'"), std::string::npos) << r;
  EXPECT_NE(r.find("<bad-request"), std::string::npos) << r;
  EXPECT_NE(r.find(">name?</text>"), std::string::npos) << r;
}

TEST_F(AdhocTest, AdminCommandsAreForbiddenToOthersAndHiddenFromThem) {
  std::string r = command(user_, "urn:test:secret");
  EXPECT_NE(r.find("<forbidden"), std::string::npos) << r;
  EXPECT_TRUE(runs_.empty());
  r = command(admin_, "urn:test:secret");
  EXPECT_NE(r.find("status='completed'"), std::string::npos) << r;
  EXPECT_EQ(runs_, std::vector<std::string>{"secret admin@example.org"});
  r = command(user_, "urn:test:nothing");
  EXPECT_NE(r.find("<item-not-found"), std::string::npos) << r;

  auto items = [&](const xmpp::Jid& who) {
    xml::Element* q = arena_.make_element("query", "http://jabber.org/protocol/disco#items");
    EXPECT_TRUE(host_->disco_items(DiscoTarget::kServer, who,
                                   xmpp::Jid::parse("example.org").value(), kNsCommands, *q));
    std::string out;
    xml::serialize(*q, &out);
    return out;
  };
  std::string mine = items(user_.jid());
  EXPECT_NE(mine.find("node='urn:test:greet'"), std::string::npos) << mine;
  EXPECT_EQ(mine.find("urn:test:secret"), std::string::npos) << mine;
  std::string theirs = items(admin_.jid());
  EXPECT_NE(theirs.find("jid='example.org' node='urn:test:secret' name='Secret'"),
            std::string::npos)
      << theirs;
  // Advertised on the server.
  const std::vector<std::string>& f = host_->disco_features(DiscoTarget::kServer);
  EXPECT_NE(std::find(f.begin(), f.end(), std::string(kNsCommands)), f.end());
}

}  // namespace
}  // namespace hearth::modules
