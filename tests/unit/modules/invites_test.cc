#include "modules/invites/invite.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "module_fixture.h"
#include "modules/adhoc/adhoc.h"
#include "modules/host.h"
#include "modules/roster/roster.h"
#include "storage/codec.h"

namespace hearth::modules {

extern const ModuleDef kModule_roster;
extern const ModuleDef kModule_presence;
extern const ModuleDef kModule_adhoc;
extern const ModuleDef kModule_invites;

namespace {

// ---- tokens ----

TEST(InviteToken, Is192RandomBitsInBase64Url) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string t = new_invite_token();
    ASSERT_EQ(t.size(), kTokenChars);
    EXPECT_TRUE(invite_token_well_formed(t)) << t;
    for (char c : t)
      EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << t;
    unsigned char raw[64];
    size_t len = 0;
    ASSERT_EQ(sodium_base642bin(raw, sizeof raw, t.data(), t.size(), nullptr, &len, nullptr,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING),
              0);
    EXPECT_EQ(len, kTokenBytes);
    EXPECT_GE(len * 8, 128u);  // at least 128 bits of entropy
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 200u);  // no repeats
}

TEST(InviteToken, WellFormedRejectsWhatIsNotOurs) {
  EXPECT_TRUE(invite_token_well_formed(std::string(16, 'a')));
  EXPECT_TRUE(invite_token_well_formed(std::string(64, '_')));
  EXPECT_FALSE(invite_token_well_formed(std::string(15, 'a')));
  EXPECT_FALSE(invite_token_well_formed(std::string(65, 'a')));
  EXPECT_FALSE(invite_token_well_formed(""));
  for (char bad : std::string("+/=.;&# \n@%")) {
    std::string t(20, 'a');
    t[7] = bad;
    EXPECT_FALSE(invite_token_well_formed(t)) << bad;
  }
  std::string with_nul(20, 'a');
  with_nul[3] = '\0';
  EXPECT_FALSE(invite_token_well_formed(with_nul));
}

TEST(InviteKey, IsAServerWideUserKey) {
  // An empty localpart: account deletion never reaches it.
  EXPECT_EQ(invite_key("tok"), std::string("\0tok", 4));
  EXPECT_EQ(invite_key("tok"), user_key("", "tok"));
}

// ---- codec ----

Invite sample() {
  Invite i;
  i.token = "abcdefghijklmnopqrstuvwxyz012345";
  i.inviter = "alice";
  i.username = "zed";
  i.creator = "admin@example.org";
  i.uses_left = 3;
  i.created = 1700000000;
  i.expires = 1700604800;
  i.admin = true;
  return i;
}

TEST(InviteCodec, RoundTrips) {
  Invite in = sample();
  Result<Invite> out = decode_invite(in.token, encode_invite(in));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out.value(), in);
  Invite plain;
  plain.token = "x";
  Result<Invite> back = decode_invite("x", encode_invite(plain));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value(), plain);
  EXPECT_FALSE(back->admin);
}

