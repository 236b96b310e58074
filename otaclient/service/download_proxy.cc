#include "otaclient/service/download_proxy.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "common/fs/fs.h"
#include "common/log/log.h"
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

std::string FleetNotSucceededReason(const OtaClientV2::StatusResponse& children,
                                    std::span<const std::string> ecu_ids) {
  std::string reason;
  auto add = [&reason](const auto&... parts) {
    StrAppend(&reason, reason.empty() ? "" : ", ", parts...);
  };
  for (const auto& entry : children.ecu_v2()) {
    if (entry.ota_status() != OtaClientV2::SUCCESS &&
        entry.ota_status() != OtaClientV2::INITIALIZED) {
      add(entry.ecu_id(), " ", OtaClientV2::StatusOta_Name(entry.ota_status()));
    }
  }
  for (const std::string& id : ecu_ids) {
    if (std::none_of(children.ecu_v2().begin(), children.ecu_v2().end(),
                     [&](const auto& entry) { return entry.ecu_id() == id; })) {
      add(id, " not reported");
    }
  }
  return reason;
}

bool FleetSucceeded(const OtaClientV2::StatusResponse& children,
                    std::span<const std::string> ecu_ids) {
  return FleetNotSucceededReason(children, ecu_ids).empty();
}

absl::StatusOr<std::string> LocalOtaProxyAdmin(const config::ProxyInfo& info,
                                               std::string_view method, std::string_view path,
                                               std::chrono::milliseconds timeout) {
  config::ProxyInfo local = info;
  local.enable_local_ota_proxy = true;
  const std::string url = StrCat(local.ProxyForOtaClient(), path);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  if (!easy) return absl::InternalError("curl_easy_init failed");
  std::string body;
  auto append = +[](char* data, size_t size, size_t count, void* out) -> size_t {
    static_cast<std::string*>(out)->append(data, size * count);
    return size * count;
  };
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(easy.get(), CURLOPT_URL, url.c_str());
  if (method == "POST") {
    curl_easy_setopt(easy.get(), CURLOPT_POST, 1L);
    curl_easy_setopt(easy.get(), CURLOPT_POSTFIELDS, "");
  }
  curl_easy_setopt(easy.get(), CURLOPT_PROXY, "");  // never through http_proxy & co.
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(easy.get(), CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, errbuf);
  const CURLcode result = curl_easy_perform(easy.get());
  if (result != CURLE_OK) {
    return absl::UnavailableError(StrCat("otaproxy ", method, " ", url, ": ",
                                         errbuf[0] != '\0' ? errbuf : curl_easy_strerror(result)));
  }
  long code = 0;
  curl_easy_getinfo(easy.get(), CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    return absl::UnavailableError(
        StrCat("otaproxy ", method, " ", url, ": HTTP ", code, " ", body));
  }
  return body;
}

absl::Status PurgeLocalOtaProxy(const config::ProxyInfo& info, std::chrono::milliseconds timeout) {
  return LocalOtaProxyAdmin(info, "POST", "/_otaproxy/purge", timeout).status();
}

void PurgeLocalOtaProxyAfterFleetUpdate(const config::ProxyInfo& info,
                                        const OtaClientV2::StatusResponse& children,
                                        std::span<const std::string> ecu_ids) {
  if (!info.enable_local_ota_proxy) return;
  const std::string not_succeeded = FleetNotSucceededReason(children, ecu_ids);
  if (!not_succeeded.empty()) {
    log::Info("otaproxy cache kept: not every ECU succeeded", {{"why", not_succeeded}});
    return;
  }
  const absl::Status purged = PurgeLocalOtaProxy(info, std::chrono::seconds(10));
  if (!purged.ok()) {
    log::Warning("otaproxy cache not purged", {{"error", std::string(purged.message())}});
    return;
  }
  log::Info("otaproxy cache purged after a successful fleet update");
}

}  // namespace ota::service
