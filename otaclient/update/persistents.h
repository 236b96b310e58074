// Persistent files: paths the image lists as persistent are carried over from the active slot to
// the standby after the image is written, the way the existing client does it:
//   - missing on the active slot → skipped; a blank path → skipped;
//   - every ancestor directory is recreated on the standby if missing (an existing standby
//     directory is kept as it is: owner, mode and contents — a merge, not a replace);
//   - a directory is copied recursively (dot-files included), a file with its content, mode and
//     mtime, a symlink as a symlink (dangling ones too); an existing standby file, symlink or
//     directory in the way of a file/symlink is replaced;
//   - owners are remapped by name: uid → user name through the active slot's /etc/passwd, then
//     name → uid through the standby's (same for gid via /etc/group); if either lookup fails
//     both original ids are kept;
//   - a fifo, socket or device node is an error (kInternal: UNRECOVERABLE).
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
  // The destination ids, or nullopt when the uid or the gid has no counterpart.
  std::optional<std::pair<uid_t, gid_t>> Map(uid_t uid, gid_t gid) const;

 private:
  std::unordered_map<uint32_t, std::string> src_user_, src_group_;
  std::unordered_map<std::string, uint32_t> dst_user_, dst_group_;
};

absl::Status CopyPersistents(const image::Manifest& manifest, const fs::RootedDir& active,
                             fs::RootedDir& standby);

}  // namespace ota::update
