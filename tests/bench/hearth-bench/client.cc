#include "client.h"

#include <sys/epoll.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace hearth::bench {
namespace {

constexpr char kNsSasl[] = "urn:ietf:params:xml:ns:xmpp-sasl";

std::string format_index(const std::string& pattern, int index) {
  size_t p = pattern.find("%d");
  if (p == std::string::npos) return pattern;
  return pattern.substr(0, p) + std::to_string(index) + pattern.substr(p + 2);
}

// Text content of a simple element (empty when self-closing).
std::string element_text(std::string_view el) {
  size_t gt = el.find('>');
  if (gt == std::string_view::npos || el[gt - 1] == '/') return {};
  size_t close = el.rfind("</");
  if (close == std::string_view::npos || close < gt) return {};
  return xml_unescape(el.substr(gt + 1, close - gt - 1));
}

}  // namespace

std::string ServerConfig::user(int index) const {
  return format_index(user_pattern, index);
}

std::string ServerConfig::password_for(int index) const {
  return password_pattern.empty() ? password : format_index(password_pattern, index);
}

Client::Client(Loop* loop, const ServerConfig* cfg, SaltCache* cache, int user_index,
               std::string resource, bool initial_presence)
    : StreamHandler(loop),
      cfg_(cfg),
      cache_(cache),
      user_index_(user_index),
      resource_(std::move(resource)),
      initial_presence_(initial_presence) {}

Client::~Client() {
  shut();
}

void Client::start() {
  t_start_ = now_ns();
  std::string why;
  if (!stream_.connect(cfg_->host, cfg_->port, &why)) return fail(std::move(why));
  state_ = State::kConnecting;
}

