// The accept loop, one thread per client connection, request handling (admission, cache
// lookup, relay, single-flight registry) and the server's lifetime. Pieces: client_socket.h
// (connection I/O, response heads), flight.h (a download shared by its clients), worker_pool.h
// (threads running the downloads), admin.h (/_otaproxy/ endpoints).
#include "otaproxy/server/proxy_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
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
#include "otaproxy/server/admin.h"
#include "otaproxy/server/cache_control.h"
#include "otaproxy/server/client_socket.h"
#include "otaproxy/server/counters.h"
#include "otaproxy/server/flight.h"
#include "otaproxy/server/request_target.h"
#include "otaproxy/server/worker_pool.h"

namespace ota::proxy {
namespace beast_http = boost::beast::http;
using Clock = std::chrono::steady_clock;
using Request = beast_http::request<beast_http::empty_body>;

namespace {

std::string CacheKeyFor(const CacheControl& cc, const std::string& cache_url) {
  if (cc.file_sha256.empty()) return StrCat("url_", crypto::ToHex(crypto::Sha256Of(cache_url)));
  if (cc.file_compression_alg.empty()) return cc.file_sha256;
  return StrCat(cc.file_sha256, ".", cc.file_compression_alg);
}

std::string_view ViewOf(boost::beast::string_view v) {
  return std::string_view(v.data(), v.size());
}

}  // namespace

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
  Counters counters;

  Impl(ServerOptions o, std::unique_ptr<CacheStore> s, UpstreamConfig u)
      : options(std::move(o)), store(std::move(s)), upstream(std::move(u)) {}

  absl::Status Listen();
  void AcceptLoop();
  void ReapConnections(bool all);
  void ServeConnection(Connection* conn);
  // Returns false when the connection must be closed.
  bool HandleRequest(ClientSocket& sock, const Request& req, bool keep_alive);
  bool Relay(ClientSocket& sock, const UpstreamRequest& request, const std::string& echo,
             bool keep_alive);
  bool ServeHit(ClientSocket& sock, OpenEntry& hit, const std::string& echo, bool keep_alive);
  // Joins the download of `key` or starts it, then streams it to the client.
  bool ServeFromFlight(ClientSocket& sock, const std::string& key, const std::string& url,
                       const UpstreamRequest& up, const CacheControl& cc, const std::string& echo,
                       bool keep_alive);
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
    beast_http::request_parser<beast_http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(0);
    sock.set_deadline(Clock::now() + std::chrono::seconds(options.idle_timeout_s));
    boost::system::error_code ec;
    beast_http::read(sock, buffer, parser, ec);
    if (ec) {
      if (ec == beast_http::error::end_of_stream || ec == boost::asio::error::eof ||
          ec == boost::asio::error::timed_out || stopping.load()) {
        break;  // the client went away or idled out
      }
      if (ec == beast_http::error::header_limit) {
        SendSimple(sock, 431, "otaproxy: request header fields too large\n", false);
      } else if (ec == beast_http::error::body_limit || ec == beast_http::error::unexpected_body) {
        SendSimple(sock, 413, "otaproxy: requests with a body are not accepted\n", false);
      } else if (ec.category() != boost::system::system_category()) {
        SendSimple(sock, 400, StrCat("otaproxy: malformed request: ", ec.message(), "\n"), false);
      }
      break;
    }
    const Request& req = parser.get();
    const bool keep_alive = req.keep_alive() && !stopping.load();
    counters.requests++;
    if (!HandleRequest(sock, req, keep_alive) || !keep_alive) break;
  }
  ::shutdown(conn->fd, SHUT_RDWR);
  conn->done = true;  // the reaper closes the fd after joining, so Stop() never hits a reused fd
}

bool ProxyServer::Impl::HandleRequest(ClientSocket& sock, const Request& req, bool keep_alive) {
  const std::string_view target = ViewOf(req.target());
  if (target.starts_with("/_otaproxy/")) {
    return HandleAdmin(
        sock, ViewOf(req.method_string()), target, keep_alive, [this] { return Stats(); },
        store.get());
  }
  if (req.method() != beast_http::verb::get) {
    return SendSimple(sock, 405,
                      StrCat("otaproxy: method ", ViewOf(req.method_string()),
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
    cc_raw = ViewOf(it->value());
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
  if (auto it = req.find(beast_http::field::cookie); it != req.end()) {
    up.cookie = ViewOf(it->value());
  }
  if (auto it = req.find(beast_http::field::authorization); it != req.end()) {
    up.authorization = ViewOf(it->value());
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
  return ServeFromFlight(sock, key, url, up, cc, echo, keep_alive);
}

bool ProxyServer::Impl::ServeFromFlight(ClientSocket& sock, const std::string& key,
                                        const std::string& url, const UpstreamRequest& up,
                                        const CacheControl& cc, const std::string& echo,
                                        bool keep_alive) {
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
      flight = std::make_shared<Flight>(key, url, up, cc);
      flights.emplace(key, flight);
      pool->Post([this, flight] {
        flight->Run(upstream, *store, stopping, counters, [this, &flight] {
          // Gone from the registry first: a later request starts afresh or finds the entry.
          std::lock_guard lock(flights_mu);
          auto it = flights.find(flight->key());
          if (it != flights.end() && it->second == flight) flights.erase(it);
        });
      });
    }
  }
  (joined ? counters.flight_joins : counters.cache_misses)++;
  return flight->Serve(sock, echo, joined, keep_alive);
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
