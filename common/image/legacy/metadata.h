// metadata.jwt: B64URL(header).B64URL(payload).B64URL(signature), payload a JSON array of
// one-key objects (see PRODUCT.md "The OTA image" and reference/upstream-2022.md §2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"

namespace ota::image {

struct SignedFileRef {
  std::string file;  // name relative to the image base URL, e.g. "regulars.txt"
  crypto::Sha256Digest sha256{};
};

struct Metadata {
  int version = 1;
  SignedFileRef directory;                                 // dirs.txt
  SignedFileRef symboliclink;                              // symlinks.txt
  SignedFileRef regular;                                   // regulars.txt
  SignedFileRef persistent;                                // persistents.txt
  SignedFileRef certificate;                               // sign.pem
  std::string rootfs_directory;                            // e.g. "data"
  std::optional<std::string> compressed_rootfs_directory;  // e.g. "data.zst"
  std::optional<uint64_t> total_regular_size;

  std::string signed_part;  // "B64(header).B64(payload)" exactly as in the file
  std::string signature;    // decoded signature bytes (DER or raw r||s)
};

// Parses (does not verify) a metadata.jwt. base64url with or without padding. Errors are
// kInvalidArgument naming the segment or key that is wrong (missing version/list/certificate,
// bad hash hex, non-numeric total_regular_size, unsafe file names with '/' '..' or NUL).
absl::StatusOr<Metadata> ParseMetadataJwt(std::string_view jwt);

// Everything a generator needs to produce a metadata.jwt.
struct MetadataPayload {
  SignedFileRef directory, symboliclink, regular, persistent, certificate;
  std::string rootfs_directory = "data";
  std::optional<std::string> compressed_rootfs_directory;
  std::optional<uint64_t> total_regular_size;
};

// The payload JSON exactly as tier4's generator writes it (Python json.dumps separators, its key
// order: version, directory, symboliclink, regular, persistent, rootfs_directory,
// [compressed_rootfs_directory], certificate, [total_regular_size]).
std::string SerializePayloadJson(const MetadataPayload& payload);

// header `{"alg": "ES256"}`, padded base64url segments, DER signature over the first two.
absl::StatusOr<std::string> SignMetadataJwt(const MetadataPayload& payload,
                                            std::string_view key_pem);

std::string Base64UrlEncode(std::string_view data, bool pad = true);
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace ota::image
