// CurlFetcher against a real nginx (test/lib/nginx): parallel keep-alive downloads over HTTP and
// HTTPS, cookies, retries and what is (not) retried, hash/size/zstd verification, a server that
// dies mid-transfer, cancellation, the forward proxy, file:// URLs and Get().
#include "common/http/curl_fetcher.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/loopback.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/lib/ports/port_registry.h"
#include "test/lib/test_bytes.h"

namespace ota::http {
namespace {

using ::ota::testing::RandomBytes;
using ::ota::testing::TextBytes;
using ::ota::testing::ZstdCompress;

using ::ota::testing::AccessLogEntry;
using ::ota::testing::EntriesFor;
using ::ota::testing::NginxServer;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A port nothing listens on: claimed in the test-port registry and never bound, so neither
// another test nor an outgoing connection can be on it while the claim lives.
::ota::testing::PortClaim ClosedPort() {
  auto claim = ::ota::testing::ClaimPort();
  EXPECT_TRUE(claim.ok()) << claim.status();
  return claim.ok() ? std::move(*claim) : ::ota::testing::PortClaim();
}

// An HTTP/1.1 server that answers each connection's first request with `body`, announcing
// keep-alive, and then closes the connection: what a server does when it drops idle connections
// (keepalive_timeout). Connections are served one after another, in a thread; the destructor
// unblocks accept() and joins it.
class ClosesAfterEachResponseServer {
 public:
  explicit ClosesAfterEachResponseServer(std::string body) : body_(std::move(body)) {
    auto listener = ::ota::testing::BindLoopback(64);
    if (!listener.ok()) {
      ADD_FAILURE() << listener.status();
      return;
    }
    listen_fd_ = std::move(listener->fd);
    port_ = listener->port;
    thread_ = std::thread([this] { Serve(); });
  }
  ~ClosesAfterEachResponseServer() {
    ::shutdown(listen_fd_.get(), SHUT_RDWR);  // accept() returns; the thread ends
    if (thread_.joinable()) thread_.join();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/x"; }
  int connections() const { return connections_.load(); }

 private:
  void Serve() {
    const std::string response =
        "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
        "\r\nConnection: keep-alive\r\n\r\n" + body_;
    while (true) {
      fs::UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) return;
      ++connections_;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(conn.get(), buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      if (request.find("\r\n\r\n") == std::string::npos) continue;
      size_t sent = 0;
      while (sent < response.size()) {
        ssize_t n =
            ::send(conn.get(), response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    }
  }

  std::string body_;
  fs::UniqueFd listen_fd_;
  int port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

struct RunOutcome {
  absl::Status status;
  std::vector<DownloadResult> done;  // completion order
};

class CurlFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = std::move(*server);
    auto out = fs::TempDir::Create("fetcher-out");
    ASSERT_TRUE(out.ok()) << out.status();
    out_ = std::make_unique<fs::TempDir>(std::move(*out));
  }

  FetcherConfig Config() const {
    FetcherConfig config;
    config.max_parallel = 4;
    config.max_attempts = 3;
    config.backoff_initial_ms = 5;
    config.backoff_max_ms = 40;
    config.connect_timeout_s = 5;
    config.low_speed_timeout_s = 10;
    config.ca_bundle = nginx_->ca_pem().string();
    return config;
  }

  // Puts `content` at <doc root>/<path>; returns its sha256.
  crypto::Sha256Digest Serve(const std::string& path, const std::string& content) {
    std::filesystem::path file = nginx_->doc_root() / path;
    std::filesystem::create_directories(file.parent_path());
    EXPECT_TRUE(fs::WriteFileAtomic(file, content).ok());
    return crypto::Sha256Of(content);
  }

  DownloadJob Job(const std::string& url, const std::string& name, const std::string& content,
                  uint64_t tag = 0) const {
    DownloadJob job;
    job.url = url;
    job.dest = out_->path() / name;
    job.sha256 = crypto::Sha256Of(content);
    job.size = content.size();
    job.tag = tag;
    return job;
  }

  RunOutcome Run(Fetcher& fetcher, const std::vector<DownloadJob>& jobs,
                 const TransferObserver& observer = {},
                 const std::function<bool(const DownloadResult&)>& also = nullptr) {
    RunOutcome outcome;
    CancelFlag cancel{false};
    outcome.status = fetcher.DownloadAll(
        jobs,
        [&](const DownloadResult& r) {
          outcome.done.push_back(r);
          return also ? also(r) : true;
        },
        observer, cancel);
    return outcome;
  }

  std::vector<AccessLogEntry> Log() {
    auto log = nginx_->AccessLog();
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : std::vector<AccessLogEntry>();
  }

  // Names of files in the output dir that are temp files of the fetcher.
  std::vector<std::string> TempLeftovers() const {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(out_->path())) {
      std::string name = e.path().filename().string();
      if (name.find(".ota-partial.") != std::string::npos) found.push_back(name);
    }
    return found;
  }

  std::string ReadOut(const std::string& name) const {
    auto content = fs::ReadFile(out_->path() / name);
    EXPECT_TRUE(content.ok()) << content.status();
    return content.ok() ? *content : "";
  }

  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<fs::TempDir> out_;
};

// --- parallel downloads and connection reuse -------------------------------------------------

TEST_F(CurlFetcherTest, ParallelHttpDownloadsReuseConnections) {
  const int kFiles = 60;
  std::vector<DownloadJob> jobs;
  std::vector<std::string> contents;
  for (int i = 0; i < kFiles; ++i) {
    // Sizes from 1 byte to ~600 KiB, random so that no two files are alike.
    contents.push_back(RandomBytes(1 + (i * 7919) % (600 * 1024), i));
    std::string path = "files/f" + std::to_string(i);
    Serve(path, contents.back());
    jobs.push_back(Job(nginx_->HttpUrl("/" + path), "f" + std::to_string(i), contents.back(), i));
  }
  std::atomic<uint64_t> observed{0};
  TransferObserver observer{[&](uint64_t n) { observed += n; }};
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, jobs, observer);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.done.size(), static_cast<size_t>(kFiles));
  uint64_t total = 0;
  std::set<uint64_t> tags;
  for (const auto& r : out.done) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.retries, 0u);
    EXPECT_EQ(r.file_bytes, contents[r.tag].size());
    EXPECT_EQ(r.network_bytes, contents[r.tag].size());
    EXPECT_EQ(ReadOut("f" + std::to_string(r.tag)), contents[r.tag]);
    total += r.network_bytes;
    tags.insert(r.tag);
  }
  EXPECT_EQ(tags.size(), static_cast<size_t>(kFiles));
  EXPECT_EQ(observed.load(), total);
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());

  auto entries = EntriesFor(Log(), "/files/");
  ASSERT_EQ(entries.size(), static_cast<size_t>(kFiles));
  std::set<uint64_t> connections;
  uint64_t max_requests_on_one_connection = 0;
  for (const auto& e : entries) {
    EXPECT_EQ(e.status, 200);
    connections.insert(e.connection);
    max_requests_on_one_connection =
        std::max(max_requests_on_one_connection, e.connection_requests);
  }
  // max_parallel = 4 connections at most, each carrying many requests.
  EXPECT_LE(connections.size(), 4u);
  EXPECT_GE(max_requests_on_one_connection, static_cast<uint64_t>(kFiles / 4));

  // A second batch on the same fetcher keeps using the same connections.
  std::string again = RandomBytes(1000, 999);
  Serve("files/again", again);
  RunOutcome second = Run(*fetcher, {Job(nginx_->HttpUrl("/files/again"), "again", again)});
  ASSERT_TRUE(second.status.ok());
  ASSERT_TRUE(second.done.at(0).status.ok()) << second.done[0].status;
  auto again_entries = EntriesFor(Log(), "/files/again");
  ASSERT_EQ(again_entries.size(), 1u);
  EXPECT_TRUE(connections.contains(again_entries[0].connection));
  EXPECT_GT(again_entries[0].connection_requests, 1u);
}

