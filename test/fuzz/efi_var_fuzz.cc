// EFI variable files on arbitrary bytes: never crash; what parses encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/efi_var.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::boot;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<EfiVariable> variable = ParseEfiVariable(input); variable.ok()) {
    if (EncodeEfiVariable(*variable) != input) std::abort();
    if (OsIndicationsValue(*variable).ok() != (variable->data.size() == 8)) std::abort();
  }
  return 0;
}
