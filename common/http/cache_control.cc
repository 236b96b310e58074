#include "common/http/cache_control.h"

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

constexpr size_t kMaxAlgLength = 16;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::Status Invalid(std::string_view directive, std::string_view why) {
  // Cap what we echo back: the header may be up to the header limit long.
  std::string shown(directive.substr(0, 80));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return absl::InvalidArgumentError(
      StrCat(kCacheControlHeader, ": directive '", shown, "': ", why));
}

absl::StatusOr<std::string> ParseSha256(std::string_view directive, std::string_view value) {
  if (value.size() != 64) return Invalid(directive, "file_sha256 must be 64 hex digits");
  std::string out(value);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Invalid(directive, "file_sha256 must be 64 hex digits");
    }
  }
  return out;
}

absl::StatusOr<std::string> ParseAlg(std::string_view directive, std::string_view value) {
  if (value.empty() || value.size() > kMaxAlgLength) {
    return Invalid(directive, "file_compression_alg must be 1-16 characters of [a-z0-9_-]");
  }
  std::string out(value);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-')) {
      return Invalid(directive, "file_compression_alg must be 1-16 characters of [a-z0-9_-]");
    }
  }
  if (out == "zstd") out = "zst";
  return out;
}

}  // namespace

absl::StatusOr<CacheControl> ParseCacheControl(std::string_view value) {
  CacheControl cc;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view raw = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const std::string_view directive = Trim(raw);
    if (directive.empty()) continue;
    const size_t eq = directive.find('=');
    const std::string_view name = Trim(directive.substr(0, eq));
    const bool has_value = eq != std::string_view::npos;
    const std::string_view arg = has_value ? Trim(directive.substr(eq + 1)) : std::string_view();
    if (name == "no_cache" || name == "retry_caching" || name == "use_cache") {
      if (has_value) return Invalid(directive, "takes no value");
      if (name == "no_cache") cc.no_cache = true;
      if (name == "retry_caching") cc.retry_caching = true;
    } else if (name == "file_sha256") {
      if (!has_value) return Invalid(directive, "needs =<sha256 hex>");
      OTA_ASSIGN_OR_RETURN(std::string sha, ParseSha256(directive, arg));
      if (!cc.file_sha256.empty() && cc.file_sha256 != sha) {
        return Invalid(directive, "file_sha256 given twice with different values");
      }
      cc.file_sha256 = std::move(sha);
    } else if (name == "file_compression_alg") {
      if (!has_value) return Invalid(directive, "needs =<alg>");
      OTA_ASSIGN_OR_RETURN(std::string alg, ParseAlg(directive, arg));
      if (!cc.file_compression_alg.empty() && cc.file_compression_alg != alg) {
        return Invalid(directive, "file_compression_alg given twice with different values");
      }
      cc.file_compression_alg = std::move(alg);
    } else {
      cc.ignored.emplace_back(directive);
    }
  }
  return cc;
}

std::string EchoCacheControl(const CacheControl& cc) {
  if (cc.file_sha256.empty()) return "";
  std::string out = StrCat("file_sha256=", cc.file_sha256);
  if (!cc.file_compression_alg.empty())
    StrAppend(&out, ",file_compression_alg=", cc.file_compression_alg);
  return out;
}

}  // namespace ota::http
