// The v1 file table (reference/ota-image-v1.md §10): SQLite tables ft_dir, ft_non_regular,
// ft_regular, ft_inode, ft_resource, read in one pass per kind into the format-neutral Manifest.
//
// Row rules (each a kInvalidArgument naming the path):
//  - paths: absolute, no "." / ".." components, no NUL ("/" only as a directory: the root);
//  - uid/gid: 0..2^32-2; mode: the whole st_mode; its type bits, when present, must match the
//    table (S_IFDIR in ft_dir, S_IFREG in ft_regular); in ft_non_regular they decide the kind:
//    S_IFLNK = symlink (meta: the non-empty target), S_IFCHR = overlayfs whiteout (meta NULL or
//    empty), anything else is refused (tier4's client silently skips it);
//  - xattrs: NULL or a msgpack map str → bin (msgpack.h);
//  - regular contents: size 0 → an empty file (digest must be sha256 of nothing); contents non-
//    empty → inlined (length = size, sha256 = digest); NULL with size > 0 → a resource to
//    obtain; X'' with size > 0 is refused (tier4 would neither inline nor download it);
//  - links_count > 1: hard-link group keyed by inode_id.
// A regular file, dir or non-regular whose inode_id or resource_id has no row is refused (tier4's
// inner joins silently drop such files).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "common/image/manifest.h"

namespace ota::image::v1 {

// One joined row, as the queries return it (columns that a table lacks stay unset).
struct FileTableRow {
  std::string_view path;
  int64_t uid = 0, gid = 0, mode = 0;
  std::optional<int64_t> links_count;
  std::optional<std::string_view> xattrs;
  std::optional<std::string_view> meta;  // ft_non_regular
  std::string_view digest;               // ft_regular: raw 32 bytes
  int64_t size = 0;
  std::optional<std::string_view> contents;
  int64_t inode_id = 0;
};

absl::Status AddDirRow(const FileTableRow& row, Manifest& manifest);
absl::Status AddNonRegularRow(const FileTableRow& row, Manifest& manifest);
absl::Status AddRegularRow(const FileTableRow& row, Manifest& manifest);

// Reads the (decompressed) file table at `path` into `manifest`.
absl::Status LoadFileTable(const std::filesystem::path& path, Manifest& manifest);

}  // namespace ota::image::v1
