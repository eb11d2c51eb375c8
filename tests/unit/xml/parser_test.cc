#include "xml/parser.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "parser_fixture.h"

namespace hearth::xml {
namespace {

using test::kHeader;

// Records every callback; stanzas are serialised during the call (the
// element is only valid then).
class Recorder : public test::ErrorRecorder {
 public:
  void on_stream_start(const Element& header) override {
    ++starts;
    header_name = std::string(header.name);
    header_ns = std::string(header.ns);
    header_to = std::string(header.attr("to"));
    header_version = std::string(header.attr("version"));
    header_lang.clear();
    for (const Attr& a : header.attrs) {
      if (a.ns == kNsXml && a.name == "lang") header_lang = std::string(a.value);
    }
    if (on_start_hook) on_start_hook(header);
  }
  void on_stanza(Element& stanza) override {
    EXPECT_EQ(error, StreamError::kNone) << "stanza after an error";
    EXPECT_EQ(ends, 0) << "stanza after the stream end";
    std::string s;
    serialize(stanza, &s);
    stanzas.push_back(s);
    if (on_stanza_hook) on_stanza_hook(stanza);
  }
  void on_stream_end() override { ++ends; }
  void on_stream_error(StreamError e, std::string_view text) override {
    EXPECT_EQ(error, StreamError::kNone) << "second error";
    ++errors;
    ErrorRecorder::on_stream_error(e, text);
  }

  int starts = 0;
  int ends = 0;
  int errors = 0;
  std::string header_name, header_ns, header_to, header_version, header_lang;
  std::vector<std::string> stanzas;
  std::function<void(Element&)> on_stanza_hook;
  std::function<void(const Element&)> on_start_hook;
};

using Fixture = test::ParserFixture<Recorder>;

// Feeds a whole stream and returns the error (kNone if none).
StreamError parse_all(std::string_view data, ParserLimits limits = {}) {
  Fixture f(limits);
  bool ok = f.parser.feed(data);
  EXPECT_EQ(ok, f.rec.error == StreamError::kNone);
  EXPECT_EQ(f.parser.failed(), !ok);
  return f.rec.error;
}

TEST(StreamParserTest, StreamHeader) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  EXPECT_EQ(f.rec.starts, 1);
  EXPECT_EQ(f.rec.header_name, "stream");
  EXPECT_EQ(f.rec.header_ns, kNsStream);
  EXPECT_EQ(f.rec.header_to, "example.com");
  EXPECT_EQ(f.rec.header_version, "1.0");
  EXPECT_EQ(f.rec.header_lang, "en");
  EXPECT_EQ(f.parser.default_ns(), "jabber:client");
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, HeaderWithoutXmlDeclarationAndOtherPrefix) {
  Fixture f;
  ASSERT_TRUE(
      f.parser.feed("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' "
                    "from='a.example'>"));
  EXPECT_EQ(f.rec.starts, 1);
  EXPECT_EQ(f.rec.header_ns, kNsStream);
  EXPECT_EQ(f.parser.default_ns(), "jabber:server");
  ASSERT_TRUE(f.parser.feed("<message/></s:stream>"));
  ASSERT_EQ(f.rec.stanzas.size(), 1u);
  EXPECT_EQ(f.rec.stanzas[0], "<message xmlns='jabber:server'/>");
  EXPECT_EQ(f.rec.ends, 1);
}

TEST(StreamParserTest, StanzaWithChildNamespaces) {
  Fixture f;
  std::string seen_child_ns;
  std::string seen_ns;
  f.rec.on_stanza_hook = [&](Element& s) {
    seen_ns = std::string(s.ns);
    Element* q = s.child("query", "jabber:iq:roster");
    ASSERT_NE(q, nullptr);
    seen_child_ns = std::string(q->ns);
    EXPECT_EQ(s.attr("type"), "get");
    EXPECT_EQ(s.attr("id"), "r1");
    EXPECT_EQ(s.child("query", "jabber:client"), nullptr);
  };
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.feed("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"));
  ASSERT_EQ(f.rec.stanzas.size(), 1u);
  EXPECT_EQ(seen_ns, "jabber:client");
  EXPECT_EQ(seen_child_ns, "jabber:iq:roster");
}

