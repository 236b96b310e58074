// /etc/fstab parsing and the standby merge on arbitrary bytes (input = active fstab, a NUL-free
// '\x01' separator, image fstab): never crash; every parsed entry survives a format/parse round
// trip; a successful merge parses again and every "/" entry in it names the standby root.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "otaclient/boot/block_slot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t split = input.find('\x01');
  std::string_view active = input.substr(0, split);
  std::string_view image = split == std::string_view::npos ? "" : input.substr(split + 1);

  auto parsed = ota::boot::ParseFstab(active, "fuzz");
  if (parsed.ok()) {
    for (const ota::boot::FstabLine& line : *parsed) {
      if (!line.is_entry) continue;
      auto again = ota::boot::ParseFstab(ota::boot::FormatFstabEntry(line), "again");
      if (!again.ok() || again->size() != 1) std::abort();
      const ota::boot::FstabLine& copy = (*again)[0];
      if (copy.spec != line.spec || copy.mount_point != line.mount_point ||
          copy.fs_type != line.fs_type) {
        std::abort();
      }
    }
  }
  ota::boot::FstabMergeInput merge{active, image, "UUID=aaaa", "UUID=bbbb", true};
  auto merged = ota::boot::MergeFstab(merge);
  if (!merged.ok()) return 0;
  auto reparsed = ota::boot::ParseFstab(*merged, "merged");
  if (!reparsed.ok()) std::abort();
  bool has_root = false;
  for (const ota::boot::FstabLine& line : *reparsed) {
    if (!line.is_entry || line.mount_point != "/") continue;
    has_root = true;
    if (line.spec != "UUID=bbbb") std::abort();
  }
  if (!has_root) std::abort();
  return 0;
}
