// Persistent files: paths listed in persistents.txt are carried over from the active slot to the
// standby after the image is written, the way today's Python client does it — best effort:
//   - "/swapfile" and "/swap.img" are skipped with a warning (upstream: preserving a swap file
//     is a misuse of the feature);
//   - anything that goes wrong with one entry (missing on the active slot, not absolute, a fifo,
//     socket or device, a copy error) is a warning naming the entry and the error, and the next
//     entry is handled: persistent files never fail an update;
//   - the entry's ancestors: an existing standby directory (or a symlink resolving to one) is
//     kept as it is; a file or symlink in the way is replaced by a directory; a missing one is
//     created with the active slot's mode and owner (a symlink on the active slot is recreated
//     as that symlink);
//   - a file is copied with its content, mode and mtime, replacing whatever is on the standby; a
//     symlink is recreated with the same target (never followed, dangling ones too);
//   - a directory REPLACES the standby's (removed first, not merged), recursively: files,
//     symlinks (to directories too) and subdirectories with their modes; fifos, sockets and
//     devices inside are skipped with a warning, a failing file is a warning and the rest goes on;
//   - owners are remapped by name, the uid and the gid each on its own: id → name through the
//     active slot's /etc/passwd (/etc/group), name → id through the standby's; an id without a
//     counterpart is kept (warned once). A missing or unreadable id database only means its ids
//     are kept (upstream fails the update instead).
// Differences from upstream kept on purpose: the owner is set before the mode, so setuid/setgid
// bits survive (upstream's chown after chmod clears them), and the mtime is kept.
// Reads go through a RootedDir of the active slot too, so its symlinks resolve inside it.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "common/fs/rooted.h"
#include "common/image/manifest.h"

namespace ota::update {

// Maps ids between two systems by user/group name.
class IdMapper {
 public:
  // Contents of /etc/passwd and /etc/group of the source and destination systems.
  IdMapper(std::string_view src_passwd, std::string_view src_group, std::string_view dst_passwd,
           std::string_view dst_group);
  // The destination id of the same name, or nullopt when the source id has no name or the name
  // no destination id.
  std::optional<uid_t> MapUid(uid_t uid) const;
  std::optional<gid_t> MapGid(gid_t gid) const;

 private:
  std::unordered_map<uint32_t, std::string> src_user_, src_group_;
  std::unordered_map<std::string, uint32_t> dst_user_, dst_group_;
};

// Copies every persistent entry of `manifest` (rules above). Per-entry problems are warnings;
// the result is OK unless the manifest itself cannot be walked.
absl::Status CopyPersistents(const image::Manifest& manifest, const fs::RootedDir& active,
                             fs::RootedDir& standby);

}  // namespace ota::update
