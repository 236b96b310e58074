#include "common/sys/mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/sys/block_device.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::sys {
namespace {

namespace stdfs = std::filesystem;

bool IsUnder(const std::string& path, const std::string& dir) {
  if (path == dir) return true;
  std::string prefix = dir;
  if (prefix.empty() || prefix.back() != '/') prefix.push_back('/');
  return path.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

MountSpec ReadOnlyMountSpec() {
  MountSpec spec;
  spec.flags = MS_RDONLY | MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC;
  return spec;
}

absl::StatusOr<MountedFileSystem> MountedFileSystem::Mount(const stdfs::path& device,
                                                           const stdfs::path& target,
                                                           const MountSpec& spec) {
  std::error_code ec;
  stdfs::create_directories(target, ec);
  if (ec) return ErrnoStatus(ec.value(), StrCat("create mount point ", target.string()));
  if (::mount(device.c_str(), target.c_str(), spec.fs_type.c_str(), spec.flags,
              spec.data.empty() ? nullptr : spec.data.c_str()) != 0) {
    return ErrnoStatus(
        errno, StrCat("mount ", device.string(), " (", spec.fs_type, ") on ", target.string()));
  }
  MountedFileSystem mounted(target);
  // Our mounts must not propagate into other namespaces (or back from them).
  if (::mount(nullptr, target.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus(errno, StrCat("make ", target.string(), " a private mount"));
  }
  log::Info("mounted", {{"device", device.string()}, {"target", target.string()}});
  return mounted;
}

MountedFileSystem::MountedFileSystem(MountedFileSystem&& other) noexcept
    : target_(std::exchange(other.target_, {})) {}

MountedFileSystem& MountedFileSystem::operator=(MountedFileSystem&& other) noexcept {
  if (this != &other) {
    if (mounted()) (void)SyncAndUnmount();
    target_ = std::exchange(other.target_, {});
  }
  return *this;
}

MountedFileSystem::~MountedFileSystem() {
  if (!mounted()) return;
  absl::Status status = SyncAndUnmount();
  if (status.ok()) return;
  log::Warning("unmount failed, detaching lazily",
               {{"target", target_.string()}, {"error", std::string(status.message())}});
  ::umount2(target_.c_str(), MNT_DETACH);
}

absl::Status MountedFileSystem::SyncAndUnmount() {
  if (!mounted()) return absl::OkStatus();
  fs::UniqueFd fd(::open(target_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid() && ::syncfs(fd.get()) != 0) {
    return ErrnoStatus(errno, StrCat("syncfs ", target_.string()));
  }
  fd.Reset();
  if (::umount2(target_.c_str(), 0) != 0) {
    return ErrnoStatus(errno, StrCat("umount ", target_.string()));
  }
  log::Info("unmounted", {{"target", target_.string()}});
  target_.clear();
  return absl::OkStatus();
}

absl::Status UnmountAllUnder(const stdfs::path& dir, const stdfs::path& mountinfo) {
  const std::string base = NormalizeMountPoint(dir.string());
  std::vector<std::string> targets;
  OTA_ASSIGN_OR_RETURN(std::vector<MountinfoEntry> mounts, ReadMountinfo(mountinfo));
  for (MountinfoEntry& entry : mounts) {
    if (IsUnder(entry.mount_point, base)) targets.push_back(std::move(entry.mount_point));
  }
  // Deepest first; umount2 on a stacked mount point removes the top one each time.
  std::stable_sort(targets.begin(), targets.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& target : targets) {
    log::Warning("unmounting a leftover mount", {{"target", target}});
    if (::umount2(target.c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
      if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
        return ErrnoStatus(errno, StrCat("umount ", target));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ota::sys
