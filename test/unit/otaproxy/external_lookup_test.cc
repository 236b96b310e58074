// The external caches inside ProxyServer (in this process; nginx upstream, libcurl client, the
// caches plain directories): today's otaproxy's order USB → local cache → NFS → download; only
// requests with file_sha256 and neither no_cache nor retry_caching look there; the echo says
// what the blob is; a relay-only proxy (local cache failed) still reads them; the counters
// (external_hits, external_nfs_hits, cdn_hits) reach the otaclient metrics record.
#include <curl/curl.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "otaclient/metrics/cache_counters.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/external/external_cache.h"
#include "otaproxy/server/admin.h"
#include "otaproxy/server/proxy_server.h"
#include "test/lib/nginx/nginx_fixture.h"

namespace ota::proxy {
namespace {

using ::ota::testing::NginxServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUpstream[] = "from upstream\n";

struct Got {
  CURLcode result = CURLE_OK;
  long status = 0;
  std::string body;
  std::string headers;
};

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

Got ProxyGet(uint16_t port, const std::string& url, const std::string& cache_control) {
  Got out;
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  if (!cache_control.empty()) {
    list = curl_slist_append(list, ("Ota-File-Cache-Control: " + cache_control).c_str());
  }
  const std::string proxy = "http://127.0.0.1:" + std::to_string(port);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROXY, proxy.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  out.result = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return out;
}

class ExternalLookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
    ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "f.txt", kUpstream).ok());
    auto dir = fs::TempDir::Create("external-lookup-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    std::filesystem::create_directories(dir_->path() / "usb" / "data");
    std::filesystem::create_directories(dir_->path() / "nfs" / "data");
  }

  struct Setup {
    bool store = true;
    bool usb = true;
    bool nfs = true;
    std::string cache_error;
  };
  std::unique_ptr<ProxyServer> Start(const Setup& setup) {
    ServerOptions options;
    options.listen_addr = "127.0.0.1";
    options.listen_port = 0;
    options.flight_workers = 2;
    options.cache_error = setup.cache_error;
    if (setup.usb) options.usb_cache = OpenCache("usb");
    if (setup.nfs) options.nfs_cache = OpenCache("nfs");
    std::unique_ptr<CacheStore> store;
    if (setup.store) {
      auto opened = CacheStore::Open(dir_->path() / "cache", CacheLimits{.soft_limit_bytes = 0,
                                                                         .hard_limit_bytes = 0,
                                                                         .soft_percent = 100,
                                                                         .hard_percent = 100});
      EXPECT_TRUE(opened.ok()) << opened.status();
      if (!opened.ok()) return nullptr;
      store = *std::move(opened);
    }
    UpstreamConfig upstream;
    upstream.connect_timeout_s = 5;
    upstream.low_speed_timeout_s = 10;
    auto proxy = ProxyServer::Start(options, std::move(store), upstream);
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    return proxy.ok() ? *std::move(proxy) : nullptr;
  }
  std::shared_ptr<const ExternalCache> OpenCache(const std::string& name) {
    auto cache = ExternalCache::Open(name, dir_->path() / name);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? std::shared_ptr<const ExternalCache>(*std::move(cache)) : nullptr;
  }
  void Put(const std::string& cache, const std::string& name, const std::string& content) {
    ASSERT_TRUE(fs::WriteFileAtomic(dir_->path() / cache / "data" / name, content).ok());
  }
  Got Get(const ProxyServer& proxy, const std::string& cache_control,
          const std::string& path = "/f.txt") {
    Got got = ProxyGet(proxy.port(), nginx_->HttpUrl(path), cache_control);
    EXPECT_EQ(got.result, CURLE_OK) << curl_easy_strerror(got.result);
    EXPECT_EQ(got.status, 200) << got.body;
    return got;
  }
  size_t UpstreamGets(const std::string& path = "/f.txt") {
    auto log = nginx_->AccessLog();
    EXPECT_TRUE(log.ok()) << log.status();
    size_t n = 0;
    if (log.ok()) {
      for (const auto& e : *log) n += e.target == path ? 1 : 0;
    }
    return n;
  }

  const std::string sha_ = crypto::ToHex(crypto::Sha256Of(kUpstream));
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<fs::TempDir> dir_;
};

