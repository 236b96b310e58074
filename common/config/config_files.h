// Internal to common/config: locating and reading config files.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::config::internal {

struct FoundFile {
  std::filesystem::path path;
  std::string warning;  // non-empty when both spellings exist (already logged)
};

// dir/<primary> if it exists, else dir/<alternative>, else nullopt (both: primary, warned). A name
// that exists but is a dangling symlink or cannot be examined is an error, not "absent".
absl::StatusOr<std::optional<FoundFile>> FindConfigFile(const std::filesystem::path& dir,
                                                        std::string_view primary,
                                                        std::string_view alternative);

// The content of a regular file of at most kMaxConfigBytes.
absl::StatusOr<std::string> ReadConfigFile(const std::filesystem::path& file);

}  // namespace ota::config::internal