TEST(StreamParserTest, PrefixedChildAndAttributes) {
  Fixture f;
  f.rec.on_stanza_hook = [&](Element& s) {
    Element* c = s.child("c", "urn:p");
    ASSERT_NE(c, nullptr);
    ASSERT_EQ(c->attrs.size(), 3u);
    EXPECT_EQ(c->attr("plain"), "1");
    EXPECT_EQ(c->attrs[1].ns, "urn:p");
    EXPECT_EQ(c->attrs[1].name, "q");
    EXPECT_EQ(c->attrs[2].ns, kNsXml);
    EXPECT_EQ(c->attrs[2].name, "lang");
    EXPECT_EQ(c->attrs[2].value, "fr");
  };
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.feed(
      "<message xmlns:p='urn:p'><p:c plain='1' p:q='2' xml:lang='fr'>t</p:c></message>"));
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
}

TEST(StreamParserTest, TextAndPredefinedEntities) {
  Fixture f;
  std::string body;
  f.rec.on_stanza_hook = [&](Element& s) { body = s.child("body")->text(); };
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(
      f.parser.feed("<message><body>a &amp; b &lt; c &gt; &apos;&quot; &#x263A;&#65;"
                    "<![CDATA[<raw>]]>\nline</body></message>"));
  EXPECT_EQ(body,
            "a & b < c > '\" \xE2\x98\xBA"
            "A<raw>\nline");
}

TEST(StreamParserTest, SeveralStanzasInOneChunk) {
  Fixture f;
  std::string data = std::string(kHeader) +
                     "<presence/><message to='a@b'><body>1</body></message> \n"
                     "<iq type='result' id='x'/>";
  ASSERT_TRUE(f.parser.feed(data));
  ASSERT_EQ(f.rec.stanzas.size(), 3u);
  EXPECT_EQ(f.rec.stanzas[0], "<presence/>");
  EXPECT_EQ(f.rec.stanzas[1], "<message to='a@b'><body>1</body></message>");
  EXPECT_EQ(f.rec.stanzas[2], "<iq type='result' id='x'/>");
}

// A complete stanza must be delivered by the feed() that completes it:
// expat's reparse deferral (2.6+, Debian backport) must be off.
TEST(StreamParserTest, StanzaDeliveredByTheFeedThatCompletesIt) {
  ParserLimits l;
  l.max_attribute_size = 65536;
  Fixture f(l);
  ASSERT_TRUE(f.parser.feed(kHeader));
  ASSERT_TRUE(f.parser.feed("<message><body>hi</body></message>"));
  EXPECT_EQ(f.rec.stanzas.size(), 1u);

  // A large token completed by a tiny read is the case deferral delays.
  std::string big = "<message id='" + std::string(20000, 'a') + "'><body>x</body></message>";
  ASSERT_TRUE(f.parser.feed(std::string_view(big).substr(0, big.size() - 1)));
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
  ASSERT_TRUE(f.parser.feed(">"));
  EXPECT_EQ(f.rec.stanzas.size(), 2u);

  std::string big_tag = "<presence id='" + std::string(20000, 'b') + "'/>";
  ASSERT_TRUE(f.parser.feed(std::string_view(big_tag).substr(0, big_tag.size() - 1)));
  EXPECT_EQ(f.rec.stanzas.size(), 2u);
  ASSERT_TRUE(f.parser.feed(">"));
  EXPECT_EQ(f.rec.stanzas.size(), 3u);
}

