// GRUB's environment block (grubenv) read and written with the real `grub-editenv`.
// Writes are atomic: grub-editenv itself truncates and rewrites the file in place, so we run it on
// a copy beside the file, fsync the copy, rename it over grubenv and fsync the directory. A power
// cut leaves the old or the new block, never a torn one (GRUB then falls back to the menu's
// compiled-in default, see grub_menu.h).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::boot {

using GrubEnvMap = std::map<std::string, std::string>;

// Parses `grub-editenv FILE list` output ("key=value" lines; a value may contain '=').
GrubEnvMap ParseGrubEnvList(std::string_view text);

class GrubEnv {
 public:
  explicit GrubEnv(std::filesystem::path file) : file_(std::move(file)) {}
  const std::filesystem::path& file() const { return file_; }

  // The variables; a missing file reads as empty (GRUB's load_env then sets nothing).
  absl::StatusOr<GrubEnvMap> Load() const;
  // Creates an empty block when the file does not exist (atomically, like every write).
  absl::Status CreateIfMissing();
  // Sets `set` and unsets `unset` in one atomic replacement of the file.
  absl::Status Update(const std::vector<std::pair<std::string, std::string>>& set,
                      const std::vector<std::string>& unset = {});

 private:
  std::filesystem::path file_;
};

}  // namespace ota::boot
