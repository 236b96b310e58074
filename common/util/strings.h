// String concatenation that accepts std::string_view. Debian's abseil is built with its own
// absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so absl::StrCat rejects
// std::string_view arguments; use ota::StrCat everywhere instead (it takes both, e.g.
// status.message(), which is an absl::string_view).
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace ota {
namespace strings_internal {

inline void AppendOne(std::string& out, std::string_view s) { out.append(s); }
inline void AppendOne(std::string& out, const char* s) { out.append(s); }
inline void AppendOne(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void AppendOne(std::string& out, const std::string& s) { out.append(s); }
inline void AppendOne(std::string& out, char c) { out.push_back(c); }
template <typename T>
requires(std::integral<T> && !std::same_as<T, char> &&
         !std::same_as<T, bool>) void AppendOne(std::string& out, T v) {
  out.append(std::to_string(v));
}
inline void AppendOne(std::string& out, bool b) { out.append(b ? "true" : "false"); }
inline void AppendOne(std::string& out, double d) { out.append(std::to_string(d)); }

}  // namespace strings_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strings_internal::AppendOne(out, args), ...);
  return out;
}

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (strings_internal::AppendOne(*out, args), ...);
}

// `text` as a decimal integer of type T: digits only (a '-' only for signed T), nothing else
// around them, in range; nullopt otherwise.
template <std::integral T>
std::optional<T> ParseDecimal(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// A byte count as given on a command line: "123", or with a binary unit suffix "64K", "10M",
// "2G" (either case). nullopt for anything else, or beyond 2^60.
inline std::optional<uint64_t> ParseByteSize(std::string_view text) {
  uint64_t unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'K':
      case 'k':
        unit = uint64_t{1} << 10;
        break;
      case 'M':
      case 'm':
        unit = uint64_t{1} << 20;
        break;
      case 'G':
      case 'g':
        unit = uint64_t{1} << 30;
        break;
      default:
        break;
    }
    if (unit != 1) text.remove_suffix(1);
  }
  std::optional<uint64_t> value = ParseDecimal<uint64_t>(text);
  if (!value || *value > (uint64_t{1} << 60) / unit) return std::nullopt;
  return *value * unit;
}

}  // namespace ota
