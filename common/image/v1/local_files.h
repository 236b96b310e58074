// Local steps of reading a v1 image: files made from other files (a table decompressed, a bundle
// member cut out, slices joined, a compressed resource decoded), each written under a temp name
// in a directory fd and renamed into place only once its size and sha256 are verified.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/content/verifier.h"

namespace ota::image::v1 {

using ChunkSink = std::function<absl::Status(std::string_view chunk)>;

// Feeds `length` bytes of `fd` from `offset` (to the end when nullopt) to `sink`; a file shorter
// than that is kDataLoss naming `what`.
absl::Status StreamFileRange(int fd, uint64_t offset, std::optional<uint64_t> length,
                             const ChunkSink& sink, std::string_view what);

// Creates `name` in `dir_fd` from the bytes `produce` feeds (zstd-decoded when `compression` is
// kZstd), checked against `expected`; nothing is left under `name` unless everything matched.
// The file is fsync'ed before the rename when `durable`.
absl::Status WriteVerified(int dir_fd, const std::string& name, const std::string& what,
                           content::Compression compression, const content::Expected& expected,
                           const std::function<absl::Status(const ChunkSink&)>& produce,
                           bool durable);

}  // namespace ota::image::v1
