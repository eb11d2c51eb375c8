// scram_plus_client: a small blocking XMPP c2s client that logs in with
// SCRAM-SHA-1-PLUS or SCRAM-SHA-256-PLUS, for the integration tests
// (tests/integration/test_channel_binding.py). Python's ssl module cannot
// compute the RFC 9266 tls-exporter channel binding; wolfSSL can.
//
//   scram_plus_client --port N (--direct-tls | --starttls) --user U --password P
//                     --mech SCRAM-SHA-256-PLUS|SCRAM-SHA-1-PLUS
//                     --cb tls-exporter|tls-server-end-point
//                     [--tls12] [--tls13] [--no-ems] [--wrong-cb] [--expect-refused]
//                     [--host 127.0.0.1] [--domain localhost] [--resource R]
//
// It prints one line per step. Exit status: 0 when the whole login (TLS,
// features, SASL with the server signature checked, stream restart, bind,
// XEP-0199 ping) worked; with --wrong-cb or --expect-refused, 0 iff the
// server refused the authentication with <failure/>. 1 on anything else, 2
// on bad arguments. Every read is bounded (10 s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base64.h"
#include "xml/element.h"
#include "xml/parser.h"
#include "xmpp/scram.h"

namespace {

constexpr int kTimeoutMs = 10000;
constexpr std::string_view kNsStream = "http://etherx.jabber.org/streams";
constexpr std::string_view kNsTls = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kNsSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view kNsBind = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view kNsSaslCb = "urn:xmpp:sasl-cb:0";  // XEP-0440
constexpr std::string_view kNsClient = "jabber:client";
constexpr char kExporterLabel[] = "EXPORTER-Channel-Binding";  // RFC 9266 §2
constexpr size_t kExporterLength = 32;                         // RFC 9266 §2

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// --- Options ------------------------------------------------------------------

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  bool direct_tls = false;
  bool starttls = false;
  std::string domain = "localhost";
  std::string user;
  std::string password;
  std::string mech;
  std::string cb;
  std::string resource = "plus";
  bool tls12 = false;
  bool tls13 = false;
  bool no_ems = false;
  bool wrong_cb = false;
  bool expect_refused = false;
};

void usage() {
  std::fprintf(stderr,
               "usage: scram_plus_client --port N (--direct-tls|--starttls) --user U "
               "--password P\n"
               "         --mech SCRAM-SHA-256-PLUS|SCRAM-SHA-1-PLUS --cb "
               "tls-exporter|tls-server-end-point\n"
               "         [--tls12] [--tls13] [--no-ems] [--wrong-cb] [--expect-refused]\n"
               "         [--host H] [--domain D] [--resource R]\n");
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string port_text;
    bool ok = true;
    if (a == "--host") {
      ok = value(&o.host);
    } else if (a == "--port") {
      ok = value(&port_text);
      if (ok) {
        char* end = nullptr;
        long p = std::strtol(port_text.c_str(), &end, 10);
        ok = end != nullptr && *end == '\0' && p > 0 && p < 65536;
        o.port = static_cast<int>(p);
      }
    } else if (a == "--direct-tls") {
      o.direct_tls = true;
    } else if (a == "--starttls") {
      o.starttls = true;
    } else if (a == "--domain") {
      ok = value(&o.domain);
    } else if (a == "--user") {
      ok = value(&o.user);
    } else if (a == "--password") {
      ok = value(&o.password);
    } else if (a == "--mech") {
      ok = value(&o.mech);
    } else if (a == "--cb") {
      ok = value(&o.cb);
    } else if (a == "--resource") {
      ok = value(&o.resource);
    } else if (a == "--tls12") {
      o.tls12 = true;
    } else if (a == "--tls13") {
      o.tls13 = true;
    } else if (a == "--no-ems") {
      o.no_ems = true;
    } else if (a == "--wrong-cb") {
      o.wrong_cb = true;
    } else if (a == "--expect-refused") {
      o.expect_refused = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad argument: %s\n", argv[i]);
      return std::nullopt;
    }
  }
  if (o.port == 0 || o.direct_tls == o.starttls || o.user.empty() || o.password.empty() ||
      (o.mech != "SCRAM-SHA-256-PLUS" && o.mech != "SCRAM-SHA-1-PLUS") ||
      (o.cb != "tls-exporter" && o.cb != "tls-server-end-point") || (o.tls12 && o.tls13)) {
    return std::nullopt;
  }
  return o;
}

