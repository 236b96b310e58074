// Raspberry Pi config.txt/cmdline.txt parsing and the slot check on arbitrary bytes: never crash;
// parsed entries have a non-empty lower-case key; the check with the input as every file either
// passes or says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "otaclient/boot/rpi_boot_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::boot;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto entries = ParseRpiConfig(input, "config.txt"); entries.ok()) {
    for (const RpiConfigEntry& e : *entries) {
      if (e.key.empty() || e.line <= 0) std::abort();
      for (char c : e.key) {
        if (c >= 'A' && c <= 'Z') std::abort();
      }
    }
  }
  if (auto args = ParseRpiCmdline(input, "cmdline.txt"); args.ok() && args->empty()) std::abort();
  const std::string text(input);
  absl::Status checked =
      CheckSlotBootConfig([&text](std::string_view) -> absl::StatusOr<std::string> { return text; },
                          RpiSlotIdentity{"slot_a", "1234", "abcd", "/dev/mmcblk0p2"});
  if (!checked.ok() && checked.message().empty()) std::abort();
  return 0;
}
