// What the fleet receives: the uploaded log line (the deployed client's JSON line format, always
// valid JSON), JSON string escaping, logger names, and where the upload goes (the deployed
// client's endpoint rules, including the gRPC host quirk).
#include <regex>
#include <string>
#include <vector>

#include "common/config/proxy_info.h"
#include "common/telemetry/upload_endpoints.h"
#include "common/telemetry/upload_line.h"
#include "common/util/json.h"
#include "common/util/utf8.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ota::telemetry {
namespace {

std::string Json(std::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

TEST(JsonString, EscapesWhatJsonRequiresAndKeepsValidUtf8) {
  struct Case {
    std::string in, out;
  };
  const std::vector<Case> cases = {
      {"", R"("")"},
      {"plain text", R"("plain text")"},
      {R"(say "hi")", R"("say \"hi\"")"},
      {R"(C:\path)", R"("C:\\path")"},
      {"a\nb\rc\td", R"("a\nb\rc\td")"},
      {std::string("\b\f", 2), R"("\b\f")"},
      {std::string("nul\0x", 5), R"("nul\u0000x")"},
      {"\x1f\x7f", R"("\u001f\u007f")"},
      {"ünïcødé ✓ 🚗", "\"ünïcødé ✓ 🚗\""},
      {"bad \xff byte", "\"bad \xEF\xBF\xBD byte\""},
      {"cut \xe2\x9c", "\"cut \xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"overlong \xc0\xaf", "\"overlong \xEF\xBF\xBD\xEF\xBF\xBD\""},
      {"surrogate \xed\xa0\x80", "\"surrogate \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    const std::string out = Json(c.in);
    EXPECT_EQ(out, c.out);
    EXPECT_TRUE(IsValidUtf8(out));
    const nlohmann::json parsed = nlohmann::json::parse(out, nullptr, false);
    ASSERT_TRUE(parsed.is_string()) << out;
    if (IsValidUtf8(c.in)) {
      EXPECT_EQ(parsed.get<std::string>(), c.in);
    }
  }
}

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
  EXPECT_EQ(Utf8SequenceLength("a"), 1u);
  EXPECT_EQ(Utf8SequenceLength("ü"), 2u);
  EXPECT_EQ(Utf8SequenceLength("✓"), 3u);
  EXPECT_EQ(Utf8SequenceLength("🚗"), 4u);
  EXPECT_EQ(Utf8SequenceLength("\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xf4\x90\x80\x80"), 0u);  // beyond U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xe0\x80\x80"), 0u);      // overlong
  EXPECT_TRUE(IsValidUtf8("ascii ü ✓ 🚗"));
  EXPECT_FALSE(IsValidUtf8("x\xc3"));
}

TEST(UploadLine, LoggerNamesFollowThePythonPackages) {
  const std::string root = std::string(OTA_SOURCE_DIR) + "/";
  EXPECT_EQ(LoggerName(root + "otaclient/update/update_session.cc"),
            "otaclient.update.update_session");
  EXPECT_EQ(LoggerName(root + "otaclient/main.cc"), "otaclient.main");
  EXPECT_EQ(LoggerName(root + "common/http/curl_fetcher.cc"), "otaclient_common.http.curl_fetcher");
  EXPECT_EQ(LoggerName(root + "common/log/log.h"), "otaclient_common.log.log");
  EXPECT_EQ(LoggerName(root + "otaproxy/server/admin.cc"), "ota_proxy.server.admin");
  EXPECT_EQ(LoggerName("/elsewhere/some.dir/file.cc"), "file");
  EXPECT_EQ(LoggerName(""), "");
}

TEST(UploadLine, IsTheDeployedClientsJsonLineInItsFieldOrder) {
  const std::string file = std::string(OTA_SOURCE_DIR) + "/otaclient/update/update_session.cc";
  // 2026-08-01 12:34:56.789 UTC
  const auto time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1785587696789));
  const log::Record record{.type = log::RecordType::kLog,
                           .level = log::Level::kWarning,
                           .time = time,
                           .text = R"(image "verified" url=https://h/x dirs=3)",
                           .where = log::Where(file.c_str(), "RunSteps", 181)};
  const std::string line = FormatUploadLine(record, 16 << 10);
  const std::regex shape(
      R"re(\{"timestamp":"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,789","level":"WARNING","logger":"otaclient\.update\.update_session","function":"RunSteps","line":181,"message":"image \\"verified\\" url=https://h/x dirs=3"\})re");
  EXPECT_TRUE(std::regex_match(line, shape)) << line;
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["message"], R"(image "verified" url=https://h/x dirs=3)");
  // Local time, as Python's asctime.
  const time_t t = 1785587696;
  struct tm local {};
  ASSERT_NE(localtime_r(&t, &local), nullptr);
  char expected[32];
  ASSERT_GT(strftime(expected, sizeof(expected), "%Y-%m-%d %H:%M:%S,789", &local), 0u);
  EXPECT_EQ(parsed["timestamp"], expected);
}

