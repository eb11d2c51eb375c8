#include "modules/spam/spam.h"

#include <gtest/gtest.h>

#include <cstdio>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "module_fixture.h"
#include "modules/blocking/blocking.h"
#include "modules/host.h"
#include "modules/services.h"
#include "storage/env.h"
#include "xml/fragment.h"

namespace hearth::modules {

extern const ModuleDef kModule_roster;
extern const ModuleDef kModule_mam;
extern const ModuleDef kModule_spam;

namespace spam {
namespace {

using test::FakeSession;
using test::jid;
using test::Strings;

// ---- the list ----

TEST(SpamBlockList, JabberSpamFileWithCommentsBlanksWildcardsAndCase) {
  BlockList list("example.org");
  Strings warnings;
  list.add_text(
      "# JabberSPAM blacklist\n"
      "\n"
      "spam.example\n"
      "  Bad.Example.NET   # trailing comment\r\n"
      "*.wild.example\n"
      "\t\n"
      "Bot@Host.Example\n"
      "has space.example\n"
      "x@y/res\n"
      "a.*.example\n"
      "*.bot@host.example\n"
      "last.example",  // no final newline
      &warnings);
  EXPECT_EQ(list.size(), 5u);
  ASSERT_EQ(warnings.size(), 4u) << ::testing::PrintToString(warnings);
  EXPECT_EQ(warnings[0].rfind("line 8: 'has space.example'", 0), 0u) << warnings[0];
  EXPECT_EQ(warnings[1].rfind("line 9: 'x@y/res'", 0), 0u) << warnings[1];
  EXPECT_EQ(warnings[2].rfind("line 10: ", 0), 0u) << warnings[2];
  EXPECT_EQ(warnings[3].rfind("line 11: ", 0), 0u) << warnings[3];

  EXPECT_TRUE(list.matches(jid("spam.example")));
  EXPECT_TRUE(list.matches(jid("bad.example.net")));
  EXPECT_TRUE(list.matches(jid("wild.example")));  // '*.' covers the domain itself too
  EXPECT_TRUE(list.matches(jid("bot@host.example")));
  EXPECT_TRUE(list.matches(jid("last.example")));
}

TEST(SpamBlockList, DomainsMatchTheirSubdomainsJidsOnlyThemselves) {
  BlockList list("example.org");
  ASSERT_TRUE(list.add("spam.example").ok());
  ASSERT_TRUE(list.add("mallory@example.org").ok());
  EXPECT_EQ(*list.match(jid("x@spam.example/r")), "spam.example");
  EXPECT_EQ(*list.match(jid("muc.spam.example")), "spam.example");
  EXPECT_EQ(*list.match(jid("room@a.b.spam.example/nick")), "spam.example");
  EXPECT_EQ(list.match(jid("notspam.example")), nullptr);
  EXPECT_EQ(list.match(jid("spam.example.org")), nullptr);
  EXPECT_EQ(list.match(jid("example")), nullptr);
  EXPECT_EQ(*list.match(jid("Mallory@Example.org/phone")), "mallory@example.org");
  EXPECT_EQ(list.match(jid("alice@example.org")), nullptr);
  EXPECT_EQ(list.match(jid("example.org")), nullptr);
  EXPECT_EQ(list.match(xmpp::Jid()), nullptr);
}

TEST(SpamBlockList, TheServersOwnDomainAndItsParentsAreRefused) {
  BlockList list("chat.example.org");
  EXPECT_FALSE(list.add("chat.example.org").ok());
  EXPECT_FALSE(list.add("*.example.org").ok());
  EXPECT_FALSE(list.add("ORG").ok());
  EXPECT_TRUE(list.add("xchat.example.org").ok());  // not a parent: a sibling
  EXPECT_TRUE(list.add("mallory@chat.example.org").ok());
  EXPECT_TRUE(list.add("sub.chat.example.org").ok());  // a subdomain is someone else
  EXPECT_EQ(list.size(), 3u);
  EXPECT_FALSE(list.matches(jid("alice@chat.example.org")));
  EXPECT_FALSE(list.add("").ok());
  EXPECT_FALSE(list.add("user@*.example").ok());
}

// ---- budgets ----

TEST(SpamTokenBucket, FullAtStartRefillsPerMinuteAndWaitsExactly) {
  TokenBucket b(3, 1000);
  EXPECT_TRUE(b.full(3, 1000));
  EXPECT_TRUE(b.take(3, 1000));
  EXPECT_TRUE(b.take(3, 1000));
  EXPECT_TRUE(b.take(3, 1000));
  EXPECT_FALSE(b.take(3, 1000));
  EXPECT_FALSE(b.full(3, 1000));
  // One token per 20 s at 3 per minute.
  EXPECT_EQ(b.wait_ms(3, 1000), 20000u);
  EXPECT_FALSE(b.take(3, 20999));
  EXPECT_EQ(b.wait_ms(3, 20999), 1u);
  EXPECT_TRUE(b.take(3, 21000));
  EXPECT_FALSE(b.take(3, 21000));
  // A long pause refills to the cap, not beyond.
  EXPECT_TRUE(b.full(3, 10'000'000));
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(b.take(3, 10'000'000)) << i;
  EXPECT_FALSE(b.take(3, 10'000'000));
  // A clock that goes back refills nothing and takes nothing twice.
  EXPECT_FALSE(b.take(3, 5'000'000));
  // 0 is unlimited.
  EXPECT_TRUE(b.take(0, 10'000'000));
}

TEST(SpamTokenBucket, ManyCallsLoseNoRefill) {
  TokenBucket b(60, 0);
  for (int i = 0; i < 60; ++i)
    ASSERT_TRUE(b.take(60, 0));
  // 60 per minute = 1 per s; asking every 100 ms for 10 s gives 10.
  int got = 0;
  for (uint64_t t = 100; t <= 10000; t += 100)
    got += b.take(60, t) ? 1 : 0;
  EXPECT_EQ(got, 10);
}

TEST(SpamTokenBucket, SlowRatesAskedEveryMillisecondStillRefill) {
  TokenBucket b(1, 0);
  ASSERT_TRUE(b.take(1, 0));
  int got = 0;
  for (uint64_t t = 1; t <= 120000; ++t)
    got += b.take(1, t) ? 1 : 0;
  EXPECT_EQ(got, 2);  // at 60 s and at 120 s
}

// ---- the restriction clock ----

TEST(SpamRestriction, OnlyRecordedAccountsWithinTheWindow) {
  EXPECT_EQ(restricted_until(std::nullopt, 3600, 100), std::nullopt);  // older account
  EXPECT_EQ(restricted_until(1000, 0, 1000), std::nullopt);            // off
  EXPECT_EQ(restricted_until(1000, 3600, 1000), std::optional<uint64_t>(4600));
  EXPECT_EQ(restricted_until(1000, 3600, 4599), std::optional<uint64_t>(4600));
  EXPECT_EQ(restricted_until(1000, 3600, 4600), std::nullopt);
  EXPECT_EQ(restricted_until(UINT64_MAX - 5, 3600, 0), std::nullopt);
  auto v = decode_created(encode_created(1'700'000'000));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value(), 1'700'000'000u);
  EXPECT_EQ(encode_created(1).size(), 9u);
  EXPECT_FALSE(decode_created(encode_created(1) + "x").ok());
  EXPECT_FALSE(decode_created("\x02" + encode_created(1).substr(1)).ok());
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc(1'700'000'000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(format_duration(45), "45 s");
  EXPECT_EQ(format_duration(3600), "1 h");
  EXPECT_EQ(format_duration(90061), "1 d 1 h 1 min");
}

// ---- reports ----

TEST(SpamReportCodec, RoundTripKeysInTimeOrderAndCorruptionIsAnError) {
  Report r;
  r.reporter = "bob@example.org";
  r.reported = "mallory@example.org";
  r.reason = std::string(kReasonSpam);
  r.text = "buy \xe2\x9c\x93 now";
  r.micros = 1'700'000'000'123'456;
  r.stanzas = {"<message><body>1</body></message>", "", "<message><body>2</body></message>"};
  std::string v = encode_report(r);
  auto back = decode_report(v);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value(), r);
  EXPECT_EQ(static_cast<uint8_t>(v[0]), kReportVersion);
  for (size_t cut = 0; cut < v.size(); ++cut)
    EXPECT_FALSE(decode_report(v.substr(0, cut)).ok()) << cut;
  EXPECT_FALSE(decode_report(v + "x").ok());
  Report empty;
  auto e = decode_report(encode_report(empty));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.value(), empty);

  EXPECT_EQ(report_key("bob", 0x0102030405060708ull),
            std::string("bob\0r\x01\x02\x03\x04\x05\x06\x07\x08", 13));
  EXPECT_LT(report_key("bob", 255), report_key("bob", 256));
  EXPECT_EQ(report_key("bob", 1).rfind(user_key("bob"), 0), 0u);
  EXPECT_TRUE(valid_reason("urn:xmpp:reporting:abuse"));
  EXPECT_FALSE(valid_reason("urn:xmpp:reporting:other"));
  EXPECT_EQ(reason_name(kReasonAbuse), "abuse");
}

TEST(SpamReportParse, BlockItemReports) {
  xml::Arena arena;
  auto parse = [&](std::string_view text) {
    auto e = xml::parse_fragment(text, arena);
    EXPECT_TRUE(e.ok()) << text;
    return blocking::parse_report(*e.value());
  };
  auto none = parse("<item xmlns='urn:xmpp:blocking' jid='a@b'/>");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto ok = parse(
      "<item xmlns='urn:xmpp:blocking' jid='a@b'><report xmlns='urn:xmpp:reporting:1' "
      "reason='urn:xmpp:reporting:spam'><stanza-id xmlns='urn:xmpp:sid:0' by='x' id='1'/>"
      "<text xml:lang='en'>first</text><text xml:lang='de'>zweite</text></report></item>");
  ASSERT_TRUE(ok.ok());
  ASSERT_TRUE(ok->has_value());
  EXPECT_EQ((*ok)->reason, "urn:xmpp:reporting:spam");
  EXPECT_EQ((*ok)->text, "first");
  auto no_text = parse(
      "<item xmlns='urn:xmpp:blocking' jid='a@b'><report xmlns='urn:xmpp:reporting:1' "
      "reason='urn:xmpp:reporting:abuse'/></item>");
  ASSERT_TRUE(no_text.ok());
  EXPECT_EQ((*no_text)->text, "");
  // Malformed.
  EXPECT_FALSE(parse("<item xmlns='urn:xmpp:blocking' jid='a@b'>"
                     "<report xmlns='urn:xmpp:reporting:1'/></item>")
                   .ok());
  EXPECT_FALSE(parse("<item xmlns='urn:xmpp:blocking' jid='a@b'>"
                     "<report xmlns='urn:xmpp:reporting:1' reason='spam'/></item>")
                   .ok());
  EXPECT_FALSE(parse("<item xmlns='urn:xmpp:blocking' jid='a@b'>"
                     "<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'/>"
                     "<report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'/>"
                     "</item>")
                   .ok());
  std::string long_text(blocking::kMaxReportText + 1, 'x');
  EXPECT_FALSE(parse("<item xmlns='urn:xmpp:blocking' jid='a@b'><report "
                     "xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'><text>" +
                     long_text + "</text></report></item>")
                   .ok());
  // A report of another namespace (XEP-0377 v0) is not ours.
  auto old = parse(
      "<item xmlns='urn:xmpp:blocking' jid='a@b'><report xmlns='urn:xmpp:reporting:0'>"
      "<spam/></report></item>");
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->has_value());
}

// ---- the module on the real host pipeline ----

class SpamModuleTest : public test::HostFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(env_.open("hearth-spam", Host::all_tables(), 4 << 20));
    config_.spam.block = {"spam.example", "mallory@example.org"};
    config_.limits.stranger_messages_per_minute = 2;
    config_.limits.subscriptions_per_minute = 1;
    config_.admins = {"admin@example.org"};
    modules_ = {&kModule_roster, &kModule_mam, &kModule_spam};
  }
  void start() {
    ASSERT_NO_FATAL_FAILURE(start_host());
    host_->set_users({"alice", "bob", "mallory", "admin"});
    for (FakeSession* s : {&alice_, &bob_, &mallory_, &admin_}) {
      router_.bind(s);
      s->set_presence(true, 0);
    }
  }
  void TearDown() override {
    for (FakeSession* s : {&alice_, &bob_, &mallory_, &admin_, &carol_})
      router_.unbind(s);
    host_.reset();
  }
  xml::Element& message(std::string_view from, std::string_view to, std::string_view body = "hi") {
    return parse("<message type='chat' id='m" + std::to_string(++seq_) + "' from='" +
                 std::string(from) + "' to='" + std::string(to) + "'><body>" + std::string(body) +
                 "</body></message>");
  }
  size_t table_size(std::string_view table) {
    auto txn = env_->read();
    EXPECT_TRUE(txn.ok());
    size_t n = 0;
    EXPECT_TRUE(txn->for_each(env_->db(table).value(), "",
                              [&](std::string_view, std::string_view) {
                                ++n;
                                return true;
                              })
                    .ok());
    return n;
  }

