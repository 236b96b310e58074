// The Ota-File-Cache-Control request header otaclient sends to otaproxy, e.g.
//   Ota-File-Cache-Control: file_sha256=<64 hex>,file_compression_alg=zst
//   Ota-File-Cache-Control: retry_caching,file_sha256=<64 hex>
// Directives (comma separated, whitespace around them ignored, case-sensitive names):
//   no_cache               relay only: no lookup, no caching
//   retry_caching          drop any cached entry for this key, fetch and cache it again
//   file_sha256=<hex>      sha256 of the ORIGINAL (uncompressed) file: the cache key, and the
//                          bytes are verified against it before the entry is committed
//   file_compression_alg=<alg>  the body is compressed with <alg> (e.g. "zst")
// `use_cache` (sent by old clients) is accepted and means nothing; unknown directives are
// ignored (reported in `ignored`); a malformed known directive is an error (→ 400).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ota::http {

inline constexpr std::string_view kCacheControlHeader = "Ota-File-Cache-Control";

struct CacheControl {
  bool no_cache = false;
  bool retry_caching = false;
  std::string file_sha256;           // 64 lowercase hex digits, or empty
  std::string file_compression_alg;  // lowercase [a-z0-9_-]{1,16} ("zstd" → "zst"), or empty
  std::vector<std::string> ignored;  // unknown directives, as sent

  bool operator==(const CacheControl&) const = default;
};

// Error: kInvalidArgument naming the offending directive.
absl::StatusOr<CacheControl> ParseCacheControl(std::string_view value);

// The response echo: "file_sha256=<hex>[,file_compression_alg=<alg>]"; "" without a sha256.
std::string EchoCacheControl(const CacheControl& cc);

}  // namespace ota::http
