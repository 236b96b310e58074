// The listener, request handling (admission, cache lookup, relay, single-flight registry) and the
// server's lifetime. Pieces: io_loop.h and connection.h (the I/O threads and client
// connections), response.h (what a connection sends), flight.h (a download shared by its
// clients), relay.h (a request proxied without the cache), admin.h (/_otaproxy/ endpoints),
// client_socket.h (socket writes, response heads).
#include "otaproxy/server/proxy_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/crypto/sha256.h"
#include "common/fs/fs.h"
#include "common/http/byte_range.h"
#include "common/http/cache_control.h"
#include "common/log/log.h"
#include "common/util/errors.h"
#include "common/util/strings.h"
#include "otaproxy/server/admin.h"
#include "otaproxy/server/client_socket.h"
#include "otaproxy/server/counters.h"
#include "otaproxy/server/flight.h"
#include "otaproxy/server/io_loop.h"
#include "otaproxy/server/relay.h"
#include "otaproxy/server/request_target.h"

namespace ota::proxy {
namespace beast_http = boost::beast::http;

namespace {

// Connections accepted per readiness of the listener before the loop serves the others.
constexpr int kAcceptBatch = 64;

std::string CacheKeyFor(const http::CacheControl& cc, const std::string& cache_url) {
  if (cc.file_sha256.empty()) return StrCat("url_", crypto::ToHex(crypto::Sha256Of(cache_url)));
  if (cc.file_compression_alg.empty()) return cc.file_sha256;
  return StrCat(cc.file_sha256, ".", cc.file_compression_alg);
}

std::string_view ViewOf(boost::beast::string_view v) {
  return std::string_view(v.data(), v.size());
}

std::unique_ptr<ResponseSource> Bytes(std::string response) {
  return std::make_unique<BytesResponse>(std::move(response));
}

// A stored file of `size` bytes (a cache or external hit): whole, or the client's range of it
// (206, or 416 when it starts at or after the end).
std::unique_ptr<ResponseSource> FileAnswer(ResponseHead head, fs::UniqueFd fd, uint64_t size,
                                           const std::optional<http::ByteRange>& range) {
  head.extra.emplace_back("Accept-Ranges", "bytes");
  if (!range) {
    head.content_length = size;
    return std::make_unique<FileResponse>(FormatHead(head), std::move(fd), size);
  }
  if (range->first >= size) {
    return Bytes(FormatSimple(416, "otaproxy: range not satisfiable\n", head.keep_alive,
                              {{"Content-Range", StrCat("bytes */", size)}}));
  }
  const uint64_t last = std::min(range->last.value_or(size - 1), size - 1);
  head.status = 206;
  head.content_length = last - range->first + 1;
  head.extra.emplace_back("Content-Range", StrCat("bytes ", range->first, "-", last, "/", size));
  return std::make_unique<FileResponse>(FormatHead(head), std::move(fd), *head.content_length,
                                        range->first);
}

// A request admitted under --max-inflight: counted until its response is complete.
class Admitted : public ResponseSource {
 public:
  Admitted(std::unique_ptr<ResponseSource> inner, std::atomic<size_t>& inflight)
      : inner_(std::move(inner)), inflight_(inflight) {}
  ~Admitted() override { inflight_.fetch_sub(1); }
  Fill FillQueue(OutputQueue& out, const Waker& waker) override {
    return inner_->FillQueue(out, waker);
  }

 private:
  std::unique_ptr<ResponseSource> inner_;
  std::atomic<size_t>& inflight_;
};

}  // namespace

struct ProxyServer::Impl : public RequestHandler {
  ServerOptions options;
  std::unique_ptr<CacheStore> store;
  UpstreamClient upstream;

  fs::UniqueFd listen_fd;
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::mutex stop_mu;

  std::mutex flights_mu;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;

  std::atomic<size_t> inflight{0};
  std::atomic<size_t> open_connections{0};
  Counters counters;
  // Last: stopped and destroyed before everything their connections use.
  std::vector<std::unique_ptr<IoLoop>> loops;

  Impl(ServerOptions o, std::unique_ptr<CacheStore> s, UpstreamConfig u)
      : options(std::move(o)), store(std::move(s)), upstream(std::move(u)) {}

  absl::Status Listen();
  // Loop 0: accepts what is waiting and hands each connection to the least busy loop.
  void Accept();

  // RequestHandler (on the connection's I/O thread).
  std::unique_ptr<ResponseSource> Handle(const Request& req, bool keep_alive, int fd) override;
  bool Stopping() const override { return stopping.load(); }

