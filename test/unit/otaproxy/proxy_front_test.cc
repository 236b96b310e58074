// otaproxy's event-driven front against what it risks: clients joining a download at every
// stage of it (before the upstream answered, after the head, mid-body, with all but the last
// byte in), a download that fails verification or never answers (every client of it told, no
// entry), many clients that read slowly or not at all (the download never waits for them; a
// client that stops reading is closed after the send timeout, the others go on), a relay whose
// client does not read (the upstream transfer pauses instead of piling up in memory), 100
// connections on two I/O threads (the thread count does not move, every descriptor comes back),
// the connection limit (503), pipelined requests, idle connections' memory, and Stop() with
// clients in every state.
// Real parts: ProxyServer in this process with a real cache, nginx (test/lib/nginx) or a
// scripted origin (proxy_test_peers.h) upstream, clients on plain sockets.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
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
#include "test/unit/otaproxy/proxy_test_peers.h"

namespace ota::proxy {
namespace {

using ::ota::proxy::testing::Clock;
using ::ota::proxy::testing::Exchange;
using ::ota::proxy::testing::RawClient;
using ::ota::proxy::testing::ScriptedUpstream;
using ::ota::proxy::testing::WaitFor;
using ::ota::testing::EntriesFor;
using ::ota::testing::NginxServer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Lt;

// Pseudo-random content (xorshift64, 8 bytes per step: cheap even under sanitizers).
std::string RandomBytes(size_t size, uint64_t seed) {
  std::string s(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
  for (size_t i = 0; i < size; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(s.data() + i, &x, std::min<size_t>(8, size - i));
  }
  return s;
}

std::string Sha256Header(const std::string& content) {
  return "Ota-File-Cache-Control: file_sha256=" + crypto::ToHex(crypto::Sha256Of(content));
}

class ProxyFrontTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("proxy-front-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<fs::TempDir>(*std::move(dir));
  }

  // A caching otaproxy on two I/O threads.
  std::unique_ptr<ProxyServer> StartProxy(ServerOptions options = {}) {
    options.listen_addr = "127.0.0.1";
    options.listen_port = 0;
    if (options.io_threads == 0) options.io_threads = 2;
    auto store = CacheStore::Open(dir_->path() / "cache", CacheLimits{.soft_limit_bytes = 0,
                                                                      .hard_limit_bytes = 0,
                                                                      .soft_percent = 100,
                                                                      .hard_percent = 100});
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return nullptr;
    UpstreamConfig upstream;
    upstream.connect_timeout_s = 5;
    upstream.low_speed_timeout_s = 30;
    auto proxy = ProxyServer::Start(options, *std::move(store), upstream);
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    return proxy.ok() ? *std::move(proxy) : nullptr;
  }

  void StartNginx() {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
  }

  void StartScripted() {
    auto up = ScriptedUpstream::Start();
    ASSERT_TRUE(up.ok()) << up.status();
    scripted_ = *std::move(up);
  }

  static RawClient Connect(const ProxyServer& proxy, int receive_buffer = 0) {
    auto c = RawClient::Connect(proxy.port(), receive_buffer);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  bool CacheFileExists(const std::string& key) const {
    return std::filesystem::exists(dir_->path() / "cache" / "data" / key);
  }
  bool TempDirEmpty() const { return std::filesystem::is_empty(dir_->path() / "cache" / "tmp"); }

  std::unique_ptr<fs::TempDir> dir_;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<ScriptedUpstream> scripted_;
};

// Reading a large body takes a while under the sanitizers.
constexpr auto kBodyWait = std::chrono::seconds(120);

// A head, then exactly `content` (the whole response as the proxy promised it).
void ExpectComplete(RawClient& c, const std::string& content, const std::string& cache_state) {
  auto head = c.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), std::to_string(content.size()));
  EXPECT_EQ(head->Header("x-otaproxy-cache"), cache_state);
  std::string body;
  ASSERT_TRUE(c.ReadBody(content.size(), &body, Clock::now() + kBodyWait).ok())
      << "got " << body.size() << " bytes";
  EXPECT_TRUE(body == content) << "wrong bytes";
}

TEST_F(ProxyFrontTest, ClientsJoiningAtEveryStageOfADownloadGetTheWholeVerifiedBody) {
  StartScripted();
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  const std::string content = RandomBytes(3 << 20, 1);
  const std::string url = scripted_->Url("/blob");
  const std::string cc = Sha256Header(content);
  const uint64_t size = content.size();

  RawClient first = Connect(*proxy);
  ASSERT_TRUE(first.SendGet(url, {cc}).ok());
  auto exchange = scripted_->Next();
  ASSERT_TRUE(exchange.ok()) << exchange.status();
  std::vector<RawClient> joiners;
  auto join = [&](uint64_t joins) {
    joiners.push_back(Connect(*proxy));
    ASSERT_TRUE(joiners.back().SendGet(url, {cc}).ok());
    ASSERT_TRUE(WaitFor([&] { return proxy->Stats().flight_joins == joins; }));
  };
  // 1. The upstream has the request, no answer yet.
  join(1);
  // 2. The head is in, with one body byte (the head reaches the proxy with the first byte; the
  // last byte in is held back): the first client has the head and no body.
  ASSERT_TRUE((*exchange)->SendHead(200, size).ok());
  ASSERT_TRUE((*exchange)->Send(content.substr(0, 1)).ok());
  auto head = first.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->Header("x-otaproxy-cache"), "miss");
  join(2);
  // 3. Mid-body: the first client has received a good part of it.
  ASSERT_TRUE((*exchange)->Send(content.substr(1, size / 2 - 1)).ok());
  std::string body;
  ASSERT_TRUE(first.ReadBody(size / 4, &body).ok());
  join(3);
  // 4. All but the last byte sent: clients get all but the last byte until it is verified.
  ASSERT_TRUE((*exchange)->Send(content.substr(size / 2, size / 2 - 1)).ok());
  ASSERT_TRUE(first.ReadBody(size - 2, &body).ok());
  join(4);
  ASSERT_TRUE((*exchange)->Send(content.substr(size - 1)).ok());
  (*exchange)->Close();

