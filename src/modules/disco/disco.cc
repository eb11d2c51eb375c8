// Service discovery (XEP-0030) for the server and its accounts, the
// server's XEP-0157 contact addresses (as a XEP-0128 form) and its XEP-0115
// capabilities in the stream features.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "modules/disco/caps.h"
#include "modules/module.h"
#include "modules/services.h"

namespace hearth::modules {
namespace {

constexpr std::string_view kNsDiscoInfo = "http://jabber.org/protocol/disco#info";
constexpr std::string_view kNsDiscoItems = "http://jabber.org/protocol/disco#items";
constexpr std::string_view kNsCaps = "http://jabber.org/protocol/caps";
constexpr std::string_view kNsData = "jabber:x:data";
constexpr std::string_view kCapsNode = "https://hearth.im";
constexpr std::string_view kServerInfoForm = "http://jabber.org/network/serverinfo";

void add_identity(xml::Element& query, const DiscoIdentity& id) {
  xml::Element* e = query.add_child("identity", kNsDiscoInfo);
  e->set_attr("category", id.category);
  e->set_attr("type", id.type);
  if (!id.name.empty()) e->set_attr("name", id.name);
}

// Identities and features sorted and without duplicates (XEP-0115 §5.4
// treats duplicates as ill-formed), then the extensions.
void fill_info(xml::Element& query, std::vector<DiscoIdentity> identities,
               std::vector<std::string> features) {
  auto key = [](const DiscoIdentity& i) { return std::tie(i.category, i.type, i.name); };
  std::sort(identities.begin(), identities.end(),
            [&](const DiscoIdentity& a, const DiscoIdentity& b) { return key(a) < key(b); });
  identities.erase(
      std::unique(identities.begin(), identities.end(),
                  [&](const DiscoIdentity& a, const DiscoIdentity& b) { return key(a) == key(b); }),
      identities.end());
  for (const DiscoIdentity& id : identities)
    add_identity(query, id);
  std::sort(features.begin(), features.end());
  features.erase(std::unique(features.begin(), features.end()), features.end());
  for (const std::string& f : features) {
    query.add_child("feature", kNsDiscoInfo)->set_attr("var", f);
  }
}

class Disco final : public Module {
 public:
  explicit Disco(Context& ctx) : ctx_(ctx) {
    ctx.on_iq(kNsDiscoInfo, "get", kIqHost | kIqSelf | kIqAccount,
              [this](IqEvent& ev) { on_info(ev); });
    ctx.on_iq(kNsDiscoItems, "get", kIqHost | kIqSelf | kIqAccount,
              [this](IqEvent& ev) { on_items(ev); });
    ctx.add_disco_extension(DiscoTarget::kServer,
                            [this](xml::Element& query) { add_contact_form(query); });
    ctx.on_stream_features([this](std::string& features) {
      features.append("<c xmlns='");
      features.append(kNsCaps);
      features.append("' hash='sha-1' node='");
      features.append(kCapsNode);
      features.append("' ver='");
      xml::append_escaped(&features, ver(), true);
      features.append("'/>");
    });
  }

  void apply_config(const config::Config&) override { ver_.reset(); }

 private:
  // The server's disco#info, as answered and as hashed for the caps.
  xml::Element* server_info(xml::Arena& arena) {
    xml::Element* query = arena.make_element("query", kNsDiscoInfo);
    std::vector<DiscoIdentity> identities = {{"server", "im", "Hearth"}};
    const auto& more = ctx_.disco_identities(DiscoTarget::kServer);
    identities.insert(identities.end(), more.begin(), more.end());
    std::vector<std::string> features = ctx_.disco_features(DiscoTarget::kServer);
    features.emplace_back(kNsDiscoInfo);
    features.emplace_back(kNsDiscoItems);
    fill_info(*query, std::move(identities), std::move(features));
    ctx_.disco_extend(DiscoTarget::kServer, *query);
    return query;
  }

  xml::Element* account_info(xml::Arena& arena) {
    xml::Element* query = arena.make_element("query", kNsDiscoInfo);
    std::vector<DiscoIdentity> identities = {{"account", "registered", ""}};
    const auto& more = ctx_.disco_identities(DiscoTarget::kAccount);
    identities.insert(identities.end(), more.begin(), more.end());
    std::vector<std::string> features = ctx_.disco_features(DiscoTarget::kAccount);
    features.emplace_back(kNsDiscoInfo);
    features.emplace_back(kNsDiscoItems);
    fill_info(*query, std::move(identities), std::move(features));
    ctx_.disco_extend(DiscoTarget::kAccount, *query);
    return query;
  }

  // Computed once all modules have registered (the first stream features
  // or disco query comes after start-up), again after a reload.
  const std::string& ver() {
    if (!ver_) {
      xml::Arena arena;
      ver_ = disco::caps_hash(disco::caps_string(*server_info(arena)));
    }
    return *ver_;
  }

