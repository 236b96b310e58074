// The JSON (and YAML) metadata documents of an OTA image v1 (reference/ota-image-v1.md §3–§9):
// descriptors, index.json, the index.jwt claims and header, the image manifest, the image config
// and sys_config. Parsers only: they check shapes, media types and digests' syntax; the reader
// checks every document's size and sha256 against the descriptor that pins it before parsing.
//
// Strictness: integers must be JSON integers (tier4 writes nothing else); unknown keys are
// ignored; a media type in the wrong place rejects the document; digests must be
// "sha256:<64 lowercase hex>" (the blob store names files by lowercase hex).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"

namespace ota::image::v1 {

inline constexpr std::string_view kMediaIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kArtifactImage =
    "application/vnd.tier4.ota.file-based-ota-image.v1";
inline constexpr std::string_view kMediaImageConfig =
    "application/vnd.tier4.ota.file-based-ota-image.config.v1+json";
inline constexpr std::string_view kMediaSysConfig = "application/vnd.tier4.ota.sys-config.v1+yaml";
inline constexpr std::string_view kMediaSysConfigOld =
    "application/vnd.tier4.ota.file-based-ota-image.config.v1+yaml";
inline constexpr std::string_view kMediaFileTable =
    "application/vnd.tier4.ota.file-based-ota-image.file_table.v1.sqlite3";
inline constexpr std::string_view kMediaFileTableZstd =
    "application/vnd.tier4.ota.file-based-ota-image.file_table.v1.sqlite3+zstd";
inline constexpr std::string_view kMediaResourceTable =
    "application/vnd.tier4.ota.file-based-ota-image.resource_table.v1.sqlite3";
inline constexpr std::string_view kMediaResourceTableZstd =
    "application/vnd.tier4.ota.file-based-ota-image.resource_table.v1.sqlite3+zstd";
inline constexpr std::string_view kMediaOtaclientPackage =
    "application/vnd.tier4.otaclient.release-package.manifest.v1+json";
inline constexpr std::string_view kArtifactOtaclientPackage =
    "application/vnd.tier4.otaclient.release-package.v1";

inline constexpr std::string_view kAnnotationEcu = "vnd.tier4.pilot-auto.platform.ecu";
inline constexpr std::string_view kAnnotationReleaseKey = "vnd.tier4.ota.release-key";
inline constexpr std::string_view kAnnotationArchitecture =
    "vnd.tier4.pilot-auto.platform.ecu.architecture";
inline constexpr std::string_view kAnnotationBuilderVersion =
    "vnd.tier4.ota.ota-image-builder.version";

// Whether a table blob must be zstd-decompressed (the "+zstd" suffix is the only signal).
bool IsZstdTable(std::string_view media_type);

struct Descriptor {
  std::string media_type;
  crypto::Sha256Digest digest{};
  uint64_t size = 0;
  std::string artifact_type;
  // String annotations as given; integer ones in decimal.
  std::map<std::string, std::string> annotations;

  std::string hex() const { return crypto::ToHex(digest); }
};

// "sha256:<64 lowercase hex>" → digest.
absl::StatusOr<crypto::Sha256Digest> ParseDigest(std::string_view text);
std::string FormatDigest(const crypto::Sha256Digest& digest);

struct ImagePayload {
  std::string ecu_id;
  std::string release_key;  // "dev" when absent
  Descriptor manifest;
};

struct ImageIndex {
  std::vector<ImagePayload> images;
  std::optional<Descriptor> resource_table;  // the first one
  // The otaclient release package manifest (release_package.h), the first one.
  std::optional<Descriptor> otaclient_package;
  std::string builder_version;
};

// index.json. Errors (kInvalidArgument) name the key and the entry.
absl::StatusOr<ImageIndex> ParseImageIndex(std::string_view json);

// The first payload for (ecu_id, release_key); kNotFound listing what the index offers.
absl::StatusOr<const ImagePayload*> SelectPayload(const ImageIndex& index, std::string_view ecu_id,
                                                  std::string_view release_key);

struct JwsHeader {
  std::string alg;
  std::optional<std::string> typ;
  std::vector<std::string> x5c;  // entries as written (base64 DER or PEM)
};
struct JwsClaims {
  std::optional<int64_t> iat, exp, nbf;
  Descriptor image_index;  // media type not checked on input (as tier4)
};

// index.jwt split and decoded (not verified): base64url segments without padding (padding is
// tolerated), header {"alg":"ES256","typ":"JWT","x5c":[...]}: alg must be ES256; typ, when
// present, must be "JWT" (case-insensitive), a missing typ is accepted (tier4's tools write it
// but never check it); "crit" is refused (no extension is understood).
struct IndexJwt {
  JwsHeader header;
  JwsClaims claims;
  std::string signing_input;  // "B64(header).B64(claims)" as written
  std::string signature;      // decoded bytes (ES256: 64-byte r||s)
};
absl::StatusOr<JwsHeader> ParseJwsHeader(std::string_view json);
absl::StatusOr<JwsClaims> ParseJwsClaims(std::string_view json);
absl::StatusOr<IndexJwt> ParseIndexJwt(std::string_view text);

// The time claims at `now`: iat in the future → kPermissionDenied (no leeway, as the deployed
// client: a clock behind the signing host must be fixed, not tolerated), exp reached or nbf not
// yet → kPermissionDenied.
absl::Status CheckJwsTimes(const JwsClaims& claims, int64_t now);

struct ImageManifest {
  Descriptor config;
  Descriptor file_table;  // layers[0]
  std::string ecu_id;
  std::string architecture;
};
absl::StatusOr<ImageManifest> ParseImageManifest(std::string_view json);

struct ImageConfig {
  std::string architecture;
  std::optional<Descriptor> sys_config;
  Descriptor file_table;
  std::optional<uint64_t> rootfs_size;  // label vnd.tier4.image.rootfs.size
  std::optional<uint64_t> regular_files_count;
};
absl::StatusOr<ImageConfig> ParseImageConfig(std::string_view json);

struct SysConfig {
  std::string hostname;
  std::vector<std::string> persist_files;  // absolute paths
};
absl::StatusOr<SysConfig> ParseSysConfig(std::string_view yaml);

}  // namespace ota::image::v1