// --- Received elements --------------------------------------------------------

// A copy of a parsed element that outlives the parser's arena.
struct Node {
  std::string name;
  std::string ns;
  std::vector<std::pair<std::string, std::string>> attrs;
  std::string text;
  std::vector<Node> children;
  std::string xml;  // serialised, for messages

  std::string attr(std::string_view n) const {
    for (const auto& [k, v] : attrs) {
      if (k == n) return v;
    }
    return {};
  }
  const Node* child(std::string_view n, std::string_view child_ns) const {
    for (const Node& c : children) {
      if (c.name == n && c.ns == child_ns) return &c;
    }
    return nullptr;
  }
  bool is(std::string_view n, std::string_view want_ns) const { return name == n && ns == want_ns; }
};

Node copy_element(const hearth::xml::Element& e, bool with_xml) {
  Node n;
  n.name = std::string(e.name);
  n.ns = std::string(e.ns);
  for (const auto& a : e.attrs) {
    if (a.ns.empty()) n.attrs.emplace_back(std::string(a.name), std::string(a.value));
  }
  n.text = e.text();
  for (const auto& c : e.children) {
    if (c.element != nullptr) n.children.push_back(copy_element(*c.element, false));
  }
  if (with_xml) hearth::xml::serialize(e, &n.xml, kNsClient);
  return n;
}

class Collector : public hearth::xml::StreamParser::Handler {
 public:
  void on_stream_start(const hearth::xml::Element& header) override {
    header_ = copy_element(header, false);
    stream_started_ = true;
  }
  void on_stanza(hearth::xml::Element& stanza) override {
    queue_.push_back(copy_element(stanza, true));
  }
  void on_stream_end() override { stream_ended_ = true; }
  void on_stream_error(hearth::xml::StreamError error, std::string_view text) override {
    parse_error_ = std::string(hearth::xml::stream_error_name(error)) + ": " + std::string(text);
  }

  std::deque<Node> queue_;
  Node header_;
  bool stream_started_ = false;
  bool stream_ended_ = false;
  std::string parse_error_;
};

// --- Transport ----------------------------------------------------------------

class Client {
 public:
  explicit Client(const Options& o) : opt_(o), parser_(&collector_, limits()) {}
  ~Client() {
    if (ssl_ != nullptr) wolfSSL_free(ssl_);
    if (ctx_ != nullptr) wolfSSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connect_tcp();
  bool start_tls(bool alpn);
  bool send(std::string_view data);
  // The next stream-level element, or nullopt on timeout/close/error.
  std::optional<Node> next(const char* what);
  bool open_stream(const char* what);
  void restart_parser() { parser_.reset(); }

  WOLFSSL* ssl() const { return ssl_; }

 private:
  static hearth::xml::ParserLimits limits() {
    hearth::xml::ParserLimits l;
    l.max_stanza_size = 1 << 20;
    return l;
  }
  // Reads what is available into the parser; false on EOF, error or timeout.
  bool read_some(std::chrono::steady_clock::time_point deadline);

  const Options& opt_;
  int fd_ = -1;
  WOLFSSL_CTX* ctx_ = nullptr;
  WOLFSSL* ssl_ = nullptr;
  Collector collector_;
  hearth::xml::StreamParser parser_;
};

bool Client::connect_tcp() {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) {
    say("FAIL socket: %s", std::strerror(errno));
    return false;
  }
  timeval tv{kTimeoutMs / 1000, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(opt_.port));
  if (inet_pton(AF_INET, opt_.host.c_str(), &sa.sin_addr) != 1) {
    say("FAIL bad host %s", opt_.host.c_str());
    return false;
  }
  if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    say("FAIL connect %s:%d: %s", opt_.host.c_str(), opt_.port, std::strerror(errno));
    return false;
  }
  say("tcp: connected to %s:%d", opt_.host.c_str(), opt_.port);
  return true;
}

