#include "otaproxy/server/request_target.h"

#include <gtest/gtest.h>

#include <string>

namespace ota::proxy {
namespace {

struct Good {
  std::string target;
  ProxyTarget want;
  std::string cache_url;
  std::string https_url;
};

TEST(RequestTargetTest, ParsesAbsoluteForm) {
  const Good cases[] = {
      {"http://ota.example.com/images/1.0/metadata.jwt",
       {.host = "ota.example.com", .path_and_query = "/images/1.0/metadata.jwt"},
       "http://ota.example.com/images/1.0/metadata.jwt",
       "https://ota.example.com/images/1.0/metadata.jwt"},
      {"HTTP://OTA.Example.COM:8080/Data/A%20b.txt?x=1&y=%2F",
       {.host = "ota.example.com", .port = 8080, .path_and_query = "/Data/A%20b.txt?x=1&y=%2F"},
       "http://ota.example.com:8080/Data/A%20b.txt?x=1&y=%2F",
       "https://ota.example.com:8080/Data/A%20b.txt?x=1&y=%2F"},
      {"http://127.0.0.1:1",
       {.host = "127.0.0.1", .port = 1, .path_and_query = "/"},
       "http://127.0.0.1:1/",
       "https://127.0.0.1:1/"},
      {"http://h?q", {.host = "h", .path_and_query = "/?q"}, "http://h/?q", "https://h/?q"},
      {"https://h/x",
       {.host = "h", .path_and_query = "/x", .https = true},
       "http://h/x",
       "https://h/x"},
      {"http://[::1]:8082/a",
       {.host = "[::1]", .port = 8082, .path_and_query = "/a"},
       "http://[::1]:8082/a",
       "https://[::1]:8082/a"},
      {"http://[FE80::1]/a",
       {.host = "[fe80::1]", .path_and_query = "/a"},
       "http://[fe80::1]/a",
       "https://[fe80::1]/a"},
      {"http://h:/a", {.host = "h", .path_and_query = "/a"}, "http://h/a", "https://h/a"},
      // '@' after the authority is path, not userinfo (found by the fuzzer).
      {"http://http://u@/h:x",
       {.host = "http", .path_and_query = "//u@/h:x"},
       "http://http//u@/h:x",
       "https://http//u@/h:x"},
      {"http://h/data/%27quote%27/..%2F/%E3%81%82",
       {.host = "h", .path_and_query = "/data/%27quote%27/..%2F/%E3%81%82"},
       "http://h/data/%27quote%27/..%2F/%E3%81%82",
       "https://h/data/%27quote%27/..%2F/%E3%81%82"},
  };
  for (const Good& c : cases) {
    absl::StatusOr<ProxyTarget> got = ParseProxyTarget(c.target);
    ASSERT_TRUE(got.ok()) << c.target << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.target;
    EXPECT_EQ(got->CacheUrl(), c.cache_url) << c.target;
    EXPECT_EQ(got->UpstreamUrl(true), c.https_url) << c.target;
  }
}

TEST(RequestTargetTest, RejectsEverythingElse) {
  const std::string bad[] = {
      "",
      "/",
      "/data/a.txt",
      "*",
      "ota.example.com:443",  // CONNECT authority-form
      "ftp://h/a",
      "file:///etc/passwd",
      "http:/h/a",
      "http//h/a",
      "http://",
      "http:///a",
      "http://user:pw@h/a",
      "http://h@evil/a",
      "http://h:0/a",
      "http://h:65536/a",
      "http://h:99999999999999999999/a",
      "http://h:80x/a",
      "http://h:-1/a",
      "http://h h/a",
      "http://h/a b",
      "http://h/a\tb",
      "http://h/a\r\nX-Injected: 1",
      std::string("http://h/a\0b", 12),
      "http://h/a#frag",
      "http://h#frag",
      "http://h/%",
      "http://h/%4",
      "http://h/%zz",
      "http://h/\x7f",
      "http://h/\xc3\xa9",
      "http://h\xc3\xa9/a",
      "http://[::1/a",
      "http://[zz::1]/a",
      "http://h;x/a",
      "http://" + std::string(256, 'a') + "/x",
  };
  for (const std::string& target : bad) {
    absl::StatusOr<ProxyTarget> got = ParseProxyTarget(target);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << target;
  }
}

TEST(RequestTargetTest, OriginFormErrorSaysWhatToDo) {
  absl::StatusOr<ProxyTarget> got = ParseProxyTarget("/data/a.txt");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(std::string(got.status().message()).find("absolute URL"), std::string::npos);
}

}  // namespace
}  // namespace ota::proxy
