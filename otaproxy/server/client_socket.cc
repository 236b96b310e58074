#include "otaproxy/server/client_socket.h"

#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "common/http/cache_control.h"
#include "common/util/strings.h"

namespace ota::proxy {
namespace {

// True in a thread that lives inside a SigpipeOwner.
thread_local bool t_owns_sigpipe = false;

sigset_t SigpipeSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

// A write that failed with EPIPE raised a SIGPIPE for this thread, pending while blocked:
// consume it, so it is never delivered.
void TakeBackRaisedSigpipe() {
  const sigset_t set = SigpipeSet();
  const timespec zero{};
  while (sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
  }
}

// While alive, SIGPIPE is blocked in this thread (and only here: process-wide state is left
// alone); the thread's mask is restored on the way out. A caller that had blocked it already
// keeps what it raised: a pending SIGPIPE is its business then.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    const sigset_t set = SigpipeSet();
    pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
    was_blocked_ = sigismember(&old_mask_, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_blocked_) pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  void TakeBackRaised() {
    if (!was_blocked_) TakeBackRaisedSigpipe();
  }

 private:
  sigset_t old_mask_;
  bool was_blocked_ = false;
};

IoResult Failed(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK) return {0, IoResult::Status::kWouldBlock};
  return {0, IoResult::Status::kClosed};
}

}  // namespace

SigpipeOwner::SigpipeOwner() {
  const sigset_t set = SigpipeSet();
  pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
  t_owns_sigpipe = true;
}

SigpipeOwner::~SigpipeOwner() {
  t_owns_sigpipe = false;
  TakeBackRaisedSigpipe();
  pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

IoResult SendSome(int sock, std::string_view data, bool more) {
  if (data.empty()) return {};
  const int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0);
  while (true) {
    const ssize_t n = ::send(sock, data.data(), data.size(), flags);
    if (n > 0) return {static_cast<size_t>(n), IoResult::Status::kOk};
    if (n < 0 && errno == EINTR) continue;
    return Failed(n == 0 ? EPIPE : errno);
  }
}

IoResult SendFileSome(int sock, int in_fd, uint64_t offset, size_t count) {
  if (count == 0) return {};
  off_t off = static_cast<off_t>(offset);
  if (t_owns_sigpipe) {
    while (true) {
      const ssize_t n = ::sendfile(sock, in_fd, &off, count);
      if (n > 0) return {static_cast<size_t>(n), IoResult::Status::kOk};
      if (n < 0 && errno == EINTR) continue;
      const int err = n == 0 ? EPIPE : errno;  // 0: the file is shorter than promised
      if (err == EPIPE) TakeBackRaisedSigpipe();
      return Failed(err);
    }
  }
  SigpipeBlock no_sigpipe;
  while (true) {
    const ssize_t n = ::sendfile(sock, in_fd, &off, count);
    if (n > 0) return {static_cast<size_t>(n), IoResult::Status::kOk};
    if (n < 0 && errno == EINTR) continue;
    const int err = n == 0 ? EPIPE : errno;
    if (err == EPIPE) no_sigpipe.TakeBackRaised();
    return Failed(err);
  }
}

std::string ChunkHeader(uint64_t size) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%llx\r\n", static_cast<unsigned long long>(size));
  return std::string(buf, static_cast<size_t>(n));
}

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
  const auto beast_reason = beast_http::obsolete_reason(static_cast<beast_http::status>(h.status));
  std::string_view reason(beast_reason.data(), beast_reason.size());
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
    StrAppend(&out, http::kCacheControlHeader, ": ", h.cache_control_echo, "\r\n");
  }
  if (!h.cache_state.empty()) StrAppend(&out, "X-Otaproxy-Cache: ", h.cache_state, "\r\n");
  for (const auto& [name, value] : h.extra) StrAppend(&out, name, ": ", value, "\r\n");
  if (!h.keep_alive) out.append("Connection: close\r\n");
  out.append("\r\n");
  return out;
}

std::string FormatSimple(int status, std::string_view body, bool keep_alive,
                         std::vector<std::pair<std::string, std::string>> extra) {
  ResponseHead head;
  head.status = status;
  head.content_length = body.size();
  head.content_type = "text/plain; charset=utf-8";
  head.keep_alive = keep_alive;
  head.extra = std::move(extra);
  std::string out = FormatHead(head);
  out.append(body);
  return out;
}

}  // namespace ota::proxy
