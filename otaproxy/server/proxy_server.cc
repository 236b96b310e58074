#include "otaproxy/server/proxy_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zstd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaproxy/server/cache_control.h"
#include "otaproxy/server/request_target.h"

namespace ota::proxy {
namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxErrorBody = 1 << 20;     // upstream error bodies are relayed up to this size
constexpr size_t kSendChunk = 1 << 20;        // bytes per sendfile call
constexpr uint64_t kNotifyBytes = 256 << 10;  // clients of a download are woken per this many

// ---------------------------------------------------------------------------------------------
// Client connection I/O: a blocking socket with a read deadline (poll) and a send timeout
// (SO_SNDTIMEO), read through Beast's parser.

class ClientSocket {
 public:
  ClientSocket(int fd, int send_timeout_s) : fd_(fd) {
    timeval tv{};
    tv.tv_sec = send_timeout_s;
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int fd() const { return fd_; }
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  // SyncReadStream for boost::beast::http::read.
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
        if (left.count() <= 0) {
          ec = boost::asio::error::timed_out;
          return 0;
        }
        pollfd pfd{fd_, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) continue;  // re-check the deadline
        const ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
        if (n > 0) return static_cast<size_t>(n);
        if (n == 0) {
          ec = boost::asio::error::eof;
          return 0;
        }
        if (errno == EINTR) continue;
        ec = boost::system::error_code(errno, boost::system::system_category());
        return 0;
      }
    }
    return 0;
  }
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool SendFile(int in_fd, uint64_t offset, uint64_t count) {
    off_t off = static_cast<off_t>(offset);
    while (count > 0) {
      const ssize_t n = ::sendfile(fd_, in_fd, &off, std::min<uint64_t>(count, kSendChunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      count -= static_cast<uint64_t>(n);
    }
    return true;
  }

  // A body piece, framed as a chunk when `chunked`.
  bool SendBodyFile(bool chunked, int in_fd, uint64_t offset, uint64_t count) {
    if (count == 0) return true;
    if (chunked && !Send(ChunkHeader(count))) return false;
    if (!SendFile(in_fd, offset, count)) return false;
    return !chunked || Send("\r\n");
  }
  bool SendBody(bool chunked, std::string_view data) {
    if (data.empty()) return true;
    if (chunked && !Send(ChunkHeader(data.size()))) return false;
    if (!Send(data)) return false;
    return !chunked || Send("\r\n");
  }
  bool EndChunked() { return Send("0\r\n\r\n"); }

 private:
  static std::string ChunkHeader(uint64_t size) {
    char buf[32];
    const int n =
        std::snprintf(buf, sizeof(buf), "%llx\r\n", static_cast<unsigned long long>(size));
    return std::string(buf, static_cast<size_t>(n));
  }

  int fd_;
  Clock::time_point deadline_{};
};

// Header values copied from upstream: no control characters.
std::string CleanHeaderValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  }
  return out;
}

struct ResponseHead {
  int status = 200;
  std::optional<uint64_t> content_length;  // nullopt → chunked
  std::string content_type;
  std::string content_encoding;
  std::string cache_control_echo;
  std::string cache_state;  // X-Otaproxy-Cache: hit, miss, join, relay
  std::vector<std::pair<std::string, std::string>> extra;
  bool keep_alive = true;
};

