#include "otaclient/boot/block_slot.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <system_error>

#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "common/log/log.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::boot {
namespace {

namespace stdfs = std::filesystem;

// Octal-escapes what would break an fstab field.
std::string EscapeFstabField(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == ' ' || c == '\\' || c == '#' || byte < 0x20 || byte == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof(buf), "\\%03o", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Several swap lines share the mount point "none"/"swap": those are keyed by their spec.
std::string FstabKey(const FstabLine& line) {
  if (line.mount_point == "none" || line.mount_point == "swap") {
    return StrCat("swap:", line.spec);
  }
  return NormalizeMountPoint(line.mount_point);
}

// Never write a device that is in use (a misconfigured slot naming /home, a manual mount):
// kFailedPrecondition "refusing to <action> <device>: it is mounted at <where>". An unreadable
// mountinfo is an error too (fails closed).
absl::Status RefuseMountedDevice(const BlockDevice& device, const stdfs::path& mountinfo,
                                 std::string_view action) {
  OTA_ASSIGN_OR_RETURN(std::vector<MountinfoEntry> mounts, ReadMountinfo(mountinfo));
  for (const MountinfoEntry& entry : mounts) {
    if (entry.device == DeviceNumber{device.major, device.minor}) {
      return absl::FailedPreconditionError(StrCat("refusing to ", action, " ", device.node.string(),
                                                  ": it is mounted at ", entry.mount_point));
    }
  }
  return absl::OkStatus();
}

}  // namespace

MountSpec StandbyMountSpec() {
  MountSpec spec;
  spec.flags = MS_NOATIME | MS_NODEV;
  return spec;
}

MountSpec FatMountSpec(std::string_view fs_type) {
  MountSpec spec;
  spec.fs_type = std::string(fs_type);
  spec.flags = MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC;
  if (fs_type == "vfat") spec.data = "quiet";
  return spec;
}

absl::Status FormatExt4(const BlockDevice& device, const std::optional<Ext4Identity>& identity,
                        std::string_view fallback_label, const stdfs::path& mountinfo) {
  OTA_RETURN_IF_ERROR(RefuseMountedDevice(device, mountinfo, "format"));
  std::vector<std::string> argv = {"mkfs.ext4", "-F", "-q"};
  if (identity.has_value() && !identity->uuid.empty()) {
    argv.insert(argv.end(), {"-U", identity->uuid});
  }
  std::string label = identity.has_value() ? identity->label : std::string(fallback_label);
  if (!label.empty()) argv.insert(argv.end(), {"-L", label});
  argv.push_back(device.node.string());
  log::Info("formatting standby", {{"device", device.node.string()},
                                   {"uuid", identity ? identity->uuid : "(new)"},
                                   {"label", label}});
  OTA_ASSIGN_OR_RETURN(std::string out, sys::RunProgramChecked(argv, kFormatTimeout));
  (void)out;
  return absl::OkStatus();
}

absl::StatusOr<MountedFileSystem> PrepareStandbyFileSystem(
    const BlockDevice& device, std::span<const std::string_view> keep_top_level,
    const StandbyPrepareOptions& options) {
  OTA_RETURN_IF_ERROR(RefuseMountedDevice(device, options.mountinfo, "write the standby"));
  OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> identity, ReadExt4Identity(device.node));
  if (identity.has_value() && !options.force_format) {
    absl::StatusOr<MountedFileSystem> mounted =
        MountedFileSystem::Mount(device.node, options.mount_dir, StandbyMountSpec());
    if (mounted.ok()) {
      std::vector<std::string_view> keep(keep_top_level.begin(), keep_top_level.end());
      keep.push_back("lost+found");
      OTA_ASSIGN_OR_RETURN(fs::RootedDir root, fs::RootedDir::Open(options.mount_dir));
      OTA_RETURN_IF_ERROR(WithContext(root.RemoveTreeExcept(keep),
                                      StrCat("cleaning standby ", device.node.string())));
      log::Info("standby cleaned", {{"device", device.node.string()}});
      return mounted;
    }
    log::Warning(
        "standby file system does not mount, reformatting",
        {{"device", device.node.string()}, {"error", std::string(mounted.status().message())}});
  }
  OTA_RETURN_IF_ERROR(FormatExt4(device, identity, options.fallback_label, options.mountinfo));
  return MountedFileSystem::Mount(device.node, options.mount_dir, StandbyMountSpec());
}

