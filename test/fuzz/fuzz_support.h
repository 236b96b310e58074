// What the fuzz targets share: a property check that aborts (libFuzzer reports the input), and
// quiet logs (warnings about rejected input would flood the output and slow the run).
#pragma once

#include <cstdlib>

#include "common/log/log.h"

namespace ota::fuzz {

inline void Require(bool condition) {
  if (!condition) std::abort();
}

// Call at the top of LLVMFuzzerTestOneInput; only the first call does anything.
inline void QuietLogs() {
  static const bool quiet = [] {
    log::SetMinLevel(log::Level::kError);
    return true;
  }();
  (void)quiet;
}

}  // namespace ota::fuzz
