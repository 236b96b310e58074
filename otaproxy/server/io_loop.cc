#include "otaproxy/server/io_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/log/log.h"
#include "common/util/errors.h"
#include "otaproxy/server/client_socket.h"
#include "otaproxy/server/connection.h"

namespace ota::proxy {
namespace {

constexpr uint64_t kWakeId = 1;
constexpr uint64_t kListenId = 2;
constexpr int kMaxEvents = 128;
// recv() buffer shared by the loop's connections (a request is copied out of it).
constexpr size_t kScratchBytes = size_t{16} * 1024;

}  // namespace

IoLoop::IoLoop(ConnectionOptions options, RequestHandler& handler,
               std::atomic<size_t>& open_connections)
    : options_(options),
      handler_(handler),
      open_connections_(open_connections),
      scratch_(kScratchBytes) {}

IoLoop::~IoLoop() { Stop(); }

absl::Status IoLoop::Init() {
  epoll_ = fs::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return ErrnoStatus(errno, "epoll_create1");
  wake_fd_ = fs::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) return ErrnoStatus(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl add eventfd");
  }
  return absl::OkStatus();
}

void IoLoop::SetListener(int listen_fd, std::function<void()> on_acceptable) {
  listen_fd_ = listen_fd;
  on_acceptable_ = std::move(on_acceptable);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_fd_, &ev);
}

void IoLoop::PauseListener() {
  if (listen_fd_ < 0 || listener_paused_) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listen_fd_, nullptr);
  listener_paused_ = true;
}

void IoLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void IoLoop::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(post_mu_);
    stop_ = true;
  }
  const uint64_t one = 1;
  if (wake_fd_.valid()) (void)!::write(wake_fd_.get(), &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
}

void IoLoop::Adopt(fs::UniqueFd fd) {
  count_++;  // counted at once, so that the next connection goes elsewhere
  bool signal = false;
  {
    std::lock_guard lock(post_mu_);
    if (stop_) {
      count_--;
      open_connections_--;
      return;  // fd closes here
    }
    posted_fds_.push_back(std::move(fd));
    signal = !std::exchange(signalled_, true);
  }
  const uint64_t one = 1;
  if (signal) (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void IoLoop::Wake(uint64_t connection) {
  bool signal = false;
  {
    std::lock_guard lock(post_mu_);
    if (stop_) return;
    posted_wakes_.push_back(connection);
    signal = !std::exchange(signalled_, true);
  }
  const uint64_t one = 1;
  if (signal) (void)!::write(wake_fd_.get(), &one, sizeof(one));
}

void IoLoop::AddConnection(fs::UniqueFd fd) {
  const uint64_t id = next_id_++;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    log::Warning("cannot watch a client connection", {{"error", ErrnoText(errno)}});
    count_--;
    open_connections_--;
    return;
  }
  connections_.emplace(id, std::make_unique<Connection>(*this, id, std::move(fd)));
  // The first events (writable, maybe readable) arrive with the next epoll_wait.
}

void IoLoop::Reap(std::unordered_map<uint64_t, std::unique_ptr<Connection>>::iterator it) {
  connections_.erase(it);  // closes the socket, which leaves the epoll set
  count_--;
  open_connections_--;
}

void IoLoop::Dispatch(uint64_t id, uint32_t events) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;  // closed earlier in this batch
  it->second->OnEvents(events);
  if (it->second->closed()) Reap(it);
}

void IoLoop::DrainPosted() {
  uint64_t counter = 0;
  (void)!::read(wake_fd_.get(), &counter, sizeof(counter));  // before taking the posts
  std::vector<fs::UniqueFd> fds;
  std::vector<uint64_t> wakes;
  {
    std::lock_guard lock(post_mu_);
    fds.swap(posted_fds_);
    wakes.swap(posted_wakes_);
    signalled_ = false;
  }
  for (fs::UniqueFd& fd : fds) AddConnection(std::move(fd));
  for (uint64_t id : wakes) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    it->second->OnWake();
    if (it->second->closed()) Reap(it);
  }
}

void IoLoop::Sweep() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    auto next = std::next(it);
    if (now_ >= it->second->deadline()) {
      it->second->Close();  // idle, or the client stopped reading
      Reap(it);
    }
    it = next;
  }
  if (listener_paused_) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenId;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_fd_, &ev);
    listener_paused_ = false;
  }
}

void IoLoop::Run() {
  SigpipeOwner sigpipe;  // sendfile() to a gone client raises no signal here
  now_ = Clock::now();
  next_sweep_ = now_ + kSweepInterval;
  epoll_event events[kMaxEvents];
  while (true) {
    int timeout_ms = 0;
    if (ready_.empty()) {
      timeout_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep_ - now_).count() + 1);
      if (timeout_ms < 0) timeout_ms = 0;
    }
    const int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, timeout_ms);
    now_ = Clock::now();
    if (n < 0 && errno != EINTR) {
      log::Error("epoll_wait failed: the I/O loop ends", {{"error", ErrnoText(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        DrainPosted();
      } else if (id == kListenId) {
        if (on_acceptable_) on_acceptable_();
      } else {
        Dispatch(id, events[i].events);
      }
    }
    if (stop_.load()) break;
    if (!ready_.empty()) {
      std::vector<uint64_t> turn;
      turn.swap(ready_);
      for (uint64_t id : turn) {
        auto it = connections_.find(id);
        if (it == connections_.end()) continue;
        it->second->OnTurn();
        if (it->second->closed()) Reap(it);
      }
    }
    if (now_ >= next_sweep_) {
      Sweep();
      next_sweep_ = now_ + kSweepInterval;
    }
  }
  // Stopping: every connection closes (their responses let go of downloads and relays).
  for (auto& [id, connection] : connections_) connection->Close();
  open_connections_ -= connections_.size();
  count_ -= connections_.size();
  connections_.clear();
  std::lock_guard lock(post_mu_);
  open_connections_ -= posted_fds_.size();
  count_ -= posted_fds_.size();
  posted_fds_.clear();
}

}  // namespace ota::proxy