  int seq_ = 0;
  FakeSession alice_{"alice@example.org/a"}, bob_{"bob@example.org/b"},
      mallory_{"mallory@example.org/m"}, admin_{"admin@example.org/x"},
      carol_{"carol@example.org/c"};
};

TEST_F(SpamModuleTest, InboundFromABlockedRemoteDomainNeverArrivesNorIsArchived) {
  start();
  // As s2s will hand them over: remote senders, no local origin.
  host_->send(message("spammer@muc.spam.example/x", "alice@example.org"));
  host_->send(
      parse("<presence from='spammer@spam.example/x' to='alice@example.org' type='subscribe'/>"));
  host_->send(
      parse("<iq type='get' id='q1' from='spammer@spam.example/x' "
            "to='alice@example.org/a'><ping xmlns='urn:xmpp:ping'/></iq>"));
  host_->send(message("spammer@SPAM.example/x", "alice@example.org/a"));
  EXPECT_TRUE(alice_.received.empty()) << ::testing::PrintToString(alice_.received);
  host_->end_turn();
  EXPECT_EQ(table_size("archive"), 0u);
  // Others still arrive (and are archived).
  host_->send(message("friend@good.example/x", "alice@example.org"));
  host_->end_turn();  // the archive commits what a turn archived at its end
  ASSERT_EQ(alice_.received.size(), 1u);
  EXPECT_NE(alice_.received[0].find("friend@good.example"), std::string::npos);
  EXPECT_GT(table_size("archive"), 0u);
}

