// The one interface between an update and an OTA image, whatever its format:
//
//   DetectImageFormat  GET <base>/oci-layout through the update's own fetcher (cookies, proxy,
//                      TLS): 200 → v1; 401/403/404 → legacy; anything else, after the fetcher's
//                      retries, is an error naming the URL.
//   OpenImage          detection, then the format's reader: fetches and verifies the image's
//                      metadata (signature, certificate chain, every metadata file by its signed
//                      digest) into the format-neutral Manifest, plus a ContentSource that knows
//                      where each content comes from. Touches no slot: every failure happens
//                      before.
//   ContentSource      given the whole set of contents the update still needs, makes each appear
//                      verified as <resources dir>/<sha256hex>.
//
// The formats live in legacy/ (metadata.jwt + list files) and v1/ (OCI layout + SQLite tables);
// nothing outside common/image/ names one, except for logs and `ota-image`.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/crypto/sha256.h"
#include "common/crypto/signing.h"
#include "common/http/fetcher.h"
#include "common/image/manifest.h"

namespace ota::image {

enum class ImageFormat { kLegacy, kV1 };
std::string_view ImageFormatName(ImageFormat format);  // "legacy", "v1"

// One content the update still needs.
struct ContentRequest {
  crypto::Sha256Digest sha256{};
  std::optional<uint64_t> size;  // of the content, when the image says it
  uint32_t entry = 0;            // index in Manifest::regulars of a file with this content
};

// Download jobs a source hands to the fetcher at once: URL strings and job state exist only for a
// batch of blobs at a time.
inline constexpr size_t kDownloadBatch = 2048;

struct ContentFetchEnv {
  http::Fetcher* fetcher = nullptr;
  // Where each content must appear, as <resources_dir>/<sha256hex>; exists. Nothing else may be
  // left there.
  std::filesystem::path resources_dir;
  // A directory reserved for this source's intermediates (bundles, compressed forms, slices),
  // created when needed. Verified intermediates are kept there when Fetch fails, so that the next
  // attempt resumes; the source removes it when Fetch succeeds.
  std::filesystem::path work_dir;
  const http::CancelFlag* cancel = nullptr;
  http::TransferObserver observer;  // network bytes as they arrive
  // Called once per content of the request as it appears verified in resources_dir, never
  // concurrently: its index in the request, its size, the retries its download took.
  std::function<void(size_t index, uint64_t bytes, uint32_t retries)> on_content;
};

class ContentSource {
 public:
  virtual ~ContentSource() = default;
  // Makes every content of `contents` appear in env.resources_dir. kCancelled when env.cancel
  // was set; otherwise the first failure, naming the content and the blob or URL.
  // `manifest` is the one OpenImage returned with this source.
  virtual absl::Status Fetch(const Manifest& manifest, std::span<const ContentRequest> contents,
                             const ContentFetchEnv& env) = 0;
};

struct ReaderOptions {
  // Trust anchors. Legacy: CA groups (<group>.<name>.pem). v1: every self-signed certificate of
  // the same dir (.pem or .crt) is a root of its own. nullptr or none installed: refused
  // (kPermissionDenied) unless allow_unverified_dev, which skips the chain check (loudly) but
  // still checks the signature against the image's own certificate.
  const crypto::CaStore* ca_store = nullptr;
  bool allow_unverified_dev = false;
  std::time_t now = 0;  // 0 = time(nullptr)
  // v1: the payload is chosen by (ecu_id, release_key).
  std::string ecu_id = "autoware";
  std::string release_key = "dev";
  // v1: the machine's architecture (uname -m); when set, a payload whose manifest names another
  // one (x86_64/amd64 and aarch64/arm64 are the same) is refused. Empty: not checked.
  std::string architecture;
  // v1: where the file and resource tables are decompressed (a fresh directory is made inside);
  // empty = $TMPDIR or /tmp.
  std::filesystem::path temp_parent;
};

struct Image {
  ImageFormat format = ImageFormat::kLegacy;
  std::string base_url;
  Manifest manifest;
  std::optional<uint64_t> total_regular_size;  // what the image says its files add up to
  std::unique_ptr<ContentSource> source;
  // v1: the otaclient release-package manifest its signed index.json lists (sha256 and size of
  // the blob <base_url>/blobs/sha256/<hex>; v1/release_package.h). Legacy: never set.
  struct PinnedBlob {
    crypto::Sha256Digest sha256{};
    uint64_t size = 0;
  };
  std::optional<PinnedBlob> otaclient_package;
};

absl::StatusOr<ImageFormat> DetectImageFormat(http::Fetcher& fetcher, std::string_view base_url);

// Detects the format and loads the image. Errors keep their kinds (common/util/errors.h) and name
// the file and URL.
absl::StatusOr<Image> OpenImage(http::Fetcher& fetcher, std::string_view base_url,
                                const ReaderOptions& options);

// Loads an image of a known format (what OpenImage does after detection).
absl::StatusOr<Image> OpenImageAs(ImageFormat format, http::Fetcher& fetcher,
                                  std::string_view base_url, const ReaderOptions& options);

}  // namespace ota::image
