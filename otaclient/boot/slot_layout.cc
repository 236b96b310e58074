#include "otaclient/boot/slot_layout.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::boot {

absl::StatusOr<SlotLayout> DetectSlotLayout(const LayoutOptions& options) {
  OTA_ASSIGN_OR_RETURN(std::string mountinfo, fs::ReadFile(options.paths.mountinfo));
  OTA_ASSIGN_OR_RETURN(std::vector<MountinfoEntry> mounts,
                       ParseMountinfo(mountinfo, options.paths.mountinfo.string()));
  OTA_ASSIGN_OR_RETURN(DeviceNumber root_number, FindMountDevice(mountinfo, "/"));
  OTA_ASSIGN_OR_RETURN(BlockDevice root,
                       DescribeBlockDevice(options.paths, root_number.major, root_number.minor));
  SlotLayout layout;
  if (!options.boot_mount_point.empty()) {
    absl::StatusOr<DeviceNumber> boot_number = FindMountDevice(mountinfo, options.boot_mount_point);
    if (boot_number.ok() && !(*boot_number == root_number)) {
      OTA_ASSIGN_OR_RETURN(
          layout.boot, DescribeBlockDevice(options.paths, boot_number->major, boot_number->minor));
    }
  }

  if (!options.slot_override.empty()) {
    if (options.slot_override.slot_a.empty() || options.slot_override.slot_b.empty()) {
      return absl::InvalidArgumentError("slot override needs both slot_a and slot_b");
    }
    DeviceSpecOptions spec_options;
    spec_options.prefer_disk = root.disk;
    OTA_ASSIGN_OR_RETURN(BlockDevice a,
                         ResolveDeviceSpec(options.paths, options.slot_override.slot_a,
                                           "slot override slot_a", spec_options));
    OTA_ASSIGN_OR_RETURN(BlockDevice b,
                         ResolveDeviceSpec(options.paths, options.slot_override.slot_b,
                                           "slot override slot_b", spec_options));
    if (a.major == b.major && a.minor == b.minor) {
      return absl::FailedPreconditionError(
          StrCat("slot override: slot_a and slot_b are the same device ", a.node.string()));
    }
    if (a.major == root.major && a.minor == root.minor) {
      layout.active_slot = "a";
      layout.active = std::move(a);
      layout.standby = std::move(b);
    } else if (b.major == root.major && b.minor == root.minor) {
      layout.active_slot = "b";
      layout.active = std::move(b);
      layout.standby = std::move(a);
    } else {
      return absl::FailedPreconditionError(
          StrCat("the running root ", DescribeDevice(root), " is neither slot_a ",
                 DescribeDevice(a), " nor slot_b ", DescribeDevice(b), " (slot override)"));
    }
    return layout;
  }

  if (root.partition_number == 0 || root.disk.empty()) {
    return absl::FailedPreconditionError(StrCat("not an A/B layout: the root file system ",
                                                root.node.string(), " is not a partition"));
  }
  OTA_ASSIGN_OR_RETURN(std::vector<BlockDevice> siblings, ListPartitions(options.paths, root.disk));
  std::vector<BlockDevice> candidates;
  std::string seen;
  for (BlockDevice& sibling : siblings) {
    StrAppend(&seen, seen.empty() ? "" : ", ", sibling.node.string(),
              sibling.fs_type.empty() ? "" : ":", sibling.fs_type);
    if (sibling.major == root.major && sibling.minor == root.minor) continue;
    if (layout.boot.has_value() && sibling.major == layout.boot->major &&
        sibling.minor == layout.boot->minor) {
      continue;
    }
    if (sibling.fs_type != "ext4") continue;
    // A mounted partition (/home, /var, ...) is in use, never a standby slot.
    const bool mounted = std::any_of(mounts.begin(), mounts.end(), [&](const MountinfoEntry& m) {
      return m.device == DeviceNumber{sibling.major, sibling.minor};
    });
    if (mounted) {
      StrAppend(&seen, "(mounted)");
      continue;
    }
    candidates.push_back(std::move(sibling));
  }
  if (candidates.size() != 1) {
    return absl::FailedPreconditionError(StrCat(
        "not an A/B layout: expected exactly one ext4 partition besides the root ",
        root.node.string(), layout.boot ? StrCat(" and /boot ", layout.boot->node.string()) : "",
        " on disk ", root.disk, ", found ", candidates.size(), " (partitions: ", seen,
        "); name the slots explicitly in ecu_info (slot_a/slot_b)"));
  }
  layout.standby = std::move(candidates.front());
  layout.active_slot = root.partition_number < layout.standby.partition_number ? "a" : "b";
  layout.active = std::move(root);
  return layout;
}

}  // namespace ota::boot
