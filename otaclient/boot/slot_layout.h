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
// Everything the detection reads is injectable (SystemPaths) so tests can point it at a loop
// device: a test writes its own mountinfo file whose "/" line names the loop partition.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::boot {

// Where the system is read from. Defaults are the real ones.
struct SystemPaths {
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
  std::filesystem::path cmdline = "/proc/cmdline";
  std::filesystem::path sys = "/sys";
  std::filesystem::path dev = "/dev";
};

// One partition (or whole disk) as the kernel sees it.
struct BlockDevice {
  std::filesystem::path node;  // "/dev/nvme0n1p2"
  std::string name;            // kernel name "nvme0n1p2"
  unsigned major = 0;
  unsigned minor = 0;
  std::string disk;          // parent disk kernel name "nvme0n1"; "" for a whole disk
  int partition_number = 0;  // 2 (GPT index, what GRUB calls gpt2); 0 for a whole disk
  std::string partuuid;      // GPT partition UUID, lower case (from the GPT, else blkid)
  std::string partlabel;     // GPT partition name; "" unknown
  std::string fs_type;       // "ext4" when an ext4 superblock was found, else ""
  std::string fs_uuid;       // ext4 UUID, lower case; "" unknown
  std::string fs_label;      // ext4 volume label; "" none

  bool operator==(const BlockDevice&) const = default;
};

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

// The block device for major:minor, with partition number, parent disk, ext4 identity and
// PARTUUID filled in.
absl::StatusOr<BlockDevice> DescribeBlockDevice(const SystemPaths& paths, unsigned major,
                                                unsigned minor);

struct DeviceNumber {
  unsigned major = 0;
  unsigned minor = 0;
  bool operator==(const DeviceNumber&) const = default;
};
// "259:2" (surrounding whitespace allowed, as in sysfs dev files); kDataLoss naming `what`.
absl::StatusOr<DeviceNumber> ParseDeviceNumber(std::string_view text, std::string_view what);

// ---- /proc/self/mountinfo: the one parser of the boot backends ----
// One line (proc(5)): "id parent major:minor root mount_point options [optional fields...] -
// fs_type source super_options". root, mount point and source are decoded (\040 → space, ...).
struct MountinfoEntry {
  DeviceNumber device;
  std::string root;
  std::string mount_point;
  std::string fs_type;
  std::string source;
};
// Strict: a line without the " - " separator, with too few fields or a bad major:minor is
// kDataLoss "<what> line <n>: ..." — the caller fails closed rather than seeing fewer mounts.
absl::StatusOr<std::vector<MountinfoEntry>> ParseMountinfo(std::string_view text,
                                                           std::string_view what = "mountinfo");
// Reads and parses the file; unreadable is an error naming it (never "nothing is mounted").
absl::StatusOr<std::vector<MountinfoEntry>> ReadMountinfo(const std::filesystem::path& path);

// major:minor of the file system mounted at `mount_point` (the last matching mountinfo line,
// i.e. the top of the mount stack). kNotFound when nothing is mounted there.
absl::StatusOr<DeviceNumber> FindMountDevice(std::string_view mountinfo_text,
                                             const std::filesystem::path& mount_point);

// ---- device specs: the one resolver of PARTUUID=/UUID=/LABEL=/PARTLABEL= ----
// A spec names a device the way fstab/blkid do: "PARTUUID=<gpt uuid>", "UUID=<fs uuid>",
// "LABEL=<fs label>", "PARTLABEL=<gpt name>", or an absolute device path ("/dev/sda2").
// Resolution: every partition the kernel lists (sysfs) is described (ext4 UUID/label from its
// superblock, PARTUUID/PARTLABEL read from the GPT first, `blkid -p` as fallback) and matched;
// several matches pick the one on `prefer_disk`; with `findfs_fallback`, a spec no partition
// matches (a whole disk, another file system type) is asked of findfs. A device path is
// described directly. kInvalidArgument for an unknown form, kNotFound when nothing matches,
// kFailedPrecondition when ambiguous; messages start with `what` ("slot override slot_a").
struct DeviceSpecOptions {
  std::string_view prefer_disk;  // kernel name of a disk, e.g. the running root's
  bool findfs_fallback = false;
};
absl::StatusOr<BlockDevice> ResolveDeviceSpec(const SystemPaths& paths, std::string_view spec,
                                              std::string_view what,
                                              const DeviceSpecOptions& options = {});
// Kernel name of partition `number` of `disk`: "mmcblk0" + 2 → "mmcblk0p2", "loop3" + 1 →
// "loop3p1", "sda" + 2 → "sda2" (a name ending in a digit takes a "p").
std::string PartitionDeviceName(std::string_view disk, int number);
// Partition `number` of `disk` as the kernel lists it; kFailedPrecondition "<what>: partition N
// of <disk> does not exist" when it does not.
absl::StatusOr<BlockDevice> DescribePartitionOf(const SystemPaths& paths, std::string_view disk,
                                                int number, std::string_view what);
// The block device mounted at `mount_point` (the top of its mount stack in paths.mountinfo).
absl::StatusOr<BlockDevice> DescribeMountSource(const SystemPaths& paths,
                                                const std::filesystem::path& mount_point);

// The block device at `node` (stat → major:minor → DescribeBlockDevice).
absl::StatusOr<BlockDevice> DescribeDeviceNode(const SystemPaths& paths,
                                               const std::filesystem::path& node);

// ext4 identity read straight from the superblock (offset 1024): nullopt when the device holds
// no ext2/3/4 file system.
struct Ext4Identity {
  std::string uuid;   // "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case
  std::string label;  // up to 16 bytes
};
absl::StatusOr<std::optional<Ext4Identity>> ReadExt4Identity(const std::filesystem::path& node);

// Value of `key=` in a kernel command line ("root" → "PARTUUID=…"); nullopt when absent.
std::optional<std::string> KernelCmdlineValue(std::string_view cmdline, std::string_view key);

}  // namespace ota::boot