std::string FormatHead(const ResponseHead& h) {
  std::string reason(http::obsolete_reason(static_cast<http::status>(h.status)));
  if (reason == "<unknown-status>") reason = "Unknown";
  std::string out = StrCat("HTTP/1.1 ", h.status, " ", reason, "\r\nServer: otaproxy\r\n");
  if (h.content_length) {
    StrAppend(&out, "Content-Length: ", *h.content_length, "\r\n");
  } else {
    out.append("Transfer-Encoding: chunked\r\n");
  }
  if (!h.content_type.empty()) StrAppend(&out, "Content-Type: ", h.content_type, "\r\n");
  if (!h.content_encoding.empty()) {
    StrAppend(&out, "Content-Encoding: ", h.content_encoding, "\r\n");
  }
  if (!h.cache_control_echo.empty()) {
    StrAppend(&out, kCacheControlHeader, ": ", h.cache_control_echo, "\r\n");
  }
  if (!h.cache_state.empty()) StrAppend(&out, "X-Otaproxy-Cache: ", h.cache_state, "\r\n");
  for (const auto& [name, value] : h.extra) StrAppend(&out, name, ": ", value, "\r\n");
  if (!h.keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verification of a download against file_sha256 (of the uncompressed file).

class ContentVerifier {
 public:
  // alg "" or "zst".
  explicit ContentVerifier(const std::string& alg) {
    if (alg == "zst") dctx_ = ZSTD_createDCtx();
  }
  ~ContentVerifier() {
    if (dctx_ != nullptr) ZSTD_freeDCtx(dctx_);
  }
  ContentVerifier(const ContentVerifier&) = delete;
  ContentVerifier& operator=(const ContentVerifier&) = delete;

  void Update(std::string_view data) {
    if (!error_.empty()) return;
    if (dctx_ == nullptr) {
      hash_.Update(data);
      return;
    }
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (in.pos < in.size) {
      out_buf_.resize(ZSTD_DStreamOutSize());
      ZSTD_outBuffer out{out_buf_.data(), out_buf_.size(), 0};
      const size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(rc)) {
        error_ = StrCat("zstd: ", ZSTD_getErrorName(rc));
        return;
      }
      hash_.Update(out_buf_.data(), out.pos);
      frame_done_ = rc == 0;
    }
  }

  // Empty when the content hashes to `sha256_hex`, else why not.
  std::string Finish(const std::string& sha256_hex, uint64_t bytes) {
    if (!error_.empty()) return error_;
    if (dctx_ != nullptr && bytes > 0 && !frame_done_) return "zstd: truncated frame";
    const std::string got = crypto::ToHex(hash_.Finish());
    if (got != sha256_hex) return StrCat("sha256 mismatch: got ", got, ", want ", sha256_hex);
    return "";
  }

 private:
  crypto::Sha256 hash_;
  ZSTD_DCtx* dctx_ = nullptr;
  std::string out_buf_;
  std::string error_;
  bool frame_done_ = false;
};

// ---------------------------------------------------------------------------------------------
// One in-flight download that fills the cache, shared by every client asking for its key.

struct Flight {
  enum class State { kWaitingHead, kStreaming, kDone, kFailed };

  std::string key;
  std::string url;  // the cache URL (informational, stored with the entry)
  UpstreamRequest request;
  CacheControl cc;

  std::mutex mu;
  std::condition_variable cv;
  State state = State::kWaitingHead;
  UpstreamHead head;
  bool head_known = false;
  bool passthrough = false;  // status != 200: relayed from error_body, never cached
  std::string error_body;
  uint64_t written = 0;
  int failure_status = 502;  // answer for clients that were not answered yet
  std::string failure;
  TempFile temp;

  // Bytes a client may send now: all of them once verified, else all but the last.
  uint64_t VisibleLocked() const {
    if (state == State::kDone) return written;
    return written > 0 ? written - 1 : 0;
  }
};

// A fixed set of worker threads running downloads.
class WorkerPool {
 public:
  explicit WorkerPool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() { Stop(); }
  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  // Runs what is queued (tasks see the server's stop flag and end quickly), then joins.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

std::string CacheKeyFor(const CacheControl& cc, const std::string& cache_url) {
  if (cc.file_sha256.empty()) return StrCat("url_", crypto::ToHex(crypto::Sha256Of(cache_url)));
  if (cc.file_compression_alg.empty()) return cc.file_sha256;
  return StrCat(cc.file_sha256, ".", cc.file_compression_alg);
}

bool IsLoopbackPeer(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct ProxyServer::Impl {
  ServerOptions options;
  std::unique_ptr<CacheStore> store;
  UpstreamClient upstream;

  fs::UniqueFd listen_fd;
  fs::UniqueFd wake_fd;  // eventfd: wakes the acceptor on Stop()
  uint16_t port = 0;
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::mutex stop_mu;

  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex conns_mu;
  std::list<std::unique_ptr<Connection>> conns;

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  std::unique_ptr<WorkerPool> pool;

  std::atomic<size_t> inflight{0};
  struct Counters {
    std::atomic<uint64_t> requests{0}, cache_hits{0}, cache_misses{0}, flight_joins{0}, relayed{0},
        upstream_fetches{0}, upstream_failures{0}, verify_failures{0}, committed{0},
        rejected_busy{0};
  } counters;

  Impl(ServerOptions o, std::unique_ptr<CacheStore> s, UpstreamConfig u)
      : options(std::move(o)), store(std::move(s)), upstream(std::move(u)) {}

  absl::Status Listen();
  void AcceptLoop();
  void ReapConnections(bool all);
  void ServeConnection(Connection* conn);
  // Returns false when the connection must be closed.
  bool HandleRequest(ClientSocket& sock, const http::request<http::empty_body>& req,
                     bool keep_alive);
  bool SendSimple(ClientSocket& sock, int status, std::string_view body, bool keep_alive,
                  std::vector<std::pair<std::string, std::string>> extra = {});
  bool HandleAdmin(ClientSocket& sock, const http::request<http::empty_body>& req,
                   std::string_view target, bool keep_alive);
  bool Relay(ClientSocket& sock, const UpstreamRequest& request, const std::string& echo,
             bool keep_alive);
  bool ServeHit(ClientSocket& sock, OpenEntry& hit, const std::string& echo, bool keep_alive);
  bool ServeFlight(ClientSocket& sock, const std::shared_ptr<Flight>& flight,
                   const std::string& echo, bool joined, bool keep_alive);
  void RunFlight(const std::shared_ptr<Flight>& flight);
  void FinishFlight(const std::shared_ptr<Flight>& flight, Flight::State state, std::string failure,
                    int failure_status);
  ServerStats Stats() const;
};

absl::Status ProxyServer::Impl::Listen() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const std::string port_text = std::to_string(options.listen_port);
  const int rc = ::getaddrinfo(options.listen_addr.empty() ? nullptr : options.listen_addr.c_str(),
                               port_text.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        StrCat("listen address '", options.listen_addr, "': ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(result, freeaddrinfo);
  const std::string where = StrCat(options.listen_addr, ":", port_text);
  fs::UniqueFd fd(::socket(result->ai_family, result->ai_socktype | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, StrCat("socket for ", where));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), result->ai_addr, result->ai_addrlen) != 0) {
    return ErrnoStatus(errno, StrCat("bind ", where));
  }
  if (::listen(fd.get(), 1024) != 0) return ErrnoStatus(errno, StrCat("listen ", where));
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listen_fd = std::move(fd);
  wake_fd = fs::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.valid()) return ErrnoStatus(errno, "eventfd");
  return absl::OkStatus();
}

void ProxyServer::Impl::ReapConnections(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(conns_mu);
    for (auto it = conns.begin(); it != conns.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
    ::close(c->fd);
  }
}

void ProxyServer::Impl::AcceptLoop() {
  while (!stopping.load()) {
    pollfd fds[2] = {{listen_fd.get(), POLLIN, 0}, {wake_fd.get(), POLLIN, 0}};
    const int ready = ::poll(fds, 2, 1000);
    ReapConnections(false);
    if (ready <= 0 || (fds[1].revents & POLLIN) != 0) continue;
    const int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        log::Warning("accept: out of file descriptors");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // back off, not a sync
      }
      continue;
    }
    size_t open_connections;
    {
      std::lock_guard lock(conns_mu);
      open_connections = conns.size();
    }
    if (open_connections >= options.max_connections) {
      ClientSocket sock(fd, 1);
      SendSimple(sock, 503, "otaproxy: too many connections\n", false, {{"Retry-After", "1"}});
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection* raw = conn.get();
    std::lock_guard lock(conns_mu);
    conns.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { ServeConnection(raw); });
  }
}