TEST(StreamParserTest, ByteByByteDeliversEachStanzaAtItsLastByte) {
  Fixture f;
  std::string header = kHeader;
  for (char c : header)
    ASSERT_TRUE(f.parser.feed(std::string_view(&c, 1)));
  EXPECT_EQ(f.rec.starts, 1);
  const std::string stanzas[] = {
      "<message to='a@b' id='" + std::string(3000, 'm') + "'><body>caf\xC3\xA9</body></message>",
      "<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>",
      "<presence/>",
  };
  size_t expected = 0;
  for (const std::string& s : stanzas) {
    for (size_t i = 0; i < s.size(); ++i) {
      ASSERT_TRUE(f.parser.feed(std::string_view(&s[i], 1)));
      ASSERT_EQ(f.rec.stanzas.size(), i + 1 == s.size() ? expected + 1 : expected) << i;
    }
    ++expected;
    EXPECT_EQ(f.rec.stanzas.back(), s);
    ASSERT_TRUE(f.parser.feed(" "));  // keepalive
  }
  std::string end = "</stream:stream>";
  for (size_t i = 0; i < end.size(); ++i) {
    ASSERT_TRUE(f.parser.feed(std::string_view(&end[i], 1)));
    EXPECT_EQ(f.rec.ends, i + 1 == end.size() ? 1 : 0);
  }
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, WhitespaceKeepalivesAreIgnored) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  for (int i = 0; i < 1000; ++i)
    ASSERT_TRUE(f.parser.feed(i % 2 ? " " : "\r\n\t"));
  ASSERT_TRUE(f.parser.feed("<presence/>"));
  // Far more whitespace over a long session than any single limit.
  std::string ws(8192, ' ');
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(f.parser.feed(ws));
  ASSERT_TRUE(f.parser.feed("<presence/>"));
  EXPECT_EQ(f.rec.stanzas.size(), 2u);
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, TextBetweenStanzasIsBadFormat) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  EXPECT_FALSE(f.parser.feed("  hello <presence/>"));
  EXPECT_EQ(f.rec.error, StreamError::kBadFormat);
  EXPECT_TRUE(f.rec.stanzas.empty());
}

TEST(StreamParserTest, StreamEnd) {
  Fixture f;
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<presence/></stream:stream>"));
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
  EXPECT_EQ(f.rec.ends, 1);
  // Nothing follows the end, whatever arrives.
  EXPECT_TRUE(f.parser.feed("<message/>garbage<"));
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
  EXPECT_EQ(f.rec.ends, 1);
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, ErrorStopsAllCallbacks) {
  Fixture f;
  EXPECT_FALSE(f.parser.feed(std::string(kHeader) + "<a></b><presence/></stream:stream>"));
  EXPECT_EQ(f.rec.errors, 1);
  EXPECT_TRUE(f.parser.failed());
  EXPECT_FALSE(f.parser.feed("<presence/>"));
  EXPECT_EQ(f.rec.errors, 1);
  EXPECT_TRUE(f.rec.stanzas.empty());
  EXPECT_EQ(f.rec.ends, 0);
}

TEST(StreamParserTest, RestartFromInsideOnStanza) {
  Fixture f;
  f.rec.on_stanza_hook = [&](Element& s) {
    if (s.name == "success") f.parser.reset();
  };
  // Everything after <success/> in this chunk belongs to the old stream and
  // is dropped, including what would be an error.
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) +
                            "<auth/><success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
                            "<dropped/></stream:stream><bad"));
  ASSERT_EQ(f.rec.stanzas.size(), 2u);
  EXPECT_EQ(f.rec.ends, 0);
  EXPECT_EQ(f.rec.errors, 0);
  EXPECT_FALSE(f.parser.failed());
  EXPECT_EQ(f.parser.default_ns(), "");
  // The next bytes start a new document, XML declaration allowed again.
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<iq type='set' id='b'/>"));
  EXPECT_EQ(f.rec.starts, 2);
  ASSERT_EQ(f.rec.stanzas.size(), 3u);
  EXPECT_EQ(f.rec.stanzas[2], "<iq type='set' id='b'/>");
  ASSERT_TRUE(f.parser.feed("</stream:stream>"));
  EXPECT_EQ(f.rec.ends, 1);
}

TEST(StreamParserTest, RestartFromInsideOnStreamStartAndFromOutside) {
  Fixture f;
  bool restart = true;
  f.rec.on_start_hook = [&](const Element&) {
    if (restart) f.parser.reset();
    restart = false;
  };
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<presence/>"));
  EXPECT_EQ(f.rec.starts, 1);
  EXPECT_TRUE(f.rec.stanzas.empty());
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<presence/>"));
  EXPECT_EQ(f.rec.starts, 2);
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
  // Outside a callback: immediate; also clears a failure.
  ASSERT_FALSE(f.parser.feed("<oops></x>"));  // not-well-formed inside the open stream
  f.parser.reset();
  EXPECT_FALSE(f.parser.failed());
  f.rec.error = StreamError::kNone;
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + "<presence/>"));
  EXPECT_EQ(f.rec.starts, 3);
  EXPECT_EQ(f.rec.stanzas.size(), 2u);
}