absl::StatusOr<StandbyFileSystem> PrepareStandbyFileSystemInPlace(
    const BlockDevice& device, std::span<const std::string_view> keep_top_level,
    const StandbyPrepareOptions& options) {
  OTA_RETURN_IF_ERROR(RefuseMountedDevice(device, options.mountinfo, "write the standby"));
  std::string reason;
  // A file system e2fsck does not find clean is reformatted, not cleaned and reused: deleting
  // its files repairs none of its damage (orphan inodes, bad bitmaps, the error flag).
  bool format = false;
  OTA_ASSIGN_OR_RETURN(std::optional<Ext4Identity> identity, ReadExt4Identity(device.node));
  if (options.force_format) {
    reason = "the backend is configured to always format the standby";
  } else if (!identity.has_value()) {
    reason = "no ext4 file system on the standby";
  } else {
    // Read-only check of the unmounted device: exit 0 only when it is clean.
    // A clean file system answers at once; a flagged one is read through (bounded like mkfs).
    absl::StatusOr<sys::CommandResult> fsck =
        sys::RunProgram({"e2fsck", "-n", device.node.string()}, kFormatTimeout);
    if (!fsck.ok()) {
      reason = StrCat("e2fsck -n did not run: ", fsck.status().message());
    } else if (fsck->exit_code != 0) {
      reason =
          StrCat("e2fsck -n ", device.node.string(), ": exit ", fsck->exit_code, " (reformatted)");
      format = true;
    } else {
      absl::StatusOr<MountedFileSystem> mounted =
          MountedFileSystem::Mount(device.node, options.mount_dir, StandbyMountSpec());
      if (mounted.ok()) {
        log::Info("standby mounted with its contents kept", {{"device", device.node.string()}});
        return StandbyFileSystem{*std::move(mounted), true, ""};
      }
      reason = StrCat("mount failed: ", mounted.status().message());
    }
  }
  log::Info("standby contents not kept", {{"device", device.node.string()}, {"reason", reason}});
  StandbyPrepareOptions fallback = options;
  fallback.force_format = options.force_format || format;
  OTA_ASSIGN_OR_RETURN(MountedFileSystem mounted,
                       PrepareStandbyFileSystem(device, keep_top_level, fallback));
  return StandbyFileSystem{std::move(mounted), false, std::move(reason)};
}

// ---- fstab ----

absl::StatusOr<std::vector<FstabLine>> ParseFstab(std::string_view text, std::string_view what) {
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat(what, ": contains a NUL byte"));
  }
  std::vector<FstabLine> lines;
  int number = 0;
  for (std::string_view line : SplitLines(text)) {
    ++number;
    FstabLine parsed;
    // Kept byte for byte (a CRLF line keeps its CR): a merge writes it back and parsing the merged
    // file must see the same fields again.
    parsed.raw = std::string(line);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view body = TrimSpace(line);
    if (body.empty() || body.front() == '#') {
      lines.push_back(std::move(parsed));
      continue;
    }
    std::vector<std::string_view> fields = SplitFields(line);
    if (fields.size() < 3 || fields.size() > 6) {
      return absl::InvalidArgumentError(
          StrCat(what, ":", number,
                 ": expected 3 to 6 fields (spec, mount point, type, options, "
                 "dump, pass), found ",
                 fields.size()));
    }
    parsed.is_entry = true;
    parsed.spec = UnescapeOctal(fields[0]);
    parsed.mount_point = UnescapeOctal(fields[1]);
    parsed.fs_type = UnescapeOctal(fields[2]);
    if (fields.size() > 3) parsed.options = UnescapeOctal(fields[3]);
    if (fields.size() > 4) parsed.dump = std::string(fields[4]);
    if (fields.size() > 5) parsed.passno = std::string(fields[5]);
    if (parsed.spec.empty() || parsed.mount_point.empty()) {
      return absl::InvalidArgumentError(StrCat(what, ":", number, ": empty spec or mount point"));
    }
    lines.push_back(std::move(parsed));
  }
  return lines;
}

