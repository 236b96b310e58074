// otaproxy's event-driven front: a fixed number of I/O threads (IoLoop), each an edge-triggered
// epoll loop over its share of the client connections (connection.h), whatever their number.
// Loop 0 also accepts; each new connection goes to the loop with the fewest. Other threads
// (downloads, relays) reach a connection only through Wake(), which makes its loop ask the
// connection's response for more; a connection that used up its write budget in one turn goes
// on in the next, after the others had theirs (fair share between clients).
//
// Timeouts are checked every kSweepInterval: a connection waiting for a request longer than the
// idle timeout, or whose client has not taken a byte for the send timeout, is closed.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "common/fs/fs.h"
#include "otaproxy/server/response.h"

namespace ota::proxy {

using Request = boost::beast::http::request<boost::beast::http::empty_body>;
using Clock = std::chrono::steady_clock;

struct ConnectionOptions {
  size_t header_limit = size_t{16} * 1024;  // request line + headers; beyond: 431
  int idle_timeout_s = 60;                  // waiting for a request
  int send_timeout_s = 60;                  // client not taking bytes
};

// Answers requests (the server). Runs on the connection's I/O thread.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The response to `request`, read from the client socket `fd`. `keep_alive`: the client may
  // send another request on the connection afterwards (the response must say so).
  virtual std::unique_ptr<ResponseSource> Handle(const Request& request, bool keep_alive,
                                                 int fd) = 0;
  // Whether connections are being closed (no keep-alive any more).
  virtual bool Stopping() const = 0;
};

class Connection;

class IoLoop {
 public:
  static constexpr auto kSweepInterval = std::chrono::milliseconds(250);

  // `open_connections` counts the connections of every loop (for the server's limit).
  IoLoop(ConnectionOptions options, RequestHandler& handler, std::atomic<size_t>& open_connections);
  ~IoLoop();  // Stop()
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  absl::Status Init();
  // Loop 0 only, before Start(): `on_acceptable` runs on this loop when `listen_fd` has
  // connections to accept.
  void SetListener(int listen_fd, std::function<void()> on_acceptable);
  void Start();
  // Closes every connection and ends the thread. Idempotent; any thread but this loop's.
  void Stop();

  // Any thread. Takes a connected socket (the loop owns it from now on).
  void Adopt(fs::UniqueFd fd);
  // Any thread. The connection's response may have more to send.
  void Wake(uint64_t connection);
  size_t connections() const { return count_.load(); }

  // Loop thread only.
  // The listener stops being watched until the next sweep (out of file descriptors).
  void PauseListener();
  // The connection used up its write budget: it goes on after the others.
  void MarkReady(uint64_t connection) { ready_.push_back(connection); }
  std::vector<char>& scratch() { return scratch_; }
  Clock::time_point now() const { return now_; }
  const ConnectionOptions& options() const { return options_; }
  RequestHandler& handler() { return handler_; }

 private:
  void Run();
  void DrainPosted();
  void Dispatch(uint64_t id, uint32_t events);
  void Sweep();
  // Removes a connection that closed itself.
  void Reap(std::unordered_map<uint64_t, std::unique_ptr<Connection>>::iterator it);
  void AddConnection(fs::UniqueFd fd);

  const ConnectionOptions options_;
  RequestHandler& handler_;
  std::atomic<size_t>& open_connections_;
  fs::UniqueFd epoll_;
  fs::UniqueFd wake_fd_;  // eventfd: posted work
  int listen_fd_ = -1;
  bool listener_paused_ = false;
  std::function<void()> on_acceptable_;

  std::mutex post_mu_;
  std::vector<fs::UniqueFd> posted_fds_;
  std::vector<uint64_t> posted_wakes_;
  bool signalled_ = false;         // wake_fd_ written since the loop last drained it
  std::atomic<bool> stop_{false};  // set under post_mu_

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  uint64_t next_id_ = 16;  // ids below are the loop's own fds
  std::vector<uint64_t> ready_;
  std::vector<char> scratch_;
  Clock::time_point now_;
  Clock::time_point next_sweep_;

  std::atomic<size_t> count_{0};
  std::mutex stop_mu_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace ota::proxy
