#include "otaclient/metrics/cache_counters.h"

#include <initializer_list>

#include "nlohmann/json.hpp"

namespace ota::metrics {
namespace {

// The first of `names` that is a non-negative integer in `stats`, else 0.
uint64_t Counter(const nlohmann::json& stats, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const auto it = stats.find(name);
    if (it == stats.end()) continue;
    if (it->is_number_unsigned()) return it->get<uint64_t>();
    if (it->is_number_integer() && it->get<int64_t>() >= 0) {
      return static_cast<uint64_t>(it->get<int64_t>());
    }
  }
  return 0;
}

}  // namespace

std::optional<CacheCounters> CacheCountersFromStatsJson(std::string_view json) {
  const nlohmann::json stats = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!stats.is_object()) return std::nullopt;
  // otaproxy/server/admin.cc names first, then the metrics' own names (a future otaproxy may
  // publish them under these).
  CacheCounters out;
  out.total_requests = Counter(stats, {"requests", "total_requests", "cache_total_requests"});
  out.cdn_hits = Counter(stats, {"cdn_hits", "cache_cdn_hits"});
  out.external_hits = Counter(stats, {"external_hits", "cache_external_hits"});
  out.external_nfs_hits =
      Counter(stats, {"external_nfs_hits", "nfs_hits", "cache_external_nfs_hits"});
  out.local_hits = Counter(stats, {"cache_hits", "local_hits", "cache_local_hits"});
  return out;
}

CacheCounters CountersSince(const CacheCounters& start, const CacheCounters& end) {
  if (end.total_requests < start.total_requests) return end;  // restarted
  auto since = [](uint64_t a, uint64_t b) { return b >= a ? b - a : b; };
  return CacheCounters{
      .total_requests = since(start.total_requests, end.total_requests),
      .cdn_hits = since(start.cdn_hits, end.cdn_hits),
      .external_hits = since(start.external_hits, end.external_hits),
      .external_nfs_hits = since(start.external_nfs_hits, end.external_nfs_hits),
      .local_hits = since(start.local_hits, end.local_hits),
  };
}

}  // namespace ota::metrics
