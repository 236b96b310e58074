// The update runs in the background of the ECU's real work: its threads get a lower CPU
// priority (nice) and the lowest best-effort I/O priority, so the vehicle's own processes (and
// otaclient's gRPC threads) are served first when they compete for a core or the disk. (It does
// not shorten Status stalls that are kernel time, e.g. ext4 inode allocation on a churned file
// system: test/bench/status_latency.sh measured no difference.) Linux keeps both per thread and a
// new thread inherits them from its creator, so lowering the session thread once covers every
// worker it starts (hashing, downloads, apply).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::update {

// Best-effort I/O priority levels are 0 (highest) to 7 (lowest).
inline constexpr int kBackgroundIoLevel = 7;

// Sets the calling thread's nice value to `nice` (0..19; 0 leaves the CPU priority alone) and
// its I/O priority to best-effort level kBackgroundIoLevel (unless nice is 0). Only ever lowers:
// a thread already nicer than `nice` keeps its value. Error: what failed, with errno text.
absl::Status LowerThisThreadPriority(int nice);

// The calling thread's nice value and I/O priority (class, level) as the kernel reports them.
struct ThreadPriority {
  int nice = 0;
  int io_class = 0;  // IOPRIO_CLASS_*: 0 none (follows nice), 1 realtime, 2 best-effort, 3 idle
  int io_level = 0;
};
absl::StatusOr<ThreadPriority> ThisThreadPriority();

}  // namespace ota::update
