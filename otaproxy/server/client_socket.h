// One client connection's I/O for otaproxy's thread-per-connection front (proxy_server.h): a
// blocking socket with a read deadline (poll) and a send timeout (SO_SNDTIMEO), read through
// Boost.Beast's request parser, and the responses written to it.
//
// No call delivers SIGPIPE, whatever the process's disposition of it: send() uses MSG_NOSIGNAL,
// and sendfile(), which has no such flag, runs with SIGPIPE blocked in the calling thread (a
// SIGPIPE it raises is taken back before the thread's mask is restored).
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ota::proxy {

class ClientSocket {
 public:
  using Clock = std::chrono::steady_clock;

  // Does not own `fd`.
  ClientSocket(int fd, int send_timeout_s);
  int fd() const { return fd_; }
  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }

  // SyncReadStream for boost::beast::http::read: fails with timed_out at the deadline.
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      return ReadSome(b.data(), b.size(), ec);
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

  // Each false: the client is gone or stopped reading; close the connection.
  bool Send(std::string_view data);
  bool SendFile(int in_fd, uint64_t offset, uint64_t count);
  // A body piece, framed as a chunk when `chunked`.
  bool SendBodyFile(bool chunked, int in_fd, uint64_t offset, uint64_t count);
  bool SendBody(bool chunked, std::string_view data);
  bool EndChunked();

 private:
  size_t ReadSome(void* data, size_t size, boost::system::error_code& ec);

  int fd_;
  Clock::time_point deadline_{};
};

// Header values copied from upstream: no control characters.
std::string CleanHeaderValue(std::string_view v);

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

std::string FormatHead(const ResponseHead& h);

// A complete text/plain response. Returns whether the connection stays open: sent and
// `keep_alive`.
bool SendSimple(ClientSocket& sock, int status, std::string_view body, bool keep_alive,
                std::vector<std::pair<std::string, std::string>> extra = {});

}  // namespace ota::proxy