  // `range`: the client's Range, when a stored file may answer it (see Handle).
  std::unique_ptr<ResponseSource> ServeHit(OpenEntry& hit, const std::string& echo, bool keep_alive,
                                           const std::optional<http::ByteRange>& range = {});
  // The blob from an external cache, or null when it has none.
  std::unique_ptr<ResponseSource> ServeExternal(const ExternalCache& cache,
                                                const std::string& sha256,
                                                std::atomic<uint64_t>& hits, bool keep_alive,
                                                const std::optional<http::ByteRange>& range);
  // Joins the download of `key` or starts it.
  std::unique_ptr<ResponseSource> ServeFromFlight(const std::string& key, const std::string& url,
                                                  const UpstreamRequest& up,
                                                  const http::CacheControl& cc,
                                                  const std::string& echo, bool keep_alive);
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
  fs::UniqueFd fd(
      ::socket(result->ai_family, result->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
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
  return absl::OkStatus();
}

void ProxyServer::Impl::Accept() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    fs::UniqueFd fd(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        log::Warning("accept: out of file descriptors");
        loops[0]->PauseListener();  // until the next sweep: back off, not a busy loop
      }
      return;
    }
    if (open_connections.load() >= options.max_connections) {
      (void)SendSome(
          fd.get(),
          FormatSimple(503, "otaproxy: too many connections\n", false, {{"Retry-After", "1"}}),
          false);
      continue;  // closed
    }
    open_connections++;
    IoLoop* target = loops[0].get();
    for (const auto& loop : loops) {
      if (loop->connections() < target->connections()) target = loop.get();
    }
    target->Adopt(std::move(fd));
  }
}

std::unique_ptr<ResponseSource> ProxyServer::Impl::Handle(const Request& req, bool keep_alive,
                                                          int fd) {
  counters.requests++;
  const std::string_view target = ViewOf(req.target());
  if (target.starts_with("/_otaproxy/")) {
    return Bytes(HandleAdmin(
        fd, ViewOf(req.method_string()), target, keep_alive, [this] { return Stats(); },
        store.get()));
  }
  if (req.method() != beast_http::verb::get) {
    return Bytes(FormatSimple(405,
                              StrCat("otaproxy: method ", ViewOf(req.method_string()),
                                     " not supported: only GET is proxied\n"),
                              keep_alive, {{"Allow", "GET"}}));
  }
  absl::StatusOr<ProxyTarget> parsed = ParseProxyTarget(target);
  if (!parsed.ok()) {
    return Bytes(
        FormatSimple(400, StrCat("otaproxy: ", parsed.status().message(), "\n"), keep_alive));
  }
  http::CacheControl cc;
  std::string cc_raw;
  if (auto it = req.find(http::kCacheControlHeader.data()); it != req.end()) {
    cc_raw = ViewOf(it->value());
    absl::StatusOr<http::CacheControl> c = http::ParseCacheControl(cc_raw);
    if (!c.ok()) {
      return Bytes(FormatSimple(400, StrCat("otaproxy: ", c.status().message(), "\n"), keep_alive));
    }
    cc = *std::move(c);
  }
  // Admission: bounded requests in flight, rejected rather than queued.
  if (inflight.fetch_add(1) >= options.max_inflight_requests) {
    inflight.fetch_sub(1);
    counters.rejected_busy++;
    return Bytes(FormatSimple(429, "otaproxy: too many requests in flight\n", keep_alive,
                              {{"Retry-After", "1"}}));
  }

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
  const std::string echo = http::EchoCacheControl(cc);

  // Range (a client resuming a cut download). A Range not understood is ignored: the whole body
  // (RFC 9110 §14.2). A stored file answers it only when it is the content the client resumes:
  // always for a blob named by its sha256, for other entries only without If-Range (they keep
  // no validator to compare; the whole body is the answer to a failed If-Range). Not in the
  // cache: relayed with Range (and If-Range) and never cached — a partial body is no entry.
  std::optional<http::ByteRange> range;
  if (auto it = req.find(beast_http::field::range); it != req.end()) {
    range = http::ParseRangeHeader(ViewOf(it->value()));
  }
  std::string if_range;
  if (auto it = req.find(beast_http::field::if_range); it != req.end() && range) {
    if_range = CleanHeaderValue(ViewOf(it->value()));
  }
  const std::optional<http::ByteRange> stored_range =
      range && (if_range.empty() || !cc.file_sha256.empty()) ? range : std::nullopt;
  UpstreamRequest ranged = up;
  if (range) {
    ranged.range = StrCat("bytes=", range->first, "-",
                          range->last ? std::to_string(*range->last) : std::string());
    ranged.if_range = if_range;
  }

  const std::string url = parsed->CacheUrl();
  const std::string key = CacheKeyFor(cc, url);
  // Without a way to verify the bytes (unknown compression) a sha256 key would be a guess.
  const bool verifiable =
      cc.file_sha256.empty() || cc.file_compression_alg.empty() || cc.file_compression_alg == "zst";
  // External caches (only where caching is on: see ServerOptions) answer requests that name
  // their blob by sha256 and neither refuse the cache nor retry it: USB first, then the local
  // cache, then NFS, then the download (upstream's order).
  const bool external = !cc.file_sha256.empty() && !cc.no_cache && !cc.retry_caching;
  std::unique_ptr<ResponseSource> source;
  if (external && options.usb_cache) {
    source = ServeExternal(*options.usb_cache, cc.file_sha256, counters.external_hits, keep_alive,
                           stored_range);
  }
  if (source) return std::make_unique<Admitted>(std::move(source), inflight);
  if (!store || cc.no_cache || !verifiable || !store->CachingAllowed()) {
    // Existing entries are still served while the hard limit stops new caching.
    if (store && !cc.no_cache && !cc.retry_caching && verifiable) {
      if (std::optional<OpenEntry> hit = store->Open(key))
        source = ServeHit(*hit, echo, keep_alive, stored_range);
    }
    if (!source && external && options.nfs_cache) {
      source = ServeExternal(*options.nfs_cache, cc.file_sha256, counters.external_nfs_hits,
                             keep_alive, stored_range);
    }
    if (!source) {
      counters.relayed++;
      source = Relay::Start(upstream, ranged, echo, keep_alive, counters);
    }
  } else {
    if (cc.retry_caching) {
      store->Drop(key);
    } else if (std::optional<OpenEntry> hit = store->Open(key)) {
      source = ServeHit(*hit, echo, keep_alive, stored_range);
    }
    if (!source && external && options.nfs_cache) {
      source = ServeExternal(*options.nfs_cache, cc.file_sha256, counters.external_nfs_hits,
                             keep_alive, stored_range);
    }
    if (!source && range) {
      counters.relayed++;
      source = Relay::Start(upstream, ranged, echo, keep_alive, counters);
    }
    if (!source) source = ServeFromFlight(key, url, up, cc, echo, keep_alive);
  }
  return std::make_unique<Admitted>(std::move(source), inflight);
}

