// What an image says about the platform it was built for (boot::ImagePlatformInfo), read before
// the standby is touched and only when the boot backend asks (Jetson UEFI's BSP guard): the
// image's own /etc/nv_tegra_release, fetched through the image's content source as the signed
// file list or table names it (verified against its sha256, decoded as the image stores it; a v1
// image may carry it inline), never an unsigned side file. Upstream GETs
// <url>/data/etc/nv_tegra_release unverified and skips the guard when that fails; here a listed
// file that cannot be fetched or parsed fails the update (RECOVERABLE: nothing was touched), and
// an image without that file is not checked.
#pragma once

#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "common/image/image_reader.h"
#include "otaclient/boot/boot_controller.h"

namespace ota::update {

absl::StatusOr<boot::ImagePlatformInfo> ReadImagePlatformInfo(http::Fetcher& fetcher,
                                                              image::Image& img,
                                                              const http::CancelFlag& cancel);

}  // namespace ota::update
