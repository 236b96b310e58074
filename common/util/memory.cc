#include "common/util/memory.h"

#include <malloc.h>

namespace ota {

void ReleaseFreeMemory() { malloc_trim(0); }

void TuneAllocatorForDaemon(int max_arenas) {
  constexpr int kMmapThresholdBytes = 128 * 1024;
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);  // NOLINT(concurrency-mt-unsafe): see header
  mallopt(M_ARENA_MAX, max_arenas);                // NOLINT(concurrency-mt-unsafe): see header
}

}  // namespace ota
