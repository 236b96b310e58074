// Fuzzes CacheCountersFromStatsJson (the otaproxy's /_otaproxy/stats answer read for the metrics
// record): arbitrary bytes give counters or nullopt, never a crash or an escaping exception; the
// counters over a session are consistent.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/metrics/cache_counters.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::optional<ota::metrics::CacheCounters> counters =
      ota::metrics::CacheCountersFromStatsJson(text);
  if (!counters.has_value()) return 0;
  // Nothing happened between two equal readings; from zero, everything counts.
  Require(ota::metrics::CountersSince(*counters, *counters) == ota::metrics::CacheCounters{});
  Require(ota::metrics::CountersSince(ota::metrics::CacheCounters{}, *counters) == *counters);
  return 0;
}
