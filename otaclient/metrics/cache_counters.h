// The cache counters of the fleet metrics record (cache_total_requests, cache_cdn_hits, ...),
// read from the local otaproxy's GET /_otaproxy/stats. This is the one place that knows the
// otaproxy's stats field names: they are read defensively (a field missing or not a non-negative
// integer counts 0, unknown fields are ignored, several spellings are tried in order), so a
// renamed counter costs a zero in the metrics, never a failed update.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ota::metrics {

struct CacheCounters {
  uint64_t total_requests = 0;     // requests the otaproxy served
  uint64_t cdn_hits = 0;           // upstream answers that were CDN cache hits (X-Cache: hit*)
  uint64_t external_hits = 0;      // served from an external (USB) cache
  uint64_t external_nfs_hits = 0;  // served from an external NFS cache
  uint64_t local_hits = 0;         // served from the otaproxy's own cache
  bool operator==(const CacheCounters&) const = default;
};

// The counters in a /_otaproxy/stats answer; nullopt when it is not a JSON object.
std::optional<CacheCounters> CacheCountersFromStatsJson(std::string_view json);

// What happened between two readings of the same otaproxy's counters (they count since it
// started). Fewer total requests at the end mean the otaproxy restarted in between: its counters
// since the restart are taken.
CacheCounters CountersSince(const CacheCounters& start, const CacheCounters& end);

}  // namespace ota::metrics