bool Client::start_tls(bool alpn) {
  WOLFSSL_METHOD* method = opt_.tls12   ? wolfTLSv1_2_client_method()
                           : opt_.tls13 ? wolfTLSv1_3_client_method()
                                        : wolfSSLv23_client_method();
  ctx_ = wolfSSL_CTX_new(method);
  if (ctx_ == nullptr) {
    say("FAIL wolfSSL_CTX_new");
    return false;
  }
  // The test server's certificate is self-signed; channel binding is what
  // ties the login to this TLS session here.
  wolfSSL_CTX_set_verify(ctx_, WOLFSSL_VERIFY_NONE, nullptr);
  ssl_ = wolfSSL_new(ctx_);
  if (ssl_ == nullptr) {
    say("FAIL wolfSSL_new");
    return false;
  }
  wolfSSL_UseSNI(ssl_, WOLFSSL_SNI_HOST_NAME, opt_.domain.data(),
                 static_cast<unsigned short>(opt_.domain.size()));
  if (alpn) {
    char proto[] = "xmpp-client";  // XEP-0368
    if (wolfSSL_UseALPN(ssl_, proto, sizeof proto - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
        WOLFSSL_SUCCESS) {
      say("FAIL wolfSSL_UseALPN");
      return false;
    }
  }
  if (opt_.no_ems && wolfSSL_DisableExtendedMasterSecret(ssl_) != WOLFSSL_SUCCESS) {
    say("FAIL wolfSSL_DisableExtendedMasterSecret");
    return false;
  }
  wolfSSL_set_fd(ssl_, fd_);
  int ret = wolfSSL_connect(ssl_);
  if (ret != WOLFSSL_SUCCESS) {
    char buf[WOLFSSL_MAX_ERROR_SZ];
    int err = wolfSSL_get_error(ssl_, ret);
    say("FAIL tls handshake: %d %s", err, wolfSSL_ERR_error_string(err, buf));
    return false;
  }
  const char* cipher = wolfSSL_get_cipher_name(ssl_);
  say("tls: %s %s%s", wolfSSL_get_version(ssl_), cipher ? cipher : "?",
      opt_.no_ems ? " (extended master secret not offered)" : "");
  if (alpn) {
    char* name = nullptr;
    unsigned short size = 0;
    if (wolfSSL_ALPN_GetProtocol(ssl_, &name, &size) != WOLFSSL_SUCCESS || name == nullptr ||
        std::string_view(name, size) != "xmpp-client") {
      say("FAIL alpn: server did not select xmpp-client");
      return false;
    }
    say("alpn: xmpp-client");
  }
  return true;
}

bool Client::send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n;
    if (ssl_ != nullptr) {
      int r = wolfSSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (r <= 0) {
        say("FAIL tls write: error %d", wolfSSL_get_error(ssl_, r));
        return false;
      }
      n = r;
    } else {
      n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        say("FAIL write: %s", std::strerror(errno));
        return false;
      }
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Client::read_some(std::chrono::steady_clock::time_point deadline) {
  char buf[8192];
  if (ssl_ == nullptr || wolfSSL_pending(ssl_) == 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) return true;
    if (r <= 0) return false;  // timeout
  }
  ssize_t n;
  if (ssl_ != nullptr) {
    int r = wolfSSL_read(ssl_, buf, sizeof buf);
    if (r <= 0) {
      int err = wolfSSL_get_error(ssl_, r);
      if (err == WOLFSSL_ERROR_WANT_READ) return true;  // a record without data
      say("tls read ended: error %d", err);
      return false;
    }
    n = r;
  } else {
    n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) {
      say("read ended: %s", n == 0 ? "EOF" : std::strerror(errno));
      return false;
    }
  }
  parser_.feed(std::string_view(buf, static_cast<size_t>(n)));
  return true;
}

