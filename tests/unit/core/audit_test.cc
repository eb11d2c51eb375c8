#include "core/audit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace hearth::audit {
namespace {

TEST(AuditTest, FormatsOneJsonObject) {
  EXPECT_EQ(format("2026-11-22T00:00:00.000Z", "auth", "auth_failure",
                   {{"ip", "192.0.2.1"}, {"user", "al\"ice\n"}, {"count", "3", true}}),
            "{\"ts\":\"2026-11-22T00:00:00.000Z\",\"proc\":\"auth\",\"event\":\"auth_failure\","
            "\"ip\":\"192.0.2.1\",\"user\":\"al\\\"ice\\n\",\"count\":3}");
  // A "number" that is not one is quoted, so the line stays valid JSON.
  EXPECT_EQ(format("t", "p", "e", {{"n", "3; rm", true}, {"c", std::string_view("\x01", 1)}}),
            "{\"ts\":\"t\",\"proc\":\"p\",\"event\":\"e\",\"n\":\"3; rm\",\"c\":\"\\u0001\"}");
}

TEST(AuditTest, WritesWholeLinesToItsFd) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  set_fd(fds[1]);
  set_process("test");
  event("ban", {{"ip", "198.51.100.7"}});
  event("unban", {{"ip", "198.51.100.7"}});
  set_fd(-1);
  close(fds[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  size_t first = got.find('\n');
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(got.find("\"proc\":\"test\",\"event\":\"ban\",\"ip\":\"198.51.100.7\"}\n"),
            std::string::npos);
  EXPECT_NE(got.find("\"event\":\"unban\""), first);
  EXPECT_EQ(got.back(), '\n');
  EXPECT_EQ(got.compare(0, 7, "{\"ts\":\""), 0);
}

}  // namespace
}  // namespace hearth::audit
