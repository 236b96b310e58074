// Range requests through otaproxy (a client resuming a cut download): a cache or external hit
// answers 206 from the stored file (416 past its end; a Range not understood gets the whole
// body); a miss is relayed with Range and If-Range to the origin and never cached, so a partial
// body never becomes an entry; a url-keyed entry, which keeps no validator, answers If-Range with
// the whole body. Real parts: ProxyServer with a real cache, nginx upstream (which honours Range
// and If-Range), a libcurl client.
#include <curl/curl.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/server/proxy_server.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/unit/otaproxy/proxy_get.h"
#include "test/unit/otaproxy/proxy_test_peers.h"

namespace ota::proxy {
namespace {

using ::ota::proxy::testing::ProxyGet;
using ::ota::proxy::testing::ProxyResponse;
using ::ota::proxy::testing::WaitFor;
using ::ota::testing::EntriesFor;
using ::ota::testing::NginxServer;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Content() {
  std::string s;
  for (int i = 0; s.size() < 100000; ++i) s += std::to_string(i) + ",";
  return s;
}

class ProxyRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
    ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "blob", content_).ok());
    auto dir = fs::TempDir::Create("proxy-range-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
    ServerOptions options;
    options.listen_addr = "127.0.0.1";
    options.listen_port = 0;
    options.io_threads = 1;
    auto store = CacheStore::Open(dir_->path() / "cache", CacheLimits{.soft_limit_bytes = 0,
                                                                      .hard_limit_bytes = 0,
                                                                      .soft_percent = 100,
                                                                      .hard_percent = 100});
    ASSERT_TRUE(store.ok()) << store.status();
    UpstreamConfig upstream;
    upstream.connect_timeout_s = 5;
    upstream.low_speed_timeout_s = 10;
    auto proxy = ProxyServer::Start(options, *std::move(store), upstream);
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  ProxyResponse Get(std::vector<std::string> headers, bool by_sha = true) {
    if (by_sha) headers.push_back("Ota-File-Cache-Control: file_sha256=" + sha_);
    ProxyResponse got = ProxyGet(proxy_->port(), nginx_->HttpUrl("/blob"), headers);
    EXPECT_EQ(got.result, CURLE_OK) << curl_easy_strerror(got.result);
    return got;
  }

  // Fills the cache with the whole blob.
  void Fill(bool by_sha = true) {
    ProxyResponse got = Get({}, by_sha);
    ASSERT_EQ(got.status, 200);
    ASSERT_TRUE(got.body == content_);
    ASSERT_TRUE(WaitFor([&] { return proxy_->Stats().committed == 1; }));
  }

  const std::string content_ = Content();
  const std::string sha_ = crypto::ToHex(crypto::Sha256Of(content_));
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<fs::TempDir> dir_;
  std::unique_ptr<ProxyServer> proxy_;
};

TEST_F(ProxyRangeTest, AMissWithRangeIsRelayedWithItAndNothingIsCached) {
  ProxyResponse got = Get({"Range: bytes=1000-"});
  EXPECT_EQ(got.status, 206);
  EXPECT_TRUE(got.body == content_.substr(1000));
  EXPECT_THAT(got.headers,
              HasSubstr("Content-Range: bytes 1000-" + std::to_string(content_.size() - 1) + "/" +
                        std::to_string(content_.size())));
  EXPECT_THAT(got.headers, HasSubstr("X-Otaproxy-Cache: relay"));
  EXPECT_THAT(got.headers, HasSubstr("ETag: "));  // the origin's, for the client's If-Range
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<::ota::testing::AccessLogEntry> entries = EntriesFor(*log, "/blob");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].status, 206);
  EXPECT_EQ(entries[0].body_bytes, content_.size() - 1000);
  // The partial body made no entry: the next whole request is a miss that downloads it all.
  ServerStats stats = proxy_->Stats();
  EXPECT_EQ(stats.committed, 0u);
  EXPECT_EQ(stats.cache_entries, 0u);
  EXPECT_EQ(stats.relayed, 1u);
  ProxyResponse whole = Get({});
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == content_);
  EXPECT_THAT(whole.headers, HasSubstr("X-Otaproxy-Cache: miss"));
}

