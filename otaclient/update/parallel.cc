#include "otaclient/update/parallel.h"

#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

namespace ota::update {

absl::Status ParallelFor(size_t count, int threads, const std::function<absl::Status(size_t)>& fn,
                         const std::atomic<bool>* cancel) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex error_mu;
  absl::Status first_error;

  auto worker = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = absl::CancelledError("update cancelled");
        stop = true;
        return;
      }
      size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) return;
      absl::Status st = fn(i);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = std::move(st);
        stop = true;
        return;
      }
    }
  };

  size_t extra = std::min<size_t>(count, static_cast<size_t>(std::max(threads, 1))) - (count > 0);
  std::vector<std::jthread> pool;
  pool.reserve(extra);
  for (size_t t = 0; t < extra; ++t) pool.emplace_back(worker);
  worker();
  pool.clear();  // joins
  return first_error;
}

}  // namespace ota::update
