#include "common/config/host.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>

#include "common/config/yaml_fields.h"
#include "common/util/strings.h"

namespace ota::config {
namespace {

using internal::QuoteForMessage;

bool IsDigitsAndDots(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

bool IsValidIpv6(std::string_view text) {
  std::string address(text);
  std::string zone;
  if (size_t percent = address.find('%'); percent != std::string::npos) {
    zone = address.substr(percent + 1);
    address.resize(percent);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](unsigned char c) {
          return std::isalnum(c) || c == '_' || c == '-' || c == '.';
        })) {
      return false;
    }
  }
  in6_addr parsed;
  return inet_pton(AF_INET6, address.c_str(), &parsed) == 1;
}

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Renders one byte for an error message without letting control bytes into logs.
std::string Printable(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string(1, c);
  static constexpr char kHex[] = "0123456789abcdef";
  return StrCat("\\x", kHex[u >> 4], kHex[u & 0xf]);
}

absl::Status Invalid(const std::string& reason) { return absl::InvalidArgumentError(reason); }

}  // namespace

absl::Status ValidateHost(std::string_view host) {
  if (host.empty()) return Invalid("empty");
  if (host.find("://") != std::string_view::npos) {
    return Invalid("a URL; give only the host name or IP address (no scheme)");
  }
  for (char c : host) {
    if (std::isspace(static_cast<unsigned char>(c))) return Invalid("contains whitespace");
  }
  if (host.front() == '[') {
    return Invalid("IPv6 addresses are written without brackets here");
  }
  if (host.find(':') != std::string_view::npos) {
    if (IsValidIpv6(host)) return absl::OkStatus();
    return Invalid(
        "neither a host name nor an IPv6 address (the port is a separate key, not host:port)");
  }
  if (IsDigitsAndDots(host)) {
    std::string address(host);
    in_addr parsed;
    if (inet_pton(AF_INET, address.c_str(), &parsed) == 1) return absl::OkStatus();
    return Invalid("not a valid IPv4 address");
  }
  std::string_view name = host;
  if (name.back() == '.') name.remove_suffix(1);  // fully qualified "ecu.local."
  if (name.size() > 253) return Invalid("host name longer than 253 characters");
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty()) return Invalid("host name has an empty label (\"..\" or a leading dot)");
    if (label.size() > 63) return Invalid("host name label longer than 63 characters");
    for (char c : label) {
      if (!IsHostNameChar(c)) {
        return Invalid(StrCat("invalid character '", Printable(c), "' in a host name"));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return Invalid("host name label must not start or end with '-'");
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

absl::StatusOr<std::string> NormalizeProxyUrl(std::string_view url, bool* path_dropped) {
  if (path_dropped != nullptr) *path_dropped = false;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Invalid("expected a URL like http://10.0.0.1:8082");
  }
  std::string scheme(url.substr(0, scheme_end));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    return Invalid(StrCat("unsupported scheme ", QuoteForMessage(scheme),
                          ", expected http://host[:port] or https://host[:port]"));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  for (char c : rest) {
    if (std::isspace(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) < 0x20) {
      return Invalid("contains whitespace or control characters");
    }
  }
  // A path, query or fragment means nothing to a proxy (upstream's requests ignores it).
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.size() != rest.size() && rest.substr(authority.size()) != "/" &&
      path_dropped != nullptr) {
    *path_dropped = true;
  }
  std::string_view userinfo;
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    userinfo = authority.substr(0, at + 1);  // "user:password@", kept for the proxy
    authority.remove_prefix(at + 1);
  }
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("unterminated '[' in IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid("unexpected text after the IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
    if (!IsValidIpv6(host)) return Invalid(StrCat("invalid IPv6 address ", QuoteForMessage(host)));
  } else {
    size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.find(':') != std::string_view::npos) {
      return Invalid("IPv6 addresses in a URL must be in brackets: http://[::1]:8082");
    }
    if (absl::Status host_ok = ValidateHost(host); !host_ok.ok()) {
      return Invalid(StrCat("invalid host ", QuoteForMessage(host), ": ", host_ok.message()));
    }
  }
  unsigned port = scheme == "https" ? 443 : 80;
  if (has_port) {
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port < 1 || port > 65535) {
      return Invalid(StrCat("port must be an integer 1-65535, got ", QuoteForMessage(port_text)));
    }
  }
  const bool bracket = !authority.empty() && authority.front() == '[';
  return StrCat(scheme, "://", userinfo, bracket ? "[" : "", host, bracket ? "]" : "", ":", port);
}

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url, std::string_view example) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Invalid(StrCat("expected a URL like ", example));
  }
  HttpUrl parsed;
  parsed.scheme = std::string(url.substr(0, scheme_end));
  std::transform(parsed.scheme.begin(), parsed.scheme.end(), parsed.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (parsed.scheme != "http" && parsed.scheme != "https") {
    return Invalid(
        StrCat("unsupported scheme ", QuoteForMessage(parsed.scheme), ", expected ", example));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (authority_end != std::string_view::npos) {
    std::string_view path = rest.substr(authority_end);
    if (path.front() != '/' || path.find_first_of("?#") != std::string_view::npos) {
      return Invalid(StrCat("must not have a query or fragment; expected ", example));
    }
    for (char c : path) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        return Invalid("the path contains whitespace or control characters");
      }
    }
    parsed.path = std::string(path);
  }
  if (authority.find('@') != std::string_view::npos) {
    return Invalid("credentials in the URL are not supported");
  }
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("unterminated '[' in IPv6 address");
    const std::string_view host = authority.substr(1, close - 1);
    if (!IsValidIpv6(host)) return Invalid(StrCat("invalid IPv6 address ", QuoteForMessage(host)));
    parsed.host = std::string(host);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return Invalid(StrCat("unexpected text after ']', expected ", example));
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.rfind(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.find(':') != std::string_view::npos) {
      return Invalid(
          StrCat("IPv6 addresses in a URL must be in brackets: ", parsed.scheme, "://[::1]:8082"));
    }
    if (absl::Status host_ok = ValidateHost(host); !host_ok.ok()) {
      return Invalid(StrCat("invalid host ", QuoteForMessage(host), ": ", host_ok.message()));
    }
    parsed.host = std::string(host);
  }
  if (has_port) {
    const std::optional<unsigned> port = ParseDecimal<unsigned>(port_text);
    if (!port.has_value() || *port < 1 || *port > 65535 ||
        (port_text.size() > 1 && port_text.front() == '0')) {
      return Invalid(StrCat("port must be an integer 1-65535, got ", QuoteForMessage(port_text)));
    }
    parsed.port = static_cast<uint16_t>(*port);
  }
  return parsed;
}

uint16_t HttpUrl::PortOrDefault() const {
  if (port.has_value()) return *port;
  return scheme == "https" ? 443 : 80;
}

std::string HttpUrl::Origin() const {
  std::string out = StrCat(scheme, "://");
  if (host.find(':') != std::string::npos) {
    StrAppend(&out, "[", host, "]");
  } else {
    out.append(host);
  }
  if (port.has_value()) StrAppend(&out, ":", *port);
  return out;
}

}  // namespace ota::config
