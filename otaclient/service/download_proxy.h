// otaclient's side of otaproxy: which proxy an update downloads through, and the cache purge
// after a successful fleet update.
//
// Who runs otaproxy: systemd (deploy/otaproxy.service; it exits 0 when enable_local_ota_proxy
// is false). otaclient never starts or supervises it; it only uses it when it is there.
//
// Where downloads go (decided once per update, when the update's fetcher is made, and logged):
// - enable_local_ota_proxy true and something accepts TCP connections on
//   local_ota_proxy_listen_addr:port (a wildcard address means this host) → through it;
// - enabled but nothing listening (otaproxy down, crashed, not installed) → upper_ota_proxy if
//   set, else direct, with the reason logged: an update must not fail because the cache is down;
// - disabled → upper_ota_proxy if set, else direct.
//
// Ota-File-Cache-Control (common/http/fetcher.h, FetcherConfig::send_cache_control): blob
// requests carry `file_sha256=<hex>[,file_compression_alg=zst]` whenever a proxy is in use
// (local otaproxy or upper_ota_proxy: either may be an otaproxy, and other proxies ignore the
// header), never on direct downloads; after a hash mismatch the retries carry
// `retry_caching,` in front. Metadata and list files always carry `no_cache`.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config/proxy_info.h"
#include "proto/otaclient_v2.pb.h"

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

// Purge after a fleet update. An ECU whose local otaproxy is enabled (the main ECU) calls
// PurgeLocalOtaProxyAfterFleetUpdate once its own update is committed and its secondaries have
// finished (EngineOptions::before_reboot, after EcuTree::WaitForChildren), like the existing
// system, which cleans its cache at that point. The cache is emptied only when the fleet
// succeeded (FleetSucceeded); otherwise it is kept so a retry of the failed ECUs costs nothing
// upstream. A failed purge is logged, never fails anything. The same hook runs before the
// reboot of a committed rollback (then the cache is purged too when everyone else is fine).
//
// True when every id in `ecu_ids` has an ecu_v2 entry in `children` and every ecu_v2 entry is
// SUCCESS (or INITIALIZED: an ECU not part of this update that never updated).
bool FleetSucceeded(const OtaClientV2::StatusResponse& children,
                    std::span<const std::string> ecu_ids);
// Why FleetSucceeded is false, for the log: "sub2 FAILURE, sub1a not reported" ("" when true).
std::string FleetNotSucceededReason(const OtaClientV2::StatusResponse& children,
                                    std::span<const std::string> ecu_ids);

// A request to the local otaproxy's admin endpoint: `method` ("GET" or "POST", empty body)
// http://<local otaproxy><path> (the address ProxyForOtaClient() gives when enabled; never
// through a proxy). The body of a 200 answer; kUnavailable (not reachable, non-200) naming the
// URL and the reason.
absl::StatusOr<std::string> LocalOtaProxyAdmin(const config::ProxyInfo& info,
                                               std::string_view method, std::string_view path,
                                               std::chrono::milliseconds timeout);

// POST http://<local otaproxy>/_otaproxy/purge (the address ProxyForOtaClient() gives; otaproxy
// accepts it from loopback only, so a proxy listening on a non-loopback address refuses it).
// Error: kUnavailable (not reachable, non-200) naming the URL and the reason.
absl::Status PurgeLocalOtaProxy(const config::ProxyInfo& info, std::chrono::milliseconds timeout);

// enable_local_ota_proxy false → nothing; else FleetSucceeded(children, ecu_ids) →
// PurgeLocalOtaProxy, logged ("otaproxy cache purged" / why not).
void PurgeLocalOtaProxyAfterFleetUpdate(const config::ProxyInfo& info,
                                        const OtaClientV2::StatusResponse& children,
                                        std::span<const std::string> ecu_ids);

}  // namespace ota::service