void ProxyServer::Impl::ServeConnection(Connection* conn) {
  ClientSocket sock(conn->fd, options.send_timeout_s);
  boost::beast::flat_buffer buffer;
  while (!stopping.load()) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(0);
    sock.set_deadline(Clock::now() + std::chrono::seconds(options.idle_timeout_s));
    boost::system::error_code ec;
    http::read(sock, buffer, parser, ec);
    if (ec) {
      if (ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
          ec == boost::asio::error::timed_out || stopping.load()) {
        break;  // the client went away or idled out
      }
      if (ec == http::error::header_limit) {
        SendSimple(sock, 431, "otaproxy: request header fields too large\n", false);
      } else if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
        SendSimple(sock, 413, "otaproxy: requests with a body are not accepted\n", false);
      } else if (ec.category() != boost::system::system_category()) {
        SendSimple(sock, 400, StrCat("otaproxy: malformed request: ", ec.message(), "\n"), false);
      }
      break;
    }
    const http::request<http::empty_body>& req = parser.get();
    const bool keep_alive = req.keep_alive() && !stopping.load();
    counters.requests++;
    if (!HandleRequest(sock, req, keep_alive) || !keep_alive) break;
  }
  ::shutdown(conn->fd, SHUT_RDWR);
  conn->done = true;  // the reaper closes the fd after joining, so Stop() never hits a reused fd
}