  ASSERT_TRUE(first.ReadBody(size, &body).ok());
  EXPECT_TRUE(body == content);
  for (RawClient& c : joiners) ExpectComplete(c, content, "join");
  // 5. Committed: a hit.
  RawClient late = Connect(*proxy);
  ASSERT_TRUE(late.SendGet(url, {cc}).ok());
  ExpectComplete(late, content, "hit");
  const ServerStats stats = proxy->Stats();
  EXPECT_EQ(scripted_->requests(), 1u);
  EXPECT_EQ(stats.upstream_fetches, 1u);
  EXPECT_EQ(stats.committed, 1u);
  EXPECT_EQ(stats.cache_hits, 1u);
  EXPECT_TRUE(TempDirEmpty());
}

TEST_F(ProxyFrontTest, ADownloadFailingVerificationReachesEveryClientTruncated) {
  StartScripted();
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  const std::string content = RandomBytes(1 << 20, 2);
  std::string tampered = content;
  tampered.back() ^= 1;
  const std::string url = scripted_->Url("/blob");
  const std::string cc = Sha256Header(content);
  const std::string key = crypto::ToHex(crypto::Sha256Of(content));

  std::vector<RawClient> clients;
  clients.push_back(Connect(*proxy));
  ASSERT_TRUE(clients.back().SendGet(url, {cc}).ok());
  auto exchange = scripted_->Next();
  ASSERT_TRUE(exchange.ok()) << exchange.status();
  clients.push_back(Connect(*proxy));  // joins before the head
  ASSERT_TRUE(clients.back().SendGet(url, {cc}).ok());
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().flight_joins == 1; }));
  ASSERT_TRUE((*exchange)->SendHead(200, tampered.size()).ok());
  ASSERT_TRUE((*exchange)->Send(tampered.substr(0, tampered.size() / 2)).ok());
  auto head = clients[0].ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  std::string first_bytes;
  ASSERT_TRUE(clients[0].ReadBody(1000, &first_bytes).ok());
  clients.push_back(Connect(*proxy));  // joins mid-body
  ASSERT_TRUE(clients.back().SendGet(url, {cc}).ok());
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().flight_joins == 2; }));
  ASSERT_TRUE((*exchange)->Send(tampered.substr(tampered.size() / 2)).ok());
  (*exchange)->Close();

  for (size_t i = 0; i < clients.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "client " << i);
    if (i > 0) {
      auto h = clients[i].ReadHead();
      ASSERT_TRUE(h.ok()) << h.status();
      EXPECT_EQ(h->status, 200);
      EXPECT_EQ(h->Header("content-length"), std::to_string(content.size()));
    }
    std::string body = i == 0 ? first_bytes : "";
    const absl::Status read = clients[i].ReadBody(content.size(), &body);
    EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;  // closed short
    EXPECT_THAT(body.size(), Lt(content.size()));
  }
  EXPECT_EQ(proxy->Stats().verify_failures, 1u);
  EXPECT_EQ(proxy->Stats().committed, 0u);
  EXPECT_FALSE(CacheFileExists(key));
  EXPECT_TRUE(WaitFor([&] { return TempDirEmpty(); }));
  // Not an entry, not a flight any more: the next request fetches again.
  RawClient again = Connect(*proxy);
  ASSERT_TRUE(again.SendGet(url, {cc}).ok());
  auto second = scripted_->Next();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE((*second)->SendHead(200, content.size()).ok());
  ASSERT_TRUE((*second)->Send(content).ok());
  (*second)->Close();
  ExpectComplete(again, content, "miss");
  EXPECT_TRUE(WaitFor([&] { return CacheFileExists(key); }));
}

