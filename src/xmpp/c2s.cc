#include "xmpp/c2s.h"

#include "modules/host.h"

#include <sodium.h>

#include <algorithm>

#include "core/base64.h"
#include "core/log.h"
#include "xml/element.h"
#include "xml/fragment.h"

namespace hearth::xmpp {
namespace {
// Before authentication nothing big is legitimate (RFC 6120 leaves this to
// policy; SASL messages are a few hundred bytes).
constexpr size_t kPreAuthStanzaSize = 16384;
constexpr unsigned kMaxSaslFailures = 3;
// XEP-0198: ask for an acknowledgement once this many stanzas are
// unacknowledged, or this long after the first one (a phone is not woken
// for every stanza).
constexpr size_t kAckEvery = 5;
constexpr uint64_t kAckDelayMs = 5000;
std::string g_out;  // serialisation scratch, reused by every stream

std::string random_token(size_t bytes) {
  unsigned char raw[32];
  randombytes_buf(raw, bytes);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[raw[i] >> 4]);
    out.push_back(kHex[raw[i] & 15]);
  }
  return out;
}
}  // namespace

namespace {
// "192.0.2.1:5222" -> "192.0.2.1", "[2001:db8::1]:5222" -> "2001:db8::1".
std::string ip_of(const std::string& peer) {
  if (!peer.empty() && peer.front() == '[') {
    size_t close = peer.find(']');
    return close == std::string::npos ? peer : peer.substr(1, close - 1);
  }
  size_t colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}
}  // namespace

C2sStream::C2sStream(StreamHost* host, std::unique_ptr<net::Connection> conn, bool direct_tls)
    : host_(host),
      conn_(std::move(conn)),
      parser_(this, xml::ParserLimits{.max_stanza_size = kPreAuthStanzaSize}),
      reply_arena_(1024) {
  static uint64_t next_id = 0;
  id_ = ++next_id;
  peer_ip_ = ip_of(conn_->peer());
  if (direct_tls) state_ = State::kTlsHandshake;
}

C2sStream::~C2sStream() {
  if (auth_timer_) host_->loop().cancel_timer(auth_timer_);
  if (ping_timer_) host_->loop().cancel_timer(ping_timer_);
  if (idle_timer_) host_->loop().cancel_timer(idle_timer_);
  if (quiet_timer_) host_->loop().cancel_timer(quiet_timer_);
}

void C2sStream::arm_idle_timer(uint64_t ms) {
  idle_timer_ = host_->loop().add_timer(ms, [this] {
    idle_timer_ = 0;
    on_idle_timer();
  });
}

// [limits] preauth_idle_timeout: before authentication a connection may not
// sit silent (a cheap way to hold sockets). Silence counts from the later of
// its last byte and our last reply; while the server itself is busy (a SASL
// step with the auth worker) or has paused reading, it is not the client's.
// One timer per stream, re-armed for the remainder, not per byte.
void C2sStream::on_idle_timer() {
  if (authenticated_ || closing_ || state_ == State::kClosed) return;
  uint64_t limit = host_->preauth_idle_timeout_ms();
  if (limit == 0) return;
  uint64_t now = core::Loop::now_ms();
  uint64_t last = std::max(conn_->last_input_ms(), conn_->last_output_ms());
  if (sasl_pending_ || conn_->input_paused() || last > now) last = now;
  if (now - last >= limit) {
    HEARTH_INFO("c2s", "%s: silent for %llu s before authenticating", peer().c_str(),
                static_cast<unsigned long long>((now - last) / 1000));
    stream_error("connection-timeout", "silent for too long before logging in");
    return;
  }
  arm_idle_timer(limit - (now - last));
}

void C2sStream::arm_ping_timer(uint32_t ms) {
  if (ping_timer_) host_->loop().cancel_timer(ping_timer_);
  heard_ = false;
  ping_timer_ = host_->loop().add_timer(ms, [this] {
    ping_timer_ = 0;
    on_ping_timer();
  });
}

// XEP-0199 §4.1: a client that has been silent for ping_interval is
// pinged; one that stays silent for ping_timeout after that is gone (a
// dead NAT mapping or a phone out of coverage) and its session is closed,
// so its contacts see it go offline.
void C2sStream::on_ping_timer() {
  if (state_ != State::kBound || closing_ || session_ == nullptr) return;
  if (heard_) {
    ping_pending_ = false;
    arm_ping_timer(host_->ping_interval_ms());
    return;
  }
  if (ping_pending_) {
    HEARTH_INFO("c2s", "%s: %s did not answer a ping", peer().c_str(),
                session_->jid().full().c_str());
    stream_error("connection-timeout", "no answer to a ping");
    return;
  }
  ping_pending_ = true;
  std::string ping = "<iq type='get' id='srv-ping-";
  ping += std::to_string(++ping_seq_);
  ping += "' from='";
  xml::append_escaped(&ping, host_->domain(), true);
  ping += "' to='";
  xml::append_escaped(&ping, session_->jid().full(), true);
  ping += "'><ping xmlns='urn:xmpp:ping'/></iq>";
  session_->write(ping);
  arm_ping_timer(host_->ping_timeout_ms());
}

