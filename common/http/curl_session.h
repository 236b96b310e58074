// A curl multi handle driven through curl's socket interface over an epoll set, and the idle easy
// handles that go with it (internal to the curl fetcher). The multi handle owns the connection
// cache, so connections are reused across calls; the share handle keeps TLS sessions for new
// connections to the same server.
//
// Why not curl_multi_perform + curl_multi_poll: perform visits every transfer on each wake-up
// (with a poll() per transfer), and poll() re-registers every socket each time. With the socket
// interface curl only runs the transfers whose socket is ready, and a transfer that needs no
// socket (file://) runs to completion from the timer without any waiting.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/content/verifier.h"
#include "common/fs/fs.h"
#include "common/http/curl_easy.h"

namespace ota::http {

class Session {
 public:
  using Clock = std::chrono::steady_clock;

  // Every easy handle gets `options` and, when not empty, `cookie_header` (CURLOPT_COOKIE);
  // `max_parallel` bounds connections, idle handles and idle zstd contexts.
  Session(EasyOptions options, std::string cookie_header, size_t max_parallel);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  absl::Status Init();
  CURLM* multi() const { return multi_.get(); }
  std::mutex& mutex() { return mu_; }
  content::ZstdContextPool& zstd_pool() { return zstd_pool_; }

  // An easy handle with the options every transfer shares already set (set once per handle,
  // not per transfer). Null when curl cannot make one.
  UniqueEasy Acquire();
  // Keeps the handle (and so nothing of the finished transfer: curl must not keep pointers to
  // the attempt's buffers) for the next Acquire(), up to max_parallel.
  void Release(UniqueEasy easy);

  // Waits up to `max_wait_ms` (less when curl's timer is due earlier) for socket activity, then
  // lets curl act on the ready sockets and on its expired timer.
  absl::Status Drive(int max_wait_ms);

 private:
  absl::Status Act(curl_socket_t fd, int bits);
  // curl says which sockets to watch for what; socketp is non-null once the fd is in the set.
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* self_ptr, void* socketp);
  static int OnTimer(CURLM* multi, long timeout_ms, void* self_ptr);

  std::mutex mu_;
  const EasyOptions options_;
  const std::string cookie_header_;
  const size_t max_parallel_;
  // Destroyed in reverse order: easy handles before the multi handle (whose cleanup may still
  // report sockets to the epoll set), the share handle after every easy handle using it.
  fs::UniqueFd epoll_;
  std::optional<Clock::time_point> timer_;  // when curl wants CURL_SOCKET_TIMEOUT
  bool timer_only_last_time_ = false;
  absl::Status socket_error_;
  UniqueShare share_;
  UniqueMulti multi_;
  std::vector<UniqueEasy> idle_;
  content::ZstdContextPool zstd_pool_;
};

}  // namespace ota::http
