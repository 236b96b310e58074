// Fork-join helpers for the update's CPU/IO-bound passes (hashing, applying, walking trees).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace ota::update {

// Runs fn(i) for every i in [0, count) on up to `threads` threads (the caller's thread is one of
// them). After the first error (or once `cancel` is set) no new index is started; returns that
// first error, or kCancelled.
absl::Status ParallelFor(size_t count, int threads, const std::function<absl::Status(size_t)>& fn,
                         const std::atomic<bool>* cancel = nullptr);

// A shared stack of work items that grows while it is drained (a tree walk pushes the
// subdirectories it finds). LIFO, so a walk goes depth-first and keeps few directories open.
template <typename Item>
class WorkQueue {
 public:
  void Push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }

 private:
  template <typename T, typename Fn>
  friend absl::Status ParallelDrain(std::vector<T> initial, int threads, const Fn& fn,
                                    const std::atomic<bool>* cancel);
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
  size_t busy_ = 0;
  bool stop_ = false;
  absl::Status first_error_;
};

// Runs fn(item, queue, worker) on up to `threads` threads (the caller's is one of them) until
// the queue, seeded with `initial`, is empty and no running fn can push more. `worker` is the
// thread's index in [0, threads), for per-thread scratch state. After the first error (or once
// `cancel` is set) no new item is started; returns that first error, or kCancelled.
template <typename Item, typename Fn>
absl::Status ParallelDrain(std::vector<Item> initial, int threads, const Fn& fn,
                           const std::atomic<bool>* cancel = nullptr) {
  WorkQueue<Item> queue;
  queue.items_ = std::move(initial);
  auto worker = [&](size_t index) {
    std::unique_lock<std::mutex> lock(queue.mu_);
    while (true) {
      if (queue.stop_) return;
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        if (queue.first_error_.ok()) queue.first_error_ = absl::CancelledError("update cancelled");
        queue.stop_ = true;
        queue.cv_.notify_all();
        return;
      }
      if (queue.items_.empty()) {
        if (queue.busy_ == 0) {  // nothing left and nobody can push more
          queue.cv_.notify_all();
          return;
        }
        queue.cv_.wait(lock);
        continue;
      }
      Item item = std::move(queue.items_.back());
      queue.items_.pop_back();
      ++queue.busy_;
      lock.unlock();
      absl::Status st = fn(item, queue, index);
      lock.lock();
      --queue.busy_;
      if (!st.ok()) {
        if (queue.first_error_.ok()) queue.first_error_ = std::move(st);
        queue.stop_ = true;
        queue.cv_.notify_all();
        return;
      }
      if (queue.items_.empty() && queue.busy_ == 0) queue.cv_.notify_all();
    }
  };
  const size_t extra = static_cast<size_t>(std::max(threads, 1)) - 1;
  std::vector<std::jthread> pool;
  pool.reserve(extra);
  for (size_t t = 0; t < extra; ++t) pool.emplace_back(worker, t + 1);
  worker(0);
  pool.clear();  // joins
  return queue.first_error_;
}

}  // namespace ota::update
