// otaproxy's admin endpoints (origin-form targets under /_otaproxy/, loopback clients only):
// GET /_otaproxy/stats (ServerStats as JSON), POST /_otaproxy/purge (drop every entry).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/client_socket.h"
#include "otaproxy/server/proxy_server.h"

namespace ota::proxy {

// ServerStats as one JSON object and a newline.
std::string StatsJson(const ServerStats& s);

// Answers an admin request for `target`. `store` may be null (nothing to purge). Returns whether
// the connection stays open.
bool HandleAdmin(ClientSocket& sock, std::string_view method, std::string_view target,
                 bool keep_alive, const std::function<ServerStats()>& stats, CacheStore* store);

}  // namespace ota::proxy
