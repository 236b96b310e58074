// File-system operations confined to a root directory (a slot being written, or the active slot
// being read). Paths are interpreted inside the root ("/etc/passwd" and "etc/passwd" both mean
// <root>/etc/passwd) and can never reach outside it:
//   - parent directories are resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): a
//     symlink in the tree (absolute or full of "..") resolves as if <root> were "/", the way the
//     slot sees it once booted; on kernels without openat2 the same resolution is done in user
//     space, one component at a time;
//   - the last component is never followed (AT_SYMLINK_NOFOLLOW / O_NOFOLLOW), so writing
//     "/etc/x" when "/etc/x" is a symlink replaces the link, and Chmod refuses symlinks.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/fs.h"

namespace ota::fs {

class RootedDir {
 public:
  // How parent directories are resolved. kAuto uses openat2 when the kernel has it.
  enum class Resolver { kAuto, kUserSpace };

  // Opens `root`, which must be an existing directory.
  static absl::StatusOr<RootedDir> Open(const std::filesystem::path& root,
                                        Resolver resolver = Resolver::kAuto);

  RootedDir(RootedDir&&) noexcept = default;
  RootedDir& operator=(RootedDir&&) noexcept = default;

  const std::filesystem::path& root() const { return root_; }
  int root_fd() const { return root_fd_.get(); }
  // "<root>/<path>" for messages and logs only (never opened by name).
  std::string Describe(std::string_view path) const;

  // --- reading ---
  absl::StatusOr<struct stat> Lstat(std::string_view path) const;
  // kNotFound when nothing is there (not even a dangling symlink).
  absl::StatusOr<bool> Exists(std::string_view path) const;
  // Opens a regular file for reading; fails on a symlink (ELOOP) or anything but a regular file.
  absl::StatusOr<UniqueFd> OpenRead(std::string_view path) const;
  // Opens a directory (the last component must be a real directory, not a symlink).
  absl::StatusOr<UniqueFd> OpenDir(std::string_view path) const;
  absl::StatusOr<std::string> ReadLink(std::string_view path) const;
  // Whole small file (e.g. etc/passwd); the last component must be a regular file.
  absl::StatusOr<std::string> ReadFile(std::string_view path) const;

  // --- writing ---
  // mkdir -p: creates missing components (intermediates with 0755, owned by the caller) and the
  // last one with `mode & 0777` (umask applies; call Chmod for exact bits). An existing directory
  // (or, as with mkdir -p, a symlink resolving inside the root to one) is fine; an existing
  // non-directory is kFailedPrecondition.
  absl::Status MakeDirs(std::string_view path, mode_t mode = 0755);
  // Creates `path` as a symlink to `target` (never resolved), atomically replacing any
  // non-directory already there.
  absl::Status CreateSymlink(std::string_view path, std::string_view target);
  // Writes the rest of `src_fd` into a new file at `path` (a temp name beside it, then renamed
  // over whatever non-directory is there). Owner then mode are applied before the rename, so
  // setuid bits survive and the file never appears with the wrong owner.
  struct FileAttrs {
    mode_t mode = 0644;  // 07777 bits
    uid_t uid = 0;
    gid_t gid = 0;
    std::optional<struct timespec> mtime;  // kept as-is when unset
  };
  absl::Status CopyFileFrom(int src_fd, std::string_view path, const FileAttrs& attrs);
  // `content` at `path`, durably and atomically (temp file beside it, fsync, rename over what is
  // there, fsync of the directory): after a crash the file holds its old or its new content.
  absl::Status WriteFileDurably(std::string_view path, std::string_view content,
                                const FileAttrs& attrs);
  // WriteFileDurably keeping the mode and owner of the regular file already at `path` (new
  // files: 0644, owned by the caller), e.g. a config file of the image rewritten for the slot.
  absl::Status RewriteFileDurably(std::string_view path, std::string_view content);
  // Unlinks the non-directory at `path` and fsyncs its directory; missing is fine.
  absl::Status RemoveFileDurably(std::string_view path);
  // An empty file at `path`, same replacement and attribute rules as CopyFileFrom.
  absl::Status CreateEmptyFile(std::string_view path, const FileAttrs& attrs);
  // A file holding exactly `content`, same replacement and attribute rules as CopyFileFrom.
  absl::Status WriteNewFile(std::string_view path, std::string_view content,
                            const FileAttrs& attrs);
  // An overlayfs whiteout (character device 0:0) at `path`, replacing any non-directory there,
  // then owner, then mode (07777 bits).
  absl::Status MakeWhiteout(std::string_view path, const FileAttrs& attrs);
  // setxattr on the entry itself, never following a symlink (works on symlinks and device nodes,
  // through the entry's O_PATH fd under /proc/self/fd).
  absl::Status SetXattr(std::string_view path, std::string_view name, std::string_view value);
  // rename(2) inside the root, replacing a non-directory at `to`.
  absl::Status Rename(std::string_view from, std::string_view to);
  // Hard link `new_path` to the file at `existing` (not followed if it is a symlink), replacing a
  // non-directory at `new_path`.
  absl::Status Link(std::string_view existing, std::string_view new_path);
  // lchown: never follows a symlink.
  absl::Status Lchown(std::string_view path, uid_t uid, gid_t gid);
  // chmod with all 07777 bits; kFailedPrecondition on a symlink (its mode means nothing and
  // following it could touch a file outside the root).
  absl::Status Chmod(std::string_view path, mode_t mode);
  // Sets the modification (and access) time without following a symlink.
  absl::Status SetMtime(std::string_view path, const struct timespec& mtime);
  // Removes `path` whatever it is: a file or symlink is unlinked, a directory removed with its
  // contents (never following symlinks inside). Missing is fine.
  absl::Status RemoveAll(std::string_view path);
  // Empties the root except the top-level entries named in `keep` ("name" or "/name").
  absl::Status RemoveTreeExcept(std::span<const std::string_view> keep);
  // syncfs(2) on the file system holding the root.
  absl::Status SyncFs() const;

 private:
  RootedDir(std::filesystem::path root, UniqueFd fd, bool use_openat2)
      : root_(std::move(root)), root_fd_(std::move(fd)), use_openat2_(use_openat2) {}

  // The directory holding the last component of `path`, plus that component's name.
  struct Parent {
    UniqueFd dir;  // O_PATH fd, or -1 meaning "the root itself" (then `name` is empty)
    std::string name;
    int fd(int root_fd) const { return dir.valid() ? dir.get() : root_fd; }
  };
  absl::StatusOr<Parent> ResolveParent(std::string_view path) const;
  // A new file at `path`: a temp name beside it, `fill` writes its bytes, owner, mode, rename.
  absl::Status CreateFile(
      std::string_view path, const FileAttrs& attrs,
      const std::function<absl::Status(int out_fd, const std::string& what)>& fill);
  // Resolves `rel` (relative, may be empty) to a directory fd, following symlinks inside root.
  absl::StatusOr<UniqueFd> ResolveDir(std::string_view rel, std::string_view what) const;
  absl::StatusOr<UniqueFd> ResolveDirUserSpace(std::string_view rel, std::string_view what) const;
  absl::Status MakeDirsImpl(std::string_view rel, mode_t mode, int depth);

  std::filesystem::path root_;
  UniqueFd root_fd_;
  bool use_openat2_ = true;
};

}  // namespace ota::fs
