// Host names, IP addresses and proxy URLs as written in the config files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ota::config {

// OK when `host` is a plausible host name, IPv4 address or IPv6 address (optionally with a
// "%zone"), written bare: no scheme, port, brackets, path or whitespace. Otherwise
// kInvalidArgument whose message is only the reason (callers add file, line and field).
absl::Status ValidateHost(std::string_view host);

// "host:port", with IPv6 literals bracketed ("[::1]:50051"), ready for gRPC or a URL.
std::string FormatHostPort(std::string_view host, uint16_t port);

// A proxy URL as upstream's pydantic AnyHttpUrl accepts it: http or https (scheme in any
// case), a host name or IP address ([...] for IPv6), optional port (default 80 / 443), optional
// user:password@, optional path/query/fragment (meaningless for a proxy: dropped, and
// *path_dropped set). Returns "scheme://[user:password@]host:port"; a normalised URL is a fixed
// point. Anything else is kInvalidArgument with the reason as the message.
absl::StatusOr<std::string> NormalizeProxyUrl(std::string_view url, bool* path_dropped = nullptr);

// An http(s) URL as the config files write it (logging_server, logging_server_grpc).
struct HttpUrl {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // a host name or an IP address; IPv6 without brackets
  std::optional<uint16_t> port;
  std::string path;  // "" or starting with '/'
  // The port, or the scheme's default (80, 443).
  uint16_t PortOrDefault() const;
  // "scheme://host[:port]" (IPv6 bracketed), without the path.
  std::string Origin() const;
  bool operator==(const HttpUrl&) const = default;
};

// Parses "http[s]://host[:port][/path]" (scheme in any case). No credentials, query or fragment;
// the host as ValidateHost accepts it (IPv6 in brackets). kInvalidArgument with the reason as the
// message; `example` is the form the message suggests ("http://10.0.0.1:8083").
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url, std::string_view example);

}  // namespace ota::config
