// StreamParser::hibernate(): an idle stream frees expat, the arena and the
// scratch buffers, and the next feed() carries on as if nothing happened.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parser_fixture.h"

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HEARTH_TEST_MALLINFO2 1
#endif

namespace hearth::xml {
namespace {

using test::kHeader;

// Records every callback as a line of text, so two runs can be compared
// exactly.
class EventLog : public test::ErrorRecorder {
 public:
  void on_stream_start(const Element& header) override {
    events.push_back("start " + std::string(header.attr("to")));
  }
  void on_stanza(Element& stanza) override {
    std::string s;
    serialize(stanza, &s);
    events.push_back(s);
    ++stanzas;
    if (hook) hook(stanza);
  }
  void on_stream_end() override { events.emplace_back("end"); }
  void on_stream_error(StreamError e, std::string_view text) override {
    events.push_back(std::string("error ") + stream_error_name(e) + " " + std::string(text));
    ErrorRecorder::on_stream_error(e, text);
  }

  std::vector<std::string> events;
  size_t stanzas = 0;
  std::function<void(Element&)> hook;
};

using Fixture = test::ParserFixture<EventLog>;

std::string sized_stanza(size_t total) {
  std::string head = "<message><body>";
  std::string tail = "</body></message>";
  return head + std::string(total - head.size() - tail.size(), 'x') + tail;
}

// A stream with nested children, namespaces declared on the header and on
// stanzas, a prefix of the header used inside a stanza, entities, non-ASCII
// text, attributes in both quote styles and whitespace keepalives.
// `boundaries` gets the offsets where the stream is between stanzas.
std::string sample_stream(std::vector<size_t>* boundaries) {
  const std::string pieces[] = {
      "<message to='juliet@example.com/balcony' type=\"chat\" id='m1'><body>Art thou not "
      "Romeo &amp; a Montague? \xc3\xa9\xe2\x82\xac</body>"
      "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
      " ",
      "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
      "\n\n",
      "<presence><stream:error-like/><show>away</show><status>a &lt;b&gt; "
      "c</status></presence>",
      "<iq type='set' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish "
      "node='n'><item id='i'><entry xmlns='urn:e' xml:lang='fr'>t<b>u</b>v</entry></item>"
      "</publish></pubsub></iq>",
      "\t",
      "<message id='m2'><body>&#x1F600;&#65;</body></message>",
  };
  std::string s = kHeader;
  boundaries->push_back(s.size());
  for (int round = 0; round < 3; ++round) {
    for (const std::string& p : pieces) {
      if (p[0] == '<') {
        s += p;
        boundaries->push_back(s.size());
        continue;
      }
      for (char c : p) {  // whitespace is reported, and so consumed, char by char
        s += c;
        boundaries->push_back(s.size());
      }
    }
  }
  s += "</stream:stream>";
  return s;
}

std::vector<std::string> parse_whole(std::string_view stream) {
  Fixture f;
  EXPECT_TRUE(f.parser.feed(stream));
  return f.rec.events;
}

TEST(StreamParserHibernateTest, FreshParserHoldsNothingUntilFed) {
  Fixture f;
  EXPECT_TRUE(f.parser.hibernating());
  EXPECT_EQ(f.parser.memory_usage(), 0u);
  EXPECT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed(kHeader));
  EXPECT_FALSE(f.parser.hibernating());
  EXPECT_GT(f.parser.memory_usage(), 4096u);
}

TEST(StreamParserHibernateTest, SplitAtEveryOffsetParsesIdentically) {
  std::vector<size_t> boundaries;
  const std::string stream = sample_stream(&boundaries);
  const std::vector<std::string> expected = parse_whole(stream);
  ASSERT_EQ(expected.size(), 1 + 3 * 5 + 1u);
  ASSERT_EQ(expected.back(), "end");
  size_t hibernated = 0;
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    Fixture f;
    ASSERT_TRUE(f.parser.feed(std::string_view(stream).substr(0, cut)));
    bool at_boundary = cut == 0 || cut == stream.size();  // nothing fed; stream ended
    for (size_t b : boundaries)
      at_boundary = at_boundary || b == cut;
    bool slept = f.parser.hibernate();
    // Between stanzas it always can; inside a stanza or a tag it never does.
    EXPECT_EQ(slept, at_boundary) << "cut at " << cut;
    if (slept) {
      ++hibernated;
      EXPECT_EQ(f.parser.memory_usage(), 0u);
      EXPECT_TRUE(f.parser.hibernating());
    }
    ASSERT_TRUE(f.parser.feed(std::string_view(stream).substr(cut))) << "cut at " << cut;
    ASSERT_EQ(f.rec.events, expected) << "cut at " << cut;
  }
  EXPECT_EQ(hibernated, boundaries.size() + 2);
}

