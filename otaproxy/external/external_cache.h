// otaproxy's read-only external caches, as today's Python otaproxy has them: a USB storage with
// the file-system label `ota_cache_src` (mounted by usb_cache_mount.h) and a pre-mounted NFS
// share (proxy_info.yaml: external_nfs_cache_mnt_point). Both hold blobs in the offline-image
// layout, looked up by the sha256 the client sent (Ota-File-Cache-Control: file_sha256=<hex>):
//   <root>/data/<sha256>.zst   first; answered with file_sha256=<hex>,file_compression_alg=zst
//   <root>/data/<sha256>       then;  answered with file_sha256=<hex>
// They are never written to.
//
// A USB stick is untrusted input. The client verifies every byte against its own digest (and
// retries with retry_caching, which skips external caches, on a mismatch); otaproxy only makes
// sure what it serves is a plain file inside <root>/data: `data` itself must be a directory,
// not a symlink (opened once, at start); a blob is opened relative to it by its fixed-form
// name (64 hex digits [+ ".zst"]: no '/', no "..") with O_NOFOLLOW (a symlink is never
// followed, in or out of the mount) and O_NONBLOCK (a FIFO cannot block an I/O thread), and
// must be a regular file; an uncompressed blob must be empty exactly when its sha256 is the
// empty file's, a .zst blob must not be empty. Anything else is a miss (warned once per cache).
// Lookups cost at most two openat() calls and run only when such a cache exists.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"

namespace ota::proxy {

// Where the USB cache is mounted, as upstream (its EXTERNAL_CACHE_DEV_MOUNTPOINT).
inline constexpr std::string_view kDefaultExternalCacheMountPoint =
    "/run/otaclient/mnt/external_cache";
// Upstream's switch for the USB cache (pydantic-settings: OTACLIENT_ prefix).
inline constexpr std::string_view kExternalCacheEnableEnv =
    "OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE";
inline constexpr std::string_view kExternalCacheMountPointEnv =
    "OTACLIENT_EXTERNAL_CACHE_DEV_MOUNTPOINT";

struct ExternalHit {
  fs::UniqueFd fd;  // opened read-only, positioned at 0
  uint64_t size = 0;
  bool zst = false;  // the .zst form: the response says file_compression_alg=zst
};

class ExternalCache {
 public:
  // `name` is for logs ("usb", "nfs"). Opens <root>/data, which must be a directory (not a
  // symlink); an error names the path and the reason.
  static absl::StatusOr<std::unique_ptr<ExternalCache>> Open(std::string name,
                                                             const std::filesystem::path& root);

  // The blob with this sha256 (64 lowercase hex digits; anything else is a miss): <sha>.zst,
  // else <sha>, else nullopt. Safe from any thread.
  std::optional<ExternalHit> Find(std::string_view sha256_hex) const;

  const std::string& name() const { return name_; }
  const std::filesystem::path& root() const { return root_; }

 private:
  ExternalCache(std::string name, std::filesystem::path root, fs::UniqueFd data_dir)
      : name_(std::move(name)), root_(std::move(root)), data_dir_(std::move(data_dir)) {}
  void WarnOnce(std::string_view file, std::string_view why) const;

  const std::string name_;
  const std::filesystem::path root_;
  const fs::UniqueFd data_dir_;
  mutable std::atomic<bool> warned_{false};
};

// Whether `path` is a mount point (what `findmnt <path>` answers): its canonical path is the
// mount point of a /proc/self/mountinfo line. A path that does not exist is not one; an
// unreadable mountinfo is an error.
absl::StatusOr<bool> IsMountPoint(const std::filesystem::path& path,
                                  const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

// OTACLIENT_OTAPROXY_ENABLE_EXTERNAL_CACHE read as the Python client reads it (a pydantic bool,
// default true): unset → true; 1/true/t/yes/y/on → true, 0/false/f/no/n/off → false (any case,
// surrounding blanks ignored); anything else → true (upstream then falls back to its default
// settings) and `*warning` says so.
bool ExternalCacheEnabledByEnv(const char* value, std::string* warning);

}  // namespace ota::proxy
