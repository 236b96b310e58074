// A real nginx for tests, run as a child of the test process (see nginx-harness.sh beside this
// file for what it serves: plain and TLS file server, /protected/, /slow/, /status/<code>/,
// a forward proxy, and an access log that records connection reuse and Ota-File-Cache-Control).
//
//   ASSERT_OK_AND_ASSIGN(auto nginx, ota::testing::NginxServer::Start(root));
//   fetch(nginx->HttpUrl("/a.txt")); ... nginx->AccessLog() ...
//
// Ports are claims from the test-port registry (test/lib/ports/port_registry.h), held as long as
// the object; the server's files live in a temp dir removed by the destructor after nginx, and
// only nginx, has been stopped and reaped. nginx also dies with
// the thread that started it (PR_SET_PDEATHSIG), so a crashing test leaves nothing running.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fs/fs.h"
#include "test/lib/ports/port_registry.h"

namespace ota::testing {

struct AccessLogEntry {
  int port = 0;                      // which listener: http_port(), https_port() or proxy_port()
  uint64_t connection = 0;           // nginx $connection: equal values = the same TCP connection
  uint64_t connection_requests = 0;  // nth request on that connection
  int status = 0;
  uint64_t body_bytes = 0;
  std::string cache_control;  // Ota-File-Cache-Control as received; "" when absent
  std::string method;         // "GET"
  std::string target;         // "/a.txt", or "http://127.0.0.1:1234/a.txt" on the proxy port
};

class NginxServer {
 public:
  // Starts nginx serving `doc_root` (empty: dir()/www, created). Blocks until all three ports
  // accept connections.
  static absl::StatusOr<std::unique_ptr<NginxServer>> Start(std::filesystem::path doc_root = {});
  ~NginxServer();
  NginxServer(const NginxServer&) = delete;
  NginxServer& operator=(const NginxServer&) = delete;

  int http_port() const { return http_port_; }
  int https_port() const { return https_port_; }
  int proxy_port() const { return proxy_port_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  const std::filesystem::path& doc_root() const { return doc_root_; }
  std::filesystem::path ca_pem() const { return dir() / "ca.pem"; }
  // A valid CA that did not sign the server certificate.
  std::filesystem::path wrong_ca_pem() const { return dir() / "wrong-ca.pem"; }

  // "http://127.0.0.1:<port>" + path (path starts with '/').
  std::string HttpUrl(std::string_view path) const;
  std::string HttpsUrl(std::string_view path) const;
  std::string ProxyUrl() const;

  // SIGKILL and reap: the server vanishes mid-transfer, as in a crash.
  void Kill();
  // SIGTERM, wait (bounded), SIGKILL if needed; idempotent.
  absl::Status Stop();
  bool running() const { return pid_ > 0; }

  // Every request answered so far, oldest first. While nginx runs it first makes a marker
  // request and waits for it to be logged, so no earlier request is missing from the result.
  absl::StatusOr<std::vector<AccessLogEntry>> AccessLog();

 private:
  explicit NginxServer(fs::TempDir dir) : dir_(std::move(dir)) {}
  absl::Status Launch();
  absl::Status SyncAccessLog();

  fs::TempDir dir_;
  std::vector<PortClaim> port_claims_;  // released after the destructor stopped nginx
  std::filesystem::path doc_root_;
  int http_port_ = 0;
  int https_port_ = 0;
  int proxy_port_ = 0;
  pid_t pid_ = -1;
  int sync_counter_ = 0;
};

// Entries whose target starts with `prefix` (e.g. "/protected/").
std::vector<AccessLogEntry> EntriesFor(const std::vector<AccessLogEntry>& entries,
                                       std::string_view target_prefix);

}  // namespace ota::testing
