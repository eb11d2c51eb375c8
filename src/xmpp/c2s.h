// One client-to-server stream (RFC 6120): stream header and features,
// STARTTLS, SASL through the asynchronous Authenticator, resource binding,
// then stanzas to the router.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/loop.h"
#include "net/connection.h"
#include "xml/parser.h"
#include "xmpp/auth.h"
#include "xmpp/jid.h"
#include "xmpp/router.h"

namespace hearth::modules {
class Host;
}

namespace hearth::xmpp {

inline constexpr std::string_view kNsTls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view kNsSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view kNsBind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view kNsStreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kNsSaslCb = "urn:xmpp:sasl-cb:0";

// What a stream needs from the server around it.
class StreamHost {
 public:
  virtual ~StreamHost() = default;
  virtual core::Loop& loop() = 0;
  virtual Router& router() = 0;
  virtual modules::Host& modules() = 0;
  virtual Authenticator& authenticator() = 0;
  virtual const std::string& domain() const = 0;
  virtual const net::TlsContext* tls_context() const = 0;
  virtual size_t max_stanza_size() const = 0;
  virtual uint32_t pre_auth_timeout_ms() const = 0;
  // XEP-0199 server pings: silence before a ping, and the time to answer
  // (0 interval: never ping).
  virtual uint32_t ping_interval_ms() const = 0;
  virtual uint32_t ping_timeout_ms() const = 0;
  // The stream is finished; free it at the end of the turn.
  virtual void stream_closed(class C2sStream* stream) = 0;
};

class C2sStream : public net::ConnectionHandler, public xml::StreamParser::Handler, public Session {
 public:
  C2sStream(StreamHost* host, std::unique_ptr<net::Connection> conn, bool direct_tls);
  ~C2sStream() override;

  Status start();

  // Session
  const Jid& jid() const override { return jid_; }
  void deliver(const xml::Element& stanza) override;
  void deliver_raw(std::string_view xml) override;
  void kick(std::string_view condition, std::string_view text) override;

  // Close with a stream error (RFC 6120 §4.9) and end the stream.
  void stream_error(std::string_view condition, std::string_view text = {});

  bool bound() const { return state_ == State::kBound; }
  const std::string& peer() const { return conn_->peer(); }

  // ConnectionHandler
  void on_data(std::string_view data) override;
  void on_tls_ready() override;
  void on_closed(std::string_view reason) override;

  // StreamParser::Handler
  void on_stream_start(const xml::Element& header) override;
  void on_stanza(xml::Element& stanza) override;
  void on_stream_end() override;
  void on_stream_error(xml::StreamError error, std::string_view text) override;

 private:
  enum class State {
    kWaitHeader,     // before the (first or restarted) stream header
    kTlsHandshake,   // after <proceed/>, until the handshake completes
    kFeatures,       // header answered; TLS/SASL negotiation
    kSasl,           // an exchange is in flight with the authenticator
    kAuthenticated,  // SASL done; waiting for bind
    kBound,
    kClosed,
  };

  void send_header(std::string_view to_attr);
  void send_features();
  void handle_sasl(xml::Element& e);
  void sasl_reply(SaslReply reply);
  void sasl_failure(std::string_view condition);
  void handle_bind(xml::Element& iq);
  void handle_stanza(xml::Element& stanza);
  ChannelBindings channel_bindings() const;
  void send_element(const xml::Element& e);
  void end(std::string_view reason);
  void arm_ping_timer(uint32_t ms);
  void on_ping_timer();

  StreamHost* host_;
  std::unique_ptr<net::Connection> conn_;
  xml::StreamParser parser_;
  State state_ = State::kWaitHeader;
  bool header_sent_ = false;
  bool tls_ = false;
  bool authenticated_ = false;
  bool closing_ = false;
  bool registered_ = false;
  std::string username_;
  Jid jid_;
  uint64_t sasl_exchange_ = 0;
  bool sasl_wait_initial_ = false;  // <auth/> without initial response
  bool sasl_pending_ = false;       // a request is with the authenticator
  std::string sasl_mechanism_;
  unsigned sasl_failures_ = 0;
  core::Loop::TimerId auth_timer_ = 0;
  core::Loop::TimerId ping_timer_ = 0;
  bool heard_ = false;         // bytes arrived since the ping timer was armed
  bool ping_pending_ = false;  // a server ping is waiting for an answer
  uint32_t ping_seq_ = 0;
  xml::Arena reply_arena_;
};

}  // namespace hearth::xmpp
