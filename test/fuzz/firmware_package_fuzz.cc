// The firmware package YAML parsers on arbitrary bytes: never crash or throw; an accepted
// manifest has a BSP and well-formed digests.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaclient/boot/firmware_package.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::boot;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)ParseFirmwareUpdateRequest(input, "firmware_update.yaml");
  if (auto manifest = ParseFirmwareManifest(input, "firmware_manifest.yaml"); manifest.ok()) {
    for (const FirmwarePackage& p : manifest->packages) {
      if (p.digest_algorithm.empty() || p.digest_hex.empty() || p.digest_hex.size() % 2 != 0) {
        std::abort();
      }
      (void)PayloadPathInImage(p);
    }
    (void)FirmwareCompatible(manifest->compat, input);
  }
  return 0;
}
