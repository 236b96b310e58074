#include "otaproxy/external/usb_cache_mount.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "common/log/log.h"
#include "common/sys/block_device.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaproxy/external/external_cache.h"

namespace ota::proxy {
namespace {

constexpr int kMountAttempts = 3;
constexpr std::chrono::seconds kMountRetryDelay{1};

std::vector<std::string> NonEmptyLines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) lines.emplace_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

absl::StatusOr<UsbCacheMount> MountOnce(const std::string& device,
                                        const std::optional<std::string>& existing,
                                        const std::string& fs_type,
                                        const std::filesystem::path& mount_point) {
  if (!existing.has_value()) {
    sys::MountSpec spec = sys::ReadOnlyMountSpec();  // ro, noatime, nodev, nosuid, noexec
    spec.fs_type = fs_type;
    return sys::MountedFileSystem::Mount(device, mount_point, spec);
  }
  // Mounted elsewhere already: the same file system, bound here, then made read-only (a bind
  // mount takes its flags only from a remount).
  sys::MountSpec bind;
  bind.fs_type.clear();
  bind.flags = MS_BIND;
  OTA_ASSIGN_OR_RETURN(UsbCacheMount mounted,
                       sys::MountedFileSystem::Mount(*existing, mount_point, bind));
  if (::mount(nullptr, mount_point.c_str(), nullptr,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME,
              nullptr) != 0) {
    return ErrnoStatus(errno, StrCat("remount the bind mount of ", *existing, " on ",
                                     mount_point.string(), " read-only"));
  }
  return mounted;
}

}  // namespace

absl::StatusOr<std::optional<std::string>> FindUsbCacheDevice(std::string_view label) {
  const std::vector<std::string> argv = {"blkid", "-o", "device", "-t", StrCat("LABEL=", label)};
  OTA_ASSIGN_OR_RETURN(sys::CommandResult result, sys::RunProgram(argv));
  if (result.exit_code == 2) return std::nullopt;  // blkid: no device matches
  if (result.exit_code != 0) {
    return absl::InternalError(
        StrCat(sys::DescribeArgv(argv), ": exit ", result.exit_code, ": ", result.err));
  }
  const std::vector<std::string> devices = NonEmptyLines(result.out);
  if (devices.empty()) return std::nullopt;
  if (devices.size() > 1) {
    std::string all;
    for (const std::string& d : devices) StrAppend(&all, all.empty() ? "" : " ", d);
    log::Warning("several devices carry the USB cache label; using the first",
                 {{"label", std::string(label)}, {"devices", all}, {"used", devices[0]}});
  }
  return devices[0];
}

absl::StatusOr<UsbCacheMount> MountUsbCache(const std::string& device,
                                            const std::filesystem::path& mount_point,
                                            const std::filesystem::path& mountinfo) {
  if (::geteuid() != 0) {
    return absl::PermissionDeniedError(
        StrCat("mounting ", device, " on ", mount_point.string(), " needs root"));
  }
  struct stat st {};
  if (::stat(device.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", device));
  if (!S_ISBLK(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat(device, " is not a block device"));
  }
  const sys::DeviceNumber number{major(st.st_rdev), minor(st.st_rdev)};
  OTA_ASSIGN_OR_RETURN(std::vector<sys::MountinfoEntry> mounts, sys::ReadMountinfo(mountinfo));
  std::optional<std::string> existing;
  for (const sys::MountinfoEntry& entry : mounts) {
    if (entry.device == number && entry.root == "/") {
      existing = entry.mount_point;
      break;
    }
  }
  std::string fs_type;
  if (!existing.has_value()) {
    OTA_ASSIGN_OR_RETURN(std::string type,
                         sys::RunProgramChecked({"blkid", "-o", "value", "-s", "TYPE", device}));
    std::vector<std::string> lines = NonEmptyLines(type);
    if (lines.empty()) {
      return absl::FailedPreconditionError(StrCat("blkid reports no file-system type on ", device));
    }
    fs_type = lines[0];
  }
  absl::Status last;
  for (int attempt = 1; attempt <= kMountAttempts; ++attempt) {
    absl::StatusOr<UsbCacheMount> mounted = MountOnce(device, existing, fs_type, mount_point);
    if (mounted.ok()) {
      log::Info("USB cache mounted read-only",
                {{"device", device},
                 {"mount_point", mount_point.string()},
                 {"how", existing ? StrCat("bind of ", *existing) : fs_type}});
      return mounted;
    }
    last = mounted.status();
    log::Warning("mounting the USB cache failed",
                 {{"device", device},
                  {"attempt", StrCat(attempt, "/", kMountAttempts)},
                  {"error", std::string(last.message())}});
    if (attempt < kMountAttempts) std::this_thread::sleep_for(kMountRetryDelay);
  }
  return last;
}

absl::Status UnmountUsbCache(const std::filesystem::path& mount_point,
                             const std::filesystem::path& mountinfo) {
  OTA_ASSIGN_OR_RETURN(bool mounted, IsMountPoint(mount_point, mountinfo));
  if (!mounted) return absl::OkStatus();
  if (::umount2(mount_point.c_str(), 0) == 0) {
    log::Info("USB cache unmounted", {{"mount_point", mount_point.string()}});
    return absl::OkStatus();
  }
  if (errno == EBUSY && ::umount2(mount_point.c_str(), MNT_DETACH) == 0) {
    log::Warning("USB cache busy: detached lazily", {{"mount_point", mount_point.string()}});
    return absl::OkStatus();
  }
  return ErrnoStatus(errno, StrCat("umount ", mount_point.string()));
}

}  // namespace ota::proxy
