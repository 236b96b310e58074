// The other half of the port story (see port_registry.h): a daemon started with --listen-port 0
// and --port-file FILE writes the port it bound to FILE (atomically, once it listens). These
// helpers read it in C++ process tests; shell tests use lib.sh's wait_port_file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::testing {

// The port in a port file's text ("<port>\n").
absl::StatusOr<int> ParsePortFile(std::string_view text);

// Polls (every 10 ms) until `path` exists and holds a port. Fails when `timeout` passes first or
// when `child` (a child process of this one, not reaped; 0: none) exits before that.
absl::StatusOr<int> WaitForPortFile(const std::filesystem::path& path, pid_t child,
                                    std::chrono::milliseconds timeout);

}  // namespace ota::testing
