#include "common/fs/rooted.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::fs {
namespace {

// Kernels before 5.6 have no openat2; remembered after the first ENOSYS.
std::atomic<bool> g_kernel_lacks_openat2{false};

constexpr int kMaxSymlinkHops = 40;  // the kernel's own limit

// Splits a path into its components, dropping empty ones and ".": "/a//b/./c/" → {a, b, c}.
std::vector<std::string_view> Components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(pos, end - pos);
    if (!comp.empty() && comp != ".") out.push_back(comp);
    pos = end + 1;
  }
  return out;
}

std::string Join(std::span<const std::string_view> comps) {
  std::string out;
  for (std::string_view c : comps) {
    if (!out.empty()) out.push_back('/');
    out.append(c);
  }
  return out;
}

std::string TempName() {
  static std::atomic<uint64_t> counter{0};
  return StrCat(".ota-tmp.", static_cast<int64_t>(::getpid()), ".",
                counter.fetch_add(1, std::memory_order_relaxed));
}

// Copies from the current offset of `src` to EOF into `dst`; copy_file_range when the file
// systems allow it (reflinks on btrfs/xfs), plain read/write otherwise.
absl::Status CopyFdContents(int src, int dst, std::string_view what) {
  bool use_copy_file_range = true;
  std::vector<char> buf;
  while (true) {
    if (use_copy_file_range) {
      ssize_t n = ::copy_file_range(src, nullptr, dst, nullptr, 1 << 30, 0);
      if (n > 0) continue;
      if (n == 0) return absl::OkStatus();
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
          errno == EBADF) {
        use_copy_file_range = false;
        continue;
      }
      return ErrnoStatus(errno, StrCat("copy into ", what));
    }
    if (buf.empty()) buf.resize(1 << 20);
    ssize_t n = ::read(src, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read source for ", what));
    }
    if (n == 0) return absl::OkStatus();
    OTA_RETURN_IF_ERROR(WriteAll(dst, buf.data(), static_cast<size_t>(n), what));
  }
}

// Removes everything inside the directory `dir_fd`, never following symlinks.
absl::Status RemoveContents(int dir_fd, const std::string& what) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup ", what));
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoStatus(err, StrCat("opendir ", what));
  }
  struct Entry {
    std::string name;
    bool is_dir;
  };
  std::vector<Entry> entries;
  errno = 0;
  while (struct dirent* de = ::readdir(dir)) {
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        is_dir = S_ISDIR(st.st_mode);
      }
    }
    entries.push_back({std::string(name), is_dir});
  }
  int read_err = errno;
  ::closedir(dir);
  if (read_err != 0) return ErrnoStatus(read_err, StrCat("readdir ", what));

  for (const Entry& e : entries) {
    std::string child = StrCat(what, "/", e.name);
    if (e.is_dir) {
      UniqueFd sub(
          ::openat(dir_fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) {
        if (errno == ENOENT) continue;
        return ErrnoStatus(errno, StrCat("open ", child));
      }
      OTA_RETURN_IF_ERROR(RemoveContents(sub.get(), child));
      if (::unlinkat(dir_fd, e.name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, StrCat("rmdir ", child));
      }
    } else if (::unlinkat(dir_fd, e.name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("unlink ", child));
    }
  }
  return absl::OkStatus();
}

// Removes `name` in `dir_fd`, whatever it is. Missing is fine.
absl::Status RemoveEntry(int dir_fd, const std::string& name, const std::string& what) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("lstat ", what));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("unlink ", what));
    }
    return absl::OkStatus();
  }
  UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub.valid()) return ErrnoStatus(errno, StrCat("open ", what));
  OTA_RETURN_IF_ERROR(RemoveContents(sub.get(), what));
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, StrCat("rmdir ", what));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RootedDir> RootedDir::Open(const std::filesystem::path& root, Resolver resolver) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open root dir ", root.string()));
  bool use_openat2 = resolver == Resolver::kAuto && !g_kernel_lacks_openat2.load();
  return RootedDir(root, std::move(fd), use_openat2);
}

std::string RootedDir::Describe(std::string_view path) const {
  std::string out = root_.string();
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty()) {
    if (out.empty() || out.back() != '/') out.push_back('/');
    out.append(path);
  }
  return out;
}