TEST_F(ExternalLookupTest, UsbBlobIsServedWithoutGoingUpstream) {
  Put("usb", sha_, "usb copy\n");
  auto proxy = Start({});
  ASSERT_NE(proxy, nullptr);
  Got plain = Get(*proxy, "file_sha256=" + sha_);
  EXPECT_EQ(plain.body, "usb copy\n");
  EXPECT_THAT(plain.headers, HasSubstr("Ota-File-Cache-Control: file_sha256=" + sha_ + "\r\n"));
  EXPECT_THAT(plain.headers, HasSubstr("X-Otaproxy-Cache: external"));
  EXPECT_THAT(plain.headers, HasSubstr("Content-Length: 9"));
  // The .zst form wins, whatever the client asked for, and the echo says so.
  Put("usb", sha_ + ".zst", "zst bytes");
  for (const std::string& cc :
       {"file_sha256=" + sha_, "file_sha256=" + sha_ + ",file_compression_alg=zst"}) {
    SCOPED_TRACE(cc);
    Got zst = Get(*proxy, cc);
    EXPECT_EQ(zst.body, "zst bytes");
    EXPECT_THAT(zst.headers, HasSubstr("Ota-File-Cache-Control: file_sha256=" + sha_ +
                                       ",file_compression_alg=zst\r\n"));
  }
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(stats.external_hits, 3u);
  EXPECT_EQ(stats.external_nfs_hits, 0u);
  EXPECT_EQ(stats.cache_hits, 0u);
  EXPECT_EQ(stats.upstream_fetches, 0u);
  EXPECT_EQ(UpstreamGets(), 0u);
  EXPECT_TRUE(stats.usb_cache);
  EXPECT_TRUE(stats.nfs_cache);
}

TEST_F(ExternalLookupTest, NoCacheRetryCachingOrNoDigestNeverLookThere) {
  Put("usb", sha_, "usb copy\n");
  Put("nfs", sha_, "nfs copy\n");
  auto proxy = Start({});
  ASSERT_NE(proxy, nullptr);
  for (const std::string& cc : {"no_cache,file_sha256=" + sha_, "retry_caching,file_sha256=" + sha_,
                                std::string("no_cache"), std::string()}) {
    SCOPED_TRACE(cc);
    EXPECT_EQ(Get(*proxy, cc).body, kUpstream);
  }
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(stats.external_hits, 0u);
  EXPECT_EQ(stats.external_nfs_hits, 0u);
  EXPECT_EQ(stats.upstream_fetches, 4u);
  EXPECT_EQ(UpstreamGets(), 4u);
}

TEST_F(ExternalLookupTest, OrderIsUsbThenLocalThenNfsThenDownload) {
  Put("nfs", sha_, "nfs copy\n");
  auto proxy = Start({});
  ASSERT_NE(proxy, nullptr);
  const std::string cc = "file_sha256=" + sha_;
  // Local miss: NFS answers, nothing is fetched (nor cached).
  EXPECT_EQ(Get(*proxy, cc).body, "nfs copy\n");
  EXPECT_EQ(proxy->Stats().external_nfs_hits, 1u);
  EXPECT_EQ(UpstreamGets(), 0u);
  // retry_caching skips the external caches: downloaded and cached locally.
  EXPECT_EQ(Get(*proxy, "retry_caching," + cc).body, kUpstream);
  EXPECT_EQ(UpstreamGets(), 1u);
  EXPECT_EQ(proxy->Stats().committed, 1u);
  // Local hit before NFS.
  EXPECT_EQ(Get(*proxy, cc).body, kUpstream);
  EXPECT_EQ(proxy->Stats().cache_hits, 1u);
  EXPECT_EQ(proxy->Stats().external_nfs_hits, 1u);
  // USB before the local cache.
  Put("usb", sha_, "usb copy\n");
  EXPECT_EQ(Get(*proxy, cc).body, "usb copy\n");
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(stats.external_hits, 1u);
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_EQ(stats.external_nfs_hits, 1u);
  EXPECT_EQ(UpstreamGets(), 1u);
  // Neither has it: downloaded.
  std::filesystem::remove(dir_->path() / "usb" / "data" / sha_);
  std::filesystem::remove(dir_->path() / "nfs" / "data" / sha_);
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "g.txt", "other\n").ok());
  EXPECT_EQ(Get(*proxy, "file_sha256=" + crypto::ToHex(crypto::Sha256Of("other\n")), "/g.txt").body,
            "other\n");
  EXPECT_EQ(UpstreamGets("/g.txt"), 1u);
}

