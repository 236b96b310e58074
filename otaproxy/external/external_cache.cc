#include "otaproxy/external/external_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "common/log/log.h"
#include "common/sys/block_device.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

// sha256 of the empty file.
constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr std::string_view kZstSuffix = ".zst";

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExternalCache>> ExternalCache::Open(
    std::string name, const std::filesystem::path& root) {
  fs::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return ErrnoStatus(errno, StrCat("open ", name, " cache ", root.string()));
  const std::filesystem::path data = root / "data";
  fs::UniqueFd data_fd(
      ::openat(root_fd.get(), "data", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!data_fd.valid()) {
    const int err = errno;
    return ErrnoStatus(err, StrCat("open ", name, " cache directory ", data.string(),
                                   err == ELOOP || err == ENOTDIR
                                       ? " (must be a directory, not a symlink)"
                                       : " (the layout is <root>/data/<sha256>[.zst])"));
  }
  return std::unique_ptr<ExternalCache>(
      new ExternalCache(std::move(name), root, std::move(data_fd)));
}

void ExternalCache::WarnOnce(std::string_view file, std::string_view why) const {
  if (warned_.exchange(true)) return;
  log::Warning("external cache: unusable file skipped (further ones are not logged)",
               {{"cache", name_},
                {"file", (root_ / "data" / std::string(file)).string()},
                {"reason", std::string(why)}});
}

std::optional<ExternalHit> ExternalCache::Find(std::string_view sha256_hex) const {
  if (!IsLowerHex64(sha256_hex)) return std::nullopt;
  // "<64 hex>.zst" then "<64 hex>", in one buffer: no allocation on the lookup.
  char file[64 + kZstSuffix.size() + 1];
  std::memcpy(file, sha256_hex.data(), 64);
  for (const bool zst : {true, false}) {
    if (zst) {
      std::memcpy(file + 64, kZstSuffix.data(), kZstSuffix.size());
      file[64 + kZstSuffix.size()] = '\0';
    } else {
      file[64] = '\0';
    }
    fs::UniqueFd fd(
        ::openat(data_dir_.get(), file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      if (err != ENOENT) WarnOnce(file, std::error_code(err, std::generic_category()).message());
      continue;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      WarnOnce(file, std::error_code(errno, std::generic_category()).message());
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      WarnOnce(file, "not a regular file");
      continue;
    }
    const bool empty = st.st_size == 0;
    if (zst ? empty : empty != (sha256_hex == kEmptySha256)) {
      WarnOnce(file, empty ? "empty" : "not empty, but named by the empty file's sha256");
      continue;
    }
    return ExternalHit{.fd = std::move(fd), .size = static_cast<uint64_t>(st.st_size), .zst = zst};
  }
  return std::nullopt;
}

absl::StatusOr<bool> IsMountPoint(const std::filesystem::path& path,
                                  const std::filesystem::path& mountinfo) {
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) return false;  // missing (or unreachable): nothing is mounted there for us
  OTA_ASSIGN_OR_RETURN(std::vector<sys::MountinfoEntry> mounts, sys::ReadMountinfo(mountinfo));
  return std::any_of(mounts.begin(), mounts.end(),
                     [&](const sys::MountinfoEntry& m) { return m.mount_point == real.string(); });
}

bool ExternalCacheEnabledByEnv(const char* value, std::string* warning) {
  if (value == nullptr) return true;
  std::string v(value);
  const auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
  v.erase(v.begin(), std::find_if_not(v.begin(), v.end(), blank));
  v.erase(std::find_if_not(v.rbegin(), v.rend(), blank).base(), v.end());
  std::transform(v.begin(), v.end(), v.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view yes : {"1", "true", "t", "yes", "y", "on"}) {
    if (v == yes) return true;
  }
  for (std::string_view no : {"0", "false", "f", "no", "n", "off"}) {
    if (v == no) return false;
  }
  if (warning != nullptr) {
    *warning = StrCat(kExternalCacheEnableEnv, "=\"", value,
                      "\" is not a boolean (true/false, 1/0, yes/no, on/off): the USB cache "
                      "stays enabled (the default)");
  }
  return true;
}

}  // namespace ota::proxy