TEST_F(SpamModuleTest, BlockedLocalAccountIsCutOffBothWays) {
  start();
  host_->route(message("mallory@example.org/m", "alice@example.org"), mallory_);
  EXPECT_TRUE(alice_.received.empty());
  ASSERT_EQ(mallory_.received.size(), 1u);
  EXPECT_NE(mallory_.last().find("type='error'"), std::string::npos) << mallory_.last();
  EXPECT_NE(mallory_.last().find("<not-allowed"), std::string::npos) << mallory_.last();
  // Mallory's own account and the server are still reachable.
  host_->route(message("mallory@example.org/m", "mallory@example.org/m"), mallory_);
  EXPECT_EQ(mallory_.count("<body>hi</body>"), 1u);

  host_->route(message("alice@example.org/a", "mallory@example.org"), alice_);
  ASSERT_EQ(alice_.received.size(), 1u);
  EXPECT_NE(alice_.last().find("<not-allowed"), std::string::npos) << alice_.last();
  host_->route(message("alice@example.org/a", "x@spam.example"), alice_);
  ASSERT_EQ(alice_.received.size(), 2u);
  EXPECT_NE(alice_.last().find("<not-allowed"), std::string::npos) << alice_.last();
  // Presence is dropped without an answer.
  host_->route(parse("<presence from='alice@example.org/a' to='x@spam.example'/>"), alice_);
  EXPECT_EQ(alice_.received.size(), 2u);
  // Presence the server sends for mallory (a broadcast) is dropped too.
  host_->send(parse("<presence from='mallory@example.org/m' to='alice@example.org'/>"));
  EXPECT_EQ(alice_.received.size(), 2u);
  EXPECT_EQ(mallory_.count("<not-allowed"), 1u);
}

