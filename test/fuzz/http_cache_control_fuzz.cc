// Fuzzes the Ota-File-Cache-Control parser (any client on the vehicle network reaches it): no
// crash, only kInvalidArgument errors, and what it accepts is safe to use as a file name part
// and to echo in a response header.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/http/cache_control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto cc = ota::http::ParseCacheControl(input);
  if (!cc.ok()) {
    if (cc.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (!cc->file_sha256.empty() && cc->file_sha256.size() != 64) std::abort();
  for (char c : cc->file_sha256) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) std::abort();
  }
  if (cc->file_compression_alg.size() > 16) std::abort();
  for (char c : cc->file_compression_alg) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-')) std::abort();
  }
  for (unsigned char c : ota::http::EchoCacheControl(*cc)) {
    if (c < 0x20 || c >= 0x7f) std::abort();
  }
  return 0;
}