Status C2sStream::start() {
  auth_timer_ = host_->loop().add_timer(host_->pre_auth_timeout_ms(), [this] {
    auth_timer_ = 0;
    HEARTH_INFO("c2s", "%s: not authenticated in time", peer().c_str());
    stream_error("connection-timeout", "authenticate sooner");
  });
  if (uint32_t idle = host_->preauth_idle_timeout_ms(); idle > 0) arm_idle_timer(idle);
  return conn_->start(this);
}

void C2sStream::on_data(std::string_view data) {
  if (state_ == State::kClosed || closing_) return;
  if (state_ == State::kTlsHandshake) return;  // cannot happen: TLS delivers after handshake
  heard_ = true;
  quiet_heard_ = true;
  parser_.feed(data);
  if (quiet_timer_ == 0 && state_ == State::kBound && !closing_) arm_quiet_timer();
}

// A bound stream that has been quiet for a whole period gives back its XML
// parser (expat, the stanza arena and buffers: 17.9 KB of an idle
// session's memory); the next byte re-creates it, which costs about 3.5 us,
// so a busy stream keeps its parser. The timer runs only while bytes keep
// arriving: a hibernated stream has none. Hibernation happens from the loop,
// never inside a parser callback, and only between stanzas.
void C2sStream::arm_quiet_timer() {
  constexpr uint64_t kParserIdleMs = 5000;
  quiet_heard_ = false;
  quiet_timer_ = host_->loop().add_timer(kParserIdleMs, [this] {
    quiet_timer_ = 0;
    if (state_ != State::kBound || closing_) return;
    if (quiet_heard_ || !parser_.hibernate()) {
      arm_quiet_timer();  // busy, or mid-stanza
      return;
    }
    HEARTH_DEBUG("c2s", "%s: quiet, parser released", peer().c_str());
  });
}

void C2sStream::on_tls_ready() {
  tls_ = true;
  // STARTTLS (RFC 6120 §5.4.3.3) and direct TLS (XEP-0368) both start a
  // fresh stream over TLS.
  parser_.reset();
  header_sent_ = false;
  state_ = State::kWaitHeader;
}

void C2sStream::on_stream_start(const xml::Element& header) {
  std::string_view to = header.attr("to");
  send_header(header.attr("from"));
  // RFC 6120 §4.8.2: a client stream's default namespace is jabber:client.
  if (parser_.default_ns() != xml::kNsClient) {
    stream_error("invalid-namespace", "the default namespace must be jabber:client");
    return;
  }
  if (to.empty()) {
    stream_error("host-unknown", "the stream header needs to='" + host_->domain() + "'");
    return;
  }
  Result<std::string> domain = normalize_domainpart(to);
  if (!domain.ok() || domain.value() != host_->domain()) {
    stream_error("host-unknown", "this server serves " + host_->domain());
    return;
  }
  // RFC 6120 §4.7.5: we speak 1.0; a missing or older version is refused.
  std::string_view version = header.attr("version");
  if (version.empty() || version.substr(0, 2) != "1.") {
    stream_error("unsupported-version", "version='1.0' is required");
    return;
  }
  state_ = authenticated_ ? State::kAuthenticated : State::kFeatures;
  send_features();
}

void C2sStream::send_header(std::string_view to_attr) {
  if (header_sent_) return;
  header_sent_ = true;
  g_out.assign(
      "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
      "xmlns:stream='http://etherx.jabber.org/streams' id='");
  g_out += random_token(16);
  g_out += "' from='";
  xml::append_escaped(&g_out, host_->domain(), true);
  g_out += "'";
  if (!to_attr.empty() && to_attr.size() < 3072) {
    // RFC 6120 §4.7.2: echo the initiator's 'from' as 'to' (only if sane).
    Result<Jid> to = Jid::parse(to_attr);
    if (to.ok()) {
      g_out += " to='";
      xml::append_escaped(&g_out, to->full(), true);
      g_out += "'";
    }
  }
  g_out += " version='1.0' xml:lang='en'>";
  conn_->send(g_out);
}

