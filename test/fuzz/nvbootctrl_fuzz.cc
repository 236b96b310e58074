// nvbootctrl output parsers on arbitrary bytes: never crash, accept only what they document.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/nvbootctrl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<int> slot = ota::boot::ParseNvbootctrlSlot(input);
  if (slot.ok() && (*slot < 0 || *slot > 1 || input.size() > 2)) std::abort();
  absl::StatusOr<int> count = ota::boot::ParseNvbootctrlSlotCount(input);
  if (count.ok() && (*count < 1 || *count > 9 || input.size() > 2)) std::abort();
  return 0;
}
