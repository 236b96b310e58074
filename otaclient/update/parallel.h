// A minimal fork-join loop for the update's CPU/IO-bound passes (hashing, applying).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>

#include "absl/status/status.h"

namespace ota::update {

// Runs fn(i) for every i in [0, count) on up to `threads` threads (the caller's thread is one of
// them). After the first error (or once `cancel` is set) no new index is started; returns that
// first error, or kCancelled.
absl::Status ParallelFor(size_t count, int threads, const std::function<absl::Status(size_t)>& fn,
                         const std::atomic<bool>* cancel = nullptr);

}  // namespace ota::update
