// Fuzzes the version_detail reader (the per-slot release file the Python client writes): any
// bytes give a release or "absent", never a crash; what is read writes back, in the Python
// client's format (ASCII only), to text that reads as the same release.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "otaclient/boot/slot_state_store.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::optional<ota::boot::ReleaseInfo> release = ota::boot::ParseVersionDetail(text);
  if (!release.has_value()) return 0;
  const std::string written = ota::boot::FormatVersionDetail(*release);
  for (char c : written) Require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  for (char c : written) Require(static_cast<unsigned char>(c) < 0x80);
  const std::optional<ota::boot::ReleaseInfo> again = ota::boot::ParseVersionDetail(written);
  Require(again.has_value());
  // Invalid UTF-8 in a field is replaced when written (as json.dumps cannot hold it either);
  // valid text round-trips exactly.
  const std::string rewritten = ota::boot::FormatVersionDetail(*again);
  Require(rewritten == written);
  return 0;
}
