#include "common/http/curl_session.h"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>

#include "common/util/errors.h"
#include "common/util/strings.h"

namespace ota::http {
namespace {

constexpr int kMaxEpollEvents = 64;

}  // namespace

Session::Session(EasyOptions options, std::string cookie_header, size_t max_parallel)
    : options_(std::move(options)),
      cookie_header_(std::move(cookie_header)),
      max_parallel_(std::max<size_t>(max_parallel, 1)),
      zstd_pool_(max_parallel_) {}

absl::Status Session::Init() {
  CurlGlobalInitOnce();
  const long max_parallel = static_cast<long>(max_parallel_);
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return ErrnoStatus(errno, "epoll_create1 for the transfer loop");
  epoll_ = fs::UniqueFd(epoll_fd);
  share_.reset(curl_share_init());
  if (!share_) return absl::InternalError("curl_share_init failed");
  curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  multi_.reset(curl_multi_init());
  if (!multi_) return absl::InternalError("curl_multi_init failed");
  curl_multi_setopt(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, max_parallel);
  curl_multi_setopt(multi_.get(), CURLMOPT_MAXCONNECTS, max_parallel);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &Session::OnSocket);
  curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &Session::OnTimer);
  curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
  return absl::OkStatus();
}

UniqueEasy Session::Acquire() {
  if (!idle_.empty()) {
    UniqueEasy easy = std::move(idle_.back());
    idle_.pop_back();
    return easy;
  }
  UniqueEasy easy(curl_easy_init());
  if (!easy) return easy;
  ApplyEasyOptions(easy.get(), options_);
  curl_easy_setopt(easy.get(), CURLOPT_SHARE, share_.get());
  if (!cookie_header_.empty()) curl_easy_setopt(easy.get(), CURLOPT_COOKIE, cookie_header_.c_str());
  return easy;
}

void Session::Release(UniqueEasy easy) {
  if (!easy || idle_.size() >= max_parallel_) return;
  // The attempt's buffers die with its task; curl must not keep pointers to them.
  curl_easy_setopt(easy.get(), CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(easy.get(), CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(easy.get(), CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(easy.get(), CURLOPT_HEADERFUNCTION, nullptr);
  curl_easy_setopt(easy.get(), CURLOPT_HEADERDATA, nullptr);
  idle_.push_back(std::move(easy));
}

absl::Status Session::Drive(int max_wait_ms) {
  const Clock::time_point now = Clock::now();
  const bool timer_due = timer_ && *timer_ <= now;
  // A due timer (transfers just added, or one that needs no socket such as file://) is acted
  // on without asking the kernel first; but never twice in a row, so that transfers waiting on
  // their sockets are not starved by others that keep the timer at zero.
  if (!timer_due || timer_only_last_time_) {
    int wait_ms = 0;
    if (!timer_due) {
      wait_ms = max_wait_ms;
      if (timer_) {
        auto until = std::chrono::ceil<std::chrono::milliseconds>(*timer_ - now).count();
        wait_ms = static_cast<int>(std::clamp<int64_t>(until, 0, wait_ms));
      }
    }
    std::array<epoll_event, kMaxEpollEvents> events;
    int ready = ::epoll_wait(epoll_.get(), events.data(), kMaxEpollEvents, wait_ms);
    if (ready < 0) {
      if (errno != EINTR) return ErrnoStatus(errno, "epoll_wait in the transfer loop");
      ready = 0;
    }
    for (int i = 0; i < ready; ++i) {
      const uint32_t got = events[i].events;
      int bits = 0;
      // A hang-up is reported as readable so that curl reads the EOF or the error.
      if ((got & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) != 0) bits |= CURL_CSELECT_IN;
      if ((got & EPOLLOUT) != 0) bits |= CURL_CSELECT_OUT;
      if ((got & EPOLLERR) != 0) bits |= CURL_CSELECT_ERR;
      OTA_RETURN_IF_ERROR(Act(events[i].data.fd, bits));
    }
    timer_only_last_time_ = false;
  } else {
    timer_only_last_time_ = true;
  }
  if (timer_ && *timer_ <= Clock::now()) {
    timer_.reset();  // curl sets the next one from inside the call
    OTA_RETURN_IF_ERROR(Act(CURL_SOCKET_TIMEOUT, 0));
  }
  return absl::OkStatus();
}

absl::Status Session::Act(curl_socket_t fd, int bits) {
  int running = 0;
  CURLMcode mc = curl_multi_socket_action(multi_.get(), fd, bits, &running);
  if (mc != CURLM_OK) {
    if (!socket_error_.ok()) return std::exchange(socket_error_, absl::OkStatus());
    return absl::InternalError(StrCat("curl_multi_socket_action: ", curl_multi_strerror(mc)));
  }
  return absl::OkStatus();
}

int Session::OnSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* self_ptr, void* socketp) {
  auto* self = static_cast<Session*>(self_ptr);
  const int epoll_fd = self->epoll_.get();
  if (what == CURL_POLL_REMOVE) {
    // Fails harmlessly when the socket is already closed (epoll drops closed fds itself).
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    return 0;
  }
  epoll_event event{};
  event.events =
      ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
  event.data.fd = fd;
  int op = socketp != nullptr ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int rc = ::epoll_ctl(epoll_fd, op, fd, &event);
  if (rc != 0 && (errno == ENOENT || errno == EEXIST)) {
    op = errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    rc = ::epoll_ctl(epoll_fd, op, fd, &event);
  }
  if (rc != 0) {
    self->socket_error_ = ErrnoStatus(errno, StrCat("epoll_ctl for socket ", fd));
    return -1;
  }
  if (socketp == nullptr) curl_multi_assign(self->multi_.get(), fd, self);
  return 0;
}

int Session::OnTimer(CURLM* /*multi*/, long timeout_ms, void* self_ptr) {
  auto* self = static_cast<Session*>(self_ptr);
  if (timeout_ms < 0) {
    self->timer_.reset();
  } else {
    self->timer_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  return 0;
}

}  // namespace ota::http
