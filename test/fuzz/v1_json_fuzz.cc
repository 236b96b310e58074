// Fuzzes the OTA image v1 metadata documents: index.json, image manifest, image config (JSON),
// sys_config (YAML). The first input byte picks the parser. Beyond "no crash": a parsed index
// offers every payload it lists to SelectPayload, and descriptors' digests format back to the
// "sha256:<hex>" they came from.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/image/v1/schema.h"

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ota::image::v1;
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      if (auto index = ParseImageIndex(input); index.ok()) {
        Check(index->resource_table.has_value());
        for (const ImagePayload& p : index->images) {
          auto found = SelectPayload(*index, p.ecu_id, p.release_key);
          Check(found.ok() && (*found)->ecu_id == p.ecu_id);
          Check(ParseDigest(FormatDigest(p.manifest.digest)).ok());
        }
      }
      break;
    case 1:
      if (auto m = ParseImageManifest(input); m.ok()) {
        auto d = ParseDigest(FormatDigest(m->file_table.digest));
        Check(d.ok() && *d == m->file_table.digest);
      }
      break;
    case 2:
      (void)ParseImageConfig(input);
      break;
    case 3:
      if (auto s = ParseSysConfig(input); s.ok()) {
        for (const auto& p : s->persist_files) Check(!p.empty() && p.front() == '/');
      }
      break;
  }
  return 0;
}
