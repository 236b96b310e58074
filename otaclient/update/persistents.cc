#include "otaclient/update/persistents.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <vector>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::update {
namespace {

// "name:x:id:..." lines → id → name and name → id (a later line wins, like a dict built by
// iteration). Blank, comment and malformed lines are ignored.
void ParseIdFile(std::string_view content, std::unordered_map<uint32_t, std::string>* by_id,
                 std::unordered_map<std::string, uint32_t>* by_name) {
  while (!content.empty()) {
    size_t eol = content.find('\n');
    std::string_view line = content.substr(0, eol);
    content = eol == std::string_view::npos ? std::string_view() : content.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos || c1 == 0) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    size_t c3 = line.find(':', c2 + 1);
    std::string_view id_text =
        line.substr(c2 + 1, (c3 == std::string_view::npos ? line.size() : c3) - c2 - 1);
    uint32_t id = 0;
    auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (ec != std::errc() || ptr != id_text.data() + id_text.size() || id_text.empty()) continue;
    std::string name(line.substr(0, c1));
    if (by_id != nullptr) (*by_id)[id] = name;
    if (by_name != nullptr) (*by_name)[name] = id;
  }
}

std::string ReadOrEmpty(const fs::RootedDir& dir, std::string_view path) {
  absl::StatusOr<std::string> content = dir.ReadFile(path);
  if (!content.ok()) {
    log::Warning(
        "persistents: cannot read id database, ids there are kept as they are",
        {{"path", dir.Describe(path)}, {"error", std::string(content.status().message())}});
    return {};
  }
  return *std::move(content);
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty() || dir == "/") return StrCat("/", name);
  return StrCat(dir, "/", name);
}

class PersistentCopier {
 public:
  PersistentCopier(const fs::RootedDir& active, fs::RootedDir& standby, const IdMapper& ids)
      : active_(active), standby_(standby), ids_(ids) {}

  absl::Status CopyWithParents(std::string_view path) {
    // Ancestors from the top down, excluding `path` itself and "/" (the standby root).
    for (size_t pos = path.find('/', 1); pos != std::string_view::npos;
         pos = path.find('/', pos + 1)) {
      OTA_RETURN_IF_ERROR(CopyOne(path.substr(0, pos), /*recurse=*/false));
    }
    return CopyOne(path, /*recurse=*/true);
  }

 private:
  absl::Status CopyOne(std::string_view path, bool recurse) {
    OTA_ASSIGN_OR_RETURN(struct stat src, active_.Lstat(path));
    absl::StatusOr<struct stat> dst = standby_.Lstat(path);
    if (!dst.ok() && !absl::IsNotFound(dst.status())) return dst.status();

    if (S_ISDIR(src.st_mode)) {
      if (dst.ok() && S_ISDIR(dst->st_mode)) {
        // Existing directory: merged into, its own owner and mode stay.
      } else {
        if (dst.ok()) OTA_RETURN_IF_ERROR(standby_.RemoveAll(path));
        OTA_RETURN_IF_ERROR(standby_.MakeDirs(path, 0700));
        OTA_RETURN_IF_ERROR(CopyOwnerAndMode(path, src));
      }
      if (recurse) return CopyChildren(path);
      return absl::OkStatus();
    }
    if (!S_ISREG(src.st_mode) && !S_ISLNK(src.st_mode)) {
      return absl::InternalError(
          StrCat("persistent file ", active_.Describe(path),
                 " has an unintended file type (fifo, socket or device): refusing to copy it"));
    }
    if (dst.ok() && S_ISDIR(dst->st_mode)) OTA_RETURN_IF_ERROR(standby_.RemoveAll(path));
    if (S_ISLNK(src.st_mode)) {
      OTA_ASSIGN_OR_RETURN(std::string target, active_.ReadLink(path));
      OTA_RETURN_IF_ERROR(standby_.CreateSymlink(path, target));
    } else {
      OTA_ASSIGN_OR_RETURN(fs::UniqueFd fd, active_.OpenRead(path));
      fs::RootedDir::FileAttrs attrs;
      auto mapped = ids_.Map(src.st_uid, src.st_gid);
      attrs.uid = mapped ? mapped->first : src.st_uid;
      attrs.gid = mapped ? mapped->second : src.st_gid;
      attrs.mode = src.st_mode & 07777;
      attrs.mtime = src.st_mtim;
      return standby_.CopyFileFrom(fd.get(), path, attrs);
    }
    return CopyOwnerAndMode(path, src);
  }