TEST(StreamParserTest, ForbiddenConstructsAreRestrictedXml) {
  const std::string h = kHeader;
  const std::string cases[] = {
      "<?xml version='1.0'?><!DOCTYPE stream:stream>" + h.substr(21),
      "<!DOCTYPE x [<!ENTITY e 'v'>]><x>&e;</x>",
      "<!DOCTYPE x SYSTEM 'http://example.com/x.dtd'><x/>",
      "<?xml version='1.0'?><?pi data?>" + h.substr(21),
      h + "<?pi data?>",
      h + "<message><?pi data?></message>",
      "<?xml version='1.0'?><!-- c -->" + h.substr(21),
      h + "<!-- c -->",
      h + "<message><body>a<!-- c -->b</body></message>",
  };
  for (const std::string& c : cases) {
    Fixture f;
    EXPECT_FALSE(f.parser.feed(c)) << c;
    EXPECT_EQ(f.rec.error, StreamError::kRestrictedXml) << c;
    EXPECT_TRUE(f.rec.stanzas.empty()) << c;
  }
}

TEST(StreamParserTest, BillionLaughsRefused) {
  std::string doc = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>";
  for (int i = 1; i <= 9; ++i) {
    doc += "<!ENTITY lol" + std::to_string(i) + " '";
    for (int j = 0; j < 10; ++j)
      doc += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    doc += "'>";
  }
  doc +=
      "]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"
      "<message><body>&lol9;</body></message>";
  Fixture f;
  EXPECT_FALSE(f.parser.feed(doc));
  EXPECT_EQ(f.rec.error, StreamError::kRestrictedXml);
  EXPECT_EQ(f.rec.starts, 0);
  EXPECT_LT(f.parser.memory_usage(), 256u * 1024);
}

TEST(StreamParserTest, UndefinedEntityIsNotWellFormed) {
  EXPECT_EQ(parse_all(std::string(kHeader) + "<message>&foo;</message>"),
            StreamError::kNotWellFormed);
  EXPECT_EQ(parse_all(std::string(kHeader) + "<message a='&foo;'/>"), StreamError::kNotWellFormed);
}

TEST(StreamParserTest, Encoding) {
  const std::string rest = std::string(kHeader).substr(21) + "<presence/>";
  EXPECT_EQ(parse_all("<?xml version='1.0' encoding='UTF-8'?>" + rest), StreamError::kNone);
  EXPECT_EQ(parse_all("<?xml version='1.0' encoding='utf-8'?>" + rest), StreamError::kNone);
  EXPECT_EQ(parse_all("\xEF\xBB\xBF" + rest), StreamError::kNone);  // UTF-8 BOM
  EXPECT_EQ(parse_all("<?xml version='1.0' encoding='ISO-8859-1'?>" + rest),
            StreamError::kUnsupportedEncoding);
  EXPECT_EQ(parse_all("<?xml version='1.0' encoding='UTF-16'?>" + rest),
            StreamError::kUnsupportedEncoding);
  // UTF-16 input (with either BOM, or none) is refused although expat
  // would accept it.
  std::string le = "\xFF\xFE", be = "\xFE\xFF", bare;
  for (char c : rest) {
    le += c;
    le += '\0';
    be += '\0';
    be += c;
    bare += c;
    bare += '\0';
  }
  EXPECT_EQ(parse_all(le), StreamError::kUnsupportedEncoding);
  EXPECT_EQ(parse_all(be), StreamError::kUnsupportedEncoding);
  EXPECT_EQ(parse_all(bare), StreamError::kUnsupportedEncoding);
  {
    Fixture f;
    EXPECT_FALSE(f.parser.feed("\xFF"));
    EXPECT_EQ(f.rec.error, StreamError::kUnsupportedEncoding);
  }
  {
    Fixture f;
    ASSERT_TRUE(f.parser.feed("<"));
    EXPECT_FALSE(f.parser.feed(std::string_view("\0", 1)));
    EXPECT_EQ(f.rec.error, StreamError::kUnsupportedEncoding);
  }
  // Invalid UTF-8 is not well-formed.
  EXPECT_EQ(parse_all(std::string(kHeader) + "<message>\xC3\x28</message>"),
            StreamError::kNotWellFormed);
}