  // XEP-0030 §4.3 / Prosody: an account's info and items are for the user
  // and for contacts with a subscription to its presence; others get
  // service-unavailable, as if the account did not exist.
  bool may_see_account(const IqEvent& ev) const {
    if (ev.target == kIqSelf) return true;
    const RosterService* roster = ctx_.find<RosterService>();
    if (roster == nullptr) return false;
    return has_from(roster->subscription(ev.to.local(), ev.from.bare()));
  }

  void on_info(IqEvent& ev) {
    if (ev.payload.name != "query") {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    std::string_view node = ev.payload.attr("node");
    bool node_given = ev.payload.has_attr("node");
    if (ev.target == kIqHost) {
      // XEP-0115 §6.2: node#ver is answered like the plain query. Other
      // nodes belong to modules (XEP-0050 §2.3: an ad-hoc command's node).
      if (node_given && node != caps_node()) {
        xml::Element* query = ev.arena.make_element("query", kNsDiscoInfo);
        query->set_attr("node", node);
        if (!ctx_.disco_node_info(DiscoTarget::kServer, ev.from, ev.to, node, *query)) {
          ctx_.error(ev, "cancel", "item-not-found");
          return;
        }
        ctx_.result(ev, query);
        return;
      }
      xml::Element* query = server_info(ev.arena);
      if (node_given) query->set_attr("node", node);
      ctx_.result(ev, query);
      return;
    }
    if (!may_see_account(ev)) {
      ctx_.error(ev, "cancel", "service-unavailable");
      return;
    }
    if (node_given) {
      // A node of the account (a PEP node, XEP-0163 §7.1).
      xml::Element* query = ev.arena.make_element("query", kNsDiscoInfo);
      query->set_attr("node", node);
      if (!ctx_.disco_node_info(DiscoTarget::kAccount, ev.from, ev.to, node, *query)) {
        ctx_.error(ev, "cancel", "item-not-found");
        return;
      }
      ctx_.result(ev, query);
      return;
    }
    ctx_.result(ev, account_info(ev.arena));
  }

  void on_items(IqEvent& ev) {
    if (ev.payload.name != "query") {
      ctx_.error(ev, "modify", "bad-request");
      return;
    }
    if (ev.target != kIqHost && !may_see_account(ev)) {
      ctx_.error(ev, "cancel", "service-unavailable");
      return;
    }
    // Items come from the modules (PEP nodes on an account; later MUC and
    // upload on the server). The account's resources are not listed
    // (XEP-0030 §4.3).
    DiscoTarget target = ev.target == kIqHost ? DiscoTarget::kServer : DiscoTarget::kAccount;
    xml::Element* query = ev.arena.make_element("query", kNsDiscoItems);
    std::string_view node = ev.payload.attr("node");
    bool node_given = ev.payload.has_attr("node");
    if (node_given) query->set_attr("node", node);
    if (!ctx_.disco_items(target, ev.from, ev.to, node, *query) || (node_given && node.empty())) {
      ctx_.error(ev, "cancel", "item-not-found");
      return;
    }
    ctx_.result(ev, query);
  }

  std::string caps_node() {
    std::string n(kCapsNode);
    n.push_back('#');
    n.append(ver());
    return n;
  }

  // XEP-0157: the contact addresses configured in [contact], one field per
  // kind that has any, as a XEP-0128 form.
  void add_contact_form(xml::Element& query) const {
    const auto& c = ctx_.config().contact;
    const std::pair<const char*, const std::vector<std::string>*> kinds[] = {
        {"abuse-addresses", &c.abuse},       {"admin-addresses", &c.admin},
        {"feedback-addresses", &c.feedback}, {"sales-addresses", &c.sales},
        {"security-addresses", &c.security}, {"support-addresses", &c.support},
    };
    xml::Element* form = nullptr;
    for (const auto& [var, uris] : kinds) {
      if (uris->empty()) continue;
      if (form == nullptr) {
        form = query.add_child("x", kNsData);
        form->set_attr("type", "result");
        xml::Element* type = form->add_child("field", kNsData);
        type->set_attr("var", "FORM_TYPE");
        type->set_attr("type", "hidden");
        type->add_child("value", kNsData)->add_text(kServerInfoForm);
      }
      xml::Element* field = form->add_child("field", kNsData);
      field->set_attr("var", var);
      for (const std::string& uri : *uris)
        field->add_child("value", kNsData)->add_text(uri);
    }
  }

  Context& ctx_;
  std::optional<std::string> ver_;
};

std::unique_ptr<Module> create(Context& ctx) {
  return std::make_unique<Disco>(ctx);
}

}  // namespace

extern const ModuleDef kModule_disco;
const ModuleDef kModule_disco = {
    "disco",
    "service discovery (XEP-0030), server contact addresses (XEP-0157), caps (XEP-0115)",
    {},
    {},
    &create};

}  // namespace hearth::modules