TEST_F(CurlFetcherTest, ParallelHttpsDownloadsAreVerifiedAndReuseConnections) {
  const int kFiles = 40;
  std::vector<DownloadJob> jobs;
  std::vector<std::string> contents;
  for (int i = 0; i < kFiles; ++i) {
    contents.push_back(RandomBytes(100 + i * 3001, 1000 + i));
    std::string path = "files/s" + std::to_string(i);
    Serve(path, contents.back());
    jobs.push_back(Job(nginx_->HttpsUrl("/" + path), "s" + std::to_string(i), contents.back(), i));
  }
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, jobs);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.done.size(), static_cast<size_t>(kFiles));
  for (const auto& r : out.done) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(ReadOut("s" + std::to_string(r.tag)), contents[r.tag]);
  }
  auto entries = EntriesFor(Log(), "/files/");
  ASSERT_EQ(entries.size(), static_cast<size_t>(kFiles));
  std::set<uint64_t> connections;
  for (const auto& e : entries) {
    EXPECT_EQ(e.port, nginx_->https_port());
    connections.insert(e.connection);
  }
  EXPECT_LE(connections.size(), 4u);
}

TEST_F(CurlFetcherTest, HttpsWithTheWrongCaFailsClearlyWithoutRetry) {
  std::string content = "tls\n";
  Serve("files/t", content);
  FetcherConfig config = Config();
  config.ca_bundle = nginx_->wrong_ca_pem().string();
  auto fetcher = CreateCurlFetcher(config);
  const std::string url = nginx_->HttpsUrl("/files/t");
  RunOutcome out = Run(*fetcher, {Job(url, "t", content)});
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.done.size(), 1u);
  const DownloadResult& r = out.done[0];
  EXPECT_EQ(r.status.code(), absl::StatusCode::kPermissionDenied) << r.status;
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(url));
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("certificate"));
  EXPECT_EQ(r.retries, 0u);
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "t"));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());

  // Same with Get().
  auto got = fetcher->Get(url, GetOptions{});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(EntriesFor(Log(), "/files/"), ::testing::IsEmpty());
}

// --- cookies and errors that are not retried -----------------------------------------------

TEST_F(CurlFetcherTest, ProtectedWithoutCookieIs403AndNotRetried) {
  std::string content = "secret file\n";
  Serve("p.txt", content);
  auto fetcher = CreateCurlFetcher(Config());
  const std::string url = nginx_->HttpUrl("/protected/p.txt");
  RunOutcome out = Run(*fetcher, {Job(url, "p", content)});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(out.done[0].status.message(), "GET " + url + ": HTTP 403");
  EXPECT_EQ(out.done[0].retries, 0u);
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "p"));
  auto entries = EntriesFor(Log(), "/protected/");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].status, 403);
}

TEST_F(CurlFetcherTest, ProtectedWithCookieSucceedsForDownloadAndGet) {
  std::string content = "secret file\n";
  Serve("p.txt", content);
  FetcherConfig config = Config();
  auto cookies = ParseCookiesJson(R"({"other": "x", "ota-token": "secret"})");
  ASSERT_TRUE(cookies.ok());
  config.cookies = *cookies;
  auto fetcher = CreateCurlFetcher(config);
  const std::string url = nginx_->HttpUrl("/protected/p.txt");
  RunOutcome out = Run(*fetcher, {Job(url, "p", content)});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(ReadOut("p"), content);
  auto got = fetcher->Get(url, GetOptions{});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);
  // Over HTTPS too.
  auto tls = fetcher->Get(nginx_->HttpsUrl("/protected/p.txt"), GetOptions{});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(*tls, content);
}

