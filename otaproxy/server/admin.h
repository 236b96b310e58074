// otaproxy's admin endpoints (origin-form targets under /_otaproxy/, loopback clients only):
// GET /_otaproxy/stats (ServerStats as JSON), POST /_otaproxy/purge (drop every entry).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/proxy_server.h"

namespace ota::proxy {

// ServerStats as one JSON object and a newline.
std::string StatsJson(const ServerStats& s);

// The complete response (head and body) to an admin request for `target` from the client socket
// `fd`. `store` may be null (nothing to purge).
std::string HandleAdmin(int fd, std::string_view method, std::string_view target, bool keep_alive,
                        const std::function<ServerStats()>& stats, CacheStore* store);

}  // namespace ota::proxy
