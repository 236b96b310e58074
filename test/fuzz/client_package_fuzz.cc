// Fuzzes ParseClientReleaseManifest and SelectClientPackage (an image's otaclient release
// manifest, common/image/client_package.h): arbitrary bytes give a manifest or an error, never a
// crash or an escaping exception; what parses keeps the parser's promises, survives a write/read
// round trip of the chosen package, and takes our package added (ota-image add-otaclient-package).
#include <cstdint>
#include <string_view>

#include "common/image/client_package.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

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
  // Adding our package to any manifest that parses gives one that parses, with ours chosen.
  const ota::image::ClientPackage ours{
      "otaclient-9-x86_64", "9", std::string(ota::image::kCppPackageType), "x86_64", 1, "sha256",
      std::string(64, 'c')};
  auto merged = ota::image::AddToClientReleaseManifest(text, ours);
  // Only the limits may refuse it: one package too many, or a rewritten text over the size limit.
  Require(merged.ok() || manifest->packages.size() >= ota::image::kMaxPackages ||
          merged.status().message().find("bytes, more than") != std::string_view::npos);
  if (merged.ok()) {
    auto reparsed = ota::image::ParseClientReleaseManifest(*merged);
    Require(reparsed.ok());
    auto picked = ota::image::SelectClientPackage(*reparsed, "x86_64");
    Require(picked.ok() && picked->version == "9");
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
