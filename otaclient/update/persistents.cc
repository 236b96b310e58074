#include "otaclient/update/persistents.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>
#include <set>
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

// The two swap file names upstream refuses to carry over (its update_swapfile role makes them).
bool IsSwapFile(std::string_view path) { return path == "/swapfile" || path == "/swap.img"; }

class PersistentCopier {
 public:
  PersistentCopier(const fs::RootedDir& active, fs::RootedDir& standby, const IdMapper& ids)
      : active_(active), standby_(standby), ids_(ids) {}

  // One persistent entry: an error means it was not (completely) carried over.
  absl::Status Preserve(std::string_view path) {
    absl::StatusOr<struct stat> src = active_.Lstat(path);
    if (absl::IsNotFound(src.status())) {
      return absl::NotFoundError(StrCat(active_.Describe(path), " does not exist"));
    }
    if (!src.ok()) return src.status();
    if (!S_ISREG(src->st_mode) && !S_ISLNK(src->st_mode) && !S_ISDIR(src->st_mode)) {
      return absl::FailedPreconditionError(
          StrCat(active_.Describe(path), " is not a regular file, symlink or directory"));
    }
    OTA_RETURN_IF_ERROR(PrepareParents(path));
    if (S_ISDIR(src->st_mode)) return CopyTree(path, *src);
    OTA_RETURN_IF_ERROR(standby_.RemoveAll(path));
    return CopyNonDir(path, *src);
  }

 private:
  // Each ancestor of `path` below the root, top down (upstream's _prepare_parent).
  absl::Status PrepareParents(std::string_view path) {
    for (size_t pos = path.find('/', 1); pos != std::string_view::npos;
         pos = path.find('/', pos + 1)) {
      const std::string_view parent = path.substr(0, pos);
      absl::StatusOr<struct stat> dst = standby_.Lstat(parent);
      if (dst.ok() && S_ISDIR(dst->st_mode)) continue;  // kept as it is
      // A symlink there that resolves (inside the standby) to a directory is kept too.
      if (dst.ok() && S_ISLNK(dst->st_mode) && standby_.MakeDirs(parent).ok()) continue;
      if (!dst.ok() && !absl::IsNotFound(dst.status())) return dst.status();
      OTA_ASSIGN_OR_RETURN(struct stat src, active_.Lstat(parent));
      if (dst.ok()) OTA_RETURN_IF_ERROR(standby_.RemoveAll(parent));
      if (S_ISLNK(src.st_mode)) {
        // Missing on the standby and a symlink on the active slot: the same symlink.
        OTA_RETURN_IF_ERROR(CopyNonDir(parent, src));
        continue;
      }
      OTA_RETURN_IF_ERROR(MakeDirLike(parent, src));
    }
    return absl::OkStatus();
  }

  absl::Status MakeDirLike(std::string_view path, const struct stat& src) {
    OTA_RETURN_IF_ERROR(standby_.MakeDirs(path, 0700));
    OTA_RETURN_IF_ERROR(standby_.Lchown(path, Uid(src.st_uid), Gid(src.st_gid)));
    return standby_.Chmod(path, src.st_mode & 07777);
  }

  // A file or symlink at `path` (nothing is there: the caller removed it).
  absl::Status CopyNonDir(std::string_view path, const struct stat& src) {
    if (S_ISLNK(src.st_mode)) {
      OTA_ASSIGN_OR_RETURN(std::string target, active_.ReadLink(path));
      OTA_RETURN_IF_ERROR(standby_.CreateSymlink(path, target));
      return standby_.Lchown(path, Uid(src.st_uid), Gid(src.st_gid));
    }
    OTA_ASSIGN_OR_RETURN(fs::UniqueFd fd, active_.OpenRead(path));
    fs::RootedDir::FileAttrs attrs;
    attrs.uid = Uid(src.st_uid);
    attrs.gid = Gid(src.st_gid);
    attrs.mode = src.st_mode & 07777;  // set after the owner: setuid survives
    attrs.mtime = src.st_mtim;
    return standby_.CopyFileFrom(fd.get(), path, attrs);
  }

