// The otaproxy HTTP/1.1 front: a forward proxy for absolute-form GET requests with a shared
// disk cache. Event-driven: a fixed number of I/O threads (io_loop.h) serve every client
// connection (non-blocking sockets, requests parsed with Boost.Beast, bodies from files with
// sendfile), and one upstream thread runs every download and relay (upstream_client.h, curl
// multi). The number of threads does not depend on the number of connections.
//
// Per request (the order of today's Python otaproxy):
//   - with file_sha256, neither no_cache nor retry_caching, and a USB external cache: the blob
//     from it when it has one (external_cache.h; sendfile);
//   - cache off, `no_cache`, unknown file_compression_alg with file_sha256, or the hard disk
//     limit reached → relayed straight from upstream (status and body passed through; relay.h);
//   - committed entry → served from disk (sendfile), Content-Length set;
//   - with file_sha256 etc. as above and an NFS external cache: the blob from it when it has one;
//   - otherwise → joins the single in-flight download of that key, or starts it (flight.h). The
//     download writes into a temp file; every client of the key sends from that file as bytes
//     arrive. The last byte is released only when the download is complete and verified
//     (length, and file_sha256 when given, through zstd when file_compression_alg=zst), so a
//     broken download reaches its clients as a truncated response, never a complete wrong one,
//     and never becomes a cache entry. Upstream statuses other than 200 are passed through and
//     not cached; an unreachable upstream, or an https → http redirect (refused, see
//     common/http/curl_easy.h), gives 502 with the reason.
// Cache key: file_sha256 (+ "." + alg) when given, else "url_" + sha256(http URL).
// Admin (origin-form, loopback clients only): GET /_otaproxy/stats (JSON counters),
// POST /_otaproxy/purge (drop every entry).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "otaproxy/cache/cache_store.h"
#include "otaproxy/external/external_cache.h"
#include "otaproxy/upstream/upstream_client.h"

namespace ota::proxy {

struct ServerOptions {
  std::string listen_addr = "0.0.0.0";
  uint16_t listen_port = 8082;  // 0 = pick a free port (see ProxyServer::port())
  // Fetch upstream with https even when the client asked for http:// (gateway without an
  // upper proxy).
  bool upstream_https = false;
  // Pass Ota-File-Cache-Control upstream (when chaining to an upper otaproxy).
  bool forward_cache_control = false;
  size_t max_inflight_requests = 1024;      // beyond: 429
  size_t max_connections = 4096;            // beyond: 503 and close
  size_t header_limit = size_t{16} * 1024;  // bytes of request line + headers; beyond: 431
  int idle_timeout_s = 60;                  // keep-alive connection without a request: closed
  int send_timeout_s = 60;                  // client not reading for this long: closed
  size_t flight_workers = 32;               // concurrent cache-filling downloads (more wait)
  size_t io_threads = 0;                    // client I/O threads; 0 = one per core
  // Read-only external caches (null: none). Given only where caching is on (the gateway with
  // enable_local_ota_proxy_cache), also when the local cache could not be opened.
  std::shared_ptr<const ExternalCache> usb_cache;
  std::shared_ptr<const ExternalCache> nfs_cache;
  // Why the local cache is off although configured on (it could not be opened: relay only);
  // shown in the stats. "" = no such failure.
  std::string cache_error;
};

struct ServerStats {
  uint64_t requests = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;       // downloads started to fill the cache
  uint64_t flight_joins = 0;       // requests served from a download already in flight
  uint64_t relayed = 0;            // requests proxied without the cache
  uint64_t cdn_hits = 0;           // upstream responses with `X-Cache: Hit...` (the CDN's cache)
  uint64_t external_hits = 0;      // served from the USB external cache
  uint64_t external_nfs_hits = 0;  // served from the NFS external cache
  uint64_t upstream_fetches = 0;
  uint64_t upstream_failures = 0;
  uint64_t verify_failures = 0;  // downloads that failed length or sha256 verification
  uint64_t committed = 0;
  uint64_t rejected_busy = 0;  // 429
  uint64_t cache_entries = 0;
  uint64_t cache_bytes = 0;
  uint64_t evictions = 0;
  uint64_t inflight = 0;       // requests being handled now
  uint64_t connections = 0;    // client connections open now
  uint64_t index_pending = 0;  // index changes not yet in the database
  // "on", "off" (not configured: child ECU, enable_local_ota_proxy_cache false, --no-cache) or
  // "failed" (configured, could not be opened: relay only; cache_error says why).
  std::string cache = "off";
  std::string cache_error;
  bool usb_cache = false;  // a USB external cache is in use
  bool nfs_cache = false;  // an NFS external cache is in use
};

class ProxyServer {
 public:
  // `store` may be null: no caching, every request relayed.
  static absl::StatusOr<std::unique_ptr<ProxyServer>> Start(ServerOptions options,
                                                            std::unique_ptr<CacheStore> store,
                                                            UpstreamConfig upstream);
  ~ProxyServer();  // Stop()
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  uint16_t port() const;
  // Threads serving clients (fixed at start).
  size_t io_threads() const;
  ServerStats Stats() const;
  // Stops accepting, aborts downloads, closes connections, flushes the index. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ota::proxy