TEST_F(ExternalLookupTest, RelayOnlyProxyStillReadsExternalCachesAndSaysWhy) {
  Put("usb", sha_, "usb copy\n");
  const std::string other(64, 'e');
  Put("nfs", other, "nfs copy\n");
  auto proxy = Start({.store = false, .cache_error = "/x/cache: Not a directory"});
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(Get(*proxy, "file_sha256=" + sha_).body, "usb copy\n");
  EXPECT_EQ(Get(*proxy, "file_sha256=" + other).body, "nfs copy\n");
  Got relayed = Get(*proxy, "");
  EXPECT_EQ(relayed.body, kUpstream);
  EXPECT_THAT(relayed.headers, HasSubstr("X-Otaproxy-Cache: relay"));
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(stats.external_hits, 1u);
  EXPECT_EQ(stats.external_nfs_hits, 1u);
  EXPECT_EQ(stats.relayed, 1u);
  EXPECT_EQ(stats.cache, "failed");
  const std::string json = StatsJson(stats);
  EXPECT_THAT(json, HasSubstr(R"("cache":"failed","cache_error":"/x/cache: Not a directory")"));
}

TEST_F(ExternalLookupTest, CountersReachTheMetricsRecord) {
  Put("usb", sha_, "usb copy\n");
  const std::string other(64, 'e');
  Put("nfs", other, "nfs copy\n");
  auto proxy = Start({});
  ASSERT_NE(proxy, nullptr);
  Get(*proxy, "file_sha256=" + sha_);
  Get(*proxy, "file_sha256=" + other);
  // The CDN said "Hit from cloudfront": once through a download that fills the cache, once
  // through a relay; a response without X-Cache is no CDN hit.
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "c.txt", "cdn\n").ok());
  EXPECT_EQ(
      Get(*proxy, "file_sha256=" + crypto::ToHex(crypto::Sha256Of("cdn\n")), "/cdn-hit/c.txt").body,
      "cdn\n");
  EXPECT_EQ(Get(*proxy, "no_cache", "/cdn-hit/c.txt").body, "cdn\n");
  EXPECT_EQ(Get(*proxy, "no_cache", "/c.txt").body, "cdn\n");
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(stats.cdn_hits, 2u);
  const std::string json = StatsJson(stats);
  EXPECT_THAT(json, HasSubstr(R"("cache":"on","cache_error":"")"));
  std::optional<metrics::CacheCounters> counters = metrics::CacheCountersFromStatsJson(json);
  ASSERT_TRUE(counters.has_value()) << json;
  EXPECT_EQ(counters->total_requests, 5u);
  EXPECT_EQ(counters->cdn_hits, 2u);
  EXPECT_EQ(counters->external_hits, 1u);
  EXPECT_EQ(counters->external_nfs_hits, 1u);
  EXPECT_EQ(counters->local_hits, 0u);
}

TEST_F(ExternalLookupTest, NoExternalCachesConfiguredMeansNone) {
  Put("usb", sha_, "usb copy\n");
  auto proxy = Start({.usb = false, .nfs = false});
  ASSERT_NE(proxy, nullptr);
  Got got = Get(*proxy, "file_sha256=" + sha_);
  EXPECT_EQ(got.body, kUpstream);
  EXPECT_THAT(got.headers, Not(HasSubstr("external")));
  EXPECT_FALSE(proxy->Stats().usb_cache);
  EXPECT_EQ(proxy->Stats().external_hits, 0u);
}

}  // namespace
}  // namespace ota::proxy
