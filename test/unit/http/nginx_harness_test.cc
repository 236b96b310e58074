// The nginx test harness itself: what it serves, its access log, and that it cleans up.
#include <curl/curl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/fs/fs.h"
#include "common/util/strings.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/lib/ports/port_registry.h"

namespace ota::testing {
namespace {

using ::testing::HasSubstr;

struct Response {
  CURLcode result = CURLE_OK;
  long status = 0;
  std::string body;
  std::string error;
};

size_t Append(char* data, size_t size, size_t nmemb, void* out) {
  static_cast<std::string*>(out)->append(data, size * nmemb);
  return size * nmemb;
}

// A plain libcurl GET, independent of the code under test elsewhere.
Response Fetch(const std::string& url, const std::string& ca = "", const std::string& cookie = "",
               const std::string& proxy = "") {
  Response r;
  CURL* easy = curl_easy_init();
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_PROXY, proxy.c_str());
  if (!ca.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, ca.c_str());
  if (!cookie.empty()) curl_easy_setopt(easy, CURLOPT_COOKIE, cookie.c_str());
  r.result = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
  r.error = errbuf;
  curl_easy_cleanup(easy);
  return r;
}

class NginxHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = std::move(*server);
    ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "a.txt", "hello\n").ok());
  }
  std::unique_ptr<NginxServer> nginx_;
};

TEST_F(NginxHarness, ServesHttpAndVerifiedHttps) {
  Response plain = Fetch(nginx_->HttpUrl("/a.txt"));
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "hello\n");

  Response tls = Fetch(nginx_->HttpsUrl("/a.txt"), nginx_->ca_pem().string());
  EXPECT_EQ(tls.result, CURLE_OK) << tls.error;
  EXPECT_EQ(tls.body, "hello\n");

  Response wrong_ca = Fetch(nginx_->HttpsUrl("/a.txt"), nginx_->wrong_ca_pem().string());
  EXPECT_EQ(wrong_ca.result, CURLE_PEER_FAILED_VERIFICATION);
}

TEST_F(NginxHarness, ProtectedNeedsTheCookie) {
  EXPECT_EQ(Fetch(nginx_->HttpUrl("/protected/a.txt")).status, 403);
  EXPECT_EQ(Fetch(nginx_->HttpUrl("/protected/a.txt"), "", "ota-token=wrong").status, 403);
  EXPECT_EQ(Fetch(nginx_->HttpUrl("/protected/a.txt"), "", "ota_token=secret").status, 403);
  Response ok = Fetch(nginx_->HttpUrl("/protected/a.txt"), "", "x=1; ota-token=secret");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "hello\n");
}

TEST_F(NginxHarness, StatusLocations) {
  for (long code : {400L, 401L, 403L, 404L, 429L, 500L, 502L, 503L}) {
    EXPECT_EQ(Fetch(nginx_->HttpUrl("/status/" + std::to_string(code) + "/x")).status, code);
  }
  EXPECT_EQ(Fetch(nginx_->HttpUrl("/slow/a.txt")).body, "hello\n");
}

TEST_F(NginxHarness, ForwardProxyAndAccessLog) {
  Response proxied = Fetch(nginx_->HttpUrl("/a.txt"), "", "", nginx_->ProxyUrl());
  EXPECT_EQ(proxied.status, 200);
  EXPECT_EQ(proxied.body, "hello\n");

  auto log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 2u);
  // The proxy logs the absolute-form request line, then the server logs the forwarded request.
  std::vector<AccessLogEntry> by_port[2];
  for (const auto& e : *log) by_port[e.port == nginx_->proxy_port() ? 0 : 1].push_back(e);
  ASSERT_EQ(by_port[0].size(), 1u);
  ASSERT_EQ(by_port[1].size(), 1u);
  EXPECT_EQ(by_port[0][0].target, nginx_->HttpUrl("/a.txt"));
  EXPECT_EQ(by_port[1][0].port, nginx_->http_port());
  EXPECT_EQ(by_port[1][0].target, "/a.txt");
  EXPECT_EQ(by_port[1][0].status, 200);
  EXPECT_EQ(by_port[1][0].body_bytes, 6u);
  EXPECT_EQ(by_port[1][0].method, "GET");
}