bool ProxyServer::Impl::SendSimple(ClientSocket& sock, int status, std::string_view body,
                                   bool keep_alive,
                                   std::vector<std::pair<std::string, std::string>> extra) {
  ResponseHead head;
  head.status = status;
  head.content_length = body.size();
  head.content_type = "text/plain; charset=utf-8";
  head.keep_alive = keep_alive;
  head.extra = std::move(extra);
  return sock.Send(FormatHead(head)) && sock.Send(body) && keep_alive;
}

bool ProxyServer::Impl::HandleAdmin(ClientSocket& sock, const http::request<http::empty_body>& req,
                                    std::string_view target, bool keep_alive) {
  if (!IsLoopbackPeer(sock.fd())) {
    return SendSimple(sock, 403, "otaproxy: admin requests only from loopback\n", keep_alive);
  }
  if (target == "/_otaproxy/stats" && req.method() == http::verb::get) {
    const ServerStats s = Stats();
    std::string json =
        StrCat("{\"requests\":", s.requests, ",\"cache_hits\":", s.cache_hits,
               ",\"cache_misses\":", s.cache_misses, ",\"flight_joins\":", s.flight_joins,
               ",\"relayed\":", s.relayed, ",\"upstream_fetches\":", s.upstream_fetches,
               ",\"upstream_failures\":", s.upstream_failures,
               ",\"verify_failures\":", s.verify_failures, ",\"committed\":", s.committed,
               ",\"rejected_busy\":", s.rejected_busy, ",\"cache_entries\":", s.cache_entries,
               ",\"cache_bytes\":", s.cache_bytes, ",\"evictions\":", s.evictions,
               ",\"inflight\":", s.inflight, ",\"index_pending\":", s.index_pending, "}\n");
    ResponseHead head;
    head.content_length = json.size();
    head.content_type = "application/json";
    head.keep_alive = keep_alive;
    return sock.Send(FormatHead(head)) && sock.Send(json) && keep_alive;
  }
  if (target == "/_otaproxy/purge" && req.method() == http::verb::post) {
    const size_t purged = store ? store->Purge() : 0;
    log::Info("cache purged on request", {{"entries", std::to_string(purged)}});
    return SendSimple(sock, 200, StrCat("{\"purged\":", purged, "}\n"), keep_alive);
  }
  return SendSimple(sock, 404,
                    "otaproxy: admin endpoints: GET /_otaproxy/stats, POST /_otaproxy/purge\n",
                    keep_alive);
}

