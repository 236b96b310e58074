// TCP ports for tests: one machine-wide registry, shared by every test process (C++ tests link
// this library; shell tests call the ota-test-ports tool built from it, through ports.sh beside
// this file), so the protocol below has exactly one implementation.
//
// Which mechanism a test uses:
//   * a daemon started once whose port nobody needs in advance: --listen-port 0 and
//     --port-file FILE (otaclient, otaproxy); the test reads the port from FILE (port_file.h,
//     lib.sh's wait_port_file). No registry involved.
//   * a port needed before its server starts (a config that names it: nginx's three ports, a
//     secondary listed in its parent's ecu_info, an otaproxy named in proxy_info.yaml), a server
//     that must come back on the same port (a restarted or re-executed daemon), or a port that
//     must stay closed (a connection-refused test): a claim from this registry.
//
// The registry protocol (version 1):
//   * Candidates: the ports of the window OTA_TEST_PORTS_RANGE ("LO-HI", default 15000-19999)
//     that lie outside the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range),
//     tried in ascending order. The kernel never hands such a port to a connect() or a bind() to
//     port 0, so no client socket and no port-0 daemon can take it.
//   * Directory OTA_TEST_PORTS_DIR (default /run/ota-test-ports for root, else
//     /tmp/ota-test-ports-<uid>), created on first use. Every operation holds an exclusive
//     flock(2) on DIR/lock for its whole duration.
//   * A claim is a symbolic link DIR/<port> whose target is "<pid>:<start time>" of the owning
//     process (start time: field 22 of /proc/<pid>/stat, so a reused PID is not the owner).
//   * claim: for each candidate, in order: a claim whose owner is alive (process exists with that
//     start time and is no zombie) is skipped; a claim whose owner is gone is removed; then a
//     probe: bind(0.0.0.0:<port>) without SO_REUSEADDR must succeed (nothing on the machine uses
//     the port, not even a TIME_WAIT connection), and the link is created. A request for N ports
//     gets all N or none.
//   * release: removes the claims of the given ports (or all claims) that name the given owner;
//     claims of other owners are left alone.
//   * A claim is released by its owner (a C++ PortClaim's destructor; a shell test's EXIT trap)
//     or, once the owner is gone, reclaimed by the next claimer.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::testing {

struct PortRange {
  int lo = 0;
  int hi = 0;  // inclusive
};

struct PortRegistryOptions {
  std::filesystem::path dir;
  PortRange window;
  std::filesystem::path ephemeral_range_file = "/proc/sys/net/ipv4/ip_local_port_range";
  // The probe; empty: the real one (bind to 0.0.0.0:port). Tests of the registry itself replace it.
  std::function<bool(int port)> port_unused;
};

// The options from OTA_TEST_PORTS_DIR and OTA_TEST_PORTS_RANGE (or their defaults).
absl::StatusOr<PortRegistryOptions> PortRegistryOptionsFromEnv();

// "LO-HI" with 1 <= LO <= HI <= 65535.
absl::StatusOr<PortRange> ParsePortRange(std::string_view text);

// A process as a claim names it.
struct PortOwner {
  pid_t pid = 0;
  uint64_t start_time = 0;  // clock ticks after boot, /proc/<pid>/stat field 22
  bool operator==(const PortOwner&) const = default;
};
// kNotFound when there is no such process.
absl::StatusOr<PortOwner> OwnerOf(pid_t pid);

// Claims `count` ports for `owner` (all or none), ascending.
absl::StatusOr<std::vector<int>> ClaimPortsFor(const PortRegistryOptions& options,
                                               const PortOwner& owner, int count);
// Releases `ports` (nullopt: every port) claimed by `owner`; returns the ports released.
absl::StatusOr<std::vector<int>> ReleasePortsOf(const PortRegistryOptions& options,
                                                const PortOwner& owner,
                                                const std::optional<std::vector<int>>& ports);

struct ClaimInfo {
  int port = 0;
  PortOwner owner;  // pid 0 when the link is not a claim of this protocol
  bool owner_alive = false;
};
absl::StatusOr<std::vector<ClaimInfo>> ListClaims(const PortRegistryOptions& options);

// A port claimed for this process; released when the object is destroyed.
class PortClaim {
 public:
  PortClaim() = default;
  PortClaim(PortRegistryOptions options, PortOwner owner, int port)
      : options_(std::move(options)), owner_(owner), port_(port) {}
  PortClaim(PortClaim&& other) noexcept;
  PortClaim& operator=(PortClaim&& other) noexcept;
  PortClaim(const PortClaim&) = delete;
  PortClaim& operator=(const PortClaim&) = delete;
  ~PortClaim() { Release(); }

  int port() const { return port_; }
  void Release();

 private:
  PortRegistryOptions options_;
  PortOwner owner_;
  int port_ = 0;
};

// Claims from the registry the environment names, owned by this process.
absl::StatusOr<PortClaim> ClaimPort();
absl::StatusOr<std::vector<PortClaim>> ClaimPorts(int count);

}  // namespace ota::testing
