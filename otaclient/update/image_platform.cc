#include "otaclient/update/image_platform.h"

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaclient/boot/jetson_bsp.h"

namespace ota::update {
namespace {

constexpr std::string_view kNvTegraRelease = "/etc/nv_tegra_release";
constexpr uint64_t kMaxReleaseFileBytes = uint64_t{64} * 1024;

}  // namespace

absl::StatusOr<boot::ImagePlatformInfo> ReadImagePlatformInfo(http::Fetcher& fetcher,
                                                              image::Image& img,
                                                              const http::CancelFlag& cancel) {
  boot::ImagePlatformInfo info;
  std::optional<uint32_t> release;
  for (uint32_t i = 0; i < img.manifest.regulars.size(); ++i) {
    if (img.manifest.Str(img.manifest.regulars[i].path) == kNvTegraRelease) release = i;
  }
  if (!release.has_value()) {
    log::Info("the image has no /etc/nv_tegra_release: it names no Jetson BSP");
    return info;
  }
  const image::RegularEntry& entry = img.manifest.regulars[*release];
  if (entry.has_size && entry.size > kMaxReleaseFileBytes) {
    return absl::InvalidArgumentError(
        StrCat("the image's ", kNvTegraRelease, " is ", entry.size, " bytes: not a release file"));
  }
  std::string text;
  if (entry.has_inline) {
    text = std::string(img.manifest.Str(entry.inline_content));
  } else {
    OTA_ASSIGN_OR_RETURN(fs::TempDir temp, fs::TempDir::Create("ota-image-platform"));
    image::ContentRequest request;
    request.sha256 = entry.sha256;
    if (entry.has_size) request.size = entry.size;
    request.entry = *release;
    image::ContentFetchEnv env;
    env.fetcher = &fetcher;
    env.resources_dir = temp.path() / "content";
    env.work_dir = temp.path() / "work";
    env.cancel = &cancel;
    std::error_code ec;
    std::filesystem::create_directory(env.resources_dir, ec);
    if (ec)
      return absl::InternalError(StrCat("mkdir ", env.resources_dir.string(), ": ", ec.message()));
    absl::Status fetched =
        img.source->Fetch(img.manifest, std::span<const image::ContentRequest>(&request, 1), env);
    if (!fetched.ok()) {
      return WithContext(fetched, StrCat("fetching the image's ", kNvTegraRelease));
    }
    OTA_ASSIGN_OR_RETURN(text, fs::ReadFile(env.resources_dir / crypto::ToHex(entry.sha256)));
  }
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
