// Builds an OTA image directory from a rootfs tree, in tier4's format (what `ota-image build`
// does): list files, data/ copy of regular files, optional data.zst/<sha256>.zst blobs,
// the certificate and a signed metadata.jwt.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::image {

struct BuildOptions {
  std::filesystem::path rootfs;
  std::filesystem::path out_dir;
  std::filesystem::path key_pem;   // EC P-256 private key
  std::filesystem::path cert_pem;  // its certificate, copied into the image as sign.pem
  std::optional<std::filesystem::path> persistents_file;  // one absolute path per line
  bool compress = false;  // files >= 16 KiB compressed with zstd when ratio >= 1.25
};

struct BuildSummary {
  uint64_t dirs = 0, symlinks = 0, regulars = 0, persistents = 0;
  uint64_t total_regular_size = 0;
  uint64_t compressed_files = 0;
};

absl::StatusOr<BuildSummary> BuildImage(const BuildOptions& options);

// A persistents file for `--persistents`: one absolute path per line, raw ("/etc/hosts") or in
// list-file form ("'/etc/hosts'"); blank lines skipped. Errors name file and line.
absl::StatusOr<std::vector<std::string>> ReadPersistentsFile(const std::filesystem::path& file);

}  // namespace ota::image