ChannelBindings C2sStream::channel_bindings() const {
  ChannelBindings cb;
  cb.domain = host_->domain();  // an authzid may be user@domain (RFC 6120 §6.3.8)
  cb.peer_ip = peer_ip_;
  if (!tls_ || !conn_->tls()) return cb;
  cb.tls = true;
  cb.tls_exporter = conn_->tls()->exporter_binding();
  if (const net::TlsContext* ctx = host_->tls_context())
    cb.tls_server_end_point = ctx->server_end_point();
  return cb;
}

void C2sStream::send_features() {
  g_out.assign("<stream:features>");
  if (!tls_) {
    // require_encryption: STARTTLS is the only thing on offer.
    g_out += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
  } else if (!authenticated_) {
    ChannelBindings cb = channel_bindings();
    g_out += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    for (const std::string& m : host_->authenticator().mechanisms(cb)) {
      g_out += "<mechanism>";
      g_out += m;
      g_out += "</mechanism>";
    }
    g_out += "</mechanisms>";
    if (cb.any()) {
      // XEP-0440: the channel-binding types we can verify.
      g_out += "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>";
      if (!cb.tls_server_end_point.empty())
        g_out += "<channel-binding type='tls-server-end-point'/>";
      if (!cb.tls_exporter.empty()) g_out += "<channel-binding type='tls-exporter'/>";
      g_out += "</sasl-channel-binding>";
    }
    host_->modules().preauth_features(g_out);  // e.g. XEP-0077 registration
  } else {
    g_out +=
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
        "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
        "<sm xmlns='urn:xmpp:sm:3'/>";
    host_->modules().stream_features(g_out);
  }
  g_out += "</stream:features>";
  conn_->send(g_out);
}

void C2sStream::on_stanza(xml::Element& e) {
  if (state_ == State::kClosed || closing_) return;
  if (!tls_) {
    if (e.ns == kNsTls && e.name == "starttls" && state_ == State::kFeatures) {
      conn_->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      // Bytes pipelined after <starttls/> are dropped (command injection,
      // CVE-2011-0411 style): the parser discards the rest of this chunk.
      parser_.reset();
      conn_->start_tls();
      state_ = State::kTlsHandshake;
      return;
    }
    stream_error("policy-violation", "TLS is required: send <starttls/> first");
    return;
  }
  if (e.ns == kNsSasl) {
    if (authenticated_) {
      stream_error("policy-violation", "already authenticated");
      return;
    }
    handle_sasl(e);
    return;
  }
  if (e.ns == kNsTls) {
    stream_error("policy-violation", "TLS is already active");
    return;
  }
  if (!authenticated_ && state_ == State::kFeatures && e.ns == xml::kNsClient && e.name == "iq" &&
      host_->modules().preauth_iq(*this, e)) {
    return;  // in-band registration (XEP-0077, XEP-0401)
  }
  if (!authenticated_ || state_ == State::kSasl) {
    // RFC 6120 §4.9.3.12
    stream_error("not-authorized", "authenticate first");
    return;
  }
  if (e.ns == kNsSm) {
    handle_sm(e);
    return;
  }
  if (e.ns != xml::kNsClient && state_ == State::kBound && host_->modules().nonza(*session_, e))
    return;
  if (e.ns != xml::kNsClient || (e.name != "message" && e.name != "presence" && e.name != "iq")) {
    stream_error("unsupported-stanza-type");
    return;
  }
  if (state_ == State::kAuthenticated) {
    if (e.name == "iq" && e.attr("type") == "set") {
      if (xml::Element* b = e.child("bind", kNsBind)) {
        (void)b;
        handle_bind(e);
        return;
      }
    }
    stream_error("not-authorized", "bind a resource first");
    return;
  }
  handle_stanza(e);
}

