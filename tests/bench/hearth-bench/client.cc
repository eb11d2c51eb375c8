#include "client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace hearth::bench {
namespace {

WOLFSSL_CTX* g_ctx = nullptr;

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

bool tls_init() {
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) return false;
  g_ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (g_ctx == nullptr) return false;
  wolfSSL_CTX_SetMinVersion(g_ctx, WOLFSSL_TLSV1_2);
  // Benchmarks run against a self-signed certificate on loopback.
  wolfSSL_CTX_set_verify(g_ctx, WOLFSSL_VERIFY_NONE, nullptr);
  // X25519 first, then P-256, as real clients offer them (and the TLS 1.3
  // key share goes with the first). A P-256 key share from every client
  // would make Debian's wolfSSL on the server build an FP_ECC table (about
  // 800 KB) per point used twice, so the server's memory would be the
  // bench's artefact, not what real clients cost.
  int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1};
  if (wolfSSL_CTX_set_groups(g_ctx, groups, 2) != WOLFSSL_SUCCESS) return false;
  return true;
}

WOLFSSL_CTX* tls_client_ctx() {
  return g_ctx;
}

WOLFSSL* tls_new_client(int fd, const std::string& sni) {
  WOLFSSL* ssl = wolfSSL_new(g_ctx);
  if (ssl == nullptr) return nullptr;
  // The TLS 1.3 key share: X25519 alone, so a server that prefers it
  // answers without a HelloRetryRequest.
  if (wolfSSL_UseKeyShare(ssl, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) {
    wolfSSL_free(ssl);
    return nullptr;
  }
  if (!sni.empty()) {
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, sni.data(), static_cast<unsigned short>(sni.size()));
  }
  wolfSSL_set_fd(ssl, fd);
  return ssl;
}

std::string tls_describe(WOLFSSL* ssl) {
  const char* v = wolfSSL_get_version(ssl);
  const char* c = wolfSSL_get_cipher_name(ssl);
  const char* g = wolfSSL_get_curve_name(ssl);
  return std::string(v ? v : "?") + " " + (c ? c : "?") + " " + (g ? g : "?");
}

Client::Client(Loop* loop, const ServerConfig* cfg, SaltCache* cache, int user_index,
               std::string resource, bool initial_presence)
    : loop_(loop),
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
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(cfg_->port);
  if (getaddrinfo(cfg_->host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    fail("bad --host (give a numeric address)");
    return;
  }
  fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    freeaddrinfo(res);
    fail(std::string("socket: ") + strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(fd_, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (r != 0 && errno != EINPROGRESS) {
    fail(std::string("connect: ") + strerror(errno));
    return;
  }
  state_ = State::kConnecting;
  interest_ = EPOLLOUT;
  loop_->add(fd_, interest_, this);
}

void Client::update_interest() {
  if (fd_ < 0) return;
  uint32_t want = EPOLLIN;
  if (state_ == State::kConnecting) want = EPOLLOUT;
  if (!out_.empty() || tls_want_write_) want |= EPOLLOUT;
  if (want != interest_) {
    interest_ = want;
    loop_->modify(fd_, want, this);
  }
}

void Client::on_event(uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & EPOLLERR)) {
      fail(std::string("connect: ") + strerror(err != 0 ? err : ECONNREFUSED));
      return;
    }
    connected();
    return;
  }
  if (state_ == State::kTlsHandshake) {
    handshake();
    return;
  }
  if (events & EPOLLOUT) flush();
  if (fd_ >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) read_some();
}

void Client::connected() {
  if (cfg_->tls == TlsMode::kDirect) {
    state_ = State::kTlsHandshake;
    ssl_ = tls_new_client(fd_, cfg_->domain);
    if (ssl_ == nullptr) return fail("wolfSSL_new");
    char proto[] = "xmpp-client";  // XEP-0368
    wolfSSL_UseALPN(ssl_, proto, sizeof proto - 1, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    handshake();
    return;
  }
  state_ = State::kFeaturesPlain;
  open_stream();
  update_interest();
}

void Client::handshake() {
  int r = wolfSSL_connect(ssl_);
  if (r == WOLFSSL_SUCCESS) {
    static bool told = false;
    if (!told) {
      told = true;
      fprintf(stderr, "hearth-bench: TLS: %s\n", tls_describe(ssl_).c_str());
    }
    tls_want_write_ = false;
    state_ = State::kFeaturesAuth;
    open_stream();
    update_interest();
    return;
  }
  int err = wolfSSL_get_error(ssl_, r);
  if (err == WOLFSSL_ERROR_WANT_READ) {
    tls_want_write_ = false;
  } else if (err == WOLFSSL_ERROR_WANT_WRITE) {
    tls_want_write_ = true;
  } else {
    char buf[WOLFSSL_MAX_ERROR_SZ];
    return fail(std::string("TLS handshake: ") + wolfSSL_ERR_error_string(err, buf));
  }
  update_interest();
}

void Client::open_stream() {
  splitter_.reset();
  send("<?xml version='1.0'?><stream:stream to='" + xml_escape(cfg_->domain) +
       "' version='1.0' xml:lang='en' xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams'>");
}

void Client::send(std::string_view xml) {
  if (fd_ < 0) return;
  out_.append(xml);
  if (state_ == State::kConnecting || state_ == State::kTlsHandshake) return;
  flush();
}

void Client::flush() {
  while (fd_ >= 0 && !out_.empty()) {
    if (ssl_ != nullptr) {
      int len = pending_write_ > 0 ? pending_write_
                                   : static_cast<int>(std::min<size_t>(out_.size(), 16384));
      int n = wolfSSL_write(ssl_, out_.data(), len);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        pending_write_ = 0;
        tls_want_write_ = false;
        continue;
      }
      int err = wolfSSL_get_error(ssl_, n);
      if (err == WOLFSSL_ERROR_WANT_WRITE) {
        pending_write_ = len;
        tls_want_write_ = true;
        break;
      }
      if (err == WOLFSSL_ERROR_WANT_READ) {
        pending_write_ = len;
        break;
      }
      return fail("TLS write failed");
    }
    ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    return fail(std::string("send: ") + strerror(errno));
  }
  update_interest();
}

void Client::read_some() {
  char buf[16384];
  std::vector<StreamSplitter::Item> items;
  while (fd_ >= 0) {
    int n;
    if (ssl_ != nullptr) {
      n = wolfSSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        int err = wolfSSL_get_error(ssl_, n);
        if (err == WOLFSSL_ERROR_WANT_READ) break;
        if (err == WOLFSSL_ERROR_WANT_WRITE) {
          tls_want_write_ = true;
          break;
        }
        n = 0;  // close_notify, reset or a TLS error: the stream is over
      }
    } else {
      ssize_t r = recv(fd_, buf, sizeof buf, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
      n = r < 0 ? 0 : static_cast<int>(r);
    }
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
      if (fd_ < 0) return;
    }
  }
  update_interest();
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
        ssl_ = tls_new_client(fd_, cfg_->domain);
        if (ssl_ == nullptr) {
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
  if (fd_ < 0) return;
  if (state_ != State::kConnecting && state_ != State::kTlsHandshake) {
    out_.append("</stream:stream>");
    flush();
  }
  if (state_ != State::kFailed) state_ = State::kClosed;
  shut();
}

void Client::shut() {
  if (ssl_ != nullptr) {
    wolfSSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    loop_->remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  scram_.reset();
  out_.clear();
}

}  // namespace hearth::bench