TEST_F(CurlFetcherTest, ClientErrorsAreNotRetried) {
  struct Case {
    std::string path;
    absl::StatusCode code;
    std::string http;
  };
  const std::vector<Case> cases = {
      {"/missing/file", absl::StatusCode::kNotFound, "HTTP 404"},
      {"/status/401/x", absl::StatusCode::kPermissionDenied, "HTTP 401"},
      {"/status/400/x", absl::StatusCode::kInvalidArgument, "HTTP 400"},
  };
  auto fetcher = CreateCurlFetcher(Config());
  for (const auto& c : cases) {
    const std::string url = nginx_->HttpUrl(c.path);
    RunOutcome out = Run(*fetcher, {Job(url, "x", "anything")});
    ASSERT_EQ(out.done.size(), 1u);
    EXPECT_EQ(out.done[0].status.code(), c.code) << out.done[0].status;
    EXPECT_EQ(out.done[0].status.message(), "GET " + url + ": " + c.http);
    EXPECT_EQ(out.done[0].retries, 0u);
    EXPECT_EQ(EntriesFor(Log(), c.path).size(), 1u) << c.path;
    auto got = fetcher->Get(url, GetOptions{});
    EXPECT_EQ(got.status().code(), c.code);
    EXPECT_EQ(EntriesFor(Log(), c.path).size(), 2u) << c.path;
  }
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "x"));
}

// --- retries ---------------------------------------------------------------------------------

TEST_F(CurlFetcherTest, ServerErrorsAreRetriedThenUnavailable) {
  auto fetcher = CreateCurlFetcher(Config());  // max_attempts 3
  for (std::string path : {"/status/503/a", "/status/500/b", "/status/429/c"}) {
    const std::string url = nginx_->HttpUrl(path);
    RunOutcome out = Run(*fetcher, {Job(url, "x", "anything")});
    ASSERT_EQ(out.done.size(), 1u);
    const DownloadResult& r = out.done[0];
    EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
    EXPECT_THAT(std::string(r.status.message()), HasSubstr("GET " + url + ": HTTP "));
    EXPECT_THAT(std::string(r.status.message()), HasSubstr("gave up after 3 attempts"));
    EXPECT_EQ(r.retries, 2u);
    EXPECT_EQ(EntriesFor(Log(), path).size(), 3u) << path;
  }
}

TEST_F(CurlFetcherTest, RetryAfterIsHonouredUpToBackoffMax) {
  FetcherConfig config = Config();
  config.max_attempts = 2;
  config.backoff_initial_ms = 1;
  config.backoff_max_ms = 3000;  // lets the server's Retry-After: 1 through
  auto fetcher = CreateCurlFetcher(config);
  auto start = Clock::now();
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/status/429/r"), "x", "anything")});
  auto elapsed = Clock::now() - start;
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_EQ(out.done[0].retries, 1u);
  EXPECT_GE(elapsed, std::chrono::milliseconds(950));
}

TEST_F(CurlFetcherTest, BackoffDoesNotHoldATransferSlot) {
  FetcherConfig config = Config();
  config.max_parallel = 1;  // one slot: a retry that held it would block everything else
  config.max_attempts = 2;
  config.backoff_initial_ms = 400;
  config.backoff_max_ms = 400;
  auto fetcher = CreateCurlFetcher(config);
  std::vector<DownloadJob> jobs = {Job(nginx_->HttpUrl("/status/503/slot"), "failing", "x", 0)};
  for (int i = 1; i <= 5; ++i) {
    std::string content = RandomBytes(5000, i);
    Serve("files/q" + std::to_string(i), content);
    jobs.push_back(
        Job(nginx_->HttpUrl("/files/q" + std::to_string(i)), "q" + std::to_string(i), content, i));
  }
  RunOutcome out = Run(*fetcher, jobs);
  ASSERT_EQ(out.done.size(), 6u);
  // All good files finish while the failing one waits out its backoff; it finishes last.
  EXPECT_EQ(out.done.back().tag, 0u);
  EXPECT_EQ(out.done.back().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(out.done.back().retries, 1u);
  for (size_t i = 0; i + 1 < out.done.size(); ++i) EXPECT_TRUE(out.done[i].status.ok());
}

TEST_F(CurlFetcherTest, HashMismatchRetriesWithRetryCachingThenDataLoss) {
  for (bool send_cache_control : {true, false}) {
    SCOPED_TRACE(send_cache_control);
    const std::string path = send_cache_control ? "/files/cc-bad" : "/files/plain-bad";
    Serve(path.substr(1), "what the server has\n");
    const std::string expected_content = "what the manifest says\n";
    const std::string hex = crypto::ToHex(crypto::Sha256Of(expected_content));
    FetcherConfig config = Config();
    config.send_cache_control = send_cache_control;
    auto fetcher = CreateCurlFetcher(config);
    DownloadJob job = Job(nginx_->HttpUrl(path), "bad", expected_content);
    job.size.reset();
    RunOutcome out = Run(*fetcher, {job});
    ASSERT_EQ(out.done.size(), 1u);
    const DownloadResult& r = out.done[0];
    EXPECT_EQ(r.status.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(r.status.message()),
                HasSubstr("sha256 mismatch for " + job.url + ": expected " + hex + " got " +
                          crypto::ToHex(crypto::Sha256Of("what the server has\n"))));
    EXPECT_EQ(r.retries, 2u);
    EXPECT_FALSE(std::filesystem::exists(job.dest));
    EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());

    auto entries = EntriesFor(Log(), path);
    ASSERT_EQ(entries.size(), 3u);
    if (send_cache_control) {
      EXPECT_EQ(entries[0].cache_control, "file_sha256=" + hex);
      EXPECT_EQ(entries[1].cache_control, "retry_caching,file_sha256=" + hex);
      EXPECT_EQ(entries[2].cache_control, "retry_caching,file_sha256=" + hex);
    } else {
      EXPECT_EQ(entries[0].cache_control, "");
      EXPECT_EQ(entries[1].cache_control, "retry_caching");
      EXPECT_EQ(entries[2].cache_control, "retry_caching");
    }
  }
}

