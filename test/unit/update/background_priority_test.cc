#include "otaclient/update/background_priority.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>

namespace ota::update {
namespace {

// Runs `body` on a fresh thread (priorities are per thread: the test's own stays untouched).
template <typename Body>
void OnNewThread(Body body) {
  std::thread thread(body);
  thread.join();
}

TEST(BackgroundPriorityTest, LowersCpuAndIoPriorityOfTheCallingThreadAndItsNewThreads) {
  auto before = ThisThreadPriority();
  ASSERT_TRUE(before.ok()) << before.status();
  OnNewThread([&] {
    ASSERT_TRUE(LowerThisThreadPriority(10).ok());
    auto lowered = ThisThreadPriority();
    ASSERT_TRUE(lowered.ok()) << lowered.status();
    const int expected_nice = std::max(10, before->nice);  // (a test run under nice stays nicer)
    EXPECT_EQ(lowered->nice, expected_nice);
    EXPECT_EQ(lowered->io_class, 2);  // best-effort
    EXPECT_EQ(lowered->io_level, kBackgroundIoLevel);
    // A worker started by the lowered thread (hashing, downloads) inherits both.
    OnNewThread([&] {
      auto inherited = ThisThreadPriority();
      ASSERT_TRUE(inherited.ok()) << inherited.status();
      EXPECT_EQ(inherited->nice, expected_nice);
      EXPECT_EQ(inherited->io_class, 2);
      EXPECT_EQ(inherited->io_level, kBackgroundIoLevel);
    });
  });
  // The creating (service) thread keeps its priority.
  auto after = ThisThreadPriority();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->nice, before->nice);
  EXPECT_EQ(after->io_class, before->io_class);
  EXPECT_EQ(after->io_level, before->io_level);
}

TEST(BackgroundPriorityTest, ZeroLeavesTheThreadAloneAndANicerThreadStaysNicer) {
  OnNewThread([] {
    auto before = ThisThreadPriority();
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(LowerThisThreadPriority(0).ok());
    auto same = ThisThreadPriority();
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->nice, before->nice);
    EXPECT_EQ(same->io_class, before->io_class);

    const int nice = std::max(15, before->nice);
    ASSERT_TRUE(LowerThisThreadPriority(nice).ok());
    ASSERT_TRUE(LowerThisThreadPriority(5).ok());  // never raises the priority again
    auto nicer = ThisThreadPriority();
    ASSERT_TRUE(nicer.ok());
    EXPECT_EQ(nicer->nice, nice);
  });
}

TEST(BackgroundPriorityTest, OutOfRangeNiceIsRejectedNamingTheValue) {
  for (int bad : {-1, 20, 100}) {
    absl::Status status = LowerThisThreadPriority(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(status.message(), "update nice value " + std::to_string(bad) + " is not in 0..19");
  }
}

}  // namespace
}  // namespace ota::update