std::unique_ptr<ResponseSource> ProxyServer::Impl::ServeFromFlight(
    const std::string& key, const std::string& url, const UpstreamRequest& up,
    const http::CacheControl& cc, const std::string& echo, bool keep_alive) {
  // Creating a file can take a while: done before taking the registry's lock, and thrown away
  // when another request started the download meanwhile.
  std::optional<absl::StatusOr<TempFile>> temp;
  while (true) {
    std::shared_ptr<Flight> flight;
    bool joined = false;
    std::optional<OpenEntry> hit;
    {
      std::lock_guard lock(flights_mu);
      if (auto it = flights.find(key); it != flights.end()) {
        flight = it->second;
        joined = true;
      } else if (!cc.retry_caching && (hit = store->Open(key))) {
        // Committed between our first look and taking the lock.
      } else if (temp && temp->ok()) {
        flight = std::make_shared<Flight>(key, url, up, cc, **std::move(temp), *store, counters,
                                          [this](const Flight& f) {
                                            // Gone from the registry first: a later request starts
                                            // afresh or finds the entry.
                                            std::lock_guard lock(flights_mu);
                                            auto it = flights.find(f.key());
                                            if (it != flights.end() && it->second.get() == &f)
                                              flights.erase(it);
                                          });
        temp = std::nullopt;  // handed to the flight
        flights.emplace(key, flight);
      }
    }
    if (hit) return ServeHit(*hit, echo, keep_alive);
    if (!flight) {
      if (temp) {  // could not create it
        log::Error("cannot create cache temp file",
                   {{"error", std::string(temp->status().message())}});
        return Bytes(
            FormatSimple(500, StrCat("otaproxy: ", temp->status().message(), "\n"), keep_alive));
      }
      temp = store->CreateTemp();
      continue;
    }
    if (temp && temp->ok()) store->DiscardTemp((*temp)->path);
    if (!joined) {
      counters.upstream_fetches++;
      upstream.Start(flight->request(), flight, /*limited=*/true);
    }
    (joined ? counters.flight_joins : counters.cache_misses)++;
    return std::make_unique<FlightResponse>(std::move(flight), echo, joined, keep_alive);
  }
}

