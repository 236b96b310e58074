// Fuzzes the Range / Content-Range parsers (common/http/byte_range.h): Range comes from any
// client of otaproxy, Content-Range from any server. No crash; what is accepted is consistent.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/http/byte_range.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto range = ota::http::ParseRangeHeader(input)) {
    if (range->last && *range->last < range->first) std::abort();
  }
  auto content = ota::http::ParseContentRange(input);
  if (content.ok()) {
    if (content->last < content->first) std::abort();
    if (content->complete && content->last >= *content->complete) std::abort();
    auto again = ota::http::ParseContentRange(
        ota::http::FormatContentRange(content->first, content->last + 1));
    if (!again.ok() || again->first != content->first || again->last != content->last) {
      std::abort();
    }
  } else if (content.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