bool ProxyServer::Impl::HandleRequest(ClientSocket& sock,
                                      const http::request<http::empty_body>& req, bool keep_alive) {
  const std::string_view target(req.target().data(), req.target().size());
  if (target.starts_with("/_otaproxy/")) return HandleAdmin(sock, req, target, keep_alive);
  if (req.method() != http::verb::get) {
    return SendSimple(
        sock, 405,
        StrCat("otaproxy: method ",
               std::string_view(req.method_string().data(), req.method_string().size()),
               " not supported: only GET is proxied\n"),
        keep_alive, {{"Allow", "GET"}});
  }
  absl::StatusOr<ProxyTarget> parsed = ParseProxyTarget(target);
  if (!parsed.ok()) {
    return SendSimple(sock, 400, StrCat("otaproxy: ", parsed.status().message(), "\n"), keep_alive);
  }
  CacheControl cc;
  std::string cc_raw;
  if (auto it = req.find(kCacheControlHeader.data()); it != req.end()) {
    cc_raw.assign(it->value().data(), it->value().size());
    absl::StatusOr<CacheControl> c = ParseCacheControl(cc_raw);
    if (!c.ok()) {
      return SendSimple(sock, 400, StrCat("otaproxy: ", c.status().message(), "\n"), keep_alive);
    }
    cc = *std::move(c);
  }
  // Admission: bounded requests in flight, rejected rather than queued.
  if (inflight.fetch_add(1) >= options.max_inflight_requests) {
    inflight.fetch_sub(1);
    counters.rejected_busy++;
    return SendSimple(sock, 429, "otaproxy: too many requests in flight\n", keep_alive,
                      {{"Retry-After", "1"}});
  }
  struct Release {
    std::atomic<size_t>& n;
    ~Release() { n.fetch_sub(1); }
  } release{inflight};

  UpstreamRequest up;
  up.url = parsed->UpstreamUrl(options.upstream_https ||
                               (parsed->https && upstream.config().proxy.empty()));
  if (auto it = req.find(http::field::cookie); it != req.end()) {
    up.cookie.assign(it->value().data(), it->value().size());
  }
  if (auto it = req.find(http::field::authorization); it != req.end()) {
    up.authorization.assign(it->value().data(), it->value().size());
  }
  if (options.forward_cache_control) up.cache_control = cc_raw;
  const std::string echo = EchoCacheControl(cc);

  const std::string url = parsed->CacheUrl();
  const std::string key = CacheKeyFor(cc, url);
  // Without a way to verify the bytes (unknown compression) a sha256 key would be a guess.
  const bool verifiable =
      cc.file_sha256.empty() || cc.file_compression_alg.empty() || cc.file_compression_alg == "zst";
  if (!store || cc.no_cache || !verifiable || !store->CachingAllowed()) {
    // Existing entries are still served while the hard limit stops new caching.
    if (store && !cc.no_cache && !cc.retry_caching && verifiable) {
      if (std::optional<OpenEntry> hit = store->Open(key)) {
        return ServeHit(sock, *hit, echo, keep_alive);
      }
    }
    counters.relayed++;
    return Relay(sock, up, echo, keep_alive);
  }
  if (cc.retry_caching) {
    store->Drop(key);
  } else if (std::optional<OpenEntry> hit = store->Open(key)) {
    return ServeHit(sock, *hit, echo, keep_alive);
  }

  std::shared_ptr<Flight> flight;
  bool joined = false;
  {
    std::lock_guard lock(flights_mu);
    auto it = flights.find(key);
    if (it != flights.end()) {
      flight = it->second;
      joined = true;
    } else if (std::optional<OpenEntry> hit = cc.retry_caching ? std::nullopt : store->Open(key)) {
      // Committed between our first look and taking the lock.
      return ServeHit(sock, *hit, echo, keep_alive);
    } else {
      flight = std::make_shared<Flight>();
      flight->key = key;
      flight->url = url;
      flight->request = up;
      flight->cc = cc;
      flights.emplace(key, flight);
      pool->Post([this, flight] { RunFlight(flight); });
    }
  }
  (joined ? counters.flight_joins : counters.cache_misses)++;
  return ServeFlight(sock, flight, echo, joined, keep_alive);
}

