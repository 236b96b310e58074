#include "otaclient/service/download_proxy.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/fs/fs.h"
#include "common/util/strings.h"

namespace ota::service {
namespace {

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

bool ConnectWithin(const addrinfo& addr, std::chrono::milliseconds timeout) {
  fs::UniqueFd fd(socket(addr.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  if (connect(fd.get(), addr.ai_addr, addr.ai_addrlen) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd pfd{.fd = fd.get(), .events = POLLOUT, .revents = 0};
  if (poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) return false;
  int error = 0;
  socklen_t len = sizeof(error);
  return getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
}

// The listen address as a client reaches it: wildcards mean "this host".
std::string ReachableHost(const std::string& listen_addr) {
  if (listen_addr == "0.0.0.0" || listen_addr.empty()) return "127.0.0.1";
  if (listen_addr == "::") return "::1";
  return listen_addr;
}

}  // namespace

bool TcpPortAccepts(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &raw) != 0) return false;
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(raw);
  for (const addrinfo* addr = list.get(); addr != nullptr; addr = addr->ai_next) {
    if (ConnectWithin(*addr, timeout)) return true;
  }
  return false;
}

DownloadProxyChoice ChooseDownloadProxy(const config::ProxyInfo& info,
                                        const ListeningProbe& is_listening) {
  if (!info.enable_local_ota_proxy) {
    const std::string proxy = info.ProxyForOtaClient();
    return {proxy, proxy.empty() ? "local otaproxy disabled, no upper_ota_proxy: direct"
                                 : "local otaproxy disabled: upper_ota_proxy"};
  }
  const std::string host = ReachableHost(info.local_ota_proxy_listen_addr);
  const int port = info.local_ota_proxy_listen_port;
  if (is_listening(host, port)) {
    return {info.ProxyForOtaClient(), "local otaproxy is listening"};
  }
  const std::string why = StrCat("local otaproxy enabled but nothing listens on ", host, ":", port);
  if (!info.upper_ota_proxy.empty()) {
    return {info.upper_ota_proxy, StrCat(why, ": using upper_ota_proxy")};
  }
  return {"", StrCat(why, " and no upper_ota_proxy: downloading directly")};
}

}  // namespace ota::service