std::unique_ptr<ResponseSource> ProxyServer::Impl::ServeHit(
    OpenEntry& hit, const std::string& echo, bool keep_alive,
    const std::optional<http::ByteRange>& range) {
  counters.cache_hits++;
  ResponseHead head;
  head.content_type =
      hit.entry.content_type.empty() ? "application/octet-stream" : hit.entry.content_type;
  head.content_encoding = hit.entry.content_encoding;
  head.cache_control_echo = echo;
  head.cache_state = "hit";
  head.keep_alive = keep_alive;
  return FileAnswer(std::move(head), std::move(hit.fd), hit.entry.size, range);
}

std::unique_ptr<ResponseSource> ProxyServer::Impl::ServeExternal(
    const ExternalCache& cache, const std::string& sha256, std::atomic<uint64_t>& hits,
    bool keep_alive, const std::optional<http::ByteRange>& range) {
  std::optional<ExternalHit> hit = cache.Find(sha256);
  if (!hit) return nullptr;
  hits++;
  ResponseHead head;
  head.content_type = "application/octet-stream";
  // What the blob is, whatever the client asked for: a client that asked for the uncompressed
  // file decompresses a .zst answer (upstream's protocol).
  head.cache_control_echo = hit->zst ? StrCat("file_sha256=", sha256, ",file_compression_alg=zst")
                                     : StrCat("file_sha256=", sha256);
  head.cache_state = "external";
  head.keep_alive = keep_alive;
  return FileAnswer(std::move(head), std::move(hit->fd), hit->size, range);
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
  s.cdn_hits = counters.cdn_hits;
  s.external_hits = counters.external_hits;
  s.external_nfs_hits = counters.external_nfs_hits;
  s.cache = store ? "on" : (options.cache_error.empty() ? "off" : "failed");
  s.cache_error = options.cache_error;
  s.usb_cache = options.usb_cache != nullptr;
  s.nfs_cache = options.nfs_cache != nullptr;
  if (store) {
    s.cache_entries = store->entries();
    s.cache_bytes = store->total_bytes();
    s.evictions = store->evictions();
    s.index_pending = store->index_pending();
  }
  s.inflight = inflight.load();
  s.connections = open_connections.load();
  return s;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::Start(ServerOptions options,
                                                                std::unique_ptr<CacheStore> store,
                                                                UpstreamConfig upstream) {
  upstream.max_limited_transfers = std::max<size_t>(1, options.flight_workers);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(store), std::move(upstream));
  OTA_RETURN_IF_ERROR(impl->Listen());
  size_t threads = impl->options.io_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const ConnectionOptions connection_options{.header_limit = impl->options.header_limit,
                                             .idle_timeout_s = impl->options.idle_timeout_s,
                                             .send_timeout_s = impl->options.send_timeout_s};
  Impl* raw = impl.get();
  for (size_t i = 0; i < threads; ++i) {
    auto loop = std::make_unique<IoLoop>(connection_options, *raw, raw->open_connections);
    OTA_RETURN_IF_ERROR(loop->Init());
    raw->loops.push_back(std::move(loop));
  }
  raw->loops[0]->SetListener(raw->listen_fd.get(), [raw] { raw->Accept(); });
  for (auto& loop : raw->loops) loop->Start();
  log::Info(
      "otaproxy listening",
      {{"addr", raw->options.listen_addr},
       {"port", std::to_string(raw->port)},
       {"io_threads", std::to_string(threads)},
       {"cache", raw->store ? raw->store->dir().string()
                            : (raw->options.cache_error.empty() ? "off" : "failed")},
       {"usb_cache", raw->options.usb_cache ? raw->options.usb_cache->root().string() : "none"},
       {"nfs_cache", raw->options.nfs_cache ? raw->options.nfs_cache->root().string() : "none"},
       {"upstream_proxy",
        raw->upstream.config().proxy.empty() ? "none" : raw->upstream.config().proxy},
       {"upstream_https", raw->options.upstream_https ? "true" : "false"}});
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ProxyServer::~ProxyServer() { Stop(); }

uint16_t ProxyServer::port() const { return impl_->port; }

size_t ProxyServer::io_threads() const { return impl_->loops.size(); }

ServerStats ProxyServer::Stats() const { return impl_->Stats(); }

void ProxyServer::Stop() {
  std::lock_guard stop_lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stopping = true;
  // Connections first (their responses let go of downloads and relays), then the downloads:
  // each ends as failed, unregistered, its temp file removed.
  for (auto& loop : impl_->loops) loop->Stop();
  impl_->listen_fd.Reset();
  impl_->upstream.Shutdown();
  if (impl_->store) {
    if (absl::Status status = impl_->store->Flush(); !status.ok()) {
      log::Error("cache index flush failed", {{"error", std::string(status.message())}});
    }
  }
  log::Info("otaproxy stopped");
}

}  // namespace ota::proxy