std::optional<Node> Client::next(const char* what) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  while (collector_.queue_.empty()) {
    if (!collector_.parse_error_.empty()) {
      say("FAIL waiting for %s: server XML rejected (%s)", what, collector_.parse_error_.c_str());
      return std::nullopt;
    }
    if (collector_.stream_ended_) {
      say("FAIL waiting for %s: server closed the stream", what);
      return std::nullopt;
    }
    if (!read_some(deadline)) {
      say("FAIL waiting for %s: nothing within %d ms or connection closed", what, kTimeoutMs);
      return std::nullopt;
    }
  }
  Node n = std::move(collector_.queue_.front());
  collector_.queue_.pop_front();
  if (n.is("error", kNsStream)) {
    say("FAIL waiting for %s: stream error %s", what, n.xml.c_str());
    return std::nullopt;
  }
  return n;
}

bool Client::open_stream(const char* what) {
  collector_.stream_started_ = false;
  std::string header =
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' to='" +
      opt_.domain + "' version='1.0' xml:lang='en'>";
  if (!send(header)) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
  while (!collector_.stream_started_) {
    if (!collector_.parse_error_.empty() || !read_some(deadline)) {
      say("FAIL no stream header (%s) %s", what, collector_.parse_error_.c_str());
      return false;
    }
  }
  if (collector_.header_.attr("from") != opt_.domain) {
    say("FAIL stream header from='%s', expected '%s'", collector_.header_.attr("from").c_str(),
        opt_.domain.c_str());
    return false;
  }
  say("stream: opened (%s), id=%s", what, collector_.header_.attr("id").c_str());
  return true;
}

// --- Channel binding ------------------------------------------------------------

// One DER TLV at `pos`: sets the value bounds; false when malformed.
bool der_read(std::string_view d, size_t pos, size_t* start, size_t* end) {
  if (pos + 2 > d.size()) return false;
  size_t len = static_cast<unsigned char>(d[pos + 1]);
  pos += 2;
  if (len & 0x80) {
    size_t n = len & 0x7f;
    if (n == 0 || n > 4 || pos + n > d.size()) return false;
    len = 0;
    for (size_t i = 0; i < n; ++i)
      len = (len << 8) | static_cast<unsigned char>(d[pos + i]);
    pos += n;
  }
  if (len > d.size() - pos) return false;
  *start = pos;
  *end = pos + len;
  return true;
}

// RFC 5929 §4.1: the hash of the certificate's signature algorithm, SHA-256
// for MD5 and SHA-1 (and, as the RFC leaves them open, for the rest).
wc_HashType end_point_hash_type(std::string_view der) {
  size_t cert_start, cert_end, tbs_start, tbs_end, alg_start, alg_end, oid_start, oid_end;
  if (!der_read(der, 0, &cert_start, &cert_end) ||
      !der_read(der, cert_start, &tbs_start, &tbs_end) ||
      !der_read(der, tbs_end, &alg_start, &alg_end) || alg_start >= der.size() ||
      !der_read(der, alg_start, &oid_start, &oid_end) || der[alg_start] != 0x06) {
    return WC_HASH_TYPE_SHA256;
  }
  std::string_view oid = der.substr(oid_start, oid_end - oid_start);
  // sha384WithRSAEncryption 1.2.840.113549.1.1.12, sha512WithRSA ...1.13,
  // ecdsa-with-SHA384 1.2.840.10045.4.3.3, ecdsa-with-SHA512 ...4.3.4.
  static const std::string_view kRsa = "\x2a\x86\x48\x86\xf7\x0d\x01\x01";
  static const std::string_view kEcdsa = "\x2a\x86\x48\xce\x3d\x04\x03";
  if (oid.size() == kRsa.size() + 1 && oid.substr(0, kRsa.size()) == kRsa) {
    if (oid.back() == 12) return WC_HASH_TYPE_SHA384;
    if (oid.back() == 13) return WC_HASH_TYPE_SHA512;
  }
  if (oid.size() == kEcdsa.size() + 1 && oid.substr(0, kEcdsa.size()) == kEcdsa) {
    if (oid.back() == 3) return WC_HASH_TYPE_SHA384;
    if (oid.back() == 4) return WC_HASH_TYPE_SHA512;
  }
  return WC_HASH_TYPE_SHA256;
}