TEST_F(CurlFetcherTest, MismatchFixedOnTheServerSucceedsOnRetry) {
  const std::string good = RandomBytes(20000, 7);
  Serve("files/flaky", "stale content from a bad cache");
  auto fetcher = CreateCurlFetcher(Config());
  bool replaced = false;
  // The first response's file is already open when its first bytes arrive; replace it then.
  TransferObserver observer{[&](uint64_t) {
    if (!replaced) {
      replaced = true;
      Serve("files/flaky", good);
    }
  }};
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/files/flaky"), "flaky", good)}, observer);
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(out.done[0].retries, 1u);
  EXPECT_EQ(out.done[0].file_bytes, good.size());
  EXPECT_EQ(out.done[0].network_bytes, good.size() + 30);
  EXPECT_EQ(ReadOut("flaky"), good);
}

TEST_F(CurlFetcherTest, SizeMismatchIsDataLoss) {
  const std::string content = "twelve bytes";
  Serve("files/sized", content);
  auto fetcher = CreateCurlFetcher(Config());
  for (uint64_t wrong_size : {5u, 20u}) {
    DownloadJob job = Job(nginx_->HttpUrl("/files/sized"), "sized", content);
    job.size = wrong_size;
    RunOutcome out = Run(*fetcher, {job});
    ASSERT_EQ(out.done.size(), 1u);
    EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr("size mismatch"));
    EXPECT_FALSE(std::filesystem::exists(job.dest));
  }
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

// Bodies are hashed as they arrive and written in pieces of up to 1 MiB (the write buffer is
// sized from the expected size, at least 4 KiB): sizes around those edges, with and without a
// known size, plain and zstd-decoded, must all land byte for byte.
TEST_F(CurlFetcherTest, BodiesAroundTheWriteBufferEdgesLandExactly) {
  constexpr size_t kMiB = 1 << 20;
  struct Case {
    size_t size;
    bool size_known;
    bool zstd;
  };
  std::vector<Case> cases;
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{16385}, kMiB - 1,
                      kMiB, kMiB + 1, 3 * kMiB + 7}) {
    for (bool size_known : {true, false}) {
      for (bool zstd : {false, true}) cases.push_back({size, size_known, zstd});
    }
  }
  auto fetcher = CreateCurlFetcher(Config());
  std::vector<DownloadJob> jobs;
  std::vector<std::string> contents;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    // Text compresses well, so a zstd body decodes to many times its size: the decoder's output
    // runs into the end of the write buffer again and again.
    contents.push_back(c.zstd ? TextBytes(c.size, 100 + i) : RandomBytes(c.size, 100 + i));
    const std::string name = "edge" + std::to_string(i);
    Serve("edges/" + name, c.zstd ? ZstdCompress(contents.back()) : contents.back());
    DownloadJob job = Job(nginx_->HttpUrl("/edges/" + name), name, contents.back(), i);
    if (!c.size_known) job.size.reset();
    if (c.zstd) job.compression = content::Compression::kZstd;
    jobs.push_back(job);
  }
  RunOutcome out = Run(*fetcher, jobs);
  ASSERT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.done.size(), cases.size());
  for (const auto& r : out.done) {
    const Case& c = cases[r.tag];
    SCOPED_TRACE(::testing::Message()
                 << "size " << c.size << " known " << c.size_known << " zstd " << c.zstd);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.file_bytes, c.size);
    EXPECT_EQ(std::filesystem::file_size(jobs[r.tag].dest), c.size);
    EXPECT_TRUE(ReadOut("edge" + std::to_string(r.tag)) == contents[r.tag]);
  }
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

// A wrong first response big enough to have been partly written out (several MiB) is cut off at
// the expected size; the retry must start the temp file over, not append to or overwrite part
// of it.
TEST_F(CurlFetcherTest, BigMismatchIsRewrittenFromScratchOnRetry) {
  const std::string good = RandomBytes((3 << 20) + 5, 70);
  const std::string stale = RandomBytes((5 << 20) + 3, 71);
  Serve("files/big-flaky", stale);
  auto fetcher = CreateCurlFetcher(Config());
  bool replaced = false;
  // nginx keeps sending the file it opened, so the first response is all stale.
  TransferObserver observer{[&](uint64_t) {
    if (!replaced) {
      replaced = true;
      Serve("files/big-flaky", good);
    }
  }};
  RunOutcome out =
      Run(*fetcher, {Job(nginx_->HttpUrl("/files/big-flaky"), "big-flaky", good)}, observer);
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(out.done[0].retries, 1u);
  EXPECT_EQ(out.done[0].file_bytes, good.size());
  EXPECT_EQ(std::filesystem::file_size(out_->path() / "big-flaky"), good.size());
  EXPECT_TRUE(ReadOut("big-flaky") == good);
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

// --- zstd ------------------------------------------------------------------------------------

TEST_F(CurlFetcherTest, ZstdBlobIsDecodedAndVerified) {
  const std::string original = TextBytes(3 << 20, 3);
  const std::string compressed = ZstdCompress(original);
  ASSERT_LT(compressed.size(), original.size() / 2);
  const std::string hex = crypto::ToHex(crypto::Sha256Of(original));
  Serve("data.zst/" + hex + ".zst", compressed);
  FetcherConfig config = Config();
  config.send_cache_control = true;
  auto fetcher = CreateCurlFetcher(config);
  DownloadJob job = Job(nginx_->HttpUrl("/data.zst/" + hex + ".zst"), "blob", original);
  job.compression = content::Compression::kZstd;
  RunOutcome out = Run(*fetcher, {job});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(out.done[0].network_bytes, compressed.size());
  EXPECT_EQ(out.done[0].file_bytes, original.size());
  EXPECT_TRUE(ReadOut("blob") == original);
  auto entries = EntriesFor(Log(), "/data.zst/");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].cache_control, "file_sha256=" + hex + ",file_compression_alg=zst");
}

