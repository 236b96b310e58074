#include "common/util/memory.h"

#include <malloc.h>
#include <unistd.h>

#include <fstream>

namespace ota {

void ReleaseFreeMemory() { malloc_trim(0); }

long ResidentSetKib() {
  std::ifstream statm("/proc/self/statm");
  long total_pages = 0;
  long resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages)) return -1;
  return resident_pages * (sysconf(_SC_PAGESIZE) / 1024);
}

void TuneAllocatorForDaemon(int max_arenas) {
  constexpr int kMmapThresholdBytes = 128 * 1024;
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes);  // NOLINT(concurrency-mt-unsafe): see header
  mallopt(M_ARENA_MAX, max_arenas);                // NOLINT(concurrency-mt-unsafe): see header
}

}  // namespace ota
