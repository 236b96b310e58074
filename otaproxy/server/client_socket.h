// Writing to otaproxy's client sockets (non-blocking, see io_loop.h) and the response heads
// written to them.
//
// No call delivers SIGPIPE, whatever the process's disposition of it: send() uses MSG_NOSIGNAL,
// and sendfile(), which has no such flag, runs with SIGPIPE blocked in the calling thread (a
// SIGPIPE it raises is taken back before the thread's mask is restored). A thread that blocks
// SIGPIPE for good with SigpipeOwner (the I/O threads) saves the two mask changes per call; a
// SIGPIPE raised there is taken back too.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ota::proxy {

struct IoResult {
  enum class Status { kOk, kWouldBlock, kClosed };
  size_t bytes = 0;  // written before the status was reached
  Status status = Status::kOk;
};

// One send() of `data` (MSG_NOSIGNAL, MSG_DONTWAIT; MSG_MORE when `more`: the caller writes more
// at once, so a short head and the start of a body leave in one segment). kOk: all or part
// written (see bytes); kWouldBlock: nothing written, the socket buffer is full; kClosed: the
// client is gone.
IoResult SendSome(int sock, std::string_view data, bool more);
// One sendfile() of up to `count` bytes of `in_fd` from `offset`.
IoResult SendFileSome(int sock, int in_fd, uint64_t offset, size_t count);

// While alive, SIGPIPE is blocked in this thread for good and the thread's sendfile() calls
// skip their own masking (see above). For threads otaproxy owns; restores the mask at the end.
class SigpipeOwner {
 public:
  SigpipeOwner();
  ~SigpipeOwner();
  SigpipeOwner(const SigpipeOwner&) = delete;
  SigpipeOwner& operator=(const SigpipeOwner&) = delete;

 private:
  sigset_t old_mask_;
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

// A complete text/plain response: head and body.
std::string FormatSimple(int status, std::string_view body, bool keep_alive,
                         std::vector<std::pair<std::string, std::string>> extra = {});

// Chunked transfer coding: the line before a chunk of `size` bytes, and the end of the body.
std::string ChunkHeader(uint64_t size);
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace ota::proxy
