#include "common/config/host.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ota::config {
namespace {

using ::testing::HasSubstr;

TEST(ConfigHost, AcceptsPlausibleHosts) {
  for (std::string_view host :
       {"localhost", "10.0.0.1", "0.0.0.0", "255.255.255.255", "::", "::1", "fd00::1:2",
        "fe80::1%eth0", "ecu-1.vehicle.local", "ecu-1.vehicle.local.", "a", "under_score",
        "1.2.3.4.nip.io", "x1"}) {
    EXPECT_TRUE(ValidateHost(host).ok()) << host << ": " << ValidateHost(host);
  }
}

TEST(ConfigHost, RejectsWithAReason) {
  struct Case {
    std::string host;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"http://a", "a URL"},
      {"a b", "whitespace"},
      {"a\tb", "whitespace"},
      {"[::1]", "without brackets"},
      {"host:50051", "the port is a separate key"},
      {"1.2.3.4:5", "the port is a separate key"},
      {"fe80::1%", "neither a host name nor an IPv6 address"},
      {"fe80::1%e/0", "neither a host name nor an IPv6 address"},
      {"256.0.0.1", "not a valid IPv4 address"},
      {"1.2.3", "not a valid IPv4 address"},
      {"01.2.3.4", "not a valid IPv4 address"},
      {"1..2", "not a valid IPv4 address"},
      {".host", "empty label"},
      {"a..b", "empty label"},
      {"-a", "must not start or end with '-'"},
      {"a-.b", "must not start or end with '-'"},
      {std::string(64, 'a'), "label longer than 63"},
      {std::string(127, 'a') + "." + std::string(126, 'b'), "longer than 253"},
      {"a/b", "invalid character '/'"},
      {"a@b", "invalid character '@'"},
      {"\xe8\xaa\x8d\xe8\xad\x98", "invalid character '\\xe8'"},
      {std::string("a\x01", 2), "invalid character '\\x01'"},
  };
  for (const Case& c : cases) {
    absl::Status status = ValidateHost(c.host);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.host;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.reason)) << c.host;
  }
}

TEST(ConfigHost, FormatHostPortBracketsIpv6) {
  EXPECT_EQ(FormatHostPort("10.0.0.1", 50051), "10.0.0.1:50051");
  EXPECT_EQ(FormatHostPort("localhost", 1), "localhost:1");
  EXPECT_EQ(FormatHostPort("::1", 8082), "[::1]:8082");
  EXPECT_EQ(FormatHostPort("fe80::1%eth0", 65535), "[fe80::1%eth0]:65535");
}

TEST(ConfigHost, NormalizeProxyUrl) {
  struct Case {
    std::string url;
    std::string normalized;  // "" = expect an error
    bool path_dropped = false;
  };
  const std::vector<Case> cases = {
      {"http://10.0.0.1:8082", "http://10.0.0.1:8082"},
      {"http://10.0.0.1:8082/", "http://10.0.0.1:8082"},
      {"Http://proxy:1", "http://proxy:1"},
      {"http://[::1]:8082", "http://[::1]:8082"},
      // What upstream's AnyHttpUrl accepts too.
      {"http://10.0.0.1", "http://10.0.0.1:80"},
      {"HTTPS://proxy", "https://proxy:443"},
      {"https://10.0.0.1:8443/", "https://10.0.0.1:8443"},
      {"http://[::1]", "http://[::1]:80"},
      {"http://10.0.0.1:08082", "http://10.0.0.1:8082"},
      {"http://user:pw@10.0.0.1:8082", "http://user:pw@10.0.0.1:8082"},
      {"http://10.0.0.1:8082//", "http://10.0.0.1:8082", true},
      {"http://10.0.0.1:8082#f", "http://10.0.0.1:8082", true},
      {"http://10.0.0.1:8082/ota?x=1", "http://10.0.0.1:8082", true},
      {"http://h?x", "http://h:80", true},
      // Not URLs of a proxy.
      {"socks5://h:1", ""},
      {"ftp://h", ""},
      {"10.0.0.1:8082", ""},
      {"http:/10.0.0.1:8082", ""},
      {"http://", ""},
      {"http://:1", ""},
      {"http://[]:1", ""},
      {"http://[::1", ""},
      {"http://[::1]x", ""},
      {"http://::1:8082", ""},
      {"http://h:", ""},
      {"http://h:0", ""},
      {"http://h:65536", ""},
      {"http://h:-1", ""},
      {"http://h:+1", ""},
      {"http://h: 1", ""},
      {"http://h\t:1", ""},
      {"http://a..b:1", ""},
      {"", ""},
  };
  for (const Case& c : cases) {
    bool path_dropped = !c.path_dropped;
    absl::StatusOr<std::string> result = NormalizeProxyUrl(c.url, &path_dropped);
    if (c.normalized.empty()) {
      EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
      continue;
    }
    ASSERT_TRUE(result.ok()) << c.url << ": " << result.status();
    EXPECT_EQ(*result, c.normalized) << c.url;
    EXPECT_EQ(path_dropped, c.path_dropped) << c.url;
    // A normalised URL is a fixed point.
    EXPECT_EQ(NormalizeProxyUrl(*result).value_or("error"), *result);
  }
}

}  // namespace
}  // namespace ota::config
