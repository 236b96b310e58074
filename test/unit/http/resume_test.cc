// Byte-range resume and the download rate cap of CurlFetcher (curl_fetcher.h).
//
// Resume runs against CuttingServer, a real HTTP/1.1 server on loopback written here so that each
// case controls exactly what a server does after a cut: it closes the first response after N
// body bytes (a server that died, a reset link), then answers Range requests as told — honestly,
// ignoring them, from the wrong offset, or after its validator changed. The rate cap runs against
// real nginx (test/lib/nginx) and is measured from the fetcher's own byte counters and the clock.
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/http/byte_range.h"
#include "common/http/curl_fetcher.h"
#include "gtest/gtest.h"
#include "test/lib/loopback.h"
#include "test/lib/nginx/nginx_fixture.h"
#include "test/lib/test_bytes.h"

namespace ota::http {
namespace {

using ::ota::testing::RandomBytes;
using ::ota::testing::TextBytes;
using ::ota::testing::ZstdCompress;

using Clock = std::chrono::steady_clock;

// A request header's value ("" when absent), case-insensitive name.
std::string RequestHeader(const std::string& request, std::string_view name) {
  size_t pos = 0;
  while ((pos = request.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    if (request.size() > pos + name.size() && request[pos + name.size()] == ':' &&
        ::strncasecmp(request.data() + pos, name.data(), name.size()) == 0) {
      size_t begin = pos + name.size() + 1;
      while (begin < request.size() && request[begin] == ' ') ++begin;
      return request.substr(begin, request.find("\r\n", begin) - begin);
    }
  }
  return "";
}

// One HTTP/1.1 server thread on 127.0.0.1 (port 0, read back), one request per connection.
class CuttingServer {
 public:
  struct Behaviour {
    uint64_t cut_first_at = 0;   // the first response closes after this many body bytes; 0 = no cut
    bool honour_range = true;    // false: Range is ignored (200, whole body)
    int64_t range_skew = 0;      // a 206 starts this many bytes after the asked start
    std::string etag;            // sent with every response ("" = none)
    std::string etag_after_cut;  // the ETag from the second request on ("" = unchanged)
    std::string last_modified;   // sent with every response ("" = none)
    std::string cache_control_echo;  // Ota-File-Cache-Control answer ("" = none)
  };
  struct Seen {
    std::string range;
    std::string if_range;
    std::string cache_control;
  };

  CuttingServer(std::string body, Behaviour behaviour)
      : body_(std::move(body)), behaviour_(std::move(behaviour)) {
    auto listener = ::ota::testing::BindLoopback(64);
    if (!listener.ok()) {
      ADD_FAILURE() << listener.status();
      return;
    }
    listen_fd_ = std::move(listener->fd);
    port_ = listener->port;
    thread_ = std::thread([this] { Serve(); });
  }
  ~CuttingServer() {
    ::shutdown(listen_fd_.get(), SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/blob"; }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  uint64_t body_bytes_sent() const { return body_bytes_sent_.load(); }

 private:
  void Serve() {
    for (int index = 0;; ++index) {
      fs::UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn.valid()) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(conn.get(), buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      if (request.find("\r\n\r\n") == std::string::npos) continue;
      Seen seen{RequestHeader(request, "Range"), RequestHeader(request, "If-Range"),
                RequestHeader(request, "Ota-File-Cache-Control")};
      {
        std::lock_guard lock(mu_);
        seen_.push_back(seen);
      }
      const std::string etag = index > 0 && !behaviour_.etag_after_cut.empty()
                                   ? behaviour_.etag_after_cut
                                   : behaviour_.etag;
      std::optional<ByteRange> range = ParseRangeHeader(seen.range);
      if (range && !seen.if_range.empty() && seen.if_range != etag &&
          seen.if_range != behaviour_.last_modified) {
        range = std::nullopt;  // If-Range: the representation changed, send all of it
      }
      if (!behaviour_.honour_range) range = std::nullopt;
      uint64_t first = 0;
      std::string head;
      if (range && range->first >= body_.size()) {
        head = "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n";
      } else if (range) {
        first = range->first + static_cast<uint64_t>(behaviour_.range_skew);
        head = "HTTP/1.1 206 Partial Content\r\nContent-Range: " +
               FormatContentRange(first, body_.size()) +
               "\r\nContent-Length: " + std::to_string(body_.size() - first) + "\r\n";
      } else {
        head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body_.size()) + "\r\n";
      }
      if (!etag.empty()) head += "ETag: " + etag + "\r\n";
      if (!behaviour_.last_modified.empty()) {
        head += "Last-Modified: " + behaviour_.last_modified + "\r\n";
      }
      if (!behaviour_.cache_control_echo.empty()) {
        head += "Ota-File-Cache-Control: " + behaviour_.cache_control_echo + "\r\n";
      }
      head += "Connection: close\r\n\r\n";
      uint64_t end = head.starts_with("HTTP/1.1 416") ? first : body_.size();
      if (index == 0 && behaviour_.cut_first_at > 0) end = behaviour_.cut_first_at;
      if (!SendAll(conn.get(), head)) continue;
      if (first < end && SendAll(conn.get(), std::string_view(body_).substr(first, end - first))) {
        body_bytes_sent_ += end - first;
      }
      // Closing ends the response: short of Content-Length after a cut.
    }
  }

  static bool SendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  const std::string body_;
  const Behaviour behaviour_;
  fs::UniqueFd listen_fd_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::atomic<uint64_t> body_bytes_sent_{0};
};

class ResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto out = fs::TempDir::Create("resume-out");
    ASSERT_TRUE(out.ok()) << out.status();
    out_ = std::make_unique<fs::TempDir>(std::move(*out));
  }

  static FetcherConfig Config() {
    FetcherConfig config;
    config.max_parallel = 4;
    config.max_attempts = 4;
    config.backoff_initial_ms = 5;
    config.backoff_max_ms = 20;
    config.connect_timeout_s = 5;
    config.low_speed_timeout_s = 10;
    return config;
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

  std::vector<DownloadResult> Run(Fetcher& fetcher, const std::vector<DownloadJob>& jobs,
                                  absl::Status* status = nullptr) {
    std::vector<DownloadResult> done;
    CancelFlag cancel{false};
    absl::Status s = fetcher.DownloadAll(
        jobs,
        [&](const DownloadResult& r) {
          done.push_back(r);
          return true;
        },
        {}, cancel);
    if (status != nullptr) *status = s;
    EXPECT_TRUE(s.ok()) << s;
    return done;
  }

  std::string ReadOut(const std::string& name) const {
    auto content = fs::ReadFile(out_->path() / name);
    EXPECT_TRUE(content.ok()) << content.status();
    return content.ok() ? *content : "";
  }

  std::vector<std::string> TempLeftovers() const {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(out_->path())) {
      std::string name = e.path().filename().string();
      if (name.find(".ota-partial.") != std::string::npos) found.push_back(name);
    }
    return found;
  }

  std::unique_ptr<fs::TempDir> out_;
};

constexpr uint64_t kCut = (1 << 20) + 12345;  // not on any buffer boundary

// What both sides saw of one download whose first response was cut at kCut.
struct CutDownload {
  DownloadResult result;
  std::vector<CuttingServer::Seen> seen;
  uint64_t body_bytes_sent = 0;
};

class CutTest : public ResumeTest {
 protected:
  // Serves `body` from a CuttingServer that closes its first response after kCut bytes and
  // behaves as `behaviour` says after that; downloads it as one job expecting `content` (the
  // decompressed body when `compression` is set) into out/blob.
  CutDownload DownloadWithCut(const std::string& body, const std::string& content,
                              CuttingServer::Behaviour behaviour,
                              const FetcherConfig& config = Config(),
                              content::Compression compression = content::Compression::kNone) {
    behaviour.cut_first_at = kCut;
    CuttingServer server(body, behaviour);
    auto fetcher = CreateCurlFetcher(config);
    DownloadJob job = Job(server.Url(), "blob", content);
    job.compression = compression;
    std::vector<DownloadResult> done = Run(*fetcher, {job});
    CutDownload cut;
    EXPECT_EQ(done.size(), 1u);
    cut.result.status = absl::InternalError("the fetcher reported no result");
    if (done.size() == 1) cut.result = done[0];
    cut.seen = server.seen();
    cut.body_bytes_sent = server.body_bytes_sent();
    return cut;
  }
};

TEST_F(CutTest, CutTransferContinuesWithRangeAndIfRange) {
  const std::string content = RandomBytes(4 << 20, 1);
  CuttingServer::Behaviour behaviour;
  behaviour.etag = "\"v1\"";
  const CutDownload cut = DownloadWithCut(content, content, behaviour);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  EXPECT_EQ(cut.result.retries, 1u);
  EXPECT_EQ(cut.result.resumes, 1u);
  // Every byte crossed the wire once.
  EXPECT_EQ(cut.result.network_bytes, content.size());
  EXPECT_EQ(cut.body_bytes_sent, content.size());
  EXPECT_TRUE(ReadOut("blob") == content);
  ASSERT_EQ(cut.seen.size(), 2u);
  EXPECT_EQ(cut.seen[0].range, "");
  EXPECT_EQ(cut.seen[1].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(cut.seen[1].if_range, "\"v1\"");
  EXPECT_TRUE(TempLeftovers().empty());
}

TEST_F(CutTest, LastModifiedIsTheValidatorWhenTheETagIsWeak) {
  const std::string content = RandomBytes(3 << 20, 2);
  const std::string date = "Wed, 21 Oct 2015 07:28:00 GMT";
  CuttingServer::Behaviour behaviour;
  behaviour.etag = "W/\"weak\"";
  behaviour.last_modified = date;
  const CutDownload cut = DownloadWithCut(content, content, behaviour);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  EXPECT_EQ(cut.result.resumes, 1u);
  ASSERT_EQ(cut.seen.size(), 2u);
  EXPECT_EQ(cut.seen[1].if_range, date);
}

TEST_F(CutTest, WithoutAValidatorTheRangeGoesAlone) {
  const std::string content = RandomBytes(3 << 20, 3);
  const CutDownload cut = DownloadWithCut(content, content, {});
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  ASSERT_EQ(cut.seen.size(), 2u);
  EXPECT_EQ(cut.seen[1].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(cut.seen[1].if_range, "");
  EXPECT_EQ(cut.body_bytes_sent, content.size());
}

// The zstd decoder's state carries over: the compressed stream continues mid-frame.
TEST_F(CutTest, ZstdStreamContinuesMidFrame) {
  const std::string content = TextBytes(24 << 20, 4);
  const std::string compressed = ZstdCompress(content);
  ASSERT_GT(compressed.size(), 2 * kCut);
  CuttingServer::Behaviour behaviour;
  behaviour.etag = "\"z\"";
  const CutDownload cut =
      DownloadWithCut(compressed, content, behaviour, Config(), content::Compression::kZstd);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  EXPECT_EQ(cut.result.resumes, 1u);
  EXPECT_EQ(cut.result.network_bytes, compressed.size());
  EXPECT_EQ(cut.result.file_bytes, content.size());
  EXPECT_TRUE(ReadOut("blob") == content);
}

TEST_F(CutTest, ServerIgnoringRangeRestartsTheFileCleanly) {
  const std::string content = RandomBytes(3 << 20, 5);
  CuttingServer::Behaviour behaviour;
  behaviour.honour_range = false;
  const CutDownload cut = DownloadWithCut(content, content, behaviour);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  EXPECT_EQ(cut.result.resumes, 0u);
  EXPECT_EQ(cut.result.network_bytes, kCut + content.size());
  EXPECT_TRUE(ReadOut("blob") == content);  // truncated and rewritten, not appended
  EXPECT_EQ(cut.seen.size(), 2u);
}

TEST_F(CutTest, ChangedValidatorMakesTheServerSendAllAndTheFileRestarts) {
  const std::string content = RandomBytes(3 << 20, 6);
  CuttingServer::Behaviour behaviour;
  behaviour.etag = "\"old\"";
  behaviour.etag_after_cut = "\"new\"";
  const CutDownload cut = DownloadWithCut(content, content, behaviour);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  EXPECT_EQ(cut.result.resumes, 0u);
  ASSERT_EQ(cut.seen.size(), 2u);
  EXPECT_EQ(cut.seen[1].if_range, "\"old\"");
  EXPECT_EQ(cut.body_bytes_sent, kCut + content.size());
  EXPECT_TRUE(ReadOut("blob") == content);
}

// A 206 that does not start where asked is refused; the next attempt starts from byte 0 without
// Range (and so without the skew).
TEST_F(CutTest, WrongContentRangeStartIsRefusedAndRetriedFromZero) {
  const std::string content = RandomBytes(3 << 20, 7);
  CuttingServer::Behaviour behaviour;
  behaviour.range_skew = 100;
  behaviour.etag = "\"e\"";
  const CutDownload cut = DownloadWithCut(content, content, behaviour);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  ASSERT_EQ(cut.seen.size(), 3u);
  EXPECT_EQ(cut.seen[1].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(cut.seen[2].range, "");
  EXPECT_EQ(cut.result.resumes, 0u);
  EXPECT_TRUE(ReadOut("blob") == content);
}

// Resuming off: every retry from byte 0 (FetcherConfig::resume).
TEST_F(CutTest, ResumeOffRetriesFromZero) {
  const std::string content = RandomBytes(3 << 20, 8);
  CuttingServer::Behaviour behaviour;
  behaviour.etag = "\"e\"";
  FetcherConfig config = Config();
  config.resume = false;
  const CutDownload cut = DownloadWithCut(content, content, behaviour, config);
  ASSERT_TRUE(cut.result.status.ok()) << cut.result.status;
  ASSERT_EQ(cut.seen.size(), 2u);
  EXPECT_EQ(cut.seen[1].range, "");
  EXPECT_EQ(cut.result.network_bytes, kCut + content.size());
}

// A resumed stream whose bytes turn out wrong (the server changed the file without a validator)
// fails its hash and is fetched again from scratch with retry_caching, as any mismatch.
TEST_F(CutTest, WrongResumedContentIsAMismatchRetriedWhole) {
  const std::string content = RandomBytes(3 << 20, 9);
  std::string wrong = content;
  wrong[kCut + 10] ^= 0x55;  // after the cut: only the resumed part differs
  // First response: the right bytes up to the cut; then the server has the wrong file. Served
  // by one server whose body is wrong but whose first kCut bytes equal the right ones.
  FetcherConfig config = Config();
  config.max_attempts = 3;
  const CutDownload cut = DownloadWithCut(wrong, content, {}, config);
  EXPECT_EQ(cut.result.status.code(), absl::StatusCode::kDataLoss) << cut.result.status;
  ASSERT_EQ(cut.seen.size(), 3u);
  EXPECT_EQ(cut.seen[1].range, "bytes=" + std::to_string(kCut) + "-");
  EXPECT_EQ(cut.seen[2].range, "");  // after a mismatch: whole, never resumed
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "blob"));
  EXPECT_TRUE(TempLeftovers().empty());
}

// --- a proxy's Ota-File-Cache-Control answer -------------------------------------------------

// A proxy answering from a cache says what it sends: today's otaproxy serves a USB stick's
// <sha256>.zst for a file asked for uncompressed, echoing file_compression_alg=zst.
class ProxyEchoTest : public ResumeTest {
 protected:
  static FetcherConfig ProxyConfig() {
    FetcherConfig config = Config();
    config.send_cache_control = true;  // as when a proxy is in use
    return config;
  }
  static std::string Echo(const std::string& content, std::string_view alg = "") {
    std::string echo = "file_sha256=" + crypto::ToHex(crypto::Sha256Of(content));
    if (!alg.empty()) echo += ",file_compression_alg=" + std::string(alg);
    return echo;
  }
  DownloadResult DownloadOne(const CuttingServer& server, const std::string& content,
                             content::Compression asked) {
    auto fetcher = CreateCurlFetcher(ProxyConfig());
    DownloadJob job = Job(server.Url(), "blob", content);
    job.compression = asked;
    std::vector<DownloadResult> done = Run(*fetcher, {job});
    EXPECT_EQ(done.size(), 1u);
    return done.empty() ? DownloadResult{.status = absl::InternalError("no result")} : done[0];
  }
};

TEST_F(ProxyEchoTest, AZstdAnswerToAnUncompressedRequestIsDecoded) {
  const std::string content = TextBytes(3 << 20, 40);
  const std::string compressed = ZstdCompress(content);
  CuttingServer server(compressed, {.cache_control_echo = Echo(content, "zst")});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kNone);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.retries, 0u);
  EXPECT_EQ(result.network_bytes, compressed.size());
  EXPECT_EQ(result.file_bytes, content.size());
  EXPECT_TRUE(ReadOut("blob") == content);
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].cache_control, Echo(content));
}

