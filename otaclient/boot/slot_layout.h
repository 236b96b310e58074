// Finding the A/B slots on block devices: which partition is the running rootfs, which one is
// its A/B sibling, and which partition (if any) is a separately mounted /boot.
//
// Detection (no udev, no lsblk): the running root is the source of "/" in mountinfo, as a
// major:minor; /sys/dev/block/<maj:min> names the partition and its parent disk
// (/sys/class/block/<disk>/<part>/partition = partition number). The sibling is the one other
// partition on the same disk that holds an ext4 file system (superblock read from the device
// node), is not mounted anywhere (a mounted /home is no standby) and is not the /boot partition
// (the source of the boot mount point in mountinfo, when it is a separate mount). Zero or several
// candidates: kFailedPrecondition "not an A/B layout" listing what was found. PARTUUIDs are read
// from the disk's GPT (`blkid -p` as a fallback).
//
// Slot names: "a" is the partition with the lower partition number of the two, "b" the higher,
// unless SlotOverride names them explicitly (config), e.g. {"PARTUUID=…", "LABEL=rootB"}; a spec
// matching several partitions picks the one on the running root's disk, else is an error.
//
// Everything the detection reads is injectable (sys::SystemPaths, common/sys/block_device.h) so
// tests can point it at a loop device: a test writes its own mountinfo file whose "/" line names
// the loop partition.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/sys/block_device.h"

namespace ota::boot {

// The block-device vocabulary of the boot backends (common/sys/block_device.h).
using sys::BlockDevice;
using sys::DescribeBlockDevice;
using sys::DescribeDevice;
using sys::DescribeDeviceNode;
using sys::DescribeMountSource;
using sys::DescribePartitionOf;
using sys::DeviceNumber;
using sys::DeviceSpecOptions;
using sys::Ext4Identity;
using sys::FindMountDevice;
using sys::KernelCmdlineValue;
using sys::ListPartitions;
using sys::MountinfoEntry;
using sys::ParseDeviceNumber;
using sys::ParseMountinfo;
using sys::PartitionDeviceName;
using sys::ReadExt4Identity;
using sys::ReadMountinfo;
using sys::ResolveDeviceSpec;
using sys::SystemPaths;

// Explicit slot devices from config. Each spec is "PARTUUID=<uuid>", "UUID=<fs uuid>",
// "LABEL=<fs label>", "PARTLABEL=<gpt name>" or an absolute device path ("/dev/sda2").
struct SlotOverride {
  std::string slot_a;
  std::string slot_b;
  bool empty() const { return slot_a.empty() && slot_b.empty(); }
};

struct SlotLayout {
  std::string active_slot;          // "a" or "b"
  BlockDevice active;               // the running rootfs
  BlockDevice standby;              // its A/B sibling
  std::optional<BlockDevice> boot;  // the separately mounted boot partition, when there is one

  std::string standby_slot() const { return active_slot == "a" ? "b" : "a"; }
  const BlockDevice& slot(std::string_view name) const {
    return name == active_slot ? active : standby;
  }
};

struct LayoutOptions {
  SystemPaths paths;
  // Mount point of the shared boot partition ("/boot"); "" when /boot lives inside each rootfs
  // (Jetson). Not a separate mount → `boot` stays empty.
  std::filesystem::path boot_mount_point = "/boot";
  SlotOverride slot_override;
};

// Reads mountinfo and sysfs and returns the layout, or a clear error (kFailedPrecondition for
// "this machine is not A/B", kNotFound when an override spec matches no partition).
absl::StatusOr<SlotLayout> DetectSlotLayout(const LayoutOptions& options);

// Reads mountinfo and sysfs and returns the layout, or a clear error (kFailedPrecondition for
// "this machine is not A/B", kNotFound when an override spec matches no partition).
absl::StatusOr<SlotLayout> DetectSlotLayout(const LayoutOptions& options);

}  // namespace ota::boot