void C2sStream::handle_sasl(xml::Element& e) {
  if (e.name == "abort") {
    if (sasl_exchange_) host_->authenticator().abort(sasl_exchange_);
    sasl_exchange_ = 0;
    sasl_wait_initial_ = false;
    sasl_pending_ = false;
    state_ = State::kFeatures;
    conn_->send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
    return;
  }
  bool is_auth = e.name == "auth";
  bool is_response = e.name == "response";
  if (!is_auth && !is_response) {
    stream_error("unsupported-stanza-type");
    return;
  }
  if (sasl_pending_) {
    // The authenticator has not answered yet: the client must wait.
    stream_error("policy-violation", "wait for the server's SASL reply");
    return;
  }
  std::string text = e.text();
  Result<std::string> data = std::string();
  if (!(is_auth && text == "=")) {
    data = base64_decode(text);
    if (!data.ok()) {
      sasl_failure("incorrect-encoding");
      return;
    }
  }
  Authenticator& auth = host_->authenticator();
  if (is_auth) {
    if (state_ == State::kSasl) {
      stream_error("policy-violation", "a SASL exchange is already running");
      return;
    }
    sasl_mechanism_ = std::string(e.attr("mechanism"));
    state_ = State::kSasl;
    if (text.empty()) {
      // No initial response (RFC 6120 §6.4.2): ask for it with an empty challenge.
      sasl_wait_initial_ = true;
      conn_->send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      return;
    }
    sasl_pending_ = true;
    sasl_exchange_ = auth.start(sasl_mechanism_, data.value(), channel_bindings(),
                                [this](SaslReply r) { sasl_reply(std::move(r)); });
    sodium_memzero(data.value().data(), data.value().size());
    return;
  }
  if (state_ != State::kSasl) {
    stream_error("policy-violation", "<response/> without an exchange");
    return;
  }
  sasl_pending_ = true;
  if (sasl_wait_initial_) {
    sasl_wait_initial_ = false;
    sasl_exchange_ = auth.start(sasl_mechanism_, data.value(), channel_bindings(),
                                [this](SaslReply r) { sasl_reply(std::move(r)); });
  } else {
    auth.step(sasl_exchange_, data.value(), [this](SaslReply r) { sasl_reply(std::move(r)); });
  }
  sodium_memzero(data.value().data(), data.value().size());
}

