#include "otaproxy/server/request_target.h"

#include <charconv>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

absl::Status Invalid(std::string_view why) {
  return absl::InvalidArgumentError(StrCat("request target: ", why));
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (Lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

// reg-name (letters, digits, '-', '.', '_', '~'), IPv4, or "[IPv6]"; lowercased.
absl::StatusOr<std::string> ParseHost(std::string_view host) {
  if (host.empty()) return Invalid("empty host");
  if (host.size() > 255) return Invalid("host longer than 255 characters");
  std::string out;
  out.reserve(host.size());
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 4) return Invalid("bad IPv6 literal");
    for (char c : host.substr(1, host.size() - 2)) {
      if (!IsHex(c) && c != ':' && c != '.') return Invalid("bad IPv6 literal");
    }
    for (char c : host) out.push_back(Lower(c));
    return out;
  }
  for (char c : host) {
    if (!IsAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~') {
      return Invalid("host has a character outside [A-Za-z0-9._~-]");
    }
    out.push_back(Lower(c));
  }
  return out;
}

}  // namespace

std::string ProxyTarget::CacheUrl() const { return UpstreamUrl(false); }

std::string ProxyTarget::UpstreamUrl(bool use_https) const {
  std::string out = StrCat(use_https ? "https://" : "http://", host);
  if (port != 0) StrAppend(&out, ":", static_cast<int>(port));
  out.append(path_and_query);
  return out;
}

absl::StatusOr<ProxyTarget> ParseProxyTarget(std::string_view target) {
  ProxyTarget out;
  if (target.empty()) return Invalid("empty");
  if (target.front() == '/') {
    return Invalid("origin-form (\"/path\"): this is a proxy, send the absolute URL");
  }
  std::string_view rest;
  if (StartsWithNoCase(target, "http://")) {
    rest = target.substr(7);
  } else if (StartsWithNoCase(target, "https://")) {
    rest = target.substr(8);
    out.https = true;
  } else {
    return Invalid("only absolute http:// or https:// URLs are proxied");
  }
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return Invalid("userinfo is not allowed");
  std::string_view host = authority;
  // Port: after the last ':' unless it belongs to an IPv6 literal.
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos &&
      (authority.front() != '[' || colon > authority.rfind(']'))) {
    host = authority.substr(0, colon);
    const std::string_view port_text = authority.substr(colon + 1);
    if (!port_text.empty()) {
      unsigned port = 0;
      const auto [end, ec] =
          std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
      if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
          port > 65535 || port_text.size() > 5) {
        return Invalid("bad port");
      }
      out.port = static_cast<uint16_t>(port);
    }
  }
  OTA_ASSIGN_OR_RETURN(out.host, ParseHost(host));
  if (!path.empty() && path.front() == '#') return Invalid("fragment is not allowed");
  for (size_t i = 0; i < path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    if (c <= 0x20 || c >= 0x7f) return Invalid("path has a space, control or non-ASCII byte");
    if (c == '#') return Invalid("fragment is not allowed");
    if (c == '%' && (i + 2 >= path.size() || !IsHex(path[i + 1]) || !IsHex(path[i + 2]))) {
      return Invalid("'%' not followed by two hex digits");
    }
  }
  out.path_and_query = path.empty() || path.front() == '?' ? StrCat("/", path) : std::string(path);
  return out;
}

}  // namespace ota::proxy