bool ProxyServer::Impl::ServeHit(ClientSocket& sock, OpenEntry& hit, const std::string& echo,
                                 bool keep_alive) {
  counters.cache_hits++;
  ResponseHead head;
  head.content_length = hit.entry.size;
  head.content_type =
      hit.entry.content_type.empty() ? "application/octet-stream" : hit.entry.content_type;
  head.content_encoding = hit.entry.content_encoding;
  head.cache_control_echo = echo;
  head.cache_state = "hit";
  head.keep_alive = keep_alive;
  return sock.Send(FormatHead(head)) && sock.SendFile(hit.fd.get(), 0, hit.entry.size) &&
         keep_alive;
}

bool ProxyServer::Impl::Relay(ClientSocket& sock, const UpstreamRequest& request,
                              const std::string& echo, bool keep_alive) {
  counters.upstream_fetches++;
  bool chunked = false;
  bool client_ok = true;
  UpstreamCallbacks callbacks;
  callbacks.cancel = &stopping;
  callbacks.on_head = [&](const UpstreamHead& h) {
    ResponseHead head;
    head.status = h.status;
    head.content_length = h.content_length;
    chunked = !h.content_length.has_value();
    head.content_type = CleanHeaderValue(h.content_type);
    head.content_encoding = CleanHeaderValue(h.content_encoding);
    if (h.status == 200) head.cache_control_echo = echo;
    head.cache_state = "relay";
    head.keep_alive = keep_alive;
    client_ok = sock.Send(FormatHead(head));
    return client_ok;
  };
  callbacks.on_body = [&](std::string_view data) {
    client_ok = sock.SendBody(chunked, data);
    return client_ok;
  };
  bool head_delivered = false;
  const absl::Status status = upstream.Fetch(request, callbacks, &head_delivered);
  if (!head_delivered) {
    counters.upstream_failures++;
    log::Warning("upstream request failed", {{"error", std::string(status.message())}});
    return SendSimple(sock, status.code() == absl::StatusCode::kCancelled ? 503 : 502,
                      StrCat("otaproxy: ", status.message(), "\n"), keep_alive);
  }
  if (!status.ok()) {
    if (client_ok) {
      counters.upstream_failures++;
      log::Warning("upstream transfer broke, client connection closed",
                   {{"error", std::string(status.message())}});
    }
    return false;  // a truncated body: only closing tells the client
  }
  if (chunked && !sock.EndChunked()) return false;
  return keep_alive;
}

void ProxyServer::Impl::FinishFlight(const std::shared_ptr<Flight>& flight, Flight::State state,
                                     std::string failure, int failure_status) {
  {
    // Gone from the registry first: a later request starts afresh or finds the committed entry.
    std::lock_guard lock(flights_mu);
    auto it = flights.find(flight->key);
    if (it != flights.end() && it->second == flight) flights.erase(it);
  }
  {
    std::lock_guard lock(flight->mu);
    flight->state = state;
    flight->failure = std::move(failure);
    flight->failure_status = failure_status;
  }
  flight->cv.notify_all();
}

