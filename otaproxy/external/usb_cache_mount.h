// The USB external cache's device and mount, as today's Python otaproxy does them: the block
// device whose file system is labelled `ota_cache_src` (`blkid -o device -t LABEL=ota_cache_src`,
// the first one when there are several, with a warning), mounted read-only, nosuid, nodev,
// noexec, noatime at the mount point (upstream: /run/otaclient/mnt/external_cache), or, when the
// device is mounted elsewhere already, that mount bind-mounted read-only there. Up to 3 tries.
//
// Who mounts: mounting needs root, and deploy/otaproxy.service runs otaproxy as a DynamicUser,
// so the unit mounts with `otaproxy --external-cache-helper mount` (ExecStartPre=+, root) and
// unmounts with `--external-cache-helper unmount` (ExecStopPost=+); otaproxy then uses the
// mount point when it is one. Run as root by hand, `otaproxy --mount-external-cache` mounts for
// the life of the process (the UsbCacheMount below unmounts when it goes).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sys/mount.h"

namespace ota::proxy {

inline constexpr std::string_view kUsbCacheLabel = "ota_cache_src";

// The device node of the first block device with that label; nullopt when there is none (blkid
// found nothing). An error when blkid cannot be run or fails otherwise.
absl::StatusOr<std::optional<std::string>> FindUsbCacheDevice(
    std::string_view label = kUsbCacheLabel);

// The mounted USB cache; unmounts on destruction (MountedFileSystem), or Release() leaves it
// mounted for another process.
using UsbCacheMount = sys::MountedFileSystem;

// Mounts `device` (its file-system type as blkid reports it) read-only at `mount_point`
// (created when missing), or bind-mounts its existing mount there read-only. Errors name the
// device, the mount point and the reason.
absl::StatusOr<UsbCacheMount> MountUsbCache(
    const std::string& device, const std::filesystem::path& mount_point,
    const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

// Unmounts whatever is mounted at `mount_point` (nothing mounted: OK; busy: detached lazily).
absl::Status UnmountUsbCache(const std::filesystem::path& mount_point,
                             const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

}  // namespace ota::proxy