TEST_F(CurlFetcherTest, ZstdStreamOfSeveralFramesIsDecoded) {
  // zstd allows concatenated frames; the first ends mid-body and a second one follows.
  const std::string part1 = TextBytes(300000, 8);
  const std::string part2 = RandomBytes(70000, 9);
  const std::string original = part1 + part2;
  Serve("z/frames", ZstdCompress(part1) + ZstdCompress(part2));
  auto fetcher = CreateCurlFetcher(Config());
  DownloadJob job = Job(nginx_->HttpUrl("/z/frames"), "frames", original);
  job.compression = content::Compression::kZstd;
  RunOutcome out = Run(*fetcher, {job});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_TRUE(ReadOut("frames") == original);
}

TEST_F(CurlFetcherTest, BrokenZstdIsDataLoss) {
  const std::string original = TextBytes(1 << 20, 4);
  const std::string compressed = ZstdCompress(original);
  struct Case {
    std::string name;
    std::string body;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"truncated", compressed.substr(0, compressed.size() / 2), "truncated zstd stream"},
      {"empty", "", "truncated zstd stream"},
      {"garbage", RandomBytes(5000, 5), "zstd decoding"},
      {"not-compressed", original, "zstd decoding"},
  };
  auto fetcher = CreateCurlFetcher(Config());
  for (const auto& c : cases) {
    Serve("z/" + c.name, c.body);
    DownloadJob job = Job(nginx_->HttpUrl("/z/" + c.name), "z", original);
    job.compression = content::Compression::kZstd;
    RunOutcome out = Run(*fetcher, {job});
    ASSERT_EQ(out.done.size(), 1u);
    EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr(c.reason)) << c.name;
    EXPECT_EQ(out.done[0].retries, 2u);
    EXPECT_FALSE(std::filesystem::exists(job.dest));
  }
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

// --- the server goes away --------------------------------------------------------------------

TEST_F(CurlFetcherTest, ServerDownIsUnavailableNamingTheUrl) {
  auto fetcher = CreateCurlFetcher(Config());
  const auto closed = ClosedPort();
  const std::string url = "http://127.0.0.1:" + std::to_string(closed.port()) + "/files/x";
  RunOutcome out = Run(*fetcher, {Job(url, "x", "content")});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr("GET " + url + ": "));
  EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr("gave up after 3 attempts"));
  EXPECT_EQ(out.done[0].retries, 2u);
  auto got = fetcher->Get(url, GetOptions{});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(url));
}

TEST_F(CurlFetcherTest, ServerKilledMidTransferLeavesNothingBehind) {
  const std::string big = RandomBytes(8 << 20, 11);
  Serve("big.bin", big);
  auto fetcher = CreateCurlFetcher(Config());
  NginxServer* nginx = nginx_.get();
  TransferObserver observer{[nginx](uint64_t) { nginx->Kill(); }};
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/slow/big.bin"), "big", big)}, observer);
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kUnavailable) << out.done[0].status;
  EXPECT_GT(out.done[0].network_bytes, 0u);
  EXPECT_LT(out.done[0].network_bytes, big.size());
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "big"));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

TEST_F(CurlFetcherTest, CancelStopsTransfersQuickly) {
  const std::string big = RandomBytes(8 << 20, 12);
  Serve("big.bin", big);
  std::vector<DownloadJob> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(Job(nginx_->HttpUrl("/slow/big.bin"), "big" + std::to_string(i), big, i));
  }
  auto fetcher = CreateCurlFetcher(Config());
  CancelFlag cancel{false};
  std::promise<void> first_bytes;
  std::atomic<bool> signalled{false};
  TransferObserver observer{[&](uint64_t) {
    if (!signalled.exchange(true)) first_bytes.set_value();
  }};
  Clock::time_point cancelled_at;
  std::thread canceller([&] {
    first_bytes.get_future().wait();
    cancelled_at = Clock::now();
    cancel = true;
  });
  int done_calls = 0;
  absl::Status status = fetcher->DownloadAll(
      jobs,
      [&](const DownloadResult&) {
        ++done_calls;
        return true;
      },
      observer, cancel);
  auto returned_at = Clock::now();
  canceller.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(done_calls, 0);
  EXPECT_LT(returned_at - cancelled_at, std::chrono::milliseconds(500));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(std::filesystem::exists(jobs[i].dest));

  // The fetcher is still usable afterwards.
  Serve("small", "small\n");
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/small"), "small", "small\n")});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_TRUE(out.done[0].status.ok()) << out.done[0].status;
}

// --- proxy -----------------------------------------------------------------------------------

TEST_F(CurlFetcherTest, ForwardProxyGetsHttpsUrlsRewrittenToHttp) {
  const std::string content = RandomBytes(30000, 21);
  Serve("files/via-proxy", content);
  FetcherConfig config = Config();
  config.proxy = nginx_->ProxyUrl();
  config.send_cache_control = true;
  auto cookies = ParseCookiesJson(R"({"ota-token": "secret"})");
  ASSERT_TRUE(cookies.ok());
  config.cookies = *cookies;
  auto fetcher = CreateCurlFetcher(config);
  // The https URL names the plain-http port: only the rewrite to http:// can make it work.
  const std::string https_url =
      "https://127.0.0.1:" + std::to_string(nginx_->http_port()) + "/files/via-proxy";
  const std::string http_url = nginx_->HttpUrl("/files/via-proxy");
  RunOutcome out = Run(*fetcher, {Job(https_url, "via-proxy", content)});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(ReadOut("via-proxy"), content);
  // Cookies travel through the proxy too.
  auto got = fetcher->Get(
      "https://127.0.0.1:" + std::to_string(nginx_->http_port()) + "/protected/files/via-proxy",
      GetOptions{});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);

  auto log = Log();
  std::vector<AccessLogEntry> at_proxy, at_server;
  for (const auto& e : log) (e.port == nginx_->proxy_port() ? at_proxy : at_server).push_back(e);
  ASSERT_EQ(at_proxy.size(), 2u);
  EXPECT_EQ(at_proxy[0].target, http_url);  // absolute-form, http://
  EXPECT_EQ(at_proxy[0].cache_control, "file_sha256=" + crypto::ToHex(crypto::Sha256Of(content)));
  EXPECT_EQ(at_proxy[1].cache_control, "no_cache");
  ASSERT_EQ(at_server.size(), 2u);
  EXPECT_EQ(at_server[0].target, "/files/via-proxy");
  EXPECT_EQ(at_server[1].target, "/protected/files/via-proxy");
  EXPECT_EQ(at_server[1].status, 200);
}