TEST(StreamParserTest, NotWellFormed) {
  const std::string h = kHeader;
  const std::string cases[] = {
      h + "<message><body></message>",
      h + "<message a='1' a='2'/>",
      h + "<message>&#1;</message>",
      h + "<p:message/>",  // unbound prefix
      h + "</wrong:stream>",
      "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><<",
      "garbage ",
  };
  for (const std::string& c : cases) {
    Fixture f;
    EXPECT_FALSE(f.parser.feed(c)) << c;
    EXPECT_EQ(f.rec.error, StreamError::kNotWellFormed) << c;
    EXPECT_FALSE(f.rec.error_text.empty());
    EXPECT_TRUE(f.rec.stanzas.empty());
  }
}

TEST(StreamParserTest, WrongStreamNamespaceOrName) {
  EXPECT_EQ(parse_all("<stream:stream xmlns:stream='urn:wrong'>"), StreamError::kInvalidNamespace);
  EXPECT_EQ(parse_all("<stream xmlns='jabber:client'>"), StreamError::kInvalidNamespace);
  EXPECT_EQ(parse_all("<stream>"), StreamError::kInvalidNamespace);
  EXPECT_EQ(parse_all("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"),
            StreamError::kBadFormat);
  EXPECT_EQ(parse_all("<stream xmlns='http://etherx.jabber.org/streams'>"), StreamError::kNone);
}

std::string sized_stanza(size_t total) {
  std::string head = "<message><body>";
  std::string tail = "</body></message>";
  return head + std::string(total - head.size() - tail.size(), 'x') + tail;
}

TEST(StreamParserTest, StanzaSizeLimitIsExact) {
  for (size_t size : {100u, 5000u, 70000u}) {
    ParserLimits l;
    l.max_stanza_size = size;
    {
      Fixture f(l);
      ASSERT_TRUE(f.parser.feed(std::string(kHeader) + sized_stanza(size)));
      EXPECT_EQ(f.rec.stanzas.size(), 1u);
    }
    {
      Fixture f(l);
      EXPECT_FALSE(f.parser.feed(std::string(kHeader) + sized_stanza(size + 1)));
      EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
      EXPECT_TRUE(f.rec.stanzas.empty());
    }
  }
  // set_max_stanza_size applies to the next stanzas (e.g. after auth).
  Fixture f;
  f.parser.set_max_stanza_size(1000);
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) + sized_stanza(1000)));
  EXPECT_FALSE(f.parser.feed(sized_stanza(1001)));
  EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
}

// 1 MiB stanza arriving in 64 KiB reads: refused as soon as the limit is
// passed, not after it completes, with little memory held.
TEST(StreamParserTest, HugeStanzaCutOffWhileArriving) {
  const size_t limit = 262144;
  const std::string bodies[] = {
      std::string("<message><body>") + std::string(1 << 20, 'x') + "</body></message>",
      std::string("<message id='") + std::string(1 << 20, 'x') + "'/>",  // one huge start tag
      std::string("<message>") +
          [] {
            std::string s;
            while (s.size() < (1u << 20))
              s += "<a/>";
            return s;
          }() +
          "</message>",
  };
  for (const std::string& stanza : bodies) {
    Fixture f;
    ASSERT_TRUE(f.parser.feed(kHeader));
    size_t fed = 0;
    size_t peak = 0;
    bool ok = true;
    while (ok && fed < stanza.size()) {
      size_t n = std::min<size_t>(65536, stanza.size() - fed);
      ok = f.parser.feed(std::string_view(stanza).substr(fed, n));
      fed += n;
      peak = std::max(peak, f.parser.memory_usage());
    }
    EXPECT_FALSE(ok);
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_TRUE(f.rec.stanzas.empty());
    EXPECT_LE(fed, limit + 65536) << "kept reading past the limit";
    if (&stanza == &bodies[2]) {
      // Many tiny elements: the tree, not the bytes, is what is capped.
      EXPECT_LT(peak, 34 * limit);
    } else {
      EXPECT_LT(peak, 3 * limit) << "buffered the stanza";
    }
  }

  // One single 1 MiB read: the parser itself stops near the limit. The
  // start-tag case is the one expat would buffer whole.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  EXPECT_FALSE(f.parser.feed(bodies[1]));
  EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
  EXPECT_LT(f.parser.memory_usage(), 3 * limit);
}