TEST_F(SpamModuleTest, StrangerBudgetSparesContactsAndSubscriptionsHaveTheirOwn) {
  start();
  host_->route(parse("<iq type='set' id='r1' from='alice@example.org/a'><query "
                     "xmlns='jabber:iq:roster'><item jid='admin@example.org'/></query></iq>"),
               alice_);
  alice_.received.clear();
  for (int i = 0; i < 3; ++i)
    host_->route(message("alice@example.org/a", "bob@example.org"), alice_);
  EXPECT_EQ(bob_.count("<body>hi</body>"), 2u);
  ASSERT_EQ(alice_.received.size(), 1u);
  EXPECT_NE(alice_.last().find("<error type='wait'><policy-violation"), std::string::npos)
      << alice_.last();
  EXPECT_NE(alice_.last().find("at most 2 per minute"), std::string::npos) << alice_.last();
  // A contact is no stranger.
  for (int i = 0; i < 5; ++i)
    host_->route(message("alice@example.org/a", "admin@example.org"), alice_);
  EXPECT_EQ(admin_.count("<body>hi</body>"), 5u);
  EXPECT_EQ(alice_.received.size(), 1u);

  host_->route(parse("<presence from='bob@example.org/b' to='alice@example.org' "
                     "type='subscribe'/>"),
               bob_);
  EXPECT_EQ(alice_.count("type='subscribe'"), 1u);
  host_->route(parse("<presence from='bob@example.org/b' to='admin@example.org' "
                     "type='subscribe'/>"),
               bob_);
  EXPECT_EQ(admin_.count("type='subscribe'"), 0u);
  ASSERT_FALSE(bob_.received.empty());
  EXPECT_NE(bob_.last().find("<presence"), std::string::npos) << bob_.last();
  EXPECT_NE(bob_.last().find("policy-violation"), std::string::npos) << bob_.last();
}

