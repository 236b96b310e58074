#include "common/sys/block_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::sys {
namespace {

namespace stdfs = std::filesystem;

// KEY=VALUE lines (sysfs uevent, blkid -o export) → value of `key`, "" when absent.
std::string ExportValue(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == '=') {
      return std::string(TrimSpace(line.substr(key.size() + 1)));
    }
    pos = end + 1;
  }
  return {};
}

// Partition entry values from the partition table via `blkid -p` (no cache, reads the table).
struct PartitionEntry {
  std::string uuid;
  std::string name;
};
std::string FormatGuid(const uint8_t* g) {
  // GPT stores the first three GUID fields little-endian.
  static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[g[kOrder[i]] >> 4]);
    out.push_back(kHex[g[kOrder[i]] & 0xf]);
  }
  return out;
}

uint64_t LittleEndian(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | p[i];
  return value;
}

// The GPT entry of partition `number` read from the disk itself (no blkid needed; busybox
// systems have a blkid without -p). nullopt when the disk has no (valid) GPT.
std::optional<PartitionEntry> ReadGptEntry(const SystemPaths& paths, const std::string& disk,
                                           int number) {
  uint64_t sector = 512;
  absl::StatusOr<std::string> block_size =
      fs::ReadFile(paths.sys / "class" / "block" / disk / "queue" / "logical_block_size");
  if (block_size.ok()) {
    const std::optional<uint64_t> parsed = ParseDecimal<uint64_t>(TrimSpace(*block_size));
    if (parsed == 512u || parsed == 4096u) sector = *parsed;
  }
  fs::UniqueFd fd(::open((paths.dev / disk).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  uint8_t header[92];
  if (::pread(fd.get(), header, sizeof(header), static_cast<off_t>(sector)) !=
      static_cast<ssize_t>(sizeof(header))) {
    return std::nullopt;
  }
  if (std::string_view(reinterpret_cast<const char*>(header), 8) != "EFI PART") {
    return std::nullopt;
  }
  const uint64_t entries_lba = LittleEndian(header + 72, 8);
  const uint64_t entry_count = LittleEndian(header + 80, 4);
  const uint64_t entry_size = LittleEndian(header + 84, 4);
  if (number < 1 || static_cast<uint64_t>(number) > entry_count || entry_size < 128 ||
      entry_size > 4096 || entries_lba > (uint64_t{1} << 40)) {
    return std::nullopt;
  }
  std::vector<uint8_t> entry(entry_size);
  const uint64_t offset = entries_lba * sector + static_cast<uint64_t>(number - 1) * entry_size;
  if (::pread(fd.get(), entry.data(), entry.size(), static_cast<off_t>(offset)) !=
      static_cast<ssize_t>(entry.size())) {
    return std::nullopt;
  }
  PartitionEntry result;
  result.uuid = FormatGuid(entry.data() + 16);
  for (size_t i = 56; i + 1 < 128 && (entry[i] != 0 || entry[i + 1] != 0); i += 2) {
    if (entry[i + 1] == 0 && entry[i] < 0x80) result.name.push_back(static_cast<char>(entry[i]));
  }
  if (result.uuid == "00000000-0000-0000-0000-000000000000") return std::nullopt;
  return result;
}

PartitionEntry ProbePartitionEntry(const stdfs::path& node) {
  absl::StatusOr<CommandResult> probe = RunProgram({"blkid", "-p", "-o", "export", node.string()});
  if (!probe.ok()) return {};
  return {ToLower(ExportValue(probe->out, "PART_ENTRY_UUID")),
          ExportValue(probe->out, "PART_ENTRY_NAME")};
}

}  // namespace

std::string DescribeDevice(const BlockDevice& device) {
  std::string out = device.node.string();
  if (!device.partuuid.empty()) StrAppend(&out, " (PARTUUID=", device.partuuid, ")");
  return out;
}

absl::StatusOr<std::vector<BlockDevice>> ListPartitions(const SystemPaths& paths,
                                                        std::string_view only_disk) {
  std::vector<BlockDevice> out;
  const stdfs::path class_block = paths.sys / "class" / "block";
  std::error_code ec;
  std::vector<std::string> names;
  for (const stdfs::directory_entry& entry : stdfs::directory_iterator(class_block, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("list ", class_block.string()));
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const stdfs::path dir = class_block / name;
    if (!stdfs::exists(dir / "partition", ec)) continue;
    OTA_ASSIGN_OR_RETURN(std::string dev_text, fs::ReadFile(dir / "dev"));
    OTA_ASSIGN_OR_RETURN(DeviceNumber number, ParseDeviceNumber(dev_text, (dir / "dev").string()));
    if (!only_disk.empty()) {
      std::string disk = stdfs::canonical(dir, ec).parent_path().filename().string();
      if (ec || disk != only_disk) continue;
    }
    OTA_ASSIGN_OR_RETURN(BlockDevice device,
                         DescribeBlockDevice(paths, number.major, number.minor));
    out.push_back(std::move(device));
  }
  return out;
}

std::optional<std::string> KernelCmdlineValue(std::string_view cmdline, std::string_view key) {
  std::optional<std::string> value;  // the kernel honours the last occurrence
  for (std::string_view field : SplitFields(TrimSpace(cmdline))) {
    if (field.size() > key.size() && field.substr(0, key.size()) == key &&
        field[key.size()] == '=') {
      std::string_view v = field.substr(key.size() + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      value = std::string(v);
    }
  }
  return value;
}

absl::StatusOr<DeviceNumber> ParseDeviceNumber(std::string_view text, std::string_view what) {
  text = TrimSpace(text);
  size_t colon = text.find(':');
  auto parse = [](std::string_view digits, unsigned* out) {
    if (digits.empty() || digits.size() > 9) return false;
    unsigned value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    *out = value;
    return true;
  };
  DeviceNumber number;
  if (colon == std::string_view::npos || !parse(text.substr(0, colon), &number.major) ||
      !parse(text.substr(colon + 1), &number.minor)) {
    return absl::DataLossError(StrCat(what, ": expected major:minor, found '", text, "'"));
  }
  return number;
}

absl::StatusOr<std::vector<MountinfoEntry>> ParseMountinfo(std::string_view text,
                                                           std::string_view what) {
  std::vector<MountinfoEntry> entries;
  int number = 0;
  for (std::string_view line : SplitLines(text)) {
    ++number;
    if (TrimSpace(line).empty()) continue;
    auto bad = [&](std::string_view why) {
      return absl::DataLossError(StrCat(what, " line ", number, ": ", why, ": '", line, "'"));
    };
    std::vector<std::string_view> fields = SplitFields(line);
    // id parent major:minor root mount_point options, then optional fields up to "-".
    size_t separator = 6;
    while (separator < fields.size() && fields[separator] != "-") ++separator;
    if (fields.size() < 6 || separator >= fields.size()) {
      return bad("no ' - ' separator after the mount options");
    }
    if (fields.size() < separator + 3) return bad("expected fs type and source after ' - '");
    absl::StatusOr<DeviceNumber> device =
        ParseDeviceNumber(fields[2], StrCat(what, " line ", number));
    if (!device.ok()) return device.status();
    MountinfoEntry entry;
    entry.device = *device;
    entry.root = UnescapeOctal(fields[3]);
    entry.mount_point = UnescapeOctal(fields[4]);
    entry.fs_type = UnescapeOctal(fields[separator + 1]);
    entry.source = UnescapeOctal(fields[separator + 2]);
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<MountinfoEntry>> ReadMountinfo(const stdfs::path& path) {
  absl::StatusOr<std::string> text = fs::ReadFile(path);
  if (!text.ok()) {
    return WithContext(text.status(), "cannot tell what is mounted (reading mountinfo)");
  }
  return ParseMountinfo(*text, path.string());
}

absl::StatusOr<DeviceNumber> FindMountDevice(std::string_view mountinfo_text,
                                             const stdfs::path& mount_point) {
  OTA_ASSIGN_OR_RETURN(std::vector<MountinfoEntry> entries, ParseMountinfo(mountinfo_text));
  const std::string wanted = NormalizeMountPoint(mount_point.string());
  std::optional<DeviceNumber> found;
  for (const MountinfoEntry& entry : entries) {
    if (NormalizeMountPoint(entry.mount_point) == wanted) found = entry.device;
  }
  if (!found.has_value()) {
    return absl::NotFoundError(StrCat("nothing is mounted at ", wanted, " (mountinfo)"));
  }
  return *found;
}

namespace {

bool MatchesSpec(const BlockDevice& device, std::string_view spec) {
  auto value_of = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (spec.substr(0, prefix.size()) == prefix) return spec.substr(prefix.size());
    return std::nullopt;
  };
  if (auto v = value_of("PARTUUID=")) return !v->empty() && device.partuuid == ToLower(*v);
  if (auto v = value_of("UUID=")) return !v->empty() && device.fs_uuid == ToLower(*v);
  if (auto v = value_of("LABEL=")) return !v->empty() && device.fs_label == *v;
  if (auto v = value_of("PARTLABEL=")) return !v->empty() && device.partlabel == *v;
  return false;
}

bool IsKnownSpec(std::string_view spec) {
  for (std::string_view prefix : {"PARTUUID=", "UUID=", "LABEL=", "PARTLABEL="}) {
    if (spec.size() > prefix.size() && spec.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace

std::string PartitionDeviceName(std::string_view disk, int number) {
  const bool digit_end = !disk.empty() && disk.back() >= '0' && disk.back() <= '9';
  return StrCat(disk, digit_end ? "p" : "", number);
}

absl::StatusOr<BlockDevice> DescribePartitionOf(const SystemPaths& paths, std::string_view disk,
                                                int number, std::string_view what) {
  const std::string name = PartitionDeviceName(disk, number);
  const stdfs::path dev_file = paths.sys / "class" / "block" / name / "dev";
  absl::StatusOr<std::string> dev = fs::ReadFile(dev_file);
  if (!dev.ok()) {
    return absl::FailedPreconditionError(StrCat(what, ": partition ", number, " of ", disk, " (",
                                                name, ") does not exist (", dev.status().message(),
                                                ")"));
  }
  OTA_ASSIGN_OR_RETURN(DeviceNumber device, ParseDeviceNumber(*dev, dev_file.string()));
  return DescribeBlockDevice(paths, device.major, device.minor);
}

absl::StatusOr<BlockDevice> DescribeMountSource(const SystemPaths& paths,
                                                const stdfs::path& mount_point) {
  OTA_ASSIGN_OR_RETURN(std::string mountinfo, fs::ReadFile(paths.mountinfo));
  OTA_ASSIGN_OR_RETURN(DeviceNumber number, FindMountDevice(mountinfo, mount_point));
  return DescribeBlockDevice(paths, number.major, number.minor);
}

absl::StatusOr<BlockDevice> DescribeDeviceNode(const SystemPaths& paths, const stdfs::path& node) {
  struct stat st;
  if (::stat(node.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", node.string()));
  if (!S_ISBLK(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat(node.string(), " is not a block device"));
  }
  return DescribeBlockDevice(paths, major(st.st_rdev), minor(st.st_rdev));
}

absl::StatusOr<BlockDevice> ResolveDeviceSpec(const SystemPaths& paths, std::string_view spec,
                                              std::string_view what,
                                              const DeviceSpecOptions& options) {
  if (!spec.empty() && spec.front() == '/') return DescribeDeviceNode(paths, spec);
  if (!IsKnownSpec(spec)) {
    return absl::InvalidArgumentError(StrCat(
        what, " '", spec, "': expected a device path or PARTUUID=, UUID=, LABEL=, PARTLABEL="));
  }
  OTA_ASSIGN_OR_RETURN(std::vector<BlockDevice> partitions, ListPartitions(paths, ""));
  std::vector<const BlockDevice*> matches;
  for (const BlockDevice& device : partitions) {
    if (MatchesSpec(device, spec)) matches.push_back(&device);
  }
  // Several matches (a cloned disk plugged in): the one on the preferred disk wins.
  if (matches.size() > 1) {
    std::vector<const BlockDevice*> preferred;
    for (const BlockDevice* device : matches) {
      if (!options.prefer_disk.empty() && device->disk == options.prefer_disk) {
        preferred.push_back(device);
      }
    }
    if (preferred.size() == 1) matches = preferred;
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(StrCat(what, " '", spec,
                                                "' is ambiguous: ", matches[0]->node.string(),
                                                " and ", matches[1]->node.string()));
  }
  if (matches.size() == 1) return *matches[0];
  if (options.findfs_fallback) {
    // Not a partition we can describe (a whole disk, another file system): findfs probes the
    // devices itself when there is no udev.
    absl::StatusOr<CommandResult> found = RunProgram({"findfs", std::string(spec)});
    if (found.ok() && found->exit_code == 0) {
      const std::string node = found->out.substr(0, found->out.find('\n'));
      if (!node.empty()) return DescribeDeviceNode(paths, node);
    }
  }
  return absl::NotFoundError(StrCat(what, " '", spec, "': no partition matches"));
}

absl::StatusOr<std::optional<Ext4Identity>> ReadExt4Identity(const stdfs::path& node) {
  fs::UniqueFd fd(::open(node.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", node.string()));
  uint8_t sb[256];
  ssize_t n = ::pread(fd.get(), sb, sizeof(sb), 1024);
  if (n < 0) return ErrnoStatus(errno, StrCat("read superblock of ", node.string()));
  if (n < static_cast<ssize_t>(sizeof(sb))) return std::optional<Ext4Identity>();
  if (sb[0x38] != 0x53 || sb[0x39] != 0xEF) return std::optional<Ext4Identity>();
  static constexpr char kHex[] = "0123456789abcdef";
  Ext4Identity identity;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) identity.uuid.push_back('-');
    identity.uuid.push_back(kHex[sb[0x68 + i] >> 4]);
    identity.uuid.push_back(kHex[sb[0x68 + i] & 0xf]);
  }
  for (int i = 0; i < 16 && sb[0x78 + i] != 0; ++i) {
    identity.label.push_back(static_cast<char>(sb[0x78 + i]));
  }
  return std::optional<Ext4Identity>(std::move(identity));
}

absl::StatusOr<BlockDevice> DescribeBlockDevice(const SystemPaths& paths, unsigned major,
                                                unsigned minor) {
  const stdfs::path sys_dev = paths.sys / "dev" / "block" / StrCat(major, ":", minor);
  std::error_code ec;
  const stdfs::path sys_dir = stdfs::canonical(sys_dev, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("resolve ", sys_dev.string()));
  OTA_ASSIGN_OR_RETURN(std::string uevent, fs::ReadFile(sys_dir / "uevent"));
  BlockDevice device;
  device.major = major;
  device.minor = minor;
  device.name = ExportValue(uevent, "DEVNAME");
  if (device.name.empty()) device.name = sys_dir.filename().string();
  device.node = paths.dev / device.name;
  if (stdfs::exists(sys_dir / "partition", ec)) {
    device.disk = sys_dir.parent_path().filename().string();
    OTA_ASSIGN_OR_RETURN(std::string partition, fs::ReadFile(sys_dir / "partition"));
    const std::optional<int> number = ParseDecimal<int>(TrimSpace(partition));
    if (!number) {
      return absl::InvalidArgumentError(
          StrCat(sys_dir.string(), "/partition: not a partition number: '", partition, "'"));
    }
    device.partition_number = *number;
  }
  absl::StatusOr<std::optional<Ext4Identity>> identity = ReadExt4Identity(device.node);
  if (!identity.ok()) return identity.status();
  if (identity->has_value()) {
    device.fs_type = "ext4";
    device.fs_uuid = (*identity)->uuid;
    device.fs_label = (*identity)->label;
  }
  if (device.partition_number > 0) {
    std::optional<PartitionEntry> entry = ReadGptEntry(paths, device.disk, device.partition_number);
    if (!entry.has_value()) entry = ProbePartitionEntry(device.node);
    device.partuuid = entry->uuid;
    device.partlabel = entry->name;
  }
  return device;
}

}  // namespace ota::sys