TEST(StreamParserHibernateTest, ByteByByteWithHibernateAfterEveryByte) {
  std::vector<size_t> boundaries;
  const std::string stream = sample_stream(&boundaries);
  const std::vector<std::string> expected = parse_whole(stream);
  Fixture f;
  size_t hibernated = 0;
  for (size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(f.parser.feed(std::string_view(stream).substr(i, 1))) << "byte " << i;
    if (f.parser.hibernate()) ++hibernated;
  }
  EXPECT_EQ(f.rec.events, expected);
  // Each boundary, plus after the stream end (input is ignored from then on).
  EXPECT_EQ(hibernated, boundaries.size() + 1);
}

TEST(StreamParserHibernateTest, OddReadsWithHibernateWheneverPossible) {
  // Several stanzas per read, reads ending anywhere: hibernate succeeds only
  // where a read ends between stanzas, and nothing is lost or duplicated.
  std::vector<size_t> boundaries;
  std::string stream = sample_stream(&boundaries);
  const std::vector<std::string> expected = parse_whole(stream);
  for (size_t step : {2u, 3u, 7u, 61u, 113u, 400u}) {
    Fixture f;
    for (size_t off = 0; off < stream.size(); off += step) {
      ASSERT_TRUE(f.parser.feed(std::string_view(stream).substr(off, step)));
      f.parser.hibernate();
    }
    EXPECT_EQ(f.rec.events, expected) << "step " << step;
  }
}

TEST(StreamParserHibernateTest, HibernationsAreCountedOnlyWhenMemoryWasGivenBack) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<message><body>hi"));
  uint64_t before = StreamParser::hibernations();
  EXPECT_FALSE(f.parser.hibernate());  // mid-stanza: refused, not counted
  EXPECT_EQ(StreamParser::hibernations(), before);
  ASSERT_TRUE(f.parser.feed("</body></message>"));
  EXPECT_TRUE(f.parser.hibernate());
  EXPECT_EQ(StreamParser::hibernations(), before + 1);
}

TEST(StreamParserHibernateTest, NotBetweenStanzasItRefuses) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed("<?xml version='1.0'?><stream:str"));
  EXPECT_FALSE(f.parser.hibernate());  // header incomplete
  ASSERT_TRUE(f.parser.feed(std::string(kHeader).substr(32)));
  EXPECT_TRUE(f.parser.hibernate());
  for (const char* partial : {"<mess", "<message>", "<message><body>hi", "<message/>\r",
                              "<message/><", "<message>\xc3"}) {
    Fixture g;
    ASSERT_TRUE(g.parser.feed(std::string(kHeader) + partial)) << partial;
    size_t before = g.parser.memory_usage();
    EXPECT_FALSE(g.parser.hibernate()) << partial;
    EXPECT_FALSE(g.parser.hibernating());
    EXPECT_EQ(g.parser.memory_usage(), before);
  }
  // A trailing CR is held by expat until it knows whether LF follows.
  Fixture h;
  ASSERT_TRUE(h.parser.feed(std::string(kHeader) + "<message/>\r"));
  EXPECT_FALSE(h.parser.hibernate());
  ASSERT_TRUE(h.parser.feed("\n"));
  EXPECT_TRUE(h.parser.hibernate());
  ASSERT_TRUE(h.parser.feed("<presence/>"));
  EXPECT_EQ(h.rec.stanzas, 2u);
}

