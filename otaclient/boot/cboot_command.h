// Runs a helper program (nvbootctrl, mkfs.ext4, blkid, reboot) and captures its output.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::boot::cboot {

struct CommandResult {
  int exit_code = 0;  // the program's exit status; 128+N when killed by signal N
  std::string out;    // stdout
  std::string err;    // stderr
};

// Starts argv[0] (PATH lookup when it has no '/') with stdin from /dev/null, waits for it and
// returns what it printed. Failing to start it at all is kNotFound (no such program) or
// kInternal; a non-zero exit is NOT an error here (callers decide).
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv);

// "prog arg1 arg2" for messages.
std::string DescribeCommand(const std::vector<std::string>& argv);

// RunCommand, then any non-zero exit becomes kInternal naming the command and its stderr.
absl::StatusOr<std::string> RunCommandChecked(const std::vector<std::string>& argv);

}  // namespace ota::boot::cboot