// "zstd" is today's other spelling of the same algorithm.
TEST_F(ProxyEchoTest, TheZstdSpellingIsTakenToo) {
  const std::string content = TextBytes(1 << 20, 41);
  CuttingServer server(ZstdCompress(content), {.cache_control_echo = Echo(content, "zstd")});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kNone);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_TRUE(ReadOut("blob") == content);
}

// A cache entry filled by an uncompressed request answers a compressed one as it is.
TEST_F(ProxyEchoTest, AnUncompressedAnswerToAZstdRequestIsTakenAsIs) {
  const std::string content = TextBytes(1 << 20, 42);
  CuttingServer server(content, {.cache_control_echo = Echo(content)});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kZstd);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.network_bytes, content.size());
  EXPECT_TRUE(ReadOut("blob") == content);
  EXPECT_EQ(server.seen()[0].cache_control, Echo(content) + ",file_compression_alg=zst");
}

// The decoder switched for the first response goes on through a resumed one.
TEST_F(ProxyEchoTest, AZstdAnswerCutHalfwayResumes) {
  const std::string content = TextBytes(24 << 20, 43);
  const std::string compressed = ZstdCompress(content);
  ASSERT_GT(compressed.size(), 2 * kCut);
  CuttingServer server(
      compressed,
      {.cut_first_at = kCut, .etag = "\"z\"", .cache_control_echo = Echo(content, "zst")});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kNone);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.resumes, 1u);
  EXPECT_EQ(result.network_bytes, compressed.size());
  EXPECT_TRUE(ReadOut("blob") == content);
}

