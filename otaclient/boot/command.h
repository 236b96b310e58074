// Runs a helper program (mkfs.ext4, blkid, grub-editenv, reboot) and captures what it prints.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::boot {

struct CommandResult {
  int exit_code = 0;  // the program's exit status; 128+N when killed by signal N
  std::string out;    // stdout
  std::string err;    // stderr
};

// Starts argv[0] (PATH lookup when it has no '/') with stdin from /dev/null and waits for it.
// Failing to start it is kNotFound (no such program) or kInternal; a non-zero exit is not an
// error here (the caller decides).
absl::StatusOr<CommandResult> RunProgram(const std::vector<std::string>& argv);

// RunProgram; a non-zero exit becomes kInternal "<command>: exit N: <stderr>".
absl::StatusOr<std::string> RunProgramChecked(const std::vector<std::string>& argv);

// "prog arg1 arg2" for messages.
std::string DescribeArgv(const std::vector<std::string>& argv);

}  // namespace ota::boot
