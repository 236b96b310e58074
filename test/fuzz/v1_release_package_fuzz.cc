// Fuzzes ParseReleasePackageManifest and FindPackageLayer (the otaclient release-package
// manifest of an OTA image v1, common/image/v1/release_package.h): arbitrary bytes give a
// manifest or an error, never a crash or an escaping exception; what parses keeps the parser's
// promises (layer annotations agree with their descriptors, no blob twice, known media types and
// architectures), and every layer is found again from the manifest.json entry it describes.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/image/v1/release_package.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ota::fuzz::QuietLogs();
  namespace v1 = ota::image::v1;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = v1::ParseReleasePackageManifest(text);
  if (!manifest.ok()) return 0;
  Require(manifest->layers.size() <= ota::image::kMaxPackages);
  Require(manifest->config.media_type == v1::kMediaOtaclientPackage);
  for (size_t i = 0; i < manifest->layers.size(); ++i) {
    const v1::ReleasePackageLayer& layer = manifest->layers[i];
    Require(v1::LayerMediaTypeOf(layer.type) == layer.blob.media_type);
    Require(layer.architecture == "x86_64" || layer.architecture == "arm64");
    Require(!layer.version.empty());
    for (size_t j = 0; j < i; ++j) Require(manifest->layers[j].blob.digest != layer.blob.digest);
    const ota::image::ClientPackage entry{
        "f",      layer.version,   layer.type, layer.architecture, layer.blob.size,
        "sha256", layer.blob.hex()};
    auto found = v1::FindPackageLayer(*manifest, entry);
    Require(found.ok() && *found == &layer);
    ota::image::ClientPackage other = entry;
    other.size = layer.blob.size + 1;
    Require(!v1::FindPackageLayer(*manifest, other).ok());
  }
  return 0;
}