TEST_F(ProxyFrontTest, AnUpstreamThatClosesWithoutAnswerGivesEveryClientA502) {
  StartScripted();
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  const std::string url = scripted_->Url("/nothing");
  RawClient a = Connect(*proxy);
  ASSERT_TRUE(a.SendGet(url).ok());
  auto exchange = scripted_->Next();
  ASSERT_TRUE(exchange.ok()) << exchange.status();
  RawClient b = Connect(*proxy);
  ASSERT_TRUE(b.SendGet(url).ok());
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().flight_joins == 1; }));
  (*exchange)->Close();
  for (RawClient* c : {&a, &b}) {
    auto head = c->ReadHead();
    ASSERT_TRUE(head.ok()) << head.status();
    EXPECT_EQ(head->status, 502);
    std::string body;
    ASSERT_TRUE(c->ReadBody(std::stoull(head->Header("content-length")), &body).ok());
    EXPECT_THAT(body, HasSubstr("otaproxy: fetching " + url));
  }
  EXPECT_EQ(proxy->Stats().upstream_failures, 1u);
  EXPECT_TRUE(WaitFor([&] { return TempDirEmpty(); }));
}

// Eight clients that read nothing (each socket holds far less than the body): the download
// completes and is committed all the same; then each reads the whole body.
TEST_F(ProxyFrontTest, ClientsThatDoNotReadNeverHoldTheDownloadBack) {
  StartScripted();
  ServerOptions options;
  options.send_timeout_s = 3600;  // the last client waits for the others to be read
  std::unique_ptr<ProxyServer> proxy = StartProxy(options);
  ASSERT_NE(proxy, nullptr);
  const std::string content = RandomBytes(12 << 20, 3);
  const std::string url = scripted_->Url("/big");
  std::vector<RawClient> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(Connect(*proxy, 4096));
    ASSERT_TRUE(clients.back().SendGet(url).ok());
    if (i == 0) {
      ASSERT_TRUE(WaitFor([&] { return proxy->Stats().cache_misses == 1; }));
    }
  }
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().flight_joins == 7; }));
  auto exchange = scripted_->Next();
  ASSERT_TRUE(exchange.ok()) << exchange.status();
  ASSERT_TRUE((*exchange)->SendHead(200, content.size()).ok());
  ASSERT_TRUE((*exchange)->Send(content).ok());  // the proxy takes all of it: nobody reads yet
  (*exchange)->Close();
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().committed == 1; }));
  for (size_t i = 0; i < clients.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "client " << i);
    clients[i].WidenReceiveBuffer();
    ExpectComplete(clients[i], content, i == 0 ? "miss" : "join");
  }
}

TEST_F(ProxyFrontTest, AClientThatStopsReadingIsClosedAfterTheSendTimeoutAndOthersGoOn) {
  StartNginx();
  const std::string content = RandomBytes(24 << 20, 4);
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "big", content).ok());
  ServerOptions options;
  options.send_timeout_s = 1;
  std::unique_ptr<ProxyServer> proxy = StartProxy(options);
  ASSERT_NE(proxy, nullptr);
  const std::string url = nginx_->HttpUrl("/big");
  {
    RawClient first = Connect(*proxy);
    ASSERT_TRUE(first.SendGet(url).ok());
    ExpectComplete(first, content, "miss");
  }
  RawClient stalled = Connect(*proxy, 4096);
  ASSERT_TRUE(stalled.SendGet(url).ok());
  auto head = stalled.ReadHead();  // then it reads no more
  ASSERT_TRUE(head.ok()) << head.status();
  for (int i = 0; i < 2; ++i) {
    RawClient reader = Connect(*proxy);
    ASSERT_TRUE(reader.SendGet(url).ok());
    ExpectComplete(reader, content, "hit");
  }
  // Only the stalled client's connection is left, until the proxy gives up on it.
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().connections == 0; }));
  std::string body;
  EXPECT_EQ(stalled.ReadBody(content.size(), &body).code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(body.size(), Lt(content.size()));
}

