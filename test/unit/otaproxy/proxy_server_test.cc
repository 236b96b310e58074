// ProxyServer in this process, nginx (test/lib/nginx) upstream, libcurl as the client: as a
// gateway (http from the client, https upstream) the proxy follows same-scheme redirects and
// refuses an https → http redirect with a 502 that says so, through the cache and without it.
#include "otaproxy/server/proxy_server.h"

#include <curl/curl.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "otaproxy/cache/cache_store.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/unit/otaproxy/proxy_get.h"

namespace ota::proxy {
namespace {

using ::ota::proxy::testing::ProxyGet;
using ::ota::testing::EntriesFor;
using ::ota::testing::NginxServer;
using Response = ::ota::proxy::testing::ProxyResponse;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kContent[] = "redirected content\n";

class ProxyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
    ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "f.txt", kContent).ok());
    auto dir = fs::TempDir::Create("proxy-server-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
  }

  // A gateway otaproxy (https upstream) with a cache, or without one.
  std::unique_ptr<ProxyServer> StartGateway(bool with_cache) {
    ServerOptions options;
    options.listen_addr = "127.0.0.1";
    options.listen_port = 0;
    options.upstream_https = true;
    options.flight_workers = 2;
    std::unique_ptr<CacheStore> store;
    if (with_cache) {
      auto opened = CacheStore::Open(dir_->path() / "cache", CacheLimits{.soft_limit_bytes = 0,
                                                                         .hard_limit_bytes = 0,
                                                                         .soft_percent = 100,
                                                                         .hard_percent = 100});
      EXPECT_TRUE(opened.ok()) << opened.status();
      if (!opened.ok()) return nullptr;
      store = *std::move(opened);
    }
    UpstreamConfig upstream;
    upstream.ca_bundle = nginx_->ca_pem().string();
    upstream.connect_timeout_s = 5;
    upstream.low_speed_timeout_s = 10;
    auto proxy = ProxyServer::Start(options, std::move(store), upstream);
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    return proxy.ok() ? *std::move(proxy) : nullptr;
  }

  // The client asks for http://127.0.0.1:<https port>/...: the gateway fetches it with https.
  std::string GatewayUrl(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(nginx_->https_port()) + path;
  }

  // GETs `path` through a gateway without and with a cache, once plain, once with no_cache and
  // once with file_sha256 (relay, url-keyed and sha256-keyed download); `check` judges each
  // response, `check_stats` each gateway's counters at the end.
  void ThroughEveryGateway(
      const std::string& path, const std::function<void(const Response&)>& check,
      const std::function<void(bool with_cache, const ServerStats&)>& check_stats) {
    const std::string sha = crypto::ToHex(crypto::Sha256Of(kContent));
    const std::vector<std::vector<std::string>> variants = {
        {}, {"Ota-File-Cache-Control: no_cache"}, {"Ota-File-Cache-Control: file_sha256=" + sha}};
    for (bool with_cache : {false, true}) {
      std::unique_ptr<ProxyServer> proxy = StartGateway(with_cache);
      ASSERT_NE(proxy, nullptr);
      for (const auto& headers : variants) {
        SCOPED_TRACE(::testing::Message() << "cache " << with_cache << ", headers "
                                          << (headers.empty() ? "" : headers[0]));
        const Response got = ProxyGet(proxy->port(), GatewayUrl(path), headers);
        ASSERT_EQ(got.result, CURLE_OK) << curl_easy_strerror(got.result);
        check(got);
      }
      check_stats(with_cache, proxy->Stats());
    }
  }

  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<fs::TempDir> dir_;
};

TEST_F(ProxyServerTest, GatewayRefusesHttpsToHttpRedirectWith502) {
  ThroughEveryGateway(
      "/to-http/f.txt",
      [&](const Response& got) {
        EXPECT_EQ(got.status, 502);
        EXPECT_THAT(got.body, HasSubstr("otaproxy: fetching https://127.0.0.1:" +
                                        std::to_string(nginx_->https_port()) + "/to-http/f.txt: "));
        EXPECT_THAT(got.body, HasSubstr("(redirected to " + nginx_->HttpUrl("/f.txt") +
                                        ": an https → http redirect is refused)"));
      },
      [](bool, const ServerStats& stats) {
        EXPECT_EQ(stats.upstream_failures, 3u);
        EXPECT_EQ(stats.committed, 0u);
      });
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(EntriesFor(*log, "/to-http/").size(), 6u);
  EXPECT_THAT(EntriesFor(*log, "/f.txt"), IsEmpty());  // never fetched over plain http
}

TEST_F(ProxyServerTest, GatewayFollowsSameSchemeRedirects) {
  ThroughEveryGateway(
      "/redirect/f.txt",
      [](const Response& got) {
        EXPECT_EQ(got.status, 200);
        EXPECT_EQ(got.body, kContent);
      },
      [](bool with_cache, const ServerStats& stats) {
        EXPECT_EQ(stats.upstream_failures, 0u);
        // With a cache: the url-keyed and the sha256-keyed entry.
        EXPECT_EQ(stats.committed, with_cache ? 2u : 0u);
      });
}

}  // namespace
}  // namespace ota::proxy
