// ParallelDrain: a work queue that grows while it is drained (the delta planner's tree walk).
#include "otaclient/update/parallel.h"

#include <atomic>
#include <mutex>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace ota::update {
namespace {

// Each item n < limit pushes 2n+1 and 2n+2: a binary tree of all numbers below `limit`.
TEST(ParallelDrainTest, EveryPushedItemRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    constexpr int kLimit = 5000;
    std::mutex mu;
    std::multiset<int> seen;
    std::set<size_t> workers;
    absl::Status st =
        ParallelDrain(std::vector<int>{0}, threads,
                      [&](int& n, WorkQueue<int>& queue, size_t worker) -> absl::Status {
                        if (2 * n + 1 < kLimit) queue.Push(2 * n + 1);
                        if (2 * n + 2 < kLimit) queue.Push(2 * n + 2);
                        std::lock_guard<std::mutex> lock(mu);
                        seen.insert(n);
                        workers.insert(worker);
                        return absl::OkStatus();
                      });
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(seen.size(), static_cast<size_t>(kLimit)) << threads << " threads";
    for (int n = 0; n < kLimit; ++n) ASSERT_EQ(seen.count(n), 1u) << n;
    for (size_t w : workers) EXPECT_LT(w, static_cast<size_t>(threads));
  }
}

TEST(ParallelDrainTest, FirstErrorStopsTheDrain) {
  std::atomic<int> ran{0};
  std::vector<int> items(10000);
  for (int i = 0; i < 10000; ++i) items[i] = i;
  absl::Status st =
      ParallelDrain(std::move(items), 3, [&](int& n, WorkQueue<int>&, size_t) -> absl::Status {
        ran.fetch_add(1);
        if (n == 9990) return absl::DataLossError("item 9990 is bad");
        return absl::OkStatus();
      });
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "item 9990 is bad");
  // LIFO: 9990 is among the first items taken; the rest are never started.
  EXPECT_LT(ran.load(), 100);
}

TEST(ParallelDrainTest, CancelledBeforeStartRunsNothing) {
  std::atomic<bool> cancel{true};
  std::atomic<int> ran{0};
  absl::Status st = ParallelDrain(
      std::vector<int>{1, 2, 3}, 2,
      [&](int&, WorkQueue<int>&, size_t) -> absl::Status {
        ran.fetch_add(1);
        return absl::OkStatus();
      },
      &cancel);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(ran.load(), 0);
}

TEST(ParallelDrainTest, EmptyQueueReturnsAtOnce) {
  absl::Status st = ParallelDrain(std::vector<int>{}, 4, [](int&, WorkQueue<int>&, size_t) {
    return absl::InternalError("must not run");
  });
  EXPECT_TRUE(st.ok()) << st;
}

}  // namespace
}  // namespace ota::update
