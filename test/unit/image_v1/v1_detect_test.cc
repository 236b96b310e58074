// Format detection against a real nginx (test/lib/nginx): the status of GET <base>/oci-layout
// decides, through the same fetcher (and so the same cookies and TLS) as the update.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <span>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
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
  // /protected/<path> serves <path> when the request has the cookie ota-token=secret. Without the
  // cookie the wall answers 403: legacy (the metadata.jwt fetch then fails with its own 403, as for
  // any legacy image behind a wrong cookie).
  auto no_cookie = DetectImageFormat(*Fetcher(), nginx_->HttpsUrl("/protected/img"));
  ASSERT_TRUE(no_cookie.ok());
  EXPECT_EQ(*no_cookie, ImageFormat::kLegacy);
  auto with_cookie =
      DetectImageFormat(*Fetcher({{"ota-token", "secret"}}), nginx_->HttpsUrl("/protected/img"));
  ASSERT_TRUE(with_cookie.ok()) << with_cookie.status();
  EXPECT_EQ(*with_cookie, ImageFormat::kV1);
}

// A zstd blob of a v1 image is asked for by its own digest (what the proxy caches and checks),
// while the fetcher still verifies the decoded content against the content's digest.
TEST_F(DetectTest, CompressedBlobsAreCachedByTheirOwnDigest) {
  const std::string content(5000, 'z');
  const std::string packed = [&] {
    std::string out(ZSTD_compressBound(content.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), content.data(), content.size(), 3));
    return out;
  }();
  const crypto::Sha256Digest blob = crypto::Sha256Of(packed);
  std::ofstream(nginx_->doc_root() / crypto::ToHex(blob), std::ios::binary) << packed;
  http::FetcherConfig c;
  c.send_cache_control = true;
  auto fetcher = http::CreateCurlFetcher(c);
  auto tmp = fs::TempDir::Create("v1-body-sha");
  ASSERT_TRUE(tmp.ok());
  http::DownloadJob job;
  job.url = nginx_->HttpUrl("/" + crypto::ToHex(blob));
  job.dest = tmp->path() / "out";
  job.sha256 = crypto::Sha256Of(content);
  job.size = content.size();
  job.compression = content::Compression::kZstd;
  job.body_sha256 = blob;
  absl::Status result = absl::InternalError("not reported");
  const http::CancelFlag never{false};
  ASSERT_TRUE(fetcher
                  ->DownloadAll(
                      std::span(&job, 1),
                      [&](const http::DownloadResult& r) {
                        result = r.status;
                        return true;
                      },
                      {}, never)
                  .ok());
  ASSERT_TRUE(result.ok()) << result;
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok());
  bool seen = false;
  for (const auto& e : *log) {
    if (e.target != "/" + crypto::ToHex(blob)) continue;
    EXPECT_EQ(e.cache_control, "file_sha256=" + crypto::ToHex(blob));
    seen = true;
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace ota::image
