// otaproxy's UpstreamClient against a real nginx (test/lib/nginx): the shared curl setup's
// redirect policy (same-scheme redirects followed, https → http refused with a reason naming the
// redirect) and what reaches the server.
#include "otaproxy/upstream/upstream_client.h"

#include <filesystem>
#include <string>

#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/nginx/nginx_fixture.h"

namespace ota::proxy {
namespace {

using ::ota::testing::EntriesFor;
using ::ota::testing::NginxServer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Fetched {
  absl::Status status;
  bool head_delivered = false;
  UpstreamHead head;
  std::string body;
};

class UpstreamClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
    ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "f.txt", kContent).ok());
  }

  UpstreamConfig Config() const {
    UpstreamConfig config;
    config.ca_bundle = nginx_->ca_pem().string();
    config.connect_timeout_s = 5;
    config.low_speed_timeout_s = 10;
    return config;
  }

  static Fetched Fetch(UpstreamClient& client, const std::string& url) {
    Fetched out;
    UpstreamCallbacks callbacks;
    callbacks.on_head = [&](const UpstreamHead& head) {
      out.head = head;
      return true;
    };
    callbacks.on_body = [&](std::string_view data) {
      out.body.append(data);
      return true;
    };
    out.status = client.Fetch({.url = url, .cookie = "", .authorization = "", .cache_control = ""},
                              callbacks, &out.head_delivered);
    return out;
  }

  static constexpr char kContent[] = "the content\n";
  std::unique_ptr<NginxServer> nginx_;
};

TEST_F(UpstreamClientTest, SameSchemeRedirectsAreFollowed) {
  UpstreamClient client(Config());
  for (const std::string& url :
       {nginx_->HttpUrl("/redirect/f.txt"), nginx_->HttpsUrl("/redirect/f.txt"),
        nginx_->HttpUrl("/to-http/f.txt")}) {
    const Fetched got = Fetch(client, url);
    ASSERT_TRUE(got.status.ok()) << url << ": " << got.status;
    EXPECT_EQ(got.head.status, 200) << url;
    EXPECT_EQ(got.body, kContent) << url;
  }
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(EntriesFor(*log, "/redirect/").size(), 2u);
  EXPECT_EQ(EntriesFor(*log, "/f.txt").size(), 3u);
}

TEST_F(UpstreamClientTest, HttpsToHttpRedirectIsRefused) {
  UpstreamClient client(Config());
  const std::string url = nginx_->HttpsUrl("/to-http/f.txt");
  const Fetched got = Fetch(client, url);
  EXPECT_EQ(got.status.code(), absl::StatusCode::kUnavailable) << got.status;
  EXPECT_FALSE(got.head_delivered);  // the client of the proxy has not been answered yet
  const std::string message(got.status.message());
  EXPECT_THAT(message, HasSubstr("fetching " + url + ": "));
  EXPECT_THAT(message, HasSubstr("(redirected to " + nginx_->HttpUrl("/f.txt") +
                                 ": an https → http redirect is refused)"));
  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(EntriesFor(*log, "/to-http/").size(), 1u);
  EXPECT_THAT(EntriesFor(*log, "/f.txt"), IsEmpty());  // nothing fetched over plain http
  // The refusal does not spoil the pooled handles: a good request right after works.
  EXPECT_TRUE(Fetch(client, nginx_->HttpsUrl("/f.txt")).status.ok());
}

}  // namespace
}  // namespace ota::proxy