TEST(StreamParserHibernateTest, StreamPositionCarriesOver) {
  // The UTF-16 byte order mark check applies to the first bytes of a stream
  // only; after a wake-up the parser is still in the middle of the stream.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed(" "));
  EXPECT_FALSE(f.parser.feed("\xff\xfe"));
  EXPECT_EQ(f.rec.error, StreamError::kNotWellFormed);
  Fixture g;
  EXPECT_FALSE(g.parser.feed("\xff\xfe"));
  EXPECT_EQ(g.rec.error, StreamError::kUnsupportedEncoding);
}

TEST(StreamParserHibernateTest, RefusedInsideACallback) {
  Fixture f;
  bool result = true;
  f.rec.hook = [&](Element&) { result = f.parser.hibernate(); };
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<message/><presence/>"));
  EXPECT_FALSE(result);
  EXPECT_EQ(f.rec.stanzas, 2u);
  EXPECT_TRUE(f.parser.hibernate());
}

TEST(StreamParserHibernateTest, HeaderPrefixesResolveAfterWakeUp) {
  Fixture f;
  ASSERT_TRUE(
      f.parser.feed("<S:stream xmlns:S='http://etherx.jabber.org/streams' xmlns='jabber:server' "
                    "xmlns:db='jabber:server:dialback' xmlns:q='urn:x?a=1&amp;b=&apos;2&apos;'"
                    " to='a.example'>"));
  EXPECT_EQ(f.parser.default_ns(), "jabber:server");
  std::string child_ns;
  f.rec.hook = [&](Element& e) {
    Element* c = e.first_child();
    child_ns = c != nullptr ? std::string(c->ns) : std::string(e.ns);
  };
  ASSERT_TRUE(f.parser.hibernate());
  EXPECT_EQ(f.parser.default_ns(), "jabber:server");
  ASSERT_TRUE(f.parser.feed("<db:result from='b.example' to='a.example'>key</db:result>"));
  EXPECT_EQ(child_ns, "jabber:server:dialback");
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed("<message><q:x/></message>"));
  EXPECT_EQ(child_ns, "urn:x?a=1&b='2'");
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed("<message/>"));
  EXPECT_EQ(f.rec.events.back(), "<message xmlns='jabber:server'/>");
  // An undeclared prefix is still an error, and the custom stream prefix
  // still closes the stream.
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed("</S:stream>"));
  EXPECT_EQ(f.rec.events.back(), "end");
  Fixture g;
  ASSERT_TRUE(g.parser.feed(kHeader));
  ASSERT_TRUE(g.parser.hibernate());
  EXPECT_FALSE(g.parser.feed("<db:result/>"));
  EXPECT_EQ(g.rec.error, StreamError::kNotWellFormed);
}

// With `limits`, after a wake-up `fits` (if any) is taken; after another,
// `over` is refused for `why`.
void expect_limit_after_wake_up(const ParserLimits& limits, const std::string& fits,
                                const std::string& over, const char* why) {
  SCOPED_TRACE(why);
  Fixture f(limits);
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.hibernate());
  if (!fits.empty()) {
    ASSERT_TRUE(f.parser.feed(fits));
    ASSERT_TRUE(f.parser.hibernate());
  }
  EXPECT_FALSE(f.parser.feed(over));
  EXPECT_EQ(f.rec.error_text, why);
}

