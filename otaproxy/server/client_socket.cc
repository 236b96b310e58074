#include "otaproxy/server/client_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/beast/http/status.hpp>
#include <cstdio>
#include <ctime>

#include "common/util/strings.h"
#include "otaproxy/server/cache_control.h"

namespace ota::proxy {
namespace {

constexpr size_t kSendChunk = 1 << 20;  // bytes per sendfile call

std::string ChunkHeader(uint64_t size) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%llx\r\n", static_cast<unsigned long long>(size));
  return std::string(buf, static_cast<size_t>(n));
}

// While alive, SIGPIPE is blocked in this thread (and only here: process-wide state is left
// alone); the thread's mask is restored on the way out. A write that failed with EPIPE raised a
// SIGPIPE for this thread, now pending: TakeBackRaised() consumes it, so it is not delivered
// when the mask is restored.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    // Already blocked by the caller: a pending SIGPIPE is its business.
    was_blocked_ = sigismember(&old_mask_, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_blocked_) pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  void TakeBackRaised() {
    if (was_blocked_) return;
    const timespec zero{};
    while (sigtimedwait(&sigpipe_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t sigpipe_;
  sigset_t old_mask_;
  bool was_blocked_ = false;
};

}  // namespace

ClientSocket::ClientSocket(int fd, int send_timeout_s) : fd_(fd) {
  timeval tv{};
  tv.tv_sec = send_timeout_s;
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

size_t ClientSocket::ReadSome(void* data, size_t size, boost::system::error_code& ec) {
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
    const ssize_t n = ::recv(fd_, data, size, 0);
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

bool ClientSocket::Send(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ClientSocket::SendFile(int in_fd, uint64_t offset, uint64_t count) {
  SigpipeBlock no_sigpipe;
  off_t off = static_cast<off_t>(offset);
  while (count > 0) {
    const ssize_t n = ::sendfile(fd_, in_fd, &off, std::min<uint64_t>(count, kSendChunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) no_sigpipe.TakeBackRaised();
    if (n <= 0) return false;
    count -= static_cast<uint64_t>(n);
  }
  return true;
}

bool ClientSocket::SendBodyFile(bool chunked, int in_fd, uint64_t offset, uint64_t count) {
  if (count == 0) return true;
  if (chunked && !Send(ChunkHeader(count))) return false;
  if (!SendFile(in_fd, offset, count)) return false;
  return !chunked || Send("\r\n");
}

bool ClientSocket::SendBody(bool chunked, std::string_view data) {
  if (data.empty()) return true;
  if (chunked && !Send(ChunkHeader(data.size()))) return false;
  if (!Send(data)) return false;
  return !chunked || Send("\r\n");
}

bool ClientSocket::EndChunked() { return Send("0\r\n\r\n"); }

std::string CleanHeaderValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  }
  return out;
}

std::string FormatHead(const ResponseHead& h) {
  namespace beast_http = boost::beast::http;
  std::string reason(beast_http::obsolete_reason(static_cast<beast_http::status>(h.status)));
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

bool SendSimple(ClientSocket& sock, int status, std::string_view body, bool keep_alive,
                std::vector<std::pair<std::string, std::string>> extra) {
  ResponseHead head;
  head.status = status;
  head.content_length = body.size();
  head.content_type = "text/plain; charset=utf-8";
  head.keep_alive = keep_alive;
  head.extra = std::move(extra);
  return sock.Send(FormatHead(head)) && sock.Send(body) && keep_alive;
}

}  // namespace ota::proxy