std::string FormatFstabEntry(const FstabLine& entry) {
  std::string out = StrCat(EscapeFstabField(entry.spec), "\t", EscapeFstabField(entry.mount_point),
                           "\t", EscapeFstabField(entry.fs_type), "\t",
                           EscapeFstabField(entry.options.empty() ? "defaults" : entry.options));
  StrAppend(&out, "\t", entry.dump.empty() ? "0" : entry.dump, "\t",
            entry.passno.empty() ? "0" : entry.passno);
  return out;
}

absl::StatusOr<std::string> MergeFstab(const FstabMergeInput& input) {
  OTA_ASSIGN_OR_RETURN(std::vector<FstabLine> active,
                       ParseFstab(input.active_fstab, "active /etc/fstab"));
  OTA_ASSIGN_OR_RETURN(std::vector<FstabLine> image,
                       ParseFstab(input.image_fstab, "image /etc/fstab"));
  if (input.standby_root_spec.empty()) {
    return absl::InvalidArgumentError("fstab merge: empty standby root spec");
  }
  std::map<std::string, const FstabLine*> active_by_key;
  for (const FstabLine& line : active) {
    if (line.is_entry) active_by_key.emplace(FstabKey(line), &line);
  }
  std::map<std::string, bool> image_keys;
  bool image_has_root = false;
  for (const FstabLine& line : image) {
    if (!line.is_entry) continue;
    image_keys[FstabKey(line)] = true;
    if (FstabKey(line) == "/") image_has_root = true;
  }
  auto is_shared_boot = [&](const std::string& key) {
    return input.shared_boot && (key == "/boot" || key == "/boot/efi");
  };
  auto root_entry = [&](const FstabLine& base) {
    FstabLine root = base;
    root.spec = input.standby_root_spec;
    root.mount_point = "/";
    return FormatFstabEntry(root);
  };

  std::string out;
  bool root_written = false;
  auto write_missing_root = [&]() {
    if (image_has_root || root_written) return;
    auto it = active_by_key.find("/");
    FstabLine base;
    if (it != active_by_key.end()) {
      base = *it->second;
    } else {
      base.mount_point = "/";
      base.fs_type = "ext4";
      base.options = "defaults";
      base.dump = "0";
      base.passno = "1";
    }
    StrAppend(&out, root_entry(base), "\n");
    root_written = true;
  };
  for (const FstabLine& line : image) {
    if (!line.is_entry) {
      StrAppend(&out, line.raw, "\n");
      continue;
    }
    write_missing_root();
    const std::string key = FstabKey(line);
    if (key == "/") {
      StrAppend(&out, root_entry(line), "\n");
    } else if (is_shared_boot(key) && active_by_key.count(key) != 0) {
      StrAppend(&out, active_by_key[key]->raw, "\n");
    } else {
      StrAppend(&out, line.raw, "\n");
    }
  }
  write_missing_root();
  for (const FstabLine& line : active) {
    if (!line.is_entry) continue;
    const std::string key = FstabKey(line);
    if (key == "/" || image_keys.count(key) != 0) continue;
    if (!input.active_root_spec.empty() && line.spec == input.active_root_spec) {
      FstabLine copy = line;
      copy.spec = input.standby_root_spec;
      StrAppend(&out, FormatFstabEntry(copy), "\n");
    } else {
      StrAppend(&out, line.raw, "\n");
    }
  }
  return out;
}

}  // namespace ota::boot
