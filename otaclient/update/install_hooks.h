// Install hooks: optional executables an operator puts into the config dir, run by the update
// session around the writing of the standby (like RAUC's slot hooks and Mender's state scripts):
//   <hooks dir>/pre-install   after the standby is prepared (unbootable, cleaned, mounted) and
//                             before any content is written into it
//   <hooks dir>/post-install  after everything is written (image, persistent files), before the
//                             boot switch (CommitSwitch)
// A missing hook is skipped. A present one must be a regular file (a symlink is followed),
// executable, owned by root and not group/world-writable, in a hooks dir that is owned by root
// and not group/world-writable either; otherwise the update fails before anything runs with
// "<hook> hook refused: <why>". The hook runs with the working directory and the environment of
// the service plus
//   OTA_HOOK             "pre-install" or "post-install"
//   OTA_TARGET_ROOT      mount point of the standby being written
//   OTA_ACTIVE_ROOT      root of the running slot
//   OTA_TARGET_VERSION   the version being installed
//   OTA_IMAGE_URL        the image's URL
//   OTA_ECU_ID           this ECU's id
// stdin /dev/null, and a timeout (its process group is killed then). Each line it printed is
// logged (stdout as info, stderr as warning). A non-zero exit or a timeout fails the update
// before the boot switch: "pre-install hook failed: exit 3: <last line of its stderr>", marked
// E200 (RECOVERABLE: fix the hook and update again); the standby stays unbootable.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace ota::update {

inline constexpr std::string_view kPreInstallHook = "pre-install";
inline constexpr std::string_view kPostInstallHook = "post-install";
inline constexpr std::chrono::milliseconds kDefaultInstallHookTimeout = std::chrono::minutes(10);

struct InstallHookEnv {
  std::filesystem::path target_root;
  std::filesystem::path active_root;
  std::string target_version;
  std::string image_url;
  std::string ecu_id;
};

// Runs <hooks_dir>/<name> if it exists (see above); OK when there is none or it exited 0.
absl::Status RunInstallHook(const std::filesystem::path& hooks_dir, std::string_view name,
                            const InstallHookEnv& env, std::chrono::milliseconds timeout);

}  // namespace ota::update