void C2sStream::sasl_reply(SaslReply reply) {
  sasl_pending_ = false;
  if (state_ != State::kSasl || closing_) return;
  switch (reply.kind) {
    case SaslReply::Kind::kChallenge:
      g_out.assign("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
      g_out += base64_encode(reply.data);
      g_out += "</challenge>";
      conn_->send(g_out);
      return;
    case SaslReply::Kind::kSuccess: {
      sasl_exchange_ = 0;
      authenticated_ = true;
      if (idle_timer_) {
        host_->loop().cancel_timer(idle_timer_);
        idle_timer_ = 0;
      }
      username_ = reply.username;
      HEARTH_INFO("c2s", "%s: authenticated %s@%s with %s", peer().c_str(), username_.c_str(),
                  host_->domain().c_str(), sasl_mechanism_.c_str());
      g_out.assign("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
      if (!reply.data.empty()) g_out += base64_encode(reply.data);
      g_out += "</success>";
      conn_->send(g_out);
      // RFC 6120 §6.4.6: the stream restarts; stanza limits now apply in full.
      parser_.reset();
      parser_.set_max_stanza_size(host_->max_stanza_size());
      header_sent_ = false;
      state_ = State::kWaitHeader;
      return;
    }
    case SaslReply::Kind::kFailure:
      sasl_exchange_ = 0;
      HEARTH_INFO("c2s", "%s: authentication failed (%s, %s)", peer().c_str(),
                  sasl_mechanism_.c_str(), reply.condition.c_str());
      sasl_failure(reply.condition.empty() ? "not-authorized" : reply.condition);
      return;
  }
}

void C2sStream::sasl_failure(std::string_view condition) {
  if (sasl_exchange_) host_->authenticator().abort(sasl_exchange_);
  sasl_exchange_ = 0;
  sasl_wait_initial_ = false;
  sasl_pending_ = false;
  state_ = State::kFeatures;
  g_out.assign("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><");
  g_out += condition;
  g_out += "/></failure>";
  conn_->send(g_out);
  // RFC 6120 §6.4.5 lets the server limit retries.
  if (++sasl_failures_ >= kMaxSaslFailures)
    stream_error("policy-violation", "too many failed authentication attempts");
}

void C2sStream::handle_bind(xml::Element& iq) {
  xml::Element* bind = iq.child("bind", kNsBind);
  std::string resource;
  if (xml::Element* r = bind->child("resource", kNsBind)) resource = r->text();
  xml::Element* reply = reply_arena_.make_element("iq", xml::kNsClient);
  if (iq.has_attr("id")) reply->set_attr("id", iq.attr("id"));
  Result<Jid> jid = make_error("");
  if (resource.empty()) {
    jid = Jid::from_parts(username_, host_->domain(), random_token(8));
  } else {
    jid = Jid::from_parts(username_, host_->domain(), resource);
  }
  if (!jid.ok()) {
    reply->set_attr("type", "error");
    xml::Element* error = reply->add_child("error", xml::kNsClient);
    error->set_attr("type", "modify");
    error->add_child("bad-request", kNsStanzas);
    send_element(*reply);
    reply_arena_.reset();
    return;
  }
  session_ = host_->create_session(this, std::move(jid.value()));
  Session* old = host_->router().bind(session_);
  if (old) {
    // RFC 6120 §7.7.2.2: the newer session wins; the older one is told why.
    old->kick("conflict", "replaced by a new connection with the same resource");
  }
  state_ = State::kBound;
  if (auth_timer_) {
    host_->loop().cancel_timer(auth_timer_);
    auth_timer_ = 0;
  }
  HEARTH_INFO("c2s", "%s: bound %s", peer().c_str(), session_->jid().full().c_str());
  reply->set_attr("type", "result");
  reply->add_child("bind", kNsBind)->add_child("jid", kNsBind)->add_text(session_->jid().full());
  send_element(*reply);
  reply_arena_.reset();
  if (host_->ping_interval_ms() > 0) arm_ping_timer(host_->ping_interval_ms());
  host_->modules().session_bound(*session_);
}

void C2sStream::handle_stanza(xml::Element& st) {
  Router& router = host_->router();
  ClientSession& session = *session_;
  // XEP-0198 §4: every stanza received counts, whatever becomes of it.
  if (session.sm_enabled()) ++session.handled_in();
  // RFC 6120 §8.1.2.1: 'from' is ours to stamp; a different one is an error.
  const Jid& jid = session.jid();
  std::string full = jid.full();
  std::string_view from = st.attr("from");
  if (!from.empty()) {
    Result<Jid> f = Jid::parse(from);
    if (!f.ok() || (f.value() != jid && f.value() != jid.bare_jid())) {
      stream_error("invalid-from");
      return;
    }
  }
  st.set_attr("from", full);
  std::string_view type = st.attr("type");
  if (st.name == "iq") {
    if (!st.has_attr("id") ||
        (type != "get" && type != "set" && type != "result" && type != "error")) {
      router.reply_error(st, session, "modify", "bad-request", "an iq needs an id and a type");
      return;
    }
    if (type == "get" || type == "set") {
      // RFC 6120 §8.2.3: exactly one payload child.
      int children = 0;
      for (const xml::Node& n : st.children)
        if (n.element) ++children;
      if (children != 1) {
        router.reply_error(st, session, "modify", "bad-request", "get and set carry one child");
        return;
      }
      if (st.child("bind", kNsBind)) {
        router.reply_error(st, session, "cancel", "not-allowed", "already bound");
        return;
      }
      if (type == "set" && st.child("session", kNsSession) && !st.has_attr("to")) {
        // RFC 3921 legacy session establishment, advertised as optional.
        xml::Element* reply = reply_arena_.make_element("iq", xml::kNsClient);
        reply->set_attr("id", st.attr("id"));
        reply->set_attr("type", "result");
        send_element(*reply);
        reply_arena_.reset();
        return;
      }
    }
  } else if (st.name == "message") {
    if (!type.empty() && type != "chat" && type != "normal" && type != "groupchat" &&
        type != "headline" && type != "error") {
      router.reply_error(st, session, "modify", "bad-request", "unknown message type");
      return;
    }
  } else if (st.name == "presence") {
    if (!type.empty() && type != "unavailable" && type != "subscribe" && type != "subscribed" &&
        type != "unsubscribe" && type != "unsubscribed" && type != "probe" && type != "error") {
      router.reply_error(st, session, "modify", "bad-request", "unknown presence type");
      return;
    }
  }
  host_->modules().route(st, session);
}

// ---- XEP-0198 ----

void C2sStream::sm_failed(std::string_view condition, std::string_view extra) {
  std::string out = "<failed xmlns='urn:xmpp:sm:3'";
  out += extra;
  out += "><";
  out += condition;
  out += " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>";
  conn_->send(out);
}

namespace {
bool parse_u32(std::string_view text, uint32_t* out) {
  if (text.empty() || text.size() > 10) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFFu) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}
}  // namespace

void C2sStream::handle_sm(xml::Element& e) {
  if (e.name == "resume") {
    handle_resume(e);
    return;
  }
  if (e.name == "enable") {
    // §3: after binding, once.
    if (state_ != State::kBound || session_->sm_enabled()) {
      sm_failed("unexpected-request");
      return;
    }
    std::string_view resume = e.attr("resume");
    bool resumable = (resume == "true" || resume == "1") && host_->resume_timeout_ms() > 0;
    session_->enable_sm(resumable);
    std::string out = "<enabled xmlns='urn:xmpp:sm:3'";
    if (resumable) {
      out += " id='";
      out += session_->sm_id();
      out += "' resume='true' max='";
      out += std::to_string(host_->resume_timeout_ms() / 1000);
      out += "'";
    }
    out += "/>";
    conn_->send(out);
    return;
  }
  if (e.name != "r" && e.name != "a") {
    stream_error("unsupported-stanza-type");
    return;
  }
  if (state_ != State::kBound || !session_->sm_enabled()) {
    stream_error("unsupported-stanza-type", "enable stream management first");
    return;
  }
  if (e.name == "r") {
    std::string out = "<a xmlns='urn:xmpp:sm:3' h='";
    out += std::to_string(session_->handled_in());
    out += "'/>";
    conn_->send(out);
    return;
  }
  uint32_t h = 0;
  if (!parse_u32(e.attr("h"), &h)) {
    stream_error("bad-format", "h must be a number from 0 to 4294967295");
    return;
  }
  session_->ack_answered();
  if (!session_->acknowledge(h)) {
    std::string app = "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='";
    app += std::to_string(h);
    app += "' send-count='";
    app += std::to_string(session_->queue().sent());
    app += "'/>";
    stream_error("undefined-condition", "acknowledged more stanzas than were sent", app);
    return;
  }
  session_->maybe_request_ack();
}

// XEP-0198 §5: a new stream takes over a session that lost its connection.
void C2sStream::handle_resume(xml::Element& e) {
  if (state_ != State::kAuthenticated) {
    sm_failed("unexpected-request");
    return;
  }
  uint32_t h = 0;
  if (!parse_u32(e.attr("h"), &h)) {
    stream_error("bad-format", "h must be a number from 0 to 4294967295");
    return;
  }
  ClientSession* s = host_->find_resumable(e.attr("previd"));
  // Another account's id is "not found" too: ids are not to be probed.
  if (s == nullptr || s->jid().local() != username_) {
    sm_failed("item-not-found");
    return;
  }
  if (s->queue().ack(h) == SmQueue::Ack::kTooHigh) {
    std::string extra = " h='" + std::to_string(s->handled_in()) + "'";
    sm_failed("unexpected-request", extra);
    return;
  }
  if (C2sStream* old = s->stream()) {
    // The old connection died without us noticing (§5 "silent" loss).
    old->release_session("the session was resumed on another connection");
  }
  session_ = s;
  s->attach(this);
  state_ = State::kBound;
  if (auth_timer_) {
    host_->loop().cancel_timer(auth_timer_);
    auth_timer_ = 0;
  }
  HEARTH_INFO("c2s", "%s: resumed %s (%zu stanzas to send again)", peer().c_str(),
              s->jid().full().c_str(), s->queue().size());
  std::string out = "<resumed xmlns='urn:xmpp:sm:3' previd='";
  xml::append_escaped(&out, s->sm_id(), true);
  out += "' h='";
  out += std::to_string(s->handled_in());
  out += "'/>";
  conn_->send(out);
  SmQueue& q = s->queue();
  for (size_t i = 0; i < q.size(); ++i)
    conn_->send(q.at(i));
  s->maybe_request_ack();
  if (host_->ping_interval_ms() > 0) arm_ping_timer(host_->ping_interval_ms());
  host_->modules().session_resumed(*s);
}

void C2sStream::release_session(std::string_view why) {
  session_ = nullptr;
  stream_error("conflict", why);
}

void C2sStream::send_element(const xml::Element& e) {
  g_out.clear();
  xml::serialize(e, &g_out);
  if (session_ != nullptr) {
    session_->write(g_out);  // counted (XEP-0198)
  } else {
    conn_->send(g_out);
  }
}

void C2sStream::stream_error(std::string_view condition, std::string_view text,
                             std::string_view app_xml) {
  if (state_ == State::kClosed || closing_) return;
  // A stream the server ends on purpose ends its session too; a dead
  // connection found by the ping leaves it to be resumed.
  if (condition != "connection-timeout") final_ = true;
  if (state_ == State::kTlsHandshake && !tls_ && conn_->is_tls()) {
    // Nothing XML can be said inside an unfinished handshake.
    end(condition);
    return;
  }
  send_header({});
  g_out.assign("<stream:error><");
  g_out += condition;
  g_out += " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>";
  g_out += app_xml;
  if (!text.empty()) {
    g_out += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>";
    xml::append_escaped(&g_out, text, false);
    g_out += "</text>";
  }
  g_out += "</stream:error></stream:stream>";
  conn_->send(g_out);
  HEARTH_INFO("c2s", "%s: stream error %.*s", peer().c_str(), static_cast<int>(condition.size()),
              condition.data());
  end(condition);
}

void C2sStream::on_stream_end() {
  if (closing_) return;
  final_ = true;  // a clean close: no resumption (XEP-0198 §5)
  send_header({});
  conn_->send("</stream:stream>");
  end("client closed the stream");
}

void C2sStream::on_stream_error(xml::StreamError error, std::string_view text) {
  stream_error(xml::stream_error_name(error), text);
}

void C2sStream::end(std::string_view reason) {
  (void)reason;
  if (closing_) return;
  closing_ = true;
  for (core::Loop::TimerId* t : {&ping_timer_, &idle_timer_, &quiet_timer_}) {
    if (*t) host_->loop().cancel_timer(*t);
    *t = 0;
  }
  if (session_ != nullptr) {
    ClientSession* s = session_;
    session_ = nullptr;
    if (final_) {
      s->end();
    } else {
      s->detach();  // ends now unless the client can resume it
    }
  }
  if (sasl_exchange_) {
    host_->authenticator().abort(sasl_exchange_);
    sasl_exchange_ = 0;
  }
  conn_->close();
}

void C2sStream::on_closed(std::string_view reason) {
  HEARTH_DEBUG("c2s", "%s: closed (%.*s)", peer().c_str(), static_cast<int>(reason.size()),
               reason.data());
  if (!closing_) end(reason);
  state_ = State::kClosed;
  host_->stream_closed(this);
}

// ---- ClientSession ----

ClientSession::ClientSession(StreamHost* host, C2sStream* stream, Jid jid)
    : host_(host), stream_(stream), jid_(std::move(jid)) {}

ClientSession::~ClientSession() {
  core::Loop& loop = host_->loop();
  if (resume_timer_) loop.cancel_timer(resume_timer_);
  if (r_timer_) loop.cancel_timer(r_timer_);
  if (overflow_timer_) loop.cancel_timer(overflow_timer_);
}

void ClientSession::deliver(const xml::Element& stanza) {
  if (ended_) return;
  if (host_->modules().filter_output(*this, stanza)) return;  // held or dropped (CSI)
  bool elsewhere = sm_enabled_ && stanza.name == "message" && copy_elsewhere(stanza);
  g_out.clear();
  xml::serialize(stanza, &g_out);
  write(g_out, elsewhere);
}

bool ClientSession::copy_elsewhere(const xml::Element& message) const {
  bool to_bare = message.attr("to").find('/') == std::string_view::npos;
  for (Session* other : host_->router().resources(jid_.bare())) {
    if (other == this) continue;
    // RFC 6121 §8.5.2.1.1: a bare-JID message goes to every available
    // resource of the highest priority; we are one of them.
    if (to_bare && other->available() && other->priority() >= 0 && other->priority() == priority())
      return true;
    // XEP-0280: a message to this full JID is copied to carbons sessions.
    if (!to_bare && other->carbons()) return true;
  }
  return false;
}

void ClientSession::deliver_raw(std::string_view xml) {
  if (ended_) return;
  write(xml);
}

void ClientSession::write(std::string_view xml, bool elsewhere) {
  if (ended_) return;
  if (sm_enabled_) {
    queue_.push(xml, elsewhere);
    if (queue_.size() > host_->sm_max_queue() && !overflow_) {
      // Not from inside the delivery that is running: the session's
      // end changes the session table that is being walked.
      overflow_ = true;
      HEARTH_INFO("c2s", "%s: %zu stanzas unacknowledged, closing", jid_.full().c_str(),
                  queue_.size());
      overflow_timer_ = host_->loop().add_timer(0, [this] {
        overflow_timer_ = 0;
        kick("policy-violation", "too many unacknowledged stanzas");
      });
    }
  }
  if (stream_ != nullptr) {
    stream_->send_raw(xml);
    if (sm_enabled_) maybe_request_ack();
  }
}

void ClientSession::kick(std::string_view condition, std::string_view text) {
  if (ended_) return;
  if (stream_ != nullptr) {
    stream_->stream_error(condition, text);  // ends the session (final)
  } else {
    end();
  }
}

void ClientSession::enable_sm(bool resumable) {
  sm_enabled_ = true;
  in_count_ = 0;
  if (resumable) {
    sm_id_ = random_token(16);
    host_->register_resumable(sm_id_, this);
  }
}

bool ClientSession::acknowledge(uint32_t h) {
  return queue_.ack(h) != SmQueue::Ack::kTooHigh;
}

void ClientSession::maybe_request_ack() {
  if (stream_ == nullptr || r_pending_ || queue_.empty()) return;
  if (queue_.size() >= kAckEvery) {
    send_request();
    return;
  }
  if (r_timer_ == 0) {
    r_timer_ = host_->loop().add_timer(kAckDelayMs, [this] {
      r_timer_ = 0;
      if (stream_ != nullptr && !r_pending_ && !queue_.empty()) send_request();
    });
  }
}

void ClientSession::send_request() {
  r_pending_ = true;
  if (r_timer_) {
    host_->loop().cancel_timer(r_timer_);
    r_timer_ = 0;
  }
  stream_->send_raw("<r xmlns='urn:xmpp:sm:3'/>");
}

void ClientSession::detach() {
  stream_ = nullptr;
  r_pending_ = false;
  if (r_timer_) {
    host_->loop().cancel_timer(r_timer_);
    r_timer_ = 0;
  }
  if (sm_id_.empty() || ended_ || overflow_) {
    end();
    return;
  }
  HEARTH_INFO("c2s", "%s: connection lost; waiting %u s for it to resume", jid_.full().c_str(),
              host_->resume_timeout_ms() / 1000);
  resume_timer_ = host_->loop().add_timer(host_->resume_timeout_ms(), [this] {
    resume_timer_ = 0;
    HEARTH_INFO("c2s", "%s: not resumed in time", jid_.full().c_str());
    end();
  });
}

void ClientSession::attach(C2sStream* stream) {
  stream_ = stream;
  r_pending_ = false;
  if (resume_timer_) {
    host_->loop().cancel_timer(resume_timer_);
    resume_timer_ = 0;
  }
}

void ClientSession::end() {
  if (ended_) return;
  ended_ = true;
  if (stream_ != nullptr) {
    C2sStream* s = stream_;
    stream_ = nullptr;
    if (s->session() == this) s->release_session("the session ended");
  }
  if (!sm_id_.empty()) host_->unregister_resumable(sm_id_);
  core::Loop& loop = host_->loop();
  for (core::Loop::TimerId* t : {&resume_timer_, &r_timer_, &overflow_timer_}) {
    if (*t) loop.cancel_timer(*t);
    *t = 0;
  }
  // The modules see the session go (RFC 6121 §4.5.2: presence module
  // broadcasts unavailable) while it can still be found.
  host_->modules().session_closed(*this);
  host_->router().unbind(this);
  // XEP-0198 §5 (and "nothing acknowledged is lost"): messages the client
  // never acknowledged go to the account again: another resource or
  // offline storage. Only plain messages with a body; copies (carbons,
  // archive results) and notifications are not messages for the account.
  if (!queue_.empty()) {
    // A message that another session of the account got too (marked at
    // delivery) is not sent again while such a session is still there.
    bool others = false;
    for (Session* other : host_->router().resources(jid_.bare()))
      if (other != this) others = true;
    xml::Arena arena(2048);
    size_t again = 0, answered = 0;
    for (size_t i = 0; i < queue_.size(); ++i) {
      Result<xml::Element*> parsed = xml::parse_fragment(queue_.at(i), arena);
      if (!parsed.ok()) continue;
      xml::Element& el = *parsed.value();
      std::string_view type = el.attr("type");
      if (el.name == "message" && el.child("body") != nullptr &&
          (type.empty() || type == "chat" || type == "normal")) {
        if (queue_.marked(i) && others) continue;
        host_->modules().redeliver_unacked(el, jid_);
        ++again;
      } else if (el.name == "iq" && (type == "get" || type == "set")) {
        // RFC 6120 §8.2.3: a request gets an answer, as one to a resource
        // that is gone (XEP-0198 §5 treats the queue that way).
        xml::Element* reply = arena.make_element("iq", xml::kNsClient);
        reply->set_attr("from", jid_.full());
        reply->set_attr("to", el.attr("from"));
        reply->set_attr("id", el.attr("id"));
        reply->set_attr("type", "error");
        xml::Element* error = reply->add_child("error", xml::kNsClient);
        error->set_attr("type", "cancel");
        error->add_child("service-unavailable", kNsStanzas);
        host_->modules().send(*reply);
        ++answered;
      }
      arena.reset();
    }
    HEARTH_INFO("c2s",
                "%s: %zu unacknowledged stanzas, %zu messages delivered again, %zu "
                "requests answered with an error",
                jid_.full().c_str(), queue_.size(), again, answered);
    queue_.clear();
  }
  host_->session_ended(this);
}

}  // namespace hearth::xmpp
