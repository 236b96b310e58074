// The version_detail status file (the Python client's json.dumps) on arbitrary bytes: never
// crash; what parses formats and parses back to the same release.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/slot_state_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::boot;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (std::optional<ReleaseInfo> release = ParseVersionDetail(input); release.has_value()) {
    std::optional<ReleaseInfo> again = ParseVersionDetail(FormatVersionDetail(*release));
    if (!again.has_value() || *again != *release) std::abort();
  }
  return 0;
}
