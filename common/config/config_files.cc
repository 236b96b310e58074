#include "common/config/config_files.h"

#include <sys/stat.h>

#include <cerrno>

#include "common/config/yaml_fields.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::config::internal {
namespace {

// True when `path` names something (even a dangling symlink); false on ENOENT.
absl::StatusOr<bool> Exists(const std::filesystem::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus(errno, StrCat("examine config file ", path.string()));
}

}  // namespace

absl::StatusOr<std::optional<FoundFile>> FindConfigFile(const std::filesystem::path& dir,
                                                        std::string_view primary,
                                                        std::string_view alternative) {
  std::filesystem::path primary_path = dir / primary;
  std::filesystem::path alternative_path = dir / alternative;
  OTA_ASSIGN_OR_RETURN(bool has_primary, Exists(primary_path));
  OTA_ASSIGN_OR_RETURN(bool has_alternative, Exists(alternative_path));
  if (has_primary && has_alternative) {
    std::string warning =
        StrCat("both ", primary_path.string(), " and ", alternative_path.string(), " exist; using ",
               primary_path.string(), " (the file the Python otaclient reads) and ignoring ",
               alternative_path.string());
    log::Warning("config", {{"warning", warning}});
    return FoundFile{primary_path, std::move(warning)};
  }
  if (has_primary) return FoundFile{primary_path, ""};
  if (has_alternative) return FoundFile{alternative_path, ""};
  return std::nullopt;
}

absl::StatusOr<std::string> ReadConfigFile(const std::filesystem::path& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    int err = errno;
    std::string what = StrCat("open config file ", file.string());
    if (err == ENOENT) {
      struct stat link_st;
      if (::lstat(file.c_str(), &link_st) == 0) StrAppend(&what, " (dangling symlink)");
    }
    return ErrnoStatus(err, what);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        StrCat(file.string(), ": not a regular file (a config file is expected here)"));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    return absl::InvalidArgumentError(StrCat(file.string(), ": file is ", st.st_size,
                                             " bytes, larger than the ", kMaxConfigBytes,
                                             " bytes a config file may have"));
  }
  return fs::ReadFile(file);
}

}  // namespace ota::config::internal
