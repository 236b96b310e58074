// proxy_info.yml: whether this ECU runs a local otaproxy and where downloads go upstream.
// See deploy/proxy_info.yml for an annotated sample.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::config {

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
// overrides `enable_local_ota_proxy` (with a warning).
absl::StatusOr<ProxyInfo> ParseProxyInfo(std::string_view yaml_text, std::string_view file_name);
absl::StatusOr<ProxyInfo> LoadProxyInfoFile(const std::filesystem::path& file);
// dir/proxy_info.yml, else dir/proxy_info.yaml, else defaults; same rules as LoadEcuInfo.
absl::StatusOr<ProxyInfo> LoadProxyInfo(const std::filesystem::path& dir);

}  // namespace ota::config
