#include "common/image/url.h"

#include <string>
#include <string_view>

namespace ota::image {
namespace {

bool IsUnreservedOrSlash(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || c == '~' || c == '/';
}

std::string_view StripLeadingSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  return s;
}

}  // namespace

std::string PercentEncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size() + path.size() / 4);
  for (char ch : path) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (IsUnreservedOrSlash(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::string JoinUrl(std::string_view base, std::string_view relative) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  relative = StripLeadingSlashes(relative);
  std::string out;
  out.reserve(base.size() + 1 + relative.size());
  out.append(base);
  out.push_back('/');
  out.append(relative);
  return out;
}

std::string RegularFileUrl(std::string_view base_url, std::string_view rootfs_dir,
                           std::string_view abs_path) {
  // rootfs_dir is used unquoted, as the existing client does.
  return JoinUrl(JoinUrl(base_url, rootfs_dir), PercentEncodePath(StripLeadingSlashes(abs_path)));
}

std::string CompressedBlobUrl(std::string_view base_url, std::string_view compressed_dir,
                              std::string_view sha256_hex) {
  std::string name(sha256_hex);
  name.append(".zst");
  return JoinUrl(JoinUrl(base_url, compressed_dir), PercentEncodePath(name));
}

}  // namespace ota::image
