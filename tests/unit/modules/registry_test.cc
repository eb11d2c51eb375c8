// The compiled-in module set as a whole: every module starts, tables have
// unique names, and every IQ namespace a module handles is either
// advertised in disco or deliberately internal (STYLE.md "Modules").
#include "modules/registry.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "module_fixture.h"
#include "modules/host.h"

namespace hearth::modules {
namespace {

// Namespaces handled but not advertised, each with its reason (none today:
// every IQ a module answers is one a client may discover).
const std::set<std::string> kInternal = {};

// Every compiled-in module that the configuration enables (modules_ stays
// empty), on a database with every table.
class RegistryTest : public test::HostFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(env_.open("hearth-registry", Host::all_tables()));
    ASSERT_NO_FATAL_FAILURE(start_host());
  }
};

TEST_F(RegistryTest, EveryHandledNamespaceIsAdvertisedOrInternal) {
  std::set<std::string> hidden;
  for (const IqRegistration& r : host_->iq_registrations()) {
    if (!r.advertised) {
      hidden.insert(r.ns);
      continue;
    }
    const std::vector<std::string>& server = host_->disco_features(DiscoTarget::kServer);
    const std::vector<std::string>& account = host_->disco_features(DiscoTarget::kAccount);
    bool listed = std::find(server.begin(), server.end(), r.ns) != server.end() ||
                  std::find(account.begin(), account.end(), r.ns) != account.end();
    EXPECT_TRUE(listed) << r.ns << " (module " << r.module << ")";
  }
  EXPECT_EQ(hidden, kInternal);
}

TEST_F(RegistryTest, ModulesHaveNamesDocsAndUniqueTables) {
  std::set<std::string> names, tables;
  for (const ModuleDef* m : all_modules()) {
    EXPECT_TRUE(names.insert(m->name).second) << m->name;
    EXPECT_NE(std::string(m->doc), "") << m->name;
    for (const TableDef& t : m->tables)
      EXPECT_TRUE(tables.insert(t.name).second) << "table " << t.name << " declared twice";
    // A module requires only modules listed before it (creation order).
    for (const char* need : m->requires_modules)
      EXPECT_TRUE(names.count(need)) << m->name << " requires " << need;
  }
  EXPECT_EQ(names.size(), config::compiled_module_names().size());
}

TEST_F(RegistryTest, DisablingARequiredModuleIsAClearError) {
  int checked = 0;
  for (const ModuleDef* m : all_modules()) {
    for (const char* need : m->requires_modules) {
      config::Config c = config_;
      c.disabled_modules = {need};
      Host::Deps deps;
      deps.config = &c;
      deps.loop = loop_.get();
      deps.router = &router_;
      deps.db = env_.get();
      host_.reset();
      Result<std::unique_ptr<Host>> h = Host::create(deps);
      ASSERT_FALSE(h.ok()) << m->name << " without " << need;
      EXPECT_NE(h.error().message.find(std::string("needs module '") + need + "'"),
                std::string::npos)
          << h.error().message;
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);  // presence requires roster
}

}  // namespace
}  // namespace hearth::modules