TEST_F(SpamModuleTest, NewAccountsMayOnlyMessageContactsForAWhile) {
  config_.spam.new_account_strangers_after = 3600;
  start();
  host_->user_created("carol");  // fires AccountEvent::kCreated
  router_.bind(&carol_);
  carol_.set_presence(true, 0);
  host_->route(message("carol@example.org/c", "alice@example.org"), carol_);
  EXPECT_TRUE(alice_.received.empty());
  ASSERT_EQ(carol_.received.size(), 1u);
  EXPECT_NE(carol_.last().find("policy-violation"), std::string::npos) << carol_.last();
  EXPECT_NE(carol_.last().find("for the first 1 h; you may message others from "),
            std::string::npos)
      << carol_.last();
  host_->route(parse("<iq type='set' id='r1' from='carol@example.org/c'><query "
                     "xmlns='jabber:iq:roster'><item jid='alice@example.org'/></query></iq>"),
               carol_);
  host_->route(message("carol@example.org/c", "alice@example.org"), carol_);
  EXPECT_EQ(alice_.count("<body>hi</body>"), 1u);
  // Accounts without a record (older) are not restricted.
  host_->route(message("bob@example.org/b", "alice@example.org"), bob_);
  EXPECT_EQ(alice_.count("<body>hi</body>"), 2u);
}

