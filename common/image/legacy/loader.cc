#include "common/image/legacy/loader.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/image/legacy/list_lines.h"
#include "common/image/url.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image {
namespace {

// metadata.jwt and certificates are tiny; a server handing out megabytes is broken or hostile.
constexpr size_t kMaxMetadataBytes = 1u << 20;

// GETs `file` under the image and checks it against its signed hash. The fetcher checks too
// (and retries with retry_caching); checking here as well keeps the trust decision in this file
// whatever Fetcher implementation is plugged in.
absl::StatusOr<std::string> FetchSignedFile(http::Fetcher& fetcher, std::string_view base_url,
                                            const SignedFileRef& ref, size_t max_bytes) {
  const std::string url = JoinUrl(base_url, PercentEncodePath(ref.file));
  http::GetOptions options;
  options.expected_sha256 = ref.sha256;
  options.no_cache = true;
  options.max_bytes = max_bytes;
  auto body = fetcher.Get(url, options);
  if (!body.ok()) return WithContext(body.status(), StrCat(ref.file, " (", url, ")"));
  const crypto::Sha256Digest actual = crypto::Sha256Of(*body);
  if (actual != ref.sha256) {
    return absl::DataLossError(StrCat(ref.file, " (", url, "): sha256 ", crypto::ToHex(actual),
                                      " does not match the signed ", crypto::ToHex(ref.sha256)));
  }
  return body;
}

absl::Status CheckChain(const LoadOptions& options, std::string_view cert_name,
                        std::string_view cert_pem, std::time_t now) {
  if (options.ca_store == nullptr || options.ca_store->empty()) {
    const std::string where = options.ca_store == nullptr ? "(no certs dir configured)"
                                                          : options.ca_store->dir().string();
    if (!options.allow_unverified_dev) {
      return absl::PermissionDeniedError(
          StrCat("no CA certificates installed in ", where, "; refusing unverified image"));
    }
    log::Warning(
        "!!! DEVELOPMENT MODE: no CA certificates installed; the image's certificate chain is "
        "NOT verified, anyone who can serve this URL can install software on this ECU !!!",
        {{"certs_dir", where}, {"certificate", cert_name}});
    return absl::OkStatus();
  }
  return WithContext(options.ca_store->VerifyCertificate(cert_pem, now), cert_name);
}

}  // namespace

absl::StatusOr<LoadedImage> LoadImage(http::Fetcher& fetcher, std::string_view base_url,
                                      const LoadOptions& options) {
  const std::time_t now = options.now != 0 ? options.now : std::time(nullptr);
  LoadedImage image;
  image.base_url = std::string(base_url);

  // 1. metadata.jwt: no hash to check against yet; the signature below covers it.
  const std::string jwt_url = JoinUrl(base_url, "metadata.jwt");
  http::GetOptions jwt_options;
  jwt_options.no_cache = true;
  jwt_options.max_bytes = kMaxMetadataBytes;
  auto jwt = fetcher.Get(jwt_url, jwt_options);
  if (!jwt.ok()) return WithContext(jwt.status(), StrCat("metadata.jwt (", jwt_url, ")"));
  auto metadata = ParseMetadataJwt(*jwt);
  if (!metadata.ok()) return WithContext(metadata.status(), StrCat("metadata.jwt (", jwt_url, ")"));
  image.metadata = std::move(*metadata);
  const Metadata& md = image.metadata;
  if (md.version != 1) {
    log::Warning("metadata.jwt has an unexpected version; continuing as upstream does",
                 {{"version", std::to_string(md.version)}, {"url", jwt_url}});
  }

  // 2. The signing certificate, its chain, then the signature over the first two segments.
  OTA_ASSIGN_OR_RETURN(std::string cert_pem,
                       FetchSignedFile(fetcher, base_url, md.certificate, kMaxMetadataBytes));
  OTA_RETURN_IF_ERROR(CheckChain(options, md.certificate.file, cert_pem, now));
  OTA_RETURN_IF_ERROR(WithContext(crypto::VerifySignature(cert_pem, md.signed_part, md.signature),
                                  StrCat("metadata.jwt (", jwt_url, ")")));

  // 3. The list files, each checked against its (now trusted) hash, parsed into the manifest.
  const std::pair<ListKind, const SignedFileRef*> lists[] = {
      {ListKind::kDirs, &md.directory},
      {ListKind::kSymlinks, &md.symboliclink},
      {ListKind::kRegulars, &md.regular},
      {ListKind::kPersistents, &md.persistent},
  };
  for (const auto& [kind, ref] : lists) {
    OTA_ASSIGN_OR_RETURN(std::string content,
                         FetchSignedFile(fetcher, base_url, *ref, http::GetOptions{}.max_bytes));
    OTA_RETURN_IF_ERROR(ParseListFile(kind, content, ref->file, image.manifest));
  }
  log::Info("image metadata verified",
            {{"url", image.base_url},
             {"regulars", std::to_string(image.manifest.regulars.size())},
             {"dirs", std::to_string(image.manifest.dirs.size())},
             {"symlinks", std::to_string(image.manifest.symlinks.size())}});
  return image;
}