void ProxyServer::Impl::RunFlight(const std::shared_ptr<Flight>& flight) {
  counters.upstream_fetches++;
  absl::StatusOr<TempFile> temp = store->CreateTemp();
  if (!temp.ok()) {
    log::Error("cannot create cache temp file", {{"error", std::string(temp.status().message())}});
    FinishFlight(flight, Flight::State::kFailed, std::string(temp.status().message()), 500);
    return;
  }
  const int fd = temp->fd.get();
  const std::filesystem::path temp_path = temp->path;
  {
    std::lock_guard lock(flight->mu);
    flight->temp = *std::move(temp);
  }
  const bool verify = !flight->cc.file_sha256.empty();
  ContentVerifier verifier(flight->cc.file_compression_alg);
  std::string write_error;

  UpstreamCallbacks callbacks;
  callbacks.cancel = &stopping;
  callbacks.on_head = [&](const UpstreamHead& h) {
    {
      std::lock_guard lock(flight->mu);
      flight->head = h;
      flight->head.content_type = CleanHeaderValue(h.content_type);
      flight->head.content_encoding = CleanHeaderValue(h.content_encoding);
      flight->head_known = true;
      flight->passthrough = h.status != 200;
      if (!flight->passthrough) flight->state = Flight::State::kStreaming;
    }
    flight->cv.notify_all();
    return true;
  };
  uint64_t offset = 0;
  uint64_t notified = 0;
  callbacks.on_body = [&](std::string_view data) {
    if (flight->passthrough) {
      std::lock_guard lock(flight->mu);
      if (flight->error_body.size() < kMaxErrorBody) {
        flight->error_body.append(data.substr(0, kMaxErrorBody - flight->error_body.size()));
      }
      return true;
    }
    while (!data.empty()) {
      const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_error = StrCat("write ", temp_path.string(), ": ", n < 0 ? strerror(errno) : "0");
        return false;
      }
      if (verify) verifier.Update(data.substr(0, static_cast<size_t>(n)));
      offset += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(flight->mu);
      flight->written = offset;
    }
    // Waking every client per network read costs more than it gains: batch the wake-ups.
    if (offset - notified >= kNotifyBytes) {
      notified = offset;
      flight->cv.notify_all();
    }
    return true;
  };

  bool head_delivered = false;
  const absl::Status status = upstream.Fetch(flight->request, callbacks, &head_delivered);
  if (!status.ok()) {
    counters.upstream_failures++;
    std::string reason = write_error.empty() ? std::string(status.message()) : write_error;
    log::Warning("cache fill failed", {{"key", flight->key}, {"error", reason}});
    store->DiscardTemp(temp_path);
    FinishFlight(flight, Flight::State::kFailed, std::move(reason),
                 write_error.empty() ? 502 : 500);
    return;
  }
  if (flight->passthrough) {
    store->DiscardTemp(temp_path);
    FinishFlight(flight, Flight::State::kDone, "", 0);
    return;
  }
  std::string problem;
  if (flight->head.content_length && *flight->head.content_length != offset) {
    problem = StrCat("length ", offset, " != Content-Length ", *flight->head.content_length);
  } else if (verify) {
    problem = verifier.Finish(flight->cc.file_sha256, offset);
  }
  if (!problem.empty()) {
    counters.verify_failures++;
    log::Warning("download failed verification, not cached",
                 {{"key", flight->key}, {"url", flight->request.url}, {"error", problem}});
    store->DiscardTemp(temp_path);
    FinishFlight(flight, Flight::State::kFailed, problem, 502);
    return;
  }
  CacheEntry entry;
  entry.key = flight->key;
  entry.url = flight->url;
  entry.size = offset;
  entry.file_sha256 = flight->cc.file_sha256;
  entry.file_compression_alg = flight->cc.file_compression_alg;
  entry.content_type = flight->head.content_type;
  entry.content_encoding = flight->head.content_encoding;
  absl::StatusOr<bool> committed = store->Commit(temp_path, std::move(entry));
  if (!committed.ok()) {
    log::Error("cache commit failed",
               {{"key", flight->key}, {"error", std::string(committed.status().message())}});
  } else if (*committed) {
    counters.committed++;
  }
  // Clients still stream from the (renamed or discarded) file through the flight's open fd.
  FinishFlight(flight, Flight::State::kDone, "", 0);
}