TEST_F(SpamModuleTest, ReportIsStoredWithTheArchiveExcerptAndTheAdminsHear) {
  config_.spam.block.clear();
  config_.limits.stranger_messages_per_minute = 100;
  start();
  host_->route(message("alice@example.org/a", "bob@example.org", "first"), alice_);
  host_->route(message("mallory@example.org/m", "bob@example.org", "spam one"), mallory_);
  host_->route(message("mallory@example.org/m", "bob@example.org", "spam two"), mallory_);
  auto* service = host_->find<SpamReportService>();
  ASSERT_NE(service, nullptr);
  service->report(jid("bob@example.org/b"), jid("mallory@example.org"), kReasonSpam, "go away");

  auto txn = env_->read();
  ASSERT_TRUE(txn.ok());
  std::vector<Report> reports;
  ASSERT_TRUE(txn->for_each(env_->db(kReportsTable).value(), report_prefix("bob"),
                            [&](std::string_view, std::string_view v) {
                              auto r = decode_report(v);
                              EXPECT_TRUE(r.ok());
                              if (r.ok()) reports.push_back(r.value());
                              return true;
                            })
                  .ok());
  txn->abort();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].reporter, "bob@example.org");
  EXPECT_EQ(reports[0].reported, "mallory@example.org");
  EXPECT_EQ(reports[0].text, "go away");
  ASSERT_EQ(reports[0].stanzas.size(), 2u);
  EXPECT_NE(reports[0].stanzas[0].find("spam one"), std::string::npos);
  EXPECT_NE(reports[0].stanzas[1].find("spam two"), std::string::npos);

  ASSERT_EQ(admin_.received.size(), 1u);
  EXPECT_NE(admin_.last().find("from='example.org'"), std::string::npos) << admin_.last();
  EXPECT_NE(admin_.last().find("<body>bob@example.org reported mallory@example.org for spam: go "
                               "away (2 messages kept)</body>"),
            std::string::npos)
      << admin_.last();
}

TEST_F(SpamModuleTest, ReloadRebuildsTheListFromTheConfigAndTheKeptFile) {
  const std::string path = env_.dir() + "/blocklist.txt";
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("file.example\n", f);
    fclose(f);
  }
  config_.spam.block_file = path;
  start();
  auto refused = [&](std::string_view to) {
    size_t before = alice_.count("<not-allowed");
    host_->route(message("alice@example.org/a", to), alice_);
    return alice_.count("<not-allowed") > before;
  };
  EXPECT_TRUE(refused("x@file.example"));
  EXPECT_TRUE(refused("x@spam.example"));
  EXPECT_FALSE(refused("x@new.example"));
  // The file rewritten in place (same inode), a new [spam] block.
  {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("# now\nother.example\n", f);
    fclose(f);
  }
  config_.spam.block = {"new.example"};
  host_->reload(config_);
  EXPECT_FALSE(refused("x@file.example"));
  EXPECT_TRUE(refused("x@other.example"));
  EXPECT_TRUE(refused("x@new.example"));
  EXPECT_FALSE(refused("x@spam.example"));
}

TEST_F(SpamModuleTest, LongReportTextsAreCutOnCharacterBoundaries) {
  config_.spam.block.clear();
  start();
  // 1001 bytes: 'x' then 500 two-byte characters; the notice keeps 1000
  // bytes at most, so the last whole character before byte 1000.
  std::string text = "x";
  for (int i = 0; i < 500; ++i)
    text += "\xc3\xa9";
  host_->find<SpamReportService>()->report(jid("bob@example.org/b"), jid("mallory@example.org"),
                                           kReasonAbuse, text);
  ASSERT_EQ(admin_.received.size(), 1u);
  const std::string& m = admin_.last();
  size_t start = m.find(": x");
  size_t end = m.find(" (0 messages kept)");
  ASSERT_NE(start, std::string::npos) << m;
  ASSERT_NE(end, std::string::npos) << m;
  EXPECT_EQ(m.substr(start + 2, end - start - 2), text.substr(0, 999));
}

}  // namespace
}  // namespace spam
}  // namespace hearth::modules