std::optional<std::string> server_end_point(WOLFSSL* ssl) {
  WOLFSSL_X509_CHAIN* chain = wolfSSL_get_peer_chain(ssl);
  if (chain == nullptr || wolfSSL_get_chain_count(chain) < 1) {
    say("FAIL no peer certificate");
    return std::nullopt;
  }
  const unsigned char* der = wolfSSL_get_chain_cert(chain, 0);
  int der_len = wolfSSL_get_chain_length(chain, 0);
  if (der == nullptr || der_len <= 0) {
    say("FAIL no peer certificate DER");
    return std::nullopt;
  }
  std::string_view cert(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len));
  wc_HashType type = end_point_hash_type(cert);
  int size = wc_HashGetDigestSize(type);
  if (size <= 0) return std::nullopt;
  std::string out(static_cast<size_t>(size), '\0');
  if (wc_Hash(type, der, static_cast<word32>(der_len), reinterpret_cast<byte*>(out.data()),
              static_cast<word32>(out.size())) != 0) {
    say("FAIL hashing the certificate");
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> tls_exporter(WOLFSSL* ssl) {
  // RFC 9266 §2: label "EXPORTER-Channel-Binding", a zero-length context,
  // 32 bytes. Under TLS 1.3 an empty context and no context give the same
  // bytes (RFC 8446 §7.5); under TLS 1.2 (RFC 5705) they differ, and we pass
  // a present, empty context as the RFC's wording says.
  static const unsigned char kEmpty[1] = {0};
  std::string out(kExporterLength, '\0');
  if (wolfSSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                     kExporterLabel, sizeof kExporterLabel - 1, kEmpty, 0,
                                     1) != WOLFSSL_SUCCESS) {
    say("FAIL wolfSSL_export_keying_material");
    return std::nullopt;
  }
  return out;
}

std::string hex(std::string_view s) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string sasl_condition(const Node& failure) {
  for (const Node& c : failure.children) {
    if (c.ns == kNsSasl && c.name != "text") return c.name;
  }
  return "(none)";
}

// --- The login ------------------------------------------------------------------

enum class Outcome { kOk, kRefused, kFail };

// Features after TLS: the mechanism and the XEP-0440 channel-binding type.
bool check_features(const Options& o, const Node& features) {
  if (!features.is("features", kNsStream)) {
    say("FAIL expected <stream:features/>, got %s", features.xml.c_str());
    return false;
  }
  std::string mechs;
  bool has_mech = false;
  if (const Node* m = features.child("mechanisms", kNsSasl)) {
    for (const Node& c : m->children) {
      if (!c.is("mechanism", kNsSasl)) continue;
      if (!mechs.empty()) mechs += ' ';
      mechs += c.text;
      if (c.text == o.mech) has_mech = true;
    }
  }
  std::string types;
  bool has_type = false;
  if (const Node* cb = features.child("sasl-channel-binding", kNsSaslCb)) {
    for (const Node& c : cb->children) {
      if (!c.is("channel-binding", kNsSaslCb)) continue;
      if (!types.empty()) types += ' ';
      types += c.attr("type");
      if (c.attr("type") == o.cb) has_type = true;
    }
  }
  say("features: mechanisms=[%s] channel-binding=[%s]", mechs.c_str(), types.c_str());
  if (!has_mech) {
    say("FAIL %s not offered", o.mech.c_str());
    return false;
  }
  if (!has_type) {
    if (o.expect_refused && !o.wrong_cb) {
      say("features: %s not advertised; trying it anyway", o.cb.c_str());
      return true;
    }
    say("FAIL channel-binding type %s not advertised (XEP-0440)", o.cb.c_str());
    return false;
  }
  return true;
}

