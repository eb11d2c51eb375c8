#include "xmpp/smacks.h"

#include <gtest/gtest.h>

#include <string>

namespace hearth::xmpp {
namespace {

TEST(SmQueueTest, AcknowledgesInOrder) {
  SmQueue q;
  q.push("<a/>");
  q.push("<bb/>");
  q.push("<ccc/>");
  EXPECT_EQ(q.sent(), 3u);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.at(0), "<a/>");
  EXPECT_EQ(q.at(2), "<ccc/>");
  EXPECT_EQ(q.ack(1), SmQueue::Ack::kOk);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.at(0), "<bb/>");
  EXPECT_EQ(q.at(1), "<ccc/>");
  EXPECT_EQ(q.bytes(), 11u);
  EXPECT_EQ(q.ack(1), SmQueue::Ack::kOk);  // repeated: nothing new
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.ack(3), SmQueue::Ack::kOk);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.acked(), 3u);
}

TEST(SmQueueTest, RefusesAcknowledgingMoreThanSent) {
  SmQueue q;
  q.push("<a/>");
  EXPECT_EQ(q.ack(2), SmQueue::Ack::kTooHigh);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.ack(1), SmQueue::Ack::kOk);
  EXPECT_EQ(q.ack(0), SmQueue::Ack::kStale);  // behind: ignored
  EXPECT_EQ(q.acked(), 1u);
}

TEST(SmQueueTest, CountersWrapModulo2To32) {
  SmQueue q(0xFFFFFFFEu);
  q.push("<one/>");    // 0xFFFFFFFF
  q.push("<two/>");    // 0
  q.push("<three/>");  // 1
  EXPECT_EQ(q.sent(), 1u);
  EXPECT_EQ(q.ack(0xFFFFFFFFu), SmQueue::Ack::kOk);
  EXPECT_EQ(q.at(0), "<two/>");
  EXPECT_EQ(q.ack(0), SmQueue::Ack::kOk);
  EXPECT_EQ(q.at(0), "<three/>");
  EXPECT_EQ(q.ack(2), SmQueue::Ack::kTooHigh);
  EXPECT_EQ(q.ack(0xFFFFFFFFu), SmQueue::Ack::kStale);
  EXPECT_EQ(q.ack(1), SmQueue::Ack::kOk);
  EXPECT_TRUE(q.empty());
}

TEST(SmQueueTest, KeepsContentAcrossCompaction) {
  SmQueue q;
  for (int i = 0; i < 1000; ++i)
    q.push("<m n='" + std::to_string(i) + "'/>");
  for (uint32_t h = 1; h <= 990; h += 7) {
    ASSERT_EQ(q.ack(h), SmQueue::Ack::kOk);
    ASSERT_EQ(q.at(0), "<m n='" + std::to_string(h) + "'/>");
    ASSERT_EQ(q.at(q.size() - 1), "<m n='999'/>");
  }
  q.push("<last/>");
  EXPECT_EQ(q.at(q.size() - 1), "<last/>");
  EXPECT_EQ(q.ack(1001), SmQueue::Ack::kOk);
  EXPECT_TRUE(q.empty());
  EXPECT_LE(q.capacity(), 4096u + 64 * sizeof(uint32_t));
}

TEST(SmQueueTest, ClearForgetsEverything) {
  SmQueue q;
  q.push("<a/>");
  q.push("<b/>");
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.acked(), q.sent());
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_LE(q.capacity(), sizeof(std::string));  // at most the small-string buffer
}

}  // namespace
}  // namespace hearth::xmpp

namespace hearth::xmpp {
namespace {

TEST(SmQueueTest, MarksFollowTheirStanzas) {
  SmQueue q;
  for (int i = 0; i < 100; ++i)
    q.push("<m n='" + std::to_string(i) + "'/>", i % 3 == 0);
  for (uint32_t h = 0; h < 99; h += 11) {
    ASSERT_EQ(q.ack(h), SmQueue::Ack::kOk);
    for (size_t i = 0; i < q.size(); ++i)
      ASSERT_EQ(q.marked(i), (h + i) % 3 == 0) << h << " " << i;
  }
}

}  // namespace
}  // namespace hearth::xmpp
