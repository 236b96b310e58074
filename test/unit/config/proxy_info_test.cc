#include "common/config/proxy_info.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/config/test_util.h"

namespace ota::config {
namespace {

using ::ota::config::testing::IsConfigError;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr std::string_view kFile = "/boot/ota/proxy_info.yaml";

ProxyInfo ParseOk(std::string_view yaml) {
  absl::StatusOr<ProxyInfo> info = ParseProxyInfo(yaml, kFile);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : ProxyInfo{};
}

std::string At(int line, std::string_view field) {
  return ota::StrCat(kFile, ":", line, ": field \"", field, "\": ");
}
std::string At(int line) { return ota::StrCat(kFile, ":", line, ": "); }

TEST(ConfigProxyInfo, DefaultsAreTheMainEcuProfile) {
  ProxyInfo info;
  EXPECT_TRUE(info.enable_local_ota_proxy);
  EXPECT_EQ(info.upper_ota_proxy, "");
  EXPECT_TRUE(info.gateway);
  EXPECT_TRUE(info.enable_local_ota_proxy_cache);
  EXPECT_EQ(info.local_ota_proxy_listen_addr, "0.0.0.0");
  EXPECT_EQ(info.local_ota_proxy_listen_port, 8082);
  EXPECT_TRUE(info.source.empty());
  EXPECT_EQ(info.ProxyForOtaClient(), "http://127.0.0.1:8082");
  // Log upload on, to the fleet logging server on this host (upstream's defaults).
  EXPECT_EQ(info.logging_server, "http://127.0.0.1:8083");
  EXPECT_EQ(info.logging_server_grpc, "http://127.0.0.1:8084");
}

// Upstream: both default to the local logging server whether the file exists or not; null turns
// the upload (or its gRPC transport) off.
TEST(ConfigProxyInfo, LoggingServerKeys) {
  struct Case {
    std::string yaml;
    std::optional<std::string> server, grpc;
  };
  const std::optional<std::string> kServer = "http://127.0.0.1:8083";
  const std::optional<std::string> kGrpc = "http://127.0.0.1:8084";
  const std::vector<Case> cases = {
      {"enable_local_ota_proxy: true\n", kServer, kGrpc},
      {"logging_server: null\n", std::nullopt, kGrpc},
      {"logging_server:\n", std::nullopt, kGrpc},
      {"logging_server: ~\n", std::nullopt, kGrpc},
      {"logging_server_grpc: null\n", kServer, std::nullopt},
      {"logging_server: null\nlogging_server_grpc: null\n", std::nullopt, std::nullopt},
      {"logging_server: HTTP://Logs.Local:8083/\n", "http://Logs.Local:8083", kGrpc},
      {"logging_server: https://logs:8443/api/v1/\n", "https://logs:8443/api/v1", kGrpc},
      {"logging_server: 'http://[fd00::2]:8083'\n", "http://[fd00::2]:8083", kGrpc},
      {"logging_server: http://10.0.0.1\nlogging_server_grpc: http://10.0.0.1:9084\n",
       "http://10.0.0.1", "http://10.0.0.1:9084"},
      {"logging_server_grpc: http://10.0.0.1\n", kServer, "http://10.0.0.1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    const ProxyInfo info = ParseOk(c.yaml);
    EXPECT_EQ(info.logging_server, c.server);
    EXPECT_EQ(info.logging_server_grpc, c.grpc);
    EXPECT_THAT(info.warnings, IsEmpty());
  }

  struct Bad {
    std::string yaml, where, reason;
  };
  const std::vector<Bad> bad = {
      {"logging_server: ''\n", At(1, "logging_server"),
       "invalid URL \"\": expected a URL like http://10.0.0.1:8083 (null turns the log upload "
       "off)"},
      {"logging_server: 'null'\n", At(1, "logging_server"), "invalid URL \"null\""},
      {"logging_server: 8083\n", At(1, "logging_server"), "invalid URL \"8083\""},
      {"logging_server: ftp://logs:21\n", At(1, "logging_server"), "unsupported scheme \"ftp\""},
      {"logging_server: http://logs:8083/?x=1\n", At(1, "logging_server"),
       "must not have a query or fragment"},
      {"logging_server: http://u:p@logs:8083\n", At(1, "logging_server"), "credentials"},
      {"logging_server: [http://logs:8083]\n", At(1, "logging_server"),
       "expected an http(s) URL or null"},
      {"logging_server_grpc: http://logs:0\n", At(1, "logging_server_grpc"),
       "port must be an integer 1-65535, got \"0\""},
      {"logging_server_grpc: 'http://lo gs:1'\n", At(1, "logging_server_grpc"),
       "contains whitespace"},
  };
  for (const Bad& c : bad) {
    SCOPED_TRACE(c.yaml);
    EXPECT_TRUE(IsConfigError(ParseProxyInfo(c.yaml, kFile), c.where, c.reason));
  }
}

// Upstream: an empty document is invalid (otaclient then runs on the defaults).
TEST(ConfigProxyInfo, EmptyDocumentsAreInvalid) {
  for (std::string_view text : {"", "# nothing\n", "~", "---\n...\n"}) {
    SCOPED_TRACE(text);
    EXPECT_TRUE(
        IsConfigError(ParseProxyInfo(text, kFile), ota::StrCat(kFile, ": "), "no settings"));
  }
}

TEST(ConfigProxyInfo, UpstreamPredefinedMainEcuProfile) {
  ProxyInfo info = ParseOk("enable_local_ota_proxy: true\ngateway: true\n");
  ProxyInfo expected;
  expected.source = kFile;
  EXPECT_EQ(info, expected);
}

// A missing key is not a missing file: a file without enable_local_ota_proxy runs no local
// otaproxy (upstream's field default), while no file runs one.
TEST(ConfigProxyInfo, FileWithoutEnableKeyHasNoLocalProxy) {
  // Upstream's test "network_port_accepts_str".
  ProxyInfo info = ParseOk("local_ota_proxy_listen_port: \"8082\"");
  EXPECT_FALSE(info.enable_local_ota_proxy);
  EXPECT_EQ(info.local_ota_proxy_listen_port, 8082);
  EXPECT_TRUE(info.enable_local_ota_proxy_cache);
  EXPECT_TRUE(info.gateway);
  EXPECT_EQ(info.ProxyForOtaClient(), "");
  EXPECT_TRUE(ProxyInfo{}.enable_local_ota_proxy);
}

// Upstream's test "typical_sub_ecu_proxy_info": logging keys are not this module's (logged).
TEST(ConfigProxyInfo, UpstreamTypicalSubEcu) {
  ProxyInfo info = ParseOk(
      "enable_local_ota_proxy: true\n"
      "upper_ota_proxy: \"http://10.0.0.1:8082\"\n"
      "enable_local_ota_proxy_cache: true\n"
      "logging_server: \"http://10.0.0.1:8083\"\n"
      "logging_server_grpc: \"http://10.0.0.1:8084\"\n");
  EXPECT_TRUE(info.enable_local_ota_proxy);
  EXPECT_EQ(info.upper_ota_proxy, "http://10.0.0.1:8082");
  EXPECT_FALSE(info.gateway);  // behind an upper proxy: not the gateway (upstream's rule)
  EXPECT_EQ(info.ProxyForOtaClient(), "http://127.0.0.1:8082");
}

// Upstream's test "deprecated_field_aliases_to_new": the old alias and the removed gateway key.
TEST(ConfigProxyInfo, UpstreamDeprecatedFields) {
  ProxyInfo info = ParseOk("enable_ota_proxy: true\ngateway: false\n");
  EXPECT_TRUE(info.enable_local_ota_proxy);
  EXPECT_EQ(info.upper_ota_proxy, "");
  ASSERT_THAT(info.warnings, SizeIs(1));
  EXPECT_THAT(info.warnings[0], HasSubstr("\"enable_ota_proxy\": deprecated"));
}

TEST(ConfigProxyInfo, UpstreamPerceptionProfile) {
  ProxyInfo info = ParseOk(R"(
gateway: false
enable_local_ota_proxy: true
upper_ota_proxy: "http://10.0.0.1:8082"
enable_local_ota_proxy_cache: true
)");
  EXPECT_FALSE(info.gateway);
  EXPECT_TRUE(info.enable_local_ota_proxy);
  EXPECT_EQ(info.upper_ota_proxy, "http://10.0.0.1:8082");
  EXPECT_TRUE(info.enable_local_ota_proxy_cache);
  EXPECT_EQ(info.local_ota_proxy_listen_addr, "0.0.0.0");
  EXPECT_EQ(info.local_ota_proxy_listen_port, 8082);
  EXPECT_THAT(info.warnings, IsEmpty());
  // otaclient goes through its own local proxy, which chains to the upper one.
  EXPECT_EQ(info.ProxyForOtaClient(), "http://127.0.0.1:8082");
}

TEST(ConfigProxyInfo, SubEcuWithoutLocalProxyUsesUpperProxyDirectly) {
  ProxyInfo info = ParseOk(R"(gateway: false
enable_local_ota_proxy: false
enable_local_ota_proxy_cache: false
upper_ota_proxy: http://192.168.20.11:8082
)");
  EXPECT_EQ(info.ProxyForOtaClient(), "http://192.168.20.11:8082");
}

TEST(ConfigProxyInfo, FullProfile) {
  ProxyInfo info = ParseOk(R"(enable_local_ota_proxy: true
upper_ota_proxy: http://10.0.0.1:8083/
gateway: false
enable_local_ota_proxy_cache: false
local_ota_proxy_listen_addr: 10.0.0.2
local_ota_proxy_listen_port: 18082
)");
  EXPECT_EQ(info.upper_ota_proxy, "http://10.0.0.1:8083");  // trailing slash dropped
  EXPECT_FALSE(info.gateway);
  EXPECT_FALSE(info.enable_local_ota_proxy_cache);
  EXPECT_EQ(info.local_ota_proxy_listen_addr, "10.0.0.2");
  EXPECT_EQ(info.local_ota_proxy_listen_port, 18082);
  EXPECT_EQ(info.ProxyForOtaClient(), "http://10.0.0.2:18082");
}

TEST(ConfigProxyInfo, ProxyForOtaClient) {
  struct Case {
    bool local;
    std::string listen_addr;
    uint16_t port;
    std::string upper;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {true, "0.0.0.0", 8082, "", "http://127.0.0.1:8082"},
      {true, "0.0.0.0", 8082, "http://10.0.0.1:8082", "http://127.0.0.1:8082"},
      {true, "127.0.0.1", 9000, "", "http://127.0.0.1:9000"},
      {true, "10.1.2.3", 8082, "", "http://10.1.2.3:8082"},
      {true, "::", 8082, "", "http://[::1]:8082"},
      {true, "fd00::5", 8082, "", "http://[fd00::5]:8082"},
      {true, "localhost", 8082, "", "http://localhost:8082"},
      {false, "0.0.0.0", 8082, "http://10.0.0.1:8082", "http://10.0.0.1:8082"},
      {false, "0.0.0.0", 8082, "", ""},
  };
  for (const Case& c : cases) {
    ProxyInfo info;
    info.enable_local_ota_proxy = c.local;
    info.local_ota_proxy_listen_addr = c.listen_addr;
    info.local_ota_proxy_listen_port = c.port;
    info.upper_ota_proxy = c.upper;
    EXPECT_EQ(info.ProxyForOtaClient(), c.expected) << c.listen_addr << " " << c.upper;
  }
}

TEST(ConfigProxyInfo, AcceptedValues) {
  struct Case {
    std::string yaml;
    std::function<void(const ProxyInfo&)> check;
  };
  const std::vector<Case> cases = {
      {"gateway: True\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      {"gateway: FALSE\n", [](const ProxyInfo& i) { EXPECT_FALSE(i.gateway); }},
      {"gateway: False\n", [](const ProxyInfo& i) { EXPECT_FALSE(i.gateway); }},
      {"gateway: !!bool false\n", [](const ProxyInfo& i) { EXPECT_FALSE(i.gateway); }},
      {"gateway:\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      // YAML 1.1 booleans, as PyYAML reads them.
      {"enable_local_ota_proxy: yes\n",
       [](const ProxyInfo& i) { EXPECT_TRUE(i.enable_local_ota_proxy); }},
      {"enable_local_ota_proxy: On\n",
       [](const ProxyInfo& i) { EXPECT_TRUE(i.enable_local_ota_proxy); }},
      {"enable_local_ota_proxy: NO\nenable_local_ota_proxy_cache: off\n",
       [](const ProxyInfo& i) {
         EXPECT_FALSE(i.enable_local_ota_proxy);
         EXPECT_FALSE(i.enable_local_ota_proxy_cache);
       }},
      {"gateway: yes\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      // gateway is removed upstream (any value loads and is ignored): a non-boolean is ignored
      // here too, with a warning, and the default (no upper_ota_proxy: the gateway) stays.
      {"gateway: 123\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      {"gateway: 'false'\n",
       [](const ProxyInfo& i) {
         EXPECT_TRUE(i.gateway);
         ASSERT_EQ(i.warnings.size(), 1u);
         EXPECT_THAT(i.warnings[0], HasSubstr("not true or false; ignored"));
       }},
      {"gateway: [false]\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      {"gateway: !!str false\n", [](const ProxyInfo& i) { EXPECT_TRUE(i.gateway); }},
      // A repeated key: PyYAML keeps the later value and the file loads; so does ours, warned.
      {"enable_local_ota_proxy: true\nenable_local_ota_proxy: false\n",
       [](const ProxyInfo& i) {
         EXPECT_FALSE(i.enable_local_ota_proxy);
         ASSERT_EQ(i.warnings.size(), 1u);
         EXPECT_THAT(i.warnings[0], HasSubstr(":2: field \"enable_local_ota_proxy\": repeated key "
                                              "(first given at line 1); this later value is used"));
       }},
      {"format_version: 1\nenable_local_ota_proxy: true\n",
       [](const ProxyInfo& i) { EXPECT_THAT(i.warnings, IsEmpty()); }},
      {"enable_local_ota_proxy: false\n",
       [](const ProxyInfo& i) { EXPECT_FALSE(i.enable_local_ota_proxy); }},
      {"enable_local_ota_proxy_cache: false\n",
       [](const ProxyInfo& i) { EXPECT_FALSE(i.enable_local_ota_proxy_cache); }},
      {"local_ota_proxy_listen_port: 1\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.local_ota_proxy_listen_port, 1); }},
      {"local_ota_proxy_listen_port: 65535\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.local_ota_proxy_listen_port, 65535); }},
      {"local_ota_proxy_listen_port: \"18082\"\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.local_ota_proxy_listen_port, 18082); }},
      {"local_ota_proxy_listen_addr: '::'\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.local_ota_proxy_listen_addr, "::"); }},
      {"local_ota_proxy_listen_addr: proxy.local\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.local_ota_proxy_listen_addr, "proxy.local"); }},
      {"upper_ota_proxy:\n",
       [](const ProxyInfo& i) {
         EXPECT_EQ(i.upper_ota_proxy, "");
         EXPECT_TRUE(i.gateway);
       }},
      {"upper_ota_proxy: ~\n", [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, ""); }},
      // What upstream's AnyHttpUrl takes: https, no port, a path (meaningless: dropped).
      {"upper_ota_proxy: https://10.0.0.1:8082\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, "https://10.0.0.1:8082"); }},
      {"upper_ota_proxy: http://10.0.0.1\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, "http://10.0.0.1:80"); }},
      {"upper_ota_proxy: http://10.0.0.1:8082/ota?x=1\n",
       [](const ProxyInfo& i) {
         EXPECT_EQ(i.upper_ota_proxy, "http://10.0.0.1:8082");
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_THAT(i.warnings[0], HasSubstr("path, query or fragment of a proxy URL is ignored"));
       }},
      {"upper_ota_proxy: HTTP://Main-ECU:8082\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, "http://Main-ECU:8082"); }},
      {"upper_ota_proxy: 'http://[fd00::1]:8082'\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, "http://[fd00::1]:8082"); }},
      {"upper_ota_proxy: http://localhost:1\n",
       [](const ProxyInfo& i) { EXPECT_EQ(i.upper_ota_proxy, "http://localhost:1"); }},
      // Unknown keys: warnings, never errors. The NFS cache is otaproxy's (no warning).
      {"future_key: 1\nexternal_nfs_cache_mnt_point: /mnt/nfs\n",
       [](const ProxyInfo& i) {
         ASSERT_THAT(i.warnings, SizeIs(1));
         EXPECT_EQ(i.warnings[0],
                   "/boot/ota/proxy_info.yaml:1: field \"future_key\": unknown key, ignored");
         EXPECT_EQ(i.external_nfs_cache_mnt_point, "/mnt/nfs");
       }},
      {"external_nfs_cache_mnt_point: ~\n",
       [](const ProxyInfo& i) { EXPECT_FALSE(i.external_nfs_cache_mnt_point.has_value()); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    absl::StatusOr<ProxyInfo> info;
    EXPECT_NO_THROW(info = ParseProxyInfo(c.yaml, kFile));
    ASSERT_TRUE(info.ok()) << info.status();
    c.check(*info);
  }
}

TEST(ConfigProxyInfo, DeprecatedAliasWarnsAndTheNewNameWins) {
  ProxyInfo info = ParseOk("enable_ota_proxy: true\n");
  EXPECT_TRUE(info.enable_local_ota_proxy);
  ASSERT_THAT(info.warnings, SizeIs(1));
  EXPECT_THAT(info.warnings[0],
              HasSubstr(":1: field \"enable_ota_proxy\": deprecated, use enable_local_ota_proxy"));

  // Upstream's AliasChoices order: enable_local_ota_proxy wins, wherever it stands.
  info = ParseOk("enable_ota_proxy: true\nenable_local_ota_proxy: false\n");
  EXPECT_FALSE(info.enable_local_ota_proxy);
  ASSERT_THAT(info.warnings, SizeIs(1));
  EXPECT_THAT(info.warnings[0], HasSubstr("enable_local_ota_proxy is set too and wins"));

  info = ParseOk("enable_local_ota_proxy: true\nenable_ota_proxy: false\n");
  EXPECT_TRUE(info.enable_local_ota_proxy);

  // The alias is checked like any bool.
  EXPECT_TRUE(IsConfigError(ParseProxyInfo("enable_ota_proxy: 1\n", kFile),
                            At(1, "enable_ota_proxy"), "expected true or false, got \"1\""));
}

TEST(ConfigProxyInfo, UpstreamBadConfiguredSampleIsAnErrorNotDefaults) {
  // Upstream falls back to its defaults for the whole file (as otaclient does, logging this
  // error); the error names the first bad field.
  absl::StatusOr<ProxyInfo> info = ParseProxyInfo(R"(enable_local_ota_proxy: dafef
gateway: 123
upper_ota_proxy: true
enable_local_ota_proxy_cache: adfaea
local_ota_proxy_listen_addr: 123
local_ota_proxy_listen_port: "2808"
)",
                                                  kFile);
  EXPECT_TRUE(IsConfigError(info, At(1, "enable_local_ota_proxy"),
                            "expected true or false, got \"dafef\""));
}

TEST(ConfigProxyInfo, RejectedValuesNameFileLineAndField) {
  struct Case {
    std::string yaml;
    std::string where;
    std::string reason;
  };
  const std::vector<Case> cases = {
      // Each line of upstream's bad sample on its own.
      {"upper_ota_proxy: true\n", At(1, "upper_ota_proxy"),
       "expected a string, got \"true\" (YAML 1.1 reads it as a boolean)"},
      {"enable_local_ota_proxy_cache: adfaea\n", At(1, "enable_local_ota_proxy_cache"),
       "got \"adfaea\""},
      {"local_ota_proxy_listen_addr: 123\n", At(1, "local_ota_proxy_listen_addr"),
       "(YAML 1.1 reads it as an integer)"},
      {"local_ota_proxy_listen_addr: 10.0.0.300\n", At(1, "local_ota_proxy_listen_addr"),
       "not a valid IPv4 address"},
      // bools: the YAML 1.1 spellings only; a quoted "true" is a string (strict bool refuses it)
      {"enable_local_ota_proxy: \"true\"\n", At(1, "enable_local_ota_proxy"),
       "got the quoted string \"true\""},
      {"enable_local_ota_proxy: 1\n", At(1, "enable_local_ota_proxy"),
       "got \"1\" (YAML 1.1 reads it as an integer)"},
      {"enable_local_ota_proxy: y\n", At(1, "enable_local_ota_proxy"), "got \"y\""},
      // null where upstream's field is not Optional invalidates the file there
      {"enable_local_ota_proxy:\n", At(1, "enable_local_ota_proxy"), "got null"},
      {"enable_local_ota_proxy_cache: ~\n", At(1, "enable_local_ota_proxy_cache"), "got null"},
      {"local_ota_proxy_listen_port: ~\n", At(1, "local_ota_proxy_listen_port"), "got null"},
      {"local_ota_proxy_listen_addr:\n", At(1, "local_ota_proxy_listen_addr"), "got null"},
      {"format_version:\n", At(1, "format_version"), "got null"},
      {"format_version: '1'\n", At(1, "format_version"), "got the quoted string"},
      // ports
      {"local_ota_proxy_listen_port: -8082\n", At(1, "local_ota_proxy_listen_port"),
       "got \"-8082\""},
      {"local_ota_proxy_listen_port: 0\n", At(1, "local_ota_proxy_listen_port"), "got \"0\""},
      {"local_ota_proxy_listen_port: 70000\n", At(1, "local_ota_proxy_listen_port"),
       "got \"70000\""},
      {"local_ota_proxy_listen_port: 123456789012345678901234567890\n",
       At(1, "local_ota_proxy_listen_port"), "expected an integer 1-65535"},
      {"local_ota_proxy_listen_port: 8082.0\n", At(1, "local_ota_proxy_listen_port"),
       "got \"8082.0\""},
      {"local_ota_proxy_listen_port: '80a'\n", At(1, "local_ota_proxy_listen_port"),
       "got the quoted string \"80a\""},
      // listen address
      {"local_ota_proxy_listen_addr: 'http://0.0.0.0'\n", At(1, "local_ota_proxy_listen_addr"),
       "a URL"},
      {"local_ota_proxy_listen_addr: 0.0.0.0:8082\n", At(1, "local_ota_proxy_listen_addr"),
       "the port is a separate key"},
      {"local_ota_proxy_listen_addr: ''\n", At(1, "local_ota_proxy_listen_addr"),
       "must not be empty"},
      // upper proxy URL: "" is not a URL (upstream rejects the file)
      {"upper_ota_proxy: ''\n", At(1, "upper_ota_proxy"), "invalid URL \"\""},
      {"upper_ota_proxy: socks5://10.0.0.1:1080\n", At(1, "upper_ota_proxy"),
       "unsupported scheme \"socks5\""},
      {"upper_ota_proxy: 10.0.0.1:8082\n", At(1, "upper_ota_proxy"), "expected a URL like"},
      {"upper_ota_proxy: 'http://10.0.0.1:'\n", At(1, "upper_ota_proxy"),
       "port must be an integer 1-65535, got \"\""},
      {"upper_ota_proxy: http://10.0.0.1:0\n", At(1, "upper_ota_proxy"), "got \"0\""},
      {"upper_ota_proxy: http://10.0.0.1:65536\n", At(1, "upper_ota_proxy"), "got \"65536\""},
      {"upper_ota_proxy: http://10.0.0.1:80a\n", At(1, "upper_ota_proxy"), "got \"80a\""},
      {"upper_ota_proxy: http://:8082\n", At(1, "upper_ota_proxy"), "invalid host \"\": empty"},
      {"upper_ota_proxy: http://::1:8082\n", At(1, "upper_ota_proxy"), "must be in brackets"},
      {"upper_ota_proxy: 'http://[::1:8082'\n", At(1, "upper_ota_proxy"), "unterminated '['"},
      {"upper_ota_proxy: 'http://[zz::1]:8082'\n", At(1, "upper_ota_proxy"),
       "invalid IPv6 address"},
      {"upper_ota_proxy: http://300.0.0.1:8082\n", At(1, "upper_ota_proxy"),
       "not a valid IPv4 address"},
      {"upper_ota_proxy: 'http://a b:8082'\n", At(1, "upper_ota_proxy"), "contains whitespace"},
      {"upper_ota_proxy: [http://a:1]\n", At(1, "upper_ota_proxy"), "expected an http"},
      // YAML structure
      {"- gateway: true\n", At(1), "top level, got a list"},
      {"gateway: true\n\tgateway: false\n", At(2), "invalid YAML"},
      {"gateway: true\n---\ngateway: false\n", At(2), "more than one YAML document"},
      {"!!bool ,\n", At(1), "invalid YAML: unexpected \",\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    absl::StatusOr<ProxyInfo> info;
    EXPECT_NO_THROW(info = ParseProxyInfo(c.yaml, kFile));
    EXPECT_TRUE(IsConfigError(info, c.where, c.reason));
  }
}

TEST(ConfigProxyInfo, WhitespaceOnlyIsAnEmptyDocument) {
  EXPECT_TRUE(IsConfigError(ParseProxyInfo(std::string(4096, '\t') + "\n  \n\t# comment\n", kFile),
                            ota::StrCat(kFile, ": "), "no settings"));
}

TEST(ConfigProxyInfo, HostileInputsAreErrorsNotCrashes) {
  for (const std::string& input : {std::string(100000, '['), std::string("gateway: \"\\uD800\"\n"),
                                   std::string("*x"), std::string("upper_ota_proxy: &x [*x]\n")}) {
    SCOPED_TRACE(input.substr(0, 40));
    absl::StatusOr<ProxyInfo> info;
    EXPECT_NO_THROW(info = ParseProxyInfo(input, kFile));
    EXPECT_FALSE(info.ok());
  }
}

}  // namespace
}  // namespace ota::config
