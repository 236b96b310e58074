// The OTA image v1 reader (reference/ota-image-v1.md), behind image_reader.h:
//   index.jwt → x5c chain against the self-signed roots of the certs dir (refused when it does
//   not verify, unlike tier4's client) → ES256 signature → time claims (a future iat is refused,
//   no leeway) → index.json by its pinned size and sha256 → the payload for (ecu_id,
//   release_key) → image manifest, image config, sys_config, each by its descriptor's size and
//   sha256 → file table and resource table downloaded by digest, zstd tables decompressed to a
//   temp dir on disk (streamed), the file table read in one pass into the Manifest.
// Nothing is written outside that temp dir; it lives as long as the returned Image's source.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "common/image/image_reader.h"
#include "common/image/v1/release_package.h"

namespace ota::image::v1 {

absl::StatusOr<Image> OpenV1Image(http::Fetcher& fetcher, std::string_view base_url,
                                  const ReaderOptions& options);

// <base>/blobs/sha256/<hex>
std::string BlobUrl(std::string_view base_url, std::string_view hex);

// A small metadata blob (at most 16 MiB) fetched into memory by its digest (cacheable through
// otaproxy) and checked against `sha256` and `size` before anyone parses it: kDataLoss on a
// mismatch, naming `what` and the URL.
absl::StatusOr<std::string> FetchPinnedBlob(http::Fetcher& fetcher, std::string_view base_url,
                                            const crypto::Sha256Digest& sha256, uint64_t size,
                                            std::string_view what);

// The otaclient release-package artifact an image's index.json pins (Image::otaclient_package):
// the package manifest by its digest and size, then its config, the release's manifest.json, by
// the manifest's descriptor; both parsed. The layers are not fetched.
struct LoadedReleasePackage {
  ReleasePackageManifest manifest;
  ClientReleaseManifest release;
};
absl::StatusOr<LoadedReleasePackage> LoadReleasePackage(http::Fetcher& fetcher,
                                                        std::string_view base_url,
                                                        const Image::PinnedBlob& pinned);

}  // namespace ota::image::v1
