// One client-to-server stream (RFC 6120): stream header and features,
// STARTTLS, SASL through the asynchronous Authenticator, resource binding,
// then stanzas to the router.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/loop.h"
#include "modules/module.h"
#include "net/connection.h"
#include "xml/parser.h"
#include "xmpp/auth.h"
#include "xmpp/jid.h"
#include "xmpp/router.h"
#include "xmpp/smacks.h"

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
  // [limits] preauth_idle_timeout: silence allowed before authentication
  // (0: none). The TLS handshake timeout and the input rate are set on the
  // Connection by whoever accepts it.
  virtual uint32_t preauth_idle_timeout_ms() const { return 0; }

  // ---- sessions (XEP-0198) ----
  virtual uint32_t resume_timeout_ms() const = 0;  // 0: no resumption
  virtual size_t sm_max_queue() const = 0;
  // A bound session, owned by the server until session_ended().
  virtual class ClientSession* create_session(class C2sStream* stream, Jid jid) = 0;
  virtual void session_ended(ClientSession* session) = 0;
  virtual void register_resumable(const std::string& id, ClientSession* session) = 0;
  virtual void unregister_resumable(const std::string& id) = 0;
  virtual ClientSession* find_resumable(std::string_view id) = 0;
};

class C2sStream;

// A bound client session (RFC 6120 §7). It outlives its stream when the
// client enabled XEP-0198 resumption and the connection broke: it then
// stays bound, queues what is sent to it, and waits [smacks]
// resume_timeout for a new stream to take it over (§5). Modules and the
// router see this object, so a resumed session is the same Session.
class ClientSession final : public Session {
 public:
  ClientSession(StreamHost* host, C2sStream* stream, Jid jid);
  ~ClientSession() override;

  // Session
  const Jid& jid() const override { return jid_; }
  void deliver(const xml::Element& stanza) override;
  void deliver_raw(std::string_view xml) override;
  void kick(std::string_view condition, std::string_view text) override;

  C2sStream* stream() const { return stream_; }
  // A stanza for the client, serialised: counted and kept until
  // acknowledged when SM is on, and written when a stream is attached.
  void write(std::string_view xml, bool elsewhere = false);

  // ---- XEP-0198 ----
  bool sm_enabled() const { return sm_enabled_; }
  const std::string& sm_id() const { return sm_id_; }
  // Turns counting on; with `resumable`, registers an id for §5.
  void enable_sm(bool resumable);
  uint32_t& handled_in() { return in_count_; }  // stanzas received from the client
  SmQueue& queue() { return queue_; }
  // The client's <a h=…/>; false if it acknowledged more than was sent.
  bool acknowledge(uint32_t h);
  // Sends <r/> when enough is unacknowledged (or later, by a timer).
  void maybe_request_ack();
  void ack_answered() { r_pending_ = false; }
  // The connection is gone (not a clean close): wait for a resumption,
  // or end now if the session cannot be resumed.
  void detach();
  // A new stream resumes this session; the previous one (if any) has let go.
  void attach(C2sStream* stream);
  // The session ends for good (RFC 6121 §4.5.2 presence, unbind,
  // unacknowledged messages delivered again through the bare JID).
  void end();

 private:
  void send_request();
  // A message being delivered here that another session of the account
  // gets too (a bare-JID tie, or a carbon copy): not to be sent again if
  // this session ends without acknowledging it.
  bool copy_elsewhere(const xml::Element& message) const;

  StreamHost* host_;
  C2sStream* stream_;
  Jid jid_;
  bool ended_ = false;
  bool sm_enabled_ = false;
  bool r_pending_ = false;  // an <r/> is out, its <a/> not yet back
  bool overflow_ = false;   // the queue passed max_queue; closing
  uint32_t in_count_ = 0;
  std::string sm_id_;
  SmQueue queue_;
  core::Loop::TimerId resume_timer_ = 0;
  core::Loop::TimerId r_timer_ = 0;
  core::Loop::TimerId overflow_timer_ = 0;
};

class C2sStream : public net::ConnectionHandler,
                  public xml::StreamParser::Handler,
                  public modules::PreauthStream {
 public:
  C2sStream(StreamHost* host, std::unique_ptr<net::Connection> conn, bool direct_tls);
  ~C2sStream() override;

  Status start();

  // Close with a stream error (RFC 6120 §4.9) and end the stream. The
  // session ends with it, except on <connection-timeout/> (the client may
  // resume, XEP-0198 §5).
  void stream_error(std::string_view condition, std::string_view text = {},
                    std::string_view app_xml = {});
  // Raw bytes to the client (a serialised stanza or an SM element).
  void send_raw(std::string_view xml) { conn_->send(xml); }
  // XEP-0198 §5: another stream resumed our session; close without ending it.
  void release_session(std::string_view why);

  // PreauthStream (in-band registration before SASL)
  uint64_t id() const override { return id_; }
  const std::string& peer_ip() const override { return peer_ip_; }
  void send(const xml::Element& stanza) override { send_element(stanza); }
  std::string& preauth_token() override { return preauth_token_; }
  void close_with(std::string_view condition, std::string_view text) override {
    stream_error(condition, text);
  }

  bool bound() const { return state_ == State::kBound; }
  ClientSession* session() const { return session_; }
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
  void handle_sm(xml::Element& e);
  void handle_resume(xml::Element& e);
  void sm_failed(std::string_view condition, std::string_view extra = {});
  ChannelBindings channel_bindings() const;
  void send_element(const xml::Element& e);
  void end(std::string_view reason);
  void arm_quiet_timer();
  void arm_ping_timer(uint32_t ms);
  void on_ping_timer();
  void arm_idle_timer(uint64_t ms);
  void on_idle_timer();

  StreamHost* host_;
  std::unique_ptr<net::Connection> conn_;
  xml::StreamParser parser_;
  State state_ = State::kWaitHeader;
  bool header_sent_ = false;
  bool tls_ = false;
  bool authenticated_ = false;
  bool closing_ = false;
  bool final_ = false;  // the session ends with this stream (no resumption)
  uint64_t id_;
  std::string peer_ip_;        // conn_->peer() without the port
  std::string preauth_token_;  // XEP-0401: the invite a <preauth/> accepted
  ClientSession* session_ = nullptr;
  std::string username_;
  uint64_t sasl_exchange_ = 0;
  bool sasl_wait_initial_ = false;  // <auth/> without initial response
  bool sasl_pending_ = false;       // a request is with the authenticator
  std::string sasl_mechanism_;
  unsigned sasl_failures_ = 0;
  core::Loop::TimerId auth_timer_ = 0;
  core::Loop::TimerId ping_timer_ = 0;
  core::Loop::TimerId idle_timer_ = 0;   // preauth_idle_timeout, until authenticated
  core::Loop::TimerId quiet_timer_ = 0;  // parser hibernation once bound and quiet
  bool quiet_heard_ = false;             // bytes arrived since the quiet timer was armed
  bool heard_ = false;                   // bytes arrived since the ping timer was armed
  bool ping_pending_ = false;            // a server ping is waiting for an answer
  uint32_t ping_seq_ = 0;
  xml::Arena reply_arena_;
};

}  // namespace hearth::xmpp
