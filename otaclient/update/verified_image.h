// Opening an OTA image with its signature chain checked, as an update and a client update both
// do: the CA store of the certs dir (unusable, or empty without the development switch: refused
// with E309 before anything is fetched), then the image's metadata verified against it
// (common/image/image_reader.h).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/http/fetcher.h"
#include "common/image/image_reader.h"

namespace ota::update {

struct ImageTrust {
  std::filesystem::path certs_dir;
  bool allow_unverified_dev = false;  // no CA installed → accept any signer (loudly logged)
  std::string ecu_id;                 // v1: the payload is chosen by (ecu_id, release_key)
  std::string release_key;
  std::string architecture;  // uname -m; empty: this machine's
};

// `operation` names what is refused without CAs ("update", "client update").
absl::StatusOr<image::Image> OpenVerifiedImage(http::Fetcher& fetcher, std::string_view url,
                                               const ImageTrust& trust, std::string_view operation);

}  // namespace ota::update
