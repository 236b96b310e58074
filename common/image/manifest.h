// The format-neutral image model: what the new rootfs must contain, whichever image format
// (legacy list files or OTA image v1 tables) described it. Kept compact because real images list
// ~300k entries: all strings (paths, link targets, inlined contents, xattrs) live in one arena and
// entries refer to them by offset.
//
// Modes: the low 12 bits (07777: permissions, setuid/setgid/sticky) are what the writer applies.
// A v1 image also carries the file-type bits (S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR); the reader has
// checked them against the entry's kind, so the writer never needs them. Legacy modes have none.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
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

// How a file's blob is stored in a legacy image (data/ or data.zst/); the fetcher decodes by it.
using Compression = content::Compression;

// Extended attributes of an entry, encoded in the arena as repeated
// [u32 name size][name][u32 value size][value] (native byte order; the arena never leaves the
// process). An empty StrRef means none. Decode with ForEachXattr.
using XattrsRef = StrRef;

struct DirEntry {
  uint32_t mode = 0;  // 07777 bits, plus S_IFDIR from v1 images
  uint32_t uid = 0;
  uint32_t gid = 0;
  StrRef path;  // absolute
  XattrsRef xattrs;
};

struct SymlinkEntry {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  StrRef path;    // absolute: where the link lives
  StrRef target;  // raw readlink() value, relative or absolute; never followed when writing
  XattrsRef xattrs;
};

// A special file: only overlayfs whiteouts exist (character device 0:0), as the v1 format
// defines them.
struct SpecialEntry {
  uint32_t mode = 0;  // S_IFCHR | 07777 bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  StrRef path;
  XattrsRef xattrs;
};

struct RegularEntry {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;             // > 1: member of the hard-link group keyed by `inode`
  crypto::Sha256Digest sha256{};  // of the uncompressed content
  uint64_t size = 0;              // valid when has_size
  uint64_t inode = 0;             // groups hard links; valid when has_inode
  StrRef path;                    // absolute
  XattrsRef xattrs;
  // The whole content, carried by the image's metadata itself (v1: files of 1..64 bytes); such a
  // file never goes through the delta or a download. Valid when has_inline.
  StrRef inline_content;
  bool has_size = false;
  bool has_inode = false;
  bool has_inline = false;
  Compression compression = Compression::kNone;  // legacy: data.zst/<sha256>.zst
};

class Manifest {
 public:
  std::vector<DirEntry> dirs;
  std::vector<SymlinkEntry> symlinks;
  std::vector<SpecialEntry> specials;
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

  // Appends one (name, value) pair to the xattrs being built: call BeginXattrs(), then
  // AddXattr() for each, then EndXattrs() for the ref to store.
  uint32_t BeginXattrs() const { return static_cast<uint32_t>(arena_.size()); }
  void AddXattr(std::string_view name, std::string_view value) {
    AppendSized(name);
    AppendSized(value);
  }
  XattrsRef EndXattrs(uint32_t begin) const {
    return XattrsRef{begin, static_cast<uint32_t>(arena_.size() - begin)};
  }

  // Calls fn(name, value) for each xattr of `ref`, in the order they were added.
  template <typename Fn>
  void ForEachXattr(XattrsRef ref, Fn&& fn) const {
    std::string_view rest = Str(ref);
    while (rest.size() >= sizeof(uint32_t)) {
      std::string_view name = TakeSized(rest);
      std::string_view value = TakeSized(rest);
      fn(name, value);
    }
  }

 private:
  void AppendSized(std::string_view s) {
    const uint32_t size = static_cast<uint32_t>(s.size());
    arena_.append(reinterpret_cast<const char*>(&size), sizeof(size));
    arena_.append(s);
  }
  static std::string_view TakeSized(std::string_view& rest) {
    uint32_t size = 0;
    if (rest.size() < sizeof(size)) return {};
    std::memcpy(&size, rest.data(), sizeof(size));
    rest.remove_prefix(sizeof(size));
    std::string_view s = rest.substr(0, size);
    rest.remove_prefix(s.size());
    return s;
  }

  std::string arena_;
};

}  // namespace ota::image