TEST_F(CurlFetcherTest, ProxyEnvironmentVariablesAreIgnored) {
  const auto closed = ClosedPort();
  const std::string dead_proxy = "http://127.0.0.1:" + std::to_string(closed.port());
  const char* vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                        "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
  for (const char* var : vars) ::setenv(var, dead_proxy.c_str(), 1);
  const std::string content = "direct\n";
  Serve("files/direct", content);
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/files/direct"), "direct", content)});
  auto got = fetcher->Get(nginx_->HttpsUrl("/files/direct"), GetOptions{});
  for (const char* var : vars) ::unsetenv(var);
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);
}

// --- redirects -------------------------------------------------------------------------------

TEST_F(CurlFetcherTest, RedirectsAreFollowed) {
  const std::string content = "moved\n";
  Serve("files/r", content);
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpsUrl("/redirect/files/r"), "r", content)});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(ReadOut("r"), content);
  auto got = fetcher->Get(nginx_->HttpUrl("/to-http/files/r"), GetOptions{});  // http → http
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);
  auto log = Log();
  ASSERT_EQ(EntriesFor(log, "/redirect/").size(), 1u);
  EXPECT_EQ(EntriesFor(log, "/redirect/")[0].status, 302);
  EXPECT_EQ(EntriesFor(log, "/files/r").size(), 2u);
}

TEST_F(CurlFetcherTest, RedirectFromHttpsToHttpIsRefused) {
  const std::string content = "moved\n";
  Serve("files/r", content);
  auto fetcher = CreateCurlFetcher(Config());
  const std::string url = nginx_->HttpsUrl("/to-http/files/r");
  RunOutcome out = Run(*fetcher, {Job(url, "r", content)});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_FALSE(out.done[0].status.ok());
  EXPECT_EQ(out.done[0].retries, 0u);
  EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr(url));
  EXPECT_THAT(std::string(out.done[0].status.message()),
              HasSubstr("redirected to " + nginx_->HttpUrl("/files/r") +
                        ": an https → http redirect is refused"));
  EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "r"));
  auto got = fetcher->Get(url, GetOptions{});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("an https → http redirect is refused"));
  EXPECT_THAT(EntriesFor(Log(), "/files/"), ::testing::IsEmpty());
}

// Each cached connection is dead by the time it would be reused. The socket of a new connection
// usually gets the fd number of the one just closed: the transfer loop's epoll set must follow.
TEST_F(CurlFetcherTest, ServerClosingEveryConnectionAfterOneResponseIsHarmless) {
  const std::string content = RandomBytes(20000, 90);
  ClosesAfterEachResponseServer server(content);
  auto fetcher = CreateCurlFetcher(Config());
  constexpr int kCalls = 5;
  constexpr int kJobsPerCall = 6;
  for (int call = 0; call < kCalls; ++call) {
    SCOPED_TRACE(call);
    std::vector<DownloadJob> jobs;
    for (int i = 0; i < kJobsPerCall; ++i) {
      jobs.push_back(Job(server.Url(), "c" + std::to_string(i), content, i));
    }
    RunOutcome out = Run(*fetcher, jobs);
    ASSERT_TRUE(out.status.ok()) << out.status;
    ASSERT_EQ(out.done.size(), jobs.size());
    for (const auto& r : out.done) {
      ASSERT_TRUE(r.status.ok()) << r.status;
      EXPECT_TRUE(ReadOut("c" + std::to_string(r.tag)) == content);
    }
    auto got = fetcher->Get(server.Url(), GetOptions{});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == content);
  }
  // One connection per response: none was reused.
  EXPECT_GE(server.connections(), kCalls * (kJobsPerCall + 1));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
}

// --- local cases ----------------------------------------------------------------------------

TEST_F(CurlFetcherTest, FileUrlsWork) {
  const std::string content = RandomBytes(70000, 31);
  auto src = fs::TempDir::Create("fetcher-src");
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(src->path() / "a b.bin", content).ok());
  auto fetcher = CreateCurlFetcher(Config());
  const std::string url = "file://" + src->path().string() + "/a%20b.bin";
  RunOutcome out = Run(*fetcher, {Job(url, "local", content)});
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(ReadOut("local"), content);
  auto got = fetcher->Get(url, GetOptions{});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);

  const std::string missing = "file://" + src->path().string() + "/missing";
  RunOutcome gone = Run(*fetcher, {Job(missing, "missing", content)});
  ASSERT_EQ(gone.done.size(), 1u);
  EXPECT_EQ(gone.done[0].status.code(), absl::StatusCode::kNotFound) << gone.done[0].status;
  EXPECT_EQ(gone.done[0].retries, 0u);
  EXPECT_THAT(std::string(gone.done[0].status.message()), HasSubstr(missing));
}

TEST_F(CurlFetcherTest, UnsupportedSchemeIsInvalidArgument) {
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, {Job("ftp://127.0.0.1/x", "x", "content")});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_EQ(out.done[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.done[0].retries, 0u);
}

