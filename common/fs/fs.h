// File-system building blocks: RAII fds and temp dirs, whole-file reads, atomic durable writes.
// Safe writing under a slot root (no symlink escape) lives in common/fs/rooted.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::fs {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A directory created under $TMPDIR (or `parent`) and removed recursively on destruction.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(std::string_view prefix = "ota",
                                        const std::filesystem::path& parent = {});
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);

// Writes `content` to `path` durably and atomically: temp file in the same directory, fsync,
// rename over `path`, fsync of the directory. A crash leaves either the old or the new content.
absl::Status WriteFileAtomic(const std::filesystem::path& path, std::string_view content,
                             mode_t mode = 0644);

// fsync of a directory, so a rename or create inside it survives a power cut.
absl::Status SyncDir(const std::filesystem::path& dir);

// Writes all of `data` to `fd`, retrying short writes and EINTR.
absl::Status WriteAll(int fd, const void* data, size_t size, std::string_view what);

}  // namespace ota::fs
