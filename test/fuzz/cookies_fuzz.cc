// Fuzzes ParseCookiesJson (UpdateRequestEcu.cookies, attacker-reachable over gRPC): no crash, and
// whatever it accepts must be safe to put into one "Cookie: k1=v1; k2=v2" header line.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/http/fetcher.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto cookies = ota::http::ParseCookiesJson(input);
  if (!cookies.ok()) {
    if (cookies.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  for (const auto& [name, value] : *cookies) {
    if (name.empty()) std::abort();
    for (unsigned char c : name) {
      if (c < 0x20 || c == 0x7f || c == ' ' || c == '=' || c == ';') std::abort();
    }
    for (unsigned char c : value) {
      if (c < 0x20 || c == 0x7f || c == ';') std::abort();
    }
  }
  return 0;
}
