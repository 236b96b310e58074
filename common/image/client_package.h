// The otaclient release manifest of an image (`<rootfs>/opt/ota/otaclient_release/manifest.json`,
// the Python client's format, ota-image-v1.md §15) and the choice of the package this client
// can run (ClientUpdate, otaclient/update/client_update.h).
//
//   {"schema_version":"1","date":"<ISO 8601>","packages":[{"filename","version","type",
//    "architecture","size","checksum":"<alg>:<hex>","metadata":{...}?}, ...]}
//
// Parsing is strict about what could hurt: a filename is one plain path component (no '/', no
// "." or "..", no control characters), a version is printable ASCII without '/' (it names the
// staged file), size is a non-negative integer, checksum is "<alg>:<hex>". Unknown keys are
// ignored (the Python client's manifests carry more over time). At most kMaxPackages packages.
//
// Package types: the Python client's "squashfs" and "patch" (never runnable here) and ours,
// kCppPackageType, whose file is the otaclient executable itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"

namespace ota::image {

inline constexpr std::string_view kCppPackageType = "otaclient-cpp";
inline constexpr std::string_view kClientReleaseDir = "/opt/ota/otaclient_release";
inline constexpr size_t kMaxClientManifestBytes = size_t{1} << 20;
inline constexpr size_t kMaxPackages = 256;

struct ClientPackage {
  std::string filename;
  std::string version;
  std::string type;
  std::string architecture;  // as written ("x86_64", "arm64", ...)
  uint64_t size = 0;
  std::string checksum_algorithm;  // "sha256" for a usable package
  std::string checksum_hex;        // lowercase
};

struct ClientReleaseManifest {
  std::string schema_version;
  std::string date;
  std::vector<ClientPackage> packages;
};

// kInvalidArgument naming the package index and field for anything malformed.
absl::StatusOr<ClientReleaseManifest> ParseClientReleaseManifest(std::string_view json);

// The manifest's architecture name for uname's machine: x86_64/amd64 → "x86_64",
// aarch64/arm64 → "arm64"; "" for anything else.
std::string_view PackageArchitectureOf(std::string_view machine);

// The package this client runs on `machine` (uname -m): the first of type kCppPackageType for
// its architecture, with a sha256 checksum. kFailedPrecondition with a reason that names what
// the image has instead: no packages, only the Python client's packages, none for this CPU,
// an unknown CPU, a checksum that is not sha256.
absl::StatusOr<ClientPackage> SelectClientPackage(const ClientReleaseManifest& manifest,
                                                  std::string_view machine);

// The package's checksum as a digest (it was checked by Select to be sha256 with 64 hex digits).
crypto::Sha256Digest PackageDigest(const ClientPackage& package);

// The manifest.json `ota-image add-otaclient-package` writes for one executable.
std::string ClientReleaseManifestJson(const ClientPackage& package, std::string_view date);

// `existing` (a manifest.json that must parse) with `package` added: every other package is
// kept as written (unknown keys too), one of the same type for the same architecture is
// replaced.
absl::StatusOr<std::string> AddToClientReleaseManifest(std::string_view existing,
                                                       const ClientPackage& package);

}  // namespace ota::image
