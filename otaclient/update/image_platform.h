// What an image says about the platform it was built for (boot::ImagePlatformInfo), read before
// the standby is touched and only when the boot backend asks (Jetson UEFI's BSP guard): the
// image's own /etc/nv_tegra_release, fetched as the content the signed list names (verified
// against its sha256, zstd-decoded when the image is compressed), never an unsigned side file.
// Upstream GETs <url>/data/etc/nv_tegra_release unverified and skips the guard when that fails;
// here a listed file that cannot be fetched or parsed fails the update (RECOVERABLE: nothing was
// touched), and an image without that file is not checked.
#pragma once

#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "common/image/image_loader.h"
#include "otaclient/boot/boot_controller.h"

namespace ota::update {

// The download job of one regular file's content (its URL in data/ or data.zst/).
http::DownloadJob ContentJob(const image::LoadedImage& img, const image::RegularEntry& entry);

absl::StatusOr<boot::ImagePlatformInfo> ReadImagePlatformInfo(http::Fetcher& fetcher,
                                                              const image::LoadedImage& img,
                                                              const http::CancelFlag& cancel);

}  // namespace ota::update