absl::StatusOr<UniqueFd> RootedDir::ResolveDir(std::string_view rel, std::string_view what) const {
  if (use_openat2_ && !g_kernel_lacks_openat2.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    std::string rel_str = rel.empty() ? std::string(".") : std::string(rel);
    for (int attempt = 0; attempt < 16; ++attempt) {
      long fd = ::syscall(SYS_openat2, root_fd_.get(), rel_str.c_str(), &how, sizeof(how));
      if (fd >= 0) return UniqueFd(static_cast<int>(fd));
      // EAGAIN: a concurrent rename raced with ".." resolution; the kernel asks for a retry.
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno == ENOSYS) {
        g_kernel_lacks_openat2.store(true);
        break;
      }
      return ErrnoStatus(errno, StrCat("resolve ", what));
    }
    if (!g_kernel_lacks_openat2.load()) {
      return absl::UnavailableError(StrCat("resolve ", what, ": kept racing with renames"));
    }
  }
  return ResolveDirUserSpace(rel, what);
}

// The RESOLVE_IN_ROOT rules in user space: ".." stops at the root, an absolute symlink target
// restarts at the root, every hop goes through an fd so nothing is looked up by full path.
absl::StatusOr<UniqueFd> RootedDir::ResolveDirUserSpace(std::string_view rel,
                                                        std::string_view what) const {
  std::vector<UniqueFd> stack;  // directories below the root, innermost last
  std::deque<std::string> pending;
  for (std::string_view c : Components(rel)) pending.emplace_back(c);
  int hops = 0;
  while (!pending.empty()) {
    std::string comp = std::move(pending.front());
    pending.pop_front();
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (!stack.empty()) stack.pop_back();
      continue;
    }
    int cur = stack.empty() ? root_fd_.get() : stack.back().get();
    UniqueFd fd(::openat(cur, comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, StrCat("resolve ", what));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("resolve ", what));
    if (S_ISLNK(st.st_mode)) {
      if (++hops > kMaxSymlinkHops) return ErrnoStatus(ELOOP, StrCat("resolve ", what));
      std::string target(PATH_MAX, '\0');
      ssize_t n = ::readlinkat(fd.get(), "", target.data(), target.size());
      if (n < 0) return ErrnoStatus(errno, StrCat("readlink while resolving ", what));
      target.resize(static_cast<size_t>(n));
      if (!target.empty() && target.front() == '/') stack.clear();
      std::vector<std::string_view> target_comps = Components(target);
      for (auto it = target_comps.rbegin(); it != target_comps.rend(); ++it) {
        pending.emplace_front(*it);
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return ErrnoStatus(ENOTDIR, StrCat("resolve ", what));
    stack.push_back(std::move(fd));
  }
  if (!stack.empty()) return std::move(stack.back());
  UniqueFd self(::openat(root_fd_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!self.valid()) return ErrnoStatus(errno, StrCat("open ", root_.string()));
  return self;
}

absl::StatusOr<RootedDir::Parent> RootedDir::ResolveParent(std::string_view path) const {
  std::vector<std::string_view> comps = Components(path);
  Parent parent;
  if (comps.empty()) return parent;  // the root itself
  if (comps.back() == "..") {
    return absl::InvalidArgumentError(StrCat("path ends in '..': ", Describe(path)));
  }
  parent.name = std::string(comps.back());
  std::string parent_rel = Join(std::span(comps).first(comps.size() - 1));
  OTA_ASSIGN_OR_RETURN(parent.dir, ResolveDir(parent_rel, Describe(parent_rel)));
  return parent;
}

absl::StatusOr<struct stat> RootedDir::Lstat(std::string_view path) const {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  struct stat st;
  int rc = p.name.empty() ? ::fstat(root_fd_.get(), &st)
                          : ::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return ErrnoStatus(errno, StrCat("lstat ", Describe(path)));
  return st;
}

absl::StatusOr<bool> RootedDir::Exists(std::string_view path) const {
  absl::StatusOr<struct stat> st = Lstat(path);
  if (st.ok()) return true;
  if (absl::IsNotFound(st.status())) return false;
  return st.status();
}

absl::StatusOr<UniqueFd> RootedDir::OpenRead(std::string_view path) const {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) return absl::InvalidArgumentError(StrCat("not a file: ", Describe(path)));
  // O_NONBLOCK so that a fifo in the tree cannot hang us; it is rejected just below.
  UniqueFd fd(::openat(p.dir.get(), p.name.c_str(),
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", Describe(path)));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", Describe(path)));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat("not a regular file: ", Describe(path)));
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

absl::StatusOr<UniqueFd> RootedDir::OpenDir(std::string_view path) const {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  int dir_fd = p.name.empty() ? root_fd_.get() : p.dir.get();
  const char* name = p.name.empty() ? "." : p.name.c_str();
  UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open dir ", Describe(path)));
  return fd;
}

absl::StatusOr<std::string> RootedDir::ReadLink(std::string_view path) const {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  std::string target(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(p.dir.valid() ? p.dir.get() : root_fd_.get(), p.name.c_str(),
                           target.data(), target.size());
  if (n < 0) return ErrnoStatus(errno, StrCat("readlink ", Describe(path)));
  target.resize(static_cast<size_t>(n));
  return target;
}

absl::StatusOr<std::string> RootedDir::ReadFile(std::string_view path) const {
  OTA_ASSIGN_OR_RETURN(UniqueFd fd, OpenRead(path));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", Describe(path)));
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::Status RootedDir::MakeDirs(std::string_view path, mode_t mode) {
  return MakeDirsImpl(Join(Components(path)), mode, 0);
}

absl::Status RootedDir::MakeDirsImpl(std::string_view rel, mode_t mode, int depth) {
  if (rel.empty()) return absl::OkStatus();
  if (depth > 4096) return absl::InvalidArgumentError(StrCat("path too deep: ", Describe(rel)));
  absl::StatusOr<Parent> p = ResolveParent(rel);
  if (absl::IsNotFound(p.status())) {
    size_t slash = rel.rfind('/');
    if (slash == std::string_view::npos) return p.status();  // the root itself is gone
    OTA_RETURN_IF_ERROR(MakeDirsImpl(rel.substr(0, slash), 0755, depth + 1));
    p = ResolveParent(rel);
  }
  if (!p.ok()) return p.status();
  if (::mkdirat(p->dir.get(), p->name.c_str(), mode & 0777) == 0) return absl::OkStatus();
  if (errno != EEXIST) return ErrnoStatus(errno, StrCat("mkdir ", Describe(rel)));
  struct stat st;
  if (::fstatat(p->dir.get(), p->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("lstat ", Describe(rel)));
  }
  if (S_ISDIR(st.st_mode)) return absl::OkStatus();
  // Like mkdir -p, a symlink to a directory will do; it is resolved inside the root.
  if (S_ISLNK(st.st_mode) && ResolveDir(rel, Describe(rel)).ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat("mkdir ", Describe(rel), ": exists and is not a directory"));
}

absl::Status RootedDir::CreateSymlink(std::string_view path, std::string_view target) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) return absl::InvalidArgumentError("cannot replace the root with a symlink");
  std::string target_str(target);
  if (::symlinkat(target_str.c_str(), p.dir.get(), p.name.c_str()) == 0) return absl::OkStatus();
  if (errno != EEXIST) return ErrnoStatus(errno, StrCat("symlink ", Describe(path)));
  // Replace atomically: a temp link beside it, renamed over (fails on a directory, as it should).
  std::string tmp = TempName();
  if (::symlinkat(target_str.c_str(), p.dir.get(), tmp.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("symlink temp for ", Describe(path)));
  }
  if (::renameat(p.dir.get(), tmp.c_str(), p.dir.get(), p.name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(p.dir.get(), tmp.c_str(), 0);
    return ErrnoStatus(err, StrCat("replace ", Describe(path), " with a symlink"));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::CopyFileFrom(int src_fd, std::string_view path, const FileAttrs& attrs) {
  return CreateFile(path, attrs, [&](int out, const std::string& what) {
    return src_fd >= 0 ? CopyFdContents(src_fd, out, what) : absl::OkStatus();
  });
}

absl::Status RootedDir::CreateFile(
    std::string_view path, const FileAttrs& attrs,
    const std::function<absl::Status(int out_fd, const std::string& what)>& fill) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) return absl::InvalidArgumentError("cannot replace the root with a file");
  std::string tmp = TempName();
  std::string what = Describe(path);
  UniqueFd out(::openat(p.dir.get(), tmp.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoStatus(errno, StrCat("create temp file for ", what));
  auto fail = [&](absl::Status st) {
    ::unlinkat(p.dir.get(), tmp.c_str(), 0);
    return st;
  };
  if (absl::Status st = fill(out.get(), what); !st.ok()) return fail(st);
  // Owner before mode: chown clears setuid/setgid.
  if (::fchown(out.get(), attrs.uid, attrs.gid) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chown ", what)));
  }
  if (::fchmod(out.get(), attrs.mode & 07777) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chmod ", what)));
  }
  if (attrs.mtime.has_value()) {
    struct timespec times[2] = {*attrs.mtime, *attrs.mtime};
    if (::futimens(out.get(), times) != 0) {
      return fail(ErrnoStatus(errno, StrCat("set mtime of ", what)));
    }
  }
  out.Reset();
  if (::renameat(p.dir.get(), tmp.c_str(), p.dir.get(), p.name.c_str()) != 0) {
    return fail(ErrnoStatus(errno, StrCat("rename into place ", what)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::WriteFileDurably(std::string_view path, std::string_view content,
                                         const FileAttrs& attrs) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) return absl::InvalidArgumentError("cannot replace the root with a file");
  const int dir = p.fd(root_fd_.get());
  const std::string tmp = TempName();
  const std::string what = Describe(path);
  UniqueFd out(
      ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out.valid()) return ErrnoStatus(errno, StrCat("create temp file for ", what));
  auto fail = [&](absl::Status st) {
    ::unlinkat(dir, tmp.c_str(), 0);
    return st;
  };
  if (absl::Status st = WriteAll(out.get(), content.data(), content.size(), what); !st.ok()) {
    return fail(st);
  }
  if (::fchown(out.get(), attrs.uid, attrs.gid) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chown ", what)));
  }
  if (::fchmod(out.get(), attrs.mode & 07777) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chmod ", what)));
  }
  if (::fsync(out.get()) != 0) return fail(ErrnoStatus(errno, StrCat("fsync ", what)));
  out.Reset();
  if (::renameat(dir, tmp.c_str(), dir, p.name.c_str()) != 0) {
    return fail(ErrnoStatus(errno, StrCat("rename into place ", what)));
  }
  UniqueFd sync(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!sync.valid() || ::fsync(sync.get()) != 0) {
    return ErrnoStatus(errno, StrCat("fsync the directory of ", what));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::RewriteFileDurably(std::string_view path, std::string_view content) {
  FileAttrs attrs;
  attrs.mode = 0644;
  attrs.uid = ::geteuid();
  attrs.gid = ::getegid();
  absl::StatusOr<struct stat> existing = Lstat(path);
  if (existing.ok() && S_ISREG(existing->st_mode)) {
    attrs.mode = existing->st_mode & 07777;
    attrs.uid = existing->st_uid;
    attrs.gid = existing->st_gid;
  } else if (!existing.ok() && !absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  return WriteFileDurably(path, content, attrs);
}

absl::Status RootedDir::RemoveFileDurably(std::string_view path) {
  absl::StatusOr<Parent> p = ResolveParent(path);
  if (absl::IsNotFound(p.status())) return absl::OkStatus();
  if (!p.ok()) return p.status();
  if (p->name.empty()) return absl::InvalidArgumentError("cannot remove the root");
  const int dir = p->fd(root_fd_.get());
  if (::unlinkat(dir, p->name.c_str(), 0) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, StrCat("remove ", Describe(path)));
  }
  UniqueFd sync(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!sync.valid() || ::fsync(sync.get()) != 0) {
    return ErrnoStatus(errno, StrCat("fsync the directory of ", Describe(path)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::CreateEmptyFile(std::string_view path, const FileAttrs& attrs) {
  return CopyFileFrom(-1, path, attrs);
}

absl::Status RootedDir::WriteNewFile(std::string_view path, std::string_view content,
                                     const FileAttrs& attrs) {
  return CreateFile(path, attrs, [&](int out, const std::string& what) {
    return WriteAll(out, content.data(), content.size(), what);
  });
}

absl::Status RootedDir::MakeWhiteout(std::string_view path, const FileAttrs& attrs) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) return absl::InvalidArgumentError("cannot replace the root with a device");
  const std::string what = Describe(path);
  const mode_t mode = S_IFCHR | (attrs.mode & 0777);
  std::string name = p.name;
  bool replacing = false;
  if (::mknodat(p.dir.get(), name.c_str(), mode, makedev(0, 0)) != 0) {
    if (errno != EEXIST) return ErrnoStatus(errno, StrCat("mknod (whiteout) ", what));
    name = TempName();
    replacing = true;
    if (::mknodat(p.dir.get(), name.c_str(), mode, makedev(0, 0)) != 0) {
      return ErrnoStatus(errno, StrCat("mknod (whiteout) temp for ", what));
    }
  }
  auto fail = [&](absl::Status st) {
    ::unlinkat(p.dir.get(), name.c_str(), 0);
    return st;
  };
  if (::fchownat(p.dir.get(), name.c_str(), attrs.uid, attrs.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chown ", what)));
  }
  if (::fchmodat(p.dir.get(), name.c_str(), attrs.mode & 07777, 0) != 0) {
    return fail(ErrnoStatus(errno, StrCat("chmod ", what)));
  }
  if (replacing && ::renameat(p.dir.get(), name.c_str(), p.dir.get(), p.name.c_str()) != 0) {
    return fail(ErrnoStatus(errno, StrCat("replace ", what, " with a whiteout")));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::SetXattr(std::string_view path, std::string_view name,
                                 std::string_view value) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  UniqueFd fd(p.name.empty()
                  ? ::openat(root_fd_.get(), ".", O_PATH | O_CLOEXEC)
                  : ::openat(p.dir.get(), p.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", Describe(path)));
  // The magic link names the entry itself (a symlink's own inode when opened O_NOFOLLOW).
  const std::string proc = StrCat("/proc/self/fd/", fd.get());
  const std::string attr(name);
  if (::setxattr(proc.c_str(), attr.c_str(), value.data(), value.size(), 0) != 0) {
    return ErrnoStatus(errno, StrCat("setxattr ", attr, " on ", Describe(path)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::Rename(std::string_view from, std::string_view to) {
  OTA_ASSIGN_OR_RETURN(Parent src, ResolveParent(from));
  OTA_ASSIGN_OR_RETURN(Parent dst, ResolveParent(to));
  if (src.name.empty() || dst.name.empty()) {
    return absl::InvalidArgumentError(StrCat("cannot rename the root: ", Describe(from)));
  }
  if (::renameat(src.dir.get(), src.name.c_str(), dst.dir.get(), dst.name.c_str()) != 0) {
    return ErrnoStatus(errno, StrCat("rename ", Describe(from), " to ", Describe(to)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::Link(std::string_view existing, std::string_view new_path) {
  OTA_ASSIGN_OR_RETURN(Parent src, ResolveParent(existing));
  OTA_ASSIGN_OR_RETURN(Parent dst, ResolveParent(new_path));
  if (src.name.empty() || dst.name.empty()) {
    return absl::InvalidArgumentError(StrCat("cannot link the root: ", Describe(existing)));
  }
  // flags 0: a symlink at `existing` is linked itself, never its target.
  if (::linkat(src.dir.get(), src.name.c_str(), dst.dir.get(), dst.name.c_str(), 0) == 0) {
    return absl::OkStatus();
  }
  if (errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("link ", Describe(new_path), " to ", Describe(existing)));
  }
  std::string tmp = TempName();
  if (::linkat(src.dir.get(), src.name.c_str(), dst.dir.get(), tmp.c_str(), 0) != 0) {
    return ErrnoStatus(errno, StrCat("link temp for ", Describe(new_path)));
  }
  if (::renameat(dst.dir.get(), tmp.c_str(), dst.dir.get(), dst.name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dst.dir.get(), tmp.c_str(), 0);
    return ErrnoStatus(err, StrCat("replace ", Describe(new_path), " with a hard link"));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::Lchown(std::string_view path, uid_t uid, gid_t gid) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  int rc = p.name.empty() ? ::fchown(root_fd_.get(), uid, gid)
                          : ::fchownat(p.dir.get(), p.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return ErrnoStatus(errno, StrCat("chown ", Describe(path)));
  return absl::OkStatus();
}

absl::Status RootedDir::Chmod(std::string_view path, mode_t mode) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  if (p.name.empty()) {
    if (::fchmod(root_fd_.get(), mode & 07777) != 0) {
      return ErrnoStatus(errno, StrCat("chmod ", Describe(path)));
    }
    return absl::OkStatus();
  }
  // Check the type through an O_PATH fd (needs no permission, does not block on a fifo, does not
  // follow a symlink), then chmod through a real fd opened with O_NOFOLLOW.
  UniqueFd fd(::openat(p.dir.get(), p.name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", Describe(path)));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", Describe(path)));
  if (S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(StrCat("refusing to chmod a symlink: ", Describe(path)));
  }
  if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
    int flags = (S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd real(::openat(p.dir.get(), p.name.c_str(), flags));
    if (real.valid()) {
      if (::fchmod(real.get(), mode & 07777) != 0) {
        return ErrnoStatus(errno, StrCat("chmod ", Describe(path)));
      }
      return absl::OkStatus();
    }
    if (errno != EACCES) return ErrnoStatus(errno, StrCat("open ", Describe(path)));
  }
  // Special files, or a file we may not open (non-root caller): glibc's no-follow fchmodat.
  if (::fchmodat(p.dir.get(), p.name.c_str(), mode & 07777, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, StrCat("chmod ", Describe(path)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::SetMtime(std::string_view path, const struct timespec& mtime) {
  OTA_ASSIGN_OR_RETURN(Parent p, ResolveParent(path));
  struct timespec times[2] = {mtime, mtime};
  int rc = p.name.empty() ? ::futimens(root_fd_.get(), times)
                          : ::utimensat(p.dir.get(), p.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return ErrnoStatus(errno, StrCat("set mtime of ", Describe(path)));
  return absl::OkStatus();
}

absl::Status RootedDir::RemoveAll(std::string_view path) {
  absl::StatusOr<Parent> p = ResolveParent(path);
  if (absl::IsNotFound(p.status())) return absl::OkStatus();
  if (!p.ok()) return p.status();
  if (p->name.empty()) return RemoveContents(root_fd_.get(), root_.string());
  return RemoveEntry(p->dir.get(), p->name, Describe(path));
}

absl::Status RootedDir::RemoveTreeExcept(std::span<const std::string_view> keep) {
  std::vector<std::string> keep_names;
  for (std::string_view k : keep) {
    std::vector<std::string_view> comps = Components(k);
    if (comps.size() != 1 || comps[0] == "..") {
      return absl::InvalidArgumentError(StrCat("keep entry must be one top-level name: '", k, "'"));
    }
    keep_names.emplace_back(comps[0]);
  }
  int dup_fd = ::fcntl(root_fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus(errno, StrCat("dup ", root_.string()));
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoStatus(err, StrCat("opendir ", root_.string()));
  }
  ::rewinddir(dir);
  std::vector<std::string> victims;
  errno = 0;
  while (struct dirent* de = ::readdir(dir)) {
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    bool kept = false;
    for (const std::string& k : keep_names) kept = kept || k == name;
    if (!kept) victims.emplace_back(name);
  }
  int read_err = errno;
  ::closedir(dir);
  if (read_err != 0) return ErrnoStatus(read_err, StrCat("readdir ", root_.string()));
  for (const std::string& name : victims) {
    OTA_RETURN_IF_ERROR(RemoveEntry(root_fd_.get(), name, Describe(name)));
  }
  return absl::OkStatus();
}

absl::Status RootedDir::SyncFs() const {
  if (::syncfs(root_fd_.get()) != 0) return ErrnoStatus(errno, StrCat("syncfs ", root_.string()));
  return absl::OkStatus();
}

}  // namespace ota::fs