// An answer for another file is wrong content: refused before a byte is written, retried with
// retry_caching, and in the end a content error.
TEST_F(ProxyEchoTest, AnAnswerForAnotherDigestIsWrongContent) {
  const std::string content = TextBytes(1 << 20, 44);
  CuttingServer server(content, {.cache_control_echo = Echo("another file")});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kNone);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDataLoss) << result.status;
  EXPECT_NE(result.status.message().find("the proxy answered with file_sha256="),
            std::string_view::npos)
      << result.status;
  const std::vector<CuttingServer::Seen> seen = server.seen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[1].cache_control, "retry_caching," + Echo(content));
  EXPECT_FALSE(std::filesystem::exists(out_->path() / "blob"));
  EXPECT_TRUE(TempLeftovers().empty());
}

TEST_F(ProxyEchoTest, AnUnsupportedCompressionIsWrongContent) {
  const std::string content = TextBytes(1 << 20, 45);
  CuttingServer server(content, {.cache_control_echo = Echo(content, "gzip")});
  const DownloadResult result = DownloadOne(server, content, content::Compression::kNone);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDataLoss) << result.status;
  EXPECT_NE(result.status.message().find("unsupported gzip"), std::string_view::npos)
      << result.status;
}

// A v1 blob is asked for by the digest of the body itself (DownloadJob::body_sha256): the
// proxy's echo of that digest says nothing about compression; the body stays zstd as the job says.
TEST_F(ProxyEchoTest, ABodyAddressedBlobKeepsItsCompression) {
  const std::string content = TextBytes(1 << 20, 47);
  const std::string compressed = ZstdCompress(content);
  CuttingServer server(compressed, {.cache_control_echo = Echo(compressed)});
  auto fetcher = CreateCurlFetcher(ProxyConfig());
  DownloadJob job = Job(server.Url(), "blob", content);
  job.compression = content::Compression::kZstd;
  job.body_sha256 = crypto::Sha256Of(compressed);
  std::vector<DownloadResult> done = Run(*fetcher, {job});
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].status.ok()) << done[0].status;
  EXPECT_EQ(done[0].retries, 0u);
  EXPECT_TRUE(ReadOut("blob") == content);
  EXPECT_EQ(server.seen()[0].cache_control, Echo(compressed));
}

