#include "otaclient/boot/grub_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/fs/fs.h"
#include "common/sys/command.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "common/util/text_fields.h"

namespace ota::boot {
namespace {

absl::Status FsyncFile(const std::filesystem::path& path) {
  fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", path.string()));
  return absl::OkStatus();
}

}  // namespace

GrubEnvMap ParseGrubEnvList(std::string_view text) {
  GrubEnvMap env;
  for (std::string_view line : SplitLines(text)) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return env;
}

absl::StatusOr<GrubEnvMap> GrubEnv::Load() const {
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return GrubEnvMap();
  OTA_ASSIGN_OR_RETURN(std::string out,
                       sys::RunProgramChecked({"grub-editenv", file_.string(), "list"}));
  return ParseGrubEnvList(out);
}

absl::Status GrubEnv::CreateIfMissing() {
  std::error_code ec;
  if (std::filesystem::exists(file_, ec)) return absl::OkStatus();
  return Update({}, {});
}

absl::Status GrubEnv::Update(const std::vector<std::pair<std::string, std::string>>& set,
                             const std::vector<std::string>& unset) {
  const std::filesystem::path temp = file_.string() + ".ota-new";
  std::error_code ec;
  std::filesystem::remove(temp, ec);
  if (std::filesystem::exists(file_, ec)) {
    OTA_ASSIGN_OR_RETURN(std::string current, fs::ReadFile(file_));
    OTA_RETURN_IF_ERROR(fs::WriteFileAtomic(temp, current));
  } else {
    OTA_RETURN_IF_ERROR(
        WithContext(sys::RunProgramChecked({"grub-editenv", temp.string(), "create"}).status(),
                    StrCat("creating ", file_.string())));
  }
  if (!set.empty()) {
    std::vector<std::string> argv = {"grub-editenv", temp.string(), "set"};
    for (const auto& [key, value] : set) argv.push_back(StrCat(key, "=", value));
    OTA_RETURN_IF_ERROR(sys::RunProgramChecked(argv).status());
  }
  if (!unset.empty()) {
    std::vector<std::string> argv = {"grub-editenv", temp.string(), "unset"};
    argv.insert(argv.end(), unset.begin(), unset.end());
    OTA_RETURN_IF_ERROR(sys::RunProgramChecked(argv).status());
  }
  OTA_RETURN_IF_ERROR(FsyncFile(temp));
  if (std::rename(temp.c_str(), file_.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", temp.string(), " to ", file_.string()));
  }
  return fs::SyncDir(file_.parent_path());
}

}  // namespace ota::boot
