// The OTA image model: what the signed list files say the new rootfs must contain.
// Kept compact because real images list ~300k entries: all path strings live in one arena and
// entries refer to them by offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/content/compression.h"
#include "common/crypto/sha256.h"

namespace ota::image {

// A string stored in Manifest's arena.
struct StrRef {
  uint32_t offset = 0;
  uint32_t size = 0;
};

// How a file's blob is stored in the image (data/ or data.zst/); the fetcher decodes by it.
using Compression = content::Compression;

struct DirEntry {
  uint32_t mode = 0;  // includes setuid/setgid/sticky bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  StrRef path;  // absolute
};

struct SymlinkEntry {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  StrRef path;    // absolute: where the link lives
  StrRef target;  // raw readlink() value, relative or absolute; never followed when writing
};

struct RegularEntry {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;
  crypto::Sha256Digest sha256{};  // of the uncompressed content
  uint64_t size = 0;              // valid when has_size
  uint64_t inode = 0;             // build-host inode, groups hard links; valid when has_inode
  StrRef path;                    // absolute
  bool has_size = false;
  bool has_inode = false;
  Compression compression = Compression::kNone;
};

class Manifest {
 public:
  std::vector<DirEntry> dirs;
  std::vector<SymlinkEntry> symlinks;
  std::vector<RegularEntry> regulars;
  std::vector<StrRef> persistents;  // absolute paths to carry over from the active slot

  StrRef Intern(std::string_view s) {
    StrRef ref{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    arena_.append(s);
    return ref;
  }
  std::string_view Str(StrRef ref) const {
    return std::string_view(arena_).substr(ref.offset, ref.size);
  }
  size_t arena_bytes() const { return arena_.size(); }
  void Reserve(size_t arena_bytes) { arena_.reserve(arena_bytes); }

 private:
  std::string arena_;
};

}  // namespace ota::image
