// Jetson text parsers on arbitrary bytes (BSP versions, nv_tegra_release, nv_boot_control.conf,
// nvbootctrl dump-slots-info, the L4TLauncher version file): never crash, and what they accept
// round-trips.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/capsule_updater.h"
#include "otaclient/boot/jetson_bsp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::boot;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<BspVersion> v = ParseBspVersion(input); v.ok()) {
    absl::StatusOr<BspVersion> again = ParseBspVersion(v->ToString());
    if (!again.ok() || *again != *v) std::abort();
  }
  if (absl::StatusOr<BspVersion> v = ParseNvTegraRelease(input); v.ok()) {
    if (v->major > 9999 || v->revision > 9999 || v->minor > 9999) std::abort();
  }
  (void)ParseNvBootControlConf(input);
  if (absl::StatusOr<DumpSlotsInfo> info = ParseDumpSlotsInfo(input); info.ok()) {
    for (const auto& slot : {info->active_bootloader_slot, info->current_bootloader_slot}) {
      if (slot.has_value() && *slot != 0 && *slot != 1) std::abort();
    }
  }
  if (auto launcher = ParseL4tLauncherVersion(input); launcher.has_value()) {
    if (launcher->sha256.size() != 64) std::abort();
  }
  return 0;
}