TEST(StreamParserTest, PendingStartTagAndHeaderAreBounded) {
  ParserLimits l;
  l.max_stanza_size = 10000;
  l.max_header_size = 1000;
  {
    Fixture f(l);  // a stream header that never ends
    bool ok = true;
    size_t fed = 0;
    ok = f.parser.feed("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='");
    while (ok && fed < 100000) {
      ok = f.parser.feed(std::string(100, 'x'));
      fed += 100;
    }
    EXPECT_FALSE(ok);
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_LE(fed, 1000u + 4096u);
  }
  {
    Fixture f(l);  // a complete but oversized header
    EXPECT_FALSE(
        f.parser.feed("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='" +
                      std::string(2000, 'x') + "'>"));
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_EQ(f.rec.starts, 0);
  }
  {
    Fixture f(l);  // a top-level start tag that never ends
    ASSERT_TRUE(f.parser.feed(kHeader));
    ASSERT_TRUE(f.parser.feed("<message to='"));
    bool ok = true;
    size_t fed = 0;
    while (ok && fed < 100000) {
      ok = f.parser.feed(std::string(100, 'x'));
      fed += 100;
    }
    EXPECT_FALSE(ok);
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_LE(fed, 10000u + 4096u);
  }
}

std::string nested(unsigned depth) {
  std::string s;
  for (unsigned i = 0; i < depth; ++i)
    s += "<e>";
  for (unsigned i = 0; i < depth; ++i)
    s += "</e>";
  return s;
}

TEST(StreamParserTest, DepthLimit) {
  ParserLimits l;
  l.max_depth = 4;
  {
    Fixture f(l);
    ASSERT_TRUE(f.parser.feed(std::string(kHeader) + nested(4)));
    EXPECT_EQ(f.rec.stanzas.size(), 1u);
  }
  {
    Fixture f(l);
    EXPECT_FALSE(f.parser.feed(std::string(kHeader) + nested(5)));
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
    EXPECT_TRUE(f.rec.stanzas.empty());
  }
  {
    Fixture f;  // default 32; deep input refused while arriving
    ASSERT_TRUE(f.parser.feed(kHeader));
    std::string deep;
    for (int i = 0; i < 1000; ++i)
      deep += "<e>";
    EXPECT_FALSE(f.parser.feed(deep));
    EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
  }
}

TEST(StreamParserTest, AttributeLimits) {
  ParserLimits l;
  l.max_attributes = 3;
  l.max_attribute_size = 8;
  // The header is limited too: one namespace declaration and one attribute.
  const std::string kSmallHeader =
      "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='1'>";
  EXPECT_EQ(parse_all("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='1' b='2' "
                      "c='3'>",
                      l),
            StreamError::kPolicyViolation);
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m a='1' b='2' c='3'/>", l), StreamError::kNone);
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m a='1' b='2' c='3' d='4'/>", l),
            StreamError::kPolicyViolation);
  // Namespace declarations count too (expat keeps them per element).
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m xmlns:x='u' a='1' b='2' c='3'/>", l),
            StreamError::kPolicyViolation);
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m><c a='1' b='2' c='3' d='4'/></m>", l),
            StreamError::kPolicyViolation);
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m a='12345678'/>", l), StreamError::kNone);
  EXPECT_EQ(parse_all(std::string(kSmallHeader) + "<m a='123456789'/>", l),
            StreamError::kPolicyViolation);
  // Measured after entity decoding.
  EXPECT_EQ(
      parse_all(std::string(kSmallHeader) + "<m a='&amp;&amp;&amp;&amp;&amp;&amp;&amp;&amp;'/>", l),
      StreamError::kNone);
  // The header is limited as well.
  EXPECT_EQ(
      parse_all("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='123456789'>",
                l),
      StreamError::kPolicyViolation);
}