// Without a blob request (no proxy in use: no directives sent) an echo means nothing.
TEST_F(ProxyEchoTest, WithoutDirectivesTheEchoIsIgnored) {
  const std::string content = TextBytes(1 << 20, 46);
  CuttingServer server(content, {.cache_control_echo = Echo(content, "zst")});
  auto fetcher = CreateCurlFetcher(Config());
  std::vector<DownloadResult> done = Run(*fetcher, {Job(server.Url(), "blob", content)});
  ASSERT_EQ(done.size(), 1u);
  ASSERT_TRUE(done[0].status.ok()) << done[0].status;
  EXPECT_TRUE(ReadOut("blob") == content);
  EXPECT_EQ(server.seen()[0].cache_control, "");
}

// --- the rate cap ----------------------------------------------------------------------------

class RateCapTest : public ResumeTest {
 protected:
  void SetUp() override {
    ResumeTest::SetUp();
    auto server = ::ota::testing::NginxServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = std::move(*server);
  }

  // Downloads `jobs` with the cap; returns bytes received per second of wall clock.
  double MeasuredRate(uint64_t cap, const std::vector<DownloadJob>& jobs) {
    FetcherConfig config = Config();
    config.max_download_rate = cap;
    auto fetcher = CreateCurlFetcher(config);
    const Clock::time_point start = Clock::now();
    std::vector<DownloadResult> done = Run(*fetcher, jobs);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    uint64_t bytes = 0;
    for (const auto& r : done) {
      EXPECT_TRUE(r.status.ok()) << r.status;
      bytes += r.network_bytes;
    }
    EXPECT_EQ(done.size(), jobs.size());
    const double rate = static_cast<double>(bytes) / seconds;
    std::printf("cap %llu B/s: %llu bytes in %.3f s = %.0f B/s (%.1f%% of the cap)\n",
                static_cast<unsigned long long>(cap), static_cast<unsigned long long>(bytes),
                seconds, rate, 100 * rate / static_cast<double>(cap));
    return rate;
  }

