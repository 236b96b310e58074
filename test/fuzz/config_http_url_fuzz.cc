// Fuzzes ParseHttpUrl (proxy_info's logging_server URLs): arbitrary bytes give a URL or
// kInvalidArgument; an accepted URL, written back as origin + path, parses to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config/host.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<ota::config::HttpUrl> url = ota::config::ParseHttpUrl(text, "http://h:1");
  if (!url.ok()) {
    Require(url.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Require(url->scheme == "http" || url->scheme == "https");
  Require(url->path.empty() || url->path.front() == '/');
  Require(url->PortOrDefault() != 0);
  const std::string again = url->Origin() + url->path;
  const absl::StatusOr<ota::config::HttpUrl> reparsed = ota::config::ParseHttpUrl(again, "x");
  Require(reparsed.ok() && *reparsed == *url);
  return 0;
}
