// Mounting a file system with RAII: mount(2) on a directory made private (nothing propagates to
// or from other mount namespaces), syncfs + umount on destruction, and the unmounting of
// everything left below a directory. Used by otaclient's boot backends (standby slots, boot
// partitions) and otaproxy's USB cache helper.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::sys {

// What mount(2) gets besides the device and the target.
struct MountSpec {
  std::string fs_type = "ext4";
  unsigned long flags = 0;  // MS_* flags
  std::string data;         // fs-specific options ("commit=20")
};
MountSpec ReadOnlyMountSpec();  // ext4, ro, noatime, nodev, nosuid, noexec

// A mounted file system; unmounts on destruction (best effort, lazily if busy, logged).
// Mount points are made private so a mount under it never propagates to the host namespace.
class MountedFileSystem {
 public:
  // Creates `target` (mkdir -p) when missing, then mount(2)s `device` there.
  static absl::StatusOr<MountedFileSystem> Mount(const std::filesystem::path& device,
                                                 const std::filesystem::path& target,
                                                 const MountSpec& spec);
  MountedFileSystem(MountedFileSystem&& other) noexcept;
  MountedFileSystem& operator=(MountedFileSystem&& other) noexcept;
  MountedFileSystem(const MountedFileSystem&) = delete;
  MountedFileSystem& operator=(const MountedFileSystem&) = delete;
  ~MountedFileSystem();

  const std::filesystem::path& target() const { return target_; }
  bool mounted() const { return !target_.empty(); }
  // syncfs, then umount(2); an error (e.g. EBUSY) is returned and the object stays mounted.
  absl::Status SyncAndUnmount();
  // Leaves the file system mounted and forgets it: a mount meant to outlive this process (the
  // otaproxy unit's root helper mounts the USB cache for the service, see
  // otaproxy/external/usb_cache_mount.h). Returns the mount point.
  std::filesystem::path Release() { return std::exchange(target_, {}); }

 private:
  explicit MountedFileSystem(std::filesystem::path target) : target_(std::move(target)) {}
  std::filesystem::path target_;
};

// Unmounts whatever is mounted at or below `dir` (deepest first), e.g. a standby mount left
// behind by a killed process. Nothing mounted: OK. An unreadable or malformed `mountinfo` is an
// error (never "nothing is mounted").
absl::Status UnmountAllUnder(const std::filesystem::path& dir,
                             const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

}  // namespace ota::sys
