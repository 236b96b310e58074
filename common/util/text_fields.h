// Small text helpers of the line-based system file parsers (mountinfo, fstab, grubenv, menus).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ota {

// Without leading/trailing spaces, tabs, CR and LF.
std::string_view TrimSpace(std::string_view s);
// Fields separated by runs of spaces/tabs.
std::vector<std::string_view> SplitFields(std::string_view line);
// Lines split on '\n' (a final line without '\n' included; a trailing '\n' adds no empty line).
std::vector<std::string_view> SplitLines(std::string_view text);
// Decodes \ooo octal escapes (as in mountinfo and fstab); other backslashes stay as they are.
std::string UnescapeOctal(std::string_view s);
std::string ToLower(std::string_view s);
// "/boot/", "//boot/./" → "/boot"; "//" → "/"; relative paths are kept relative.
std::string NormalizeMountPoint(std::string_view path);

}  // namespace ota