// A relayed response (no_cache) to a client that does not read: the upstream transfer waits for
// it (nginx has not finished sending) instead of the proxy taking it all into memory.
TEST_F(ProxyFrontTest, ARelayToAClientThatDoesNotReadPausesTheUpstreamTransfer) {
  StartNginx();
  const std::string content = RandomBytes(96 << 20, 5);
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "huge", content).ok());
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  RawClient client = Connect(*proxy, 4096);
  ASSERT_TRUE(client.SendGet(nginx_->HttpUrl("/huge"), {"Ota-File-Cache-Control: no_cache"}).ok());
  auto head = client.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->Header("x-otaproxy-cache"), "relay");
  auto log = nginx_->AccessLog();  // waits until nginx logged a later request
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(EntriesFor(*log, "/huge"), IsEmpty());  // still sending: paused behind the client
  client.WidenReceiveBuffer();
  std::string body;
  ASSERT_TRUE(client.ReadBody(content.size(), &body, Clock::now() + kBodyWait).ok()) << body.size();
  EXPECT_TRUE(body == content);
  log = nginx_->AccessLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(EntriesFor(*log, "/huge").size(), 1u);
}

// A hundred clients at once, twice (downloads, then hits): the proxy's thread count never moves
// and the second round leaves exactly as many descriptors open as the first (upstream
// connections kept alive are the same; nothing per client stays behind).
TEST_F(ProxyFrontTest, AHundredConnectionsOnTwoThreadsAndEveryDescriptorComesBack) {
  StartNginx();
  std::vector<std::string> contents;
  for (int i = 0; i < 4; ++i) {
    contents.push_back(RandomBytes(2 << 20, 10 + i));
    ASSERT_TRUE(
        fs::WriteFileAtomic(nginx_->doc_root() / ("f" + std::to_string(i)), contents.back()).ok());
  }
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(proxy->io_threads(), 2u);
  const size_t threads = testing::ThreadCount();
  std::vector<size_t> fds;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    {
      std::vector<RawClient> clients;
      for (int i = 0; i < 100; ++i) {
        clients.push_back(Connect(*proxy, 8192));
        ASSERT_TRUE(clients.back().SendGet(nginx_->HttpUrl("/f" + std::to_string(i % 4))).ok());
      }
      ASSERT_TRUE(WaitFor([&] { return proxy->Stats().requests == 100u * (round + 1); }));
      // 100 responses under way (nobody has read yet).
      EXPECT_EQ(proxy->Stats().connections, 100u);
      EXPECT_EQ(testing::ThreadCount(), threads);
      for (int i = 0; i < 100; ++i) {
        SCOPED_TRACE(::testing::Message() << "client " << i);
        clients[i].WidenReceiveBuffer();
        auto head = clients[i].ReadHead();
        ASSERT_TRUE(head.ok()) << head.status();
        if (round == 1) {
          EXPECT_EQ(head->Header("x-otaproxy-cache"), "hit");
        }
        std::string body;
        ASSERT_TRUE(clients[i].ReadBody(contents[i % 4].size(), &body).ok());
        EXPECT_TRUE(body == contents[i % 4]);
      }
      EXPECT_EQ(testing::ThreadCount(), threads);
    }
    ASSERT_TRUE(WaitFor([&] { return proxy->Stats().connections == 0; }));
    fds.push_back(testing::OpenFdCount());
  }
  EXPECT_EQ(fds[1], fds[0]);
  EXPECT_EQ(proxy->Stats().upstream_fetches, 4u);
}