Outcome authenticate(const Options& o, Client& c) {
  hearth::xmpp::ScramHash h = o.mech == "SCRAM-SHA-1-PLUS" ? hearth::xmpp::ScramHash::kSha1
                                                           : hearth::xmpp::ScramHash::kSha256;
  std::optional<std::string> cb_data =
      o.cb == "tls-exporter" ? tls_exporter(c.ssl()) : server_end_point(c.ssl());
  if (!cb_data) return Outcome::kFail;
  if (o.wrong_cb) (*cb_data)[0] = static_cast<char>((*cb_data)[0] ^ 0x01);
  say("cb: %s %zu bytes %s%s", o.cb.c_str(), cb_data->size(), hex(*cb_data).c_str(),
      o.wrong_cb ? " (one bit flipped on purpose)" : "");

  auto prepared = hearth::xmpp::prepare_password(o.password);
  if (!prepared.ok()) {
    say("FAIL password preparation: %s", prepared.error().message.c_str());
    return Outcome::kFail;
  }
  unsigned char raw_nonce[18];
  randombytes_buf(raw_nonce, sizeof raw_nonce);
  std::string nonce =
      hearth::base64_encode(std::string_view(reinterpret_cast<char*>(raw_nonce), sizeof raw_nonce));
  std::string client_first =
      "p=" + o.cb + ",,n=" + hearth::xmpp::scram_escape_saslname(o.user) + ",r=" + nonce;
  if (!c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + o.mech + "'>" +
              hearth::base64_encode(client_first) + "</auth>")) {
    return Outcome::kFail;
  }
  say("sasl: sent <auth mechanism='%s'> gs2 header p=%s", o.mech.c_str(), o.cb.c_str());

  auto refused = [&](const Node& n) {
    say("sasl: <failure/> condition %s: %s", sasl_condition(n).c_str(), n.xml.c_str());
    return Outcome::kRefused;
  };
  auto el = c.next("the SCRAM challenge");
  if (!el) return Outcome::kFail;
  if (el->is("failure", kNsSasl)) return refused(*el);
  if (!el->is("challenge", kNsSasl)) {
    say("FAIL expected <challenge/>, got %s", el->xml.c_str());
    return Outcome::kFail;
  }
  auto server_first = hearth::base64_decode(el->text);
  if (!server_first.ok()) {
    say("FAIL challenge is not base64: %s", el->xml.c_str());
    return Outcome::kFail;
  }
  say("sasl: server-first %s", server_first->c_str());
  auto final =
      hearth::xmpp::scram_client_final(h, *prepared, client_first, *server_first, *cb_data);
  sodium_memzero(prepared->data(), prepared->size());
  if (!final.ok()) {
    say("FAIL %s", final.error().message.c_str());
    return Outcome::kFail;
  }
  if (!c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
              hearth::base64_encode(final->message) + "</response>")) {
    return Outcome::kFail;
  }
  say("sasl: sent client-final");

  el = c.next("the SCRAM outcome");
  if (!el) return Outcome::kFail;
  if (el->is("failure", kNsSasl)) return refused(*el);
  std::string additional;
  if (el->is("challenge", kNsSasl)) {
    // RFC 6120 §6.4.6 lets the server send the server-final in a challenge.
    auto data = hearth::base64_decode(el->text);
    additional = data.ok() ? *data : std::string("(bad base64)");
    if (additional != final->server_final) {
      say("FAIL bad server signature in challenge: %s", additional.c_str());
      return Outcome::kFail;
    }
    if (!c.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")) return Outcome::kFail;
    el = c.next("the SCRAM success");
    if (!el) return Outcome::kFail;
    if (el->is("failure", kNsSasl)) return refused(*el);
    if (el->is("success", kNsSasl) && !el->text.empty()) {
      say("FAIL <success/> repeats data already sent in a challenge");
      return Outcome::kFail;
    }
  }
  if (!el->is("success", kNsSasl)) {
    say("FAIL expected <success/>, got %s", el->xml.c_str());
    return Outcome::kFail;
  }
  if (additional.empty()) {
    auto data = hearth::base64_decode(el->text);
    if (!data.ok() || *data != final->server_final) {
      say("FAIL bad or missing server signature in <success/>: %s", el->xml.c_str());
      return Outcome::kFail;
    }
  }
  say("sasl: <success/>, server signature verified");
  return Outcome::kOk;
}

