// TCP sockets on 127.0.0.1 for the small servers and clients tests write themselves (a server
// that cuts a response, a port that refuses, a raw client). The kernel picks the port: a test
// never guesses a free one.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "common/util/errors.h"

namespace ota::testing {

struct LoopbackSocket {
  fs::UniqueFd fd;
  int port = 0;
};

// A socket bound to 127.0.0.1 on a free port; listening with `backlog` when it is > 0 (a bound
// socket that does not listen refuses connections: a closed port that stays ours).
inline absl::StatusOr<LoopbackSocket> BindLoopback(int backlog) {
  LoopbackSocket s;
  s.fd = fs::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (backlog > 0 && ::listen(s.fd.get(), backlog) != 0) ||
      ::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus(errno, "bind/listen on 127.0.0.1:0");
  }
  s.port = ntohs(addr.sin_port);
  return s;
}

// A TCP connection to 127.0.0.1:`port`.
inline absl::StatusOr<fs::UniqueFd> ConnectLoopback(int port) {
  fs::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, "connect 127.0.0.1:" + std::to_string(port));
  }
  return fd;
}

}  // namespace ota::testing
