// ParseCookiesJson: UpdateRequestEcu.cookies → the name/value pairs sent as one Cookie header.
#include <map>
#include <string>
#include <string_view>

#include "common/http/fetcher.h"
#include "common/util/strings.h"
#include "common/util/utf8.h"
#include "nlohmann/json.hpp"

namespace ota::http {
namespace {

// Real requests carry a few CloudFront cookies (~2 KiB); the cap bounds parser work on garbage.
constexpr size_t kMaxCookiesJsonBytes = size_t{64} * 1024;
constexpr size_t kMaxParseErrorBytes = 512;

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Names are RFC 6265 tokens minus the separators that would break "k1=v1; k2=v2".
bool IsValidCookieName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (IsControl(c) || c == ' ' || c == '=' || c == ';' || c == ',' || c == '"') return false;
  }
  return true;
}

// Values may hold anything except what ends a cookie or a header line (';', CR, LF, ...).
bool IsValidCookieValue(std::string_view value) {
  for (unsigned char c : value) {
    if (IsControl(c) || c == ';') return false;
  }
  return true;
}

// For error messages, which end up in the service's answers (protobuf strings, so valid UTF-8)
// and log lines: a name may be long, hold control characters that would garble a log line, or
// be cut in the middle of a character. At most 64 bytes of it (then "...").
std::string Printable(std::string_view text) {
  std::string out = ValidUtf8Prefix(text, 64 + 3);
  for (char& c : out) {
    if (IsControl(static_cast<unsigned char>(c))) c = '?';
  }
  return out;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseCookiesJson(std::string_view json) {
  std::map<std::string, std::string> cookies;
  // Upstream rejected "" (json.loads fails) and made callers send "{}". We accept "" as "no
  // cookies": it is what an unset proto string field looks like, and refusing it helps nobody.
  if (json.empty()) return cookies;
  if (json.size() > kMaxCookiesJsonBytes) {
    return absl::InvalidArgumentError(StrCat(
        "cookies: JSON is ", json.size(), " bytes, more than the limit of ", kMaxCookiesJsonBytes));
  }
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    // nlohmann reports parse errors only by exception; the message names the byte position and
    // quotes the token read so far, which may be long or end inside a character: bounded and
    // made valid UTF-8 (the message goes into the service's answer, a protobuf string).
    return absl::InvalidArgumentError(
        StrCat("cookies: not valid JSON: ", ValidUtf8Prefix(e.what(), kMaxParseErrorBytes)));
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(
        StrCat("cookies: expected a JSON object of strings, got ", parsed.type_name()));
  }
  for (const auto& [name, value] : parsed.items()) {
    // Never echo values: they are signed credentials.
    if (!IsValidCookieName(name)) {
      return absl::InvalidArgumentError(StrCat(
          "cookies: invalid cookie name \"", Printable(name),
          "\" (must be non-empty, without spaces, control characters, '=', ';', ',' or '\"')"));
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError(StrCat("cookies: value of \"", Printable(name),
                                               "\" must be a string, got ", value.type_name()));
    }
    const auto& text = value.get_ref<const std::string&>();
    if (!IsValidCookieValue(text)) {
      return absl::InvalidArgumentError(StrCat("cookies: value of \"", Printable(name),
                                               "\" contains ';' or a control character"));
    }
    cookies[name] = text;
  }
  return cookies;
}

}  // namespace ota::http
