#include "common/util/utf8.h"

#include <algorithm>
#include <cstdint>

namespace ota {

size_t Utf8SequenceLength(std::string_view text) {
  if (text.empty()) return 0;
  const auto lead = static_cast<uint8_t>(text[0]);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1Fu;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0Fu;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07u;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const auto cont = static_cast<uint8_t>(text[k]);
    if ((cont & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (cont & 0x3Fu);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinForLength[length]) return 0;            // overlong
  if (code_point > 0x10FFFF) return 0;                         // beyond Unicode
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;  // surrogate
  return length;
}

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = Utf8SequenceLength(text.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ValidUtf8Prefix(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  static constexpr std::string_view kCut = "...";
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() <= max_bytes) {
    const size_t n = Utf8SequenceLength(text.substr(i));
    out.append(n == 0 ? kReplacement : text.substr(i, n));
    i += n == 0 ? 1 : n;
  }
  if (i == text.size() && out.size() <= max_bytes) return out;
  // Too long: whole characters only, then the cut mark.
  size_t keep = max_bytes - std::min(max_bytes, kCut.size());
  while (keep > 0 && (static_cast<uint8_t>(out[keep]) & 0xC0) == 0x80) --keep;
  out.resize(keep);
  out.append(kCut);
  return out;
}

}  // namespace ota
