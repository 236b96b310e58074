#include "test/lib/ports/port_file.h"

#include <sys/wait.h>

#include <charconv>
#include <thread>

#include "common/fs/fs.h"
#include "common/util/strings.h"

namespace ota::testing {

absl::StatusOr<int> ParsePortFile(std::string_view text) {
  std::string_view digits = text;
  if (digits.ends_with('\n')) digits.remove_suffix(1);
  int port = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(StrCat("port file holds \"", text, "\", not a port"));
  }
  return port;
}

absl::StatusOr<int> WaitForPortFile(const std::filesystem::path& path, pid_t child,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto text = fs::ReadFile(path);
    if (text.ok()) return ParsePortFile(*text);
    if (!absl::IsNotFound(text.status())) return text.status();
    if (child > 0) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == child) {
        return absl::FailedPreconditionError(
            StrCat("process ", child, " exited before writing ", path.string()));
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          StrCat("no port in ", path.string(), " after ", timeout.count(), " ms"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace ota::testing
