// ota-test-ports: the test-port registry (port_registry.h) for shell tests and scripts.
#include <unistd.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "test/lib/ports/port_registry.h"

namespace {

constexpr char kUsage[] = R"(Usage: ota-test-ports claim --owner PID [--count N]
       ota-test-ports release --owner PID (--all | PORT...)
       ota-test-ports list

The machine-wide registry of TCP ports for tests (protocol: test/lib/ports/port_registry.h).
  claim     claims N ports (default 1) for process PID, prints them one per line, ascending
  release   releases PID's claims of the given ports, or all of them; prints what it released
  list      prints every claim: PORT PID:START_TIME alive|gone
Environment: OTA_TEST_PORTS_DIR (registry directory), OTA_TEST_PORTS_RANGE (LO-HI window).
Exit status: 0 done, 1 failed (reason on stderr), 2 bad command line.
)";

[[noreturn]] void UsageError(const std::string& message) {
  std::cerr << "ota-test-ports: " << message << "\n" << kUsage;
  std::exit(2);
}

[[noreturn]] void Fail(const absl::Status& status) {
  std::cerr << "ota-test-ports: " << status.message() << "\n";
  std::exit(1);
}

int ParseInt(const std::string& name, const std::string& text, int min, int max) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    UsageError(name + " expects an integer in [" + std::to_string(min) + ", " +
               std::to_string(max) + "], got \"" + text + "\"");
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) UsageError("missing command");
  if (args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage;
    return 0;
  }
  const std::string command = args[0];
  std::optional<pid_t> owner_pid;
  int count = 1;
  bool all = false;
  std::vector<int> ports;
  for (size_t i = 1; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) UsageError(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--owner") {
      owner_pid = ParseInt("--owner", value(), 1, 1 << 30);
    } else if (args[i] == "--count" && command == "claim") {
      count = ParseInt("--count", value(), 1, 1000);
    } else if (args[i] == "--all" && command == "release") {
      all = true;
    } else if (command == "release" && !args[i].starts_with("-")) {
      ports.push_back(ParseInt("port", args[i], 1, 65535));
    } else {
      UsageError("unknown argument \"" + args[i] + "\" for " + command);
    }
  }

  auto options = ota::testing::PortRegistryOptionsFromEnv();
  if (!options.ok()) Fail(options.status());
  if (command == "list") {
    if (owner_pid) UsageError("list takes no --owner");
    auto claims = ota::testing::ListClaims(*options);
    if (!claims.ok()) Fail(claims.status());
    for (const auto& c : *claims) {
      std::cout << c.port << " " << c.owner.pid << ":" << c.owner.start_time << " "
                << (c.owner_alive ? "alive" : "gone") << "\n";
    }
    return 0;
  }
  if (command != "claim" && command != "release") UsageError("unknown command \"" + command + "\"");
  if (!owner_pid) UsageError(command + " needs --owner PID");
  auto owner = ota::testing::OwnerOf(*owner_pid);
  if (!owner.ok()) Fail(owner.status());
  if (command == "claim") {
    auto claimed = ota::testing::ClaimPortsFor(*options, *owner, count);
    if (!claimed.ok()) Fail(claimed.status());
    for (int port : *claimed) std::cout << port << "\n";
    return 0;
  }
  if (all == !ports.empty()) UsageError("release needs either --all or ports");
  auto released = ota::testing::ReleasePortsOf(*options, *owner,
                                               all ? std::nullopt : std::make_optional(ports));
  if (!released.ok()) Fail(released.status());
  for (int port : *released) std::cout << port << "\n";
  return 0;
}