// Parses `stanza` inside a fresh stream and returns its serialisation.
std::string reparse(const std::string& stanza) {
  Fixture f;
  EXPECT_TRUE(f.parser.feed(std::string(kHeader) + stanza)) << stanza;
  EXPECT_EQ(f.rec.stanzas.size(), 1u) << stanza;
  return f.rec.stanzas.empty() ? std::string() : f.rec.stanzas[0];
}

TEST(StreamParserTest, SerializerRoundTrip) {
  const std::string inputs[] = {
      "<message to='a@b/c' type='chat' id='1' xml:lang='de'>"
      "<body>x &lt; y &amp;&amp; &quot;q&quot; &apos;s&apos; &gt;</body>"
      "<active xmlns='http://jabber.org/protocol/chatstates'/>"
      "<x xmlns='jabber:x:data' type='form'><field var='a&apos;b&quot;'><value>1\n2\t3</value>"
      "</field><inner xmlns=''>no ns</inner></x></message>",
      "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
      "<presence xmlns:p='urn:p' p:a='1' p:b='2' plain='&#9;tab&#10;nl&#13;cr'><show>away</show>"
      "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v='/></presence>",
      "<message><body>caf\xC3\xA9 \xF0\x9F\x98\x80 ]]&gt; &#13;</body></message>",
  };
  for (const std::string& in : inputs) {
    std::string once = reparse(in);
    std::string twice = reparse(once);
    EXPECT_EQ(once, twice);
    EXPECT_FALSE(once.empty());
  }
  // Content is what was written, not only stable.
  EXPECT_EQ(reparse(inputs[1]), inputs[1]);
}

TEST(StreamParserTest, RoundTripPreservesValues) {
  Fixture f;
  std::string plain, body, field;
  f.rec.on_stanza_hook = [&](Element& s) {
    plain = std::string(s.attr("plain"));
    body = s.child("body")->text();
  };
  ASSERT_TRUE(f.parser.feed(std::string(kHeader) +
                            "<m plain='&#9;a&#10;b&#13;c &lt;&amp;&apos;'><body>l1\r\nl2&#13;"
                            "</body></m>"));
  EXPECT_EQ(plain, "\ta\nb\rc <&'");
  EXPECT_EQ(body, "l1\nl2\r");
  std::string again = reparse(f.rec.stanzas[0]);
  Fixture g;
  g.rec.on_stanza_hook = [&](Element& s) {
    EXPECT_EQ(s.attr("plain"), plain);
    EXPECT_EQ(s.child("body")->text(), body);
  };
  ASSERT_TRUE(g.parser.feed(std::string(kHeader) + again));
  EXPECT_EQ(g.rec.stanzas.size(), 1u);
}

