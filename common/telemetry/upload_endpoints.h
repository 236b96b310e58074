// Where the fleet log upload goes, from proxy_info's logging_server and logging_server_grpc,
// resolved the way the deployed client does it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/config/proxy_info.h"

namespace ota::telemetry {

struct UploadEndpoints {
  // POST target of the HTTP transport (and of the "is the server up" probe):
  // <logging_server>/<ecu_id> (the id percent-encoded).
  std::string http_url;
  // gRPC target "host:port": logging_server's host with logging_server_grpc's port (the
  // deployed client's workaround: proxy_info.yaml could not be updated by an OTA, so the gRPC
  // URL's host is ignored and the HTTP server's host is taken). "" when logging_server_grpc is
  // null: HTTP only. The scheme plays no part: the deployed client's channel is insecure.
  std::string grpc_target;

  bool operator==(const UploadEndpoints&) const = default;
};

// nullopt when logging_server is null (upload off). logging_server_grpc without a port means
// its scheme's default port (80/443). kInvalidArgument for a URL that does not parse (the config
// parser already refuses those) or an empty ecu_id.
absl::StatusOr<std::optional<UploadEndpoints>> ResolveUploadEndpoints(
    const config::ProxyInfo& proxy_info, std::string_view ecu_id);

}  // namespace ota::telemetry
