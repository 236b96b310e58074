// Fuzzes ParseClientReleaseManifest and SelectClientPackage (an image's otaclient release
// manifest, common/image/client_package.h): arbitrary bytes give a manifest or an error, never a
// crash or an escaping exception; what parses keeps the parser's promises and survives a
// write/read round trip of the chosen package.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/image/client_package.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = ota::image::ParseClientReleaseManifest(text);
  if (!manifest.ok()) return 0;
  Require(manifest->packages.size() <= ota::image::kMaxPackages);
  for (const auto& p : manifest->packages) {
    Require(!p.filename.empty() && p.filename.find('/') == std::string::npos);
    Require(p.filename != "." && p.filename != "..");
    Require(!p.version.empty() && p.version.find('/') == std::string::npos);
  }
  for (const char* machine : {"x86_64", "aarch64"}) {
    auto chosen = ota::image::SelectClientPackage(*manifest, machine);
    if (!chosen.ok()) continue;
    Require(chosen->type == ota::image::kCppPackageType);
    auto again =
        ota::image::ParseClientReleaseManifest(ota::image::ClientReleaseManifestJson(*chosen, "d"));
    Require(again.ok() && again->packages.size() == 1);
    Require(again->packages[0].version == chosen->version);
    Require(again->packages[0].checksum_hex == chosen->checksum_hex);
  }
  return 0;
}
