// otaproxy's request counters, bumped by request handling and downloads alike; ServerStats
// (proxy_server.h) is their snapshot.
#pragma once

#include <atomic>
#include <cstdint>

namespace ota::proxy {

struct Counters {
  std::atomic<uint64_t> requests{0}, cache_hits{0}, cache_misses{0}, flight_joins{0}, relayed{0},
      upstream_fetches{0}, upstream_failures{0}, verify_failures{0}, committed{0}, rejected_busy{0},
      cdn_hits{0}, external_hits{0}, external_nfs_hits{0};
};

}  // namespace ota::proxy
