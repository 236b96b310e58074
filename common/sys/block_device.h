// Block devices and mounts as the kernel describes them, read without udev or lsblk: the one
// /proc/self/mountinfo parser, block devices by major:minor from sysfs (partition number, parent
// disk, GPT PARTUUID/PARTLABEL, ext4 UUID/label from the superblock), and the one resolver of
// device specs (PARTUUID=/UUID=/LABEL=/PARTLABEL= or a /dev path). Used by otaclient's boot
// backends (A/B slot detection, otaclient/boot/slot_layout.h) and otaproxy's USB cache.
//
// Everything read is injectable (SystemPaths) so tests can point it at a loop device and a
// mountinfo file of their own.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::sys {

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

// "/dev/sda2 (PARTUUID=…)" for messages.
std::string DescribeDevice(const BlockDevice& device);

// Every partition the kernel lists (/sys/class/block/*/partition), described, in name order;
// only those of the disk `only_disk` (kernel name) unless it is empty.
absl::StatusOr<std::vector<BlockDevice>> ListPartitions(const SystemPaths& paths,
                                                        std::string_view only_disk);

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

// ---- /proc/self/mountinfo: the one parser ----
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

}  // namespace ota::sys
