// A ClientUpdate without a gap in Status: the old otaclient keeps serving until the new one
// serves on the same port, then stops.
//
// The port is shared with SO_REUSEPORT, which gRPC sets by default and server.cc used to turn off
// because a second daemon would then share the port silently. Two pieces keep that out:
//   - PortLock: "an otaclient serves <host:port>", an abstract unix socket bound to that name
//     (one per network namespace, like the TCP port; released when its last fd closes; nothing on
//     disk). A daemon takes it before it listens (after, for port 0); a second daemon cannot and
//     refuses to start. The new client started by a ClientUpdate inherits the old one's lock fd
//     (--listen-lock-fd) and adopts it after checking its name: only the old daemon's own child can
//     join the port.
//   - SteerNewConnectionsToSuccessor: every daemon attaches a classic BPF program
//     (SO_ATTACH_REUSEPORT_CBPF) returning 1 to its listener's reuseport group. Alone in the
//     group, index 1 is out of range and the kernel uses its hash (this socket). Once the new
//     client listens on the port, its socket is the second of the group and every new connection
//     goes to it, from its listen() on. The old daemon checks that the new one answers Status
//     through the shared port (so through the steering) and only then stops its own server; its
//     accept queue has received nothing since the new client listened, and what it had was
//     accepted by gRPC at once. When the old socket is gone the group has one socket again and
//     the program is out of range (harmless).
// A client that does not come up changes nothing: the old daemon never stopped serving.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"

namespace ota::service {

class PortLock {
 public:
  // kAlreadyExists when another process holds it.
  static absl::StatusOr<PortLock> Acquire(const std::string& host_port);
  // An inherited lock fd: must be a unix socket bound to the lock name of `host_port`.
  static absl::StatusOr<PortLock> Adopt(int fd, const std::string& host_port);
  static std::string NameFor(const std::string& host_port);  // without the leading NUL

  int fd() const { return fd_.get(); }

 private:
  explicit PortLock(fs::UniqueFd fd) : fd_(std::move(fd)) {}
  fs::UniqueFd fd_;
};

// Attaches the steering program to every listening TCP socket of this process on `port`
// (kNotFound when there is none).
absl::Status SteerNewConnectionsToSuccessor(int port);

}  // namespace ota::service