TEST(InviteCodec, IsBigEndianWithAVersionByte) {
  Invite in;
  in.uses_left = 0x01020304;
  in.created = 0x0506070809101112;
  std::string v = encode_invite(in);
  ASSERT_GE(v.size(), 22u);
  EXPECT_EQ(v[0], 1);  // format
  EXPECT_EQ(v[1], 0);  // flags
  EXPECT_EQ(v.substr(2, 4), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(v.substr(6, 8), std::string("\x05\x06\x07\x08\x09\x10\x11\x12", 8));
}

TEST(InviteCodec, RefusesDamagedValues) {
  std::string v = encode_invite(sample());
  EXPECT_FALSE(decode_invite("t", v.substr(0, v.size() - 1)).ok());  // truncated
  EXPECT_FALSE(decode_invite("t", v + "x").ok());                    // leftovers
  EXPECT_FALSE(decode_invite("t", "").ok());
  std::string other = v;
  other[0] = 2;  // unknown format
  EXPECT_FALSE(decode_invite("t", other).ok());
  other = v;
  other[1] = 4;  // unknown flag
  EXPECT_FALSE(decode_invite("t", other).ok());
}

// ---- expiry and uses ----

TEST(InviteState, ExpiryAndUses) {
  Invite i;
  i.uses_left = 1;
  i.expires = 1000;
  EXPECT_EQ(invite_state(i, 999), InviteState::kUsable);
  EXPECT_EQ(invite_state(i, 1000), InviteState::kExpired);
  EXPECT_EQ(invite_state(i, 5000), InviteState::kExpired);
  i.expires = 0;  // never
  EXPECT_EQ(invite_state(i, UINT64_MAX), InviteState::kUsable);
  i.uses_left = 0;
  EXPECT_EQ(invite_state(i, 1), InviteState::kUsedUp);
  EXPECT_NE(invite_state_text(InviteState::kExpired).find("expired"), std::string_view::npos);
  EXPECT_NE(invite_state_text(InviteState::kUsedUp).find("used"), std::string_view::npos);
}

TEST(InviteDuration, UnitsAndRefusals) {
  EXPECT_EQ(parse_invite_duration("7d").value(), 604800u);
  EXPECT_EQ(parse_invite_duration("2w").value(), 1209600u);
  EXPECT_EQ(parse_invite_duration("12h").value(), 43200u);
  EXPECT_EQ(parse_invite_duration("90m").value(), 5400u);
  EXPECT_EQ(parse_invite_duration("3600s").value(), 3600u);
  EXPECT_EQ(parse_invite_duration("45").value(), 45u);
  EXPECT_EQ(parse_invite_duration("never").value(), 0u);
  for (const char* bad : {"", "d", "7x", "-1d", "0", "0d", "1.5h", "1234567890d", " 7d", "7d "})
    EXPECT_FALSE(parse_invite_duration(bad).ok()) << bad;
}

// ---- URIs (XEP-0401 §3, RFC 5122) ----

TEST(InviteUri, Forms) {
  Invite i;
  i.token = "TOKEN_abc-123";
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:example.org?register;preauth=TOKEN_abc-123");
  i.inviter = "alice";
  EXPECT_EQ(invite_uri(i, "example.org"),
            "xmpp:alice@example.org?roster;preauth=TOKEN_abc-123;ibr=y");
  i.inviter.clear();
  i.username = "zed";
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:zed@example.org?register;preauth=TOKEN_abc-123");
}

TEST(InviteUri, PercentEncodesNodeParts) {
  Invite i;
  i.token = "t";
  i.inviter = "o'brien";  // "'" is not in RFC 5122 nodeallow
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:o%27brien@example.org?roster;preauth=t;ibr=y");
  i.inviter = "a b";
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:a%20b@example.org?roster;preauth=t;ibr=y");
  i.inviter = "j\xC3\xBCrgen";  // UTF-8 bytes, upper-case hex
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:j%C3%BCrgen@example.org?roster;preauth=t;ibr=y");
  i.inviter = "a+b=c!$()*,;";  // nodeallow stays
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:a+b=c!$()*,;@example.org?roster;preauth=t;ibr=y");
  i.inviter = "x?y#z%";
  EXPECT_EQ(invite_uri(i, "example.org"), "xmpp:x%3Fy%23z%25@example.org?roster;preauth=t;ibr=y");
  EXPECT_EQ(percent_encode("a/b?c#d&e=f"), "a%2Fb%3Fc%23d%26e%3Df");
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
}

// ---- the module: registration through a real Host ----

class FakePreauth : public PreauthStream {
 public:
  uint64_t id() const override { return 7; }
  const std::string& peer_ip() const override { return ip_; }
  void send(const xml::Element& stanza) override {
    std::string out;
    xml::serialize(stanza, &out);
    sent.push_back(out);
  }
  std::string& preauth_token() override { return token_; }
  void close_with(std::string_view condition, std::string_view) override {
    closed = std::string(condition);
  }
  std::string last() const { return sent.empty() ? std::string() : sent.back(); }
  std::vector<std::string> sent;
  std::string closed;
  std::string ip_ = "192.0.2.9";
  std::string token_;
};

class FakeAccounts : public AccountBackend {
 public:
  void set_password(const std::string&, std::string, std::function<void(Status)> done) override {
    done(Status{});
  }
  void remove(const std::string&, std::function<void(Status)> done) override { done(Status{}); }
  void create(const std::string& user, std::string password,
              std::function<void(Status)> done) override {
    created.push_back(user);
    passwords.push_back(password);
    done(Status{});
  }
  std::vector<std::string> created, passwords;
};

class InvitesModuleTest : public test::HostFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(env_.open("hearth-invites", Host::all_tables()));
    config_.admins = {"root@example.org"};
    modules_ = {&kModule_roster, &kModule_presence, &kModule_adhoc, &kModule_invites};
    start();
  }
  void start() {
    host_.reset();
    ASSERT_NO_FATAL_FAILURE(start_host(&accounts_));
    host_->set_users({"alice", "bob", "root"});
    host_->set_preauth_lookup(
        [this](uint64_t id) -> PreauthStream* { return id == stream_.id() ? &stream_ : nullptr; });
  }
  void TearDown() override { host_.reset(); }
  Invite add_invite(uint32_t uses = 1, std::string inviter = {}, std::string username = {},
                    bool admin = false, uint64_t expires = 0) {
    Invite i;
    i.token = new_invite_token();
    i.uses_left = uses;
    i.inviter = std::move(inviter);
    i.username = std::move(username);
    i.admin = admin;
    i.expires = expires;
    EXPECT_TRUE(store_invite(*env_, host_->table(kInvitesTable), i).ok());
    return i;
  }
  // Sends an IQ on the pre-auth stream; returns the reply.
  std::string preauth(std::string_view token) {
    xml::Element* iq = iq_element("set");
    iq->add_child("preauth", kNsPars)->set_attr("token", token);
    EXPECT_TRUE(host_->preauth_iq(stream_, *iq));
    return stream_.last();
  }
  std::string register_set(std::string_view user, std::string_view password,
                           std::string_view token_child = {}) {
    xml::Element* iq = iq_element("set");
    xml::Element* q = iq->add_child("query", kNsIqRegister);
    q->add_child("username", kNsIqRegister)->add_text(user);
    q->add_child("password", kNsIqRegister)->add_text(password);
    if (!token_child.empty()) q->add_child("preauth", kNsPars)->set_attr("token", token_child);
    EXPECT_TRUE(host_->preauth_iq(stream_, *iq));
    return stream_.last();
  }
  xml::Element* iq_element(std::string_view type) {
    xml::Element* iq = arena_.make_element("iq", xml::kNsClient);
    iq->set_attr("type", type);
    iq->set_attr("id", "r" + std::to_string(++seq_));
    return iq;
  }
  std::optional<Invite> stored(const std::string& token) {
    Result<std::optional<Invite>> got = load_invite(*env_, host_->table(kInvitesTable), token);
    EXPECT_TRUE(got.ok());
    return got.ok() ? got.value() : std::nullopt;
  }
  static bool is_error(const std::string& reply, std::string_view condition) {
    return reply.find("type='error'") != std::string::npos &&
           reply.find("<" + std::string(condition)) != std::string::npos;
  }

  static constexpr const char* kPassword = "quiet-lantern-harbor-88";
  FakeAccounts accounts_;
  FakePreauth stream_;
  int seq_ = 0;
};