TEST(StreamParserHibernateTest, LimitsStillEnforcedAfterWakeUp) {
  ParserLimits l;
  l.max_stanza_size = 1000;
  l.max_depth = 4;
  l.max_attributes = 5;  // the header has 3 and 2 namespace declarations
  l.max_attribute_size = 20;
  {
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.hibernate());
    ASSERT_TRUE(f.parser.feed(sized_stanza(1000)));  // exactly the limit
    ASSERT_TRUE(f.parser.hibernate());
    EXPECT_FALSE(f.parser.feed(sized_stanza(1001)));
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_EQ(f.rec.stanzas, 1u);
  }
  {
    // Cut off while arriving, after a wake-up, long before it completes.
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.hibernate());
    std::string big = sized_stanza(100000);
    size_t off = 0;
    while (off < big.size() && f.parser.feed(std::string_view(big).substr(off, 100)))
      off += 100;
    EXPECT_EQ(f.rec.error_text, "stanza too large");
    EXPECT_LE(off, 1100u);
  }
  {
    // Whitespace keepalives after a wake-up are not held against the next stanza.
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.hibernate());
    EXPECT_TRUE(f.parser.feed(std::string(999, ' ')));
    ASSERT_TRUE(f.parser.hibernate());
    EXPECT_TRUE(f.parser.feed("<a/>"));
    EXPECT_EQ(f.rec.stanzas, 1u);
  }
  expect_limit_after_wake_up(l, "<a><b><c><d/></c></b></a>", "<a><b><c><d><e/></d></c></b></a>",
                             "elements nested too deeply");
  expect_limit_after_wake_up(l, "<a v='1' w='1' x='1' y='2' z='3'/>",
                             "<a u='0' v='1' w='1' x='1' y='2' z='3'/>", "too many attributes");
  expect_limit_after_wake_up(l, "", "<a x='" + std::string(21, 'v') + "'/>",
                             "attribute value too large");
  {
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.hibernate());
    EXPECT_FALSE(f.parser.feed("text"));
    EXPECT_EQ(f.rec.error, StreamError::kBadFormat);
  }
  for (const char* forbidden : {"<?pi x?>", "<!-- c -->", "<a>&ent;</a>"}) {
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.hibernate());
    EXPECT_FALSE(f.parser.feed(forbidden)) << forbidden;
    EXPECT_NE(f.rec.error, StreamError::kNone) << forbidden;
  }
}

TEST(StreamParserHibernateTest, ResetWhileHibernatingAndFromACallbackAfterWakeUp) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.hibernate());
  f.parser.reset();
  EXPECT_EQ(f.parser.default_ns(), "");
  EXPECT_TRUE(f.parser.hibernate());  // a restarted stream with nothing fed
  ASSERT_TRUE(
      f.parser.feed("<stream:stream xmlns='jabber:server' "
                    "xmlns:stream='http://etherx.jabber.org/streams' to='b'>"));
  EXPECT_EQ(f.parser.default_ns(), "jabber:server");
  ASSERT_TRUE(f.parser.hibernate());
  // SASL success after a wake-up: the rest of the chunk belongs to the old
  // stream, the next feed starts a new one (XML declaration allowed again).
  f.rec.hook = [&](Element& e) {
    if (e.name == "success") f.parser.reset();
  };
  ASSERT_TRUE(f.parser.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><dropped/><bad"));
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<iq type='set' id='b'/>"));
  ASSERT_TRUE(f.parser.hibernate());
  ASSERT_TRUE(f.parser.feed("</stream:stream>"));
  const std::vector<std::string> expected = {
      "start example.com",
      "start b",
      "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
      "start example.com",
      "<iq type='set' id='b'/>",
      "end",
  };
  EXPECT_EQ(f.rec.events, expected);
  EXPECT_EQ(f.rec.error, StreamError::kNone);
}

TEST(StreamParserHibernateTest, FailedOrEndedStreamHibernatesAndResetRevivesIt) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  EXPECT_FALSE(f.parser.feed("<a></b>"));
  EXPECT_TRUE(f.parser.hibernate());
  EXPECT_EQ(f.parser.memory_usage(), 0u);
  EXPECT_FALSE(f.parser.feed("<a/>"));
  f.parser.reset();
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<a/></stream:stream>"));
  EXPECT_TRUE(f.parser.hibernate());
  EXPECT_TRUE(f.parser.feed("<ignored/>"));
  EXPECT_EQ(f.rec.events.back(), "end");
  EXPECT_EQ(f.rec.stanzas, 1u);
}

