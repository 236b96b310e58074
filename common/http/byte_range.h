// HTTP byte ranges for resuming downloads (RFC 9110 §14): the one parser of `Range` request
// headers (otaproxy answers a resumed download from its cache) and of `Content-Range` response
// headers (the fetcher checks that a 206 continues where it left off). Only what resuming needs is
// understood; everything else is "not understood", which a server answers by ignoring the Range
// (a full 200) and a client by starting over.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::http {

// One range `bytes=<first>-[<last>]` of a Range request header.
struct ByteRange {
  uint64_t first = 0;
  std::optional<uint64_t> last;  // inclusive; nullopt = to the end
};

// A Range header value naming exactly one range from a known first byte: `bytes=N-` or
// `bytes=N-M` (N <= M), unit case-insensitive, optional whitespace around the range. nullopt for
// anything else: other units, suffix ranges (`bytes=-N`), several ranges, signs, overflow, junk.
// Such a Range may be ignored (RFC 9110 §14.2).
std::optional<ByteRange> ParseRangeHeader(std::string_view value);

// A satisfiable Content-Range: `bytes <first>-<last>/<complete length or *>`.
struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;                 // inclusive
  std::optional<uint64_t> complete;  // nullopt = `*` (unknown)
};

// Parses a Content-Range header value. kInvalidArgument naming the problem for anything else
// (`bytes */N` of a 416 included, last < first, last >= complete length, overflow, junk).
absl::StatusOr<ContentRange> ParseContentRange(std::string_view value);

// `bytes <first>-<last>/<complete>` for a 206 of `[first, complete)`; `complete` must be > first.
std::string FormatContentRange(uint64_t first, uint64_t complete);

}  // namespace ota::http
