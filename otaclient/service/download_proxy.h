// Which proxy otaclient downloads through (proxy_info.yml's rule), with one stopgap: while the
// local otaproxy is enabled but not listening (otaproxy not shipped or not started yet), use
// upper_ota_proxy, else download directly, instead of failing every download on a dead proxy.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/config/proxy_info.h"

namespace ota::service {

// Probes host:port with a TCP connect; true when something accepts connections there.
using ListeningProbe = std::function<bool(const std::string& host, int port)>;

bool TcpPortAccepts(const std::string& host, int port, std::chrono::milliseconds timeout);

struct DownloadProxyChoice {
  std::string proxy;   // "" = direct
  std::string reason;  // for the log: why this proxy
};

// Local proxy enabled and listening → it; enabled but not listening → upper_ota_proxy (or
// direct); disabled → ProxyInfo::ProxyForOtaClient() (upper_ota_proxy or direct).
DownloadProxyChoice ChooseDownloadProxy(const config::ProxyInfo& info,
                                        const ListeningProbe& is_listening);

}  // namespace ota::service