  absl::Status CopyOwnerAndMode(std::string_view path, const struct stat& src) {
    auto mapped = ids_.Map(src.st_uid, src.st_gid);
    uid_t uid = mapped ? mapped->first : src.st_uid;
    gid_t gid = mapped ? mapped->second : src.st_gid;
    OTA_RETURN_IF_ERROR(standby_.Lchown(path, uid, gid));
    if (S_ISLNK(src.st_mode)) return absl::OkStatus();
    return standby_.Chmod(path, src.st_mode & 07777);
  }

  absl::Status CopyChildren(std::string_view dir_path) {
    OTA_ASSIGN_OR_RETURN(fs::UniqueFd dir_fd, active_.OpenDir(dir_path));
    int dup_fd = ::fcntl(dir_fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup ", active_.Describe(dir_path)));
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(dup_fd), &::closedir);
    if (!dir) {
      int err = errno;
      ::close(dup_fd);
      return ErrnoStatus(err, StrCat("opendir ", active_.Describe(dir_path)));
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* de = ::readdir(dir.get())) {
      std::string_view name = de->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) return ErrnoStatus(errno, StrCat("readdir ", active_.Describe(dir_path)));
    dir.reset();
    for (const std::string& name : names) {
      OTA_RETURN_IF_ERROR(CopyOne(JoinPath(dir_path, name), /*recurse=*/true));
    }
    return absl::OkStatus();
  }

  const fs::RootedDir& active_;
  fs::RootedDir& standby_;
  const IdMapper& ids_;
};

}  // namespace

IdMapper::IdMapper(std::string_view src_passwd, std::string_view src_group,
                   std::string_view dst_passwd, std::string_view dst_group) {
  ParseIdFile(src_passwd, &src_user_, nullptr);
  ParseIdFile(src_group, &src_group_, nullptr);
  ParseIdFile(dst_passwd, nullptr, &dst_user_);
  ParseIdFile(dst_group, nullptr, &dst_group_);
}

std::optional<std::pair<uid_t, gid_t>> IdMapper::Map(uid_t uid, gid_t gid) const {
  auto user = src_user_.find(uid);
  auto group = src_group_.find(gid);
  if (user == src_user_.end() || group == src_group_.end()) return std::nullopt;
  auto new_uid = dst_user_.find(user->second);
  auto new_gid = dst_group_.find(group->second);
  if (new_uid == dst_user_.end() || new_gid == dst_group_.end()) return std::nullopt;
  return std::make_pair(static_cast<uid_t>(new_uid->second), static_cast<gid_t>(new_gid->second));
}

absl::Status CopyPersistents(const image::Manifest& manifest, const fs::RootedDir& active,
                             fs::RootedDir& standby) {
  if (manifest.persistents.empty()) return absl::OkStatus();
  IdMapper ids(ReadOrEmpty(active, "/etc/passwd"), ReadOrEmpty(active, "/etc/group"),
               ReadOrEmpty(standby, "/etc/passwd"), ReadOrEmpty(standby, "/etc/group"));
  PersistentCopier copier(active, standby, ids);
  for (const image::StrRef& ref : manifest.persistents) {
    std::string_view path = manifest.Str(ref);
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    if (path.empty() || path == "/" || path.front() != '/') {
      if (!path.empty()) log::Warning("persistents: skipping non-absolute path", {{"path", path}});
      continue;
    }
    absl::StatusOr<bool> exists = active.Exists(path);
    if (!exists.ok() || !*exists) {
      log::Info("persistents: not on the active slot, skipped", {{"path", path}});
      continue;
    }
    OTA_RETURN_IF_ERROR(
        WithContext(copier.CopyWithParents(path), StrCat("copying persistent file ", path)));
  }
  return absl::OkStatus();
}

}  // namespace ota::update
