// Fuzzes the proxy request-target parser: no crash, only kInvalidArgument errors, and an
// accepted target yields URLs without whitespace, control or non-ASCII bytes (they go into a
// libcurl request line) that parse back to the same target ('@' may appear in the path, never
// in the authority: the round trip checks the host stays the same).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otaproxy/server/request_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto target = ota::proxy::ParseProxyTarget(input);
  if (!target.ok()) {
    if (target.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (target->path_and_query.empty() || target->path_and_query.front() != '/') std::abort();
  const std::string url = target->UpstreamUrl(false);
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f || c == '#') std::abort();
  }
  auto again = ota::proxy::ParseProxyTarget(url);
  if (!again.ok()) std::abort();
  ota::proxy::ProxyTarget normal = *target;
  normal.https = false;
  if (!(*again == normal)) std::abort();
  return 0;
}