TEST(UploadLine, LevelsLambdasAndCutText) {
  EXPECT_EQ(PythonLevelName(log::Level::kDebug), "DEBUG");
  EXPECT_EQ(PythonLevelName(log::Level::kInfo), "INFO");
  EXPECT_EQ(PythonLevelName(log::Level::kWarning), "WARNING");
  EXPECT_EQ(PythonLevelName(log::Level::kError), "ERROR");
  const log::Record record{.type = log::RecordType::kLog,
                           .level = log::Level::kError,
                           .time = std::chrono::system_clock::now(),
                           .text = "0123456789",
                           .where = log::Where("x.cc", "operator()", 1)};
  const nlohmann::json parsed = nlohmann::json::parse(FormatUploadLine(record, 4));
  EXPECT_EQ(parsed["function"], "<lambda>");
  EXPECT_EQ(parsed["message"], "0123…[6 bytes cut]");
  EXPECT_EQ(parsed["level"], "ERROR");
}

// --- endpoints ---

struct EndpointCase {
  std::optional<std::string> server, grpc;
  std::string ecu_id;
  std::string http_url, grpc_target;  // http_url "" = upload off
};

TEST(UploadEndpoints, FollowTheDeployedClient) {
  const std::vector<EndpointCase> cases = {
      // Defaults (with or without a proxy_info file).
      {"http://127.0.0.1:8083", "http://127.0.0.1:8084", "autoware",
       "http://127.0.0.1:8083/autoware", "127.0.0.1:8084"},
      // The gRPC URL's host is ignored: logging_server's host with the gRPC port.
      {"http://10.0.0.1:8083", "http://192.168.0.9:9000", "main", "http://10.0.0.1:8083/main",
       "10.0.0.1:9000"},
      // No port in the gRPC URL: its scheme's default.
      {"http://10.0.0.1:8083", "http://10.0.0.1", "main", "http://10.0.0.1:8083/main",
       "10.0.0.1:80"},
      {"https://logs.example:8443/base", "https://x", "main", "https://logs.example:8443/base/main",
       "logs.example:443"},
      // gRPC off: HTTP only.
      {"http://127.0.0.1:8083", std::nullopt, "main", "http://127.0.0.1:8083/main", ""},
      {"http://[fd00::1]:8083", "http://127.0.0.1:8084", "main", "http://[fd00::1]:8083/main",
       "[fd00::1]:8084"},
      // The id is a path segment.
      {"http://127.0.0.1:8083", "http://127.0.0.1:8084", "ecu main#1",
       "http://127.0.0.1:8083/ecu%20main%231", "127.0.0.1:8084"},
      // Upload off.
      {std::nullopt, "http://127.0.0.1:8084", "main", "", ""},
  };
  for (const EndpointCase& c : cases) {
    SCOPED_TRACE(c.server.value_or("null") + " " + c.grpc.value_or("null"));
    config::ProxyInfo info;
    info.logging_server = c.server;
    info.logging_server_grpc = c.grpc;
    const auto endpoints = ResolveUploadEndpoints(info, c.ecu_id);
    ASSERT_TRUE(endpoints.ok()) << endpoints.status();
    if (c.http_url.empty()) {
      EXPECT_FALSE(endpoints->has_value());
      continue;
    }
    ASSERT_TRUE(endpoints->has_value());
    EXPECT_EQ((*endpoints)->http_url, c.http_url);
    EXPECT_EQ((*endpoints)->grpc_target, c.grpc_target);
  }
  config::ProxyInfo defaults;
  EXPECT_EQ(defaults.logging_server, "http://127.0.0.1:8083");
  EXPECT_EQ(defaults.logging_server_grpc, "http://127.0.0.1:8084");
  EXPECT_FALSE(ResolveUploadEndpoints(defaults, "").ok());
  defaults.logging_server = "not a url";
  EXPECT_EQ(ResolveUploadEndpoints(defaults, "e").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ota::telemetry