TEST_F(InvitesModuleTest, FeaturesFollowTheMode) {
  std::string f;
  host_->preauth_features(f);
  EXPECT_NE(f.find("<register xmlns='http://jabber.org/features/iq-register'/>"),
            std::string::npos);
  config_.registration.mode = "closed";
  f.clear();
  host_->preauth_features(f);
  EXPECT_EQ(f, "");
}

TEST_F(InvitesModuleTest, RosterInviteMakesMutualContactsAndIsUsedOnce) {
  Invite inv = add_invite(1, "alice");
  EXPECT_NE(preauth(inv.token).find("type='result'"), std::string::npos) << stream_.last();
  EXPECT_EQ(stream_.preauth_token(), inv.token);
  std::string reply = register_set("Dave", kPassword);  // normalised to "dave"
  EXPECT_NE(reply.find("type='result'"), std::string::npos) << reply;
  ASSERT_EQ(accounts_.created, std::vector<std::string>{"dave"});
  EXPECT_TRUE(host_->user_exists("dave"));
  EXPECT_FALSE(stored(inv.token).has_value());  // the only use is gone
  EXPECT_TRUE(stream_.preauth_token().empty());
  auto* roster = host_->find<RosterService>();
  ASSERT_NE(roster, nullptr);
  EXPECT_EQ(roster->subscription("alice", "dave@example.org"), Subscription::kBoth);
  EXPECT_EQ(roster->subscription("dave", "alice@example.org"), Subscription::kBoth);
  // Once more: refused.
  EXPECT_TRUE(is_error(preauth(inv.token), "item-not-found"));
  EXPECT_TRUE(is_error(register_set("erin", kPassword, inv.token), "not-allowed"));
  EXPECT_EQ(accounts_.created.size(), 1u);
}

