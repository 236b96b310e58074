// Format detection against a real nginx (test/lib/nginx): the status of GET <base>/oci-layout
// decides, through the same fetcher (and so the same cookies and TLS) as the update.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/http/curl_fetcher.h"
#include "common/image/image_reader.h"
#include "test/lib/nginx/nginx_fixture.h"

namespace ota::image {
namespace {

using ::testing::HasSubstr;

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nginx = testing::NginxServer::Start();
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = std::move(*nginx);
    std::filesystem::create_directories(nginx_->doc_root() / "img");
    std::ofstream(nginx_->doc_root() / "img" / "oci-layout")
        << R"({"imageLayoutVersion": "1.0.0"})";
    std::filesystem::create_directories(nginx_->doc_root() / "legacy");
  }

  std::unique_ptr<http::Fetcher> Fetcher(std::map<std::string, std::string> cookies = {}) {
    http::FetcherConfig c;
    c.ca_bundle = nginx_->ca_pem().string();
    c.cookies = std::move(cookies);
    c.max_attempts = 2;
    c.backoff_initial_ms = 10;
    return http::CreateCurlFetcher(c);
  }

  std::unique_ptr<testing::NginxServer> nginx_;
};

TEST_F(DetectTest, StatusDecides) {
  auto fetcher = Fetcher();
  auto v1 = DetectImageFormat(*fetcher, nginx_->HttpsUrl("/img"));
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, ImageFormat::kV1);
  for (const char* legacy : {"/legacy", "/status/401", "/status/403", "/status/404"}) {
    auto f = DetectImageFormat(*fetcher, nginx_->HttpUrl(legacy));
    ASSERT_TRUE(f.ok()) << legacy << ": " << f.status();
    EXPECT_EQ(*f, ImageFormat::kLegacy) << legacy;
  }
  for (const char* broken : {"/status/500", "/status/400", "/status/429"}) {
    auto f = DetectImageFormat(*fetcher, nginx_->HttpUrl(broken));
    ASSERT_FALSE(f.ok()) << broken;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("detecting the image format"));
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("oci-layout"));
  }
  // Retried before giving up: two attempts for the 500.
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok());
  int tries = 0;
  for (const auto& e : *log) tries += e.target == "/status/500/oci-layout" ? 1 : 0;
  EXPECT_EQ(tries, 2);
}

TEST_F(DetectTest, SameSessionAsTheUpdate) {
  // /protected/<path> serves <path> when the request has the cookie ota-token=secret. Without the cookie the wall answers 403: legacy (the metadata.jwt fetch then fails with
  // its own 403, as for any legacy image behind a wrong cookie).
  auto no_cookie = DetectImageFormat(*Fetcher(), nginx_->HttpsUrl("/protected/img"));
  ASSERT_TRUE(no_cookie.ok());
  EXPECT_EQ(*no_cookie, ImageFormat::kLegacy);
  auto with_cookie =
      DetectImageFormat(*Fetcher({{"ota-token", "secret"}}), nginx_->HttpsUrl("/protected/img"));
  ASSERT_TRUE(with_cookie.ok()) << with_cookie.status();
  EXPECT_EQ(*with_cookie, ImageFormat::kV1);
}

}  // namespace
}  // namespace ota::image