TEST_F(CurlFetcherTest, EmptyFileIsCreatedWithoutAnyRequest) {
  auto fetcher = CreateCurlFetcher(Config());
  DownloadJob job = Job(nginx_->HttpUrl("/files/empty-not-on-server"), "empty", "", 42);
  job.compression = content::Compression::kZstd;  // irrelevant: nothing is fetched
  RunOutcome out = Run(*fetcher, {job});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_TRUE(out.done[0].status.ok()) << out.done[0].status;
  EXPECT_EQ(out.done[0].tag, 42u);
  EXPECT_EQ(out.done[0].network_bytes, 0u);
  ASSERT_TRUE(std::filesystem::exists(job.dest));
  EXPECT_EQ(std::filesystem::file_size(job.dest), 0u);
  EXPECT_THAT(Log(), ::testing::IsEmpty());
}

TEST_F(CurlFetcherTest, ExistingDestIsReplaced) {
  const std::string content = "new\n";
  Serve("files/n", content);
  ASSERT_TRUE(fs::WriteFileAtomic(out_->path() / "n", "old content\n").ok());
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, {Job(nginx_->HttpUrl("/files/n"), "n", content)});
  ASSERT_TRUE(out.done.at(0).status.ok()) << out.done[0].status;
  EXPECT_EQ(ReadOut("n"), content);
}

TEST_F(CurlFetcherTest, MissingDestDirectoryFailsBeforeAnyRequest) {
  Serve("files/m", "m");
  auto fetcher = CreateCurlFetcher(Config());
  DownloadJob job = Job(nginx_->HttpUrl("/files/m"), "no/such/dir/m", "m");
  RunOutcome out = Run(*fetcher, {job});
  ASSERT_EQ(out.done.size(), 1u);
  EXPECT_FALSE(out.done[0].status.ok());
  EXPECT_THAT(std::string(out.done[0].status.message()), HasSubstr(out_->path().string()));
  EXPECT_THAT(Log(), ::testing::IsEmpty());
}

TEST_F(CurlFetcherTest, OnDoneFalseStopsEarly) {
  std::vector<DownloadJob> jobs;
  for (int i = 0; i < 20; ++i) {
    std::string content = RandomBytes(50000, 40 + i);
    Serve("files/e" + std::to_string(i), content);
    jobs.push_back(
        Job(nginx_->HttpUrl("/files/e" + std::to_string(i)), "e" + std::to_string(i), content, i));
  }
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, jobs, {}, [](const DownloadResult&) { return false; });
  EXPECT_TRUE(out.status.ok()) << out.status;
  ASSERT_EQ(out.done.size(), 1u);
  ASSERT_TRUE(out.done[0].status.ok());
  int present = 0;
  for (const auto& job : jobs) present += std::filesystem::exists(job.dest) ? 1 : 0;
  EXPECT_EQ(present, 1);
  EXPECT_TRUE(std::filesystem::exists(jobs[out.done[0].tag].dest));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
  EXPECT_LT(EntriesFor(Log(), "/files/").size(), 20u);
}

TEST_F(CurlFetcherTest, NoJobsIsOk) {
  auto fetcher = CreateCurlFetcher(Config());
  RunOutcome out = Run(*fetcher, {});
  EXPECT_TRUE(out.status.ok());
  EXPECT_TRUE(out.done.empty());
}

// A call returns as soon as its last transfer has finished. (The loop used to sit out a full
// 100 ms poll timeout after the last completion: every Get, and every DownloadAll batch, paid it.)
// Each group below makes 20 calls, so the old behaviour needs at least 2 s per group.
TEST_F(CurlFetcherTest, CallsReturnAsSoonAsTheLastTransferEnds) {
  constexpr int kCalls = 20;
  const std::string content = RandomBytes(3000, 80);
  Serve("quick/q", content);
  auto src = fs::TempDir::Create("fetcher-src");
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(src->path() / "q", content).ok());
  auto fetcher = CreateCurlFetcher(Config());
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"http", nginx_->HttpUrl("/quick/q")},
      {"https", nginx_->HttpsUrl("/quick/q")},
      {"file", "file://" + (src->path() / "q").string()}};
  for (const auto& [scheme, url] : sources) {
    SCOPED_TRACE(scheme);
    // The first call opens the connection; it is not what is measured.
    ASSERT_TRUE(fetcher->Get(url, GetOptions{}).ok());
    Clock::time_point start = Clock::now();
    for (int i = 0; i < kCalls; ++i) {
      auto got = fetcher->Get(url, GetOptions{});
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ(*got, content);
    }
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1)) << "Get";

    start = Clock::now();
    for (int i = 0; i < kCalls; ++i) {
      RunOutcome out = Run(*fetcher, {Job(url, "q", content)});
      ASSERT_TRUE(out.status.ok()) << out.status;
      ASSERT_EQ(out.done.size(), 1u);
      ASSERT_TRUE(out.done[0].status.ok()) << out.done[0].status;
    }
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1)) << "DownloadAll";
    EXPECT_EQ(ReadOut("q"), content);
  }
}

// --- Get -------------------------------------------------------------------------------------

TEST_F(CurlFetcherTest, GetVerifiesAndSendsNoCache) {
  const std::string content = "metadata\n";
  Serve("meta/m.txt", content);
  auto fetcher = CreateCurlFetcher(Config());
  GetOptions options;
  options.expected_sha256 = crypto::Sha256Of(content);
  auto got = fetcher->Get(nginx_->HttpUrl("/meta/m.txt"), options);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, content);
  GetOptions cacheable;
  cacheable.no_cache = false;
  ASSERT_TRUE(fetcher->Get(nginx_->HttpUrl("/meta/m.txt"), cacheable).ok());
  auto entries = EntriesFor(Log(), "/meta/");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].cache_control, "no_cache");
  EXPECT_EQ(entries[1].cache_control, "");
  EXPECT_EQ(entries[1].connection, entries[0].connection);  // kept alive between calls
}

