#include "common/http/byte_range.h"

#include "absl/status/status.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view v) {
  while (!v.empty() && IsSpace(v.front())) v.remove_prefix(1);
  while (!v.empty() && IsSpace(v.back())) v.remove_suffix(1);
  return v;
}

bool StartsWithBytesUnit(std::string_view v) {
  constexpr std::string_view kBytes = "bytes";
  if (v.size() < kBytes.size()) return false;
  for (size_t i = 0; i < kBytes.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kBytes[i]) return false;
  }
  return true;
}

// Digits only (no sign, no space), fitting in uint64_t.
std::optional<uint64_t> Number(std::string_view v) {
  if (v.empty() || v.front() < '0' || v.front() > '9') return std::nullopt;
  return ParseDecimal<uint64_t>(v);
}

}  // namespace

std::optional<ByteRange> ParseRangeHeader(std::string_view value) {
  value = Trim(value);
  if (!StartsWithBytesUnit(value)) return std::nullopt;
  value.remove_prefix(5);
  value = Trim(value);
  if (value.empty() || value.front() != '=') return std::nullopt;
  value = Trim(value.substr(1));
  const size_t dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::optional<uint64_t> first = Number(value.substr(0, dash));
  if (!first) return std::nullopt;  // suffix range or junk
  ByteRange range{.first = *first, .last = std::nullopt};
  std::string_view rest = value.substr(dash + 1);
  if (!rest.empty()) {
    std::optional<uint64_t> last = Number(rest);  // a ',' (several ranges) fails here too
    if (!last || *last < *first) return std::nullopt;
    range.last = *last;
  }
  return range;
}

absl::StatusOr<ContentRange> ParseContentRange(std::string_view value) {
  const std::string_view original = value;
  auto bad = [original](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("Content-Range \"", original.substr(0, 80), "\": ", why));
  };
  value = Trim(value);
  if (!StartsWithBytesUnit(value)) return bad("unit is not bytes");
  value.remove_prefix(5);
  if (value.empty() || !IsSpace(value.front())) return bad("no space after the unit");
  value = Trim(value);
  const size_t dash = value.find('-');
  const size_t slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash) {
    return bad("expected <first>-<last>/<length>");
  }
  std::optional<uint64_t> first = Number(value.substr(0, dash));
  std::optional<uint64_t> last = Number(value.substr(dash + 1, slash - dash - 1));
  if (!first || !last) return bad("range bounds are not decimal numbers");
  if (*last < *first) return bad("last byte before first byte");
  ContentRange range{.first = *first, .last = *last, .complete = std::nullopt};
  std::string_view complete = value.substr(slash + 1);
  if (complete != "*") {
    std::optional<uint64_t> length = Number(complete);
    if (!length) return bad("complete length is neither a number nor *");
    if (*last >= *length) return bad("range ends beyond the complete length");
    range.complete = *length;
  }
  return range;
}

std::string FormatContentRange(uint64_t first, uint64_t complete) {
  return StrCat("bytes ", first, "-", complete - 1, "/", complete);
}

}  // namespace ota::http
