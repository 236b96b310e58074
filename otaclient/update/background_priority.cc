#include "otaclient/update/background_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {
namespace {

// From <linux/ioprio.h> (glibc has no wrapper): who = a thread id, value = class << 13 | level.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBestEffort = 2;

pid_t ThisThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

}  // namespace

absl::Status LowerThisThreadPriority(int nice) {
  if (nice < 0 || nice > 19) {
    return absl::InvalidArgumentError(StrCat("update nice value ", nice, " is not in 0..19"));
  }
  if (nice == 0) return absl::OkStatus();
  const pid_t tid = ThisThreadId();
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (current == -1 && errno != 0) return ErrnoStatus(errno, "getpriority of the update thread");
  if (current < nice && setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) != 0) {
    return ErrnoStatus(errno, StrCat("setpriority(", nice, ") of the update thread"));
  }
  const int ioprio = (kIoprioClassBestEffort << kIoprioClassShift) | kBackgroundIoLevel;
  if (syscall(SYS_ioprio_set, kIoprioWhoProcess, tid, ioprio) != 0) {
    return ErrnoStatus(errno, "ioprio_set(best-effort 7) of the update thread");
  }
  return absl::OkStatus();
}

absl::StatusOr<ThreadPriority> ThisThreadPriority() {
  const pid_t tid = ThisThreadId();
  ThreadPriority out;
  errno = 0;
  out.nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (out.nice == -1 && errno != 0) return ErrnoStatus(errno, "getpriority");
  const long ioprio = syscall(SYS_ioprio_get, kIoprioWhoProcess, tid);
  if (ioprio < 0) return ErrnoStatus(errno, "ioprio_get");
  out.io_class = static_cast<int>(ioprio >> kIoprioClassShift);
  out.io_level = static_cast<int>(ioprio & ((1 << kIoprioClassShift) - 1));
  return out;
}

}  // namespace ota::update