TEST_F(CurlFetcherTest, GetMismatchRetriesWithRetryCachingThenDataLoss) {
  Serve("meta/bad.txt", "tampered\n");
  auto fetcher = CreateCurlFetcher(Config());
  GetOptions options;
  options.expected_sha256 = crypto::Sha256Of("original\n");
  auto got = fetcher->Get(nginx_->HttpUrl("/meta/bad.txt"), options);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("sha256 mismatch for " + nginx_->HttpUrl("/meta/bad.txt")));
  auto entries = EntriesFor(Log(), "/meta/");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].cache_control, "no_cache");
  EXPECT_EQ(entries[1].cache_control, "retry_caching");
  EXPECT_EQ(entries[2].cache_control, "retry_caching");
}

TEST_F(CurlFetcherTest, GetRefusesBodiesOverTheLimit) {
  Serve("meta/big", RandomBytes(100000, 50));
  auto fetcher = CreateCurlFetcher(Config());
  GetOptions options;
  options.max_bytes = 1000;
  auto got = fetcher->Get(nginx_->HttpUrl("/meta/big"), options);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("limit of 1000 bytes"));
  EXPECT_EQ(EntriesFor(Log(), "/meta/").size(), 1u);
}

TEST_F(CurlFetcherTest, GetOfEmptyHashMakesNoRequest) {
  auto fetcher = CreateCurlFetcher(Config());
  GetOptions options;
  options.expected_sha256 = crypto::Sha256Of("");
  auto got = fetcher->Get(nginx_->HttpUrl("/meta/none"), options);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
  EXPECT_THAT(Log(), ::testing::IsEmpty());
}

TEST_F(CurlFetcherTest, GetWhileDownloadAllRunsIsNotBlocked) {
  const std::string big = RandomBytes(4 << 20, 60);
  Serve("big.bin", big);
  Serve("meta/m.txt", "m\n");
  auto fetcher = CreateCurlFetcher(Config());
  CancelFlag cancel{false};
  std::promise<void> first_bytes;
  std::atomic<bool> signalled{false};
  TransferObserver observer{[&](uint64_t) {
    if (!signalled.exchange(true)) first_bytes.set_value();
  }};
  absl::StatusOr<std::string> got;
  std::thread getter([&] {
    first_bytes.get_future().wait();
    got = fetcher->Get(nginx_->HttpUrl("/meta/m.txt"), GetOptions{});
    cancel = true;  // the slow download only ends because Get() returned
  });
  absl::Status status = fetcher->DownloadAll(
      std::vector<DownloadJob>{Job(nginx_->HttpUrl("/slow/big.bin"), "big", big)},
      [](const DownloadResult&) { return true; }, observer, cancel);
  getter.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "m\n");
}

// --- FetcherConfig::cancel: the owner stops calls made by code it does not control -----------

// Sets `flag` from another thread after `delay` and records when. The delay only aims the cancel
// at the middle of a transfer; the assertions hold wherever it lands.
class DelayedCancel {
 public:
  DelayedCancel(CancelFlag& flag, std::chrono::milliseconds delay)
      : thread_([this, &flag, delay] {
          std::this_thread::sleep_for(delay);
          at_ = Clock::now();
          flag = true;
        }) {}
  ~DelayedCancel() {
    if (thread_.joinable()) thread_.join();
  }
  // Joins; the time the flag was set.
  Clock::time_point At() {
    thread_.join();
    return at_;
  }

 private:
  Clock::time_point at_;
  std::thread thread_;
};

TEST_F(CurlFetcherTest, ConfigCancelStopsAGetMidTransfer) {
  const std::string big = RandomBytes(4 << 20, 70);  // ~32 s at /slow/'s 128 KiB/s
  Serve("meta/big.bin", big);
  CancelFlag cancel{false};
  FetcherConfig config = Config();
  config.cancel = &cancel;
  auto fetcher = CreateCurlFetcher(config);
  GetOptions options;
  options.max_bytes = big.size();
  DelayedCancel canceller(cancel, std::chrono::milliseconds(300));
  absl::StatusOr<std::string> got = fetcher->Get(nginx_->HttpUrl("/slow/meta/big.bin"), options);
  const Clock::time_point returned = Clock::now();
  const Clock::time_point cancelled = canceller.At();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled) << got.status();
  EXPECT_LT(returned - cancelled, std::chrono::milliseconds(500));
  // Still cancelled: every later call returns at once, without a request.
  const size_t requests = Log().size();
  EXPECT_EQ(fetcher->Get(nginx_->HttpUrl("/meta/big.bin"), options).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(Log().size(), requests);
}

TEST_F(CurlFetcherTest, ConfigCancelStopsDownloadAllAlsoDuringARetryBackoff) {
  const std::string big = RandomBytes(4 << 20, 71);
  Serve("big.bin", big);
  CancelFlag cancel{false};
  FetcherConfig config = Config();
  config.cancel = &cancel;
  // A long backoff: the loop must still look at the flag while it waits for the retry.
  config.backoff_initial_ms = 5000;
  config.backoff_max_ms = 5000;
  auto fetcher = CreateCurlFetcher(config);
  std::vector<DownloadJob> jobs = {Job(nginx_->HttpUrl("/slow/big.bin"), "big", big, 0),
                                   Job(nginx_->HttpUrl("/status/503/x"), "x", "x", 1)};
  CancelFlag call_cancel{false};  // the per-call flag stays clear
  int done_calls = 0;
  DelayedCancel canceller(cancel, std::chrono::milliseconds(300));
  absl::Status status = fetcher->DownloadAll(
      jobs,
      [&](const DownloadResult&) {
        ++done_calls;
        return true;
      },
      TransferObserver{}, call_cancel);
  const Clock::time_point returned = Clock::now();
  const Clock::time_point cancelled = canceller.At();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(done_calls, 0);
  EXPECT_LT(returned - cancelled, std::chrono::milliseconds(500));
  EXPECT_THAT(TempLeftovers(), ::testing::IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(jobs[0].dest));
}

}  // namespace
}  // namespace ota::http
