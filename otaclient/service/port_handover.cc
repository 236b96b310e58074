#include "otaclient/service/port_handover.h"

#include <dirent.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::service {
namespace {

constexpr std::string_view kLockPrefix = "otaclient-grpc-listen ";

absl::StatusOr<sockaddr_un> LockAddress(const std::string& host_port, socklen_t* length) {
  const std::string name = PortLock::NameFor(host_port);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (name.size() + 1 > sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(StrCat("listen address ", host_port, " is too long"));
  }
  address.sun_path[0] = '\0';  // abstract namespace
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return address;
}

}  // namespace

std::string PortLock::NameFor(const std::string& host_port) {
  return StrCat(kLockPrefix, host_port);
}

absl::StatusOr<PortLock> PortLock::Acquire(const std::string& host_port) {
  socklen_t length = 0;
  OTA_ASSIGN_OR_RETURN(const sockaddr_un address, LockAddress(host_port, &length));
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket(AF_UNIX) for the listen lock");
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(StrCat("another otaclient already serves ", host_port,
                                             " (it holds the lock \\0", NameFor(host_port), ")"));
    }
    return ErrnoStatus(errno, StrCat("binding the listen lock of ", host_port));
  }
  return PortLock(std::move(fd));
}

absl::StatusOr<PortLock> PortLock::Adopt(int fd, const std::string& host_port) {
  socklen_t want_length = 0;
  OTA_ASSIGN_OR_RETURN(const sockaddr_un want, LockAddress(host_port, &want_length));
  sockaddr_un got{};
  socklen_t got_length = sizeof(got);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &got_length) != 0) {
    return ErrnoStatus(errno, StrCat("--listen-lock-fd ", fd, " is not a socket"));
  }
  if (got.sun_family != AF_UNIX || got_length != want_length ||
      std::memcmp(got.sun_path, want.sun_path, want_length - offsetof(sockaddr_un, sun_path)) !=
          0) {
    return absl::InvalidArgumentError(
        StrCat("--listen-lock-fd ", fd, " is not the listen lock of ", host_port));
  }
  return PortLock(fs::UniqueFd(fd));
}

absl::Status SteerNewConnectionsToSuccessor(int port) {
  // "return 1": the socket that joined the group second.
  sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 1}};
  sock_fprog program{};
  program.len = 1;
  program.filter = code;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return ErrnoStatus(errno, "opendir /proc/self/fd");
  int attached = 0;
  absl::Status error;
  while (const dirent* entry = ::readdir(dir)) {
    int fd = -1;
    const std::string_view name = entry->d_name;
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc() || fd < 0) {
      continue;
    }
    int listening = 0;
    socklen_t size = sizeof(listening);
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening == 0) {
      continue;
    }
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) continue;
    int bound = -1;
    if (address.ss_family == AF_INET) {
      bound = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    } else if (address.ss_family == AF_INET6) {
      bound = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    }
    if (bound != port) continue;
    if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program)) != 0) {
      error = ErrnoStatus(errno, StrCat("SO_ATTACH_REUSEPORT_CBPF on the listener of port ", port));
      break;
    }
    ++attached;
  }
  ::closedir(dir);
  if (!error.ok()) return error;
  if (attached == 0) {
    return absl::NotFoundError(StrCat("no listening socket of this process on port ", port));
  }
  return absl::OkStatus();
}

}  // namespace ota::service
