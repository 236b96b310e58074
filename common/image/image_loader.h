// Loads an OTA image's metadata from its base URL: metadata.jwt → certificate → chain check
// against the local CA groups → signature → each list file fetched and checked against its
// signed sha256 → parsed into a Manifest. Touches no slot: every failure happens before.
#pragma once

#include <ctime>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/signing.h"
#include "common/http/fetcher.h"
#include "common/image/manifest.h"
#include "common/image/metadata.h"

namespace ota::image {

struct LoadedImage {
  std::string base_url;
  Metadata metadata;
  Manifest manifest;
};

struct LoadOptions {
  // nullptr or an empty store: refused (kPermissionDenied "no CA installed") unless
  // allow_unverified_dev is set, which skips the chain check (loudly) but still checks the
  // signature against the image's own certificate.
  const crypto::CaStore* ca_store = nullptr;
  bool allow_unverified_dev = false;
  std::time_t now = 0;  // 0 = time(nullptr)
};

absl::StatusOr<LoadedImage> LoadImage(http::Fetcher& fetcher, std::string_view base_url,
                                      const LoadOptions& options);

}  // namespace ota::image