TEST(StreamParserHibernateTest, RotationStillWorksWithWakeUps) {
  // 1.5 MiB of stanzas (several internal rotations) with a hibernation after
  // every read that ends between stanzas; memory stays bounded.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  size_t count = 0;
  std::string all = test::numbered_messages(1500000, 300, &count, [](size_t n) {
    return "<e" + std::to_string(n) + " xmlns='urn:n" + std::to_string(n) + "'/>";
  });
  size_t slept = 0;
  size_t peak = 0;
  for (size_t off = 0; off < all.size(); off += 1733) {
    ASSERT_TRUE(f.parser.feed(std::string_view(all).substr(off, 1733)));
    peak = std::max(peak, f.parser.memory_usage());
    if (f.parser.hibernate()) ++slept;
  }
  EXPECT_GT(slept, 0u);
  EXPECT_EQ(f.rec.stanzas, count);
  EXPECT_EQ(f.rec.error, StreamError::kNone);
  EXPECT_LT(peak, 1u << 20);
  EXPECT_EQ(f.rec.events.back().rfind("<message id='" + std::to_string(count - 1) + "'><e", 0), 0u);
}

// What an idle stream holds, measured in the allocator: expat, the arena and
// the scratch buffers while awake; under 512 bytes per stream once
// hibernating (the parser's own state and the stream header's declarations).
class Counter : public StreamParser::Handler {
 public:
  void on_stream_start(const Element&) override {}
  void on_stanza(Element&) override { ++stanzas; }
  void on_stream_end() override {}
  void on_stream_error(StreamError, std::string_view) override { ++errors; }
  size_t stanzas = 0;
  size_t errors = 0;
};

TEST(StreamParserHibernateTest, HeapHeldByAnIdleStream) {
  constexpr size_t kStreams = 1000;
  Counter rec;
  std::vector<std::unique_ptr<StreamParser>> parsers;
  parsers.reserve(kStreams);
  const std::string stanza =
      "<message to='juliet@example.com/balcony' type='chat' id='m1'><body>hi</body>"
      "<active xmlns='http://jabber.org/protocol/chatstates'/></message>";
#ifdef HEARTH_TEST_MALLINFO2
  auto in_use = [] { return mallinfo2().uordblks; };
  // Warm up the allocator's free lists for every size involved.
  for (int i = 0; i < 3; ++i) {
    StreamParser warm(&rec, ParserLimits{});
    ASSERT_TRUE(warm.feed(std::string(kHeader) + stanza));
    ASSERT_TRUE(warm.hibernate());
  }
  size_t before = in_use();
#endif
  const size_t warm_stanzas = rec.stanzas;
  size_t awake_usage = 0;
  for (size_t i = 0; i < kStreams; ++i) {
    parsers.push_back(std::make_unique<StreamParser>(&rec, ParserLimits{}));
    ASSERT_TRUE(parsers.back()->feed(kHeader));
    ASSERT_TRUE(parsers.back()->feed(stanza));
    awake_usage += parsers.back()->memory_usage();
  }
  EXPECT_GT(awake_usage / kStreams, 8192u);
#ifdef HEARTH_TEST_MALLINFO2
  size_t awake = in_use() - before;
  EXPECT_GT(awake / kStreams, awake_usage / kStreams);
#endif
  for (auto& p : parsers) {
    ASSERT_TRUE(p->hibernate());
    EXPECT_EQ(p->memory_usage(), 0u);
  }
#ifdef HEARTH_TEST_MALLINFO2
  size_t asleep = in_use() - before;
  EXPECT_LT(asleep / kStreams, 512u) << "awake " << awake / kStreams;
  RecordProperty("heap_per_stream_awake", static_cast<int>(awake / kStreams));
  RecordProperty("heap_per_stream_hibernating", static_cast<int>(asleep / kStreams));
#endif
  // And every one of them still works.
  for (auto& p : parsers)
    ASSERT_TRUE(p->feed(stanza));
  EXPECT_EQ(rec.stanzas - warm_stanzas, 2 * kStreams);
  EXPECT_EQ(rec.errors, 0u);
}

}  // namespace
}  // namespace hearth::xml
