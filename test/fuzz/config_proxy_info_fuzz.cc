// Fuzzes ParseProxyInfo: arbitrary bytes must give a value or an error, never a crash or an
// escaping exception, and every accepted config must satisfy the documented invariants.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config/host.h"
#include "common/config/proxy_info.h"
#include "common/log/log.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::fuzz::QuietLogs();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ota::config::ProxyInfo> info = ota::config::ParseProxyInfo(text, "fuzz.yml");
  if (!info.ok()) {
    Require(info.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Require(info->local_ota_proxy_listen_port != 0);
  Require(ota::config::ValidateHost(info->local_ota_proxy_listen_addr).ok());
  if (!info->upper_ota_proxy.empty()) {
    // Normalised form is a fixed point.
    bool path_dropped = true;
    absl::StatusOr<std::string> again =
        ota::config::NormalizeProxyUrl(info->upper_ota_proxy, &path_dropped);
    Require(again.ok() && *again == info->upper_ota_proxy && !path_dropped);
  }
  // The gateway role follows upstream's rule unless the (deprecated) key says otherwise.
  if (text.find("gateway") == std::string_view::npos) {
    Require(info->gateway == info->upper_ota_proxy.empty());
  }
  // Logging URLs: parseable, without a trailing '/', and a fixed point of the parser.
  for (const auto* url : {&info->logging_server, &info->logging_server_grpc}) {
    if (!url->has_value()) continue;
    absl::StatusOr<ota::config::HttpUrl> parsed = ota::config::ParseHttpUrl(**url, "x");
    Require(parsed.ok() && !(*url)->ends_with('/'));
    Require(parsed->Origin() + parsed->path == **url);
  }
  std::string proxy = info->ProxyForOtaClient();
  Require(proxy.empty() || proxy.rfind("http://", 0) == 0 || proxy.rfind("https://", 0) == 0);
  Require(!info->enable_local_ota_proxy || !proxy.empty());
  return 0;
}