bool ProxyServer::Impl::ServeFlight(ClientSocket& sock, const std::shared_ptr<Flight>& flight,
                                    const std::string& echo, bool joined, bool keep_alive) {
  std::unique_lock lock(flight->mu);
  flight->cv.wait(lock, [&] {
    return flight->state == Flight::State::kDone || flight->state == Flight::State::kFailed ||
           flight->state == Flight::State::kStreaming;
  });
  if (flight->passthrough || !flight->head_known) {
    // An error status to pass through, or no response at all: wait for the end.
    flight->cv.wait(lock, [&] {
      return flight->state == Flight::State::kDone || flight->state == Flight::State::kFailed;
    });
    if (flight->state == Flight::State::kFailed || !flight->head_known) {
      const int status = flight->failure_status;
      const std::string reason = flight->failure;
      lock.unlock();
      return SendSimple(sock, status, StrCat("otaproxy: ", reason, "\n"), keep_alive);
    }
    ResponseHead head;
    head.status = flight->head.status;
    head.content_length = flight->error_body.size();
    head.content_type = flight->head.content_type;
    head.content_encoding = flight->head.content_encoding;
    head.cache_state = joined ? "join" : "miss";
    head.keep_alive = keep_alive;
    const std::string body = flight->error_body;
    lock.unlock();
    return sock.Send(FormatHead(head)) && sock.Send(body) && keep_alive;
  }
  ResponseHead head;
  head.content_length = flight->head.content_length;
  head.content_type =
      flight->head.content_type.empty() ? "application/octet-stream" : flight->head.content_type;
  head.content_encoding = flight->head.content_encoding;
  head.cache_control_echo = echo;
  head.cache_state = joined ? "join" : "miss";
  head.keep_alive = keep_alive;
  const bool chunked = !head.content_length.has_value();
  const int fd = flight->temp.fd.get();
  lock.unlock();
  if (!sock.Send(FormatHead(head))) return false;
  uint64_t sent = 0;
  while (true) {
    lock.lock();
    flight->cv.wait(lock, [&] {
      return flight->state == Flight::State::kDone || flight->state == Flight::State::kFailed ||
             flight->VisibleLocked() > sent;
    });
    if (flight->state == Flight::State::kFailed) return false;  // truncated: close
    const uint64_t visible = flight->VisibleLocked();
    const bool done = flight->state == Flight::State::kDone;
    lock.unlock();
    if (!sock.SendBodyFile(chunked, fd, sent, visible - sent)) return false;
    sent = visible;
    if (done) break;
  }
  if (chunked && !sock.EndChunked()) return false;
  return keep_alive;
}

ServerStats ProxyServer::Impl::Stats() const {
  ServerStats s;
  s.requests = counters.requests;
  s.cache_hits = counters.cache_hits;
  s.cache_misses = counters.cache_misses;
  s.flight_joins = counters.flight_joins;
  s.relayed = counters.relayed;
  s.upstream_fetches = counters.upstream_fetches;
  s.upstream_failures = counters.upstream_failures;
  s.verify_failures = counters.verify_failures;
  s.committed = counters.committed;
  s.rejected_busy = counters.rejected_busy;
  if (store) {
    s.cache_entries = store->entries();
    s.cache_bytes = store->total_bytes();
    s.evictions = store->evictions();
    s.index_pending = store->index_pending();
  }
  s.inflight = inflight.load();
  return s;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::Start(ServerOptions options,
                                                                std::unique_ptr<CacheStore> store,
                                                                UpstreamConfig upstream) {
  // sendfile() to a closed socket raises SIGPIPE; errors are handled as return values.
  std::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(store), std::move(upstream));
  OTA_RETURN_IF_ERROR(impl->Listen());
  impl->pool = std::make_unique<WorkerPool>(std::max<size_t>(1, impl->options.flight_workers));
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  log::Info("otaproxy listening",
            {{"addr", raw->options.listen_addr},
             {"port", std::to_string(raw->port)},
             {"cache", raw->store ? raw->store->dir().string() : "off"},
             {"upstream_proxy",
              raw->upstream.config().proxy.empty() ? "none" : raw->upstream.config().proxy},
             {"upstream_https", raw->options.upstream_https ? "true" : "false"}});
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProxyServer::~ProxyServer() { Stop(); }

uint16_t ProxyServer::port() const { return impl_->port; }

ServerStats ProxyServer::Stats() const { return impl_->Stats(); }

void ProxyServer::Stop() {
  std::lock_guard stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  const uint64_t one = 1;
  (void)!::write(impl_->wake_fd.get(), &one, sizeof(one));
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  {
    std::lock_guard lock(impl_->conns_mu);
    for (auto& c : impl_->conns) ::shutdown(c->fd, SHUT_RDWR);
  }
  // Downloads see `stopping` and abort; their clients are woken by the failure.
  impl_->pool->Stop();
  impl_->ReapConnections(true);
  if (impl_->store) {
    if (absl::Status status = impl_->store->Flush(); !status.ok()) {
      log::Error("cache index flush failed", {{"error", std::string(status.message())}});
    }
  }
  log::Info("otaproxy stopped");
}

}  // namespace ota::proxy
