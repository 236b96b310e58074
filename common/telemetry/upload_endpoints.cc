#include "common/telemetry/upload_endpoints.h"

#include "common/config/host.h"
#include "common/image/url.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::telemetry {

absl::StatusOr<std::optional<UploadEndpoints>> ResolveUploadEndpoints(
    const config::ProxyInfo& proxy_info, std::string_view ecu_id) {
  if (!proxy_info.logging_server.has_value()) return std::nullopt;
  if (ecu_id.empty()) return absl::InvalidArgumentError("log upload: empty ecu_id");
  constexpr std::string_view kExample = "http://10.0.0.1:8083";
  absl::StatusOr<config::HttpUrl> http = config::ParseHttpUrl(*proxy_info.logging_server, kExample);
  if (!http.ok()) {
    return WithContext(http.status(), StrCat("logging_server ", *proxy_info.logging_server));
  }
  UploadEndpoints endpoints;
  endpoints.http_url = image::JoinUrl(*proxy_info.logging_server, image::PercentEncodePath(ecu_id));
  if (proxy_info.logging_server_grpc.has_value()) {
    absl::StatusOr<config::HttpUrl> grpc =
        config::ParseHttpUrl(*proxy_info.logging_server_grpc, kExample);
    if (!grpc.ok()) {
      return WithContext(grpc.status(),
                         StrCat("logging_server_grpc ", *proxy_info.logging_server_grpc));
    }
    endpoints.grpc_target = config::FormatHostPort(http->host, grpc->PortOrDefault());
  }
  return endpoints;
}

}  // namespace ota::telemetry
