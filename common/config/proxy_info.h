// proxy_info.yml: whether this ECU runs a local otaproxy and where downloads go upstream.
// See deploy/proxy_info.yml for an annotated sample.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::config {

inline constexpr std::string_view kDefaultLoggingServer = "http://127.0.0.1:8083";
inline constexpr std::string_view kDefaultLoggingServerGrpc = "http://127.0.0.1:8084";

struct ProxyInfo {
  // Run the local otaproxy (and let otaclient download through it).
  bool enable_local_ota_proxy = true;
  // "http://host:port" of the parent ECU's otaproxy; "" = none (this ECU is the gateway).
  std::string upper_ota_proxy;
  // The local otaproxy fetches from the OTA server with HTTPS.
  bool gateway = true;
  bool enable_local_ota_proxy_cache = true;
  std::string local_ota_proxy_listen_addr = "0.0.0.0";
  uint16_t local_ota_proxy_listen_port = 8082;
  // Fleet log and metrics upload (common/telemetry/log_uploader.h). The logging server's HTTP
  // endpoint, "http[s]://host[:port][/path]" without a trailing '/'; nullopt (`logging_server:
  // null`) turns the upload off. The default is the same with or without a file, as upstream.
  std::optional<std::string> logging_server = std::string(kDefaultLoggingServer);
  // Its gRPC endpoint. As in the deployed client only the port is used, with logging_server's
  // scheme and host; nullopt (`logging_server_grpc: null`): upload over HTTP only.
  std::optional<std::string> logging_server_grpc = std::string(kDefaultLoggingServerGrpc);
  // The file this came from; empty when no file exists and these are the defaults.
  std::filesystem::path source;
  // Problems that did not stop parsing (unknown keys, deprecated alias, ...); also logged.
  std::vector<std::string> warnings;

  // Proxy URL otaclient downloads through: local proxy enabled → "http://<listen_addr>:<port>"
  // (a wildcard listen address 0.0.0.0 / :: becomes loopback); else upper_ota_proxy; else ""
  // (download directly).
  std::string ProxyForOtaClient() const;

  bool operator==(const ProxyInfo&) const = default;
};

inline constexpr std::string_view kProxyInfoFileName = "proxy_info.yml";
inline constexpr std::string_view kProxyInfoAltFileName = "proxy_info.yaml";

// Same contract as ParseEcuInfo. The deprecated key `enable_ota_proxy` is accepted and
// overrides `enable_local_ota_proxy` (with a warning). `logging_server` and `logging_server_grpc`
// take an http(s) URL or null (null: off, unlike other keys where an empty value means the
// default); "" or anything else is an error.
absl::StatusOr<ProxyInfo> ParseProxyInfo(std::string_view yaml_text, std::string_view file_name);
absl::StatusOr<ProxyInfo> LoadProxyInfoFile(const std::filesystem::path& file);
// dir/proxy_info.yml, else dir/proxy_info.yaml, else defaults; same rules as LoadEcuInfo.
absl::StatusOr<ProxyInfo> LoadProxyInfo(const std::filesystem::path& dir);

}  // namespace ota::config