// Expat keeps a table entry per distinct element and attribute name for the
// whole document; the parser starts a fresh document periodically so a long
// stream of ever-new names does not grow memory.
TEST(StreamParserTest, MemoryStaysBoundedOverALongStream) {
  Fixture f;
  ASSERT_TRUE(
      f.parser.feed("<S:stream xmlns:S='http://etherx.jabber.org/streams' xmlns='jabber:server' "
                    "xmlns:db='jabber:server:dialback'>"));
  size_t at_1mib = 0;
  size_t fed = 0;
  size_t n = 0;
  std::string chunk;
  while (fed < (8u << 20)) {
    chunk.clear();
    for (int i = 0; i < 100; ++i, ++n) {
      chunk += "<e" + std::to_string(n) + " a" + std::to_string(n) + "='v'><db:result x" +
               std::to_string(n) + "='1'/></e" + std::to_string(n) + ">";
    }
    ASSERT_TRUE(f.parser.feed(chunk)) << f.rec.error_text;
    fed += chunk.size();
    if (at_1mib == 0 && fed >= (1u << 20)) at_1mib = f.parser.memory_usage();
  }
  EXPECT_EQ(f.rec.stanzas.size(), n);
  EXPECT_LT(f.parser.memory_usage(), 2 * at_1mib + 65536);
  EXPECT_LT(f.parser.memory_usage(), 4u << 20);
  // Prefixes of the header still resolve, and the custom stream prefix
  // still closes the stream.
  EXPECT_EQ(f.rec.stanzas.back(),
            "<e" + std::to_string(n - 1) + " xmlns='jabber:server' a" + std::to_string(n - 1) +
                "='v'><result xmlns='jabber:server:dialback' x" + std::to_string(n - 1) +
                "='1'/></e" + std::to_string(n - 1) + ">");
  // Limits are still exact after the parser restarted internally.
  f.parser.set_max_stanza_size(1000);
  ASSERT_TRUE(f.parser.feed(sized_stanza(1000)));
  EXPECT_EQ(f.rec.stanzas.size(), n + 1);
  ASSERT_TRUE(f.parser.feed("</S:stream>"));
  EXPECT_EQ(f.rec.ends, 1);
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, RotationSplitsAChunkCorrectly) {
  // Stanzas spanning the internal restart point, fed in odd-sized reads.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  size_t count = 0;
  std::string all = test::numbered_messages(700000, 997, &count);
  all += "</stream:stream>";
  for (size_t off = 0; off < all.size(); off += 7919) {
    ASSERT_TRUE(f.parser.feed(std::string_view(all).substr(off, 7919)));
  }
  EXPECT_EQ(f.rec.stanzas.size(), count);
  EXPECT_EQ(f.rec.ends, 1);
  EXPECT_EQ(f.rec.errors, 0);
}

TEST(StreamParserTest, ComplexButSmallStanzaIsBoundedInMemory) {
  // 4-byte elements cost far more in the tree than on the wire.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  std::string s = "<message>";
  while (s.size() < 262000)
    s += "<a/>";
  s += "</message>";
  EXPECT_FALSE(f.parser.feed(s));
  EXPECT_EQ(f.rec.error, StreamError::kPolicyViolation);
  EXPECT_EQ(f.rec.error_text, "stanza too complex");
  EXPECT_LT(f.parser.memory_usage(), 34u * 262144);
  // The same shape at a tenth of the size is fine.
  Fixture g;
  ASSERT_TRUE(g.parser.feed(kHeader));
  std::string small = "<message>";
  while (small.size() < 26000)
    small += "<a/>";
  small += "</message>";
  EXPECT_TRUE(g.parser.feed(small));
  EXPECT_EQ(g.rec.stanzas.size(), 1u);
}

TEST(StreamParserTest, RealisticLargeStanzaIsAccepted) {
  // A roster-like result with many attribute-heavy items at the size limit.
  Fixture f;
  ASSERT_TRUE(f.parser.feed(kHeader));
  std::string s = "<iq type='result' id='r'><query xmlns='jabber:iq:roster'>";
  int i = 0;
  while (s.size() < 262000) {
    s += "<item jid='u" + std::to_string(i++) + "@e.org' name='N' subscription='both'/>";
  }
  s.resize(s.rfind('<'));
  s += "</query></iq>";
  ASSERT_LE(s.size(), 262144u);
  ASSERT_TRUE(f.parser.feed(s)) << f.rec.error_text;
  EXPECT_EQ(f.rec.stanzas.size(), 1u);
}

TEST(StreamParserTest, ErrorNames) {
  EXPECT_STREQ(stream_error_name(StreamError::kBadFormat), "bad-format");
  EXPECT_STREQ(stream_error_name(StreamError::kInvalidNamespace), "invalid-namespace");
  EXPECT_STREQ(stream_error_name(StreamError::kNotWellFormed), "not-well-formed");
  EXPECT_STREQ(stream_error_name(StreamError::kPolicyViolation), "policy-violation");
  EXPECT_STREQ(stream_error_name(StreamError::kRestrictedXml), "restricted-xml");
  EXPECT_STREQ(stream_error_name(StreamError::kUnsupportedEncoding), "unsupported-encoding");
}

}  // namespace
}  // namespace hearth::xml