TEST_F(InvitesModuleTest, RefusalsDoNotUseTheInvite) {
  Invite inv = add_invite(2, {}, "zed");
  EXPECT_TRUE(is_error(register_set("zed", "short", inv.token), "not-acceptable"));
  EXPECT_TRUE(is_error(register_set("yann", kPassword, inv.token), "not-acceptable"));
  EXPECT_TRUE(is_error(register_set("zed", kPassword), "not-allowed"));  // no token
  EXPECT_TRUE(accounts_.created.empty());
  ASSERT_TRUE(stored(inv.token).has_value());
  EXPECT_EQ(stored(inv.token)->uses_left, 2u);
  EXPECT_NE(register_set("zed", kPassword, inv.token).find("type='result'"), std::string::npos);
  ASSERT_TRUE(stored(inv.token).has_value());
  EXPECT_EQ(stored(inv.token)->uses_left, 1u);
  // An existing account is a conflict, whatever the token.
  EXPECT_TRUE(is_error(register_set("zed", kPassword, inv.token), "conflict"));
}

TEST_F(InvitesModuleTest, ExpiredInviteIsRefused) {
  Invite inv = add_invite(1, {}, {}, false, 1000);  // long ago
  EXPECT_TRUE(is_error(preauth(inv.token), "item-not-found"));
  EXPECT_NE(stream_.last().find("expired"), std::string::npos);
  EXPECT_TRUE(stream_.preauth_token().empty());
}

TEST_F(InvitesModuleTest, AdminInviteGivesTheRole) {
  Invite inv = add_invite(1, {}, {}, true);
  auto* roles = host_->find<RoleService>();
  ASSERT_NE(roles, nullptr);
  EXPECT_FALSE(roles->is_admin("dave"));
  EXPECT_FALSE(host_->is_admin(xmpp::Jid::parse("dave@example.org").value()));
  EXPECT_NE(register_set("dave", kPassword, inv.token).find("type='result'"), std::string::npos);
  EXPECT_TRUE(roles->is_admin("dave"));
  EXPECT_TRUE(host_->is_admin(xmpp::Jid::parse("dave@example.org/x").value()));
  EXPECT_FALSE(roles->is_admin("alice"));
}

TEST_F(InvitesModuleTest, OpenModeLimitsPerIp) {
  config_.registration.mode = "open";
  config_.registration.max_per_ip_per_hour = 2;
  EXPECT_NE(register_set("dave", kPassword).find("type='result'"), std::string::npos);
  EXPECT_NE(register_set("erin", kPassword).find("type='result'"), std::string::npos);
  EXPECT_TRUE(is_error(register_set("frank", kPassword), "resource-constraint"));
  stream_.ip_ = "192.0.2.10";  // another address
  EXPECT_NE(register_set("frank", kPassword).find("type='result'"), std::string::npos);
  EXPECT_EQ(accounts_.created.size(), 3u);
}

TEST_F(InvitesModuleTest, ClosedModeRefusesEverything) {
  config_.registration.mode = "closed";
  Invite inv = add_invite();
  EXPECT_TRUE(is_error(preauth(inv.token), "service-unavailable"));
  EXPECT_TRUE(is_error(register_set("dave", kPassword, inv.token), "service-unavailable"));
  EXPECT_TRUE(accounts_.created.empty());
}

TEST_F(InvitesModuleTest, ThePasswordLeavesTheStanzaWiped) {
  Invite inv = add_invite();
  xml::Element* iq = iq_element("set");
  xml::Element* q = iq->add_child("query", kNsIqRegister);
  q->add_child("username", kNsIqRegister)->add_text("dave");
  xml::Element* pw = q->add_child("password", kNsIqRegister);
  pw->add_text(kPassword);
  q->add_child("preauth", kNsPars)->set_attr("token", inv.token);
  ASSERT_TRUE(host_->preauth_iq(stream_, *iq));
  EXPECT_EQ(accounts_.passwords, std::vector<std::string>{kPassword});
  EXPECT_EQ(pw->text(), std::string(strlen(kPassword), '\0'));
}

}  // namespace
}  // namespace hearth::modules
