// Connection over TLS: what one loop turn sends goes out as one TLS record
// (issue 7), in order, and close() sends it before close_notify.
#include "net/connection.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/loop.h"
#include "net/tls.h"
#include "tls_test_client.h"

namespace hearth::net {
namespace {

using testing::Client;
using testing::TempDir;

class Recorder : public ConnectionHandler {
 public:
  void on_data(std::string_view data) override { data_.append(data); }
  void on_tls_ready() override { ready_ = true; }
  void on_closed(std::string_view) override { closed_ = true; }
  std::string data_;
  bool ready_ = false;
  bool closed_ = false;
};

// The TLS record types in a byte stream (5-byte headers, RFC 8446 §5.1).
std::vector<int> record_types(const std::string& bytes) {
  std::vector<int> types;
  size_t pos = 0;
  while (pos + 5 <= bytes.size()) {
    types.push_back(static_cast<unsigned char>(bytes[pos]));
    size_t len = (static_cast<size_t>(static_cast<unsigned char>(bytes[pos + 3])) << 8) |
                 static_cast<unsigned char>(bytes[pos + 4]);
    pos += 5 + len;
  }
  EXPECT_EQ(pos, bytes.size()) << "a partial record";
  return types;
}

class ConnectionTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string cert = dir_.path() + "/c.crt";
    std::string key = dir_.path() + "/c.key";
    ASSERT_TRUE(ensure_self_signed("example.org", cert, key).ok());
    auto ctx = TlsContext::create_server(cert, key);
    ASSERT_TRUE(ctx.ok()) << ctx.error().message;
    ctx_ = std::move(ctx.value());
    auto loop = core::Loop::create();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(loop.value());
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    peer_ = fds[1];
    conn_ = std::make_unique<Connection>(loop_.get(), fds[0], "test", ctx_.get(), true);
    ASSERT_TRUE(conn_->start(&handler_).ok());
    for (int i = 0; i < 50 && !(client_.connected && handler_.ready_); ++i) {
      client_.step();
      to_server();
      Connection::flush_all();
      from_server();
    }
    ASSERT_TRUE(client_.connected);
    ASSERT_TRUE(handler_.ready_);
    std::string ignored;
    client_.read_all(&ignored);  // session tickets
  }
  void TearDown() override {
    conn_.reset();
    if (peer_ >= 0) close(peer_);
  }

  // Client output into the server's socket, and the server reads it.
  void to_server() {
    if (!client_.out.empty()) {
      ASSERT_EQ(write(peer_, client_.out.data(), client_.out.size()),
                static_cast<ssize_t>(client_.out.size()));
      client_.out.clear();
    }
    conn_->on_io(EPOLLIN);
  }
  // What the server sent, raw; also handed to the client.
  std::string from_server() {
    std::string raw;
    char buf[16384];
    for (;;) {
      ssize_t n = read(peer_, buf, sizeof buf);
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
    client_.in.append(raw);
    return raw;
  }

  TempDir dir_;
  std::unique_ptr<TlsContext> ctx_;
  std::unique_ptr<core::Loop> loop_;
  Recorder handler_;
  std::unique_ptr<Connection> conn_;
  int peer_ = -1;
  Client client_{wolfTLSv1_3_client_method()};
};

TEST_F(ConnectionTlsTest, OneRecordPerTurn) {
  conn_->send("<message id='1'/>");
  conn_->send("<message id='2'/>");
  conn_->send("<message id='3'/>");
  EXPECT_EQ(conn_->buffered(), 3 * std::string("<message id='1'/>").size());
  Connection::flush_all();
  std::string raw = from_server();
  EXPECT_EQ(record_types(raw), std::vector<int>{23});  // one application_data record
  std::string plain;
  client_.read_all(&plain);
  EXPECT_EQ(plain, "<message id='1'/><message id='2'/><message id='3'/>");
  EXPECT_EQ(conn_->buffered(), 0u);

  // The next turn: a record of its own.
  conn_->send("<presence/>");
  Connection::flush_all();
  raw = from_server();
  EXPECT_EQ(record_types(raw).size(), 1u);
  plain.clear();
  client_.read_all(&plain);
  EXPECT_EQ(plain, "<presence/>");
}

TEST_F(ConnectionTlsTest, CloseSendsQueuedDataBeforeCloseNotify) {
  conn_->send("</stream:stream>");
  conn_->close();
  Connection::flush_all();
  std::string raw = from_server();
  EXPECT_EQ(record_types(raw).size(), 2u);  // the data, then the alert
  std::string plain;
  int err = client_.read_all(&plain);
  EXPECT_EQ(plain, "</stream:stream>");
  EXPECT_EQ(err, WOLFSSL_ERROR_ZERO_RETURN);  // close_notify
}

}  // namespace
}  // namespace hearth::net
