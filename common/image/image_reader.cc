#include "common/image/image_reader.h"

#include "common/image/legacy/loader.h"
#include "common/image/url.h"
#include "common/image/v1/reader.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image {

std::string_view ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kLegacy:
      return "legacy";
    case ImageFormat::kV1:
      return "v1";
  }
  return "unknown";
}

absl::StatusOr<ImageFormat> DetectImageFormat(http::Fetcher& fetcher, std::string_view base_url) {
  // As the deployed client: the answer's status decides, the body is not read. The fetcher has
  // already retried 408/429/5xx and network errors with backoff; what is left is no answer.
  const std::string url = JoinUrl(base_url, "oci-layout");
  http::GetOptions options;
  options.no_cache = true;
  options.max_bytes = 64 << 10;
  absl::StatusOr<std::string> body = fetcher.Get(url, options);
  if (body.ok()) return ImageFormat::kV1;
  // 404 (and file:// "no such file"): no OCI layout. 401/403: CloudFront answers 403 for a key
  // that does not exist, so a legacy image behind a cookie wall looks the same; a wrong cookie
  // then fails on metadata.jwt with its own 403.
  if (absl::IsNotFound(body.status()) || absl::IsPermissionDenied(body.status())) {
    return ImageFormat::kLegacy;
  }
  if (absl::IsCancelled(body.status())) return body.status();
  return WithContext(body.status(), StrCat("detecting the image format (", url,
                                           " answered neither 200 nor 401/403/404)"));
}

absl::StatusOr<Image> OpenImageAs(ImageFormat format, http::Fetcher& fetcher,
                                  std::string_view base_url, const ReaderOptions& options) {
  switch (format) {
    case ImageFormat::kLegacy:
      return OpenLegacyImage(fetcher, base_url, options);
    case ImageFormat::kV1:
      return v1::OpenV1Image(fetcher, base_url, options);
  }
  return absl::InternalError("unknown image format");
}

absl::StatusOr<Image> OpenImage(http::Fetcher& fetcher, std::string_view base_url,
                                const ReaderOptions& options) {
  OTA_ASSIGN_OR_RETURN(ImageFormat format, DetectImageFormat(fetcher, base_url));
  log::Info("image format detected",
            {{"url", std::string(base_url)}, {"format", std::string(ImageFormatName(format))}});
  return OpenImageAs(format, fetcher, base_url, options);
}

}  // namespace ota::image
