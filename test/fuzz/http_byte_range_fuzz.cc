// Fuzzes the Range / Content-Range parsers (common/http/byte_range.h): Range comes from any
// client of otaproxy, Content-Range from any server. No crash; what is accepted is consistent
// and a formatted Content-Range parses back to itself.
#include <cstdint>
#include <string_view>

#include "common/http/byte_range.h"
#include "test/fuzz/fuzz_support.h"

using ota::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto range = ota::http::ParseRangeHeader(input)) {
    Require(!range->last || *range->last >= range->first);
  }
  auto content = ota::http::ParseContentRange(input);
  if (!content.ok()) {
    Require(content.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  Require(content->last >= content->first);
  Require(!content->complete || content->last < *content->complete);
  if (content->last == UINT64_MAX) return 0;  // no complete length can follow it
  auto again = ota::http::ParseContentRange(
      ota::http::FormatContentRange(content->first, content->last + 1));
  Require(again.ok() && again->first == content->first && again->last == content->last);
  return 0;
}
