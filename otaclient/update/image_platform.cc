#include "otaclient/update/image_platform.h"

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/image/url.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/jetson_bsp.h"

namespace ota::update {
namespace {

constexpr std::string_view kNvTegraRelease = "/etc/nv_tegra_release";
constexpr uint64_t kMaxReleaseFileBytes = uint64_t{64} * 1024;

}  // namespace

http::DownloadJob ContentJob(const image::LoadedImage& img, const image::RegularEntry& entry) {
  const image::Metadata& md = img.metadata;
  http::DownloadJob job;
  if (entry.compression == image::Compression::kZstd && md.compressed_rootfs_directory) {
    job.url = image::CompressedBlobUrl(img.base_url, *md.compressed_rootfs_directory,
                                       crypto::ToHex(entry.sha256));
    job.compression = image::Compression::kZstd;
  } else {
    job.url =
        image::RegularFileUrl(img.base_url, md.rootfs_directory, img.manifest.Str(entry.path));
  }
  job.sha256 = entry.sha256;
  if (entry.has_size) job.size = entry.size;
  return job;
}

absl::StatusOr<boot::ImagePlatformInfo> ReadImagePlatformInfo(http::Fetcher& fetcher,
                                                              const image::LoadedImage& img,
                                                              const http::CancelFlag& cancel) {
  boot::ImagePlatformInfo info;
  const image::RegularEntry* release = nullptr;
  for (const image::RegularEntry& entry : img.manifest.regulars) {
    if (img.manifest.Str(entry.path) == kNvTegraRelease) release = &entry;
  }
  if (release == nullptr) {
    log::Info("the image has no /etc/nv_tegra_release: it names no Jetson BSP");
    return info;
  }
  if (release->has_size && release->size > kMaxReleaseFileBytes) {
    return absl::InvalidArgumentError(StrCat("the image's ", kNvTegraRelease, " is ", release->size,
                                             " bytes: not a release file"));
  }
  OTA_ASSIGN_OR_RETURN(fs::TempDir temp, fs::TempDir::Create("ota-image-platform"));
  http::DownloadJob job = ContentJob(img, *release);
  job.dest = temp.path() / "nv_tegra_release";
  absl::Status result = absl::InternalError("no download result");
  OTA_RETURN_IF_ERROR(fetcher.DownloadAll(
      std::span<const http::DownloadJob>(&job, 1),
      [&result](const http::DownloadResult& r) {
        result = r.status;
        return true;
      },
      {}, cancel));
  if (!result.ok()) {
    return WithContext(result, StrCat("fetching the image's ", kNvTegraRelease, " from ", job.url));
  }
  OTA_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(job.dest));
  absl::StatusOr<boot::BspVersion> bsp = boot::ParseNvTegraRelease(text);
  if (!bsp.ok()) {
    return absl::InvalidArgumentError(
        StrCat("the image's ", kNvTegraRelease, ": ", bsp.status().message()));
  }
  info.jetson_bsp_version = bsp->ToString();
  log::Info("image platform", {{"jetson_bsp", *info.jetson_bsp_version}});
  return info;
}

}  // namespace ota::update
