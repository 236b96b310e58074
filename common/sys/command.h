// Runs a helper program (mkfs.ext4, blkid, mount helpers, grub-editenv, reboot) and captures
// what it prints. Every child has a time limit.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::sys {

struct CommandResult {
  int exit_code = 0;  // the program's exit status; 128+N when killed by signal N
  std::string out;    // stdout
  std::string err;    // stderr
};

// How long a child may take, per kind of program (every child has a limit: a hung tool must not
// hang the update, the rollback or the service's start).
// Slow tools (mkfs, copies of a slot) name their own limits next to their callers.
inline constexpr std::chrono::milliseconds kQuickToolTimeout = std::chrono::seconds(30);
// After SIGTERM to a timed-out child's process group, the time it gets before SIGKILL.
inline constexpr std::chrono::milliseconds kKillGrace = std::chrono::seconds(2);

// Starts argv[0] (PATH lookup when it has no '/') with stdin from /dev/null in a process group
// of its own and waits for it, at most `timeout`. Failing to start it is kNotFound (no such
// program) or kInternal; a non-zero exit is not an error here (the caller decides). When the
// time is up, the whole process group (the child and anything it started) gets SIGTERM, then
// SIGKILL after kKillGrace, the child is reaped, and the result is kDeadlineExceeded
// "<program>: no result within <timeout>; its process group was killed".
absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout = kQuickToolTimeout);
// RunProgram with "NAME=value" entries added to the inherited environment (an inherited variable
// of the same name is replaced), e.g. the install hooks' OTA_TARGET_ROOT.
absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout,
                                         const std::vector<std::string>& extra_env);

// RunProgram; a non-zero exit becomes kInternal "<command>: exit N: <stderr>".
absl::StatusOr<std::string> RunProgramChecked(
    const std::vector<std::string>& argv, std::chrono::milliseconds timeout = kQuickToolTimeout);

// "prog arg1 arg2" for messages.
std::string DescribeArgv(const std::vector<std::string>& argv);

}  // namespace ota::sys
