// Builds an OTA image v1 directory from a rootfs tree, shaped like tier4's ota-image-builder's
// output (reference/ota-image-v1.md §1–§12, §19 "Builder"): oci-layout, index.json, index.jwt
// (ES256 raw r||s, x5c chain), blobs/sha256/ with one image manifest per ECU id sharing one file
// table, image config with every label, sys_config YAML, the zstd file table and resource table,
// and the resource blobs after the bundle → compress → slice filters. The knobs default to
// tier4's thresholds; tests shrink them to force every filter.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/image/manifest.h"

namespace ota::image::v1 {

struct V1BuildOptions {
  std::filesystem::path rootfs;
  std::filesystem::path out_dir;   // created; must not exist or be empty
  std::filesystem::path key_pem;   // EC P-256 private key of the signing certificate
  std::filesystem::path cert_pem;  // signing certificate, then intermediates (roots are dropped)
  std::vector<std::string> ecu_ids = {"autoware"};
  std::string release_key = "dev";
  std::string architecture = "x86_64";
  std::string hostname = "autoware";
  std::vector<std::string> persist_files;  // sys_config persist_files (absolute paths)
  std::optional<int64_t> iat;              // default: now
  // Filters (tier4's defaults).
  uint64_t inline_max = 64;  // contents of 1..inline_max bytes are inlined
  bool bundle = true;
  uint64_t bundle_member_max = 8192;     // members: inline_max < size <= this
  uint64_t bundle_target = 32ull << 20;  // a bundle closes once its size exceeds this
  uint64_t bundle_min_members = 128;     // a last, short bundle needs this many members
  bool compress = true;
  uint64_t compress_min = 1024;  // compress resources larger than this ...
  int zstd_level = 9;            // ... when size / compressed >= 1.25
  bool slice = true;
  uint64_t slice_threshold = 64ull << 20;  // slice resources larger than this ...
  uint64_t slice_size = 48ull << 20;       // ... into pieces of this size
  bool compress_tables = true;             // "+zstd" file and resource tables
  // An otaclient release directory (manifest.json and the files it lists, as
  // `ota-image add-otaclient-package` writes it) stored as the image's otaclient release-package
  // artifact (release_package.h): each squashfs and otaclient-cpp package becomes a layer, after
  // its size and sha256 are checked against manifest.json; patch packages are skipped (as
  // tier4's builder does). Empty: no artifact.
  std::filesystem::path otaclient_release;
};

struct V1BuildSummary {
  uint64_t dirs = 0, regulars = 0, non_regulars = 0, inlined = 0;
  uint64_t resources = 0, bundles = 0, bundled = 0, compressed = 0, sliced = 0, slices = 0;
  uint64_t blobs = 0, blobs_size = 0;
};

absl::StatusOr<V1BuildSummary> BuildV1Image(const V1BuildOptions& options);

// The same image from an already loaded (and verified) image of any format instead of a rootfs
// walk: `contents` holds every non-empty content as <sha256hex> (what ContentSource::Fetch
// delivers). options.rootfs is not used. What `ota-image convert` does.
absl::StatusOr<V1BuildSummary> BuildV1ImageFromManifest(const V1BuildOptions& options,
                                                        const Manifest& manifest,
                                                        const std::filesystem::path& contents);

}  // namespace ota::image::v1
