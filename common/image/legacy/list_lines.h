// The list-file line formats (byte-exact with tier4's ota-metadata generator):
//   dirs.txt         MODE,UID,GID,'PATH'
//   symlinks.txt     MODE,UID,GID,'LINK','TARGET'
//   regulars.txt     MODE,UID,GID,NLINK,SHA256,'PATH'[,SIZE[,INODE[,COMPRESS_ALG]]]
//   persistents.txt  'PATH'
// A ' inside a quoted field is written '\''. MODE is octal, up to 4 digits (07777).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/image/manifest.h"

namespace ota::image {

// "'\''" → "'".
std::string UnescapeQuoted(std::string_view s);
// "'" → "'\''" (no surrounding quotes added).
std::string EscapeQuoted(std::string_view s);

// Checks a path from a list file: absolute, no "." or ".." component, no NUL, not empty after
// "/". kInvalidArgument naming the path otherwise.
absl::Status ValidateImagePath(std::string_view path);

// Each parser appends one entry to `manifest` (strings interned there) or returns
// kInvalidArgument "<what>: <why>" (the caller adds file name and line number).
// Lines may end with "\r" or "\n" (stripped). Paths are validated with ValidateImagePath.
absl::Status ParseDirLine(std::string_view line, Manifest& manifest);
absl::Status ParseSymlinkLine(std::string_view line, Manifest& manifest);
absl::Status ParseRegularLine(std::string_view line, Manifest& manifest);
absl::Status ParsePersistentLine(std::string_view line, Manifest& manifest);

enum class ListKind { kDirs, kSymlinks, kRegulars, kPersistents };

// Parses a whole list file (lines separated by "\n", no trailing newline needed; blank lines
// skipped). Errors name `file_name` and the 1-based line number.
absl::Status ParseListFile(ListKind kind, std::string_view content, std::string_view file_name,
                           Manifest& manifest);

// Generator side, exactly as tier4's ota-metadata writes them.
std::string FormatMode(uint32_t mode);  // last 4 octal digits, e.g. "0644", "4755"
std::string FormatDirLine(uint32_t mode, uint32_t uid, uint32_t gid, std::string_view path);
std::string FormatSymlinkLine(uint32_t mode, uint32_t uid, uint32_t gid, std::string_view path,
                              std::string_view target);
// inode empty when nlink == 1; compress_alg "" or "zst". Always writes all nine fields.
std::string FormatRegularLine(uint32_t mode, uint32_t uid, uint32_t gid, uint32_t nlink,
                              std::string_view sha256_hex, std::string_view path, uint64_t size,
                              std::string_view inode, std::string_view compress_alg);
std::string FormatPersistentLine(std::string_view path);

}  // namespace ota::image
