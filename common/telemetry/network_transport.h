// The logging server's two APIs as UploadTransports (upload_transport.h), and the connector that
// picks one the way the deployed client does.
//   gRPC: unary OTAClientIoTLoggingService/PutLog per record on one insecure channel, one call
//         at a time (the server orders records by arrival); PutLogRequest{ecu_id, log_type (LOG |
//         METRICS), level, message}; timestamp left 0, so the server stamps the time of arrival as
//         it does for the deployed client (our records carry their own time in the line).
//   HTTP: POST <logging_server>/<ecu_id> with the record as the body (text/plain, UTF-8), one
//         record per request on a keep-alive connection. The log type is lost over HTTP: the
//         server files metrics records with the logs, as it does for the deployed client.
// Connections never go through a proxy from the environment (http_proxy & co. are ignored).
#pragma once

#include <memory>
#include <string>

#include "common/telemetry/upload_endpoints.h"
#include "common/telemetry/upload_transport.h"

namespace ota::telemetry {

std::unique_ptr<UploadConnector> CreateNetworkConnector(UploadEndpoints endpoints,
                                                        std::string ecu_id);

}  // namespace ota::telemetry
