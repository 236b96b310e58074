// The two ends of an otaproxy for tests that control every byte: RawClient, an HTTP/1.1 client
// on a plain socket (reads when and as much as the test says, can stop reading, sees exactly
// where a response ends), and ScriptedUpstream, an origin server on 127.0.0.1 (port 0) whose
// every response the test writes piece by piece (head, body parts, close) at the moments it
// chooses. Every wait has a deadline; nothing sleeps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fs/fs.h"

namespace ota::proxy::testing {

using Clock = std::chrono::steady_clock;
inline constexpr auto kWait = std::chrono::seconds(20);

struct ResponseHead {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class RawClient {
 public:
  // Connects to 127.0.0.1:port. `receive_buffer` > 0: SO_RCVBUF set before connecting (a client
  // whose socket holds little, so that not reading stops the sender soon).
  static absl::StatusOr<RawClient> Connect(uint16_t port, int receive_buffer = 0);

  int fd() const { return fd_.get(); }
  // SO_RCVBUF after the fact: a client that held back with a small buffer reads fast now.
  void WidenReceiveBuffer(int bytes = 4 << 20);
  absl::Status Send(std::string_view bytes);
  // "GET <url> HTTP/1.1" with Host and the extra header lines ("Name: value").
  absl::Status SendGet(const std::string& url, const std::vector<std::string>& headers = {});
  absl::StatusOr<ResponseHead> ReadHead(Clock::time_point deadline = Clock::now() + kWait);
  // Body bytes until `length` arrived (OK), the connection closed first (kDataLoss with what
  // came in `*body`) or the deadline passed (kDeadlineExceeded).
  absl::Status ReadBody(uint64_t length, std::string* body,
                        Clock::time_point deadline = Clock::now() + kWait);
  // Up to `max` bytes: what has arrived, waiting for at least one; "" at end of stream.
  absl::StatusOr<std::string> ReadSome(size_t max, Clock::time_point deadline);
  // Waits until the other end closed the connection (reading and discarding what still comes).
  absl::Status WaitClosed(Clock::time_point deadline = Clock::now() + kWait);

 private:
  explicit RawClient(fs::UniqueFd fd) : fd_(std::move(fd)) {}
  fs::UniqueFd fd_;
  std::string buffered_;  // read past the head
};

// One request the upstream received and its connection, answered by the test.
class Exchange {
 public:
  explicit Exchange(fs::UniqueFd fd, std::string request)
      : fd_(std::move(fd)), request_(std::move(request)) {}
  const std::string& request() const { return request_; }  // request line and headers
  absl::Status Send(std::string_view bytes);
  // "HTTP/1.1 <status>" with Content-Length (when given) and Connection: close.
  absl::Status SendHead(int status, std::optional<uint64_t> content_length);
  void Close() { fd_.Reset(); }

 private:
  fs::UniqueFd fd_;
  std::string request_;
};

class ScriptedUpstream {
 public:
  static absl::StatusOr<std::unique_ptr<ScriptedUpstream>> Start();
  ~ScriptedUpstream();
  uint16_t port() const { return port_; }
  std::string Url(const std::string& path) const;
  // The next request received (its connection is the test's to answer).
  absl::StatusOr<std::unique_ptr<Exchange>> Next(Clock::time_point deadline = Clock::now() + kWait);
  size_t requests() const;

 private:
  ScriptedUpstream() = default;
  void AcceptLoop();

  fs::UniqueFd listen_;
  fs::UniqueFd stop_;  // eventfd
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Exchange>> received_;
  size_t requests_ = 0;
  std::thread thread_;
};

// Threads of this process now (/proc/self/task), and its open file descriptors.
size_t ThreadCount();
size_t OpenFdCount();
// Polls `condition` until it holds or `deadline` passes (a condition to wait for, not a delay).
bool WaitFor(const std::function<bool()>& condition,
             Clock::time_point deadline = Clock::now() + kWait);

}  // namespace ota::proxy::testing