void Client::on_connected() {
  if (cfg_->tls == TlsMode::kDirect) {
    state_ = State::kTlsHandshake;
    if (!stream_.start_tls(cfg_->domain)) return fail("wolfSSL_new");
    char proto[] = "xmpp-client";  // XEP-0368
    wolfSSL_UseALPN(stream_.ssl(), proto, sizeof proto - 1, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    handshake();
    return;
  }
  state_ = State::kFeaturesPlain;
  open_stream();
  stream_.update_interest();
}

void Client::on_secure() {
  static bool told = false;
  tls_tell_once(stream_.ssl(), "TLS", &told);
  state_ = State::kFeaturesAuth;
  open_stream();
  stream_.update_interest();
}

void Client::open_stream() {
  splitter_.reset();
  send("<?xml version='1.0'?><stream:stream to='" + xml_escape(cfg_->domain) +
       "' version='1.0' xml:lang='en' xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams'>");
}

void Client::send(std::string_view xml) {
  if (!stream_.open()) return;
  stream_.queue(xml);
  if (state_ == State::kConnecting || state_ == State::kTlsHandshake) return;
  flush();
}

void Client::on_readable() {
  char buf[16384];
  std::vector<StreamSplitter::Item> items;
  while (stream_.open()) {
    int n = stream_.read(buf, sizeof buf);
    if (n == TlsStream::kAgain) break;
    if (n == 0) {
      if (state_ == State::kReady) {
        error_ = "server closed the connection";
        state_ = State::kClosed;
        shut();
      } else {
        fail("server closed the connection");
      }
      return;
    }
    items.clear();
    if (!splitter_.feed(std::string_view(buf, static_cast<size_t>(n)), &items)) {
      return fail("XML from the server is not well-formed");
    }
    for (auto& it : items) {
      if (it.event == StreamSplitter::Event::kHeader) continue;
      if (it.event == StreamSplitter::Event::kClosed) {
        if (state_ == State::kReady) {
          error_ = "server closed the stream";
          state_ = State::kClosed;
          shut();
        } else {
          fail("server closed the stream");
        }
        return;
      }
      if (!handle(it.text)) {
        // <proceed/>: the TLS handshake takes over the socket.
        handshake();
        return;
      }
      if (!stream_.open()) return;
    }
  }
  stream_.update_interest();
}

bool Client::handle(std::string_view el) {
  std::string_view name = local_name(el);
  if (name == "error" && state_ != State::kReady && el.find("<stream:error") == 0) {
    fail("stream error: " + std::string(el.substr(0, 300)));
    return true;
  }
  switch (state_) {
    case State::kFeaturesPlain:
      if (name != "features") return true;
      if (!has_child(el, "starttls")) {
        fail("the server offers no STARTTLS");
        return true;
      }
      state_ = State::kStartTls;
      send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      return true;
    case State::kStartTls:
      if (name == "proceed") {
        state_ = State::kTlsHandshake;
        if (!stream_.start_tls(cfg_->domain)) {
          fail("wolfSSL_new");
          return true;
        }
        return false;
      }
      fail("STARTTLS refused: " + std::string(el.substr(0, 200)));
      return true;
    case State::kFeaturesAuth: {
      if (name != "features") return true;
      std::vector<std::string> mechs = children_text(el, "mechanism");
      auto offered = [&](const char* m) {
        for (auto& x : mechs)
          if (x == m) return true;
        return false;
      };
      ScramHash hash;
      if (cfg_->mech == Mech::kScramSha256 ||
          (cfg_->mech == Mech::kAuto && offered("SCRAM-SHA-256"))) {
        hash = ScramHash::kSha256;
        mech_name_ = "SCRAM-SHA-256";
      } else {
        hash = ScramHash::kSha1;
        mech_name_ = "SCRAM-SHA-1";
      }
      if (!offered(mech_name_.c_str())) {
        fail("the server does not offer " + mech_name_);
        return true;
      }
      scram_ = std::make_unique<ScramClient>(hash, cfg_->user(user_index_),
                                             cfg_->password_for(user_index_), cache_);
      state_ = State::kSasl;
      send(std::string("<auth xmlns='") + kNsSasl + "' mechanism='" + mech_name_ + "'>" +
           base64_encode(scram_->first()) + "</auth>");
      return true;
    }
    case State::kSasl: {
      std::string data;
      if (name == "challenge") {
        base64_decode(element_text(el), &data);
        if (data.compare(0, 2, "v=") == 0) {
          if (!scram_->verify(data))
            fail("server signature does not verify");
          else
            send(std::string("<response xmlns='") + kNsSasl + "'/>");
          return true;
        }
        std::string reply;
        std::string why;
        if (!scram_->final(data, &reply, &why)) {
          fail("SCRAM: " + why);
          return true;
        }
        send(std::string("<response xmlns='") + kNsSasl + "'>" + base64_encode(reply) +
             "</response>");
        return true;
      }
      if (name == "success") {
        base64_decode(element_text(el), &data);
        if (!data.empty() && !scram_->verify(data)) {
          fail("server signature does not verify");
          return true;
        }
        scram_.reset();
        state_ = State::kFeaturesBind;
        open_stream();
        return true;
      }
      fail("SASL failed: " + std::string(el.substr(0, 300)));
      return true;
    }
    case State::kFeaturesBind: {
      if (name != "features") return true;
      size_t s = el.find("<session");
      if (s != std::string_view::npos) {
        size_t e = el.find("</session>", s);
        size_t sc = el.find("/>", s);
        size_t end = std::min(e, sc);
        session_required_ = el.substr(s, end - s).find("optional") == std::string_view::npos;
      }
      state_ = State::kBind;
      send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
           xml_escape(resource_) + "</resource></bind></iq>");
      return true;
    }
    case State::kBind:
      if (name != "iq" || attr(el, "id") != "bind1") return true;
      if (attr(el, "type") != "result") {
        fail("bind failed: " + std::string(el.substr(0, 300)));
        return true;
      }
      jid_ = child_text(el, "jid");
      if (session_required_) {
        state_ = State::kSession;
        send(
            "<iq type='set' id='sess1'><session "
            "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      } else {
        after_bind();
      }
      return true;
    case State::kSession:
      if (name == "iq" && attr(el, "id") == "sess1") after_bind();
      return true;
    case State::kSettle:
      if (name == "iq" && attr(el, "id") == "settle1") become_ready();
      return true;
    case State::kReady:
      if (on_stanza) on_stanza(*this, el);
      return true;
    default:
      return true;
  }
}

void Client::after_bind() {
  if (!initial_presence_) {
    become_ready();
    return;
  }
  // The ping's answer comes after the server has handled the presence.
  state_ = State::kSettle;
  send("<presence/><iq type='get' id='settle1' to='" + xml_escape(cfg_->domain) +
       "'><ping xmlns='urn:xmpp:ping'/></iq>");
}

void Client::become_ready() {
  state_ = State::kReady;
  t_ready_ = now_ns();
}

void Client::fail(std::string why) {
  error_ = std::move(why);
  state_ = State::kFailed;
  shut();
}

void Client::close() {
  if (!stream_.open()) return;
  if (state_ != State::kConnecting && state_ != State::kTlsHandshake) {
    stream_.queue("</stream:stream>");
    flush();
  }
  if (state_ != State::kFailed) state_ = State::kClosed;
  shut();
}

void Client::shut() {
  stream_.close();
  scram_.reset();
}

}  // namespace hearth::bench
