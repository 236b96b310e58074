#include "otaproxy/server/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/log/log.h"
#include "common/util/json.h"
#include "common/util/strings.h"
#include "otaproxy/server/client_socket.h"

namespace ota::proxy {
namespace {

bool IsLoopbackPeer(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

std::string StatsJson(const ServerStats& s) {
  std::string cache_error;
  AppendJsonString(&cache_error, s.cache_error);
  return StrCat("{\"requests\":", s.requests, ",\"cache_hits\":", s.cache_hits,
                ",\"cache_misses\":", s.cache_misses, ",\"flight_joins\":", s.flight_joins,
                ",\"relayed\":", s.relayed, ",\"upstream_fetches\":", s.upstream_fetches,
                ",\"upstream_failures\":", s.upstream_failures,
                ",\"verify_failures\":", s.verify_failures, ",\"committed\":", s.committed,
                ",\"rejected_busy\":", s.rejected_busy, ",\"cache_entries\":", s.cache_entries,
                ",\"cache_bytes\":", s.cache_bytes, ",\"evictions\":", s.evictions,
                ",\"inflight\":", s.inflight, ",\"connections\":", s.connections,
                ",\"index_pending\":", s.index_pending, ",\"cdn_hits\":", s.cdn_hits,
                ",\"external_hits\":", s.external_hits,
                ",\"external_nfs_hits\":", s.external_nfs_hits, ",\"cache\":\"", s.cache,
                "\",\"cache_error\":", cache_error, ",\"usb_cache\":", s.usb_cache,
                ",\"nfs_cache\":", s.nfs_cache, "}\n");
}

std::string HandleAdmin(int fd, std::string_view method, std::string_view target, bool keep_alive,
                        const std::function<ServerStats()>& stats, CacheStore* store) {
  if (!IsLoopbackPeer(fd)) {
    return FormatSimple(403, "otaproxy: admin requests only from loopback\n", keep_alive);
  }
  if (target == "/_otaproxy/stats" && method == "GET") {
    const std::string json = StatsJson(stats());
    ResponseHead head;
    head.content_length = json.size();
    head.content_type = "application/json";
    head.keep_alive = keep_alive;
    return FormatHead(head) + json;
  }
  if (target == "/_otaproxy/purge" && method == "POST") {
    const size_t purged = store != nullptr ? store->Purge() : 0;
    log::Info("cache purged on request", {{"entries", std::to_string(purged)}});
    return FormatSimple(200, StrCat("{\"purged\":", purged, "}\n"), keep_alive);
  }
  return FormatSimple(
      404, "otaproxy: admin endpoints: GET /_otaproxy/stats, POST /_otaproxy/purge\n", keep_alive);
}

}  // namespace ota::proxy
