// The firmware package an OTA image may carry for a Jetson (both CBoot's BUP and UEFI's capsule
// updaters read it), in the image at /opt/ota/firmware/ and read from the freshly written standby:
//
//   firmware_update.yaml     present only when the image wants its firmware applied:
//                              format_version: 1
//                              firmware_list: [bl_only_payload, BOOTAA64.efi]
//   firmware_manifest.yaml   what the package holds:
//                              format_version: 1
//                              hardware_type: nvidia_jetson
//                              hardware_series: ORIN            hardware_model: ORIN_AGX
//                              firmware_spec:
//                                bsp_version: r35.4.1
//                                firmware_compat: {board_id: "3701", board_sku: "0005",
//                                                  board_rev: "A.0", fab_id: "000",
//                                                  board_conf: "cti-orin-agx-agx201-00"}
//                              firmware_packages:
//                                - payload_name: bl_only_payload
//                                  file_location: file:///opt/ota/firmware/bl_only_payload.Cap
//                                  type: UEFI-CAPSULE        (or UEFI-BOOT-APP, BUP)
//                                  digest: sha256:<hex>
//
// Selection: the packages whose payload_name is in firmware_list. Compatibility: every
// firmware_compat field must occur somewhere in the device's TNSPEC (upstream's substring test).
// Payload files are opened inside the standby (RootedDir: a symlink in the image never leads
// out of it) and verified against their digest before anything is written anywhere.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "common/fs/rooted.h"
#include "otaclient/boot/jetson_bsp.h"

namespace ota::boot {

inline constexpr std::string_view kFirmwareDir = "opt/ota/firmware";
inline constexpr std::string_view kFirmwareUpdateFile = "opt/ota/firmware/firmware_update.yaml";
inline constexpr std::string_view kFirmwareManifestFile = "opt/ota/firmware/firmware_manifest.yaml";

enum class PayloadType { kUefiCapsule, kUefiBootApp, kBup };
std::string_view PayloadTypeName(PayloadType type);  // "UEFI-CAPSULE", ...

struct FirmwarePackage {
  std::string payload_name;
  std::string file_location;  // "file:///abs/path" or "<alg>:<hex>" (a blob: unsupported)
  PayloadType type = PayloadType::kBup;
  std::string digest_algorithm;  // "sha256" (any algorithm OpenSSL knows)
  std::string digest_hex;        // lower case
};

struct FirmwareCompat {
  std::string board_id, board_sku, board_rev, fab_id, board_conf;
};

struct FirmwareManifest {
  std::string hardware_series;
  std::string hardware_model;
  BspVersion bsp_version;
  FirmwareCompat compat;
  std::vector<FirmwarePackage> packages;
};

struct FirmwareUpdateRequest {
  std::vector<std::string> firmware_list;
};

// Strict YAML (file:line in every error, kInvalidArgument); unknown keys are ignored like
// upstream's models do.
absl::StatusOr<FirmwareUpdateRequest> ParseFirmwareUpdateRequest(std::string_view text,
                                                                 std::string_view file_name);
absl::StatusOr<FirmwareManifest> ParseFirmwareManifest(std::string_view text,
                                                       std::string_view file_name);

// Every compat field is a substring of `tnspec` (an empty field matches, as in Python).
bool FirmwareCompatible(const FirmwareCompat& compat, std::string_view tnspec);

// A package of the image: what was requested, and the manifest.
struct FirmwarePackageSet {
  FirmwareUpdateRequest request;
  FirmwareManifest manifest;
  // The requested packages of `type`, in manifest order.
  std::vector<const FirmwarePackage*> Requested(PayloadType type) const;
};

// Reads both files from `image` (the standby's root). nullopt when either is missing (the image
// wants no firmware update); a file that exists but does not parse is logged and also nullopt,
// like upstream ("no firmware update", never a failed OTA for a malformed manifest).
absl::StatusOr<std::optional<FirmwarePackageSet>> LoadFirmwarePackage(const fs::RootedDir& image);

// The payload's path inside the image ("opt/ota/firmware/x.Cap" for file:///opt/ota/firmware/
// x.Cap). kInvalidArgument for another scheme, kUnimplemented for a blob reference.
absl::StatusOr<std::string> PayloadPathInImage(const FirmwarePackage& package);

// Copies the payload out of `image` to `dest` (a path on the host: an ESP, a private temp dir),
// hashing while copying: `dest` appears (temp name beside it, fsync, rename, directory fsync)
// only when the digest matches. kDataLoss naming both digests when not, kNotFound when the
// payload is missing from the image. Whatever is passed on to a tool is this verified copy,
// never a path into the image (a symlink there would resolve against the host).
absl::Status CopyVerifiedPayload(const fs::RootedDir& image, const FirmwarePackage& package,
                                 const std::filesystem::path& dest);

// The digest of everything `fd` holds from its current offset, hex, with OpenSSL's algorithm
// `algorithm` (Python's hashlib names too: "sha3_256"). kInvalidArgument for an unknown one.
absl::StatusOr<std::string> FileDigestHex(int fd, std::string_view algorithm);

}  // namespace ota::boot
