// proxy_info.yaml: whether this ECU runs a local otaproxy and where downloads go upstream.
// See deploy/proxy_info.yaml for an annotated sample. Read the way today's Python otaclient reads
// it (PyYAML, YAML 1.1 scalars, pydantic strict types): a missing file and a missing key are not
// the same — no file gives the main-ECU profile below (local otaproxy on), while a file without
// `enable_local_ota_proxy` means no local otaproxy.
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

// The defaults are upstream's DEFAULT_PROXY_INFO: what applies when there is no file (or, in
// otaclient, when the file is invalid: the error is logged, as upstream does).
struct ProxyInfo {
  int format_version = 1;
  // Run the local otaproxy (and let otaclient download through it). In a file that does not
  // name it (nor its old name enable_ota_proxy): false.
  bool enable_local_ota_proxy = true;
  // "scheme://host:port" of the parent ECU's otaproxy (normalised, see NormalizeProxyUrl);
  // "" = none (this ECU is the gateway).
  std::string upper_ota_proxy;
  // Deprecated key: upstream ignores it and takes the gateway role from "no upper_ota_proxy",
  // which is also the default here. otaclient does not use it; otaproxy still honours an explicit
  // value (the otaproxy rewrite decides).
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
  // A pre-mounted NFS share otaproxy reads blobs from (<path>/data/<sha256>[.zst], never
  // written); used only when it is a mount point when otaproxy starts (otaproxy/README.md).
  std::optional<std::string> external_nfs_cache_mnt_point;
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

// The Python client reads only proxy_info.yaml; proxy_info.yml is still read when there is no
// .yaml.
inline constexpr std::string_view kProxyInfoFileName = "proxy_info.yaml";
inline constexpr std::string_view kProxyInfoAltFileName = "proxy_info.yml";

// Same contract as ParseEcuInfo (an empty document is invalid, as upstream). The deprecated key
// `enable_ota_proxy` is accepted with a warning; `enable_local_ota_proxy` wins when both are set.
// `logging_server` and `logging_server_grpc` take an http(s) URL or null (null: off; "" or
// anything else is an error).
absl::StatusOr<ProxyInfo> ParseProxyInfo(std::string_view yaml_text, std::string_view file_name);
absl::StatusOr<ProxyInfo> LoadProxyInfoFile(const std::filesystem::path& file);
// dir/proxy_info.yaml, else dir/proxy_info.yml (both: .yaml wins, warned), else the defaults
// with an empty `source`; logs which file it used. An invalid file is an error: otaclient then
// logs it and runs on the defaults, like upstream; otaproxy refuses to start.
absl::StatusOr<ProxyInfo> LoadProxyInfo(const std::filesystem::path& dir);

}  // namespace ota::config