TEST_F(NginxHarness, ProxyRefusesTargetsOtherThanLoopback) {
  EXPECT_EQ(Fetch("http://example.invalid:80/a.txt", "", "", nginx_->ProxyUrl()).status, 403);
}

TEST_F(NginxHarness, StopEndsTheProcessAndDestructorRemovesTheDirectory) {
  pid_t pid = nginx_->pid();
  std::filesystem::path dir = nginx_->dir();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(nginx_->Stop().ok());
  EXPECT_FALSE(nginx_->running());
  // Reaped by Stop(): the PID no longer names our child.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_NE(Fetch(nginx_->HttpUrl("/a.txt")).result, CURLE_OK);
  nginx_.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST_F(NginxHarness, KillMakesTheServerVanish) {
  nginx_->Kill();
  EXPECT_FALSE(nginx_->running());
  EXPECT_EQ(Fetch(nginx_->HttpUrl("/a.txt")).result, CURLE_COULDNT_CONNECT);
  auto log = nginx_->AccessLog();  // no sync possible, still readable
  ASSERT_TRUE(log.ok()) << log.status();
}

TEST(NginxHarnessScript, StartServeStop) {
  auto dir = fs::TempDir::Create("nginx-script-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string script = OTA_SOURCE_DIR "/test/lib/nginx/nginx-harness.sh";
  const std::filesystem::path www = dir->path() / "www";
  std::filesystem::create_directories(www);
  ASSERT_TRUE(fs::WriteFileAtomic(www / "b.txt", "script\n").ok());
  const std::string n = (dir->path() / "n").string();
  // Its ports are claims in the test-port registry, owned by this process.
  const std::string ports_env =
      StrCat("OTA_TEST_PORTS_TOOL=", OTA_BINARY_DIR,
             "/test/lib/ports/ota-test-ports OTA_TEST_PORTS_OWNER=", ::getpid(), " ");
  ASSERT_EQ(std::system((ports_env + "bash " + script + " start " + n + " " + www.string() + " >" +
                         dir->path().string() + "/start.out")
                            .c_str()),
            0);
  auto env = fs::ReadFile(dir->path() / "n" / "ports.env");
  ASSERT_TRUE(env.ok()) << env.status();
  auto value = [&](const std::string& key) {
    size_t at = env->find(key + "=");
    return env->substr(at + key.size() + 1, env->find('\n', at) - at - key.size() - 1);
  };
  const std::string pid = value("NGINX_PID");
  auto self = OwnerOf(::getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  auto ours = [&] {
    std::set<int> ports;
    auto options = PortRegistryOptionsFromEnv();
    EXPECT_TRUE(options.ok()) << options.status();
    if (!options.ok()) return ports;
    auto claims = ListClaims(*options);
    EXPECT_TRUE(claims.ok()) << claims.status();
    if (!claims.ok()) return ports;
    for (const ClaimInfo& c : *claims) {
      if (c.owner == *self) ports.insert(c.port);
    }
    return ports;
  };
  EXPECT_EQ(ours(), (std::set<int>{std::stoi(value("HTTP_PORT")), std::stoi(value("HTTPS_PORT")),
                                   std::stoi(value("PROXY_PORT"))}));
  Response r = Fetch("https://127.0.0.1:" + value("HTTPS_PORT") + "/b.txt", value("CA_PEM"));
  EXPECT_EQ(r.body, "script\n") << r.error;
  EXPECT_EQ(std::system((ports_env + "bash " + script + " stop " + n).c_str()), 0);
  EXPECT_TRUE(ours().empty());  // released by stop
  EXPECT_NE(Fetch("http://127.0.0.1:" + value("HTTP_PORT") + "/b.txt").result, CURLE_OK);
  // The process is gone or at most a zombie nobody reaped (it is not our child).
  auto stat = fs::ReadFile("/proc/" + pid + "/stat");
  if (stat.ok()) {
    EXPECT_THAT(*stat, HasSubstr(") Z "));
  }
}

}  // namespace
}  // namespace ota::testing