namespace {

class LegacySource final : public ContentSource {
 public:
  explicit LegacySource(LoadedImage image) : image_(std::move(image)) {}

  absl::Status Fetch(const Manifest& manifest, std::span<const ContentRequest> contents,
                     const ContentFetchEnv& env) override {
    const Metadata& md = image_.metadata;
    std::vector<http::DownloadJob> jobs;
    for (size_t start = 0; start < contents.size(); start += kDownloadBatch) {
      const size_t end = std::min(contents.size(), start + kDownloadBatch);
      jobs.clear();
      jobs.reserve(end - start);
      for (size_t k = start; k < end; ++k) {
        const ContentRequest& c = contents[k];
        const RegularEntry& e = manifest.regulars[c.entry];
        const std::string hex = crypto::ToHex(c.sha256);
        http::DownloadJob job;
        if (e.compression == Compression::kZstd && md.compressed_rootfs_directory) {
          job.url = CompressedBlobUrl(image_.base_url, *md.compressed_rootfs_directory, hex);
          job.compression = Compression::kZstd;
        } else {
          job.url = RegularFileUrl(image_.base_url, md.rootfs_directory, manifest.Str(e.path));
        }
        job.dest = env.resources_dir / hex;
        job.sha256 = c.sha256;
        job.size = c.size;
        job.tag = k - start;
        jobs.push_back(std::move(job));
      }
      absl::Status first_error;
      auto on_done = [&](const http::DownloadResult& r) {
        if (!r.status.ok()) {
          if (first_error.ok()) {
            first_error = WithContext(r.status, StrCat("downloading ", jobs[r.tag].url));
          }
          return false;
        }
        if (env.on_content) env.on_content(start + r.tag, r.file_bytes, r.retries);
        return !env.cancel->load();
      };
      absl::Status st = env.fetcher->DownloadAll(jobs, on_done, env.observer, *env.cancel);
      if (!first_error.ok()) return first_error;
      OTA_RETURN_IF_ERROR(st);
      if (env.cancel->load()) return absl::CancelledError("update cancelled during download");
    }
    return absl::OkStatus();
  }

 private:
  LoadedImage image_;  // metadata and base URL (its manifest is moved out to Image)
};

}  // namespace

absl::StatusOr<Image> OpenLegacyImage(http::Fetcher& fetcher, std::string_view base_url,
                                      const ReaderOptions& options) {
  LoadOptions load_options;
  load_options.ca_store = options.ca_store;
  load_options.allow_unverified_dev = options.allow_unverified_dev;
  load_options.now = options.now;
  OTA_ASSIGN_OR_RETURN(LoadedImage loaded, LoadImage(fetcher, base_url, load_options));
  Image image;
  image.format = ImageFormat::kLegacy;
  image.base_url = loaded.base_url;
  image.total_regular_size = loaded.metadata.total_regular_size;
  image.manifest = std::move(loaded.manifest);
  loaded.manifest = Manifest{};
  image.source = std::make_unique<LegacySource>(std::move(loaded));
  return image;
}

}  // namespace ota::image
