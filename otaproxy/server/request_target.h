// The request-target of a proxy request: absolute-form "http://host[:port]/path[?query]"
// (RFC 9112 §3.2.2). Strict: http/https only, no userinfo, no fragment, no whitespace,
// control or non-ASCII bytes, '%' must start a valid escape. The path and query are kept as
// sent (the client percent-encoded them; re-encoding would change the URL the server sees).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace ota::proxy {

struct ProxyTarget {
  std::string host;            // lowercase; an IPv6 literal keeps its brackets
  uint16_t port = 0;           // 0 = the scheme's default
  std::string path_and_query;  // starts with '/'
  bool https = false;          // the client wrote https://

  // "http://host[:port]/path?query": the cache key of requests without file_sha256. The scheme
  // is always http so a request does not change key with the upstream scheme.
  std::string CacheUrl() const;
  // The URL fetched upstream: https when `use_https`, else http; the port is kept as given.
  std::string UpstreamUrl(bool use_https) const;

  bool operator==(const ProxyTarget&) const = default;
};

// Error: kInvalidArgument saying what is wrong (origin-form, scheme, host, port, bytes).
absl::StatusOr<ProxyTarget> ParseProxyTarget(std::string_view target);

}  // namespace ota::proxy