TEST_F(ProxyRangeTest, AHitAnswersRangesFromTheStoredFile) {
  Fill();
  const size_t n = content_.size();
  ProxyResponse open = Get({"Range: bytes=1000-"});
  EXPECT_EQ(open.status, 206);
  EXPECT_TRUE(open.body == content_.substr(1000));
  EXPECT_THAT(open.headers, HasSubstr("Content-Range: bytes 1000-" + std::to_string(n - 1) + "/" +
                                      std::to_string(n)));
  EXPECT_THAT(open.headers, HasSubstr("Content-Length: " + std::to_string(n - 1000)));
  EXPECT_THAT(open.headers, HasSubstr("X-Otaproxy-Cache: hit"));

  ProxyResponse closed = Get({"Range: bytes=10-19"});
  EXPECT_EQ(closed.status, 206);
  EXPECT_EQ(closed.body, content_.substr(10, 10));
  EXPECT_THAT(closed.headers, HasSubstr("Content-Range: bytes 10-19/" + std::to_string(n)));

  ProxyResponse beyond =
      Get({"Range: bytes=" + std::to_string(n - 5) + "-" + std::to_string(n + 100)});
  EXPECT_EQ(beyond.status, 206);
  EXPECT_EQ(beyond.body, content_.substr(n - 5));

  ProxyResponse past_end = Get({"Range: bytes=" + std::to_string(n) + "-"});
  EXPECT_EQ(past_end.status, 416);
  EXPECT_THAT(past_end.headers, HasSubstr("Content-Range: bytes */" + std::to_string(n)));

  // With the sha256 key the stored file is the content: If-Range does not matter.
  ProxyResponse with_if_range = Get({"Range: bytes=5-", "If-Range: \"anything\""});
  EXPECT_EQ(with_if_range.status, 206);
  EXPECT_TRUE(with_if_range.body == content_.substr(5));

  // Not understood (suffix, several ranges, junk): the whole body.
  for (const char* range : {"Range: bytes=-5", "Range: bytes=0-1,5-9", "Range: lines=1-"}) {
    SCOPED_TRACE(range);
    ProxyResponse whole = Get({range});
    EXPECT_EQ(whole.status, 200);
    EXPECT_TRUE(whole.body == content_);
  }
  // Every answer came from the cache: the origin saw only the fill.
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(EntriesFor(*log, "/blob").size(), 1u);
}

TEST_F(ProxyRangeTest, AUrlKeyedHitAnswersIfRangeWithTheWholeBody) {
  Fill(/*by_sha=*/false);
  ProxyResponse plain = Get({"Range: bytes=100-"}, /*by_sha=*/false);
  EXPECT_EQ(plain.status, 206);
  EXPECT_TRUE(plain.body == content_.substr(100));
  ProxyResponse with_if_range = Get({"Range: bytes=100-", "If-Range: \"x\""}, /*by_sha=*/false);
  EXPECT_EQ(with_if_range.status, 200);
  EXPECT_TRUE(with_if_range.body == content_);
  EXPECT_THAT(with_if_range.headers, Not(HasSubstr("Content-Range")));
}

TEST_F(ProxyRangeTest, RelayedIfRangeReachesTheOrigin) {
  // A no_cache relay: nginx compares If-Range with its ETag and sends everything on a mismatch.
  ProxyResponse got =
      Get({"Range: bytes=100-", "If-Range: \"not-the-etag\"", "Ota-File-Cache-Control: no_cache"},
          /*by_sha=*/false);
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == content_);
  EXPECT_THAT(got.headers, HasSubstr("X-Otaproxy-Cache: relay"));
}

}  // namespace
}  // namespace ota::proxy