  // The directory at `path` replaces the standby's; its entries are copied one by one, a
  // failing one is a warning.
  absl::Status CopyTree(std::string_view path, const struct stat& src) {
    OTA_RETURN_IF_ERROR(standby_.RemoveAll(path));
    OTA_RETURN_IF_ERROR(MakeDirLike(path, src));
    OTA_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
    for (const std::string& name : names) {
      const std::string child = JoinPath(path, name);
      absl::StatusOr<struct stat> child_src = active_.Lstat(child);
      absl::Status copied = child_src.status();
      if (child_src.ok()) {
        if (S_ISDIR(child_src->st_mode)) {
          copied = CopyTree(child, *child_src);
        } else if (S_ISREG(child_src->st_mode) || S_ISLNK(child_src->st_mode)) {
          copied = CopyNonDir(child, *child_src);
        } else {
          log::Warning("persistents: skipping a special file (fifo, socket or device)",
                       {{"path", active_.Describe(child)}});
          continue;
        }
      }
      if (!copied.ok()) {
        log::Warning("persistents: failed to copy, skipped",
                     {{"path", child}, {"error", std::string(copied.message())}});
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(std::string_view dir_path) {
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
    return names;
  }

  // Each id on its own, as upstream; an id without a counterpart is kept (warned once).
  uid_t Uid(uid_t uid) {
    if (std::optional<uid_t> mapped = ids_.MapUid(uid)) return *mapped;
    if (unmapped_uids_.insert(uid).second) {
      log::Warning("persistents: no user of that uid on both slots, uid kept",
                   {{"uid", std::to_string(uid)}});
    }
    return uid;
  }
  gid_t Gid(gid_t gid) {
    if (std::optional<gid_t> mapped = ids_.MapGid(gid)) return *mapped;
    if (unmapped_gids_.insert(gid).second) {
      log::Warning("persistents: no group of that gid on both slots, gid kept",
                   {{"gid", std::to_string(gid)}});
    }
    return gid;
  }

  const fs::RootedDir& active_;
  fs::RootedDir& standby_;
  const IdMapper& ids_;
  std::set<uid_t> unmapped_uids_;
  std::set<gid_t> unmapped_gids_;
};

}  // namespace

IdMapper::IdMapper(std::string_view src_passwd, std::string_view src_group,
                   std::string_view dst_passwd, std::string_view dst_group) {
  ParseIdFile(src_passwd, &src_user_, nullptr);
  ParseIdFile(src_group, &src_group_, nullptr);
  ParseIdFile(dst_passwd, nullptr, &dst_user_);
  ParseIdFile(dst_group, nullptr, &dst_group_);
}

std::optional<uid_t> IdMapper::MapUid(uid_t uid) const {
  auto user = src_user_.find(uid);
  if (user == src_user_.end()) return std::nullopt;
  auto mapped = dst_user_.find(user->second);
  if (mapped == dst_user_.end()) return std::nullopt;
  return static_cast<uid_t>(mapped->second);
}

std::optional<gid_t> IdMapper::MapGid(gid_t gid) const {
  auto group = src_group_.find(gid);
  if (group == src_group_.end()) return std::nullopt;
  auto mapped = dst_group_.find(group->second);
  if (mapped == dst_group_.end()) return std::nullopt;
  return static_cast<gid_t>(mapped->second);
}

absl::Status CopyPersistents(const image::Manifest& manifest, const fs::RootedDir& active,
                             fs::RootedDir& standby) {
  if (manifest.persistents.empty()) return absl::OkStatus();
  IdMapper ids(ReadOrEmpty(active, "/etc/passwd"), ReadOrEmpty(active, "/etc/group"),
               ReadOrEmpty(standby, "/etc/passwd"), ReadOrEmpty(standby, "/etc/group"));
  PersistentCopier copier(active, standby, ids);
  size_t preserved = 0;
  size_t skipped = 0;
  for (const image::StrRef& ref : manifest.persistents) {
    std::string_view path = manifest.Str(ref);
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    if (IsSwapFile(path)) {
      log::Warning(
          "persistents: a swap file is listed; ignored (preserving swap files is a misuse of "
          "persistent files: remove it from the image's persistents.txt)",
          {{"path", path}});
      ++skipped;
      continue;
    }
    absl::Status status = path.empty() || path == "/" || path.front() != '/'
                              ? absl::InvalidArgumentError("not an absolute path below /")
                              : copier.Preserve(path);
    if (!status.ok()) {
      if (!path.empty()) {
        log::Warning("persistents: failed to preserve, skipped",
                     {{"path", path}, {"error", std::string(status.message())}});
      }
      ++skipped;
      continue;
    }
    ++preserved;
  }
  log::Info("persistent files carried over",
            {{"preserved", std::to_string(preserved)}, {"skipped", std::to_string(skipped)}});
  return absl::OkStatus();
}

}  // namespace ota::update