  std::string Serve(const std::string& name, size_t size, uint32_t seed) {
    std::string content = RandomBytes(size, seed);
    EXPECT_TRUE(fs::WriteFileAtomic(nginx_->doc_root() / name, content).ok());
    return content;
  }

  std::unique_ptr<::ota::testing::NginxServer> nginx_;
};

TEST_F(RateCapTest, OneDownloadAveragesTheCap) {
  constexpr uint64_t kCap = 3 << 20;  // 3 MiB/s: 12 MiB take ~4 s
  const std::string content = Serve("one.bin", 12 << 20, 20);
  const double rate = MeasuredRate(kCap, {Job(nginx_->HttpUrl("/one.bin"), "one", content)});
  EXPECT_GE(rate, 0.9 * kCap);
  EXPECT_LE(rate, 1.1 * kCap);
}

// The cap is for the sum: four parallel downloads of different sizes (the share of each grows as
// the others finish) together average the cap.
TEST_F(RateCapTest, ParallelDownloadsShareTheCap) {
  constexpr uint64_t kCap = 3 << 20;
  std::vector<DownloadJob> jobs;
  const size_t sizes[] = {1 << 20, 2 << 20, 4 << 20, 5 << 20};  // 12 MiB in all
  for (size_t i = 0; i < 4; ++i) {
    const std::string name = "p" + std::to_string(i);
    std::string content = Serve(name, sizes[i], 30 + static_cast<uint32_t>(i));
    jobs.push_back(Job(nginx_->HttpUrl("/" + name), name, content, i));
  }
  const double rate = MeasuredRate(kCap, jobs);
  EXPECT_GE(rate, 0.9 * kCap);
  EXPECT_LE(rate, 1.1 * kCap);
}

}  // namespace
}  // namespace ota::http
