#include "common/image/v1/reader.h"

#include <fcntl.h>

#include <utility>

#include "common/fs/fs.h"
#include "common/image/url.h"
#include "common/image/v1/content_source.h"
#include "common/image/v1/file_table.h"
#include "common/image/v1/local_files.h"
#include "common/image/v1/resource_table.h"
#include "common/image/v1/schema.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::image::v1 {
namespace {

// index.jwt, index.json, manifests, configs: small JSON. A server handing out more is broken.
constexpr size_t kMaxMetadataBytes = 16u << 20;

absl::StatusOr<std::string> GetSmall(http::Fetcher& fetcher, const std::string& url,
                                     std::string_view what) {
  http::GetOptions options;
  options.no_cache = true;
  options.max_bytes = kMaxMetadataBytes;
  absl::StatusOr<std::string> body = fetcher.Get(url, options);
  if (!body.ok()) return WithContext(body.status(), StrCat(what, " (", url, ")"));
  return body;
}

absl::Status CheckPinned(std::string_view body, const Descriptor& d, std::string_view what,
                         std::string_view url) {
  if (body.size() != d.size) {
    return absl::DataLossError(
        StrCat(what, " (", url, "): ", body.size(), " bytes, but its descriptor pins ", d.size));
  }
  const crypto::Sha256Digest actual = crypto::Sha256Of(body);
  if (actual != d.digest) {
    return absl::DataLossError(StrCat(what, " (", url, "): sha256 ", crypto::ToHex(actual),
                                      " does not match the pinned ", d.hex()));
  }
  return absl::OkStatus();
}

// A metadata blob fetched into memory and checked against its descriptor before anyone parses it.
absl::StatusOr<std::string> FetchPinned(http::Fetcher& fetcher, const std::string& url,
                                        const Descriptor& d, std::string_view what) {
  if (d.size > kMaxMetadataBytes) {
    return absl::InvalidArgumentError(
        StrCat(what, " (", url, "): descriptor says ", d.size, " bytes, more than allowed"));
  }
  http::GetOptions options;
  // Pinned by digest: through otaproxy it is cached and verified like any blob (N ECUs, one
  // upstream GET).
  options.no_cache = false;
  options.max_bytes = static_cast<size_t>(d.size);
  options.expected_sha256 = d.digest;
  absl::StatusOr<std::string> body = fetcher.Get(url, options);
  if (!body.ok()) return WithContext(body.status(), StrCat(what, " (", url, ")"));
  OTA_RETURN_IF_ERROR(CheckPinned(*body, d, what, url));
  return body;
}

// A table blob: downloaded to disk by digest (cacheable by otaproxy, verified while streaming),
// then, for "+zstd", decompressed beside it into `name` (streamed: never whole in memory).
absl::StatusOr<std::filesystem::path> FetchTable(http::Fetcher& fetcher, std::string_view base_url,
                                                 const Descriptor& d, const fs::TempDir& dir,
                                                 const std::string& name, std::string_view what,
                                                 const http::CancelFlag& cancel) {
  const std::string url = BlobUrl(base_url, d.hex());
  http::DownloadJob job;
  job.url = url;
  job.dest = dir.path() / StrCat(name, ".blob");
  job.sha256 = d.digest;
  job.size = d.size;
  absl::Status job_status = absl::InternalError("download not reported");
  absl::Status run = fetcher.DownloadAll(
      std::span(&job, 1),
      [&](const http::DownloadResult& r) {
        job_status = r.status;
        return true;
      },
      http::TransferObserver{}, cancel);
  OTA_RETURN_IF_ERROR(WithContext(run, StrCat(what, " (", url, ")")));
  OTA_RETURN_IF_ERROR(WithContext(job_status, StrCat(what, " (", url, ")")));
  if (!IsZstdTable(d.media_type)) return job.dest;

  fs::UniqueFd dir_fd(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return ErrnoStatus(errno, StrCat("open ", dir.path().string()));
  fs::UniqueFd in(::open(job.dest.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid()) return ErrnoStatus(errno, StrCat("open ", job.dest.string()));
  const std::string table_name = StrCat(name, ".sqlite3");
  absl::Status st = WriteVerified(
      dir_fd.get(), table_name, StrCat(what, " (", url, ", decompressed)"),
      content::Compression::kZstd, content::Expected{},
      [&](const ChunkSink& sink) {
        return StreamFileRange(in.get(), 0, std::nullopt, sink, StrCat(what, " blob"));
      },
      /*durable=*/false);
  in.Reset();
  ::unlink(job.dest.c_str());
  OTA_RETURN_IF_ERROR(st);
  return dir.path() / table_name;
}

std::string NormalizedArchitecture(std::string_view arch) {
  if (arch == "amd64" || arch == "x86-64") return "x86_64";
  if (arch == "arm64") return "aarch64";
  return std::string(arch);
}

}  // namespace

std::string BlobUrl(std::string_view base_url, std::string_view hex) {
  return JoinUrl(base_url, StrCat("blobs/sha256/", hex));
}

absl::StatusOr<std::string> FetchPinnedBlob(http::Fetcher& fetcher, std::string_view base_url,
                                            const crypto::Sha256Digest& sha256, uint64_t size,
                                            std::string_view what) {
  Descriptor d;
  d.digest = sha256;
  d.size = size;
  return FetchPinned(fetcher, BlobUrl(base_url, d.hex()), d, what);
}

absl::StatusOr<LoadedReleasePackage> LoadReleasePackage(http::Fetcher& fetcher,
                                                        std::string_view base_url,
                                                        const Image::PinnedBlob& pinned) {
  constexpr std::string_view kWhat = "the image's otaclient release-package manifest";
  constexpr std::string_view kConfig = "the otaclient release-package config (manifest.json)";
  OTA_ASSIGN_OR_RETURN(const std::string manifest_text,
                       FetchPinnedBlob(fetcher, base_url, pinned.sha256, pinned.size, kWhat));
  LoadedReleasePackage out;
  absl::StatusOr<ReleasePackageManifest> manifest = ParseReleasePackageManifest(manifest_text);
  if (!manifest.ok()) return WithContext(manifest.status(), kWhat);
  out.manifest = *std::move(manifest);
  OTA_ASSIGN_OR_RETURN(const std::string config_text,
                       FetchPinnedBlob(fetcher, base_url, out.manifest.config.digest,
                                       out.manifest.config.size, kConfig));
  absl::StatusOr<ClientReleaseManifest> release = ParseClientReleaseManifest(config_text);
  if (!release.ok()) return WithContext(release.status(), kConfig);
  out.release = *std::move(release);
  return out;
}

absl::StatusOr<Image> OpenV1Image(http::Fetcher& fetcher, std::string_view base_url,
                                  const ReaderOptions& options) {
  const int64_t now = options.now != 0 ? options.now : std::time(nullptr);

  // 1. index.jwt: header and claims parsed, then chain, signature, times.
  const std::string jwt_url = JoinUrl(base_url, "index.jwt");
  OTA_ASSIGN_OR_RETURN(std::string jwt_text, GetSmall(fetcher, jwt_url, "index.jwt"));
  absl::StatusOr<IndexJwt> jwt = ParseIndexJwt(jwt_text);
  if (!jwt.ok()) return WithContext(jwt.status(), StrCat("index.jwt (", jwt_url, ")"));
  std::string signer_der;
  const crypto::CaStore* store = options.ca_store;
  if (store == nullptr || store->v1_roots_empty()) {
    const std::string where =
        store == nullptr ? "(no certs dir configured)" : store->dir().string();
    if (!options.allow_unverified_dev) {
      return absl::PermissionDeniedError(StrCat("index.jwt (", jwt_url,
                                                "): no self-signed root certificate installed in ",
                                                where, "; refusing unverified image"));
    }
    log::Warning(
        "!!! DEVELOPMENT MODE: no root certificate installed; the image's certificate chain is "
        "NOT verified, anyone who can serve this URL can install software on this ECU !!!",
        {{"certs_dir", where}, {"url", jwt_url}});
    absl::StatusOr<std::string> der = crypto::X5cEntryToDer(jwt->header.x5c.front());
    if (!der.ok()) return WithContext(der.status(), StrCat("index.jwt (", jwt_url, ") x5c[0]"));
    signer_der = std::move(*der);
  } else {
    absl::StatusOr<std::string> der = store->VerifyX5cChain(jwt->header.x5c, now);
    if (!der.ok()) return WithContext(der.status(), StrCat("index.jwt (", jwt_url, ")"));
    signer_der = std::move(*der);
  }
  OTA_RETURN_IF_ERROR(
      WithContext(crypto::VerifyJwsEs256(signer_der, jwt->signing_input, jwt->signature),
                  StrCat("index.jwt (", jwt_url, ")")));
  OTA_RETURN_IF_ERROR(
      WithContext(CheckJwsTimes(jwt->claims, now), StrCat("index.jwt (", jwt_url, ")")));

  // 2. index.json, pinned by the signed claims.
  const std::string index_url = JoinUrl(base_url, "index.json");
  OTA_ASSIGN_OR_RETURN(std::string index_text,
                       FetchPinned(fetcher, index_url, jwt->claims.image_index, "index.json"));
  absl::StatusOr<ImageIndex> index = ParseImageIndex(index_text);
  if (!index.ok()) return WithContext(index.status(), index_url);

  // 3. The payload for this ECU, and its documents.
  absl::StatusOr<const ImagePayload*> payload =
      SelectPayload(*index, options.ecu_id, options.release_key);
  if (!payload.ok()) return WithContext(payload.status(), index_url);
  const Descriptor& manifest_desc = (*payload)->manifest;
  const std::string manifest_url = BlobUrl(base_url, manifest_desc.hex());
  OTA_ASSIGN_OR_RETURN(std::string manifest_text,
                       FetchPinned(fetcher, manifest_url, manifest_desc, "image manifest"));
  absl::StatusOr<ImageManifest> manifest = ParseImageManifest(manifest_text);
  if (!manifest.ok()) return WithContext(manifest.status(), manifest_url);
  if (!options.architecture.empty() && !manifest->architecture.empty() &&
      NormalizedArchitecture(manifest->architecture) !=
          NormalizedArchitecture(options.architecture)) {
    return absl::InvalidArgumentError(StrCat("image manifest (", manifest_url, ") is for ",
                                             manifest->architecture, ", this ECU is ",
                                             options.architecture));
  }
  const std::string config_url = BlobUrl(base_url, manifest->config.hex());
  OTA_ASSIGN_OR_RETURN(std::string config_text,
                       FetchPinned(fetcher, config_url, manifest->config, "image config"));
  absl::StatusOr<ImageConfig> config = ParseImageConfig(config_text);
  if (!config.ok()) return WithContext(config.status(), config_url);
  if (config->file_table.digest != manifest->file_table.digest) {
    log::Warning(
        "v1 image: the image config's file table differs from the manifest's layers[0]; "
        "using the config's, as the deployed client",
        {{"config", config->file_table.hex()}, {"layer", manifest->file_table.hex()}});
  }
  SysConfig sys;
  if (config->sys_config) {
    const std::string sys_url = BlobUrl(base_url, config->sys_config->hex());
    OTA_ASSIGN_OR_RETURN(std::string sys_text,
                         FetchPinned(fetcher, sys_url, *config->sys_config, "sys_config"));
    absl::StatusOr<SysConfig> parsed = ParseSysConfig(sys_text);
    if (!parsed.ok()) return WithContext(parsed.status(), sys_url);
    sys = std::move(*parsed);
  }

  // 4. The tables, to disk.
  OTA_ASSIGN_OR_RETURN(fs::TempDir tables,
                       fs::TempDir::Create("ota-v1-tables", options.temp_parent));
  const http::CancelFlag never{false};
  OTA_ASSIGN_OR_RETURN(
      std::filesystem::path file_table_path,
      FetchTable(fetcher, base_url, config->file_table, tables, "file_table", "file table", never));
  OTA_ASSIGN_OR_RETURN(std::filesystem::path resource_table_path,
                       FetchTable(fetcher, base_url, *index->resource_table, tables,
                                  "resource_table", "resource table", never));

  Image image;
  image.format = ImageFormat::kV1;
  image.base_url = std::string(base_url);
  OTA_RETURN_IF_ERROR(WithContext(LoadFileTable(file_table_path, image.manifest),
                                  BlobUrl(base_url, config->file_table.hex())));
  ::unlink(file_table_path.c_str());  // read whole into the model; the space is better freed
  // Swap files among them are skipped by the persistents step, whatever the format.
  for (const std::string& path : sys.persist_files) {
    image.manifest.persistents.push_back(image.manifest.Intern(path));
  }
  image.total_regular_size = config->rootfs_size;
  if (index->otaclient_package) {
    image.otaclient_package =
        Image::PinnedBlob{index->otaclient_package->digest, index->otaclient_package->size};
  }
  absl::StatusOr<ResourceTable> resources = ResourceTable::Open(resource_table_path);
  if (!resources.ok()) {
    return WithContext(resources.status(), BlobUrl(base_url, index->resource_table->hex()));
  }
  image.source = MakeV1ContentSource(image.base_url, std::move(tables), std::move(*resources));
  log::Info("v1 image metadata verified", {{"url", image.base_url},
                                           {"ecu", options.ecu_id},
                                           {"release_key", options.release_key},
                                           {"architecture", manifest->architecture},
                                           {"regulars", StrCat(image.manifest.regulars.size())},
                                           {"dirs", StrCat(image.manifest.dirs.size())},
                                           {"symlinks", StrCat(image.manifest.symlinks.size())},
                                           {"whiteouts", StrCat(image.manifest.specials.size())}});
  return image;
}

}  // namespace ota::image::v1
