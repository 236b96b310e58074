#include "common/fs/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::fs {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::StatusOr<TempDir> TempDir::Create(std::string_view prefix,
                                        const std::filesystem::path& parent) {
  std::filesystem::path base = parent;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  std::string templ = (base / StrCat(prefix, ".XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return ErrnoStatus(errno, StrCat("mkdtemp ", templ));
  }
  return TempDir(std::filesystem::path(templ));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open ", path.string()));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteAll(int fd, const void* data, size_t size, std::string_view what) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("write ", what));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("open dir ", dir.string()));
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", dir.string()));
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                             mode_t mode) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmp = (dir / StrCat(".", path.filename().string(), ".tmp.XXXXXX")).string();
  UniqueFd fd(::mkstemp(tmp.data()));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("create temp file for ", path.string()));
  auto cleanup_on_error = [&](absl::Status st) {
    ::unlink(tmp.c_str());
    return st;
  };
  if (absl::Status st = WriteAll(fd.get(), content.data(), content.size(), tmp); !st.ok()) {
    return cleanup_on_error(st);
  }
  if (::fchmod(fd.get(), mode) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, StrCat("chmod ", tmp)));
  }
  if (::fsync(fd.get()) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, StrCat("fsync ", tmp)));
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return cleanup_on_error(ErrnoStatus(errno, StrCat("rename to ", path.string())));
  }
  return SyncDir(dir);
}

}  // namespace ota::fs
