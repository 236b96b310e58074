// /proc/self/mountinfo, major:minor and kernel command line parsing (common/sys/block_device.h)
// on arbitrary bytes: never crash; when the whole text parses, every entry's mount point is found
// again by FindMountDevice with the device of the last entry there (the top of the mount stack);
// a parsed major:minor prints and parses back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/sys/block_device.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ota::sys::KernelCmdlineValue(text, "root");

  if (auto number = ota::sys::ParseDeviceNumber(text, "fuzz"); number.ok()) {
    auto again = ota::sys::ParseDeviceNumber(ota::StrCat(number->major, ":", number->minor), "x");
    if (!again.ok() || !(*again == *number)) std::abort();
  }

  auto entries = ota::sys::ParseMountinfo(text, "fuzz");
  if (!entries.ok()) {
    // The same text can never be found to have something mounted.
    if (ota::sys::FindMountDevice(text, "/").ok()) std::abort();
    return 0;
  }
  for (const ota::sys::MountinfoEntry& entry : *entries) {
    if (entry.mount_point.empty() || entry.mount_point.find('\0') != std::string::npos) continue;
    auto found = ota::sys::FindMountDevice(text, entry.mount_point);
    if (!found.ok()) std::abort();
    // The last entry with the same (normalized) mount point wins.
    const std::string wanted = ota::NormalizeMountPoint(entry.mount_point);
    ota::sys::DeviceNumber last{};
    for (const ota::sys::MountinfoEntry& other : *entries) {
      if (ota::NormalizeMountPoint(other.mount_point) == wanted) last = other.device;
    }
    if (!(*found == last)) std::abort();
  }
  return 0;
}
