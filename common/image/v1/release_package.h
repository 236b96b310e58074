// The otaclient release package of an OTA image v1 (reference/ota-image-v1.md §15): the
// index.json entry (mediaType kMediaOtaclientPackage, artifactType kArtifactOtaclientPackage)
// pins a package manifest, an OCI image manifest whose
//   config   = the release's manifest.json (common/image/client_package.h) stored byte for byte,
//   layers[] = one blob per package, annotations version, type, architecture, size, checksum,
//   annotations.date.
//
// Parsing is strict: the document's schemaVersion/mediaType, the config's media type, each
// layer's media type (tier4's squashfs or ours) and annotations (the type must be the one of the
// media type, the architecture x86_64 or arm64, size and checksum those of the descriptor), no
// digest and no (type, architecture, version) twice, at most kMaxPackages layers. The config is
// checked against the layers only for the package chosen (FindPackageLayer): tier4's squashfs
// annotations carry versions the config writes differently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/image/client_package.h"
#include "common/image/v1/schema.h"

namespace ota::image::v1 {

// tier4's otaclient application image (a squashfs the Python client mounts).
inline constexpr std::string_view kMediaOtaclientSquashfs =
    "application/vnd.tier4.otaclient.release-package.v1.squashfs";
// Our package: the otaclient executable itself (ELF), type kCppPackageType. A media type of its
// own because it is not a squashfs: nothing that mounts squashfs layers may take it for one.
// The index entry keeps §15's media and artifact types exactly, so tier4's index parser accepts
// the image (it does not open the package manifest). Caveat: tier4's package-manifest model
// (ota_image_libs v1/otaclient_package/schema.py) types every layer as the squashfs media type
// and rejects a manifest with any other; its client never parses this manifest today (its v1
// selection code has no caller), but a tier4 tool or future client that does would refuse an
// artifact holding our layer (squashfs layers beside it included).
inline constexpr std::string_view kMediaOtaclientCpp =
    "application/vnd.tier4.otaclient.release-package.v1.otaclient-cpp";

struct ReleasePackageLayer {
  Descriptor blob;  // digest and size of the stored package file
  std::string version;
  std::string type;          // "squashfs" or kCppPackageType (agrees with blob.media_type)
  std::string architecture;  // "x86_64" or "arm64"
};

struct ReleasePackageManifest {
  Descriptor config;  // the release's manifest.json
  std::vector<ReleasePackageLayer> layers;
  std::string date;
};

// kInvalidArgument naming the field (and layer index) for anything malformed.
absl::StatusOr<ReleasePackageManifest> ParseReleasePackageManifest(std::string_view json);

// The layer that carries `package` (an entry of the config's manifest.json, as chosen by
// SelectClientPackage): the one whose digest is the entry's checksum; its annotations must agree
// with the entry (version, type, architecture, size, checksum) and its media type must be the
// one of the entry's type. kInvalidArgument saying what disagrees, kNotFound when no layer has
// that digest.
absl::StatusOr<const ReleasePackageLayer*> FindPackageLayer(const ReleasePackageManifest& manifest,
                                                            const ClientPackage& package);

// The media type a package of `type` is stored with; "" for a type that is not stored (patch).
std::string_view LayerMediaTypeOf(std::string_view type);

}  // namespace ota::image::v1
