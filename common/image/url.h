// URL construction for image files, compatible with the existing client:
// percent-encoding keeps A-Z a-z 0-9 _ . - ~ and '/', everything else %XX with uppercase hex.
#pragma once

#include <string>
#include <string_view>

namespace ota::image {

std::string PercentEncodePath(std::string_view path);

// base + "/" + relative, collapsing duplicate slashes at the seam ("http://h/x/" + "a" and
// "http://h/x" + "a" both give "http://h/x/a"). `relative` is used as given (already quoted).
std::string JoinUrl(std::string_view base, std::string_view relative);

// U/<rootfs_dir>/<quoted path without leading '/'>
std::string RegularFileUrl(std::string_view base_url, std::string_view rootfs_dir,
                           std::string_view abs_path);
// U/<compressed_rootfs_dir>/<sha256hex>.zst
std::string CompressedBlobUrl(std::string_view base_url, std::string_view compressed_dir,
                              std::string_view sha256_hex);

}  // namespace ota::image