int run(const Options& o) {
  Client c(o);
  if (!c.connect_tcp()) return 1;
  if (o.starttls) {
    if (!c.open_stream("plaintext")) return 1;
    auto f = c.next("the plaintext features");
    if (!f) return 1;
    if (!f->is("features", kNsStream) || f->child("starttls", kNsTls) == nullptr) {
      say("FAIL no <starttls/> offered: %s", f->xml.c_str());
      return 1;
    }
    if (!c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")) return 1;
    auto p = c.next("<proceed/>");
    if (!p) return 1;
    if (!p->is("proceed", kNsTls)) {
      say("FAIL expected <proceed/>, got %s", p->xml.c_str());
      return 1;
    }
    say("starttls: <proceed/>");
    c.restart_parser();
  }
  if (!c.start_tls(o.direct_tls)) return 1;
  if (!c.open_stream("tls")) return 1;
  auto features = c.next("the features after TLS");
  if (!features || !check_features(o, *features)) return 1;

  Outcome outcome = authenticate(o, c);
  const bool want_refusal = o.wrong_cb || o.expect_refused;
  if (outcome == Outcome::kFail) return 1;
  if (outcome == Outcome::kRefused) {
    if (want_refusal) {
      say("OK authentication refused as expected");
      return 0;
    }
    say("FAIL authentication refused");
    return 1;
  }
  if (want_refusal) {
    say("FAIL authentication succeeded although it should have been refused");
    return 1;
  }

  c.restart_parser();
  if (!c.open_stream("authenticated")) return 1;
  features = c.next("the features after SASL");
  if (!features) return 1;
  if (!features->is("features", kNsStream) || features->child("bind", kNsBind) == nullptr) {
    say("FAIL no <bind/> after SASL: %s", features->xml.c_str());
    return 1;
  }
  if (!c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
              "<resource>" +
              o.resource + "</resource></bind></iq>")) {
    return 1;
  }
  auto reply = c.next("the bind result");
  if (!reply) return 1;
  const Node* bind = reply->child("bind", kNsBind);
  const Node* jid = bind ? bind->child("jid", kNsBind) : nullptr;
  if (!reply->is("iq", kNsClient) || reply->attr("id") != "bind1" ||
      reply->attr("type") != "result" || jid == nullptr) {
    say("FAIL bind: %s", reply->xml.c_str());
    return 1;
  }
  std::string expected_jid = o.user + "@" + o.domain + "/" + o.resource;
  if (jid->text != expected_jid) {
    say("FAIL bound %s, expected %s", jid->text.c_str(), expected_jid.c_str());
    return 1;
  }
  say("bind: %s", jid->text.c_str());

  if (!c.send("<iq type='get' id='ping1' to='" + o.domain +
              "'><ping xmlns='urn:xmpp:ping'/></iq>")) {
    return 1;
  }
  // Skip anything unrelated the server may push (none expected yet).
  for (;;) {
    reply = c.next("the ping result");
    if (!reply) return 1;
    if (reply->is("iq", kNsClient) && reply->attr("id") == "ping1") break;
    say("other: %s", reply->xml.c_str());
  }
  if (reply->attr("type") != "result" || reply->attr("from") != o.domain) {
    say("FAIL ping: %s", reply->xml.c_str());
    return 1;
  }
  say("ping: result from %s", reply->attr("from").c_str());
  c.send("</stream:stream>");
  say("OK logged in with %s using %s", o.mech.c_str(), o.cb.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = parse_args(argc, argv);
  if (!opt) {
    usage();
    return 2;
  }
  if (sodium_init() < 0 || wolfSSL_Init() != WOLFSSL_SUCCESS) {
    say("FAIL library initialisation");
    return 1;
  }
  int rc = run(*opt);
  wolfSSL_Cleanup();
  return rc;
}