// Requests sent back to back on one connection are answered one after the other, in order
// (the second waits in the connection's buffer while the first is answered), the last one of
// them with "Connection: close" ending the connection.
TEST_F(ProxyFrontTest, PipelinedRequestsAreAnsweredInOrder) {
  StartNginx();
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "a", "first\n").ok());
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "b", "second\n").ok());
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  RawClient c = Connect(*proxy);
  const std::string a = nginx_->HttpUrl("/a");
  const std::string b = nginx_->HttpUrl("/b");
  ASSERT_TRUE(c.Send("GET " + a + " HTTP/1.1\r\nHost: x\r\n\r\nGET " + b +
                     " HTTP/1.1\r\nHost: x\r\n\r\nGET " + a +
                     " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                  .ok());
  ExpectComplete(c, "first\n", "miss");
  ExpectComplete(c, "second\n", "miss");
  ExpectComplete(c, "first\n", "hit");
  EXPECT_TRUE(c.WaitClosed().ok());
}

TEST_F(ProxyFrontTest, ConnectionsBeyondTheLimitGet503) {
  StartNginx();
  ServerOptions options;
  options.max_connections = 4;
  std::unique_ptr<ProxyServer> proxy = StartProxy(options);
  ASSERT_NE(proxy, nullptr);
  std::vector<RawClient> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(Connect(*proxy));
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().connections == 4; }));
  RawClient extra = Connect(*proxy);
  auto head = extra.ReadHead();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 503);
  EXPECT_EQ(head->Header("retry-after"), "1");
  idle.pop_back();
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().connections == 3; }));
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "f", "content\n").ok());
  RawClient next = Connect(*proxy);
  ASSERT_TRUE(next.SendGet(nginx_->HttpUrl("/f")).ok());
  ExpectComplete(next, "content\n", "miss");
}

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
// Resident memory of this process (the proxy's side of every connection lives here too).
size_t RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6));
  }
  return 0;
}

TEST_F(ProxyFrontTest, AThousandIdleConnectionsCostLessThanFourMegabytes) {
  StartNginx();
  ServerOptions options;
  options.max_connections = 2000;
  std::unique_ptr<ProxyServer> proxy = StartProxy(options);
  ASSERT_NE(proxy, nullptr);
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "f", "content\n").ok());
  std::vector<RawClient> clients;
  clients.reserve(1000);
  {  // each answered once: connections that have served a request, now idle
    RawClient c = Connect(*proxy);
    ASSERT_TRUE(c.SendGet(nginx_->HttpUrl("/f")).ok());
    ExpectComplete(c, "content\n", "miss");
  }
  const size_t before = RssKib();
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(Connect(*proxy));
    ASSERT_TRUE(clients.back().SendGet(nginx_->HttpUrl("/f")).ok());
  }
  for (RawClient& c : clients) ExpectComplete(c, "content\n", "hit");
  ASSERT_EQ(proxy->Stats().connections, 1000u);
  EXPECT_THAT(RssKib() - before, Lt(4096u));
}
#endif

TEST_F(ProxyFrontTest, StopEndsEveryKindOfConnectionPromptly) {
  StartNginx();
  StartScripted();
  const std::string content = RandomBytes(24 << 20, 6);
  ASSERT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / "big", content).ok());
  std::unique_ptr<ProxyServer> proxy = StartProxy();
  ASSERT_NE(proxy, nullptr);
  {  // cached
    RawClient c = Connect(*proxy);
    ASSERT_TRUE(c.SendGet(nginx_->HttpUrl("/big")).ok());
    ExpectComplete(c, content, "miss");
  }
  std::vector<RawClient> clients;
  clients.push_back(Connect(*proxy));        // idle
  clients.push_back(Connect(*proxy, 4096));  // a hit it does not read
  ASSERT_TRUE(clients.back().SendGet(nginx_->HttpUrl("/big")).ok());
  clients.push_back(Connect(*proxy, 4096));  // a relay it does not read
  ASSERT_TRUE(
      clients.back().SendGet(nginx_->HttpUrl("/big"), {"Ota-File-Cache-Control: no_cache"}).ok());
  clients.push_back(Connect(*proxy));  // waiting for an upstream that does not answer
  ASSERT_TRUE(clients.back().SendGet(scripted_->Url("/silent")).ok());
  auto exchange = scripted_->Next();
  ASSERT_TRUE(exchange.ok()) << exchange.status();
  ASSERT_TRUE(WaitFor([&] { return proxy->Stats().requests == 4; }));
  const auto start = Clock::now();
  proxy->Stop();
  EXPECT_THAT(Clock::now() - start, Lt(std::chrono::seconds(5)));
  for (RawClient& c : clients) EXPECT_TRUE(c.WaitClosed().ok());
  EXPECT_TRUE(TempDirEmpty());
}

}  // namespace
}  // namespace ota::proxy
